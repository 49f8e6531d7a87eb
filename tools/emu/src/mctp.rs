// SPDX-License-Identifier: GPL-2.0

//! The switch as an MCTP endpoint over the serial binding (DMTF DSP0253), the one Linux's
//! mctp-serial line discipline speaks: the same device model (fabric, firmware, devices behind
//! the ports) that the vfio-user function serves, reached with FM-API messages (MCTP message
//! type 07h, DSP0234) or CCI messages (08h, DSP0281) (Documentation/transports.rst).
//!
//! `swcci-emu --mctp PATH [--mctp-eid 9]` listens on the Unix stream socket PATH; QEMU
//! connects to it as a chardev given to the guest as a console:
//! `-chardev socket,id=m0,path=PATH -device virtconsole,chardev=m0` (a `/dev/hvcN` tty, on
//! which the guest sets the N_MCTP line discipline). One connection at a time; QEMU may
//! reconnect.
//!
//! - Framing: mctp-estack's serial handler (0x7E flags, byte stuffing, FCS-16); packets and
//!   reassembly: mctp-estack's `Stack` with the binding's MTU of 68 bytes (64 bytes of message
//!   per packet, what mctp-serial sends and accepts, drivers/net/mctp/mctp-serial.c). Bytes
//!   outside frames (what a line-rate measurement sends) are dropped; `bytes-in` counts
//!   everything that arrived.
//! - MCTP control messages (DSP0236 §12): Set Endpoint ID, Get Endpoint ID, Get Message Type
//!   Support (control, FM-API, CCI); others answer "unsupported command".
//! - FM-API and CCI requests run on the device model as mailbox commands do (the same
//!   commands, return codes and background operations; a background operation started over
//!   MCTP raises no interrupt), answered with the same tag and opcode.
//! - Faults, armed through the control channel (`once` by default, or `always` until
//!   `clear`; `op HEX` limits one to the commands of that opcode, `mctp-drop op 5202 once`):
//!   `mctp-drop` (the next response is not sent), `mctp-bad-fcs` (its frames carry a wrong
//!   FCS, so the receiver drops them), `mctp-late MS` (it is sent MS ms late, after the
//!   requester gave up), `mctp-busy` (the next FM-API/CCI request is answered Busy, 06h,
//!   without running), `mctp-wrong-tag` (the response carries another CCI message tag).
//!   Control messages are never faulted.
//!   `mctp-stats` reports the counters; `mctp-blast N` writes N bytes of 00h (outside any
//!   frame) to the guest, for a line-rate measurement (bench), while no MCTP traffic runs.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mctp::{Eid, MsgIC, MsgType, Tag};
use mctp_estack::control::{self, MctpControlMsg};
use mctp_estack::fragment::SendOutput;
use mctp_estack::serial::MctpSerialHandler;
use mctp_estack::Stack;
use swcci_proto::payload::mctp::{self as pm, CxlMessage};
use swcci_proto::payload::tunnel::{Category, CciHeader};
use swcci_proto::rc::ReturnCode;

use crate::common::{take_flag, Mode};
use crate::Shared;

/// The serial binding's MTU: 64 bytes of message and the 4-byte MCTP header.
pub const SERIAL_MTU: usize = 68;
/// Default EID of the endpoint.
pub const DEFAULT_EID: u8 = 9;
/// Largest request payload the endpoint reassembles: the build's `MCTP_ESTACK_MAX_MESSAGE`
/// (tools/.cargo/config.toml) less the type byte and the CCI header.
pub const MAX_REQUEST_PAYLOAD: usize = mctp_estack::config::MAX_PAYLOAD - pm::CXL_MESSAGE_OVERHEAD;

/// One armed fault: once or always, for every command or for one opcode; `ms` for
/// `mctp-late`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Armed {
    mode: Mode,
    op: Option<u16>,
    ms: u64,
}

/// Takes the fault in `slot` for a message of `op` (`None`: a control message, which no fault
/// touches): `Some(armed)` when it applies (a `once` fault is then disarmed).
fn take(slot: &mut Option<Armed>, op: Option<u16>) -> Option<Armed> {
    let a = (*slot)?;
    let op = op?;
    if a.op.is_some_and(|o| o != op) {
        return None;
    }
    let mut m = Some(a.mode);
    take_flag(&mut m);
    if m.is_none() {
        *slot = None;
    }
    Some(a)
}

/// Armed faults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    drop: Option<Armed>,
    bad_fcs: Option<Armed>,
    late: Option<Armed>,
    busy: Option<Armed>,
    wrong_tag: Option<Armed>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    requests: u64,
    responses: u64,
    dropped: u64,
    bad_fcs: u64,
    late: u64,
    busy: u64,
    wrong_tag: u64,
    control: u64,
}

/// The endpoint's state shared with the control channel.
#[derive(Debug, Default)]
pub struct State {
    faults: Faults,
    stats: Stats,
    /// The connection, for `mctp-blast`.
    conn: Option<UnixStream>,
}

/// Shared handle of [`State`].
pub type Handle = Arc<Mutex<State>>;

fn lock(h: &Handle) -> std::sync::MutexGuard<'_, State> {
    h.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parse_mode(w: Option<&str>) -> Result<Mode, String> {
    match w {
        None | Some("once") => Ok(Mode::Once),
        Some("always") => Ok(Mode::Always),
        Some(o) => Err(format!("mode '{o}' is not once or always")),
    }
}

/// Handles a control-channel line that concerns the MCTP endpoint: `Some(reply)` for the
/// `mctp-*` commands; `None` for anything else (`clear` also clears the MCTP faults and is
/// then handled by the device too).
pub fn control_line(h: &Handle, line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let first = if first == "fault" {
        words.next()?
    } else {
        first
    };
    if first == "clear" {
        lock(h).faults = Faults::default();
        return None;
    }
    if !first.starts_with("mctp-") {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    let mut st = lock(h);
    let r = (|| -> Result<String, String> {
        // `[MS] [op HEX] [once|always]`
        let armed = |with_ms: bool| -> Result<Armed, String> {
            let mut a = Armed {
                mode: Mode::Once,
                op: None,
                ms: 0,
            };
            let mut it = rest.iter().copied();
            if with_ms {
                a.ms = it
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&v| v <= 60_000)
                    .ok_or("needs milliseconds (0..=60000)")?;
            }
            while let Some(w) = it.next() {
                match w {
                    "op" => {
                        let v = it.next().ok_or("op needs an opcode")?;
                        let v = v.trim_start_matches("0x").trim_end_matches('h');
                        a.op = Some(
                            u16::from_str_radix(v, 16)
                                .map_err(|_| format!("opcode '{v}' is not hex"))?,
                        );
                    }
                    m => a.mode = parse_mode(Some(m))?,
                }
            }
            Ok(a)
        };
        match first {
            "mctp-drop" => st.faults.drop = Some(armed(false)?),
            "mctp-bad-fcs" => st.faults.bad_fcs = Some(armed(false)?),
            "mctp-busy" => st.faults.busy = Some(armed(false)?),
            "mctp-wrong-tag" => st.faults.wrong_tag = Some(armed(false)?),
            "mctp-late" => st.faults.late = Some(armed(true)?),
            "mctp-blast" => {
                let n = rest
                    .first()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&v| (1..=64 << 20).contains(&v))
                    .ok_or("mctp-blast needs a byte count (1..=67108864)")?;
                let mut c = st
                    .conn
                    .as_ref()
                    .and_then(|c| c.try_clone().ok())
                    .ok_or("no MCTP connection")?;
                std::thread::Builder::new()
                    .name("mctp-blast".into())
                    .spawn(move || {
                        let chunk = vec![0u8; 64 * 1024];
                        let mut left = n;
                        while left > 0 {
                            let k = left.min(chunk.len());
                            if c.write_all(&chunk[..k]).is_err() {
                                return;
                            }
                            left -= k;
                        }
                    })
                    .map_err(|e| format!("no thread: {e}"))?;
            }
            "mctp-stats" => {
                let s = st.stats;
                return Ok(format!(
                    "ok frames-in={} frames-out={} bytes-in={} bytes-out={} \
                     requests={} responses={} dropped={} bad-fcs={} late={} busy={} \
                     wrong-tag={} control={}",
                    s.frames_in,
                    s.frames_out,
                    s.bytes_in,
                    s.bytes_out,
                    s.requests,
                    s.responses,
                    s.dropped,
                    s.bad_fcs,
                    s.late,
                    s.busy,
                    s.wrong_tag,
                    s.control
                ));
            }
            o => return Err(format!("unknown MCTP command '{o}'")),
        }
        Ok("ok".into())
    })();
    Some(match r {
        Ok(s) => s,
        Err(e) => format!("err {e}"),
    })
}

/// Runs a future that never waits (the serial handler over a blocking reader or an in-memory
/// writer) to completion.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A buffered blocking reader of the connection, one byte at a time to the serial handler,
/// counting bytes.
struct ByteReader<'a> {
    stream: &'a mut UnixStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    state: &'a Handle,
}

#[derive(Debug)]
struct IoErr;

impl embedded_io_async::Error for IoErr {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}

impl embedded_io_async::ErrorType for ByteReader<'_> {
    type Error = IoErr;
}

impl embedded_io_async::Read for ByteReader<'_> {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, IoErr> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.len {
            loop {
                match self.stream.read(&mut self.buf) {
                    Ok(0) => return Ok(0),
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        let mut st = lock(self.state);
                        st.stats.bytes_in = st.stats.bytes_in.saturating_add(n as u64);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return Err(IoErr),
                }
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Collects a frame in memory.
struct FrameBuf(Vec<u8>);

impl embedded_io_async::ErrorType for FrameBuf {
    type Error = IoErr;
}

impl embedded_io_async::Write for FrameBuf {
    async fn write(&mut self, b: &[u8]) -> Result<usize, IoErr> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
}

/// Listens on `path` and serves connections (one at a time) in a thread.
pub fn serve(path: &Path, shared: Arc<Shared>, eid: u8, state: Handle) -> anyhow::Result<()> {
    crate::remove_stale_socket(path)?;
    let l = UnixListener::bind(path)
        .with_context(|| format!("bind MCTP serial socket {}", path.display()))?;
    shared.log(
        0,
        &format!(
            "MCTP endpoint EID {eid} (serial binding) on {}",
            path.display()
        ),
    );
    std::thread::Builder::new()
        .name("mctp".into())
        .spawn(move || {
            let start = Instant::now();
            let mut stack = Stack::new(Eid(eid), SERIAL_MTU, 0);
            for conn in l.incoming() {
                match conn {
                    Ok(s) => {
                        shared.log(0, "MCTP serial connection opened");
                        serve_connection(s, &shared, &state, &mut stack, start);
                        shared.log(0, "MCTP serial connection closed");
                    }
                    Err(e) => {
                        shared.log(0, &format!("MCTP accept: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .context("start the MCTP thread")?;
    Ok(())
}

fn now_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A reassembled request: its source, tag, type and body.
struct Request {
    source: Eid,
    tag: mctp::TagValue,
    typ: u8,
    body: Vec<u8>,
}

fn serve_connection(
    mut stream: UnixStream,
    shared: &Shared,
    state: &Handle,
    stack: &mut Stack,
    start: Instant,
) {
    let Ok(mut writer) = stream.try_clone() else {
        shared.log(0, "MCTP: cannot clone the connection");
        return;
    };
    lock(state).conn = stream.try_clone().ok();
    let mut serial = MctpSerialHandler::new();
    let mut rd = ByteReader {
        stream: &mut stream,
        buf: vec![0u8; 16 * 1024],
        pos: 0,
        len: 0,
        state,
    };
    loop {
        let pkt = match block_on(serial.recv_async(&mut rd)) {
            Ok(p) => p.to_vec(),
            Err(_) => return,
        };
        lock(state).stats.frames_in += 1;
        let _ = stack.update(now_ms(start));
        let req = match stack.receive(&pkt) {
            Ok(Some((msg, handle))) => {
                let r = match msg.tag {
                    Tag::Owned(tv) => Some(Request {
                        source: msg.source,
                        tag: tv,
                        typ: msg.typ.0 | if msg.ic.0 { pm::MSG_TYPE_IC } else { 0 },
                        body: msg.payload.to_vec(),
                    }),
                    // A response: this endpoint sends no requests.
                    Tag::Unowned(_) => None,
                };
                stack.finished_receive(handle);
                r
            }
            Ok(None) => None,
            Err(e) => {
                shared.log(1, &format!("MCTP: packet dropped: {e:?}"));
                None
            }
        };
        let Some(req) = req else { continue };
        let Some(resp) = respond(shared, state, stack, &req) else {
            continue;
        };
        send(shared, state, stack, &mut writer, &req, &resp);
    }
}

/// A response to send.
struct Response {
    /// The message type byte.
    typ: u8,
    body: Vec<u8>,
    /// The CXL opcode answered (`None` for a control message).
    op: Option<u16>,
}

/// The response to `req`, or `None` to send nothing.
fn respond(shared: &Shared, state: &Handle, stack: &mut Stack, req: &Request) -> Option<Response> {
    if req.typ == pm::MSG_TYPE_CONTROL {
        lock(state).stats.control += 1;
        return control_response(shared, stack, &req.body).map(|body| Response {
            typ: req.typ,
            body,
            op: None,
        });
    }
    let m = match CxlMessage::decode(req.typ, &req.body) {
        Ok(m) => m,
        Err(e) => {
            shared.log(
                0,
                &format!("MCTP: malformed request of type {:02x}h: {e}", req.typ),
            );
            return None;
        }
    };
    if m.header.category != Category::Request {
        return None;
    }
    let mut st = lock(state);
    st.stats.requests += 1;
    let op = m.header.opcode;
    let busy = take(&mut st.faults.busy, Some(op)).is_some();
    let wrong_tag = take(&mut st.faults.wrong_tag, Some(op)).is_some();
    drop(st);
    let (rc, out) = if busy {
        lock(state).stats.busy += 1;
        shared.log(0, &format!("MCTP {op:04x}h: Busy (fault)"));
        (ReturnCode::Busy, Vec::new())
    } else if m.payload.len() > MAX_REQUEST_PAYLOAD {
        (ReturnCode::InvalidPayloadLength, Vec::new())
    } else {
        shared.with(|d, now| {
            let (rc, out) = d.execute_message(now, op, m.payload);
            (ReturnCode::from_raw(rc), out)
        })
    };
    let tag = if wrong_tag {
        lock(state).stats.wrong_tag += 1;
        shared.log(
            0,
            &format!("MCTP {op:04x}h: response with a wrong tag (fault)"),
        );
        m.header.tag.wrapping_add(1)
    } else {
        m.header.tag
    };
    let mut h = CciHeader::response(op, tag, rc, 0, 0);
    h.background = rc == ReturnCode::BackgroundStarted;
    let mut body = vec![0u8; pm::CXL_MESSAGE_OVERHEAD + out.len()];
    let n = pm::encode(&mut body, &h, &out).ok()?;
    body.truncate(n);
    Some(Response {
        typ: req.typ,
        body,
        op: Some(op),
    })
}

/// Answers an MCTP control request (the body after the type byte).
fn control_response(shared: &Shared, stack: &mut Stack, body: &[u8]) -> Option<Vec<u8>> {
    let req = MctpControlMsg::from_buf(body).ok()?;
    let mut buf = [0u8; 64];
    let types = [
        mctp::MCTP_TYPE_CONTROL,
        MsgType(pm::MSG_TYPE_FMAPI),
        MsgType(pm::MSG_TYPE_CCI),
    ];
    let r = match req.command_code() {
        Ok(control::CommandCode::GetEndpointID) => {
            control::respond_get_eid(&req, stack.eid(), 0, &mut buf)
        }
        Ok(control::CommandCode::SetEndpointID) => match control::parse_set_eid(&req) {
            Ok(set) => {
                let ok = stack.set_eid(set.eid.0).is_ok();
                shared.log(0, &format!("MCTP: Set Endpoint ID {} ({ok})", set.eid.0));
                control::respond_set_eid(&req, ok, stack.eid(), &mut buf)
            }
            Err(cc) => Err(cc),
        },
        Ok(control::CommandCode::GetMessageTypeSupport) => {
            control::respond_get_msg_types(&req, &types, &mut buf)
        }
        _ => {
            let m = control::respond_unimplemented(&req, &mut buf).ok()?;
            return Some(m.slices().concat());
        }
    };
    let m = match r {
        Ok(m) => m,
        Err(cc) => control::respond_error(&req, cc, &mut buf).ok()?,
    };
    Some(m.slices().concat())
}

/// Packetizes and frames `body` of type `typ` as the response to `req`, applying the armed
/// faults, and writes it.
fn send(
    shared: &Shared,
    state: &Handle,
    stack: &mut Stack,
    w: &mut UnixStream,
    req: &Request,
    resp: &Response,
) {
    let (typ, body, op) = (resp.typ, resp.body.as_slice(), resp.op);
    let (drop_it, bad_fcs, late) = {
        let mut st = lock(state);
        let d = take(&mut st.faults.drop, op).is_some();
        let b = !d && take(&mut st.faults.bad_fcs, op).is_some();
        let late = if d {
            None
        } else {
            take(&mut st.faults.late, op).map(|a| a.ms)
        };
        if d {
            st.stats.dropped += 1;
        }
        if b {
            st.stats.bad_fcs += 1;
        }
        if late.is_some() {
            st.stats.late += 1;
        }
        (d, b, late)
    };
    if drop_it {
        shared.log(0, "MCTP: response dropped (fault)");
        return;
    }
    let mut frag = match stack.start_send(
        req.source,
        MsgType(typ & !pm::MSG_TYPE_IC),
        Some(Tag::Unowned(req.tag)),
        false,
        MsgIC(false),
        Some(SERIAL_MTU),
        None,
    ) {
        Ok(f) => f,
        Err(e) => {
            shared.log(0, &format!("MCTP: cannot send a response: {e:?}"));
            return;
        }
    };
    let mut wire = Vec::new();
    let mut frames = 0u64;
    let mut pkt = [0u8; SERIAL_MTU];
    loop {
        match frag.fragment(body, &mut pkt) {
            SendOutput::Packet(p) => {
                let mut f = FrameBuf(Vec::with_capacity(p.len() + 8));
                if block_on(MctpSerialHandler::new().send_async(p, &mut f)).is_err() {
                    return;
                }
                if bad_fcs {
                    // The byte before the closing flag is the FCS's low byte.
                    let i = f.0.len().saturating_sub(2);
                    if let Some(b) = f.0.get_mut(i) {
                        *b = if *b == 0x7e || *b == 0x7d {
                            0x00
                        } else {
                            *b ^ 0x01
                        };
                    }
                }
                frames += 1;
                wire.extend_from_slice(&f.0);
            }
            SendOutput::Complete { .. } => break,
            SendOutput::Error { err, .. } => {
                shared.log(0, &format!("MCTP: fragmenting a response failed: {err:?}"));
                return;
            }
        }
    }
    if bad_fcs {
        shared.log(0, "MCTP: response frames with a bad FCS (fault)");
    }
    if let Some(ms) = late {
        shared.log(0, &format!("MCTP: response delayed by {ms} ms (fault)"));
        std::thread::sleep(Duration::from_millis(ms));
    }
    if w.write_all(&wire).is_ok() {
        let mut st = lock(state);
        st.stats.frames_out += frames;
        st.stats.bytes_out += wire.len() as u64;
        st.stats.responses += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines() {
        let h: Handle = Arc::default();
        assert_eq!(control_line(&h, "mctp-drop").as_deref(), Some("ok"));
        assert!(matches!(
            lock(&h).faults.drop,
            Some(Armed {
                mode: Mode::Once,
                op: None,
                ..
            })
        ));
        assert_eq!(
            control_line(&h, "fault mctp-busy always").as_deref(),
            Some("ok")
        );
        assert!(matches!(
            lock(&h).faults.busy,
            Some(Armed {
                mode: Mode::Always,
                ..
            })
        ));
        assert_eq!(
            control_line(&h, "mctp-drop op 5202 always").as_deref(),
            Some("ok")
        );
        let mut slot = lock(&h).faults.drop;
        assert_eq!(take(&mut slot, Some(0x0001)), None, "another opcode");
        assert_eq!(take(&mut slot, None), None, "a control message");
        assert!(
            take(&mut slot, Some(0x5202)).is_some() && slot.is_some(),
            "always stays"
        );
        let mut once = Some(Armed {
            mode: Mode::Once,
            op: None,
            ms: 0,
        });
        assert!(take(&mut once, Some(1)).is_some() && once.is_none());
        assert!(control_line(&h, "mctp-drop op xyz")
            .unwrap()
            .starts_with("err "));
        assert_eq!(
            control_line(&h, "mctp-late 300 once").as_deref(),
            Some("ok")
        );
        assert!(control_line(&h, "mctp-late").unwrap().starts_with("err "));
        assert!(control_line(&h, "mctp-drop sometimes")
            .unwrap()
            .starts_with("err "));
        assert!(control_line(&h, "mctp-nonsense")
            .unwrap()
            .starts_with("err "));
        assert!(control_line(&h, "mctp-stats")
            .unwrap()
            .starts_with("ok frames-in=0 "));
        // Not ours; `clear` clears ours and goes on to the device.
        assert_eq!(control_line(&h, "delay 5"), None);
        assert_eq!(control_line(&h, "clear"), None);
        assert!(lock(&h).faults.busy.is_none() && lock(&h).faults.drop.is_none());
    }

    /// An emulated switch served on a temporary socket, and a requester at EID 8 on the
    /// other end of the line: mctp-estack on both sides, as Linux's mctp-serial would be.
    struct Bench {
        shared: Arc<Shared>,
        stream: UnixStream,
        stack: Stack,
        rx: MctpSerialHandler,
        start: Instant,
        _dir: std::path::PathBuf,
    }

    impl Bench {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "swcci-emu-mctp-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("m.sock");
            let mut cfg = crate::device::DeviceConfig::new(crate::common::Personality::Switch);
            cfg.serial = 0x1234;
            let dev = crate::device::Device::new(
                cfg,
                Arc::new(crate::irq::EventFdIrqs::new()),
                Duration::ZERO,
            );
            let shared = Arc::new(Shared::new(dev, Instant::now(), 0));
            serve(&path, shared.clone(), DEFAULT_EID, shared.mctp.clone()).unwrap();
            let stream = UnixStream::connect(&path).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            Self {
                shared,
                stream,
                stack: Stack::new(Eid(8), SERIAL_MTU, 0),
                rx: MctpSerialHandler::new(),
                start: Instant::now(),
                _dir: dir,
            }
        }

        fn ctl(&self, line: &str) -> String {
            control_line(&self.shared.mctp, line).unwrap_or_default()
        }

        /// Sends one request message of type `typ` with `body`; returns the raw bytes sent.
        fn send(&mut self, typ: u8, body: &[u8]) -> Vec<u8> {
            let mut frag = self
                .stack
                .start_send(Eid(9), MsgType(typ), None, true, MsgIC(false), None, None)
                .unwrap();
            let mut wire = Vec::new();
            let mut pkt = [0u8; SERIAL_MTU];
            while let SendOutput::Packet(p) = frag.fragment(body, &mut pkt) {
                let mut f = FrameBuf(Vec::new());
                block_on(MctpSerialHandler::new().send_async(p, &mut f)).unwrap();
                wire.extend_from_slice(&f.0);
            }
            self.stream.write_all(&wire).unwrap();
            wire
        }

        /// The next message (type, body), or `None` when nothing whole came in 300 ms.
        fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
            let h: Handle = Arc::default();
            let mut rd = ByteReader {
                stream: &mut self.stream,
                buf: vec![0u8; 1],
                pos: 0,
                len: 0,
                state: &h,
            };
            loop {
                let pkt = block_on(self.rx.recv_async(&mut rd)).ok()?.to_vec();
                let _ = self.stack.update(now_ms(self.start));
                if let Ok(Some((m, handle))) = self.stack.receive(&pkt) {
                    let r = (m.typ.0, m.payload.to_vec());
                    self.stack.finished_receive(handle);
                    return Some(r);
                }
            }
        }

        fn identify(&mut self, tag: u8) -> Option<CxlMessage<'static>> {
            let mut b = [0u8; 12];
            pm::encode_request(&mut b, tag, 0x0001, &[]).unwrap();
            self.send(pm::MSG_TYPE_FMAPI, &b);
            let (t, body) = self.recv()?;
            let body: &'static [u8] = Box::leak(body.into_boxed_slice());
            Some(CxlMessage::decode(t, body).unwrap())
        }
    }

    #[test]
    fn fm_api_and_control_messages_over_the_serial_binding() {
        let mut b = Bench::new();
        let m = b.identify(5).expect("no response");
        assert!(m.answers(pm::CxlMessageType::FmApi, 0x0001, 5));
        assert_eq!(m.rc(), ReturnCode::Success);
        let id = swcci_proto::payload::identify::Identify::decode(m.payload).unwrap();
        assert_eq!(id.serial, 0x1234);
        // A multi-packet request: Get Physical Port State of ports 0..=2 (and a
        // multi-packet response), then a request larger than one packet's data.
        let mut req = [0u8; 16];
        let n = pm::encode_request(&mut req, 6, 0x5101, &[3, 0, 1, 2]).unwrap();
        b.send(pm::MSG_TYPE_FMAPI, &req[..n]);
        let (t, body) = b.recv().unwrap();
        let m = CxlMessage::decode(t, &body).unwrap();
        assert_eq!((m.rc(), m.payload.len()), (ReturnCode::Success, 4 + 3 * 16));
        let big = vec![0u8; 300];
        let mut req = vec![0u8; 12 + big.len()];
        let n = pm::encode_request(&mut req, 7, 0xc001, &big).unwrap();
        b.send(pm::MSG_TYPE_FMAPI, &req[..n]);
        let (t, body) = b.recv().unwrap();
        let m = CxlMessage::decode(t, &body).unwrap();
        assert_eq!(m.payload, &big[..], "echo of 300 bytes");
        // Get Message Type Support.
        let mut c = [0u8; 2];
        pm::encode_control_request(&mut c, 1, pm::CONTROL_GET_MESSAGE_TYPES, &[]).unwrap();
        b.send(0, &c);
        let (t, body) = b.recv().unwrap();
        let r = pm::ControlResponse::decode(t, &body).unwrap();
        assert_eq!(r.message_types().unwrap(), &[0, 7, 8]);
        // Get Endpoint ID.
        b.send(0, &[0x82, 0x02]);
        let (_, body) = b.recv().unwrap();
        assert_eq!(&body[..4], &[0x02, 0x02, 0x00, DEFAULT_EID]);
        // Noise between frames is dropped.
        b.stream.write_all(&[0u8; 100]).unwrap();
        assert!(b.identify(8).is_some());
    }

    #[test]
    fn faults_over_the_serial_binding() {
        let mut b = Bench::new();
        b.ctl("mctp-drop once");
        assert!(b.identify(1).is_none(), "dropped");
        assert!(b.identify(2).is_some(), "once");
        b.ctl("mctp-bad-fcs once");
        assert!(b.identify(3).is_none(), "the FCS check drops it");
        b.ctl("mctp-wrong-tag once");
        let m = b.identify(4).unwrap();
        assert_eq!(m.header.tag, 5);
        assert!(!m.answers(pm::CxlMessageType::FmApi, 0x0001, 4));
        b.ctl("mctp-busy once");
        assert_eq!(b.identify(6).unwrap().rc(), ReturnCode::Busy);
        b.ctl("mctp-drop op 5100 always");
        assert!(b.identify(7).is_some(), "another opcode");
        b.ctl("clear");
        b.ctl("mctp-late 400 once");
        assert!(b.identify(8).is_none(), "late");
        let late = b.recv().map(|(t, body)| {
            let body: &'static [u8] = Box::leak(body.into_boxed_slice());
            CxlMessage::decode(t, body).unwrap().header.tag
        });
        assert_eq!(late, Some(8), "the late response comes after all");
        let stats = b.ctl("mctp-stats");
        for k in ["dropped=1", "bad-fcs=1", "wrong-tag=1", "busy=1", "late=1"] {
            assert!(stats.contains(k), "{stats}");
        }
    }
}
