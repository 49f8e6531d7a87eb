// SPDX-License-Identifier: GPL-2.0

//! Access control and taint for raw commands (Documentation/access-control.rst).
//!
//! A raw command is allowed when the kernel is not locked down against PCI access
//! (`lockdown=integrity` refuses it with EPERM and one warning per device) and the caller has
//! `CAP_SYS_RAWIO` (else EPERM): [`check_raw`], whose [`Permit`] the raw command paths of the
//! device require. A command that may change device or fabric state ([`effects::classify`]),
//! or every command with `strict_taint=1`, taints the kernel with TAINT_USER ('U'): [`judge`]
//! decides, and the [`Taint`] is applied right before the command is written to the device, so
//! a command that fails any check before (an unbound or dead device, a busy doorbell) does not
//! taint. The first tainting command per device is logged with its name and the process that
//! sent it.

use crate::{
    device::Swcci,
    proto::{
        effects,
        mmpt,
        opcode,
        payload::logs::Cel,
        rc::Errno, //
    },
    sys,
};
use kernel::{
    prelude::*,
    sync::atomic::Relaxed, //
};

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

/// Proof that the access policy allowed a raw command ([`check_raw`]): the device's raw command
/// paths take one.
#[derive(Clone, Copy)]
pub(crate) struct Permit(());

/// Checks that the caller may send raw command `opcode` (of `opcode_vendor`) to `dev` through
/// its device node: not locked down, `CAP_SYS_RAWIO`, no quirk against it.
pub(crate) fn check_raw(dev: &Swcci, opcode_vendor: u16, opcode: u16) -> Result<Permit> {
    check_lockdown(dev)?;
    if !sys::capable_rawio() {
        dev_dbg!(
            dev.pdev,
            "raw command {opcode:04x}h refused: {} lacks CAP_SYS_RAWIO\n",
            sys::comm_str(&sys::current_comm())
        );
        return Err(EPERM);
    }
    check_quirks(dev, opcode_vendor, opcode)?;
    Ok(Permit(()))
}

/// Checks that a fwctl RPC may send `opcode` to `dev`: not locked down, no quirk against it.
/// The caller's scope is checked by the fwctl driver ([`crate::fwctl`]) and `CAP_SYS_RAWIO`
/// for the full-write scope by the fwctl core (drivers/fwctl/main.c).
#[cfg(CONFIG_RUST_FWCTL_ABSTRACTIONS)]
pub(crate) fn check_fwctl(dev: &Swcci, opcode: u16) -> Result<Permit> {
    check_lockdown(dev)?;
    check_quirks(dev, 0, opcode)?;
    Ok(Permit(()))
}

/// EPERM when the kernel is locked down against PCI access: no raw command, whichever path
/// (the device node or fwctl), reaches the device then. Logged once per device.
fn check_lockdown(dev: &Swcci) -> Result {
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

/// EOPNOTSUPP for commands `dev` is known to mishandle ([`crate::device::Quirks`]).
fn check_quirks(dev: &Swcci, opcode_vendor: u16, opcode: u16) -> Result {
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
fn taint(dev: &Swcci, what: core::fmt::Arguments<'_>) {
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

/// The name of a CXL opcode for messages, `-` if unknown.
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
}

impl Taint {
    /// Taints the kernel; the first time for `dev`, logs which command from which process.
    /// Does not sleep (runs with the BAR mapping held).
    pub(crate) fn apply(&self, dev: &Swcci) {
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
        }
    }
}

/// Decides whether raw command `opcode` of `opcode_vendor` with `input` taints: CXL commands
/// (vendor 0000h) follow [`effects::classify`] with the device's CEL; of the PCI-SIG commands
/// only Receive Message is read-only; any other vendor's commands always taint. With
/// `strict_taint=1` every command taints.
pub(crate) fn judge(dev: &Swcci, opcode_vendor: u16, opcode: u16, input: &[u8]) -> Option<Taint> {
    let strict = crate::module_parameters::strict_taint.value();
    if opcode_vendor == 0 {
        let j = effects::classify(opcode, input, Some(&Cel::new(&dev.info().cel)));
        if !(strict || j.effectful) {
            return None;
        }
        return Some(Taint::Command {
            opcode,
            tunnelled: (j.depth > 0).then_some(j.opcode),
            why: if j.effectful {
                Why::Effects(j.reason)
            } else {
                Why::Strict
            },
        });
    }
    if !strict && opcode_vendor == mmpt::VENDOR_PCI_SIG && opcode == mmpt::RECEIVE_MESSAGE {
        return None;
    }
    Some(Taint::Mmb {
        opcode,
        vendor: opcode_vendor,
    })
}
