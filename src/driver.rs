// SPDX-License-Identifier: GPL-2.0

//! PCI binding: the ID table, probe (discovery, mailbox set-up, interrupts, identity, device
//! node) and unbind.

use crate::{
    chardev::{
        Node,
        NodeId, //
    },
    debugfs::DeviceDir,
    device::{
        Kind,
        ProbeWaiter,
        Swcci, //
    },
    fwctl::Fwctl,
    mmio::{
        BarIo,
        PciConfig, //
    },
    policy,
    proto::{
        discover::{
            self,
            BlockContents,
            DiscoverError,
            RegBlock, //
        },
        mailbox::{
            IoError,
            Mailbox,
            Mapping,
            Timeouts, //
        },
        regs::PCI_CLASS_CXL_SWITCH_CCI,
    },
    sysfs,
    Disp, //
};
use kernel::{
    device::{
        Bound,
        Core, //
    },
    irq::{
        self,
        IrqReturn, //
    },
    pci::{
        self,
        DevresBar,
        IrqType,
        IrqTypes, //
    },
    prelude::*,
    sync::Arc,
};

kernel::pci_device_table!(
    PCI_TABLE,
    <SwcciDriver as pci::Driver>::IdInfo,
    [(
        pci::DeviceId::from_class(PCI_CLASS_CXL_SWITCH_CCI, 0xffffff),
        Kind::SwitchCci
    )]
);

pub(crate) struct SwcciDriver;

/// The interrupt handler: wakes whoever waits on the mailbox (and pollers); on a vector an
/// event log interrupts on, notes the event first.
#[pin_data]
pub(crate) struct MboxIrq {
    dev: Arc<Swcci>,
    /// An event log's MSI/MSI-X message number is this vector's.
    events: bool,
}

impl irq::Handler for MboxIrq {
    fn handle(&self) -> IrqReturn {
        if self.events {
            self.dev.note_event_irq();
        }
        self.dev.handle_irq();
        IrqReturn::Handled
    }
}

/// At most this many message numbers are used: the mailbox's, the MMPT receive's, and one per
/// event log.
const MSGNUMS: usize = 7;

/// The message numbers a function uses, read from its registers (and, for the event logs,
/// with Get Event Interrupt Policy): `nums[..n]`, and which of them are event logs'.
#[derive(Clone, Copy, Default)]
struct Msgnums {
    nums: [u8; MSGNUMS],
    events: [bool; MSGNUMS],
    n: usize,
}

impl Msgnums {
    fn push(&mut self, v: u8, events: bool) {
        if let (Some(slot), Some(e)) = (self.nums.get_mut(self.n), self.events.get_mut(self.n)) {
            *slot = v;
            *e = events;
            self.n += 1;
        }
    }

    fn used(&self) -> &[u8] {
        self.nums.get(..self.n).unwrap_or(&[])
    }

    /// Whether vector `v` carries an event log's interrupt.
    fn events_on(&self, v: u8) -> bool {
        self.used()
            .iter()
            .zip(self.events.iter())
            .any(|(&x, &e)| e && x == v)
    }
}

/// The device's interrupts: the allocated vectors and a handler on each vector the mailbox
/// and the MMPT registers use.
///
/// # Invariants
///
/// Every registration in `_regs` is on a vector of `_vectors`, which stays in its box and is
/// dropped after them (field order).
pub(crate) struct Irqs<'bound> {
    // Declared first: freed before the vectors they use.
    _regs: KVec<Pin<KBox<irq::Registration<'bound, MboxIrq>>>>,
    // Boxed so that its address stays put while `regs` borrow it.
    _vectors: KBox<pci::IrqVectorRegistration<'bound>>,
    /// How completion is signalled, for the probe line.
    pub(crate) how: &'static str,
    /// Whether an event log's interrupt has a vector (else the poll timer reads the Event
    /// Status register).
    pub(crate) events: bool,
}

impl<'bound> Irqs<'bound> {
    /// Allocates only the vectors the function's interrupts use: with MSI-X, as many as the
    /// highest message number used, plus one (MSI-X message numbers index the table: they do
    /// not depend on the allocation); without MSI-X, one MSI vector (with one vector enabled
    /// every MSI message number is 0). `msgnums` reads the message numbers the function uses
    /// (the mailbox's, the MMPT receive's), before and again after the allocation, as CXL r3.1
    /// 8.2.8.4.3 requires for MSI, where they follow Multiple Message Enable
    /// (drivers/cxl/pci.c reads them after `pci_alloc_irq_vectors` too). Registers the
    /// handler on each vector used.
    ///
    /// # Errors
    ///
    /// The allocation's (no MSI-X or MSI, or no vectors left); `msgnums`' (ENXIO when the
    /// function stopped answering or is unbound, EIO for a register outside the BAR); ERANGE
    /// when a message number is beyond the vectors granted (logged); `request_irq`'s; ENOMEM.
    /// The caller polls.
    fn new(
        pdev: &'bound pci::Device<Bound>,
        dev: &Arc<Swcci>,
        msgnums: impl Fn() -> Result<Msgnums>,
    ) -> Result<Self> {
        let before = msgnums()?;
        let used = before.used();
        let msix_n = u32::from(used.iter().copied().max().unwrap_or(0)) + 1;
        let msix = IrqTypes::default().with(IrqType::MsiX);
        let msi = IrqTypes::default().with(IrqType::Msi);
        let (vectors, nvec, how) = match pdev.alloc_irq_vectors(msix_n, msix_n, msix) {
            Ok(v) => (v, msix_n, "MSI-X"),
            Err(_) => (pdev.alloc_irq_vectors(1, 1, msi)?, 1, "MSI"),
        };
        let vectors = KBox::new(vectors, GFP_KERNEL)?;
        let after = msgnums()?;
        let used = after.used();
        if let Some(&bad) = used.iter().find(|&&v| u32::from(v) >= nvec) {
            dev_warn!(
                pdev,
                "{how} message number {bad} is beyond the {nvec} vector(s) granted: polling\n"
            );
            return Err(ERANGE);
        }
        // SAFETY: `vectors` is a heap allocation owned by the returned value; it is never moved
        // out of its box and is dropped after `regs` (declaration order), so the reference
        // outlives every registration made with it.
        let vref: &'bound pci::IrqVectorRegistration<'bound> =
            unsafe { &*core::ptr::from_ref(&*vectors) };
        let events = used.iter().any(|&v| after.events_on(v));
        let mut regs = KVec::new();
        for (i, &v) in used.iter().enumerate() {
            // The mailbox and the MMPT registers may share a vector: one handler serves both.
            if used.get(..i).is_some_and(|seen| seen.contains(&v)) {
                continue;
            }
            let request = vref.index(usize::from(v))?.into();
            let handler_dev = dev.clone();
            // SAFETY: the registration is kept in `regs` until `Irqs` drops; it is never
            // forgotten.
            let reg = unsafe {
                irq::Registration::new(
                    request,
                    irq::Flags::TRIGGER_NONE,
                    c"cxl_swcci",
                    try_pin_init!(MboxIrq {
                        dev: handler_dev,
                        events: after.events_on(v),
                    }? Error),
                )
            };
            regs.push(KBox::pin_init(reg, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self {
            _regs: regs,
            _vectors: vectors,
            how,
            events,
        })
    }
}

/// Disables the function when dropped: the last thing the driver does at unbind, after the
/// interrupts are freed (turns bus mastering off; `pci_disable_device`).
///
/// # Invariants
///
/// The function was enabled at probe (`enable_device_mem`), once, and is disabled only when
/// this drops.
pub(crate) struct Enabled<'bound>(&'bound pci::Device<Bound>);

impl Drop for Enabled<'_> {
    fn drop(&mut self) {
        crate::sys::pci_disable(self.0);
    }
}

/// Per-device driver data. Dropped after `unbind()`, in field order: the sysfs attributes go
/// first (so no `cxl_swcci/node` file names a node number another function may take next), then
/// the node (no new opens), the fwctl device (unregistered: its open files answer ENODEV),
/// debugfs, the interrupt, the driver's reference to the device, and last the function is
/// disabled (bus mastering off).
pub(crate) struct SwcciData<'bound> {
    _sysfs: sysfs::Attrs,
    _node: Pin<KBox<Node>>,
    _fwctl: Fwctl<'bound>,
    _debugfs: Option<DeviceDir>,
    _irqs: Option<Irqs<'bound>>,
    dev: Arc<Swcci>,
    _enabled: Enabled<'bound>,
}

/// Sets up interrupts for the mailbox (doorbell, background) and the MMPT receive message, or
/// leaves the device polling (and says why) when there are none to have.
fn setup_irqs<'bound>(
    pdev: &'bound pci::Device<Bound>,
    dev: &Arc<Swcci>,
    cxl: bool,
) -> Option<Irqs<'bound>> {
    let caps = dev.lock().st.mbox.caps();
    let mmpt_irq = dev.mmpt_caps().is_ok_and(|c| c.rx_irq());
    let mbox_irq = caps.doorbell_irq() || (caps.background_irq() && cxl);
    if crate::module_parameters::poll_only.value() || (!mbox_irq && !mmpt_irq) {
        return None;
    }
    // The event logs interrupt on MSI/MSI-X message numbers the function reports; the driver
    // asks for that mode at probe, as drivers/cxl/pci.c does for memory devices.
    let event_irqs = cxl && dev.setup_event_interrupts();
    // The message numbers the function uses, read from its registers each time.
    let msgnums = || -> Result<Msgnums> {
        let mut m = Msgnums::default();
        if mbox_irq {
            m.push(dev.lock().reread_caps()?.irq_msgnum(), false);
        }
        if mmpt_irq {
            m.push(dev.mmpt_caps()?.rx_vector(), false);
        }
        if event_irqs {
            for v in dev.event_msgnums().iter().flatten() {
                m.push(*v, true);
            }
        }
        Ok(m)
    };
    match Irqs::new(pdev, dev, msgnums) {
        Ok(irqs) => {
            if mbox_irq
                && dev
                    .set_irq_mode(caps.doorbell_irq(), caps.background_irq())
                    .is_err()
            {
                dev_warn!(pdev, "cannot enable mailbox interrupts: polling\n");
            }
            if mmpt_irq && dev.set_mmpt_irq(true).is_err() {
                dev_warn!(
                    pdev,
                    "cannot enable the receive-message interrupt: polling\n"
                );
            }
            Some(irqs)
        }
        Err(e) => {
            dev_info!(
                pdev,
                "no MSI or MSI-X vectors ({}): polling\n",
                e.to_errno()
            );
            None
        }
    }
}

/// The one line a bound device logs.
fn log_probe(
    pdev: &pci::Device<Bound>,
    dev: &Swcci,
    mmb: bool,
    fwctl: &Fwctl<'_>,
    irqs: Option<&Irqs<'_>>,
) {
    let how = irqs.map_or("", |i| i.how);
    let mode = match (dev.irq_mode(), dev.bg_irq_mode()) {
        (true, _) if how == "MSI" => "interrupts (MSI)",
        (true, _) => "interrupts (MSI-X)",
        (false, true) if how == "MSI" => "polling (background interrupts, MSI)",
        (false, true) => "polling (background interrupts, MSI-X)",
        (false, false) => "polling",
    };
    let via = if mmb { "MMB" } else { "CXL mailbox" };
    let name = dev.node_name.to_str().unwrap_or("?");
    let payload = dev.payload_size;
    let fwctl = fwctl.label().to_str().unwrap_or("?");
    if dev.kind == Kind::Mmb {
        let rx = match (dev.mmpt.is_some(), dev.mmpt_irq_mode()) {
            (false, _) => "no MMPT",
            (true, true) if how == "MSI" => "MMPT receive interrupts (MSI)",
            (true, true) => "MMPT receive interrupts (MSI-X)",
            (true, false) => "MMPT receive polling",
        };
        dev_info!(pdev, "{name}: {via} payload {payload} B, {mode}, {rx}\n");
        return;
    }
    let events = match (irqs.is_some_and(|i| i.events), dev.event_status_offset()) {
        (true, _) => "event interrupts",
        (false, Some(_)) => "events polled",
        (false, None) => "no event status",
    };
    let info = dev.info();
    match info.ident {
        Some(id) => dev_info!(
            pdev,
            "{name}: {:04x}:{:04x} serial {:#x}, {via} payload {payload} B, {mode}, {events}, CEL {} commands, fwctl {fwctl}\n",
            id.vendor_id,
            id.device_id,
            id.serial,
            info.cel.len() / 4
        ),
        None => dev_info!(
            pdev,
            "{name}: unidentified, {via} payload {payload} B, {mode}, {events}, CEL {} commands, fwctl {fwctl}\n",
            info.cel.len() / 4
        ),
    }
}

/// Maps the BAR of each candidate register block until one holds a mailbox; `cxl_function`:
/// the function has the switch CCI class code.
///
/// # Errors
///
/// EINVAL when the function has no PCIe extended configuration space, or a register block
/// names an invalid BAR; ENODEV when the Register Locator cannot be read or no block holds a
/// mailbox; EBUSY when a BAR's region is taken; ENOMEM when a BAR cannot be mapped or kept.
/// Each is logged.
fn find_mailbox(
    pdev: &pci::Device<Bound>,
    cxl_function: bool,
) -> Result<(DevresBar, BlockContents, RegBlock)> {
    let cfg = pdev
        .config_space_extended()
        .inspect_err(|_| dev_err!(pdev, "no PCIe extended configuration space\n"))?;
    let blocks = discover::register_blocks(&PciConfig(cfg)).map_err(|e| {
        dev_err!(pdev, "{}\n", Disp(&e));
        ENODEV
    })?;
    let mut last = DiscoverError::NoMailbox;
    for block in blocks.iter() {
        // resource_size_t: 32 bits on 32-bit kernels without LPAE (AST2600), 64 bits elsewhere;
        // `expect` would be unfulfilled on one of the two.
        #[allow(clippy::useless_conversion)]
        let len = u64::from(
            pdev.resource_len(u32::from(block.bar))
                .inspect_err(|e| dev_err!(pdev, "no BAR {}: {e:?}\n", block.bar))?,
        );
        if len == 0 {
            dev_dbg!(pdev, "register block in unimplemented BAR {}\n", block.bar);
            continue;
        }
        let bar = pdev
            .iomap_region(u32::from(block.bar), c"cxl_swcci")
            .inspect_err(|e| dev_err!(pdev, "cannot map BAR {}: {e:?}\n", block.bar))?
            .into_devres()
            .inspect_err(|e| dev_err!(pdev, "cannot keep BAR {} mapped: {e:?}\n", block.bar))?;
        let scanned = BarIo(&bar)
            .with(|r| discover::scan_block(r, len, block, cxl_function))
            .unwrap_or(Err(DiscoverError::Io(IoError::Gone)));
        match scanned {
            Ok(found) => return Ok((bar, found, *block)),
            Err(e) => {
                dev_dbg!(
                    pdev,
                    "BAR {} offset {:#x}: {}\n",
                    block.bar,
                    block.offset,
                    Disp(&e)
                );
                last = e;
            }
        }
    }
    dev_err!(pdev, "no mailbox: {}\n", Disp(&last));
    Err(ENODEV)
}

impl pci::Driver for SwcciDriver {
    type IdInfo = Kind;
    type Data<'bound> = SwcciData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let cxl_class = pdev.pci_class().as_raw() >> 8 == PCI_CLASS_CXL_SWITCH_CCI >> 8;
        // The class table binds switch CCIs; anything else came through driver_override.
        let kind = match info.copied() {
            Some(Kind::SwitchCci) if cxl_class => Kind::SwitchCci,
            _ => Kind::Mmb,
        };
        pdev.enable_device_mem()
            .inspect_err(|e| dev_err!(pdev, "cannot enable memory space: {:?}\n", e))?;
        // From here on the function is disabled again when probe fails, or at unbind.
        let enabled = Enabled(pdev);
        pdev.set_master();

        let (bar, found, block) = find_mailbox(pdev, cxl_class)?;
        let loc = found.mailbox;
        if kind == Kind::Mmb && !loc.flavor.mmb {
            dev_err!(pdev, "bound by driver_override but has no PCIe MMB\n");
            return Err(ENODEV);
        }
        let mbox = Mailbox::init(
            &BarIo(&bar),
            &mut ProbeWaiter::new(),
            loc,
            Timeouts::DEFAULT,
        )
        .map_err(|e| {
            dev_err!(
                pdev,
                "mailbox at BAR {} + {:#x}: {}\n",
                block.bar,
                loc.base,
                Disp(&e)
            );
            Error::from(e)
        })?;
        let id = NodeId::alloc(kind).inspect_err(|_| dev_err!(pdev, "no free device node\n"))?;
        let mmpt = found.mmpt.map(|m| m.base);
        let dev = Arc::pin_init(
            Swcci::new(pdev, bar, kind, mbox, id.name(), mmpt, found.device_status),
            GFP_KERNEL,
        )
        .inspect_err(|e| dev_err!(pdev, "cannot allocate the device object: {e:?}\n"))?;

        let irqs = setup_irqs(pdev, &dev, loc.flavor.cxl);

        if loc.flavor.cxl {
            dev.read_identity();
        }
        // A transfer a previous binding left open (the function stopped answering part-way,
        // then came back) would refuse every send: abort it before anyone can send.
        let (send, recv) = policy::internal_messages();
        dev.mmpt_abort_open_transfers(&send, &recv);
        // Before the node, so that udev finds the files when the node appears.
        let sysfs = sysfs::Attrs::add(&dev)?;
        let node = Node::register(dev.clone(), id).inspect_err(|e| {
            dev_err!(
                pdev,
                "cannot register {}: {:?}\n",
                dev.node_name.to_str().unwrap_or("?"),
                e
            )
        })?;
        let fwctl = Fwctl::register(pdev, &dev);
        let debugfs = crate::with_debugfs_root(|root| DeviceDir::new(root, &dev));
        log_probe(pdev, &dev, loc.flavor.mmb, &fwctl, irqs.as_ref());

        Ok(SwcciData {
            _sysfs: sysfs,
            _node: node,
            _fwctl: fwctl,
            _debugfs: debugfs,
            _irqs: irqs,
            dev,
            _enabled: enabled,
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.dev.remove();
    }
}
