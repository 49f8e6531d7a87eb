// SPDX-License-Identifier: GPL-2.0

//! `swcci ld`: the LD allocations of a multi-logical device (swcci-lib's `ld` module,
//! Documentation/pooling.rst): `show` reads them, `alloc` sets one LD's and sends nothing
//! without `--yes`.

use crate::args::ld::{AllocArgs, LdArgs, LdCommand};
use crate::decode::{self, bytes_text};
use crate::error::{pool_error, CliError};
use crate::output::{render_record, render_table, Field, Outcome, Record};
use serde_json::{Map, Value};
use swcci::ld::{self, AllocReport, Mld};
use swcci::proto::payload::ld::{Granularity, LdAllocation};
use swcci::{command_name, Device, Target};
use swcci_proto::opcode;

type Result<T> = std::result::Result<T, CliError>;

/// What an `ld` command printed (for the dispatch in main.rs).
pub fn run(args: LdArgs, json: bool) -> Result<Outcome> {
    let stdout = match args.what {
        LdCommand::Show(a) => {
            let d = Device::open(&a.dev)?;
            let cci = d.on(a.target.target());
            let m = Mld::read(&cci).map_err(|e| pool_error(swcci::dcd::PoolError::failed(e)))?;
            show(cci.target(), &m, json)
        }
        LdCommand::Alloc(a) => alloc(&a, json)?,
    };
    Ok(Outcome {
        stdout,
        ..Outcome::default()
    })
}

/// The target's fields: the port (and the LD the tunnel reaches, as `via_ld`).
fn target_fields(t: Target) -> Record {
    let mut r = Record::default();
    if t != Target::Direct {
        r.push(decode::opt_num("port", t.port()));
        if let Some(l) = t.ld() {
            r.push(Field::num("via_ld", l));
        }
    }
    r
}

/// Bytes of `units` of `g` (`None` for a reserved granularity or an overflow).
fn bytes_of(units: u64, g: Granularity) -> Option<u64> {
    g.bytes().and_then(|b| units.checked_mul(b))
}

/// A size in bytes, or `-` / null when unknown.
fn opt_size(key: &'static str, n: Option<u64>) -> Field {
    match n {
        Some(n) => Field::new(key, bytes_text(n), n),
        None => Field::new(key, "-", Value::Null),
    }
}

/// One LD: its ranges and their sum.
fn ld_row(id: u8, a: &LdAllocation, g: Granularity) -> Record {
    let mut r = decode::ld_record(id, a, g);
    r.push(opt_size("total", a.units().and_then(|u| bytes_of(u, g))));
    r
}

/// `ld show`: the device, then one row per LD.
fn show(t: Target, m: &Mld, json: bool) -> String {
    let mut head = target_fields(t);
    head.extend(decode::ld_info_record(&m.info));
    head.push(decode::granularity_field(m.allocs.granularity));
    let allocated = m.allocated();
    head.push(opt_size("allocated", allocated));
    head.push(opt_size(
        "unallocated",
        allocated.map(|a| m.info.memory_size.saturating_sub(a)),
    ));
    let rows: Vec<Record> = m
        .allocs
        .lds
        .iter()
        .map(|(id, a)| ld_row(*id, a, m.allocs.granularity))
        .collect();
    if json {
        let mut o = match head.to_json() {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        o.insert(
            "lds".into(),
            Value::Array(rows.iter().map(Record::to_json).collect()),
        );
        return format!("{:#}\n", Value::Object(o));
    }
    let mut out = render_record(&head);
    if let Some(first) = rows.first() {
        let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
            .collect();
        out.push('\n');
        out.push_str(&render_table(&headings, &cells));
    }
    out
}

/// The record of a completed allocation.
fn alloc_record(r: &AllocReport) -> Record {
    let g = r.granularity;
    let mut rec = target_fields(r.target);
    rec.push(Field::num("ld", r.ld));
    let range = |key: &'static str, units: u64| {
        let b = bytes_of(units, g);
        Field::new(
            key,
            b.map_or_else(|| units.to_string(), bytes_text),
            b.map_or(Value::Null, Value::from),
        )
        .with(
            match key {
                "range1_before" => "range1_before_units",
                "range2_before" => "range2_before_units",
                "range1" => "range1_units",
                _ => "range2_units",
            },
            units,
        )
    };
    rec.push(range("range1_before", r.before.range1));
    rec.push(range("range2_before", r.before.range2));
    rec.push(range("range1", r.after.range1));
    rec.push(range("range2", r.after.range2));
    rec.push(Field::new("allocated", bytes_text(r.total), r.total));
    rec.push(Field::new("memory_size", bytes_text(r.memory), r.memory));
    rec
}

fn alloc(a: &AllocArgs, json: bool) -> Result<String> {
    let target = a.target.target();
    if !a.yes {
        let via = match target {
            Target::Direct => String::new(),
            t => format!(" via {t}"),
        };
        return Err(CliError::Refused(format!(
            "set LD {}'s allocation to range 1 {} and range 2 {} on {}{via} ({})",
            a.id,
            bytes_text(a.range1),
            bytes_text(a.range2),
            a.dev,
            command_name(opcode::SET_LD_ALLOCATIONS)
        )));
    }
    let d = Device::open(&a.dev)?;
    let r = ld::allocate(&d.on(target), a.id, a.range1, a.range2).map_err(pool_error)?;
    let rec = alloc_record(&r);
    Ok(if json {
        format!("{:#}\n", rec.to_json())
    } else {
        render_record(&rec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use swcci::proto::payload::ld::LdInfo;
    use swcci::LdAllocs;

    fn mld() -> Mld {
        let one = |r1, r2| LdAllocation {
            range1: r1,
            range2: r2,
        };
        Mld {
            info: LdInfo {
                memory_size: 2 << 30,
                ld_count: 2,
                qos_telemetry: 0,
            },
            allocs: LdAllocs {
                number_of_lds: 2,
                granularity: Granularity::Mib256,
                lds: vec![(0, one(4, 1)), (1, one(2, 0))],
            },
        }
    }

    #[test]
    fn show_text_and_json() {
        let m = mld();
        let t = show(Target::Port(3), &m, false);
        assert!(
            t.starts_with("port          : 3\nmemory_size   : 2 GiB\n"),
            "{t}"
        );
        assert!(
            t.contains("allocated     : 1792 MiB\nunallocated   : 256 MiB\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "\nLD  RANGE1       RANGE2       TOTAL\n0   4 (1 GiB)    1 (256 MiB)  1280 MiB\n"
            ),
            "{t}"
        );
        let j: Value = serde_json::from_str(&show(Target::PortLd(3, 1), &m, true)).unwrap();
        assert_eq!(j["port"], 3);
        assert_eq!(j["via_ld"], 1);
        assert_eq!(j["allocated"], 1792u64 << 20);
        assert_eq!(j["lds"][0]["total"], 1280u64 << 20);
        assert_eq!(j["lds"][1]["range1_bytes"], 512u64 << 20);
        let mut r = mld();
        r.allocs.granularity = Granularity::Reserved(9);
        let j: Value = serde_json::from_str(&show(Target::Direct, &r, true)).unwrap();
        assert_eq!(j["allocated"], Value::Null);
        assert!(j.get("port").is_none());
    }

    #[test]
    fn alloc_records_and_refusal() {
        let r = AllocReport {
            target: Target::Port(3),
            ld: 1,
            before: LdAllocation {
                range1: 4,
                range2: 0,
            },
            after: LdAllocation {
                range1: 2,
                range2: 1,
            },
            granularity: Granularity::Mib256,
            total: 7 << 28,
            memory: 2 << 30,
        };
        let rec = alloc_record(&r);
        assert_eq!(rec.text("range1_before"), Some("1 GiB"));
        assert_eq!(rec.text("range1"), Some("512 MiB"));
        assert_eq!(rec.to_json()["range2_units"], 1);
        assert_eq!(rec.text("allocated"), Some("1792 MiB"));
        let cli = crate::args::Cli::try_parse_from([
            "swcci",
            "ld",
            "alloc",
            "/nonexistent/x",
            "1",
            "--port",
            "3",
            "--range1",
            "512M",
        ])
        .unwrap();
        let crate::args::Command::Ld(LdArgs {
            what: LdCommand::Alloc(a),
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!((a.id, a.range1, a.range2, a.yes), (1, 512 << 20, 0, false));
        let e = alloc(&a, false).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "would set LD 1's allocation to range 1 512 MiB and range 2 0 bytes on \
             /nonexistent/x via port 3 (Set LD Allocations (5402h)); add --yes to do it"
        );
        assert!(crate::args::Cli::try_parse_from(["swcci", "ld", "alloc", "x", "1"]).is_err());
    }
}
