// SPDX-License-Identifier: GPL-2.0

//! Helper modes of the test binary, run as child processes by tests
//! (`swcci-ktest --helper NAME ARGS...`).

use std::io;

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

/// Runs helper `args[0]`; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let res = match args.first().map(String::as_str) {
        Some("no-rawio") if args.len() == 2 => no_rawio(&args[1], 0x0001, &[]),
        Some("no-rawio") if args.len() == 4 => {
            match (u16::from_str_radix(&args[2], 16), hex_bytes(&args[3])) {
                (Ok(op), Some(input)) => no_rawio(&args[1], op, &input),
                _ => Err(format!("no-rawio: bad opcode or input {args:?}")),
            }
        }
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
