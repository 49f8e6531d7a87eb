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
//! Layout: `driver.rs` (PCI binding and probe), `device.rs` (the mailbox as a kernel object:
//! locking, waiting, interrupts, statistics), `mmio.rs` (register access), `chardev.rs` (the
//! device node and its ioctls), `fwctl.rs` (the fwctl device of a switch CCI, when the kernel
//! has fwctl), `policy.rs` (access control and taint), `debugfs.rs`,
//! `sysfs.rs` (the read-only `cxl_swcci/` attributes on the PCI device) and `sys.rs`. The
//! driver's `kernel::bindings` users are `sys.rs` (capable, lockdown, taint, the task's name,
//! dynamic ids) and `sysfs.rs` (static attribute structures with C callbacks,
//! `device_add_groups`/`device_remove_groups`, `sysfs_emit`: 7.3's Rust wraps no sysfs
//! attributes). The protocol itself is the `proto` module, shared with the host tools and
//! tested there.

use kernel::{debugfs, driver::Registration, pci, prelude::*, InPlaceModule};

mod chardev;
mod debugfs_stats;
mod device;
mod driver;
mod fwctl;
mod mmio;
mod policy;
mod sys;
mod sysfs;

/// The protocol core (`rust/` in the source tree), compiled into the module. The list of
/// modules must match `rust/src/lib.rs`; a host test checks that it does.
#[path = "../rust/src"]
pub mod proto {
    #[macro_use]
    mod macros;
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
use proto::{mailbox, opcode, payload, rc, regs, wire};

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
    unsafe(uninit) static DEBUGFS_ROOT: Mutex<Option<debugfs::Dir>> = None;
}

/// Clears the debugfs root after the driver is unregistered.
struct DebugfsRootGuard;

impl Drop for DebugfsRootGuard {
    fn drop(&mut self) {
        *DEBUGFS_ROOT.lock() = None;
    }
}

/// The debugfs directory of the module, `cxl_swcci/`.
pub(crate) fn debugfs_root() -> Option<debugfs::Dir> {
    DEBUGFS_ROOT.lock().clone()
}

#[pin_data]
struct SwcciModule {
    // Dropped first: unbinds every device before the debugfs root goes.
    #[pin]
    _driver: Registration<pci::Adapter<driver::SwcciDriver>>,
    _debugfs: DebugfsRootGuard,
    // Set up after the driver is registered (field order): binds extra ids.
    _ids: (),
}

/// Binds the functions named by the `mmpt_id*` parameters.
fn add_mmpt_ids() {
    use module_parameters::{mmpt_id0, mmpt_id1, mmpt_id2, mmpt_id3};
    for id in [
        mmpt_id0.value(),
        mmpt_id1.value(),
        mmpt_id2.value(),
        mmpt_id3.value(),
    ] {
        if id == 0 {
            continue;
        }
        let (vendor, device) = ((id >> 16) as u16, id as u16);
        match sys::pci_add_dynid(MODULE_NAME, vendor, device) {
            Ok(()) => pr_info!("binding {vendor:04x}:{device:04x} (module parameter)\n"),
            Err(e) => pr_err!(
                "cannot add id {vendor:04x}:{device:04x}: {}\n",
                e.to_errno()
            ),
        }
    }
}

impl InPlaceModule for SwcciModule {
    fn init(module: &'static kernel::ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, before anything else uses the lock.
        unsafe { DEBUGFS_ROOT.init() };
        // SAFETY: Called once, before the driver is registered.
        unsafe { sysfs::init() };
        *DEBUGFS_ROOT.lock() = Some(debugfs::Dir::new(MODULE_NAME));
        try_pin_init!(Self {
            _driver <- Registration::new(MODULE_NAME, module),
            _debugfs: DebugfsRootGuard,
            _ids: add_mmpt_ids(),
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
        mmpt_id0: u32 {
            default: 0,
            description: "Also bind PCI function VVVVDDDD (vendor << 16 | device), e.g. an MMPT function without a class code",
        },
        mmpt_id1: u32 {
            default: 0,
            description: "Like mmpt_id0 (7.3's Rust modules have no array parameters)",
        },
        mmpt_id2: u32 {
            default: 0,
            description: "Like mmpt_id0",
        },
        mmpt_id3: u32 {
            default: 0,
            description: "Like mmpt_id0",
        },
    },
}
