// SPDX-License-Identifier: GPL-2.0

//! `swcci events` without a device: the --clear/--yes rule and the errors.

mod common;

use common::{fails, succeeds};

#[test]
fn clear_needs_yes_and_sends_nothing() {
    // Refused before the node is opened: no ENOENT for a node that does not exist.
    let err = fails(
        &["events", "/nonexistent/node", "--clear"],
        2,
        &[
            "would read and clear the event records of every log of the switch CCI on \
             /nonexistent/node",
            "Clear Event Records (0101h)",
            "add --yes",
        ],
    );
    assert!(!err.contains("ENOENT"), "{err}");
    fails(
        &[
            "events",
            "/nonexistent/node",
            "--port",
            "3",
            "--clear",
            "--json",
        ],
        2,
        &["every log of the port 3 on", "add --yes"],
    );
    // --yes alone is a usage error.
    fails(&["events", "/nonexistent/node", "--yes"], 2, &["--clear"]);
    // An LD needs a port.
    fails(&["events", "x", "--ld", "1"], 2, &["--port"]);
}

#[test]
fn a_missing_node_is_an_os_error() {
    fails(
        &["events", "/nonexistent/node"],
        3,
        &["open /nonexistent/node", "ENOENT"],
    );
    fails(
        &["events", "/nonexistent/node", "--clear", "--yes", "--json"],
        3,
        &["ENOENT"],
    );
}

#[test]
fn help_documents_the_command() {
    let h = succeeds(&["events", "--help"]);
    for w in [
        "--clear",
        "--yes",
        "--port",
        "--ld",
        "Examples:",
        "Exit status:",
        "JSON lines",
    ] {
        assert!(h.contains(w), "{w} not in {h}");
    }
    assert!(succeeds(&["--help"]).contains("\n  events "));
}
