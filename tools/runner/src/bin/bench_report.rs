// SPDX-License-Identifier: GPL-2.0

//! swcci-bench-report: the table and the goal lines of tools/bench.sh.
//!
//! Reads the `# bench NAME key=value ...` records the in-guest benchmarks print
//! (tools/ktest/src/tests/bench.rs) from `DIR/<kernel>/<arch>/<scenario>/tests.log`, where
//! `<kernel>` is the kernel variant the boot ran on (`bench`: no lock or leak debugging;
//! `debug`: the test suite's kernel; optionally `bench-llvm`: bench built with the clang of
//! rustc's LLVM and the C helpers inlined), and prints per architecture one table of medians,
//! p99 and ratios with the two kernels side by side, then, where the boots had them, the base
//! build beside the build under test (records `base.NAME`, `tools/bench.sh --base`) and the
//! bench-llvm kernel beside the bench kernel; then one line per goal of issues 14 and 21:
//!
//! ```text
//! P1 ioctl/(mmap+floor) ratio 1.08 (goal <= 1.10) met [x86_64]
//! ```
//!
//! Every goal line starts with the goal's name and carries `ratio X`; the report never fails on
//! a ratio (exit status 1 only if no record was found at all).
//!
//! ```text
//! swcci-bench-report --dir DIR [--arch x86_64,arm64] [--kernels bench,debug[,bench-llvm]]
//!                    [--base-label REV]
//! ```

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// One boot's (or several merged boots') records: name -> key -> value.
type Records = BTreeMap<String, BTreeMap<String, String>>;

/// Prefix of a record line in tests.log (a KTAP diagnostic).
const PREFIX: &str = "# bench ";

/// Parses the records of a tests.log.
fn parse(text: &str, into: &mut Records) {
    for line in text.lines() {
        let Some(rest) = line.trim_end().strip_prefix(PREFIX) else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let Some(name) = it.next() else { continue };
        let fields = into.entry(name.to_string()).or_default();
        for kv in it {
            if let Some((k, v)) = kv.split_once('=') {
                fields.insert(k.to_string(), v.to_string());
            }
        }
    }
}

/// The records of every scenario of `dir/<kernel>/<arch>`.
fn load(dir: &Path, kernel: &str, arch: &str) -> Result<Records> {
    let mut r = Records::new();
    let base = dir.join(kernel).join(arch);
    let Ok(rd) = fs::read_dir(&base) else {
        return Ok(r);
    };
    let mut scenarios: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    scenarios.sort();
    for sc in scenarios {
        let log = sc.join("tests.log");
        if log.exists() {
            let text =
                fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
            parse(&text, &mut r);
        }
    }
    Ok(r)
}

/// The kernels' records of one architecture.
struct Arch<'a> {
    name: &'a str,
    bench: Records,
    debug: Records,
    /// The bench-llvm kernel's (clang of rustc's LLVM, C helpers inlined), if it ran.
    llvm: Records,
}

fn get(r: &Records, name: &str, key: &str) -> Option<f64> {
    r.get(name)?.get(key)?.parse().ok()
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

/// Bytes per second of a Get Log record, from its median.
fn bytes_per_s(r: &Records, name: &str) -> Option<f64> {
    Some(get(r, name, "bytes")? / get(r, name, "median")? * 1e6)
}

/// P1: ioctl Identify over (mmap Identify + syscall floor), medians.
fn p1(r: &Records) -> Option<f64> {
    Some(
        get(r, "identify.ioctl", "median")?
            / (get(r, "identify.mmap", "median")? + get(r, "floor", "median")?),
    )
}

/// P4: ioctl Get Log bytes/s over a plain block read's (`memcpy` of the same payload bytes
/// from the mapped BAR).
fn p4(r: &Records) -> Option<f64> {
    Some(bytes_per_s(r, "getlog.ioctl")? / bytes_per_s(r, "getlog.block")?)
}

/// ioctl Get Log bytes/s over the userspace engine's (the P4 of issue 14).
fn p4_engine(r: &Records) -> Option<f64> {
    Some(bytes_per_s(r, "getlog.ioctl")? / bytes_per_s(r, "getlog.mmap")?)
}

/// P3: 8 clients' aggregate over one client's.
fn p3(r: &Records) -> Option<f64> {
    Some(get(r, "clients.8", "rate")? / get(r, "clients.1", "rate")?)
}

/// C: swcci over cxl_pci, Get Supported Logs (0400h) median latency.
fn c(r: &Records) -> Option<f64> {
    Some(get(r, "cxlpci.swcci", "median")? / get(r, "cxlpci.cxl_pci", "median")?)
}

/// The records of the base build (`base.` prefix) under their plain names, with the records
/// they share with the build under test (the userspace paths, the setup).
fn base_view(r: &Records) -> Option<Records> {
    let mut v: Records = r
        .iter()
        .filter(|(k, _)| !k.starts_with("base."))
        .map(|(k, f)| (k.clone(), f.clone()))
        .collect();
    let mut any = false;
    for (k, f) in r {
        if let Some(plain) = k.strip_prefix("base.") {
            v.insert(plain.to_string(), f.clone());
            any = true;
        }
    }
    any.then_some(v)
}

/// D: debug kernel ioctl Identify over the bench kernel's.
fn d(a: &Arch<'_>) -> Option<f64> {
    Some(get(&a.debug, "identify.ioctl", "median")? / get(&a.bench, "identify.ioctl", "median")?)
}

/// A plain-text table: first column left-aligned, the others right-aligned.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{c:<width$}", width = w[0]);
            } else {
                let _ = write!(line, "  {c:>width$}", width = w[i]);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn row(label: impl Into<String>, cells: Vec<String>) -> Vec<String> {
    let mut v = vec![label.into()];
    v.extend(cells);
    v
}

/// The latency rows: n, min, median, p99 (bench kernel), median, p99 (debug kernel),
/// debug/bench median.
fn latency_rows(a: &Arch<'_>) -> Vec<Vec<String>> {
    let log_bytes = get(&a.bench, "getlog.mmap", "bytes")
        .or_else(|| get(&a.debug, "getlog.mmap", "bytes"))
        .map_or_else(|| "?".into(), |b| format!("{b:.0}"));
    let rows = [
        (
            "floor",
            "syscall floor: SEND refused after copy (ENOTTY)".to_string(),
        ),
        (
            "unknown_ioctl",
            "unknown ioctl (no copy, no lock)".to_string(),
        ),
        (
            "identify.mmap",
            "Identify (0001h), userspace mmap".to_string(),
        ),
        ("identify.ioctl", "Identify (0001h), ioctl".to_string()),
        (
            "getlog.mmap",
            format!("Get Log (0401h) CEL {log_bytes} B, userspace mmap"),
        ),
        (
            "getlog.ioctl",
            format!("Get Log (0401h) CEL {log_bytes} B, ioctl"),
        ),
        (
            "getlog.block",
            format!("block read (memcpy) of those {log_bytes} B, userspace mmap"),
        ),
        (
            "cxlpci.swcci",
            "Get Supported Logs (0400h), swcci ioctl (switch CCI)".to_string(),
        ),
        (
            "cxlpci.cxl_pci",
            "Get Supported Logs (0400h), cxl_pci raw ioctl (type-3)".to_string(),
        ),
        (
            "switch_info.ioctl",
            "Identify Switch Device (5100h), ioctl".to_string(),
        ),
        (
            "tunnel.ioctl",
            "tunnelled Identify (5300h), ioctl".to_string(),
        ),
        (
            "emu.interrupts.identify",
            "emulator, interrupts: Identify, ioctl".to_string(),
        ),
        (
            "emu.polling.identify",
            "emulator, polling: Identify, ioctl".to_string(),
        ),
    ];
    let mut out = vec![row(
        "latency, us (n, min, median, p99: bench kernel)",
        [
            "n",
            "min",
            "median",
            "p99",
            "debug median",
            "debug p99",
            "debug/bench",
        ]
        .map(String::from)
        .to_vec(),
    )];
    let timer = |r: &Records| get(r, "setup", "timer_ns").map(|ns| ns / 1000.0);
    out.push(row(
        "timer (subtracted from every sample)",
        vec![
            String::new(),
            String::new(),
            fmt(timer(&a.bench), 2),
            String::new(),
            fmt(timer(&a.debug), 2),
            String::new(),
            String::new(),
        ],
    ));
    for (name, label) in rows {
        let (b, dbg) = (&a.bench, &a.debug);
        let ratio = get(dbg, name, "median")
            .zip(get(b, name, "median"))
            .map(|(x, y)| x / y);
        out.push(row(
            label,
            vec![
                fmt(get(b, name, "n").or_else(|| get(dbg, name, "n")), 0),
                fmt(get(b, name, "min"), 1),
                fmt(get(b, name, "median"), 1),
                fmt(get(b, name, "p99"), 1),
                fmt(get(dbg, name, "median"), 1),
                fmt(get(dbg, name, "p99"), 1),
                fmt(ratio, 2),
            ],
        ));
    }
    out
}

/// Throughput, waiting and ratio rows: bench kernel, debug kernel.
fn other_rows(a: &Arch<'_>) -> Vec<Vec<String>> {
    let both = |f: &dyn Fn(&Records) -> String| vec![f(&a.bench), f(&a.debug)];
    let mut out = vec![row(
        "throughput, waiting, ratios",
        vec!["bench kernel".into(), "debug kernel".into()],
    )];
    for (name, label) in [
        (
            "getlog.block",
            "Get Log bytes MB/s, block read (memcpy) from userspace mmap",
        ),
        ("getlog.mmap", "Get Log MB/s, userspace mmap engine"),
        ("getlog.ioctl", "Get Log MB/s, ioctl"),
    ] {
        out.push(row(
            label,
            both(&|r| fmt(bytes_per_s(r, name).map(|b| b / 1e6), 2)),
        ));
    }
    for n in [1, 2, 4, 8] {
        let name = format!("clients.{n}");
        out.push(row(
            format!("{n} client(s): Identify/s (x one client; per-client max/min)"),
            both(
                &|r| match (get(r, &name, "rate"), get(r, "clients.1", "rate")) {
                    (Some(rate), Some(one)) => format!(
                        "{rate:.0} ({:.2}x; {})",
                        rate / one,
                        fmt(get(r, &name, "maxmin"), 2)
                    ),
                    _ => "-".into(),
                },
            ),
        ));
    }
    out.push(row(
        "8 clients: context switches per command (voluntary/involuntary)",
        both(&|r| {
            let k = |key| fmt(get(r, "clients.8", key), 3);
            if r.contains_key("clients.8") {
                format!("{}/{}", k("vcsw_per_cmd"), k("ivcsw_per_cmd"))
            } else {
                "-".into()
            }
        }),
    ));
    for mode in ["interrupts", "polling"] {
        let name = format!("emu.{mode}.wait");
        out.push(row(
            format!("emulator {mode}, 100 ms completion: waiting CPU/wall (with submission)"),
            both(
                &|r| match (get(r, &name, "waiting"), get(r, &name, "cpu")) {
                    (Some(w), Some(c)) => format!("{w:.4} ({c:.4})"),
                    _ => "-".into(),
                },
            ),
        ));
    }
    out.push(row(
        "events --follow: idle CPU/one core over 60 s (clock ticks)",
        both(&|r| match (
            get(r, "events.follow.idle", "cpu"),
            get(r, "events.follow.idle", "ticks"),
        ) {
            (Some(c), Some(t)) => format!("{c:.5} ({t:.0})"),
            _ => "-".into(),
        }),
    ));
    for (mode, label) in [
        ("interrupt", "event interrupt"),
        ("register", "Event Status check"),
    ] {
        let name = format!("events.follow.{mode}");
        out.push(row(
            format!("events --follow, {label}: event to record ms, median (max)"),
            both(
                &|r| match (get(r, &name, "median_ms"), get(r, &name, "max_ms")) {
                    (Some(m), Some(x)) => format!("{m:.1} ({x:.1})"),
                    _ => "-".into(),
                },
            ),
        ));
    }
    out.push(row(
        "driver per command: immediate/polls/spins/sleeps",
        both(&|r| {
            let k = |key| fmt(get(r, "driver.waits", key), 2);
            if r.contains_key("driver.waits") {
                format!(
                    "{}/{}/{}/{}",
                    k("immediate"),
                    k("polls"),
                    k("spins"),
                    k("sleeps")
                )
            } else {
                "-".into()
            }
        }),
    ));
    out.push(row(
        "userspace engine per command: extra doorbell polls",
        both(&|r| fmt(get(r, "mmap.waits", "spins"), 2)),
    ));
    let with_rounds = |v: Option<f64>, r: &Records, name: &str| match v {
        Some(v) => match (get(r, name, "min"), get(r, name, "max")) {
            (Some(lo), Some(hi)) => format!("{v:.2} (rounds {lo:.2}-{hi:.2})"),
            _ => format!("{v:.2}"),
        },
        None => "-".into(),
    };
    out.push(row(
        "P1 ioctl/(mmap+floor), Identify medians",
        both(&|r| with_rounds(p1(r), r, "rounds.p1")),
    ));
    out.push(row(
        "P4 ioctl/block read, Get Log bytes/s",
        both(&|r| with_rounds(p4(r), r, "rounds.p4")),
    ));
    out.push(row(
        "ioctl/userspace engine, Get Log bytes/s",
        both(&|r| fmt(p4_engine(r), 2)),
    ));
    out.push(row(
        "C swcci/cxl_pci, Get Supported Logs median",
        both(&|r| with_rounds(c(r), r, "rounds.cxlpci")),
    ));
    out.push(row(
        "P3 8/1 clients aggregate; per-client max/min",
        both(&|r| match p3(r) {
            Some(v) => format!("{v:.2}; {}", fmt(get(r, "clients.8", "maxmin"), 2)),
            None => "-".into(),
        }),
    ));
    out
}

/// How a measured ratio compares with its goal.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, v: f64) -> bool {
        match self {
            Goal::AtMost(g) => v <= g,
            Goal::AtLeast(g) => v >= g,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Two decimals unless the format asks for more (`{:.4}`).
        let p = f.precision().unwrap_or(2);
        match self {
            Goal::AtMost(g) => write!(f, "goal <= {g:.p$}"),
            Goal::AtLeast(g) => write!(f, "goal >= {g:.p$}"),
        }
    }
}

/// `what ratio X (goal OP Y)`, and whether it is met (None: not measured).
fn part(what: &str, v: Option<f64>, goal: Goal, prec: usize) -> (String, Option<bool>) {
    // The goal with as many decimals as it needs, at least two.
    let gp = if matches!(goal, Goal::AtMost(g) | Goal::AtLeast(g) if g < 0.01) {
        prec
    } else {
        2
    };
    match v {
        Some(v) => (
            format!("{what} ratio {v:.prec$} ({goal:.gp$})"),
            Some(goal.met(v)),
        ),
        None => (format!("{what} ratio n/a ({goal:.gp$})"), None),
    }
}

fn verdict(parts: &[Option<bool>]) -> &'static str {
    if parts.iter().any(Option::is_none) {
        "not measured"
    } else if parts.iter().all(|p| *p == Some(true)) {
        "met"
    } else {
        "missed"
    }
}

/// The goal lines of one architecture.
fn goals(a: &Arch<'_>) -> Vec<String> {
    let b = &a.bench;
    let mut out = Vec::new();
    let mut one = |name: &str, parts: Vec<(String, Option<bool>)>| {
        let text: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        let met: Vec<Option<bool>> = parts.iter().map(|(_, m)| *m).collect();
        out.push(format!(
            "{name} {} {} [{}]",
            text.join(", "),
            verdict(&met),
            a.name
        ));
    };
    one(
        "P1",
        vec![part("ioctl/(mmap+floor)", p1(b), Goal::AtMost(1.10), 2)],
    );
    one(
        "P2",
        vec![part(
            "interrupt-mode waiting CPU/wall",
            get(b, "emu.interrupts.wait", "waiting"),
            Goal::AtMost(0.02),
            4,
        )],
    );
    one(
        "P3",
        vec![
            part("8/1-client aggregate", p3(b), Goal::AtLeast(0.95), 2),
            part(
                "8-client per-client max/min",
                get(b, "clients.8", "maxmin"),
                Goal::AtMost(1.15),
                2,
            ),
        ],
    );
    one(
        "P4",
        vec![part(
            "ioctl/block read Get Log bytes/s",
            p4(b),
            Goal::AtLeast(0.9),
            2,
        )],
    );
    one(
        "C",
        vec![part(
            "swcci/cxl_pci Get Supported Logs latency",
            c(b),
            Goal::AtMost(1.0),
            2,
        )],
    );
    one(
        "E1",
        vec![part(
            "events --follow idle CPU/one core",
            get(b, "events.follow.idle", "cpu"),
            Goal::AtMost(0.001),
            4,
        )],
    );
    one(
        "D",
        vec![part(
            "debug/bench ioctl Identify",
            d(a),
            Goal::AtMost(3.0),
            2,
        )],
    );
    if !a.llvm.is_empty() {
        one(
            "L",
            vec![part(
                "bench-llvm kernel ioctl/(mmap+floor)",
                p1(&a.llvm),
                Goal::AtMost(1.10),
                2,
            )],
        );
    }
    if let Some(base) = base_view(b) {
        let ratio = |name: &str, key: &str| Some(get(b, name, key)? / get(&base, name, key)?);
        one(
            "B",
            vec![
                part(
                    "current/base ioctl Identify median",
                    ratio("identify.ioctl", "median"),
                    Goal::AtMost(1.0),
                    3,
                ),
                part(
                    "Get Log median",
                    ratio("getlog.ioctl", "median"),
                    Goal::AtMost(1.0),
                    3,
                ),
                part(
                    "8-client aggregate",
                    ratio("clients.8", "rate"),
                    Goal::AtLeast(1.0),
                    3,
                ),
            ],
        );
    }
    out
}

/// The base build beside the build under test, bench kernel (`tools/bench.sh --base`): the
/// same measurements in the same boot, and their ratio.
fn base_rows(a: &Arch<'_>, base: &Records, label: &str) -> Vec<Vec<String>> {
    let b = &a.bench;
    let mut out = vec![row(
        "same boot, bench kernel: base build against the build under test",
        vec![
            format!("base {label}"),
            "under test".into(),
            "under test/base".into(),
        ],
    )];
    let three = |v: Option<f64>, w: Option<f64>, prec: usize| {
        vec![
            fmt(w, prec),
            fmt(v, prec),
            fmt(v.zip(w).map(|(x, y)| x / y), 3),
        ]
    };
    for (name, key, what, prec) in [
        ("floor", "median", "syscall floor median, us", 2),
        ("identify.ioctl", "median", "ioctl Identify median, us", 2),
        ("identify.ioctl", "p99", "ioctl Identify p99, us", 1),
        ("getlog.ioctl", "median", "ioctl Get Log median, us", 1),
        ("clients.1", "rate", "1 client Identify/s", 0),
        ("clients.8", "rate", "8 clients Identify/s", 0),
        ("clients.8", "maxmin", "8 clients per-client max/min", 2),
        (
            "emu.interrupts.wait",
            "waiting",
            "interrupt-mode waiting CPU/wall",
            4,
        ),
        ("emu.polling.wait", "waiting", "polling waiting CPU/wall", 4),
        (
            "emu.interrupts.identify",
            "median",
            "emulator Identify median (interrupts), us",
            1,
        ),
    ] {
        out.push(row(
            what,
            three(get(b, name, key), get(base, name, key), prec),
        ));
    }
    out.push(row("P1", three(p1(b), p1(base), 2)));
    out.push(row("P3 8/1 clients", three(p3(b), p3(base), 2)));
    out.push(row("P4 ioctl/block read", three(p4(b), p4(base), 2)));
    out.push(row(
        "ioctl Identify under test/base, per round (min-max)",
        vec![
            String::new(),
            String::new(),
            match (get(b, "rounds.base", "min"), get(b, "rounds.base", "max")) {
                (Some(lo), Some(hi)) => format!("{lo:.3}-{hi:.3}"),
                _ => "-".into(),
            },
        ],
    ));
    out
}

/// The bench-llvm kernel beside the bench kernel: the P1 paths.
fn llvm_rows(a: &Arch<'_>) -> Vec<Vec<String>> {
    let mut out = vec![row(
        "bench-llvm kernel (clang of rustc's LLVM, RUST_INLINE_HELPERS), us",
        vec!["bench".into(), "bench-llvm".into()],
    )];
    for (name, what) in [
        ("floor", "syscall floor median"),
        ("identify.mmap", "Identify median, userspace mmap"),
        ("identify.ioctl", "Identify median, ioctl"),
        ("getlog.ioctl", "Get Log median, ioctl"),
    ] {
        out.push(row(
            what,
            vec![
                fmt(get(&a.bench, name, "median"), 2),
                fmt(get(&a.llvm, name, "median"), 2),
            ],
        ));
    }
    out.push(row(
        "P1 ioctl/(mmap+floor)",
        vec![fmt(p1(&a.bench), 2), fmt(p1(&a.llvm), 2)],
    ));
    out
}

fn report(
    dir: &Path,
    arches: &[String],
    kernels: &[String],
    base_label: &str,
) -> Result<(String, usize)> {
    let mut s = String::new();
    let mut found = 0;
    let mut all_goals = Vec::new();
    let kernel = |i: usize| kernels.get(i).map_or("", String::as_str);
    for arch in arches {
        let a = Arch {
            name: arch,
            bench: load(dir, kernel(0), arch)?,
            debug: load(dir, kernel(1), arch)?,
            llvm: if kernel(2).is_empty() {
                Records::new()
            } else {
                load(dir, kernel(2), arch)?
            },
        };
        found += a.bench.len() + a.debug.len() + a.llvm.len();
        let setup = |r: &Records, k: &str| {
            r.get("setup")
                .and_then(|f| f.get(k))
                .cloned()
                .unwrap_or_else(|| "?".into())
        };
        let _ = writeln!(
            s,
            "\n== {arch}: QEMU TCG, -smp 2; {} kernel and {} kernel, one boot each; clock {}; \
             payload {} B; {} rounds ==",
            kernel(0),
            kernel(1),
            setup(&a.bench, "clocksource"),
            setup(&a.bench, "payload"),
            setup(&a.bench, "rounds"),
        );
        s.push_str(&table(&latency_rows(&a)));
        s.push('\n');
        s.push_str(&table(&other_rows(&a)));
        if let Some(base) = base_view(&a.bench) {
            s.push('\n');
            s.push_str(&table(&base_rows(&a, &base, base_label)));
        }
        if !a.llvm.is_empty() {
            s.push('\n');
            s.push_str(&table(&llvm_rows(&a)));
        }
        all_goals.extend(goals(&a));
    }
    s.push('\n');
    for g in all_goals {
        s.push_str(&g);
        s.push('\n');
    }
    Ok((s, found))
}

fn main() -> Result<()> {
    let mut dir = None;
    let mut arches = vec!["x86_64".to_string(), "arm64".to_string()];
    let mut kernels = vec!["bench".to_string(), "debug".to_string()];
    let mut base_label = "build".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut v = || it.next().context(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = Some(v()?),
            "--base-label" => base_label = v()?,
            "--arch" => arches = v()?.split(',').map(String::from).collect(),
            "--kernels" => {
                kernels = v()?.split(',').map(String::from).collect();
                if !(2..=3).contains(&kernels.len()) {
                    bail!("--kernels BENCH,DEBUG[,LLVM]");
                }
            }
            _ => bail!(
                "usage: swcci-bench-report --dir DIR [--arch x86_64,arm64] \
                 [--kernels bench,debug[,bench-llvm]] [--base-label REV]"
            ),
        }
    }
    let dir = dir.context("--dir DIR is required")?;
    let (text, found) = report(Path::new(&dir), &arches, &kernels, &base_label)?;
    print!("{text}");
    if found == 0 {
        bail!("no benchmark records below {dir}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENCH: &str = "\
KTAP version 1
# running bench_command_path
# bench setup timer_ns=100 clocksource=tsc payload=2048 rounds=10 addr=0000:0d:00.1
# bench floor n=10000 min=1.50 median=2.00 p99=3.00 max=9.00 mean=2.10
# bench identify.mmap n=10000 min=3.00 median=4.00 p99=6.00 max=20.00 mean=4.20
# bench identify.ioctl n=10000 min=5.00 median=6.00 p99=9.00 max=30.00 mean=6.30
# bench getlog.mmap n=2000 min=150 median=200.00 p99=300 max=400 mean=210 bytes=2048
# bench getlog.ioctl n=2000 min=100 median=100.00 p99=200 max=300 mean=110 bytes=2048
# bench getlog.block n=2000 min=80 median=95.00 p99=120 max=130 mean=96 bytes=2048
# bench rounds.p1 min=0.950 max=1.050
ok 1 bench_command_path
# bench clients.1 rate=10000 per_client_min=30000 per_client_max=30000 maxmin=1.000 steps=12 step_min=9000 step_max=11000
# bench clients.8 rate=8500 per_client_min=3000 per_client_max=3300 maxmin=1.100 steps=12 step_min=8000 step_max=9000
not a record: # bench floor median=99
";

    fn records(text: &str) -> Records {
        let mut r = Records::new();
        parse(text, &mut r);
        r
    }

    #[test]
    fn parses_records_only() {
        let r = records(BENCH);
        assert_eq!(get(&r, "floor", "median"), Some(2.0));
        assert_eq!(get(&r, "getlog.mmap", "bytes"), Some(2048.0));
        assert_eq!(r["setup"]["clocksource"], "tsc");
        assert_eq!(get(&r, "setup", "clocksource"), None);
        assert_eq!(r.len(), 10);
    }

    #[test]
    fn ratios() {
        let r = records(BENCH);
        assert_eq!(p1(&r), Some(1.0));
        assert!((p4(&r).unwrap() - 0.95).abs() < 1e-9);
        assert_eq!(p4_engine(&r), Some(2.0));
        assert_eq!(c(&r), None);
        assert_eq!(p3(&r), Some(0.85));
        assert_eq!(bytes_per_s(&r, "getlog.mmap"), Some(2048.0 / 200.0 * 1e6));
    }

    #[test]
    fn goal_lines() {
        let mut debug = records(BENCH);
        debug
            .get_mut("identify.ioctl")
            .unwrap()
            .insert("median".into(), "24.0".into());
        let a = Arch {
            name: "x86_64",
            bench: records(BENCH),
            debug,
            llvm: Records::new(),
        };
        let g = goals(&a);
        assert_eq!(
            g,
            [
                "P1 ioctl/(mmap+floor) ratio 1.00 (goal <= 1.10) met [x86_64]",
                "P2 interrupt-mode waiting CPU/wall ratio n/a (goal <= 0.02) not measured [x86_64]",
                "P3 8/1-client aggregate ratio 0.85 (goal >= 0.95), \
                 8-client per-client max/min ratio 1.10 (goal <= 1.15) missed [x86_64]",
                "P4 ioctl/block read Get Log bytes/s ratio 0.95 (goal >= 0.90) met [x86_64]",
                "C swcci/cxl_pci Get Supported Logs latency ratio n/a (goal <= 1.00) not measured [x86_64]",
                "E1 events --follow idle CPU/one core ratio n/a (goal <= 0.0010) not measured [x86_64]",
                "D debug/bench ioctl Identify ratio 4.00 (goal <= 3.00) missed [x86_64]",
            ]
        );
    }

    #[test]
    fn base_and_llvm_lines() {
        let text = format!(
            "{BENCH}# bench base.identify.ioctl n=10000 min=5.00 median=5.00 p99=8.00 max=9 mean=5.1\n\
             # bench base.getlog.ioctl n=2000 min=100 median=125.00 p99=200 max=300 mean=110 bytes=2048\n\
             # bench base.clients.8 rate=8000 maxmin=1.2\n\
             # bench cxlpci.swcci n=11000 min=4 median=6.00 p99=9 max=20 mean=6 bytes=28\n\
             # bench cxlpci.cxl_pci n=11000 min=4 median=5.00 p99=9 max=20 mean=6 bytes=28\n"
        );
        let b = records(&text);
        let base = base_view(&b).unwrap();
        assert_eq!(get(&base, "identify.ioctl", "median"), Some(5.0));
        // Shared records (the userspace paths) are the same in both views.
        assert_eq!(get(&base, "identify.mmap", "median"), Some(4.0));
        assert!(base_view(&records(BENCH)).is_none());
        let mut llvm = records(BENCH);
        llvm.get_mut("identify.ioctl")
            .unwrap()
            .insert("median".into(), "6.6".into());
        let a = Arch {
            name: "arm64",
            bench: b,
            debug: Records::new(),
            llvm,
        };
        let g = goals(&a);
        assert_eq!(
            g[4],
            "C swcci/cxl_pci Get Supported Logs latency ratio 1.20 (goal <= 1.00) missed [arm64]"
        );
        assert_eq!(
            g[7],
            "L bench-llvm kernel ioctl/(mmap+floor) ratio 1.10 (goal <= 1.10) met [arm64]"
        );
        assert_eq!(
            g[8],
            "B current/base ioctl Identify median ratio 1.200 (goal <= 1.00), \
             Get Log median ratio 0.800 (goal <= 1.00), \
             8-client aggregate ratio 1.062 (goal >= 1.00) missed [arm64]"
        );
        let t = table(&base_rows(&a, &base, "2e6d16f"));
        let head: Vec<&str> = t
            .lines()
            .next()
            .unwrap()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            head,
            [
                "same boot, bench kernel: base build against the build under test",
                "base 2e6d16f",
                "under test",
                "under test/base"
            ],
            "{t}"
        );
        assert!(t.contains("ioctl Identify median, us"), "{t}");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            row("a", vec!["1".into(), "22".into()]),
            row("longer", vec!["333".into(), "4".into()]),
        ]);
        assert_eq!(t, "a         1  22\nlonger  333   4\n");
    }

    #[test]
    fn reads_the_bench_layout() {
        let dir = std::env::temp_dir().join(format!("swcci-bench-report-{}", std::process::id()));
        let log = dir.join("bench/x86_64/bench");
        fs::create_dir_all(&log).unwrap();
        fs::write(log.join("tests.log"), BENCH).unwrap();
        let (text, found) = report(
            &dir,
            &["x86_64".into()],
            &["bench".into(), "debug".into()],
            "x",
        )
        .unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, 10);
        assert!(text.contains("\nP1 ioctl/(mmap+floor) ratio 1.00 (goal <= 1.10) met [x86_64]\n"));
        assert!(text.contains("D debug/bench ioctl Identify ratio n/a"));
        let floor = text
            .lines()
            .find(|l| l.starts_with("syscall floor"))
            .unwrap();
        assert_eq!(
            floor.split_whitespace().rev().take(7).collect::<Vec<_>>(),
            ["-", "-", "-", "3.0", "2.0", "1.5", "10000"]
        );
    }
}
