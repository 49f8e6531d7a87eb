// SPDX-License-Identifier: GPL-2.0

//! Tunnel Management Command (5300h), CXL r3.1 §7.6.7.3.1, and the CCI message format it
//! carries (r3.1 Figure 7-19).

use crate::rc::ReturnCode;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};

/// Size of a CCI message header.
pub const CCI_HEADER_LEN: usize = 12;
/// Size of the tunnel request and response headers (before the CCI message).
pub const TUNNEL_HEADER_LEN: usize = 4;
/// Largest payload length a CCI message header can express: 20 bits (bits 19:0 of bytes 5-7;
/// bits 22:20 are reserved and bit 23 is the Background Operation flag, CXL r3.1 Figure 7-19).
pub const CCI_MAX_PAYLOAD: usize = (1 << 20) - 1;
/// The payload length field's mask in bytes 5-7 (little endian).
const PAYLOAD_LEN_MASK: u32 = 0x0f_ffff;
/// The Background Operation flag in bytes 5-7.
const BACKGROUND_FLAG: u32 = 1 << 23;

/// Message category of a CCI message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// A request.
    Request,
    /// A response.
    Response,
    /// A reserved value.
    Other(u8),
}

/// A CCI message header (12 bytes, CXL r3.1 Figure 7-19): what a Tunnel Management Command
/// carries before each tunnelled message, and what CXL messages over MCTP carry after the
/// message type byte (FM-API, DSP0234; CCI, DSP0281; see [`super::mctp`]).
///
/// Byte 0 bits 3:0 category; byte 1 tag; byte 2 reserved; byte 3 command; byte 4 command set;
/// bytes 5-7 payload length (bits 19:0) and the Background Operation flag (bit 23); bytes 8-9
/// return code; bytes 10-11 vendor specific extended status. Little endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CciHeader {
    /// Request or response.
    pub category: Category,
    /// Tag matching a response to its request.
    pub tag: u8,
    /// Opcode: command set << 8 | command.
    pub opcode: u16,
    /// Payload length in bytes (20 bits: at most [`CCI_MAX_PAYLOAD`]).
    pub payload_len: u32,
    /// The Background Operation flag: in a response, the command runs in the background.
    pub background: bool,
    /// Return code (responses).
    pub rc: ReturnCode,
    /// Vendor extended status (responses).
    pub vendor_status: u16,
}

impl CciHeader {
    /// A request header for `opcode` with a payload of `payload_len` bytes.
    pub const fn request(opcode: u16, tag: u8, payload_len: u32) -> Self {
        Self {
            category: Category::Request,
            tag,
            opcode,
            payload_len,
            background: false,
            rc: ReturnCode::Success,
            vendor_status: 0,
        }
    }

    /// A response header to a request of `opcode` with tag `tag`: return code `rc`, vendor
    /// status `vendor_status`, a payload of `payload_len` bytes.
    pub const fn response(
        opcode: u16,
        tag: u8,
        rc: ReturnCode,
        vendor_status: u16,
        payload_len: u32,
    ) -> Self {
        Self {
            category: Category::Response,
            tag,
            opcode,
            payload_len,
            background: false,
            rc,
            vendor_status,
        }
    }

    /// Decodes a header from the first 12 bytes of `buf`. Reserved bits (byte 0 bits 7:4,
    /// byte 2, bits 22:20 of the length) are ignored.
    ///
    /// Errors: [`DecodeError::Truncated`] for fewer than 12 bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let category = match r.u8("category")? & 0xf {
            0 => Category::Request,
            1 => Category::Response,
            v => Category::Other(v),
        };
        let tag = r.u8("tag")?;
        r.skip("reserved", 1)?;
        let cmd = r.u8("command")?;
        let set = r.u8("command_set")?;
        let len = r.u24("payload_length")?;
        Ok(Self {
            category,
            tag,
            opcode: u16::from_le_bytes([cmd, set]),
            payload_len: len & PAYLOAD_LEN_MASK,
            background: len & BACKGROUND_FLAG != 0,
            rc: ReturnCode::from_raw(r.u16("return_code")?),
            vendor_status: r.u16("vendor_status")?,
        })
    }

    /// Appends the header to `w`, reserved bits zero.
    ///
    /// Errors: [`EncodeError::Invalid`] for a payload length above [`CCI_MAX_PAYLOAD`];
    /// [`EncodeError::BufferTooSmall`] when `w` has no room for 12 bytes.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.payload_len as usize > CCI_MAX_PAYLOAD {
            return Err(EncodeError::Invalid {
                what: "CCI payload length",
            });
        }
        let [cmd, set] = self.opcode.to_le_bytes();
        let cat = match self.category {
            Category::Request => 0,
            Category::Response => 1,
            Category::Other(v) => v & 0xf,
        };
        let len = self.payload_len | if self.background { BACKGROUND_FLAG } else { 0 };
        let [l0, l1, l2, _] = len.to_le_bytes();
        w.bytes(&[cat, self.tag, 0, cmd, set, l0, l1, l2])?;
        w.u16(self.rc.raw())?;
        w.u16(self.vendor_status)
    }
}

/// Tunnel target type: the target is a downstream port (or an LD of an MLD).
pub const TARGET_PORT_OR_LD: u8 = 0;

/// Encodes a Tunnel Management Command input that carries `opcode` with `payload` to port (or
/// LD) `target`. Returns the number of bytes written to `out`.
///
/// A nested tunnel is a tunnel whose `payload` is itself an encoded tunnel request with opcode
/// [`TUNNEL`](crate::opcode::TUNNEL).
pub fn encode_request(
    out: &mut [u8],
    target: u8,
    target_type: u8,
    tag: u8,
    opcode: u16,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let inner = CCI_HEADER_LEN.saturating_add(payload.len());
    let size = u16::try_from(inner).map_err(|_| EncodeError::Invalid {
        what: "tunnelled message size",
    })?;
    let payload_len =
        u32::try_from(payload.len()).map_err(|_| EncodeError::Invalid { what: "payload" })?;
    let mut w = Writer::new(out);
    w.u8(target)?;
    w.u8(target_type)?;
    w.u16(size)?;
    CciHeader::request(opcode, tag, payload_len).encode(&mut w)?;
    w.bytes(payload)?;
    Ok(w.len())
}

/// Encodes a Tunnel Management Command output: the response of the tunnelled command
/// `opcode` (tag `tag`) with return code `rc`, vendor status `vendor_status` and `payload`.
/// Returns the number of bytes written to `out`.
pub fn encode_response(
    out: &mut [u8],
    tag: u8,
    opcode: u16,
    rc: ReturnCode,
    vendor_status: u16,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let inner = CCI_HEADER_LEN.saturating_add(payload.len());
    let len = u16::try_from(inner).map_err(|_| EncodeError::Invalid {
        what: "tunnelled response size",
    })?;
    let payload_len =
        u32::try_from(payload.len()).map_err(|_| EncodeError::Invalid { what: "payload" })?;
    let mut w = Writer::new(out);
    w.u16(len)?;
    w.zeros(2)?;
    CciHeader::response(opcode, tag, rc, vendor_status, payload_len).encode(&mut w)?;
    w.bytes(payload)?;
    Ok(w.len())
}

/// A decoded tunnel request (what a tunnel carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelRequest<'a> {
    /// Target port or LD.
    pub target: u8,
    /// Target type.
    pub target_type: u8,
    /// Header of the carried message.
    pub header: CciHeader,
    /// Payload of the carried message.
    pub payload: &'a [u8],
}

impl<'a> TunnelRequest<'a> {
    /// Decodes a Tunnel Management Command input. The command size must cover the CCI header
    /// and the header's payload length, and fit in `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let target = r.u8("port_or_ld_id")?;
        let target_type = r.u8("target_type")?;
        let size = usize::from(r.u16("command_size")?);
        let msg = r.bytes("tunnelled message", size)?;
        let header = CciHeader::decode(msg)?;
        let payload = msg.get(CCI_HEADER_LEN..).unwrap_or(&[]);
        if header.payload_len as usize != payload.len() {
            return Err(DecodeError::Invalid {
                field: "payload_length",
                value: u64::from(header.payload_len),
            });
        }
        Ok(Self {
            target,
            target_type,
            header,
            payload,
        })
    }
}

/// A decoded tunnel response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelResponse<'a> {
    /// Header of the inner response.
    pub header: CciHeader,
    /// Payload of the inner response (at most what the header announces and the buffer has).
    pub payload: &'a [u8],
}

impl<'a> TunnelResponse<'a> {
    /// Decodes a Tunnel Management Command output.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let len = usize::from(r.u16("response_length")?);
        r.skip("reserved", 2)?;
        let msg = r.bytes("tunnelled response", len)?;
        let header = CciHeader::decode(msg)?;
        let payload = msg.get(CCI_HEADER_LEN..).unwrap_or(&[]);
        let n = (header.payload_len as usize).min(payload.len());
        if header.payload_len as usize > payload.len() {
            return Err(DecodeError::Truncated {
                field: "tunnelled response payload",
                offset: TUNNEL_HEADER_LEN.saturating_add(CCI_HEADER_LEN),
                need: header.payload_len as usize,
                have: payload.len(),
            });
        }
        Ok(Self {
            header,
            payload: payload.get(..n).unwrap_or(&[]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode;

    #[test]
    fn identify_through_one_tunnel() {
        let mut buf = [0u8; 64];
        let n = encode_request(&mut buf, 2, 0, 7, opcode::IDENTIFY, &[]).unwrap();
        assert_eq!(n, 16);
        assert_eq!(
            &buf[..16],
            &[2, 0, 12, 0, 0, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let req = TunnelRequest::decode(&buf[..n]).unwrap();
        assert_eq!(req.target, 2);
        assert_eq!(req.header.opcode, opcode::IDENTIFY);
        assert_eq!(req.header.tag, 7);
        assert!(req.payload.is_empty());
    }

    #[test]
    fn nested_tunnel() {
        let mut inner = [0u8; 64];
        let n = encode_request(&mut inner, 0, 0, 1, 0x4000, &[]).unwrap();
        let mut outer = [0u8; 128];
        let m = encode_request(&mut outer, 3, 0, 2, opcode::TUNNEL, &inner[..n]).unwrap();
        assert_eq!(m, 4 + 12 + n);
        let req = TunnelRequest::decode(&outer[..m]).unwrap();
        assert_eq!(req.header.opcode, opcode::TUNNEL);
        let deeper = TunnelRequest::decode(req.payload).unwrap();
        assert_eq!(deeper.header.opcode, 0x4000);
    }

    #[test]
    fn response_decodes_and_checks_lengths() {
        // Response: length 12+2, then a response header (rc 02h), payload [0xaa, 0xbb].
        let mut b = [0u8; 18];
        b[0] = 14;
        b[4] = 1;
        b[7] = 0x01; // command 01h, set 00h
        b[9] = 2; // payload length 2
        b[12] = 0x02;
        b[16] = 0xaa;
        b[17] = 0xbb;
        let r = TunnelResponse::decode(&b).unwrap();
        assert_eq!(r.header.category, Category::Response);
        assert_eq!(r.header.rc, ReturnCode::InvalidInput);
        assert_eq!(r.payload, &[0xaa, 0xbb]);
        // Inner header announces more than the response carries.
        b[9] = 3;
        assert!(TunnelResponse::decode(&b).is_err());
        // Outer length beyond the buffer.
        b[9] = 2;
        b[0] = 40;
        assert!(matches!(
            TunnelResponse::decode(&b),
            Err(DecodeError::Truncated {
                field: "tunnelled response",
                ..
            })
        ));
    }

    #[test]
    fn response_encoder_round_trip() {
        let mut b = [0u8; 64];
        let n = encode_response(&mut b, 5, 0x0001, ReturnCode::Success, 0, &[1, 2, 3]).unwrap();
        assert_eq!(n, TUNNEL_HEADER_LEN + CCI_HEADER_LEN + 3);
        let r = TunnelResponse::decode(&b[..n]).unwrap();
        assert_eq!(r.header.category, Category::Response);
        assert_eq!((r.header.tag, r.header.opcode), (5, 0x0001));
        assert_eq!(r.payload, &[1, 2, 3]);
        assert!(encode_response(&mut b[..10], 0, 1, ReturnCode::Success, 0, &[]).is_err());
    }

    #[test]
    fn background_bit_and_limits() {
        let mut b = [0u8; 12];
        let mut w = Writer::new(&mut b);
        let mut h = CciHeader::request(0x5201, 0, 6);
        h.background = true;
        h.encode(&mut w).unwrap();
        assert_eq!(b[7], 0x80);
        let d = CciHeader::decode(&b).unwrap();
        assert!(d.background);
        assert_eq!(d.payload_len, 6);
        let mut w = Writer::new(&mut b);
        assert!(CciHeader::request(1, 0, 1 << 20).encode(&mut w).is_err());
        // Bits 22:20 are reserved: ignored when decoding, never set when encoding.
        let mut b = [0u8; 12];
        b[5] = 0xff;
        b[6] = 0xff;
        b[7] = 0xff;
        let d = CciHeader::decode(&b).unwrap();
        assert_eq!((d.payload_len, d.background), (0x0f_ffff, true));
        let mut w = Writer::new(&mut b);
        d.encode(&mut w).unwrap();
        assert_eq!(&b[5..8], &[0xff, 0xff, 0x8f]);
        assert!(encode_request(&mut [0u8; 8], 0, 0, 0, 1, &[]).is_err());
    }

    #[test]
    fn request_size_must_match_header() {
        let mut buf = [0u8; 32];
        let n = encode_request(&mut buf, 0, 0, 0, 1, &[1, 2, 3]).unwrap();
        assert!(TunnelRequest::decode(&buf[..n]).is_ok());
        buf[9] = 9; // header says 9 payload bytes, size says 3
        assert!(matches!(
            TunnelRequest::decode(&buf[..n]),
            Err(DecodeError::Invalid {
                field: "payload_length",
                ..
            })
        ));
        assert!(TunnelRequest::decode(&buf[..n - 1]).is_err());
    }
}
