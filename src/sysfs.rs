// SPDX-License-Identifier: GPL-2.0

//! sysfs: read-only attributes of each bound function, in a group named `cxl_swcci` on its PCI
//! device: `/sys/bus/pci/devices/DDDD:BB:DD.F/cxl_swcci/{node,kind,payload_size,mode,...}`.
//! Documentation/ABI/testing/sysfs-bus-pci-drivers-cxl_swcci describes every file.
//!
//! Why a named group on the PCI device: the CXL memory-device driver puts its files
//! (`serial`, `payload_max`, ...) on a device of its own (drivers/cxl/core/memdev.c); this
//! driver has none (7.3's Rust miscdevice gives the node neither a parent nor attribute
//! groups), so the files go next to the PCI core's, where a directory keeps the Identify
//! `vendor_id`/`device_id` of the component apart from the function's own `vendor`/`device`.
//!
//! 7.3's Rust has no sysfs attribute abstraction, so this file is the driver's second
//! `kernel::bindings` user after `sys.rs`: static `struct device_attribute`s and one
//! `struct attribute_group` whose C callbacks are [`show`] and [`is_visible`], and
//! `device_add_groups()`/`device_remove_groups()` around a bound function's life ([`Attrs`]).
//!
//! The callbacks get a `struct device *`. They find the function in a registry (a mutex-protected
//! table keyed by the address of the `struct device`) instead of through the drvdata of the
//! Rust PCI adapter, whose layout is not the driver's business. The entry is added before the
//! group is created (`is_visible` needs it) and removed after the group is removed; removing
//! the group waits for `show()` calls in progress (kernfs drains active references) and no new
//! one can start, so `show()` always finds its entry.
//!
//! Values: everything but the two modes is fixed at probe and copied then, so `show()` never
//! takes the mailbox lock (a command holds it for up to the doorbell timeout) and never sends a
//! command; the modes are atomics that change when the driver falls back to polling.

use crate::{
    chardev::MAX_NODES,
    device::{Kind, Swcci},
    proto::payload::identify::Identify,
};
use core::{cell::UnsafeCell, fmt::Write, mem::offset_of, ptr};
use kernel::{
    bindings, device,
    error::to_result,
    ffi::c_char,
    pci,
    prelude::*,
    str::{CStr, NullTerminatedFormatter},
    sync::Arc,
};

/// The group's directory name.
const GROUP_NAME: &CStr = c"cxl_swcci";

/// Mode of every file: read-only, for everyone (as the CXL memdev's and the PCI core's).
const MODE: bindings::umode_t = 0o444;

/// One attribute. [`Attr::ALL`] is the order of the files in the group (and of `is_visible`'s
/// index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Node,
    Kind,
    PayloadSize,
    Mode,
    BackgroundMode,
    CelEntries,
    Serial,
    VendorId,
    DeviceId,
    SubsystemVendorId,
    SubsystemId,
}

/// Number of attributes.
const N: usize = Attr::ALL.len();

impl Attr {
    const ALL: [Self; 11] = [
        Self::Node,
        Self::Kind,
        Self::PayloadSize,
        Self::Mode,
        Self::BackgroundMode,
        Self::CelEntries,
        Self::Serial,
        Self::VendorId,
        Self::DeviceId,
        Self::SubsystemVendorId,
        Self::SubsystemId,
    ];

    /// The file name.
    const fn name(self) -> &'static CStr {
        match self {
            Self::Node => c"node",
            Self::Kind => c"kind",
            Self::PayloadSize => c"payload_size",
            Self::Mode => c"mode",
            Self::BackgroundMode => c"background_mode",
            Self::CelEntries => c"cel_entries",
            Self::Serial => c"serial",
            Self::VendorId => c"vendor_id",
            Self::DeviceId => c"device_id",
            Self::SubsystemVendorId => c"subsystem_vendor_id",
            Self::SubsystemId => c"subsystem_id",
        }
    }

    /// The attribute whose `struct device_attribute` is at `attr`.
    fn of(attr: *const bindings::device_attribute) -> Option<Self> {
        let first = DEV_ATTRS
            .get()
            .cast::<bindings::device_attribute>()
            .cast_const();
        Self::ALL
            .iter()
            .zip(0..)
            .find(|&(_, i)| ptr::eq(first.wrapping_add(i), attr))
            .map(|(a, _)| *a)
    }

    /// Whether the function has this file: the background mode and the CEL only with the CXL
    /// mailbox extensions, the Identify fields only when Identify succeeded at probe.
    fn visible(self, v: &Fixed) -> bool {
        match self {
            Self::Node | Self::Kind | Self::PayloadSize | Self::Mode => true,
            Self::BackgroundMode | Self::CelEntries => v.cxl,
            Self::Serial
            | Self::VendorId
            | Self::DeviceId
            | Self::SubsystemVendorId
            | Self::SubsystemId => v.ident.is_some(),
        }
    }

    /// Writes the value (without the newline).
    ///
    /// # Errors
    ///
    /// ENODATA for a file the function does not have; EOVERFLOW when the value does not fit
    /// `f`; EINVAL for a node name that is not UTF-8 (none is).
    fn format(self, e: &Entry, f: &mut impl Write) -> Result {
        let v = &e.values;
        let mode = |irq: bool| if irq { "interrupt" } else { "poll" };
        let id = v.ident.ok_or(ENODATA);
        let r = match self {
            Self::Node => f.write_str(v.node.to_str().map_err(|_| EINVAL)?),
            Self::Kind => f.write_str(match v.kind {
                Kind::SwitchCci => "switch_cci",
                Kind::Mmb => "mmb",
            }),
            Self::PayloadSize => write!(f, "{}", v.payload_size),
            Self::Mode => f.write_str(mode(e.dev.irq_mode())),
            Self::BackgroundMode if v.cxl => f.write_str(mode(e.dev.bg_irq_mode())),
            Self::CelEntries if v.cxl => write!(f, "{}", v.cel_entries),
            Self::BackgroundMode | Self::CelEntries => return Err(ENODATA),
            Self::Serial => write!(f, "{:#x}", id?.serial),
            Self::VendorId => write!(f, "{:#06x}", id?.vendor_id),
            Self::DeviceId => write!(f, "{:#06x}", id?.device_id),
            Self::SubsystemVendorId => write!(f, "{:#06x}", id?.subsys_vendor_id),
            Self::SubsystemId => write!(f, "{:#06x}", id?.subsys_id),
        };
        // Only a value longer than the line buffer fails; the longest is 18 bytes.
        r.map_err(|_| EOVERFLOW)
    }
}

/// What a function's files show that cannot change while it is bound, copied at probe after
/// Identify and the CEL were read.
#[derive(Clone, Copy)]
struct Fixed {
    node: &'static CStr,
    kind: Kind,
    /// Mailbox payload size in bytes.
    payload_size: usize,
    /// Entries (4 bytes each) of the Command Effects Log read at probe.
    cel_entries: usize,
    ident: Option<Identify>,
    /// The mailbox has the CXL extensions (background commands).
    cxl: bool,
}

impl Fixed {
    fn of(dev: &Swcci) -> Self {
        let info = dev.info();
        Self {
            node: dev.node_name,
            kind: dev.kind,
            payload_size: dev.payload_size,
            cel_entries: info.cel.len() / 4,
            ident: info.ident,
            cxl: dev.flavor.cxl,
        }
    }
}

/// One bound function in the registry.
struct Entry {
    /// Address of the function's `struct device`: the key, compared and never dereferenced.
    key: usize,
    dev: Arc<Swcci>,
    values: Fixed,
}

/// Registry slots: one per device node the driver can hand out (both kinds).
const SLOTS: usize = 2 * MAX_NODES;

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init()`, from the module's init, before the driver is registered.
    unsafe(uninit) static REGISTRY: Mutex<[Option<Entry>; SLOTS]> = [const { None }; SLOTS];
}

/// Initialises the registry.
///
/// # Safety
///
/// Called once, from the module's init, before the driver is registered (nothing else uses the
/// registry before a device is bound).
pub(crate) unsafe fn init() {
    // SAFETY: Called once, before any other use of the lock (the function's contract).
    unsafe { REGISTRY.init() };
}

/// Runs `f` on the entry of the device at `key`, under the registry lock (briefly: `f` only
/// reads copied values and atomics).
///
/// # Errors
///
/// ENODEV when the registry has no entry for `key`.
fn with_entry<R>(key: usize, f: impl FnOnce(&Entry) -> R) -> Result<R> {
    let reg = REGISTRY.lock();
    reg.iter()
        .flatten()
        .find(|e| e.key == key)
        .map(f)
        .ok_or(ENODEV)
}

/// Removes the entry of the device at `key`, if any.
fn forget(key: usize) {
    let entry = {
        let mut reg = REGISTRY.lock();
        reg.iter_mut()
            .find(|s| s.as_ref().is_some_and(|e| e.key == key))
            .and_then(Option::take)
    };
    // Dropped outside the lock: it may hold the last reference to the device object.
    drop(entry);
}

/// The `struct device *` of a PCI function.
///
/// `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`, which has the
/// layout of `bindings::device` (rust/kernel/device.rs: `Device::from_raw` casts the other
/// way), so the two addresses are the same. The cast itself is safe; the unsafe calls that use
/// the pointer say why it is valid there.
fn raw_device(pdev: &pci::Device) -> *mut bindings::device {
    let dev: &device::Device = pdev.as_ref();
    ptr::from_ref(dev).cast_mut().cast()
}

/// A C structure in static memory that the kernel reads through raw pointers.
///
/// # Invariants
///
/// The contents are never written after the constant initialisation: Rust code only takes
/// their address.
#[repr(transparent)]
struct CStatic<T>(UnsafeCell<T>);

// SAFETY: After its constant initialisation nothing writes the contents: Rust code only takes
// their addresses, and the kernel only reads them (sysfs reads names, modes, callbacks and the
// attribute list; lockdep uses the address of each attribute's `skey` as a static key), so
// sharing between threads is sound.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// The attributes, in [`Attr::ALL`] order, each with [`show`].
static DEV_ATTRS: CStatic<[bindings::device_attribute; N]> = CStatic::new({
    // All-zero is a valid `struct device_attribute` (C statics start zeroed): no lockdep key of
    // its own (`key` NULL: sysfs uses `skey`, in this static, as the static key), no store.
    let mut out: [bindings::device_attribute; N] = pin_init::zeroed();
    let mut i = 0;
    while i < N {
        out[i].attr.name = Attr::ALL[i].name().to_bytes_with_nul().as_ptr();
        out[i].attr.mode = MODE;
        out[i].__bindgen_anon_1.show = Some(show);
        i += 1;
    }
    out
});

/// The group's NULL-terminated attribute list.
static ATTR_PTRS: CStatic<[*mut bindings::attribute; N + 1]> = CStatic::new({
    let first = DEV_ATTRS.get().cast::<bindings::device_attribute>();
    let mut out = [ptr::null_mut(); N + 1];
    let mut i = 0;
    while i < N {
        out[i] = first
            .wrapping_add(i)
            .wrapping_byte_add(offset_of!(bindings::device_attribute, attr))
            .cast();
        i += 1;
    }
    out
});

/// The `cxl_swcci` group.
static GROUP: CStatic<bindings::attribute_group> = CStatic::new({
    let mut g: bindings::attribute_group = pin_init::zeroed();
    g.name = GROUP_NAME.to_bytes_with_nul().as_ptr();
    g.__bindgen_anon_1.is_visible = Some(is_visible);
    g.__bindgen_anon_2.attrs = ATTR_PTRS.get().cast();
    g
});

/// The NULL-terminated group list `device_add_groups()` takes.
static GROUPS: CStatic<[*const bindings::attribute_group; 2]> =
    CStatic::new([GROUP.get().cast_const(), ptr::null()]);

/// `is_visible()` of the group: 0444 for the files the function has ([`Attr::visible`]), 0
/// (no file) for the others and for an unknown device or index.
///
/// Called by sysfs with the device's kobject while the group is created, which is after
/// [`Attrs::add`] registered the function. Only compares addresses: nothing is dereferenced.
extern "C" fn is_visible(
    kobj: *mut bindings::kobject,
    _attr: *mut bindings::attribute,
    n: c_int,
) -> bindings::umode_t {
    // The kobject is the `kobj` member of the function's `struct device`.
    let key = kobj.addr().wrapping_sub(offset_of!(bindings::device, kobj));
    let Some(attr) = usize::try_from(n).ok().and_then(|i| Attr::ALL.get(i)) else {
        return 0;
    };
    match with_entry(key, |e| attr.visible(&e.values)) {
        Ok(true) => MODE,
        _ => 0,
    }
}

/// `show()` of every attribute: the value and a newline, or a negative errno (ENODEV for a
/// device that is not registered, which the removal order rules out).
///
/// # Safety
///
/// Called by the driver core (`dev_attr_show`) with `buf`, the page-sized buffer sysfs gives
/// every `show()`.
unsafe extern "C" fn show(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    let mut line = [0u8; 32];
    let res = Attr::of(attr).ok_or(EINVAL).and_then(|a| {
        let mut f = NullTerminatedFormatter::new(&mut line).ok_or(EINVAL)?;
        with_entry(dev.addr(), |e| a.format(e, &mut f))?
    });
    // `c_int` to `isize`: isize is at least 32 bits wide on every Linux target.
    match res {
        // SAFETY: `buf` is the page sysfs passes to `show()` (the function's contract); the
        // format takes one string, `line`, which `NullTerminatedFormatter` keeps NUL-terminated
        // within its 32 bytes.
        Ok(()) => unsafe {
            bindings::sysfs_emit(buf, c"%s\n".as_char_ptr(), line.as_ptr()) as isize
        },
        Err(e) => e.to_errno() as isize,
    }
}

/// The `cxl_swcci/` group of one bound function: created by [`Attrs::add`] at probe; dropping
/// it removes the files (waiting for `show()` calls in progress) and then the registry entry.
///
/// # Invariants
///
/// From [`Attrs::add`] until this drops, the group exists on the PCI device of `dev` and the
/// registry holds its entry.
pub(crate) struct Attrs {
    dev: Arc<Swcci>,
}

impl Attrs {
    /// Registers `dev` and creates its group on its PCI device. Call after Identify and the CEL
    /// were read (the files show what was read) and before the device node is registered (so
    /// that udev finds the files when the node appears).
    ///
    /// # Errors
    ///
    /// EEXIST when the device is registered already, or has a `cxl_swcci` directory; ENOSPC
    /// when more functions than device nodes are registered (cannot happen); ENOMEM. Each is
    /// logged.
    pub(crate) fn add(dev: &Arc<Swcci>) -> Result<Self> {
        let raw = raw_device(&dev.pdev);
        let key = raw.addr();
        let entry = Entry {
            key,
            dev: dev.clone(),
            values: Fixed::of(dev),
        };
        {
            let mut reg = REGISTRY.lock();
            if reg.iter().flatten().any(|e| e.key == key) {
                drop(reg);
                dev_err!(dev.pdev, "sysfs attributes exist already\n");
                return Err(EEXIST);
            }
            let Some(slot) = reg.iter_mut().find(|s| s.is_none()) else {
                drop(reg);
                dev_err!(dev.pdev, "no room for the sysfs attributes\n");
                return Err(ENOSPC);
            };
            *slot = Some(entry);
        }
        // SAFETY: `raw` is the function's `struct device` (see `raw_device`), alive while
        // `dev` holds its PCI device; `GROUPS` is a NULL-terminated list of a valid group in
        // static memory, which outlives the group's files (`Attrs` removes them before the
        // driver, and so the module, can go).
        let ret = unsafe { bindings::device_add_groups(raw, GROUPS.get().cast()) };
        if let Err(e) = to_result(ret) {
            forget(key);
            dev_err!(
                dev.pdev,
                "cannot create the sysfs attributes: {}\n",
                e.to_errno()
            );
            return Err(e);
        }
        Ok(Self { dev: dev.clone() })
    }
}

impl Drop for Attrs {
    fn drop(&mut self) {
        let raw = raw_device(&self.dev.pdev);
        // SAFETY: `add` created the group on this device (an `Attrs` exists only then), and the
        // device is alive (`self.dev` holds it). After this returns no `show()` runs or starts.
        unsafe { bindings::device_remove_groups(raw, GROUPS.get().cast()) };
        forget(raw.addr());
    }
}
