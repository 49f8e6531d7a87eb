// SPDX-License-Identifier: GPL-2.0

//! Tests of the register model, driven by the protocol core's own discovery and mailbox engine
//! through the same `bar_read`/`bar_write` path the vfio-user backend uses.

use super::*;
use crate::config::ConfigSpace;
use crate::fabric::{
    device_serial, ld_serial, FabricConfig, MLD_DEVICE_ID, OP_GET_LD_ALLOCATIONS, OP_GET_LD_INFO,
    TYPE3_DEVICE_ID,
};
use crate::firmware::FwFault;
use crate::irq::FakeIrqs;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use swcci_proto::discover::{register_blocks, scan_block, BlockContents, RegBlock, Via};
use swcci_proto::mailbox::{
    AbortOutcome, BgPolicy, Event, Flavor, IoError, Mailbox, MboxError, RegIo, Request, Response,
    Timeouts, Wait, WaitError,
};
use swcci_proto::mmpt::{
    self as pmmpt, Action, MmptCode, MsgHeader, Part, HEADER_LEN, RECEIVE_MESSAGE, SEND_MESSAGE,
    VENDOR_PCI_SIG,
};
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::firmware::{
    max_part, revision_field, Activate, ActivateAction, FwInfo, Transfer, TransferAction,
    OFFSET_UNIT, REVISION_LEN, TRANSFER_HEADER_LEN,
};
use swcci_proto::payload::identify::{ComponentType, Identify};
use swcci_proto::payload::ld::{ld_allocations_request, Granularity, LdAllocations, LdInfo};
use swcci_proto::payload::logs::{
    effect, get_log_input, Cel, SupportedLogs, Uuid, CEL_ENTRY, CEL_UUID,
};
use swcci_proto::payload::switch::{
    bind_vppb_request, link_speed_decigt, port_state_request, unbind_vppb_request,
    vcs_info_request, BindingStatus, ConnectedMode, ConnectedType, IdentifySwitch, Ltssm,
    PortConfigState, PortInfo, PortStates, UnbindOption, VcsInfos, VcsState, VppbInfo, LD_NONE,
};
use swcci_proto::payload::tunnel::{encode_request, Category, TunnelResponse};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::{CapArrayHeader, MemdevStatus, MmptRxNotify};

const MS: Duration = Duration::from_millis(1);

/// BAR0 of the device as the engine sees it, with simulated time.
struct Bus {
    dev: RefCell<Device>,
    now: Cell<Duration>,
}

impl Bus {
    fn read(&self, off: usize, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.dev
            .borrow_mut()
            .bar_read(self.now.get(), 0, off as u64, &mut b);
        b
    }

    fn write(&self, off: usize, data: &[u8]) {
        self.dev
            .borrow_mut()
            .bar_write(self.now.get(), 0, off as u64, data);
    }

    fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
        self.dev.borrow_mut().tick(self.now.get());
    }

    fn with<R>(&self, f: impl FnOnce(&mut Device, Duration) -> R) -> R {
        f(&mut self.dev.borrow_mut(), self.now.get())
    }

    fn stat(&self, name: &str) -> u64 {
        self.dev.borrow().stat(name).unwrap()
    }
}

impl RegIo for Bus {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        Ok(u32::from_le_bytes(self.read(off, 4).try_into().unwrap()))
    }
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        Ok(u64::from_le_bytes(self.read(off, 8).try_into().unwrap()))
    }
    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        self.write(off, &val.to_le_bytes());
        Ok(())
    }
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        self.write(off, &val.to_le_bytes());
        Ok(())
    }
}

/// Simulated waiting: every wait advances time by 1 ms.
struct Clock<'a> {
    bus: &'a Bus,
    budget: Duration,
    elapsed: Duration,
    waits: u64,
}

impl<'a> Clock<'a> {
    fn new(bus: &'a Bus) -> Self {
        Self {
            bus,
            budget: Duration::ZERO,
            elapsed: Duration::ZERO,
            waits: 0,
        }
    }
}

impl Wait for Clock<'_> {
    fn begin(&mut self, _event: Event, timeout_us: u64) {
        self.budget = Duration::from_micros(timeout_us);
        self.elapsed = Duration::ZERO;
    }

    fn wait(&mut self, _event: Event) -> Result<(), WaitError> {
        if self.elapsed >= self.budget {
            return Err(WaitError::Timeout);
        }
        self.waits += 1;
        self.elapsed += MS;
        self.bus.advance(MS);
        Ok(())
    }
}

struct Rig {
    bus: Bus,
    irqs: Arc<FakeIrqs>,
    cfg: ConfigSpace,
    found: BlockContents,
    block: RegBlock,
}

fn rig_with(p: Personality, tweak: impl FnOnce(&mut DeviceConfig)) -> Rig {
    let mut dc = DeviceConfig::new(p);
    tweak(&mut dc);
    dc.validate().unwrap();
    let irqs = Arc::new(FakeIrqs::new());
    let cfg = ConfigSpace::new(&dc.config_params());
    let bar_len = dc.bar0_size();
    let cxl_function = dc.class() >> 8 == 0x0c0b;
    let bus = Bus {
        dev: RefCell::new(Device::new(dc, irqs.clone(), Duration::ZERO)),
        now: Cell::new(Duration::ZERO),
    };
    let blocks = register_blocks(&cfg).unwrap();
    let block = *blocks.iter().next().unwrap();
    let found = scan_block(&bus, bar_len, &block, cxl_function).unwrap();
    Rig {
        bus,
        irqs,
        cfg,
        found,
        block,
    }
}

fn rig(p: Personality) -> Rig {
    rig_with(p, |_| {})
}

impl Rig {
    fn mbox(&self) -> Mailbox {
        Mailbox::init(
            &self.bus,
            &mut Clock::new(&self.bus),
            self.found.mailbox,
            Timeouts::DEFAULT,
        )
        .unwrap()
    }

    fn run(
        &self,
        mbox: &mut Mailbox,
        op: u16,
        input: &[u8],
    ) -> Result<(Response, Vec<u8>), MboxError> {
        let mut out = vec![0u8; mbox.payload_size()];
        let r = mbox.execute(
            &self.bus,
            &mut Clock::new(&self.bus),
            &Request {
                bg: BgPolicy {
                    timeout_us: 5_000_000,
                    ..BgPolicy::DEFAULT
                },
                ..Request::new(op, input)
            },
            &mut out,
        )?;
        out.truncate(r.out_len);
        Ok((r, out))
    }

    /// Get Log (0401h) of `length` bytes at `offset` of the log `uuid`.
    fn get_log(
        &self,
        mbox: &mut Mailbox,
        uuid: &Uuid,
        offset: u32,
        length: u32,
    ) -> (Response, Vec<u8>) {
        let input = get_log_input(uuid, offset, length);
        self.run(mbox, opcode::GET_LOG, &input).unwrap()
    }

    /// The foreground part of command `op` (up to 8 output bytes, not kept): a background
    /// operation it starts keeps running.
    fn start(&self, mbox: &mut Mailbox, op: u16, input: &[u8]) -> Response {
        let mut out = [0u8; 8];
        mbox.start(
            &self.bus,
            &mut Clock::new(&self.bus),
            &Request::new(op, input),
            &mut out,
        )
        .unwrap()
    }

    fn pci_sig(&self, mbox: &mut Mailbox, op: u16, input: &[u8]) -> (MmptCode, Vec<u8>) {
        let mut out = vec![0u8; mbox.payload_size()];
        let r = mbox
            .start(
                &self.bus,
                &mut Clock::new(&self.bus),
                &Request {
                    opcode_vendor: VENDOR_PCI_SIG,
                    ..Request::new(op, input)
                },
                &mut out,
            )
            .unwrap();
        out.truncate(r.out_len);
        (MmptCode::from_raw(r.rc.raw()), out)
    }

    fn send_part(
        &self,
        mbox: &mut Mailbox,
        ty: u8,
        part: &Part,
        data: &[u8],
    ) -> (MmptCode, Vec<u8>) {
        let mut input = vec![0u8; HEADER_LEN + data.len()];
        let n = pmmpt::send_input(&mut input, ty, part, data).unwrap();
        self.pci_sig(mbox, SEND_MESSAGE, &input[..n])
    }

    /// Sends a whole message the way the driver does.
    fn send(&self, mbox: &mut Mailbox, ty: u8, data: &[u8]) -> (MmptCode, Vec<u8>) {
        let mut last = (MmptCode::Success, Vec::new());
        for p in pmmpt::parts(data.len(), pmmpt::send_chunk(mbox.payload_size())) {
            last = self.send_part(mbox, ty, &p, &data[p.offset..p.offset + p.len]);
            if last.0 != MmptCode::Success {
                return last;
            }
        }
        last
    }

    /// Receives the head message the way the driver does.
    fn receive(&self, mbox: &mut Mailbox) -> Result<(u8, Vec<u8>), MmptCode> {
        let base = self.found.mmpt.unwrap().base;
        let n = MmptRxNotify(self.bus.read64(base + MmptRxNotify::OFFSET).unwrap());
        if !n.ready() {
            let input = pmmpt::receive_input(
                0,
                &Part {
                    action: Action::Full,
                    offset: 0,
                    len: 16,
                },
            )
            .unwrap();
            return Err(self.pci_sig(mbox, RECEIVE_MESSAGE, &input).0);
        }
        let len = n.msg_len() as usize;
        let mut data = Vec::new();
        for p in pmmpt::parts(len, mbox.payload_size()) {
            let input = pmmpt::receive_input(n.msg_type(), &p).unwrap();
            let (code, out) = self.pci_sig(mbox, RECEIVE_MESSAGE, &input);
            if code != MmptCode::Success {
                return Err(code);
            }
            assert_eq!(out.len(), p.len);
            data.extend_from_slice(&out);
        }
        Ok((n.msg_type(), data))
    }
}

// ---- discovery ----

#[test]
fn switch_is_discovered_as_cxl_mmb_with_mmpt() {
    let r = rig(Personality::Switch);
    assert_eq!(r.block.via, Via::Mrbl);
    assert_eq!(r.found.mailbox.flavor, Flavor::CXL_MMB);
    assert_eq!(r.found.mailbox.base, MBOX_REGS);
    assert_eq!(r.found.mailbox.len, MBOX_PAYLOAD + 2048);
    assert_eq!(r.found.mmpt.unwrap().base, MMPT_REGS);

    // The CXL Register Locator leads to the same mailbox as a CXL primary mailbox.
    let blocks: Vec<_> = register_blocks(&r.cfg).unwrap().iter().copied().collect();
    assert_eq!(blocks[1].via, Via::RegisterLocator);
    let cxl = scan_block(&r.bus, 0x10000, &blocks[1], true).unwrap();
    assert_eq!(cxl.mailbox.flavor, Flavor::CXL);
    assert_eq!(cxl.mailbox.base, MBOX_REGS);
    assert_eq!(cxl.mailbox.memdev_status, Some(MEMDEV_STATUS_REGS));
    assert_eq!(cxl.mmpt, None);
    // And the engine works that way too.
    let mut mbox = Mailbox::init(
        &r.bus,
        &mut Clock::new(&r.bus),
        cxl.mailbox,
        Timeouts::DEFAULT,
    )
    .unwrap();
    let (resp, out) = r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert!(resp.rc.is_success());
    assert_eq!(Identify::decode(&out).unwrap().device_id, 0x5c01);
}

#[test]
fn mmpt_is_discovered_as_plain_mmb() {
    let r = rig(Personality::Mmpt);
    assert_eq!(r.found.mailbox.flavor, Flavor::MMB);
    assert_eq!(r.found.mailbox.base, MBOX_REGS);
    assert_eq!(r.found.mmpt.unwrap().base, MMPT_REGS);
    assert_eq!(r.cfg.read32(8) >> 8, 0xff_0000);
    let caps = MboxCaps(r.bus.read32(MBOX_REGS).unwrap());
    assert!(caps.attention());
    assert!(!caps.background_irq());
    assert_eq!(caps.irq_msgnum(), 1);
    let mc = MmptCaps(r.bus.read32(MMPT_REGS).unwrap());
    assert!(mc.rx_irq());
    assert_eq!(mc.rx_vector(), 2);
}

#[test]
fn capability_array_layout() {
    let r = rig(Personality::Switch);
    let hdr = CapArrayHeader(r.bus.read64(0).unwrap());
    assert_eq!(
        (hdr.id(), hdr.version(), hdr.kind(), hdr.count()),
        (0, 1, 2, 5)
    );
    // Header 3 is the MMB: id 1, vendor 0001h, same registers as the primary mailbox (header 1).
    assert_eq!(r.bus.read32(0x40).unwrap() & 0xffff, 1);
    assert_eq!(r.bus.read32(0x44).unwrap(), MBOX_REGS as u32);
    assert_eq!(r.bus.read32(0x4c).unwrap(), 1);
    assert_eq!(r.bus.read32(0x24).unwrap(), r.bus.read32(0x44).unwrap());
    let m = rig(Personality::Mmpt);
    let hdr = CapArrayHeader(m.bus.read64(0).unwrap());
    assert_eq!((hdr.kind(), hdr.count()), (0, 2));
    // Unused offsets read zero.
    assert_eq!(m.bus.read64(0x3000).unwrap(), 0);
    assert_eq!(m.bus.read32(0x200).unwrap(), 0, "no memdev status on mmpt");
}

// ---- commands ----

#[test]
fn identify_and_identify_switch() {
    let r = rig_with(Personality::Switch, |c| c.serial = 0x1234_5678);
    let mut mbox = r.mbox();
    let (resp, out) = r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert!(resp.rc.is_success());
    let id = Identify::decode(&out).unwrap();
    assert_eq!((id.vendor_id, id.device_id), (0x1b36, 0x5c01));
    assert_eq!(id.serial, 0x1234_5678);
    assert_eq!(id.max_msg_size(), Some(2048));
    assert_eq!(id.component_type, ComponentType::Switch);
    let (_, out) = r.run(&mut mbox, opcode::IDENTIFY_SWITCH, &[]).unwrap();
    let sw = IdentifySwitch::decode(&out).unwrap();
    assert_eq!(sw.num_physical_ports, 4);
    assert_eq!(sw.active_port_ids().collect::<Vec<_>>(), [0, 1, 2, 3]);
    // Input where none is expected.
    let (resp, _) = r.run(&mut mbox, opcode::IDENTIFY, &[1]).unwrap();
    assert_eq!(resp.rc, ReturnCode::InvalidPayloadLength);
    assert_eq!(
        r.bus.dev.borrow().last_opcode(),
        Some((opcode::IDENTIFY, 0))
    );
    assert_eq!(r.bus.stat("commands"), 3);
}

#[test]
fn logs_and_cel() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let (_, out) = r.run(&mut mbox, opcode::GET_SUPPORTED_LOGS, &[]).unwrap();
    let logs = SupportedLogs::decode(&out).unwrap();
    let size = logs.find(&CEL_UUID).unwrap();
    assert_eq!(size as usize, SWITCH_OPCODES.len() * 4);
    let (resp, cel) = r.get_log(&mut mbox, &CEL_UUID, 0, size);
    assert!(resp.rc.is_success());
    let cel = Cel::new(&cel);
    let ops: Vec<u16> = cel.iter().map(|e| e.opcode).collect();
    assert_eq!(ops, SWITCH_OPCODES);
    assert!(cel.find(opcode::IDENTIFY).unwrap().no_effects());
    let sleep = cel.find(OP_SLEEP).unwrap().effect;
    assert_ne!(sleep & effect::BACKGROUND_OP, 0);
    assert_ne!(sleep & effect::CONFIG_CHANGE_IMMEDIATE, 0);
    assert_eq!(
        cel.find(OP_ECHO).unwrap().effect,
        effect::CONFIG_CHANGE_IMMEDIATE
    );
    // A slice, a bad range, a bad uuid, a bad length.
    let (_, part) = r.get_log(&mut mbox, &CEL_UUID, 4, 4);
    assert_eq!(part, [0x02, 0x00, 0x00, 0x00]);
    let (resp, _) = r.get_log(&mut mbox, &CEL_UUID, 4, size);
    assert_eq!(resp.rc, ReturnCode::InvalidInput);
    let bogus = swcci_proto::payload::logs::VENDOR_DEBUG_UUID;
    let (resp, _) = r.get_log(&mut mbox, &bogus, 0, 4);
    assert_eq!(resp.rc, ReturnCode::InvalidLog);
    let (resp, _) = r.run(&mut mbox, opcode::GET_LOG, &[0; 4]).unwrap();
    assert_eq!(resp.rc, ReturnCode::InvalidPayloadLength);
}

#[test]
fn echo_unknown_and_foreign_vendors() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let data: Vec<u8> = (0..2048).map(|i| i as u8).collect();
    let (resp, out) = r.run(&mut mbox, OP_ECHO, &data).unwrap();
    assert!(resp.rc.is_success());
    assert_eq!(out, data);
    let (resp, _) = r.run(&mut mbox, 0x4400, &[]).unwrap();
    assert_eq!(resp.rc, ReturnCode::Unsupported);
    // PCI-SIG opcodes other than MMPT's.
    assert_eq!(r.pci_sig(&mut mbox, 0x0001, &[]).0, MmptCode::Unsupported);
    // The mmpt personality has no CXL command set.
    let m = rig(Personality::Mmpt);
    let mut mbox = m.mbox();
    let (resp, _) = m.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert_eq!(resp.rc, ReturnCode::Unsupported);
    let (resp, _) = m.run(&mut mbox, OP_ECHO, &[1]).unwrap();
    assert_eq!(resp.rc, ReturnCode::Unsupported);
    assert_eq!(
        m.bus.stat("no-attention"),
        0,
        "the engine asked for attention"
    );
    assert_eq!(m.bus.stat("unsupported"), 2);
}

#[test]
fn input_length_above_payload_is_refused() {
    let r = rig(Personality::Switch);
    r.mbox();
    r.bus
        .write64(
            MBOX_REGS + 8,
            MboxCmd::default()
                .with_opcode(OP_ECHO)
                .with_payload_len(4096)
                .0,
        )
        .unwrap();
    r.bus.write32(MBOX_REGS + 4, 1).unwrap();
    let st = MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap());
    assert_eq!(st.return_code(), ReturnCode::InvalidPayloadLength.raw());
    assert_eq!(
        MboxCmd(r.bus.read64(MBOX_REGS + 8).unwrap()).payload_len(),
        0
    );
}

// ---- background ----

#[test]
fn background_sleep_progresses_and_completes() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, true).unwrap();
    let resp = r.start(&mut mbox, OP_SLEEP, &100u32.to_le_bytes());
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    assert!(mbox.is_background(&resp));
    let irqs_after_doorbell = r.irqs.count(MBOX_VECTOR);
    assert_eq!(irqs_after_doorbell, 1);
    assert!(MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).background());
    // Progress is visible in the register and through 0002h; other commands still run; a
    // second background command is refused as busy.
    r.bus.advance(40 * MS);
    let bg = mbox.bg_status(&r.bus).unwrap();
    assert_eq!((bg.opcode(), bg.percent()), (OP_SLEEP, 40));
    let (_, st) = r.run(&mut mbox, opcode::BG_OP_STATUS, &[]).unwrap();
    let st = BgOpStatus::decode(&st).unwrap();
    assert!(st.running);
    assert_eq!((st.opcode, st.percent), (OP_SLEEP, 40));
    let (resp, _) = r.run(&mut mbox, OP_SLEEP, &5u32.to_le_bytes()).unwrap();
    assert_eq!(resp.rc, ReturnCode::Busy);
    let done = mbox
        .wait_background(&r.bus, &mut Clock::new(&r.bus), OP_SLEEP, 1_000_000, || {
            None
        })
        .unwrap();
    assert_eq!(done.rc, ReturnCode::Success);
    assert_eq!(r.bus.now.get(), 100 * MS);
    assert!(!MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).background());
    // Doorbell interrupts of the 3 foreground commands + the background completion.
    assert_eq!(r.irqs.count(MBOX_VECTOR), 1 + 2 + 1);
    assert_eq!(r.bus.stat("bg-completed"), 1);

    // The whole thing through execute(), with a final return code from the control channel.
    r.bus.with(|d, _| d.settings.bg_rc = 0x0004);
    let (resp, _) = r.run(&mut mbox, OP_SLEEP, &10u32.to_le_bytes()).unwrap();
    assert_eq!(resp.rc, ReturnCode::InternalError);
    assert_eq!(resp.background.unwrap().opcode, OP_SLEEP);
    // Zero milliseconds completes at once; a short input is refused.
    r.bus.with(|d, _| d.settings.bg_rc = 0);
    assert!(r
        .run(&mut mbox, OP_SLEEP, &0u32.to_le_bytes())
        .unwrap()
        .0
        .rc
        .is_success());
    let (resp, _) = r.run(&mut mbox, OP_SLEEP, &[1, 0]).unwrap();
    assert_eq!(resp.rc, ReturnCode::InvalidPayloadLength);
}

#[test]
fn background_interrupt_needs_enable() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, false, false).unwrap();
    r.run(&mut mbox, OP_SLEEP, &10u32.to_le_bytes()).unwrap();
    assert_eq!(r.irqs.total(), 0);
    mbox.set_interrupts(&r.bus, false, true).unwrap();
    r.run(&mut mbox, OP_SLEEP, &10u32.to_le_bytes()).unwrap();
    assert_eq!(r.irqs.count(MBOX_VECTOR), 1);
    // Not advertised: never fired even if enabled by a raw write.
    let n = rig_with(Personality::Switch, |c| {
        c.bg_irq = false;
        c.doorbell_irq = false;
    });
    let mut mbox = n.mbox();
    assert!(!mbox.caps().background_irq());
    assert!(!mbox.caps().doorbell_irq());
    n.bus.write32(MBOX_REGS + 4, 0x6).unwrap();
    n.run(&mut mbox, OP_SLEEP, &10u32.to_le_bytes()).unwrap();
    assert_eq!(n.irqs.total(), 0);
}

#[test]
fn abort_supported_and_unsupported() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.arm(Fault::BgStuck(30), Mode::Once));
    let err = r
        .run(&mut mbox, OP_SLEEP, &50u32.to_le_bytes())
        .unwrap_err();
    match err {
        MboxError::Background {
            opcode,
            cause,
            percent,
            abort,
        } => {
            assert_eq!(opcode, OP_SLEEP);
            assert_eq!(cause, WaitError::Timeout);
            assert_eq!(percent, 30);
            assert_eq!(abort, AbortOutcome::Stopped(ReturnCode::Aborted));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(r.bus.stat("bg-aborted"), 1);
    // Nothing running: an abort request still succeeds.
    assert!(r
        .run(&mut mbox, opcode::REQUEST_ABORT_BG, &[])
        .unwrap()
        .0
        .rc
        .is_success());

    r.bus.with(|d, _| {
        d.settings.abort_supported = false;
        d.arm(Fault::BgNever, Mode::Once);
    });
    let err = r
        .run(&mut mbox, OP_SLEEP, &50u32.to_le_bytes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            MboxError::Background {
                percent: 99,
                abort: AbortOutcome::Unsupported,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(r.bus.with(|d, _| d.bg_state().0), "still running");
    // The CEL follows the setting.
    let cel = r.bus.with(|d, _| d.cel());
    let e = Cel::new(&cel).find(OP_SLEEP).unwrap().effect;
    assert_eq!(e & effect::BACKGROUND_ABORT, 0);
}

// ---- faults ----

#[test]
fn fault_doorbell_stuck_then_clear() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.arm(Fault::DoorbellStuck, Mode::Once));
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Timeout
    );
    // Still stuck: the mailbox is busy.
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Busy
    );
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "none", "once: disarmed");
    r.bus.with(|d, now| d.clear(now));
    assert!(r
        .run(&mut mbox, opcode::IDENTIFY, &[])
        .unwrap()
        .0
        .rc
        .is_success());
    // A reset also unsticks it.
    r.bus.with(|d, _| d.arm(Fault::DoorbellStuck, Mode::Always));
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Timeout
    );
    r.bus.with(|d, now| d.reset(now));
    assert!(!mbox.doorbell_busy(&r.bus).unwrap());
    assert_eq!(r.bus.stat("resets"), 1);
}

#[test]
fn fault_delay() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.arm(Fault::Delay(150), Mode::Once));
    let t0 = r.bus.now.get();
    assert!(r
        .run(&mut mbox, opcode::IDENTIFY, &[])
        .unwrap()
        .0
        .rc
        .is_success());
    assert_eq!(r.bus.now.get() - t0, 150 * MS);
    // Longer than the engine's 2 s: it times out, the command completes later.
    r.bus.with(|d, _| d.arm(Fault::Delay(3000), Mode::Once));
    assert_eq!(
        r.run(&mut mbox, OP_ECHO, &[7]).unwrap_err(),
        MboxError::Timeout
    );
    r.bus.advance(1000 * MS);
    assert!(!mbox.doorbell_busy(&r.bus).unwrap());
    assert!(r
        .run(&mut mbox, opcode::IDENTIFY, &[])
        .unwrap()
        .0
        .rc
        .is_success());
}

#[test]
fn fault_bad_length_and_rc() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.arm(Fault::BadLength, Mode::Once));
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::BadOutputLength {
            claimed: 4096,
            max: 2048
        }
    );
    assert!(r.run(&mut mbox, opcode::IDENTIFY, &[]).is_ok());
    r.bus.with(|d, _| d.arm(Fault::Rc(0x1234), Mode::Always));
    for _ in 0..2 {
        let (resp, out) = r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
        assert_eq!(resp.rc, ReturnCode::Unknown(0x1234));
        assert!(out.is_empty());
    }
    // The rc fault takes the place of a background start.
    let (resp, _) = r.run(&mut mbox, OP_SLEEP, &10u32.to_le_bytes()).unwrap();
    assert_eq!(resp.rc, ReturnCode::Unknown(0x1234));
    assert!(!r.bus.with(|d, _| d.bg_state().0));
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "rc:0x1234=always");
}

#[test]
fn fault_bg_never_and_stuck() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.settings.abort_supported = false);
    r.bus.with(|d, _| d.arm(Fault::BgStuck(42), Mode::Once));
    // A foreground command does not use up a background fault.
    r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    let err = r
        .run(&mut mbox, OP_SLEEP, &20u32.to_le_bytes())
        .unwrap_err();
    assert!(
        matches!(err, MboxError::Background { percent: 42, .. }),
        "{err:?}"
    );
    r.bus.advance(10_000 * MS);
    assert_eq!(r.bus.with(|d, _| d.bg_state()), (true, OP_SLEEP, 42, 0));
    r.bus.with(|d, now| d.reset(now));
    r.bus.with(|d, _| d.arm(Fault::BgNever, Mode::Always));
    let mut mbox = r.mbox();
    for _ in 0..2 {
        let err = r
            .run(&mut mbox, OP_SLEEP, &20u32.to_le_bytes())
            .unwrap_err();
        assert!(
            matches!(err, MboxError::Background { percent: 99, .. }),
            "{err:?}"
        );
        r.bus.with(|d, now| d.reset(now));
    }
}

#[test]
fn fault_no_irq_and_spurious() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, true).unwrap();
    r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert_eq!(r.irqs.count(MBOX_VECTOR), 1);
    r.bus.with(|d, _| d.arm(Fault::NoIrq, Mode::Once));
    r.run(&mut mbox, OP_SLEEP, &5u32.to_le_bytes()).unwrap();
    assert_eq!(
        r.irqs.count(MBOX_VECTOR),
        1,
        "doorbell and background suppressed"
    );
    r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert_eq!(r.irqs.count(MBOX_VECTOR), 2);
    r.bus.with(|d, _| d.arm(Fault::NoIrq, Mode::Always));
    r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
    assert_eq!(r.irqs.count(MBOX_VECTOR), 2);
    assert_eq!(r.bus.stat("irqs-suppressed"), 4);
    // Explicit spurious interrupts still go out.
    r.bus.with(|d, now| d.spurious_irqs(now, 1, MBOX_VECTOR));
    assert_eq!(r.irqs.count(MBOX_VECTOR), 3);
    r.bus.with(|d, now| d.clear(now));
    r.bus.with(|d, now| d.spurious_irqs(now, 3, MBOX_VECTOR));
    assert_eq!(r.irqs.count(MBOX_VECTOR), 4, "the first at once");
    assert_eq!(r.bus.with(|d, _| d.spurious_pending()), 2);
    r.bus.advance(9 * MS);
    assert_eq!(r.irqs.count(MBOX_VECTOR), 4, "10 ms apart");
    r.bus.advance(MS);
    assert_eq!(r.irqs.count(MBOX_VECTOR), 5);
    r.bus.advance(20 * MS);
    assert_eq!(r.irqs.count(MBOX_VECTOR), 6);
    assert_eq!(r.bus.with(|d, _| d.spurious_pending()), 0);
    assert_eq!(r.bus.stat("spurious-irqs"), 4);
    assert_eq!(r.bus.stat("irqs"), 6);
    // A vector without an eventfd drops the interrupt.
    r.irqs
        .connected
        .store(false, std::sync::atomic::Ordering::Relaxed);
    r.bus.with(|d, now| d.spurious_irqs(now, 1, 9));
    assert_eq!(r.bus.stat("irqs-dropped"), 1);
}

#[test]
fn fault_ready_never_and_ready_time() {
    let r = rig_with(Personality::Mmpt, |c| c.ready_ms = 30);
    // The doorbell reads 1 until ready; the engine waits for READY.
    assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap() & 1, 1);
    assert!(!MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).ready());
    r.bus.write32(MBOX_REGS + 4, 1).unwrap();
    assert_eq!(r.bus.stat("doorbell-not-ready"), 1);
    let mut mbox = r.mbox();
    assert_eq!(r.bus.now.get(), 30 * MS);
    assert_eq!(
        mbox.caps().ready_time(),
        1,
        "advertised, rounded up to seconds"
    );
    assert_eq!(
        DeviceConfig {
            ready_ms: 2001,
            ..DeviceConfig::new(Personality::Mmpt)
        }
        .mbox_caps()
        .ready_time(),
        3
    );
    assert_eq!(
        DeviceConfig::new(Personality::Mmpt)
            .mbox_caps()
            .ready_time(),
        0
    );
    assert!(MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).ready());
    // Armed: READY clears now; after a reset the mailbox never becomes ready.
    r.bus.with(|d, _| d.arm(Fault::ReadyNever, Mode::Once));
    assert!(!MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).ready());
    assert_eq!(
        r.send(&mut mbox, 1, &[1]).0,
        MmptCode::Success,
        "commands still work until reset"
    );
    r.bus.with(|d, now| d.reset(now));
    let e = Mailbox::init(
        &r.bus,
        &mut Clock::new(&r.bus),
        r.found.mailbox,
        Timeouts::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(e, MboxError::NotReady);
    assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap() & 1, 1);
    r.bus.with(|d, now| d.clear(now));
    r.mbox();
    // Switch: the memory device status follows READY too.
    let s = rig(Personality::Switch);
    s.bus.advance(MS);
    assert!(MemdevStatus(s.bus.read64(MEMDEV_STATUS_REGS).unwrap()).mbox_ready());
    s.bus.with(|d, _| d.arm(Fault::ReadyNever, Mode::Always));
    assert!(!MemdevStatus(s.bus.read64(MEMDEV_STATUS_REGS).unwrap()).mbox_ready());
}

#[test]
fn fault_surprise_remove() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, true).unwrap();
    r.bus.with(|d, _| d.surprise_remove());
    assert_eq!(r.bus.read64(0).unwrap(), u64::MAX);
    assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap(), u32::MAX);
    let mut b = [0u8; 4];
    r.bus.with(|d, now| d.bar_read(now, 2, 0x800, &mut b));
    assert_eq!(b, [0xff; 4]);
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Io(IoError::Gone)
    );
    r.bus.with(|d, now| d.spurious_irqs(now, 2, MBOX_VECTOR));
    r.bus.advance(20 * MS);
    assert_eq!(r.irqs.total(), 0);
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "surprise-remove");
    r.bus.with(|d, now| d.clear(now));
    assert!(r.run(&mut mbox, opcode::IDENTIFY, &[]).is_ok());
}

// ---- resets and removals in the middle of commands ----

impl Rig {
    /// Puts `input` in the payload and rings the doorbell for `op` (vendor `vendor`), keeping
    /// the interrupt enables; BAR0 reads: one, of the control register, before the doorbell.
    fn ring(&self, vendor: u16, op: u16, input: &[u8]) {
        let ctrl = MboxCtrl(self.bus.read32(MBOX_REGS + 4).unwrap());
        for (i, c) in input.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            self.bus.write(MBOX_REGS + MBOX_PAYLOAD + 4 * i, &w);
        }
        self.bus
            .write64(
                MBOX_REGS + MboxCmd::OFFSET,
                MboxCmd::default()
                    .with_opcode(op)
                    .with_opcode_vendor(vendor)
                    .with_payload_len(input.len() as u32)
                    .0,
            )
            .unwrap();
        self.bus
            .write32(MBOX_REGS + 4, ctrl.with_doorbell(true).0)
            .unwrap();
    }

    fn cmd_reg(&self) -> MboxCmd {
        MboxCmd(self.bus.read64(MBOX_REGS + MboxCmd::OFFSET).unwrap())
    }

    fn doorbell(&self) -> bool {
        self.bus.read32(MBOX_REGS + 4).unwrap() & 1 != 0
    }

    /// One Send Message part, reporting a vanished function as `None`.
    fn try_send_part(
        &self,
        mbox: &mut Mailbox,
        ty: u8,
        part: &Part,
        data: &[u8],
    ) -> Option<MmptCode> {
        let mut input = vec![0u8; HEADER_LEN + data.len()];
        let n = pmmpt::send_input(&mut input, ty, part, data).unwrap();
        let mut out = vec![0u8; mbox.payload_size()];
        let req = Request {
            opcode_vendor: VENDOR_PCI_SIG,
            ..Request::new(SEND_MESSAGE, &input[..n])
        };
        match mbox.start(&self.bus, &mut Clock::new(&self.bus), &req, &mut out) {
            Ok(r) => Some(MmptCode::from_raw(r.rc.raw())),
            Err(MboxError::Io(IoError::Gone)) => None,
            Err(e) => panic!("{e:?}"),
        }
    }

    /// The parts of a `len`-byte message as the driver cuts them.
    fn parts_of(&self, mbox: &mut Mailbox, len: usize) -> Vec<Part> {
        pmmpt::parts(len, pmmpt::send_chunk(mbox.payload_size())).collect()
    }
}

#[test]
fn fault_reset_after_reads_zero_resets_at_the_completion() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, false).unwrap();
    r.bus
        .with(|d, _| d.arm(Fault::ResetAfterReads(0), Mode::Once));
    assert_eq!(
        r.bus.with(|d, _| d.faults_text()),
        "reset-after-reads:0=once"
    );
    r.ring(0, OP_ECHO, &pattern(64));
    assert_eq!(
        r.irqs.count(MBOX_VECTOR),
        1,
        "the completion interrupt went out"
    );
    // The first read already sees the reset function: no output, interrupts off.
    assert_eq!(r.cmd_reg(), MboxCmd::default());
    assert_eq!(r.bus.read64(MBOX_REGS + MBOX_PAYLOAD).unwrap(), 0);
    assert_eq!(
        MboxCtrl(r.bus.read32(MBOX_REGS + 4).unwrap()),
        MboxCtrl::default()
    );
    assert_eq!((r.bus.stat("resets"), r.bus.stat("fault-resets")), (1, 1));
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "none", "once: used up");
    // The next command works and is not reset.
    let mut mbox = r.mbox();
    assert_eq!(r.run(&mut mbox, OP_ECHO, &[1, 2, 3]).unwrap().1, [1, 2, 3]);
    assert_eq!(r.bus.stat("resets"), 1);
}

#[test]
fn fault_reset_after_reads_counts_reads_after_the_completion() {
    let r = rig(Personality::Switch);
    r.mbox();
    let data = pattern(16);
    r.bus.with(|d, _| {
        d.arm(Fault::Delay(5), Mode::Once);
        d.arm(Fault::ResetAfterReads(2), Mode::Once);
    });
    r.ring(0, OP_ECHO, &data);
    // Reads before the completion do not count.
    for _ in 0..3 {
        assert!(r.doorbell());
    }
    r.bus.advance(5 * MS);
    assert!(!r.doorbell(), "read 1: the completion");
    let cmd = r.cmd_reg();
    assert_eq!(cmd.payload_len(), 16, "read 2 still sees the output");
    assert_eq!(r.bus.stat("fault-resets"), 1, "reset right after read 2");
    assert_eq!(r.cmd_reg().payload_len(), 0);
    assert_eq!(r.bus.read64(MBOX_REGS + MBOX_PAYLOAD).unwrap(), 0);

    // always: every command; reads of any BAR0 register count.
    r.bus
        .with(|d, _| d.arm(Fault::ResetAfterReads(1), Mode::Always));
    for n in 1..=2 {
        r.ring(0, OP_ECHO, &data);
        assert_eq!(
            r.bus.read64(0).unwrap() & 0xffff,
            0,
            "capabilities array read"
        );
        assert_eq!(r.bus.stat("fault-resets"), 1 + n);
        assert_eq!(r.cmd_reg().payload_len(), 0);
    }
    assert_eq!(
        r.bus.with(|d, _| d.faults_text()),
        "reset-after-reads:1=always"
    );
    // clear drops an armed count and the fault.
    r.ring(0, OP_ECHO, &data);
    r.bus.with(|d, now| d.clear(now));
    assert_eq!(r.cmd_reg().payload_len(), 16);
    assert_eq!(r.bus.stat("fault-resets"), 3);
}

#[test]
fn fault_remove_after_reads() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let data = pattern(1177);
    r.bus
        .with(|d, _| d.arm(Fault::RemoveAfterReads(1), Mode::Once));
    r.ring(0, OP_ECHO, &data);
    assert!(!r.doorbell());
    // Gone: all ones from the second read on.
    assert_eq!(r.bus.read64(MBOX_REGS + MboxCmd::OFFSET).unwrap(), u64::MAX);
    assert_eq!(r.bus.read64(MBOX_REGS + MBOX_PAYLOAD).unwrap(), u64::MAX);
    assert_eq!(r.bus.stat("fault-removals"), 1);
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "surprise-remove");
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Io(IoError::Gone)
    );
    r.bus.with(|d, now| d.clear(now));
    assert_eq!(r.run(&mut mbox, OP_ECHO, &data).unwrap().1, data);
    // At the completion: the engine sees the function gone when it looks.
    r.bus
        .with(|d, _| d.arm(Fault::RemoveAfterReads(0), Mode::Once));
    assert_eq!(
        r.run(&mut mbox, OP_ECHO, &data).unwrap_err(),
        MboxError::Io(IoError::Gone)
    );
    // A stuck doorbell never completes, so it never triggers.
    r.bus.with(|d, now| {
        d.clear(now);
        d.arm(Fault::DoorbellStuck, Mode::Once);
        d.arm(Fault::RemoveAfterReads(0), Mode::Once);
    });
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Timeout
    );
    assert!(!r.bus.with(|d, _| d.removed()));
}

#[test]
fn fault_reset_at_part() {
    let r = rig(Personality::Mmpt);
    let mut mbox = r.mbox();
    let payload = mbox.payload_size();
    let data = pattern(3 * payload + 5);
    let parts = r.parts_of(&mut mbox, data.len());
    assert_eq!(parts.len(), 4);
    r.bus.with(|d, _| d.arm(Fault::ResetAtPart(2), Mode::Once));
    // A Full message is not multi-part: it does not count.
    assert_eq!(r.send(&mut mbox, 1, &[9]).0, MmptCode::Success);
    r.receive(&mut mbox).unwrap();
    let chunk = |p: &Part| &data[p.offset..p.offset + p.len];
    assert_eq!(
        r.try_send_part(&mut mbox, 1, &parts[0], chunk(&parts[0])),
        Some(MmptCode::Success)
    );
    assert_eq!(r.bus.stat("resets"), 0);
    // Part 2: the function resets at the doorbell; the part is not carried out.
    let n = HEADER_LEN + parts[1].len;
    let mut input = vec![0u8; n];
    pmmpt::send_input(&mut input, 1, &parts[1], chunk(&parts[1])).unwrap();
    r.ring(VENDOR_PCI_SIG, SEND_MESSAGE, &input);
    assert_eq!((r.bus.stat("resets"), r.bus.stat("fault-resets")), (1, 1));
    assert!(!r.doorbell());
    assert_eq!(r.cmd_reg(), MboxCmd::default());
    assert_eq!(r.bus.stat("mmpt-parts"), 2, "the Full message and part 1");
    // The transfer is gone with the reset.
    let mut mbox = r.mbox();
    assert_eq!(
        r.try_send_part(&mut mbox, 1, &parts[2], chunk(&parts[2])),
        Some(MmptCode::TransferOutOfOrder)
    );
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "none");
    assert_eq!(r.send(&mut mbox, 1, &data).0, MmptCode::Success);
    assert_eq!(r.receive(&mut mbox).unwrap().1, data);

    // once: a transfer that ends before the part uses the fault up.
    r.bus.with(|d, _| d.arm(Fault::ResetAtPart(5), Mode::Once));
    assert_eq!(r.send(&mut mbox, 1, &data).0, MmptCode::Success);
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "none");
    assert_eq!(r.bus.stat("fault-resets"), 1);
    r.receive(&mut mbox).unwrap();

    // always: every transfer, part 1 = the Initiate part; the engine notices that the
    // function reset under the part (the Command register no longer holds it).
    r.bus
        .with(|d, _| d.arm(Fault::ResetAtPart(1), Mode::Always));
    for n in 1..=2 {
        let mut mbox = r.mbox();
        let mut input = vec![0u8; HEADER_LEN + parts[0].len];
        let len = pmmpt::send_input(&mut input, 1, &parts[0], chunk(&parts[0])).unwrap();
        let req = Request {
            opcode_vendor: VENDOR_PCI_SIG,
            ..Request::new(SEND_MESSAGE, &input[..len])
        };
        let e = mbox
            .start(&r.bus, &mut Clock::new(&r.bus), &req, &mut [])
            .unwrap_err();
        assert_eq!(e, MboxError::Changed);
        assert_eq!(r.bus.stat("fault-resets"), 1 + n);
    }
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "reset-at-part:1=always");
}

#[test]
fn fault_remove_at_part() {
    for p in [Personality::Mmpt, Personality::Switch] {
        let r = rig(p);
        let mut mbox = r.mbox();
        let data = pattern(2 * mbox.payload_size());
        let parts = r.parts_of(&mut mbox, data.len());
        assert_eq!(parts.len(), 3);
        r.bus.with(|d, _| d.arm(Fault::RemoveAtPart(3), Mode::Once));
        let chunk = |p: &Part| &data[p.offset..p.offset + p.len];
        for part in &parts[..2] {
            assert_eq!(
                r.try_send_part(&mut mbox, 1, part, chunk(part)),
                Some(MmptCode::Success)
            );
        }
        assert_eq!(
            r.try_send_part(&mut mbox, 1, &parts[2], chunk(&parts[2])),
            None
        );
        assert_eq!(r.bus.stat("fault-removals"), 1);
        assert_eq!(
            r.bus.stat("mmpt-messages"),
            0,
            "the Finish part was not carried out"
        );
        assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap(), u32::MAX);
        // clear brings the function back and abandons the part.
        r.bus.with(|d, now| d.clear(now));
        assert!(!r.doorbell());
        let st = MboxStatus(r.bus.read64(MBOX_REGS + MboxStatus::OFFSET).unwrap());
        assert_eq!(st.return_code(), ReturnCode::InternalError.raw());
        // The open transfer can be finished by resending the part.
        assert_eq!(
            r.try_send_part(&mut mbox, 1, &parts[2], chunk(&parts[2])),
            Some(MmptCode::Success)
        );
        assert_eq!(r.receive(&mut mbox).unwrap().1, data);
    }
}

#[test]
fn fault_short_log() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let size = (SWITCH_OPCODES.len() * CEL_ENTRY) as u32;
    let input = get_log_input(&CEL_UUID, 0, size);
    r.bus.with(|d, _| d.arm(Fault::ShortLog(10), Mode::Once));
    // Other commands do not use it up.
    r.run(&mut mbox, opcode::GET_SUPPORTED_LOGS, &[]).unwrap();
    let (resp, out) = r.run(&mut mbox, opcode::GET_LOG, &input).unwrap();
    assert!(resp.rc.is_success());
    assert_eq!(out, r.bus.with(|d, _| d.cel())[..10]);
    let (_, out) = r.run(&mut mbox, opcode::GET_LOG, &input).unwrap();
    assert_eq!(out.len(), size as usize, "once");
    // A range shorter than N is returned whole; an invalid range is still refused.
    r.bus.with(|d, _| d.arm(Fault::ShortLog(0), Mode::Always));
    for _ in 0..2 {
        let (resp, out) = r.run(&mut mbox, opcode::GET_LOG, &input).unwrap();
        assert!(resp.rc.is_success());
        assert!(out.is_empty());
    }
    let (resp, _) = r.get_log(&mut mbox, &CEL_UUID, 4, size);
    assert_eq!(resp.rc, ReturnCode::InvalidInput);
    r.bus.with(|d, _| d.arm(Fault::ShortLog(8), Mode::Once));
    let (_, out) = r.get_log(&mut mbox, &CEL_UUID, 4, 4);
    assert_eq!(out.len(), 4);
    assert_eq!(r.bus.stat("short-logs"), 4);
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "none");
}

// ---- firmware ----

/// An image with `rev` in its revision field and `len` bytes in all.
fn fw_image(rev: &str, len: usize) -> Vec<u8> {
    let mut img = revision_field(rev).to_vec();
    img.extend(pattern(len - REVISION_LEN));
    img
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

impl Rig {
    fn fw_info(&self, mbox: &mut Mailbox) -> FwInfo {
        let (resp, out) = self.run(mbox, OP_GET_FW_INFO, &[]).unwrap();
        assert!(resp.rc.is_success());
        FwInfo::decode(&out).unwrap()
    }

    /// One Transfer FW command, waited for like the driver does; the final return code.
    fn fw_part(
        &self,
        mbox: &mut Mailbox,
        action: TransferAction,
        slot: u8,
        offset: usize,
        data: &[u8],
    ) -> ReturnCode {
        let b = transfer_input(action, slot, offset, data);
        self.run(mbox, OP_TRANSFER_FW, &b).unwrap().0.rc
    }

    /// A whole image in parts as large as the payload allows, End with `slot`.
    fn fw_transfer(&self, mbox: &mut Mailbox, image: &[u8], slot: u8) -> ReturnCode {
        for (action, range) in parts(image.len(), max_part(mbox.payload_size(), 0)) {
            let rc = self.fw_part(mbox, action, slot, range.start, &image[range]);
            if rc != ReturnCode::Success {
                return rc;
            }
        }
        ReturnCode::Success
    }

    fn activate(&self, mbox: &mut Mailbox, action: ActivateAction, slot: u8) -> ReturnCode {
        self.activate_response(mbox, action, slot).rc
    }

    /// Activate FW (0202h) of `slot`: the response, with its background completion if any.
    fn activate_response(&self, mbox: &mut Mailbox, action: ActivateAction, slot: u8) -> Response {
        let input = Activate { action, slot }.encode();
        self.run(mbox, OP_ACTIVATE_FW, &input).unwrap().0
    }

    fn fw_query(&self, q: &str) -> String {
        self.bus
            .with(|d, now| crate::control::handle_line(d, now, q))
            .unwrap()
    }
}

/// The Transfer FW (0201h) parts of an image of `len` bytes in parts of at most `chunk`
/// bytes: its action and its byte range each (one Full part, or Initiate, Continue..., End).
fn parts(len: usize, chunk: usize) -> impl Iterator<Item = (TransferAction, Range<usize>)> {
    (0..len).step_by(chunk).map(move |offset| {
        let end = (offset + chunk).min(len);
        let action = match (offset, end == len) {
            (0, true) => TransferAction::Full,
            (0, false) => TransferAction::Initiate,
            (_, true) => TransferAction::End,
            (_, false) => TransferAction::Continue,
        };
        (action, offset..end)
    })
}

/// Transfer FW (0201h) input (CXL r3.1 §8.2.9.3.2): `data` at byte `offset` of the image, a
/// multiple of 128 bytes. Inputs the encoder refuses (slot 0 for End and Full) are built by
/// hand, for the tests of the device's refusals.
fn transfer_input(action: TransferAction, slot: u8, offset: usize, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; TRANSFER_HEADER_LEN + data.len()];
    let offset = (offset / OFFSET_UNIT) as u32;
    let n = Transfer {
        action,
        slot,
        offset,
        data,
    }
    .encode(&mut b)
    .unwrap_or_else(|_| {
        b[0] = action.raw();
        b[1] = slot;
        b[4..8].copy_from_slice(&offset.to_le_bytes());
        b[TRANSFER_HEADER_LEN..].copy_from_slice(data);
        b.len()
    });
    b.truncate(n);
    b
}

#[test]
fn fw_info_at_start() {
    for slots in [2u8, 3, 4] {
        let r = rig_with(Personality::Switch, |c| c.fw_slots = slots);
        let mut mbox = r.mbox();
        let i = r.fw_info(&mut mbox);
        assert_eq!(i.slots_supported, slots);
        assert_eq!((i.active_slot, i.staged_slot), (1, 0));
        assert!(i.online_activation);
        assert_eq!(i.revision(1), Some(crate::firmware::BUILTIN_REVISION));
        for k in 2..=4 {
            assert_eq!(i.revision(k), Some(""), "slot {k} empty");
        }
        let (resp, _) = r.run(&mut mbox, OP_GET_FW_INFO, &[0]).unwrap();
        assert_eq!(resp.rc, ReturnCode::InvalidPayloadLength);
    }
    assert!(DeviceConfig {
        fw_slots: 5,
        ..DeviceConfig::new(Personality::Switch)
    }
    .validate()
    .is_err());
    // The mmpt personality has no firmware.
    let m = rig(Personality::Mmpt);
    let mut mbox = m.mbox();
    assert_eq!(
        m.run(&mut mbox, OP_GET_FW_INFO, &[]).unwrap().0.rc,
        ReturnCode::Unsupported
    );
}

#[test]
fn fw_update_in_parts_then_activate_online() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, true).unwrap();
    let image = fw_image("test 2.0", 64 * 1024 + 77);
    let chunk = max_part(mbox.payload_size(), 0);
    // Each part runs in the background: 01h, then Background Operation Status.
    let input = transfer_input(TransferAction::Initiate, 0, 0, &image[..chunk]);
    let resp = r.start(&mut mbox, OP_TRANSFER_FW, &input);
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    assert!(r.bus.with(|d, _| d.bg_state().0));
    assert_eq!(
        r.fw_query("get fw"),
        "ok slots=3 active=1 staged=0 transfer=0 received=0 parts=0"
    );
    r.bus.advance(MS);
    assert_eq!(
        r.bus.with(|d, _| d.bg_state()),
        (false, OP_TRANSFER_FW, 100, 0),
        "a 1920-byte part takes 500 + 187 us"
    );
    assert_eq!(
        r.fw_query("get fw"),
        format!("ok slots=3 active=1 staged=0 transfer=1 received={chunk} parts=1")
    );
    // Get FW Info works between parts.
    assert_eq!(r.fw_info(&mut mbox).revision(2), Some(""));
    // The rest, resending one part on the way.
    assert_eq!(
        r.fw_part(
            &mut mbox,
            TransferAction::Continue,
            0,
            chunk,
            &image[chunk..2 * chunk]
        ),
        ReturnCode::Success
    );
    assert_eq!(
        r.fw_part(
            &mut mbox,
            TransferAction::Continue,
            0,
            chunk,
            &image[chunk..2 * chunk]
        ),
        ReturnCode::Success,
        "a resent part replaces the previous one"
    );
    let mut offset = 2 * chunk;
    while offset + chunk < image.len() {
        let rc = r.fw_part(
            &mut mbox,
            TransferAction::Continue,
            0,
            offset,
            &image[offset..offset + chunk],
        );
        assert_eq!(rc, ReturnCode::Success, "part at {offset}");
        offset += chunk;
    }
    assert_eq!(
        r.fw_part(&mut mbox, TransferAction::End, 2, offset, &image[offset..]),
        ReturnCode::Success
    );
    assert_eq!(
        r.fw_query("get fw 2"),
        format!(
            "ok len={} sha256={} rev=test%202.0 active=0 staged=0 ro=0",
            image.len(),
            sha256_hex(&image)
        )
    );
    assert_eq!(r.fw_query("get fw").split(' ').nth(4), Some("transfer=0"));
    let i = r.fw_info(&mut mbox);
    assert_eq!((i.revision(2), i.active_slot), (Some("test 2.0"), 1));
    // Online activation runs in the background (20 ms by default).
    let irqs = r.irqs.count(MBOX_VECTOR);
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 2),
        ReturnCode::Success
    );
    assert!(
        r.irqs.count(MBOX_VECTOR) >= irqs + 2,
        "doorbell and background completion"
    );
    assert_eq!(r.bus.with(|d, _| d.bg_state().1), OP_ACTIVATE_FW);
    assert_eq!(r.fw_info(&mut mbox).active_slot, 2);
    assert!(r.fw_query("get fw 2").ends_with("active=1 staged=0 ro=0"));
    assert_eq!(r.bus.stat("fw-activations"), 1);
    assert_eq!(r.bus.stat("fw-images"), 1);
    // The slot 1 image is still there and can be written now that it is not active.
    assert_eq!(
        r.fw_transfer(&mut mbox, &fw_image("back 1.1", 300), 1),
        ReturnCode::Success
    );
    assert_eq!(r.fw_info(&mut mbox).revision(1), Some("back 1.1"));
}

#[test]
fn fw_full_transfer_and_activation_at_reset() {
    let r = rig_with(Personality::Switch, |c| c.payload_log2 = 12);
    let mut mbox = r.mbox();
    let image = fw_image("full 3", 1000);
    assert_eq!(
        r.fw_part(&mut mbox, TransferAction::Full, 3, 0, &image),
        ReturnCode::Success
    );
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::OnReset, 3),
        ReturnCode::Success
    );
    let i = r.fw_info(&mut mbox);
    assert_eq!((i.active_slot, i.staged_slot), (1, 3));
    assert!(r.fw_query("get fw 3").ends_with("active=0 staged=1 ro=0"));
    // Writing the staged slot unstages it; staging it again and resetting activates it.
    assert_eq!(
        r.fw_part(&mut mbox, TransferAction::Full, 3, 0, &image),
        ReturnCode::Success
    );
    assert_eq!(r.fw_info(&mut mbox).staged_slot, 0);
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::OnReset, 3),
        ReturnCode::Success
    );
    r.bus.with(|d, now| d.reset(now));
    let mut mbox = r.mbox();
    let i = r.fw_info(&mut mbox);
    assert_eq!((i.active_slot, i.staged_slot), (3, 0));
    assert_eq!(i.revision(3), Some("full 3"));
    // A reset drops an open transfer.
    let chunk = max_part(mbox.payload_size(), 0);
    let big = fw_image("big", 3 * chunk);
    assert_eq!(
        r.fw_part(&mut mbox, TransferAction::Initiate, 0, 0, &big[..chunk]),
        ReturnCode::Success
    );
    r.bus.with(|d, now| d.reset(now));
    let mut mbox = r.mbox();
    assert_eq!(
        r.fw_part(
            &mut mbox,
            TransferAction::Continue,
            0,
            chunk,
            &big[chunk..2 * chunk]
        ),
        ReturnCode::FwTransferOutOfOrder
    );
    assert_eq!(r.bus.stat("fw-aborts"), 1);
}

#[test]
fn fw_transfer_rules() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let chunk = max_part(mbox.payload_size(), 0);
    let image = fw_image("rules", 4 * chunk);
    let part = |mbox: &mut Mailbox, a, slot, off: usize, len: usize| {
        r.fw_part(mbox, a, slot, off, &image[off..off + len])
    };
    use TransferAction::*;
    // (action, slot, offset, length, the return code expected, what the step checks)
    let steps = [
        (
            Continue,
            0,
            0,
            chunk,
            ReturnCode::FwTransferOutOfOrder,
            "none open",
        ),
        (End, 2, 0, 16, ReturnCode::FwTransferOutOfOrder, "none open"),
        (
            Initiate,
            0,
            128,
            chunk,
            ReturnCode::InvalidInput,
            "initiate at 128",
        ),
        (
            Initiate,
            0,
            0,
            100,
            ReturnCode::InvalidInput,
            "initiate of 100 B",
        ),
        (Initiate, 0, 0, chunk, ReturnCode::Success, "initiate"),
        (
            Initiate,
            0,
            0,
            chunk,
            ReturnCode::FwTransferInProgress,
            "initiate again",
        ),
        (
            Full,
            2,
            0,
            64,
            ReturnCode::FwTransferInProgress,
            "full while open",
        ),
        // Continue: the next offset or a resend of the previous part.
        (
            Continue,
            0,
            2 * chunk,
            chunk,
            ReturnCode::FwTransferOutOfOrder,
            "a gap",
        ),
        (
            Continue,
            0,
            chunk,
            100,
            ReturnCode::InvalidInput,
            "continue of 100 B",
        ),
        (Continue, 0, chunk, chunk, ReturnCode::Success, "next"),
        (
            Continue,
            0,
            0,
            chunk,
            ReturnCode::FwTransferOutOfOrder,
            "two back",
        ),
        (Continue, 0, chunk, chunk, ReturnCode::Success, "resend"),
    ];
    for (action, slot, off, len, rc, what) in steps {
        assert_eq!(part(&mut mbox, action, slot, off, len), rc, "{what}");
    }
    // End rules: slots.
    for bad in [0u8, 1, 4] {
        assert_eq!(
            part(&mut mbox, End, bad, 2 * chunk, 50),
            ReturnCode::InvalidSlot,
            "slot {bad}"
        );
    }
    r.bus.with(|d, _| d.fw.settings.ro_slot = 3);
    assert_eq!(
        part(&mut mbox, End, 3, 2 * chunk, 50),
        ReturnCode::InvalidSlot,
        "read-only"
    );
    assert!(r.fw_query("get fw 3").ends_with("ro=1"));
    // Still open after the refusals: activation waits for it.
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 2),
        ReturnCode::FwTransferInProgress
    );
    assert_eq!(part(&mut mbox, End, 2, 2 * chunk, 50), ReturnCode::Success);
    assert_eq!(
        r.fw_query("get fw 2").split(' ').nth(1),
        Some(&*format!("len={}", 2 * chunk + 50))
    );
    // Abort with nothing open; Abort drops an open transfer.
    assert_eq!(part(&mut mbox, Abort, 0, 0, 0), ReturnCode::Success);
    assert_eq!(part(&mut mbox, Initiate, 0, 0, chunk), ReturnCode::Success);
    assert_eq!(part(&mut mbox, Abort, 0, 0, 0), ReturnCode::Success);
    assert_eq!(
        part(&mut mbox, Continue, 0, chunk, chunk),
        ReturnCode::FwTransferOutOfOrder
    );
    // An image whose first 16 bytes are not a revision fails verification.
    let mut bad = image[..200].to_vec();
    bad[3] = 0x07;
    assert_eq!(
        r.fw_part(&mut mbox, Full, 2, 0, &bad),
        ReturnCode::FwVerificationFailed
    );
    assert_eq!(
        r.fw_part(&mut mbox, Full, 2, 0, &image[..15]),
        ReturnCode::FwVerificationFailed
    );
    let mut pad = revision_field("ab").to_vec();
    pad[5] = b'x';
    assert_eq!(
        r.fw_part(&mut mbox, Full, 2, 0, &pad),
        ReturnCode::FwVerificationFailed
    );
    assert_eq!(r.bus.stat("fw-verify-failed"), 3);
    // Malformed inputs.
    let (resp, _) = r.run(&mut mbox, OP_TRANSFER_FW, &[0u8; 127]).unwrap();
    assert_eq!(resp.rc, ReturnCode::InvalidPayloadLength);
    let mut b = [0u8; TRANSFER_HEADER_LEN];
    b[0] = 5;
    assert_eq!(
        r.run(&mut mbox, OP_TRANSFER_FW, &b).unwrap().0.rc,
        ReturnCode::InvalidInput
    );
    // Activation rules.
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 1),
        ReturnCode::InvalidSlot,
        "active"
    );
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 3),
        ReturnCode::InvalidSlot,
        "empty"
    );
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::OnReset, 0),
        ReturnCode::InvalidSlot
    );
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::OnReset, 4),
        ReturnCode::InvalidSlot
    );
    assert_eq!(
        r.run(&mut mbox, OP_ACTIVATE_FW, &[0]).unwrap().0.rc,
        ReturnCode::InvalidPayloadLength
    );
    assert_eq!(
        r.run(&mut mbox, OP_ACTIVATE_FW, &[2, 2]).unwrap().0.rc,
        ReturnCode::InvalidInput
    );
    // Another background operation running: Busy.
    let resp = r.start(&mut mbox, OP_SLEEP, &1000u32.to_le_bytes());
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    assert_eq!(part(&mut mbox, Initiate, 0, 0, chunk), ReturnCode::Busy);
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 2),
        ReturnCode::Busy
    );
    assert!(r.bus.stat("fw-refused") >= 15);
}

#[test]
fn fw_faults() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let chunk = max_part(mbox.payload_size(), 0);
    let image = fw_image("faults", 2 * chunk + 10);
    use TransferAction::*;
    let part = |mbox: &mut Mailbox, a, slot, off: usize, len: usize| {
        r.fw_part(mbox, a, slot, off, &image[off..off + len])
    };
    r.bus
        .with(|d, _| d.arm(Fault::Fw(FwFault::Busy), Mode::Once));
    assert_eq!(part(&mut mbox, Initiate, 0, 0, chunk), ReturnCode::Busy);
    assert_eq!(part(&mut mbox, Initiate, 0, 0, chunk), ReturnCode::Success);
    r.bus
        .with(|d, _| d.arm(Fault::Fw(FwFault::OutOfOrder), Mode::Once));
    assert_eq!(
        part(&mut mbox, Continue, 0, chunk, chunk),
        ReturnCode::FwTransferOutOfOrder
    );
    assert_eq!(
        part(&mut mbox, Continue, 0, chunk, chunk),
        ReturnCode::Success,
        "the part again"
    );
    // Armed before the End: Initiate and Continue do not use it up.
    r.bus
        .with(|d, _| d.arm(Fault::Fw(FwFault::AuthFail), Mode::Once));
    assert_eq!(r.bus.with(|d, _| d.faults_text()), "fw-auth-fail=once");
    assert_eq!(
        part(&mut mbox, End, 2, 2 * chunk, 10),
        ReturnCode::FwVerificationFailed
    );
    assert!(
        r.fw_query("get fw 2").starts_with("ok len=0 "),
        "slot unchanged"
    );
    assert!(
        r.fw_query("get fw").contains("transfer=0"),
        "transfer dropped"
    );
    assert_eq!(r.fw_transfer(&mut mbox, &image, 2), ReturnCode::Success);
    // Activation faults: online in the background, on reset at once; nothing changes.
    r.bus
        .with(|d, _| d.arm(Fault::Fw(FwFault::ActivateFail), Mode::Once));
    let resp = r.activate_response(&mut mbox, ActivateAction::Online, 2);
    assert_eq!(resp.rc, ReturnCode::ActivationFailedRolledBack);
    assert!(resp.background.is_some());
    r.bus
        .with(|d, _| d.arm(Fault::Fw(FwFault::ColdReset), Mode::Once));
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::OnReset, 2),
        ReturnCode::ColdResetRequired
    );
    r.bus.with(|d, _| {
        d.fw.settings.activate_ms = 0;
        d.arm(Fault::Fw(FwFault::ActivateFail), Mode::Always);
    });
    let resp = r.activate_response(&mut mbox, ActivateAction::Online, 2);
    assert_eq!(resp.rc, ReturnCode::ActivationFailedRolledBack);
    assert!(resp.background.is_none(), "at once with fw-activate-ms 0");
    let i = r.fw_info(&mut mbox);
    assert_eq!((i.active_slot, i.staged_slot), (1, 0));
    r.bus.with(|d, now| d.clear(now));
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 2),
        ReturnCode::Success
    );
    assert_eq!(r.fw_info(&mut mbox).active_slot, 2);
}

#[test]
fn fw_idle_transfer_is_dropped() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let chunk = max_part(mbox.payload_size(), 0);
    let image = fw_image("idle", 3 * chunk);
    use TransferAction::*;
    let part =
        |mbox: &mut Mailbox, a, off: usize| r.fw_part(mbox, a, 0, off, &image[off..off + chunk]);
    r.bus.with(|d, _| d.fw.settings.idle_ms = 100);
    assert_eq!(part(&mut mbox, Initiate, 0), ReturnCode::Success);
    r.bus.advance(100 * MS);
    assert_eq!(
        part(&mut mbox, Continue, chunk),
        ReturnCode::Success,
        "100 ms is not too long"
    );
    r.bus.advance(101 * MS);
    assert!(r.fw_query("get fw").contains("transfer=0"));
    assert_eq!(
        part(&mut mbox, Continue, 2 * chunk),
        ReturnCode::FwTransferOutOfOrder
    );
    assert_eq!(r.bus.stat("fw-idle-drops"), 1);
    // 0: never.
    r.bus.with(|d, _| d.fw.settings.idle_ms = 0);
    assert_eq!(part(&mut mbox, Initiate, 0), ReturnCode::Success);
    r.bus.advance(3_600_000 * MS);
    assert_eq!(part(&mut mbox, Continue, chunk), ReturnCode::Success);
}

#[test]
fn fw_running_part_is_aborted() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let chunk = max_part(mbox.payload_size(), 0);
    let image = fw_image("abort", 3 * chunk);
    use TransferAction::*;
    assert_eq!(
        r.fw_part(&mut mbox, Initiate, 0, 0, &image[..chunk]),
        ReturnCode::Success
    );
    // A part that never completes: the engine gives up and asks for Request Abort.
    r.bus.with(|d, _| d.arm(Fault::BgStuck(50), Mode::Once));
    let b = transfer_input(Continue, 0, chunk, &image[chunk..2 * chunk]);
    let err = r.run(&mut mbox, OP_TRANSFER_FW, &b).unwrap_err();
    assert!(
        matches!(
            err,
            MboxError::Background {
                opcode: OP_TRANSFER_FW,
                percent: 50,
                abort: AbortOutcome::Stopped(ReturnCode::Aborted),
                ..
            }
        ),
        "{err:?}"
    );
    // The part was not stored; the transfer is still open and the part can be resent.
    assert_eq!(
        r.fw_query("get fw"),
        format!("ok slots=3 active=1 staged=0 transfer=1 received={chunk} parts=1")
    );
    assert_eq!(
        r.run(&mut mbox, OP_TRANSFER_FW, &b).unwrap().0.rc,
        ReturnCode::Success
    );
    // Transfer FW Abort stops a running part and drops the transfer.
    r.bus.with(|d, _| d.arm(Fault::BgNever, Mode::Once));
    let b = transfer_input(End, 2, 2 * chunk, &image[2 * chunk..2 * chunk + 64]);
    let resp = r.start(&mut mbox, OP_TRANSFER_FW, &b);
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    assert_eq!(r.fw_part(&mut mbox, Abort, 0, 0, &[]), ReturnCode::Success);
    assert_eq!(
        r.bus.with(|d, _| d.bg_state()),
        (false, OP_TRANSFER_FW, 100, ReturnCode::Aborted.raw())
    );
    assert!(r.fw_query("get fw").contains("transfer=0"));
    assert!(r.fw_query("get fw 2").starts_with("ok len=0 "));
    assert_eq!(r.bus.stat("fw-aborts"), 2);
}

#[test]
fn fw_cel_entries() {
    let r = rig(Personality::Switch);
    let cel = r.bus.with(|d, _| d.cel());
    let cel = Cel::new(&cel);
    assert!(cel.find(OP_GET_FW_INFO).unwrap().no_effects());
    let t = cel.find(OP_TRANSFER_FW).unwrap().effect;
    assert_eq!(
        t,
        effect::BACKGROUND_OP | effect::CONFIG_CHANGE_COLD_RESET | effect::BACKGROUND_ABORT
    );
    let a = cel.find(OP_ACTIVATE_FW).unwrap().effect;
    assert_ne!(a & effect::CONFIG_CHANGE_IMMEDIATE, 0);
    assert_ne!(a & effect::BACKGROUND_OP, 0);
}

// ---- fabric ----

impl Rig {
    fn port_states(&self, mbox: &mut Mailbox, ports: &[u8]) -> Result<Vec<PortInfo>, ReturnCode> {
        let mut req = [0u8; 64];
        let n = port_state_request(&mut req, ports).unwrap();
        let (resp, out) = self
            .run(mbox, opcode::GET_PHYS_PORT_STATE, &req[..n])
            .unwrap();
        if !resp.rc.is_success() {
            return Err(resp.rc);
        }
        Ok(PortStates::decode(&out).unwrap().iter().collect())
    }

    fn port(&self, mbox: &mut Mailbox, port: u8) -> PortInfo {
        self.port_states(mbox, &[port]).unwrap()[0]
    }

    /// VCS `vcs`'s vPPBs as (status, port, ld).
    fn vppbs(&self, mbox: &mut Mailbox, vcs: u8) -> Result<Vec<VppbInfo>, ReturnCode> {
        let mut req = [0u8; 8];
        let n = vcs_info_request(&mut req, 0, 255, &[vcs]).unwrap();
        let (resp, out) = self.run(mbox, opcode::GET_VCS_INFO, &req[..n]).unwrap();
        if !resp.rc.is_success() {
            return Err(resp.rc);
        }
        let infos = VcsInfos::decode(&out, 0, 255).unwrap();
        let v = infos.iter().next().unwrap();
        assert_eq!((v.vcs_id, v.state, v.usp_id), (vcs, VcsState::Enabled, vcs));
        Ok(v.vppbs().map(|(_, i)| i).collect())
    }

    fn identify_switch(&self, mbox: &mut Mailbox) -> IdentifySwitch {
        let (_, out) = self.run(mbox, opcode::IDENTIFY_SWITCH, &[]).unwrap();
        IdentifySwitch::decode(&out).unwrap()
    }

    fn bind(&self, mbox: &mut Mailbox, vcs: u8, vppb: u8, port: u8, ld: u16) -> ReturnCode {
        let req = bind_vppb_request(vcs, vppb, port, ld);
        self.run(mbox, opcode::BIND_VPPB, &req).unwrap().0.rc
    }

    fn unbind(&self, mbox: &mut Mailbox, vcs: u8, vppb: u8) -> ReturnCode {
        let req = unbind_vppb_request(vcs, vppb, UnbindOption::WaitLinkDown);
        self.run(mbox, opcode::UNBIND_VPPB, &req).unwrap().0.rc
    }

    /// A tunnelled command: the outer return code, and the inner one with its payload.
    fn tunnel(
        &self,
        mbox: &mut Mailbox,
        port: u8,
        op: u16,
        payload: &[u8],
    ) -> (ReturnCode, Option<(ReturnCode, Vec<u8>)>) {
        let mut req = vec![0u8; 16 + payload.len()];
        let n = encode_request(&mut req, port, 0, 9, op, payload).unwrap();
        let (resp, out) = self.run(mbox, opcode::TUNNEL, &req[..n]).unwrap();
        if !resp.rc.is_success() {
            return (resp.rc, None);
        }
        let t = TunnelResponse::decode(&out).unwrap();
        assert_eq!((t.header.category, t.header.tag), (Category::Response, 9));
        assert_eq!(t.header.opcode, op);
        (resp.rc, Some((t.header.rc, t.payload.to_vec())))
    }

    /// Identify through a tunnel (inner success asserted).
    fn tunnel_identify(&self, mbox: &mut Mailbox, port: u8) -> Identify {
        let (rc, inner) = self.tunnel(mbox, port, opcode::IDENTIFY, &[]);
        assert!(rc.is_success());
        let (rc, out) = inner.unwrap();
        assert!(rc.is_success(), "{rc}");
        Identify::decode(&out).unwrap()
    }
}

fn vppb(status: BindingStatus, port: u8, ld: u8) -> VppbInfo {
    VppbInfo { status, port, ld }
}

#[test]
fn fabric_default_topology() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let sw = r.identify_switch(&mut mbox);
    assert_eq!((sw.num_physical_ports, sw.num_vcs), (4, 1));
    assert_eq!((sw.total_vppbs, sw.bound_vppbs), (3, 3));
    assert_eq!(sw.active_vcs_ids().collect::<Vec<_>>(), [0]);
    let ports = r.port_states(&mut mbox, &[3, 0, 1, 2]).unwrap();
    assert_eq!(
        ports.iter().map(|p| p.port_id).collect::<Vec<_>>(),
        [3, 0, 1, 2]
    );
    let usp = ports[1];
    assert_eq!(usp.config_state, PortConfigState::Upstream);
    assert_eq!((usp.negotiated_link_width, usp.current_link_speed), (16, 5));
    for p in [ports[0], ports[2], ports[3]] {
        assert_eq!(p.config_state, PortConfigState::Downstream, "{p:?}");
        assert_eq!(p.connected_type, ConnectedType::Type3Sld);
        assert_eq!(p.connected_mode, ConnectedMode::Flit256);
        assert_eq!((p.negotiated_link_width, p.ltssm), (8, Ltssm::L0));
        assert_eq!(link_speed_decigt(p.current_link_speed), Some(320));
    }
    assert_eq!(
        r.port_states(&mut mbox, &[4]),
        Err(ReturnCode::InvalidInput)
    );
    assert_eq!(
        r.port_states(&mut mbox, &[1, 200]),
        Err(ReturnCode::InvalidInput)
    );
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap(),
        [
            vppb(BindingStatus::BoundPort, 1, 0),
            vppb(BindingStatus::BoundPort, 2, 0),
            vppb(BindingStatus::BoundPort, 3, 0),
        ]
    );
    assert_eq!(r.vppbs(&mut mbox, 1), Err(ReturnCode::InvalidInput));
    // The start vPPB and the limit page the list.
    let mut req = [0u8; 8];
    let n = vcs_info_request(&mut req, 1, 1, &[0]).unwrap();
    let (_, out) = r.run(&mut mbox, opcode::GET_VCS_INFO, &req[..n]).unwrap();
    let infos = VcsInfos::decode(&out, 1, 1).unwrap();
    let v: Vec<_> = infos.iter().next().unwrap().vppbs().collect();
    assert_eq!(v, [(1, vppb(BindingStatus::BoundPort, 2, 0))]);
    // Devices behind the ports answer Identify with their own serials.
    let serial = r.bus.with(|d, _| d.config().serial);
    for port in 1..=3 {
        let id = r.tunnel_identify(&mut mbox, port);
        assert_eq!(id.component_type, ComponentType::Type3);
        assert_eq!((id.vendor_id, id.device_id), (0x1b36, TYPE3_DEVICE_ID));
        assert_eq!(id.serial, device_serial(serial, port));
    }
    assert_ne!(device_serial(serial, 1), device_serial(serial, 2));
}

#[test]
fn fabric_bind_and_unbind_change_the_view() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 6;
        c.fabric.empty_ports = vec![5];
    });
    let mut mbox = r.mbox();
    mbox.set_interrupts(&r.bus, true, true).unwrap();
    // vPPBs 0-2 on ports 1-3; port 4 has a device but no vPPB; port 5 nothing.
    assert_eq!(r.port(&mut mbox, 4).config_state, PortConfigState::Disabled);
    assert_eq!(r.port(&mut mbox, 4).connected_type, ConnectedType::Type3Sld);
    let empty = r.port(&mut mbox, 5);
    assert_eq!(
        (
            empty.connected_type,
            empty.negotiated_link_width,
            empty.ltssm
        ),
        (ConnectedType::None, 0, Ltssm::Detect)
    );
    // Unbind vPPB 2 (port 3), watching it in progress.
    let req = unbind_vppb_request(0, 2, UnbindOption::ManagedHotRemove);
    let resp = r.start(&mut mbox, opcode::UNBIND_VPPB, &req);
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[2].status,
        BindingStatus::InProgress
    );
    assert_eq!(
        r.port(&mut mbox, 3).config_state,
        PortConfigState::UnbindInProgress
    );
    // Another bind or unbind meanwhile: Busy.
    assert_eq!(r.unbind(&mut mbox, 0, 1), ReturnCode::Busy);
    let done = mbox
        .wait_background(
            &r.bus,
            &mut Clock::new(&r.bus),
            opcode::UNBIND_VPPB,
            1_000_000,
            || None,
        )
        .unwrap();
    assert_eq!(done.rc, ReturnCode::Success);
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[2],
        vppb(BindingStatus::Unbound, 0, 0)
    );
    assert_eq!(r.port(&mut mbox, 3).config_state, PortConfigState::Disabled);
    assert_eq!(r.identify_switch(&mut mbox).bound_vppbs, 2);
    // Bind it to port 4.
    assert_eq!(r.bind(&mut mbox, 0, 2, 4, LD_NONE), ReturnCode::Success);
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[2],
        vppb(BindingStatus::BoundPort, 4, 0)
    );
    assert_eq!(
        r.port(&mut mbox, 4).config_state,
        PortConfigState::Downstream
    );
    assert_eq!(r.identify_switch(&mut mbox).bound_vppbs, 3);
    let json = r.bus.with(|d, _| d.describe());
    assert_eq!(json["vcs"][0]["vppbs"][2]["port"], 4);
    assert_eq!(json["ports"][4]["state"], "DSP");
    assert_eq!(json["ports"][3]["state"], "disabled");
    // The spec's errors: all Invalid Input.
    assert_eq!(r.unbind(&mut mbox, 0, 1), ReturnCode::Success);
    for (vcs, vp, port, ld, why) in [
        (0, 0, 3, LD_NONE, "vPPB already bound"),
        (0, 1, 5, LD_NONE, "no device behind the port"),
        (0, 1, 4, LD_NONE, "port bound to another vPPB"),
        (0, 1, 0, LD_NONE, "upstream port"),
        (0, 1, 6, LD_NONE, "no such port"),
        (0, 1, 3, 0, "an LD of a single-logical device"),
        (1, 0, 3, LD_NONE, "no such VCS"),
        (0, 3, 3, LD_NONE, "no such vPPB"),
    ] {
        assert_eq!(
            r.bind(&mut mbox, vcs, vp, port, ld),
            ReturnCode::InvalidInput,
            "{why}"
        );
    }
    assert_eq!(
        r.unbind(&mut mbox, 0, 1),
        ReturnCode::InvalidInput,
        "not bound"
    );
    assert_eq!(
        r.unbind(&mut mbox, 0, 9),
        ReturnCode::InvalidInput,
        "no such vPPB"
    );
    assert_eq!(
        r.run(&mut mbox, opcode::UNBIND_VPPB, &[0, 0, 7])
            .unwrap()
            .0
            .rc,
        ReturnCode::InvalidInput,
        "undefined option"
    );
    assert_eq!(
        r.run(&mut mbox, opcode::BIND_VPPB, &[0, 1]).unwrap().0.rc,
        ReturnCode::InvalidPayloadLength
    );
    // Request Abort and a reset put a vPPB back.
    r.bus.with(|d, _| d.arm(Fault::BgStuck(10), Mode::Once));
    let err = r
        .run(
            &mut mbox,
            opcode::BIND_VPPB,
            &bind_vppb_request(0, 1, 3, LD_NONE),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            MboxError::Background {
                abort: AbortOutcome::Stopped(ReturnCode::Aborted),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[1].status,
        BindingStatus::Unbound
    );
    r.bus.with(|d, _| d.arm(Fault::BgNever, Mode::Once));
    let req = unbind_vppb_request(0, 0, UnbindOption::WaitLinkDown);
    let resp = r.start(&mut mbox, opcode::UNBIND_VPPB, &req);
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    r.bus.with(|d, now| d.reset(now));
    let mut mbox = r.mbox();
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[0],
        vppb(BindingStatus::BoundPort, 1, 0)
    );
    assert_eq!(
        r.port(&mut mbox, 1).config_state,
        PortConfigState::Downstream
    );
}

#[test]
fn fabric_several_vcs() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 7;
        c.fabric.vcs = 2;
        c.fabric.vppbs = 3;
    });
    let mut mbox = r.mbox();
    let sw = r.identify_switch(&mut mbox);
    assert_eq!((sw.num_vcs, sw.total_vppbs, sw.bound_vppbs), (2, 6, 5));
    assert_eq!(sw.active_port_ids().count(), 7);
    assert_eq!(r.port(&mut mbox, 1).config_state, PortConfigState::Upstream);
    assert_eq!(
        r.port(&mut mbox, 2).config_state,
        PortConfigState::Downstream
    );
    assert_eq!(
        r.vppbs(&mut mbox, 1).unwrap(),
        [
            vppb(BindingStatus::BoundPort, 5, 0),
            vppb(BindingStatus::BoundPort, 6, 0),
            vppb(BindingStatus::Unbound, 0, 0),
        ]
    );
    // Both VCSs in one request.
    let mut req = [0u8; 8];
    let n = vcs_info_request(&mut req, 0, 8, &[1, 0]).unwrap();
    let (_, out) = r.run(&mut mbox, opcode::GET_VCS_INFO, &req[..n]).unwrap();
    let infos = VcsInfos::decode(&out, 0, 8).unwrap();
    assert_eq!(infos.iter().map(|v| v.vcs_id).collect::<Vec<_>>(), [1, 0]);
    assert_eq!(
        r.tunnel(&mut mbox, 1, opcode::IDENTIFY, &[]).0,
        ReturnCode::InvalidInput,
        "a USP"
    );
}

#[test]
fn fabric_tunnel_errors() {
    let r = rig_with(Personality::Switch, |c| c.fabric.empty_ports = vec![2]);
    let mut mbox = r.mbox();
    for port in [0u8, 2, 4, 200] {
        assert_eq!(
            r.tunnel(&mut mbox, port, opcode::IDENTIFY, &[]).0,
            ReturnCode::InvalidInput
        );
    }
    // The device's own return codes come back inside a successful tunnel.
    let (rc, inner) = r.tunnel(&mut mbox, 1, OP_GET_LD_INFO, &[]);
    assert!(rc.is_success());
    assert_eq!(inner.unwrap().0, ReturnCode::Unsupported);
    let (_, inner) = r.tunnel(&mut mbox, 1, opcode::IDENTIFY, &[1]);
    assert_eq!(inner.unwrap().0, ReturnCode::InvalidPayloadLength);
    // Malformed: short, a size beyond the input, a response category, a target type.
    for bad in [
        vec![1u8, 0],
        vec![1, 0, 40, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![1, 0, 12, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![1, 1, 12, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        assert_eq!(
            r.run(&mut mbox, opcode::TUNNEL, &bad).unwrap().0.rc,
            ReturnCode::InvalidInput,
            "{bad:?}"
        );
    }
    assert_eq!(r.bus.stat("tunnels"), 10);
}

#[test]
fn fabric_mld_and_its_lds() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 5;
        c.fabric.mld_port = Some(2);
        c.fabric.lds = 3;
    });
    let mut mbox = r.mbox();
    let serial = r.bus.with(|d, _| d.config().serial);
    let p = r.port(&mut mbox, 2);
    assert_eq!(
        (p.connected_type, p.supported_ld_count),
        (ConnectedType::Type3Mld, 3)
    );
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap(),
        [
            vppb(BindingStatus::BoundPort, 1, 0),
            vppb(BindingStatus::BoundLd, 2, 0),
            vppb(BindingStatus::BoundPort, 3, 0),
        ]
    );
    let id = r.tunnel_identify(&mut mbox, 2);
    assert_eq!(
        (id.device_id, id.serial),
        (MLD_DEVICE_ID, device_serial(serial, 2))
    );
    // Get LD Info and Get LD Allocations through the tunnel.
    let (_, inner) = r.tunnel(&mut mbox, 2, OP_GET_LD_INFO, &[]);
    let (rc, out) = inner.unwrap();
    assert!(rc.is_success());
    let info = LdInfo::decode(&out).unwrap();
    assert_eq!((info.ld_count, info.memory_size), (3, 3 << 30));
    let (_, inner) = r.tunnel(
        &mut mbox,
        2,
        OP_GET_LD_ALLOCATIONS,
        &ld_allocations_request(1, 8),
    );
    let (rc, out) = inner.unwrap();
    assert!(rc.is_success());
    let a = LdAllocations::decode(&out).unwrap();
    assert_eq!(
        (a.number_of_lds, a.granularity, a.start_ld, a.len()),
        (3, Granularity::Mib256, 1, 2)
    );
    let total: u64 = a.iter().map(|(_, x)| x.range1 + x.range2).sum();
    assert_eq!(total * a.granularity.bytes().unwrap(), 2 << 30);
    let (_, inner) = r.tunnel(
        &mut mbox,
        2,
        OP_GET_LD_ALLOCATIONS,
        &ld_allocations_request(3, 8),
    );
    assert_eq!(inner.unwrap().0, ReturnCode::InvalidInput);
    // A tunnel inside the tunnel reaches LD k.
    for ld in 0..3u8 {
        let mut inner_req = [0u8; 32];
        let n = encode_request(&mut inner_req, ld, 0, 4, opcode::IDENTIFY, &[]).unwrap();
        let (rc, inner) = r.tunnel(&mut mbox, 2, opcode::TUNNEL, &inner_req[..n]);
        assert!(rc.is_success());
        let (rc, out) = inner.unwrap();
        assert!(rc.is_success());
        let t = TunnelResponse::decode(&out).unwrap();
        assert_eq!((t.header.tag, t.header.rc), (4, ReturnCode::Success));
        assert_eq!(
            Identify::decode(t.payload).unwrap().serial,
            ld_serial(serial, 2, ld)
        );
    }
    let mut inner_req = [0u8; 32];
    let n = encode_request(&mut inner_req, 3, 0, 4, opcode::IDENTIFY, &[]).unwrap();
    let (_, inner) = r.tunnel(&mut mbox, 2, opcode::TUNNEL, &inner_req[..n]);
    assert_eq!(inner.unwrap().0, ReturnCode::InvalidInput, "no LD 3");
    // A single-logical device has no LDs to tunnel to.
    let (_, inner) = r.tunnel(&mut mbox, 1, opcode::TUNNEL, &inner_req[..n]);
    assert_eq!(inner.unwrap().0, ReturnCode::Unsupported);
    // Binding LDs: a free one to a free vPPB works; the bound one, or the whole port, does not.
    r.bus.with(|d, now| {
        crate::control::handle_line(d, now, "set bind-ms 0");
    });
    assert_eq!(r.unbind(&mut mbox, 0, 2), ReturnCode::Success);
    assert_eq!(
        r.bind(&mut mbox, 0, 2, 2, 0),
        ReturnCode::InvalidInput,
        "LD 0 is bound"
    );
    assert_eq!(
        r.bind(&mut mbox, 0, 2, 2, LD_NONE),
        ReturnCode::InvalidInput,
        "an MLD needs an LD"
    );
    assert_eq!(
        r.bind(&mut mbox, 0, 2, 2, 3),
        ReturnCode::InvalidInput,
        "no LD 3"
    );
    assert_eq!(r.bind(&mut mbox, 0, 2, 2, 2), ReturnCode::Success);
    assert_eq!(
        r.vppbs(&mut mbox, 0).unwrap()[2],
        vppb(BindingStatus::BoundLd, 2, 2)
    );
    assert_eq!(r.identify_switch(&mut mbox).bound_vppbs, 3);
    let json = r.bus.with(|d, _| d.describe());
    assert_eq!(json["ports"][2]["device"]["kind"], "mld");
    assert_eq!(
        json["ports"][2]["device"]["lds"][2]["serial"],
        ld_serial(serial, 2, 2)
    );
    assert_eq!(json["vcs"][0]["vppbs"][2]["ld"], 2);
}

#[test]
fn fabric_dead_port() {
    let r = rig_with(Personality::Switch, |c| c.fabric.dead_port = Some(3));
    let mut mbox = r.mbox();
    assert_eq!(r.port(&mut mbox, 3).connected_type, ConnectedType::Type3Sld);
    // The switch gives up after dead-port-ms (1000 by default): Internal Error, no output.
    let t0 = r.bus.now.get();
    let (rc, inner) = r.tunnel(&mut mbox, 3, opcode::IDENTIFY, &[]);
    assert_eq!((rc, inner), (ReturnCode::InternalError, None));
    assert_eq!(r.bus.now.get() - t0, 1000 * MS);
    // Other ports are not affected.
    r.tunnel_identify(&mut mbox, 1);
    // 0: never; the driver times out and the mailbox stays busy until `clear`.
    r.bus.with(|d, now| {
        crate::control::handle_line(d, now, "set dead-port-ms 0");
    });
    let mut req = [0u8; 16];
    let n = encode_request(&mut req, 3, 0, 1, opcode::IDENTIFY, &[]).unwrap();
    assert_eq!(
        r.run(&mut mbox, opcode::TUNNEL, &req[..n]).unwrap_err(),
        MboxError::Timeout
    );
    r.bus.advance(60_000 * MS);
    assert!(r.doorbell());
    assert_eq!(
        r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap_err(),
        MboxError::Busy
    );
    r.bus.with(|d, now| d.clear(now));
    assert!(!r.doorbell());
    let st = MboxStatus(r.bus.read64(MBOX_REGS + MboxStatus::OFFSET).unwrap());
    assert_eq!(st.return_code(), ReturnCode::InternalError.raw());
    assert!(r
        .run(&mut mbox, opcode::IDENTIFY, &[])
        .unwrap()
        .0
        .rc
        .is_success());
    assert_eq!(r.bus.stat("dead-tunnels"), 2);
}

impl Rig {
    /// A command through tunnels along `path` (port, then LD): the outer return code, and the
    /// innermost response's return code and payload (inner levels asserted successful).
    fn via(
        &self,
        mbox: &mut Mailbox,
        path: &[u8],
        op: u16,
        payload: &[u8],
    ) -> (ReturnCode, Option<(ReturnCode, Vec<u8>)>) {
        let (&port, rest) = path.split_first().unwrap();
        let mut msg = payload.to_vec();
        let mut inner_op = op;
        for &ld in rest.iter().rev() {
            let mut b = vec![0u8; 16 + msg.len()];
            let n = encode_request(&mut b, ld, 0, 5, inner_op, &msg).unwrap();
            msg = b[..n].to_vec();
            inner_op = opcode::TUNNEL;
        }
        let (rc, mut inner) = self.tunnel(mbox, port, inner_op, &msg);
        for _ in rest {
            let (irc, out) = inner.unwrap();
            assert!(irc.is_success(), "tunnel level: {irc}");
            let t = TunnelResponse::decode(&out).unwrap();
            assert_eq!(
                (t.header.category, t.header.opcode),
                (Category::Response, op)
            );
            inner = Some((t.header.rc, t.payload.to_vec()));
        }
        (rc, inner)
    }

    /// The device's response along `path` (outer success asserted).
    fn via_ok(
        &self,
        mbox: &mut Mailbox,
        path: &[u8],
        op: u16,
        payload: &[u8],
    ) -> (ReturnCode, Vec<u8>) {
        let (rc, inner) = self.via(mbox, path, op, payload);
        assert!(rc.is_success(), "{rc}");
        inner.unwrap()
    }

    /// Background Operation Status (0002h) of the device along `path`.
    fn via_status(&self, mbox: &mut Mailbox, path: &[u8]) -> BgOpStatus {
        let (rc, out) = self.via_ok(mbox, path, opcode::BG_OP_STATUS, &[]);
        assert!(rc.is_success());
        BgOpStatus::decode(&out).unwrap()
    }

    /// A firmware command along `path`, its background part polled through the same path as
    /// the library does: the final return code.
    fn via_fw(&self, mbox: &mut Mailbox, path: &[u8], op: u16, input: &[u8]) -> ReturnCode {
        let (rc, _) = self.via_ok(mbox, path, op, input);
        if rc != ReturnCode::BackgroundStarted {
            return rc;
        }
        for _ in 0..10_000 {
            self.bus.advance(MS / 5);
            let s = self.via_status(mbox, path);
            if !s.running {
                assert_eq!((s.opcode, s.percent), (op, 100));
                return s.rc;
            }
        }
        panic!("background {op:04x}h never ended");
    }

    /// A whole image along `path` in parts as large as that path allows, End with `slot`.
    fn via_transfer(&self, mbox: &mut Mailbox, path: &[u8], image: &[u8], slot: u8) -> ReturnCode {
        let chunk = max_part(mbox.payload_size(), 16 * path.len());
        for (action, range) in parts(image.len(), chunk) {
            let slot = if action.names_slot() { slot } else { 0 };
            let b = transfer_input(action, slot, range.start, &image[range]);
            let rc = self.via_fw(mbox, path, OP_TRANSFER_FW, &b);
            if rc != ReturnCode::Success {
                return rc;
            }
        }
        ReturnCode::Success
    }
}

#[test]
fn fabric_devices_update_firmware_through_tunnels() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 5;
        c.fabric.mld_port = Some(3);
        c.fabric.lds = 2;
        c.fabric.dead_port = Some(4);
    });
    let mut mbox = r.mbox();
    // Get FW Info through a tunnel reaches the device's own firmware.
    let (rc, out) = r.via_ok(&mut mbox, &[1], OP_GET_FW_INFO, &[]);
    assert!(rc.is_success());
    let info = FwInfo::decode(&out).unwrap();
    assert_eq!(
        (info.slots_supported, info.active_slot, info.revision(1)),
        (3, 1, Some(crate::firmware::TYPE3_REVISION))
    );
    let (_, out) = r.via_ok(&mut mbox, &[3], OP_GET_FW_INFO, &[]);
    assert_eq!(
        FwInfo::decode(&out).unwrap().revision(1),
        Some(crate::firmware::MLD_REVISION)
    );
    assert_eq!(
        r.fw_info(&mut mbox).revision(1),
        Some(crate::firmware::BUILTIN_REVISION)
    );
    // A part answers 01h inside the tunnel; the switch's own command completed, nothing runs
    // on the switch; the device's status shows the part.
    let image = fw_image("t3 2.0", 10 * 1024 + 3);
    let chunk = max_part(mbox.payload_size(), 16);
    let b = transfer_input(TransferAction::Initiate, 0, 0, &image[..chunk]);
    let (rc, _) = r.via_ok(&mut mbox, &[1], OP_TRANSFER_FW, &b);
    assert_eq!(rc, ReturnCode::BackgroundStarted);
    assert!(
        !r.bus.with(|d, _| d.bg_state()).0,
        "the switch runs nothing"
    );
    let s = r.via_status(&mut mbox, &[1]);
    assert_eq!((s.running, s.opcode), (true, OP_TRANSFER_FW));
    assert!(r
        .fw_query("get port-fw 1")
        .contains(" bg=1 bg-opcode=0x0201 "));
    // Another port's device is idle.
    assert!(!r.via_status(&mut mbox, &[2]).running);
    // Request Abort through the tunnel stops it: nothing is open.
    let (rc, _) = r.via_ok(&mut mbox, &[1], opcode::REQUEST_ABORT_BG, &[]);
    assert!(rc.is_success());
    let s = r.via_status(&mut mbox, &[1]);
    assert_eq!((s.running, s.rc), (false, ReturnCode::Aborted));
    assert!(r
        .fw_query("get port-fw 1")
        .starts_with("ok slots=3 active=1 staged=0 transfer=0 "));
    // A whole image through one tunnel; the device holds exactly it, the switch nothing new.
    assert_eq!(
        r.via_transfer(&mut mbox, &[1], &image, 2),
        ReturnCode::Success
    );
    assert_eq!(
        r.fw_query("get port-fw 1 2"),
        format!(
            "ok len={} sha256={} rev=t3%202.0 active=0 staged=0 ro=0",
            image.len(),
            sha256_hex(&image)
        )
    );
    assert!(r.fw_query("get fw 2").starts_with("ok len=0 "));
    assert!(r.fw_query("get port-fw 2 2").starts_with("ok len=0 "));
    let json = r.bus.with(|d, _| d.describe());
    assert_eq!(
        json["ports"][1]["device"]["firmware"]["slots"][1]["sha256"],
        sha256_hex(&image)
    );
    assert!(json["ports"][4]["device"]["firmware"].is_null(), "dead");
    // Activation through the tunnel, online in the background.
    let act = Activate {
        action: ActivateAction::Online,
        slot: 2,
    }
    .encode();
    assert_eq!(
        r.via_fw(&mut mbox, &[1], OP_ACTIVATE_FW, &act),
        ReturnCode::Success
    );
    assert!(r
        .fw_query("get port-fw 1")
        .starts_with("ok slots=3 active=2 "));
    // On reset: staged, active after the device's cold reset (not the switch's reset).
    let act = Activate {
        action: ActivateAction::OnReset,
        slot: 1,
    }
    .encode();
    assert_eq!(
        r.via_fw(&mut mbox, &[1], OP_ACTIVATE_FW, &act),
        ReturnCode::Success
    );
    assert_eq!(r.fw_query("reset"), "ok");
    assert!(r
        .fw_query("get port-fw 1")
        .starts_with("ok slots=3 active=2 staged=1 "));
    assert_eq!(r.fw_query("reset-port 1"), "ok");
    assert!(r
        .fw_query("get port-fw 1")
        .starts_with("ok slots=3 active=1 staged=0 "));

    // Faults per device: verification fails in the background, seen through the tunnel.
    let mut mbox = r.mbox();
    assert_eq!(r.fw_query("fw-auth-fail port 2 once"), "ok");
    assert_eq!(r.fw_query("get faults"), "ok fw-auth-fail@port2=once");
    assert_eq!(
        r.via_transfer(&mut mbox, &[1], &image, 3),
        ReturnCode::Success,
        "the fault is port 2's"
    );
    assert_eq!(
        r.via_transfer(&mut mbox, &[2], &image, 3),
        ReturnCode::FwVerificationFailed
    );
    assert!(r.fw_query("get port-fw 2").contains(" transfer=0 "));
    assert!(r.fw_query("get port-fw 2 3").starts_with("ok len=0 "));
    assert_eq!(r.fw_query("fw-busy port 2 always"), "ok");
    assert_eq!(r.via_transfer(&mut mbox, &[2], &image, 3), ReturnCode::Busy);
    assert_eq!(r.fw_query("clear"), "ok");
    assert_eq!(r.fw_query("get faults"), "ok none");
    assert_eq!(
        r.via_transfer(&mut mbox, &[2], &image, 3),
        ReturnCode::Success
    );
    for bad in [
        "fw-busy port 0",
        "fw-busy port 4",
        "fw-busy port 9",
        "reset-port 4",
    ] {
        assert!(r.fw_query(bad).starts_with("err port "), "{bad}");
    }
    assert!(r
        .fw_query("get port-fw 4")
        .starts_with("err port 4: no device"));
    assert!(r.fw_query("get port-fw 1 4").starts_with("err slot 4"));
    // Settings apply to every device: a read-only slot refuses End through the tunnel.
    assert_eq!(r.fw_query("set fw-ro-slot 3"), "ok");
    assert_eq!(
        r.via_transfer(&mut mbox, &[2], &image, 3),
        ReturnCode::InvalidSlot
    );
    assert_eq!(r.fw_query("set fw-ro-slot 0"), "ok");
    let abort = transfer_input(TransferAction::Abort, 0, 0, &[]);
    assert_eq!(
        r.via_fw(&mut mbox, &[2], OP_TRANSFER_FW, &abort),
        ReturnCode::Success
    );

    // Two levels: LD 1 of the MLD reaches the MLD's one firmware; parts are as large as two
    // tunnel headers allow.
    let img2 = fw_image("mld 2.0", 6 * 1024);
    assert_eq!(
        r.via_transfer(&mut mbox, &[3, 1], &img2, 2),
        ReturnCode::Success
    );
    assert_eq!(
        r.fw_query("get port-fw 3 2"),
        format!(
            "ok len={} sha256={} rev=mld%202.0 active=0 staged=0 ro=0",
            img2.len(),
            sha256_hex(&img2)
        )
    );
    let (_, out) = r.via_ok(&mut mbox, &[3, 0], OP_GET_FW_INFO, &[]);
    assert_eq!(FwInfo::decode(&out).unwrap().revision(2), Some("mld 2.0"));
    // A transfer opened through LD 1 is LD 1's: LD 0 and the FM-owned LD get 08h for parts.
    let b = transfer_input(TransferAction::Initiate, 0, 0, &img2[..1024]);
    assert_eq!(
        r.via_fw(&mut mbox, &[3, 1], OP_TRANSFER_FW, &b),
        ReturnCode::Success
    );
    for path in [&[3u8, 0][..], &[3]] {
        assert_eq!(
            r.via_fw(&mut mbox, path, OP_TRANSFER_FW, &b),
            ReturnCode::FwTransferInProgress,
            "{path:?}"
        );
    }
    assert_eq!(
        r.via_fw(&mut mbox, &[3], OP_TRANSFER_FW, &abort),
        ReturnCode::Success
    );
    assert!(r.fw_query("get port-fw 3").contains(" transfer=0 "));
    // An LD the MLD does not have: the inner tunnel fails.
    let (_, inner) = r.tunnel(&mut mbox, 3, opcode::TUNNEL, &{
        let mut b = [0u8; 32];
        let n = encode_request(&mut b, 2, 0, 5, OP_GET_FW_INFO, &[]).unwrap();
        b[..n].to_vec()
    });
    assert_eq!(inner.unwrap().0, ReturnCode::InvalidInput);
    // The dead port's device still never answers.
    assert!(r.fw_query("get port-fw 4").starts_with("err "));
}

#[test]
fn fabric_config_limits() {
    let check = |f: &dyn Fn(&mut FabricConfig)| {
        let mut c = FabricConfig::default();
        f(&mut c);
        c.validate()
    };
    assert!(check(&|_| {}).is_ok());
    assert!(check(&|c| c.ports = 1).is_err());
    assert!(check(&|c| c.ports = 65).is_err());
    assert!(check(&|c| c.vcs = 0).is_err());
    assert!(check(&|c| c.vcs = 4).is_err());
    assert!(check(&|c| c.vppbs = 0).is_err());
    assert!(check(&|c| c.mld_port = Some(0))
        .unwrap_err()
        .contains("not a downstream port"));
    assert!(check(&|c| c.dead_port = Some(4)).is_err());
    assert!(check(&|c| {
        c.mld_port = Some(2);
        c.empty_ports = vec![2];
    })
    .unwrap_err()
    .contains("twice"));
    assert!(check(&|c| c.lds = 17).is_err());
}

// ---- register access rules ----

#[test]
fn access_widths_and_command_register() {
    let r = rig(Personality::Switch);
    r.mbox();
    // 1- and 2-byte accesses are refused and change nothing.
    assert_eq!(r.bus.read(MBOX_REGS, 2), [0, 0]);
    r.bus.write(MBOX_REGS + 4, &[0x2]);
    r.bus.write(MBOX_REGS + 5, &[0x2, 0]);
    assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap(), 0);
    // Misaligned and out of the BAR.
    r.bus.write(MBOX_REGS + 2, &[0; 4]);
    assert_eq!(r.bus.read(0x10000, 4), [0; 4]);
    r.bus.write(MBOX_REGS + 0x20 + 3, &[0; 8]);
    assert_eq!(r.bus.stat("bad-access"), 6);
    // 32-bit writes do not reach the Command register.
    r.bus
        .write64(MBOX_REGS + 8, MboxCmd::default().with_opcode(OP_ECHO).0)
        .unwrap();
    r.bus
        .write32(MBOX_REGS + 8, opcode::IDENTIFY.into())
        .unwrap();
    r.bus.write32(MBOX_REGS + 12, 0).unwrap();
    assert_eq!(r.bus.stat("cmd-write32"), 2);
    assert_eq!(
        MboxCmd(r.bus.read64(MBOX_REGS + 8).unwrap()).opcode(),
        OP_ECHO
    );
    // Payload: 32- and 64-bit, round trip through echo.
    r.bus
        .write64(MBOX_REGS + 0x20, 0x1122_3344_5566_7788)
        .unwrap();
    r.bus
        .write64(
            MBOX_REGS + 8,
            MboxCmd::default()
                .with_opcode(OP_ECHO)
                .with_payload_len(8)
                .0,
        )
        .unwrap();
    r.bus.write32(MBOX_REGS + 4, 1).unwrap();
    assert_eq!(r.bus.read32(MBOX_REGS + 0x24).unwrap(), 0x1122_3344);
    assert_eq!(
        MboxCmd(r.bus.read64(MBOX_REGS + 8).unwrap()).payload_len(),
        8
    );
    // A doorbell while busy is ignored.
    r.bus.with(|d, _| d.arm(Fault::Delay(5), Mode::Once));
    r.bus.write32(MBOX_REGS + 4, 1).unwrap();
    r.bus.write32(MBOX_REGS + 4, 1).unwrap();
    assert_eq!(r.bus.stat("doorbell-busy"), 1);
    r.bus.advance(5 * MS);
    assert_eq!(r.bus.read32(MBOX_REGS + 4).unwrap() & 1, 0);
    // BAR2: the MSI-X table stores, the PBA reads zero.
    let mut b = [0u8; 4];
    r.bus.with(|d, now| {
        d.bar_write(now, 2, 0x10, &[1, 2, 3, 4]);
        d.bar_read(now, 2, 0x10, &mut b);
    });
    assert_eq!(b, [1, 2, 3, 4]);
    r.bus.with(|d, now| d.bar_read(now, 2, 0x800, &mut b));
    assert_eq!(b, [0; 4]);
    // Unknown BARs.
    r.bus.with(|d, now| {
        d.bar_write(now, 4, 0, &[1; 4]);
        d.bar_read(now, 4, 0, &mut b);
    });
    assert_eq!(b, [0; 4]);
}

#[test]
fn attention_mechanism() {
    let r = rig(Personality::Mmpt);
    r.mbox();
    // Reset value: attention needed, at attention.
    assert!(MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).at_attention());
    r.bus
        .write32(
            MBOX_REGS + 4,
            MboxCtrl::default().with_attention_not_needed(true).0,
        )
        .unwrap();
    assert!(!MboxStatus(r.bus.read64(MBOX_REGS + 0x10).unwrap()).at_attention());
    r.bus
        .write64(
            MBOX_REGS + 8,
            MboxCmd::default()
                .with_opcode(0x100)
                .with_opcode_vendor(1)
                .0,
        )
        .unwrap();
    r.bus
        .write32(
            MBOX_REGS + 4,
            MboxCtrl::default()
                .with_attention_not_needed(true)
                .with_doorbell(true)
                .0,
        )
        .unwrap();
    assert_eq!(r.bus.stat("no-attention"), 1);
    // The switch has no attention mechanism.
    let s = rig(Personality::Switch);
    assert!(!MboxStatus(s.bus.read64(MBOX_REGS + 0x10).unwrap()).at_attention());
}

// ---- MMPT ----

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + 5) as u8).collect()
}

#[test]
fn mmpt_round_trips_with_echo() {
    for p in [Personality::Mmpt, Personality::Switch] {
        let r = rig(p);
        let mut mbox = r.mbox();
        mbox.set_interrupts(&r.bus, true, false).unwrap();
        let base = r.found.mmpt.unwrap().base;
        r.bus.write32(base + 4, 1).unwrap();
        let payload = mbox.payload_size();
        let sizes = [1, pmmpt::send_chunk(payload), payload, 3 * payload + 5];
        for (i, len) in sizes.into_iter().enumerate() {
            let data = pattern(len);
            assert_eq!(
                r.send(&mut mbox, pmmpt::msg_type::PLDM, &data).0,
                MmptCode::Success
            );
            assert_eq!(
                r.irqs.count(MMPT_VECTOR),
                i as u64 + 1,
                "rx interrupt per message"
            );
            let (ty, got) = r.receive(&mut mbox).unwrap();
            assert_eq!(ty, pmmpt::msg_type::PLDM);
            assert_eq!(got, data, "{p:?} len {len}");
            let n = MmptRxNotify(r.bus.read64(base + 8).unwrap());
            assert!(!n.ready());
        }
        assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
        assert_eq!(r.bus.stat("mmpt-messages"), 4);
        assert_eq!(r.bus.stat("mmpt-received"), 4);
        assert!(r.irqs.count(MBOX_VECTOR) > 8, "doorbell interrupts");
    }
}

#[test]
fn mmpt_notification_register() {
    let r = rig(Personality::Mmpt);
    let mut mbox = r.mbox();
    r.send(&mut mbox, 4, &pattern(100));
    r.send(&mut mbox, 3, &pattern(7));
    let n = MmptRxNotify(r.bus.read64(MMPT_REGS + 8).unwrap());
    assert!(n.ready());
    assert_eq!((n.msg_type(), n.msg_len()), (4, 100));
    // 32-bit halves.
    assert_eq!(r.bus.read32(MMPT_REGS + 12).unwrap(), 100);
    assert_eq!(r.bus.read32(MMPT_REGS + 8).unwrap(), 0x0004_0001);
    assert_eq!(
        r.irqs.count(MMPT_VECTOR),
        0,
        "receive interrupt not enabled"
    );
    r.receive(&mut mbox).unwrap();
    let n = MmptRxNotify(r.bus.read64(MMPT_REGS + 8).unwrap());
    assert_eq!((n.msg_type(), n.msg_len()), (3, 7));
    // Injected messages arrive the same way, with the interrupt when enabled.
    r.bus.write32(MMPT_REGS + 4, 1).unwrap();
    assert!(MmptCtrl(r.bus.read32(MMPT_REGS + 4).unwrap()).rx_irq());
    r.bus
        .with(|d, _| d.inject_message(9, vec![1, 2, 3]).unwrap());
    assert_eq!(r.irqs.count(MMPT_VECTOR), 1);
    r.receive(&mut mbox).unwrap();
    assert_eq!(r.receive(&mut mbox).unwrap(), (9, vec![1, 2, 3]));
}

#[test]
fn mmpt_errors_through_the_mailbox() {
    let r = rig(Personality::Mmpt);
    let mut mbox = r.mbox();
    let part = |action, offset, len| Part {
        action,
        offset,
        len,
    };
    let d = pattern(64);
    // (action, offset, the bytes of `d` sent, the code expected)
    let steps = [
        (Action::Continue, 0, 0..8, MmptCode::TransferOutOfOrder),
        (Action::Initiate, 0, 0..8, MmptCode::Success),
        (Action::Initiate, 0, 0..8, MmptCode::Success),
        (Action::Continue, 16, 0..8, MmptCode::TransferOutOfOrder),
        (Action::Continue, 8, 8..16, MmptCode::Success),
        (Action::Initiate, 0, 0..8, MmptCode::TransferInProgress),
        (Action::Full, 0, 0..8, MmptCode::TransferInProgress),
        (Action::Finish, 16, 16..20, MmptCode::Success),
    ];
    for (k, (action, offset, bytes, code)) in steps.into_iter().enumerate() {
        let p = part(action, offset, bytes.len());
        assert_eq!(
            r.send_part(&mut mbox, 1, &p, &d[bytes]).0,
            code,
            "step {k}: {action:?} at {offset}"
        );
    }
    assert_eq!(r.receive(&mut mbox).unwrap().1, d[..20]);
    // Abort drops a transfer.
    r.send_part(&mut mbox, 1, &part(Action::Initiate, 0, 8), &d[..8]);
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Abort, 0, 0), &[]).0,
        MmptCode::Success
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Finish, 8, 8), &d[8..16])
            .0,
        MmptCode::TransferOutOfOrder
    );
    // Empty queue, short header.
    assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
    assert_eq!(
        r.pci_sig(&mut mbox, SEND_MESSAGE, &[0; 8]).0,
        MmptCode::InvalidPayloadLength
    );
    // A failed command (rc fault) is not carried out.
    r.bus.with(|d, _| d.arm(Fault::Rc(0x0004), Mode::Once));
    assert_eq!(r.send(&mut mbox, 1, &[1]).0, MmptCode::InternalError);
    assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
    // A full queue pushes back.
    for _ in 0..crate::mmpt::QUEUE_MAX {
        assert_eq!(r.send(&mut mbox, 1, &[1]).0, MmptCode::Success);
    }
    assert_eq!(r.send(&mut mbox, 1, &[1]).0, MmptCode::RetryRequired);
    // A reset empties it.
    r.bus.with(|d, now| d.reset(now));
    let mut mbox = r.mbox();
    assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
}

#[test]
fn mmpt_inline_and_discard() {
    let r = rig(Personality::Mmpt);
    let mut mbox = r.mbox();
    r.bus.with(|d, _| d.mmpt.inline = true);
    let (code, out) = r.send(&mut mbox, 2, &[5, 6, 7]);
    assert_eq!(code, MmptCode::Success);
    let h = MsgHeader::decode(&out).unwrap();
    assert_eq!((h.msg_type, h.length), (2, 3));
    assert_eq!(&out[HEADER_LEN..], &[5, 6, 7]);
    assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
    // Too large for inline: queued.
    let big = pattern(mbox.payload_size());
    let (code, out) = r.send(&mut mbox, 2, &big);
    assert_eq!(code, MmptCode::Success);
    assert!(out.is_empty());
    assert_eq!(r.receive(&mut mbox).unwrap().1, big);
    r.bus
        .with(|d, _| d.mmpt.responder = crate::mmpt::Responder::Discard);
    r.send(&mut mbox, 2, &big);
    assert_eq!(r.receive(&mut mbox).unwrap_err(), MmptCode::NoMessage);
}

#[test]
fn payload_sizes() {
    for log2 in [8u8, 12, 20] {
        let r = rig_with(Personality::Switch, |c| c.payload_log2 = log2);
        let mut mbox = r.mbox();
        assert_eq!(mbox.payload_size(), 1 << log2);
        let (_, out) = r.run(&mut mbox, opcode::IDENTIFY, &[]).unwrap();
        assert_eq!(Identify::decode(&out).unwrap().max_msg_size_log2, log2);
        let data = pattern(1 << log2);
        assert_eq!(r.run(&mut mbox, OP_ECHO, &data).unwrap().1, data);
    }
    assert_eq!(
        DeviceConfig {
            payload_log2: 20,
            ..DeviceConfig::new(Personality::Switch)
        }
        .bar0_size(),
        1 << 21
    );
    assert!(DeviceConfig {
        payload_log2: 7,
        ..DeviceConfig::new(Personality::Switch)
    }
    .validate()
    .is_err());
    assert!(DeviceConfig {
        payload_log2: 21,
        ..DeviceConfig::new(Personality::Switch)
    }
    .validate()
    .is_err());
    assert!(DeviceConfig {
        payload_log2: 200,
        ..DeviceConfig::new(Personality::Switch)
    }
    .validate()
    .is_err());
}

mod events;

/// The run-time knobs (`knobs.rs`), on the same rig.
mod knobs;
