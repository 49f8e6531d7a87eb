// SPDX-License-Identifier: GPL-2.0

//! Every in-guest test, by scenario. A scenario is one boot; tests of a scenario run in the
//! order listed here and may rely on what earlier ones left (the module loaded, say), but each
//! one (re)establishes what it needs.

mod abi;
mod bench;
mod demo;
mod driver;
mod emu;
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
        name: "bench_command_path",
        scenarios: &["bench"],
        run: bench::command_path,
    },
    Test {
        name: "bench_switch_commands",
        scenarios: &["bench"],
        run: bench::switch_commands,
    },
    Test {
        name: "bench_concurrent_clients",
        scenarios: &["bench"],
        run: bench::concurrent_clients,
    },
    // Driver core.
    Test {
        name: "module_load_binds_every_switch_cci",
        scenarios: &["main"],
        run: driver::load_binds,
    },
    Test {
        name: "probe_line_per_device",
        scenarios: &["main"],
        run: driver::probe_lines,
    },
    Test {
        name: "identify_matches_topology",
        scenarios: &["main"],
        run: driver::identify,
    },
    Test {
        name: "identify_switch_device_matches_topology",
        scenarios: &["main"],
        run: driver::identify_switch,
    },
    Test {
        name: "port_state_matches_topology",
        scenarios: &["main"],
        run: driver::port_state,
    },
    Test {
        name: "cel_read_at_probe_lists_qemu_commands",
        scenarios: &["main"],
        run: driver::cel_at_probe,
    },
    Test {
        name: "debugfs_counts_commands",
        scenarios: &["main"],
        run: driver::debugfs_counts,
    },
    // ABI.
    Test {
        name: "query_commands",
        scenarios: &["main"],
        run: abi::query,
    },
    Test {
        name: "info_ioctl",
        scenarios: &["main"],
        run: abi::info,
    },
    Test {
        name: "send_rejects_bad_input",
        scenarios: &["main"],
        run: abi::bad_input,
    },
    Test {
        name: "bad_user_pointers_fault_without_device_access",
        scenarios: &["main"],
        run: abi::bad_pointers,
    },
    Test {
        name: "unknown_ioctls",
        scenarios: &["main"],
        run: abi::unknown_ioctls,
    },
    Test {
        name: "timestamp_refused_on_quirky_switch",
        scenarios: &["main"],
        run: abi::timestamp_quirk,
    },
    Test {
        name: "get_log_cel_equals_probe",
        scenarios: &["main"],
        run: abi::cel_via_node,
    },
    Test {
        name: "tunnel_identify_each_type3",
        scenarios: &["main"],
        run: abi::tunnel_identify,
    },
    Test {
        name: "tunnel_two_levels",
        scenarios: &["main"],
        run: abi::tunnel_two_levels,
    },
    Test {
        name: "tunnel_to_empty_port",
        scenarios: &["main"],
        run: abi::tunnel_empty_port,
    },
    Test {
        name: "output_truncated_to_callers_buffer",
        scenarios: &["main"],
        run: abi::short_output,
    },
    Test {
        name: "bg_policy_ioctl",
        scenarios: &["main"],
        run: abi::bg_policy,
    },
    Test {
        name: "no_cap_sys_rawio_eperm",
        scenarios: &["main"],
        run: policy::no_rawio,
    },
    Test {
        name: "c_abi_libcxlmi_sequence",
        scenarios: &["main"],
        run: interop::c_abi,
    },
    Test {
        name: "c_abi_32bit_compat",
        scenarios: &["main"],
        run: interop::c_abi_32,
    },
    Test {
        name: "concurrent_8x1000",
        scenarios: &["main"],
        run: stress::concurrent,
    },
    Test {
        name: "unbind_with_open_file_enxio",
        scenarios: &["main"],
        run: stress::unbind_open_file,
    },
    Test {
        name: "unbind_rebind_20_times",
        scenarios: &["main"],
        run: stress::rebind_20,
    },
    Test {
        name: "rmmod_with_open_file",
        scenarios: &["main"],
        run: stress::rmmod_open_file,
    },
    Test {
        name: "module_reload",
        scenarios: &["main"],
        run: stress::reload,
    },
    Test {
        name: "no_leaks_after_unload",
        scenarios: &["main"],
        run: stress::kmemleak,
    },
    // Against the device emulator: MMPT, interrupts vs polling, background commands, faults.
    Test {
        name: "emu_bind_every_personality",
        scenarios: &["emu"],
        run: emu::bind,
    },
    Test {
        name: "emu_bind_mmpt_by_driver_override",
        scenarios: &["emu"],
        run: emu::bind_by_driver_override,
    },
    Test {
        name: "emu_interrupts_and_polling",
        scenarios: &["emu"],
        run: emu::irq_vs_poll,
    },
    Test {
        name: "mmpt_round_trip_1_byte_one_payload_several",
        scenarios: &["emu"],
        run: emu::mmpt_round_trip,
    },
    Test {
        name: "mmpt_receive_times_out_and_wakes",
        scenarios: &["emu"],
        run: emu::mmpt_receive_timeout,
    },
    Test {
        name: "mmpt_receive_buffer_too_small",
        scenarios: &["emu"],
        run: emu::mmpt_small_buffer,
    },
    Test {
        name: "mmpt_inline_response",
        scenarios: &["emu"],
        run: emu::mmpt_inline_response,
    },
    Test {
        name: "mmb_raw_command_with_vendor_id",
        scenarios: &["emu"],
        run: emu::mmpt_raw_command,
    },
    Test {
        name: "fault_doorbell_never_clears",
        scenarios: &["emu"],
        run: emu::fault_doorbell_stuck,
    },
    Test {
        name: "fault_completion_delayed",
        scenarios: &["emu"],
        run: emu::fault_delay,
    },
    Test {
        name: "fault_output_longer_than_payload",
        scenarios: &["emu"],
        run: emu::fault_bad_length,
    },
    Test {
        name: "fault_unknown_return_code",
        scenarios: &["emu"],
        run: emu::fault_unknown_rc,
    },
    Test {
        name: "background_progress_and_completion",
        scenarios: &["emu"],
        run: emu::bg_completes,
    },
    Test {
        name: "background_timeout_aborts",
        scenarios: &["emu"],
        run: emu::bg_timeout_abort,
    },
    Test {
        name: "background_abort_unsupported",
        scenarios: &["emu"],
        run: emu::bg_abort_unsupported,
    },
    Test {
        name: "fault_background_stuck_and_never",
        scenarios: &["emu"],
        run: emu::bg_stuck,
    },
    Test {
        name: "background_signal_eintr",
        scenarios: &["emu"],
        run: emu::bg_signal,
    },
    Test {
        name: "fault_interrupts_never_delivered",
        scenarios: &["emu"],
        run: emu::irq_missed_fallback,
    },
    Test {
        name: "fault_spurious_interrupts",
        scenarios: &["emu"],
        run: emu::spurious_irqs,
    },
    Test {
        name: "fault_ready_never_set",
        scenarios: &["emu"],
        run: emu::ready_never,
    },
    Test {
        name: "fault_surprise_removal_in_flight",
        scenarios: &["emu"],
        run: emu::surprise_remove,
    },
    Test {
        name: "emu_unload",
        scenarios: &["emu"],
        run: emu::unload,
    },
    Test {
        name: "bench_emu_wait_cpu_and_latency",
        scenarios: &["bench-emu"],
        run: bench::emu_wait,
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
