// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI: every errno row of Documentation/abi.rst, with exact values.

use crate::env::{expect_errno, lib_errno, Env};
use crate::tests::driver::cel_of;
use crate::Outcome;
use anyhow::{ensure, Context, Result};
use swcci::proto::payload::identify::{ComponentType, Identify};
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::{
    self, iowr, CxlCommandInfo, CxlMemQueryCommands, CxlPayload, CxlSendCommand, SwcciBgPolicy,
    Wire, CXL_MEM_COMMAND_FLAG_ENABLED, CXL_MEM_COMMAND_ID_RAW, SWCCI_BG_ABORT_ON_TIMEOUT,
    SWCCI_BG_ASYNC, SWCCI_INFO_CXL, SWCCI_INFO_IDENTIFIED, SWCCI_INFO_IRQ, SWCCI_INFO_MMB,
    SWCCI_KIND_SWITCH_CCI, SWCCI_VERSION,
};
use swcci::Device;

/// An unmapped user address.
const BAD_PTR: u64 = 0x10;

fn first_switch(env: &mut Env) -> Result<(Device, String)> {
    env.ensure_loaded()?;
    let p = env.nodes()?.into_iter().next().context("no node")?;
    let dev = Device::open(&p)?;
    let addr = env.addr_of(&dev)?;
    Ok((dev, addr))
}

/// Sends `cmd` as is; returns the struct as the kernel left it, or the errno.
fn send(dev: &Device, cmd: &CxlSendCommand) -> std::result::Result<CxlSendCommand, i32> {
    let mut b = [0u8; CxlSendCommand::SIZE];
    cmd.to_bytes(&mut b).expect("sized");
    dev.ioctl_raw(uapi::CXL_MEM_SEND_COMMAND, b.as_mut_ptr() as usize)?;
    Ok(CxlSendCommand::from_bytes(&b).expect("sized"))
}

fn identify_cmd(out: &mut [u8]) -> CxlSendCommand {
    CxlSendCommand {
        id: CXL_MEM_COMMAND_ID_RAW,
        flags: 0,
        raw_opcode: 0x0001,
        raw_rsvd: 0,
        retval: 0,
        input: CxlPayload::default(),
        output: CxlPayload {
            size: out.len() as u32,
            rsvd: 0,
            payload: out.as_mut_ptr() as u64,
        },
    }
}

pub fn query(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    // n_commands == 0 asks for the count.
    let mut hdr = [0u8; 8];
    dev.ioctl_raw(uapi::CXL_MEM_QUERY_COMMANDS, hdr.as_mut_ptr() as usize)
        .map_err(|e| anyhow::anyhow!("query count: errno {e}"))?;
    let q = CxlMemQueryCommands::from_bytes(&hdr).context("decode")?;
    ensure!(q.n_commands == 1, "count {}", q.n_commands);
    // Room for 5: one entry comes back, n_commands is left as it was (as Linux does).
    let mut buf = vec![0xaau8; 8 + 5 * 16];
    CxlMemQueryCommands {
        n_commands: 5,
        rsvd: 0,
    }
    .to_bytes(&mut buf)
    .expect("sized");
    dev.ioctl_raw(uapi::CXL_MEM_QUERY_COMMANDS, buf.as_mut_ptr() as usize)
        .map_err(|e| anyhow::anyhow!("query: errno {e}"))?;
    let e = CxlCommandInfo::from_bytes(&buf[8..24]).context("decode")?;
    ensure!(
        e == CxlCommandInfo {
            id: CXL_MEM_COMMAND_ID_RAW,
            flags: CXL_MEM_COMMAND_FLAG_ENABLED,
            size_in: 2048,
            size_out: 2048
        },
        "entry {e:?}"
    );
    ensure!(
        buf[24..].iter().all(|&b| b == 0xaa),
        "wrote past the entries it has"
    );
    ensure!(
        CxlMemQueryCommands::from_bytes(&buf[..8]).map(|q| q.n_commands) == Some(5),
        "n_commands changed"
    );
    ensure!(dev.query()?.len() == 1, "library query");
    Ok(Outcome::Pass)
}

pub fn info(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for p in env.nodes()? {
        let dev = Device::open(&p)?;
        let i = dev.info()?;
        let addr = swcci::info_str(&i.pci_addr);
        let node = swcci::info_str(&i.node);
        ensure!(i.version == SWCCI_VERSION, "version {:#x}", i.version);
        ensure!(i.kind == SWCCI_KIND_SWITCH_CCI, "kind {}", i.kind);
        ensure!(i.payload_size == 2048, "payload {}", i.payload_size);
        ensure!(
            format!("/dev/{node}") == p.display().to_string(),
            "node {node} for {}",
            p.display()
        );
        ensure!(
            env.driver_of(&addr).as_deref() == Some("cxl_swcci"),
            "{addr} is not bound to us"
        );
        let class = std::fs::read_to_string(format!("/sys/bus/pci/devices/{addr}/class"))?;
        ensure!(class.trim() == "0x0c0b00", "{addr} class {class}");
        ensure!(
            (i.pci_vendor, i.pci_device) == (0x19e5, 0xa123),
            "PCI id {:04x}:{:04x}",
            i.pci_vendor,
            i.pci_device
        );
        ensure!(
            i.flags & SWCCI_INFO_IDENTIFIED != 0 && i.flags & SWCCI_INFO_CXL != 0,
            "flags {:#x}",
            i.flags
        );
        ensure!(
            i.flags & (SWCCI_INFO_IRQ | SWCCI_INFO_MMB) == 0,
            "flags {:#x}",
            i.flags
        );
        ensure!(i.cel_entries == 11, "CEL entries {}", i.cel_entries);
        env.note(format!("{} <-> {addr}", p.display()));
    }
    Ok(Outcome::Pass)
}

pub fn bad_input(env: &mut Env) -> Result<Outcome> {
    let (dev, addr) = first_switch(env)?;
    let mut out = [0u8; 64];
    let good = identify_cmd(&mut out);
    let mut input = [0u8; 2049];
    let before = env.stat(&addr, "commands")?;
    let cases: Vec<(&str, CxlSendCommand, i32)> = vec![
        ("id 0", CxlSendCommand { id: 0, ..good }, libc::ENOTTY),
        (
            "id 1 (Linux's IDENTIFY)",
            CxlSendCommand { id: 1, ..good },
            libc::ENOTTY,
        ),
        ("id 25", CxlSendCommand { id: 25, ..good }, libc::ENOTTY),
        (
            "flags bit 2",
            CxlSendCommand { flags: 4, ..good },
            libc::EINVAL,
        ),
        (
            "raw.rsvd",
            CxlSendCommand {
                raw_rsvd: 1,
                ..good
            },
            libc::EINVAL,
        ),
        (
            "in.rsvd",
            CxlSendCommand {
                input: CxlPayload {
                    rsvd: 1,
                    ..good.input
                },
                ..good
            },
            libc::EINVAL,
        ),
        (
            "out.rsvd",
            CxlSendCommand {
                output: CxlPayload {
                    rsvd: 1,
                    ..good.output
                },
                ..good
            },
            libc::EINVAL,
        ),
        (
            "in.size 2049",
            CxlSendCommand {
                input: CxlPayload {
                    size: 2049,
                    rsvd: 0,
                    payload: input.as_mut_ptr() as u64,
                },
                ..good
            },
            libc::EINVAL,
        ),
        (
            "out.size 2049",
            CxlSendCommand {
                output: CxlPayload {
                    size: 2049,
                    ..good.output
                },
                ..good
            },
            libc::EINVAL,
        ),
        (
            "in.size 4 GiB - 1",
            CxlSendCommand {
                input: CxlPayload {
                    size: u32::MAX,
                    ..good.input
                },
                ..good
            },
            libc::EINVAL,
        ),
    ];
    for (what, cmd, want) in cases {
        expect_errno(what, send(&dev, &cmd), want)?;
    }
    let after = env.stat(&addr, "commands")?;
    ensure!(
        after == before,
        "the device was sent {} commands for rejected input",
        after - before
    );
    // The flag bits Linux accepts are accepted.
    let r = send(&dev, &CxlSendCommand { flags: 3, ..good })
        .map_err(|e| anyhow::anyhow!("flags 3: errno {e}"))?;
    ensure!(
        r.retval == 0 && r.output.size == 18,
        "flags 3: retval {} size {}",
        r.retval,
        r.output.size
    );
    // A full payload of input is fine (the device refuses it, with invalid payload length).
    let r = send(
        &dev,
        &CxlSendCommand {
            input: CxlPayload {
                size: 2048,
                rsvd: 0,
                payload: input.as_mut_ptr() as u64,
            },
            ..good
        },
    )
    .map_err(|e| anyhow::anyhow!("in.size 2048: errno {e}"))?;
    ensure!(
        r.retval == u32::from(ReturnCode::InvalidPayloadLength.raw()),
        "in.size 2048: retval {:#x}",
        r.retval
    );
    Ok(Outcome::Pass)
}

pub fn bad_pointers(env: &mut Env) -> Result<Outcome> {
    let (dev, addr) = first_switch(env)?;
    expect_errno(
        "ioctl argument 0x10",
        dev.ioctl_raw(uapi::CXL_MEM_SEND_COMMAND, BAD_PTR as usize),
        libc::EFAULT,
    )?;
    expect_errno(
        "query argument 0x10",
        dev.ioctl_raw(uapi::CXL_MEM_QUERY_COMMANDS, BAD_PTR as usize),
        libc::EFAULT,
    )?;
    expect_errno(
        "info argument 0x10",
        dev.ioctl_raw(uapi::SWCCI_IOCTL_INFO, BAD_PTR as usize),
        libc::EFAULT,
    )?;
    let mut out = [0u8; 64];
    let good = identify_cmd(&mut out);
    let before = env.stat(&addr, "commands")?;
    let bad_in = CxlSendCommand {
        raw_opcode: 0x5101,
        input: CxlPayload {
            size: 2,
            rsvd: 0,
            payload: BAD_PTR,
        },
        ..good
    };
    expect_errno("in.payload 0x10", send(&dev, &bad_in), libc::EFAULT)?;
    ensure!(
        env.stat(&addr, "commands")? == before,
        "the device was touched although the input was unreadable"
    );
    // The output cannot be written back: the command ran, the caller learns it failed.
    let bad_out = CxlSendCommand {
        output: CxlPayload {
            payload: BAD_PTR,
            ..good.output
        },
        ..good
    };
    expect_errno("out.payload 0x10", send(&dev, &bad_out), libc::EFAULT)?;
    // The device is fine afterwards.
    dev.identify()?;
    Ok(Outcome::Pass)
}

pub fn unknown_ioctls(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    let mut buf = [0u8; 256];
    let p = buf.as_mut_ptr() as usize;
    let cases = [
        ("SEND with a 40-byte size", iowr(0xce, 2, 40)),
        ("SEND with a 56-byte size", iowr(0xce, 2, 56)),
        ("QUERY with _IOWR", iowr(0xce, 1, 8)),
        ("0xce nr 3", iowr(0xce, 3, 48)),
        ("type 'X'", iowr(b'X' as u32, 2, 48)),
        ("_IO(0xce, 0x99)", (0xce << 8) | 0x99),
    ];
    for (what, cmd) in cases {
        expect_errno(what, dev.ioctl_raw(cmd, p), libc::ENOTTY)?;
    }
    Ok(Outcome::Pass)
}

pub fn timestamp_quirk(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    expect_errno(
        "Get Timestamp",
        lib_errno(dev.raw(0x0300, &[], 8)),
        libc::EOPNOTSUPP,
    )?;
    expect_errno(
        "Set Timestamp",
        lib_errno(dev.raw(0x0301, &[0; 8], 0)),
        libc::EOPNOTSUPP,
    )?;
    // QEMU is still alive and well.
    dev.identify()?;
    Ok(Outcome::Pass)
}

pub fn cel_via_node(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for p in env.nodes()? {
        let dev = Device::open(&p)?;
        let addr = env.addr_of(&dev)?;
        let via_node: Vec<(u16, u16)> = dev.cel()?.iter().map(|e| (e.opcode, e.effect)).collect();
        let at_probe = cel_of(env, &addr)?;
        ensure!(
            via_node == at_probe,
            "{}: Get Log {via_node:04x?} != probe {at_probe:04x?}",
            p.display()
        );
    }
    Ok(Outcome::Pass)
}

fn check_type3(id: &Identify, serial: u64) -> Result<()> {
    ensure!(
        id.component_type == ComponentType::Type3,
        "component type {}",
        id.component_type
    );
    ensure!(
        id.serial == serial,
        "serial {:#x}, expected {serial:#x}",
        id.serial
    );
    ensure!(
        (id.vendor_id, id.device_id) == (0x8086, 0x0d93),
        "{:04x}:{:04x}",
        id.vendor_id,
        id.device_id
    );
    Ok(())
}

pub fn tunnel_identify(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        for t3 in &sw.type3 {
            let r = dev.tunnel(&[t3.port], 0x0001, &[])?;
            ensure!(
                r.outer_rc.is_success(),
                "port {}: tunnel {}",
                t3.port,
                r.outer_rc
            );
            ensure!(r.rc().is_success(), "port {}: Identify {}", t3.port, r.rc());
            let id = Identify::decode(&r.payload).map_err(|e| anyhow::anyhow!("{e}"))?;
            check_type3(&id, t3.serial).with_context(|| format!("type-3 at port {}", t3.port))?;
            env.note(format!(
                "switch {:#x} port {}: type-3 serial {:#x}",
                sw.serial, t3.port, id.serial
            ));
        }
    }
    Ok(Outcome::Pass)
}

pub fn tunnel_two_levels(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let t3 = sw.type3.first().cloned().context("no type-3")?;
    let dev = env.node_for_serial(sw.serial)?;
    let r = dev.tunnel(&[t3.port, 0], 0x0001, &[])?;
    ensure!(
        r.rc().is_success(),
        "Identify through two tunnels: {}",
        r.rc()
    );
    let id = Identify::decode(&r.payload).map_err(|e| anyhow::anyhow!("{e}"))?;
    check_type3(&id, t3.serial)?;
    Ok(Outcome::Pass)
}

pub fn tunnel_empty_port(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let empty = sw
        .dsps
        .iter()
        .copied()
        .find(|p| !sw.type3.iter().any(|t| t.port == *p))
        .context("topology has no empty downstream port")?;
    for port in [empty, 200] {
        let r = dev.tunnel(&[port], 0x0001, &[])?;
        ensure!(
            r.outer_rc == ReturnCode::InvalidInput,
            "port {port}: {}",
            r.outer_rc
        );
    }
    Ok(Outcome::Pass)
}

pub fn short_output(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    let full = dev.raw(0x0001, &[], 64)?;
    ensure!(
        full.out.len() == 18,
        "Identify returned {} bytes",
        full.out.len()
    );
    let short = dev.raw(0x0001, &[], 4)?;
    ensure!(
        short.rc.is_success() && short.out == full.out[..4],
        "4-byte buffer: {:?}",
        short.out
    );
    let none = dev.raw(0x0001, &[], 0)?;
    ensure!(none.rc.is_success() && none.out.is_empty(), "0-byte buffer");
    Ok(Outcome::Pass)
}

pub fn bg_policy(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    let cur = dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 0,
        flags: SWCCI_BG_ABORT_ON_TIMEOUT,
    })?;
    ensure!(
        cur == SwcciBgPolicy {
            timeout_ms: 60000,
            flags: SWCCI_BG_ABORT_ON_TIMEOUT
        },
        "default {cur:?}"
    );
    let set = dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 1500,
        flags: 0,
    })?;
    ensure!(
        set == SwcciBgPolicy {
            timeout_ms: 1500,
            flags: 0
        },
        "set {set:?}"
    );
    let keep = dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 0,
        flags: 2,
    })?;
    ensure!(
        keep == SwcciBgPolicy {
            timeout_ms: 1500,
            flags: 2
        },
        "keep {keep:?}"
    );
    // SWCCI_BG_ASYNC (4) is the last flag: the next bit is refused.
    expect_errno(
        "flags 8",
        lib_errno(dev.bg_policy(SwcciBgPolicy {
            timeout_ms: 0,
            flags: SWCCI_BG_ASYNC << 1,
        })),
        libc::EINVAL,
    )?;
    expect_errno(
        "timeout 600001 ms",
        lib_errno(dev.bg_policy(SwcciBgPolicy {
            timeout_ms: 600_001,
            flags: 0,
        })),
        libc::EINVAL,
    )?;
    // Another open file has its own policy.
    let other = Device::open(dev.path())?;
    let o = other.bg_policy(SwcciBgPolicy {
        timeout_ms: 0,
        flags: SWCCI_BG_ABORT_ON_TIMEOUT,
    })?;
    ensure!(
        o.timeout_ms == 60000,
        "policy leaked to another file: {o:?}"
    );
    Ok(Outcome::Pass)
}

/// Two threads set different background policies on one file at the same time: every policy
/// read back is one of the two, never the timeout of one with the flags of the other.
pub fn bg_policy_atomic(env: &mut Env) -> Result<Outcome> {
    let (dev, _) = first_switch(env)?;
    let a = SwcciBgPolicy {
        timeout_ms: 1000,
        flags: 0,
    };
    let b = SwcciBgPolicy {
        timeout_ms: 2000,
        flags: 3,
    };
    let mixed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = [a, b]
            .into_iter()
            .map(|p| {
                let (dev, mixed) = (&dev, &mixed);
                s.spawn(move || -> Result<()> {
                    for _ in 0..20_000 {
                        let now = dev.bg_policy(p)?;
                        if now != a && now != b {
                            mixed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
        }
        Ok(())
    })?;
    let mixed = mixed.into_inner();
    ensure!(mixed == 0, "{mixed} of 40000 policies read back mixed");
    let end = dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 0,
        flags: 1,
    })?;
    ensure!(
        end.timeout_ms == 1000 || end.timeout_ms == 2000,
        "after the race: {end:?}"
    );
    Ok(Outcome::Pass)
}
