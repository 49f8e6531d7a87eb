// SPDX-License-Identifier: GPL-2.0

//! Bringing up an MCTP link and reading the kernel's MCTP routes, over rtnetlink, so that no
//! userland beyond this library is needed (the `mctp` tool and `mctpd` are not packaged
//! everywhere). Documentation/transports.rst.
//!
//! [`serial_link_up`] attaches the MCTP serial line discipline (N_MCTP, DMTF DSP0253,
//! drivers/net/mctp/mctp-serial.c) to a tty, which makes a `mctpserialN` interface, then sets
//! it up (RTM_NEWLINK), gives it a local EID (RTM_NEWADDR, family AF_MCTP, IFA_LOCAL) and adds
//! a direct route to each remote EID (RTM_NEWROUTE, RTN_UNICAST, RTA_DST, RTA_OIF; the route's
//! `rtm_dst_len` is a number of EIDs after the first, net/mctp/route.c). The line discipline,
//! and with it the interface, its address and its routes, lives while the tty stays open: the
//! returned [`SerialLink`] holds it. The netlink requests need CAP_NET_ADMIN; TIOCSETD needs
//! only the tty open for writing (the line discipline is built in, or its module loaded: a
//! module is autoloaded for CAP_SYS_MODULE or with `dev.tty.ldisc_autoload`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The MCTP serial line discipline (include/uapi/linux/tty.h).
pub const N_MCTP: libc::c_int = 28;
/// AF_MCTP (include/linux/socket.h).
pub const AF_MCTP: u8 = 45;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTN_UNICAST: u8 = 1;
const RT_TABLE_DEFAULT: u8 = 253;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_LINK: u8 = 253;
const NLMSG_HDR: usize = 16;

fn os(op: impl Into<String>, err: io::Error) -> Error {
    Error::Os { op: op.into(), err }
}

/// A netlink request being built: the header, the family header, attributes.
struct NlMsg(Vec<u8>);

impl NlMsg {
    fn new(kind: u16, flags: u16, family_header: &[u8]) -> Self {
        let mut b = vec![0u8; NLMSG_HDR];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b.extend_from_slice(family_header);
        Self(b)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.0
    }
}

/// An rtnetlink socket.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    fn open() -> Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(os(
                "open a NETLINK_ROUTE socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: `tv` is a valid timeval of the size passed.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Self { fd, seq: 1 })
    }

    fn send(&mut self, msg: NlMsg, what: &str) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let b = msg.finish(self.seq);
        // SAFETY: `b` is valid for reads of its length; a zeroed sockaddr_nl addresses the
        // kernel.
        let r = unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(os(what, io::Error::last_os_error()));
        }
        Ok(self.seq)
    }

    fn recv(&self, buf: &mut [u8], what: &str) -> Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(os(what, e));
            }
        }
    }

    /// Sends a request with NLM_F_ACK and waits for its acknowledgement; `tolerate` is an
    /// errno that counts as done (EEXIST for an address or route already there).
    fn request(&mut self, msg: NlMsg, what: &str, tolerate: Option<i32>) -> Result<()> {
        let seq = self.send(msg, what)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf, what)?;
            for (kind, mseq, body) in messages(buf.get(..n).unwrap_or(&[])) {
                if mseq != seq || kind != NLMSG_ERROR {
                    continue;
                }
                let errno = body
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                return match -errno {
                    0 => Ok(()),
                    e if Some(e) == tolerate => Ok(()),
                    e => Err(os(what, io::Error::from_raw_os_error(e))),
                };
            }
        }
    }
}

/// The messages of a netlink datagram: (type, sequence number, body after the header).
fn messages(mut b: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
        out.push((kind, seq, &b[NLMSG_HDR..len]));
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or(&[]);
    }
    out
}

/// The attributes after a family header: (type, data).
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        if len < 4 || len > b.len() {
            break;
        }
        out.push((u16::from_ne_bytes([b[2], b[3]]) & 0x3fff, &b[4..len]));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

fn ifaddrmsg(index: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = AF_MCTP;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

fn rtmsg(dst_len: u8) -> [u8; 12] {
    [
        AF_MCTP,
        dst_len,
        0,
        0,
        RT_TABLE_DEFAULT,
        RTPROT_STATIC,
        RT_SCOPE_LINK,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// Sets interface `index` up.
pub fn link_set_up(index: u32, name: &str) -> Result<()> {
    let up = libc::IFF_UP as u32;
    let msg = NlMsg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, up, up));
    Rtnl::open()?.request(msg, &format!("set {name} up (RTM_NEWLINK)"), None)
}

/// Adds local EID `eid` to interface `index` (an EID it already has is not an error).
pub fn add_local_eid(index: u32, name: &str, eid: u8) -> Result<()> {
    let msg = NlMsg::new(
        RTM_NEWADDR,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &ifaddrmsg(index),
    )
    .attr(IFA_LOCAL, &[eid]);
    Rtnl::open()?.request(
        msg,
        &format!("add local EID {eid} to {name} (RTM_NEWADDR)"),
        Some(libc::EEXIST),
    )
}

/// Adds a direct route to EID `eid` through interface `index` (an existing one is kept).
pub fn add_route(index: u32, name: &str, eid: u8) -> Result<()> {
    let msg = NlMsg::new(
        RTM_NEWROUTE,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &rtmsg(0),
    )
    .attr(RTA_DST, &[eid])
    .attr(RTA_OIF, &index.to_ne_bytes());
    Rtnl::open()?.request(
        msg,
        &format!("add a route to EID {eid} through {name} (RTM_NEWROUTE)"),
        Some(libc::EEXIST),
    )
}

/// A route of the kernel's MCTP routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// First EID of the range.
    pub first: u8,
    /// Last EID of the range (`first` for a single EID).
    pub last: u8,
    /// Output interface index (0 for a gateway route).
    pub ifindex: u32,
}

/// Every MCTP route the kernel has (RTM_GETROUTE dump, family AF_MCTP).
///
/// Errors: the netlink socket's OS errors (EAFNOSUPPORT without CONFIG_MCTP).
pub fn routes() -> Result<Vec<Route>> {
    let mut nl = Rtnl::open()?;
    let what = "list MCTP routes (RTM_GETROUTE)";
    let seq = nl.send(NlMsg::new(RTM_GETROUTE, NLM_F_DUMP, &rtmsg(0)), what)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = nl.recv(&mut buf, what)?;
        for (kind, mseq, body) in messages(buf.get(..n).unwrap_or(&[])) {
            if mseq != seq {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let errno = body
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if errno != 0 {
                        return Err(os(what, io::Error::from_raw_os_error(-errno)));
                    }
                }
                RTM_NEWROUTE if body.len() >= 12 && body[0] == AF_MCTP => {
                    let dst_len = body[1];
                    let mut r = Route {
                        first: 0,
                        last: 0,
                        ifindex: 0,
                    };
                    let mut have_dst = false;
                    for (t, d) in attributes(&body[12..]) {
                        match (t, d) {
                            (RTA_DST, [e, ..]) => {
                                r.first = *e;
                                have_dst = true;
                            }
                            (RTA_OIF, [a, b, c, d, ..]) => {
                                r.ifindex = u32::from_ne_bytes([*a, *b, *c, *d])
                            }
                            _ => {}
                        }
                    }
                    if have_dst {
                        r.last = r.first.saturating_add(dst_len);
                        out.push(r);
                    }
                }
                _ => {}
            }
        }
    }
}

/// An MCTP serial link: the tty held open with the N_MCTP line discipline, its interface.
/// Dropping it closes the tty, which removes the interface with its address and routes.
#[derive(Debug)]
pub struct SerialLink {
    tty: File,
    tty_path: PathBuf,
    /// The interface (`mctpserialN`).
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
}

impl SerialLink {
    /// The tty.
    pub fn tty(&self) -> &Path {
        &self.tty_path
    }

    /// The tty's file (for line-rate measurements before the link is used).
    pub fn file(&self) -> &File {
        &self.tty
    }
}

fn mctp_serial_ifaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("mctpserial"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Opens `tty`, attaches the MCTP serial line discipline, and sets the new interface up with
/// local EID `local_eid` and a direct route to each of `remote_eids`. See the module
/// documentation. The interface is the `mctpserialN` that appears within 2 s of TIOCSETD
/// (two links brought up at the same moment by different processes could be confused).
///
/// Errors: the open, TIOCSETD (EINVAL on a kernel without CONFIG_MCTP_SERIAL), no new
/// interface (ETIMEDOUT), and each netlink request's errno, each naming its step.
pub fn serial_link_up(tty: &Path, local_eid: u8, remote_eids: &[u8]) -> Result<SerialLink> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(tty)
        .map_err(|e| os(format!("open {}", tty.display()), e))?;
    let before = mctp_serial_ifaces();
    let ldisc: libc::c_int = N_MCTP;
    // SAFETY: TIOCSETD reads one int through the pointer, which is valid.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TIOCSETD, &ldisc) };
    if r < 0 {
        return Err(os(
            format!(
                "set line discipline N_MCTP on {} (TIOCSETD; CONFIG_MCTP_SERIAL?)",
                tty.display()
            ),
            io::Error::last_os_error(),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let ifname = loop {
        if let Some(n) = mctp_serial_ifaces()
            .into_iter()
            .find(|n| !before.contains(n))
        {
            break n;
        }
        if Instant::now() > deadline {
            return Err(os(
                format!("no mctpserial interface appeared for {}", tty.display()),
                io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let idx_path = format!("/sys/class/net/{ifname}/ifindex");
    let ifindex = std::fs::read_to_string(&idx_path)
        .map_err(|e| os(format!("read {idx_path}"), e))?
        .trim()
        .parse::<u32>()
        .map_err(|_| {
            os(
                format!("read {idx_path}"),
                io::Error::from_raw_os_error(libc::EINVAL),
            )
        })?;
    let link = SerialLink {
        tty: file,
        tty_path: tty.to_path_buf(),
        ifname,
        ifindex,
    };
    link_set_up(link.ifindex, &link.ifname)?;
    add_local_eid(link.ifindex, &link.ifname, local_eid)?;
    for &e in remote_eids {
        add_route(link.ifindex, &link.ifname, e)?;
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_messages_are_laid_out_as_the_kernel_reads_them() {
        let m = NlMsg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE, &rtmsg(0))
            .attr(RTA_DST, &[9])
            .attr(RTA_OIF, &3u32.to_ne_bytes())
            .finish(7);
        // Header 16, rtmsg 12, RTA_DST 5 padded to 8, RTA_OIF 8.
        assert_eq!(m.len(), 44);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 44);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWROUTE);
        assert_eq!(
            u16::from_ne_bytes([m[6], m[7]]),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
        );
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(m[16], AF_MCTP);
        assert_eq!(m[23], RTN_UNICAST);
        let attrs = attributes(&m[28..]);
        assert_eq!(
            attrs,
            vec![(RTA_DST, &[9u8][..]), (RTA_OIF, &3u32.to_ne_bytes()[..])]
        );
        let all = messages(&m);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].0, all[0].1, all[0].2.len()), (RTM_NEWROUTE, 7, 28));
        // A truncated datagram yields what is whole.
        assert!(messages(&m[..20]).is_empty());
    }
}
