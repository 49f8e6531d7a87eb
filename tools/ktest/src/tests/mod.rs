// SPDX-License-Identifier: GPL-2.0

//! Every in-guest test, by scenario. A scenario is one boot; tests of a scenario run in the
//! order listed here and may rely on what earlier ones left (the module loaded, say), but each
//! one (re)establishes what it needs.

mod abi;
mod abuse;
mod bench;
mod cli;
mod cmdpath;
mod demo;
mod driver;
mod emu;
mod events;
mod faultinject;
mod fuzz;
mod fw;
mod fwctl;
mod interop;
mod mctp;
mod mmpt_paths;
mod policy;
mod poll;
mod pooling;
mod signals;
mod stress;
mod sysfs;
mod topology;

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
    Test {
        name: "bench_cxl_pci_path",
        scenarios: &["bench"],
        run: bench::cxl_pci_path,
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
    // fwctl (Documentation/fwctl.rst). Before any state-changing command of the boot: the
    // scope test checks that the taint flags are clear before it.
    Test {
        name: "fwctl_device_per_switch_cci",
        scenarios: &["main"],
        run: fwctl::devices,
    },
    Test {
        name: "fwctl_info",
        scenarios: &["main"],
        run: fwctl::info,
    },
    Test {
        name: "fwctl_rpc_layout_matches_c_header",
        scenarios: &["main"],
        run: fwctl::rpc_layout,
    },
    Test {
        name: "fwctl_identify_at_lowest_scope",
        scenarios: &["main"],
        run: fwctl::identify,
    },
    Test {
        name: "fwctl_rejects_malformed_requests",
        scenarios: &["main"],
        run: fwctl::bad_requests,
    },
    Test {
        name: "fwctl_scope_refusal_and_taint",
        scenarios: &["main"],
        run: fwctl::scopes_and_taint,
    },
    Test {
        name: "fwctl_tunnelled_commands_by_class",
        scenarios: &["main"],
        run: fwctl::tunnelled_commands_by_class,
    },
    Test {
        name: "fwctl_unbind_and_unload_with_open_file",
        scenarios: &["main"],
        run: fwctl::unbind_open_file,
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
    // sysfs attributes (also in the emu scenario: MMPT functions, both modes).
    Test {
        name: "sysfs_attributes_equal_info_ioctl",
        scenarios: &["main", "emu"],
        run: sysfs::equal_info,
    },
    Test {
        name: "sysfs_udev_serial_helper",
        scenarios: &["main", "emu"],
        run: sysfs::udev_helper,
    },
    Test {
        name: "sysfs_attributes_go_with_unbind_and_rmmod",
        scenarios: &["main", "emu"],
        run: sysfs::unbind_rebind,
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
        name: "unbind_disables_the_function",
        scenarios: &["main"],
        run: cmdpath::unbind_disables_the_function,
    },
    Test {
        name: "rmmod_with_open_file",
        scenarios: &["main"],
        run: stress::rmmod_open_file,
    },
    Test {
        name: "rmmod_with_debugfs_file_open",
        scenarios: &["main"],
        run: cmdpath::rmmod_with_debugfs_file_open,
    },
    Test {
        name: "module_reload",
        scenarios: &["main"],
        run: stress::reload,
    },
    // The swcci tool on QEMU's switches (Documentation/cli.rst).
    Test {
        name: "cli_list_matches_topology",
        scenarios: &["main"],
        run: cli::list,
    },
    Test {
        name: "cli_identify_direct_and_tunnelled",
        scenarios: &["main"],
        run: cli::identify,
    },
    Test {
        name: "cli_switch_info_and_ports_match_topology",
        scenarios: &["main"],
        run: cli::switch_info_and_ports,
    },
    Test {
        name: "cli_logs_cel_bg_status",
        scenarios: &["main"],
        run: cli::logs_cel_bg_status,
    },
    Test {
        name: "cli_raw_and_tunnel",
        scenarios: &["main"],
        run: cli::raw_and_tunnel,
    },
    Test {
        name: "cli_refusals",
        scenarios: &["main"],
        run: cli::refusals,
    },
    Test {
        name: "cli_topology_matches_topology",
        scenarios: &["main"],
        run: cli::topology,
    },
    Test {
        name: "no_leaks_after_unload",
        scenarios: &["main"],
        run: stress::kmemleak,
    },
    // Taint rules on the emulated functions: first in the scenario, while TAINT_USER is
    // clear.
    Test {
        name: "taint_clear_for_read_only_mmb_and_quiet_commands",
        scenarios: &["emu"],
        run: cmdpath::taint_clear_for_read_only_mmb_and_quiet_commands,
    },
    Test {
        name: "taint_driver_abort_names_0005h",
        scenarios: &["emu"],
        run: cmdpath::taint_driver_abort,
    },
    Test {
        name: "taint_receive_message_needs_mmpt",
        scenarios: &["emu"],
        run: cmdpath::taint_receive_message_needs_mmpt,
    },
    Test {
        name: "taint_reserved_cel_effect_bits",
        scenarios: &["emu"],
        run: cmdpath::taint_reserved_cel_effect_bits,
    },
    // Against the device emulator: MMPT, interrupts vs polling, background commands, faults.
    Test {
        name: "emu_bind_every_personality",
        scenarios: &["emu"],
        run: emu::bind,
    },
    Test {
        name: "poll_async_background_command",
        scenarios: &["emu"],
        run: poll::async_background,
    },
    Test {
        name: "poll_mmpt_message_wakes_every_poller",
        scenarios: &["emu"],
        run: poll::mmpt_message,
    },
    Test {
        name: "poll_hup_at_unbind",
        scenarios: &["emu"],
        run: poll::hup_at_unbind,
    },
    Test {
        name: "poll_epollpri_for_events",
        scenarios: &["emu"],
        run: poll::events_pri,
    },
    Test {
        name: "events_follow_sleeps_in_poll",
        scenarios: &["emu"],
        run: poll::events_follow,
    },
    Test {
        name: "events_c_daemon_loop",
        scenarios: &["emu"],
        run: poll::events_c_daemon,
    },
    Test {
        name: "cli_raw_async_waits_in_poll",
        scenarios: &["emu"],
        run: poll::cli_raw_async,
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
        name: "emu_msi_through_machine_msi_controller",
        scenarios: &["emu"],
        run: emu::msi_controller,
    },
    // The swcci tool on the emulated devices; topology against the emulator's fabric.
    Test {
        name: "cli_emu_every_subcommand",
        scenarios: &["emu"],
        run: topology::commands,
    },
    Test {
        name: "cli_emu_topology_matches_description",
        scenarios: &["emu"],
        run: topology::topology,
    },
    Test {
        name: "cli_emu_bind_unbind_changes_the_view",
        scenarios: &["emu"],
        run: topology::bind_unbind,
    },
    Test {
        name: "cli_emu_dead_device_reported_partial",
        scenarios: &["emu"],
        run: topology::dead_device_partial,
    },
    // Event records (Documentation/events.rst) on the emulated switch.
    Test {
        name: "events_bind_unbind_shown_and_cleared",
        scenarios: &["emu"],
        run: events::bind_unbind_records,
    },
    Test {
        name: "events_overflow_reported",
        scenarios: &["emu"],
        run: events::overflow_reported,
    },
    Test {
        name: "events_of_a_device_behind_a_port",
        scenarios: &["emu"],
        run: events::tunnelled_device_records,
    },
    Test {
        name: "sysfs_mode_follows_interrupt_fallback",
        scenarios: &["emu"],
        run: sysfs::mode_follows_fallback,
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
        name: "fault_reset_or_removal_after_completion",
        scenarios: &["emu"],
        run: emu::fault_reset_or_removal_after_completion,
    },
    Test {
        name: "fault_reset_or_removal_mid_message",
        scenarios: &["emu"],
        run: emu::fault_reset_or_removal_mid_message,
    },
    Test {
        name: "fault_short_cel_kept",
        scenarios: &["emu"],
        run: emu::fault_short_cel,
    },
    // Signals, unbind, interrupt vectors, attention, slow and broken MMPT transfers, two
    // callers' background commands, resets and log volume.
    Test {
        name: "bg_wait_survives_stop_and_ptrace",
        scenarios: &["emu"],
        run: signals::bg_wait_survives_stop_and_ptrace,
    },
    Test {
        name: "bg_wait_after_a_handled_signal",
        scenarios: &["emu"],
        run: signals::bg_wait_handled_signal,
    },
    Test {
        name: "bg_fatal_signal_aborts_only_by_policy",
        scenarios: &["emu"],
        run: signals::bg_fatal_signal_aborts_by_policy,
    },
    Test {
        name: "mmpt_receive_survives_stop_and_continue",
        scenarios: &["emu"],
        run: signals::mmpt_receive_survives_stop,
    },
    Test {
        name: "unbind_wakes_every_mmpt_receiver",
        scenarios: &["emu"],
        run: signals::unbind_wakes_every_receiver,
    },
    Test {
        name: "msi_function_gets_one_vector",
        scenarios: &["emu"],
        run: cmdpath::msi_function_gets_one_vector,
    },
    Test {
        name: "msix_only_the_vectors_used",
        scenarios: &["emu"],
        run: cmdpath::msix_only_the_vectors_used,
    },
    Test {
        name: "abort_does_the_attention_handshake",
        scenarios: &["emu"],
        run: cmdpath::abort_does_the_attention_handshake,
    },
    Test {
        name: "bg_wait_ends_when_the_function_dies",
        scenarios: &["emu"],
        run: cmdpath::bg_wait_ends_when_the_function_dies,
    },
    Test {
        name: "mmpt_slow_send_lets_others_in",
        scenarios: &["emu"],
        run: mmpt_paths::slow_send_lets_others_in,
    },
    Test {
        name: "mmpt_send_timeout_caps_the_transfer",
        scenarios: &["emu"],
        run: mmpt_paths::send_timeout_caps_the_transfer,
    },
    Test {
        name: "mmpt_receive_oversized_message_discarded",
        scenarios: &["emu"],
        run: mmpt_paths::receive_oversized_message_discarded,
    },
    Test {
        name: "mmpt_receive_failing_part_aborted",
        scenarios: &["emu"],
        run: mmpt_paths::receive_failing_part_aborted,
    },
    Test {
        name: "bg_two_callers_lose_nothing",
        scenarios: &["emu"],
        run: cmdpath::bg_two_callers_lose_nothing,
    },
    Test {
        name: "fw_update_beside_long_background_commands",
        scenarios: &["emu"],
        run: cmdpath::fw_update_beside_long_background_commands,
    },
    Test {
        name: "bg_reset_fails_the_superseded_waiter",
        scenarios: &["emu"],
        run: cmdpath::bg_reset_fails_the_waiter,
    },
    Test {
        name: "mmpt_transfer_cut_off_then_rebind",
        scenarios: &["emu"],
        run: cmdpath::mmpt_transfer_cut_off_then_rebind,
    },
    Test {
        name: "log_lines_bounded",
        scenarios: &["emu"],
        run: cmdpath::log_lines_bounded,
    },
    Test {
        name: "bg_policy_one_atomic_update",
        scenarios: &["main"],
        run: abi::bg_policy_atomic,
    },
    Test {
        name: "emu_unload",
        scenarios: &["emu"],
        run: emu::unload,
    },
    Test {
        name: "bench_topology_8_switches_x_4_devices",
        scenarios: &["bench-topology"],
        run: topology::bench,
    },
    Test {
        name: "bench_emu_wait_cpu_and_latency",
        scenarios: &["bench-emu"],
        run: bench::emu_wait,
    },
    Test {
        name: "bench_events_follow_idle_cpu_and_latency",
        scenarios: &["bench-emu"],
        run: poll::events_bench,
    },
    // Firmware update: the emulated switch and QEMU's switch side by side.
    Test {
        name: "fw_update_emulated_switch",
        scenarios: &["fw"],
        run: fw::update_emulated,
    },
    Test {
        name: "fw_update_through_qemu_switch",
        scenarios: &["fw"],
        run: fw::update_through_qemu_switch,
    },
    Test {
        name: "fw_update_through_emulated_tunnels",
        scenarios: &["fw"],
        run: fw::update_tunnelled_emulated,
    },
    Test {
        name: "fw_interrupted_update_aborted",
        scenarios: &["fw"],
        run: fw::interrupted,
    },
    Test {
        name: "fw_faults_messages_and_statuses",
        scenarios: &["fw"],
        run: fw::faults,
    },
    Test {
        name: "fw_interrupted_tunnelled_update_aborted",
        scenarios: &["fw"],
        run: fw::interrupted_tunnelled,
    },
    Test {
        name: "fw_tunnelled_faults_messages_and_statuses",
        scenarios: &["fw"],
        run: fw::tunnelled_faults,
    },
    Test {
        name: "fw_concurrent_identify",
        scenarios: &["fw"],
        run: fw::concurrent_identify,
    },
    // Memory pooling (Documentation/pooling.rst): QEMU's DCD behind QEMU's switch, the host
    // played on its own mailbox; the emulated MLD's LD allocations.
    Test {
        name: "dcd_info_regions_extents",
        scenarios: &["fw"],
        run: pooling::read,
    },
    Test {
        name: "dcd_configure_region",
        scenarios: &["fw"],
        run: pooling::configure,
    },
    Test {
        name: "dcd_add_pending_accept_release_forced",
        scenarios: &["fw"],
        run: pooling::add_accept_release,
    },
    Test {
        name: "dcd_add_errors",
        scenarios: &["fw"],
        run: pooling::add_errors,
    },
    Test {
        name: "dcd_release_errors",
        scenarios: &["fw"],
        run: pooling::release_errors,
    },
    Test {
        name: "dcd_512_extents_exhausted_paged",
        scenarios: &["fw"],
        run: pooling::resources_exhausted,
    },
    Test {
        name: "dcd_rawio_taint_line_fwctl_scope",
        scenarios: &["fw"],
        run: pooling::driver_policy,
    },
    Test {
        name: "ld_alloc_emulated_mld",
        scenarios: &["fw"],
        run: pooling::ld_alloc_emulated,
    },
    // The same commands over MCTP (the first emulated switch is also an MCTP endpoint).
    Test {
        name: "mctp_link_control_and_list",
        scenarios: &["fw"],
        run: mctp::link_and_list,
    },
    Test {
        name: "mctp_cli_answers_as_the_driver",
        scenarios: &["fw"],
        run: mctp::answers_as_the_driver,
    },
    Test {
        name: "mctp_state_changes_as_the_driver",
        scenarios: &["fw"],
        run: mctp::state_changes_as_the_driver,
    },
    Test {
        name: "mctp_fw_update_switch_and_device",
        scenarios: &["fw"],
        run: mctp::fw_update,
    },
    Test {
        name: "mctp_fw_interrupted_update_aborted",
        scenarios: &["fw"],
        run: mctp::fw_interrupted,
    },
    Test {
        name: "mctp_faults_error_or_retried_success",
        scenarios: &["fw"],
        run: mctp::faults,
    },
    Test {
        name: "mctp_silent_endpoint_fails_within_bound",
        scenarios: &["fw"],
        run: mctp::silent_endpoint_bound,
    },
    Test {
        name: "mctp_identify_during_fw_transfer",
        scenarios: &["fw"],
        run: mctp::identify_during_transfer,
    },
    Test {
        name: "bench_fw_16mib",
        scenarios: &["bench-fw"],
        run: fw::bench,
    },
    Test {
        name: "bench_dcd_add_release",
        scenarios: &["bench-fw"],
        run: pooling::bench,
    },
    Test {
        name: "bench_mctp_identify_and_fw",
        scenarios: &["bench-fw"],
        run: mctp::bench,
    },
    // Hardened kernel (KASAN, UBSAN, kmemleak, fault injection): the fuzzer, unbind and
    // removal under load, injected failures, and leaks. The order matters: the taint test
    // needs a kernel no raw command has tainted yet, the leak scan comes last.
    Test {
        name: "hardened_kernel_has_sanitizers_and_fault_injection",
        scenarios: &["hardened"],
        run: abuse::hardened_kernel,
    },
    Test {
        name: "taint_only_for_commands_that_reach_a_device",
        scenarios: &["hardened"],
        run: abuse::taint_only_for_sent_commands,
    },
    Test {
        name: "fuzz_switch_nodes",
        scenarios: &["hardened", "fuzz"],
        run: fuzz::switch_nodes,
    },
    Test {
        name: "fuzz_mmpt_nodes",
        scenarios: &["hardened", "fuzz"],
        run: fuzz::mmpt_nodes_test,
    },
    Test {
        name: "unbind_rebind_under_load_20_cycles",
        scenarios: &["hardened"],
        run: abuse::rebind_under_load,
    },
    Test {
        name: "pci_remove_rescan_under_load_20_cycles",
        scenarios: &["hardened"],
        run: abuse::remove_rescan_under_load,
    },
    Test {
        name: "fail_nth_during_probe",
        scenarios: &["hardened"],
        run: faultinject::probe,
    },
    Test {
        name: "fail_nth_during_each_ioctl",
        scenarios: &["hardened"],
        run: faultinject::ioctls,
    },
    Test {
        name: "failslab_task_filter_under_load",
        scenarios: &["hardened"],
        run: faultinject::failslab,
    },
    Test {
        name: "mmpt_send_never_fails_after_acceptance",
        scenarios: &["hardened"],
        run: mmpt_paths::send_never_fails_after_acceptance,
    },
    Test {
        name: "mmpt_receive_fault_keeps_the_message",
        scenarios: &["hardened"],
        run: mmpt_paths::receive_fault_keeps_the_message,
    },
    Test {
        name: "module_without_fwctl_binds_with_fwctl_off",
        scenarios: &["hardened"],
        run: fwctl::module_without_fwctl,
    },
    Test {
        name: "rmmod_with_debugfs_file_open",
        scenarios: &["hardened"],
        run: cmdpath::rmmod_with_debugfs_file_open,
    },
    Test {
        name: "kmemleak_nothing_of_the_module_after_unload",
        scenarios: &["hardened"],
        run: abuse::no_leaks_after_unload,
    },
    // Taint (fresh boots).
    Test {
        name: "taint_clear_after_read_only_commands",
        scenarios: &["taint"],
        run: policy::taint_read_only,
    },
    Test {
        name: "taint_not_for_refused_state_changing_commands",
        scenarios: &["taint"],
        run: policy::taint_not_for_refused,
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
    Test {
        name: "fwctl_lockdown_refuses_commands",
        scenarios: &["lockdown"],
        run: fwctl::lockdown,
    },
    Test {
        name: "fwctl_lockdown_checked_before_scope",
        scenarios: &["lockdown"],
        run: fwctl::lockdown_before_scope,
    },
];
