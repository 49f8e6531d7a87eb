// SPDX-License-Identifier: GPL-2.0

//! `swcci events` on the real driver against the emulated switch (scenario `emu`,
//! Documentation/events.rst): a bind and an unbind produce Virtual CXL Switch records that the
//! tool shows (text and JSON lines) and `--clear` removes; a bounded log's overflow is
//! reported; the records of a device behind a port come through a tunnel. The emulator's
//! control channel (`get events`) confirms what the device holds.

use crate::env::Env;
use crate::tests::cli::{line_with, num, swcci, text};
use crate::tests::emu::{devices, EmuDev};
use crate::Outcome;
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use swcci::topology::EmuFabric;

/// The Firmware Activation record of the emulator (tools/emu/src/events.rs).
const FW_ACTIVATION_UUID: &str = "68297cbb-3bed-4182-a08a-a87ffb72c04d";

/// The emulated switch with a fabric, its node and its fabric as it stands now.
fn fabric_switch(env: &mut Env) -> Result<(EmuDev, String, EmuFabric)> {
    let d = devices(env)?
        .into_iter()
        .find(|d| d.spec.personality == "switch" && d.spec.fabric.is_some())
        .context("no emulated switch with a fabric in this scenario")?;
    let node = d.path.display().to_string();
    let line = d.ctl()?.cmd("get fabric")?;
    let f = serde_json::from_str(&line).with_context(|| format!("get fabric: {line}"))?;
    Ok((d, node, f))
}

/// `swcci ARGS --json`, exit status 0, its JSON lines.
fn json_lines(args: &[&str]) -> Result<Vec<Value>> {
    let mut a = args.to_vec();
    a.push("--json");
    let r = swcci(&a)?;
    let lines = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: not JSON: {l}", r.line)))
        .collect::<Result<Vec<Value>>>()?;
    r.ok()?;
    Ok(lines)
}

/// `key=value` of a control reply.
fn reply_value<'a>(reply: &'a str, key: &str) -> Result<&'a str> {
    reply
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key} in `{reply}`"))
}

/// Empties every log of `args`' target (`--clear --yes`); returns what was cleared.
fn drain(args: &[&str]) -> Result<Vec<Value>> {
    let mut a = args.to_vec();
    a.extend(["--clear", "--yes"]);
    json_lines(&a)
}

pub fn bind_unbind_records(env: &mut Env) -> Result<Outcome> {
    let (d, node, f) = fabric_switch(env)?;
    let mut ctl = d.ctl()?;
    drain(&["events", &node])?;
    ensure!(
        text(&["events", &node])? == "no event records\n",
        "after the drain"
    );
    ensure!(
        json_lines(&["events", &node])?.is_empty(),
        "JSON of no records"
    );
    // A free vPPB, bound to a free LD of the MLD and unbound again.
    let vcs = f.vcs.first().context("no VCS")?;
    let free = vcs
        .vppbs
        .iter()
        .find(|v| v.status == "unbound")
        .context("no unbound vPPB")?
        .vppb;
    let (mld_port, lds) = f
        .ports
        .iter()
        .find_map(|p| {
            let dev = p.device.as_ref().filter(|d| d.kind == "mld")?;
            Some((p.port, dev.lds.iter().map(|l| l.ld).collect::<Vec<_>>()))
        })
        .context("no MLD")?;
    let ld = lds
        .into_iter()
        .find(|l| {
            !vcs.vppbs
                .iter()
                .any(|v| v.port == Some(mld_port) && v.ld == Some(*l))
        })
        .context("every LD is bound")?;
    let (v, vp, p, l) = (
        vcs.vcs.to_string(),
        free.to_string(),
        mld_port.to_string(),
        ld.to_string(),
    );
    swcci(&[
        "bind", &node, "--vcs", &v, "--vppb", &vp, "--port", &p, "--ld", &l, "--yes",
    ])?
    .ok()?;
    swcci(&["unbind", &node, "--vcs", &v, "--vppb", &vp, "--yes"])?.ok()?;
    let held = ctl.cmd("get events")?;
    ensure!(
        reply_value(&held, "informational")? == "2" && reply_value(&held, "status")? == "0x1",
        "emulator: {held}"
    );
    // Text: one line per record, oldest first.
    let t = text(&["events", &node])?;
    let lines: Vec<&str> = t.lines().collect();
    ensure!(lines.len() == 2, "two records expected:\n{t}");
    let bound =
        format!("virtual-switch VCS {v} vPPB {vp}: binding-change, bound-ld to port {p} LD {l}");
    let unbound = format!("virtual-switch VCS {v} vPPB {vp}: binding-change, unbound");
    ensure!(
        lines[0].starts_with("informational #") && lines[0].ends_with(&bound),
        "{t}"
    );
    ensure!(lines[1].ends_with(&unbound), "{t}");
    // JSON lines: the same records, decoded, not cleared.
    let j = json_lines(&["events", &node])?;
    ensure!(j.len() == 2, "{j:?}");
    for (r, binding) in j.iter().zip([("bound-ld", 3), ("unbound", 0)]) {
        ensure!(
            r["kind"] == "record"
                && r["log"] == "informational"
                && r["type"] == "virtual-switch"
                && r["uuid"] == "40d26425-3396-4c4d-a5da-3d47263af425"
                && r["severity"] == "informational"
                && r["event"] == "binding-change"
                && r["vcs"] == vcs.vcs
                && r["vppb"] == free
                && r["binding"] == binding.0
                && r["binding_code"] == binding.1
                && r["cleared"] == false
                && r["node"] == node.as_str()
                && r["target_port"].is_null(),
            "{r}"
        );
        ensure!(r["time"].as_str().is_some_and(|s| s.ends_with('Z')), "{r}");
    }
    ensure!(
        j[0]["vppb_port"] == mld_port && j[0]["vppb_ld"] == ld,
        "{}",
        j[0]
    );
    ensure!(
        num(&j[1]["handle"])? > num(&j[0]["handle"])?
            && num(&j[1]["timestamp"])? >= num(&j[0]["timestamp"])?,
        "{j:?}"
    );
    // --clear changes the device: nothing is sent without --yes.
    swcci(&["events", &node, "--clear"])?
        .error(2, &["add --yes", "Clear Event Records (0101h)"])?;
    ensure!(
        reply_value(&ctl.cmd("get events")?, "informational")? == "2",
        "records cleared without --yes"
    );
    let cleared = drain(&["events", &node])?;
    ensure!(
        cleared.len() == 2
            && cleared.iter().all(|r| r["cleared"] == true)
            && cleared[0]["handle"] == j[0]["handle"],
        "{cleared:?}"
    );
    ensure!(
        text(&["events", &node])? == "no event records\n",
        "after --clear"
    );
    let held = ctl.cmd("get events")?;
    ensure!(
        reply_value(&held, "informational")? == "0" && reply_value(&held, "status")? == "0x0",
        "emulator: {held}"
    );
    // The polled switch (no fabric) answers too, with nothing.
    for other in devices(env)?
        .iter()
        .filter(|x| x.spec.personality == "switch" && x.spec.fabric.is_none())
    {
        let n = other.path.display().to_string();
        drain(&["events", &n])?;
        ensure!(text(&["events", &n])? == "no event records\n", "{n}");
    }
    Ok(Outcome::Pass)
}

pub fn overflow_reported(env: &mut Env) -> Result<Outcome> {
    let (d, node, f) = fabric_switch(env)?;
    let mld = f
        .ports
        .iter()
        .find(|p| p.device.as_ref().is_some_and(|d| d.kind == "mld"))
        .context("no MLD")?
        .port;
    let mut ctl = d.ctl()?;
    drain(&["events", &node])?;
    ctl.cmd("set event-log-cap 2")?;
    let r = (|| -> Result<()> {
        ctl.cmd("mld-error cor 5")?;
        let t = text(&["events", &node])?;
        line_with(&t, &["warning log overflowed: 3 records lost between"])?;
        let recs: Vec<&str> = t.lines().filter(|l| l.starts_with("warning #")).collect();
        ensure!(recs.len() == 2, "{t}");
        for l in recs {
            ensure!(
                l.contains(&format!(
                    "mld-port port {mld}: err-cor-received, message 30000000{mld:02x}000030"
                )),
                "{t}"
            );
        }
        let j = json_lines(&["events", &node])?;
        let o = j
            .iter()
            .find(|l| l["kind"] == "overflow")
            .with_context(|| format!("no overflow line: {j:?}"))?;
        ensure!(
            o["log"] == "warning"
                && o["count"] == 3
                && num(&o["last_timestamp"])? >= num(&o["first_timestamp"])?,
            "{o}"
        );
        // Clearing the records ends the overflow.
        let cleared = drain(&["events", &node])?;
        ensure!(
            cleared.iter().filter(|l| l["kind"] == "record").count() == 2,
            "{cleared:?}"
        );
        ensure!(
            text(&["events", &node])? == "no event records\n",
            "after --clear"
        );
        Ok(())
    })();
    ctl.cmd("set event-log-cap 32")?;
    r?;
    Ok(Outcome::Pass)
}

pub fn tunnelled_device_records(env: &mut Env) -> Result<Outcome> {
    let (_, node, f) = fabric_switch(env)?;
    let sld = f
        .ports
        .iter()
        .find(|p| p.role == "dsp" && p.device.as_ref().is_some_and(|d| d.kind == "type3"))
        .context("no type-3 device")?
        .port
        .to_string();
    let mld = f
        .ports
        .iter()
        .find(|p| p.device.as_ref().is_some_and(|d| d.kind == "mld"))
        .context("no MLD")?
        .port
        .to_string();
    drain(&["events", &node, "--port", &sld])?;
    // The device's firmware activation is logged in its own log.
    let mut img = swcci::proto::payload::firmware::revision_field("evt 2.0").to_vec();
    img.extend_from_slice(&[0x5a; 112]);
    let path = "/tmp/events-fw.bin";
    std::fs::write(path, &img).context("write the image")?;
    swcci(&[
        "fw",
        "update",
        &node,
        path,
        "--slot",
        "2",
        "--port",
        &sld,
        "--activate",
        "online",
        "--yes",
    ])?
    .ok()?;
    let j = json_lines(&["events", &node, "--port", &sld])?;
    ensure!(j.len() == 1, "{j:?}");
    let r = &j[0];
    let data = format!("02{}", hex("evt 2.0"));
    ensure!(
        r["uuid"] == FW_ACTIVATION_UUID
            && r["type"].is_null()
            && r["log"] == "informational"
            && r["target_port"] == sld.parse::<u8>()?
            && r["data"].as_str().is_some_and(|d| d.starts_with(&data)),
        "{r}"
    );
    let t = text(&["events", &node, "--port", &sld])?;
    line_with(&t, &[&format!("record {FW_ACTIVATION_UUID}: {data}")])?;
    // The switch's own logs did not get it.
    ensure!(text(&["events", &node])? == "no event records\n");
    // Back to the built-in image, and clear.
    swcci(&[
        "fw", "activate", &node, "--slot", "1", "--online", "--port", &sld, "--yes",
    ])?
    .ok()?;
    let cleared = drain(&["events", &node, "--port", &sld])?;
    ensure!(cleared.len() == 2, "{cleared:?}");
    ensure!(text(&["events", &node, "--port", &sld])? == "no event records\n");
    // An LD of the MLD has no event logs: the refusal names the target, the command, the log.
    swcci(&["events", &node, "--port", &mld, "--ld", "0"])?.error(
        1,
        &[
            &format!("Get Event Records (0100h) via port {mld} LD 0 on {node} (informational log)"),
            "unsupported (03h)",
        ],
    )?;
    Ok(Outcome::Pass)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
