// SPDX-License-Identifier: GPL-2.0

//! The few kernel services the Rust abstractions of 7.3 do not wrap: capabilities, lockdown,
//! tainting, the current task's name and fatal signals, and disabling a PCI function. Every
//! `kernel::bindings` use of the driver is here, except the sysfs attributes' (`sysfs.rs`) and
//! the debugfs files' (`debugfs.rs`).

use kernel::{
    bindings,
    device::Bound,
    pci,
    prelude::*,
    task::Task, //
};

/// Whether the current task has `CAP_SYS_RAWIO`.
pub(crate) fn capable_rawio() -> bool {
    #[cfg(CONFIG_MULTIUSER)]
    {
        // SAFETY: `capable()` only inspects the current task's credentials; it is safe to call
        // from process context with any capability number.
        // CAP_SYS_RAWIO is 17: the cast cannot truncate.
        unsafe { bindings::capable(bindings::CAP_SYS_RAWIO as c_int) }
    }
    // Without MULTIUSER every task is root and `capable()` is always true.
    #[cfg(not(CONFIG_MULTIUSER))]
    true
}

/// Whether the kernel is locked down against direct PCI access (`lockdown=integrity` or
/// stronger), which forbids raw device commands.
pub(crate) fn pci_access_locked_down() -> bool {
    #[cfg(CONFIG_SECURITY)]
    {
        // SAFETY: `security_locked_down()` has no preconditions; it returns 0 or -EPERM.
        unsafe {
            bindings::security_locked_down(bindings::lockdown_reason_LOCKDOWN_PCI_ACCESS) != 0
        }
    }
    // Without SECURITY there is no lockdown.
    #[cfg(not(CONFIG_SECURITY))]
    false
}

/// Marks the kernel as tainted by userspace (TAINT_USER, 'U').
pub(crate) fn taint_user() {
    // SAFETY: `add_taint()` may be called from any context; the driver's state stays consistent,
    // so lockdep remains usable (LOCKDEP_STILL_OK).
    unsafe { bindings::add_taint(bindings::TAINT_USER, bindings::lockdep_ok_LOCKDEP_STILL_OK) }
}

/// The name of the current task (`comm`), NUL-padded.
pub(crate) fn current_comm() -> [u8; 16] {
    let task = Task::current_raw();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate().take(15) {
        // SAFETY: `task` is the current task, valid while we run in its context; `comm` is a
        // 16-byte array that may be rewritten concurrently (prctl), hence volatile byte reads,
        // as `%s` of `current->comm` does in C. `i < 15` keeps the index in bounds.
        // `c_char` to `u8`: the same width, the byte as it is.
        *b = unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*task).comm[i])) } as u8;
        if *b == 0 {
            break;
        }
    }
    out
}

/// Formats a NUL-padded name as text, stopping at the first NUL.
pub(crate) fn comm_str(comm: &[u8; 16]) -> &str {
    let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
    core::str::from_utf8(comm.get(..end).unwrap_or(&[])).unwrap_or("?")
}

/// Whether the current task is being killed (a fatal signal, SIGKILL, is pending): what the
/// kernel's `fatal_signal_pending(current)` (include/linux/sched/signal.h) answers, which 7.3
/// neither wraps nor exports.
pub(crate) fn fatal_signal_pending() -> bool {
    if !kernel::current!().signal_pending() {
        return false;
    }
    let task = Task::current_raw();
    // SIGKILL is 9: bit 8 of the first word of the pending set, on 32- and 64-bit kernels.
    let bit: usize = 1 << (bindings::SIGKILL - 1);
    // SAFETY: `task` is the current task, valid while we run in its context; its pending set
    // may change concurrently (another task sends a signal),
    // hence a volatile read of one word, as `__fatal_signal_pending()` reads it without the
    // signal lock. Index 0 exists for every `_NSIG_WORDS`.
    let word =
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*task).pending.signal.sig[0])) };
    word & bit != 0
}

/// Turns off bus mastering and disables the function `pdev` (the counterpart of
/// `enable_device_mem` and `set_master` at probe), as C drivers do in their remove callback.
pub(crate) fn pci_disable(pdev: &pci::Device<Bound>) {
    // `pci::Device` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>` (rust/kernel/
    // pci.rs: "a transparent wrapper of `struct pci_dev`"): the same address.
    let raw = core::ptr::from_ref(pdev)
        .cast_mut()
        .cast::<bindings::pci_dev>();
    // SAFETY: `raw` is the live `pci_dev` of a bound device, which the driver enabled at probe
    // (one `pci_enable_device_mem` matched by this one `pci_disable_device`); both calls are
    // allowed in process context.
    unsafe {
        bindings::pci_clear_master(raw);
        bindings::pci_disable_device(raw);
    }
}
