// SPDX-License-Identifier: GPL-2.0

//! Background Operation Status (0002h), CXL r3.1 §8.2.9.1.2.

use crate::rc::ReturnCode;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};

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

    /// Encodes the output payload (8 bytes); returns its length. A percentage above 100 is
    /// [`EncodeError::Invalid`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.percent > 100 {
            return Err(EncodeError::Invalid {
                what: "percent complete",
            });
        }
        let mut w = Writer::new(out);
        w.u8((self.percent << 1) | u8::from(self.running))?;
        w.u8(0)?;
        w.u16(self.opcode)?;
        w.u16(self.rc.raw())?;
        w.u16(self.vendor_status)?;
        Ok(w.len())
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
        let mut b = [0u8; 8];
        assert_eq!(s.encode(&mut b).unwrap(), 8);
        assert_eq!(b, [(50 << 1) | 1, 0, 0x01, 0x52, 0, 0, 0xad, 0xde]);
        assert!(BgOpStatus { percent: 101, ..s }.encode(&mut b).is_err());
        assert!(matches!(
            BgOpStatus::decode(&[0; 5]),
            Err(DecodeError::Truncated {
                field: "return_code",
                ..
            })
        ));
    }
}
