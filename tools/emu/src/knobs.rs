// SPDX-License-Identifier: GPL-2.0

//! Run-time settings of the function beyond its personality, which the control channel changes
//! so that one emulated function can show a driver the variants real functions have (the driver
//! reads most of them at probe: change them, then rebind), and the rules of its interrupt
//! vectors under MSI. Pure logic; `device/` consults it.
//!
//! - Attention mechanism (MMB Capabilities bit 23; default: the MMPT personality has it, the
//!   switch does not). The function is at attention while Control's "attention not needed"
//!   (bit 3) is clear; a doorbell rung by a write that found that bit set came without the
//!   attention handshake (PCIe 6.3 §6.36) and is counted (`doorbell-asleep`).
//! - MMPT registers listed in the capabilities array (default yes). Without them the function
//!   is a plain MMB (or CXL) mailbox; its MMPT registers read as before but no driver finds them.
//! - Interrupt vectors. With MSI-X (16 entries) the mailbox and the MMPT receive interrupt use
//!   the vectors set here (default 1 and 2). An MSI-only function (`--msi N`, N messages
//!   capable) follows CXL r3.1 §8.2.8.4.3 for the Interrupt Message Number: it is the offset
//!   from the base Message Data, and it follows Multiple Message Enable, so that it is correct
//!   whatever number of messages the host enabled. This function would like message
//!   [`MSI_MBOX_VECTOR`] for the mailbox and [`MSI_MMPT_VECTOR`] for the MMPT receive
//!   interrupt, and uses the last enabled message when fewer are enabled: with one message
//!   enabled (the reset value) both are 0, with four or more 3 and 2.
//! - CEL effects: the effect word of any opcode the CEL lists can be replaced (for example to
//!   set reserved bits 15:12), and restored.
//! - Slow MMPT sends: every Send Message part (PCI-SIG 0100h, any action but Abort) completes
//!   this many milliseconds after its doorbell.
//! - The `rx-fail-at-part` fault: the K-th Receive Message command of a multi-part read fails.

use crate::common::{Mode, Personality, MBOX_VECTOR, MMPT_VECTOR};
use std::fmt::Write as _;
use swcci_proto::mmpt::{Action, MsgHeader, HEADER_LEN, SEND_MESSAGE, VENDOR_PCI_SIG};
use swcci_proto::regs::MboxCmd;

/// The MSI message the mailbox interrupt would like (used when at least 4 are enabled).
pub const MSI_MBOX_VECTOR: u16 = 3;
/// The MSI message the MMPT receive interrupt would like (used when at least 4 are enabled).
pub const MSI_MMPT_VECTOR: u16 = 2;
/// Most MSI messages a function can ask for (PCI Local Bus 3.0 §6.8.1.3).
pub const MSI_MAX: u8 = 32;
/// Longest delay of a Send Message part.
pub const MAX_PART_MS: u64 = 60_000;

/// The knobs of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knobs {
    /// The MMB attention mechanism is advertised.
    pub attention: bool,
    /// The MMPT registers are listed in the capabilities array.
    pub mmpt: bool,
    /// MSI-X vectors of the mailbox and of the MMPT receive interrupt.
    pub msix_vectors: (u16, u16),
    /// MSI messages the host enabled (Multiple Message Enable), at least 1.
    pub msi_enabled: u16,
    /// Effect words replacing the CEL's defaults, by opcode.
    pub cel_effects: Vec<(u16, u16)>,
    /// Each Send Message part completes this long after its doorbell (ms; 0: at once).
    pub mmpt_part_ms: u64,
    /// Armed `rx-fail-at-part` fault: the part number and the mode.
    pub rx_fail_at_part: Option<(u32, Mode)>,
}

impl Knobs {
    /// The defaults of `personality`.
    pub fn new(personality: Personality) -> Self {
        Self {
            attention: personality == Personality::Mmpt,
            mmpt: true,
            msix_vectors: (MBOX_VECTOR, MMPT_VECTOR),
            msi_enabled: 1,
            cel_effects: Vec::new(),
            mmpt_part_ms: 0,
            rx_fail_at_part: None,
        }
    }

    /// The vector the MSI rule gives an interrupt that would like `preferred`.
    fn msi_vector(&self, preferred: u16) -> u16 {
        preferred.min(self.msi_enabled.max(1) - 1)
    }

    /// The mailbox interrupt's vector (Capabilities bits 10:7): MSI-X's setting, or under MSI
    /// (`msi` messages capable, 0: no MSI) the rule of the module documentation.
    pub fn mbox_vector(&self, msi: u8) -> u16 {
        if msi > 0 {
            self.msi_vector(MSI_MBOX_VECTOR)
        } else {
            self.msix_vectors.0
        }
    }

    /// The MMPT receive interrupt's vector (MMPT Capabilities bits 4:1), as
    /// [`Self::mbox_vector`].
    pub fn mmpt_vector(&self, msi: u8) -> u16 {
        if msi > 0 {
            self.msi_vector(MSI_MMPT_VECTOR)
        } else {
            self.msix_vectors.1
        }
    }

    /// The host wrote the MSI Message Control register: Multiple Message Enable (bits 6:4)
    /// gives 2^n messages, at most the `capable` ones the function asked for.
    pub fn set_msi_control(&mut self, control: u16, capable: u8) {
        let mme = u32::from((control >> 4) & 7);
        let n = 1u16.checked_shl(mme).unwrap_or(u16::from(MSI_MAX));
        self.msi_enabled = n.clamp(1, u16::from(capable.max(1)));
    }

    /// The CEL effect word of `opcode`: the replacement set for it, else `default`.
    pub fn cel_effect(&self, opcode: u16, default: u16) -> u16 {
        self.cel_effects
            .iter()
            .find(|(op, _)| *op == opcode)
            .map_or(default, |(_, e)| *e)
    }

    /// Replaces the CEL effect word of `opcode` (`None`: back to its default).
    pub fn set_cel_effect(&mut self, opcode: u16, effect: Option<u16>) {
        self.cel_effects.retain(|(op, _)| *op != opcode);
        if let Some(e) = effect {
            self.cel_effects.push((opcode, e));
        }
    }

    /// How long the command `cmd` with `payload` in the payload registers takes, if it is a
    /// Send Message part a slow function delays.
    pub fn slow_part_ms(&self, cmd: MboxCmd, payload: &[u8]) -> Option<u64> {
        if self.mmpt_part_ms == 0
            || cmd.opcode_vendor() != VENDOR_PCI_SIG
            || cmd.opcode() != SEND_MESSAGE
            || (cmd.payload_len() as usize) < HEADER_LEN
        {
            return None;
        }
        let h = MsgHeader::decode(payload.get(..HEADER_LEN)?).ok()?;
        (h.action != Action::Abort).then_some(self.mmpt_part_ms)
    }

    /// Takes the `rx-fail-at-part` fault for Receive Message part `part` (1-based) of a read:
    /// true when it applies (a `once` fault disarms).
    pub fn take_rx_fail(&mut self, part: u32) -> bool {
        match self.rx_fail_at_part {
            Some((k, mode)) if k == part => {
                if mode == Mode::Once {
                    self.rx_fail_at_part = None;
                }
                true
            }
            _ => false,
        }
    }

    /// Disarms the faults kept here.
    pub fn clear_faults(&mut self) {
        self.rx_fail_at_part = None;
    }

    /// The settings, for `get settings`: `attention=0|1 mmpt=0|1 vectors=M,P mmpt-part-ms=MS
    /// cel-effects=OP:EFFECT,...|none`.
    pub fn describe(&self) -> String {
        let mut cel = String::new();
        for (op, e) in &self.cel_effects {
            let _ = write!(
                cel,
                "{}{op:#06x}:{e:#06x}",
                if cel.is_empty() { "" } else { "," }
            );
        }
        if cel.is_empty() {
            cel.push_str("none");
        }
        format!(
            "attention={} mmpt={} vectors={},{} mmpt-part-ms={} cel-effects={cel}",
            u8::from(self.attention),
            u8::from(self.mmpt),
            self.msix_vectors.0,
            self.msix_vectors.1,
            self.mmpt_part_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swcci_proto::mmpt::{send_input, Part};

    #[test]
    fn msi_vectors_follow_multiple_message_enable() {
        let mut k = Knobs::new(Personality::Mmpt);
        // One message (the reset value): everything on message 0.
        assert_eq!((k.mbox_vector(8), k.mmpt_vector(8)), (0, 0));
        // MME = 1: two messages.
        k.set_msi_control(1 << 4, 8);
        assert_eq!((k.mbox_vector(8), k.mmpt_vector(8)), (1, 1));
        // MME = 2: four messages.
        k.set_msi_control((2 << 4) | 1, 8);
        assert_eq!((k.mbox_vector(8), k.mmpt_vector(8)), (3, 2));
        // More than the function asked for is clamped to what it is capable of.
        k.set_msi_control(5 << 4, 2);
        assert_eq!(k.msi_enabled, 2);
        assert_eq!(k.mbox_vector(2), 1);
        // MSI-X: the settings, whatever MSI says.
        k.msix_vectors = (0, 5);
        assert_eq!((k.mbox_vector(0), k.mmpt_vector(0)), (0, 5));
    }

    #[test]
    fn cel_effects_replace_and_restore() {
        let mut k = Knobs::new(Personality::Switch);
        assert!(!k.attention && k.mmpt);
        assert_eq!(k.cel_effect(0x3f00, 0), 0);
        k.set_cel_effect(0x3f00, Some(0x1000));
        k.set_cel_effect(0x3f00, Some(0x2000));
        assert_eq!(k.cel_effect(0x3f00, 0), 0x2000);
        assert_eq!(k.cel_effect(0x0001, 7), 7);
        assert!(k.describe().ends_with("cel-effects=0x3f00:0x2000"));
        k.set_cel_effect(0x3f00, None);
        assert_eq!(k.cel_effect(0x3f00, 0), 0);
        assert_eq!(
            k.describe(),
            "attention=0 mmpt=1 vectors=1,2 mmpt-part-ms=0 cel-effects=none"
        );
    }

    #[test]
    fn slow_parts_are_send_message_parts_but_abort() {
        let mut k = Knobs::new(Personality::Mmpt);
        let mut b = [0u8; 32];
        let part = |b: &mut [u8], action| {
            let p = Part {
                action,
                offset: 0,
                len: 4,
            };
            send_input(b, 1, &p, &[1, 2, 3, 4]).unwrap()
        };
        let n = part(&mut b, Action::Initiate);
        let cmd = MboxCmd::default()
            .with_opcode(SEND_MESSAGE)
            .with_opcode_vendor(VENDOR_PCI_SIG)
            .with_payload_len(n as u32);
        assert_eq!(k.slow_part_ms(cmd, &b), None, "not slow by default");
        k.mmpt_part_ms = 50;
        assert_eq!(k.slow_part_ms(cmd, &b), Some(50));
        part(&mut b, Action::Abort);
        assert_eq!(k.slow_part_ms(cmd, &b), None, "aborts are never slow");
        part(&mut b, Action::Full);
        assert_eq!(k.slow_part_ms(cmd.with_opcode_vendor(0), &b), None);
        assert_eq!(k.slow_part_ms(cmd.with_payload_len(8), &b), None);
    }

    #[test]
    fn rx_fail_at_part_once_and_always() {
        let mut k = Knobs::new(Personality::Mmpt);
        assert!(!k.take_rx_fail(1));
        k.rx_fail_at_part = Some((2, Mode::Once));
        assert!(!k.take_rx_fail(1));
        assert!(k.take_rx_fail(2));
        assert!(!k.take_rx_fail(2), "once");
        k.rx_fail_at_part = Some((1, Mode::Always));
        assert!(k.take_rx_fail(1) && k.take_rx_fail(1));
        k.clear_faults();
        assert!(!k.take_rx_fail(1));
    }
}
