// SPDX-License-Identifier: GPL-2.0

//! swcci-ktest: the in-guest test suite of cxl_swcci.
//!
//! Runs the tests of one scenario (one boot of the QEMU bench) against the real module and
//! the emulated devices, and prints KTAP (Documentation/dev-tools/ktap.rst) followed by a
//! plain `N passed, N failed` line. After every test the kernel log is checked for warnings,
//! BUGs, oopses and lock or sleep violations: any of them fails the test.
//!
//! ```text
//! swcci-ktest --scenario main [--filter NAME] [--topology /etc/swcci/topology.json]
//! swcci-ktest --list
//! ```

mod child;
mod ctl;
mod env;
mod helpers;
mod tests;
mod usermbox;

use anyhow::Result;
use env::Env;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use swcci::topology::Topology;

/// What a test concluded.
pub enum Outcome {
    /// It passed.
    Pass,
    /// It could not run here, for this reason.
    Skip(String),
}

/// One test.
pub struct Test {
    /// KTAP name.
    pub name: &'static str,
    /// Scenarios (boots) it belongs to.
    pub scenarios: &'static [&'static str],
    /// The test.
    pub run: fn(&mut Env) -> Result<Outcome>,
}

fn usage() -> ! {
    eprintln!("usage: swcci-ktest --scenario NAME [--filter SUBSTRING] [--topology FILE] | --list");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--helper") {
        std::process::exit(helpers::run(&args[2..]));
    }
    let mut scenario = None;
    let mut filter = None;
    let mut topology = "/etc/swcci/topology.json".to_string();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scenario" => scenario = Some(it.next().cloned().unwrap_or_else(|| usage())),
            "--filter" => filter = it.next().cloned().filter(|f| !f.is_empty()),
            "--topology" => topology = it.next().cloned().unwrap_or_else(|| usage()),
            "--list" => {
                for t in tests::ALL {
                    println!("{:32} {}", t.name, t.scenarios.join(","));
                }
                return;
            }
            _ => usage(),
        }
    }
    let scenario = scenario.unwrap_or_else(|| usage());
    let selected: Vec<&Test> = tests::ALL
        .iter()
        .filter(|t| t.scenarios.contains(&scenario.as_str()))
        .filter(|t| filter.as_deref().is_none_or(|f| t.name.contains(f)))
        .collect();

    // Not locked for the whole run: a test's own threads print too (the fuzzer's progress
    // lines and stall reports), and would block forever on a lock this thread held while it
    // waits for them. Each line goes out in one locked write.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "KTAP version 1");
    let _ = writeln!(out, "# swcci scenario {scenario}");
    let _ = writeln!(out, "1..{}", selected.len());
    let _ = out.flush();

    let mut env = match Topology::load(&topology)
        .map_err(anyhow::Error::from)
        .and_then(Env::new)
    {
        Ok(env) => env,
        Err(e) => {
            let _ = writeln!(out, "# cannot set up: {e:#}");
            let _ = writeln!(out, "0 passed, {} failed", selected.len().max(1));
            return;
        }
    };

    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (i, t) in selected.iter().enumerate() {
        let n = i + 1;
        let _ = writeln!(out, "# running {}", t.name);
        let _ = out.flush();
        env.notes.clear();
        let started = std::time::Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| (t.run)(&mut env)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(anyhow::anyhow!("test panicked: {msg}"))
            })
            .and_then(|o| env.check_kernel_log().map(|()| o));
        for note in env.notes.drain(..) {
            let _ = writeln!(out, "# {note}");
        }
        let ms = started.elapsed().as_millis();
        match res {
            Ok(Outcome::Pass) => {
                passed += 1;
                let _ = writeln!(out, "ok {n} {} # {ms} ms", t.name);
            }
            Ok(Outcome::Skip(why)) => {
                skipped += 1;
                let _ = writeln!(out, "ok {n} {} # SKIP {why}", t.name);
            }
            Err(e) => {
                failed += 1;
                for line in format!("{e:#}").lines() {
                    let _ = writeln!(out, "# {line}");
                }
                let _ = writeln!(out, "not ok {n} {}", t.name);
            }
        }
        let _ = out.flush();
    }
    let _ = writeln!(out, "# {skipped} skipped");
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    let _ = out.flush();
}
