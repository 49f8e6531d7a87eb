// SPDX-License-Identifier: GPL-2.0

//! Mailbox return codes (CXL r3.1 §8.2.8.4.5.1) and the error numbers they map to.
//!
//! A device can return any 16-bit value. Values the specification does not define are kept as
//! [`ReturnCode::Unknown`]; nothing indexes a table with the device's value.

use core::fmt;

/// Error numbers, by name. The kernel and userspace map these to their own `E*` constants, so
/// that the choice of errno for each situation is made here, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// EPERM: operation not permitted.
    Perm,
    /// EINTR: interrupted by a signal.
    Intr,
    /// EIO: the device misbehaved.
    Io,
    /// ENXIO: the device is gone or failed.
    Nxio,
    /// EAGAIN: try again.
    Again,
    /// ENOMEM: out of memory.
    NoMem,
    /// EFAULT: bad address.
    Fault,
    /// EBUSY: the device or resource is busy.
    Busy,
    /// ENODEV: no such device (or the device lacks the needed capability).
    NoDev,
    /// EINVAL: invalid argument.
    Inval,
    /// ENOTTY: inappropriate ioctl.
    NoTty,
    /// ENOSPC: no space (resources exhausted).
    NoSpc,
    /// EMSGSIZE: message too long.
    MsgSize,
    /// EOPNOTSUPP: operation not supported.
    OpNotSupp,
    /// ETIMEDOUT: timed out.
    TimedOut,
    /// ECANCELED: operation canceled.
    Canceled,
    /// EPROTO: protocol error (malformed response).
    Proto,
    /// ENODATA: no data available.
    NoData,
    /// ERESTARTSYS (kernel-internal, never seen by userspace): a wait ended by a signal that
    /// does not kill the caller; the system call is restarted after the signal is handled, or
    /// fails with EINTR when the handler was installed without SA_RESTART.
    RestartSys,
}

macro_rules! return_codes {
    ($($value:literal $variant:ident $name:literal $errno:ident;)*) => {
        /// A mailbox return code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ReturnCode {
            $(
                #[doc = $name]
                $variant,
            )*
            /// A value the specification does not define.
            Unknown(u16),
        }

        impl ReturnCode {
            /// Decodes a raw return code.
            pub const fn from_raw(raw: u16) -> Self {
                match raw {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }

            /// The raw value.
            pub const fn raw(self) -> u16 {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Unknown(v) => v,
                }
            }

            /// The specification's name, or `None` for an unknown value.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$variant => Some($name),)*
                    Self::Unknown(_) => None,
                }
            }

            /// The errno a caller gets when a command that the kernel itself issues fails with
            /// this code. [`ReturnCode::Success`] and [`ReturnCode::BackgroundStarted`] map to
            /// `None`: they are not failures.
            pub const fn errno(self) -> Option<Errno> {
                if matches!(self, Self::Success | Self::BackgroundStarted) {
                    return None;
                }
                Some(match self {
                    $(Self::$variant => Errno::$errno,)*
                    Self::Unknown(_) => Errno::Io,
                })
            }
        }
    };
}

return_codes! {
    0x00 Success "success" Io;
    0x01 BackgroundStarted "background command started" Io;
    0x02 InvalidInput "invalid input" Inval;
    0x03 Unsupported "unsupported" OpNotSupp;
    0x04 InternalError "internal error" Io;
    0x05 RetryRequired "retry required" Again;
    0x06 Busy "busy" Busy;
    0x07 MediaDisabled "media disabled" Nxio;
    0x08 FwTransferInProgress "FW transfer in progress" Busy;
    0x09 FwTransferOutOfOrder "FW transfer out of order" Inval;
    0x0a FwVerificationFailed "FW verification failed" Io;
    0x0b InvalidSlot "invalid slot" Inval;
    0x0c ActivationFailedRolledBack "activation failed, FW rolled back" Io;
    0x0d ColdResetRequired "activation failed, cold reset required" Io;
    0x0e InvalidHandle "invalid handle" Inval;
    0x0f InvalidPhysicalAddress "invalid physical address" Inval;
    0x10 InjectPoisonLimit "inject poison limit reached" NoSpc;
    0x11 PermanentMediaFailure "permanent media failure" Io;
    0x12 Aborted "aborted" Canceled;
    0x13 InvalidSecurityState "invalid security state" Perm;
    0x14 IncorrectPassphrase "incorrect passphrase" Perm;
    0x15 UnsupportedMailbox "unsupported mailbox or CCI" OpNotSupp;
    0x16 InvalidPayloadLength "invalid payload length" Inval;
    0x17 InvalidLog "invalid log" Inval;
    0x18 Interrupted "interrupted" Intr;
    0x19 UnsupportedFeatureVersion "unsupported feature version" OpNotSupp;
    0x1a UnsupportedFeatureSelection "unsupported feature selection value" OpNotSupp;
    0x1b FeatureTransferInProgress "feature transfer in progress" Busy;
    0x1c FeatureTransferOutOfOrder "feature transfer out of order" Inval;
    0x1d ResourcesExhausted "resources exhausted" NoSpc;
    0x1e InvalidExtentList "invalid extent list" Inval;
    0x1f TransferOutOfOrder "transfer out of order" Inval;
    0x20 AbortNotSupported "request abort not supported" OpNotSupp;
}

impl ReturnCode {
    /// Whether the command succeeded.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }
}

impl From<u16> for ReturnCode {
    fn from(raw: u16) -> Self {
        Self::from_raw(raw)
    }
}

/// Prints `invalid input (02h)` or `unknown return code (1234h)`.
impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({:02x}h)", name, self.raw()),
            None => write!(f, "unknown return code ({:02x}h)", self.raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn every_defined_code_round_trips() {
        for raw in 0..=0x20u16 {
            let rc = ReturnCode::from_raw(raw);
            assert!(
                !matches!(rc, ReturnCode::Unknown(_)),
                "{raw:#x} should be known"
            );
            assert_eq!(rc.raw(), raw);
            assert!(rc.name().is_some());
        }
    }

    #[test]
    fn unknown_values_are_explicit() {
        for raw in [0x21u16, 0x7fff, 0xffff] {
            let rc = ReturnCode::from_raw(raw);
            assert_eq!(rc, ReturnCode::Unknown(raw));
            assert_eq!(rc.raw(), raw);
            assert_eq!(rc.errno(), Some(Errno::Io));
        }
        assert_eq!(
            format!("{}", ReturnCode::from_raw(0x1234)),
            "unknown return code (1234h)"
        );
    }

    #[test]
    fn display_and_errno() {
        assert_eq!(
            format!("{}", ReturnCode::InvalidInput),
            "invalid input (02h)"
        );
        assert_eq!(ReturnCode::Success.errno(), None);
        assert_eq!(ReturnCode::BackgroundStarted.errno(), None);
        assert_eq!(ReturnCode::Busy.errno(), Some(Errno::Busy));
        assert_eq!(ReturnCode::Unsupported.errno(), Some(Errno::OpNotSupp));
        assert_eq!(ReturnCode::Aborted.errno(), Some(Errno::Canceled));
    }
}
