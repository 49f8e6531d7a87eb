// SPDX-License-Identifier: GPL-2.0

//! The few kernel services the Rust abstractions of 7.3 do not wrap: capabilities, lockdown,
//! tainting and the current task's name. Every `kernel::bindings` use of the driver is here,
//! except the sysfs attributes' (`sysfs.rs`).

use kernel::{bindings, prelude::*, str::CStr, task::Task};

/// Whether the current task has `CAP_SYS_RAWIO`.
pub(crate) fn capable_rawio() -> bool {
    #[cfg(CONFIG_MULTIUSER)]
    {
        // SAFETY: `capable()` only inspects the current task's credentials; it is safe to call
        // from process context with any capability number.
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

/// Adds `vendor:device` to the dynamic ids of the PCI driver registered as `name` (what writing
/// to `/sys/bus/pci/drivers/<name>/new_id` does), so that matching functions bind.
///
/// 7.3's `driver::Registration` does not expose its `struct pci_driver`, so it is found by name
/// on the PCI bus.
pub(crate) fn pci_add_dynid(name: &CStr, vendor: u16, device: u16) -> Result {
    // SAFETY: `pci_bus_type` is the kernel's PCI bus, valid for the kernel's lifetime;
    // `driver_find` only reads the name and returns a driver registered on that bus, or NULL.
    let drv =
        unsafe { bindings::driver_find(name.as_char_ptr(), &raw const bindings::pci_bus_type) };
    if drv.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: every driver on the PCI bus is the `driver` field of a `struct pci_driver`; ours
    // stays registered while the module is loaded (this is called from the module's own init,
    // after registration). `pci_add_dynid` copies the id and re-probes unbound devices.
    let ret = unsafe {
        let pdrv = kernel::container_of!(drv, bindings::pci_driver, driver);
        bindings::pci_add_dynid(pdrv, u32::from(vendor), u32::from(device), !0, !0, 0, 0, 0)
    };
    kernel::error::to_result(ret)
}
