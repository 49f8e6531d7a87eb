// SPDX-License-Identifier: GPL-2.0

//! Memory pooling from the fabric manager (scenario `fw`; the benchmark in `bench-fw`), on the
//! real driver and the `swcci` CLI (Documentation/pooling.rst):
//!
//! - Dynamic Capacity through QEMU's switch to its type-3 device with two DC regions
//!   (`num-dc-regions=2`, 2 GiB of `volatile-dc-memdev`: 1 GiB regions after 256 MiB of
//!   persistent memory, 2 MiB blocks, 512 extents), whose FM-owned LD answers 5600h-5605h:
//!   read, configure, add (pending until the host accepts), release, forced release, and the
//!   errors (more than is free, overlapping or misaligned extents, a bad region, a host that
//!   does not exist, policies QEMU lacks, more extents than it tracks).
//! - The host's part. Linux 7.3 has no host-side DCD support, so the tests play the host on
//!   the type-3 device's own primary mailbox, which no driver binds here (the kernels have no
//!   CXL drivers): the protocol core's engine driven from userspace through the function's
//!   BAR (`crate::usermbox`, as the benchmark does), sending the host's Add Dynamic Capacity
//!   Response (4802h: accept all, part, or none of the oldest pending add) and Release
//!   Dynamic Capacity (4803h: give capacity up). That needs 64-bit MMIO (x86_64, arm64); on
//!   32-bit ARM the tests that need the host skip.
//! - The driver's side: CAP_SYS_RAWIO, the taint line naming the tunnelled command, fwctl
//!   scopes.
//! - LD allocation of the emulated multi-logical device behind the emulated switches (tools/emu:
//!   2 LDs, 2 GiB, all allocated at start).
//!
//! QEMU 11.1 hazards the tests stay clear of (each seen to kill QEMU 11.1.3): Set DC Region
//! Configuration (5602h) of a region id between the device's number of regions and 7, and
//! a prescriptive Initiate Dynamic Capacity Add (5604h) without extents or with an extent of
//! length 0 (the library's checks refuse all three before sending); an Add Dynamic Capacity
//! Response (4802h) when no add is pending ([`Host`] checks that one is, from the extents the
//! device tracks but does not list).

use super::cli::{json, swcci};
use super::emu::devices;
use super::fwctl;
use crate::env::{Env, TAINT_USER};
use crate::usermbox::UserMailbox;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use swcci::dcd::{self, AddSpec, DcdState, Extent, PoolError, SelectionPolicy};
use swcci::ld::Mld;
use swcci::proto::mailbox::Request;
use swcci::proto::opcode;
use swcci::proto::payload::dcd::{
    encode_extent_update, AddRequest, DcdInfo, HostRegionRequest, ReleaseFlags, ReleaseRequest,
    RemovalPolicy, SetRegionConfig, EXTENT_UPDATE_HEADER, UPDATED_EXTENT_LEN,
};
use swcci::proto::payload::ld::LdAllocation;
use swcci::proto::payload::logs::Uuid;
use swcci::proto::rc::ReturnCode;
use swcci::{Cci, Device, Target};

const MIB: u64 = 1 << 20;
/// QEMU's DC regions start after the device's 256 MiB of persistent memory.
const REGION0: u64 = 256 * MIB;
/// Each of the two regions is 1 GiB.
const REGION_LEN: u64 = 1024 * MIB;
const REGION1: u64 = REGION0 + REGION_LEN;
/// QEMU's block size (the only one it supports).
const BLOCK: u64 = 2 * MIB;
/// Extents QEMU tracks (accepted and pending).
const QEMU_EXTENTS: u32 = 512;
/// PCI class of a CXL memory device (type-3), with its programming interface.
const CLASS_CXL_MEMORY: u32 = 0x050210;
/// PCIe extended capability id of the Device Serial Number.
const PCI_EXT_CAP_DSN: u32 = 0x0003;

/// The Dynamic Capacity Device of the topology: the switch node and the port it is behind.
struct Dcd {
    node: String,
    port: u8,
    serial: u64,
    /// A type-3 device on the same switch without DC regions.
    plain_port: Option<u8>,
}

impl Dcd {
    fn find(env: &mut Env) -> Result<Self> {
        env.ensure_loaded()?;
        let (i, t) = env
            .topo
            .dcds()
            .next()
            .map(|(i, t)| (i, t.clone()))
            .context("no Dynamic Capacity Device in this topology")?;
        ensure!(
            t.dc_regions == 2 && t.dc_size == 2 * REGION_LEN,
            "the tests expect 2 DC regions of 1 GiB: {t:?}"
        );
        let sw = env.topo.switches[i].clone();
        let dev = env.node_for_serial(sw.serial)?;
        Ok(Self {
            node: dev.path().display().to_string(),
            port: t.port,
            serial: t.serial,
            plain_port: sw.type3.iter().find(|x| x.dc_regions == 0).map(|x| x.port),
        })
    }

    fn open(&self) -> Result<Device> {
        Ok(Device::open(&self.node)?)
    }

    /// `[DEV, --port, P]` followed by `rest`.
    fn args<'a>(&'a self, port: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![self.node.as_str(), "--port", port];
        v.extend_from_slice(rest);
        v
    }

    /// The device's state as the library reads it (host 0).
    fn state(&self) -> Result<DcdState> {
        let d = self.open()?;
        DcdState::read(&d.on(Target::Port(self.port)), 0).map_err(|e| anyhow!("{e}"))
    }

    /// Host 0's extents as `(start, length)`, sorted.
    fn held(&self) -> Result<Vec<(u64, u64)>> {
        let mut v: Vec<(u64, u64)> = self
            .state()?
            .held(0)
            .iter()
            .map(|e| (e.start_dpa, e.length))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Extents the device can still track.
    fn available(&self) -> Result<u32> {
        self.state()?
            .regions
            .counts
            .map(|c| c.extents_available)
            .context("no extent counts in Get Host DC Region Configuration")
    }
}

/// `swcci dcd SUB DEV --port P ARGS... --json`, succeeding.
fn dcd_json(d: &Dcd, sub: &str, rest: &[&str]) -> Result<Value> {
    let port = d.port.to_string();
    let mut a = vec!["dcd", sub];
    a.extend(d.args(&port, rest));
    json(&a)
}

/// `swcci dcd SUB DEV --port P ARGS...`, failing with `code` and a message with `words`.
fn dcd_fails(d: &Dcd, sub: &str, rest: &[&str], code: i32, words: &[&str]) -> Result<String> {
    let port = d.port.to_string();
    let mut a = vec!["dcd", sub];
    a.extend(d.args(&port, rest));
    swcci(&a)?.error(code, words)
}

/// The PCI address of the type-3 device whose Device Serial Number capability reads
/// `serial`.
fn type3_addr(serial: u64) -> Result<String> {
    for e in fs::read_dir("/sys/bus/pci/devices").context("read /sys/bus/pci/devices")? {
        let dir = e?.path();
        let class = fs::read_to_string(dir.join("class")).unwrap_or_default();
        if u32::from_str_radix(class.trim().trim_start_matches("0x"), 16).ok()
            != Some(CLASS_CXL_MEMORY)
        {
            continue;
        }
        let cfg = fs::File::open(dir.join("config"))
            .with_context(|| format!("open {}/config", dir.display()))?;
        let read = |off: u64| -> Option<u32> {
            let mut b = [0u8; 4];
            cfg.read_exact_at(&mut b, off).ok()?;
            Some(u32::from_le_bytes(b))
        };
        let mut off = 0x100u64;
        for _ in 0..64 {
            let Some(h) = read(off) else { break };
            if h & 0xffff == PCI_EXT_CAP_DSN {
                let lo = read(off + 4).unwrap_or(0);
                let hi = read(off + 8).unwrap_or(0);
                if u64::from(hi) << 32 | u64::from(lo) == serial {
                    return Ok(dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default());
                }
            }
            let next = u64::from(h >> 20);
            if next < 0x100 {
                break;
            }
            off = next;
        }
    }
    bail!("no CXL memory device with serial {serial:#x}")
}

/// The host's side of Dynamic Capacity, played on the type-3 device's own mailbox from
/// userspace (see the module documentation). Every method names the command in its errors.
struct Host {
    mbox: UserMailbox,
    addr: String,
    /// The DCD as the fabric manager reaches it (node, port), to see whether an add is
    /// pending.
    fm: (String, u8),
}

impl Host {
    /// The host of the DCD, or why it cannot be played here.
    fn open(d: &Dcd) -> Result<std::result::Result<Self, Outcome>> {
        if !cfg!(target_pointer_width = "64") {
            return Ok(Err(Outcome::Skip(
                "the host's part needs the type-3's mailbox from userspace, which needs \
                 64-bit MMIO stores (x86_64, arm64)"
                    .into(),
            )));
        }
        let addr = type3_addr(d.serial)?;
        let mbox = UserMailbox::open(&addr)
            .with_context(|| format!("the type-3 device's mailbox at {addr}"))?;
        Ok(Ok(Self {
            mbox,
            addr,
            fm: (d.node.clone(), d.port),
        }))
    }

    fn update(&mut self, op: u16, extents: &[(u64, u64)]) -> Result<ReturnCode> {
        let mut b = vec![0u8; EXTENT_UPDATE_HEADER + UPDATED_EXTENT_LEN * extents.len()];
        let n = encode_extent_update(&mut b, 0, extents).map_err(|e| anyhow!("{e}"))?;
        let mut out = [0u8; 64];
        let r = self
            .mbox
            .execute(&Request::new(op, &b[..n]), &mut out)
            .with_context(|| format!("{} on {}", swcci::command_name(op), self.addr))?;
        Ok(r.rc)
    }

    /// Add Dynamic Capacity Response (4802h) accepting `extents` of the oldest pending add
    /// (the rest of it is dropped). Fails, sending nothing, when no add is pending (QEMU
    /// 11.1 crashes on such a response).
    fn accept(&mut self, extents: &[(u64, u64)]) -> Result<()> {
        let dcd = Dcd {
            node: self.fm.0.clone(),
            port: self.fm.1,
            serial: 0,
            plain_port: None,
        };
        ensure!(
            pending(&dcd)? > 0,
            "no add pending: the host's response not sent (QEMU would crash)"
        );
        self.accept_unchecked(extents)
    }

    /// [`Self::accept`] without the check (the benchmark, which knows an add is pending).
    fn accept_unchecked(&mut self, extents: &[(u64, u64)]) -> Result<()> {
        let rc = self.update(opcode::ADD_DC_RESPONSE, extents)?;
        ensure!(
            rc.is_success(),
            "the host's Add Dynamic Capacity Response: {rc}"
        );
        Ok(())
    }

    /// Add Dynamic Capacity Response (4802h) with no extent: the oldest pending add is
    /// rejected (checked as [`Self::accept`]).
    fn reject(&mut self) -> Result<()> {
        self.accept(&[])
    }

    /// Release Dynamic Capacity (4803h): the host gives `extents` up.
    fn release(&mut self, extents: &[(u64, u64)]) -> Result<()> {
        let rc = self.update(opcode::RELEASE_DC, extents)?;
        ensure!(rc.is_success(), "the host's Release Dynamic Capacity: {rc}");
        Ok(())
    }
}

/// The host, or the skip outcome on a guest that cannot play it.
macro_rules! host {
    ($d:expr) => {
        match Host::open($d)? {
            Ok(h) => h,
            Err(skip) => return Ok(skip),
        }
    };
}

/// Extents of a CLI document (`extents`: start, length).
fn listed(v: &Value) -> Vec<(u64, u64)> {
    v["extents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| Some((e["start"].as_u64()?, e["length"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Extents the device tracks that are not listed: capacity added to a host and still
/// pending (QEMU counts pending adds among the extents it tracks).
fn pending(d: &Dcd) -> Result<u32> {
    let s = d.state()?;
    let c = s.regions.counts.context("no extent counts")?;
    let held = u32::try_from(s.held(0).len()).unwrap_or(u32::MAX);
    Ok(c.extents_supported
        .saturating_sub(c.extents_available)
        .saturating_sub(held))
}

/// Leaves the device empty for the next test: the host rejects every pending add (one at a
/// time, while some is pending: QEMU crashes on a response with none), then everything host 0
/// holds is released (forced) and the host gives it up.
fn clear(d: &Dcd, host: &mut Host) -> Result<()> {
    for _ in 0..=QEMU_EXTENTS {
        if pending(d)? == 0 {
            break;
        }
        host.reject()?;
    }
    ensure!(
        pending(d)? == 0,
        "adds still pending after rejecting {QEMU_EXTENTS}"
    );
    let held = d.held()?;
    if held.is_empty() {
        return Ok(());
    }
    dcd_json(d, "release", &["--host", "0", "--all", "--forced", "--yes"])?;
    host.release(&held)?;
    ensure!(d.held()?.is_empty(), "host 0 still holds {:?}", d.held()?);
    Ok(())
}

pub fn read(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let i = dcd_json(&d, "info", &[])?;
    ensure!(
        i["hosts"] == 1
            && i["regions"] == 2
            && i["selection_policies"] == serde_json::json!(["prescriptive"])
            && i["removal_policies"] == serde_json::json!(["prescriptive"])
            && i["total_capacity"] == 2 * REGION_LEN
            && i["block_sizes"][1]["block_sizes"] == serde_json::json!([BLOCK]),
        "dcd info: {i}"
    );
    let r = dcd_json(&d, "regions", &[])?;
    let regions = r["dc_regions"].as_array().context("no dc_regions")?;
    ensure!(regions.len() == 2, "dcd regions: {r}");
    for (k, base) in [(0, REGION0), (1, REGION1)] {
        let g = &regions[k];
        ensure!(
            g["base"] == base
                && g["length"] == REGION_LEN
                && g["block_size"] == BLOCK
                && g["free"] == REGION_LEN,
            "region {k}: {g}"
        );
    }
    ensure!(
        r["extents_supported"] == QEMU_EXTENTS && r["extents_available"] == QEMU_EXTENTS,
        "dcd regions: {r}"
    );
    let x = dcd_json(&d, "extents", &[])?;
    ensure!(
        x["hosts"].as_array().map(Vec::len) == Some(1)
            && x["hosts"][0]["extents"] == serde_json::json!([]),
        "dcd extents: {x}"
    );
    let text = super::cli::text(&["dcd", "regions", &d.node, "--port", &d.port.to_string()])?;
    let row = text
        .lines()
        .find(|l| l.starts_with("1 "))
        .with_context(|| format!("no region 1 in\n{text}"))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        text.contains("REGION  BASE")
            && cells.get(1) == Some(&"0x50000000")
            && cells.get(2..4) == Some(&["1", "GiB"][..]),
        "dcd regions:\n{text}"
    );
    // A type-3 device without DC regions is not a DCD.
    if let Some(p) = d.plain_port {
        let port = p.to_string();
        swcci(&["dcd", "info", &d.node, "--port", &port])?.error(
            1,
            &[
                "Get DCD Info (5600h) via port",
                "unsupported (03h)",
                "not a Dynamic Capacity Device",
            ],
        )?;
    }
    // The fabric at a glance: the DCD's regions and free capacity.
    let t = json(&["topology", &d.node])?;
    let ports = t["switches"][0]["ports"].as_array().context("no ports")?;
    let dev = ports
        .iter()
        .find(|p| p["port"] == d.port)
        .map(|p| &p["device"])
        .context("no DCD port in topology")?;
    ensure!(
        dev["dcd"]["dc_regions"][1]["free"] == REGION_LEN
            && dev["dcd"]["host_extents"][0]["bytes"] == 0,
        "topology: {dev}"
    );
    ensure!(
        ports
            .iter()
            .filter(|p| Some(p["port"].as_u64().unwrap_or(999) as u8) == d.plain_port)
            .all(|p| p["device"]["dcd"].is_null()),
        "a type-3 device without DC regions shows a DCD: {t}"
    );
    env.note(format!(
        "{} port {}: 1 host, 2 DC regions of 1 GiB at {REGION0:#x} and {REGION1:#x}, 2 MiB \
         blocks, prescriptive only, 512 extents",
        d.node, d.port
    ));
    Ok(Outcome::Pass)
}

pub fn configure(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let v = dcd_json(
        &d,
        "configure",
        &["--region", "1", "--block-size", "2M", "--yes"],
    )?;
    ensure!(v["block_size"] == BLOCK && v["sanitize"] == false, "{v}");
    dcd_fails(
        &d,
        "configure",
        &["--region", "1", "--block-size", "2M"],
        2,
        &["would set region 1's block size to 2 MiB", "--yes"],
    )?;
    for (args, words) in [
        (
            ["--region", "1", "--block-size", "4M"],
            &["not sent", "block size 4 MiB: region 1 supports 2 MiB"][..],
        ),
        (
            ["--region", "1", "--block-size", "3M"],
            &["not sent", "power of two"][..],
        ),
        // QEMU divides by zero for this region id: refused before anything is sent.
        (
            ["--region", "2", "--block-size", "2M"],
            &["not sent", "region 2: the device has 2 DC region(s)"][..],
        ),
    ] {
        let mut a = args.to_vec();
        a.push("--yes");
        dcd_fails(&d, "configure", &a, 2, words)?;
    }
    dcd_fails(
        &d,
        "configure",
        &[
            "--region",
            "0",
            "--block-size",
            "2M",
            "--sanitize-on-release",
            "on",
            "--yes",
        ],
        2,
        &["region 0: its Sanitize on Release setting cannot be changed"],
    )?;
    // What QEMU itself answers when asked anyway.
    let dev = d.open()?;
    let cci = dev.on(Target::Port(d.port));
    let device_says = |cfg: SetRegionConfig| -> Result<String> {
        match cci.set_dc_region(&cfg) {
            Ok(rc) => bail!("Set DC Region Configuration {cfg:?}: {rc}"),
            Err(e) => Ok(PoolError::failed(e).to_string()),
        }
    };
    let e = device_says(SetRegionConfig {
        region: 1,
        block_size: 4 * MIB,
        sanitize_on_release: false,
    })?;
    ensure!(
        e.contains("invalid input (02h): the device refused the block size"),
        "{e}"
    );
    let e = device_says(SetRegionConfig {
        region: 0,
        block_size: BLOCK,
        sanitize_on_release: true,
    })?;
    ensure!(
        e.contains("unsupported (03h): the device cannot reconfigure the region"),
        "{e}"
    );
    env.note("Set DC Region Configuration: same block size accepted; 4M, 3M, region 2 and a sanitize change refused before sending; QEMU answers 02h and 03h when asked");
    Ok(Outcome::Pass)
}

pub fn add_accept_release(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let mut host = host!(&d);
    clear(&d, &mut host)?;
    // Some capacity, chosen by swcci from the free ranges: pending until the host accepts.
    let v = dcd_json(
        &d,
        "add",
        &["--host", "0", "--region", "0", "--size", "8M", "--yes"],
    )?;
    ensure!(
        v["policy"] == "prescriptive" && listed(&v) == [(REGION0, 8 * MIB)] && v["commands"] == 1,
        "dcd add: {v}"
    );
    ensure!(
        v["state"].as_str().unwrap_or("").starts_with("pending"),
        "dcd add: {v}"
    );
    ensure!(d.held()?.is_empty(), "listed before the host accepted it");
    ensure!(
        d.available()? == QEMU_EXTENTS - 1,
        "the pending extent is not tracked"
    );
    host.accept(&[(REGION0, 8 * MIB)])?;
    ensure!(
        d.held()? == [(REGION0, 8 * MIB)],
        "after the host accepted: {:?}",
        d.held()?
    );
    let r = dcd_json(&d, "regions", &[])?;
    ensure!(
        r["dc_regions"][0]["held"] == 8 * MIB && r["dc_regions"][0]["free"] == REGION_LEN - 8 * MIB,
        "dcd regions: {r}"
    );
    // Named extents in region 1 (its region from the extents); the host accepts only the
    // first: the rest of the add is dropped.
    let v = dcd_json(
        &d,
        "add",
        &[
            "--host",
            "0",
            "--extent",
            "0x50000000:2M",
            "--extent",
            "0x50400000:4M",
            "--yes",
        ],
    )?;
    ensure!(
        listed(&v) == [(REGION1, 2 * MIB), (REGION1 + 4 * MIB, 4 * MIB)],
        "{v}"
    );
    host.accept(&[(REGION1, 2 * MIB)])?;
    ensure!(
        d.held()? == [(REGION0, 8 * MIB), (REGION1, 2 * MIB)],
        "after a partial acceptance: {:?}",
        d.held()?
    );
    ensure!(
        d.available()? == QEMU_EXTENTS - 2,
        "the dropped extent is still tracked"
    );
    // The view of the fabric, in JSON, text and DOT.
    let t = json(&["topology", &d.node])?;
    let dev = t["switches"][0]["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["port"] == d.port))
        .map(|p| p["device"]["dcd"].clone())
        .context("no DCD in topology")?;
    ensure!(
        dev["host_extents"][0]["bytes"] == 10 * MIB
            && dev["dc_regions"][0]["free"] == REGION_LEN - 8 * MIB,
        "{dev}"
    );
    let tree = super::cli::text(&["topology", &d.node])?;
    ensure!(
        tree.contains("DC region 0: 1 GiB at 0x10000000, block 2 MiB, 1016 MiB free")
            && tree.contains("host 0: 2 extent(s), 10 MiB: 0x10000000 8 MiB, 0x50000000 2 MiB"),
        "topology:\n{tree}"
    );
    let dot = super::cli::text(&["topology", "--dot", &d.node])?;
    ensure!(
        dot.contains("DCD: 2038 MiB free of 2 GiB\\nhost 0: 10 MiB in 2 extent(s)"),
        "{dot}"
    );
    // A region that holds capacity cannot be reconfigured.
    dcd_fails(
        &d,
        "configure",
        &["--region", "0", "--block-size", "2M", "--yes"],
        1,
        &["unsupported (03h)", "it holds extents"],
    )?;
    // Release part of an extent: still held until the host gives it up.
    let v = dcd_json(
        &d,
        "release",
        &["--host", "0", "--extent", "0x10000000:2M", "--yes"],
    )?;
    ensure!(
        v["state"].as_str().unwrap_or("").starts_with("releasing"),
        "{v}"
    );
    ensure!(d.held()?.len() == 2, "released before the host gave it up");
    host.release(&[(REGION0, 2 * MIB)])?;
    ensure!(
        d.held()? == [(REGION0 + 2 * MIB, 6 * MIB), (REGION1, 2 * MIB)],
        "after the host's release: {:?}",
        d.held()?
    );
    // Forced removal: QEMU 11.1 takes it like any release (it only skips the check against
    // pending adds); the capacity goes when the host releases it.
    dcd_json(
        &d,
        "release",
        &[
            "--host",
            "0",
            "--extent",
            "0x50000000:2M",
            "--forced",
            "--yes",
        ],
    )?;
    ensure!(
        d.held()?.len() == 2,
        "QEMU dropped force-released capacity by itself"
    );
    host.release(&[(REGION1, 2 * MIB)])?;
    ensure!(
        d.held()? == [(REGION0 + 2 * MIB, 6 * MIB)],
        "{:?}",
        d.held()?
    );
    // Everything the host holds.
    let v = dcd_json(&d, "release", &["--host", "0", "--all", "--yes"])?;
    ensure!(listed(&v) == [(REGION0 + 2 * MIB, 6 * MIB)], "{v}");
    host.release(&[(REGION0 + 2 * MIB, 6 * MIB)])?;
    ensure!(
        d.held()?.is_empty() && d.available()? == QEMU_EXTENTS,
        "{:?}",
        d.held()?
    );
    env.note(format!(
        "the host's responses on {}: accept, accept part, release; forced release waits for \
         the host in QEMU 11.1",
        host.addr
    ));
    Ok(Outcome::Pass)
}

/// The device's answer to an add sent as given, as the CLI would print it.
fn add_raw(
    cci: &Cci<'_>,
    policy: SelectionPolicy,
    extents: &[Extent],
    length: u64,
) -> Result<String> {
    let req = AddRequest {
        host_id: 0,
        policy,
        region: 0,
        length,
        tag: Uuid([0; 16]),
    };
    match cci.dc_add(&req, extents) {
        Ok(rc) => bail!("Initiate Dynamic Capacity Add {policy} {extents:?} succeeded: {rc}"),
        Err(e) => Ok(PoolError::failed(e).to_string()),
    }
}

pub fn add_errors(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let mut host = host!(&d);
    clear(&d, &mut host)?;
    let dev = d.open()?;
    let cci = dev.on(Target::Port(d.port));
    let ext = |mib: u64, len: u64| Extent::new(mib * MIB, len * MIB);
    let add = ["--host", "0", "--yes"];
    let with = |rest: &[&'static str]| -> Vec<&'static str> {
        let mut v = add.to_vec();
        v.extend_from_slice(rest);
        v
    };
    // More than is free.
    dcd_fails(
        &d,
        "add",
        &with(&["--region", "0", "--size", "2G"]),
        2,
        &["not sent", "region 0 has 1 GiB free", "2 GiB asked for"],
    )?;
    // Overlapping extents.
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "256M:4M", "--extent", "258M:2M"]),
        2,
        &["extents 0 and 1 overlap"],
    )?;
    let e = add_raw(
        &cci,
        SelectionPolicy::Prescriptive,
        &[ext(256, 4), ext(258, 2)],
        0,
    )?;
    ensure!(
        e.contains("invalid extent list (1eh): the extents overlap"),
        "{e}"
    );
    // Misaligned.
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "257M:2M"]),
        2,
        &["start DPA 0x10100000 is not on a block boundary of its region (block size 2 MiB)"],
    )?;
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "256M:3M"]),
        2,
        &["length 3 MiB is not a multiple of its region's block size 2 MiB"],
    )?;
    let e = add_raw(&cci, SelectionPolicy::Prescriptive, &[ext(257, 2)], 0)?;
    ensure!(e.contains("invalid extent list (1eh)"), "{e}");
    // Across two regions, and past the last one.
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "1278M:4M"]),
        2,
        &["does not lie inside one DC region"],
    )?;
    for x in [ext(1278, 4), ext(2400, 2)] {
        let e = add_raw(&cci, SelectionPolicy::Prescriptive, &[x], 0)?;
        ensure!(
            e.contains("invalid physical address (0fh): an extent lies outside"),
            "{e}"
        );
    }
    // A region the device does not have; the extents in another region than the one named.
    dcd_fails(
        &d,
        "add",
        &with(&["--region", "2", "--size", "2M"]),
        2,
        &["region 2: the device has 2 DC region(s)"],
    )?;
    dcd_fails(
        &d,
        "add",
        &with(&["--region", "0", "--extent", "0x50000000:2M"]),
        2,
        &["extent 0 lies in region 1, not in region 0"],
    )?;
    let req = HostRegionRequest {
        host_id: 0,
        region_count: 8,
        start_region: 2,
    };
    let r = cci.raw(opcode::GET_HOST_DC_REGION_CONFIG, &req.encode(), 2048)?;
    ensure!(
        r.rc() == ReturnCode::InvalidInput,
        "start region 2: {}",
        r.rc()
    );
    // A host that does not exist.
    dcd_fails(
        &d,
        "add",
        &["--host", "1", "--region", "0", "--size", "2M", "--yes"],
        2,
        &["host 1: the device serves 1 host(s)"],
    )?;
    dcd_fails(
        &d,
        "extents",
        &["--host", "1"],
        2,
        &["host 1: the device serves 1 host(s)"],
    )?;
    let e = PoolError::failed(cci.dc_extents(1).unwrap_err()).to_string();
    ensure!(
        e.contains("invalid input (02h): a host the device does not serve"),
        "{e}"
    );
    // QEMU 11.1 checks the host id of 5603h only: 5601h and 5604h take any host as host 0,
    // which is why swcci checks it against Get DCD Info first.
    ensure!(cci.dc_regions(1)?.regions.len() == 2, "5601h for host 1");
    let req = AddRequest {
        host_id: 1,
        policy: SelectionPolicy::Prescriptive,
        region: 0,
        length: 0,
        tag: Uuid([0; 16]),
    };
    let rc = cci.dc_add(&req, &[ext(512, 2)])?;
    ensure!(
        rc.is_success() && pending(&d)? == 1,
        "5604h for host 1: {rc}"
    );
    host.reject()?;
    // Policies QEMU does not implement: refused by its Get DCD Info, and by the device.
    for p in ["free", "contiguous"] {
        dcd_fails(
            &d,
            "add",
            &with(&["--region", "0", "--size", "2M", "--policy", p]),
            2,
            &[&format!(
                "selection policy {p}: the device supports prescriptive"
            )],
        )?;
    }
    for p in [
        SelectionPolicy::Free,
        SelectionPolicy::Contiguous,
        SelectionPolicy::EnableSharedAccess,
    ] {
        let e = add_raw(&cci, p, &[], 2 * MIB)?;
        ensure!(
            e.contains("invalid input (02h)")
                && e.contains("QEMU 11.1 implements only prescriptive"),
            "{p}: {e}"
        );
    }
    // Overlapping capacity still pending for the host: only the device knows.
    dcd_json(&d, "add", &with(&["--extent", "300M:2M"]))?;
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "300M:2M"]),
        1,
        &["invalid extent list (1eh)", "still pending"],
    )?;
    host.reject()?;
    ensure!(
        d.available()? == QEMU_EXTENTS && d.held()?.is_empty(),
        "the rejected add is tracked"
    );
    // Overlapping capacity the host holds: refused before sending.
    dcd_json(&d, "add", &with(&["--extent", "310M:2M"]))?;
    host.accept(&[(310 * MIB, 2 * MIB)])?;
    dcd_fails(
        &d,
        "add",
        &with(&["--extent", "308M:4M"]),
        2,
        &["extent 0 overlaps capacity host 0 already holds"],
    )?;
    clear(&d, &mut host)?;
    env.note("refused before sending: more than free, overlaps, misalignment, across regions, region 2, host 1, free and contiguous; QEMU's own answers: 1Eh, 0Fh, 02h");
    Ok(Outcome::Pass)
}

pub fn release_errors(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let mut host = host!(&d);
    clear(&d, &mut host)?;
    let dev = d.open()?;
    let cci = dev.on(Target::Port(d.port));
    let release_raw = |policy, forced, x: &[Extent]| -> Result<String> {
        let req = ReleaseRequest {
            host_id: 0,
            flags: ReleaseFlags {
                policy,
                forced,
                sanitize: false,
            },
            length: 2 * MIB,
            tag: Uuid([0x5a; 16]),
        };
        match cci.dc_release(&req, x) {
            Ok(rc) => bail!("Initiate Dynamic Capacity Release {policy} {x:?}: {rc}"),
            Err(e) => Ok(PoolError::failed(e).to_string()),
        }
    };
    let x = [Extent::new(400 * MIB, 2 * MIB)];
    // Nothing held.
    dcd_fails(
        &d,
        "release",
        &["--host", "0", "--all", "--yes"],
        2,
        &["host 0 holds no capacity"],
    )?;
    dcd_fails(
        &d,
        "release",
        &["--host", "0", "--extent", "400M:2M", "--yes"],
        2,
        &["extent 0 is not capacity host 0 holds"],
    )?;
    for forced in [false, true] {
        let e = release_raw(RemovalPolicy::Prescriptive, forced, &x)?;
        ensure!(
            e.contains(
                "invalid physical address (0fh): the extents are not capacity the host holds"
            ),
            "{e}"
        );
    }
    // Pending, not yet accepted: not the host's yet, forced or not.
    dcd_json(&d, "add", &["--host", "0", "--extent", "400M:2M", "--yes"])?;
    for forced in [false, true] {
        let e = release_raw(RemovalPolicy::Prescriptive, forced, &x)?;
        ensure!(e.contains("(0fh)"), "forced {forced}: {e}");
    }
    host.accept(&[(400 * MIB, 2 * MIB)])?;
    // Tag-based removal: QEMU supports only prescriptive.
    dcd_fails(
        &d,
        "release",
        &[
            "--host",
            "0",
            "--tag",
            "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a",
            "--yes",
        ],
        2,
        &["removal policy tag-based: the device supports prescriptive"],
    )?;
    let e = release_raw(RemovalPolicy::TagBased, false, &[])?;
    ensure!(
        e.contains("invalid input (02h)") && e.contains("only prescriptive"),
        "{e}"
    );
    // Misaligned, or more than held.
    dcd_fails(
        &d,
        "release",
        &["--host", "0", "--extent", "401M:1M", "--yes"],
        2,
        &["not on a block boundary of its region (block size 2 MiB)"],
    )?;
    let e = release_raw(
        RemovalPolicy::Prescriptive,
        false,
        &[Extent::new(401 * MIB, MIB)],
    )?;
    ensure!(e.contains("invalid extent list (1eh)"), "{e}");
    dcd_fails(
        &d,
        "release",
        &["--host", "0", "--extent", "400M:4M", "--yes"],
        2,
        &["extent 0 is not capacity host 0 holds"],
    )?;
    dcd_fails(
        &d,
        "release",
        &["--host", "1", "--all", "--yes"],
        2,
        &["host 1: the device serves 1 host(s)"],
    )?;
    ensure!(
        d.held()? == [(400 * MIB, 2 * MIB)],
        "a refused release changed the extents"
    );
    clear(&d, &mut host)?;
    env.note("release refused: nothing held, pending capacity (0Fh forced or not), tag-based (02h), misaligned (1Eh), more than held, host 1");
    Ok(Outcome::Pass)
}

pub fn resources_exhausted(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let mut host = host!(&d);
    clear(&d, &mut host)?;
    let dev = d.open()?;
    let cci = dev.on(Target::Port(d.port));
    // Every block of region 0 as its own extent: as many extents as QEMU tracks, in as many
    // commands as the payload needs.
    let x: Vec<Extent> = (0..u64::from(QEMU_EXTENTS))
        .map(|i| Extent::new(REGION0 + i * BLOCK, BLOCK))
        .collect();
    let spec = AddSpec {
        host: 0,
        region: Some(0),
        extents: x,
        ..AddSpec::default()
    };
    let r = dcd::add(&cci, &spec).map_err(|e| anyhow!("{e}"))?;
    ensure!(
        r.commands == 11 && r.extents.len() == 512,
        "{} commands",
        r.commands
    );
    ensure!(d.available()? == 0, "available {}", d.available()?);
    dcd_fails(
        &d,
        "add",
        &["--host", "0", "--extent", "0x50000000:2M", "--yes"],
        2,
        &["1 extents: the device tracks 0 more"],
    )?;
    let e = add_raw(
        &cci,
        SelectionPolicy::Prescriptive,
        &[Extent::new(REGION1, BLOCK)],
        0,
    )?;
    ensure!(
        e.contains("resources exhausted (1dh): the device cannot track more extents"),
        "{e}"
    );
    // With every extent tracked, QEMU 11.1 cannot let the host accept any: it counts the
    // accepted extents once more before it drops the pending add (1Dh). The host rejects the
    // first add and accepts the others: 462 extents, read back in pages of 50 (Get DC Region
    // Extent Lists through one tunnel of a 2 KiB mailbox).
    let per = swcci::proto::payload::dcd::extents_per_request(cci.payload_size()?);
    let groups: Vec<Vec<(u64, u64)>> = r
        .extents
        .chunks(per)
        .map(|c| c.iter().map(|e| (e.start_dpa, e.length)).collect())
        .collect();
    let (first, rest) = groups.split_first().context("no groups")?;
    let rc = host.update(opcode::ADD_DC_RESPONSE, first)?;
    ensure!(
        rc == ReturnCode::ResourcesExhausted,
        "the host accepting an add with every extent tracked: {rc}"
    );
    host.reject()?;
    for g in rest {
        host.accept(g)?;
    }
    let accepted: Vec<(u64, u64)> = rest.iter().flatten().copied().collect();
    let v = dcd_json(&d, "extents", &["--host", "0"])?;
    let h = &v["hosts"][0];
    ensure!(
        listed(h) == accepted && h["bytes"] == accepted.len() as u64 * BLOCK,
        "{} extents listed, {} accepted",
        listed(h).len(),
        accepted.len()
    );
    ensure!(
        d.available()? == QEMU_EXTENTS - accepted.len() as u32,
        "the rejected add ({} extents) is still tracked",
        first.len()
    );
    // Everything back: the release in as many commands, the host's in pieces.
    let v = dcd_json(&d, "release", &["--host", "0", "--all", "--yes"])?;
    ensure!(
        v["commands"] == accepted.len().div_ceil(per) && v["extent_count"] == accepted.len(),
        "{v}"
    );
    for c in accepted.chunks(per) {
        host.release(c)?;
    }
    ensure!(
        d.held()?.is_empty() && d.available()? == QEMU_EXTENTS,
        "after releasing everything"
    );
    env.note(format!(
        "512 extents added in 11 commands; the next refused before sending and by QEMU (1Dh); \
         the host's acceptance refused too (1Dh) until it rejected an add; {} accepted and \
         listed in pages of {}, released in {} commands",
        accepted.len(),
        swcci::proto::payload::dcd::extents_per_list(cci.payload_size()?),
        accepted.len().div_ceil(per)
    ));
    Ok(Outcome::Pass)
}

/// The kernel's side: raw commands need CAP_SYS_RAWIO, the state-changing ones taint with
/// their name in the log line (the tunnelled command's), fwctl admits them at the scope their
/// effects need.
pub fn driver_policy(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let dev = d.open()?;
    let addr = env.addr_of(&dev)?;
    drop(dev);
    let info = fwctl::tunnel_input(d.port, opcode::GET_DCD_INFO, &[])?;
    // A misaligned add: QEMU refuses it (1Eh), but it reaches the device, so it taints.
    let bad = {
        let mut b = vec![0u8; 0x48];
        let req = AddRequest {
            host_id: 0,
            policy: SelectionPolicy::Prescriptive,
            region: 0,
            length: 0,
            tag: Uuid([0; 16]),
        };
        let n = req
            .encode(&mut b, &[Extent::new(REGION0 + MIB, BLOCK)])
            .map_err(|e| anyhow!("{e}"))?;
        fwctl::tunnel_input(d.port, opcode::INITIATE_DC_ADD, &b[..n])?
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Without CAP_SYS_RAWIO: EPERM, read-only or not.
    for input in [&info, &bad] {
        let out = Command::new("/proc/self/exe")
            .args(["--helper", "no-rawio", &d.node, "5300", &hex(input)])
            .output()
            .context("run the no-rawio helper")?;
        ensure!(
            out.status.success(),
            "without CAP_SYS_RAWIO: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // A fresh binding: the first tainting command of the device is logged.
    env.unbind(&addr)?;
    env.bind(&addr)?;
    env.wait_bound()?;
    env.kmsg();
    let dev = d.open()?;
    let r = dev.raw(opcode::TUNNEL, &bad, 2048)?;
    ensure!(r.rc.is_success(), "the tunnel: {}", r.rc);
    let log = env.kmsg();
    let line = log
        .iter()
        .find(|l| l.contains("tainting kernel"))
        .with_context(|| format!("no taint line in {log:?}"))?;
    ensure!(
        line.contains(
            "raw command 5300h (Tunnel Management Command, tunnelled 5604h Initiate Dynamic \
             Capacity Add): changes state by the specification"
        ),
        "taint line: {line}"
    );
    ensure!(env.tainted()? & TAINT_USER != 0, "not tainted");
    env.note(line.clone());
    // fwctl: the read at the lowest scope, the add only at the full-write scope.
    if !Path::new("/sys/class/fwctl").exists() {
        return Ok(Outcome::Pass);
    }
    let serial = env
        .topo
        .switches
        .iter()
        .find(|s| s.type3.iter().any(|t| t.serial == d.serial))
        .map(|s| s.serial)
        .context("no switch")?;
    let (fdev, _) = fwctl::fwctl_of_switch(env, serial)?;
    let r = fwctl::rpc(&fdev, fwctl::CONFIGURATION, opcode::TUNNEL, &info, false)?;
    let out = fwctl::tunnelled_ok("tunnelled Get DCD Info at FWCTL_RPC_CONFIGURATION", &r)?;
    let i = DcdInfo::decode(&out).map_err(|e| anyhow!("{e}"))?;
    ensure!(i.num_regions == 2, "Get DCD Info through fwctl: {i:?}");
    let r = fwctl::rpc(&fdev, fwctl::DEBUG_WRITE, opcode::TUNNEL, &bad, false)?;
    fwctl::expect_refused(
        "tunnelled Initiate DC Add at FWCTL_RPC_DEBUG_WRITE",
        &r,
        libc::EINVAL,
    )?;
    let r = fwctl::rpc(&fdev, fwctl::DEBUG_WRITE_FULL, opcode::TUNNEL, &bad, true)?;
    fwctl::expect_refused(
        "tunnelled Initiate DC Add without CAP_SYS_RAWIO",
        &r,
        libc::EPERM,
    )?;
    let r = fwctl::rpc(&fdev, fwctl::DEBUG_WRITE_FULL, opcode::TUNNEL, &bad, false)?;
    fwctl::expect_success(
        "tunnelled Initiate DC Add at FWCTL_RPC_DEBUG_WRITE_FULL",
        &r,
    )?;
    env.note(format!(
        "{fdev}: Get DCD Info at CONFIGURATION; Initiate DC Add only at DEBUG_WRITE_FULL"
    ));
    Ok(Outcome::Pass)
}

pub fn ld_alloc_emulated(env: &mut Env) -> Result<Outcome> {
    let emus = devices(env)?;
    let mut done = 0;
    for e in emus.iter().filter(|e| {
        e.spec.fabric.as_ref().is_some_and(|f| {
            f.ports
                .iter()
                .any(|p| p.device.as_ref().is_some_and(|d| d.kind == "mld"))
        })
    }) {
        let fabric = e.spec.fabric.as_ref().context("no fabric")?;
        let port = fabric
            .ports
            .iter()
            .find(|p| p.device.as_ref().is_some_and(|d| d.kind == "mld"))
            .map(|p| p.port)
            .context("no MLD")?;
        let node = e.path.display().to_string();
        let p = port.to_string();
        let show = || json(&["ld", "show", &node, "--port", &p]);
        let ranges = |v: &Value| -> Vec<(u64, u64)> {
            v["lds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| Some((l["range1"].as_u64()?, l["range2"].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let v = show()?;
        ensure!(
            v["memory_size"] == 2u64 << 30 && v["ld_count"] == 2 && ranges(&v) == [(4, 0), (4, 0)],
            "{}: ld show: {v}",
            e.label()
        );
        // Shrink LD 1; grow LD 0 into what it gave up; read back, and the device's own view.
        let a = json(&[
            "ld", "alloc", &node, "1", "--port", &p, "--range1", "512M", "--yes",
        ])?;
        ensure!(
            a["range1"] == 512 * MIB && a["range1_before"] == 1024 * MIB,
            "{a}"
        );
        let a = json(&[
            "ld", "alloc", &node, "0", "--port", &p, "--range1", "1G", "--range2", "512M", "--yes",
        ])?;
        ensure!(a["allocated"] == 2u64 << 30, "{a}");
        ensure!(
            ranges(&show()?) == [(4, 2), (2, 0)],
            "{}: read back",
            e.label()
        );
        let f: Value =
            serde_json::from_str(&e.ctl()?.cmd("get fabric")?).context("the emulator's fabric")?;
        let lds = &f["ports"][usize::from(port)]["device"]["lds"];
        ensure!(
            lds[0]["range2"] == 2 && lds[1]["range1"] == 2,
            "the emulator holds {lds}"
        );
        // Beyond the device: refused before sending, and by the device; nothing changes.
        let nodes = [node.as_str(), "--port", p.as_str()];
        let fails = |rest: &[&str], words: &[&str]| -> Result<String> {
            let mut a = vec!["ld", "alloc"];
            a.push(nodes[0]);
            a.extend_from_slice(rest);
            a.extend_from_slice(&nodes[1..]);
            swcci(&a)?.error(2, words)
        };
        fails(
            &["1", "--range1", "1G", "--yes"],
            &[
                "not sent",
                "the LDs would hold 2560 MiB in all, more than the device's 2 GiB",
            ],
        )?;
        fails(
            &["2", "--range1", "256M", "--yes"],
            &["LDs 2 to 2: the device has 2 LD(s)"],
        )?;
        fails(
            &["1", "--range1", "100M", "--yes"],
            &["not a multiple of the device's allocation granularity"],
        )?;
        let dev = e.open()?;
        let cci = dev.on(Target::Port(port));
        let err = cci
            .set_ld_allocations(
                1,
                &[LdAllocation {
                    range1: 4,
                    range2: 0,
                }],
            )
            .map_err(|e| PoolError::failed(e).to_string());
        ensure!(
            err.as_ref().is_err_and(|t| t.contains("resources exhausted (1dh): the allocations, with the other LDs' as they are, exceed the device's memory")),
            "{err:?}"
        );
        let err = cci
            .set_ld_allocations(
                2,
                &[LdAllocation {
                    range1: 1,
                    range2: 0,
                }],
            )
            .map_err(|e| PoolError::failed(e).to_string());
        ensure!(
            err.as_ref()
                .is_err_and(|t| t.contains("invalid input (02h)")),
            "{err:?}"
        );
        ensure!(
            ranges(&show()?) == [(4, 2), (2, 0)],
            "a refused allocation changed them"
        );
        // The allocations as they were.
        json(&[
            "ld", "alloc", &node, "0", "--port", &p, "--range1", "1G", "--yes",
        ])?;
        json(&[
            "ld", "alloc", &node, "1", "--port", &p, "--range1", "1G", "--yes",
        ])?;
        let m = Mld::read(&cci)?;
        ensure!(m.allocated() == Some(2 << 30), "{m:?}");
        done += 1;
    }
    ensure!(done > 0, "no emulated MLD in this scenario");
    env.note(format!(
        "{done} emulated MLD(s): LD allocations set, read back, refused beyond the device"
    ));
    Ok(Outcome::Pass)
}

/// `bench NAME key=value ...` records for tools/bench.sh.
fn record(env: &mut Env, name: &str, fields: &[(&str, String)]) {
    let kv: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.note(format!("bench {name} {}", kv.join(" ")));
}

/// The median of `v` (which is not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Microseconds `f` takes.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Add then release of 1, 16 and 256 extents through the tunnel, each part timed per
/// extent: the fabric manager's Initiate Dynamic Capacity Add (5604h) and Release (5605h)
/// through the driver and the switch, and the host's Add Dynamic Capacity Response (4802h)
/// and Release Dynamic Capacity (4803h) on the device's own mailbox from userspace. Against
/// them, in the same boot: the per-command cost, Get DCD Info (5600h) through the same
/// tunnel (and Identify). Medians over rounds (more rounds for fewer extents, one warm-up
/// round first); nothing is asserted about speed.
pub fn bench(env: &mut Env) -> Result<Outcome> {
    let d = Dcd::find(env)?;
    let mut host = host!(&d);
    clear(&d, &mut host)?;
    let dev = d.open()?;
    let cci = dev.on(Target::Port(d.port));
    let mut info = Vec::new();
    let mut ident = Vec::new();
    for i in 0..520 {
        let a = timed(|| cci.dcd_info().map(|_| ()).map_err(Into::into))?;
        let b = timed(|| cci.identify().map(|_| ()).map_err(Into::into))?;
        if i >= 20 {
            info.push(a);
            ident.push(b);
        }
    }
    let per_cmd = median(info);
    record(
        env,
        "dcd.command",
        &[
            ("get_dcd_info_us", format!("{per_cmd:.1}")),
            ("identify_us", format!("{:.1}", median(ident))),
        ],
    );
    let per = swcci::proto::payload::dcd::extents_per_request(cci.payload_size()?);
    let req = AddRequest {
        host_id: 0,
        policy: SelectionPolicy::Prescriptive,
        region: 0,
        length: 0,
        tag: Uuid([0; 16]),
    };
    let rel = ReleaseRequest {
        host_id: 0,
        flags: ReleaseFlags {
            policy: RemovalPolicy::Prescriptive,
            forced: false,
            sanitize: false,
        },
        length: 0,
        tag: Uuid([0; 16]),
    };
    for n in [1usize, 16, 256] {
        let x: Vec<Extent> = (0..n as u64)
            .map(|i| Extent::new(REGION0 + 2 * i * BLOCK, BLOCK))
            .collect();
        let pairs: Vec<(u64, u64)> = x.iter().map(|e| (e.start_dpa, e.length)).collect();
        let chunks: Vec<&[Extent]> = x.chunks(per).collect();
        let rounds = (256 / n).clamp(4, 64);
        let (mut add, mut accept, mut release, mut gone) = (vec![], vec![], vec![], vec![]);
        for round in 0..=rounds {
            let a = timed(|| {
                for c in &chunks {
                    let rc = cci.dc_add(&req, c)?;
                    ensure!(rc.is_success(), "add: {rc}");
                }
                Ok(())
            })?;
            let b = timed(|| {
                for c in pairs.chunks(per) {
                    host.accept_unchecked(c)?;
                }
                Ok(())
            })?;
            let r = timed(|| {
                for c in &chunks {
                    let rc = cci.dc_release(&rel, c)?;
                    ensure!(rc.is_success(), "release: {rc}");
                }
                Ok(())
            })?;
            let g = timed(|| {
                for c in pairs.chunks(per) {
                    host.release(c)?;
                }
                Ok(())
            })?;
            if round > 0 {
                let n = n as f64;
                add.push(a / n);
                accept.push(b / n);
                release.push(r / n);
                gone.push(g / n);
            }
        }
        ensure!(d.held()?.is_empty(), "{n} extents left after the rounds");
        let (add, release) = (median(add), median(release));
        record(
            env,
            &format!("dcd.extents{n}"),
            &[
                ("rounds", rounds.to_string()),
                ("commands", chunks.len().to_string()),
                ("add_us_per_extent", format!("{add:.2}")),
                ("accept_us_per_extent", format!("{:.2}", median(accept))),
                ("release_us_per_extent", format!("{release:.2}")),
                ("host_release_us_per_extent", format!("{:.2}", median(gone))),
                (
                    "fm_per_extent_over_command",
                    format!("{:.3}", (add + release) / per_cmd),
                ),
            ],
        );
    }
    Ok(Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_documents() {
        let v = serde_json::json!({"extents": [{"start": 5, "length": 2}, {"start": 9}]});
        assert_eq!(listed(&v), [(5, 2)]);
        assert!(listed(&serde_json::json!({})).is_empty());
    }
}
