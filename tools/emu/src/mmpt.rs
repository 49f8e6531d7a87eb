// SPDX-License-Identifier: GPL-2.0

//! The function's side of Management Message Passthrough: multi-part Send Message transfers,
//! the responder that answers complete messages, and the queue of messages waiting for
//! Receive Message. Pure logic; the register model in `device/` drives it.
//!
//! Rules (the driver's side is `swcci_proto::mmpt`; return codes are its PROVISIONAL
//! [`MmptCode`] table):
//! - Send Message (0100h): input = 16-byte header + data. Input shorter than the header:
//!   InvalidPayloadLength; an undefined action: InvalidInput.
//!   - Full: the whole message (offset 0). While a transfer is open: TransferInProgress.
//!   - Initiate: first part at offset 0; opens a transfer. While one is open:
//!     TransferInProgress, unless it is a resend of the open transfer's initiate part that came
//!     back to back (same type, offset and length), which replaces it.
//!   - Continue / Finish: the part at the offset where the message ends so far, or a resend of
//!     the previous part (same action and offset), which replaces it. Anything else, or no open
//!     transfer: TransferOutOfOrder (the transfer stays open). A different message type:
//!     InvalidInput. Finish completes the message.
//!   - Abort: drops the open transfer (if any); Success.
//!   - A message longer than [`MAX_MESSAGE`]: InvalidPayloadLength.
//! - A complete message goes to the responder: `echo` answers with the same type and data,
//!   `discard` drops it. The answer is queued for Receive Message; when the queue holds
//!   [`QUEUE_MAX`] messages the completing part fails with RetryRequired and changes nothing
//!   (resend it later). With inline answers enabled, an answer that fits the payload together
//!   with its 16-byte header is returned as the Send's output instead (header: type, action
//!   Full, offset 0, length).
//! - Receive Message (0101h): input = 16-byte header (type, action, offset, length). Empty
//!   queue: NoMessage. Returns up to `length` bytes (capped at the payload size) of the head
//!   message from `offset`. Full and Initiate read from offset 0 (restarting a read);
//!   Continue and Finish must read where the previous part ended, or re-read the previous
//!   part; else TransferOutOfOrder. An offset beyond the message: InvalidInput. Full and
//!   Finish dequeue the message. Abort ends a read in progress (one begun with Initiate and
//!   not finished) and discards its message: the host gives up on it (a message it cannot
//!   take, or one whose read failed part-way); with no read in progress it changes nothing.
//!   Success either way, no data. The type field is not checked.

use std::collections::VecDeque;
use swcci_proto::mmpt::{Action, MmptCode, MsgHeader, HEADER_LEN};
use swcci_proto::wire::Writer;

/// Messages the function queues for Receive Message.
pub const QUEUE_MAX: usize = 16;
/// Largest message the function accepts in one transfer.
pub const MAX_MESSAGE: usize = swcci_proto::mmpt::MAX_MESSAGE;

/// What the function does with a complete message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Responder {
    /// Answers with the same type and data.
    Echo,
    /// Drops it.
    Discard,
}

impl Responder {
    /// The name used by the control protocol.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Discard => "discard",
        }
    }
}

/// A management message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its type.
    pub msg_type: u8,
    /// Its data.
    pub data: Vec<u8>,
}

/// An open Send Message transfer.
#[derive(Clone, Debug)]
struct Transfer {
    msg_type: u8,
    buf: Vec<u8>,
    /// Action and offset of the last part accepted, for back-to-back resends.
    last: (Action, usize),
}

/// The result of one Send or Receive Message command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Return code.
    pub code: MmptCode,
    /// Output payload.
    pub out: Vec<u8>,
    /// A message was added to the receive queue.
    pub arrived: bool,
}

impl Outcome {
    fn code(code: MmptCode) -> Self {
        Self {
            code,
            out: Vec::new(),
            arrived: false,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmptStats {
    /// Send Message parts accepted.
    pub parts: u64,
    /// Complete messages received from the host.
    pub messages: u64,
    /// Answers queued (including injected messages).
    pub queued: u64,
    /// Answers returned inline.
    pub inline: u64,
    /// Messages the host took with Receive Message.
    pub received: u64,
    /// Transfers aborted by the host.
    pub aborts: u64,
    /// Reads aborted by the host (their messages discarded).
    pub rx_aborts: u64,
    /// Parts refused as out of order or in progress.
    pub refused: u64,
}

/// The MMPT state of the function.
#[derive(Clone, Debug)]
pub struct Mmpt {
    tx: Option<Transfer>,
    queue: VecDeque<Message>,
    rx_next: usize,
    rx_last: Option<usize>,
    /// Receive Message commands of the read in progress (0: none in progress).
    rx_parts: u32,
    /// The responder.
    pub responder: Responder,
    /// Whether answers that fit are returned inline.
    pub inline: bool,
    /// Counters.
    pub stats: MmptStats,
}

impl Default for Mmpt {
    fn default() -> Self {
        Self::new()
    }
}

fn header(buf: &[u8]) -> Result<MsgHeader, MmptCode> {
    if buf.len() < HEADER_LEN {
        return Err(MmptCode::InvalidPayloadLength);
    }
    MsgHeader::decode(buf).map_err(|_| MmptCode::InvalidInput)
}

impl Mmpt {
    /// Echo responder, no inline answers, nothing queued.
    pub fn new() -> Self {
        Self {
            tx: None,
            queue: VecDeque::new(),
            rx_next: 0,
            rx_last: None,
            rx_parts: 0,
            responder: Responder::Echo,
            inline: false,
            stats: MmptStats::default(),
        }
    }

    /// Drops the open transfer and the queue (function reset). Settings stay.
    pub fn reset(&mut self) {
        self.tx = None;
        self.queue.clear();
        self.rx_next = 0;
        self.rx_last = None;
        self.rx_parts = 0;
    }

    /// Whether a read of the head message is in progress (begun with Initiate, not finished).
    pub fn read_open(&self) -> bool {
        self.rx_parts > 0
    }

    /// The part number (1-based) Receive Message `input` would be within a multi-part read:
    /// 1 for Initiate, the next number for Continue and Finish of a read in progress; `None`
    /// for Full, Abort, a Continue or Finish with no read in progress, or a malformed header.
    pub fn rx_part_number(&self, input: &[u8]) -> Option<u32> {
        match header(input).ok()?.action {
            Action::Initiate => Some(1),
            Action::Continue | Action::Finish if self.rx_parts > 0 => {
                Some(self.rx_parts.saturating_add(1))
            }
            _ => None,
        }
    }

    /// Whether a Send Message transfer is open.
    pub fn transfer_open(&self) -> bool {
        self.tx.is_some()
    }

    /// Messages waiting.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Type and length of the message at the head of the queue.
    pub fn head(&self) -> Option<(u8, usize)> {
        self.queue.front().map(|m| (m.msg_type, m.data.len()))
    }

    /// Queues a message as if the function had produced it. Fails when the queue is full.
    pub fn inject(&mut self, msg: Message) -> Result<(), Message> {
        if self.queue.len() >= QUEUE_MAX {
            return Err(msg);
        }
        self.queue.push_back(msg);
        self.stats.queued = self.stats.queued.saturating_add(1);
        Ok(())
    }

    /// Executes Send Message with `input`, for a mailbox of `payload_size` bytes.
    pub fn send(&mut self, input: &[u8], payload_size: usize) -> Outcome {
        let h = match header(input) {
            Ok(h) => h,
            Err(code) => return Outcome::code(code),
        };
        let data = input.get(HEADER_LEN..).unwrap_or(&[]);
        let offset = usize::try_from(h.offset).unwrap_or(usize::MAX);
        let refused = |s: &mut Self, code| {
            s.stats.refused = s.stats.refused.saturating_add(1);
            Outcome::code(code)
        };
        match h.action {
            Action::Abort => {
                if self.tx.take().is_some() {
                    self.stats.aborts = self.stats.aborts.saturating_add(1);
                }
                Outcome::code(MmptCode::Success)
            }
            Action::Full => {
                if self.tx.is_some() {
                    return refused(self, MmptCode::TransferInProgress);
                }
                if offset != 0 {
                    return Outcome::code(MmptCode::InvalidInput);
                }
                if data.len() > MAX_MESSAGE {
                    return Outcome::code(MmptCode::InvalidPayloadLength);
                }
                self.complete(h.msg_type, data.to_vec(), payload_size)
            }
            Action::Initiate => {
                if offset != 0 {
                    return refused(self, MmptCode::TransferOutOfOrder);
                }
                if let Some(tx) = &self.tx {
                    let resend = tx.last == (Action::Initiate, 0) && tx.msg_type == h.msg_type;
                    if !resend {
                        return refused(self, MmptCode::TransferInProgress);
                    }
                }
                if data.len() > MAX_MESSAGE {
                    return Outcome::code(MmptCode::InvalidPayloadLength);
                }
                self.tx = Some(Transfer {
                    msg_type: h.msg_type,
                    buf: data.to_vec(),
                    last: (Action::Initiate, 0),
                });
                self.stats.parts = self.stats.parts.saturating_add(1);
                Outcome::code(MmptCode::Success)
            }
            Action::Continue | Action::Finish => {
                let Some(tx) = &self.tx else {
                    return refused(self, MmptCode::TransferOutOfOrder);
                };
                if tx.msg_type != h.msg_type {
                    return Outcome::code(MmptCode::InvalidInput);
                }
                let next = offset == tx.buf.len();
                let resend = tx.last == (h.action, offset) && offset <= tx.buf.len();
                if !next && !resend {
                    return refused(self, MmptCode::TransferOutOfOrder);
                }
                if offset.saturating_add(data.len()) > MAX_MESSAGE {
                    return Outcome::code(MmptCode::InvalidPayloadLength);
                }
                if h.action == Action::Finish {
                    // Completed on a copy: a refused message leaves the transfer as it was.
                    let mut buf = tx.buf.clone();
                    buf.truncate(offset);
                    buf.extend_from_slice(data);
                    let msg_type = tx.msg_type;
                    let out = self.complete(msg_type, buf, payload_size);
                    if out.code == MmptCode::Success {
                        self.tx = None;
                    }
                    return out;
                }
                // A part goes into the open transfer in place: copying the message so far for
                // every part made a long message quadratic.
                if let Some(tx) = self.tx.as_mut() {
                    tx.buf.truncate(offset);
                    tx.buf.extend_from_slice(data);
                    tx.last = (h.action, offset);
                }
                self.stats.parts = self.stats.parts.saturating_add(1);
                Outcome::code(MmptCode::Success)
            }
        }
    }

    /// A complete message from the host: hands it to the responder.
    fn complete(&mut self, msg_type: u8, data: Vec<u8>, payload_size: usize) -> Outcome {
        let mut out = Outcome::code(MmptCode::Success);
        match self.responder {
            Responder::Discard => {}
            Responder::Echo => {
                let fits = HEADER_LEN.saturating_add(data.len()) <= payload_size;
                if self.inline && fits {
                    let mut buf = vec![0u8; HEADER_LEN.saturating_add(data.len())];
                    let mut w = Writer::new(&mut buf);
                    let hdr = MsgHeader {
                        msg_type,
                        action: Action::Full,
                        offset: 0,
                        length: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    };
                    if hdr.encode(&mut w).and_then(|()| w.bytes(&data)).is_err() {
                        return Outcome::code(MmptCode::InternalError);
                    }
                    out.out = buf;
                    self.stats.inline = self.stats.inline.saturating_add(1);
                } else if self.inject(Message { msg_type, data }).is_err() {
                    self.stats.refused = self.stats.refused.saturating_add(1);
                    return Outcome::code(MmptCode::RetryRequired);
                } else {
                    out.arrived = true;
                }
            }
        }
        self.stats.parts = self.stats.parts.saturating_add(1);
        self.stats.messages = self.stats.messages.saturating_add(1);
        out
    }

    /// Executes Receive Message with `input`, for a mailbox of `payload_size` bytes.
    pub fn receive(&mut self, input: &[u8], payload_size: usize) -> Outcome {
        let h = match header(input) {
            Ok(h) => h,
            Err(code) => return Outcome::code(code),
        };
        let Some(head) = self.queue.front() else {
            return Outcome::code(MmptCode::NoMessage);
        };
        let offset = usize::try_from(h.offset).unwrap_or(usize::MAX);
        let in_order = match h.action {
            Action::Abort => {
                if self.rx_parts > 0 {
                    self.queue.pop_front();
                    self.stats.rx_aborts = self.stats.rx_aborts.saturating_add(1);
                }
                self.rx_next = 0;
                self.rx_last = None;
                self.rx_parts = 0;
                return Outcome::code(MmptCode::Success);
            }
            Action::Full | Action::Initiate => offset == 0,
            Action::Continue | Action::Finish => {
                offset == self.rx_next || Some(offset) == self.rx_last
            }
        };
        if !in_order {
            self.stats.refused = self.stats.refused.saturating_add(1);
            return Outcome::code(MmptCode::TransferOutOfOrder);
        }
        let Some(rest) = head.data.get(offset..) else {
            return Outcome::code(MmptCode::InvalidInput);
        };
        let len = usize::try_from(h.length)
            .unwrap_or(usize::MAX)
            .min(payload_size)
            .min(rest.len());
        let out = rest.get(..len).unwrap_or(&[]).to_vec();
        if matches!(h.action, Action::Full | Action::Finish) {
            self.queue.pop_front();
            self.rx_next = 0;
            self.rx_last = None;
            self.rx_parts = 0;
            self.stats.received = self.stats.received.saturating_add(1);
        } else {
            self.rx_last = Some(offset);
            self.rx_next = offset.saturating_add(len);
            self.rx_parts = if h.action == Action::Initiate {
                1
            } else {
                self.rx_parts.saturating_add(1)
            };
        }
        Outcome {
            code: MmptCode::Success,
            out,
            arrived: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swcci_proto::mmpt::{parts, receive_input, send_chunk, send_input, Part};

    const PAYLOAD: usize = 256;

    fn send_part(m: &mut Mmpt, ty: u8, action: Action, offset: usize, data: &[u8]) -> Outcome {
        let mut b = vec![0u8; HEADER_LEN + data.len()];
        let part = Part {
            action,
            offset,
            len: data.len(),
        };
        let n = send_input(&mut b, ty, &part, data).unwrap();
        m.send(&b[..n], PAYLOAD)
    }

    fn part(action: Action, offset: usize, len: usize) -> Part {
        Part {
            action,
            offset,
            len,
        }
    }

    fn recv_part(m: &mut Mmpt, action: Action, offset: usize, len: usize) -> Outcome {
        let b = receive_input(
            0,
            &Part {
                action,
                offset,
                len,
            },
        )
        .unwrap();
        m.receive(&b, PAYLOAD)
    }

    fn send_all(m: &mut Mmpt, ty: u8, data: &[u8]) -> MmptCode {
        for p in parts(data.len(), send_chunk(PAYLOAD)) {
            let o = send_part(m, ty, p.action, p.offset, &data[p.offset..p.offset + p.len]);
            if o.code != MmptCode::Success {
                return o.code;
            }
        }
        MmptCode::Success
    }

    fn recv_all(m: &mut Mmpt) -> Option<Message> {
        let (ty, len) = m.head()?;
        let mut data = Vec::new();
        for p in parts(len, PAYLOAD) {
            let o = recv_part(m, p.action, p.offset, p.len);
            assert_eq!(o.code, MmptCode::Success);
            data.extend_from_slice(&o.out);
        }
        Some(Message { msg_type: ty, data })
    }

    #[test]
    fn round_trips() {
        let mut m = Mmpt::new();
        for len in [
            0,
            1,
            send_chunk(PAYLOAD),
            send_chunk(PAYLOAD) + 1,
            1000,
            PAYLOAD * 3,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            assert_eq!(send_all(&mut m, 2, &data), MmptCode::Success, "len {len}");
            assert!(!m.transfer_open());
            assert_eq!(m.head(), Some((2, len)));
            let got = recv_all(&mut m).unwrap();
            assert_eq!(got.data, data, "len {len}");
            assert_eq!(m.queue_len(), 0);
        }
        assert_eq!(m.stats.messages, 6);
        assert_eq!(m.stats.received, 6);
    }

    #[test]
    fn ordering_rules() {
        let mut m = Mmpt::new();
        let d = [1u8; 10];
        // Nothing open.
        assert_eq!(
            send_part(&mut m, 1, Action::Continue, 0, &d).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Initiate, 5, &d).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Initiate, 0, &d).code,
            MmptCode::Success
        );
        // Back-to-back resend of the initiate part is fine.
        assert_eq!(
            send_part(&mut m, 1, Action::Initiate, 0, &d).code,
            MmptCode::Success
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Continue, 10, &d).code,
            MmptCode::Success
        );
        // A new initiate or a full message while open.
        assert_eq!(
            send_part(&mut m, 1, Action::Initiate, 0, &d).code,
            MmptCode::TransferInProgress
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Full, 0, &d).code,
            MmptCode::TransferInProgress
        );
        // Skipping ahead or going back.
        assert_eq!(
            send_part(&mut m, 1, Action::Continue, 30, &d).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Continue, 0, &d).code,
            MmptCode::TransferOutOfOrder
        );
        // Resend of the last continue, then the type must match.
        assert_eq!(
            send_part(&mut m, 1, Action::Continue, 10, &d).code,
            MmptCode::Success
        );
        assert_eq!(
            send_part(&mut m, 9, Action::Finish, 20, &d).code,
            MmptCode::InvalidInput
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Finish, 20, &[2u8; 3]).code,
            MmptCode::Success
        );
        let msg = recv_all(&mut m).unwrap();
        assert_eq!(msg.data.len(), 23);
        assert_eq!(&msg.data[20..], &[2, 2, 2]);
        assert!(m.stats.refused >= 5);
    }

    #[test]
    fn abort_drops_the_transfer() {
        let mut m = Mmpt::new();
        assert_eq!(
            send_part(&mut m, 1, Action::Abort, 0, &[]).code,
            MmptCode::Success
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Initiate, 0, &[1; 8]).code,
            MmptCode::Success
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Abort, 0, &[]).code,
            MmptCode::Success
        );
        assert!(!m.transfer_open());
        assert_eq!(
            send_part(&mut m, 1, Action::Finish, 8, &[1]).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(m.queue_len(), 0);
        assert_eq!(m.stats.aborts, 1);
    }

    #[test]
    fn malformed_inputs() {
        let mut m = Mmpt::new();
        assert_eq!(
            m.send(&[0; 15], PAYLOAD).code,
            MmptCode::InvalidPayloadLength
        );
        let mut bad = [0u8; 16];
        bad[4] = 7;
        assert_eq!(m.send(&bad, PAYLOAD).code, MmptCode::InvalidInput);
        assert_eq!(
            m.receive(&[0; 3], PAYLOAD).code,
            MmptCode::InvalidPayloadLength
        );
        assert_eq!(
            send_part(&mut m, 1, Action::Full, 4, &[1]).code,
            MmptCode::InvalidInput
        );
        // Empty queue.
        assert_eq!(
            recv_part(&mut m, Action::Full, 0, 16).code,
            MmptCode::NoMessage
        );
    }

    #[test]
    fn receive_rules() {
        let mut m = Mmpt::new();
        m.inject(Message {
            msg_type: 3,
            data: (0..600).map(|i| i as u8).collect(),
        })
        .unwrap();
        assert_eq!(
            recv_part(&mut m, Action::Continue, 256, 256).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(
            recv_part(&mut m, Action::Initiate, 4, 256).code,
            MmptCode::TransferOutOfOrder
        );
        let a = recv_part(&mut m, Action::Initiate, 0, 4096);
        assert_eq!(a.out.len(), PAYLOAD, "capped at the payload size");
        // Re-read of the same part, then continue.
        assert_eq!(recv_part(&mut m, Action::Initiate, 0, 256).out, a.out);
        let b = recv_part(&mut m, Action::Continue, 256, 256);
        assert_eq!(b.out[0], 0);
        assert_eq!(recv_part(&mut m, Action::Continue, 256, 256).out, b.out);
        assert_eq!(
            recv_part(&mut m, Action::Finish, 700, 10).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(m.queue_len(), 1);
        let c = recv_part(&mut m, Action::Finish, 512, 256);
        assert_eq!(c.out.len(), 88);
        assert_eq!(m.queue_len(), 0);
        // Abort with no read in progress changes nothing; Abort of a read in progress
        // discards its message.
        for len in [300, 7] {
            m.inject(Message {
                msg_type: 1,
                data: vec![5; len],
            })
            .unwrap();
        }
        assert!(!m.read_open());
        assert_eq!(
            recv_part(&mut m, Action::Abort, 0, 0).code,
            MmptCode::Success
        );
        assert_eq!((m.queue_len(), m.stats.rx_aborts), (2, 0));
        let init = receive_input(0, &part(Action::Initiate, 0, 256)).unwrap();
        assert_eq!(m.rx_part_number(&init), Some(1));
        recv_part(&mut m, Action::Initiate, 0, 256);
        assert!(m.read_open());
        let cont = receive_input(0, &part(Action::Continue, 256, 44)).unwrap();
        assert_eq!(m.rx_part_number(&cont), Some(2));
        assert_eq!(
            recv_part(&mut m, Action::Abort, 0, 0).code,
            MmptCode::Success
        );
        assert!(!m.read_open());
        assert_eq!((m.queue_len(), m.stats.rx_aborts), (1, 1));
        assert_eq!(m.head(), Some((1, 7)), "the next message is at the head");
        assert_eq!(m.rx_part_number(&cont), None, "no read in progress");
        assert_eq!(
            recv_part(&mut m, Action::Continue, 256, 44).code,
            MmptCode::TransferOutOfOrder
        );
        assert_eq!(recv_part(&mut m, Action::Full, 0, 300).out.len(), 7);
        // A message longer than the payload, read Full: short, and dequeued.
        m.inject(Message {
            msg_type: 1,
            data: vec![5; 300],
        })
        .unwrap();
        assert_eq!(recv_part(&mut m, Action::Full, 0, 300).out.len(), 256);
        assert_eq!(m.queue_len(), 0, "full dequeues even when short");
        // An offset beyond the message.
        m.inject(Message {
            msg_type: 1,
            data: vec![5; 3],
        })
        .unwrap();
        recv_part(&mut m, Action::Initiate, 0, 2);
        assert_eq!(recv_part(&mut m, Action::Finish, 2, 10).out, [5]);
    }

    #[test]
    fn queue_overflow_and_discard() {
        let mut m = Mmpt::new();
        for i in 0..QUEUE_MAX {
            assert_eq!(send_all(&mut m, 1, &[i as u8]), MmptCode::Success);
        }
        assert_eq!(send_all(&mut m, 1, &[0xee]), MmptCode::RetryRequired);
        // A multi-part message keeps its transfer open when the finish cannot be queued.
        let long = vec![7u8; PAYLOAD];
        assert_eq!(send_all(&mut m, 1, &long), MmptCode::RetryRequired);
        assert!(m.transfer_open());
        recv_all(&mut m).unwrap();
        let chunk = send_chunk(PAYLOAD);
        assert_eq!(
            send_part(&mut m, 1, Action::Finish, chunk, &long[chunk..]).code,
            MmptCode::Success
        );
        assert!(!m.transfer_open());
        assert_eq!(m.queue_len(), QUEUE_MAX);
        assert!(m
            .inject(Message {
                msg_type: 1,
                data: vec![]
            })
            .is_err());
        m.reset();
        m.responder = Responder::Discard;
        assert_eq!(send_all(&mut m, 1, &[1, 2]), MmptCode::Success);
        assert_eq!(m.queue_len(), 0);
    }

    #[test]
    fn inline_answers() {
        let mut m = Mmpt::new();
        m.inline = true;
        let o = send_part(&mut m, 4, Action::Full, 0, &[9, 8, 7]);
        assert_eq!(o.code, MmptCode::Success);
        assert!(!o.arrived);
        let h = MsgHeader::decode(&o.out).unwrap();
        assert_eq!(
            (h.msg_type, h.action, h.offset, h.length),
            (4, Action::Full, 0, 3)
        );
        assert_eq!(&o.out[HEADER_LEN..], &[9, 8, 7]);
        assert_eq!(m.queue_len(), 0);
        // Too big for inline: queued.
        let data = vec![1u8; PAYLOAD];
        assert_eq!(send_all(&mut m, 4, &data), MmptCode::Success);
        assert_eq!(m.head(), Some((4, PAYLOAD)));
        assert_eq!(m.stats.inline, 1);
    }
}
