// SPDX-License-Identifier: GPL-2.0

//! Which raw commands can change device or fabric state.
//!
//! The kernel taints itself (TAINT_USER) before it passes a raw command that may change state,
//! so that bug reports show that userspace drove the device directly. The rules, in order:
//! 1. A Tunnel Management Command (5300h) is judged by the command it carries, through nested
//!    tunnels up to [`MAX_TUNNEL_DEPTH`]; a tunnel that cannot be parsed, or is nested deeper,
//!    has effects. The tunnelled device's CEL is not known, so rule 4 does not apply inside.
//! 2. Vendor-specific opcodes (command sets C0h-FFh) have effects, whatever the CEL says.
//! 3. Opcodes the specification defines are read-only if [`opcode::spec_read_only`] says so
//!    and have effects otherwise; a device's CEL cannot make a specified state-changing command
//!    read-only.
//! 4. Other opcodes are read-only if the device's Command Effects Log lists them with no effect
//!    bits ([`CelEntry::no_effects`]), and have effects otherwise.

use crate::opcode;
use crate::payload::logs::{Cel, CelEntry};
use crate::payload::tunnel::TunnelRequest;
use crate::wire::DecodeError;
use core::fmt;

/// Deepest tunnel nesting that is looked into (a tunnel in a tunnel reaches an LD of an MLD).
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// Why a command was judged as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// On the specification's read-only list.
    SpecReadOnly,
    /// Defined by the specification as changing state.
    SpecEffectful,
    /// Not specified here; the device's CEL lists it with no effects.
    CelNoEffects,
    /// Not specified here; the device's CEL lists these effect bits.
    CelEffects(u16),
    /// Not specified here and not in the CEL.
    Unknown,
    /// A vendor-specific opcode.
    VendorSpecific,
    /// A tunnel nested deeper than [`MAX_TUNNEL_DEPTH`].
    TunnelTooDeep,
    /// A tunnel whose request cannot be parsed.
    TunnelMalformed(DecodeError),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpecReadOnly => f.write_str("read-only by the specification"),
            Self::SpecEffectful => f.write_str("changes state by the specification"),
            Self::CelNoEffects => f.write_str("no effects in the device's CEL"),
            Self::CelEffects(e) => write!(f, "effects {e:#06x} in the device's CEL"),
            Self::Unknown => f.write_str("unknown opcode"),
            Self::VendorSpecific => f.write_str("vendor-specific opcode"),
            Self::TunnelTooDeep => f.write_str("tunnel nested too deep"),
            Self::TunnelMalformed(_) => f.write_str("malformed tunnel request"),
        }
    }
}

/// The judgement on one raw command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// Whether the command may change device or fabric state.
    pub effectful: bool,
    /// Why.
    pub reason: Reason,
    /// The opcode the judgement is about (the innermost one of a tunnel).
    pub opcode: u16,
    /// How many tunnels were opened to reach it.
    pub depth: u8,
}

/// Judges raw command `opcode` with input `input`, given the device's CEL.
pub fn classify(opcode: u16, input: &[u8], cel: Option<&Cel<'_>>) -> Judgement {
    let mut op = opcode;
    let mut payload = input;
    let mut depth = 0u8;
    let judge = |effectful, reason, op, depth| Judgement {
        effectful,
        reason,
        opcode: op,
        depth,
    };
    while op == opcode::TUNNEL {
        if depth >= MAX_TUNNEL_DEPTH {
            return judge(true, Reason::TunnelTooDeep, op, depth);
        }
        match TunnelRequest::decode(payload) {
            Ok(t) => {
                op = t.header.opcode;
                payload = t.payload;
                depth = depth.saturating_add(1);
            }
            Err(e) => return judge(true, Reason::TunnelMalformed(e), op, depth),
        }
    }
    if opcode::is_vendor_specific(op) {
        return judge(true, Reason::VendorSpecific, op, depth);
    }
    if opcode::info(op).is_some() {
        let ro = opcode::spec_read_only(op);
        let reason = if ro {
            Reason::SpecReadOnly
        } else {
            Reason::SpecEffectful
        };
        return judge(!ro, reason, op, depth);
    }
    // The CEL describes the device we talk to, not the ones behind a tunnel.
    match cel.filter(|_| depth == 0).and_then(|c| c.find(op)) {
        Some(e @ CelEntry { .. }) if e.no_effects() => {
            judge(false, Reason::CelNoEffects, op, depth)
        }
        Some(e) => judge(true, Reason::CelEffects(e.effect), op, depth),
        None => judge(true, Reason::Unknown, op, depth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tunnel::encode_request;

    fn tunnel(buf: &mut [u8], port: u8, op: u16, payload: &[u8]) -> usize {
        encode_request(buf, port, 0, 0, op, payload).unwrap()
    }

    #[test]
    fn spec_lists() {
        for op in [0x0001, 0x0002, 0x0400, 0x0401, 0x5100, 0x5101, 0x5200] {
            let j = classify(op, &[], None);
            assert!(!j.effectful, "{op:04x}");
            assert_eq!(j.reason, Reason::SpecReadOnly);
        }
        for op in [0x0005, 0x0301, 0x5102, 0x5201, 0x5202] {
            let j = classify(op, &[], None);
            assert!(j.effectful, "{op:04x}");
            assert_eq!(j.reason, Reason::SpecEffectful);
        }
    }

    #[test]
    fn cel_decides_unspecified_opcodes_only() {
        // 0x5102 (no effects in this CEL, as QEMU claims), 0x7000 (no effects), 0x7001 (log change).
        let raw = [0x02, 0x51, 0, 0, 0x00, 0x70, 0, 0, 0x01, 0x70, 0x10, 0];
        let cel = Cel::new(&raw);
        assert!(classify(0x5102, &[], Some(&cel)).effectful);
        let j = classify(0x7000, &[], Some(&cel));
        assert_eq!((j.effectful, j.reason), (false, Reason::CelNoEffects));
        let j = classify(0x7001, &[], Some(&cel));
        assert_eq!((j.effectful, j.reason), (true, Reason::CelEffects(0x10)));
        let j = classify(0x7002, &[], Some(&cel));
        assert_eq!((j.effectful, j.reason), (true, Reason::Unknown));
        assert_eq!(classify(0x7000, &[], None).reason, Reason::Unknown);
    }

    #[test]
    fn vendor_opcodes_always_have_effects() {
        let raw = [0x00, 0xc0, 0, 0];
        let cel = Cel::new(&raw);
        let j = classify(0xc000, &[], Some(&cel));
        assert_eq!((j.effectful, j.reason), (true, Reason::VendorSpecific));
    }

    #[test]
    fn tunnels_are_judged_by_their_content() {
        let mut one = [0u8; 64];
        let n = tunnel(&mut one, 0, 0x0001, &[]);
        let j = classify(0x5300, &one[..n], None);
        assert_eq!((j.effectful, j.opcode, j.depth), (false, 0x0001, 1));

        let n = tunnel(&mut one, 0, 0x0004, &[1]);
        let j = classify(0x5300, &one[..n], None);
        assert_eq!(
            (j.effectful, j.opcode, j.reason),
            (true, 0x0004, Reason::SpecEffectful)
        );

        let mut inner = [0u8; 64];
        let m = tunnel(&mut inner, 0, 0x4000, &[]);
        let mut two = [0u8; 128];
        let n = tunnel(&mut two, 3, 0x5300, &inner[..m]);
        let j = classify(0x5300, &two[..n], None);
        assert_eq!((j.effectful, j.opcode, j.depth), (false, 0x4000, 2));
    }

    #[test]
    fn cel_does_not_apply_behind_a_tunnel() {
        let raw = [0x00, 0x70, 0, 0];
        let cel = Cel::new(&raw);
        let mut b = [0u8; 64];
        let n = tunnel(&mut b, 0, 0x7000, &[]);
        assert_eq!(
            classify(0x5300, &b[..n], Some(&cel)).reason,
            Reason::Unknown
        );
    }

    #[test]
    fn deep_or_malformed_tunnels_have_effects() {
        let mut a = [0u8; 256];
        let mut b = [0u8; 256];
        let mut n = tunnel(&mut a, 0, 0x0001, &[]);
        for _ in 0..MAX_TUNNEL_DEPTH {
            n = tunnel(&mut b, 0, 0x5300, &a[..n]);
            a[..n].copy_from_slice(&b[..n]);
        }
        let j = classify(0x5300, &a[..n], None);
        assert_eq!((j.effectful, j.reason), (true, Reason::TunnelTooDeep));

        let j = classify(0x5300, &[1, 0, 0xff, 0], None);
        assert!(j.effectful);
        assert!(matches!(j.reason, Reason::TunnelMalformed(_)));
        assert!(classify(0x5300, &[], None).effectful);
    }
}
