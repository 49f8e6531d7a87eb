// SPDX-License-Identifier: GPL-2.0

//! PCI binding: the ID table, probe (discovery, mailbox set-up, interrupts, identity, device
//! node) and unbind.

use crate::{
    chardev::{Node, NodeId},
    debugfs_stats::{self, DebugfsDir},
    device::{mbox_errno, Kind, ProbeWaiter, Swcci},
    mmio::{BarIo, PciConfig},
    proto::{
        discover::{self, BlockContents, DiscoverError, RegBlock},
        mailbox::{Mailbox, Timeouts},
        regs::PCI_CLASS_CXL_SWITCH_CCI,
    },
    Disp,
};
use kernel::{
    device::{Bound, Core},
    irq::{self, IrqReturn},
    pci::{self, DevresBar, IrqType, IrqTypes},
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

/// The interrupt handler: wakes whoever waits on the mailbox.
#[pin_data]
pub(crate) struct MboxIrq {
    dev: Arc<Swcci>,
}

impl irq::Handler for MboxIrq {
    fn handle(&self) -> IrqReturn {
        self.dev.handle_irq();
        IrqReturn::Handled
    }
}

/// The mailbox interrupt: the vectors and the handler registered on one of them.
#[pin_data]
pub(crate) struct MboxIrqs<'bound> {
    // Declared first: freed before the vectors it uses.
    #[pin]
    reg: irq::Registration<'bound, MboxIrq>,
    vectors: pci::IrqVectorRegistration<'bound>,
}

impl<'bound> MboxIrqs<'bound> {
    /// Allocates MSI-X or MSI vectors up to the mailbox's message number and registers the
    /// handler on that vector.
    fn new(
        pdev: &'bound pci::Device<Bound>,
        dev: Arc<Swcci>,
        msgnum: u8,
    ) -> Result<Pin<KBox<Self>>> {
        let nvec = u32::from(msgnum) + 1;
        let types = IrqTypes::default().with(IrqType::MsiX).with(IrqType::Msi);
        let vectors = pdev.alloc_irq_vectors(nvec, nvec.max(32), types)?;
        KBox::pin_init(
            try_pin_init!(Self {
                vectors,
                // SAFETY: `vectors` is initialised before this expression (fields are
                // initialised in the order written here), lives at a pinned, stable address and
                // is dropped after `reg` (declaration order), so the reference outlives the
                // registration. The registration is owned by the returned box and never
                // forgotten.
                reg <- unsafe {
                    let vectors = &*core::ptr::from_ref(vectors);
                    irq::Registration::new(
                        vectors.index(usize::from(msgnum))?.into(),
                        irq::Flags::TRIGGER_NONE,
                        c"cxl_swcci",
                        try_pin_init!(MboxIrq { dev }? Error),
                    )
                },
            }? Error),
            GFP_KERNEL,
        )
    }
}

/// Per-device driver data. Dropped after `unbind()`, in field order: the node goes first (no
/// new opens), then debugfs, then the interrupt, then the driver's reference to the device.
pub(crate) struct SwcciData<'bound> {
    _node: Pin<KBox<Node>>,
    _debugfs: Option<DebugfsDir>,
    _irqs: Option<Pin<KBox<MboxIrqs<'bound>>>>,
    dev: Arc<Swcci>,
}

/// Maps the BAR of each candidate register block until one holds a mailbox.
fn find_mailbox(pdev: &pci::Device<Bound>) -> Result<(DevresBar, BlockContents, RegBlock)> {
    let cfg = pdev
        .config_space_extended()
        .inspect_err(|_| dev_err!(pdev, "no PCIe extended configuration space\n"))?;
    let blocks = discover::register_blocks(&PciConfig(cfg)).map_err(|e| {
        dev_err!(pdev, "{}\n", Disp(&e));
        ENODEV
    })?;
    let cxl_function = pdev.pci_class().as_raw() >> 8 == PCI_CLASS_CXL_SWITCH_CCI >> 8;
    let mut last = DiscoverError::NoMailbox;
    for block in blocks.iter() {
        let len = pdev.resource_len(u32::from(block.bar))?;
        if len == 0 {
            dev_dbg!(pdev, "register block in unimplemented BAR {}\n", block.bar);
            continue;
        }
        let bar = pdev
            .iomap_region(u32::from(block.bar), c"cxl_swcci")
            .inspect_err(|e| dev_err!(pdev, "cannot map BAR {}: {e:?}\n", block.bar))?
            .into_devres()?;
        match discover::scan_block(&BarIo(&bar), len, block, cxl_function) {
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
        let kind = info.copied().unwrap_or(Kind::SwitchCci);
        pdev.enable_device_mem()
            .inspect_err(|e| dev_err!(pdev, "cannot enable memory space: {e:?}\n"))?;
        pdev.set_master();

        let (bar, found, block) = find_mailbox(pdev)?;
        let loc = found.mailbox;
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
            mbox_errno(&e)
        })?;
        let caps = mbox.caps();

        let id = NodeId::alloc(kind).inspect_err(|_| dev_err!(pdev, "no free device node\n"))?;
        let dev = Arc::pin_init(Swcci::new(pdev, bar, kind, mbox, id.name()), GFP_KERNEL)?;

        let wants_irq = caps.doorbell_irq() || (caps.background_irq() && loc.flavor.cxl);
        let irqs = if crate::module_parameters::poll_only.value() || !wants_irq {
            None
        } else {
            match MboxIrqs::new(pdev, dev.clone(), caps.irq_msgnum()) {
                Ok(irqs) => {
                    dev.set_irq_mode(caps.doorbell_irq(), caps.background_irq())
                        .map_err(|_| ENXIO)?;
                    Some(irqs)
                }
                Err(e) => {
                    dev_info!(
                        pdev,
                        "no interrupt for vector {} ({}): polling\n",
                        caps.irq_msgnum(),
                        e.to_errno()
                    );
                    None
                }
            }
        };

        dev.read_identity();
        let node = Node::register(dev.clone(), id).inspect_err(|e| {
            dev_err!(
                pdev,
                "cannot register {}: {e:?}\n",
                dev.node_name.to_str().unwrap_or("?")
            )
        })?;
        let debugfs = debugfs_stats::create(&dev);

        {
            let st = dev.state.lock();
            let mode = match (dev.irq_mode(), dev.bg_irq_mode()) {
                (true, _) => "interrupts",
                (false, true) => "polling (background interrupts)",
                (false, false) => "polling",
            };
            let via = if loc.flavor.mmb { "MMB" } else { "CXL mailbox" };
            match st.info.ident {
                Some(id) => dev_info!(
                    pdev,
                    "{}: {:04x}:{:04x} serial {:#x}, {via} payload {} B, {mode}, CEL {} commands\n",
                    dev.node_name.to_str().unwrap_or("?"),
                    id.vendor_id,
                    id.device_id,
                    id.serial,
                    st.mbox.payload_size(),
                    st.info.cel.len() / 4
                ),
                None => dev_info!(
                    pdev,
                    "{}: unidentified, {via} payload {} B, {mode}, CEL {} commands\n",
                    dev.node_name.to_str().unwrap_or("?"),
                    st.mbox.payload_size(),
                    st.info.cel.len() / 4
                ),
            }
        }

        Ok(SwcciData {
            _node: node,
            _debugfs: debugfs,
            _irqs: irqs,
            dev,
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.dev.remove();
    }
}
