// SPDX-License-Identifier: GPL-2.0

//! Helper modes of the test binary, run as child processes by tests
//! (`swcci-ktest --helper NAME ARGS...`): a process of its own where a test needs one (to
//! drop a capability, or to be stopped, traced, signalled or killed while it waits in an
//! ioctl, which a thread of the test cannot be without the test).

use std::io::{self, Write};
use std::time::{Duration, Instant};
use swcci::proto::uapi::SwcciBgPolicy;

const CAP_SYS_RAWIO: u32 = 17;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops CAP_SYS_RAWIO from this process.
pub(crate) fn drop_rawio() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget/capset read and write the header and two data structs, as sized here.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        data[0].effective &= !(1 << CAP_SYS_RAWIO);
        data[0].permitted &= !(1 << CAP_SYS_RAWIO);
        if libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `no-rawio NODE [OPCODE HEX]`: without CAP_SYS_RAWIO a raw command (Identify, or OPCODE in
/// hex with input HEX, `-` for none) fails with EPERM, the info ioctl works.
fn no_rawio(node: &str, opcode: u16, input: &[u8]) -> Result<(), String> {
    let dev = swcci::Device::open(node).map_err(|e| e.to_string())?;
    drop_rawio().map_err(|e| format!("capset: {e}"))?;
    match dev.raw(opcode, input, 64) {
        Err(e) if e.errno() == Some(libc::EPERM) => println!("without CAP_SYS_RAWIO: {e}"),
        Err(e) => return Err(format!("expected EPERM, got {e}")),
        Ok(r) => {
            return Err(format!(
                "raw command succeeded without CAP_SYS_RAWIO: {}",
                r.rc
            ))
        }
    }
    dev.info()
        .map_err(|e| format!("info without CAP_SYS_RAWIO: {e}"))?;
    Ok(())
}

/// Bytes of a hex string (`-`: none).
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return Some(Vec::new());
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// A number argument: decimal or `0x` hexadecimal.
fn num(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("bad number {s:?}"))
}

/// Tells the parent that the next step is the call under test.
fn ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

/// How a call ended, as one token list: `rc=0xRC ms=N` or `errno=N ms=N`.
fn ended<T>(r: swcci::Result<T>, rc: impl Fn(&T) -> u16, t: Instant) -> String {
    let ms = t.elapsed().as_millis();
    match r {
        Ok(v) => format!("rc={:#06x} ms={ms}", rc(&v)),
        Err(e) => format!("errno={} ms={ms}", e.errno().unwrap_or(0)),
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Installs a SIGUSR1 handler that does nothing, with `SA_RESTART` or without.
fn handle_sigusr1(restart: bool) -> Result<(), String> {
    // SAFETY: a plain sigaction call installing a handler that does nothing; the structure is
    // zeroed (empty mask) before the two fields are set.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(format!("sigaction: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// `bg-wait NODE OPCODE MS FLAGS TIMEOUT_MS none|restart|plain`: sets the file's background
/// policy (`SWCCI_IOCTL_BG_POLICY`), installs a SIGUSR1 handler with `SA_RESTART` (restart),
/// without it (plain) or none, prints `ready`, then sends OPCODE with a u32 MS input (the
/// emulator's background sleeps) and prints how it ended (`rc=...` or `errno=...`, and ms).
/// With the plain handler, a call that ended in EINTR is sent again on the same file and its
/// end printed after `again`.
fn bg_wait(a: &[String]) -> Result<(), String> {
    let [node, op, ms, flags, timeout, handler] = a else {
        return Err("bg-wait NODE OPCODE MS FLAGS TIMEOUT_MS none|restart|plain".into());
    };
    let dev = swcci::Device::open(node).map_err(|e| e.to_string())?;
    dev.bg_policy(SwcciBgPolicy {
        timeout_ms: num(timeout)? as u32,
        flags: num(flags)? as u32,
    })
    .map_err(|e| e.to_string())?;
    match handler.as_str() {
        "none" => {}
        "restart" => handle_sigusr1(true)?,
        "plain" => handle_sigusr1(false)?,
        h => return Err(format!("bad handler {h:?}")),
    }
    let op = num(op)? as u16;
    let input = (num(ms)? as u32).to_le_bytes();
    ready();
    let t = Instant::now();
    let r = dev.raw(op, &input, 0);
    let eintr = r.as_ref().err().and_then(|e| e.errno()) == Some(libc::EINTR);
    println!("{}", ended(r, |r| r.rc.raw(), t));
    if handler == "plain" && eintr {
        let t = Instant::now();
        let r = dev.raw(op, &input, 0);
        println!("again {}", ended(r, |r| r.rc.raw(), t));
    }
    Ok(())
}

/// `mmpt-recv NODE LEN TIMEOUT_MS`: prints `ready`, receives one message into a buffer of LEN
/// bytes and prints `type=T data=HEX ms=N`, `toobig type=T len=N ms=N` or `errno=N ms=N`.
fn mmpt_recv(a: &[String]) -> Result<(), String> {
    let [node, len, timeout] = a else {
        return Err("mmpt-recv NODE LEN TIMEOUT_MS".into());
    };
    let dev = swcci::Device::open(node).map_err(|e| e.to_string())?;
    ready();
    let t = Instant::now();
    let r = dev.mmpt_recv(num(len)? as usize, num(timeout)? as u32);
    let ms = t.elapsed().as_millis();
    match r {
        Ok(swcci::MmptRecv::Message { msg_type, data }) => {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            println!("type={msg_type} data={hex} ms={ms}");
        }
        Ok(swcci::MmptRecv::TooBig { msg_type, len }) => {
            println!("toobig type={msg_type} len={len} ms={ms}")
        }
        Err(e) => println!("errno={} ms={ms}", e.errno().unwrap_or(0)),
    }
    Ok(())
}

/// `mmpt-send NODE TYPE LEN TIMEOUT_MS`: prints `ready`, sends a message of LEN bytes (byte i
/// is i mod 253) and prints how it ended (`rc=...` or `errno=...`, and ms).
fn mmpt_send(a: &[String]) -> Result<(), String> {
    let [node, ty, len, timeout] = a else {
        return Err("mmpt-send NODE TYPE LEN TIMEOUT_MS".into());
    };
    let dev = swcci::Device::open(node).map_err(|e| e.to_string())?;
    let data: Vec<u8> = (0..num(len)? as usize).map(|i| (i % 253) as u8).collect();
    ready();
    let t = Instant::now();
    let r = dev.mmpt_send_timeout(num(ty)? as u8, &data, num(timeout)? as u32);
    println!("{}", ended(r, |c| c.raw(), t));
    Ok(())
}

/// `bg-loop NODE OPCODE INPUT-HEX WANT-RC MAX_MS TIMEOUT_MS PAUSE_MS STOPFILE`: sets the file's
/// background timeout (abort on timeout), prints `ready`, then sends OPCODE with INPUT again
/// and again for MAX_MS or until STOPFILE exists (`-`: none), pausing PAUSE_MS after each
/// command that ran (a Busy (06h) answer is retried after 1 ms), and prints the tally: its own
/// result (return code WANT-RC), Busy, ENODATA, ETIMEDOUT, anything else (the first few
/// named), the commands that ran, and the longest one in ms.
fn bg_loop(a: &[String]) -> Result<(), String> {
    let [node, op, input, want, max_ms, timeout, pause, stop] = a else {
        return Err(
            "bg-loop NODE OPCODE INPUT-HEX WANT-RC MAX_MS TIMEOUT_MS PAUSE_MS STOPFILE".into(),
        );
    };
    let dev = swcci::Device::open(node).map_err(|e| e.to_string())?;
    dev.bg_policy(SwcciBgPolicy {
        timeout_ms: num(timeout)? as u32,
        flags: swcci::proto::uapi::SWCCI_BG_ABORT_ON_TIMEOUT,
    })
    .map_err(|e| e.to_string())?;
    let op = num(op)? as u16;
    let input = hex_bytes(input).ok_or_else(|| format!("bad hex {input:?}"))?;
    let want = num(want)? as u16;
    let until = Instant::now() + Duration::from_millis(num(max_ms)?);
    let pause = Duration::from_millis(num(pause)?);
    let (mut own, mut busy, mut enodata, mut timedout, mut ran) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut other = Vec::new();
    let mut longest = Duration::ZERO;
    ready();
    while Instant::now() < until && (stop == "-" || !std::path::Path::new(stop).exists()) {
        let t = Instant::now();
        let r = dev.raw(op, &input, 0);
        let took = t.elapsed();
        match r {
            Ok(r) if r.rc.raw() == 0x06 => {
                busy += 1;
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Ok(r) if r.rc.raw() == want => own += 1,
            Ok(r) => other.push(format!("rc={:#06x}", r.rc.raw())),
            Err(e) => match e.errno() {
                Some(libc::ENODATA) => enodata += 1,
                Some(libc::ETIMEDOUT) => timedout += 1,
                n => other.push(format!("errno={}", n.unwrap_or(0))),
            },
        }
        ran += 1;
        longest = longest.max(took);
        std::thread::sleep(pause);
    }
    let first: Vec<&str> = other.iter().take(4).map(String::as_str).collect();
    println!(
        "own={own} busy={busy} enodata={enodata} timedout={timedout} other={} ran={ran} \
         longest_ms={} first_other={}",
        other.len(),
        longest.as_millis(),
        if first.is_empty() {
            "-".to_string()
        } else {
            first.join(",")
        }
    );
    Ok(())
}

/// Runs helper `args[0]`; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let rest = args.get(1..).unwrap_or(&[]);
    let res = match args.first().map(String::as_str) {
        Some("no-rawio") if args.len() == 2 => no_rawio(&args[1], 0x0001, &[]),
        Some("no-rawio") if args.len() == 4 => {
            match (u16::from_str_radix(&args[2], 16), hex_bytes(&args[3])) {
                (Ok(op), Some(input)) => no_rawio(&args[1], op, &input),
                _ => Err(format!("no-rawio: bad opcode or input {args:?}")),
            }
        }
        Some("bg-wait") => bg_wait(rest),
        Some("mmpt-recv") => mmpt_recv(rest),
        Some("mmpt-send") => mmpt_send(rest),
        Some("bg-loop") => bg_loop(rest),
        _ => Err(format!("unknown helper {args:?}")),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
