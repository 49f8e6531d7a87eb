// SPDX-License-Identifier: GPL-2.0

//! Runs the built `swcci fw` without a device: refusals, usage errors, OS errors, help and the
//! manual page. (The transfer itself is tested in swcci-lib against a simulated device and in
//! the guest against the emulator and QEMU.)

// The file uses only part of the shared helpers.
#[allow(dead_code)]
mod common;

use common::{fails, succeeds};

/// `fw update` of an image and a device node that do not exist, without `--yes`.
const UPDATE: &[&str] = &[
    "fw",
    "update",
    "/nonexistent/node",
    "/nonexistent/fw.bin",
    "--slot",
    "2",
];

#[test]
fn destructive_commands_need_yes_and_send_nothing() {
    fails(
        UPDATE,
        2,
        &[
            "would write /nonexistent/fw.bin to firmware slot 2 of /nonexistent/node",
            "add --yes",
        ],
    );
    fails(
        &[
            "fw",
            "activate",
            "/nonexistent/node",
            "--slot",
            "3",
            "--online",
        ],
        2,
        &[
            "would activate firmware slot 3",
            "online",
            "Activate FW (0202h)",
        ],
    );
    // fw update's spelling works too.
    fails(
        &[
            "fw",
            "activate",
            "/nonexistent/node",
            "--slot",
            "3",
            "--activate",
            "reset",
        ],
        2,
        &["would activate firmware slot 3", "on next cold reset"],
    );
    fails(
        &["fw", "abort", "/nonexistent/node", "--port", "1"],
        2,
        &["would abort the firmware transfer open on /nonexistent/node via port 1"],
    );
}

#[test]
fn usage_and_os_errors() {
    fails(
        &["fw", "update", "x", "img", "--slot", "5", "--yes"],
        2,
        &["expected a firmware slot from 1 to 4"],
    );
    fails(
        &["fw", "activate", "x", "--slot", "2", "--yes"],
        2,
        &["--online|--reset"],
    );
    fails(
        &[
            "fw", "activate", "x", "--slot", "2", "--online", "--reset", "--yes",
        ],
        2,
        &["cannot be used with"],
    );
    fails(
        &[
            "fw",
            "activate",
            "x",
            "--slot",
            "2",
            "--online",
            "--activate",
            "online",
            "--yes",
        ],
        2,
        &["cannot be used with"],
    );
    fails(
        &[
            "fw",
            "update",
            "x",
            "img",
            "--slot",
            "2",
            "--max-part",
            "64",
            "--yes",
        ],
        2,
        &["at least 128"],
    );
    // The image is read before the device is opened.
    fails(
        &[UPDATE, &["--yes"]].concat(),
        3,
        &["read image /nonexistent/fw.bin: ENOENT"],
    );
    // An image over the limit (256 MiB; /dev/zero is endless) is refused before the device
    // is opened.
    fails(
        &[
            "fw",
            "update",
            "/nonexistent/node",
            "/dev/zero",
            "--slot",
            "3",
            "--yes",
        ],
        2,
        &[
            "image /dev/zero: more than 268435456 bytes",
            "nothing was sent",
        ],
    );
    fails(
        &["fw", "info", "/nonexistent/node", "--port", "2"],
        3,
        &["open /nonexistent/node: ENOENT"],
    );
}

#[test]
fn help_and_manual_document_the_exit_statuses() {
    let help = succeeds(&["fw", "--help"]);
    for needle in [
        "\n  5   fw:",
        "\n  6   fw:",
        "\n  130 fw update:",
        "Abort action and waits",
    ] {
        assert!(help.contains(needle), "`{needle}` missing from\n{help}");
    }
    let man = succeeds(&["man"]);
    for needle in ["swcci fw update", "swcci fw abort", "130"] {
        assert!(man.contains(needle), "`{needle}` missing from the manual");
    }
}
