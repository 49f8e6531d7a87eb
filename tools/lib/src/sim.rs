// SPDX-License-Identifier: GPL-2.0

//! A simulated switch mailbox for the library's host tests: a switch CCI with ports, VCSs,
//! devices behind ports answering tunnelled commands (type-3 devices, a multi-logical device
//! with LDs, a device that never answers), and logs that can end early. Responses are built
//! byte by byte from the specification's layouts (CXL r3.1 §7.6.7, §8.2.9), independently of
//! the decoders under test.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::proto::opcode;
use crate::proto::payload::logs::CEL_UUID;
use crate::proto::payload::tunnel::{Category, CciHeader, TunnelRequest, CCI_HEADER_LEN};
use crate::proto::rc::ReturnCode;
use crate::proto::wire::Writer;
use crate::sim_dcd::SimDcd;
use crate::{Error, Mailbox, RawResponse, Result};

/// What sits behind a port.
#[derive(Clone, Debug)]
pub enum SimDev {
    /// A type-3 single-logical device with this serial.
    Type3(u64),
    /// A multi-logical device with this serial and this many LDs (LD `i` has serial + 1 + i).
    Mld(u64, u8),
    /// A device that never answers: the tunnel times out in the driver (ETIMEDOUT).
    Dead,
    /// A type-3 device with this serial that takes this many milliseconds per command.
    Slow(u64, u64),
    /// A type-3 device with this serial that reports itself as an MLD in Get Physical Port
    /// State but implements no MLD command (QEMU's cxl-type3).
    MldWithoutLdCommands(u64),
    /// A type-3 Dynamic Capacity Device with this serial: the switch's `dcd` model answers
    /// the DCD management commands (`crate::sim_dcd`).
    Dcd(u64),
}

/// One physical port.
#[derive(Clone, Debug)]
pub struct SimPort {
    pub id: u8,
    /// 3 DSP, 4 USP.
    pub state: u8,
    pub dev: Option<SimDev>,
}

/// A VCS: id, USP, vPPBs as (binding status, port, LD).
pub type SimVcs = (u8, u8, Vec<(u8, u8, u8)>);

/// A simulated switch.
#[derive(Debug)]
pub struct SimSwitch {
    pub path: PathBuf,
    pub payload: usize,
    pub serial: u64,
    pub ports: Vec<SimPort>,
    pub vcs: Vec<SimVcs>,
    /// CEL entries (opcode, effect).
    pub cel: Vec<(u16, u16)>,
    /// Whether Get Supported Logs lists the CEL.
    pub lists_cel: bool,
    /// Get Log returns at most this many bytes of the log in all.
    pub log_end: Option<usize>,
    /// Whether it implements Get Virtual CXL Switch Info (QEMU's does not).
    pub vcs_info: bool,
    /// Every command fails with this errno in the driver (EPERM: no CAP_SYS_RAWIO).
    pub errno: Option<i32>,
    /// Every command sent: opcode and input.
    pub sent: Mutex<Vec<(u16, Vec<u8>)>>,
    /// The Dynamic Capacity Device behind a port with `SimDev::Dcd`.
    pub dcd: Mutex<SimDcd>,
    /// The switch CCI's event logs.
    pub events: Mutex<SimEvents>,
    /// The event logs of the type-3 devices behind ports, by serial.
    pub dev_events: Mutex<std::collections::BTreeMap<u64, SimEvents>>,
}

/// The event logs of a simulated CCI (CXL r3.1 §8.2.9.2): records kept as the 128 bytes of the
/// specification's layouts, written byte by byte here.
#[derive(Debug, Default)]
pub struct SimEvents {
    /// Records of the informational, warning, failure and fatal logs, oldest first.
    pub logs: [Vec<[u8; 128]>; 4],
    /// Overflow count of each log.
    pub overflow: [u16; 4],
    /// The last handle given.
    pub last_handle: u16,
    /// Clear Event Records fails with this return code.
    pub clear_rc: Option<ReturnCode>,
    /// Clear Event Records succeeds but removes nothing, and Get Event Records always says
    /// there are more (a faulty device whose log never empties).
    pub sticky: bool,
    /// The device has a Dynamic Capacity Event Log (empty); without, log 04h is Invalid
    /// Input.
    pub has_dc: bool,
    /// The Event Interrupt Policy (5 bytes).
    pub policy: [u8; 5],
}

impl SimEvents {
    /// Appends a Virtual CXL Switch Event Record (binding change of `vcs`/`vppb` to
    /// `binding` on `port`/`ld`) to log `log`; returns its handle.
    pub fn add_vcs(&mut self, log: usize, vcs: u8, vppb: u8, binding: u8, port: u8, ld: u8) -> u16 {
        let mut r = self.header(
            log,
            [
                0x40, 0xd2, 0x64, 0x25, 0x33, 0x96, 0x4c, 0x4d, 0xa5, 0xda, 0x3d, 0x47, 0x26, 0x3a,
                0xf4, 0x25,
            ],
        );
        r[0x30..0x36].copy_from_slice(&[vcs, vppb, 0, binding, port, ld]);
        self.push(log, r)
    }

    /// Appends a record of an unknown type (UUID all 0xAB, data bytes 0..80) to `log`.
    pub fn add_raw(&mut self, log: usize) -> u16 {
        let mut r = self.header(log, [0xab; 16]);
        for (i, b) in r[0x30..].iter_mut().enumerate() {
            *b = i as u8;
        }
        self.push(log, r)
    }

    fn header(&mut self, log: usize, uuid: [u8; 16]) -> [u8; 128] {
        self.last_handle = self.last_handle.wrapping_add(1).max(1);
        let mut r = [0u8; 128];
        r[..16].copy_from_slice(&uuid);
        r[0x10] = 0x80;
        r[0x11] = log as u8;
        r[0x14..0x16].copy_from_slice(&self.last_handle.to_le_bytes());
        r[0x18..0x20].copy_from_slice(
            &(1_700_000_000_000_000_000u64 + u64::from(self.last_handle)).to_le_bytes(),
        );
        r
    }

    fn push(&mut self, log: usize, r: [u8; 128]) -> u16 {
        self.logs[log].push(r);
        self.last_handle
    }

    /// Handles still in `log`.
    pub fn handles(&self, log: usize) -> Vec<u16> {
        self.logs[log]
            .iter()
            .map(|r| u16::from_le_bytes([r[0x14], r[0x15]]))
            .collect()
    }

    /// Answers an event command with `room` bytes of output payload.
    fn answer(&mut self, opcode: u16, input: &[u8], room: usize) -> (ReturnCode, Vec<u8>) {
        let ok = ReturnCode::Success;
        match opcode {
            opcode::GET_EVENT_RECORDS => {
                let log = usize::from(input[0]);
                if log == 4 && self.has_dc {
                    let mut b = vec![0u8; 32];
                    b[0] = 0;
                    return (ok, b);
                }
                if log >= 4 {
                    return (ReturnCode::InvalidInput, Vec::new());
                }
                let fit = (room - 32) / 128;
                let n = self.logs[log].len().min(fit);
                let mut b = vec![0u8; 32];
                let more = self.sticky || n < self.logs[log].len();
                b[0] = u8::from(self.overflow[log] > 0) | (u8::from(more) << 1);
                b[2..4].copy_from_slice(&self.overflow[log].to_le_bytes());
                b[4..12].copy_from_slice(&11u64.to_le_bytes());
                b[12..20].copy_from_slice(&22u64.to_le_bytes());
                b[0x14..0x16].copy_from_slice(&(n as u16).to_le_bytes());
                for r in &self.logs[log][..n] {
                    b.extend_from_slice(r);
                }
                (ok, b)
            }
            opcode::CLEAR_EVENT_RECORDS => {
                if let Some(rc) = self.clear_rc {
                    return (rc, Vec::new());
                }
                let log = usize::from(input[0]);
                let n = usize::from(input[2]);
                if log >= 4 || input.len() != 6 + 2 * n {
                    return (ReturnCode::InvalidInput, Vec::new());
                }
                let want: Vec<u16> = input[6..]
                    .chunks(2)
                    .map(|h| u16::from_le_bytes([h[0], h[1]]))
                    .collect();
                if self.handles(log).get(..n) != Some(&want[..]) {
                    return (ReturnCode::from_raw(0x0e), Vec::new());
                }
                if !self.sticky {
                    self.logs[log].drain(..n);
                    self.overflow[log] = 0;
                }
                (ok, Vec::new())
            }
            opcode::GET_EVENT_INTERRUPT_POLICY => (ok, self.policy.to_vec()),
            opcode::SET_EVENT_INTERRUPT_POLICY if input.len() == 4 || input.len() == 5 => {
                self.policy[..input.len()].copy_from_slice(input);
                (ok, Vec::new())
            }
            _ => (ReturnCode::InvalidPayloadLength, Vec::new()),
        }
    }
}

impl SimSwitch {
    /// A switch with serial `serial`, USP port 2, DSPs 0, 1, 3 (type-3 on 0 and 3, 1 empty),
    /// one VCS with 3 vPPBs bound to ports 0 and 3 and one unbound.
    pub fn new(serial: u64) -> Self {
        Self {
            path: PathBuf::from("/dev/cxl/switch0"),
            payload: 256,
            serial,
            ports: vec![
                SimPort {
                    id: 0,
                    state: 3,
                    dev: Some(SimDev::Type3(0x103)),
                },
                SimPort {
                    id: 1,
                    state: 3,
                    dev: None,
                },
                SimPort {
                    id: 2,
                    state: 4,
                    dev: None,
                },
                SimPort {
                    id: 3,
                    state: 3,
                    dev: Some(SimDev::Type3(0x104)),
                },
            ],
            vcs: vec![(0, 2, vec![(2, 0, 0), (2, 3, 0), (0, 0, 0)])],
            cel: (0..40u16).map(|i| (0x0001 + i, i % 3)).collect(),
            lists_cel: true,
            log_end: None,
            vcs_info: true,
            errno: None,
            sent: Mutex::new(Vec::new()),
            dcd: Mutex::new(SimDcd::new()),
            events: Mutex::new(SimEvents::default()),
            dev_events: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Opcodes sent so far.
    pub fn opcodes(&self) -> Vec<u16> {
        self.sent
            .lock()
            .map(|s| s.iter().map(|(o, _)| *o).collect())
            .unwrap_or_default()
    }

    fn cel_bytes(&self) -> Vec<u8> {
        self.cel
            .iter()
            .flat_map(|(o, e)| o.to_le_bytes().into_iter().chain(e.to_le_bytes()))
            .collect()
    }

    fn identify(vid: u16, did: u16, serial: u64, kind: u8) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [vid, did, 0x1af4, 0x1100] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&serial.to_le_bytes());
        b.push(11);
        b.push(kind);
        b
    }

    fn port_block(&self, id: u8) -> [u8; 16] {
        let Some(p) = self.ports.iter().find(|p| p.id == id) else {
            let mut b = [0u8; 16];
            b[0] = id;
            b[1] = 0xf;
            return b;
        };
        let (kind, mode, width, speed) = match p.dev {
            Some(SimDev::Type3(_) | SimDev::Dead | SimDev::Slow(..) | SimDev::Dcd(_)) => {
                (4, 2, 16, 5)
            }
            Some(SimDev::Mld(..) | SimDev::MldWithoutLdCommands(_)) => (5, 2, 8, 4),
            None if p.state == 4 => (0, 2, 16, 5),
            None => (0, 0, 0, 0),
        };
        let lds = match p.dev {
            Some(SimDev::Mld(_, n)) => n,
            _ => 0,
        };
        [
            id, p.state, mode, 0, kind, 0x07, 16, width, 0x1f, 5, speed, 4, 0, 0, 0, lds,
        ]
    }

    fn answer_switch(&self, opcode: u16, input: &[u8]) -> Result<(ReturnCode, Vec<u8>)> {
        let ok = ReturnCode::Success;
        Ok(match opcode {
            opcode::IDENTIFY => (ok, Self::identify(0x19e5, 0xa128, self.serial, 0)),
            opcode::BG_OP_STATUS => (ok, vec![0, 0, 0x01, 0x52, 0, 0, 0, 0]),
            opcode::GET_SUPPORTED_LOGS => {
                let mut b = vec![u8::from(self.lists_cel) + 1, 0, 0, 0, 0, 0, 0, 0];
                if self.lists_cel {
                    b.extend_from_slice(&CEL_UUID.0);
                    b.extend_from_slice(&(self.cel.len() as u32 * 4).to_le_bytes());
                }
                b.extend_from_slice(&[0x11; 16]);
                b.extend_from_slice(&64u32.to_le_bytes());
                (ok, b)
            }
            opcode::GET_LOG => {
                let off = u32::from_le_bytes(input[16..20].try_into().unwrap_or([0; 4])) as usize;
                let len = u32::from_le_bytes(input[20..24].try_into().unwrap_or([0; 4])) as usize;
                if input[..16] != CEL_UUID.0 {
                    return Ok((ReturnCode::from_raw(0x17), Vec::new()));
                }
                let log = self.cel_bytes();
                let end = self.log_end.unwrap_or(log.len()).min(log.len());
                let to = off.saturating_add(len).min(end);
                (ok, log.get(off..to).unwrap_or(&[]).to_vec())
            }
            opcode::IDENTIFY_SWITCH => {
                let mut b = vec![0u8; 0x49];
                b[0] = 2;
                b[2] = self.ports.len() as u8;
                b[3] = self.vcs.len() as u8;
                for p in &self.ports {
                    b[4 + usize::from(p.id / 8)] |= 1 << (p.id % 8);
                }
                for v in &self.vcs {
                    b[0x24 + usize::from(v.0 / 8)] |= 1 << (v.0 % 8);
                }
                let total: usize = self.vcs.iter().map(|v| v.2.len()).sum();
                let bound = self
                    .vcs
                    .iter()
                    .flat_map(|v| v.2.iter())
                    .filter(|b| b.0 != 0)
                    .count();
                b[0x44..0x46].copy_from_slice(&(total as u16).to_le_bytes());
                b[0x46..0x48].copy_from_slice(&(bound as u16).to_le_bytes());
                b[0x48] = 4;
                (ok, b)
            }
            opcode::GET_PHYS_PORT_STATE => {
                let n = usize::from(input[0]);
                let mut b = vec![n as u8, 0, 0, 0];
                for &id in &input[1..=n] {
                    b.extend_from_slice(&self.port_block(id));
                }
                if b.len() > self.payload {
                    return Ok((ReturnCode::InvalidInput, Vec::new()));
                }
                (ok, b)
            }
            opcode::GET_VCS_INFO if !self.vcs_info => (ReturnCode::Unsupported, Vec::new()),
            opcode::GET_VCS_INFO => {
                let (start, limit, n) = (input[0], input[1], usize::from(input[2]));
                let mut b = vec![n as u8, 0, 0, 0];
                for &id in &input[3..3 + n] {
                    let Some(v) = self.vcs.iter().find(|v| v.0 == id) else {
                        b.extend_from_slice(&[id, 0xff, 0, 0]);
                        continue;
                    };
                    b.extend_from_slice(&[v.0, 1, v.1, v.2.len() as u8]);
                    for p in v.2.iter().skip(usize::from(start)).take(usize::from(limit)) {
                        b.extend_from_slice(&[p.0, p.1, p.2, 0]);
                    }
                }
                (ok, b)
            }
            opcode::TUNNEL => return self.tunnel(input, |port| self.port_dev(port)),
            opcode::GET_EVENT_RECORDS
            | opcode::CLEAR_EVENT_RECORDS
            | opcode::GET_EVENT_INTERRUPT_POLICY
            | opcode::SET_EVENT_INTERRUPT_POLICY => match self.events.lock() {
                Ok(mut e) => e.answer(opcode, input, self.payload),
                Err(_) => (ReturnCode::InternalError, Vec::new()),
            },
            _ => (ReturnCode::Unsupported, Vec::new()),
        })
    }

    fn port_dev(&self, port: u8) -> Option<Level> {
        self.ports
            .iter()
            .find(|p| p.id == port)
            .and_then(|p| p.dev.clone())
            .map(Level::Dev)
    }

    /// Answers a Tunnel Management Command whose target `route` resolves.
    fn tunnel(
        &self,
        input: &[u8],
        route: impl Fn(u8) -> Option<Level>,
    ) -> Result<(ReturnCode, Vec<u8>)> {
        let Ok(req) = TunnelRequest::decode(input) else {
            return Ok((ReturnCode::InvalidInput, Vec::new()));
        };
        let Some(level) = route(req.target) else {
            return Ok((ReturnCode::InvalidInput, Vec::new()));
        };
        let (rc, out) = match level {
            Level::Dev(SimDev::Dead) => {
                return Err(Error::Os {
                    op: format!(
                        "Tunnel Management Command (5300h) on {}",
                        self.path.display()
                    ),
                    err: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                })
            }
            Level::Dev(d) => self.answer_dev(&d, None, req.header.opcode, req.payload)?,
            Level::Ld(d, ld) => self.answer_dev(&d, Some(ld), req.header.opcode, req.payload)?,
        };
        let mut msg = vec![0u8; 4 + CCI_HEADER_LEN + out.len()];
        let header = CciHeader {
            category: Category::Response,
            rc,
            payload_len: out.len() as u32,
            ..CciHeader::request(req.header.opcode, req.header.tag, 0)
        };
        let len = (CCI_HEADER_LEN + out.len()) as u16;
        msg[..2].copy_from_slice(&len.to_le_bytes());
        let mut w = Writer::new(&mut msg[4..]);
        header.encode(&mut w).map_err(|err| Error::Encode {
            op: "simulated tunnel response".into(),
            err,
        })?;
        msg[4 + CCI_HEADER_LEN..].copy_from_slice(&out);
        Ok((ReturnCode::Success, msg))
    }

    fn answer_dev(
        &self,
        dev: &SimDev,
        ld: Option<u8>,
        opcode: u16,
        input: &[u8],
    ) -> Result<(ReturnCode, Vec<u8>)> {
        let ok = ReturnCode::Success;
        Ok(match (dev, ld, opcode) {
            (SimDev::Slow(ms, serial), None, _) => {
                std::thread::sleep(std::time::Duration::from_millis(*ms));
                return self.answer_dev(&SimDev::Type3(*serial), None, opcode, input);
            }
            (
                SimDev::Type3(serial) | SimDev::MldWithoutLdCommands(serial) | SimDev::Dcd(serial),
                None,
                opcode::IDENTIFY,
            ) => (ok, Self::identify(0x8086, 0x0d93, *serial, 3)),
            (SimDev::Dcd(_), None, 0x5600..=0x56ff) => {
                let room = self.payload - 4 - CCI_HEADER_LEN;
                let (rc, out) = self
                    .dcd
                    .lock()
                    .map_err(|_| Error::Os {
                        op: "simulated DCD".into(),
                        err: std::io::Error::other("poisoned"),
                    })?
                    .answer(opcode, input, room);
                (ReturnCode::from_raw(rc), out)
            }
            (SimDev::Mld(_, n), None, opcode::GET_LD_INFO) => {
                // 1 GiB per LD, QoS telemetry bit 0.
                let mut b = (u64::from(*n) << 30).to_le_bytes().to_vec();
                b.extend_from_slice(&u16::from(*n).to_le_bytes());
                b.push(1);
                (ok, b)
            }
            (SimDev::Mld(_, n), None, opcode::GET_LD_ALLOCATIONS) => {
                let (start, limit) = (input[0], input[1]);
                let ids: Vec<u8> = (start..*n).take(usize::from(limit)).collect();
                // Granularity 256 MiB; LD i has i + 1 units in range 1, 0 in range 2.
                let mut b = vec![*n, 0, start, ids.len() as u8];
                for i in ids {
                    b.extend_from_slice(&(u64::from(i) + 1).to_le_bytes());
                    b.extend_from_slice(&0u64.to_le_bytes());
                }
                (ok, b)
            }
            (SimDev::Mld(serial, _), None, opcode::IDENTIFY) => {
                (ok, Self::identify(0x8086, 0x0d94, *serial, 3))
            }
            (SimDev::Mld(serial, n), Some(ld), opcode::IDENTIFY) if ld < *n => (
                ok,
                Self::identify(0x8086, 0x0d94, serial + 1 + u64::from(ld), 3),
            ),
            (SimDev::Mld(..), None, opcode::TUNNEL) => {
                let d = dev.clone();
                let n = match dev {
                    SimDev::Mld(_, n) => *n,
                    _ => 0,
                };
                return self.tunnel(input, move |ld| (ld < n).then(|| Level::Ld(d.clone(), ld)));
            }
            (_, _, opcode::BG_OP_STATUS) => (ok, vec![0; 8]),
            (
                SimDev::Type3(serial),
                None,
                opcode::GET_EVENT_RECORDS | opcode::CLEAR_EVENT_RECORDS,
            ) => {
                // The device's own payload is 2 KiB; its output must also fit the switch's
                // tunnel response.
                let room = 2048.min(self.payload - 4 - CCI_HEADER_LEN);
                match self.dev_events.lock() {
                    Ok(mut m) => m.entry(*serial).or_default().answer(opcode, input, room),
                    Err(_) => (ReturnCode::InternalError, Vec::new()),
                }
            }
            _ => (ReturnCode::Unsupported, Vec::new()),
        })
    }
}

/// Where a tunnel ends.
enum Level {
    Dev(SimDev),
    Ld(SimDev, u8),
}

impl Mailbox for SimSwitch {
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        if let Ok(mut s) = self.sent.lock() {
            s.push((opcode, input.to_vec()));
        }
        let errno = match self.errno {
            Some(e) => Some(e),
            None if input.len() > self.payload || out_size > self.payload => Some(libc::EINVAL),
            None => None,
        };
        if let Some(e) = errno {
            return Err(Error::Os {
                op: format!("{opcode:04x}h on {}", self.path.display()),
                err: std::io::Error::from_raw_os_error(e),
            });
        }
        let (rc, mut out) = self.answer_switch(opcode, input)?;
        out.truncate(out_size);
        Ok(RawResponse { rc, out })
    }

    fn payload_size(&self) -> Result<usize> {
        Ok(self.payload)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
