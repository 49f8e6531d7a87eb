// SPDX-License-Identifier: GPL-2.0

//! Background Operation Status (0002h), CXL r3.1 §8.2.9.1.2.

use crate::rc::ReturnCode;
use crate::wire::{DecodeError, Reader};

/// Background Operation Status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgOpStatus {
    /// A background operation is running.
    pub running: bool,
    /// Percentage complete.
    pub percent: u8,
    /// Opcode of the last background operation.
    pub opcode: u16,
    /// Its return code (valid when it is no longer running).
    pub rc: ReturnCode,
    /// Vendor extended status.
    pub vendor_status: u16,
}

impl BgOpStatus {
    /// Decodes the output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let status = r.u8("status")?;
        r.skip("reserved", 1)?;
        Ok(Self {
            running: status & 1 != 0,
            percent: status >> 1,
            opcode: r.u16("opcode")?,
            rc: ReturnCode::from_raw(r.u16("return_code")?),
            vendor_status: r.u16("vendor_status")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        let s = BgOpStatus::decode(&[(50 << 1) | 1, 0, 0x01, 0x52, 0, 0, 0xad, 0xde]).unwrap();
        assert!(s.running);
        assert_eq!(s.percent, 50);
        assert_eq!(s.opcode, 0x5201);
        assert_eq!(s.rc, ReturnCode::Success);
        assert_eq!(s.vendor_status, 0xdead);
        assert!(matches!(
            BgOpStatus::decode(&[0; 5]),
            Err(DecodeError::Truncated {
                field: "return_code",
                ..
            })
        ));
    }
}
