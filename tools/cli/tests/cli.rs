// SPDX-License-Identifier: GPL-2.0

//! Runs the built `swcci` binary: exit statuses and one-line error messages, without a device.

mod common;

use common::{fails, stderr, succeeds, swcci};

#[test]
fn help_and_version() {
    let out = succeeds(&["--help"]);
    assert!(out.contains("Usage: swcci"));
    assert!(out.contains("Exit status:"));
    for sub in [
        "list",
        "identify",
        "switch-info",
        "ports",
        "vcs",
        "cel",
        "logs",
        "bg-status",
    ] {
        assert!(out.contains(&format!("\n  {sub} ")), "{sub}");
    }
    assert!(succeeds(&["ports", "--help"]).contains("Examples:"));
    assert!(succeeds(&["--version"]).starts_with("swcci "));
    // No command: the help, on stderr, and a usage error.
    let o = swcci(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage: swcci"));
}

#[test]
fn missing_device_is_an_os_error() {
    let err = fails(
        &["identify", "/nonexistent/node"],
        3,
        &["/nonexistent/node", "ENOENT"],
    );
    assert_eq!(
        err,
        "swcci: open /nonexistent/node: ENOENT (No such file or directory)\n"
    );
    fails(
        &["--json", "ports", "/nonexistent/node", "1"],
        3,
        &["ENOENT"],
    );
    fails(
        &["switch-info", "/nonexistent/node", "--json"],
        3,
        &["ENOENT"],
    );
    // A tunnelled target opens the same node.
    fails(
        &["cel", "/nonexistent/node", "--port", "1", "--ld", "0"],
        3,
        &["open /nonexistent/node", "ENOENT"],
    );
}

#[test]
fn destructive_commands_refuse_before_opening_the_device() {
    let err = fails(
        &["port-control", "switch0", "0", "reset"],
        2,
        &["--yes", "port 0"],
    );
    assert_eq!(
        err,
        "swcci: would reset the PPB of physical port 0 on switch0 (Physical Port Control \
         (5102h)); add --yes to do it\n"
    );
    // A device that does not exist is not even opened.
    fails(
        &["port-control", "/nonexistent/node", "1", "assert-perst"],
        2,
        &["PERST#", "--yes"],
    );
    fails(
        &[
            "bind",
            "/nonexistent/node",
            "--vcs",
            "0",
            "--vppb",
            "1",
            "--port",
            "2",
        ],
        2,
        &["bind vPPB 1 of VCS 0 to physical port 2", "--yes"],
    );
    fails(
        &[
            "unbind",
            "/nonexistent/node",
            "--vcs",
            "0",
            "--vppb",
            "1",
            "--mode",
            "managed",
        ],
        2,
        &["unbind vPPB 1 of VCS 0", "managed hot-remove", "--yes"],
    );
    // With --yes it is opened.
    fails(
        &["port-control", "/nonexistent/node", "0", "reset", "--yes"],
        3,
        &["ENOENT"],
    );
}

#[test]
fn usage_errors() {
    fails(
        &["raw", "x", "--opcode", "zz"],
        2,
        &["'zz'", "--opcode", "opcode in hex"],
    );
    fails(
        &["raw", "x", "--opcode", "1", "--in", "0g"],
        2,
        &["invalid hex input", "`0g`"],
    );
    fails(&["raw", "x"], 2, &["--opcode", "usage:"]);
    fails(&["ports", "x", "300"], 2, &["'300'"]);
    fails(
        &["port-control", "x", "1", "explode"],
        2,
        &["explode", "assert-perst"],
    );
    fails(&["frobnicate"], 2, &["frobnicate"]);
    fails(&["tunnel", "x", "identify"], 2, &["--port"]);
    fails(&["identify", "x", "--ld", "0"], 2, &["--port"]);
    fails(&["completions", "tcsh"], 2, &["tcsh"]);
}

#[test]
fn topology_arguments_and_unreadable_nodes() {
    fails(&["topology", "--dot", "--json"], 2, &["--dot", "--json"]);
    fails(&["topology", "--timeout", "0"], 2, &["milliseconds"]);
    // A named node that cannot be opened: nothing was read, so the error's own status.
    let err = fails(
        &["topology", "/nonexistent/node"],
        3,
        &["open /nonexistent/node", "ENOENT"],
    );
    assert!(!err.contains("partial"));
    // With --json the document still comes, with the error in it.
    let o = swcci(&["topology", "--json", "/nonexistent/node"]);
    assert_eq!(o.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["partial"], true);
    assert_eq!(doc["switches"], serde_json::json!([]));
    assert_eq!(doc["errors"][0]["errno_name"], "ENOENT");
}

#[test]
fn unreadable_input_file_is_an_os_error() {
    // Read before the device is opened.
    fails(
        &[
            "raw",
            "/nonexistent/node",
            "--opcode",
            "1",
            "--in",
            "@/nonexistent/in.bin",
        ],
        3,
        &["read --in /nonexistent/in.bin", "ENOENT"],
    );
    // Read up to the largest mailbox payload (1 MiB), before the device is opened.
    fails(
        &[
            "raw",
            "/nonexistent/node",
            "--opcode",
            "1",
            "--in",
            "@/dev/zero",
        ],
        2,
        &["--in /dev/zero: input of more than 1048576 B exceeds the 1048576-byte payload of any mailbox"],
    );
}

#[test]
fn man_page_and_completions() {
    let man = succeeds(&["man"]);
    for s in [
        ".TH swcci 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(man.contains(s), "{s}");
    }
    assert!(succeeds(&["completions", "bash"]).contains("complete -F _swcci"));
    for shell in ["zsh", "fish"] {
        assert!(!succeeds(&["completions", shell]).is_empty(), "{shell}");
    }
}
