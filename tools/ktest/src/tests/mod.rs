// SPDX-License-Identifier: GPL-2.0

//! Every in-guest test, by scenario. A scenario is one boot; tests of a scenario run in the
//! order listed here and may rely on what earlier ones left (the module loaded, say), but each
//! one (re)establishes what it needs.

mod abi;
mod bench;
mod demo;
mod driver;
mod interop;
mod policy;
mod stress;

use crate::Test;

/// The full list.
pub static ALL: &[Test] = &[
    // Demo: the README's main command.
    Test {
        name: "demo_load",
        scenarios: &["demo"],
        run: demo::load,
    },
    Test {
        name: "demo_commands",
        scenarios: &["demo"],
        run: demo::commands,
    },
    // Benchmarks (tools/bench.sh).
    Test {
        name: "bench_identify_latency",
        scenarios: &["bench"],
        run: bench::identify_latency,
    },
    Test {
        name: "bench_concurrent_throughput",
        scenarios: &["bench"],
        run: bench::concurrent_throughput,
    },
    // Driver core.
    Test {
        name: "module_load_binds_every_switch_cci",
        scenarios: &["main", "arm64"],
        run: driver::load_binds,
    },
    Test {
        name: "probe_line_per_device",
        scenarios: &["main", "arm64"],
        run: driver::probe_lines,
    },
    Test {
        name: "identify_matches_topology",
        scenarios: &["main", "arm64"],
        run: driver::identify,
    },
    Test {
        name: "identify_switch_device_matches_topology",
        scenarios: &["main", "arm64"],
        run: driver::identify_switch,
    },
    Test {
        name: "port_state_matches_topology",
        scenarios: &["main", "arm64"],
        run: driver::port_state,
    },
    Test {
        name: "cel_read_at_probe_lists_qemu_commands",
        scenarios: &["main", "arm64"],
        run: driver::cel_at_probe,
    },
    Test {
        name: "debugfs_counts_commands",
        scenarios: &["main", "arm64"],
        run: driver::debugfs_counts,
    },
    // ABI.
    Test {
        name: "query_commands",
        scenarios: &["main", "arm64"],
        run: abi::query,
    },
    Test {
        name: "info_ioctl",
        scenarios: &["main", "arm64"],
        run: abi::info,
    },
    Test {
        name: "send_rejects_bad_input",
        scenarios: &["main", "arm64"],
        run: abi::bad_input,
    },
    Test {
        name: "bad_user_pointers_fault_without_device_access",
        scenarios: &["main", "arm64"],
        run: abi::bad_pointers,
    },
    Test {
        name: "unknown_ioctls",
        scenarios: &["main", "arm64"],
        run: abi::unknown_ioctls,
    },
    Test {
        name: "timestamp_refused_on_quirky_switch",
        scenarios: &["main", "arm64"],
        run: abi::timestamp_quirk,
    },
    Test {
        name: "get_log_cel_equals_probe",
        scenarios: &["main", "arm64"],
        run: abi::cel_via_node,
    },
    Test {
        name: "tunnel_identify_each_type3",
        scenarios: &["main", "arm64"],
        run: abi::tunnel_identify,
    },
    Test {
        name: "tunnel_two_levels",
        scenarios: &["main", "arm64"],
        run: abi::tunnel_two_levels,
    },
    Test {
        name: "tunnel_to_empty_port",
        scenarios: &["main", "arm64"],
        run: abi::tunnel_empty_port,
    },
    Test {
        name: "output_truncated_to_callers_buffer",
        scenarios: &["main", "arm64"],
        run: abi::short_output,
    },
    Test {
        name: "bg_policy_ioctl",
        scenarios: &["main", "arm64"],
        run: abi::bg_policy,
    },
    Test {
        name: "no_cap_sys_rawio_eperm",
        scenarios: &["main", "arm64"],
        run: policy::no_rawio,
    },
    Test {
        name: "c_abi_libcxlmi_sequence",
        scenarios: &["main", "arm64"],
        run: interop::c_abi,
    },
    Test {
        name: "c_abi_32bit_compat",
        scenarios: &["main", "arm64"],
        run: interop::c_abi_32,
    },
    Test {
        name: "concurrent_8x1000",
        scenarios: &["main", "arm64"],
        run: stress::concurrent,
    },
    Test {
        name: "unbind_with_open_file_enxio",
        scenarios: &["main", "arm64"],
        run: stress::unbind_open_file,
    },
    Test {
        name: "unbind_rebind_20_times",
        scenarios: &["main", "arm64"],
        run: stress::rebind_20,
    },
    Test {
        name: "rmmod_with_open_file",
        scenarios: &["main", "arm64"],
        run: stress::rmmod_open_file,
    },
    Test {
        name: "module_reload",
        scenarios: &["main", "arm64"],
        run: stress::reload,
    },
    Test {
        name: "no_leaks_after_unload",
        scenarios: &["main", "arm64"],
        run: stress::kmemleak,
    },
    // Taint (fresh boots).
    Test {
        name: "taint_clear_after_read_only_commands",
        scenarios: &["taint"],
        run: policy::taint_read_only,
    },
    Test {
        name: "taint_set_after_state_changing_command",
        scenarios: &["taint"],
        run: policy::taint_effectful,
    },
    Test {
        name: "strict_taint_taints_read_only_commands",
        scenarios: &["taint-strict"],
        run: policy::taint_strict,
    },
    // Lockdown (boot with lockdown=integrity).
    Test {
        name: "lockdown_refuses_raw_commands",
        scenarios: &["lockdown"],
        run: policy::lockdown,
    },
];
