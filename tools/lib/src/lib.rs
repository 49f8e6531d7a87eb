// SPDX-License-Identifier: GPL-2.0

//! Userspace access to `cxl_swcci` device nodes: the one way the `swcci` tool, the in-guest
//! suite and other programs talk to the driver.
//!
//! - [`Device`] wraps one node (`/dev/cxl/switchN`, `/dev/swcci/mmptN`) and speaks its ioctl
//!   ABI: raw commands with `CXL_MEM_SEND_COMMAND`, `CXL_MEM_QUERY_COMMANDS`, the driver's info
//!   and background-policy ioctls, MMB commands and MMPT messages.
//! - [`Target`] names where a command goes: the switch CCI itself, or a component reached
//!   through Tunnel Management Commands (5300h) (a port; an LD of the MLD on a port).
//!   [`Device::on`] gives a [`Cci`] for a target, whose typed commands (Identify, logs, CEL,
//!   background status, switch commands, raw) encode requests and decode responses with the
//!   protocol core (`swcci-proto`), so layouts and constants are never declared twice.
//! - Firmware update ([`Cci::fw_info`], [`Cci::fw_transfer`], [`Cci::fw_activate`],
//!   [`Cci::fw_abort`]) of any target: parts sized to the payload, Busy retried, background
//!   parts waited for, an abort on failure or cancellation (module `fw`,
//!   Documentation/firmware.rst).
//! - Event records ([`events`]): Get and Clear Event Records, the Event Interrupt Policy, and
//!   [`Cci::drain_events`], one pass over a target's event logs that decodes (and when asked
//!   clears) every record (Documentation/events.rst).
//! - [`list`] finds every node of the driver, with an error for each one that does not answer.
//! - [`mctp::MctpEndpoint`] is a [`Mailbox`] over Linux AF_MCTP sockets (FM-API, CCI), so the
//!   same commands and workflows run over MCTP; [`mctp_link`] brings an MCTP serial link up
//!   and reads the kernel's MCTP routes (Documentation/transports.rst).
//! - [`fabric::walk`] reads every switch, its VCSs, ports, the components behind them and their
//!   LDs, with a per-device timeout.
//!
//! Errors say what was attempted on which device: an OS error carries the errno, a device
//! refusal carries the CXL return code, a malformed response names the field.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use swcci_proto as proto;

mod cci;
pub mod dcd;
pub mod events;
pub mod fabric;
mod fw;
#[cfg(feature = "topology")]
pub mod kernel_log;
pub mod ld;
pub mod mctp;
pub mod mctp_link;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_dcd;
#[cfg(feature = "topology")]
pub mod topology;

pub use cci::{
    vppb_limit, Cci, CelLog, LdAllocs, Mailbox, Response, Target, Vcs, Vppb, TUNNEL_OVERHEAD,
};
pub use fw::{
    part_size, plan, rc_meaning, revision_text, AbortOutcome, AbortReport, ActivateAction,
    ActivateReport, FwError, FwFailure, FwInfo, FwOptions, Part, Phase, Progress, TransferReport,
    MAX_IMAGE,
};

use proto::mmpt::MmptCode;
use proto::opcode;
use proto::payload::{
    bg::BgOpStatus,
    identify::Identify,
    logs::{CelEntry, SupportedLog, Uuid},
    switch::{IdentifySwitch, PortInfo},
};
use proto::rc::ReturnCode;
use proto::uapi::{
    self, CxlCommandInfo, CxlMemQueryCommands, CxlPayload, CxlSendCommand, SwcciBgPolicy,
    SwcciInfo, SwcciMmbCommand, SwcciMmptMsg, Wire,
};
use proto::wire::{DecodeError, EncodeError};

/// Where switch CCI nodes live (`switchN`).
pub const CXL_DEV_DIR: &str = "/dev/cxl";
/// Where the driver's other nodes live (`mmptN`: PCIe MMB/MMPT functions).
pub const SWCCI_DEV_DIR: &str = "/dev/swcci";

/// What went wrong, and what was being done.
#[derive(Debug)]
pub enum Error {
    /// A system call failed.
    Os {
        /// What was attempted.
        op: String,
        /// The error.
        err: io::Error,
    },
    /// The device completed the command with a return code other than success.
    Device {
        /// What was attempted.
        op: String,
        /// The return code.
        rc: ReturnCode,
    },
    /// The response could not be decoded.
    Decode {
        /// What was attempted.
        op: String,
        /// Why.
        err: DecodeError,
    },
    /// A request could not be built from the arguments.
    Encode {
        /// What was attempted.
        op: String,
        /// Why.
        err: EncodeError,
    },
    /// An argument naming what to open (a node's path, an MCTP address) is malformed; nothing
    /// was opened or sent.
    Argument {
        /// What was attempted.
        op: String,
        /// What is wrong with it.
        why: String,
    },
    /// A device took longer than the caller allowed (the fabric walk's per-device timeout);
    /// nothing more was sent to it.
    Timeout {
        /// What was not attempted.
        op: String,
        /// The time allowed, in milliseconds.
        ms: u64,
    },
    /// The device's answers lack something the specification requires of it (a Command
    /// Effects Log in Get Supported Logs: CXL r3.1 §8.2.9.5.1). A malformed response, like
    /// [`Error::Decode`].
    Missing {
        /// What was attempted.
        op: String,
        /// What is missing.
        what: &'static str,
    },
}

impl Error {
    /// The errno of an OS error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Os { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }

    /// The return code of a device error.
    pub fn rc(&self) -> Option<ReturnCode> {
        match self {
            Self::Device { rc, .. } => Some(*rc),
            _ => None,
        }
    }

    /// Whether the device did not answer in time: the driver's ETIMEDOUT (a command that never
    /// completed: the doorbell timeout; a background operation past the file's timeout), or
    /// the caller's own deadline ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. }) || self.errno() == Some(libc::ETIMEDOUT)
    }

    /// Whether the device sent something the specification does not allow (a response that
    /// does not decode, or lacks a required part).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Decode { .. } | Self::Missing { .. })
    }
}

/// Symbolic names of the errnos open(2), read(2) and ioctl(2) on a node (and the driver)
/// can return, from the C library's values.
const ERRNO_NAMES: &[(i32, &str)] = &[
    (libc::EPERM, "EPERM"),
    (libc::ENOENT, "ENOENT"),
    (libc::ESRCH, "ESRCH"),
    (libc::EINTR, "EINTR"),
    (libc::EIO, "EIO"),
    (libc::ENXIO, "ENXIO"),
    (libc::E2BIG, "E2BIG"),
    (libc::ENOEXEC, "ENOEXEC"),
    (libc::EBADF, "EBADF"),
    (libc::ECHILD, "ECHILD"),
    (libc::EAGAIN, "EAGAIN"),
    (libc::ENOMEM, "ENOMEM"),
    (libc::EACCES, "EACCES"),
    (libc::EFAULT, "EFAULT"),
    (libc::ENOTBLK, "ENOTBLK"),
    (libc::EBUSY, "EBUSY"),
    (libc::EEXIST, "EEXIST"),
    (libc::EXDEV, "EXDEV"),
    (libc::ENODEV, "ENODEV"),
    (libc::ENOTDIR, "ENOTDIR"),
    (libc::EISDIR, "EISDIR"),
    (libc::EINVAL, "EINVAL"),
    (libc::ENFILE, "ENFILE"),
    (libc::EMFILE, "EMFILE"),
    (libc::ENOTTY, "ENOTTY"),
    (libc::ETXTBSY, "ETXTBSY"),
    (libc::EFBIG, "EFBIG"),
    (libc::ENOSPC, "ENOSPC"),
    (libc::ESPIPE, "ESPIPE"),
    (libc::EROFS, "EROFS"),
    (libc::EMLINK, "EMLINK"),
    (libc::EPIPE, "EPIPE"),
    (libc::ERANGE, "ERANGE"),
    (libc::EDEADLK, "EDEADLK"),
    (libc::ENAMETOOLONG, "ENAMETOOLONG"),
    (libc::ENOLCK, "ENOLCK"),
    (libc::ENOSYS, "ENOSYS"),
    (libc::ELOOP, "ELOOP"),
    (libc::ENOMSG, "ENOMSG"),
    (libc::ENODATA, "ENODATA"),
    (libc::ETIME, "ETIME"),
    (libc::EPROTO, "EPROTO"),
    (libc::EBADMSG, "EBADMSG"),
    (libc::EOVERFLOW, "EOVERFLOW"),
    (libc::EILSEQ, "EILSEQ"),
    (libc::EMSGSIZE, "EMSGSIZE"),
    (libc::EOPNOTSUPP, "EOPNOTSUPP"),
    (libc::ENOTCONN, "ENOTCONN"),
    (libc::ESHUTDOWN, "ESHUTDOWN"),
    (libc::ETIMEDOUT, "ETIMEDOUT"),
    (libc::ECONNREFUSED, "ECONNREFUSED"),
    // The AF_MCTP transport's (src/mctp.rs): socket(2), bind(2), sendto(2).
    (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
    (libc::EPROTONOSUPPORT, "EPROTONOSUPPORT"),
    (libc::EADDRINUSE, "EADDRINUSE"),
    (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (libc::ENETUNREACH, "ENETUNREACH"),
    (libc::EHOSTUNREACH, "EHOSTUNREACH"),
    (libc::EHOSTDOWN, "EHOSTDOWN"),
    (libc::EALREADY, "EALREADY"),
    (libc::EINPROGRESS, "EINPROGRESS"),
    (libc::ESTALE, "ESTALE"),
    (libc::EREMOTEIO, "EREMOTEIO"),
    (libc::EDQUOT, "EDQUOT"),
    (libc::ENOMEDIUM, "ENOMEDIUM"),
    (libc::EMEDIUMTYPE, "EMEDIUMTYPE"),
    (libc::ECANCELED, "ECANCELED"),
    (libc::ENOKEY, "ENOKEY"),
    (libc::EKEYEXPIRED, "EKEYEXPIRED"),
    (libc::EKEYREVOKED, "EKEYREVOKED"),
    (libc::EKEYREJECTED, "EKEYREJECTED"),
    (libc::EOWNERDEAD, "EOWNERDEAD"),
    (libc::ENOTRECOVERABLE, "ENOTRECOVERABLE"),
    (libc::ERFKILL, "ERFKILL"),
    (libc::EHWPOISON, "EHWPOISON"),
];

/// The symbolic name of an errno (`ENXIO`), for messages; `errno` for one not in the table.
pub fn errno_name(errno: i32) -> &'static str {
    ERRNO_NAMES
        .iter()
        .find(|(e, _)| *e == errno)
        .map_or("errno", |(_, name)| name)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Os { op, err } => match err.raw_os_error() {
                Some(e) => {
                    let text = io::Error::from_raw_os_error(e).to_string();
                    let text = text.split(" (os error").next().unwrap_or("");
                    write!(f, "{op}: {} ({text})", errno_name(e))
                }
                None => write!(f, "{op}: {err}"),
            },
            Self::Device { op, rc } => write!(f, "{op}: device returned {rc}"),
            Self::Decode { op, err } => write!(f, "{op}: malformed response: {err}"),
            Self::Encode { op, err } => write!(f, "{op}: {err}"),
            Self::Argument { op, why } => write!(f, "{op}: {why}"),
            Self::Missing { op, what } => write!(f, "{op}: malformed response: {what}"),
            Self::Timeout { op, ms } => {
                write!(
                    f,
                    "{op}: not sent: the device took more than {ms} ms (ETIMEDOUT)"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A raw command's outcome: the return code and the output bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// The device's return code.
    pub rc: ReturnCode,
    /// The output payload.
    pub out: Vec<u8>,
}

/// An open device node.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    /// The mailbox payload size, read once from `SWCCI_IOCTL_INFO`.
    payload_size: OnceLock<usize>,
}

/// The ioctl request type of the C library.
#[cfg(target_env = "musl")]
type Request = libc::c_int;
#[cfg(not(target_env = "musl"))]
type Request = libc::c_ulong;

impl Device {
    /// Opens a node: a bare name is looked up in /dev/cxl (`switch0`), a name starting with
    /// `cxl/` or `swcci/` in /dev (`cxl/switch0`, the form `SWCCI_IOCTL_INFO` reports;
    /// `swcci/mmpt0`); anything else is a path.
    pub fn open(name: impl AsRef<Path>) -> Result<Self> {
        let path = node_path(name.as_ref());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|err| Error::Os {
                op: open_op(&path, &err, Path::new(MODULE_DIR).exists()),
                err,
            })?;
        Ok(Self {
            file,
            path,
            payload_size: OnceLock::new(),
        })
    }

    /// The node's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commands to `target` through this node: the switch CCI itself, or a component behind
    /// one of its ports.
    pub fn on(&self, target: Target) -> Cci<'_> {
        Cci::new(self, target)
    }

    fn op(&self, what: impl fmt::Display) -> String {
        format!("{what} on {}", self.path.display())
    }

    /// Issues an ioctl whose argument is `buf`.
    fn ioctl(&self, cmd: u32, buf: &mut [u8], what: &str) -> Result<()> {
        // SAFETY: `buf` is valid for reads and writes of its length, which is the size encoded
        // in `cmd` for every ioctl this crate issues; pointers inside `buf` (payloads) point to
        // buffers the callers keep alive across the call.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as Request, buf.as_mut_ptr()) };
        if r < 0 {
            let err = io::Error::last_os_error();
            // ENOTTY: the file knows no such ioctl, so it is not a node of this driver (or of
            // cxl_pci for the CXL_MEM ones): say so rather than leave a bare "not a tty".
            let op = if err.raw_os_error() == Some(libc::ENOTTY) {
                self.op(format_args!("{what} (not a node of cxl_swcci)"))
            } else {
                self.op(what)
            };
            return Err(Error::Os { op, err });
        }
        Ok(())
    }

    /// Raw `ioctl(fd, cmd, arg)` for tests that probe the ABI with arbitrary arguments.
    /// Returns the errno on failure.
    pub fn ioctl_raw(&self, cmd: u32, arg: usize) -> std::result::Result<i32, i32> {
        // SAFETY: the kernel validates `arg` as a user pointer; a bad one yields EFAULT, it
        // cannot corrupt this process (the kernel only writes through valid mappings).
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as Request, arg) };
        if r < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(r)
        }
    }

    /// `SWCCI_IOCTL_INFO`.
    pub fn info(&self) -> Result<SwcciInfo> {
        let mut b = [0u8; SwcciInfo::SIZE];
        self.ioctl(uapi::SWCCI_IOCTL_INFO, &mut b, "SWCCI_IOCTL_INFO")?;
        SwcciInfo::from_bytes(&b).ok_or_else(|| Error::Decode {
            op: self.op("SWCCI_IOCTL_INFO"),
            err: DecodeError::Invalid {
                field: "swcci_info",
                value: 0,
            },
        })
    }

    /// `CXL_MEM_QUERY_COMMANDS`: every command the node carries.
    pub fn query(&self) -> Result<Vec<CxlCommandInfo>> {
        let mut hdr = [0u8; CxlMemQueryCommands::SIZE];
        self.ioctl(
            uapi::CXL_MEM_QUERY_COMMANDS,
            &mut hdr,
            "CXL_MEM_QUERY_COMMANDS",
        )?;
        let n = CxlMemQueryCommands::from_bytes(&hdr).map_or(0, |q| q.n_commands) as usize;
        let mut buf = vec![0u8; CxlMemQueryCommands::SIZE + n * CxlCommandInfo::SIZE];
        let q = CxlMemQueryCommands {
            n_commands: n as u32,
            rsvd: 0,
        };
        q.to_bytes(&mut buf).expect("buffer sized for the header");
        self.ioctl(
            uapi::CXL_MEM_QUERY_COMMANDS,
            &mut buf,
            "CXL_MEM_QUERY_COMMANDS",
        )?;
        Ok(buf[CxlMemQueryCommands::SIZE..]
            .chunks_exact(CxlCommandInfo::SIZE)
            .filter_map(CxlCommandInfo::from_bytes)
            .collect())
    }

    /// `SWCCI_IOCTL_BG_POLICY`: sets this file's background policy (a zero timeout keeps the
    /// current one) and returns the policy in effect.
    pub fn bg_policy(&self, p: SwcciBgPolicy) -> Result<SwcciBgPolicy> {
        let mut b = [0u8; SwcciBgPolicy::SIZE];
        p.to_bytes(&mut b).expect("sized buffer");
        self.ioctl(uapi::SWCCI_IOCTL_BG_POLICY, &mut b, "SWCCI_IOCTL_BG_POLICY")?;
        Ok(SwcciBgPolicy::from_bytes(&b).unwrap_or_default())
    }

    /// `SWCCI_IOCTL_BG_RESULT`: the outcome of this file's asynchronous background operation
    /// (`SWCCI_BG_ASYNC`); an ended one is collected (Documentation/abi.rst).
    pub fn bg_result(&self) -> Result<uapi::SwcciBgResult> {
        let mut b = [0u8; uapi::SwcciBgResult::SIZE];
        self.ioctl(uapi::SWCCI_IOCTL_BG_RESULT, &mut b, "SWCCI_IOCTL_BG_RESULT")?;
        Ok(uapi::SwcciBgResult::from_bytes(&b).unwrap_or_default())
    }

    /// poll(2) on the node for `events` (`libc::POLLIN`, `POLLPRI`, ...), waiting up to
    /// `timeout_ms` (negative: for ever). Returns the events reported (0: none in time);
    /// EINTR is retried.
    pub fn poll(&self, events: i16, timeout_ms: i32) -> Result<i16> {
        let mut fds = [libc::pollfd {
            fd: self.file.as_raw_fd(),
            events,
            revents: 0,
        }];
        loop {
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout_ms) };
            if r >= 0 {
                return Ok(fds[0].revents);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::Os {
                    op: self.op("poll"),
                    err,
                });
            }
        }
    }

    /// The file descriptor of the node (for epoll and other multiplexers).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// Sends raw command `opcode` with `input` to the node's own CCI, accepting up to
    /// `out_size` output bytes. Returns whatever the device answered, including non-success
    /// return codes. (Commands to any target: [`Device::on`] and [`Cci::raw`].)
    pub fn raw(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        let mut out = vec![0u8; out_size];
        let cmd = CxlSendCommand {
            id: uapi::CXL_MEM_COMMAND_ID_RAW,
            flags: 0,
            raw_opcode: opcode,
            raw_rsvd: 0,
            retval: 0,
            input: payload_in(input),
            output: payload_out(&mut out),
        };
        let mut b = [0u8; CxlSendCommand::SIZE];
        cmd.to_bytes(&mut b).expect("sized buffer");
        self.ioctl(uapi::CXL_MEM_SEND_COMMAND, &mut b, &command_name(opcode))?;
        let done = CxlSendCommand::from_bytes(&b).expect("sized buffer");
        out.truncate((done.output.size as usize).min(out_size));
        Ok(RawResponse {
            rc: ReturnCode::from_raw(done.retval as u16),
            out,
        })
    }

    /// The mailbox payload size (`SWCCI_IOCTL_INFO`, read once): the most a command carries.
    pub fn payload_size(&self) -> Result<usize> {
        if let Some(&n) = self.payload_size.get() {
            return Ok(n);
        }
        let n = usize::try_from(self.info()?.payload_size).unwrap_or(usize::MAX);
        Ok(*self.payload_size.get_or_init(|| n))
    }

    // The node's own CCI, by name: shorthands of `self.on(Target::Direct)`.

    /// Sends `opcode` to the node's own CCI and returns at most `out_size` bytes of output;
    /// fails unless the device returns success: `self.on(Target::Direct).command(..)`.
    pub fn command(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<Vec<u8>> {
        self.on(Target::Direct).command(opcode, input, out_size)
    }

    /// Identify (0001h) of the node's own CCI: `self.on(Target::Direct).identify()`.
    pub fn identify(&self) -> Result<Identify> {
        self.on(Target::Direct).identify()
    }

    /// Identify Switch Device (5100h): `self.on(Target::Direct).identify_switch()`.
    pub fn identify_switch(&self) -> Result<IdentifySwitch> {
        self.on(Target::Direct).identify_switch()
    }

    /// Get Physical Port State (5101h): `self.on(Target::Direct).port_states(ports)`.
    pub fn port_states(&self, ports: &[u8]) -> Result<Vec<PortInfo>> {
        self.on(Target::Direct).port_states(ports)
    }

    /// Get Supported Logs (0400h): `self.on(Target::Direct).supported_logs()`.
    pub fn supported_logs(&self) -> Result<Vec<SupportedLog>> {
        self.on(Target::Direct).supported_logs()
    }

    /// Get Log (0401h) of a whole log: `self.on(Target::Direct).read_log(uuid, size)`.
    pub fn read_log(&self, uuid: &Uuid, size: u32) -> Result<Vec<u8>> {
        self.on(Target::Direct).read_log(uuid, size)
    }

    /// The Command Effects Log's entries: `self.on(Target::Direct).cel()`.
    pub fn cel(&self) -> Result<Vec<CelEntry>> {
        self.on(Target::Direct).cel()
    }

    /// Background Operation Status (0002h): `self.on(Target::Direct).bg_status()`.
    pub fn bg_status(&self) -> Result<BgOpStatus> {
        self.on(Target::Direct).bg_status()
    }

    /// Sends `opcode` with `payload` through tunnels along `path` (`[port]` or `[port, ld]`):
    /// `self.on(target).raw(opcode, payload, payload size)` for the target of `path`.
    /// A path of another length is [`Error::Encode`].
    pub fn tunnel(&self, path: &[u8], opcode: u16, payload: &[u8]) -> Result<Response> {
        let target = Target::from_path(path)
            .filter(|t| *t != Target::Direct)
            .ok_or_else(|| Error::Encode {
                op: self.op(format!("{} via {path:?}", command_name(opcode))),
                err: EncodeError::Invalid {
                    what: "tunnel path (one or two levels)",
                },
            })?;
        let cci = self.on(target);
        cci.raw(opcode, payload, cci.payload_size()?)
    }
}

impl Mailbox for Device {
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        self.raw(opcode, input, out_size)
    }

    fn payload_size(&self) -> Result<usize> {
        Device::payload_size(self)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn set_bg_timeout(&self, timeout_ms: u32) -> Result<()> {
        self.bg_policy(SwcciBgPolicy {
            timeout_ms,
            flags: uapi::SWCCI_BG_ABORT_ON_TIMEOUT,
        })
        .map(|_| ())
    }
}

/// What `SWCCI_MMPT_RECV` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MmptRecv {
    /// A message.
    Message {
        /// Its type.
        msg_type: u8,
        /// Its data.
        data: Vec<u8>,
    },
    /// A message of `len` bytes is waiting but the buffer was smaller; it stays queued.
    TooBig {
        /// Its type.
        msg_type: u8,
        /// Its length.
        len: usize,
    },
}

/// The result of a raw MMB command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmbResponse {
    /// Return code (a CXL code for vendor 0000h, an MMPT code for 0001h).
    pub rc: u16,
    /// Vendor extended status.
    pub vendor_status: u16,
    /// Output.
    pub out: Vec<u8>,
}

impl Device {
    /// `SWCCI_MMPT_SEND`: sends one message; returns the device's MMPT return code.
    pub fn mmpt_send(&self, msg_type: u8, data: &[u8]) -> Result<MmptCode> {
        self.mmpt_send_timeout(msg_type, data, 0)
    }

    /// `SWCCI_MMPT_SEND` with `timeout_ms` in the structure (Documentation/mmpt.rst: the
    /// cap on the whole transfer in ms, 0 for the driver's default); returns the device's MMPT
    /// return code. Errors: the ioctl's errno (ETIMEDOUT when the transfer took longer).
    pub fn mmpt_send_timeout(
        &self,
        msg_type: u8,
        data: &[u8],
        timeout_ms: u32,
    ) -> Result<MmptCode> {
        let m = SwcciMmptMsg {
            msg_type,
            timeout_ms,
            len: data.len() as u32,
            data: data.as_ptr() as u64,
            ..SwcciMmptMsg::default()
        };
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        m.to_bytes(&mut b).expect("sized buffer");
        self.ioctl(uapi::SWCCI_MMPT_SEND, &mut b, "SWCCI_MMPT_SEND")?;
        let done = SwcciMmptMsg::from_bytes(&b).expect("sized buffer");
        Ok(MmptCode::from_raw(done.retval as u16))
    }

    /// `SWCCI_MMPT_RECV`: receives one message of at most `buf_size` bytes, waiting up to
    /// `timeout_ms` (0: no wait).
    pub fn mmpt_recv(&self, buf_size: usize, timeout_ms: u32) -> Result<MmptRecv> {
        let mut data = vec![0u8; buf_size];
        let m = SwcciMmptMsg {
            timeout_ms,
            len: buf_size as u32,
            data: data.as_mut_ptr() as u64,
            ..SwcciMmptMsg::default()
        };
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        m.to_bytes(&mut b).expect("sized buffer");
        let r = self.ioctl(uapi::SWCCI_MMPT_RECV, &mut b, "SWCCI_MMPT_RECV");
        let done = SwcciMmptMsg::from_bytes(&b).expect("sized buffer");
        match r {
            Ok(()) => {
                data.truncate((done.len as usize).min(buf_size));
                Ok(MmptRecv::Message {
                    msg_type: done.msg_type,
                    data,
                })
            }
            Err(e) if e.errno() == Some(libc::EMSGSIZE) => Ok(MmptRecv::TooBig {
                msg_type: done.msg_type,
                len: done.len as usize,
            }),
            Err(e) => Err(e),
        }
    }

    /// `SWCCI_MMB_SEND_COMMAND`: a raw MMB command with an explicit opcode vendor id.
    pub fn mmb_command(
        &self,
        opcode: u16,
        opcode_vendor: u16,
        input: &[u8],
        out_size: usize,
    ) -> Result<MmbResponse> {
        let mut out = vec![0u8; out_size];
        let c = SwcciMmbCommand {
            opcode,
            opcode_vendor,
            input: payload_in(input),
            output: payload_out(&mut out),
            ..SwcciMmbCommand::default()
        };
        let mut b = [0u8; SwcciMmbCommand::SIZE];
        c.to_bytes(&mut b).expect("sized buffer");
        self.ioctl(
            uapi::SWCCI_MMB_SEND_COMMAND,
            &mut b,
            &format!("MMB command {opcode:04x}h of vendor {opcode_vendor:04x}h"),
        )?;
        let done = SwcciMmbCommand::from_bytes(&b).expect("sized buffer");
        out.truncate((done.output.size as usize).min(out_size));
        Ok(MmbResponse {
            rc: done.retval as u16,
            vendor_status: done.vendor_status as u16,
            out,
        })
    }
}

/// Where the driver's module shows while it is loaded.
const MODULE_DIR: &str = "/sys/module/cxl_swcci";

/// What opening a node at `path` was, for its error: "open PATH", and why a node of the
/// driver's directories is missing when the driver is not `loaded`.
fn open_op(path: &Path, err: &io::Error, loaded: bool) -> String {
    let ours = path.starts_with(CXL_DEV_DIR) || path.starts_with(SWCCI_DEV_DIR);
    if err.kind() == io::ErrorKind::NotFound && ours && !loaded {
        format!("open {} (cxl_swcci is not loaded)", path.display())
    } else {
        format!("open {}", path.display())
    }
}

/// Where a node name given on a command line is: a bare name in /dev/cxl, `cxl/...` and
/// `swcci/...` in /dev (the forms `SWCCI_IOCTL_INFO` reports), anything else as given.
fn node_path(name: &Path) -> PathBuf {
    let bare = name.components().count() == 1
        && !name.has_root()
        && name != Path::new(".")
        && name != Path::new("..");
    if bare {
        Path::new(CXL_DEV_DIR).join(name)
    } else if !name.has_root() && (name.starts_with("cxl") || name.starts_with("swcci")) {
        Path::new("/dev").join(name)
    } else {
        name.to_path_buf()
    }
}

/// One node of the driver found by [`list`].
#[derive(Debug)]
pub struct Node {
    /// Its path.
    pub path: PathBuf,
    /// What `SWCCI_IOCTL_INFO` reports, or why the node could not be asked (open or ioctl
    /// failed: for example EACCES without permission, ENXIO for a failed device).
    pub info: Result<SwcciInfo>,
}

impl Node {
    /// Whether it is a switch mailbox CCI (else a PCIe MMB/MMPT function): what the driver
    /// reports, or where the node is when it could not be asked.
    pub fn is_switch(&self) -> bool {
        match &self.info {
            Ok(i) => i.kind == uapi::SWCCI_KIND_SWITCH_CCI,
            Err(_) => self.path.starts_with(CXL_DEV_DIR),
        }
    }
}

/// Sort key that puts `switch2` before `switch10`.
fn natural_key(p: &Path) -> (PathBuf, String, u64) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    (
        p.parent().map(Path::to_path_buf).unwrap_or_default(),
        stem.to_string(),
        num.parse().unwrap_or(0),
    )
}

/// The candidate nodes in `dir` whose names pass `keep`. A missing directory has none.
fn scan(dir: &str, keep: fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Error::Os {
                op: format!("list {dir}"),
                err,
            })
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|err| Error::Os {
            op: format!("list {dir}"),
            err,
        })?;
        if keep(&e.file_name().to_string_lossy()) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The node a command line names (`switch0`, `cxl/switch0`, a path; see [`Device::open`]),
/// with what `SWCCI_IOCTL_INFO` reports or why it could not be asked.
pub fn node(name: impl AsRef<Path>) -> Node {
    let path = node_path(name.as_ref());
    let info = Device::open(&path).and_then(|d| d.info());
    Node { path, info }
}

/// Every node of the driver: `switchN` in /dev/cxl (other nodes there, such as the CXL memory
/// devices' `memN`, belong to other drivers) and every node in /dev/swcci, sorted by name
/// (switch2 before switch10). Each comes with what `SWCCI_IOCTL_INFO` reports or the error
/// that stopped it, so a node that exists but does not answer is reported, not dropped.
///
/// Errors: only failures to read the directories (a missing directory has no nodes).
pub fn list() -> Result<Vec<Node>> {
    let mut paths = scan(CXL_DEV_DIR, |n| n.starts_with("switch"))?;
    paths.extend(scan(SWCCI_DEV_DIR, |_| true)?);
    paths.sort_by_key(|p| natural_key(p));
    Ok(paths.into_iter().map(node).collect())
}

/// A NUL-terminated field of [`SwcciInfo`] as text.
pub fn info_str(field: &[u8]) -> String {
    String::from_utf8_lossy(uapi::get_cstr(field)).into_owned()
}

/// How errors name a command: `Get Log (0401h)`.
pub fn command_name(opcode: u16) -> String {
    format!(
        "{} ({opcode:04x}h)",
        opcode::name(opcode).unwrap_or("command")
    )
}

/// The payload descriptor of a command's input.
fn payload_in(input: &[u8]) -> CxlPayload {
    CxlPayload {
        size: input.len() as u32,
        rsvd: 0,
        payload: input.as_ptr() as u64,
    }
}

/// The payload descriptor of a command's output buffer.
fn payload_out(out: &mut [u8]) -> CxlPayload {
    CxlPayload {
        size: out.len() as u32,
        rsvd: 0,
        payload: out.as_mut_ptr() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert_eq!(
            node_path(Path::new("switch0")),
            Path::new("/dev/cxl/switch0")
        );
        assert_eq!(
            node_path(Path::new("cxl/switch1")),
            Path::new("/dev/cxl/switch1")
        );
        assert_eq!(
            node_path(Path::new("swcci/mmpt0")),
            Path::new("/dev/swcci/mmpt0")
        );
        assert_eq!(node_path(Path::new("/tmp/x")), Path::new("/tmp/x"));
        assert_eq!(node_path(Path::new("./x")), Path::new("./x"));
        assert_eq!(node_path(Path::new("..")), Path::new(".."));
    }

    #[test]
    fn natural_order() {
        let mut v: Vec<PathBuf> = ["/dev/cxl/switch10", "/dev/swcci/mmpt0", "/dev/cxl/switch2"]
            .iter()
            .map(PathBuf::from)
            .collect();
        v.sort_by_key(|p| natural_key(p));
        assert_eq!(
            v,
            ["/dev/cxl/switch2", "/dev/cxl/switch10", "/dev/swcci/mmpt0"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn errno_names() {
        // What opening a path that is not a node gives.
        let open = |p: &str| Device::open(p).unwrap_err().to_string();
        assert_eq!(open("/tmp"), "open /tmp: EISDIR (Is a directory)");
        assert!(
            open("/etc/passwd/x").contains(": ENOTDIR ("),
            "{}",
            open("/etc/passwd/x")
        );
        assert!(open("/nonexistent").contains(": ENOENT ("));
        // A missing node of the driver's: whether the driver is loaded is the first question.
        let enoent = io::Error::from_raw_os_error(libc::ENOENT);
        let node = Path::new("/dev/cxl/switch0");
        assert_eq!(
            open_op(node, &enoent, false),
            "open /dev/cxl/switch0 (cxl_swcci is not loaded)"
        );
        assert_eq!(open_op(node, &enoent, true), "open /dev/cxl/switch0");
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(open_op(node, &eacces, false), "open /dev/cxl/switch0");
        assert_eq!(open_op(Path::new("/tmp/x"), &enoent, false), "open /tmp/x");
        for (e, name) in [
            (libc::ELOOP, "ELOOP"),
            (libc::ENAMETOOLONG, "ENAMETOOLONG"),
            (libc::EROFS, "EROFS"),
            (libc::ETXTBSY, "ETXTBSY"),
            (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
            (libc::EMFILE, "EMFILE"),
            (libc::ENXIO, "ENXIO"),
        ] {
            assert_eq!(errno_name(e), name);
        }
        assert_eq!(errno_name(100_000), "errno");
        // One name per errno (EWOULDBLOCK and ENOTSUP are aliases and left out).
        for (i, (e, _)) in ERRNO_NAMES.iter().enumerate() {
            assert!(
                ERRNO_NAMES[..i].iter().all(|(f, _)| f != e),
                "errno {e} twice"
            );
        }
    }

    #[test]
    fn error_text_and_kinds() {
        let e = Error::Missing {
            op: "Get Supported Logs (0400h) on /dev/cxl/switch0".into(),
            what: "no Command Effects Log listed",
        };
        assert_eq!(
            e.to_string(),
            "Get Supported Logs (0400h) on /dev/cxl/switch0: malformed response: no Command \
             Effects Log listed"
        );
        assert!(e.is_malformed());
        assert_eq!((e.errno(), e.rc()), (None, None));
        let os = Error::Os {
            op: "open /dev/cxl/switch9".into(),
            err: io::Error::from_raw_os_error(libc::ENXIO),
        };
        assert_eq!(os.errno(), Some(libc::ENXIO));
        assert_eq!(
            os.to_string(),
            "open /dev/cxl/switch9: ENXIO (No such device or address)"
        );
        assert!(!os.is_malformed());
        let missing = Node {
            path: "/dev/cxl/switch3".into(),
            info: Err(os),
        };
        assert!(missing.is_switch());
    }
}
