// SPDX-License-Identifier: GPL-2.0

//! A seeded, structure-aware fuzzer of every ioctl of both node kinds (`/dev/cxl/switchN`:
//! `CXL_MEM_SEND_COMMAND`, `CXL_MEM_QUERY_COMMANDS`, `SWCCI_IOCTL_INFO`,
//! `SWCCI_IOCTL_BG_POLICY`, `SWCCI_MMB_SEND_COMMAND`; `/dev/swcci/mmptN`: also
//! `SWCCI_MMPT_SEND` and `SWCCI_MMPT_RECV`), run in the hardened scenario (and by
//! `tools/fuzz.sh` for long runs).
//!
//! Every case is a valid request of its ioctl (well-formed structures, commands the device
//! implements, tunnels one to three levels deep, vendor and background opcodes) with at most
//! one mutation: an argument, input or output pointer that is NULL, below mmap_min_addr, a
//! kernel address, out of the user range, or a buffer that crosses into an inaccessible
//! page; a size of max + 1 or huge; a reserved field or flag set; an unknown id or ioctl
//! number. Each case knows the errno its class must get (Documentation/abi.rst; an input of
//! two classes may get either), and the fuzzer checks it, and for successes the data: the
//! structure and the buffers are surrounded by guard bytes that must stay untouched (no
//! write beyond `out.size`, nor beyond what the driver reports it wrote), Identify, Identify
//! Switch Device, Get Supported Logs, Get Log of the CEL and tunnelled Identify answer what
//! the device answered before, the emulator's echo command returns its input, MMPT messages
//! come back intact and in order, and a request the driver refuses leaves the device's
//! command counter (debugfs `stats`) unchanged.
//!
//! Phases per test: single-threaded (strict: counters, message order, policy values); four
//! threads on shared and own files, with open/close churn and SIGALRM interrupting their
//! background and receive waits; and stale files after unbind (ENXIO). Of `iters`, half go
//! to the single-threaded phase, min(iters / 10, 300) to the stale files and the rest to the
//! threaded phase (split evenly among its threads).
//!
//! In the threaded phase a watchdog thread prints a progress line every [`PROGRESS`] steps
//! of all workers, and when any worker or the churn thread completes no step for
//! [`STALL_SECS`] s, prints what each thread is doing and, for every task of the process,
//! its state, `wchan` and kernel stack (`/proc/self/task/TID/stack`), then stops the phase
//! and fails the test with that report (a thread stuck for good still keeps the test from
//! ending: the runner's idle timeout ends the boot, and the report is in the log).
//!
//! Seeds: `swcci.fuzz_seed=` and `swcci.fuzz_iters=` on the kernel command line (the
//! runner's `--fuzz-seed`/`--fuzz-iters`), else [`DEFAULT_SEED`] and [`DEFAULT_ITERS`]. A
//! failure names the seed, phase, thread and iteration; the single-threaded phase replays
//! exactly from the seed, the threaded one up to the interleaving of its threads.
//!
//! Commands known to crash QEMU's switch CCI are never sent: Get/Set Timestamp
//! (0300h/0301h) directly (the driver refuses them; `timestamp_refused_on_quirky_switch`
//! tests that), Set Response Message Limit (0004h) and Physical Port Control (5102h), which
//! change the switch under the rest of the suite, and tunnelled commands whose CCI header
//! announces more payload than it carries (QEMU reads past its buffer). Tunnels reach the
//! type-3 devices only with read-only commands, Set Timestamp and unknown opcodes. QEMU's Get
//! Log (0401h) reads its CEL at 4 x the offset asked for (a QEMU bug): its data is compared
//! at offset 0 only.

mod mem;

use crate::env::{errno_str, Env};
use crate::tests::emu;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use mem::{Arena, Ptr, Region, GUARD, MAX_DATA};
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use swcci::proto::mmpt::{self as mmpt_proto, Action, MmptCode, MsgHeader};
use swcci::proto::opcode;
use swcci::proto::payload::identify::Identify;
use swcci::proto::payload::logs::{self, CEL_UUID};
use swcci::proto::payload::tunnel::{self, TunnelResponse};
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::{
    self, CxlCommandInfo, CxlMemQueryCommands, CxlPayload, CxlSendCommand, SwcciBgPolicy,
    SwcciInfo, SwcciMmbCommand, SwcciMmptMsg, Wire, CXL_MEM_COMMAND_FLAG_ENABLED,
    CXL_MEM_COMMAND_ID_RAW, SWCCI_BG_ABORT_ON_TIMEOUT, SWCCI_BG_FLAGS, SWCCI_BG_TIMEOUT_MAX_MS,
    SWCCI_INFO_MMB, SWCCI_INFO_MMPT, SWCCI_MMPT_TIMEOUT_MAX_MS,
};
use swcci::proto::wire::Writer;
use swcci::Device;

/// Seed when the command line names none.
pub const DEFAULT_SEED: u64 = 0x5c01;
/// ioctls per node kind when the command line names no count (CI's short run).
pub const DEFAULT_ITERS: u64 = 3000;
/// Threads of the threaded phase.
const WORKERS: usize = 4;
/// Iterations between progress lines (of all threads together in the threaded phase).
const PROGRESS: u64 = 5000;
/// Seconds without a completed step after which the threaded phase's watchdog reports a
/// stall and fails the test.
const STALL_SECS: u64 = 60;
/// The emulator's background sleep command (input: u32 milliseconds).
const OP_SLEEP: u16 = 0xc000;
/// The emulator's echo command.
const OP_ECHO: u16 = 0xc001;
/// Magic of a tagged MMPT message.
const MAGIC: &[u8; 4] = b"SWFZ";

/// What the fuzzer runs: from the kernel command line.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// The seed.
    pub seed: u64,
    /// ioctls per node kind.
    pub iters: u64,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The seed and count of this boot (`swcci.fuzz_seed=`, `swcci.fuzz_iters=`).
pub fn params() -> Params {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let get = |k: &str| {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(parse_num)
    };
    Params {
        seed: get("swcci.fuzz_seed=").unwrap_or(DEFAULT_SEED),
        iters: get("swcci.fuzz_iters=").unwrap_or(DEFAULT_ITERS).max(8),
    }
}

/// `ioctl(fd, cmd, arg)`: Ok or the errno.
fn ioctl(fd: i32, cmd: u32, arg: u64) -> std::result::Result<(), i32> {
    #[cfg(target_env = "musl")]
    let cmd = cmd as libc::c_int;
    #[cfg(not(target_env = "musl"))]
    let cmd = libc::c_ulong::from(cmd);
    // SAFETY: the kernel validates `arg` as a user pointer; every address the fuzzer passes
    // is either memory of its arena (which it expects the kernel to write) or one the kernel
    // must refuse with EFAULT. Nothing else of this process can be written.
    let r = unsafe { libc::ioctl(fd, cmd, arg as usize) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// The kind of a node under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// QEMU's switch mailbox CCI (`/dev/cxl/switchN`).
    QemuSwitch,
    /// The emulator's switch personality (`/dev/cxl/switchN`, with MMB and MMPT).
    EmuSwitch,
    /// The emulator's MMPT personality (`/dev/swcci/mmptN`).
    Mmpt,
}

/// A node under test and what it answered before the fuzzer started.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its kind.
    pub kind: Kind,
    /// The node.
    pub path: PathBuf,
    /// The PCI address.
    pub addr: String,
    /// What `SWCCI_IOCTL_INFO` returned.
    pub info: SwcciInfo,
    /// Payload size in bytes.
    pub payload: usize,
    /// Identify (0001h) output (switches).
    pub identify: Vec<u8>,
    /// Identify Switch Device (5100h) output (switches).
    pub identify_switch: Vec<u8>,
    /// Get Supported Logs (0400h) output (switches).
    pub supported_logs: Vec<u8>,
    /// The Command Effects Log (switches).
    pub cel: Vec<u8>,
    /// Downstream ports with a type-3 device and its serial (QEMU's switches).
    pub type3: Vec<(u8, u64)>,
    /// Every port of the switch (QEMU's switches).
    pub ports: Vec<u8>,
    /// Control channel of the emulator.
    pub control: Option<String>,
}

impl Target {
    /// Whether the node takes the MMPT ioctls.
    pub fn mmpt(&self) -> bool {
        self.info.flags & SWCCI_INFO_MMPT != 0
    }

    /// Whether the mailbox is an MMB (opcode vendor ids other than 0 are accepted).
    pub fn mmb(&self) -> bool {
        self.info.flags & SWCCI_INFO_MMB != 0
    }

    fn switch(&self) -> bool {
        self.kind != Kind::Mmpt
    }
}

/// Loads the module so that every device of the topology is bound (the MMB functions through
/// `driver_override`, as `emu::devices` does) and binds what an earlier test left unbound.
pub fn load_all(env: &mut Env) -> Result<()> {
    if !env.module_loaded() {
        env.load("")?;
    }
    if !env.topo.emulated.is_empty() {
        emu::devices(env)?;
    }
    env.ensure_loaded()
}

fn probe_target(
    kind: Kind,
    path: &Path,
    control: Option<String>,
    t3: &[(u8, u64)],
    ports: &[u8],
) -> Result<Target> {
    let dev = Device::open(path)?;
    let info = dev.info()?;
    let payload = info.payload_size as usize;
    let mut t = Target {
        kind,
        path: path.to_path_buf(),
        addr: swcci::info_str(&info.pci_addr),
        info,
        payload,
        identify: Vec::new(),
        identify_switch: Vec::new(),
        supported_logs: Vec::new(),
        cel: Vec::new(),
        type3: t3.to_vec(),
        ports: ports.to_vec(),
        control,
    };
    if t.switch() {
        t.identify = dev.command(opcode::IDENTIFY, &[], 64)?;
        t.identify_switch = dev.command(opcode::IDENTIFY_SWITCH, &[], 128)?;
        t.supported_logs = dev.command(opcode::GET_SUPPORTED_LOGS, &[], payload)?;
        let size = dev
            .supported_logs()?
            .iter()
            .find(|l| l.uuid == CEL_UUID)
            .map(|l| l.size)
            .context("no CEL")?;
        t.cel = dev.read_log(&CEL_UUID, size)?;
    }
    Ok(t)
}

/// Every node of this boot, with its reference answers.
pub fn targets(env: &mut Env) -> Result<Vec<Target>> {
    load_all(env)?;
    let mut out = Vec::new();
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        let t3: Vec<(u8, u64)> = sw.type3.iter().map(|t| (t.port, t.serial)).collect();
        let mut ports = sw.dsps.clone();
        ports.push(sw.usp_port);
        out.push(probe_target(
            Kind::QemuSwitch,
            dev.path(),
            None,
            &t3,
            &ports,
        )?);
    }
    for d in emu::devices(env)? {
        let kind = if d.spec.personality == "switch" {
            Kind::EmuSwitch
        } else {
            Kind::Mmpt
        };
        out.push(probe_target(
            kind,
            &d.path,
            Some(d.spec.control.clone()),
            &[],
            &[],
        )?);
    }
    Ok(out)
}

/// What a case may end in.
#[derive(Clone, Debug, Default)]
struct Expect {
    /// Success is allowed.
    ok: bool,
    /// These errnos are allowed.
    errnos: Vec<i32>,
    /// The request must not reach the device (its command counter stays).
    refused: bool,
}

impl Expect {
    fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    fn err(e: i32) -> Self {
        Self {
            ok: false,
            errnos: vec![e],
            refused: true,
        }
    }

    fn or(mut self, e: i32) -> Self {
        if !self.errnos.contains(&e) {
            self.errnos.push(e);
        }
        self
    }

    fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .errnos
            .iter()
            .map(|e| swcci::errno_name(*e).to_string())
            .collect();
        if self.ok {
            v.insert(0, "success".into());
        }
        v.join(" or ")
    }
}

/// How the device's answer to a valid command is checked.
#[derive(Clone, Debug)]
enum Check {
    /// Any return code and output.
    Any,
    /// This return code, any output.
    Rc(u16),
    /// Success with this output (truncated to the caller's buffer).
    Exact(Vec<u8>),
    /// Get Log (0401h) of the CEL: success gives these bytes.
    LogSlice(Vec<u8>),
    /// A tunnelled Identify of the type-3 with this serial, `depth` tunnels deep.
    TunnelIdentify { depth: usize, serial: u64 },
}

impl Check {
    /// Checks return code `rc` and output `out` of a request that allowed `room` bytes of
    /// output.
    fn verify(&self, rc: u16, out: &[u8], room: usize) -> std::result::Result<(), String> {
        match self {
            Self::Any => Ok(()),
            Self::Rc(want) if rc == *want => Ok(()),
            Self::Rc(want) => Err(format!("return code {rc:#x}, expected {want:#x}")),
            Self::Exact(data) | Self::LogSlice(data) => {
                if rc != 0 {
                    return Err(format!("return code {rc:#x}, expected success"));
                }
                let n = data.len().min(room);
                if out != &data[..n] {
                    return Err(format!(
                        "output {:02x?} differs from the device's earlier answer {:02x?}",
                        &out[..out.len().min(32)],
                        &data[..n.min(32)]
                    ));
                }
                Ok(())
            }
            Self::TunnelIdentify { depth, serial } => {
                if rc != 0 {
                    return Err(format!("tunnel return code {rc:#x}, expected success"));
                }
                if room < 64 + 16 * depth {
                    return Ok(());
                }
                let mut body = out;
                for level in 1..=*depth {
                    let t = TunnelResponse::decode(body)
                        .map_err(|e| format!("level {level} tunnel response: {e}"))?;
                    if !t.header.rc.is_success() {
                        return Err(format!("level {level}: inner return code {}", t.header.rc));
                    }
                    body = t.payload;
                }
                let id = Identify::decode(body).map_err(|e| format!("tunnelled Identify: {e}"))?;
                if id.serial != *serial {
                    return Err(format!(
                        "tunnelled Identify serial {:#x}, expected {serial:#x}",
                        id.serial
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A command and how its answer is checked.
struct Cmd {
    opcode: u16,
    input: Vec<u8>,
    check: Check,
    /// May run in the background (EINTR and ETIMEDOUT are possible).
    bg: bool,
}

/// What the fuzzer does in a phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// One thread: counters, message order and policies are checked exactly.
    pub single: bool,
    /// Signals interrupt waits.
    pub signals: bool,
    /// The devices were unbound: everything valid ends in ENXIO.
    pub gone: bool,
}

/// MMPT messages sent (echoed by the emulator) and not yet received, per target.
#[derive(Debug, Default)]
struct Book {
    pending: VecDeque<(u32, u8, usize)>,
    sent: u64,
    received: u64,
    /// Receives that failed with EFAULT while a message was waiting (it may be lost).
    faulted: u64,
}

/// State shared by the threads of a phase.
pub struct Shared {
    books: Vec<Mutex<Book>>,
    ioctls: AtomicU64,
    /// Steps completed by each `doing` slot's thread (the watchdog's measure of progress).
    steps: Vec<AtomicU64>,
    /// Whether each `doing` slot's thread has ended (the watchdog no longer expects steps).
    finished: Vec<AtomicBool>,
    stop: AtomicBool,
    /// What each thread is doing (a short description set before each step and ioctl):
    /// workers by their thread number (0 in the single-threaded phase, 1..=WORKERS in the
    /// threaded one), then the churn thread.
    doing: Vec<Mutex<String>>,
    /// The kernel thread id of each `doing` slot's thread (0 until it starts).
    tid: Vec<AtomicI32>,
}

/// The `doing` slot of the churn thread.
const CHURN_SLOT: usize = WORKERS + 1;

impl Shared {
    fn new(n: usize) -> Self {
        Self {
            books: (0..n).map(|_| Mutex::new(Book::default())).collect(),
            ioctls: AtomicU64::new(0),
            steps: (0..=CHURN_SLOT).map(|_| AtomicU64::new(0)).collect(),
            finished: (0..=CHURN_SLOT).map(|_| AtomicBool::new(false)).collect(),
            stop: AtomicBool::new(false),
            doing: (0..=CHURN_SLOT)
                .map(|_| Mutex::new(String::new()))
                .collect(),
            tid: (0..=CHURN_SLOT).map(|_| AtomicI32::new(0)).collect(),
        }
    }

    /// Records the calling thread as the one of `doing` slot `slot`.
    fn register(&self, slot: usize) {
        if let Some(t) = self.tid.get(slot) {
            // SAFETY: gettid has no preconditions.
            t.store(unsafe { libc::gettid() }, Ordering::Relaxed);
        }
    }

    /// Records what thread `slot` does next.
    fn set_doing(&self, slot: usize, what: impl FnOnce() -> String) {
        if let Some(Ok(mut d)) = self.doing.get(slot).map(|m| m.lock()) {
            *d = what();
        }
    }
}

/// An open file of a target and the background policy set on it.
struct Slot {
    file: Arc<File>,
    policy: SwcciBgPolicy,
    /// Other threads use the file too (its policy may change under this one).
    shared: bool,
}

const DEFAULT_POLICY: SwcciBgPolicy = SwcciBgPolicy {
    timeout_ms: 60_000,
    flags: SWCCI_BG_ABORT_ON_TIMEOUT,
};

fn open_node(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// The device's command counter.
fn commands(addr: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("{}/{addr}/stats", crate::env::DEBUGFS_DIR)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("commands: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// An MMPT message the fuzzer can recognise: a tag (magic, sequence, length, type) and a
/// pattern derived from it; messages shorter than the tag are the pattern of their length.
pub fn tagged(seq: u32, msg_type: u8, len: usize) -> Vec<u8> {
    let seq = if len >= 16 { seq } else { 0 };
    let mut m: Vec<u8> = (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seq)
                .rotate_left(7) as u8
                ^ msg_type
        })
        .collect();
    if len >= 16 {
        m[..4].copy_from_slice(MAGIC);
        m[4..8].copy_from_slice(&seq.to_le_bytes());
        m[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        m[12] = msg_type;
        m[13..16].fill(0);
    }
    m
}

/// Checks a received message is one the fuzzer sent, intact; returns its sequence number
/// (`None` for untagged short ones).
pub fn verify_tagged(msg_type: u8, data: &[u8]) -> std::result::Result<Option<u32>, String> {
    let seq = if data.len() >= 16 {
        if &data[..4] != MAGIC {
            return Err(format!(
                "received message without the fuzzer's tag: {:02x?}",
                &data[..16]
            ));
        }
        Some(u32::from_le_bytes(
            data[4..8].try_into().unwrap_or_default(),
        ))
    } else {
        None
    };
    let want = tagged(seq.unwrap_or(0), msg_type, data.len());
    if data != want.as_slice() {
        let at = data
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "received message of type {msg_type:#x}, {} bytes, differs from what was sent at byte {at} (got {:02x?})",
            data.len(),
            &data[at..(at + 16).min(data.len())]
        ));
    }
    Ok(seq)
}

/// Opcodes no device of the bench implements.
fn unknown_opcode(rng: &mut XorShiftRng) -> u16 {
    match rng.random_range(0..3u8) {
        0 => rng.random_range(0x0700..0x4000),
        1 => rng.random_range(0x6000..0xc000),
        _ => rng.random_range(0xc100..=0xffff),
    }
}

/// One fuzzing thread.
pub struct Worker<'a> {
    rng: XorShiftRng,
    arena: Arena,
    targets: &'a [Target],
    shared: &'a Shared,
    slots: Vec<Vec<Slot>>,
    mode: Mode,
    seq: u32,
    /// This thread's `doing` slot in `shared`.
    thread: usize,
    /// ioctls issued.
    pub ioctls: u64,
}

impl<'a> Worker<'a> {
    /// A worker over `targets`, seeded from `seed`.
    /// `common`: files (one per target) every thread of the phase also uses.
    pub fn new(
        seed: u64,
        thread: u8,
        targets: &'a [Target],
        shared: &'a Shared,
        mode: Mode,
        common: &[Arc<File>],
    ) -> Result<Self> {
        let mut slots = Vec::new();
        for (ti, t) in targets.iter().enumerate() {
            let f = open_node(&t.path).with_context(|| format!("open {}", t.path.display()))?;
            let mut v = vec![Slot {
                file: Arc::new(f),
                policy: DEFAULT_POLICY,
                shared: false,
            }];
            if let Some(c) = common.get(ti) {
                v.push(Slot {
                    file: c.clone(),
                    policy: DEFAULT_POLICY,
                    shared: true,
                });
            }
            slots.push(v);
        }
        Ok(Self {
            rng: XorShiftRng::seed_from_u64(seed),
            arena: Arena::new()?,
            targets,
            shared,
            slots,
            mode,
            seq: u32::from(thread) << 24,
            thread: usize::from(thread),
            ioctls: 0,
        })
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.rng.random_range(0..v.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.rng.random::<u8>()).collect()
    }

    /// A size for a buffer of at most `max` bytes, biased to the edges.
    fn size(&mut self, max: usize) -> usize {
        match self.rng.random_range(0..8u8) {
            0 => 0,
            1 => 1.min(max),
            2 => max,
            3 => max.saturating_sub(1),
            _ => self.rng.random_range(0..=max),
        }
    }

    /// A size the driver must refuse for a limit of `max`.
    fn too_big(&mut self, max: usize) -> u32 {
        let max = u32::try_from(max).unwrap_or(u32::MAX - 1);
        self.pick(&[
            max + 1,
            max.saturating_mul(2),
            1 << 24,
            u32::MAX,
            u32::MAX / 2 + 1,
        ])
    }

    fn slot(&mut self, ti: usize) -> usize {
        self.rng.random_range(0..self.slots[ti].len())
    }

    fn fd(&self, ti: usize, si: usize) -> i32 {
        self.slots[ti][si].file.as_raw_fd()
    }

    /// Issues one ioctl, checks the result against `e` and, for refused requests in the
    /// single-threaded phase, that the device's counter did not move.
    fn issue(
        &mut self,
        ti: usize,
        fd: i32,
        cmd: u32,
        arg: u64,
        e: &Expect,
    ) -> std::result::Result<std::result::Result<(), i32>, String> {
        let t = &self.targets[ti];
        let before = if self.mode.single && !self.mode.gone && e.refused {
            commands(&t.addr)
        } else {
            None
        };
        if let Some(Ok(mut d)) = self.shared.doing.get(self.thread).map(|m| m.lock()) {
            d.push_str(&format!("; ioctl {cmd:#010x} on fd {fd}"));
        }
        let r = ioctl(fd, cmd, arg);
        self.ioctls += 1;
        self.shared.ioctls.fetch_add(1, Ordering::Relaxed);
        let fine = match r {
            Ok(()) => e.ok,
            Err(errno) => e.errnos.contains(&errno),
        };
        if !fine {
            return Err(format!(
                "got {}, expected {}",
                r.map_or_else(errno_str, |()| "success".into()),
                e.describe()
            ));
        }
        if let Some(b) = before {
            if let Some(a) = commands(&t.addr) {
                if a != b {
                    return Err(format!(
                        "refused with {} but the device was sent {} command(s)",
                        r.map_or_else(errno_str, |()| "success".into()),
                        a - b
                    ));
                }
            }
        }
        Ok(r)
    }

    /// Applies the phase to what a request of class `e` expects; `waits`: the request may wait
    /// for something a signal interrupts.
    fn adjust(&self, mut e: Expect, waits: bool) -> Expect {
        if self.mode.gone {
            e.ok = false;
            e.refused = true;
            return e.or(libc::ENXIO);
        }
        if e.ok && waits && self.mode.signals {
            // Raw commands wait for background operations, MMPT receives for messages, MMPT
            // sends for another sender's transfer (interruptibly: without SA_RESTART the
            // signal ends the call with EINTR, nothing sent; mmpt.rst).
            e = e.or(libc::EINTR);
        }
        e
    }

    /// One random ioctl on a random target.
    pub fn step(&mut self) -> std::result::Result<(), String> {
        let ti = self.rng.random_range(0..self.targets.len());
        let kind = self.targets[ti].kind;
        let weights: &[(u8, u32)] = match kind {
            Kind::QemuSwitch => &[
                (0, 40),
                (1, 15),
                (2, 8),
                (3, 8),
                (4, 8),
                (5, 4),
                (6, 4),
                (7, 6),
                (8, 5),
            ],
            Kind::EmuSwitch => &[
                (0, 30),
                (1, 14),
                (2, 6),
                (3, 6),
                (4, 8),
                (5, 12),
                (6, 12),
                (7, 5),
                (8, 5),
            ],
            Kind::Mmpt => &[
                (0, 10),
                (1, 15),
                (2, 6),
                (3, 5),
                (4, 6),
                (5, 25),
                (6, 25),
                (7, 4),
                (8, 4),
            ],
        };
        let total: u32 = weights.iter().map(|w| w.1).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut op = 0;
        for (o, w) in weights {
            if roll < *w {
                op = *o;
                break;
            }
            roll -= w;
        }
        const NAMES: [&str; 9] = [
            "raw command",
            "raw MMB command",
            "info",
            "query",
            "background policy",
            "MMPT send",
            "MMPT receive",
            "unknown ioctl",
            "reopen",
        ];
        self.shared.set_doing(self.thread, || {
            format!(
                "step: {} on {}",
                NAMES[usize::from(op).min(NAMES.len() - 1)],
                self.targets[ti].path.display()
            )
        });
        let r = match op {
            0 => self.op_raw(ti, false),
            1 => self.op_raw(ti, true),
            2 => self.op_info(ti),
            3 => self.op_query(ti),
            4 => self.op_bg_policy(ti),
            5 => self.op_mmpt_send(ti),
            6 => self.op_mmpt_recv(ti),
            7 => self.op_unknown(ti),
            _ => self.op_reopen(ti),
        };
        if let Some(n) = self.shared.steps.get(self.thread) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        self.shared
            .set_doing(self.thread, || "between steps".to_string());
        r
    }

    /// A command for target `ti` (valid, or with arbitrary input where noted).
    fn command(&mut self, ti: usize) -> Cmd {
        let t = &self.targets[ti];
        let payload = t.payload;
        let any = |opcode, input| Cmd {
            opcode,
            input,
            check: Check::Any,
            bg: false,
        };
        if t.kind == Kind::Mmpt {
            // No CXL command set: the function answers whatever it answers.
            let op = self.pick(&[
                opcode::IDENTIFY,
                opcode::BG_OP_STATUS,
                opcode::GET_SUPPORTED_LOGS,
                0x5100,
            ]);
            let op = if self.rng.random_bool(0.5) {
                unknown_opcode(&mut self.rng)
            } else {
                op
            };
            let n = self.size(64.min(payload));
            return any(op, self.bytes(n));
        }
        let (identify, ids, logs_out, cel) = (
            t.identify.clone(),
            t.identify_switch.clone(),
            t.supported_logs.clone(),
            t.cel.clone(),
        );
        let emu = t.kind == Kind::EmuSwitch;
        match self.rng.random_range(0..12u8) {
            0 | 1 => Cmd {
                opcode: opcode::IDENTIFY,
                input: Vec::new(),
                check: Check::Exact(identify),
                bg: false,
            },
            2 => Cmd {
                opcode: opcode::BG_OP_STATUS,
                input: Vec::new(),
                check: Check::Rc(0),
                bg: false,
            },
            3 => Cmd {
                opcode: opcode::GET_SUPPORTED_LOGS,
                input: Vec::new(),
                check: Check::Exact(logs_out),
                bg: false,
            },
            4 => {
                let off = if self.rng.random_bool(0.4) {
                    0
                } else {
                    self.rng.random_range(0..=cel.len() + 8)
                };
                let len = self.rng.random_range(0..=(cel.len() + 8).min(payload));
                let cel_log = self.rng.random_bool(0.8);
                let uuid = if cel_log {
                    CEL_UUID
                } else {
                    logs::VENDOR_DEBUG_UUID
                };
                let input = logs::get_log_input(&uuid, off as u32, len as u32).to_vec();
                // QEMU 11.1 reads its CEL at offset * 4 (it adds the byte offset to a
                // pointer to 4-byte entries): its answer is checked at offset 0 only.
                let exact_off = off == 0 || emu;
                let check = if cel_log && exact_off && len > 0 && off + len <= cel.len() {
                    Check::LogSlice(cel[off..off + len].to_vec())
                } else {
                    Check::Any
                };
                Cmd {
                    opcode: opcode::GET_LOG,
                    input,
                    check,
                    bg: false,
                }
            }
            5 => Cmd {
                opcode: opcode::IDENTIFY_SWITCH,
                input: Vec::new(),
                check: Check::Exact(ids),
                bg: false,
            },
            6 if !emu => {
                // Get Physical Port State of existing ports, or of arbitrary ones.
                let ports = t.ports.clone();
                let n = self.rng.random_range(0..=ports.len().min(8));
                let mut input = vec![n as u8];
                for _ in 0..n {
                    input.push(self.pick(&ports));
                }
                let check = if n > 0 { Check::Rc(0) } else { Check::Any };
                if self.rng.random_bool(0.3) {
                    let m = self.rng.random_range(1..=16);
                    let mut input = self.bytes(m);
                    input[0] %= 16;
                    return any(opcode::GET_PHYS_PORT_STATE, input);
                }
                Cmd {
                    opcode: opcode::GET_PHYS_PORT_STATE,
                    input,
                    check,
                    bg: false,
                }
            }
            6 => {
                // Background sleep: bounded by this file's wait, so a wait ends soon.
                let ms = self.rng.random_range(0..=150u32);
                let input = if self.rng.random_bool(0.9) {
                    ms.to_le_bytes().to_vec()
                } else {
                    let n = self.rng.random_range(0..8);
                    self.bytes(n)
                };
                Cmd {
                    opcode: OP_SLEEP,
                    input,
                    check: Check::Any,
                    bg: true,
                }
            }
            7 | 8 if !emu => self.tunnel(ti),
            7 | 8 => {
                let n = self.size(payload);
                let input = self.bytes(n);
                Cmd {
                    opcode: OP_ECHO,
                    input: input.clone(),
                    check: Check::Exact(input),
                    bg: false,
                }
            }
            9 => any(opcode::REQUEST_ABORT_BG, Vec::new()),
            10 => {
                let n = self.size(32);
                Cmd {
                    opcode: unknown_opcode(&mut self.rng),
                    input: self.bytes(n),
                    check: Check::Rc(ReturnCode::Unsupported.raw()),
                    bg: false,
                }
            }
            _ => {
                // A known opcode with arbitrary input.
                let op = self.pick(&[
                    opcode::IDENTIFY,
                    opcode::BG_OP_STATUS,
                    opcode::GET_SUPPORTED_LOGS,
                    opcode::GET_LOG,
                    opcode::IDENTIFY_SWITCH,
                ]);
                let n = self.size(64);
                any(op, self.bytes(n))
            }
        }
    }

    /// A tunnelled command (5300h), one to three levels deep, to a type-3 device: a
    /// read-only command, Set Timestamp or an unknown opcode; sometimes with a damaged tunnel
    /// header.
    fn tunnel(&mut self, ti: usize) -> Cmd {
        let t = &self.targets[ti];
        let type3 = t.type3.clone();
        let depth = self.pick(&[1, 1, 1, 2, 2, 3]);
        let (inner_op, mut msg) = match self.rng.random_range(0..12u8) {
            0..=3 => (opcode::IDENTIFY, Vec::new()),
            4 => (opcode::BG_OP_STATUS, Vec::new()),
            5 => (opcode::GET_SUPPORTED_LOGS, Vec::new()),
            6 => {
                let off = self.rng.random_range(0..64u32);
                let len = self.rng.random_range(0..=256u32);
                (
                    opcode::GET_LOG,
                    logs::get_log_input(&CEL_UUID, off, len).to_vec(),
                )
            }
            7 => (opcode::GET_TIMESTAMP, Vec::new()),
            8 => (opcode::SET_TIMESTAMP, self.bytes(8)),
            9 => (self.pick(&[0x4000, 0x4100, 0x4200, 0x4500]), Vec::new()),
            10 => {
                let mut i = self.rng.random_range(0..1024u32).to_le_bytes().to_vec();
                i.extend_from_slice(&self.rng.random_range(0..=256u32).to_le_bytes());
                (0x4102, i)
            }
            _ => {
                let n = self.rng.random_range(0..16);
                (unknown_opcode(&mut self.rng), self.bytes(n))
            }
        };
        // Targets, outermost first: a port with a type-3 (or an empty or absent one), then
        // LD 0 (or another).
        let mut path = Vec::new();
        let mut serial = None;
        let mut clean = true;
        for level in 0..depth {
            if level == 0 {
                if !type3.is_empty() && self.rng.random_bool(0.85) {
                    let (p, s) = self.pick(&type3);
                    path.push(p);
                    serial = Some(s);
                } else {
                    let r = self.rng.random::<u8>();
                    path.push(self.pick(&[1, 200, r]));
                    clean = false;
                }
            } else if self.rng.random_bool(0.85) {
                path.push(0);
            } else {
                path.push(self.rng.random_range(1..=255));
                clean = false;
            }
        }
        let mut op = inner_op;
        for (level, &target) in path.iter().enumerate().rev() {
            let mut buf = vec![0u8; tunnel::TUNNEL_HEADER_LEN + tunnel::CCI_HEADER_LEN + msg.len()];
            let tag = self.rng.random::<u8>();
            match tunnel::encode_request(&mut buf, target, tunnel::TARGET_PORT_OR_LD, tag, op, &msg)
            {
                Ok(n) => buf.truncate(n),
                Err(_) => {
                    return Cmd {
                        opcode: opcode::TUNNEL,
                        input: msg,
                        check: Check::Any,
                        bg: false,
                    }
                }
            }
            let _ = level;
            msg = buf;
            op = opcode::TUNNEL;
        }
        // Damage the outermost header (fields QEMU checks before it routes).
        if self.rng.random_bool(0.25) {
            clean = false;
            match self.rng.random_range(0..5u8) {
                0 => {
                    let size = u16::from_le_bytes([msg[2], msg[3]])
                        .wrapping_add(self.pick(&[1, 2, 0xffff, 0x100]));
                    msg[2..4].copy_from_slice(&size.to_le_bytes());
                }
                1 => msg[1] = self.rng.random_range(1..=255),
                2 => msg[4] = self.rng.random_range(1..=15),
                3 => {
                    // Announce less payload than carried (never more: QEMU would read past
                    // its buffer).
                    let len = u32::from_le_bytes([msg[9], msg[10], msg[11], 0]);
                    if len > 0 {
                        let l = self.rng.random_range(0..len).to_le_bytes();
                        msg[9..12].copy_from_slice(&l[..3]);
                    }
                }
                _ => {
                    let cut = self.rng.random_range(1..=msg.len().min(8));
                    msg.truncate(msg.len() - cut);
                }
            }
        }
        let check = match serial {
            Some(s) if clean && inner_op == opcode::IDENTIFY && depth <= 2 => {
                Check::TunnelIdentify { depth, serial: s }
            }
            _ => Check::Any,
        };
        Cmd {
            opcode: opcode::TUNNEL,
            input: msg,
            check,
            bg: false,
        }
    }

    /// `CXL_MEM_SEND_COMMAND`, or `SWCCI_MMB_SEND_COMMAND` (`mmb`).
    fn op_raw(&mut self, ti: usize, mmb: bool) -> std::result::Result<(), String> {
        let t = &self.targets[ti];
        let payload = t.payload;
        let si = self.slot(ti);
        let policy = self.slots[ti][si].policy;
        let mut c = self.command(ti);
        let mut vendor = 0u16;
        if mmb && t.mmb() && self.rng.random_bool(0.3) {
            // PCI-SIG opcodes: unknown ones, or Send/Receive Message aborting (harmless to
            // the driver's own transfers, which hold the mailbox).
            vendor = mmpt_proto::VENDOR_PCI_SIG;
            if self.rng.random_bool(0.5) {
                c.opcode = self.pick(&[mmpt_proto::SEND_MESSAGE, mmpt_proto::RECEIVE_MESSAGE]);
                let mut h = [0u8; 16];
                let hdr = MsgHeader {
                    msg_type: 1,
                    action: Action::Abort,
                    offset: 0,
                    length: 0,
                };
                let _ = hdr.encode(&mut Writer::new(&mut h));
                c.input = h.to_vec();
            } else {
                c.opcode = loop {
                    let o = self.rng.random::<u16>();
                    if o != mmpt_proto::SEND_MESSAGE && o != mmpt_proto::RECEIVE_MESSAGE {
                        break o;
                    }
                };
            }
            c.check = Check::Any;
            c.bg = false;
        }
        if c.opcode == OP_SLEEP {
            // Keep background waits short: the file's timeout bounds them.
            c.bg = true;
        }
        let out_room = self.size(payload);
        let mut in_ptr = if c.input.is_empty() && self.rng.random_bool(0.2) {
            Ptr::Null
        } else {
            Ptr::good(&mut self.rng)
        };
        let mut out_ptr = if out_room == 0 && self.rng.random_bool(0.2) {
            Ptr::Null
        } else {
            Ptr::good(&mut self.rng)
        };
        let mut arg_ptr = Ptr::good(&mut self.rng);
        let mut id = CXL_MEM_COMMAND_ID_RAW;
        let mut flags = self.rng.random_range(0..4u32);
        let (mut raw_rsvd, mut in_rsvd, mut out_rsvd, mut rsvd) = (0u16, 0u32, 0u32, 0u32);
        let mut in_size = c.input.len() as u32;
        let mut out_size = out_room as u32;
        let mut e = Expect::ok();
        let mut what = String::from("valid");
        let mutate = self.rng.random_bool(0.5);
        if mutate {
            let m = self.rng.random_range(0..10u8);
            match m {
                0 => {
                    arg_ptr = Ptr::bad(&mut self.rng, CxlSendCommand::SIZE);
                    e = Expect::err(libc::EFAULT);
                    what = format!("argument {arg_ptr:?}");
                }
                1 if !mmb => {
                    let r = self.rng.random::<u32>() | 4;
                    id = self.pick(&[0, 1, 3, 0x19, r]);
                    e = Expect::err(libc::ENOTTY);
                    what = format!("id {id}");
                }
                1 => {
                    rsvd = self.rng.random_range(1..=u32::MAX);
                    e = Expect::err(libc::EINVAL);
                    what = format!("rsvd {rsvd:#x}");
                }
                2 if !mmb => {
                    flags |= 1 << self.rng.random_range(2..32);
                    e = Expect::err(libc::EINVAL);
                    what = format!("flags {flags:#x}");
                }
                2 | 3 => {
                    raw_rsvd = self.rng.random_range(1..=u16::MAX);
                    if mmb {
                        // The MMB command has no raw.rsvd: its opcode vendor is the field.
                        if t.mmb() {
                            raw_rsvd = 0;
                            in_rsvd = 1;
                            e = Expect::err(libc::EINVAL);
                            what = "in.rsvd 1".into();
                        } else {
                            vendor = raw_rsvd;
                            raw_rsvd = 0;
                            e = Expect::err(libc::EOPNOTSUPP);
                            what = format!("opcode vendor {vendor:#x} on a CXL mailbox");
                        }
                    } else {
                        e = Expect::err(libc::EINVAL);
                        what = format!("raw.rsvd {raw_rsvd:#x}");
                    }
                }
                4 => {
                    in_rsvd = self.rng.random_range(1..=u32::MAX);
                    e = Expect::err(libc::EINVAL);
                    what = format!("in.rsvd {in_rsvd:#x}");
                }
                5 => {
                    out_rsvd = self.rng.random_range(1..=u32::MAX);
                    e = Expect::err(libc::EINVAL);
                    what = format!("out.rsvd {out_rsvd:#x}");
                }
                6 => {
                    in_size = self.too_big(payload);
                    e = Expect::err(libc::EINVAL);
                    what = format!("in.size {in_size}");
                }
                7 => {
                    out_size = self.too_big(payload);
                    e = Expect::err(libc::EINVAL);
                    what = format!("out.size {out_size}");
                }
                8 if !c.input.is_empty() => {
                    in_ptr = Ptr::bad(&mut self.rng, c.input.len());
                    e = Expect::err(libc::EFAULT);
                    what = format!("in.payload {in_ptr:?}");
                }
                9 if out_room > 0 => {
                    out_ptr = Ptr::bad(&mut self.rng, out_room);
                    // The command runs; the copy back fails unless nothing came back.
                    e = Expect {
                        ok: true,
                        errnos: vec![libc::EFAULT],
                        refused: false,
                    };
                    what = format!("out.payload {out_ptr:?}");
                }
                _ => {}
            }
        }
        if e.ok {
            if c.bg {
                e = e.or(libc::ETIMEDOUT);
            }
            // A raw PCI-SIG Send or Receive Message waits (interruptibly) for another caller's
            // transfer of its direction (chardev.rs, mmpt.rst).
            let transfer = vendor == mmpt_proto::VENDOR_PCI_SIG
                && matches!(
                    c.opcode,
                    mmpt_proto::SEND_MESSAGE | mmpt_proto::RECEIVE_MESSAGE
                );
            e = self.adjust(e, c.bg || transfer);
            e.refused = false;
        } else {
            e = self.adjust(e, false);
        }
        let input_addr = self
            .arena
            .place(Region::Input, in_ptr, &c.input, c.input.len());
        let out_addr = self.arena.place(Region::Output, out_ptr, &[], out_room);
        let input_desc = CxlPayload {
            size: in_size,
            rsvd: in_rsvd,
            payload: input_addr,
        };
        let output_desc = CxlPayload {
            size: out_size,
            rsvd: out_rsvd,
            payload: out_addr,
        };
        let mut arg = vec![0u8; CxlSendCommand::SIZE.max(SwcciMmbCommand::SIZE)];
        let (cmd_no, size) = if mmb {
            let s = SwcciMmbCommand {
                opcode: c.opcode,
                opcode_vendor: vendor,
                retval: 0,
                vendor_status: 0,
                rsvd,
                input: input_desc,
                output: output_desc,
            };
            let _ = s.to_bytes(&mut arg);
            (uapi::SWCCI_MMB_SEND_COMMAND, SwcciMmbCommand::SIZE)
        } else {
            let s = CxlSendCommand {
                id,
                flags,
                raw_opcode: c.opcode,
                raw_rsvd,
                retval: 0,
                input: input_desc,
                output: output_desc,
            };
            let _ = s.to_bytes(&mut arg);
            (uapi::CXL_MEM_SEND_COMMAND, CxlSendCommand::SIZE)
        };
        arg.truncate(size);
        let arg_addr = self.arena.place(Region::Arg, arg_ptr, &arg, size);
        let desc = format!(
            "{} opcode {:04x}h vendor {vendor:#x} in {} B out {} B ({what}; bg wait {} ms)",
            if mmb {
                "SWCCI_MMB_SEND_COMMAND"
            } else {
                "CXL_MEM_SEND_COMMAND"
            },
            c.opcode,
            c.input.len(),
            out_room,
            policy.timeout_ms
        );
        let fd = self.fd(ti, si);
        let ok = self
            .issue(ti, fd, cmd_no, arg_addr, &e)
            .map_err(|m| format!("{desc}: {m}"))?
            .is_ok();
        if !ok || !arg_ptr.valid() {
            return Ok(());
        }
        // The structure: only retval, vendor_status and out.size may change.
        if !self.arena.untouched(arg_addr + size as u64, GUARD)
            || !self.arena.untouched_before(arg_addr)
        {
            return Err(format!(
                "{desc}: the driver wrote outside the {size}-byte structure"
            ));
        }
        let back = self.arena.read(arg_addr, size);
        let (rc, n) = if mmb {
            let b = SwcciMmbCommand::from_bytes(&back).ok_or("decode")?;
            let mut same = SwcciMmbCommand::from_bytes(&arg).ok_or("decode")?;
            same.retval = b.retval;
            same.vendor_status = b.vendor_status;
            same.output.size = b.output.size;
            if b != same {
                return Err(format!(
                    "{desc}: fields the driver must leave changed: {b:?}"
                ));
            }
            (b.retval, b.output.size)
        } else {
            let b = CxlSendCommand::from_bytes(&back).ok_or("decode")?;
            let mut same = CxlSendCommand::from_bytes(&arg).ok_or("decode")?;
            same.retval = b.retval;
            same.output.size = b.output.size;
            if b != same {
                return Err(format!(
                    "{desc}: fields the driver must leave changed: {b:?}"
                ));
            }
            (b.retval, b.output.size)
        };
        let n = n as usize;
        if n > out_room {
            return Err(format!(
                "{desc}: out.size {n} > the {out_room} bytes allowed"
            ));
        }
        if !out_ptr.valid() {
            // Success is right only if what came back fits the accessible part.
            return match out_ptr {
                _ if n == 0 => Ok(()),
                Ptr::Crossing(k) if n <= k => Ok(()),
                _ => Err(format!(
                    "{desc}: success with {n} bytes written to an invalid pointer"
                )),
            };
        }
        let out = self.arena.read(out_addr, n);
        if !self
            .arena
            .untouched(out_addr + n as u64, out_room - n + GUARD)
            || !self.arena.untouched_before(out_addr)
        {
            return Err(format!("{desc}: the driver wrote beyond the {n} output bytes it reported (out.size {out_room})"));
        }
        if vendor == 0 {
            let rc16 = u16::try_from(rc)
                .map_err(|_| format!("{desc}: retval {rc:#x} is not a return code"))?;
            c.check
                .verify(rc16, &out, out_room)
                .map_err(|m| format!("{desc}: {m}"))?;
        }
        Ok(())
    }

    /// `SWCCI_IOCTL_INFO`: the same structure every time, nothing written around it.
    fn op_info(&mut self, ti: usize) -> std::result::Result<(), String> {
        let t = &self.targets[ti];
        let size = SwcciInfo::SIZE;
        let p = if self.rng.random_bool(0.3) {
            Ptr::bad(&mut self.rng, size)
        } else {
            Ptr::good(&mut self.rng)
        };
        let e = if p.valid() {
            Expect::ok()
        } else {
            Expect::err(libc::EFAULT)
        };
        let e = self.adjust(e, false);
        let addr = self.arena.place(Region::Arg, p, &[], size);
        let si = self.slot(ti);
        let fd = self.fd(ti, si);
        let desc = format!("SWCCI_IOCTL_INFO argument {p:?}");
        if self
            .issue(ti, fd, uapi::SWCCI_IOCTL_INFO, addr, &e)
            .map_err(|m| format!("{desc}: {m}"))?
            .is_err()
        {
            return Ok(());
        }
        let got = SwcciInfo::from_bytes(&self.arena.read(addr, size)).ok_or("decode")?;
        if got != t.info {
            return Err(format!("{desc}: {got:?}, before the fuzzer {:?}", t.info));
        }
        if !self.arena.untouched(addr + size as u64, GUARD) || !self.arena.untouched_before(addr) {
            return Err(format!("{desc}: wrote outside the structure"));
        }
        Ok(())
    }

    /// `CXL_MEM_QUERY_COMMANDS`: the count, or min(n, 1) entries, nothing else.
    fn op_query(&mut self, ti: usize) -> std::result::Result<(), String> {
        let payload = self.targets[ti].payload as i32;
        let r = self.rng.random::<u32>();
        let n = self.pick(&[0u32, 0, 1, 2, 5, u32::MAX, r]);
        let rsvd = if self.rng.random_bool(0.2) {
            self.rng.random::<u32>()
        } else {
            0
        };
        let mut hdr = [0u8; 8];
        let _ = CxlMemQueryCommands {
            n_commands: n,
            rsvd,
        }
        .to_bytes(&mut hdr);
        let room = 8 + 16 * (n.min(3) as usize);
        let need = if n == 0 { 8 } else { 24 };
        let p = if self.rng.random_bool(0.3) {
            // Often a buffer whose header is readable and whose entries are not.
            if self.rng.random_bool(0.5) {
                Ptr::Crossing(self.rng.random_range(0..need))
            } else {
                Ptr::bad(&mut self.rng, need)
            }
        } else {
            Ptr::good(&mut self.rng)
        };
        let e = if p.valid() {
            Expect::ok()
        } else {
            Expect::err(libc::EFAULT)
        };
        let e = self.adjust(e, false);
        let addr = self.arena.place(Region::Arg, p, &hdr, room);
        let si = self.slot(ti);
        let fd = self.fd(ti, si);
        let desc = format!("CXL_MEM_QUERY_COMMANDS n_commands {n} rsvd {rsvd:#x} argument {p:?}");
        if self
            .issue(ti, fd, uapi::CXL_MEM_QUERY_COMMANDS, addr, &e)
            .map_err(|m| format!("{desc}: {m}"))?
            .is_err()
        {
            return Ok(());
        }
        let back = self.arena.read(addr, need);
        let q = CxlMemQueryCommands::from_bytes(&back[..8]).ok_or("decode")?;
        if n == 0 {
            if q.n_commands != 1 {
                return Err(format!("{desc}: count {}, expected 1", q.n_commands));
            }
        } else {
            if q.n_commands != n {
                return Err(format!("{desc}: n_commands changed to {}", q.n_commands));
            }
            let want = CxlCommandInfo {
                id: CXL_MEM_COMMAND_ID_RAW,
                flags: CXL_MEM_COMMAND_FLAG_ENABLED,
                size_in: payload,
                size_out: payload,
            };
            let got = CxlCommandInfo::from_bytes(&back[8..24]).ok_or("decode")?;
            if got != want {
                return Err(format!("{desc}: entry {got:?}"));
            }
        }
        if !self
            .arena
            .untouched(addr + need as u64, room - need + GUARD)
            || !self.arena.untouched_before(addr)
        {
            return Err(format!("{desc}: wrote beyond the {need} bytes it returns"));
        }
        Ok(())
    }

    /// `SWCCI_IOCTL_BG_POLICY`.
    fn op_bg_policy(&mut self, ti: usize) -> std::result::Result<(), String> {
        let si = self.slot(ti);
        let r = self.rng.random_range(1..=2000);
        let timeout = self.pick(&[
            0,
            0,
            1,
            50,
            200,
            SWCCI_BG_TIMEOUT_MAX_MS,
            SWCCI_BG_TIMEOUT_MAX_MS + 1,
            u32::MAX,
            r,
        ]);
        let r = self.rng.random::<u32>() | 4;
        let flags = if self.rng.random_bool(0.8) {
            self.rng.random_range(0..4)
        } else {
            self.pick(&[4, 1 << 31, r])
        };
        let valid = flags & !SWCCI_BG_FLAGS == 0 && timeout <= SWCCI_BG_TIMEOUT_MAX_MS;
        let p = if self.rng.random_bool(0.15) {
            Ptr::bad(&mut self.rng, SwcciBgPolicy::SIZE)
        } else {
            Ptr::good(&mut self.rng)
        };
        let e = match (p.valid(), valid) {
            (false, _) => Expect::err(libc::EFAULT),
            (true, false) => Expect::err(libc::EINVAL),
            (true, true) => Expect::ok(),
        };
        let e = self.adjust(e, false);
        let mut b = [0u8; SwcciBgPolicy::SIZE];
        let _ = SwcciBgPolicy {
            timeout_ms: timeout,
            flags,
        }
        .to_bytes(&mut b);
        let addr = self.arena.place(Region::Arg, p, &b, b.len());
        let fd = self.fd(ti, si);
        let desc =
            format!("SWCCI_IOCTL_BG_POLICY timeout {timeout} ms flags {flags:#x} argument {p:?}");
        if self
            .issue(ti, fd, uapi::SWCCI_IOCTL_BG_POLICY, addr, &e)
            .map_err(|m| format!("{desc}: {m}"))?
            .is_err()
        {
            return Ok(());
        }
        let got = SwcciBgPolicy::from_bytes(&self.arena.read(addr, SwcciBgPolicy::SIZE))
            .ok_or("decode")?;
        let before = self.slots[ti][si].policy;
        let want = SwcciBgPolicy {
            timeout_ms: if timeout == 0 {
                before.timeout_ms
            } else {
                timeout
            },
            flags,
        };
        // A file shared with other threads may have had its timeout changed by them.
        let shared_keep = self.slots[ti][si].shared && timeout == 0;
        if got != want
            && !(shared_keep
                && got.flags == flags
                && (1..=SWCCI_BG_TIMEOUT_MAX_MS).contains(&got.timeout_ms))
        {
            return Err(format!("{desc}: returned {got:?}, expected {want:?}"));
        }
        if !self
            .arena
            .untouched(addr + SwcciBgPolicy::SIZE as u64, GUARD)
        {
            return Err(format!("{desc}: wrote beyond the structure"));
        }
        self.slots[ti][si].policy = got;
        Ok(())
    }

    /// `SWCCI_MMPT_SEND` of a tagged message.
    fn op_mmpt_send(&mut self, ti: usize) -> std::result::Result<(), String> {
        let t = &self.targets[ti];
        let has = t.mmpt();
        let payload = t.payload;
        if has {
            // Keep the function's queue (16) from filling: receive when 8 wait (12 with
            // several threads, whose counts race).
            let limit = if self.mode.single { 8 } else { 12 };
            if self.shared.books[ti]
                .lock()
                .map(|b| b.pending.len())
                .unwrap_or(0)
                >= limit
            {
                return self.op_mmpt_recv(ti);
            }
        }
        let r = self.rng.random::<u8>();
        let msg_type = self.pick(&[1u8, 2, 3, 4, 0x7f, r]);
        let len = match self.rng.random_range(0..20u8) {
            0 => 0,
            1 => 1,
            2 => 15,
            3 => 16,
            4 => payload - 17,
            5 => payload - 16,
            6 => payload - 15,
            7 => 2 * payload + 3,
            8 if self.rng.random_bool(0.1) => 64 << 10,
            _ => self.rng.random_range(0..=4096),
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let data = tagged(seq, msg_type, len);
        let mut m = SwcciMmptMsg {
            msg_type,
            len: len as u32,
            ..SwcciMmptMsg::default()
        };
        let mut arg_ptr = Ptr::good(&mut self.rng);
        let mut data_ptr = if len == 0 && self.rng.random_bool(0.3) {
            Ptr::Null
        } else {
            Ptr::good(&mut self.rng)
        };
        let mut e = if has {
            Expect::ok()
        } else {
            Expect::err(libc::EOPNOTSUPP)
        };
        let mut what = String::from("valid");
        if self.rng.random_bool(0.5) {
            let class = match self.rng.random_range(0..5u8) {
                k @ (0 | 1) => self.bad_mmpt_arg(k, &mut m, &mut arg_ptr, &mut what),
                2 => {
                    // Caps the transfer up to SWCCI_MMPT_TIMEOUT_MAX_MS; above, EINVAL.
                    m.timeout_ms = self
                        .rng
                        .random_range(SWCCI_MMPT_TIMEOUT_MAX_MS + 1..=u32::MAX);
                    what = format!("timeout_ms {}", m.timeout_ms);
                    Some(libc::EINVAL)
                }
                3 => {
                    m.len = self.too_big(MAX_DATA);
                    what = format!("len {}", m.len);
                    Some(libc::EMSGSIZE)
                }
                _ if len > 0 => {
                    data_ptr = Ptr::bad(&mut self.rng, len);
                    what = format!("data {data_ptr:?}");
                    Some(libc::EFAULT)
                }
                _ => None,
            };
            if let Some(c) = class {
                e = if arg_ptr.valid() && !has {
                    Expect::err(c).or(libc::EOPNOTSUPP)
                } else {
                    Expect::err(c)
                };
            }
        }
        let e = self.adjust(e, true);
        let daddr = self.arena.place(Region::Input, data_ptr, &data, len);
        m.data = daddr;
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        let _ = m.to_bytes(&mut b);
        let addr = self.arena.place(Region::Arg, arg_ptr, &b, b.len());
        let si = self.slot(ti);
        let fd = self.fd(ti, si);
        let desc = format!("SWCCI_MMPT_SEND type {msg_type:#x} len {len} seq {seq:#x} ({what})");
        self.shared.set_doing(self.thread, || desc.clone());
        // On the books before it is sent: another thread may receive the echo before this
        // one's ioctl returns. Taken off again if it was not queued.
        let may_queue = e.ok && !self.mode.gone;
        if may_queue {
            if let Ok(mut book) = self.shared.books[ti].lock() {
                book.pending.push_back((seq, msg_type, len));
            }
        }
        let r = self
            .issue(ti, fd, uapi::SWCCI_MMPT_SEND, addr, &e)
            .map_err(|m| format!("{desc}: {m}"));
        let queued = match &r {
            Ok(Ok(())) => {
                let got = SwcciMmptMsg::from_bytes(&self.arena.read(addr, SwcciMmptMsg::SIZE))
                    .ok_or("decode")?;
                if !self
                    .arena
                    .untouched(addr + SwcciMmptMsg::SIZE as u64, GUARD)
                {
                    return Err(format!("{desc}: wrote beyond the structure"));
                }
                got.retval == 0
            }
            _ => false,
        };
        if let Ok(Ok(())) = &r {
            // One thread, a queue never full, no transfer of anyone else: a valid message is
            // never refused for a transfer in progress (one a refused part left open).
            let got = SwcciMmptMsg::from_bytes(&self.arena.read(addr, SwcciMmptMsg::SIZE))
                .ok_or("decode")?;
            if self.mode.single
                && u16::try_from(got.retval).ok().map(MmptCode::from_raw)
                    == Some(MmptCode::TransferInProgress)
            {
                return Err(format!(
                    "{desc}: refused with TransferInProgress: an earlier transfer was left open"
                ));
            }
        }
        if let Ok(mut book) = self.shared.books[ti].lock() {
            if queued {
                book.sent += 1;
            } else if may_queue {
                if let Some(i) = book.pending.iter().position(|&(s, _, _)| s == seq) {
                    book.pending.remove(i);
                }
            }
        }
        r.map(|_| ())
    }

    /// The two argument faults `SWCCI_MMPT_SEND` and `SWCCI_MMPT_RECV` share: `k` 0, the
    /// argument pointer made bad (EFAULT); 1, a reserved byte set (EINVAL). Returns the errno.
    fn bad_mmpt_arg(
        &mut self,
        k: u8,
        m: &mut SwcciMmptMsg,
        arg_ptr: &mut Ptr,
        what: &mut String,
    ) -> Option<i32> {
        if k == 0 {
            *arg_ptr = Ptr::bad(&mut self.rng, SwcciMmptMsg::SIZE);
            *what = format!("argument {arg_ptr:?}");
            Some(libc::EFAULT)
        } else {
            m.rsvd0[self.rng.random_range(0..3)] = self.rng.random_range(1..=255);
            *what = format!("rsvd0 {:02x?}", m.rsvd0);
            Some(libc::EINVAL)
        }
    }

    /// `SWCCI_MMPT_RECV`: messages come back intact, in order (single-threaded), and only
    /// those sent.
    fn op_mmpt_recv(&mut self, ti: usize) -> std::result::Result<(), String> {
        let t = &self.targets[ti];
        let has = t.mmpt();
        let payload = t.payload;
        let room = match self.rng.random_range(0..10u8) {
            0 => 0,
            1 => 1,
            2 => 15,
            3 => payload,
            4 => 2 * payload,
            5 => 64 << 10,
            _ => 4200,
        };
        let timeout = if self.rng.random_bool(0.6) {
            0
        } else {
            self.rng.random_range(1..=20u32)
        };
        let mut m = SwcciMmptMsg {
            timeout_ms: timeout,
            len: room as u32,
            ..SwcciMmptMsg::default()
        };
        let mut arg_ptr = Ptr::good(&mut self.rng);
        let mut data_ptr = if room == 0 && self.rng.random_bool(0.3) {
            Ptr::Null
        } else {
            Ptr::good(&mut self.rng)
        };
        let front = if self.mode.single {
            self.shared.books[ti]
                .lock()
                .ok()
                .and_then(|b| b.pending.front().copied())
        } else {
            None
        };
        let mut what = String::from("valid");
        let mut class = None;
        if self.rng.random_bool(0.4) {
            class = match self.rng.random_range(0..4u8) {
                k @ (0 | 1) => self.bad_mmpt_arg(k, &mut m, &mut arg_ptr, &mut what),
                2 => {
                    m.timeout_ms = self.pick(&[SWCCI_MMPT_TIMEOUT_MAX_MS + 1, u32::MAX]);
                    what = format!("timeout_ms {}", m.timeout_ms);
                    Some(libc::EINVAL)
                }
                _ if room > 0 => {
                    data_ptr = Ptr::bad(&mut self.rng, room);
                    what = format!("data {data_ptr:?}");
                    None
                }
                _ => None,
            };
        }
        let nothing = if timeout == 0 {
            libc::EAGAIN
        } else {
            libc::ETIMEDOUT
        };
        let mut e = if let Some(c) = class {
            let e = Expect::err(c);
            if !has && arg_ptr.valid() {
                e.or(libc::EOPNOTSUPP)
            } else {
                e
            }
        } else if !has {
            Expect::err(libc::EOPNOTSUPP)
        } else if self.mode.single && !self.mode.gone {
            // Exactly what must happen: the oldest message comes back (or the copy faults),
            // or stays when it does not fit, or nothing waits.
            match front {
                None => Expect::err(nothing),
                Some((_, _, len)) if len > room => Expect::err(libc::EMSGSIZE),
                Some((_, _, len))
                    if data_ptr.valid()
                        || len == 0
                        || matches!(data_ptr, Ptr::Crossing(k) if len <= k) =>
                {
                    Expect::ok()
                }
                Some(_) => Expect::err(libc::EFAULT),
            }
        } else {
            let e = Expect::ok().or(nothing).or(libc::EMSGSIZE);
            if data_ptr.valid() {
                e
            } else {
                e.or(libc::EFAULT)
            }
        };
        if class.is_none() && has {
            e.refused = false;
        }
        // Even without a timeout, a receive waits (interruptibly) for another receiver's
        // transfer to end (mmpt.rst).
        let e = self.adjust(e, true);
        let daddr = self.arena.place(Region::Output, data_ptr, &[], room);
        m.data = daddr;
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        let _ = m.to_bytes(&mut b);
        let addr = self.arena.place(Region::Arg, arg_ptr, &b, b.len());
        let si = self.slot(ti);
        let fd = self.fd(ti, si);
        let desc = format!(
            "SWCCI_MMPT_RECV buffer {room} B timeout {timeout} ms ({what}; waiting: {front:?})"
        );
        self.shared.set_doing(self.thread, || desc.clone());
        let r = self
            .issue(ti, fd, uapi::SWCCI_MMPT_RECV, addr, &e)
            .map_err(|m| format!("{desc}: {m}"))?;
        let ok = r.is_ok();
        let errno = r.err();
        if !arg_ptr.valid() {
            return Ok(());
        }
        let got =
            SwcciMmptMsg::from_bytes(&self.arena.read(addr, SwcciMmptMsg::SIZE)).ok_or("decode")?;
        if !self
            .arena
            .untouched(addr + SwcciMmptMsg::SIZE as u64, GUARD)
        {
            return Err(format!("{desc}: wrote beyond the structure"));
        }
        if !ok {
            if errno == Some(libc::EMSGSIZE) && (got.len as usize) <= room {
                return Err(format!(
                    "{desc}: EMSGSIZE with len {} <= the {room}-byte buffer",
                    got.len
                ));
            }
            if errno == Some(libc::EMSGSIZE) {
                if let Some((_, _, len)) = front {
                    if got.len as usize != len {
                        return Err(format!(
                            "{desc}: EMSGSIZE says {} bytes wait, the oldest has {len}",
                            got.len
                        ));
                    }
                }
            }
            if errno == Some(libc::EFAULT)
                && arg_ptr.valid()
                && (front.is_some() || !self.mode.single)
            {
                // The copy of a message to user space failed: it may be gone.
                if let Ok(mut book) = self.shared.books[ti].lock() {
                    book.faulted += 1;
                }
                if self.mode.single {
                    self.resync(ti)?;
                }
            }
            return Ok(());
        }
        let n = got.len as usize;
        if n > room {
            return Err(format!("{desc}: len {n} > the {room}-byte buffer"));
        }
        if !data_ptr.valid() {
            // Success is right only if the message fits the accessible part; it is gone then.
            return match data_ptr {
                _ if n == 0 => self
                    .account(ti, None, got.msg_type, 0)
                    .map_err(|m| format!("{desc}: {m}")),
                Ptr::Crossing(k) if n <= k => {
                    let data = self.arena.read(daddr, n);
                    let seq =
                        verify_tagged(got.msg_type, &data).map_err(|m| format!("{desc}: {m}"))?;
                    self.account(ti, seq, got.msg_type, n)
                        .map_err(|m| format!("{desc}: {m}"))
                }
                _ => Err(format!(
                    "{desc}: success with {n} bytes written to an invalid pointer"
                )),
            };
        }
        let data = self.arena.read(daddr, n);
        if !self.arena.untouched(daddr + n as u64, room - n + GUARD)
            || !self.arena.untouched_before(daddr)
        {
            return Err(format!("{desc}: wrote beyond the {n} bytes of the message"));
        }
        let seq = verify_tagged(got.msg_type, &data).map_err(|m| format!("{desc}: {m}"))?;
        self.account(ti, seq, got.msg_type, n)
            .map_err(|m| format!("{desc}: {m}"))
    }

    /// Takes a received message off the book: in single-threaded phases it must be the oldest.
    fn account(
        &mut self,
        ti: usize,
        seq: Option<u32>,
        msg_type: u8,
        n: usize,
    ) -> std::result::Result<(), String> {
        let single = self.mode.single;
        let mut book = self.shared.books[ti].lock().map_err(|_| "book poisoned")?;
        let pos = book
            .pending
            .iter()
            .position(|&(s, ty, len)| ty == msg_type && len == n && seq.is_none_or(|q| q == s));
        match pos {
            Some(0) => {}
            Some(i) if !single => {
                let _ = i;
            }
            Some(i) => {
                return Err(format!("received message {i} of {} waiting, not the oldest: {:?}", book.pending.len(), book.pending.front()));
            }
            None => return Err(format!("received a message of type {msg_type:#x}, {n} bytes, seq {seq:?} that was not sent or was received twice")),
        }
        if let Some(i) = pos {
            book.pending.remove(i);
        }
        book.received += 1;
        Ok(())
    }

    /// After a receive whose data pointer faulted: drains the queue, accepting that the
    /// oldest message may be gone.
    fn resync(&mut self, ti: usize) -> std::result::Result<(), String> {
        let path = self.targets[ti].path.clone();
        self.shared.set_doing(self.thread, || {
            format!("resync: draining {}", path.display())
        });
        let dev = Device::open(&path).map_err(|e| e.to_string())?;
        // The faulted message was either consumed (lost: the oldest is skipped once) or not
        // (it comes back first). Messages under 16 bytes carry no tag: two of the same type
        // and length look alike, so the skip may show up at any point of the drain.
        let mut skipped = false;
        loop {
            match dev.mmpt_recv(MAX_DATA, 0) {
                Ok(swcci::MmptRecv::Message { msg_type, data }) => {
                    self.ioctls += 1;
                    let seq = verify_tagged(msg_type, &data)?;
                    let mut book = self.shared.books[ti].lock().map_err(|_| "book poisoned")?;
                    let pos = book.pending.iter().position(|&(s, ty, len)| {
                        ty == msg_type && len == data.len() && seq.is_none_or(|q| q == s)
                    });
                    match pos {
                        Some(i) if i == 0 || (i == 1 && !skipped) => {
                            book.pending.drain(..=i);
                            book.received += 1;
                            skipped |= i == 1;
                        }
                        _ => {
                            return Err(format!(
                                "after a faulted receive: message {seq:?} ({} bytes) at {pos:?} of {:?}",
                                data.len(),
                                book.pending.iter().take(6).collect::<Vec<_>>()
                            ))
                        }
                    }
                }
                Ok(other) => return Err(format!("draining: {other:?}")),
                Err(e) if e.errno() == Some(libc::EAGAIN) => {
                    let mut book = self.shared.books[ti].lock().map_err(|_| "book poisoned")?;
                    book.pending.clear();
                    return Ok(());
                }
                Err(e) => return Err(format!("draining after a faulted receive: {e}")),
            }
        }
    }

    /// An ioctl number the node does not have (type 0xCE with unknown numbers or wrong
    /// sizes and directions, or other types the VFS does not handle itself).
    fn op_unknown(&mut self, ti: usize) -> std::result::Result<(), String> {
        let known = [
            uapi::CXL_MEM_QUERY_COMMANDS,
            uapi::CXL_MEM_SEND_COMMAND,
            uapi::SWCCI_IOCTL_INFO,
            uapi::SWCCI_IOCTL_BG_POLICY,
            uapi::SWCCI_MMPT_SEND,
            uapi::SWCCI_MMPT_RECV,
            uapi::SWCCI_MMB_SEND_COMMAND,
        ];
        let cmd = loop {
            let ty = if self.rng.random_bool(0.7) {
                0xce
            } else {
                // Not 0x00 (FIGETBSZ), 0x15 (FS_IOC_GETFSUUID), 'T' (FIONBIO...), 'X'
                // (FIFREEZE), 'f' (FS_IOC_*), 0x94 (FICLONE): the VFS answers those itself.
                let t = self.rng.random_range(1..=255u32);
                if [0x15, 0x54, 0x58, 0x66, 0x94].contains(&t) {
                    continue;
                }
                t
            };
            let c = if self.rng.random_bool(0.5) {
                // A known number with another size or direction.
                let k = self.pick(&known);
                (k & 0x3fff_ffff & !(0x3fff << 16))
                    | (self.rng.random_range(0..4u32) << 30)
                    | (self.rng.random_range(0..0x3fffu32) << 16)
                    | (ty << 8)
            } else {
                (self.rng.random_range(0..4u32) << 30)
                    | (self.rng.random_range(0..0x400u32) << 16)
                    | (ty << 8)
                    | self.rng.random_range(0..256u32)
            };
            if !known.contains(&c) {
                break c;
            }
        };
        let e = Expect::err(libc::ENOTTY);
        let e = if self.mode.gone { e.or(libc::ENXIO) } else { e };
        let arg = self.arena.place(Region::Arg, Ptr::Valid, &[], 256);
        let si = self.slot(ti);
        let fd = self.fd(ti, si);
        let _ = self
            .issue(ti, fd, cmd, arg, &e)
            .map_err(|m| format!("ioctl {cmd:#010x}: {m}"))?;
        Ok(())
    }

    /// Closes a file and opens another (open/close churn within a thread).
    fn op_reopen(&mut self, ti: usize) -> std::result::Result<(), String> {
        if self.mode.gone {
            return Ok(());
        }
        let path = self.targets[ti].path.clone();
        let f = open_node(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let slot = Slot {
            file: Arc::new(f),
            policy: DEFAULT_POLICY,
            shared: false,
        };
        let n = self.slots[ti].len();
        if n < 4 && self.rng.random_bool(0.5) {
            self.slots[ti].push(slot);
        } else {
            // Replace a file of this thread's own (the shared one stays).
            let own: Vec<usize> = (0..n).filter(|&i| !self.slots[ti][i].shared).collect();
            let i = self.pick(&own);
            self.slots[ti][i] = slot;
        }
        Ok(())
    }
}

extern "C" fn on_alarm(_: libc::c_int) {}

/// SIGALRM interrupts waits (no SA_RESTART) and does nothing else.
fn install_alarm() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installs a handler that does nothing, for a signal nothing else uses.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        }
    });
}

/// A KTAP diagnostic line every [`PROGRESS`] iterations of long runs, so that the runner,
/// which kills a guest that stays silent, sees the fuzzer working.
fn progress(phase: &str, i: u64, of: u64) {
    if i > 0 && i.is_multiple_of(PROGRESS) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "# fuzz: {phase} phase: {i} of {of} iterations");
        let _ = out.flush();
    }
}

/// Prints `text` as KTAP diagnostic lines at once (the runner sees them even if the test
/// never ends), with one write to file descriptor 1: not through `std::io::stdout()`, whose
/// lock another thread may hold (a stall of exactly that kind went unreported once).
fn diag(text: &str) {
    use std::io::Write;
    let mut buf = String::new();
    for line in text.lines() {
        buf.push_str("# ");
        buf.push_str(line);
        buf.push('\n');
    }
    // SAFETY: file descriptor 1 stays open for the life of the process; ManuallyDrop keeps
    // this File from closing it.
    let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let _ = out.write_all(buf.as_bytes());
}

/// What a stalled threaded phase was doing: each thread's current operation, then for every
/// task of this process its state, `/proc/self/task/TID/wchan` and `/proc/self/task/TID/stack`
/// (the kernel stack; needs CONFIG_STACKTRACE and root).
fn stall_report(shared: &Shared, stalled: &[usize], steps: u64) -> String {
    use std::fmt::Write;
    let name = |slot: usize| {
        if slot == CHURN_SLOT {
            "churn thread".to_string()
        } else {
            format!("thread {}", slot - 1)
        }
    };
    let mut r = format!(
        "fuzz: threaded phase stalled: {} completed no step for {STALL_SECS} s ({steps} worker steps done)\n",
        stalled.iter().map(|&s| name(s)).collect::<Vec<_>>().join(", ")
    );
    for (slot, d) in shared.doing.iter().enumerate() {
        let tid = shared.tid[slot].load(Ordering::Relaxed);
        if tid == 0 {
            continue;
        }
        let doing = d.lock().map(|d| d.clone()).unwrap_or_else(|_| "?".into());
        let steps = shared.steps[slot].load(Ordering::Relaxed);
        let _ = writeln!(r, "{} (tid {tid}, {steps} steps): {doing}", name(slot));
    }
    let mut tasks: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tasks.sort_unstable();
    let read = |tid: i32, file: &str| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/{file}"))
            .unwrap_or_else(|e| format!("({file}: {e})"))
    };
    for tid in tasks {
        let stat = read(tid, "stat");
        // The state follows the command name in parentheses, which may contain anything.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let _ = writeln!(
            r,
            "task {tid} ({}) state {state} wchan {}",
            read(tid, "comm").trim(),
            read(tid, "wchan").trim()
        );
        for line in read(tid, "stack").lines() {
            let _ = writeln!(r, "    {line}");
        }
    }
    r
}

/// Where a failure can be rerun from.
fn rerun(p: &Params, test: &str) -> String {
    format!(
        "rerun: tools/fuzz.sh --seed {:#x} --iters {} --filter {test}",
        p.seed, p.iters
    )
}

fn thread_seed(p: &Params, test: &str, phase: u64, thread: u64) -> u64 {
    let h = test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    p.seed ^ h ^ (phase << 56) ^ (thread << 48)
}

/// Runs `iters` steps on one thread; the error names the iteration.
fn run_single(
    p: &Params,
    test: &str,
    phase: &str,
    targets: &[Target],
    shared: &Shared,
    mode: Mode,
    iters: u64,
) -> Result<u64> {
    let mut w = Worker::new(thread_seed(p, test, 1, 0), 0, targets, shared, mode, &[])?;
    for i in 0..iters {
        progress(phase, i, iters);
        w.step().map_err(|m| {
            anyhow!(
                "seed {:#x}, {phase} phase, iteration {i}: {m}\n{}",
                p.seed,
                rerun(p, test)
            )
        })?;
    }
    Ok(w.ioctls)
}

/// Drains every MMPT queue and empties the books; the error names messages nobody sent.
/// `strict`: every message must be on the books (else messages left by earlier tests are
/// dropped).
fn drain(targets: &[Target], shared: &Shared, strict: bool) -> Result<u64> {
    let mut drained = 0;
    for (ti, t) in targets.iter().enumerate() {
        if !t.mmpt() {
            continue;
        }
        let dev = Device::open(&t.path)?;
        loop {
            match dev.mmpt_recv(MAX_DATA, 0) {
                Ok(swcci::MmptRecv::Message { .. }) if !strict => {}
                Ok(swcci::MmptRecv::Message { msg_type, data }) => {
                    let seq = verify_tagged(msg_type, &data)
                        .map_err(|m| anyhow!("{}: draining: {m}", t.path.display()))?;
                    let mut book = shared.books[ti]
                        .lock()
                        .map_err(|_| anyhow!("book poisoned"))?;
                    let pos = book.pending.iter().position(|&(s, ty, len)| {
                        ty == msg_type && len == data.len() && seq.is_none_or(|q| q == s)
                    });
                    let i = pos.with_context(|| {
                        format!(
                            "{}: draining: message {seq:?} of {} bytes was never sent",
                            t.path.display(),
                            data.len()
                        )
                    })?;
                    book.pending.remove(i);
                    book.received += 1;
                    drained += 1;
                }
                Ok(other) => bail!("{}: draining: {other:?}", t.path.display()),
                Err(e) if e.errno() == Some(libc::EAGAIN) => break,
                Err(e) => bail!("{}: draining: {e}", t.path.display()),
            }
        }
    }
    Ok(drained)
}

/// Emulator settings the fuzzer relies on: no faults, echo, queued answers, aborts work.
fn reset_emulators(targets: &[Target]) -> Result<()> {
    for t in targets {
        if let Some(c) = &t.control {
            let mut ctl = crate::ctl::Ctl::open(c)?;
            for cmd in [
                "clear",
                "set responder echo",
                "set inline 0",
                "set abort-supported 1",
                "set bg-rc 0",
            ] {
                ctl.cmd(cmd)?;
            }
        }
    }
    Ok(())
}

/// Each target still answers correctly.
fn still_works(targets: &[Target]) -> Result<()> {
    for t in targets {
        let dev = Device::open(&t.path)?;
        ensure!(
            dev.info()? == t.info,
            "{}: SWCCI_IOCTL_INFO changed",
            t.path.display()
        );
        if t.switch() {
            let id = dev.command(opcode::IDENTIFY, &[], 64)?;
            ensure!(
                id == t.identify,
                "{}: Identify {id:02x?}, before {:02x?}",
                t.path.display(),
                t.identify
            );
        }
        if t.mmpt() {
            let data = tagged(0xfeed, 1, 3000);
            let rc = dev.mmpt_send(1, &data)?;
            ensure!(rc.raw() == 0, "{}: echo send: {rc:?}", t.path.display());
            match dev.mmpt_recv(MAX_DATA, 1000)? {
                swcci::MmptRecv::Message {
                    msg_type: 1,
                    data: back,
                } if back == data => {}
                other => bail!("{}: echo came back as {other:?}", t.path.display()),
            }
        }
    }
    Ok(())
}

/// Fuzzes `targets` (one node kind): single-threaded, threaded with signals and churn, and
/// through stale files after unbind. Returns notes for the report.
fn fuzz(env: &mut Env, test: &str, targets: Vec<Target>) -> Result<Outcome> {
    let p = params();
    install_alarm();
    reset_emulators(&targets)?;
    let shared = Shared::new(targets.len());
    drain(&targets, &shared, false)?;
    env.note(format!(
        "fuzz: seed {:#x}, {} ioctls on {}",
        p.seed,
        p.iters,
        targets
            .iter()
            .map(|t| t.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let started = Instant::now();
    let single = p.iters / 2;
    let gone = (p.iters / 10).min(300);
    let threaded = p.iters - single - gone;

    // 1. One thread: exact checks.
    let mode = Mode {
        single: true,
        ..Mode::default()
    };
    run_single(&p, test, "single-threaded", &targets, &shared, mode, single)?;
    drain(&targets, &shared, true)?;

    // 2. Threads on shared and own files, churn, signals.
    let mode = Mode {
        signals: true,
        ..Mode::default()
    };
    let common: Vec<Arc<File>> = targets
        .iter()
        .map(|t| {
            open_node(&t.path)
                .map(Arc::new)
                .with_context(|| format!("open {}", t.path.display()))
        })
        .collect::<Result<_>>()?;
    // Threads that may be signalled: removed (under the lock) before they end, so the
    // signaller never signals a thread that is gone.
    let tids = Mutex::new(Vec::<libc::pthread_t>::new());
    let failures = Mutex::new(Vec::<String>::new());
    let churned = AtomicU64::new(0);
    let running = AtomicU64::new(WORKERS as u64);
    std::thread::scope(|s| {
        for th in 0..WORKERS as u64 {
            let (targets, shared, tids, failures, common, running) =
                (&targets, &shared, &tids, &failures, &common, &running);
            let seed = thread_seed(&p, test, 2, th);
            s.spawn(move || {
                // SAFETY: pthread_self has no preconditions.
                let me = unsafe { libc::pthread_self() };
                shared.register(th as usize + 1);
                if let Ok(mut v) = tids.lock() {
                    v.push(me);
                }
                let run = || -> Result<()> {
                    let mut w = Worker::new(seed, th as u8 + 1, targets, shared, mode, common)?;
                    for i in 0..threaded / WORKERS as u64 {
                        if shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        w.step().map_err(|m| {
                            anyhow!(
                                "seed {:#x}, threaded phase, thread {th}, iteration {i}: {m}",
                                p.seed
                            )
                        })?;
                    }
                    Ok(())
                };
                let r = run();
                shared.finished[th as usize + 1].store(true, Ordering::Relaxed);
                shared.set_doing(th as usize + 1, || "finished".to_string());
                if let Ok(mut v) = tids.lock() {
                    v.retain(|t| *t != me);
                }
                if let Err(e) = r {
                    shared.stop.store(true, Ordering::Relaxed);
                    if let Ok(mut f) = failures.lock() {
                        f.push(format!("{e:#}"));
                    }
                }
                running.fetch_sub(1, Ordering::Relaxed);
            });
        }
        // Open/close churn on every node while the workers run.
        {
            let (targets, shared, failures, churned, running) =
                (&targets, &shared, &failures, &churned, &running);
            s.spawn(move || {
                shared.register(CHURN_SLOT);
                let mut i = 0usize;
                while running.load(Ordering::Relaxed) > 0 && !shared.stop.load(Ordering::Relaxed) {
                    let t = &targets[i % targets.len()];
                    i += 1;
                    shared.set_doing(CHURN_SLOT, || {
                        format!("open, open, info of {}", t.path.display())
                    });
                    let r = Device::open(&t.path).and_then(|d| {
                        let _second = Device::open(d.path())?;
                        d.info()
                    });
                    churned.fetch_add(3, Ordering::Relaxed);
                    shared.steps[CHURN_SLOT].fetch_add(1, Ordering::Relaxed);
                    let problem = match r {
                        Ok(info) if info == t.info => continue,
                        Ok(info) => format!("churn: {} answered {info:?}", t.path.display()),
                        Err(e) => format!("churn: {}: {e}", t.path.display()),
                    };
                    if let Ok(mut f) = failures.lock() {
                        f.push(problem);
                    }
                    shared.stop.store(true, Ordering::Relaxed);
                }
            });
        }
        // Watchdog: progress lines counting every worker's steps, and when a thread (worker
        // or churn) completes no step for STALL_SECS, what every thread is doing and every
        // task's kernel stack. Per thread: one stuck worker must not hide behind the others
        // (the churn thread alone keeps going as long as any worker runs).
        {
            let (shared, failures, running, tids) = (&shared, &failures, &running, &tids);
            let of = threaded / WORKERS as u64 * WORKERS as u64;
            s.spawn(move || {
                let load = |slot: usize| shared.steps[slot].load(Ordering::Relaxed);
                let mut last: Vec<(u64, Instant)> = (0..=CHURN_SLOT)
                    .map(|slot| (load(slot), Instant::now()))
                    .collect();
                let mut next_line = PROGRESS;
                while running.load(Ordering::Relaxed) > 0 && !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let work: u64 = (1..=WORKERS).map(load).sum();
                    if work >= next_line {
                        diag(&format!(
                            "fuzz: threaded phase: {work} of {of} iterations (all workers)"
                        ));
                        next_line = (work / PROGRESS + 1) * PROGRESS;
                    }
                    let mut stalled = Vec::new();
                    for (slot, (n, moved)) in last.iter_mut().enumerate().skip(1) {
                        let now = load(slot);
                        if now != *n || shared.finished[slot].load(Ordering::Relaxed) {
                            *n = now;
                            *moved = Instant::now();
                        } else if shared.tid[slot].load(Ordering::Relaxed) != 0
                            && moved.elapsed() >= Duration::from_secs(STALL_SECS)
                        {
                            stalled.push(slot);
                        }
                    }
                    if stalled.is_empty() {
                        continue;
                    }
                    let report = stall_report(shared, &stalled, work);
                    diag(&report);
                    if let Ok(mut f) = failures.lock() {
                        f.push(report);
                    }
                    shared.stop.store(true, Ordering::Relaxed);
                    // Interrupt the waits of workers that can be interrupted.
                    if let Ok(v) = tids.lock() {
                        for &tid in v.iter() {
                            // SAFETY: `tid` is a running worker: workers leave the list
                            // under this lock before they end.
                            unsafe { libc::pthread_kill(tid, libc::SIGALRM) };
                        }
                    }
                    break;
                }
            });
        }
        // SIGALRM at random moments to random workers.
        {
            let (shared, tids, running) = (&shared, &tids, &running);
            let seed = thread_seed(&p, test, 3, 0);
            s.spawn(move || {
                let mut rng = XorShiftRng::seed_from_u64(seed);
                while running.load(Ordering::Relaxed) > 0 && !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_micros(rng.random_range(200..3000)));
                    if let Ok(v) = tids.lock() {
                        if !v.is_empty() {
                            let tid = v[rng.random_range(0..v.len())];
                            // SAFETY: `tid` is a running worker: workers leave the list
                            // under this lock before they end.
                            unsafe { libc::pthread_kill(tid, libc::SIGALRM) };
                        }
                    }
                }
            });
        }
    });
    drop(common);
    if let Some(f) = failures.lock().map_err(|_| anyhow!("poisoned"))?.first() {
        bail!("{f}\n{}", rerun(&p, test));
    }
    let drained = drain(&targets, &shared, true)?;
    for (ti, t) in targets.iter().enumerate() {
        let b = shared.books[ti].lock().map_err(|_| anyhow!("poisoned"))?;
        if t.mmpt() {
            env.note(format!(
                "{}: {} messages sent and echoed, {} received ({drained} drained at the end), {} receives faulted with a message waiting",
                t.path.display(),
                b.sent,
                b.received,
                b.faulted
            ));
            ensure!(
                b.pending.len() as u64 <= b.faulted,
                "{}: {} echoed messages never came back: {:?}",
                t.path.display(),
                b.pending.len(),
                b.pending.iter().take(4).collect::<Vec<_>>()
            );
        }
    }
    still_works(&targets)?;
    let mut total = shared.ioctls.load(Ordering::Relaxed) + churned.load(Ordering::Relaxed);

    // 3. Stale files after unbind: ENXIO for everything valid.
    for (ti, t) in targets.iter().enumerate() {
        let one = std::slice::from_ref(t);
        let sh = Shared::new(1);
        let mode = Mode {
            single: true,
            gone: true,
            ..Mode::default()
        };
        let mut w = Worker::new(thread_seed(&p, test, 4, ti as u64), 0, one, &sh, mode, &[])?;
        env.unbind(&t.addr)?;
        let res = (0..gone / targets.len() as u64).try_for_each(|i| {
            w.step().map_err(|m| {
                anyhow!(
                    "seed {:#x}, stale-file phase on {}, iteration {i}: {m}\n{}",
                    p.seed,
                    t.path.display(),
                    rerun(&p, test)
                )
            })
        });
        total += w.ioctls;
        drop(w);
        env.bind(&t.addr)?;
        res?;
    }
    load_all(env)?;
    let fresh = self::targets(env)?;
    for t in &targets {
        let now = fresh
            .iter()
            .find(|f| f.addr == t.addr)
            .with_context(|| format!("{} not bound after the fuzzer", t.addr))?;
        ensure!(
            now.identify == t.identify,
            "{}: Identify changed after rebind",
            t.addr
        );
    }
    still_works(&fresh)?;
    let secs = started.elapsed().as_secs_f64();
    env.note(format!(
        "fuzz: {total} ioctls in {secs:.1} s ({:.0}/s), seed {:#x}",
        total as f64 / secs.max(0.001),
        p.seed
    ));
    Ok(Outcome::Pass)
}

/// The fuzzer on `/dev/cxl/switchN`: QEMU's switch and the emulated one.
pub fn switch_nodes(env: &mut Env) -> Result<Outcome> {
    let t: Vec<Target> = targets(env)?
        .into_iter()
        .filter(|t| t.kind != Kind::Mmpt)
        .collect();
    ensure!(!t.is_empty(), "no switch nodes");
    fuzz(env, "fuzz_switch_nodes", t)
}

/// The fuzzer on `/dev/swcci/mmptN`.
pub fn mmpt_nodes_test(env: &mut Env) -> Result<Outcome> {
    let t: Vec<Target> = targets(env)?
        .into_iter()
        .filter(|t| t.kind == Kind::Mmpt)
        .collect();
    if t.is_empty() {
        return Ok(Outcome::Skip("no MMPT function in this topology".into()));
    }
    fuzz(env, "fuzz_mmpt_nodes", t)
}
