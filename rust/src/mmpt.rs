// SPDX-License-Identifier: GPL-2.0

//! PCIe Management Message Passthrough (MMPT) over an MMB: message headers, multi-part
//! transfers, and the PCI-SIG return codes.
//!
//! PROVISIONAL. The MMPT ECN (PCIe 6.3 §6.36) names its return codes and message types but the
//! numeric values could not be confirmed from any readable source. The values here are this
//! project's choice, kept in this one table-driven place so they can be corrected; the device
//! emulator implements the same table (Documentation/mmpt.rst).
//!
//! Commands (MMB opcode vendor id 0001h):
//! - Send Message (0100h): a 16-byte [`MsgHeader`] (type, action, offset) then data. A message
//!   longer than one payload goes in parts at ascending offsets: initiate, continue..., finish.
//!   The output is empty, or a complete response message (16-byte header then data) when the
//!   function answers inline.
//! - Receive Message (0101h): a 16-byte [`MsgHeader`] (type, action, offset, length to read);
//!   the output is the data. Reading with action [`Action::Full`] or [`Action::Finish`]
//!   dequeues the message. The function announces a waiting message in the MMPT Receive
//!   Message Notification register (type and length) and with the receive interrupt.

use crate::mailbox::{IoError, Mapping, RegIo};
use crate::regs::MmptRxNotify;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Opcode vendor id of PCI-SIG MMB commands: the PCI-SIG vendor id, defined once in
/// [`crate::regs`].
pub use crate::regs::VENDOR_PCI_SIG;
/// Send Message.
pub const SEND_MESSAGE: u16 = 0x0100;
/// Receive Message.
pub const RECEIVE_MESSAGE: u16 = 0x0101;
/// Size of the Send/Receive Message header.
pub const HEADER_LEN: usize = 16;
/// Largest message the driver transfers (the multi-part transfer can carry more; this bounds
/// the kernel's buffer).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Reads the Receive Message Notification register of the MMPT registers at `base` (a BAR
/// offset). A register that reads all ones means the function is gone ([`IoError::Gone`]), not
/// a waiting message of 4 GiB.
pub fn rx_notify<M: Mapping>(io: &M, base: usize) -> Result<MmptRxNotify, IoError> {
    let v = io.with(|r| r.read64(MmptRxNotify::at(base)))??;
    if v == u64::MAX {
        return Err(IoError::Gone);
    }
    Ok(MmptRxNotify(v))
}

/// Transfer action (flags bits 2:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The whole message in one command.
    Full,
    /// First part.
    Initiate,
    /// A middle part.
    Continue,
    /// Last part.
    Finish,
    /// Abandon the transfer in progress.
    Abort,
}

impl Action {
    /// The raw value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Full => 0,
            Self::Initiate => 1,
            Self::Continue => 2,
            Self::Finish => 3,
            Self::Abort => 4,
        }
    }

    /// Decodes bits 2:0 of the flags.
    pub const fn from_flags(flags: u32) -> Option<Self> {
        match flags & 7 {
            0 => Some(Self::Full),
            1 => Some(Self::Initiate),
            2 => Some(Self::Continue),
            3 => Some(Self::Finish),
            4 => Some(Self::Abort),
            _ => None,
        }
    }
}

/// The 16-byte header of Send Message and Receive Message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHeader {
    /// Management message type.
    pub msg_type: u8,
    /// Transfer action.
    pub action: Action,
    /// Offset of this part within the message.
    pub offset: u32,
    /// Receive: bytes to read; Send: 0.
    pub length: u32,
}

impl MsgHeader {
    /// Encodes the header.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.msg_type)?;
        w.zeros(3)?;
        w.u32(self.action.raw())?;
        w.u32(self.offset)?;
        w.u32(self.length)
    }

    /// Decodes a header from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let msg_type = r.u8("message_type")?;
        r.skip("reserved", 3)?;
        let flags = r.u32("flags")?;
        let action = Action::from_flags(flags).ok_or(DecodeError::Invalid {
            field: "flags",
            value: u64::from(flags),
        })?;
        Ok(Self {
            msg_type,
            action,
            offset: r.u32("offset")?,
            length: r.u32("length")?,
        })
    }
}

/// One command of a multi-part transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Action of this part.
    pub action: Action,
    /// Offset within the message.
    pub offset: usize,
    /// Bytes in this part.
    pub len: usize,
}

/// Splits a message of `total` bytes into parts of at most `chunk` data bytes: one
/// [`Action::Full`] part when it fits, else initiate, continue..., finish. A zero `chunk`
/// yields nothing.
pub fn parts(total: usize, chunk: usize) -> impl Iterator<Item = Part> {
    let n = if chunk == 0 {
        0
    } else {
        total.div_ceil(chunk).max(1)
    };
    (0..n).map(move |i| {
        let offset = i.saturating_mul(chunk);
        let len = total.saturating_sub(offset).min(chunk);
        let action = match (n, i) {
            (1, _) => Action::Full,
            (_, 0) => Action::Initiate,
            (_, i) if i.saturating_add(1) == n => Action::Finish,
            _ => Action::Continue,
        };
        Part {
            action,
            offset,
            len,
        }
    })
}

/// Data bytes a Send Message part can carry with a payload of `payload_size` bytes.
pub const fn send_chunk(payload_size: usize) -> usize {
    payload_size.saturating_sub(HEADER_LEN)
}

/// Encodes a Send Message input for `part` of a message of type `msg_type`.
pub fn send_input(
    out: &mut [u8],
    msg_type: u8,
    part: &Part,
    data: &[u8],
) -> Result<usize, EncodeError> {
    let offset = u32::try_from(part.offset).map_err(|_| EncodeError::Invalid { what: "offset" })?;
    let mut w = Writer::new(out);
    MsgHeader {
        msg_type,
        action: part.action,
        offset,
        length: 0,
    }
    .encode(&mut w)?;
    w.bytes(data)?;
    Ok(w.len())
}

/// Encodes a Receive Message input for `part`.
pub fn receive_input(msg_type: u8, part: &Part) -> Result<[u8; HEADER_LEN], EncodeError> {
    let mut b = [0u8; HEADER_LEN];
    let mut w = Writer::new(&mut b);
    MsgHeader {
        msg_type,
        action: part.action,
        offset: u32::try_from(part.offset).map_err(|_| EncodeError::Invalid { what: "offset" })?,
        length: u32::try_from(part.len).map_err(|_| EncodeError::Invalid { what: "length" })?,
    }
    .encode(&mut w)?;
    Ok(b)
}

macro_rules! mmpt_codes {
    ($($v:literal $variant:ident $name:literal;)*) => {
        /// PCI-SIG MMB/MMPT return codes (PROVISIONAL values, see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum MmptCode {
            $(
                #[doc = $name]
                $variant,
            )*
            /// A value this table does not define.
            Unknown(u16),
        }

        impl MmptCode {
            /// Decodes a raw return code of a PCI-SIG command.
            pub const fn from_raw(v: u16) -> Self {
                match v {
                    $($v => Self::$variant,)*
                    v => Self::Unknown(v),
                }
            }

            /// The raw value.
            pub const fn raw(self) -> u16 {
                match self {
                    $(Self::$variant => $v,)*
                    Self::Unknown(v) => v,
                }
            }

            /// The name.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$variant => Some($name),)*
                    Self::Unknown(_) => None,
                }
            }
        }
    };
}

mmpt_codes! {
    0x0000 Success "success";
    0x0002 InvalidInput "invalid input";
    0x0003 Unsupported "unsupported";
    0x0004 InternalError "internal error";
    0x0005 RetryRequired "retry required";
    0x0016 InvalidPayloadLength "invalid payload length";
    0x0021 UnsupportedMessage "unsupported management message";
    0x0022 TransferOutOfOrder "transfer out of order";
    0x0023 TransferInProgress "transfer in progress";
    0x0024 TransferAborted "transfer aborted";
    0x0025 NoMessage "no message waiting";
}

impl fmt::Display for MmptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:04x}h)", self.raw()),
            None => write!(f, "unknown MMPT return code ({:04x}h)", self.raw()),
        }
    }
}

/// Management message types (PROVISIONAL values).
pub mod msg_type {
    /// MCTP.
    pub const MCTP: u8 = 0x01;
    /// PLDM.
    pub const PLDM: u8 = 0x02;
    /// NVMe-MI.
    pub const NVME_MI: u8 = 0x03;
    /// SPDM.
    pub const SPDM: u8 = 0x04;
    /// Vendor defined.
    pub const VENDOR: u8 = 0x7f;
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn header_round_trip() {
        let h = MsgHeader {
            msg_type: msg_type::PLDM,
            action: Action::Continue,
            offset: 0x1230,
            length: 0,
        };
        let mut b = [0u8; HEADER_LEN];
        h.encode(&mut Writer::new(&mut b)).unwrap();
        assert_eq!(b, [2, 0, 0, 0, 2, 0, 0, 0, 0x30, 0x12, 0, 0, 0, 0, 0, 0]);
        assert_eq!(MsgHeader::decode(&b), Ok(h));
        b[4] = 7;
        assert!(matches!(
            MsgHeader::decode(&b),
            Err(DecodeError::Invalid { field: "flags", .. })
        ));
        assert!(MsgHeader::decode(&b[..15]).is_err());
    }

    #[test]
    fn splitting() {
        let p: Vec<Part> = parts(1, 2032).collect();
        assert_eq!(
            p,
            [Part {
                action: Action::Full,
                offset: 0,
                len: 1
            }]
        );
        let p: Vec<Part> = parts(2032, 2032).collect();
        assert_eq!(
            p,
            [Part {
                action: Action::Full,
                offset: 0,
                len: 2032
            }]
        );
        let p: Vec<Part> = parts(5000, 2032).collect();
        assert_eq!(
            p,
            [
                Part {
                    action: Action::Initiate,
                    offset: 0,
                    len: 2032
                },
                Part {
                    action: Action::Continue,
                    offset: 2032,
                    len: 2032
                },
                Part {
                    action: Action::Finish,
                    offset: 4064,
                    len: 936
                },
            ]
        );
        let p: Vec<Part> = parts(4064, 2032).collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].action, Action::Finish);
        // An empty message is one empty full part; a zero chunk gives nothing.
        assert_eq!(parts(0, 16).count(), 1);
        assert_eq!(parts(10, 0).count(), 0);
        assert_eq!(send_chunk(2048), 2032);
    }

    #[test]
    fn rx_notify_all_ones_is_gone() {
        use crate::sim::SimDevice;
        let dev = SimDevice::ok();
        // Nothing is mapped at 0x200 in the simulated BAR: it reads zero, no message.
        assert_eq!(rx_notify(&dev, 0x200).map(|n| n.ready()), Ok(false));
        dev.with(|s| s.removed_after = Some(0));
        assert_eq!(rx_notify(&dev, 0x200), Err(IoError::Gone));
    }

    #[test]
    fn inputs() {
        let mut b = [0u8; 32];
        let part = Part {
            action: Action::Full,
            offset: 0,
            len: 3,
        };
        assert_eq!(send_input(&mut b, 1, &part, &[7, 8, 9]), Ok(19));
        assert_eq!(&b[16..19], &[7, 8, 9]);
        let r = receive_input(
            1,
            &Part {
                action: Action::Finish,
                offset: 2032,
                len: 100,
            },
        )
        .unwrap();
        assert_eq!(MsgHeader::decode(&r).unwrap().length, 100);
        assert_eq!(MmptCode::from_raw(0x22), MmptCode::TransferOutOfOrder);
        assert_eq!(MmptCode::from_raw(0x99), MmptCode::Unknown(0x99));
    }
}
