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
    proto::{effects, mmpt, opcode, payload::logs::Cel, rc::Errno},
    sys,
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

/// Checks that the caller may send raw command `opcode` (of `opcode_vendor`) to `dev`.
pub(crate) fn check_raw(dev: &Swcci, opcode_vendor: u16, opcode: u16) -> Result {
    check_lockdown(dev)?;
    if !sys::capable_rawio() {
        dev_dbg!(
            dev.pdev,
            "raw command {opcode:04x}h refused: {} lacks CAP_SYS_RAWIO\n",
            sys::comm_str(&sys::current_comm())
        );
        return Err(EPERM);
    }
    check_quirks(dev, opcode_vendor, opcode)
}

/// EPERM when the kernel is locked down against PCI access: no raw command, whichever path
/// (the device node or fwctl), reaches the device then. Logged once per device.
pub(crate) fn check_lockdown(dev: &Swcci) -> Result {
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
pub(crate) fn check_quirks(dev: &Swcci, opcode_vendor: u16, opcode: u16) -> Result {
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

/// Taints the kernel if raw command `opcode` of `opcode_vendor` with `input` may change state.
/// CXL commands (vendor 0000h) follow [`effects::classify`]; of the PCI-SIG commands only
/// Receive Message is read-only; any other vendor's commands always taint.
pub(crate) fn taint_for(dev: &Swcci, opcode_vendor: u16, opcode: u16, input: &[u8], cel: &[u8]) {
    let strict = crate::module_parameters::strict_taint.value();
    if opcode_vendor == 0 {
        let j = effects::classify(opcode, input, Some(&Cel::new(cel)));
        if !(strict || j.effectful) {
            return;
        }
        let why: &dyn core::fmt::Display = if j.effectful {
            &j.reason
        } else {
            &"strict_taint=1"
        };
        if j.depth > 0 {
            taint(
                dev,
                format_args!(
                    "raw command {opcode:04x}h (tunnelled {:04x}h): {why}",
                    j.opcode
                ),
            );
        } else {
            taint(dev, format_args!("raw command {opcode:04x}h: {why}"));
        }
        return;
    }
    if !strict && opcode_vendor == mmpt::VENDOR_PCI_SIG && opcode == mmpt::RECEIVE_MESSAGE {
        return;
    }
    taint(
        dev,
        format_args!(
            "raw MMB command {opcode:04x}h of vendor {opcode_vendor:04x}h: may change state"
        ),
    );
}

/// Taints the kernel for a management message: its content is opaque to the driver.
pub(crate) fn taint_message(dev: &Swcci, msg_type: u8) {
    taint(
        dev,
        format_args!("MMPT message of type {msg_type:02x}h: content not understood"),
    );
}
