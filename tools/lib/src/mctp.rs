// SPDX-License-Identifier: GPL-2.0

//! CXL commands over MCTP: a [`Mailbox`] on a Linux AF_MCTP socket (the `mctp-linux` crate),
//! so every typed command, tunnel, firmware update and fabric walk of this library runs on an
//! MCTP endpoint as on a driver node (Documentation/transports.rst).
//!
//! An [`MctpEndpoint`] speaks FM-API (MCTP message type 07h, DSP0234) to a switch, or CCI
//! messages (08h, DSP0281) to a component reachable by EID. Each command is one request
//! message and one response message: the CCI message header and payload of the protocol core
//! ([`crate::proto::payload::mctp`]). Compared with the driver path:
//!
//! - **Timeout.** Each exchange waits [`MctpOptions::timeout`] (default 2 s, libcxlmi's cap)
//!   for its response; then ETIMEDOUT.
//! - **Retries.** A response that did not come (a frame lost on the link, a bad FCS the
//!   kernel dropped) or that does not decode is asked for again only for commands that cannot
//!   change state (by the protocol core's classification, [`crate::proto::effects::classify`],
//!   tunnels judged by what they carry): up to [`MctpOptions::retries`] more times. A
//!   state-changing command whose response was lost is never sent again: the error says that
//!   it may have taken effect. So an endpoint that never answers fails after at most
//!   `(1 + retries) × timeout` for a read-only command and `timeout` for a state-changing one.
//! - **Matching.** Responses are matched by message type, category, opcode and the CCI
//!   message tag (one per request, per endpoint object); anything else that arrives (a late
//!   response to an earlier request, a response with the wrong tag) is counted and dropped,
//!   never returned as the answer.
//! - **Pacing.** [`MctpOptions::min_gap`] keeps at least that time between the end of one
//!   exchange and the next request (devices that need pacing: 20 ms on some, OpenBIC).
//! - **Background operations.** A command answered "background command started" (01h) is
//!   waited for here, as the driver waits on its path: Background Operation Status (0002h)
//!   polled (200 µs doubling to 50 ms) until the operation is no longer running, for at most
//!   the background timeout ([`Mailbox::set_bg_timeout`], default 60 s as the driver's
//!   `bg_timeout_ms`); past it, Request Abort Background Operation (0005h) is sent and the
//!   command fails with ETIMEDOUT, as the driver's `SWCCI_BG_ABORT_ON_TIMEOUT`. The final
//!   return code is the operation's, from Background Operation Status. When the cancel flag
//!   ([`MctpEndpoint::set_cancel`]) is set during the wait, the command returns EINTR and the
//!   operation runs on, as the driver's wait does on a signal; the firmware update then
//!   aborts it (module `fw`).
//! - **Payload size.** 2^n bytes, n from Identify's Max Supported Message Size (read once).
//! - **Access.** No CAP_SYS_RAWIO check, no lockdown check and no kernel taint: the kernel
//!   lets any process with CAP_NET_RAW send any message on an AF_MCTP socket (`mctp_sendmsg`,
//!   net/mctp/af_mctp.c; creating the socket needs nothing), whatever the command does. This
//!   library refuses nothing extra; the CLI's `--yes` rules apply as on the driver path
//!   (Documentation/transports.rst).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mctp::{Eid, MsgType, ReqChannel as _};
use mctp_linux::MctpLinuxReq;

use crate::proto::effects;
use crate::proto::opcode;
use crate::proto::payload::bg::BgOpStatus;
use crate::proto::payload::identify::Identify;
use crate::proto::payload::mctp::{self as pm, CxlMessage, CxlMessageType};
use crate::proto::rc::ReturnCode;
use crate::proto::wire::DecodeError;
use crate::{command_name, Error, Mailbox, RawResponse, Result};

/// The Linux MCTP network of a newly created interface (`MCTP_INITIAL_DEFAULT_NET`,
/// include/net/mctp.h).
pub const DEFAULT_NET: u32 = 1;
/// Default wait for one response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of retries of a read-only command whose response did not come.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default background timeout: the driver's `bg_timeout_ms` default.
pub const DEFAULT_BG_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body accepted: the CCI header and a 1 MiB payload.
const MAX_RESPONSE: usize = pm::CXL_MESSAGE_OVERHEAD + (1 << 20);
/// First pause between Background Operation Status polls, and the longest.
const POLL_MIN: Duration = Duration::from_micros(200);
const POLL_MAX: Duration = Duration::from_millis(50);

/// An MCTP endpoint address: network, EID and the CXL message type spoken to it.
///
/// Written `mctp:EID`, `mctp:NET:EID` (FM-API, type 07h) or `mctp-cci:EID`, `mctp-cci:NET:EID`
/// (CCI, type 08h); EID 8..=254 (DSP0236 §8.2: 0 is null, 1-7 reserved, 255 broadcast), NET a
/// Linux MCTP network (default [`DEFAULT_NET`]); numbers decimal or `0x` hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MctpAddr {
    /// Linux MCTP network id.
    pub net: u32,
    /// Endpoint id.
    pub eid: u8,
    /// FM-API or CCI.
    pub msg_type: CxlMessageType,
}

impl MctpAddr {
    /// Whether a device name is an MCTP address (`mctp:...`, `mctp-cci:...`).
    pub fn is_mctp(name: &str) -> bool {
        name.starts_with("mctp:") || name.starts_with("mctp-cci:")
    }
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl FromStr for MctpAddr {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (msg_type, rest) = if let Some(r) = s.strip_prefix("mctp-cci:") {
            (CxlMessageType::Cci, r)
        } else if let Some(r) = s.strip_prefix("mctp:") {
            (CxlMessageType::FmApi, r)
        } else {
            return Err(format!(
                "'{s}' is not an MCTP address (mctp:[NET:]EID or mctp-cci:[NET:]EID)"
            ));
        };
        if rest.matches(':').count() > 1 {
            return Err(format!(
                "'{rest}' has more parts than [NET:]EID (mctp:[NET:]EID or mctp-cci:[NET:]EID)"
            ));
        }
        let (net, eid) = match rest.split_once(':') {
            Some((n, e)) => (
                parse_num(n)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n != 0)
                    .ok_or_else(|| format!("network '{n}' is not a number from 1"))?,
                e,
            ),
            None => (DEFAULT_NET, rest),
        };
        let eid = parse_num(eid)
            .and_then(|e| u8::try_from(e).ok())
            .filter(|e| (8..=254).contains(e))
            .ok_or_else(|| format!("EID '{eid}' is not a number from 8 to 254"))?;
        Ok(Self { net, eid, msg_type })
    }
}

impl fmt::Display for MctpAddr {
    /// `mctp:1:9`, `mctp-cci:1:10`: how messages name the endpoint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.msg_type {
            CxlMessageType::FmApi => "mctp",
            CxlMessageType::Cci => "mctp-cci",
        };
        write!(f, "{scheme}:{}:{}", self.net, self.eid)
    }
}

/// How an [`MctpEndpoint`] sends commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MctpOptions {
    /// Wait for each response. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// More attempts for a read-only command whose response did not come or did not decode.
    /// Default [`DEFAULT_RETRIES`].
    pub retries: u32,
    /// Least time between the end of one exchange and the next request. Default none.
    pub min_gap: Duration,
}

impl Default for MctpOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            min_gap: Duration::ZERO,
        }
    }
}

/// Counters of an endpoint, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct MctpStats {
    /// Request messages sent (retries included).
    pub requests: AtomicU64,
    /// Requests sent again after a lost or malformed response.
    pub retries: AtomicU64,
    /// Messages received and dropped: not the answer to the request waited for (a late
    /// response, a wrong tag, another opcode).
    pub stale: AtomicU64,
    /// Messages received that did not decode.
    pub malformed: AtomicU64,
    /// Background Operation Status polls.
    pub bg_polls: AtomicU64,
}

/// How messages reach the endpoint: an AF_MCTP socket, or a simulated endpoint in tests.
pub trait Transport: Send {
    /// Sends one message of type byte `typ` with `body`.
    fn send(&mut self, typ: u8, body: &[u8]) -> io::Result<()>;
    /// Receives one message from the endpoint into `buf`, waiting at most `timeout`: its
    /// type byte (with the IC bit) and length; `None` when nothing came in time, or when what
    /// came is not from the endpoint.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<(u8, usize)>>;
}

/// The AF_MCTP socket of an endpoint (mctp-linux).
struct Socket(MctpLinuxReq);

impl Transport for Socket {
    fn send(&mut self, typ: u8, body: &[u8]) -> io::Result<()> {
        self.0.send(MsgType(typ), body).map_err(mctp_io)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<(u8, usize)>> {
        self.0
            .as_socket()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(mctp_io)?;
        match self.0.recv(buf) {
            Ok((typ, ic, msg)) => Ok(Some((
                typ.0 | if ic.0 { pm::MSG_TYPE_IC } else { 0 },
                msg.len(),
            ))),
            Err(mctp::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            // A message from another EID (mctp-linux checks the source): not ours.
            Err(mctp::Error::Other) => Ok(None),
            Err(e) => Err(mctp_io(e)),
        }
    }
}

/// The transport and what one exchange at a time changes.
struct Channel {
    link: Box<dyn Transport>,
    tag: u8,
    last: Option<Instant>,
}

/// A CXL endpoint over MCTP: FM-API or CCI messages on an AF_MCTP socket. See the module
/// documentation for timeouts, retries, pacing and background operations.
pub struct MctpEndpoint {
    addr: MctpAddr,
    path: PathBuf,
    opts: MctpOptions,
    chan: Mutex<Channel>,
    payload_size: std::sync::OnceLock<usize>,
    bg_timeout: Mutex<Duration>,
    cancel: Mutex<Option<Arc<AtomicBool>>>,
    /// Counters.
    pub stats: MctpStats,
}

impl fmt::Debug for MctpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MctpEndpoint")
            .field("addr", &self.addr)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// An exchange's failure, before it becomes an [`Error`].
enum Failure {
    /// No answer in time; `malformed`: the last message that came did not decode.
    NoAnswer(Option<DecodeError>),
    /// A system call failed.
    Os(io::Error),
}

fn os(op: String, err: io::Error) -> Error {
    Error::Os { op, err }
}

fn mctp_io(e: mctp::Error) -> io::Error {
    match e {
        mctp::Error::Io(e) => e,
        mctp::Error::TimedOut => io::Error::from_raw_os_error(libc::ETIMEDOUT),
        mctp::Error::Unreachable => io::Error::from_raw_os_error(libc::EHOSTUNREACH),
        mctp::Error::TagUnavailable => io::Error::from_raw_os_error(libc::EAGAIN),
        e => io::Error::other(format!("{e:?}")),
    }
}

impl MctpEndpoint {
    /// Opens an AF_MCTP socket for `addr`. Nothing is sent yet.
    ///
    /// Errors: [`Error::Os`] when the socket cannot be created (EAFNOSUPPORT on a kernel
    /// without CONFIG_MCTP).
    pub fn open(addr: MctpAddr, opts: MctpOptions) -> Result<Self> {
        let req = MctpLinuxReq::new(Eid(addr.eid), Some(addr.net))
            .map_err(|e| os(format!("open an AF_MCTP socket for {addr}"), mctp_io(e)))?;
        Ok(Self::with_transport(addr, opts, Box::new(Socket(req))))
    }

    /// An endpoint reached through `link` (a simulated endpoint in tests).
    pub fn with_transport(addr: MctpAddr, opts: MctpOptions, link: Box<dyn Transport>) -> Self {
        let path = PathBuf::from(addr.to_string());
        // A tag sequence of its own per process, so two processes' tags seldom meet.
        let tag = (std::process::id() & 0xff) as u8;
        Self {
            addr,
            path,
            opts,
            chan: Mutex::new(Channel {
                link,
                tag,
                last: None,
            }),
            payload_size: std::sync::OnceLock::new(),
            bg_timeout: Mutex::new(DEFAULT_BG_TIMEOUT),
            cancel: Mutex::new(None),
            stats: MctpStats::default(),
        }
    }

    /// The address.
    pub fn addr(&self) -> MctpAddr {
        self.addr
    }

    /// The options.
    pub fn options(&self) -> &MctpOptions {
        &self.opts
    }

    /// A flag that ends a background wait with EINTR when set (the operation runs on), as a
    /// signal ends the driver's wait: `swcci fw update` passes its Ctrl-C flag.
    pub fn set_cancel(&self, flag: Arc<AtomicBool>) {
        *self.cancel.lock().unwrap_or_else(PoisonError::into_inner) = Some(flag);
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    fn op(&self, opcode: u16) -> String {
        format!("{} on {}", command_name(opcode), self.addr)
    }

    /// One request and its response, with the retries the command allows. Returns the
    /// response's header fields and payload.
    fn exchange(&self, opcode: u16, input: &[u8]) -> Result<(ReturnCode, bool, Vec<u8>)> {
        let mut body = vec![0u8; pm::CXL_MESSAGE_OVERHEAD.saturating_add(input.len())];
        let safe = !effects::classify(opcode, input, None).effectful;
        let attempts = if safe {
            self.opts.retries.saturating_add(1)
        } else {
            1
        };
        let mut chan = self.chan.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last = Failure::NoAnswer(None);
        for attempt in 0..attempts {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            chan.tag = chan.tag.wrapping_add(1);
            let tag = chan.tag;
            let n =
                pm::encode_request(&mut body, tag, opcode, input).map_err(|err| Error::Encode {
                    op: self.op(opcode),
                    err,
                })?;
            match self.once(&mut chan, opcode, tag, body.get(..n).unwrap_or(&[])) {
                Ok(r) => return Ok(r),
                Err(Failure::Os(e)) => return Err(os(self.op(opcode), e)),
                Err(f) => last = f,
            }
        }
        let ms = self.opts.timeout.as_millis();
        Err(match last {
            Failure::NoAnswer(Some(err)) => Error::Decode {
                op: format!(
                    "{} (no valid response in {attempts} attempt(s))",
                    self.op(opcode)
                ),
                err,
            },
            Failure::NoAnswer(None) if safe => os(
                format!(
                    "{}: no response in {attempts} attempt(s) of {ms} ms",
                    self.op(opcode)
                ),
                io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ),
            Failure::NoAnswer(None) => os(
                format!(
                    "{}: no response within {ms} ms; the command changes state and was not sent \
                     again: it may have taken effect",
                    self.op(opcode)
                ),
                io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ),
            Failure::Os(e) => os(self.op(opcode), e),
        })
    }

    /// Sends `body` once and waits for its response.
    fn once(
        &self,
        chan: &mut Channel,
        opcode: u16,
        tag: u8,
        body: &[u8],
    ) -> std::result::Result<(ReturnCode, bool, Vec<u8>), Failure> {
        if let Some(last) = chan.last {
            let next = last + self.opts.min_gap;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        let t = self.addr.msg_type;
        let sent = chan.link.send(t.raw(), body);
        chan.last = Some(Instant::now());
        sent.map_err(Failure::Os)?;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.opts.timeout;
        let mut buf = vec![0u8; MAX_RESPONSE];
        let mut malformed = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                chan.last = Some(now);
                return Err(Failure::NoAnswer(malformed));
            }
            let Some((typ, n)) = chan
                .link
                .recv(&mut buf, deadline - now)
                .map_err(Failure::Os)?
            else {
                continue;
            };
            match CxlMessage::decode(typ, buf.get(..n).unwrap_or(&[])) {
                Ok(m) if m.answers(t, opcode, tag) => {
                    chan.last = Some(Instant::now());
                    return Ok((m.header.rc, m.header.background, m.payload.to_vec()));
                }
                Ok(_) => {
                    self.stats.stale.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    malformed = Some(e);
                }
            }
        }
    }

    /// Waits for the background operation `opcode` started by the last command; returns its
    /// final return code. See the module documentation.
    fn wait_bg(&self, opcode: u16) -> Result<ReturnCode> {
        let limit = *self
            .bg_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let deadline = Instant::now() + limit;
        let mut pause = POLL_MIN;
        loop {
            if self.cancelled() {
                return Err(os(
                    format!("{}: waiting for the background operation", self.op(opcode)),
                    io::Error::from_raw_os_error(libc::EINTR),
                ));
            }
            self.stats.bg_polls.fetch_add(1, Ordering::Relaxed);
            let (rc, _, out) = self.exchange(opcode::BG_OP_STATUS, &[])?;
            if !rc.is_success() {
                return Err(Error::Device {
                    op: format!(
                        "{} while waiting for {}",
                        self.op(opcode::BG_OP_STATUS),
                        command_name(opcode)
                    ),
                    rc,
                });
            }
            let s = BgOpStatus::decode(&out).map_err(|err| Error::Decode {
                op: self.op(opcode::BG_OP_STATUS),
                err,
            })?;
            if !s.running {
                if s.opcode != opcode {
                    return Err(Error::Decode {
                        op: format!(
                            "{} after {}",
                            self.op(opcode::BG_OP_STATUS),
                            command_name(opcode)
                        ),
                        err: DecodeError::Invalid {
                            field: "opcode",
                            value: u64::from(s.opcode),
                        },
                    });
                }
                return Ok(s.rc);
            }
            let now = Instant::now();
            if now >= deadline {
                // As the driver with SWCCI_BG_ABORT_ON_TIMEOUT: ask the device to stop it.
                let _ = self.exchange(opcode::REQUEST_ABORT_BG, &[]);
                return Err(os(
                    format!(
                        "{}: still running in the background at {} % after {} ms (Request \
                         Abort Background Operation sent)",
                        self.op(opcode),
                        s.percent,
                        limit.as_millis()
                    ),
                    io::Error::from_raw_os_error(libc::ETIMEDOUT),
                ));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// Identify (0001h) sent directly, for the payload size.
    fn identify_raw(&self) -> Result<Identify> {
        let (rc, _, out) = self.exchange(opcode::IDENTIFY, &[])?;
        if !rc.is_success() {
            return Err(Error::Device {
                op: self.op(opcode::IDENTIFY),
                rc,
            });
        }
        Identify::decode(&out).map_err(|err| Error::Decode {
            op: self.op(opcode::IDENTIFY),
            err,
        })
    }
}

impl Mailbox for MctpEndpoint {
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        let (rc, _, mut out) = self.exchange(opcode, input)?;
        let rc = if rc == ReturnCode::BackgroundStarted {
            self.wait_bg(opcode)?
        } else {
            rc
        };
        out.truncate(out_size);
        Ok(RawResponse { rc, out })
    }

    /// 2^n bytes, n from Identify (0001h)'s Max Supported Message Size (CXL r3.1
    /// §8.2.9.1.1), read once; at most 1 MiB.
    fn payload_size(&self) -> Result<usize> {
        if let Some(&n) = self.payload_size.get() {
            return Ok(n);
        }
        let id = self.identify_raw()?;
        let log2 = u32::from(id.max_msg_size_log2).min(20);
        if log2 < 8 {
            return Err(Error::Decode {
                op: self.op(opcode::IDENTIFY),
                err: DecodeError::Invalid {
                    field: "max_msg_size",
                    value: u64::from(id.max_msg_size_log2),
                },
            });
        }
        Ok(*self.payload_size.get_or_init(|| 1usize << log2))
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn set_bg_timeout(&self, timeout_ms: u32) -> Result<()> {
        let ms = timeout_ms.clamp(
            crate::proto::uapi::SWCCI_BG_TIMEOUT_MIN_MS,
            crate::proto::uapi::SWCCI_BG_TIMEOUT_MAX_MS,
        );
        *self
            .bg_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Duration::from_millis(u64::from(ms));
        Ok(())
    }
}

/// A mailbox a command line names: a driver node (`switch0`, a path) or an MCTP endpoint
/// (`mctp:[NET:]EID`, `mctp-cci:[NET:]EID`).
#[derive(Debug)]
pub enum AnyMailbox {
    /// A node of the driver.
    Device(crate::Device),
    /// An MCTP endpoint.
    Mctp(MctpEndpoint),
}

impl AnyMailbox {
    /// Opens `name`: an MCTP address with `opts`, else a node ([`crate::Device::open`]).
    ///
    /// Errors: [`Error::Argument`] for a malformed MCTP address, saying which part is wrong;
    /// the open's OS error.
    pub fn open(name: &str, opts: &MctpOptions) -> Result<Self> {
        if MctpAddr::is_mctp(name) {
            let addr = name.parse::<MctpAddr>().map_err(|why| Error::Argument {
                op: format!("open {name}"),
                why,
            })?;
            return Ok(Self::Mctp(MctpEndpoint::open(addr, opts.clone())?));
        }
        crate::Device::open(name).map(Self::Device)
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &(dyn Mailbox + Sync) {
        match self {
            Self::Device(d) => d,
            Self::Mctp(m) => m,
        }
    }

    /// Commands to `target` on it.
    pub fn on(&self, target: crate::Target) -> crate::Cci<'_> {
        crate::Cci::new(self.mailbox(), target)
    }

    /// See [`MctpEndpoint::set_cancel`]; nothing for a driver node (a signal ends its wait).
    pub fn set_cancel(&self, flag: Arc<AtomicBool>) {
        if let Self::Mctp(m) = self {
            m.set_cancel(flag);
        }
    }
}

/// Get Message Type Support (MCTP control command 05h, DSP0236 §12.7) of EID `eid` on network
/// `net`: the message types the endpoint says it supports (00h control, 07h FM-API, 08h CCI,
/// ...), waiting at most `timeout`.
///
/// Errors: [`Error::Os`] (the socket's errno; ETIMEDOUT without an answer), [`Error::Decode`]
/// for a malformed answer or a failed completion code.
pub fn message_types(net: u32, eid: u8, timeout: Duration) -> Result<Vec<u8>> {
    let op = format!("Get Message Type Support (MCTP control 05h) on mctp:{net}:{eid}");
    let mut req = MctpLinuxReq::new(Eid(eid), Some(net)).map_err(|e| os(op.clone(), mctp_io(e)))?;
    let mut body = [0u8; 2];
    let n = pm::encode_control_request(&mut body, 0, pm::CONTROL_GET_MESSAGE_TYPES, &[]).map_err(
        |err| Error::Encode {
            op: op.clone(),
            err,
        },
    )?;
    req.send(mctp::MCTP_TYPE_CONTROL, body.get(..n).unwrap_or(&[]))
        .map_err(|e| os(op.clone(), mctp_io(e)))?;
    let deadline = Instant::now() + timeout;
    let mut sock = Socket(req);
    let mut buf = [0u8; 300];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(os(
                format!("{op}: no response within {} ms", timeout.as_millis()),
                io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ));
        }
        let Some((typ, len)) = sock
            .recv(&mut buf, deadline - now)
            .map_err(|e| os(op.clone(), e))?
        else {
            continue;
        };
        let Ok(r) = pm::ControlResponse::decode(typ, buf.get(..len).unwrap_or(&[])) else {
            continue;
        };
        if r.command != pm::CONTROL_GET_MESSAGE_TYPES {
            continue;
        }
        return r
            .message_types()
            .map(<[u8]>::to_vec)
            .map_err(|err| Error::Decode { op, err });
    }
}

/// An MCTP endpoint that answered FM-API, found by [`discover`].
#[derive(Clone, Debug)]
pub struct Found {
    /// Its address.
    pub addr: MctpAddr,
    /// Its Identify (0001h).
    pub identify: Identify,
}

/// Most EIDs [`discover`] asks.
pub const DISCOVER_MAX: usize = 64;

/// The MCTP endpoints the kernel has routes to (the whole range of each route, at most
/// [`DISCOVER_MAX`] EIDs) that list FM-API (07h) in Get Message Type Support and answer
/// Identify (0001h) as FM-API, each within `timeout`, asked once each. A kernel without MCTP,
/// or without routes, has none; an EID that does not answer is left out.
pub fn discover(timeout: Duration) -> Vec<Found> {
    let Ok(routes) = crate::mctp_link::routes() else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    for r in routes {
        for eid in r.first..=r.last {
            if (8..=254).contains(&eid) && seen.len() < DISCOVER_MAX {
                seen.insert(eid);
            }
        }
    }
    let opts = MctpOptions {
        timeout,
        retries: 0,
        min_gap: Duration::ZERO,
    };
    seen.into_iter()
        .filter_map(|eid| {
            let addr = MctpAddr {
                net: DEFAULT_NET,
                eid,
                msg_type: CxlMessageType::FmApi,
            };
            let types = message_types(DEFAULT_NET, eid, timeout).ok()?;
            if !types.contains(&pm::MSG_TYPE_FMAPI) {
                return None;
            }
            let ep = MctpEndpoint::open(addr, opts.clone()).ok()?;
            let identify = ep.identify_raw().ok()?;
            Some(Found { addr, identify })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a: MctpAddr = "mctp:9".parse().unwrap();
        assert_eq!(
            a,
            MctpAddr {
                net: DEFAULT_NET,
                eid: 9,
                msg_type: CxlMessageType::FmApi
            }
        );
        assert_eq!(a.to_string(), "mctp:1:9");
        let b: MctpAddr = "mctp-cci:0x2:0x10".parse().unwrap();
        assert_eq!((b.net, b.eid, b.msg_type), (2, 16, CxlMessageType::Cci));
        assert_eq!(b.to_string(), "mctp-cci:2:16");
        for bad in [
            "mctp:",
            "mctp:7",
            "mctp:255",
            "mctp:0:9",
            "mctp:x:9",
            "mctp:1:2:3",
            "switch0",
        ] {
            assert!(bad.parse::<MctpAddr>().is_err(), "{bad}");
        }
        assert!(MctpAddr::is_mctp("mctp:9") && !MctpAddr::is_mctp("switch0"));
    }

    #[test]
    fn malformed_address_is_a_usage_error_before_any_socket() {
        // Each names the part that is wrong, not a generic "out of range".
        for (name, why) in [
            (
                "mctp:300",
                "open mctp:300: EID '300' is not a number from 8 to 254",
            ),
            (
                "mctp:0:9",
                "open mctp:0:9: network '0' is not a number from 1",
            ),
            (
                "mctp:x:9",
                "open mctp:x:9: network 'x' is not a number from 1",
            ),
            (
                "mctp:1:abc",
                "open mctp:1:abc: EID 'abc' is not a number from 8 to 254",
            ),
            (
                "mctp:1:2:3",
                "open mctp:1:2:3: '1:2:3' has more parts than [NET:]EID \
                 (mctp:[NET:]EID or mctp-cci:[NET:]EID)",
            ),
        ] {
            let e = AnyMailbox::open(name, &MctpOptions::default()).unwrap_err();
            assert!(matches!(e, Error::Argument { .. }), "{e}");
            assert_eq!(e.to_string(), why);
        }
    }
}

#[cfg(test)]
#[path = "mctp_tests.rs"]
mod transport_tests;
