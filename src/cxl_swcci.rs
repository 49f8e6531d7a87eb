// SPDX-License-Identifier: GPL-2.0

//! cxl_swcci: driver for CXL switch mailbox CCIs and PCIe MMB/MMPT mailboxes.
//!
//! The driver binds every CXL Fabric Management Host Interface (PCI class 0C0B00h), finds its
//! mailbox (PCIe MRBL -> MCAP first, then the CXL Register Locator), runs the mailbox protocol
//! in the kernel (serialised, with interrupts or sleeping polls, timeouts and background
//! operations) and gives userspace `/dev/cxl/switchN` with the `CXL_MEM_SEND_COMMAND` ABI that
//! fabric-management tools already speak. Raw commands need `CAP_SYS_RAWIO`, are refused under
//! lockdown, and taint the kernel when they may change device or fabric state.
//!
//! Layout: `driver.rs` (PCI binding, probe, interrupts, unbind), `device.rs` (the mailbox as a
//! kernel object: lifecycle, locking, the one command path, background tracking, waiting,
//! statistics, identity) with `device/mmpt.rs` (MMPT messages), `policy.rs` (access control
//! and taint: the only place a command is made), `error.rs` (error conversions), `mmio.rs`
//! (register access, the only place MMIO happens), `chardev.rs` (the device node, its ioctl
//! table and per-file buffers), `fwctl.rs` (the fwctl device of a switch CCI, when the kernel
//! has fwctl), `debugfs.rs`, `sysfs.rs` (the read-only `cxl_swcci/` attributes on the PCI
//! device) and `sys.rs`. The driver's `kernel::bindings` users are `chardev.rs` (the node's
//! miscdevice with a `poll` file operation, which 7.3's `MiscDevice` lacks), `sys.rs` (capable,
//! lockdown, add_taint, the task's name and fatal signals, disabling the function),
//! `sysfs.rs` (static attribute structures with C callbacks, `device_add_groups`/
//! `device_remove_groups`, `sysfs_emit`: 7.3's Rust wraps no sysfs attributes) and
//! `debugfs.rs` (files whose operations the module owns: 7.3's Rust debugfs files have no
//! owner). The protocol itself is the `proto` module, shared with the host tools and tested
//! there; it has no `unsafe`.
//!
//! `unsafe` sites, each with its safety comment (rust/tests/unsafe_sites.rs keeps this list
//! true): `sys.rs` (the bindings calls, the current task's name and pending signals), this
//! file (the global locks of the debugfs root and of the sysfs registry), `driver.rs` (the
//! interrupt vectors and registrations), `chardev.rs` (`container_of` in `open`, the argument
//! buffer, the node's registration with `poll` and its callback), `device.rs` (`AtomicType`
//! for the lifecycle), `mmio.rs` (the payload view of the BAR; LDRD/STRD on 32-bit ARM), `fwctl.rs` (the fwctl registration, which must not be
//! forgotten), `debugfs.rs` (the C debugfs calls and callbacks), `sysfs.rs` (the registry,
//! the static C structures, the callbacks and the group calls).

use kernel::{
    driver::Registration,
    pci,
    prelude::*,
    InPlaceModule, //
};

mod chardev;
mod debugfs;
mod device;
mod driver;
mod error;
mod fwctl;
mod mmio;
mod policy;
mod sys;
mod sysfs;

/// The protocol core (`rust/` in the source tree), compiled into the module. The list of
/// modules must match `rust/src/lib.rs`; a host test checks that it does.
#[path = "../rust/src"]
#[forbid(unsafe_code)]
pub mod proto {
    #[macro_use]
    mod macros;
    pub mod bgtrack;
    pub mod discover;
    pub mod effects;
    pub mod mailbox;
    pub mod mmpt;
    pub mod num;
    pub mod opcode;
    pub mod payload;
    pub mod rc;
    pub mod regs;
    pub mod uapi;
    pub mod wire;
}

// The core refers to its modules as `crate::<module>`: make those paths resolve here too.
use proto::{
    mailbox,
    mmpt,
    opcode,
    payload,
    rc,
    regs,
    wire, //
};

/// Formats a protocol-core value (which implements `core::fmt::Display`) in kernel messages.
pub(crate) struct Disp<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: core::fmt::Display + ?Sized> kernel::fmt::Display for Disp<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.0, f)
    }
}

pub(crate) const MODULE_NAME: &core::ffi::CStr = <LocalModule as kernel::ModuleMetadata>::NAME;

kernel::sync::global_lock! {
    // SAFETY: Initialised in `SwcciModule::init` before the driver is registered.
    unsafe(uninit) static DEBUGFS_ROOT: Mutex<Option<debugfs::Root>> = None;
}

/// Clears the debugfs root after the driver is unregistered.
struct DebugfsRootGuard;

impl Drop for DebugfsRootGuard {
    fn drop(&mut self) {
        *DEBUGFS_ROOT.lock() = None;
    }
}

/// Runs `f` with the debugfs directory of the module, `cxl_swcci/` (none if debugfs could not
/// be had).
pub(crate) fn with_debugfs_root<R>(f: impl FnOnce(Option<&debugfs::Root>) -> R) -> R {
    f(DEBUGFS_ROOT.lock().as_ref())
}

#[pin_data]
struct SwcciModule {
    // Dropped first: unbinds every device before the debugfs root goes.
    #[pin]
    _driver: Registration<pci::Adapter<driver::SwcciDriver>>,
    _debugfs: DebugfsRootGuard,
}

impl InPlaceModule for SwcciModule {
    fn init(module: &'static kernel::ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, before anything else uses the lock.
        unsafe { DEBUGFS_ROOT.init() };
        // SAFETY: Called once, before the driver is registered.
        unsafe { sysfs::init() };
        *DEBUGFS_ROOT.lock() = debugfs::Root::new();
        try_pin_init!(Self {
            _driver <- Registration::new(MODULE_NAME, module),
            _debugfs: DebugfsRootGuard,
        })
    }
}

module! {
    type: SwcciModule,
    name: "cxl_swcci",
    authors: ["swcci developers"],
    description: "CXL switch mailbox CCI and PCIe MMB/MMPT mailbox driver",
    license: "GPL v2",
    // fwctl's exports (drivers/fwctl/main.c); an unused import is harmless on kernels without.
    imports_ns: ["FWCTL"],
    params: {
        strict_taint: bool {
            default: false,
            description: "Taint the kernel (TAINT_USER) on every raw command, not only on those that may change state",
        },
        bg_timeout_ms: u32 {
            default: 60000,
            description: "Default wait for raw background commands, in ms (1..600000; per file with SWCCI_IOCTL_BG_POLICY)",
        },
        poll_only: bool {
            default: false,
            description: "Never use interrupts; poll the mailbox with growing sleeps",
        },
    },
}
