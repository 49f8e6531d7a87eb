// SPDX-License-Identifier: GPL-2.0

//! Error conversions between the protocol core and the kernel, in one place, so that `?` works
//! across the driver's layers (as drivers/android/binder/error.rs does for binder): the choice
//! of errno for each situation is made once, in the protocol core ([`Errno`],
//! [`MboxError::errno`]); here it becomes the kernel's.

use crate::proto::{
    mailbox::{
        IoError,
        MboxError, //
    },
    rc::Errno,
};
use kernel::prelude::*;

/// The kernel error for a protocol-core errno.
pub(crate) const fn errno(e: Errno) -> Error {
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
        Errno::RestartSys => ERESTARTSYS,
    }
}

impl From<MboxError> for Error {
    fn from(e: MboxError) -> Self {
        errno(e.errno())
    }
}

/// A register access that failed: the function is gone (ENXIO), or the driver asked for a
/// register outside its BAR (EIO, a driver bug).
impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        match e {
            IoError::Gone => ENXIO,
            IoError::Range => EIO,
        }
    }
}
