// SPDX-License-Identifier: GPL-2.0

//! Firmware update (scenario `fw`; the benchmark in `bench-fw`), on the real driver and the
//! `swcci` CLI: against the emulated switch's firmware (tools/emu: slots, background parts,
//! faults, and the device's own view of each slot through the control channel: length,
//! SHA-256, revision), against the firmware of the devices behind the emulated switch's ports
//! through one and two tunnel levels (type-3 devices, and an LD of the multi-logical device;
//! their background parts polled with Background Operation Status through the tunnel), and
//! through QEMU's switch to its type-3 devices (which refuse). Each test asserts the exit
//! status, the message, and what the device holds afterwards, and that the next command
//! works.

use super::emu::{devices, EmuDev};
use crate::ctl::Ctl;
use crate::env::Env;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use swcci::proto::payload::firmware::{max_part, revision_field};
use swcci::proto::rc::ReturnCode;
use swcci::{ActivateAction, Device, FwOptions, Phase, Target};

/// The CLI in the initramfs.
pub(super) const CLI: &str = "/swcci/bin/swcci";

/// An image of `len` bytes whose first 16 bytes are the revision `rev` (the emulator's image
/// format, tools/emu README), the rest a pattern that differs with `seed`.
pub(super) fn image(rev: &str, len: usize, seed: u32) -> Vec<u8> {
    let mut img = revision_field(rev).to_vec();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    img.extend((16..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    img
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Writes an image file for the CLI.
pub(super) fn image_file(name: &str, b: &[u8]) -> Result<PathBuf> {
    let p = PathBuf::from(format!("/tmp/{name}.bin"));
    std::fs::write(&p, b).with_context(|| format!("write {}", p.display()))?;
    Ok(p)
}

/// `key=value` pairs of a control reply.
fn pairs(reply: &str) -> HashMap<String, String> {
    reply
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whose firmware the control channel is asked about: the emulated switch's own, or that of
/// the device behind one of its ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum At {
    Switch,
    Port(u8),
}

impl At {
    /// `get fw [SLOT]` or `get port-fw PORT [SLOT]`.
    fn query(self, slot: Option<u8>) -> String {
        let slot = slot.map_or(String::new(), |k| format!(" {k}"));
        match self {
            Self::Switch => format!("get fw{slot}"),
            Self::Port(p) => format!("get port-fw {p}{slot}"),
        }
    }
}

/// The emulator's view of one slot (`get fw SLOT`).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SlotView {
    len: u64,
    sha256: String,
    rev: String,
    active: bool,
}

fn slot_view(ctl: &mut Ctl, slot: u8) -> Result<SlotView> {
    slot_view_at(ctl, At::Switch, slot)
}

pub(super) fn slot_view_at(ctl: &mut Ctl, at: At, slot: u8) -> Result<SlotView> {
    let q = at.query(Some(slot));
    let m = pairs(&ctl.cmd(&q)?);
    let get = |k: &str| m.get(k).cloned().ok_or_else(|| anyhow!("{q}: no {k}"));
    Ok(SlotView {
        len: get("len")?.parse()?,
        sha256: get("sha256")?,
        rev: get("rev")?,
        active: get("active")? == "1",
    })
}

/// Every slot's view.
fn slot_views(ctl: &mut Ctl, at: At) -> Result<Vec<SlotView>> {
    let n: u8 = fw_state(ctl, at)?
        .get("slots")
        .context("no slots")?
        .parse()?;
    (1..=n).map(|k| slot_view_at(ctl, at, k)).collect()
}

/// `get fw` / `get port-fw PORT` as key=value pairs.
fn fw_state(ctl: &mut Ctl, at: At) -> Result<HashMap<String, String>> {
    Ok(pairs(&ctl.cmd(&at.query(None))?))
}

/// Whether the emulator holds an open transfer (`get fw`).
fn transfer_open(ctl: &mut Ctl) -> Result<bool> {
    transfer_open_at(ctl, At::Switch)
}

pub(super) fn transfer_open_at(ctl: &mut Ctl, at: At) -> Result<bool> {
    Ok(fw_state(ctl, at)?.get("transfer").map(String::as_str) == Some("1"))
}

/// The revision as the control channel writes it (blanks as `%20`).
fn ctl_rev(rev: &str) -> String {
    rev.replace('%', "%25").replace(' ', "%20")
}

/// Checks the emulator holds exactly `img` in `slot`.
pub(crate) fn holds(ctl: &mut Ctl, slot: u8, img: &[u8], rev: &str) -> Result<()> {
    holds_at(ctl, At::Switch, slot, img, rev)
}

/// Checks the emulator's switch (or the device behind a port) holds exactly `img` in `slot`.
pub(super) fn holds_at(ctl: &mut Ctl, at: At, slot: u8, img: &[u8], rev: &str) -> Result<()> {
    let v = slot_view_at(ctl, at, slot)?;
    ensure!(
        v.len == img.len() as u64 && v.sha256 == sha256_hex(img) && v.rev == ctl_rev(rev),
        "{at:?} slot {slot} holds len={} sha256={} rev={}, expected len={} sha256={} rev={}",
        v.len,
        v.sha256,
        v.rev,
        img.len(),
        sha256_hex(img),
        ctl_rev(rev)
    );
    Ok(())
}

/// The devices with firmware behind an emulated switch's ports (`get fabric`): the ports of
/// its type-3 devices, and the port and LD count of its multi-logical device.
struct Behind {
    type3: Vec<u8>,
    mld: Option<(u8, u8)>,
}

fn behind(ctl: &mut Ctl) -> Result<Behind> {
    let v: Value = serde_json::from_str(&ctl.cmd("get fabric")?)?;
    let mut b = Behind {
        type3: Vec::new(),
        mld: None,
    };
    for p in v["ports"].as_array().context("get fabric: no ports")? {
        let port = p["port"]
            .as_u64()
            .and_then(|x| u8::try_from(x).ok())
            .context("port id")?;
        match p["device"]["kind"].as_str() {
            Some("type3") => b.type3.push(port),
            Some("mld") => {
                let lds = p["device"]["lds"].as_array().map_or(0, Vec::len);
                b.mld = Some((port, u8::try_from(lds)?));
            }
            _ => {}
        }
    }
    Ok(b)
}

/// The port of the first type-3 device behind an emulated switch.
pub(super) fn first_type3(ctl: &mut Ctl) -> Result<u8> {
    behind(ctl)?
        .type3
        .first()
        .copied()
        .context("no type-3 device behind the emulated switch")
}

/// Puts the firmware of the devices behind an emulated switch's ports back to their defaults
/// (through tunnels): no open transfer, slot 1 active.
fn reset_port_fw(dev: &Device, ctl: &mut Ctl) -> Result<()> {
    let b = behind(ctl)?;
    for port in b.type3.iter().copied().chain(b.mld.map(|m| m.0)) {
        let cci = dev.on(Target::Port(port));
        cci.fw_abort(&FwOptions::default())
            .map_err(|e| anyhow!("{e}"))?;
        if cci.fw_info()?.active_slot != 1 {
            cci.fw_activate(1, ActivateAction::Online, &FwOptions::default())
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// Puts an emulated switch's firmware back to its defaults: no faults, default timings, no
/// read-only slot, no open transfer, slot 1 active; the same for the devices behind its ports.
pub(super) fn reset_fw(d: &EmuDev, ctl: &mut Ctl) -> Result<()> {
    for c in [
        "clear",
        "set fw-part-us 500 100",
        "set fw-idle-ms 30000",
        "set fw-activate-ms 20",
        "set fw-ro-slot 0",
    ] {
        ctl.cmd(c)?;
    }
    let dev = d.open()?;
    let cci = dev.on(Target::Direct);
    cci.fw_abort(&FwOptions::default())
        .map_err(|e| anyhow!("{e}"))?;
    if cci.fw_info()?.active_slot != 1 {
        cci.fw_activate(1, ActivateAction::Online, &FwOptions::default())
            .map_err(|e| anyhow!("{e}"))?;
    }
    reset_port_fw(&dev, ctl)
}

/// The emulated switches (with MSI-X and polled), their firmware at defaults.
fn emu_switches(env: &mut Env) -> Result<Vec<EmuDev>> {
    let all: Vec<EmuDev> = devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch")
        .collect();
    ensure!(!all.is_empty(), "no emulated switch in this scenario");
    for d in &all {
        reset_fw(d, &mut d.ctl()?)?;
    }
    Ok(all)
}

/// The first of [`emu_switches`] (all of them with their firmware at defaults).
pub(super) fn first_emu_switch(env: &mut Env) -> Result<EmuDev> {
    emu_switches(env)?
        .into_iter()
        .next()
        .context("no emulated switch")
}

/// Runs the CLI.
pub(super) fn cli(args: &[&str]) -> Result<Output> {
    Command::new(CLI)
        .args(args)
        .output()
        .with_context(|| format!("run {CLI}"))
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON lines of a `--json` update: progress lines and the result line.
pub(super) fn json_lines(out: &str) -> Result<(Vec<Value>, Value)> {
    let mut progress = Vec::new();
    let mut result = None;
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).with_context(|| format!("not JSON: {l}"))?;
        match v["event"].as_str() {
            Some("progress") => progress.push(v),
            Some("result") => result = Some(v),
            _ => bail!("unexpected line {l}"),
        }
    }
    Ok((
        progress,
        result.ok_or_else(|| anyhow!("no result line in {out}"))?,
    ))
}

/// Asserts exit status `code` and a stderr that contains every one of `words`.
pub(super) fn expect_exit(o: &Output, code: i32, words: &[&str]) -> Result<String> {
    let err = text(&o.stderr);
    ensure!(
        o.status.code() == Some(code),
        "exit status {:?}, expected {code}; stderr: {err}",
        o.status.code()
    );
    for w in words {
        ensure!(err.contains(w), "`{w}` missing from stderr: {err}");
    }
    Ok(err)
}

pub(super) fn node(d: &EmuDev) -> String {
    d.path.display().to_string()
}

/// A slot that is neither active nor read-only: 2 or 3.
pub(super) fn free_slot(dev: &Device) -> Result<u8> {
    let info = dev.on(Target::Direct).fw_info()?;
    Ok(if info.active_slot == 2 { 3 } else { 2 })
}

/// Update through the emulated switch, with interrupts and polled: parts of the payload size,
/// the device holds exactly the image (SHA-256), Get FW Info reports its revision; then
/// activation online and at the next reset.
pub fn update_emulated(env: &mut Env) -> Result<Outcome> {
    for (i, d) in emu_switches(env)?.iter().enumerate() {
        let mut ctl = d.ctl()?;
        let dev = d.open()?;
        let slot = free_slot(&dev)?;
        let rev = format!("fw-test 2.{i}");
        let img = image(&rev, 300 * 1024 + 77, i as u32);
        let path = image_file(&format!("update{i}"), &img)?;
        let o = cli(&[
            "fw",
            "update",
            &node(d),
            &path.display().to_string(),
            "--slot",
            &slot.to_string(),
            "--expect-revision",
            &rev,
            "--json",
            "--yes",
        ])?;
        expect_exit(&o, 0, &[])?;
        let (progress, result) = json_lines(&text(&o.stdout))?;
        let part = max_part(dev.payload_size()?, 0);
        ensure!(
            result["ok"] == true
                && result["bytes"] == img.len() as u64
                && result["part_size"] == part as u64
                && result["parts"] == img.len().div_ceil(part) as u64
                && result["revision"] == rev.as_str(),
            "{} ({}): result {result}",
            d.path.display(),
            d.mode()
        );
        let sent: Vec<u64> = progress.iter().filter_map(|p| p["sent"].as_u64()).collect();
        ensure!(
            progress.len() >= 3 && sent.windows(2).all(|w| w[0] <= w[1]),
            "progress {progress:?}"
        );
        ensure!(
            progress
                .last()
                .map(|p| (p["phase"].clone(), p["sent"].clone()))
                == Some((Value::from("confirm"), Value::from(img.len() as u64))),
            "last progress line: {:?}",
            progress.last()
        );
        holds(&mut ctl, slot, &img, &rev)?;
        ensure!(!transfer_open(&mut ctl)?, "a transfer is still open");
        env.note(format!(
            "{} ({}): {} bytes in {} parts of {part} to slot {slot}, {} s",
            d.path.display(),
            d.mode(),
            img.len(),
            result["parts"],
            result["seconds"]
        ));

        // Activation online: the slot is active; at the next cold reset: staged.
        let o = cli(&[
            "fw",
            "activate",
            &node(d),
            "--slot",
            &slot.to_string(),
            "--online",
            "--yes",
        ])?;
        expect_exit(&o, 0, &[])?;
        ensure!(slot_view(&mut ctl, slot)?.active, "slot {slot} not active");
        let info = dev.on(Target::Direct).fw_info()?;
        ensure!(
            info.active_slot == slot && info.revision(slot) == Some(rev.as_str()),
            "Get FW Info after activation: {info:?}"
        );
        let o = cli(&[
            "fw",
            "activate",
            &node(d),
            "--slot",
            "1",
            "--reset",
            "--yes",
            "--json",
        ])?;
        expect_exit(&o, 0, &[])?;
        let v: Value = serde_json::from_str(text(&o.stdout).trim())?;
        ensure!(v["staged_slot"] == 1 && v["active_slot"] == slot, "{v}");
        reset_fw(d, &mut ctl)?;
    }
    Ok(Outcome::Pass)
}

/// Through QEMU's switch to a type-3 device: QEMU 11.1 routes a Tunnel Management Command
/// from its switch CCI to the type-3 device's FM-owned LD CCI, whose command set has no
/// Firmware Update commands (hw/cxl/cxl-mailbox-utils.c, `cxl_cmd_set_t3_fm_owned_ld_mctp`;
/// the LD behind it, `cxl_cmd_set_t3_ld`, neither). So what can be checked there is that the
/// library and the CLI say so (unsupported, exit status 1), send no Transfer FW after the
/// refused Get FW Info, and the device answers the next command through the same tunnel.
pub fn update_through_qemu_switch(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env
        .topo
        .switches
        .first()
        .cloned()
        .context("no QEMU switch in this scenario")?;
    let dev = env.node_for_serial(sw.serial)?;
    let name = dev.path().display().to_string();
    let t3 = sw.type3.first().context("no type-3 device")?;
    let img = image_file("t3", &image("T3 2.0", 64 * 1024, 7))?;
    for (target, args) in [
        (
            Target::Port(t3.port),
            vec!["--port".to_string(), t3.port.to_string()],
        ),
        (
            Target::PortLd(t3.port, 0),
            vec![
                "--port".to_string(),
                t3.port.to_string(),
                "--ld".to_string(),
                "0".to_string(),
            ],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cci = dev.on(target);
        let info = cci.fw_info();
        let refused = matches!(&info, Err(e) if e.rc() == Some(ReturnCode::Unsupported));
        ensure!(
            refused,
            "Get FW Info via {target}: {info:?}; QEMU's tunnel target was expected to lack \
             0200h (if it now implements it, this test must check the transfer instead)"
        );
        let mut a = vec!["fw", "info", &name];
        a.extend(&args);
        let what = format!("Get FW Info (0200h) via {target} on {name}");
        expect_exit(&cli(&a)?, 1, &[what.as_str(), "unsupported (03h)"])?;
        let img_s = img.display().to_string();
        let mut a = vec![
            "fw",
            "update",
            &name,
            img_s.as_str(),
            "--slot",
            "2",
            "--yes",
        ];
        a.extend(&args);
        let err = expect_exit(
            &cli(&a)?,
            1,
            &[
                "unsupported (03h)",
                "the target does not implement this command",
            ],
        )?;
        ensure!(!err.contains("abort"), "nothing to abort: {err}");
        // The next command through the same tunnel works.
        let id = cci.identify()?;
        ensure!(
            id.serial == t3.serial,
            "Identify via {target}: serial {:#x}, expected {:#x}",
            id.serial,
            t3.serial
        );
        env.note(format!("via {target}: {}", err.trim()));
    }
    Ok(Outcome::Pass)
}

/// The part size the library uses through `levels` tunnel levels (16 bytes each off the
/// payload).
fn tunnel_part(dev: &Device, levels: usize) -> Result<usize> {
    Ok(swcci::part_size(
        dev.payload_size()?.saturating_sub(16 * levels),
        None,
    ))
}

/// `fw update` of `img` to `slot` through `tunnel` (`--port P [--ld L]`) with `--json`; the
/// result line after asserting exit status 0.
fn update_via(d: &EmuDev, tunnel: &[String], img: &[u8], slot: u8, rev: &str) -> Result<Value> {
    let path = image_file("tunnelled", img)?.display().to_string();
    let slot = slot.to_string();
    let mut a = vec![
        "fw",
        "update",
        d.path.to_str().context("node path")?,
        &path,
        "--slot",
        &slot,
        "--expect-revision",
        rev,
        "--json",
        "--yes",
    ];
    a.extend(tunnel.iter().map(String::as_str));
    let o = cli(&a)?;
    expect_exit(&o, 0, &[]).with_context(|| format!("fw update {tunnel:?}"))?;
    Ok(json_lines(&text(&o.stdout))?.1)
}

fn port_args(port: u8) -> Vec<String> {
    vec!["--port".into(), port.to_string()]
}

/// Update through the emulated switch tunnelled to a type-3 device behind port P, and through
/// two levels to an LD of the multi-logical device: parts as large as the tunnel headers
/// allow, background parts polled through the tunnel; the device holds exactly the image
/// (SHA-256 through the control channel), the switch's own slots and the other devices' are
/// unchanged; Get FW Info through the tunnel reports it; activation through the tunnel. With
/// interrupts and polled.
pub fn update_tunnelled_emulated(env: &mut Env) -> Result<Outcome> {
    for (i, d) in emu_switches(env)?.iter().enumerate() {
        let mut ctl = d.ctl()?;
        let dev = d.open()?;
        let b = behind(&mut ctl)?;
        let (&port, others) = b
            .type3
            .split_first()
            .context("no type-3 device behind the emulated switch")?;
        let (mld, lds) = b
            .mld
            .context("no multi-logical device behind the emulated switch (tools/runner)")?;
        ensure!(lds >= 2, "the MLD has {lds} LDs");
        let switch_before = slot_views(&mut ctl, At::Switch)?;
        let others_before: Vec<Vec<SlotView>> = others
            .iter()
            .map(|p| slot_views(&mut ctl, At::Port(*p)))
            .collect::<Result<_>>()?;

        // One level: the type-3 device behind `port`.
        let info = dev.on(Target::Port(port)).fw_info()?;
        ensure!(
            info.revision(1) == Some("swcci-t3 1.0") && info.active_slot == 1,
            "Get FW Info via port {port}: {info:?}"
        );
        let rev = format!("t3-test 2.{i}");
        let img = image(&rev, 64 * 1024 + 77, 20 + i as u32);
        let result = update_via(d, &port_args(port), &img, 2, &rev)?;
        let part = tunnel_part(&dev, 1)?;
        ensure!(
            result["ok"] == true
                && result["part_size"] == part as u64
                && result["parts"] == img.len().div_ceil(part) as u64
                && result["revision"] == rev.as_str(),
            "{} ({}) via port {port}: result {result}",
            d.path.display(),
            d.mode()
        );
        holds_at(&mut ctl, At::Port(port), 2, &img, &rev)?;
        ensure!(
            !transfer_open_at(&mut ctl, At::Port(port))?,
            "a transfer is still open on the device"
        );
        let info = dev.on(Target::Port(port)).fw_info()?;
        ensure!(
            info.revision(2) == Some(rev.as_str()),
            "Get FW Info via port {port} after the update: {info:?}"
        );
        ensure!(
            slot_views(&mut ctl, At::Switch)? == switch_before,
            "the switch's own slots changed"
        );
        for (p, before) in others.iter().zip(&others_before) {
            ensure!(
                slot_views(&mut ctl, At::Port(*p))? == *before,
                "the device behind port {p} changed"
            );
        }
        env.note(format!(
            "{} ({}) via port {port}: {} bytes in {} parts of {part} B, {} s",
            d.path.display(),
            d.mode(),
            img.len(),
            result["parts"],
            result["seconds"]
        ));
        // Activation through the tunnel (online, in the device's background).
        let mut a = vec![
            "fw",
            "activate",
            d.path.to_str().context("node path")?,
            "--slot",
            "2",
            "--online",
            "--yes",
        ];
        let pa = port_args(port);
        a.extend(pa.iter().map(String::as_str));
        expect_exit(&cli(&a)?, 0, &[])?;
        ensure!(
            fw_state(&mut ctl, At::Port(port))?
                .get("active")
                .map(String::as_str)
                == Some("2"),
            "slot 2 not active on the device behind port {port}"
        );

        // Two levels: LD 1 of the multi-logical device, whose firmware is the device's.
        let rev2 = format!("mld-test 2.{i}");
        let img2 = image(&rev2, 24 * 1024 + 5, 30 + i as u32);
        let tunnel = vec![
            "--port".to_string(),
            mld.to_string(),
            "--ld".to_string(),
            "1".to_string(),
        ];
        let result = update_via(d, &tunnel, &img2, 3, &rev2)?;
        let part2 = tunnel_part(&dev, 2)?;
        ensure!(
            result["ok"] == true
                && result["part_size"] == part2 as u64
                && result["parts"] == img2.len().div_ceil(part2) as u64,
            "via port {mld} LD 1: result {result}"
        );
        holds_at(&mut ctl, At::Port(mld), 3, &img2, &rev2)?;
        let info = dev.on(Target::Port(mld)).fw_info()?;
        ensure!(
            info.revision(3) == Some(rev2.as_str()),
            "Get FW Info via port {mld} (the FM-owned LD) after the update through LD 1: \
             {info:?}"
        );
        env.note(format!(
            "{} ({}) via port {mld} LD 1: {} bytes in {} parts of {part2} B, {} s",
            d.path.display(),
            d.mode(),
            img2.len(),
            result["parts"],
            result["seconds"]
        ));
        reset_fw(d, &mut ctl)?;
    }
    Ok(Outcome::Pass)
}

/// Ctrl-C during an update through a tunnel: the CLI stops the part that may still run
/// (Request Abort Background Operation through the tunnel), aborts the transfer, waits for
/// the device to confirm and exits 130; the device holds no open transfer and runs nothing,
/// its slot is unchanged, the switch's own firmware saw nothing; the next tunnelled update
/// completes.
pub fn interrupted_tunnelled(env: &mut Env) -> Result<Outcome> {
    let d = &first_emu_switch(env)?;
    let mut ctl = d.ctl()?;
    let port = first_type3(&mut ctl)?;
    let at = At::Port(port);
    let before = slot_view_at(&mut ctl, at, 2)?;
    let aborts_before: u64 = fw_state(&mut ctl, at)?
        .get("aborts")
        .context("no aborts")?
        .parse()?;
    let switch_aborts = ctl.get("stat fw-aborts")?;
    // 10 ms per part: the interrupt lands while the library polls a part through the tunnel.
    ctl.cmd("set fw-part-us 10000 0")?;
    let img = image("t3-int 3.0", 128 * 1024, 13);
    let path = image_file("interrupted-tunnel", &img)?;
    let mut child = Command::new(CLI)
        .args([
            "fw",
            "update",
            &node(d),
            &path.display().to_string(),
            "--slot",
            "2",
            "--port",
            &port.to_string(),
            "--json",
            "--yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn the CLI")?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    read_until(&mut out, |v| v["percent"].as_u64().is_some_and(|p| p >= 10))?;
    signal(&child, libc::SIGINT)?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let o = child.wait_with_output()?;
    let o = Output {
        stdout: rest.into_bytes(),
        ..o
    };
    let via = format!("via port {port}");
    let err = expect_exit(
        &o,
        130,
        &["interrupted after", "the device confirmed", via.as_str()],
    )?;
    let (_, result) = json_lines(&text(&o.stdout))?;
    ensure!(
        result["ok"] == false
            && result["failure"] == "interrupted"
            && result["abort"] == "confirmed"
            && result["sent"]
                .as_u64()
                .is_some_and(|s| s > 0 && s < img.len() as u64),
        "result {result}"
    );
    let st = fw_state(&mut ctl, at)?;
    ensure!(
        st.get("transfer").map(String::as_str) == Some("0")
            && st.get("bg").map(String::as_str) == Some("0"),
        "the device after the interrupt: {st:?}"
    );
    let aborts: u64 = st.get("aborts").context("no aborts")?.parse()?;
    ensure!(
        aborts > aborts_before,
        "the device counted no abort: {st:?}"
    );
    ensure!(slot_view_at(&mut ctl, at, 2)? == before, "slot 2 changed");
    ensure!(
        ctl.get("stat fw-aborts")? == switch_aborts && !transfer_open(&mut ctl)?,
        "the switch's own firmware saw the abort"
    );
    env.note(format!(
        "via port {port}: interrupted at {} of {} bytes, exit 130, the device's last background \
         return code {} ({})",
        result["sent"],
        img.len(),
        st.get("bg-rc").map_or("?", String::as_str),
        err.lines().last().unwrap_or("").trim()
    ));

    // The next update through the tunnel completes.
    ctl.cmd("set fw-part-us 500 100")?;
    update_via(d, &port_args(port), &img, 2, "t3-int 3.0")?;
    holds_at(&mut ctl, at, 2, &img, "t3-int 3.0")?;
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}

/// Faults of the device behind a port, through the tunnel: verification fails in the
/// device's background (seen through Background Operation Status), and the device stays
/// Busy; each gives its message, naming the tunnel, and exit status 1; the transfer is aborted
/// and the device confirms; the slot is unchanged; the next command through the tunnel works.
pub fn tunnelled_faults(env: &mut Env) -> Result<Outcome> {
    let d = &first_emu_switch(env)?;
    let mut ctl = d.ctl()?;
    let port = first_type3(&mut ctl)?;
    let at = At::Port(port);
    let name = node(d);
    let p = port.to_string();
    let img = image("t3-fault 4.0", 20 * 1024, 14);
    let path = image_file("tunnel-fault", &img)?.display().to_string();
    let via = format!("via port {port}");
    // (fault, extra arguments, words on stderr)
    let cases: [(&str, &[&str], Vec<&str>); 2] = [
        (
            "fw-auth-fail port PORT once",
            &[],
            vec![
                "Transfer FW (0201h) (in the background)",
                via.as_str(),
                "FW verification failed (0ah)",
                "verification or authentication failed",
                "the device confirmed",
            ],
        ),
        (
            "fw-busy port PORT always",
            &["--busy-timeout-ms", "300"],
            vec![via.as_str(), "busy (06h)", "still busy after"],
        ),
    ];
    for (fault, extra, words) in &cases {
        let before = slot_view_at(&mut ctl, at, 2)?;
        let fault = fault.replace("PORT", &p);
        ctl.cmd(&fault)?;
        let mut a = vec![
            "fw", "update", &name, &path, "--slot", "2", "--port", &p, "--yes",
        ];
        a.extend(*extra);
        let err = expect_exit(&cli(&a)?, 1, words).with_context(|| format!("fault `{fault}`"))?;
        env.note(format!("{fault}: exit 1: {}", err.trim()));
        ensure!(
            !transfer_open_at(&mut ctl, at)?,
            "`{fault}`: a transfer is still open on the device"
        );
        ensure!(
            slot_view_at(&mut ctl, at, 2)? == before,
            "`{fault}`: slot 2 changed"
        );
        ctl.cmd("clear")?;
        expect_exit(&cli(&["fw", "info", &name, "--port", &p])?, 0, &[])?;
    }
    update_via(d, &port_args(port), &img, 2, "t3-fault 4.0")?;
    holds_at(&mut ctl, at, 2, &img, "t3-fault 4.0")?;
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}

/// Reads the CLI's JSON lines until `until` accepts one; returns the lines read.
pub(super) fn read_until(
    r: &mut impl BufRead,
    mut until: impl FnMut(&Value) -> bool,
) -> Result<Vec<Value>> {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            bail!("the CLI ended first; lines: {seen:?}");
        }
        let v: Value = serde_json::from_str(line.trim())?;
        let stop = until(&v);
        seen.push(v);
        if stop {
            return Ok(seen);
        }
    }
}

pub(super) fn signal(child: &Child, sig: i32) -> Result<()> {
    let pid = i32::try_from(child.id())?;
    // SAFETY: kill(2) on our own child's pid.
    if unsafe { libc::kill(pid, sig) } != 0 {
        bail!("kill {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Ctrl-C during an update: the CLI aborts the transfer, waits for the device to confirm and
/// exits 130; the device holds no open transfer and its slot is unchanged; the next update
/// completes. A second Ctrl-C exits at once (status 5, no result line).
pub fn interrupted(env: &mut Env) -> Result<Outcome> {
    let d = &first_emu_switch(env)?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    let slot = free_slot(&dev)?;
    let before = slot_view(&mut ctl, slot)?;
    // 10 ms per part: the interrupt lands while the driver waits for a part.
    ctl.cmd("set fw-part-us 10000 0")?;
    let img = image("fw-int 3.0", 256 * 1024, 3);
    let path = image_file("interrupted", &img)?;
    let args = [
        "fw".to_string(),
        "update".to_string(),
        node(d),
        path.display().to_string(),
        "--slot".to_string(),
        slot.to_string(),
        "--json".to_string(),
        "--yes".to_string(),
    ];
    let spawn = || {
        Command::new(CLI)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn the CLI")
    };

    let mut child = spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    read_until(&mut out, |v| v["percent"].as_u64().is_some_and(|p| p >= 10))?;
    signal(&child, libc::SIGINT)?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let o = child.wait_with_output()?;
    let o = Output {
        stdout: rest.into_bytes(),
        ..o
    };
    expect_exit(&o, 130, &["interrupted after", "the device confirmed"])?;
    let (_, result) = json_lines(&text(&o.stdout))?;
    ensure!(
        result["ok"] == false
            && result["failure"] == "interrupted"
            && result["abort"] == "confirmed"
            && result["sent"]
                .as_u64()
                .is_some_and(|s| s > 0 && s < img.len() as u64),
        "result {result}"
    );
    ensure!(!transfer_open(&mut ctl)?, "the transfer is still open");
    ensure!(slot_view(&mut ctl, slot)? == before, "slot {slot} changed");
    env.note(format!(
        "interrupted at {} of {} bytes, exit 130",
        result["sent"],
        img.len()
    ));

    // A second Ctrl-C while the abort waits (the device answers Busy): out at once.
    let mut child = spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    read_until(&mut out, |v| v["percent"].as_u64().is_some_and(|p| p >= 10))?;
    ctl.cmd("fw-busy always")?;
    signal(&child, libc::SIGINT)?;
    read_until(&mut out, |v| v["phase"] == "abort")?;
    signal(&child, libc::SIGINT)?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let o = child.wait_with_output()?;
    ensure!(o.status.code() == Some(5), "second Ctrl-C: {:?}", o.status);
    ensure!(
        !rest.contains("\"result\""),
        "a result line after the second Ctrl-C: {rest}"
    );
    ctl.cmd("clear")?;
    ensure!(
        transfer_open(&mut ctl)?,
        "the abandoned transfer should be open"
    );
    expect_exit(&cli(&["fw", "abort", &node(d), "--yes"])?, 0, &[])?;
    ensure!(!transfer_open(&mut ctl)?, "fw abort left the transfer open");

    // The next update completes.
    ctl.cmd("set fw-part-us 500 100")?;
    let o = cli(&[
        "fw",
        "update",
        &node(d),
        &path.display().to_string(),
        "--slot",
        &slot.to_string(),
        "--yes",
    ])?;
    expect_exit(&o, 0, &[])?;
    holds(&mut ctl, slot, &img, "fw-int 3.0")?;
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}

/// Each fault of the emulator gives its documented message and exit status, leaves no
/// transfer open, and the next command works.
pub fn faults(env: &mut Env) -> Result<Outcome> {
    let d = &first_emu_switch(env)?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    let name = node(d);
    let slot = free_slot(&dev)?;
    let s = slot.to_string();
    let img = image("fw-fault 4.0", 20 * 1024, 4);
    let path = image_file("fault", &img)?.display().to_string();
    let update = |extra: &[&str]| {
        let mut a = vec![
            "fw",
            "update",
            name.as_str(),
            path.as_str(),
            "--slot",
            &s,
            "--yes",
        ];
        a.extend(extra);
        cli(&a)
    };
    // (fault, extra arguments, exit status, words on stderr)
    let cases: &[(&str, &[&str], i32, &[&str])] = &[
        (
            "fw-busy always",
            &["--busy-timeout-ms", "300"],
            1,
            &["busy (06h)", "still busy after", "stayed busy"],
        ),
        (
            "fw-out-of-order once",
            &[],
            1,
            &["FW transfer out of order (09h)", "did not expect a part"],
        ),
        (
            "fw-auth-fail once",
            &[],
            1,
            &[
                "FW verification failed (0ah)",
                "verification or authentication failed",
                "the device confirmed",
            ],
        ),
        (
            "set fw-ro-slot SLOT",
            &[],
            1,
            &["invalid slot (0bh)", "read-only", "the device confirmed"],
        ),
        (
            "",
            &["--expect-revision", "something else"],
            6,
            &["not confirmed", "expected \"something else\""],
        ),
        // Longer than Get FW Info's 16-byte field: refused before anything is sent.
        (
            "",
            &["--expect-revision", "0123456789abcdefX"],
            2,
            &["1 to 16 printable ASCII"],
        ),
    ];
    for (fault, extra, code, words) in cases {
        let before = slot_view(&mut ctl, slot)?;
        if !fault.is_empty() {
            ctl.cmd(&fault.replace("SLOT", &s))?;
        }
        let err = expect_exit(&update(extra)?, *code, words)
            .with_context(|| format!("fault `{fault}`"))?;
        env.note(format!("{fault}: exit {code}: {}", err.trim()));
        ensure!(
            !transfer_open(&mut ctl)?,
            "`{fault}`: a transfer is still open"
        );
        if *code != 6 {
            ensure!(
                slot_view(&mut ctl, slot)? == before,
                "`{fault}`: slot {slot} changed"
            );
        }
        ctl.cmd("clear")?;
        ctl.cmd("set fw-ro-slot 0")?;
        // The next command works.
        expect_exit(&cli(&["fw", "info", &name])?, 0, &[])?;
    }
    // An empty image: refused before the device is opened (usage error), nothing changed.
    let before = slot_view(&mut ctl, slot)?;
    let err = expect_exit(
        &cli(&["fw", "update", &name, "/dev/null", "--slot", &s, "--yes"])?,
        2,
        &["image /dev/null: empty (0 bytes); nothing was sent"],
    )?;
    env.note(format!("empty image: exit 2: {}", err.trim()));
    ensure!(
        !transfer_open(&mut ctl)? && slot_view(&mut ctl, slot)? == before,
        "an empty image changed the device"
    );
    // Busy once: retried, the update completes.
    ctl.cmd("fw-busy once")?;
    let o = update(&["--json"])?;
    expect_exit(&o, 0, &[])?;
    let (_, result) = json_lines(&text(&o.stdout))?;
    ensure!(
        result["busy_retries"].as_u64() >= Some(1),
        "busy once: {result}"
    );
    holds(&mut ctl, slot, &img, "fw-fault 4.0")?;

    // Activation faults, on the slot just written.
    for (fault, words) in [
        (
            "fw-activate-fail once",
            "rolled back to the firmware it was running",
        ),
        ("fw-cold-reset once", "needs a cold reset"),
    ] {
        ctl.cmd(fault)?;
        let o = cli(&["fw", "activate", &name, "--slot", &s, "--online", "--yes"])?;
        let err = expect_exit(&o, 1, &[words])?;
        env.note(format!("{fault}: exit 1: {}", err.trim()));
        ensure!(
            dev.on(Target::Direct).fw_info()?.active_slot == 1,
            "`{fault}`: the active slot changed"
        );
    }

    // Out of order in the middle, and a transfer the device drops after an idle time: the
    // library aborts and the device confirms.
    let cancel = AtomicBool::new(false);
    let cci = dev.on(Target::Direct);
    let big = image("fw-fault 4.1", 64 * 1024, 5);
    let mut arm = |p: &swcci::Progress| {
        if p.part == 3 && p.phase == Phase::Transfer {
            let _ = ctl.cmd("fw-out-of-order once");
        }
    };
    let e = cci
        .fw_transfer(&big, slot, &FwOptions::default(), &mut arm, &cancel)
        .err()
        .context("out of order in the middle: succeeded")?;
    ensure!(
        e.rc() == Some(ReturnCode::FwTransferOutOfOrder)
            && matches!(e.abort, swcci::AbortOutcome::Confirmed { .. })
            && e.to_string().contains("part 4 of"),
        "{e}"
    );
    ctl.cmd("set fw-idle-ms 100")?;
    let mut stall = |p: &swcci::Progress| {
        if p.part == 2 && p.phase == Phase::Transfer {
            std::thread::sleep(Duration::from_millis(400));
        }
    };
    let e = cci
        .fw_transfer(&big, slot, &FwOptions::default(), &mut stall, &cancel)
        .err()
        .context("idle drop: succeeded")?;
    ensure!(
        e.rc() == Some(ReturnCode::FwTransferOutOfOrder)
            && e.to_string().contains("after an idle time")
            && matches!(e.abort, swcci::AbortOutcome::Confirmed { .. }),
        "{e}"
    );
    env.note(format!("idle drop: {e}"));
    ensure!(!transfer_open(&mut ctl)?, "a transfer is still open");
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}

/// Another process's Identify completes between the parts of an update: the CLI updates
/// while this process sends Identify through its own open file, and sees the transfer open
/// on the device between its Identify commands.
pub fn concurrent_identify(env: &mut Env) -> Result<Outcome> {
    let d = &first_emu_switch(env)?;
    let mut ctl = d.ctl()?;
    let slot = free_slot(&d.open()?)?;
    ctl.cmd("set fw-part-us 5000 0")?;
    let img = image("fw-conc 5.0", 128 * 1024, 6);
    let path = image_file("concurrent", &img)?;
    let mut child = Command::new(CLI)
        .args([
            "fw",
            "update",
            &node(d),
            &path.display().to_string(),
            "--slot",
            &slot.to_string(),
            "--yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn the CLI")?;
    let other = d.open()?;
    let (mut identifies, mut during) = (0u32, 0u32);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        let id = other.identify()?;
        ensure!(
            id.serial == d.spec.serial,
            "Identify: serial {:#x}",
            id.serial
        );
        identifies += 1;
        if transfer_open(&mut ctl)? {
            during += 1;
        }
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    ensure!(status.code() == Some(0), "update: {status}: {err}");
    ensure!(
        during >= 3,
        "{identifies} Identify commands completed, {during} of them with the transfer open"
    );
    holds(&mut ctl, slot, &img, "fw-conc 5.0")?;
    env.note(format!(
        "{identifies} Identify commands from another process during the update, {during} \
         with the transfer open on the device"
    ));
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}

/// Benchmark (scenario `bench-fw`): a 16 MiB image to the emulated switch, with the
/// emulator's default part time and with none, against the bound set by one part's round trip
/// measured in the same boot; the same image through one tunnel to the type-3 device behind
/// the emulated switch's first downstream port, with the default part time, against the bound
/// set by one tunnelled part's round trip (the part, then Background Operation Status through
/// the tunnel, back to back, until it reports the part done); and the round trip of a
/// full-size part through QEMU's switch to a type-3 device (which refuses it: see
/// `update_through_qemu_switch`).
pub fn bench(env: &mut Env) -> Result<Outcome> {
    const IMAGE: usize = 16 << 20;
    const SAMPLES: usize = 200;
    let sw = emu_switches(env)?;
    let d = sw
        .iter()
        .find(|d| d.spec.msix)
        .or_else(|| sw.first())
        .context("no emulated switch")?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    let cci = dev.on(Target::Direct);
    let part = max_part(dev.payload_size()?, 0);
    let parts = IMAGE.div_ceil(part);
    let img = image("fw-bench 16M", IMAGE, 9);
    for (setting, what) in [
        (
            "set fw-part-us 500 100",
            "device part time 500 us + 100 us/KiB",
        ),
        ("set fw-part-us 0 0", "no device part time"),
    ] {
        ctl.cmd(setting)?;
        // One part's round trip: Initiate, then Continue parts timed one by one, then Abort.
        let mut buf = vec![0u8; part + 128];
        let mut send = |action, offset: usize| -> Result<Duration> {
            let t = swcci::proto::payload::firmware::Transfer {
                action,
                slot: 0,
                offset: u32::try_from(offset / 128)?,
                data: &img[offset..offset + part],
            };
            let n = t.encode(&mut buf).map_err(|e| anyhow!("{e:?}"))?;
            let start = Instant::now();
            let r = dev.raw(0x0201, &buf[..n], 64)?;
            let took = start.elapsed();
            ensure!(r.rc.is_success(), "part at {offset}: {}", r.rc);
            Ok(took)
        };
        use swcci::proto::payload::firmware::TransferAction as A;
        send(A::Initiate, 0)?;
        let mut ns: Vec<u128> = (1..=SAMPLES)
            .map(|k| send(A::Continue, k * part).map(|d| d.as_nanos()))
            .collect::<Result<_>>()?;
        cci.fw_abort(&FwOptions::default())
            .map_err(|e| anyhow!("{e}"))?;
        ns.sort_unstable();
        let median = ns[ns.len() / 2] as f64 / 1e9;
        let mean = ns.iter().sum::<u128>() as f64 / ns.len() as f64 / 1e9;
        let bound = mean * parts as f64;

        let slot = free_slot(&dev)?;
        let cancel = AtomicBool::new(false);
        let start = Instant::now();
        let r = cci
            .fw_transfer(&img, slot, &FwOptions::default(), &mut |_| {}, &cancel)
            .map_err(|e| anyhow!("{e}"))?;
        let secs = start.elapsed().as_secs_f64();
        holds(&mut ctl, slot, &img, "fw-bench 16M")?;
        env.note(format!(
            "direct, {what}: 16 MiB in {parts} parts of {part} B: {secs:.2} s ({:.2} s \
             transferring), {:.0} KiB/s; one part's round trip median {:.0} us, mean {:.0} us \
             ({SAMPLES} parts); bound parts x mean = {bound:.2} s; ratio {:.2}",
            r.elapsed.as_secs_f64(),
            IMAGE as f64 / secs / 1024.0,
            median * 1e6,
            mean * 1e6,
            secs / bound
        ));
    }
    // Through one tunnel: the emulated switch to the type-3 device behind its first port.
    ctl.cmd("set fw-part-us 500 100")?;
    let port = first_type3(&mut ctl)?;
    let tcci = dev.on(Target::Port(port));
    let tpart = tunnel_part(&dev, 1)?;
    let tparts = IMAGE.div_ceil(tpart);
    // One tunnelled part's round trip, sampled over SAMPLES Continue parts: the part, then
    // Background Operation Status through the tunnel, back to back, until it reports the part
    // done. Returns the sorted round trips in ns and the polls per part.
    let sample = || -> Result<(Vec<u128>, f64)> {
        use swcci::proto::payload::firmware::TransferAction as A;
        let mut buf = vec![0u8; tpart + 128];
        let mut polls = 0usize;
        let mut send = |action, offset: usize| -> Result<Duration> {
            let t = swcci::proto::payload::firmware::Transfer {
                action,
                slot: 0,
                offset: u32::try_from(offset / 128)?,
                data: &img[offset..offset + tpart],
            };
            let n = t.encode(&mut buf).map_err(|e| anyhow!("{e:?}"))?;
            let start = Instant::now();
            let r = tcci.raw(0x0201, &buf[..n], 64)?;
            ensure!(
                r.rc() == ReturnCode::BackgroundStarted,
                "tunnelled part at {offset}: {}",
                r.rc()
            );
            loop {
                polls += 1;
                let st = tcci.bg_status()?;
                if !st.running {
                    ensure!(st.rc.is_success(), "tunnelled part at {offset}: {}", st.rc);
                    break;
                }
            }
            Ok(start.elapsed())
        };
        send(A::Initiate, 0)?;
        let mut ns: Vec<u128> = (1..=SAMPLES)
            .map(|k| send(A::Continue, k * tpart).map(|d| d.as_nanos()))
            .collect::<Result<_>>()?;
        tcci.fw_abort(&FwOptions::default())
            .map_err(|e| anyhow!("{e}"))?;
        ns.sort_unstable();
        Ok((ns, polls as f64 / (SAMPLES + 1) as f64))
    };
    let mean_s = |ns: &[u128]| ns.iter().sum::<u128>() as f64 / ns.len().max(1) as f64 / 1e9;
    let median_us = |ns: &[u128]| ns.get(ns.len() / 2).copied().unwrap_or(0) as f64 / 1e3;
    // Sampled before and after the transfer: on a machine shared with other guests the two
    // differ, and the ratio is given against each.
    let (before, polls) = sample()?;
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let r = tcci
        .fw_transfer(&img, 2, &FwOptions::default(), &mut |_| {}, &cancel)
        .map_err(|e| anyhow!("{e}"))?;
    let secs = start.elapsed().as_secs_f64();
    holds_at(&mut ctl, At::Port(port), 2, &img, "fw-bench 16M")?;
    let (after, polls_after) = sample()?;
    let (b1, b2) = (
        mean_s(&before) * tparts as f64,
        mean_s(&after) * tparts as f64,
    );
    env.note(format!(
        "one tunnel (emulated switch to the type-3 device on port {port}), device part time \
         500 us + 100 us/KiB: 16 MiB in {tparts} parts of {tpart} B: {secs:.2} s ({:.2} s \
         transferring), {:.0} KiB/s; one tunnelled part's round trip (part, then Background \
         Operation Status until done, {polls:.1} / {polls_after:.1} polls per part) before the \
         transfer median {:.0} us, mean {:.0} us, after it median {:.0} us, mean {:.0} us \
         ({SAMPLES} parts each); bound parts x mean = {b1:.2} s / {b2:.2} s; ratio {:.2} / {:.2}",
        r.elapsed.as_secs_f64(),
        IMAGE as f64 / secs / 1024.0,
        median_us(&before),
        mean_s(&before) * 1e6,
        median_us(&after),
        mean_s(&after) * 1e6,
        secs / b1,
        secs / b2
    ));
    // Through one tunnel: QEMU's switch to its first type-3 device.
    if let Some(sw) = env.topo.switches.first().cloned() {
        let q = env.node_for_serial(sw.serial)?;
        let t3 = sw.type3.first().context("no type-3 device")?;
        let tcci = q.on(Target::Port(t3.port));
        let tpart = max_part(tcci.payload_size()?, 0);
        let tparts = IMAGE.div_ceil(tpart);
        let mut buf = vec![0u8; tpart + 128];
        let t = swcci::proto::payload::firmware::Transfer {
            action: swcci::proto::payload::firmware::TransferAction::Continue,
            slot: 0,
            offset: 1,
            data: &img[..tpart],
        };
        let n = t.encode(&mut buf).map_err(|e| anyhow!("{e:?}"))?;
        let mut ns = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let start = Instant::now();
            let r = tcci.raw(0x0201, &buf[..n], 64)?;
            ns.push(start.elapsed().as_nanos());
            ensure!(
                r.outer_rc.is_success(),
                "tunnel to port {}: {}",
                t3.port,
                r.outer_rc
            );
        }
        ns.sort_unstable();
        let mean = ns.iter().sum::<u128>() as f64 / ns.len() as f64 / 1e9;
        env.note(format!(
            "one tunnel (QEMU switch to type-3 on port {}): a {tpart}-byte part's round trip \
             median {:.0} us, mean {:.0} us; bound for 16 MiB in {tparts} parts {:.2} s (the \
             device answers {}: no transfer through a tunnel can be measured here)",
            t3.port,
            ns[ns.len() / 2] as f64 / 1000.0,
            mean * 1e6,
            mean * tparts as f64,
            tcci.raw(0x0201, &buf[..n], 64)?.rc()
        ));
    }
    reset_fw(d, &mut ctl)?;
    Ok(Outcome::Pass)
}
