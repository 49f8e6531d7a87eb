// SPDX-License-Identifier: GPL-2.0

//! Which raw commands can change device or fabric state.
//!
//! The kernel taints itself (TAINT_USER) before it passes a raw command that may change state,
//! so that bug reports show that userspace drove the device directly. The rules, in order:
//! 1. A Tunnel Management Command (5300h) is judged by the command it carries, through nested
//!    tunnels up to [`MAX_TUNNEL_DEPTH`]; a tunnel that cannot be parsed, or is nested deeper,
//!    has effects. The tunnelled device's CEL is not known, so rule 4 does not apply inside.
//! 2. Vendor-specific opcodes (command sets C0h-FFh) have effects, whatever the CEL says.
//! 3. A device's CEL entry with effect bits this driver cannot interpret (reserved bits 15:12,
//!    or bits 11:10 without bit 9) has effects, whatever the opcode: the same rule that makes
//!    it need the full fwctl scope ([`required_scope`], rule 3).
//! 4. Opcodes the specification defines are read-only if [`opcode::spec_read_only`] says so
//!    and have effects otherwise; a device's CEL cannot make a specified state-changing command
//!    read-only.
//! 5. Other opcodes are read-only if the device's Command Effects Log lists them with no effect
//!    bits ([`CelEntry::no_effects`]), and have effects otherwise.
//!
//! [`required_scope`] answers a second question for the fwctl interface: which fwctl scope
//! (`enum fwctl_rpc_scope`, include/uapi/fwctl/fwctl.h) a command needs, following the rules
//! of the kernel's CXL fwctl driver (drivers/cxl/core/features.c,
//! `cxlctl_validate_set_features`): see [`required_scope`] and Documentation/fwctl.rst.
//! [`judge`] answers both at once; the driver asks it once per command.

use crate::opcode;
#[cfg(doc)]
use crate::opcode::OpcodeInfo;
use crate::payload::logs::{effect, Cel, CelEntry};
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
    /// The device's CEL sets effect bits that cannot be interpreted (reserved bits 15:12, or
    /// bits 11:10 without bit 9).
    CelNotUnderstood(u16),
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
            Self::CelNotUnderstood(e) => {
                write!(f, "effects {e:#06x} in the device's CEL not understood")
            }
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

/// Why a tunnel could not be looked into.
#[derive(Clone, Copy, Debug)]
enum TunnelError {
    /// Nested deeper than [`MAX_TUNNEL_DEPTH`].
    TooDeep,
    /// The request cannot be parsed.
    Malformed(DecodeError),
}

/// The command a raw command carries: `opcode` itself, or the innermost command of a Tunnel
/// Management Command (5300h), with how many tunnels were opened to reach it. A tunnel nested
/// deeper than [`MAX_TUNNEL_DEPTH`], or one that cannot be parsed, ends the walk with the
/// tunnel's own opcode and depth.
fn innermost(opcode: u16, input: &[u8]) -> Result<(u16, u8), (TunnelError, u16, u8)> {
    let mut op = opcode;
    let mut payload = input;
    let mut depth = 0u8;
    while op == opcode::TUNNEL {
        if depth >= MAX_TUNNEL_DEPTH {
            return Err((TunnelError::TooDeep, op, depth));
        }
        match TunnelRequest::decode(payload) {
            Ok(t) => {
                op = t.header.opcode;
                payload = t.payload;
                depth = depth.saturating_add(1);
            }
            Err(e) => return Err((TunnelError::Malformed(e), op, depth)),
        }
    }
    Ok((op, depth))
}

/// Judges raw command `opcode` with input `input`, given the device's CEL.
pub fn classify(opcode: u16, input: &[u8], cel: Option<&Cel<'_>>) -> Judgement {
    let judge = |effectful, reason, op, depth| Judgement {
        effectful,
        reason,
        opcode: op,
        depth,
    };
    let (op, depth) = match innermost(opcode, input) {
        Ok(found) => found,
        Err((TunnelError::TooDeep, op, depth)) => {
            return judge(true, Reason::TunnelTooDeep, op, depth)
        }
        Err((TunnelError::Malformed(e), op, depth)) => {
            return judge(true, Reason::TunnelMalformed(e), op, depth)
        }
    };
    if opcode::is_vendor_specific(op) {
        return judge(true, Reason::VendorSpecific, op, depth);
    }
    // The CEL describes the device we talk to, not the ones behind a tunnel.
    let entry = cel.filter(|_| depth == 0).and_then(|c| c.find(op));
    if let Some(e) = entry.filter(|e| effects_not_understood(e.effect)) {
        return judge(true, Reason::CelNotUnderstood(e.effect), op, depth);
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
    match entry {
        Some(e @ CelEntry { .. }) if e.no_effects() => {
            judge(false, Reason::CelNoEffects, op, depth)
        }
        Some(e) => judge(true, Reason::CelEffects(e.effect), op, depth),
        None => judge(true, Reason::Unknown, op, depth),
    }
}

/// An fwctl RPC scope (`enum fwctl_rpc_scope`, include/uapi/fwctl/fwctl.h), ordered from the
/// least to the most privileged: a caller's scope covers every command whose required scope is
/// lower or equal. The fwctl core (drivers/fwctl/main.c) taints the kernel with TAINT_FWCTL
/// ('J') for the two debug-write scopes and requires `CAP_SYS_RAWIO` for
/// [`Scope::DebugWriteFull`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `FWCTL_RPC_CONFIGURATION` (0): device configuration that leaves the device fully
    /// supported; here, every read-only command.
    Configuration,
    /// `FWCTL_RPC_DEBUG_READ_ONLY` (1): read-only debug information. No command needs it;
    /// it covers the read-only commands.
    DebugReadOnly,
    /// `FWCTL_RPC_DEBUG_WRITE` (2): changes that take hold only after a reset, and commands
    /// that may run in the background.
    DebugWrite,
    /// `FWCTL_RPC_DEBUG_WRITE_FULL` (3): everything else.
    DebugWriteFull,
}

impl Scope {
    /// Every scope, from the least privileged.
    pub const ALL: [Self; 4] = [
        Self::Configuration,
        Self::DebugReadOnly,
        Self::DebugWrite,
        Self::DebugWriteFull,
    ];

    /// The uapi value (`FWCTL_RPC_*`).
    pub const fn raw(self) -> u32 {
        match self {
            Self::Configuration => 0,
            Self::DebugReadOnly => 1,
            Self::DebugWrite => 2,
            Self::DebugWriteFull => 3,
        }
    }

    /// The scope with uapi value `raw`, if fwctl defines one.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Configuration),
            1 => Some(Self::DebugReadOnly),
            2 => Some(Self::DebugWrite),
            3 => Some(Self::DebugWriteFull),
            _ => None,
        }
    }

    /// The uapi name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Configuration => "FWCTL_RPC_CONFIGURATION",
            Self::DebugReadOnly => "FWCTL_RPC_DEBUG_READ_ONLY",
            Self::DebugWrite => "FWCTL_RPC_DEBUG_WRITE",
            Self::DebugWriteFull => "FWCTL_RPC_DEBUG_WRITE_FULL",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CEL effect bits that change something at once: immediate configuration, data, policy and
/// log changes (the `imm_mask` of drivers/cxl/core/features.c) and security state changes.
pub const EFFECTS_IMMEDIATE: u16 = effect::CONFIG_CHANGE_IMMEDIATE
    | effect::DATA_CHANGE_IMMEDIATE
    | effect::POLICY_CHANGE_IMMEDIATE
    | effect::LOG_CHANGE_IMMEDIATE
    | effect::SECURITY_STATE_CHANGE;
/// CEL effect bits that change the configuration only after a cold, conventional or CXL reset
/// (the `reset_mask` of drivers/cxl/core/features.c).
pub const EFFECTS_AFTER_RESET: u16 = effect::CONFIG_CHANGE_COLD_RESET
    | effect::CONFIG_CHANGE_CONV_RESET
    | effect::CONFIG_CHANGE_CXL_RESET;
/// Reserved CEL effect bits 15:12 (`CXL_CMD_EFFECTS_RESERVED`, include/uapi/cxl/features.h).
pub const EFFECTS_RESERVED: u16 = 0xf000;

/// Whether the CEL effect field `e` holds bits this driver cannot interpret: reserved bits, or
/// the reset bits 11:10 without the bit 9 that declares them valid (CXL r3.2 Table 8-87).
const fn effects_not_understood(e: u16) -> bool {
    let late_reset = effect::CONFIG_CHANGE_CONV_RESET | effect::CONFIG_CHANGE_CXL_RESET;
    e & EFFECTS_RESERVED != 0 || (e & late_reset != 0 && e & effect::BITS_10_11_VALID == 0)
}

/// Why a command needs the scope it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeReason {
    /// The device's CEL lists effects that take hold at once ([`EFFECTS_IMMEDIATE`]).
    CelImmediate(u16),
    /// The device's CEL lists only configuration changes after a reset
    /// ([`EFFECTS_AFTER_RESET`]).
    CelAfterReset(u16),
    /// The device's CEL sets effect bits that cannot be interpreted (reserved bits 15:12, or
    /// bits 11:10 without bit 9).
    CelNotUnderstood(u16),
    /// The device's CEL lists no change effects and the specification defines the command as
    /// read-only.
    SpecReadOnly,
    /// The device's CEL lists no change effects (or the command is behind a tunnel) and the
    /// specification defines the command as changing state: taken as an immediate change.
    SpecStateChanging,
    /// Not specified; the device's CEL lists it with no change effects.
    CelNoEffects,
    /// Neither specified nor in the device's CEL.
    Unknown,
    /// A vendor-specific opcode (command sets C0h-FFh).
    VendorSpecific,
    /// A tunnel nested deeper than [`MAX_TUNNEL_DEPTH`].
    TunnelTooDeep,
    /// A tunnel whose request cannot be parsed.
    TunnelMalformed(DecodeError),
    /// A tunnelled read of what a memory device holds for its host ([`OpcodeInfo::host_data`]):
    /// behind a switch that is another host's data, so the lowest scopes do not reach it.
    ///
    /// [`OpcodeInfo::host_data`]: crate::opcode::OpcodeInfo::host_data
    HostData,
}

impl fmt::Display for ScopeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CelImmediate(e) => write!(f, "immediate effects {e:#06x} in the device's CEL"),
            Self::CelAfterReset(e) => {
                write!(f, "effects after reset {e:#06x} in the device's CEL")
            }
            Self::CelNotUnderstood(e) => {
                write!(f, "effects {e:#06x} in the device's CEL not understood")
            }
            Self::SpecReadOnly => f.write_str("read-only by the specification"),
            Self::SpecStateChanging => f.write_str("changes state by the specification"),
            Self::CelNoEffects => f.write_str("no effects in the device's CEL"),
            Self::Unknown => f.write_str("unknown opcode"),
            Self::VendorSpecific => f.write_str("vendor-specific opcode"),
            Self::TunnelTooDeep => f.write_str("tunnel nested too deep"),
            Self::TunnelMalformed(_) => f.write_str("malformed tunnel request"),
            Self::HostData => f.write_str("reads another host's data through a tunnel"),
        }
    }
}

/// The scope one command needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeJudgement {
    /// The least scope that may send the command.
    pub scope: Scope,
    /// Why (before the background rule).
    pub reason: ScopeReason,
    /// The device's CEL marks the command as a background operation (bit 6), which raises its
    /// scope to at least [`Scope::DebugWrite`].
    pub background: bool,
    /// The opcode the judgement is about (the innermost one of a tunnel).
    pub opcode: u16,
    /// How many tunnels were opened to reach it.
    pub depth: u8,
}

/// The fwctl scope raw command `opcode` with input `input` needs, given the device's CEL.
///
/// The rules of the kernel's CXL fwctl driver (drivers/cxl/core/features.c,
/// `cxlctl_validate_set_features`) applied to every command, in order:
/// 1. A Tunnel Management Command (5300h) is judged by the command it carries, as in
///    [`classify`]; a tunnel too deep or malformed needs [`Scope::DebugWriteFull`]. The CEL
///    describes the device the driver talks to, so it is not used behind a tunnel.
/// 2. Vendor-specific opcodes need [`Scope::DebugWriteFull`], whatever the CEL says.
/// 3. When the device's CEL lists the command with change effects, they decide: bits the
///    driver cannot interpret or immediate effects ([`EFFECTS_IMMEDIATE`]) need
///    [`Scope::DebugWriteFull`]; configuration changes after a reset only
///    ([`EFFECTS_AFTER_RESET`]) need [`Scope::DebugWrite`].
/// 4. Otherwise (listed without change effects, as QEMU lists Physical Port Control 5102h, or
///    not listed) the specification decides ([`opcode::info`]): read-only commands need
///    [`Scope::Configuration`], state-changing ones [`Scope::DebugWriteFull`] (taken as
///    immediate: none of them changes only after a reset for every input).
/// 5. Otherwise a command the CEL lists without change effects needs
///    [`Scope::Configuration`]; an unknown one [`Scope::DebugWriteFull`].
/// 6. A command the CEL marks as a background operation needs at least [`Scope::DebugWrite`]:
///    it holds the device's only background slot (others get Busy) and may outlast the
///    caller's wait, so it is not fully sharable with other users as the non-tainting scopes
///    require (Documentation/userspace-api/fwctl/fwctl.rst).
/// 7. Behind a tunnel, the lowest scopes reach identity, health and event telemetry of the
///    devices behind the switch, but not what a memory device holds for its host (label
///    storage, poison addresses, scan media results: [`OpcodeInfo::host_data`]): those belong to
///    the host the device (or LD) is bound to, and need [`Scope::DebugWriteFull`] (so
///    `CAP_SYS_RAWIO`, which the fwctl core requires for it). Documentation/fwctl.rst says why.
///
/// A command [`classify`] judges as changing state never needs less than
/// [`Scope::DebugWrite`].
pub fn required_scope(opcode: u16, input: &[u8], cel: Option<&Cel<'_>>) -> ScopeJudgement {
    let judge = |scope, reason, background, op, depth| ScopeJudgement {
        scope,
        reason,
        background,
        opcode: op,
        depth,
    };
    let (op, depth) = match innermost(opcode, input) {
        Ok(found) => found,
        Err((TunnelError::TooDeep, op, depth)) => {
            return judge(
                Scope::DebugWriteFull,
                ScopeReason::TunnelTooDeep,
                false,
                op,
                depth,
            )
        }
        Err((TunnelError::Malformed(e), op, depth)) => {
            return judge(
                Scope::DebugWriteFull,
                ScopeReason::TunnelMalformed(e),
                false,
                op,
                depth,
            )
        }
    };
    if opcode::is_vendor_specific(op) {
        return judge(
            Scope::DebugWriteFull,
            ScopeReason::VendorSpecific,
            false,
            op,
            depth,
        );
    }
    let entry = cel.filter(|_| depth == 0).and_then(|c| c.find(op));
    let e = entry.map_or(0, |c| c.effect);
    let background = e & effect::BACKGROUND_OP != 0;
    let (scope, reason) = if effects_not_understood(e) {
        (Scope::DebugWriteFull, ScopeReason::CelNotUnderstood(e))
    } else if e & EFFECTS_IMMEDIATE != 0 {
        (Scope::DebugWriteFull, ScopeReason::CelImmediate(e))
    } else if e & EFFECTS_AFTER_RESET != 0 {
        (Scope::DebugWrite, ScopeReason::CelAfterReset(e))
    } else if let Some(info) = opcode::info(op) {
        if info.read_only {
            (Scope::Configuration, ScopeReason::SpecReadOnly)
        } else {
            (Scope::DebugWriteFull, ScopeReason::SpecStateChanging)
        }
    } else if entry.is_some() {
        (Scope::Configuration, ScopeReason::CelNoEffects)
    } else {
        (Scope::DebugWriteFull, ScopeReason::Unknown)
    };
    let scope = if background {
        scope.max(Scope::DebugWrite)
    } else {
        scope
    };
    if depth > 0 && opcode::info(op).is_some_and(|i| i.host_data) {
        return judge(
            Scope::DebugWriteFull,
            ScopeReason::HostData,
            background,
            op,
            depth,
        );
    }
    judge(scope, reason, background, op, depth)
}

/// Both judgements on one raw command, made once: whether it taints ([`classify`]) and the
/// fwctl scope it needs ([`required_scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Whether it may change state (taints), and why.
    pub effects: Judgement,
    /// The fwctl scope it needs, and why.
    pub scope: ScopeJudgement,
}

/// Judges raw command `opcode` with input `input`, given the device's CEL: [`classify`] and
/// [`required_scope`] together. A command that changes state never needs less than
/// [`Scope::DebugWrite`].
pub fn judge(opcode: u16, input: &[u8], cel: Option<&Cel<'_>>) -> Access {
    Access {
        effects: classify(opcode, input, cel),
        scope: required_scope(opcode, input, cel),
    }
}

/// Whether an MMB command of opcode vendor `vendor` (not 0000h: CXL commands are [`judge`]d)
/// may change state (PCIe 6.3 §6.36): of the PCI-SIG commands (vendor 0001h) only Receive
/// Message (0101h) reads, and only on a function with MMPT registers (`mmpt`), where the
/// opcode is that command; on any other function, and for any other vendor, a command may do
/// anything.
pub fn mmb_effectful(vendor: u16, opcode: u16, mmpt: bool) -> bool {
    !(mmpt && vendor == crate::mmpt::VENDOR_PCI_SIG && opcode == crate::mmpt::RECEIVE_MESSAGE)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::payload::tunnel::encode_request;

    fn tunnel(buf: &mut [u8], port: u8, op: u16, payload: &[u8]) -> usize {
        encode_request(buf, port, 0, 0, op, payload).unwrap()
    }

    /// Identify (0001h) in [`MAX_TUNNEL_DEPTH`] + 1 nested tunnels, written to `a`; returns
    /// its length in bytes.
    fn too_deep(a: &mut [u8; 256]) -> usize {
        let mut b = [0u8; 256];
        let mut n = tunnel(a, 0, 0x0001, &[]);
        for _ in 0..MAX_TUNNEL_DEPTH {
            n = tunnel(&mut b, 0, 0x5300, &a[..n]);
            a[..n].copy_from_slice(&b[..n]);
        }
        n
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
        let n = too_deep(&mut a);
        let j = classify(0x5300, &a[..n], None);
        assert_eq!((j.effectful, j.reason), (true, Reason::TunnelTooDeep));

        let j = classify(0x5300, &[1, 0, 0xff, 0], None);
        assert!(j.effectful);
        assert!(matches!(j.reason, Reason::TunnelMalformed(_)));
        assert!(classify(0x5300, &[], None).effectful);
    }
    /// A CEL of `(opcode, effect)` entries, as the device returns it.
    fn cel_bytes(entries: &[(u16, u16)]) -> std::vec::Vec<u8> {
        entries
            .iter()
            .flat_map(|(op, e)| op.to_le_bytes().into_iter().chain(e.to_le_bytes()))
            .collect()
    }

    /// QEMU's switch CCI CEL (hw/cxl/cxl-mailbox-utils.c, `cxl_cmd_set_sw`).
    const QEMU_SWITCH_CEL: &[(u16, u16)] = &[
        (0x0001, 0),
        (0x0002, 0),
        (0x0005, 0),
        (0x0300, 0),
        (0x0301, effect::POLICY_CHANGE_IMMEDIATE),
        (0x0400, 0),
        (0x0401, 0),
        (0x5100, 0),
        (0x5101, 0),
        (0x5102, 0),
        (0x5300, 0),
    ];

    fn scope_of(op: u16, input: &[u8], cel: &[(u16, u16)]) -> ScopeJudgement {
        let raw = cel_bytes(cel);
        required_scope(op, input, Some(&Cel::new(&raw)))
    }

    #[test]
    fn scope_values_order_and_names() {
        for (i, s) in Scope::ALL.iter().enumerate() {
            assert_eq!(s.raw() as usize, i);
            assert_eq!(Scope::from_raw(s.raw()), Some(*s));
        }
        assert_eq!(Scope::from_raw(4), None);
        assert!(Scope::Configuration < Scope::DebugReadOnly);
        assert!(Scope::DebugReadOnly < Scope::DebugWrite);
        assert!(Scope::DebugWrite < Scope::DebugWriteFull);
        assert_eq!(
            std::format!("{}", Scope::DebugWrite),
            "FWCTL_RPC_DEBUG_WRITE"
        );
    }

    #[test]
    fn scope_read_only_commands_need_configuration() {
        for op in [0x0001, 0x0002, 0x0300, 0x0400, 0x0401, 0x5100, 0x5101] {
            for cel in [None, Some(QEMU_SWITCH_CEL)] {
                let j = match cel {
                    Some(c) => scope_of(op, &[], c),
                    None => required_scope(op, &[], None),
                };
                assert_eq!(
                    (j.scope, j.reason, j.background),
                    (Scope::Configuration, ScopeReason::SpecReadOnly, false),
                    "{op:04x}"
                );
            }
        }
        // Not specified, listed without effects (bits 7-9 are capabilities, not effects).
        for e in [
            0,
            effect::SECONDARY_MAILBOX,
            effect::BACKGROUND_ABORT,
            effect::BITS_10_11_VALID,
        ] {
            let j = scope_of(0x7000, &[], &[(0x7000, e)]);
            assert_eq!(
                (j.scope, j.reason),
                (Scope::Configuration, ScopeReason::CelNoEffects),
                "{e:#x}"
            );
        }
    }

    #[test]
    fn scope_reset_only_effects_need_debug_write() {
        let valid = effect::BITS_10_11_VALID;
        for e in [
            effect::CONFIG_CHANGE_COLD_RESET,
            valid | effect::CONFIG_CHANGE_CONV_RESET,
            valid | effect::CONFIG_CHANGE_CXL_RESET,
            valid | EFFECTS_AFTER_RESET,
        ] {
            let j = scope_of(0x7000, &[], &[(0x7000, e)]);
            assert_eq!(
                (j.scope, j.reason),
                (Scope::DebugWrite, ScopeReason::CelAfterReset(e)),
                "{e:#x}"
            );
            // The device's own effects decide for a specified command too (Set Feature 0502h
            // with a reset-only feature is DEBUG_WRITE in drivers/cxl/core/features.c).
            let j = scope_of(0x0502, &[], &[(0x0502, e)]);
            assert_eq!(j.scope, Scope::DebugWrite, "0502h {e:#x}");
        }
    }

    #[test]
    fn scope_immediate_effects_need_debug_write_full() {
        for bit in 1..=5 {
            let e = 1u16 << bit;
            let j = scope_of(0x7001, &[], &[(0x7001, e)]);
            assert_eq!(
                (j.scope, j.reason),
                (Scope::DebugWriteFull, ScopeReason::CelImmediate(e)),
                "bit {bit}"
            );
            // Immediate wins over after-reset.
            let both = e | effect::CONFIG_CHANGE_COLD_RESET;
            assert_eq!(
                scope_of(0x7001, &[], &[(0x7001, both)]).scope,
                Scope::DebugWriteFull
            );
            // The CEL can make a specified read-only command stricter.
            assert_eq!(
                scope_of(0x0401, &[], &[(0x0401, e)]).scope,
                Scope::DebugWriteFull
            );
        }
        // QEMU's Set Timestamp (immediate policy change), were it sent to the switch itself.
        let j = scope_of(0x0301, &[0; 8], QEMU_SWITCH_CEL);
        assert_eq!(
            (j.scope, j.reason),
            (
                Scope::DebugWriteFull,
                ScopeReason::CelImmediate(effect::POLICY_CHANGE_IMMEDIATE)
            )
        );
    }

    #[test]
    fn scope_spec_decides_commands_listed_without_effects() {
        // QEMU lists Physical Port Control (5102h, asserts PERST) and Request Abort Background
        // Operation (0005h) with no effects: the specification says they change state.
        for op in [0x5102, 0x0005] {
            let j = scope_of(op, &[0, 0], QEMU_SWITCH_CEL);
            assert_eq!(
                (j.scope, j.reason),
                (Scope::DebugWriteFull, ScopeReason::SpecStateChanging),
                "{op:04x}"
            );
        }
        // Not listed at all: the specification too.
        for op in [0x5201, 0x5202, 0x0201, 0x0202, 0x4400] {
            let j = scope_of(op, &[], QEMU_SWITCH_CEL);
            assert_eq!(j.scope, Scope::DebugWriteFull, "{op:04x}");
            assert_eq!(j.reason, ScopeReason::SpecStateChanging);
        }
    }

    #[test]
    fn scope_effects_not_understood_need_debug_write_full() {
        for e in [
            0x1000,
            0x8000,
            // Bits 11:10 without their valid bit 9.
            effect::CONFIG_CHANGE_CONV_RESET,
            effect::CONFIG_CHANGE_CXL_RESET | effect::CONFIG_CHANGE_COLD_RESET,
            // QEMU's reading of the reset bits (one higher than the specification's) on its
            // DCD commands: cold reset | immediate config | immediate data | 1 << 11 | 1 << 12.
            0x1807,
        ] {
            let j = scope_of(0x7000, &[], &[(0x7000, e)]);
            assert_eq!(
                (j.scope, j.reason),
                (Scope::DebugWriteFull, ScopeReason::CelNotUnderstood(e)),
                "{e:#x}"
            );
        }
    }

    #[test]
    fn scope_background_commands_need_at_least_debug_write() {
        let bg = effect::BACKGROUND_OP;
        let j = scope_of(0x7002, &[], &[(0x7002, bg)]);
        assert_eq!(
            (j.scope, j.reason, j.background),
            (Scope::DebugWrite, ScopeReason::CelNoEffects, true)
        );
        let j = scope_of(0x0401, &[], &[(0x0401, bg)]);
        assert_eq!(
            (j.scope, j.reason, j.background),
            (Scope::DebugWrite, ScopeReason::SpecReadOnly, true)
        );
        let j = scope_of(
            0x7002,
            &[],
            &[(0x7002, bg | effect::CONFIG_CHANGE_COLD_RESET)],
        );
        assert_eq!((j.scope, j.background), (Scope::DebugWrite, true));
        // QEMU's Scan Media and Sanitize.
        let j = scope_of(0x4304, &[], &[(0x4304, bg | effect::SECONDARY_MAILBOX)]);
        assert_eq!(j.scope, Scope::DebugWriteFull);
        let j = scope_of(0x4400, &[], &[(0x4400, bg | 0x24)]);
        assert_eq!(
            (j.scope, j.reason, j.background),
            (
                Scope::DebugWriteFull,
                ScopeReason::CelImmediate(bg | 0x24),
                true
            )
        );
    }

    #[test]
    fn scope_of_tunnelled_commands_is_the_innermost_ones() {
        let mut one = [0u8; 64];
        let n = tunnel(&mut one, 0, 0x0001, &[]);
        let j = scope_of(0x5300, &one[..n], QEMU_SWITCH_CEL);
        assert_eq!(
            (j.scope, j.opcode, j.depth),
            (Scope::Configuration, 0x0001, 1)
        );
        // Set Timestamp and Set Response Message Limit to a type-3 behind the switch.
        for (op, input) in [(0x0301, &[0u8; 8][..]), (0x0004, &[9][..])] {
            let n = tunnel(&mut one, 0, op, input);
            let j = scope_of(0x5300, &one[..n], QEMU_SWITCH_CEL);
            assert_eq!(
                (j.scope, j.reason, j.opcode),
                (Scope::DebugWriteFull, ScopeReason::SpecStateChanging, op)
            );
        }
        // Two levels.
        let mut inner = [0u8; 64];
        let m = tunnel(&mut inner, 0, 0x5101, &[0]);
        let mut two = [0u8; 128];
        let n = tunnel(&mut two, 3, 0x5300, &inner[..m]);
        let j = scope_of(0x5300, &two[..n], QEMU_SWITCH_CEL);
        assert_eq!(
            (j.scope, j.opcode, j.depth),
            (Scope::Configuration, 0x5101, 2)
        );
        // The switch's CEL does not describe the device behind the tunnel.
        let n = tunnel(&mut one, 0, 0x7000, &[]);
        let j = scope_of(0x5300, &one[..n], &[(0x7000, 0)]);
        assert_eq!(
            (j.scope, j.reason),
            (Scope::DebugWriteFull, ScopeReason::Unknown)
        );
        // Too deep or malformed.
        let mut a = [0u8; 256];
        let n = too_deep(&mut a);
        let j = required_scope(0x5300, &a[..n], None);
        assert_eq!(
            (j.scope, j.reason),
            (Scope::DebugWriteFull, ScopeReason::TunnelTooDeep)
        );
        let j = required_scope(0x5300, &[1, 0, 0xff, 0], None);
        assert_eq!(j.scope, Scope::DebugWriteFull);
        assert!(matches!(j.reason, ScopeReason::TunnelMalformed(_)));
    }

    #[test]
    fn scope_vendor_and_unknown_opcodes_need_debug_write_full() {
        let j = scope_of(0xc000, &[], &[(0xc000, 0)]);
        assert_eq!(
            (j.scope, j.reason),
            (Scope::DebugWriteFull, ScopeReason::VendorSpecific)
        );
        let j = scope_of(0xfffe, &[], &[]);
        assert_eq!(j.reason, ScopeReason::VendorSpecific);
        let j = scope_of(0x7fff, &[], QEMU_SWITCH_CEL);
        assert_eq!(
            (j.scope, j.reason),
            (Scope::DebugWriteFull, ScopeReason::Unknown)
        );
        assert_eq!(
            required_scope(0x7fff, &[], None).reason,
            ScopeReason::Unknown
        );
    }

    /// Every command that taints on the raw node ([`classify`]) needs a tainting scope: the
    /// non-tainting scopes never carry a state-changing command.
    #[test]
    fn scope_covers_what_classify_calls_state_changing() {
        let effects = [
            0u16, 0x0001, 0x0002, 0x0010, 0x0020, 0x0040, 0x0080, 0x0100, 0x0200, 0x0600, 0x0a00,
            0x0400, 0x1000, 0x0041, 0x0240,
        ];
        let mut ops: std::vec::Vec<u16> = opcode::OPCODES.iter().map(|i| i.opcode).collect();
        ops.extend([0x7000, 0x7fff, 0xc000, 0xc0ff]);
        for &op in &ops {
            for &e in &effects {
                let raw = cel_bytes(&[(op, e)]);
                let cel = Cel::new(&raw);
                let input = [0u8; 8];
                let j = required_scope(op, &input, Some(&cel));
                let c = classify(op, &input, Some(&cel));
                if c.effectful {
                    assert!(
                        j.scope >= Scope::DebugWrite,
                        "{op:04x} effects {e:#x}: {:?} but {:?}",
                        c.reason,
                        j
                    );
                }
            }
        }
    }

    /// The pooling commands (CXL r3.1 §7.6.7.4 MLD components, §7.6.7.6 DCD management) are
    /// judged by the specification, on the switch itself and through one or two tunnels (to a
    /// DCD behind a port, to an LD of an MLD): the reads neither taint nor need more than
    /// FWCTL_RPC_CONFIGURATION; Set LD Allocations, Set DC Region Configuration and Initiate
    /// Dynamic Capacity Add and Release taint and need FWCTL_RPC_DEBUG_WRITE_FULL, whatever the
    /// CEL of the switch says (QEMU lists none of them; its DCD's own CEL marks them 0x1807,
    /// which is not read behind a tunnel).
    #[test]
    fn pooling_commands_by_the_specification() {
        let reads = [
            opcode::GET_LD_INFO,
            opcode::GET_LD_ALLOCATIONS,
            opcode::GET_DCD_INFO,
            opcode::GET_HOST_DC_REGION_CONFIG,
            opcode::GET_DC_REGION_EXTENT_LISTS,
        ];
        let changes = [
            opcode::SET_LD_ALLOCATIONS,
            opcode::SET_DC_REGION_CONFIG,
            opcode::INITIATE_DC_ADD,
            opcode::INITIATE_DC_RELEASE,
        ];
        let dcd_cel: &[(u16, u16)] = &[
            (0x5600, 0),
            (0x5601, 0),
            (0x5602, 0x1807),
            (0x5603, 0),
            (0x5604, 0x1807),
            (0x5605, 0x1807),
        ];
        for (ops, effectful) in [(&reads[..], false), (&changes[..], true)] {
            for &op in ops {
                let input = [0u8; 0x48];
                let mut one = [0u8; 128];
                let n1 = tunnel(&mut one, 0, op, &input);
                let mut two = [0u8; 160];
                let n2 = tunnel(&mut two, 3, opcode::TUNNEL, &one[..n1]);
                for (cmd, payload, depth) in [
                    (op, &input[..], 0u8),
                    (opcode::TUNNEL, &one[..n1], 1),
                    (opcode::TUNNEL, &two[..n2], 2),
                ] {
                    for cel in [None, Some(QEMU_SWITCH_CEL)] {
                        let raw = cel_bytes(cel.unwrap_or(&[]));
                        let cel = cel.map(|_| Cel::new(&raw));
                        let j = classify(cmd, payload, cel.as_ref());
                        assert_eq!(
                            (j.effectful, j.opcode, j.depth),
                            (effectful, op, depth),
                            "{op:04x} depth {depth}"
                        );
                        let want = if effectful {
                            (Reason::SpecEffectful, Scope::DebugWriteFull)
                        } else {
                            (Reason::SpecReadOnly, Scope::Configuration)
                        };
                        let s = required_scope(cmd, payload, cel.as_ref());
                        assert_eq!((j.reason, s.scope), want, "{op:04x} depth {depth}");
                    }
                }
                // Sent to the DCD's own CCI, its CEL's effects (QEMU's bit numbering) cannot
                // make a state-changing command read-only, and are not understood.
                let j = scope_of(op, &input, dcd_cel);
                if effectful {
                    assert_eq!(j.scope, Scope::DebugWriteFull, "{op:04x}");
                    assert!(classify(op, &input, None).effectful);
                } else {
                    assert_eq!(j.scope, Scope::Configuration, "{op:04x}");
                }
            }
        }
        // The taint line names the tunnelled command by the specification's name.
        assert_eq!(
            opcode::name(opcode::INITIATE_DC_ADD),
            Some("Initiate Dynamic Capacity Add")
        );
    }

    /// Issue 21, item 10: reserved CEL effect bits (and bits 11:10 without bit 9) make any
    /// command taint, the same rule that makes it need the full scope; one rule for both.
    #[test]
    fn effects_not_understood_taint_and_need_the_full_scope() {
        for (op, e) in [
            (0x7000u16, 0x1000u16),
            (0x7000, 0x8000),
            (0x7000, 0x0400),
            (opcode::IDENTIFY, 0x2000),
            (opcode::GET_LOG, 0x0800),
        ] {
            let raw = cel_bytes(&[(op, e)]);
            let cel = Cel::new(&raw);
            let a = judge(op, &[], Some(&cel));
            assert!(a.effects.effectful, "{op:04x} {e:#x} must taint");
            assert_eq!(a.effects.reason, Reason::CelNotUnderstood(e));
            assert_eq!(a.scope.scope, Scope::DebugWriteFull, "{op:04x} {e:#x}");
        }
        // Bits 11:10 with bit 9 are understood: a configuration change after a reset.
        let raw = cel_bytes(&[(0x7000, 0x0600)]);
        let a = judge(0x7000, &[], Some(&Cel::new(&raw)));
        assert!(a.effects.effectful);
        assert_eq!(a.scope.scope, Scope::DebugWrite);
    }

    /// Issue 21, item 12: through a tunnel the lowest scopes reach identity, health and event
    /// telemetry but not a memory device's host data, which needs the full scope; directly
    /// (the switch CCI itself) nothing changes.
    #[test]
    fn tunnelled_host_data_needs_the_full_scope() {
        let mut buf = [0u8; 64];
        for (op, want) in [
            (opcode::IDENTIFY, Scope::Configuration),
            (opcode::BG_OP_STATUS, Scope::Configuration),
            (0x0100, Scope::Configuration),
            (opcode::GET_SUPPORTED_LOGS, Scope::Configuration),
            (opcode::IDENTIFY_MEMDEV, Scope::Configuration),
            (0x4200, Scope::Configuration),
            (0x4102, Scope::DebugWriteFull),
            (0x4300, Scope::DebugWriteFull),
            (0x4305, Scope::DebugWriteFull),
        ] {
            let n = tunnel(&mut buf, 1, op, &[]);
            let a = judge(opcode::TUNNEL, &buf[..n], None);
            assert_eq!(a.scope.scope, want, "tunnelled {op:04x}");
            assert!(!a.effects.effectful, "tunnelled {op:04x} reads only");
            if want == Scope::DebugWriteFull {
                assert_eq!(a.scope.reason, ScopeReason::HostData);
            }
            // Two tunnels deep (an LD of an MLD): the same.
            let mut outer = [0u8; 96];
            let m = tunnel(&mut outer, 2, opcode::TUNNEL, &buf[..n]);
            assert_eq!(judge(opcode::TUNNEL, &outer[..m], None).scope.scope, want);
            // Sent to the switch CCI itself: its own rules.
            assert_eq!(judge(op, &[], None).scope.scope, Scope::Configuration);
        }
    }

    /// Issue 21, item 10: opcode vendor 0001h opcode 0101h reads (Receive Message) only on a
    /// function with MMPT registers.
    #[test]
    fn receive_message_reads_only_on_an_mmpt_function() {
        assert!(!mmb_effectful(0x0001, 0x0101, true));
        assert!(mmb_effectful(0x0001, 0x0101, false));
        assert!(mmb_effectful(0x0001, 0x0100, true));
        assert!(mmb_effectful(0x1e98, 0x0101, true));
    }
}
