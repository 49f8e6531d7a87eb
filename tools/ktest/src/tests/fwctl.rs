// SPDX-License-Identifier: GPL-2.0

//! The fwctl interface (Documentation/fwctl.rst), driven by the C client
//! tools/testing/c/fwctl-test.c, which uses the kernel's own uapi headers: one fwctl device per
//! switch CCI, FWCTL_INFO, scopes, taint, unbind and unload with a file open, lockdown.

use crate::env::{errno_str, Env, TAINT_USER};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use swcci::proto::payload::identify::Identify;
use swcci::proto::payload::tunnel::{self, TunnelResponse};
use swcci::proto::uapi::{SwcciInfo, Wire, SWCCI_KIND_SWITCH_CCI};

/// The C client.
const CLIENT: &str = "/swcci/bin/swcci-fwctl-test";
/// The fwctl class in sysfs.
const CLASS: &str = "/sys/class/fwctl";
/// TAINT_FWCTL ('J'), set by the fwctl core for the debug-write scopes.
const TAINT_FWCTL: u64 = 1 << 19;
/// `FWCTL_DEVICE_TYPE_CXL`.
const DEVICE_TYPE_CXL: u32 = 2;
/// `FWCTL_RPC_*`.
pub(crate) const CONFIGURATION: u32 = 0;
const DEBUG_READ_ONLY: u32 = 1;
pub(crate) const DEBUG_WRITE: u32 = 2;
pub(crate) const DEBUG_WRITE_FULL: u32 = 3;

/// The fwctl device (`fwctlN`) whose parent is PCI function `addr`, found through
/// /sys/class/fwctl/fwctlN/device.
pub(crate) fn fwctl_for(addr: &str) -> Result<Option<String>> {
    let rd = match fs::read_dir(CLASS) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("read /sys/class/fwctl"),
    };
    let mut found = Vec::new();
    for e in rd {
        let e = e?;
        let parent = fs::read_link(e.path().join("device"))
            .with_context(|| format!("read {}/device", e.path().display()))?;
        if parent.file_name().is_some_and(|n| n == addr) {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    ensure!(
        found.len() <= 1,
        "{addr} has several fwctl devices: {found:?}"
    );
    Ok(found.pop())
}

/// The fwctl device of the switch CCI whose Identify reports `serial`, with its PCI address.
pub(crate) fn fwctl_of_switch(env: &Env, serial: u64) -> Result<(String, String)> {
    let dev = env.node_for_serial(serial)?;
    let addr = env.addr_of(&dev)?;
    let name = fwctl_for(&addr)?.with_context(|| format!("{addr} has no fwctl device"))?;
    Ok((format!("/dev/fwctl/{name}"), addr))
}

/// Runs the client; its output lines, or an error with its output when it fails.
fn client(args: &[&str]) -> Result<Vec<String>> {
    let out = Command::new(CLIENT)
        .args(args)
        .output()
        .with_context(|| format!("run {CLIENT}"))?;
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    ensure!(
        out.status.success(),
        "{CLIENT} {args:?}: {}: {lines:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(lines)
}

/// The Rust mirror of the CXL fwctl RPC structures (`swcci_proto::uapi::FwctlRpcCxl`,
/// `FwctlRpcCxlOut`, which the driver parses and writes with) against the kernel's uapi header
/// `<fwctl/cxl.h>` as the C client sees it, compiled for this architecture: sizes and field
/// offsets agree. Needs no fwctl device (the header is the ABI, not the device).
pub fn rpc_layout(_env: &mut Env) -> Result<Outcome> {
    use std::mem::{offset_of, size_of};
    use swcci::proto::uapi::{FwctlRpcCxl, FwctlRpcCxlOut};
    let want = [
        ("sizeof fwctl_rpc_cxl", size_of::<FwctlRpcCxl>()),
        (
            "offsetof fwctl_rpc_cxl.opcode",
            offset_of!(FwctlRpcCxl, opcode),
        ),
        (
            "offsetof fwctl_rpc_cxl.flags",
            offset_of!(FwctlRpcCxl, flags),
        ),
        (
            "offsetof fwctl_rpc_cxl.op_size",
            offset_of!(FwctlRpcCxl, op_size),
        ),
        (
            "offsetof fwctl_rpc_cxl.reserved1",
            offset_of!(FwctlRpcCxl, reserved1),
        ),
        ("sizeof fwctl_rpc_cxl_out", size_of::<FwctlRpcCxlOut>()),
        (
            "offsetof fwctl_rpc_cxl_out.size",
            offset_of!(FwctlRpcCxlOut, size),
        ),
        (
            "offsetof fwctl_rpc_cxl_out.retval",
            offset_of!(FwctlRpcCxlOut, retval),
        ),
    ];
    let lines = client(&["layout"])?;
    for (name, value) in want {
        let c = lines
            .iter()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<usize>().ok())
            .with_context(|| format!("the C client printed no {name}: {lines:?}"))?;
        ensure!(c == value, "{name}: C header {c}, Rust mirror {value}");
    }
    Ok(Outcome::Pass)
}

/// What one FWCTL_RPC returned.
#[derive(Debug)]
pub(crate) struct Rpc {
    pub(crate) errno: i32,
    pub(crate) retval: u32,
    /// `struct fwctl_rpc_cxl_out.size`.
    pub(crate) size: usize,
    /// `struct fwctl_rpc.out_len` after the call.
    pub(crate) out_len: usize,
    pub(crate) payload: Vec<u8>,
}

/// One FWCTL_RPC of `opcode` with `input` at `scope` on `dev`; `no_rawio` drops CAP_SYS_RAWIO
/// first.
pub(crate) fn rpc(dev: &str, scope: u32, opcode: u16, input: &[u8], no_rawio: bool) -> Result<Rpc> {
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    let hex = if hex.is_empty() { "-".to_string() } else { hex };
    let (scope, opcode) = (scope.to_string(), format!("{opcode:04x}"));
    let mut args = vec!["rpc", dev, scope.as_str(), opcode.as_str(), hex.as_str()];
    if no_rawio {
        args.insert(0, "--no-rawio");
    }
    let lines = client(&args)?;
    let line = lines.first().context("no output")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<u64> {
        let s = f.get(i).with_context(|| format!("short line {line:?}"))?;
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        }
        .with_context(|| format!("parse {line:?}"))
    };
    ensure!(f.first() == Some(&"errno"), "unexpected output {line:?}");
    let errno = num(1)? as i32;
    if errno != 0 {
        return Ok(Rpc {
            errno,
            retval: 0,
            size: 0,
            out_len: 0,
            payload: Vec::new(),
        });
    }
    let payload_hex = f.get(9).copied().unwrap_or("");
    let payload = (0..payload_hex.len() / 2)
        .map(|i| u8::from_str_radix(&payload_hex[2 * i..2 * i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .with_context(|| format!("payload of {line:?}"))?;
    Ok(Rpc {
        errno,
        retval: num(3)? as u32,
        size: num(5)? as usize,
        out_len: num(7)? as usize,
        payload,
    })
}

/// Asserts that an RPC was refused with `want`.
pub(crate) fn expect_refused(what: &str, r: &Rpc, want: i32) -> Result<()> {
    ensure!(
        r.errno == want,
        "{what}: got {}, expected {}",
        if r.errno == 0 {
            format!("success (retval {:#x})", r.retval)
        } else {
            errno_str(r.errno)
        },
        errno_str(want)
    );
    Ok(())
}

/// Asserts that an RPC was delivered and the device succeeded.
pub(crate) fn expect_success(what: &str, r: &Rpc) -> Result<()> {
    ensure!(r.errno == 0, "{what}: {}", errno_str(r.errno));
    ensure!(r.retval == 0, "{what}: device return code {:#x}", r.retval);
    ensure!(
        r.out_len == 8 + r.size && r.payload.len() == r.size,
        "{what}: size {} out_len {} payload {} bytes",
        r.size,
        r.out_len,
        r.payload.len()
    );
    Ok(())
}

/// A Tunnel Management Command (5300h) input carrying `opcode` with `payload` to `port`.
pub(crate) fn tunnel_input(port: u8, opcode: u16, payload: &[u8]) -> Result<Vec<u8>> {
    let mut b = vec![0u8; tunnel::TUNNEL_HEADER_LEN + tunnel::CCI_HEADER_LEN + payload.len()];
    let n = tunnel::encode_request(&mut b, port, tunnel::TARGET_PORT_OR_LD, 0, opcode, payload)
        .map_err(|e| anyhow::anyhow!("encode tunnel: {e}"))?;
    b.truncate(n);
    Ok(b)
}

/// The inner response of a tunnel; fails unless the inner command succeeded.
pub(crate) fn tunnelled_ok(what: &str, r: &Rpc) -> Result<Vec<u8>> {
    expect_success(what, r)?;
    let t = TunnelResponse::decode(&r.payload).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    ensure!(
        t.header.rc.is_success(),
        "{what}: inner return code {}",
        t.header.rc
    );
    Ok(t.payload.to_vec())
}

/// The last probe line logged for PCI function `addr`.
fn probe_line(env: &mut Env, addr: &str) -> Result<String> {
    env.kmsg();
    let prefix = format!("cxl_swcci {addr}: cxl/switch");
    env.history
        .iter()
        .rev()
        .find(|l| l.starts_with(&prefix))
        .cloned()
        .with_context(|| format!("no probe line for {addr}"))
}

/// The module built without its fwctl device (`make SWCCI_FWCTL=n`), packed by the runner
/// (`--module-without-fwctl`, from tools/build.sh on x86_64).
const NOFWCTL_MODULE: &str = "/swcci/cxl_swcci-nofwctl.ko";

/// The module as it is on a kernel without fwctl (most BMC kernels): it binds every switch CCI,
/// each probe line ends in `fwctl off`, no fwctl device belongs to a switch CCI, and every
/// node answers Identify (0001h). On a kernel with fwctl this is the build made with
/// `make SWCCI_FWCTL=n` (NOFWCTL_MODULE), loaded in place of the usual one and replaced by it
/// again at the end; on a kernel without fwctl, the usual build.
pub fn module_without_fwctl(env: &mut Env) -> Result<Outcome> {
    let kernel_has_fwctl = without_fwctl().is_none();
    if kernel_has_fwctl {
        ensure!(
            Path::new(NOFWCTL_MODULE).exists(),
            "{NOFWCTL_MODULE} missing: the kernel has fwctl and the runner was given no \
             --module-without-fwctl (tools/build.sh builds one on x86_64)"
        );
        env.ensure_unloaded()?;
        env.insmod_file(NOFWCTL_MODULE, "")
            .map_err(|e| anyhow::anyhow!("insmod {NOFWCTL_MODULE}: {}", errno_str(e)))?;
    }
    let checked = (|| -> Result<()> {
        env.ensure_loaded()?;
        let ccis = env.switch_ccis()?;
        ensure!(!ccis.is_empty(), "no switch CCI in this scenario");
        for d in &ccis {
            let line = probe_line(env, &d.addr)?;
            ensure!(line.ends_with(", fwctl off"), "probe line: {line}");
            ensure!(
                fwctl_for(&d.addr)?.is_none(),
                "{}: an fwctl device without fwctl",
                d.addr
            );
            env.note(line);
        }
        for sw in env.topo.switches.clone() {
            let dev = env.node_for_serial(sw.serial)?;
            dev.identify()
                .with_context(|| format!("{}: Identify", dev.path().display()))?;
        }
        Ok(())
    })();
    if kernel_has_fwctl {
        // The usual build again, for the tests after this one.
        let back = env.ensure_unloaded().and_then(|()| env.ensure_loaded());
        match (checked, back) {
            (Err(e), Err(b)) => {
                return Err(e.context(format!("then reloading the usual build failed too: {b:#}")))
            }
            (checked, back) => {
                checked?;
                back.context("reloading the usual build")?;
            }
        }
    } else {
        checked?;
    }
    Ok(Outcome::Pass)
}

/// The outcome of a test on a kernel without fwctl, where the module registers none
/// (`fwctl_device_per_switch_cci` checks that its probe lines say so).
pub(crate) fn without_fwctl() -> Option<Outcome> {
    (!Path::new(CLASS).exists()).then(|| Outcome::Skip("the kernel has no fwctl".into()))
}

pub fn devices(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let ccis = env.switch_ccis()?;
    if !Path::new(CLASS).exists() {
        // A kernel without fwctl: the module loaded and bound all the same.
        for d in &ccis {
            let line = probe_line(env, &d.addr)?;
            ensure!(line.ends_with(", fwctl off"), "probe line: {line}");
            env.note(line);
        }
        return Ok(Outcome::Pass);
    }
    let mut names = Vec::new();
    for d in &ccis {
        let name = fwctl_for(&d.addr)?.with_context(|| format!("{}: no fwctl device", d.addr))?;
        let line = probe_line(env, &d.addr)?;
        ensure!(
            line.ends_with(&format!(", fwctl {name}")),
            "probe line does not name {name}: {line}"
        );
        let node = format!("/dev/fwctl/{name}");
        let md = fs::metadata(&node).with_context(|| format!("stat {node}"))?;
        ensure!(
            md.file_type().is_char_device() && md.permissions().mode() & 0o777 == 0o600,
            "{node}: not a character device of mode 600"
        );
        env.note(line);
        names.push(name);
    }
    names.sort();
    names.dedup();
    ensure!(
        names.len() == ccis.len(),
        "{} fwctl devices for {} switch CCIs",
        names.len(),
        ccis.len()
    );
    Ok(Outcome::Pass)
}

pub fn info(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    for sw in env.topo.switches.clone() {
        let (fdev, addr) = fwctl_of_switch(env, sw.serial)?;
        let node = env.node_for_serial(sw.serial)?;
        let want = node.info()?;
        let lines = client(&["info", &fdev])?;
        let field = |k: &str| -> Result<String> {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .map(String::from)
                .with_context(|| format!("{fdev}: no {k} in {lines:?}"))
        };
        ensure!(
            field("device_type")? == DEVICE_TYPE_CXL.to_string(),
            "{fdev}: device type {}",
            field("device_type")?
        );
        ensure!(
            field("data_len")? == SwcciInfo::SIZE.to_string(),
            "{fdev}: {} bytes of device data, struct swcci_info has {}",
            field("data_len")?,
            SwcciInfo::SIZE
        );
        ensure!(
            field("kind")? == SWCCI_KIND_SWITCH_CCI.to_string()
                && field("serial")? == format!("{:#x}", sw.serial)
                && field("pci_addr")? == addr
                && field("payload_size")? == want.payload_size.to_string()
                && field("flags")? == format!("{:#x}", want.flags)
                && format!("/dev/{}", field("node")?) == node.path().display().to_string(),
            "{fdev}: FWCTL_INFO {lines:?} differs from SWCCI_IOCTL_INFO of {}",
            node.path().display()
        );
        env.note(format!(
            "{fdev}: FWCTL_DEVICE_TYPE_CXL, struct swcci_info of {} ({addr})",
            node.path().display()
        ));
    }
    Ok(Outcome::Pass)
}

pub fn identify(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let t0 = env.tainted()?;
    for sw in env.topo.switches.clone() {
        let (fdev, _) = fwctl_of_switch(env, sw.serial)?;
        for (scope, no_rawio) in [
            (CONFIGURATION, false),
            (CONFIGURATION, true),
            (DEBUG_READ_ONLY, true),
        ] {
            let what = format!(
                "{fdev}: Identify at scope {scope}, CAP_SYS_RAWIO {}",
                !no_rawio
            );
            let r = rpc(&fdev, scope, 0x0001, &[], no_rawio)?;
            expect_success(&what, &r)?;
            let id = Identify::decode(&r.payload).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            ensure!(
                id.serial == sw.serial && (id.vendor_id, id.device_id) == (0x19e5, 0xa128),
                "{what}: serial {:#x}, {:04x}:{:04x}",
                id.serial,
                id.vendor_id,
                id.device_id
            );
        }
        // The fwctl core: DEBUG_WRITE_FULL needs CAP_SYS_RAWIO (checked before it taints).
        let r = rpc(&fdev, DEBUG_WRITE_FULL, 0x0001, &[], true)?;
        expect_refused(
            "Identify at DEBUG_WRITE_FULL without CAP_SYS_RAWIO",
            &r,
            libc::EPERM,
        )?;
        for t3 in &sw.type3 {
            let what = format!("{fdev}: tunnelled Identify to port {}", t3.port);
            let r = rpc(
                &fdev,
                CONFIGURATION,
                0x5300,
                &tunnel_input(t3.port, 0x0001, &[])?,
                false,
            )?;
            let inner = tunnelled_ok(&what, &r)?;
            let id = Identify::decode(&inner).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            ensure!(id.serial == t3.serial, "{what}: serial {:#x}", id.serial);
        }
        env.note(format!(
            "{fdev}: Identify at FWCTL_RPC_CONFIGURATION with and without CAP_SYS_RAWIO, tunnelled too"
        ));
    }
    let t1 = env.tainted()?;
    ensure!(
        (t1 & !t0) & (TAINT_FWCTL | TAINT_USER) == 0,
        "read-only commands at the lowest scope tainted the kernel: {t0:#x} -> {t1:#x}"
    );
    Ok(Outcome::Pass)
}

pub fn bad_requests(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let (fdev, _) = fwctl_of_switch(env, sw.serial)?;
    let out = Command::new(CLIENT)
        .args(["check", &fdev])
        .output()
        .with_context(|| format!("run {CLIENT}"))?;
    for l in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        env.note(l.to_string());
    }
    ensure!(
        out.status.success(),
        "{CLIENT} check {fdev}: {}",
        out.status
    );
    Ok(Outcome::Pass)
}

pub fn scopes_and_taint(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let t = env.tainted()?;
    ensure!(
        t & (TAINT_FWCTL | TAINT_USER) == 0,
        "tainted {t:#x} before this test: it must run before any state-changing command"
    );
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let t3 = sw.type3.first().cloned().context("no type-3 device")?;
    let (fdev, addr) = fwctl_of_switch(env, sw.serial)?;

    // The type-3's response message limit, to set it to what it is (a harmless state-changing
    // command): Get/Set Response Message Limit (0003h/0004h) through the switch.
    let r = rpc(
        &fdev,
        CONFIGURATION,
        0x5300,
        &tunnel_input(t3.port, 0x0003, &[])?,
        false,
    )?;
    let limit = *tunnelled_ok("tunnelled Get Response Message Limit", &r)?
        .first()
        .context("empty Get Response Message Limit")?;
    let set = tunnel_input(t3.port, 0x0004, &[limit])?;

    // Below the scope they need, state-changing commands are refused before the device.
    let before = env.stat(&addr, "commands")?;
    for scope in [CONFIGURATION, DEBUG_READ_ONLY] {
        let r = rpc(&fdev, scope, 0x5300, &set, false)?;
        expect_refused(
            &format!("tunnelled Set Response Message Limit at scope {scope}"),
            &r,
            libc::EINVAL,
        )?;
    }
    // Physical Port Control (5102h, assert PERST): QEMU's CEL lists it without effects, the
    // specification decides. A vendor-specific opcode.
    for (op, input) in [(0x5102u16, &[0u8, 0][..]), (0xc000, &[][..])] {
        let r = rpc(&fdev, CONFIGURATION, op, input, false)?;
        expect_refused(
            &format!("{op:04x}h at FWCTL_RPC_CONFIGURATION"),
            &r,
            libc::EINVAL,
        )?;
    }
    let after = env.stat(&addr, "commands")?;
    ensure!(
        after == before,
        "refused commands reached the device: commands {before} -> {after}"
    );
    let t = env.tainted()?;
    ensure!(
        t & (TAINT_FWCTL | TAINT_USER) == 0,
        "refused commands tainted the kernel: {t:#x}"
    );

    // At the scope it needs, it runs and taints: 'J' by the fwctl core, 'U' by the driver.
    let r = rpc(&fdev, DEBUG_WRITE_FULL, 0x5300, &set, false)?;
    tunnelled_ok(
        "tunnelled Set Response Message Limit at DEBUG_WRITE_FULL",
        &r,
    )?;
    ensure!(
        env.stat(&addr, "commands")? == after + 1,
        "the command did not reach the device once"
    );
    let t = env.tainted()?;
    ensure!(
        t & TAINT_FWCTL != 0 && t & TAINT_USER != 0,
        "tainted {t:#x} after a state-changing command at DEBUG_WRITE_FULL: expected 'J' and 'U'"
    );
    let log = env.kmsg();
    let core = log
        .iter()
        .find(|l| l.contains("has requested full access to the physical device"))
        .context("no fwctl core taint notice")?;
    let ours = log
        .iter()
        .find(|l| l.contains("tainting kernel"))
        .context("no driver taint notice")?;
    ensure!(
        ours.contains(
            "raw command 5300h (Tunnel Management Command, tunnelled 0004h Set Response Message Limit)"
        ),
        "driver taint notice lacks the command: {ours}"
    );
    env.note(core.clone());
    env.note(ours.clone());

    // DEBUG_WRITE is still below an immediate change.
    let r = rpc(&fdev, DEBUG_WRITE, 0x5300, &set, false)?;
    expect_refused(
        "tunnelled Set Response Message Limit at DEBUG_WRITE",
        &r,
        libc::EINVAL,
    )?;
    ensure!(
        env.stat(&addr, "commands")? == after + 1,
        "a refused command reached the device"
    );
    Ok(Outcome::Pass)
}

/// The client in `hold` mode: a fwctl file kept open while the test acts.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Held {
    fn open(dev: &str) -> Result<Self> {
        let mut child = Command::new(CLIENT)
            .args(["hold", dev])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {CLIENT} hold {dev}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut h = Self {
            child,
            stdin,
            stdout,
        };
        let l = h.line()?;
        ensure!(l == "ready", "{dev}: {l:?}");
        Ok(h)
    }

    fn line(&mut self) -> Result<String> {
        let mut l = String::new();
        self.stdout.read_line(&mut l).context("read the client")?;
        Ok(l.trim_end().to_string())
    }

    /// Identify and FWCTL_INFO again: their errnos.
    fn poke(&mut self) -> Result<String> {
        let stdin = self.stdin.as_mut().context("closed")?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        self.line()
    }

    /// Closes the file; the client exits.
    fn close(mut self) -> Result<()> {
        drop(self.stdin.take());
        let l = self.line()?;
        ensure!(l == "closed", "close: {l:?}");
        let st = self.child.wait()?;
        ensure!(st.success(), "client: {st}");
        Ok(())
    }
}

pub fn unbind_open_file(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let (fdev, addr) = fwctl_of_switch(env, sw.serial)?;
    let mut held = Held::open(&fdev)?;
    let l = held.poke()?;
    ensure!(l == "rpc errno 0 info errno 0", "before unbind: {l}");

    env.unbind(&addr)?;
    ensure!(
        !Path::new(&fdev).exists() && fwctl_for(&addr)?.is_none(),
        "{fdev} still there after unbind"
    );
    let l = held.poke()?;
    ensure!(
        l == "rpc errno 19 info errno 19",
        "after unbind, expected ENODEV from the fwctl core: {l}"
    );
    // The open file does not hold the module: its callbacks are gone.
    if let Err(e) = env.rmmod() {
        bail!(
            "rmmod with a fwctl file open after unbind: {}",
            errno_str(e)
        );
    }
    let l = held.poke()?;
    ensure!(l == "rpc errno 19 info errno 19", "after rmmod: {l}");
    held.close()?;
    env.note(format!(
        "{fdev}: ENODEV after unbind and after rmmod, closed without trouble"
    ));

    // Back again, with a new fwctl device that works.
    env.ensure_loaded()?;
    let (fdev, _) = fwctl_of_switch(env, sw.serial)?;
    let r = rpc(&fdev, CONFIGURATION, 0x0001, &[], false)?;
    expect_success(&format!("{fdev}: Identify after reload"), &r)?;

    // Unbind with a file open, then rebind while it is still open.
    let mut held = Held::open(&fdev)?;
    env.unbind(&addr)?;
    env.bind(&addr)?;
    env.wait_bound()?;
    let l = held.poke()?;
    ensure!(
        l == "rpc errno 19 info errno 19",
        "old file after rebind: {l}"
    );
    let (fresh, _) = fwctl_of_switch(env, sw.serial)?;
    expect_success(
        &format!("{fresh}: Identify after rebind"),
        &rpc(&fresh, CONFIGURATION, 0x0001, &[], false)?,
    )?;
    held.close()?;
    env.note(format!("{fdev}: ENODEV after rebind; {fresh} works"));
    Ok(Outcome::Pass)
}

pub fn lockdown(env: &mut Env) -> Result<Outcome> {
    let state = fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
    ensure!(
        state.contains("[integrity]"),
        "not locked down: {:?} (boot with lockdown=integrity)",
        state.trim()
    );
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let t0 = env.tainted()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let (fdev, _) = fwctl_of_switch(env, sw.serial)?;
    // Metadata stays readable.
    let lines = client(&["info", &fdev])?;
    ensure!(
        lines.contains(&format!("serial {:#x}", sw.serial)),
        "FWCTL_INFO under lockdown: {lines:?}"
    );
    for scope in [CONFIGURATION, DEBUG_READ_ONLY] {
        expect_refused(
            &format!("Identify at scope {scope} under lockdown"),
            &rpc(&fdev, scope, 0x0001, &[], false)?,
            libc::EPERM,
        )?;
    }
    let t1 = env.tainted()?;
    ensure!(
        (t1 & !t0) & (TAINT_FWCTL | TAINT_USER) == 0,
        "refused commands tainted the kernel: {t0:#x} -> {t1:#x}"
    );
    Ok(Outcome::Pass)
}

/// Under lockdown, lockdown is checked before the caller's scope (as on the node): a command
/// the caller's scope does not cover gets EPERM, not the scope refusal's EINVAL.
pub fn lockdown_before_scope(env: &mut Env) -> Result<Outcome> {
    let state = fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
    ensure!(
        state.contains("[integrity]"),
        "not locked down: {:?} (boot with lockdown=integrity)",
        state.trim()
    );
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let t3 = sw.type3.first().cloned().context("no type-3 device")?;
    let (fdev, _) = fwctl_of_switch(env, sw.serial)?;
    // A tunnelled Set Response Message Limit (0004h) and Physical Port Control (5102h) need
    // FWCTL_RPC_DEBUG_WRITE_FULL.
    let set = tunnel_input(t3.port, 0x0004, &[9])?;
    for scope in [CONFIGURATION, DEBUG_READ_ONLY] {
        for (op, input) in [(0x5300u16, &set[..]), (0x5102, &[0u8, 0][..])] {
            expect_refused(
                &format!("{op:04x}h at scope {scope} under lockdown"),
                &rpc(&fdev, scope, op, input, false)?,
                libc::EPERM,
            )?;
        }
    }
    env.note(format!(
        "{fdev}: commands above the caller's scope refused with EPERM under lockdown"
    ));
    Ok(Outcome::Pass)
}

/// Tunnelled commands at the lowest scopes are judged by the class of the inner command:
/// identity, health and event telemetry of the devices behind the switch stay readable; the
/// contents of another host's memory device (its LSA, poison list, scan media results) need
/// `FWCTL_RPC_DEBUG_WRITE_FULL`. The device may answer either kind unsupported: what is
/// checked is the driver's decision, refused before the device (EINVAL, the command counter
/// unchanged) or sent (counted once).
pub fn tunnelled_commands_by_class(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    if let Some(skip) = without_fwctl() {
        return Ok(skip);
    }
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let t3 = sw.type3.first().cloned().context("no type-3 device")?;
    let (fdev, addr) = fwctl_of_switch(env, sw.serial)?;
    let telemetry: [(u16, &str, &[u8]); 6] = [
        (0x0001, "Identify", &[]),
        (0x0002, "Background Operation Status", &[]),
        (0x0100, "Get Event Records", &[0]),
        (0x0400, "Get Supported Logs", &[]),
        (0x4000, "Identify Memory Device", &[]),
        (0x4200, "Get Health Info", &[]),
    ];
    let contents: [(u16, &str, &[u8]); 3] = [
        (0x4102, "Get LSA", &[0, 0, 0, 0, 64, 0, 0, 0]),
        (0x4300, "Get Poison List", &[0; 16]),
        (0x4305, "Get Scan Media Results", &[]),
    ];
    // Sent: errno 0 and one more command on the switch; refused: EINVAL and none.
    let decide = |scope: u32, op: u16, name: &str, input: &[u8], sent: bool| -> Result<()> {
        let before = env.stat(&addr, "commands")?;
        let r = rpc(
            &fdev,
            scope,
            0x5300,
            &tunnel_input(t3.port, op, input)?,
            false,
        )?;
        let n = env.stat(&addr, "commands")? - before;
        let what = format!("tunnelled {op:04x}h {name} at scope {scope}");
        if sent {
            ensure!(
                r.errno == 0 && n == 1,
                "{what}: {} and {n} command(s) sent, expected it sent",
                errno_str(r.errno)
            );
        } else {
            ensure!(
                r.errno == libc::EINVAL && n == 0,
                "{what}: {} and {n} command(s) sent, expected EINVAL before the device (the \
                 contents of another host's memory device need FWCTL_RPC_DEBUG_WRITE_FULL)",
                if r.errno == 0 {
                    format!("sent (retval {:#x})", r.retval)
                } else {
                    errno_str(r.errno)
                }
            );
        }
        Ok(())
    };
    for scope in [CONFIGURATION, DEBUG_READ_ONLY] {
        for (op, name, input) in telemetry {
            decide(scope, op, name, input, true)?;
        }
    }
    for (op, name, input) in contents {
        for scope in [CONFIGURATION, DEBUG_READ_ONLY, DEBUG_WRITE] {
            decide(scope, op, name, input, false)?;
        }
        decide(DEBUG_WRITE_FULL, op, name, input, true)?;
    }
    env.note(format!(
        "{fdev}: telemetry sent at the lowest scopes; LSA, poison list and scan media results \
         only at FWCTL_RPC_DEBUG_WRITE_FULL"
    ));
    Ok(Outcome::Pass)
}
