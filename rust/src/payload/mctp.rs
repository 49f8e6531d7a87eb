// SPDX-License-Identifier: GPL-2.0

//! CXL messages over MCTP: FM-API messages (MCTP message type 07h, DMTF DSP0234) to a switch's
//! fabric-management endpoint and CCI messages (type 08h, DMTF DSP0281) to a component's CCI.
//!
//! An MCTP message (DMTF DSP0236 §8.2) is the message type byte, then the body: for CXL the
//! CCI message, the 12-byte [`CciHeader`] (category, tag, opcode, payload length with the
//! Background Operation flag, return code, vendor status; CXL r3.1 Figure 7-19, the same header
//! a Tunnel Management Command carries) and the payload. The type byte travels apart from the
//! body in both MCTP stacks the project uses: an AF_MCTP socket takes it from the address
//! (`smctp_type`) and puts it in front of the body itself, and strips it on receive
//! (net/mctp/af_mctp.c, Linux 7.3; its Documentation/networking/mctp.rst still says the
//! application supplies it), and mctp-estack hands it over as the message's type. So the
//! encoders and decoders here work on the body and take the type separately. CXL messages carry
//! no MCTP integrity check (the IC bit, bit 7 of the type byte, is 0).
//!
//! Also the few MCTP control messages (type 00h, DSP0236 §12) a requester needs to find
//! endpoints that speak FM-API: Get Message Type Support (05h).

use super::tunnel::{Category, CciHeader, CCI_HEADER_LEN};
use crate::rc::ReturnCode;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};

/// MCTP message type of MCTP control messages (DSP0236 §12).
pub const MSG_TYPE_CONTROL: u8 = 0x00;
/// MCTP message type of CXL FM-API messages (DSP0234).
pub const MSG_TYPE_FMAPI: u8 = 0x07;
/// MCTP message type of CXL CCI messages (DSP0281).
pub const MSG_TYPE_CCI: u8 = 0x08;
/// The integrity check bit of the message type byte.
pub const MSG_TYPE_IC: u8 = 0x80;
/// Bytes of a CXL message body before its payload: the CCI message header.
pub const CXL_MESSAGE_OVERHEAD: usize = CCI_HEADER_LEN;

/// Which CXL message type an MCTP endpoint is spoken to with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CxlMessageType {
    /// FM-API (07h): a switch's fabric-management endpoint (DSP0234).
    #[default]
    FmApi,
    /// CCI (08h): a component's CCI, e.g. a type-3 device's (DSP0281).
    Cci,
}

impl CxlMessageType {
    /// The MCTP message type byte.
    pub const fn raw(self) -> u8 {
        match self {
            Self::FmApi => MSG_TYPE_FMAPI,
            Self::Cci => MSG_TYPE_CCI,
        }
    }

    /// The message type of a type byte (the IC bit must be clear); `None` for any other.
    pub const fn from_raw(b: u8) -> Option<Self> {
        match b {
            MSG_TYPE_FMAPI => Some(Self::FmApi),
            MSG_TYPE_CCI => Some(Self::Cci),
            _ => None,
        }
    }

    /// `FM-API (07h)`, `CCI (08h)`: how messages name it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::FmApi => "FM-API (07h)",
            Self::Cci => "CCI (08h)",
        }
    }
}

/// Encodes the body of a CXL request message: a request header for `opcode` with tag `tag`,
/// and `payload`. Returns the bytes written to `out` ([`CXL_MESSAGE_OVERHEAD`] + the payload).
///
/// Errors: [`EncodeError::Invalid`] for a payload above the header's 20-bit length;
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the message.
pub fn encode_request(
    out: &mut [u8],
    tag: u8,
    opcode: u16,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    encode(out, &CciHeader::request(opcode, tag, 0), payload)
}

/// Encodes the body of a CXL message with `header` (its payload length is set from `payload`)
/// and `payload`: what an endpoint answers with. Returns the bytes written.
///
/// Errors: as [`encode_request`].
pub fn encode(out: &mut [u8], header: &CciHeader, payload: &[u8]) -> Result<usize, EncodeError> {
    let len = u32::try_from(payload.len()).map_err(|_| EncodeError::Invalid {
        what: "CCI payload length",
    })?;
    let mut w = Writer::new(out);
    CciHeader {
        payload_len: len,
        ..*header
    }
    .encode(&mut w)?;
    w.bytes(payload)?;
    Ok(w.len())
}

/// A decoded CXL message (request or response): its MCTP message type and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CxlMessage<'a> {
    /// FM-API or CCI.
    pub msg_type: CxlMessageType,
    /// The CCI message header.
    pub header: CciHeader,
    /// The payload: exactly the header's payload length.
    pub payload: &'a [u8],
}

impl<'a> CxlMessage<'a> {
    /// Decodes a message of MCTP type byte `t` (07h or 08h, the IC bit clear) and `body`:
    /// the 12-byte header and a payload of exactly the length the header gives.
    ///
    /// Errors: [`DecodeError::Invalid`] for another type byte (`message_type`), a reserved
    /// category (`category`), or bytes beyond the announced payload (`payload_length`);
    /// [`DecodeError::Truncated`] for a body shorter than the header or the announced payload.
    pub fn decode(t: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let msg_type = CxlMessageType::from_raw(t).ok_or(DecodeError::Invalid {
            field: "message_type",
            value: u64::from(t),
        })?;
        let hbytes = r.bytes("CCI message header", CCI_HEADER_LEN)?;
        let header = CciHeader::decode(hbytes)?;
        if let Category::Other(v) = header.category {
            return Err(DecodeError::Invalid {
                field: "category",
                value: u64::from(v),
            });
        }
        let payload = r.bytes("payload", header.payload_len as usize)?;
        if r.remaining() != 0 {
            return Err(DecodeError::Invalid {
                field: "payload_length",
                value: u64::from(header.payload_len),
            });
        }
        Ok(Self {
            msg_type,
            header,
            payload,
        })
    }

    /// Whether this is the response to the request `(opcode, tag)` of type `msg_type`.
    pub fn answers(&self, msg_type: CxlMessageType, opcode: u16, tag: u8) -> bool {
        self.msg_type == msg_type
            && self.header.category == Category::Response
            && self.header.opcode == opcode
            && self.header.tag == tag
    }

    /// The return code (of a response).
    pub fn rc(&self) -> ReturnCode {
        self.header.rc
    }
}

/// MCTP control command Get Message Type Support (DSP0236 §12.7).
pub const CONTROL_GET_MESSAGE_TYPES: u8 = 0x05;
/// MCTP control completion code Success (DSP0236 Table 13).
pub const CONTROL_SUCCESS: u8 = 0x00;

/// Encodes the body of an MCTP control request (message type 00h: the Rq bit and instance id
/// `instance` (5 bits), command `command`) with `data`. Returns the bytes written.
///
/// Errors: [`EncodeError::BufferTooSmall`].
pub fn encode_control_request(
    out: &mut [u8],
    instance: u8,
    command: u8,
    data: &[u8],
) -> Result<usize, EncodeError> {
    let mut w = Writer::new(out);
    w.bytes(&[0x80 | (instance & 0x1f), command])?;
    w.bytes(data)?;
    Ok(w.len())
}

/// A decoded MCTP control response: the instance id, command, completion code and the data
/// after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlResponse<'a> {
    /// Instance id (5 bits).
    pub instance: u8,
    /// Command code.
    pub command: u8,
    /// Completion code.
    pub completion: u8,
    /// The data after the completion code.
    pub data: &'a [u8],
}

impl<'a> ControlResponse<'a> {
    /// Decodes a message of type byte `t` (00h) and `body` (Rq bit clear).
    ///
    /// Errors: [`DecodeError::Invalid`] for another type (`message_type`) or a request
    /// (`rq`); [`DecodeError::Truncated`] below 3 bytes.
    pub fn decode(t: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        if t != MSG_TYPE_CONTROL {
            return Err(DecodeError::Invalid {
                field: "message_type",
                value: u64::from(t),
            });
        }
        let b = r.u8("rq_d_instance")?;
        if b & 0x80 != 0 {
            return Err(DecodeError::Invalid {
                field: "rq",
                value: u64::from(b),
            });
        }
        let command = r.u8("command_code")?;
        let completion = r.u8("completion_code")?;
        Ok(Self {
            instance: b & 0x1f,
            command,
            completion,
            data: r.rest(),
        })
    }

    /// The message types of a successful Get Message Type Support response: the count byte,
    /// then one type byte each (DSP0236 Table 19).
    ///
    /// Errors: [`DecodeError::Invalid`] for another command or a failed completion;
    /// [`DecodeError::Truncated`] when fewer types follow than the count says.
    pub fn message_types(&self) -> Result<&'a [u8], DecodeError> {
        if self.command != CONTROL_GET_MESSAGE_TYPES {
            return Err(DecodeError::Invalid {
                field: "command_code",
                value: u64::from(self.command),
            });
        }
        if self.completion != CONTROL_SUCCESS {
            return Err(DecodeError::Invalid {
                field: "completion_code",
                value: u64::from(self.completion),
            });
        }
        let mut r = Reader::new(self.data);
        let n = r.u8("message_type_count")?;
        r.bytes("message_types", usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode;

    #[test]
    fn identify_request_bytes() {
        let mut b = [0u8; 32];
        let n = encode_request(&mut b, 5, opcode::IDENTIFY, &[]).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&b[..12], &[0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let m = CxlMessage::decode(MSG_TYPE_FMAPI, &b[..n]).unwrap();
        assert_eq!(m.msg_type, CxlMessageType::FmApi);
        assert_eq!(m.header.category, Category::Request);
        assert_eq!((m.header.tag, m.header.opcode), (5, opcode::IDENTIFY));
        assert!(m.payload.is_empty());
        // A request does not answer itself.
        assert!(!m.answers(CxlMessageType::FmApi, opcode::IDENTIFY, 5));
    }

    #[test]
    fn response_round_trip_and_matching() {
        let mut b = [0u8; 64];
        let mut h = CciHeader::response(0x5101, 9, ReturnCode::Busy, 0x1234, 0);
        h.background = true;
        let n = encode(&mut b, &h, &[1, 2, 3]).unwrap();
        assert_eq!(n, CXL_MESSAGE_OVERHEAD + 3);
        assert_eq!(&b[5..8], &[3, 0, 0x80]);
        let m = CxlMessage::decode(MSG_TYPE_CCI, &b[..n]).unwrap();
        assert_eq!(m.rc(), ReturnCode::Busy);
        assert_eq!(m.header.vendor_status, 0x1234);
        assert!(m.header.background);
        assert_eq!(m.payload, &[1, 2, 3]);
        assert!(m.answers(CxlMessageType::Cci, 0x5101, 9));
        assert!(!m.answers(CxlMessageType::Cci, 0x5101, 8), "wrong tag");
        assert!(!m.answers(CxlMessageType::Cci, 0x5100, 9), "wrong opcode");
        assert!(!m.answers(CxlMessageType::FmApi, 0x5101, 9), "wrong type");
    }

    #[test]
    fn malformed_messages() {
        let mut b = [0u8; 32];
        let n = encode_request(&mut b, 0, 1, &[0xaa, 0xbb]).unwrap();
        let decode = |b: &[u8]| CxlMessage::decode(MSG_TYPE_FMAPI, b).map(|m| m.payload.len());
        // Short of the announced payload.
        assert!(matches!(
            decode(&b[..n - 1]),
            Err(DecodeError::Truncated {
                field: "payload",
                ..
            })
        ));
        // More than announced.
        assert!(matches!(
            decode(&b[..n + 1]),
            Err(DecodeError::Invalid {
                field: "payload_length",
                ..
            })
        ));
        // Short of a header.
        assert!(decode(&b[..8]).is_err());
        // Another message type, or the IC bit.
        for t in [0x00, 0x01, 0x87, 0x88] {
            assert!(matches!(
                CxlMessage::decode(t, &b[..n]),
                Err(DecodeError::Invalid {
                    field: "message_type",
                    ..
                })
            ));
        }
        // A reserved category.
        let mut c = b;
        c[0] = 2;
        assert!(matches!(
            decode(&c[..n]),
            Err(DecodeError::Invalid {
                field: "category",
                ..
            })
        ));
        // Too small a buffer, too long a payload.
        assert!(encode_request(&mut b[..11], 0, 1, &[]).is_err());
        let big = [0u8; 1 << 20];
        let mut out = [0u8; 16];
        assert_eq!(
            encode_request(&mut out, 0, 1, &big),
            Err(EncodeError::Invalid {
                what: "CCI payload length"
            })
        );
    }

    #[test]
    fn control_get_message_types() {
        let mut b = [0u8; 8];
        let n = encode_control_request(&mut b, 0x23, CONTROL_GET_MESSAGE_TYPES, &[]).unwrap();
        assert_eq!(&b[..n], &[0x83, 5]);
        let resp = [0x03, 5, 0, 2, MSG_TYPE_CONTROL, MSG_TYPE_FMAPI];
        let r = ControlResponse::decode(MSG_TYPE_CONTROL, &resp).unwrap();
        assert_eq!((r.instance, r.command, r.completion), (3, 5, 0));
        assert_eq!(r.message_types().unwrap(), &[0, 7]);
        // Count beyond the data; a failed completion; a request.
        let decode = |b: &'static [u8]| ControlResponse::decode(MSG_TYPE_CONTROL, b);
        assert!(decode(&[3, 5, 0, 3, 0, 7])
            .unwrap()
            .message_types()
            .is_err());
        assert!(decode(&[3, 5, 1]).unwrap().message_types().is_err());
        assert!(decode(&[0x83, 5, 0]).is_err());
        assert!(ControlResponse::decode(7, &[3, 5, 0]).is_err());
        assert!(decode(&[3, 5]).is_err());
    }

    #[test]
    fn type_names() {
        assert_eq!(CxlMessageType::from_raw(7), Some(CxlMessageType::FmApi));
        assert_eq!(CxlMessageType::from_raw(8), Some(CxlMessageType::Cci));
        assert_eq!(CxlMessageType::from_raw(0x87), None);
        assert_eq!(CxlMessageType::Cci.name(), "CCI (08h)");
    }
}
