// SPDX-License-Identifier: GPL-2.0

//! The Rust mirror of the userspace ABI against the C headers, compiled with the system C
//! compiler: `<linux/cxl_mem.h>` (the ABI existing tools use) and the driver's own
//! `include/uapi/linux/cxl_swcci.h`. Sizes, field offsets and ioctl numbers must agree, for
//! the native ABI and (where the toolchain has it) for 32-bit x86.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::process::Command;
use swcci_proto::uapi::*;

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/cxl_mem.h>
#include "linux/cxl_swcci.h"
#define S(t) printf("sizeof %s %zu\n", #t, sizeof(struct t));
#define O(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(struct t, f));
#define V(n) printf("value %s %lu\n", #n, (unsigned long)(n));
int main(void) {
    S(cxl_send_command) O(cxl_send_command, id) O(cxl_send_command, flags)
    O(cxl_send_command, raw.opcode) O(cxl_send_command, raw.rsvd) O(cxl_send_command, retval)
    O(cxl_send_command, in.size) O(cxl_send_command, in.rsvd) O(cxl_send_command, in.payload)
    O(cxl_send_command, out.size) O(cxl_send_command, out.rsvd) O(cxl_send_command, out.payload)
    S(cxl_command_info) O(cxl_command_info, id) O(cxl_command_info, flags)
    O(cxl_command_info, size_in) O(cxl_command_info, size_out)
    S(cxl_mem_query_commands) O(cxl_mem_query_commands, n_commands) O(cxl_mem_query_commands, rsvd)
    O(cxl_mem_query_commands, commands)
    S(swcci_info) O(swcci_info, version) O(swcci_info, kind) O(swcci_info, flags)
    O(swcci_info, payload_size) O(swcci_info, cel_entries) O(swcci_info, pci_vendor)
    O(swcci_info, pci_device) O(swcci_info, vendor_id) O(swcci_info, device_id)
    O(swcci_info, subsys_vendor_id) O(swcci_info, subsys_id) O(swcci_info, serial)
    O(swcci_info, max_msg_size_log2) O(swcci_info, component_type) O(swcci_info, rsvd0)
    O(swcci_info, pci_addr) O(swcci_info, node) O(swcci_info, rsvd1)
    S(swcci_bg_policy) O(swcci_bg_policy, timeout_ms) O(swcci_bg_policy, flags)
    S(swcci_bg_result) O(swcci_bg_result, opcode) O(swcci_bg_result, retval)
    O(swcci_bg_result, vendor_status) O(swcci_bg_result, state) O(swcci_bg_result, percent)
    O(swcci_bg_result, rsvd)
    S(swcci_mmpt_msg) O(swcci_mmpt_msg, msg_type) O(swcci_mmpt_msg, rsvd0) O(swcci_mmpt_msg, timeout_ms)
    O(swcci_mmpt_msg, len) O(swcci_mmpt_msg, retval) O(swcci_mmpt_msg, data)
    S(swcci_mmb_command) O(swcci_mmb_command, opcode) O(swcci_mmb_command, opcode_vendor)
    O(swcci_mmb_command, retval) O(swcci_mmb_command, vendor_status) O(swcci_mmb_command, rsvd)
    O(swcci_mmb_command, in.size) O(swcci_mmb_command, in.payload)
    O(swcci_mmb_command, out.size) O(swcci_mmb_command, out.payload)
    V(CXL_MEM_QUERY_COMMANDS) V(CXL_MEM_SEND_COMMAND) V(CXL_MEM_COMMAND_ID_RAW)
#ifdef CXL_MEM_COMMAND_FLAG_ENABLED /* newer than bookworm's 6.1 headers */
    V(CXL_MEM_COMMAND_FLAG_ENABLED) V(CXL_MEM_COMMAND_FLAG_EXCLUSIVE)
#endif
    V(SWCCI_IOCTL_INFO) V(SWCCI_IOCTL_BG_POLICY) V(SWCCI_VERSION)
    V(SWCCI_KIND_SWITCH_CCI) V(SWCCI_KIND_MMB) V(SWCCI_KIND_MMPT)
    V(SWCCI_INFO_IRQ) V(SWCCI_INFO_BG_IRQ) V(SWCCI_INFO_MMB) V(SWCCI_INFO_MMPT) V(SWCCI_INFO_CXL)
    V(SWCCI_INFO_IDENTIFIED) V(SWCCI_BG_ABORT_ON_TIMEOUT) V(SWCCI_BG_ABORT_ON_SIGNAL)
    V(SWCCI_BG_TIMEOUT_MIN_MS) V(SWCCI_BG_TIMEOUT_MAX_MS) V(SWCCI_BG_ASYNC)
    V(SWCCI_IOCTL_BG_RESULT) V(SWCCI_BG_STATE_NONE) V(SWCCI_BG_STATE_RUNNING)
    V(SWCCI_BG_STATE_DONE) V(SWCCI_BG_STATE_LOST) V(SWCCI_BG_STATE_VANISHED)
    V(SWCCI_MMPT_SEND) V(SWCCI_MMPT_RECV) V(SWCCI_MMB_SEND_COMMAND) V(SWCCI_MMPT_TIMEOUT_MAX_MS)
    return 0;
}
"#;

/// Compiles and runs the program with `extra` compiler flags; returns name -> value.
fn c_facts(extra: &[&str]) -> Option<BTreeMap<String, u64>> {
    let dir =
        std::env::temp_dir().join(format!("swcci-uapi-{}-{}", std::process::id(), extra.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, PROGRAM).unwrap();
    let include = manifest_dir().join("../include/uapi");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(extra)
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run the C compiler");
    if !out.status.success() {
        if extra.is_empty() {
            panic!("{cc} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        eprintln!(
            "skipping {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let run = Command::new(&exe).output().expect("run the C program");
    assert!(run.status.success());
    let mut facts = BTreeMap::new();
    for line in String::from_utf8(run.stdout).unwrap().lines() {
        let mut f = line.split_whitespace();
        let (_, name, value) = (f.next(), f.next().unwrap(), f.next().unwrap());
        facts.insert(name.to_string(), value.parse().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Some(facts)
}

fn rust_facts() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: usize| {
        m.insert(k.to_string(), v as u64);
    };
    put("cxl_send_command", size_of::<CxlSendCommand>());
    put("cxl_send_command.id", offset_of!(CxlSendCommand, id));
    put("cxl_send_command.flags", offset_of!(CxlSendCommand, flags));
    put(
        "cxl_send_command.raw.opcode",
        offset_of!(CxlSendCommand, raw_opcode),
    );
    put(
        "cxl_send_command.raw.rsvd",
        offset_of!(CxlSendCommand, raw_rsvd),
    );
    put(
        "cxl_send_command.retval",
        offset_of!(CxlSendCommand, retval),
    );
    put(
        "cxl_send_command.in.size",
        offset_of!(CxlSendCommand, input) + offset_of!(CxlPayload, size),
    );
    put(
        "cxl_send_command.in.rsvd",
        offset_of!(CxlSendCommand, input) + offset_of!(CxlPayload, rsvd),
    );
    put(
        "cxl_send_command.in.payload",
        offset_of!(CxlSendCommand, input) + offset_of!(CxlPayload, payload),
    );
    put(
        "cxl_send_command.out.size",
        offset_of!(CxlSendCommand, output) + offset_of!(CxlPayload, size),
    );
    put(
        "cxl_send_command.out.rsvd",
        offset_of!(CxlSendCommand, output) + offset_of!(CxlPayload, rsvd),
    );
    put(
        "cxl_send_command.out.payload",
        offset_of!(CxlSendCommand, output) + offset_of!(CxlPayload, payload),
    );
    put("cxl_command_info", size_of::<CxlCommandInfo>());
    put("cxl_command_info.id", offset_of!(CxlCommandInfo, id));
    put("cxl_command_info.flags", offset_of!(CxlCommandInfo, flags));
    put(
        "cxl_command_info.size_in",
        offset_of!(CxlCommandInfo, size_in),
    );
    put(
        "cxl_command_info.size_out",
        offset_of!(CxlCommandInfo, size_out),
    );
    put("cxl_mem_query_commands", size_of::<CxlMemQueryCommands>());
    put(
        "cxl_mem_query_commands.n_commands",
        offset_of!(CxlMemQueryCommands, n_commands),
    );
    put(
        "cxl_mem_query_commands.rsvd",
        offset_of!(CxlMemQueryCommands, rsvd),
    );
    put(
        "cxl_mem_query_commands.commands",
        size_of::<CxlMemQueryCommands>(),
    );
    put("swcci_info", size_of::<SwcciInfo>());
    macro_rules! info {
        ($($f:ident)*) => { $(put(concat!("swcci_info.", stringify!($f)), offset_of!(SwcciInfo, $f));)* };
    }
    info!(version kind flags payload_size cel_entries pci_vendor pci_device vendor_id device_id
        subsys_vendor_id subsys_id serial max_msg_size_log2 component_type rsvd0 pci_addr node rsvd1);
    put("swcci_bg_policy", size_of::<SwcciBgPolicy>());
    put(
        "swcci_bg_policy.timeout_ms",
        offset_of!(SwcciBgPolicy, timeout_ms),
    );
    put("swcci_bg_policy.flags", offset_of!(SwcciBgPolicy, flags));
    put("swcci_bg_result", size_of::<SwcciBgResult>());
    macro_rules! bgr {
        ($($f:ident)*) => { $(put(concat!("swcci_bg_result.", stringify!($f)), offset_of!(SwcciBgResult, $f));)* };
    }
    bgr!(opcode retval vendor_status state percent rsvd);
    put("swcci_mmpt_msg", size_of::<SwcciMmptMsg>());
    macro_rules! msg {
        ($($f:ident)*) => { $(put(concat!("swcci_mmpt_msg.", stringify!($f)), offset_of!(SwcciMmptMsg, $f));)* };
    }
    msg!(msg_type rsvd0 timeout_ms len retval data);
    put("swcci_mmb_command", size_of::<SwcciMmbCommand>());
    macro_rules! mmb {
        ($($f:ident)*) => { $(put(concat!("swcci_mmb_command.", stringify!($f)), offset_of!(SwcciMmbCommand, $f));)* };
    }
    mmb!(opcode opcode_vendor retval vendor_status rsvd);
    put(
        "swcci_mmb_command.in.size",
        offset_of!(SwcciMmbCommand, input) + offset_of!(CxlPayload, size),
    );
    put(
        "swcci_mmb_command.in.payload",
        offset_of!(SwcciMmbCommand, input) + offset_of!(CxlPayload, payload),
    );
    put(
        "swcci_mmb_command.out.size",
        offset_of!(SwcciMmbCommand, output) + offset_of!(CxlPayload, size),
    );
    put(
        "swcci_mmb_command.out.payload",
        offset_of!(SwcciMmbCommand, output) + offset_of!(CxlPayload, payload),
    );
    let mut val = |k: &str, v: u32| {
        m.insert(k.to_string(), u64::from(v));
    };
    val("CXL_MEM_QUERY_COMMANDS", CXL_MEM_QUERY_COMMANDS);
    val("CXL_MEM_SEND_COMMAND", CXL_MEM_SEND_COMMAND);
    val("CXL_MEM_COMMAND_ID_RAW", CXL_MEM_COMMAND_ID_RAW);
    val("CXL_MEM_COMMAND_FLAG_ENABLED", CXL_MEM_COMMAND_FLAG_ENABLED);
    val(
        "CXL_MEM_COMMAND_FLAG_EXCLUSIVE",
        CXL_MEM_COMMAND_FLAG_EXCLUSIVE,
    );
    val("SWCCI_IOCTL_INFO", SWCCI_IOCTL_INFO);
    val("SWCCI_IOCTL_BG_POLICY", SWCCI_IOCTL_BG_POLICY);
    val("SWCCI_VERSION", SWCCI_VERSION);
    val("SWCCI_KIND_SWITCH_CCI", SWCCI_KIND_SWITCH_CCI);
    val("SWCCI_KIND_MMB", SWCCI_KIND_MMB);
    val("SWCCI_KIND_MMPT", SWCCI_KIND_MMPT);
    val("SWCCI_INFO_IRQ", SWCCI_INFO_IRQ);
    val("SWCCI_INFO_BG_IRQ", SWCCI_INFO_BG_IRQ);
    val("SWCCI_INFO_MMB", SWCCI_INFO_MMB);
    val("SWCCI_INFO_MMPT", SWCCI_INFO_MMPT);
    val("SWCCI_INFO_CXL", SWCCI_INFO_CXL);
    val("SWCCI_INFO_IDENTIFIED", SWCCI_INFO_IDENTIFIED);
    val("SWCCI_BG_ABORT_ON_TIMEOUT", SWCCI_BG_ABORT_ON_TIMEOUT);
    val("SWCCI_BG_ABORT_ON_SIGNAL", SWCCI_BG_ABORT_ON_SIGNAL);
    val("SWCCI_BG_TIMEOUT_MIN_MS", SWCCI_BG_TIMEOUT_MIN_MS);
    val("SWCCI_BG_TIMEOUT_MAX_MS", SWCCI_BG_TIMEOUT_MAX_MS);
    val("SWCCI_BG_ASYNC", SWCCI_BG_ASYNC);
    val("SWCCI_IOCTL_BG_RESULT", SWCCI_IOCTL_BG_RESULT);
    for (k, v) in [
        ("SWCCI_BG_STATE_NONE", SWCCI_BG_STATE_NONE),
        ("SWCCI_BG_STATE_RUNNING", SWCCI_BG_STATE_RUNNING),
        ("SWCCI_BG_STATE_DONE", SWCCI_BG_STATE_DONE),
        ("SWCCI_BG_STATE_LOST", SWCCI_BG_STATE_LOST),
        ("SWCCI_BG_STATE_VANISHED", SWCCI_BG_STATE_VANISHED),
    ] {
        val(k, u32::from(v));
    }
    val("SWCCI_MMPT_SEND", SWCCI_MMPT_SEND);
    val("SWCCI_MMPT_RECV", SWCCI_MMPT_RECV);
    val("SWCCI_MMB_SEND_COMMAND", SWCCI_MMB_SEND_COMMAND);
    val("SWCCI_MMPT_TIMEOUT_MAX_MS", SWCCI_MMPT_TIMEOUT_MAX_MS);
    m
}

fn compare(c: &BTreeMap<String, u64>, what: &str) {
    let r = rust_facts();
    for (k, v) in c {
        assert_eq!(
            r.get(k),
            Some(v),
            "{what}: {k}: C says {v}, Rust says {:?}",
            r.get(k)
        );
    }
    // Flags that older <linux/cxl_mem.h> (before Linux 6.3) lacks; uapi.rs follows 7.3.
    const OPTIONAL: &[&str] = &[
        "CXL_MEM_COMMAND_FLAG_ENABLED",
        "CXL_MEM_COMMAND_FLAG_EXCLUSIVE",
    ];
    for k in r.keys() {
        assert!(
            c.contains_key(k) || OPTIONAL.contains(&k.as_str()),
            "{what}: {k} is not checked against C"
        );
    }
}

#[test]
fn rust_mirror_matches_c_headers() {
    compare(&c_facts(&[]).expect("native build"), "native");
}

#[test]
fn same_layout_for_32bit_processes() {
    // The sizes are encoded in the ioctl numbers: equal values prove the compat ABI.
    if let Some(facts) = c_facts(&["-m32", "-I/usr/include/x86_64-linux-gnu"]) {
        compare(&facts, "-m32");
    }
}

/// This checkout's rust/ directory, as cargo names it when it runs the test (not the one the
/// test binary was compiled in: checkouts that share a target directory share binaries).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo test sets CARGO_MANIFEST_DIR")
        .into()
}
