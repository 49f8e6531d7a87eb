// SPDX-License-Identifier: GPL-2.0

//! Tests of the run-time knobs (`knobs.rs`) on the register model: the attention mechanism of
//! a switch and its `doorbell-asleep` counter, MMPT registers hidden, interrupt vectors under
//! MSI-X and MSI, CEL effects and the quiet background sleep (3F00h), the `rx-fail-at-part`
//! fault with the receive abort, and slow Send Message parts.

use super::*;
use crate::knobs::{MSI_MBOX_VECTOR, MSI_MMPT_VECTOR};

/// Rings the doorbell of `cmd` with a Control write of `ctrl` (plus the doorbell bit).
fn ring(r: &Rig, cmd: MboxCmd, ctrl: MboxCtrl) {
    r.bus.write64(MBOX_REGS + 8, cmd.0).unwrap();
    r.bus
        .write32(MBOX_REGS + 4, ctrl.with_doorbell(true).0)
        .unwrap();
}

#[test]
fn switch_with_attention_counts_doorbells_without_the_handshake() {
    let r = rig(Personality::Switch);
    let mbox = r.mbox();
    assert!(!mbox.caps().attention(), "a switch has none by default");
    r.bus.with(|d, _| d.knobs.attention = true);
    let mbox = r.mbox();
    assert!(mbox.caps().attention());
    let identify = MboxCmd::default().with_opcode(opcode::IDENTIFY);
    let rest = MboxCtrl::default().with_attention_not_needed(true);
    // At rest, then a doorbell that clears "not needed" in the same write: no handshake.
    r.bus.write32(MBOX_REGS + 4, rest.0).unwrap();
    assert!(!r.bus.with(|d, _| d.at_attention()));
    ring(&r, identify, MboxCtrl::default());
    assert_eq!(r.bus.stat("doorbell-asleep"), 1);
    assert_eq!(r.bus.stat("no-attention"), 0, "at attention once rung");
    // The handshake first: no count.
    r.bus.write32(MBOX_REGS + 4, rest.0).unwrap();
    r.bus.write32(MBOX_REGS + 4, 0).unwrap();
    assert!(r.bus.with(|d, _| d.at_attention()));
    ring(&r, identify, MboxCtrl::default());
    assert_eq!(r.bus.stat("doorbell-asleep"), 1);
    // A doorbell that leaves "not needed" set is both.
    r.bus.write32(MBOX_REGS + 4, rest.0).unwrap();
    ring(&r, identify, rest);
    assert_eq!(r.bus.stat("doorbell-asleep"), 2);
    assert_eq!(r.bus.stat("no-attention"), 1);
    // Without the mechanism nothing is counted.
    r.bus.with(|d, _| d.knobs.attention = false);
    r.bus.write32(MBOX_REGS + 4, rest.0).unwrap();
    ring(&r, identify, MboxCtrl::default());
    assert_eq!(r.bus.stat("doorbell-asleep"), 2);
}

#[test]
fn mmpt_registers_can_be_hidden() {
    for p in [Personality::Switch, Personality::Mmpt] {
        let r = rig(p);
        assert!(r.found.mmpt.is_some(), "{p:?}");
        r.bus.with(|d, _| d.knobs.mmpt = false);
        let bar_len = r.bus.with(|d, _| d.config().bar0_size());
        let found = scan_block(&r.bus, bar_len, &r.block, p == Personality::Switch).unwrap();
        assert!(found.mmpt.is_none(), "{p:?}: MMPT still listed");
        assert!(found.mailbox.flavor.mmb, "{p:?}: still an MMB");
    }
}

#[test]
fn msix_vectors_are_settings() {
    let r = rig(Personality::Mmpt);
    r.bus.with(|d, _| d.knobs.msix_vectors = (0, 1));
    let mbox = r.mbox();
    assert_eq!(mbox.caps().irq_msgnum(), 0);
    let caps = MmptCaps(r.bus.read32(MMPT_REGS).unwrap());
    assert_eq!(caps.rx_vector(), 1);
    r.bus.write32(MBOX_REGS + 4, 0x2).unwrap();
    r.bus.write32(MMPT_REGS + 4, 1).unwrap();
    ring(
        &r,
        MboxCmd::default()
            .with_opcode(RECEIVE_MESSAGE)
            .with_opcode_vendor(VENDOR_PCI_SIG)
            .with_payload_len(16),
        MboxCtrl::default().with_doorbell_irq(true),
    );
    assert_eq!((r.irqs.count(0), r.irqs.count(MBOX_VECTOR)), (1, 0));
    r.bus.with(|d, _| d.inject_message(1, vec![1])).unwrap();
    assert_eq!(r.irqs.count(1), 1, "MMPT receive on vector 1");
}

#[test]
fn msi_interrupt_message_numbers_follow_multiple_message_enable() {
    let r = rig_with(Personality::Mmpt, |c| {
        c.msix = false;
        c.msi = 8;
    });
    let caps = |r: &Rig| {
        (
            MboxCaps(r.bus.read32(MBOX_REGS).unwrap()).irq_msgnum(),
            MmptCaps(r.bus.read32(MMPT_REGS).unwrap()).rx_vector(),
        )
    };
    assert_eq!(caps(&r), (0, 0), "one message at reset");
    // Multiple Message Enable 2: four messages.
    r.bus.with(|d, _| d.set_msi_control((2 << 4) | 1));
    assert_eq!(
        caps(&r),
        (MSI_MBOX_VECTOR as u8, MSI_MMPT_VECTOR as u8),
        "four messages"
    );
    r.bus.write32(MBOX_REGS + 4, 0x2).unwrap();
    ring(
        &r,
        MboxCmd::default()
            .with_opcode(RECEIVE_MESSAGE)
            .with_opcode_vendor(VENDOR_PCI_SIG)
            .with_payload_len(16),
        MboxCtrl::default().with_doorbell_irq(true),
    );
    assert_eq!(r.irqs.count(MSI_MBOX_VECTOR), 1);
    r.bus.with(|d, _| d.set_msi_control(1));
    assert_eq!(caps(&r), (0, 0), "back to one message");
    // The MSI-X settings do not apply.
    r.bus.with(|d, _| d.knobs.msix_vectors = (5, 6));
    assert_eq!(caps(&r), (0, 0));
    assert!(DeviceConfig {
        msi: 8,
        ..DeviceConfig::new(Personality::Mmpt)
    }
    .validate()
    .is_err());
    assert!(DeviceConfig {
        msi: 6,
        msix: false,
        ..DeviceConfig::new(Personality::Mmpt)
    }
    .validate()
    .is_err());
}

#[test]
fn quiet_sleep_and_cel_effects() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let effect_of = |r: &Rig| {
        let cel = r.bus.with(|d, _| d.cel());
        let effect = Cel::new(&cel)
            .iter()
            .find(|e| e.opcode == OP_QUIET_SLEEP)
            .map(|e| e.effect);
        effect
    };
    assert_eq!(effect_of(&r), Some(0), "listed without effects");
    let (resp, _) = r
        .run(&mut mbox, OP_QUIET_SLEEP, &20u32.to_le_bytes())
        .unwrap();
    assert_eq!(resp.rc, ReturnCode::Success);
    assert_eq!(resp.background.unwrap().opcode, OP_QUIET_SLEEP);
    assert_eq!(r.bus.stat("bg-started"), 1);
    // Aborted like the vendor sleep.
    let resp = r.start(&mut mbox, OP_QUIET_SLEEP, &1000u32.to_le_bytes());
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    let (resp, _) = r.run(&mut mbox, opcode::REQUEST_ABORT_BG, &[]).unwrap();
    assert!(resp.rc.is_success());
    assert_eq!(r.bus.with(|d, _| d.bg_state()).3, ReturnCode::Aborted.raw());
    // Reserved effect bits, and back.
    r.bus
        .with(|d, _| d.knobs.set_cel_effect(OP_QUIET_SLEEP, Some(0x1000)));
    assert_eq!(effect_of(&r), Some(0x1000));
    r.bus
        .with(|d, _| d.knobs.set_cel_effect(OP_QUIET_SLEEP, None));
    assert_eq!(effect_of(&r), Some(0));
}

#[test]
fn receive_part_fails_and_abort_discards() {
    let r = rig(Personality::Mmpt);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| {
        d.inject_pattern(4, 600).unwrap();
        d.inject_message(5, vec![9, 9]).unwrap();
        d.arm(Fault::RxFailAtPart(2), Mode::Once);
    });
    let read = |r: &Rig, mbox: &mut Mailbox, action, offset, len| {
        let input = pmmpt::receive_input(
            0,
            &Part {
                action,
                offset,
                len,
            },
        )
        .unwrap();
        r.pci_sig(mbox, RECEIVE_MESSAGE, &input)
    };
    let (code, first) = read(&r, &mut mbox, Action::Initiate, 0, 256);
    assert_eq!(code, MmptCode::Success);
    assert_eq!(first, (0..256).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let (code, out) = read(&r, &mut mbox, Action::Continue, 256, 256);
    assert_eq!((code, out.len()), (MmptCode::InternalError, 0));
    assert_eq!(
        r.bus.with(|d, _| d.mmpt_state()),
        "tx=0 rx=1 queue=2 head=600"
    );
    assert_eq!(r.bus.stat("faults-applied"), 1);
    // The host gives up on it: discarded, the next message is at the head.
    let (code, _) = read(&r, &mut mbox, Action::Abort, 0, 0);
    assert_eq!(code, MmptCode::Success);
    assert_eq!(
        r.bus.with(|d, _| d.mmpt_state()),
        "tx=0 rx=0 queue=1 head=2"
    );
    assert_eq!(r.bus.stat("mmpt-rx-aborts"), 1);
    // Once: a read of the next message is not failed.
    let (code, out) = read(&r, &mut mbox, Action::Full, 0, 2);
    assert_eq!((code, out), (MmptCode::Success, vec![9, 9]));
}

#[test]
fn slow_send_parts() {
    let r = rig(Personality::Mmpt);
    r.mbox();
    r.bus.with(|d, _| d.knobs.mmpt_part_ms = 50);
    let mut input = vec![0u8; HEADER_LEN + 4];
    let part = Part {
        action: Action::Full,
        offset: 0,
        len: 4,
    };
    let n = pmmpt::send_input(&mut input, 1, &part, &[1, 2, 3, 4]).unwrap();
    for (i, c) in input[..n].chunks(4).enumerate() {
        r.bus
            .write32(
                MBOX_REGS + MBOX_PAYLOAD + 4 * i,
                u32::from_le_bytes(c.try_into().unwrap()),
            )
            .unwrap();
    }
    ring(
        &r,
        MboxCmd::default()
            .with_opcode(SEND_MESSAGE)
            .with_opcode_vendor(VENDOR_PCI_SIG)
            .with_payload_len(n as u32),
        MboxCtrl::default(),
    );
    let busy = |r: &Rig| MboxCtrl(r.bus.read32(MBOX_REGS + 4).unwrap()).doorbell();
    r.bus.advance(49 * MS);
    assert!(busy(&r), "still sending after 49 ms");
    r.bus.advance(MS);
    assert!(!busy(&r), "done after 50 ms");
    assert_eq!(r.bus.stat("mmpt-messages"), 1);
}
