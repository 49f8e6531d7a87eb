// SPDX-License-Identifier: GPL-2.0

//! Firmware Update command set, CXL r3.1 §8.2.9.3: Get FW Info (0200h), Transfer FW (0201h) and
//! Activate FW (0202h). Layouts as drivers/cxl/cxlmem.h declares them (`struct
//! cxl_mbox_get_fw_info`, `cxl_mbox_transfer_fw`, `cxl_mbox_activate_fw`).
//!
//! Both directions of every payload are here (requests are encoded by the library and decoded
//! by the device emulator; responses the other way round), so that the two always agree.

use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Size of the Get FW Info output (0x50 bytes).
pub const FW_INFO_LEN: usize = 0x50;
/// Most firmware slots a device can have (slots are numbered 1..=4).
pub const MAX_SLOTS: u8 = 4;
/// Size of a slot's revision string field (ASCII, NUL-padded).
pub const REVISION_LEN: usize = 16;
/// Transfer FW offsets are in units of this many bytes.
pub const OFFSET_UNIT: usize = 128;
/// Size of the Transfer FW input header that precedes the data (0x80 bytes).
pub const TRANSFER_HEADER_LEN: usize = 0x80;
/// Size of the Activate FW input.
pub const ACTIVATE_LEN: usize = 2;

/// Get FW Info output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwInfo {
    /// Number of firmware slots the device supports (1..=4).
    pub slots_supported: u8,
    /// The active slot (1-based), 0 if the device reports none.
    pub active_slot: u8,
    /// The slot that becomes active on the next cold reset (1-based), 0 for none.
    pub staged_slot: u8,
    /// The device can activate firmware online (without a reset).
    pub online_activation: bool,
    /// Revision string of each slot (ASCII, NUL-padded; index 0 = slot 1).
    pub revisions: [[u8; REVISION_LEN]; MAX_SLOTS as usize],
}

impl FwInfo {
    /// Decodes the output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let slots_supported = r.u8("fw_slots_supported")?;
        let slot_info = r.u8("fw_slot_info")?;
        let caps = r.u8("fw_activation_capabilities")?;
        r.skip("reserved", 13)?;
        let mut revisions = [[0u8; REVISION_LEN]; MAX_SLOTS as usize];
        for (field, rev) in [
            "slot_1_revision",
            "slot_2_revision",
            "slot_3_revision",
            "slot_4_revision",
        ]
        .into_iter()
        .zip(revisions.iter_mut())
        {
            *rev = r.array(field)?;
        }
        Ok(Self {
            slots_supported,
            active_slot: slot_info & 0x7,
            staged_slot: (slot_info >> 3) & 0x7,
            online_activation: caps & 1 != 0,
            revisions,
        })
    }

    /// Encodes the output payload into `out`; returns its length ([`FW_INFO_LEN`]).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.active_slot > MAX_SLOTS || self.staged_slot > MAX_SLOTS {
            return Err(EncodeError::Invalid {
                what: "slot number",
            });
        }
        let mut w = Writer::new(out);
        w.u8(self.slots_supported)?;
        w.u8(self.active_slot | (self.staged_slot << 3))?;
        w.u8(u8::from(self.online_activation))?;
        w.zeros(13)?;
        for rev in &self.revisions {
            w.bytes(rev)?;
        }
        Ok(w.len())
    }

    /// The revision of `slot` (1-based) as text, up to its first NUL; `None` for a slot
    /// number out of range or a revision that is not ASCII.
    pub fn revision(&self, slot: u8) -> Option<&str> {
        let rev = self.revisions.get(usize::from(slot).checked_sub(1)?)?;
        let end = rev.iter().position(|&b| b == 0).unwrap_or(REVISION_LEN);
        let text = rev.get(..end)?;
        text.is_ascii()
            .then(|| core::str::from_utf8(text).ok())
            .flatten()
    }
}

/// Builds a revision field from text: at most [`REVISION_LEN`] bytes, NUL-padded.
pub fn revision_field(text: &str) -> [u8; REVISION_LEN] {
    let mut out = [0u8; REVISION_LEN];
    for (d, s) in out.iter_mut().zip(text.bytes()) {
        *d = s;
    }
    out
}

/// Transfer FW actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferAction {
    /// The whole image in one command (it must fit the payload).
    Full,
    /// The first part of a multi-part transfer.
    Initiate,
    /// A further part.
    Continue,
    /// The last part; the image is verified and stored in the slot.
    End,
    /// Abandon the transfer in progress.
    Abort,
}

impl TransferAction {
    /// The raw action code.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Full => 0,
            Self::Initiate => 1,
            Self::Continue => 2,
            Self::End => 3,
            Self::Abort => 4,
        }
    }

    /// The action for a raw code, if it is one.
    pub const fn from_raw(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Full,
            1 => Self::Initiate,
            2 => Self::Continue,
            3 => Self::End,
            4 => Self::Abort,
            _ => return None,
        })
    }

    /// Whether the slot field is meaningful for this action (Full and End).
    pub const fn names_slot(self) -> bool {
        matches!(self, Self::Full | Self::End)
    }
}

impl fmt::Display for TransferAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Initiate => "initiate",
            Self::Continue => "continue",
            Self::End => "end",
            Self::Abort => "abort",
        })
    }
}

/// A Transfer FW input: the header fields and the data that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer<'a> {
    /// What this part is.
    pub action: TransferAction,
    /// Target slot (1-based) for Full and End; 0 otherwise.
    pub slot: u8,
    /// Offset of `data` in the image, in [`OFFSET_UNIT`]-byte units.
    pub offset: u32,
    /// The image bytes of this part.
    pub data: &'a [u8],
}

impl<'a> Transfer<'a> {
    /// Encodes the input into `out`; returns its length ([`TRANSFER_HEADER_LEN`] + data).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.action.names_slot() && !(1..=MAX_SLOTS).contains(&self.slot) {
            return Err(EncodeError::Invalid {
                what: "slot number",
            });
        }
        let mut w = Writer::new(out);
        w.u8(self.action.raw())?;
        w.u8(self.slot)?;
        w.zeros(2)?;
        w.u32(self.offset)?;
        w.zeros(TRANSFER_HEADER_LEN.saturating_sub(8))?;
        w.bytes(self.data)?;
        Ok(w.len())
    }

    /// Decodes an input payload; an unknown action is [`DecodeError::Invalid`].
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let raw = r.u8("action")?;
        let action = TransferAction::from_raw(raw).ok_or(DecodeError::Invalid {
            field: "action",
            value: u64::from(raw),
        })?;
        let slot = r.u8("slot")?;
        r.skip("reserved", 2)?;
        let offset = r.u32("offset")?;
        r.skip("reserved", TRANSFER_HEADER_LEN.saturating_sub(8))?;
        Ok(Self {
            action,
            slot,
            offset,
            data: r.rest(),
        })
    }

    /// Byte offset of `data` in the image.
    pub const fn byte_offset(&self) -> u64 {
        // Cannot overflow: u32::MAX * 128 < 2^39.
        (self.offset as u64).saturating_mul(OFFSET_UNIT as u64)
    }
}

/// Largest Transfer FW data part for a mailbox of `payload_size` bytes, rounded down to whole
/// [`OFFSET_UNIT`]s (every part but the last must end on a unit boundary, so that the next
/// offset can be expressed). `overhead` is what wraps the input on the way (e.g. the tunnel
/// headers of each level: 4 + 12 bytes per level). 0 when nothing fits.
pub const fn max_part(payload_size: usize, overhead: usize) -> usize {
    let room = payload_size
        .saturating_sub(overhead)
        .saturating_sub(TRANSFER_HEADER_LEN);
    (room / OFFSET_UNIT).saturating_mul(OFFSET_UNIT)
}

/// Activate FW actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivateAction {
    /// Activate now, without a reset.
    Online,
    /// Activate on the next cold reset.
    OnReset,
}

impl ActivateAction {
    /// The raw action code.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Online => 0,
            Self::OnReset => 1,
        }
    }

    /// The action for a raw code, if it is one.
    pub const fn from_raw(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Online),
            1 => Some(Self::OnReset),
            _ => None,
        }
    }
}

impl fmt::Display for ActivateAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Online => "online",
            Self::OnReset => "on next cold reset",
        })
    }
}

/// Activate FW input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activate {
    /// When to activate.
    pub action: ActivateAction,
    /// The slot to activate (1-based).
    pub slot: u8,
}

impl Activate {
    /// Encodes the input ([`ACTIVATE_LEN`] bytes).
    pub const fn encode(&self) -> [u8; ACTIVATE_LEN] {
        [self.action.raw(), self.slot]
    }

    /// Decodes an input payload; an unknown action is [`DecodeError::Invalid`].
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let raw = r.u8("action")?;
        let action = ActivateAction::from_raw(raw).ok_or(DecodeError::Invalid {
            field: "action",
            value: u64::from(raw),
        })?;
        Ok(Self {
            action,
            slot: r.u8("slot")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> FwInfo {
        let mut revisions = [[0u8; REVISION_LEN]; 4];
        revisions[0] = revision_field("swcci-emu 1.0");
        revisions[2] = revision_field("0123456789abcdefXYZ");
        FwInfo {
            slots_supported: 3,
            active_slot: 1,
            staged_slot: 3,
            online_activation: true,
            revisions,
        }
    }

    #[test]
    fn fw_info_round_trip_and_layout() {
        let mut b = [0u8; 96];
        let n = info().encode(&mut b).unwrap();
        assert_eq!(n, FW_INFO_LEN);
        assert_eq!(&b[..3], &[3, 1 | (3 << 3), 1]);
        assert_eq!(&b[0x10..0x1d], b"swcci-emu 1.0");
        let d = FwInfo::decode(&b[..n]).unwrap();
        assert_eq!(d, info());
        assert_eq!(d.revision(1), Some("swcci-emu 1.0"));
        assert_eq!(d.revision(2), Some(""));
        assert_eq!(d.revision(3), Some("0123456789abcdef"));
        assert_eq!(d.revision(0), None);
        assert_eq!(d.revision(5), None);
        let mut bad = info();
        bad.revisions[1][0] = 0xff;
        assert_eq!(bad.revision(2), None);
        bad.staged_slot = 5;
        assert!(bad.encode(&mut b).is_err());
    }

    #[test]
    fn fw_info_truncation_names_the_field() {
        let mut b = [0u8; FW_INFO_LEN];
        info().encode(&mut b).unwrap();
        for len in 0..FW_INFO_LEN {
            assert!(FwInfo::decode(&b[..len]).is_err(), "{len}");
        }
        assert!(matches!(
            FwInfo::decode(&b[..0x30]),
            Err(DecodeError::Truncated {
                field: "slot_3_revision",
                ..
            })
        ));
    }

    #[test]
    fn transfer_round_trip_and_layout() {
        let data = [0xa5u8; 300];
        let t = Transfer {
            action: TransferAction::Continue,
            slot: 0,
            offset: 3,
            data: &data,
        };
        let mut b = [0u8; 512];
        let n = t.encode(&mut b).unwrap();
        assert_eq!(n, TRANSFER_HEADER_LEN + 300);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 3, 0, 0, 0]);
        assert!(b[8..TRANSFER_HEADER_LEN].iter().all(|&x| x == 0));
        let d = Transfer::decode(&b[..n]).unwrap();
        assert_eq!(d, t);
        assert_eq!(d.byte_offset(), 384);
        let end = Transfer {
            action: TransferAction::End,
            slot: 0,
            offset: 0,
            data: &[],
        };
        assert!(end.encode(&mut b).is_err(), "End needs a slot");
        b[0] = 9;
        assert!(matches!(
            Transfer::decode(&b[..n]),
            Err(DecodeError::Invalid {
                field: "action",
                value: 9
            })
        ));
        assert!(Transfer::decode(&b[..TRANSFER_HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn part_sizes() {
        assert_eq!(max_part(2048, 0), 1920);
        // One tunnel level: 16 bytes of headers cost a whole unit.
        assert_eq!(max_part(2048, 16), 1792);
        assert_eq!(max_part(256, 0), 128);
        assert_eq!(max_part(255, 0), 0);
        assert_eq!(max_part(1 << 20, 32), (1 << 20) - 256);
        assert_eq!(max_part(100, 200), 0);
    }

    #[test]
    fn activate_round_trip() {
        let a = Activate {
            action: ActivateAction::OnReset,
            slot: 2,
        };
        assert_eq!(a.encode(), [1, 2]);
        assert_eq!(Activate::decode(&a.encode()).unwrap(), a);
        assert!(Activate::decode(&[2, 1]).is_err());
        assert!(Activate::decode(&[0]).is_err());
    }
}
