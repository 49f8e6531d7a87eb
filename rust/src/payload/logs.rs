// SPDX-License-Identifier: GPL-2.0

//! Get Supported Logs (0400h), Get Log (0401h) and the Command Effects Log (CEL),
//! CXL r3.1 §8.2.9.5.

use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// A 16-byte UUID in the byte order it has in payloads (big-endian fields).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Builds a UUID from its textual fields.
    pub const fn from_fields(a: u32, b: u16, c: u16, d: [u8; 8]) -> Self {
        let a = a.to_be_bytes();
        let b = b.to_be_bytes();
        let c = c.to_be_bytes();
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ])
    }
}

/// Prints the canonical `8-4-4-4-12` form.
impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Command Effects Log: 0da9c0b5-bf41-4b78-8f79-96b1623b3f17.
pub const CEL_UUID: Uuid = Uuid::from_fields(
    0x0da9_c0b5,
    0xbf41,
    0x4b78,
    [0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17],
);
/// Vendor Debug Log: 5e1819d9-11a9-400c-811f-d60719403d86.
pub const VENDOR_DEBUG_UUID: Uuid = Uuid::from_fields(
    0x5e18_19d9,
    0x11a9,
    0x400c,
    [0x81, 0x1f, 0xd6, 0x07, 0x19, 0x40, 0x3d, 0x86],
);
/// Component State Dump Log: b3fab4cf-01b6-4332-943e-5e9962f23567.
pub const COMPONENT_STATE_DUMP_UUID: Uuid = Uuid::from_fields(
    0xb3fa_b4cf,
    0x01b6,
    0x4332,
    [0x94, 0x3e, 0x5e, 0x99, 0x62, 0xf2, 0x35, 0x67],
);

/// The name of a well-known log.
pub fn log_name(uuid: &Uuid) -> Option<&'static str> {
    match *uuid {
        CEL_UUID => Some("Command Effects Log"),
        VENDOR_DEBUG_UUID => Some("Vendor Debug Log"),
        COMPONENT_STATE_DUMP_UUID => Some("Component State Dump Log"),
        _ => None,
    }
}

/// Size of the Get Supported Logs output header.
pub const SUPPORTED_LOGS_HEADER: usize = 8;
/// Size of one Get Supported Logs entry.
pub const SUPPORTED_LOG_ENTRY: usize = 20;
/// Size of the Get Log input payload.
pub const GET_LOG_INPUT_LEN: usize = 0x18;

/// One supported log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedLog {
    /// The log's UUID.
    pub uuid: Uuid,
    /// Its size in bytes.
    pub size: u32,
}

/// Get Supported Logs output.
#[derive(Clone, Copy, Debug)]
pub struct SupportedLogs<'a> {
    count: u16,
    entries: &'a [u8],
}

impl<'a> SupportedLogs<'a> {
    /// Decodes the output payload; every entry the header announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let count = r.u16("entries")?;
        r.skip("reserved", 6)?;
        let entries = r.bytes(
            "supported log entries",
            usize::from(count).saturating_mul(SUPPORTED_LOG_ENTRY),
        )?;
        Ok(Self { count, entries })
    }

    /// Number of entries.
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = SupportedLog> + 'a {
        self.entries
            .chunks_exact(SUPPORTED_LOG_ENTRY)
            .filter_map(|e| {
                let mut r = Reader::new(e);
                Some(SupportedLog {
                    uuid: Uuid(r.array("uuid").ok()?),
                    size: r.u32("size").ok()?,
                })
            })
    }

    /// The size of the log with `uuid`.
    pub fn find(&self, uuid: &Uuid) -> Option<u32> {
        self.iter().find(|l| l.uuid == *uuid).map(|l| l.size)
    }
}

/// Encodes a Get Supported Logs output listing `logs`; returns its length.
pub fn encode_supported_logs(out: &mut [u8], logs: &[SupportedLog]) -> Result<usize, EncodeError> {
    let n = u16::try_from(logs.len()).map_err(|_| EncodeError::Invalid {
        what: "number of logs",
    })?;
    let mut w = Writer::new(out);
    w.u16(n)?;
    w.zeros(6)?;
    for l in logs {
        w.bytes(&l.uuid.0)?;
        w.u32(l.size)?;
    }
    Ok(w.len())
}

/// Encodes the Get Log input: `uuid`, `offset`, `length`.
pub fn get_log_input(uuid: &Uuid, offset: u32, length: u32) -> [u8; GET_LOG_INPUT_LEN] {
    let mut b = [0u8; GET_LOG_INPUT_LEN];
    let (u, rest) = b.split_at_mut(16);
    u.copy_from_slice(&uuid.0);
    let (o, l) = rest.split_at_mut(4);
    o.copy_from_slice(&offset.to_le_bytes());
    l.copy_from_slice(&length.to_le_bytes());
    b
}

/// CEL effect bits (CXL r3.1 Table 8-75). QEMU numbers bits 7 and above one higher than the
/// specification (it inserts a "background operation abort" bit 7); only bits 0-6 and 10-11
/// decide whether a command has effects, and QEMU sets none of its extra bits for the switch
/// command set.
pub mod effect {
    /// Configuration change after cold reset.
    pub const CONFIG_CHANGE_COLD_RESET: u16 = 1 << 0;
    /// Immediate configuration change.
    pub const CONFIG_CHANGE_IMMEDIATE: u16 = 1 << 1;
    /// Immediate data change.
    pub const DATA_CHANGE_IMMEDIATE: u16 = 1 << 2;
    /// Immediate policy change.
    pub const POLICY_CHANGE_IMMEDIATE: u16 = 1 << 3;
    /// Immediate log change.
    pub const LOG_CHANGE_IMMEDIATE: u16 = 1 << 4;
    /// Security state change.
    pub const SECURITY_STATE_CHANGE: u16 = 1 << 5;
    /// Background operation.
    pub const BACKGROUND_OP: u16 = 1 << 6;
    /// Secondary mailbox supported.
    pub const SECONDARY_MAILBOX: u16 = 1 << 7;
    /// Request Abort Background Operation supported.
    pub const BACKGROUND_ABORT: u16 = 1 << 8;
    /// Bits 11:10 are valid.
    pub const BITS_10_11_VALID: u16 = 1 << 9;
    /// Configuration change after conventional reset.
    pub const CONFIG_CHANGE_CONV_RESET: u16 = 1 << 10;
    /// Configuration change after CXL reset.
    pub const CONFIG_CHANGE_CXL_RESET: u16 = 1 << 11;

    /// Every bit that means "this command changes something".
    pub const ANY_CHANGE: u16 = CONFIG_CHANGE_COLD_RESET
        | CONFIG_CHANGE_IMMEDIATE
        | DATA_CHANGE_IMMEDIATE
        | POLICY_CHANGE_IMMEDIATE
        | LOG_CHANGE_IMMEDIATE
        | SECURITY_STATE_CHANGE
        | BACKGROUND_OP
        | CONFIG_CHANGE_CONV_RESET
        | CONFIG_CHANGE_CXL_RESET;

    /// Names of the effect bits, for display.
    pub const NAMES: &[(u16, &str)] = &[
        (CONFIG_CHANGE_COLD_RESET, "config-change-after-cold-reset"),
        (CONFIG_CHANGE_IMMEDIATE, "immediate-config-change"),
        (DATA_CHANGE_IMMEDIATE, "immediate-data-change"),
        (POLICY_CHANGE_IMMEDIATE, "immediate-policy-change"),
        (LOG_CHANGE_IMMEDIATE, "immediate-log-change"),
        (SECURITY_STATE_CHANGE, "security-state-change"),
        (BACKGROUND_OP, "background-operation"),
        (SECONDARY_MAILBOX, "secondary-mailbox-supported"),
        (BACKGROUND_ABORT, "background-abort-supported"),
        (BITS_10_11_VALID, "bits-10-11-valid"),
        (
            CONFIG_CHANGE_CONV_RESET,
            "config-change-after-conventional-reset",
        ),
        (CONFIG_CHANGE_CXL_RESET, "config-change-after-cxl-reset"),
    ];
}

/// Size of one CEL entry.
pub const CEL_ENTRY: usize = 4;

/// One CEL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CelEntry {
    /// Opcode.
    pub opcode: u16,
    /// Effect bits, see [`effect`].
    pub effect: u16,
}

impl CelEntry {
    /// Whether the device says the command changes nothing.
    pub const fn no_effects(&self) -> bool {
        self.effect & effect::ANY_CHANGE == 0
    }
}

impl CelEntry {
    /// Encodes the entry ([`CEL_ENTRY`] bytes).
    pub const fn encode(&self) -> [u8; CEL_ENTRY] {
        let [a0, a1] = self.opcode.to_le_bytes();
        let [e0, e1] = self.effect.to_le_bytes();
        [a0, a1, e0, e1]
    }
}

/// A Command Effects Log, as raw bytes (any trailing partial entry is ignored).
#[derive(Clone, Copy, Debug)]
pub struct Cel<'a>(&'a [u8]);

impl<'a> Cel<'a> {
    /// Views `bytes` as a CEL.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Number of whole entries.
    pub const fn len(&self) -> usize {
        self.0.len() / CEL_ENTRY
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = CelEntry> + 'a {
        self.0.chunks_exact(CEL_ENTRY).map(|e| {
            let mut b = [0u8; CEL_ENTRY];
            b.copy_from_slice(e);
            let [a0, a1, e0, e1] = b;
            CelEntry {
                opcode: u16::from_le_bytes([a0, a1]),
                effect: u16::from_le_bytes([e0, e1]),
            }
        })
    }

    /// The entry for `opcode`.
    pub fn find(&self, opcode: u16) -> Option<CelEntry> {
        self.iter().find(|e| e.opcode == opcode)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn encoders_round_trip() {
        let logs = [
            SupportedLog {
                uuid: CEL_UUID,
                size: 44,
            },
            SupportedLog {
                uuid: VENDOR_DEBUG_UUID,
                size: 4096,
            },
        ];
        let mut b = [0u8; 64];
        let n = encode_supported_logs(&mut b, &logs).unwrap();
        assert_eq!(n, SUPPORTED_LOGS_HEADER + 2 * SUPPORTED_LOG_ENTRY);
        let d = SupportedLogs::decode(&b[..n]).unwrap();
        assert_eq!(d.iter().collect::<Vec<_>>(), logs);
        assert!(encode_supported_logs(&mut b[..20], &logs).is_err());
        let e = CelEntry {
            opcode: 0x0201,
            effect: effect::BACKGROUND_OP | effect::CONFIG_CHANGE_COLD_RESET,
        };
        let raw = e.encode();
        assert_eq!(Cel::new(&raw).iter().next(), Some(e));
    }

    #[test]
    fn cel_uuid_bytes_and_text() {
        assert_eq!(
            CEL_UUID.0,
            [
                0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78, 0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b,
                0x3f, 0x17
            ]
        );
        assert_eq!(CEL_UUID.to_string(), "0da9c0b5-bf41-4b78-8f79-96b1623b3f17");
        assert_eq!(log_name(&CEL_UUID), Some("Command Effects Log"));
    }

    #[test]
    fn supported_logs() {
        let mut b = std::vec![2, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&CEL_UUID.0);
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&VENDOR_DEBUG_UUID.0);
        b.extend_from_slice(&0x1000u32.to_le_bytes());
        let logs = SupportedLogs::decode(&b).unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs.find(&CEL_UUID), Some(40));
        assert_eq!(logs.find(&COMPONENT_STATE_DUMP_UUID), None);
        let all: Vec<_> = logs.iter().collect();
        assert_eq!(
            all[1],
            SupportedLog {
                uuid: VENDOR_DEBUG_UUID,
                size: 0x1000
            }
        );
        // The header announces more entries than the payload carries.
        assert!(matches!(
            SupportedLogs::decode(&b[..30]),
            Err(DecodeError::Truncated {
                field: "supported log entries",
                ..
            })
        ));
        b[0] = 0xff;
        b[1] = 0xff;
        assert!(SupportedLogs::decode(&b).is_err());
    }

    #[test]
    fn get_log_input_layout() {
        let b = get_log_input(&CEL_UUID, 0x800, 0x28);
        assert_eq!(&b[..16], &CEL_UUID.0);
        assert_eq!(&b[16..], &[0, 8, 0, 0, 0x28, 0, 0, 0]);
    }

    #[test]
    fn cel_entries() {
        let raw = [0x01, 0x00, 0x00, 0x00, 0x01, 0x52, 0x42, 0x00, 0xff];
        let cel = Cel::new(&raw);
        assert_eq!(cel.len(), 2);
        assert!(cel.find(0x0001).unwrap().no_effects());
        let bind = cel.find(0x5201).unwrap();
        assert_eq!(bind.effect, 0x42);
        assert!(!bind.no_effects());
        assert_eq!(cel.find(0x5202), None);
        // Bits outside the change mask (abort supported, effects valid) are not effects.
        let e = CelEntry {
            opcode: 1,
            effect: effect::BACKGROUND_ABORT | effect::BITS_10_11_VALID,
        };
        assert!(e.no_effects());
    }
}
