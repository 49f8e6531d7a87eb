// SPDX-License-Identifier: GPL-2.0

//! Runs the built `swcci` binary for the integration tests (cli.rs, fw.rs), without a device.

use std::process::{Command, Output};

/// Runs `swcci args` (without RUST_BACKTRACE, so a panic would not print a backtrace that
/// hides it).
pub fn swcci(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swcci"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run swcci")
}

/// Stderr of `o`, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `swcci args`, asserts exit status 0 and returns stdout.
pub fn succeeds(args: &[&str]) -> String {
    let o = swcci(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts exit status `code`, nothing on stdout and a single stderr line starting with
/// `swcci: ` and containing every one of `words`; returns that line.
pub fn fails(args: &[&str], code: i32, words: &[&str]) -> String {
    let o = swcci(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
    assert!(err.starts_with("swcci: "), "{args:?}: {err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: `{w}` missing from: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
    err
}
