// SPDX-License-Identifier: GPL-2.0

//! Userspace access to `cxl_swcci` device nodes.
//!
//! [`Device`] wraps one node (`/dev/cxl/switchN`) and speaks its ioctl ABI: raw commands with
//! `CXL_MEM_SEND_COMMAND`, `CXL_MEM_QUERY_COMMANDS`, and the driver's info and background-policy
//! ioctls. Typed helpers encode requests and decode responses with the protocol core
//! (`swcci-proto`), so layouts and constants are never declared twice.
//!
//! Errors say what was attempted on which device: an OS error carries the errno, a device
//! refusal carries the CXL return code, a malformed response names the field.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub use swcci_proto as proto;

#[cfg(feature = "topology")]
pub mod kernel_log;
#[cfg(feature = "topology")]
pub mod topology;

use proto::mmpt::MmptCode;
use proto::opcode;
use proto::payload::{
    bg::BgOpStatus,
    identify::Identify,
    logs::{self, CelEntry, SupportedLog, Uuid},
    switch::{self, IdentifySwitch, PortInfo, PortStates, VcsInfos},
    tunnel::{self, CciHeader, TunnelResponse},
};
use proto::rc::ReturnCode;
use proto::uapi::{
    self, CxlCommandInfo, CxlMemQueryCommands, CxlPayload, CxlSendCommand, SwcciBgPolicy,
    SwcciInfo, SwcciMmbCommand, SwcciMmptMsg, Wire,
};
use proto::wire::{DecodeError, EncodeError};

/// Where device nodes live.
pub const CXL_DEV_DIR: &str = "/dev/cxl";

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
}

/// The symbolic name of an errno (`ENXIO`), for messages.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECANCELED => "ECANCELED",
        libc::EPROTO => "EPROTO",
        libc::ENODATA => "ENODATA",
        _ => "errno",
    }
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
}

/// The ioctl request type of the C library.
#[cfg(target_env = "musl")]
type Request = libc::c_int;
#[cfg(not(target_env = "musl"))]
type Request = libc::c_ulong;

impl Device {
    /// Opens a node: a bare name is looked up in /dev/cxl (`switch0`), a name starting with
    /// `cxl/` in /dev (`cxl/switch0`, the form `SWCCI_IOCTL_INFO` reports); anything else is a
    /// path.
    pub fn open(name: impl AsRef<Path>) -> Result<Self> {
        let name = name.as_ref();
        let path = if name.components().count() == 1
            && !name.has_root()
            && name != Path::new(".")
            && name != Path::new("..")
        {
            Path::new(CXL_DEV_DIR).join(name)
        } else if name.starts_with("cxl") && !name.has_root() {
            Path::new("/dev").join(name)
        } else {
            name.to_path_buf()
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|err| Error::Os {
                op: format!("open {}", path.display()),
                err,
            })?;
        Ok(Self { file, path })
    }

    /// The node's path.
    pub fn path(&self) -> &Path {
        &self.path
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
            return Err(Error::Os {
                op: self.op(what),
                err: io::Error::last_os_error(),
            });
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

    /// Sends raw command `opcode` with `input`, accepting up to `out_size` output bytes.
    /// Returns whatever the device answered, including non-success return codes.
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

    /// Sends `opcode` and fails unless the device returns success.
    pub fn command(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<Vec<u8>> {
        let r = self.raw(opcode, input, out_size)?;
        if !r.rc.is_success() {
            return Err(Error::Device {
                op: self.op(command_name(opcode)),
                rc: r.rc,
            });
        }
        Ok(r.out)
    }

    /// The mailbox payload size (`SWCCI_IOCTL_INFO`): the most a command can carry.
    pub fn payload_size(&self) -> Result<usize> {
        Ok(self.info()?.payload_size as usize)
    }

    fn decode<T>(&self, what: &str, r: std::result::Result<T, DecodeError>) -> Result<T> {
        r.map_err(|err| Error::Decode {
            op: self.op(what),
            err,
        })
    }

    /// Identify (0001h).
    pub fn identify(&self) -> Result<Identify> {
        let out = self.command(opcode::IDENTIFY, &[], 64)?;
        self.decode("Identify", Identify::decode(&out))
    }

    /// Identify Switch Device (5100h).
    pub fn identify_switch(&self) -> Result<IdentifySwitch> {
        let out = self.command(opcode::IDENTIFY_SWITCH, &[], 128)?;
        self.decode("Identify Switch Device", IdentifySwitch::decode(&out))
    }

    /// Get Physical Port State (5101h) for `ports`, in as many commands as the payload size
    /// needs (each response is 4 + 16 bytes per port, a request names at most 255 ports).
    pub fn port_states(&self, ports: &[u8]) -> Result<Vec<PortInfo>> {
        let room = self
            .payload_size()?
            .saturating_sub(switch::PORT_STATE_HEADER);
        let per = (room / switch::PORT_INFO_LEN).clamp(1, usize::from(u8::MAX));
        let mut all = Vec::with_capacity(ports.len());
        for chunk in ports.chunks(per) {
            let mut req = vec![0u8; 1 + chunk.len()];
            let n = switch::port_state_request(&mut req, chunk).map_err(|err| Error::Encode {
                op: self.op("Get Physical Port State"),
                err,
            })?;
            let out = self.command(
                opcode::GET_PHYS_PORT_STATE,
                &req[..n],
                switch::PORT_STATE_HEADER + chunk.len() * switch::PORT_INFO_LEN,
            )?;
            let states = self.decode("Get Physical Port State", PortStates::decode(&out))?;
            all.extend(states.iter());
        }
        Ok(all)
    }

    /// Get Virtual CXL Switch Info (5200h); the raw response, decode with [`VcsInfos`].
    pub fn vcs_info(&self, start: u8, limit: u8, vcs: &[u8]) -> Result<Vec<u8>> {
        let mut req = vec![0u8; 3 + vcs.len()];
        let n =
            switch::vcs_info_request(&mut req, start, limit, vcs).map_err(|err| Error::Encode {
                op: self.op("Get Virtual CXL Switch Info"),
                err,
            })?;
        let out = self.command(opcode::GET_VCS_INFO, &req[..n], self.payload_size()?)?;
        self.decode(
            "Get Virtual CXL Switch Info",
            VcsInfos::decode(&out, start, limit),
        )?;
        Ok(out)
    }

    /// Get Supported Logs (0400h).
    pub fn supported_logs(&self) -> Result<Vec<SupportedLog>> {
        let out = self.command(opcode::GET_SUPPORTED_LOGS, &[], self.payload_size()?)?;
        let logs = self.decode("Get Supported Logs", logs::SupportedLogs::decode(&out))?;
        Ok(logs.iter().collect())
    }

    /// Reads a whole log with Get Log (0401h), in payload-sized pieces.
    pub fn read_log(&self, uuid: &Uuid, size: u32) -> Result<Vec<u8>> {
        let chunk = self.payload_size()? as u32;
        let mut data = Vec::with_capacity(size as usize);
        while (data.len() as u32) < size {
            let n = (size - data.len() as u32).min(chunk);
            let input = logs::get_log_input(uuid, data.len() as u32, n);
            let out = self.command(opcode::GET_LOG, &input, n as usize)?;
            if out.is_empty() {
                return Err(Error::Decode {
                    op: self.op(format!("Get Log {uuid} at offset {}", data.len())),
                    err: DecodeError::Truncated {
                        field: "log data",
                        offset: data.len(),
                        need: n as usize,
                        have: 0,
                    },
                });
            }
            data.extend_from_slice(&out);
        }
        Ok(data)
    }

    /// The Command Effects Log.
    pub fn cel(&self) -> Result<Vec<CelEntry>> {
        let size = self
            .supported_logs()?
            .iter()
            .find(|l| l.uuid == logs::CEL_UUID)
            .map(|l| l.size)
            .ok_or_else(|| Error::Decode {
                op: self.op("Get Supported Logs"),
                err: DecodeError::Invalid {
                    field: "Command Effects Log entry (missing)",
                    value: 0,
                },
            })?;
        let raw = self.read_log(&logs::CEL_UUID, size)?;
        Ok(logs::Cel::new(&raw).iter().collect())
    }

    /// Background Operation Status (0002h).
    pub fn bg_status(&self) -> Result<BgOpStatus> {
        let out = self.command(opcode::BG_OP_STATUS, &[], 8)?;
        self.decode("Background Operation Status", BgOpStatus::decode(&out))
    }

    /// Sends `opcode` with `payload` through tunnels along `path` (port, then LD for a second
    /// level), and returns the outer return code and the innermost response.
    pub fn tunnel(&self, path: &[u8], opcode: u16, payload: &[u8]) -> Result<TunnelResult> {
        let op = self.op(format!("tunnel {opcode:04x}h via {path:?}"));
        if path.is_empty() {
            return Err(Error::Encode {
                op,
                err: EncodeError::Invalid {
                    what: "tunnel path",
                },
            });
        }
        // Build from the inside out.
        let mut msg = payload.to_vec();
        let mut op_code = opcode;
        for (depth, &target) in path.iter().enumerate().rev() {
            let mut buf = vec![0u8; tunnel::TUNNEL_HEADER_LEN + tunnel::CCI_HEADER_LEN + msg.len()];
            let n = tunnel::encode_request(
                &mut buf,
                target,
                tunnel::TARGET_PORT_OR_LD,
                depth as u8,
                op_code,
                &msg,
            )
            .map_err(|err| Error::Encode {
                op: op.clone(),
                err,
            })?;
            buf.truncate(n);
            msg = buf;
            op_code = opcode::TUNNEL;
        }
        let r = self.raw(opcode::TUNNEL, &msg, self.payload_size()?)?;
        if !r.rc.is_success() {
            return Ok(TunnelResult {
                outer_rc: r.rc,
                header: None,
                payload: Vec::new(),
            });
        }
        let mut body = r.out;
        let mut level = 1;
        loop {
            let t = TunnelResponse::decode(&body).map_err(|err| Error::Decode {
                op: op.clone(),
                err,
            })?;
            let (header, inner) = (t.header, t.payload.to_vec());
            if level == path.len() || !header.rc.is_success() {
                return Ok(TunnelResult {
                    outer_rc: r.rc,
                    header: Some(header),
                    payload: inner,
                });
            }
            body = inner;
            level += 1;
        }
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
        let m = SwcciMmptMsg {
            msg_type,
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

/// The result of a tunnelled command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelResult {
    /// Return code of the outer Tunnel Management Command.
    pub outer_rc: ReturnCode,
    /// Header of the innermost response that came back (None if the outer command failed).
    pub header: Option<CciHeader>,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl TunnelResult {
    /// The innermost return code: the outer one if the tunnel itself failed.
    pub fn rc(&self) -> ReturnCode {
        self.header.map_or(self.outer_rc, |h| h.rc)
    }
}

/// One node found by [`list`].
#[derive(Debug)]
pub struct Node {
    /// Its path.
    pub path: PathBuf,
    /// What it reports.
    pub info: SwcciInfo,
}

/// Every cxl_swcci node: character devices in /dev/cxl that answer `SWCCI_IOCTL_INFO`.
pub fn list() -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    let entries = match std::fs::read_dir(CXL_DEV_DIR) {
        Ok(e) => e,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(nodes),
        Err(err) => {
            return Err(Error::Os {
                op: format!("list {CXL_DEV_DIR}"),
                err,
            })
        }
    };
    for e in entries.flatten() {
        let path = e.path();
        if let Ok(dev) = Device::open(&path) {
            if let Ok(info) = dev.info() {
                nodes.push(Node { path, info });
            }
        }
    }
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(nodes)
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
