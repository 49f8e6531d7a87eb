// SPDX-License-Identifier: GPL-2.0

//! Tests of the register model, driven by the protocol core's own discovery and mailbox engine
//! through the same `bar_read`/`bar_write` path the vfio-user backend uses.

use super::*;
use crate::config::ConfigSpace;
use crate::irq::FakeIrqs;
use std::cell::{Cell, RefCell};
use swcci_proto::discover::{register_blocks, scan_block, BlockContents, RegBlock, Via};
use swcci_proto::mailbox::{
    AbortOutcome, BgPolicy, Event, Flavor, IoError, Mailbox, MboxError, RegIo, Request, Response,
    Timeouts, Wait, WaitError,
};
use swcci_proto::mmpt::{self as pmmpt, Action, MsgHeader, Part, HEADER_LEN};
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::identify::{ComponentType, Identify};
use swcci_proto::payload::logs::{get_log_input, Cel, SupportedLogs};
use swcci_proto::payload::switch::IdentifySwitch;

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
    let (resp, cel) = r
        .run(
            &mut mbox,
            opcode::GET_LOG,
            &get_log_input(&CEL_UUID, 0, size),
        )
        .unwrap();
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
    let (_, part) = r
        .run(&mut mbox, opcode::GET_LOG, &get_log_input(&CEL_UUID, 4, 4))
        .unwrap();
    assert_eq!(part, [0x02, 0x00, 0x00, 0x00]);
    let (resp, _) = r
        .run(
            &mut mbox,
            opcode::GET_LOG,
            &get_log_input(&CEL_UUID, 4, size),
        )
        .unwrap();
    assert_eq!(resp.rc, ReturnCode::InvalidInput);
    let bogus = swcci_proto::payload::logs::VENDOR_DEBUG_UUID;
    let (resp, _) = r
        .run(&mut mbox, opcode::GET_LOG, &get_log_input(&bogus, 0, 4))
        .unwrap();
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
    let mut out = [0u8; 8];
    let resp = mbox
        .start(
            &r.bus,
            &mut Clock::new(&r.bus),
            &Request::new(OP_SLEEP, &100u32.to_le_bytes()),
            &mut out,
        )
        .unwrap();
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
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Continue, 0, 8), &d[..8])
            .0,
        MmptCode::TransferOutOfOrder
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Initiate, 0, 8), &d[..8])
            .0,
        MmptCode::Success
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Initiate, 0, 8), &d[..8])
            .0,
        MmptCode::Success
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Continue, 16, 8), &d[..8])
            .0,
        MmptCode::TransferOutOfOrder
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Continue, 8, 8), &d[8..16])
            .0,
        MmptCode::Success
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Initiate, 0, 8), &d[..8])
            .0,
        MmptCode::TransferInProgress
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Full, 0, 8), &d[..8])
            .0,
        MmptCode::TransferInProgress
    );
    assert_eq!(
        r.send_part(&mut mbox, 1, &part(Action::Finish, 16, 4), &d[16..20])
            .0,
        MmptCode::Success
    );
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
