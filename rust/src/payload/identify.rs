// SPDX-License-Identifier: GPL-2.0

//! Identify (0001h), CXL r3.1 §8.2.9.1.1.

use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Size of the Identify output payload.
pub const IDENTIFY_LEN: usize = 18;

/// The component type reported by Identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentType {
    /// 00h: a switch.
    Switch,
    /// 03h: a Type 3 memory device.
    Type3,
    /// Anything else.
    Other(u8),
}

impl ComponentType {
    /// Decodes the raw value.
    pub const fn from_raw(v: u8) -> Self {
        match v {
            0 => Self::Switch,
            3 => Self::Type3,
            v => Self::Other(v),
        }
    }

    /// The raw value.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Switch => 0,
            Self::Type3 => 3,
            Self::Other(v) => v,
        }
    }
}

impl fmt::Display for ComponentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Switch => f.write_str("switch"),
            Self::Type3 => f.write_str("type-3 device"),
            Self::Other(v) => write!(f, "unknown ({v:02x}h)"),
        }
    }
}

/// Identify output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identify {
    /// PCI vendor id of the component.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// PCI subsystem vendor id.
    pub subsys_vendor_id: u16,
    /// PCI subsystem id.
    pub subsys_id: u16,
    /// Serial number (the PCIe Device Serial Number).
    pub serial: u64,
    /// Largest message the component accepts, as log2 of bytes.
    pub max_msg_size_log2: u8,
    /// Component type.
    pub component_type: ComponentType,
}

impl Identify {
    /// Decodes an Identify output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            vendor_id: r.u16("vendor_id")?,
            device_id: r.u16("device_id")?,
            subsys_vendor_id: r.u16("subsys_vendor_id")?,
            subsys_id: r.u16("subsys_id")?,
            serial: r.u64("serial")?,
            max_msg_size_log2: r.u8("max_msg_size")?,
            component_type: ComponentType::from_raw(r.u8("component_type")?),
        })
    }

    /// Encodes the output payload ([`IDENTIFY_LEN`] bytes); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u16(self.vendor_id)?;
        w.u16(self.device_id)?;
        w.u16(self.subsys_vendor_id)?;
        w.u16(self.subsys_id)?;
        w.u64(self.serial)?;
        w.u8(self.max_msg_size_log2)?;
        w.u8(self.component_type.raw())?;
        Ok(w.len())
    }

    /// Largest message size in bytes, if the log2 value is in the specified range
    /// (8..=20: 256 B to 1 MiB).
    pub fn max_msg_size(&self) -> Option<u32> {
        (8..=20)
            .contains(&self.max_msg_size_log2)
            .then(|| 1u32 << self.max_msg_size_log2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's switch CCI: upstream port 19e5:a128, serial 1234, 2 KiB messages, a switch.
    pub(crate) const QEMU_SWITCH: [u8; 18] = [
        0xe5, 0x19, 0x28, 0xa1, 0, 0, 0, 0, 0xd2, 0x04, 0, 0, 0, 0, 0, 0, 11, 0,
    ];

    #[test]
    fn decodes() {
        let id = Identify::decode(&QEMU_SWITCH).unwrap();
        assert_eq!(id.vendor_id, 0x19e5);
        assert_eq!(id.device_id, 0xa128);
        assert_eq!(id.serial, 1234);
        assert_eq!(id.max_msg_size(), Some(2048));
        assert_eq!(id.component_type, ComponentType::Switch);
        let mut t3 = QEMU_SWITCH;
        t3[17] = 3;
        assert_eq!(
            Identify::decode(&t3).unwrap().component_type,
            ComponentType::Type3
        );
    }

    #[test]
    fn encodes_what_it_decodes() {
        let id = Identify::decode(&QEMU_SWITCH).unwrap();
        let mut b = [0u8; 32];
        assert_eq!(id.encode(&mut b).unwrap(), IDENTIFY_LEN);
        assert_eq!(b[..IDENTIFY_LEN], QEMU_SWITCH);
        assert!(id.encode(&mut b[..17]).is_err());
    }

    #[test]
    fn truncated_names_the_field() {
        for len in 0..IDENTIFY_LEN {
            assert!(Identify::decode(&QEMU_SWITCH[..len]).is_err());
        }
        let e = Identify::decode(&QEMU_SWITCH[..12]).unwrap_err();
        assert!(matches!(
            e,
            DecodeError::Truncated {
                field: "serial",
                ..
            }
        ));
        // Longer payloads (newer revisions) are fine.
        let mut long = [0u8; 32];
        long[..18].copy_from_slice(&QEMU_SWITCH);
        assert!(Identify::decode(&long).is_ok());
    }

    #[test]
    fn insane_message_size() {
        let mut b = QEMU_SWITCH;
        b[16] = 200;
        assert_eq!(Identify::decode(&b).unwrap().max_msg_size(), None);
        b[16] = 7;
        assert_eq!(Identify::decode(&b).unwrap().max_msg_size(), None);
        b[16] = 20;
        assert_eq!(Identify::decode(&b).unwrap().max_msg_size(), Some(1 << 20));
    }
}
