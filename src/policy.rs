// SPDX-License-Identifier: GPL-2.0

//! Access control and taint (Documentation/access-control.rst): the only place a [`Command`]
//! is made.
//!
//! Nothing reaches a device except as a [`Command`], and only this module builds one, after
//! the checks of where it comes from (the device's `Swcci::run` takes nothing else):
//! - the device node: [`node_access`] (lockdown: EPERM, logged once per device;
//!   `CAP_SYS_RAWIO`: EPERM; quirks: EOPNOTSUPP), then, once the input is read,
//!   [`NodeAccess::command`] or, for MMPT messages, [`NodeAccess::send_message`] and
//!   [`NodeAccess::receive_message`], whose parts are commands too;
//! - fwctl: [`fwctl_access`] (lockdown first, EPERM, as on the node), then
//!   [`FwctlAccess::command`] (the caller's scope against the command's, EINVAL as the kernel's
//!   CXL fwctl driver answers; quirks); `CAP_SYS_RAWIO` for the full scope is the fwctl core's;
//! - the driver itself: [`internal`] (the reads at probe) and [`Command::abort_taint`] (the
//!   driver's own Request Abort Background Operation on a caller's behalf).
//!
//! One judgement per command, [`effects::judge`], decides both the taint and the fwctl scope.
//! A command that may change device or fabric state, or every command with `strict_taint=1`,
//! taints the kernel with TAINT_USER ('U'); the [`Taint`] is applied right before the doorbell,
//! so a command that fails any check before (an unbound or dead device, a busy doorbell) does
//! not taint. The first tainting command per device is logged with its name and the process
//! that sent it. The driver's own abort of a caller's background operation changes state and
//! always taints.

use crate::{
    proto::{
        effects,
        mailbox::{
            BgPolicy,
            Request, //
        },
        mmpt, opcode,
        payload::{
            identify::Identify,
            logs::Cel, //
        },
    },
    sys, //
};
use kernel::{
    pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        SetOnce, //
    },
};

/// Device quirks, by PCI id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quirks {
    /// Get/Set Timestamp (0300h/0301h) sent to the CCI itself crash the device model (QEMU's
    /// emulated switch CCI, 19e5:a123, casts the switch to a type-3 device): refuse them.
    pub(crate) no_timestamp: bool,
}

impl Quirks {
    fn for_device(vendor: u16, device: u16) -> Self {
        Self {
            no_timestamp: (vendor, device) == (0x19e5, 0xa123),
        }
    }
}

/// What identifies the device, read once at probe and unchanged afterwards.
#[derive(Default)]
pub(crate) struct DevInfo {
    pub(crate) ident: Option<Identify>,
    /// The Command Effects Log, whole 4-byte entries.
    pub(crate) cel: KVec<u8>,
}

/// What a device that could not be identified reports.
static NO_INFO: DevInfo = DevInfo {
    ident: None,
    cel: KVec::new(),
};

/// What the access policy reads of one function, and the per-device state of its messages:
/// everything its decisions need, so that the policy depends on no other part of the driver
/// (the device object holds one, `Swcci::target`).
///
/// # Invariants
///
/// `quirks`, `mmb` and `mmpt` never change; `info` is set once, at probe.
pub(crate) struct Target {
    /// The function, for messages.
    pdev: ARef<pci::Device>,
    quirks: Quirks,
    /// The mailbox is a PCIe MMB: it has an opcode vendor field.
    mmb: bool,
    /// The function has MMPT registers.
    mmpt: bool,
    /// Identify and the CEL, set once at probe.
    info: SetOnce<DevInfo>,
    /// The taint notice was printed for this device.
    taint_logged: Atomic<bool>,
    /// The lockdown refusal was logged for this device.
    lockdown_logged: Atomic<bool>,
}

impl Target {
    /// The policy's view of function `pdev`, whose mailbox is an MMB (`mmb`) and which has MMPT
    /// registers (`mmpt`) or not.
    pub(crate) fn new(pdev: ARef<pci::Device>, mmb: bool, mmpt: bool) -> Self {
        Self {
            quirks: Quirks::for_device(pdev.vendor_id().as_raw(), pdev.device_id()),
            pdev,
            mmb,
            mmpt,
            info: SetOnce::new(),
            taint_logged: Atomic::new(false),
            lockdown_logged: Atomic::new(false),
        }
    }

    /// Identify and the CEL read at probe (empty if they could not be read).
    pub(crate) fn info(&self) -> &DevInfo {
        self.info.as_ref().unwrap_or(&NO_INFO)
    }

    /// Records Identify and the CEL, once, at probe.
    pub(crate) fn set_info(&self, info: DevInfo) {
        self.info.populate(info);
    }
}

/// A command the access policy admitted for one device.
///
/// # Invariants
///
/// Built only by this module, after the checks of its origin (module documentation): the
/// caller may send it to the device it was admitted for, and `taint` is the policy's decision
/// for exactly this opcode vendor, opcode and input on that device.
pub(crate) struct Command<'a> {
    req: Request<'a>,
    taint: Option<Taint>,
    /// A background wait may end on a signal (callers' commands; never the driver's own).
    interruptible: bool,
}

impl<'a> Command<'a> {
    /// The mailbox request (opcode, opcode vendor as the device sees it, input, background
    /// policy).
    pub(crate) fn request(&self) -> Request<'a> {
        self.req
    }

    /// The opcode.
    pub(crate) fn opcode(&self) -> u16 {
        self.req.opcode
    }

    /// How a background operation it starts is waited for.
    pub(crate) fn bg(&self) -> BgPolicy {
        self.req.bg
    }

    /// Whether a background wait may end on a signal.
    pub(crate) fn interruptible(&self) -> bool {
        self.interruptible
    }

    /// Taints the kernel if the policy decided so for this command. Called right before the
    /// doorbell; does not sleep (it runs with the BAR mapping held).
    pub(crate) fn apply_taint(&self, dev: &Target) {
        if let Some(t) = &self.taint {
            t.apply(dev);
        }
    }

    /// The taint of the driver's own Request Abort Background Operation (0005h) of this
    /// command's background operation: an abort changes state, so it always taints, naming the
    /// command it aborts.
    pub(crate) fn abort_taint(&self) -> Taint {
        Taint::Abort {
            of: self.req.opcode,
        }
    }

    /// A 64-bit FNV-1a digest of what the command asks (opcode vendor, opcode, input): a
    /// restarted system call that asks the same resumes the interrupted wait instead of
    /// sending the command again.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let head = [
            self.req.opcode_vendor.to_le_bytes(),
            self.req.opcode.to_le_bytes(),
        ];
        for b in Iterator::chain(head.iter().flatten(), self.req.input.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^ u64::try_from(self.req.input.len()).unwrap_or(u64::MAX)
    }
}

/// The device node's access check passed for command `opcode` of opcode vendor `vendor` to
/// `dev` ([`node_access`]); the command is made from it once its input is read
/// ([`NodeAccess::command`]).
pub(crate) struct NodeAccess<'d> {
    dev: &'d Target,
    vendor: u16,
    opcode: u16,
}

/// Checks that the caller may send raw command `opcode` of opcode vendor `vendor` to `dev`
/// through its device node, in the order Documentation/abi.rst gives: an opcode vendor the
/// function has a field for (EOPNOTSUPP), not locked down and `CAP_SYS_RAWIO` (EPERM), no quirk
/// against the command (EOPNOTSUPP).
///
/// # Errors
///
/// EOPNOTSUPP for an opcode vendor other than 0000h on a mailbox without that field; EPERM
/// when the kernel is locked down ([`check_lockdown`]) or the caller lacks `CAP_SYS_RAWIO`;
/// EOPNOTSUPP for a quirk ([`check_quirks`]).
pub(crate) fn node_access(dev: &Target, vendor: u16, opcode: u16) -> Result<NodeAccess<'_>> {
    if vendor != 0 && !dev.mmb {
        // A CXL mailbox found through the Register Locator has no opcode vendor field.
        return Err(EOPNOTSUPP);
    }
    check_lockdown(dev)?;
    if !sys::capable_rawio() {
        dev_dbg!(
            dev.pdev,
            "raw command {opcode:04x}h refused: {} lacks CAP_SYS_RAWIO\n",
            sys::comm_str(&sys::current_comm())
        );
        return Err(EPERM);
    }
    check_quirks(dev, vendor, opcode)?;
    Ok(NodeAccess {
        dev,
        vendor,
        opcode,
    })
}

impl<'d> NodeAccess<'d> {
    /// The command with `input`, waited for with `bg`; decides the taint.
    pub(crate) fn command<'a>(&self, input: &'a [u8], bg: BgPolicy) -> Command<'a> {
        Command {
            req: Request {
                opcode: self.opcode,
                opcode_vendor: self.vendor,
                input,
                bg,
                watch_bg: false,
            },
            taint: judge(self.dev, self.vendor, self.opcode, input),
            interruptible: true,
        }
    }

    /// Sending an MMPT message of type `msg_type` (the access was checked for Send Message);
    /// each part taints (the message's content is not understood).
    pub(crate) fn send_message(&self, msg_type: u8) -> Message {
        Message {
            opcode: mmpt::SEND_MESSAGE,
            taint: Some(Taint::Message { msg_type }),
        }
    }

    /// Receiving MMPT messages (the access was checked for Receive Message): Receive Message
    /// reads, so its parts taint only with `strict_taint=1`.
    pub(crate) fn receive_message(&self) -> Message {
        Message {
            opcode: mmpt::RECEIVE_MESSAGE,
            taint: judge(self.dev, mmpt::VENDOR_PCI_SIG, mmpt::RECEIVE_MESSAGE, &[]),
        }
    }
}

/// An admitted MMPT transfer direction: each of its parts is a [`Command`]
/// ([`Message::part`]).
pub(crate) struct Message {
    opcode: u16,
    taint: Option<Taint>,
}

impl Message {
    /// Send Message (0100h) or Receive Message (0101h).
    pub(crate) fn opcode(&self) -> u16 {
        self.opcode
    }

    /// The command of one part with `input` (a Send or Receive Message header and data). Parts
    /// are never waited for interruptibly: a command in flight is always completed.
    pub(crate) fn part<'a>(&self, input: &'a [u8]) -> Command<'a> {
        Command {
            req: Request {
                opcode_vendor: mmpt::VENDOR_PCI_SIG,
                ..Request::new(self.opcode, input)
            },
            taint: self.taint,
            interruptible: false,
        }
    }
}

/// The fwctl access check passed for `dev` ([`fwctl_access`]): lockdown.
#[cfg(swcci_fwctl)]
pub(crate) struct FwctlAccess<'d> {
    dev: &'d Target,
}

/// Checks that an fwctl RPC may reach `dev`: not locked down (EPERM), checked before anything
/// else so that under lockdown every RPC gets EPERM, as on the device node.
///
/// # Errors
///
/// EPERM when the kernel is locked down against PCI access ([`check_lockdown`]).
#[cfg(swcci_fwctl)]
pub(crate) fn fwctl_access(dev: &Target) -> Result<FwctlAccess<'_>> {
    check_lockdown(dev)?;
    Ok(FwctlAccess { dev })
}

#[cfg(swcci_fwctl)]
impl FwctlAccess<'_> {
    /// Admits CXL command `opcode` with `input` from a caller of fwctl scope `caller`, waited
    /// for with `bg`: EINVAL when the command needs a higher scope ([`effects::judge`], the
    /// rules of drivers/cxl/core/features.c and Documentation/fwctl.rst); EOPNOTSUPP for a
    /// quirk; decides the taint by the node's rule.
    ///
    /// # Errors
    ///
    /// EINVAL when the command needs a higher scope than `caller`; EOPNOTSUPP for a quirk
    /// ([`check_quirks`]).
    pub(crate) fn command<'a>(
        &self,
        opcode: u16,
        input: &'a [u8],
        caller: effects::Scope,
        bg: BgPolicy,
    ) -> Result<Command<'a>> {
        let dev = self.dev;
        let cel = Cel::new(&dev.info().cel);
        let access = effects::judge(opcode, input, Some(&cel));
        let needed = access.scope;
        if needed.scope > caller {
            if needed.depth > 0 {
                dev_dbg!(
                    dev.pdev,
                    "fwctl: command {opcode:04x}h (tunnelled {:04x}h) needs {} ({}), the caller asked for {}: refused\n",
                    needed.opcode,
                    crate::Disp(&needed.scope),
                    crate::Disp(&needed.reason),
                    crate::Disp(&caller)
                );
            } else {
                dev_dbg!(
                    dev.pdev,
                    "fwctl: command {opcode:04x}h needs {} ({}), the caller asked for {}: refused\n",
                    crate::Disp(&needed.scope),
                    crate::Disp(&needed.reason),
                    crate::Disp(&caller)
                );
            }
            return Err(EINVAL);
        }
        check_quirks(dev, 0, opcode)?;
        Ok(Command {
            req: Request {
                bg,
                ..Request::new(opcode, input)
            },
            taint: taint_of(&access.effects),
            interruptible: true,
        })
    }
}

/// A command the driver itself sends (the reads at probe: Identify, Get Supported Logs, Get
/// Log): no access check, uninterruptible, and no taint (they are read-only; a device that
/// answers them is not driven by userspace).
pub(crate) fn internal(opcode: u16, input: &[u8]) -> Command<'_> {
    Command {
        req: Request::new(opcode, input),
        taint: None,
        interruptible: false,
    }
}

/// The driver's own MMPT transfers (aborting transfers left open, at probe): no access check
/// and no taint (housekeeping of the function the driver owns, not a command from userspace).
/// Returns the Send Message and the Receive Message direction.
pub(crate) fn internal_messages() -> (Message, Message) {
    (
        Message {
            opcode: mmpt::SEND_MESSAGE,
            taint: None,
        },
        Message {
            opcode: mmpt::RECEIVE_MESSAGE,
            taint: None,
        },
    )
}

/// Refuses raw commands while the kernel is locked down against PCI access: no raw command,
/// whichever path (the device node or fwctl), reaches the device then. Logged once per device.
///
/// # Errors
///
/// EPERM when the kernel is locked down (`security_locked_down(LOCKDOWN_PCI_ACCESS)`).
fn check_lockdown(dev: &Target) -> Result {
    if sys::pci_access_locked_down() {
        if !dev.lockdown_logged.xchg(true, Relaxed) {
            dev_warn!(
                dev.pdev,
                "raw commands refused: the kernel is locked down\n"
            );
        }
        return Err(EPERM);
    }
    Ok(())
}

/// Refuses the commands `dev` is known to mishandle ([`Quirks`]).
///
/// # Errors
///
/// EOPNOTSUPP for Get/Set Timestamp (0300h/0301h) of opcode vendor 0000h on a device with
/// [`Quirks::no_timestamp`].
fn check_quirks(dev: &Target, opcode_vendor: u16, opcode: u16) -> Result {
    if opcode_vendor == 0
        && dev.quirks.no_timestamp
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

/// Taints the kernel, logging `what` the first time for this device.
fn taint(dev: &Target, what: core::fmt::Arguments<'_>) {
    if !dev.taint_logged.xchg(true, Relaxed) {
        let comm = sys::current_comm();
        let pid = kernel::current!().pid();
        dev_warn!(
            dev.pdev,
            "{what}; sent by {}[{pid}]: tainting kernel\n",
            sys::comm_str(&comm)
        );
    }
    sys::taint_user();
}

/// Why a raw command taints.
#[derive(Clone, Copy)]
pub(crate) enum Why {
    /// What [`effects::classify`] found.
    Effects(effects::Reason),
    /// `strict_taint=1`.
    Strict,
}

impl core::fmt::Display for Why {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Effects(r) => core::fmt::Display::fmt(r, f),
            Self::Strict => f.write_str("strict_taint=1"),
        }
    }
}

/// The name of a CXL opcode for messages.
fn name(opcode: u16) -> &'static str {
    opcode::name(opcode).unwrap_or("unknown")
}

/// A decision to taint, applied with [`Taint::apply`] right before the command reaches the
/// device.
#[derive(Clone, Copy)]
pub(crate) enum Taint {
    /// A CXL command (opcode vendor 0000h), possibly carrying a tunnelled one.
    Command {
        opcode: u16,
        /// The innermost tunnelled opcode, if the command is a tunnel.
        tunnelled: Option<u16>,
        why: Why,
    },
    /// An MMB command of another opcode vendor.
    Mmb { opcode: u16, vendor: u16 },
    /// An MMPT management message.
    Message { msg_type: u8 },
    /// The driver's Request Abort Background Operation of a caller's background command `of`.
    Abort { of: u16 },
}

impl Taint {
    /// Taints the kernel; the first time for `dev`, logs which command from which process.
    /// Does not sleep (runs with the BAR mapping held).
    pub(crate) fn apply(&self, dev: &Target) {
        match *self {
            Self::Command {
                opcode,
                tunnelled: Some(inner),
                why,
            } => taint(
                dev,
                format_args!(
                    "raw command {opcode:04x}h ({}, tunnelled {inner:04x}h {}): {why}",
                    name(opcode),
                    name(inner)
                ),
            ),
            Self::Command {
                opcode,
                tunnelled: None,
                why,
            } => taint(
                dev,
                format_args!("raw command {opcode:04x}h ({}): {why}", name(opcode)),
            ),
            Self::Mmb { opcode, vendor } => taint(
                dev,
                format_args!(
                    "raw MMB command {opcode:04x}h of vendor {vendor:04x}h: may change state"
                ),
            ),
            Self::Message { msg_type } => taint(
                dev,
                format_args!("MMPT message of type {msg_type:02x}h: content not understood"),
            ),
            Self::Abort { of } => taint(
                dev,
                format_args!(
                    "Request Abort Background Operation (0005h) of raw command {of:04x}h ({}): changes state",
                    name(of)
                ),
            ),
        }
    }
}

/// The taint of a CXL command judged `j`, or with `strict_taint=1` of every command.
fn taint_of(j: &effects::Judgement) -> Option<Taint> {
    let strict = crate::module_parameters::strict_taint.value();
    if !(strict || j.effectful) {
        return None;
    }
    let why = if j.effectful {
        Why::Effects(j.reason)
    } else {
        Why::Strict
    };
    // A command judged inside a tunnel was sent as a Tunnel Management Command.
    Some(if j.depth > 0 {
        Taint::Command {
            opcode: opcode::TUNNEL,
            tunnelled: Some(j.opcode),
            why,
        }
    } else {
        Taint::Command {
            opcode: j.opcode,
            tunnelled: None,
            why,
        }
    })
}

/// Decides whether raw command `opcode` of opcode vendor `vendor` with `input` taints on
/// `dev`: CXL commands (vendor 0000h) by the effects half of [`effects::judge`]
/// ([`effects::classify`]) with the device's CEL; an MMB command of another vendor by
/// [`effects::mmb_effectful`] (of the PCI-SIG commands only Receive Message reads, and only on
/// a function that has MMPT registers). With `strict_taint=1` every command taints.
fn judge(dev: &Target, vendor: u16, opcode: u16, input: &[u8]) -> Option<Taint> {
    if vendor == 0 {
        // The effects half of `effects::judge` (the same rule): the node has no scope to check,
        // so the scope half, which walks the CEL again, is not computed.
        let cel = Cel::new(&dev.info().cel);
        return taint_of(&effects::classify(opcode, input, Some(&cel)));
    }
    let strict = crate::module_parameters::strict_taint.value();
    if !strict && !effects::mmb_effectful(vendor, opcode, dev.mmpt) {
        return None;
    }
    Some(Taint::Mmb { opcode, vendor })
}
