// SPDX-License-Identifier: GPL-2.0

//! `swcci dcd`: Dynamic Capacity from the fabric manager (swcci-lib's `dcd` module,
//! Documentation/pooling.rst): `info`, `regions`, `extents` read the device; `configure`,
//! `add` and `release` change it and send nothing without `--yes`.

use crate::args::dcd::{
    AddArgs, ConfigureArgs, DcdArgs, DcdCommand, OnOff, PolicyArg, ReleaseArgs,
};
use crate::decode::{self, bytes_text};
use crate::error::{pool_error, CliError};
use crate::output::{join, render_record, render_table, Field, Outcome, Record};
use crate::units::hex;
use serde_json::{Map, Value};
use swcci::dcd::{
    self, AddSpec, CapacityReport, DcdState, Extent, HostExtents, PoolError, Release, ReleaseSpec,
    SelectionPolicy,
};
use swcci::proto::payload::dcd::{
    block_sizes, region_flag, DcRegion, DcdInfo, RemovalPolicy, SetRegionConfig,
};
use swcci::proto::payload::logs::Uuid;
use swcci::{command_name, Cci, Device, Target};
use swcci_proto::opcode;

type Result<T> = std::result::Result<T, CliError>;

/// What a `dcd` command printed and the errors after it (for the dispatch in main.rs).
pub fn run(args: DcdArgs, json: bool) -> Result<Outcome> {
    let stdout = match args.what {
        DcdCommand::Info(a) => {
            let d = Device::open(&a.dev)?;
            info(&d.on(a.target.target()), json)?
        }
        DcdCommand::Regions(a) => {
            let d = Device::open(&a.on.dev)?;
            regions(&d.on(a.on.target.target()), a.host, json)?
        }
        DcdCommand::Extents(a) => {
            let d = Device::open(&a.on.dev)?;
            extents(&d.on(a.on.target.target()), a.host, json)?
        }
        DcdCommand::Configure(a) => configure(&a, json)?,
        DcdCommand::Add(a) => add(&a, json)?,
        DcdCommand::Release(a) => release(&a, json)?,
    };
    Ok(Outcome {
        stdout,
        ..Outcome::default()
    })
}

/// ` via port 3` for messages (empty for the switch itself).
fn via(t: Target) -> String {
    match t {
        Target::Direct => String::new(),
        t => format!(" via {t}"),
    }
}

/// The target's fields (none for the node itself).
fn target_fields(t: Target) -> Record {
    match t {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    }
}

/// A size: `256 MiB` in text, bytes in JSON.
fn size_field(key: &'static str, n: u64) -> Field {
    Field::new(key, bytes_text(n), n)
}

/// A DPA: hex in text, a number in JSON.
fn dpa_field(key: &'static str, n: u64) -> Field {
    Field::new(key, hex(n), n)
}

/// `key : value` lines, then a table of `rows`; JSON: the record with the rows as member
/// `key` (one more member per extra list).
struct HeadRows {
    head: Record,
    lists: Vec<(&'static str, Vec<Record>, &'static str)>,
}

impl HeadRows {
    fn render(&self, json: bool) -> String {
        if json {
            let mut m = match self.head.to_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            for (key, rows, _) in &self.lists {
                m.insert(
                    (*key).into(),
                    Value::Array(rows.iter().map(Record::to_json).collect()),
                );
            }
            return format!("{:#}\n", Value::Object(m));
        }
        let mut out = render_record(&self.head);
        for (_, rows, empty) in &self.lists {
            out.push('\n');
            match rows.first() {
                Some(first) => {
                    let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
                    let cells: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
                        .collect();
                    out.push_str(&render_table(&headings, &cells));
                }
                None => {
                    out.push_str(empty);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Names of the bits set in a policy mask.
fn policy_names(mask: u16, removal: bool) -> Vec<String> {
    (0u8..16)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            if removal {
                RemovalPolicy::from_raw(b).to_string()
            } else {
                SelectionPolicy::from_raw(b).to_string()
            }
        })
        .collect()
}

/// The fields of Get DCD Info.
pub fn info_record(i: &DcdInfo) -> Record {
    let sanitize: Vec<u8> = (0..8u8).filter(|r| i.sanitize_configurable(*r)).collect();
    let total = i.total_capacity_bytes();
    Record(vec![
        Field::num("hosts", i.num_hosts),
        Field::num("regions", i.num_regions),
        Field::names(
            "selection_policies",
            policy_names(i.selection_policies, false),
        )
        .with("selection_policies_code", i.selection_policies),
        Field::names("removal_policies", policy_names(i.removal_policies, true))
            .with("removal_policies_code", i.removal_policies),
        Field::ids("sanitize_configurable", &sanitize)
            .with("sanitize_configurable_code", i.sanitize_config_mask),
        Field::new(
            "total_capacity",
            total.map_or_else(|| format!("{} × 256 MiB", i.total_capacity), bytes_text),
            total.map_or(Value::Null, Value::from),
        )
        .with("total_capacity_units", i.total_capacity),
    ])
}

/// One row per region of Get DCD Info: its supported block sizes.
fn block_size_rows(i: &DcdInfo) -> Vec<Record> {
    (0..i.num_regions.min(8))
        .map(|r| {
            let mask = i.block_size_mask(r);
            let sizes: Vec<u64> = block_sizes(mask).collect();
            Record(vec![
                Field::num("region", r),
                Field::new(
                    "block_sizes",
                    join(sizes.iter().map(|s| bytes_text(*s))),
                    sizes,
                )
                .with("block_size_mask", mask),
            ])
        })
        .collect()
}

fn info(cci: &Cci<'_>, json: bool) -> Result<String> {
    let i = cci
        .dcd_info()
        .map_err(|e| pool_error(PoolError::failed(e)))?;
    let mut head = target_fields(cci.target());
    head.extend(info_record(&i));
    Ok(HeadRows {
        head,
        lists: vec![("block_sizes", block_size_rows(&i), "no regions")],
    }
    .render(json))
}

/// One region, with what `host` holds of it (when given) and what no host holds.
pub fn region_record(s: &DcdState, host: Option<u16>, id: u8, r: &DcRegion) -> Record {
    let flags = decode::bit_names(r.flags, region_flag::NAMES);
    let mut rec = Record(vec![
        Field::num("region", id),
        dpa_field("base", r.base),
        size_field("length", r.length),
        Field::new(
            "decode_length",
            r.decode_len_bytes()
                .map_or_else(|| format!("{} × 256 MiB", r.decode_len), bytes_text),
            r.decode_len_bytes().map_or(Value::Null, Value::from),
        ),
        size_field("block_size", r.block_size),
        Field::names("flags", flags).with("flags_code", r.flags),
        Field::new(
            "sanitize",
            if r.sanitize_on_release { "on" } else { "off" },
            r.sanitize_on_release,
        ),
    ]);
    if let Some(h) = host {
        rec.push(size_field("held", s.held_in(h, id)));
    }
    rec.push(size_field("free", s.free(id)));
    rec
}

fn regions(cci: &Cci<'_>, host: u16, json: bool) -> Result<String> {
    let s = DcdState::read(cci, host).map_err(pool_error)?;
    let mut head = target_fields(cci.target());
    head.push(Field::num("host", host));
    head.push(Field::num("regions", s.regions.num_regions));
    if let Some(c) = s.regions.counts {
        head.push(Field::num("extents_supported", c.extents_supported));
        head.push(Field::num("extents_available", c.extents_available));
        head.push(Field::num("tags_supported", c.tags_supported));
        head.push(Field::num("tags_available", c.tags_available));
    }
    let rows = s
        .regions
        .regions
        .iter()
        .zip(0u8..)
        .map(|(r, id)| region_record(&s, Some(host), id, r))
        .collect();
    Ok(HeadRows {
        head,
        lists: vec![("dc_regions", rows, "no DC regions")],
    }
    .render(json))
}

/// One extent a host holds.
pub fn extent_record(s: Option<&DcdState>, host: u16, e: &Extent) -> Record {
    let region = s.and_then(|s| s.region_of(e.start_dpa, e.length));
    let tag = e.is_tagged().then(|| e.tag.to_string());
    Record(vec![
        Field::num("host", host),
        dpa_field("start", e.start_dpa),
        size_field("length", e.length),
        decode::opt_num("region", region),
        Field::new(
            "tag",
            tag.clone().unwrap_or_else(|| "-".into()),
            tag.map_or(Value::Null, Value::from),
        ),
        Field::num("shared_seq", e.shared_seq),
    ])
}

/// A host's extents as JSON: host, generation, bytes, extents.
pub fn host_json(s: &DcdState, h: &HostExtents) -> Value {
    let mut m = Map::new();
    m.insert("host".into(), h.host_id.into());
    m.insert("generation".into(), h.generation.into());
    m.insert("bytes".into(), h.bytes().into());
    m.insert(
        "extents".into(),
        Value::Array(
            h.extents
                .iter()
                .map(|e| extent_record(Some(s), h.host_id, e).to_json())
                .collect(),
        ),
    );
    Value::Object(m)
}

fn extents(cci: &Cci<'_>, host: Option<u16>, json: bool) -> Result<String> {
    let s = DcdState::read(cci, host.unwrap_or(0)).map_err(pool_error)?;
    let hosts: Vec<&HostExtents> = s
        .hosts
        .iter()
        .filter(|h| host.is_none_or(|x| x == h.host_id))
        .collect();
    if json {
        let mut m = match target_fields(cci.target()).to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert(
            "hosts".into(),
            Value::Array(hosts.iter().map(|h| host_json(&s, h)).collect()),
        );
        return Ok(format!("{:#}\n", Value::Object(m)));
    }
    let rows: Vec<Record> = hosts
        .iter()
        .flat_map(|h| {
            h.extents
                .iter()
                .map(|e| extent_record(Some(&s), h.host_id, e))
        })
        .collect();
    let mut out = String::new();
    for h in &hosts {
        out.push_str(&format!(
            "host {}: {} extent(s), {} (generation {})\n",
            h.host_id,
            h.extents.len(),
            bytes_text(h.bytes()),
            h.generation
        ));
    }
    if let Some(first) = rows.first() {
        let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
            .collect();
        out.push('\n');
        out.push_str(&render_table(&headings, &cells));
    }
    Ok(out)
}

fn configure(a: &ConfigureArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    let sanitize = a.sanitize_on_release.map(|s| s == OnOff::On);
    if !a.yes {
        return Err(CliError::Refused(format!(
            "set region {}'s block size to {}{} on {}{} ({})",
            a.region,
            bytes_text(a.block_size),
            match sanitize {
                Some(true) => " with sanitize on release",
                Some(false) => " without sanitize on release",
                None => "",
            },
            a.on.dev,
            via(target),
            command_name(opcode::SET_DC_REGION_CONFIG)
        )));
    }
    let d = Device::open(&a.on.dev)?;
    let cci = d.on(target);
    let (cfg, now): (SetRegionConfig, DcRegion) =
        dcd::configure(&cci, a.region, a.block_size, sanitize).map_err(pool_error)?;
    let mut rec = target_fields(target);
    rec.push(Field::num("region", cfg.region));
    rec.push(size_field("block_size", now.block_size));
    rec.push(Field::new(
        "sanitize",
        if now.sanitize_on_release { "on" } else { "off" },
        now.sanitize_on_release,
    ));
    rec.push(decode::rc_field(swcci::proto::rc::ReturnCode::Success));
    Ok(HeadRows {
        head: rec,
        lists: Vec::new(),
    }
    .render(json))
}

/// The result of an add or release: what was sent, one row per extent.
fn capacity_doc(r: &CapacityReport, what: &'static str, state: &str) -> HeadRows {
    let mut head = target_fields(r.target);
    head.push(Field::num("host", r.host));
    head.push(Field::new("policy", r.policy, r.policy));
    head.push(size_field("bytes", r.bytes));
    head.push(Field::num("extent_count", r.extents.len() as u64));
    head.push(Field::num("commands", r.commands as u64));
    head.push(decode::rc_field(r.rc));
    head.push(Field::new("state", state, state));
    let rows = r
        .extents
        .iter()
        .map(|e| extent_record(Some(&r.before), r.host, e))
        .collect();
    HeadRows {
        head,
        lists: vec![("extents", rows, what)],
    }
}

fn add(a: &AddArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    if !a.yes {
        let what = match (a.size, a.extent.len()) {
            (Some(s), _) => bytes_text(s),
            (None, 0) => "shared capacity".to_string(),
            (None, n) => format!("{n} extent(s)"),
        };
        let region = a
            .region
            .map_or_else(String::new, |r| format!(" of region {r}"));
        return Err(CliError::Refused(format!(
            "add {what}{region} to host {} on {}{} ({})",
            a.host,
            a.on.dev,
            via(target),
            command_name(opcode::INITIATE_DC_ADD)
        )));
    }
    let spec = AddSpec {
        host: a.host,
        region: a.region,
        policy: a.policy.map(PolicyArg::policy),
        size: a.size,
        extents: a.extent.clone(),
        tag: a.tag.unwrap_or(Uuid([0; 16])),
    };
    let d = Device::open(&a.on.dev)?;
    let r = dcd::add(&d.on(target), &spec).map_err(pool_error)?;
    let doc = capacity_doc(
        &r,
        "extents chosen by the device",
        "pending: the host accepts it with Add Dynamic Capacity Response (4802h)",
    );
    Ok(doc.render(json))
}

fn release(a: &ReleaseArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    let what = match (a.all, &a.tag) {
        (true, _) => Release::All,
        (false, Some(tag)) => Release::Tag {
            tag: *tag,
            length: a.size,
        },
        (false, None) => Release::Extents(a.extent.clone()),
    };
    if !a.yes {
        let text = match &what {
            Release::All => "everything".to_string(),
            Release::Tag { tag, .. } => format!("the capacity tagged {tag}"),
            Release::Extents(x) => format!("{} extent(s)", x.len()),
        };
        return Err(CliError::Refused(format!(
            "release {text} of host {} on {}{} ({}){}",
            a.host,
            a.on.dev,
            via(target),
            command_name(opcode::INITIATE_DC_RELEASE),
            if a.forced { ", forced" } else { "" },
        )));
    }
    let spec = ReleaseSpec {
        host: a.host,
        what,
        forced: a.forced,
        sanitize: a.sanitize,
    };
    let d = Device::open(&a.on.dev)?;
    let r = dcd::release(&d.on(target), &spec).map_err(pool_error)?;
    let state = if a.forced {
        "releasing (forced): the device need not wait for the host's Release Dynamic Capacity \
         (4803h); dcd extents shows when it is gone"
    } else {
        "releasing: the host gives the capacity up with Release Dynamic Capacity (4803h)"
    };
    Ok(capacity_doc(&r, "the capacity with the tag", state).render(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{TargetArgs, TargetDevArgs};
    use clap::Parser;
    use swcci::proto::payload::dcd::ExtentCounts;

    fn parse(args: &[&str]) -> DcdCommand {
        let mut v = vec!["swcci", "dcd"];
        v.extend_from_slice(args);
        match crate::args::Cli::try_parse_from(v).unwrap().command {
            crate::args::Command::Dcd(d) => d.what,
            c => panic!("{c:?}"),
        }
    }

    fn kind(args: &[&str]) -> clap::error::ErrorKind {
        let mut v = vec!["swcci", "dcd"];
        v.extend_from_slice(args);
        crate::args::Cli::try_parse_from(v).unwrap_err().kind()
    }

    #[test]
    fn command_lines() {
        let DcdCommand::Add(a) = parse(&[
            "add", "s", "--port", "0", "--host", "1", "--region", "0", "--size", "1G",
        ]) else {
            panic!()
        };
        assert_eq!(
            (a.host, a.region, a.size, a.yes),
            (1, Some(0), Some(1 << 30), false)
        );
        assert_eq!(a.on.target.target(), Target::Port(0));
        let DcdCommand::Add(a) = parse(&[
            "add",
            "s",
            "--port",
            "0",
            "--ld",
            "1",
            "--host",
            "0",
            "--extent",
            "0x10000000:2M",
            "--extent",
            "260M:4M",
            "--policy",
            "prescriptive",
            "-y",
        ]) else {
            panic!()
        };
        assert_eq!(a.on.target.target(), Target::PortLd(0, 1));
        assert_eq!(
            a.extent,
            [
                Extent::new(256 << 20, 2 << 20),
                Extent::new(260 << 20, 4 << 20)
            ]
        );
        assert!(a.yes && a.region.is_none());
        let DcdCommand::Release(r) = parse(&[
            "release", "s", "--port", "0", "--host", "0", "--all", "--forced", "--yes",
        ]) else {
            panic!()
        };
        assert!(r.all && r.forced && !r.sanitize);
        let DcdCommand::Configure(c) = parse(&[
            "configure",
            "s",
            "--port",
            "0",
            "--region",
            "1",
            "--block-size",
            "2M",
            "--sanitize-on-release",
            "on",
        ]) else {
            panic!()
        };
        assert_eq!((c.region, c.block_size), (1, 2 << 20));
        assert_eq!(c.sanitize_on_release, Some(OnOff::On));
        let DcdCommand::Extents(e) = parse(&["extents", "s", "--port", "3"]) else {
            panic!()
        };
        assert_eq!(e.host, None);
        use clap::error::ErrorKind as K;
        // Nothing to add; a size without a region; both size and extents.
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--size", "1G"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--size", "1G", "--extent", "0:2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0", "--size", "1.5G"]),
            K::ValueValidation
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--all", "--extent", "0:2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--all", "--size", "2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--size", "2M"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "70000", "--region", "0", "--size", "1G"]),
            K::ValueValidation
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0", "--size", "1G", "--policy", "best"]),
            K::InvalidValue
        );
    }

    #[test]
    fn changes_refuse_without_yes_before_opening_the_device() {
        let dev = "/nonexistent/swcci-node";
        let on = TargetDevArgs {
            dev: dev.into(),
            target: TargetArgs {
                port: Some(0),
                ld: None,
            },
        };
        let e = add(
            &AddArgs {
                on,
                host: 1,
                region: Some(0),
                size: Some(1 << 30),
                extent: Vec::new(),
                policy: None,
                tag: None,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "would add 1 GiB of region 0 to host 1 on /nonexistent/swcci-node via port 0 \
             (Initiate Dynamic Capacity Add (5604h)); add --yes to do it"
        );
        let on = || TargetDevArgs {
            dev: dev.into(),
            target: TargetArgs::default(),
        };
        let e = release(
            &ReleaseArgs {
                on: on(),
                host: 0,
                extent: Vec::new(),
                all: true,
                tag: None,
                size: None,
                forced: true,
                sanitize: false,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "would release everything of host 0 on /nonexistent/swcci-node (Initiate Dynamic \
             Capacity Release (5605h)), forced; add --yes to do it"
        );
        let e = configure(
            &ConfigureArgs {
                on: on(),
                region: 1,
                block_size: 2 << 20,
                sanitize_on_release: None,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("set region 1's block size to 2 MiB"),
            "{e}"
        );
        // With --yes the device is opened (and does not exist).
        let e = configure(
            &ConfigureArgs {
                on: on(),
                region: 1,
                block_size: 2 << 20,
                sanitize_on_release: None,
                yes: true,
            },
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("ENOENT"), "{e}");
    }

    fn state() -> DcdState {
        let mib = 1u64 << 20;
        let r = |base| DcRegion {
            base,
            decode_len: 1,
            length: 256 * mib,
            block_size: 2 * mib,
            flags: region_flag::SHARABLE,
            sanitize_on_release: false,
        };
        DcdState {
            info: DcdInfo {
                num_hosts: 1,
                num_regions: 2,
                selection_policies: 0b100,
                removal_policies: 0b10,
                sanitize_config_mask: 0,
                total_capacity: 2,
                block_size_masks: [2 * mib, 2 * mib, 0, 0, 0, 0, 0, 0],
            },
            regions: dcd::HostRegions {
                host_id: 0,
                num_regions: 2,
                regions: vec![r(256 * mib), r(512 * mib)],
                counts: Some(ExtentCounts {
                    extents_supported: 512,
                    extents_available: 510,
                    tags_supported: 0,
                    tags_available: 0,
                }),
            },
            hosts: vec![HostExtents {
                host_id: 0,
                generation: 3,
                extents: vec![
                    Extent::new(256 * mib, 4 * mib),
                    Extent {
                        tag: Uuid([0xab; 16]),
                        shared_seq: 2,
                        ..Extent::new(600 * mib, 2 * mib)
                    },
                ],
            }],
        }
    }

    #[test]
    fn records() {
        let s = state();
        let i = info_record(&s.info);
        assert_eq!(i.text("selection_policies"), Some("prescriptive"));
        assert_eq!(i.text("removal_policies"), Some("prescriptive"));
        assert_eq!(i.text("total_capacity"), Some("512 MiB"));
        assert_eq!(i.text("sanitize_configurable"), Some("-"));
        let j = i.to_json();
        assert_eq!(j["selection_policies"], serde_json::json!(["prescriptive"]));
        assert_eq!(j["selection_policies_code"], 4);
        assert_eq!(j["total_capacity"], 512u64 << 20);
        let rows = block_size_rows(&s.info);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].text("block_sizes"), Some("2 MiB"));
        let r = region_record(&s, Some(0), 0, &s.regions.regions[0]);
        assert_eq!(r.text("base"), Some("0x10000000"));
        assert_eq!(r.text("held"), Some("4 MiB"));
        assert_eq!(r.text("free"), Some("252 MiB"));
        assert_eq!(r.text("flags"), Some("sharable"));
        let r1 = region_record(&s, Some(0), 1, &s.regions.regions[1]);
        assert!(region_record(&s, None, 1, &s.regions.regions[1])
            .get("held")
            .is_none());
        assert_eq!(r1.text("held"), Some("2 MiB"));
        assert_eq!(r1.to_json()["free"], 254u64 << 20);
        let e = extent_record(Some(&s), 0, &s.hosts[0].extents[1]);
        assert_eq!(e.text("region"), Some("1"));
        assert_eq!(e.text("tag"), Some("abababab-abab-abab-abab-abababababab"));
        let e = extent_record(None, 0, &s.hosts[0].extents[0]);
        assert_eq!(e.to_json()["tag"], Value::Null);
        assert_eq!(e.to_json()["region"], Value::Null);
        let j = host_json(&s, &s.hosts[0]);
        assert_eq!(j["bytes"], 6u64 << 20);
        assert_eq!(j["extents"][1]["start"], 600u64 << 20);
    }

    #[test]
    fn head_and_rows_render_alike_in_text_and_json() {
        let s = state();
        let doc = HeadRows {
            head: info_record(&s.info),
            lists: vec![("block_sizes", block_size_rows(&s.info), "no regions")],
        };
        let t = doc.render(false);
        assert!(t.starts_with("hosts                 : 1\n"), "{t}");
        assert!(
            t.contains("\nREGION  BLOCK SIZES\n0       2 MiB\n1       2 MiB\n"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&doc.render(true)).unwrap();
        assert_eq!(j["block_sizes"][1]["block_size_mask"], 2u64 << 20);
        let empty = HeadRows {
            head: Record::default(),
            lists: vec![("extents", Vec::new(), "nothing")],
        };
        assert_eq!(empty.render(false), "\nnothing\n");
    }
}
