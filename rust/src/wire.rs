// SPDX-License-Identifier: GPL-2.0

//! Bounds-checked little-endian payload reading and writing.
//!
//! Every read names the field it is for, so that a short payload is reported as
//! "field `serial` needs bytes 8..16, the payload has 12" rather than as a panic.

use core::fmt;

/// A payload that could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload ends before `field`.
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes the payload has.
        have: usize,
    },
    /// `field` holds a value that is not allowed.
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                field,
                offset,
                need,
                have,
            } => write!(
                f,
                "payload too short: field `{field}` needs bytes {offset}..{}, the payload has {have}",
                offset.saturating_add(*need)
            ),
            Self::Invalid { field, value } => {
                write!(f, "invalid value {value:#x} in field `{field}`")
            }
        }
    }
}

/// A request that could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small: `need` bytes are needed.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
    /// An argument is out of range.
    Invalid {
        /// The argument.
        what: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { need } => write!(f, "request needs {need} bytes"),
            Self::Invalid { what } => write!(f, "{what} out of range"),
        }
    }
}

/// Reads fields from a payload, front to back.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at offset 0.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub const fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Takes the next `n` bytes for `field`.
    #[inline]
    pub fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                field,
                offset: self.pos,
                need: n,
                have: self.buf.len(),
            }),
        }
    }

    /// Takes the next `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(field, N)?);
        Ok(out)
    }

    /// Skips `n` reserved bytes.
    #[inline]
    pub fn skip(&mut self, field: &'static str, n: usize) -> Result<(), DecodeError> {
        self.bytes(field, n).map(|_| ())
    }

    /// Reads a byte.
    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian u16.
    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian 24-bit value.
    pub fn u24(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array(field)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// Reads a little-endian u32.
    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian u64.
    #[inline]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// The rest of the payload.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }
}

/// Writes fields into a request buffer, front to back.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at offset 0 of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub const fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written yet.
    pub const fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Appends bytes.
    #[inline]
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let need = self.pos.saturating_add(data.len());
        match self.buf.get_mut(self.pos..need) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.pos = need;
                Ok(())
            }
            None => Err(EncodeError::BufferTooSmall { need }),
        }
    }

    /// Appends a byte.
    #[inline]
    pub fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }

    /// Appends a little-endian u16.
    #[inline]
    pub fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian u32.
    #[inline]
    pub fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian u64.
    #[inline]
    pub fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends `n` zero bytes.
    #[inline]
    pub fn zeros(&mut self, n: usize) -> Result<(), EncodeError> {
        for _ in 0..n {
            self.u8(0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn reads_and_reports_truncation() {
        let buf = [1, 2, 3, 4, 5, 6, 7];
        let mut r = Reader::new(&buf);
        assert_eq!(r.u16("a").unwrap(), 0x0201);
        assert_eq!(r.u24("b").unwrap(), 0x050403);
        let e = r.u32("serial").unwrap_err();
        assert_eq!(
            e,
            DecodeError::Truncated {
                field: "serial",
                offset: 5,
                need: 4,
                have: 7
            }
        );
        assert_eq!(
            e.to_string(),
            "payload too short: field `serial` needs bytes 5..9, the payload has 7"
        );
        // A failed read consumes nothing.
        assert_eq!(r.rest(), &[6, 7]);
        assert!(r.bytes("x", usize::MAX).is_err());
    }

    #[test]
    fn writes_and_reports_overflow() {
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        w.u16(0xbeef).unwrap();
        w.u8(7).unwrap();
        assert_eq!(w.u32(1), Err(EncodeError::BufferTooSmall { need: 7 }));
        assert_eq!(w.len(), 3);
        assert_eq!(buf, [0xef, 0xbe, 7, 0, 0]);
    }
}
