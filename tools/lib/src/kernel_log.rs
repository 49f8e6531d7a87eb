// SPDX-License-Identifier: GPL-2.0

//! What in a guest's kernel log fails a test: the one list the runner (the whole console of a
//! boot) and the in-guest suite (the log after every test) both judge by.
//!
//! A line is trouble when it contains one of [`TROUBLE`]: an oops, a BUG (KASAN and KFENCE
//! reports start with `BUG: KASAN:` / `BUG: KFENCE:`), a WARNING, a UBSAN report, a lockdep or
//! sleep-in-atomic report, a hung task or RCU stall, a kmemleak report, a Rust panic, or any
//! stack dump (`Call Trace:` on x86, `Call trace:` on ARM), since a stack dump without one
//! of the headlines above is still the kernel saying something went wrong.
//!
//! One stack dump is expected: fault injection (`CONFIG_FAULT_INJECTION`, used by the
//! hardened scenario) reports every failure it injects as
//!
//! ```text
//! FAULT_INJECTION: forcing a failure.
//! name failslab, interval 1, probability 0, space 0, times 1
//! CPU: 0 UID: 0 PID: 91 Comm: swcci-ktest Not tainted 7.3.4 #1 PREEMPT(voluntary)
//! Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2 04/01/2014
//! Call Trace:
//!  <TASK>
//!  dump_stack_lvl+0x5d/0x80
//!  ...
//!  </TASK>
//! ```
//!
//! with the stack only at its `verbose` level 2, the default (lib/fault-inject.c: `fail_dump`).
//!
//! One warning is expected too, on the bench kernels only: Linux's cxl_pci warns once per
//! device the first time its raw command path is used (drivers/cxl/core/mbox.c,
//! `cxl_to_mem_cmd_raw`: `dev_WARN_ONCE(..., "raw command path used")`), which the benchmark
//! does on purpose to compare that path with this driver's (tools/bench.sh). The message comes
//! right before its `WARNING:` line; [`Classifier`] excuses that `WARNING:` line (when it names
//! a file of drivers/cxl/) and the stack trace marker up to the `---[ end trace` line. Every
//! other line in between is judged as usual.
//! And one consequence of an injected failure is expected: when an allocation fails while
//! `register_irq_proc` (kernel/irq/proc.c) creates an interrupt's /proc/irq/N entries, it
//! goes on without the entry, and freeing the interrupt later removes the entry that is not
//! there, which warns (`remove_proc_entry`: `name 'node'`, fs/proc/generic.c). After an
//! injected failure whose frames name `register_irq_proc`, [`Classifier`] excuses that
//! `WARNING:` line (fs/proc/generic.c, `remove_proc_entry`) and its trace marker up to the
//! `---[ end trace` line, as for cxl_pci's; a trace without `unregister_irq_proc` in it is
//! trouble again.
//! [`Classifier`] excuses exactly the lines of such a report: the header, the CPU, tainted and
//! hardware lines, the trace marker and the frames (indented lines) that follow it. The first
//! other line ends the report and is judged as usual, so a WARNING or BUG that follows an
//! injected failure still fails, and a stack dump that no injection announced fails too.

/// Kernel log text that means something went wrong in the kernel.
pub const TROUBLE: &[&str] = &[
    "Kernel panic",
    "Oops:",
    "Oops -",
    "Unable to handle kernel",
    "kernel BUG at",
    "BUG:",
    "WARNING:",
    "UBSAN:",
    "general protection fault",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "sleeping function called from invalid context",
    "INFO: task",
    "rcu: INFO",
    "refcount_t:",
    "suspected memory leak",
    "unreferenced object",
    "rust_panic",
    "panicked at",
    "Call Trace",
    "Call trace",
];

/// The header of a fault-injection report.
pub const FAULT_INJECTION: &str = "FAULT_INJECTION: forcing a failure";

/// The message that announces the expected cxl_pci warning (see the module documentation), as
/// it ends; the line starts with `cxl_pci `.
pub const CXL_RAW_WARNING: &str = ": raw command path used";

/// Whether `text` (one log line, with or without its timestamp) is trouble by itself.
pub fn is_trouble(text: &str) -> bool {
    TROUBLE.iter().any(|p| text.contains(p))
}

/// The message of a console line: without the `[   12.345678] ` timestamp, if any.
pub fn message(line: &str) -> &str {
    let t = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = t.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let stamp = &rest[..end];
            if !stamp.is_empty()
                && stamp
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == ' ')
            {
                let msg = &rest[end + 1..];
                return msg.strip_prefix(' ').unwrap_or(msg);
            }
        }
    }
    t
}

/// Judges kernel log lines in order (see the module documentation). One per log stream: a
/// fault-injection report spans several lines.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    /// Inside a fault-injection report: its header has been seen.
    in_report: bool,
    /// Inside its stack trace.
    in_trace: bool,
    /// Fault-injection reports seen.
    injected: usize,
    /// An injected failure's frames named `register_irq_proc` (see the module documentation).
    irq_proc_failed: bool,
    /// Inside an expected warning: announced, its end marker not seen yet.
    expected: Option<Expected>,
}

/// An expected kernel warning being read (see the module documentation): until its
/// `---[ end trace` marker, its `WARNING:` line (naming `file`) and its trace marker are
/// excused; with `frame`, its trace must name that function, or the end marker is trouble.
#[derive(Clone, Copy, Debug)]
struct Expected {
    file: &'static str,
    frame: Option<&'static str>,
    frame_seen: bool,
}

impl Classifier {
    /// A classifier at the start of a log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fault-injection reports seen so far.
    pub fn injected(&self) -> usize {
        self.injected
    }

    /// Whether `line` (a console line with its timestamp, or a /dev/kmsg message) is trouble.
    pub fn is_trouble(&mut self, line: &str) -> bool {
        let msg = message(line);
        if let Some(x) = &mut self.expected {
            let t = msg.trim_start();
            if t.starts_with("---[ end trace") {
                let whole = x.frame.is_none() || x.frame_seen;
                self.expected = None;
                return !whole;
            }
            if x.frame.is_some_and(|f| t.starts_with(f)) {
                x.frame_seen = true;
            }
            if (t.starts_with("WARNING:") && t.contains(x.file))
                || t.starts_with("Call Trace:")
                || t.starts_with("Call trace:")
            {
                return false;
            }
        } else if msg.starts_with("cxl_pci ") && msg.trim_end().ends_with(CXL_RAW_WARNING) {
            // Announced by its message; the WARNING line follows.
            self.expected = Some(Expected {
                file: " drivers/cxl/",
                frame: None,
                frame_seen: false,
            });
            return false;
        } else if self.irq_proc_failed
            && msg.starts_with("WARNING: fs/proc/generic.c:")
            && msg.contains(" at remove_proc_entry+")
        {
            // The interrupt's teardown after an injected failure in register_irq_proc.
            self.expected = Some(Expected {
                file: "fs/proc/generic.c",
                frame: Some("unregister_irq_proc+"),
                frame_seen: false,
            });
            return false;
        }
        if msg.contains(FAULT_INJECTION) {
            self.in_report = true;
            self.in_trace = false;
            self.injected += 1;
            return false;
        }
        if self.in_report {
            if self.excused(msg) {
                return false;
            }
            self.in_report = false;
            self.in_trace = false;
        }
        is_trouble(msg)
    }

    /// Whether `msg` belongs to the fault-injection report being read.
    fn excused(&mut self, msg: &str) -> bool {
        if self.in_trace {
            if msg.trim_start().starts_with("register_irq_proc+") {
                self.irq_proc_failed = true;
            }
            // Frames are indented (" dump_stack_lvl+0x5d/0x80", " </TASK>"); a trace from a
            // system call ends with the user registers ("RIP: 0033:...", "Code: ...",
            // "RAX: ... RBX: ...").
            return msg.starts_with(' ') || msg.starts_with('\t') || user_registers(msg);
        }
        let t = msg.trim_start();
        if t.starts_with("Call Trace:") || t.starts_with("Call trace:") {
            self.in_trace = true;
            return true;
        }
        [
            "name ",
            "CPU: ",
            "Tainted: ",
            "Hardware name: ",
            "Workqueue: ",
        ]
        .iter()
        .any(|p| msg.starts_with(p))
    }
}

/// A line of the user-mode register dump that ends an x86 trace from a system call.
fn user_registers(msg: &str) -> bool {
    if msg.starts_with("RIP: ") || msg.starts_with("Code: ") {
        return true;
    }
    let b = msg.as_bytes();
    match b.iter().position(|&c| c == b':') {
        Some(i @ 2..=3) => {
            b[0] == b'R'
                && b[1..i]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && b.get(i + 1) == Some(&b' ')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_REPORT: &str = "[   41.101520] FAULT_INJECTION: forcing a failure.
[   41.101520] name failslab, interval 1, probability 0, space 0, times 0
[   41.101866] CPU: 1 UID: 0 PID: 87 Comm: swcci-ktest Tainted: G           O       7.3.4 #1 PREEMPT(voluntary)
[   41.101869] Tainted: [O]=OOT_MODULE
[   41.101870] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2 04/01/2014
[   41.101872] Call Trace:
[   41.101874]  <TASK>
[   41.101876]  dump_stack_lvl+0x5d/0x80
[   41.101883]  should_fail_ex+0x1e9/0x200
[   41.101890]  should_failslab+0x4e/0x70
[   41.101895]  __kmalloc_noprof+0xb2/0x4a0
[   41.101900]  _RNvMs_NtCs1_cxl_swcci6device+0x42/0x90 [cxl_swcci]
[   41.101905]  entry_SYSCALL_64_after_hwframe+0x4b/0x53
[   41.101906] RIP: 0033:0x7f70d8009710
[   41.101906] Code: 40 00 48 c7 c2 a8 ff ff ff f7 d8 64 89 02 48 c7 c0 ff ff ff ff eb b7 cc
[   41.101907] RSP: 002b:00007ffd92cc4778 EFLAGS: 00000202 ORIG_RAX: 0000000000000001
[   41.101907] RAX: ffffffffffffffda RBX: 000000000000000c RCX: 00007f70d8009710
[   41.101908] R13: 000055558b931550 R14: 000055558b92b300 R15: 0000000000000005
[   41.101910]  </TASK>
";

    fn troubles(log: &str) -> Vec<String> {
        let mut c = Classifier::new();
        log.lines()
            .filter(|l| c.is_trouble(l))
            .map(String::from)
            .collect()
    }

    #[test]
    fn strips_timestamps_only() {
        assert_eq!(message("[   41.101874]  <TASK>"), " <TASK>");
        assert_eq!(message("[    0.000000] Linux version"), "Linux version");
        assert_eq!(message("[cxl] not a stamp"), "[cxl] not a stamp");
        assert_eq!(message("plain\n"), "plain");
    }

    #[test]
    fn every_known_report_is_trouble() {
        for l in [
            "BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2",
            "UBSAN: shift-out-of-bounds in drivers/x.c:1:2",
            "WARNING: CPU: 0 PID: 1 at lib/x.c:1 f+0x0/0x1",
            "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "unreferenced object 0xffff888004f1c000 (size 64):",
            "Internal error: Oops: 0000000096000004 [#1] SMP",
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "Call trace:",
            "rust_panic+0x0/0x10",
            "Kernel panic - not syncing: Fatal exception",
        ] {
            assert!(is_trouble(l), "{l}");
            assert_eq!(troubles(l), [l], "{l}");
        }
        assert!(!is_trouble(
            "cxl_swcci 0000:0d:00.1: cxl/switch0: 19e5:a128 serial 0x1234"
        ));
    }

    #[test]
    fn injected_failure_reports_are_excused() {
        let mut c = Classifier::new();
        for l in X86_REPORT.lines() {
            assert!(!c.is_trouble(l), "{l}");
        }
        assert_eq!(c.injected(), 1);
        assert!(c.in_report, "the register dump belongs to the report");
        // Twice in a row, and a normal line after it.
        let log =
            format!("{X86_REPORT}{X86_REPORT}[   41.2] cxl_swcci 0000:0d:00.1: probe failed\n");
        assert!(troubles(&log).is_empty());
        // The ARM shape, and kmsg messages (no timestamps).
        let arm = "FAULT_INJECTION: forcing a failure.\nname fail_usercopy, interval 1, probability 0, space 0, times 0\nCPU: 0 UID: 0 PID: 80 Comm: swcci-ktest Not tainted 7.3.4 #1 PREEMPT\nHardware name: linux,dummy-virt (DT)\nCall trace:\n show_stack+0x18/0x24 (C)\n dump_stack_lvl+0x60/0x80\n";
        assert!(troubles(arm).is_empty());
    }

    const CXL_WARNING: &str = "[   12.1] ------------[ cut here ]------------
[   12.1] cxl_pci 0000:0f:00.0: raw command path used
[   12.1] WARNING: drivers/cxl/core/mbox.c:425 at cxl_send_cmd+0x2b9/0x2d0, CPU#1: swcci-ktest/90
[   12.1] Modules linked in: cxl_swcci(O)
[   12.1] CPU: 1 UID: 0 PID: 90 Comm: swcci-ktest Tainted: G           O        7.3.4 #1 PREEMPT(voluntary)
[   12.1] RIP: 0010:cxl_send_cmd+0x2b9/0x2d0
[   12.1] RAX: 0000000000000000 RBX: ffff888004a1c000 RCX: 0000000000000000
[   12.1] Call Trace:
[   12.1]  <TASK>
[   12.1]  cxl_memdev_ioctl+0x5d/0x80
[   12.1]  </TASK>
[   12.1] ---[ end trace 0000000000000000 ]---
";

    #[test]
    fn the_cxl_raw_path_warning_is_excused() {
        assert!(troubles(CXL_WARNING).is_empty());
        // arm64's shape.
        let arm = "cxl_pci 0000:02:00.0: raw command path used
WARNING: drivers/cxl/core/mbox.c:425 at cxl_send_cmd+0x1c4/0x1f0, CPU#0: swcci-ktest/85
Modules linked in: cxl_swcci(O)
pc : cxl_send_cmd+0x1c4/0x1f0
x29: ffff800080013c70 x28: ffff0000c0a3c000
Call trace:
 cxl_send_cmd+0x1c4/0x1f0 (P)
---[ end trace 0000000000000000 ]---
";
        assert!(troubles(arm).is_empty());
        // After its end marker, a WARNING is trouble again; so is one of another file or a BUG
        // inside it.
        let after = format!("{CXL_WARNING}[ 13.0] WARNING: CPU: 0 PID: 1 at lib/x.c:1 f+0x0/0x1\n");
        assert_eq!(troubles(&after).len(), 1);
        let other = CXL_WARNING.replace("drivers/cxl/core/mbox.c", "mm/slub.c");
        assert_eq!(troubles(&other).len(), 1);
        let bug = CXL_WARNING.replace(
            "[   12.1]  cxl_memdev_ioctl",
            "[   12.1] BUG: KASAN: use-after-free in f+0x1/0x2\n[   12.1]  cxl_memdev_ioctl",
        );
        assert_eq!(troubles(&bug).len(), 1);
        // The same WARNING without its announcement fails.
        let bare = CXL_WARNING.replace("cxl_pci 0000:0f:00.0: raw command path used", "x");
        assert_eq!(troubles(&bare).len(), 2);
    }

    /// An injected failure in register_irq_proc, and the warning the interrupt's teardown
    /// gives later (x86_64, hardened kernel).
    const IRQ_PROC: &str = "[  154.3] FAULT_INJECTION: forcing a failure.
[  154.3] name failslab, interval 1, probability 0, space 0, times 1
[  154.3] CPU: 0 UID: 0 PID: 52 Comm: swcci-ktest Tainted: G           O        7.3.4 #1
[  154.3] Call Trace:
[  154.3]  <TASK>
[  154.3]  __proc_create+0x1e0/0x670
[  154.3]  proc_create_single_data+0x1c/0xa0
[  154.3]  register_irq_proc+0x1c5/0x290
[  154.3]  __setup_irq+0x10a5/0x1d40
[  154.3]  </TASK>
[  154.4] cxl_swcci 0000:02:00.0: probe failed: ENOMEM
[  154.4] name 'node'
[  154.4] WARNING: fs/proc/generic.c:742 at remove_proc_entry+0x1f9/0x370, CPU#0: swcci-ktest/52
[  154.4] Modules linked in: cxl_swcci(O)
[  154.4] RIP: 0010:remove_proc_entry+0x1f9/0x370
[  154.4] Call Trace:
[  154.4]  <TASK>
[  154.4]  unregister_irq_proc+0xd1/0x170
[  154.4]  free_desc+0x2b/0x1a0
[  154.4]  </TASK>
[  154.4] ---[ end trace 0000000000000000 ]---
";

    #[test]
    fn the_irq_proc_warning_after_an_injected_failure_is_excused() {
        assert!(troubles(IRQ_PROC).is_empty(), "{:?}", troubles(IRQ_PROC));
        // Without the injected failure in register_irq_proc, the warning is trouble.
        let other = IRQ_PROC.replace("register_irq_proc+0x1c5", "kmem_cache_alloc+0x1c5");
        assert_eq!(troubles(&other).len(), 2, "{:?}", troubles(&other));
        // So is one whose trace is not the interrupt's teardown (its end marker reports it),
        // and a warning of another file.
        let teardown = IRQ_PROC.replace("unregister_irq_proc+", "proc_remove+");
        assert_eq!(troubles(&teardown).len(), 1, "{:?}", troubles(&teardown));
        let file = IRQ_PROC.replace("fs/proc/generic.c:742", "mm/slub.c:1");
        assert_eq!(troubles(&file).len(), 2, "{:?}", troubles(&file));
    }

    #[test]
    fn trouble_after_or_without_an_injection_still_fails() {
        // A WARNING right after the report ends it and fails, with its own trace.
        let log = format!(
            "{X86_REPORT}[   41.3] WARNING: CPU: 1 PID: 87 at mm/slub.c:1 x+0x0/0x1\n[   41.3] Call Trace:\n[   41.3]  <TASK>\n"
        );
        let t = troubles(&log);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[0].contains("WARNING:") && t[1].contains("Call Trace:"));
        // A BUG inside the frames of a report (another CPU) is not excused.
        let log = X86_REPORT.replace(
            "[   41.101883]  should_fail_ex",
            "[   41.101883] BUG: KASAN: use-after-free in f+0x1/0x2\n[   41.101883]  should_fail_ex",
        );
        assert_eq!(troubles(&log).len(), 1);
        // A stack dump nobody announced.
        let log = "[ 1.0] CPU: 0 UID: 0 PID: 1 Comm: sh\n[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n";
        assert_eq!(troubles(log).len(), 1);
    }
}
