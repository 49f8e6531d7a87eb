// SPDX-License-Identifier: GPL-2.0

//! debugfs: `cxl_swcci/<PCI address>/{stats,cel}` per device.
//!
//! `stats` counts commands, return codes, errors, background operations, interrupts and the
//! cost of waiting (register checks after a wait, spins, sleeps, interrupt waits), plus the
//! latency of the last command. `cel` lists the Command Effects Log read at probe.

use crate::{
    device::{
        Swcci,
        IRQ_RECHECK_MAX_MS,
        IRQ_RECHECK_MS,
        RC_SLOTS, //
    },
    proto::{
        num::Dec,
        opcode,
        payload::logs::Cel,
        rc::ReturnCode, //
    },
};
use core::fmt;
use kernel::{
    debugfs::Scope,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
};

/// The debugfs directory of one device; removed when dropped.
pub(crate) type DebugfsDir = Pin<KBox<Scope<Arc<Swcci>>>>;

/// Creates the directory. debugfs is best effort: failures leave the device without it.
pub(crate) fn create(dev: &Arc<Swcci>) -> Option<DebugfsDir> {
    let root = crate::debugfs_root()?;
    let name = dev.pdev.as_ref().name();
    KBox::pin_init(
        root.scope(dev.clone(), name, |dev, dir| {
            dir.read_callback_file(c"stats", dev, &write_stats);
            dir.read_callback_file(c"cel", dev, &write_cel);
        }),
        GFP_KERNEL,
    )
    .ok()
}

fn write_stats(dev: &Arc<Swcci>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (s, bg) = {
        let st = dev.state.lock();
        (st.stats.clone(), st.bg)
    };
    writeln!(f, "node: {}", dev.node_name.to_str().unwrap_or("?"))?;
    writeln!(f, "payload_size: {}", dev.payload_size)?;
    let mode = |irq: bool| if irq { "interrupt" } else { "poll" };
    writeln!(f, "mode: {}", mode(dev.irq_mode()))?;
    writeln!(f, "background_mode: {}", mode(dev.bg_irq_mode()))?;
    writeln!(f, "irq_recheck_ms: {IRQ_RECHECK_MS}..{IRQ_RECHECK_MAX_MS}")?;
    writeln!(f, "commands: {}", Dec(s.commands))?;
    for (rc, &n) in s.by_rc.iter().enumerate() {
        if n != 0 {
            let n = Dec(n);
            if rc == RC_SLOTS - 1 {
                writeln!(f, "rc_unknown: {n}")?;
            } else {
                // rc < RC_SLOTS - 1 = 33: fits.
                let code = ReturnCode::from_raw(u16::try_from(rc).unwrap_or(u16::MAX));
                writeln!(f, "rc_{rc:02x}: {n}  # {code}")?;
            }
        }
    }
    let irq = &dev.irq_stats;
    for (name, n) in [
        ("timeouts", s.timeouts),
        ("busy", s.busy),
        ("io_errors", s.io_errors),
        ("bad_output_length", s.bad_length),
        ("bg_started", s.bg_started),
        ("bg_completed", s.bg_completed),
        ("bg_timeouts", s.bg_timeouts),
        ("bg_interrupted", s.bg_interrupted),
        ("bg_aborts", s.bg_aborts),
        ("irqs", irq.irqs.load(Relaxed)),
        ("spurious_irqs", irq.spurious_irqs.load(Relaxed)),
        ("missed_irqs", s.missed_irqs),
        ("immediate", s.immediate),
        ("polls", s.polls),
        ("spins", s.spins),
        ("sleeps", s.sleeps),
        ("irq_waits", s.irq_waits),
        ("last_latency_ns", s.last_latency_ns),
    ] {
        writeln!(f, "{name}: {}", Dec(n))?;
    }
    match bg {
        Some(op) => writeln!(f, "bg_running: {:04x}", op.opcode),
        None => writeln!(f, "bg_running: none"),
    }
}

fn write_cel(dev: &Arc<Swcci>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for e in Cel::new(&dev.info().cel).iter() {
        writeln!(
            f,
            "{:04x} {:04x} {}",
            e.opcode,
            e.effect,
            opcode::name(e.opcode).unwrap_or("-")
        )?;
    }
    Ok(())
}
