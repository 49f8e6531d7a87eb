// SPDX-License-Identifier: GPL-2.0

//! Access control and taint for raw commands (Documentation/access-control.rst).
//!
//! A raw command is allowed when the kernel is not locked down against PCI access
//! (`lockdown=integrity` refuses it with EPERM and one warning per device) and the caller has
//! `CAP_SYS_RAWIO` (else EPERM). Before it reaches the device, a command that may change device
//! or fabric state ([`effects::classify`]), or every command with `strict_taint=1`, taints the
//! kernel with TAINT_USER ('U'); the first such command per device is logged with the process
//! that sent it.

use crate::{
    device::Swcci,
    proto::{effects, opcode, payload::logs::Cel, rc::Errno},
    sys, Disp,
};
use kernel::{prelude::*, sync::atomic::Relaxed};

/// The kernel error for a protocol-core errno.
pub(crate) fn errno(e: Errno) -> Error {
    match e {
        Errno::Perm => EPERM,
        Errno::Intr => EINTR,
        Errno::Io => EIO,
        Errno::Nxio => ENXIO,
        Errno::Again => EAGAIN,
        Errno::NoMem => ENOMEM,
        Errno::Fault => EFAULT,
        Errno::Busy => EBUSY,
        Errno::NoDev => ENODEV,
        Errno::Inval => EINVAL,
        Errno::NoTty => ENOTTY,
        Errno::NoSpc => ENOSPC,
        Errno::MsgSize => EMSGSIZE,
        Errno::OpNotSupp => EOPNOTSUPP,
        Errno::TimedOut => ETIMEDOUT,
        Errno::Canceled => ECANCELED,
        Errno::Proto => EPROTO,
        Errno::NoData => ENODATA,
    }
}

/// Checks that the caller may send raw command `opcode` to `dev`.
pub(crate) fn check_raw(dev: &Swcci, opcode: u16) -> Result {
    if sys::pci_access_locked_down() {
        if !dev.lockdown_logged.xchg(true, Relaxed) {
            dev_warn!(
                dev.pdev,
                "raw commands refused: the kernel is locked down\n"
            );
        }
        return Err(EPERM);
    }
    if !sys::capable_rawio() {
        dev_dbg!(
            dev.pdev,
            "raw command {opcode:04x}h refused: {} lacks CAP_SYS_RAWIO\n",
            sys::comm_str(&sys::current_comm())
        );
        return Err(EPERM);
    }
    if dev.quirks.no_timestamp
        && (opcode == opcode::GET_TIMESTAMP || opcode == opcode::SET_TIMESTAMP)
    {
        dev_dbg!(
            dev.pdev,
            "command {opcode:04x}h refused: crashes this device (quirk)\n"
        );
        return Err(EOPNOTSUPP);
    }
    Ok(())
}

/// Taints the kernel if raw command `opcode` with `input` may change state.
pub(crate) fn taint_for(dev: &Swcci, opcode: u16, input: &[u8], cel: &[u8]) {
    let strict = crate::module_parameters::strict_taint.value();
    let j = effects::classify(opcode, input, Some(&Cel::new(cel)));
    if !(strict || j.effectful) {
        return;
    }
    if !dev.taint_logged.xchg(true, Relaxed) {
        let comm = sys::current_comm();
        let pid = kernel::current!().pid();
        let why: &dyn core::fmt::Display = if j.effectful {
            &j.reason
        } else {
            &"strict_taint=1"
        };
        let why = Disp(why);
        if j.depth > 0 {
            dev_warn!(
                dev.pdev,
                "raw command {opcode:04x}h (tunnelled {:04x}h) from {}[{pid}]: {why}: tainting kernel\n",
                j.opcode,
                sys::comm_str(&comm)
            );
        } else {
            dev_warn!(
                dev.pdev,
                "raw command {opcode:04x}h from {}[{pid}]: {why}: tainting kernel\n",
                sys::comm_str(&comm)
            );
        }
    }
    sys::taint_user();
}
