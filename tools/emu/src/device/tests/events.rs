// SPDX-License-Identifier: GPL-2.0

//! The event logs through the register model (`events.rs`): records of binds and unbinds, link
//! changes, MLD errors and firmware activations read and cleared with the mailbox commands, the
//! Event Status register, the Event Interrupt Policy with MSI-X delivery, the `no-event-irq`
//! fault, overflow, and the logs of the devices behind ports through tunnels.

use super::*;
use crate::events::FW_ACTIVATION_UUID;
use swcci_proto::payload::events::{
    clear_events_request, get_events_request, EventBody, EventLog, EventRecords, InterruptMode,
    InterruptPolicy, InterruptSetting, MldEventType, PhysicalEventType, Severity, VirtualEventType,
    VIRTUAL_SWITCH_EVENT_UUID,
};
use swcci_proto::regs::EventStatus;

/// A decoded record: its handle, log severity, UUID and body bytes.
#[derive(Debug)]
struct Rec {
    handle: u16,
    severity: Severity,
    uuid: Uuid,
    data: Vec<u8>,
    timestamp: u64,
}

impl Rig {
    /// Get Event Records of `log` along `path` (direct when empty): flags and records.
    fn events(&self, mbox: &mut Mailbox, path: &[u8], log: EventLog) -> (u8, u16, Vec<Rec>) {
        let input = get_events_request(log.raw());
        let out = if path.is_empty() {
            let (resp, out) = self.run(mbox, opcode::GET_EVENT_RECORDS, &input).unwrap();
            assert!(resp.rc.is_success(), "{}", resp.rc);
            out
        } else {
            let (rc, out) = self.via_ok(mbox, path, opcode::GET_EVENT_RECORDS, &input);
            assert!(rc.is_success(), "{rc}");
            out
        };
        let e = EventRecords::decode(&out).unwrap();
        let recs = e
            .iter()
            .map(|r| Rec {
                handle: r.header.handle,
                severity: r.header.severity(),
                uuid: r.header.uuid,
                data: r.data.to_vec(),
                timestamp: r.header.timestamp,
            })
            .collect();
        (e.header.flags, e.header.overflow_count, recs)
    }

    fn clear_events(
        &self,
        mbox: &mut Mailbox,
        path: &[u8],
        log: EventLog,
        handles: &[u16],
    ) -> ReturnCode {
        let mut b = vec![0u8; 6 + 2 * handles.len()];
        clear_events_request(&mut b, log.raw(), handles).unwrap();
        if path.is_empty() {
            self.run(mbox, opcode::CLEAR_EVENT_RECORDS, &b)
                .unwrap()
                .0
                .rc
        } else {
            self.via_ok(mbox, path, opcode::CLEAR_EVENT_RECORDS, &b).0
        }
    }

    fn event_status(&self) -> EventStatus {
        EventStatus(u32::from_le_bytes(
            self.bus.read(DEVICE_STATUS_REGS, 4).try_into().unwrap(),
        ))
    }

    fn ctl(&self, line: &str) -> String {
        self.fw_query(line)
    }
}

#[test]
fn binds_and_unbinds_log_virtual_switch_records() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    assert_eq!(r.event_status().0, 0);
    // The default fabric binds every vPPB: free vPPB 0, then bind it again.
    assert_eq!(r.unbind(&mut mbox, 0, 0), ReturnCode::Success);
    assert_eq!(r.bind(&mut mbox, 0, 0, 1, LD_NONE), ReturnCode::Success);
    assert!(r.event_status().informational());
    assert_eq!(r.event_status().0, 1);
    let (flags, _, recs) = r.events(&mut mbox, &[], EventLog::Informational);
    assert_eq!(flags, 0);
    assert_eq!(recs.len(), 2);
    assert!(recs[0].timestamp < recs[1].timestamp);
    assert_eq!(recs.iter().map(|r| r.handle).collect::<Vec<_>>(), [1, 2]);
    let decode = |rec: &Rec| {
        assert_eq!(rec.uuid, VIRTUAL_SWITCH_EVENT_UUID);
        assert_eq!(rec.severity, Severity::Informational);
        swcci_proto::payload::events::VirtualSwitchEvent::decode(&rec.data).unwrap()
    };
    let un = decode(&recs[0]);
    assert_eq!(
        (un.vcs_id, un.vppb_id, un.event_type, un.binding),
        (
            0,
            0,
            VirtualEventType::BindingChange,
            BindingStatus::Unbound
        )
    );
    let b = decode(&recs[1]);
    assert_eq!((b.binding, b.port_id), (BindingStatus::BoundPort, 1));
    // Cleared in order, the log and the status bit empty.
    assert_eq!(
        r.clear_events(&mut mbox, &[], EventLog::Informational, &[2]),
        ReturnCode::InvalidHandle
    );
    assert_eq!(
        r.clear_events(&mut mbox, &[], EventLog::Informational, &[1, 2]),
        ReturnCode::Success
    );
    assert_eq!(r.event_status().0, 0);
    assert!(r
        .events(&mut mbox, &[], EventLog::Informational)
        .2
        .is_empty());
    assert_eq!(r.bus.stat("events-logged"), 2);
    assert_eq!(r.bus.stat("events-cleared"), 2);
    // The CEL lists the event commands.
    let (_, cel) = r.get_log(&mut mbox, &CEL_UUID, 0, (SWITCH_OPCODES.len() * 4) as u32);
    let cel = Cel::new(&cel);
    assert_eq!(
        cel.find(opcode::CLEAR_EVENT_RECORDS).unwrap().effect,
        effect::LOG_CHANGE_IMMEDIATE
    );
    assert!(cel.find(opcode::GET_EVENT_RECORDS).unwrap().no_effects());
}

#[test]
fn an_aborted_bind_is_a_warning_with_the_binding_it_went_back_to() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    assert_eq!(r.unbind(&mut mbox, 0, 2), ReturnCode::Success);
    r.ctl("set bind-ms 1000");
    let resp = r.start(
        &mut mbox,
        opcode::BIND_VPPB,
        &bind_vppb_request(0, 2, 3, LD_NONE),
    );
    assert_eq!(resp.rc, ReturnCode::BackgroundStarted);
    let (resp, _) = r.run(&mut mbox, opcode::REQUEST_ABORT_BG, &[]).unwrap();
    assert!(resp.rc.is_success());
    let (_, _, recs) = r.events(&mut mbox, &[], EventLog::Warning);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].severity, Severity::Warning);
    let v = swcci_proto::payload::events::VirtualSwitchEvent::decode(&recs[0].data).unwrap();
    assert_eq!((v.vppb_id, v.binding), (2, BindingStatus::Unbound));
    assert_eq!(r.event_status().0, 0b11);
}

#[test]
fn link_changes_log_physical_switch_records() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    assert_eq!(r.ctl("link 2 down"), "ok");
    let p = r.port(&mut mbox, 2);
    assert_eq!(
        (p.ltssm, p.negotiated_link_width, p.connected_type),
        (Ltssm::Detect, 0, ConnectedType::None)
    );
    // Tunnels and binds to the port are refused while it is down.
    assert_eq!(
        r.tunnel(&mut mbox, 2, opcode::IDENTIFY, &[]).0,
        ReturnCode::InvalidInput
    );
    assert_eq!(r.ctl("link 2 up"), "ok");
    assert_eq!(r.tunnel_identify(&mut mbox, 2).device_id, TYPE3_DEVICE_ID);
    let (_, _, down) = r.events(&mut mbox, &[], EventLog::Warning);
    let (_, _, up) = r.events(&mut mbox, &[], EventLog::Informational);
    assert_eq!((down.len(), up.len()), (1, 1));
    let d = swcci_proto::payload::events::PhysicalSwitchEvent::decode(&down[0].data).unwrap();
    assert_eq!(
        (d.port_id, d.event_type, d.port.ltssm),
        (2, PhysicalEventType::LinkStateChange, Ltssm::Detect)
    );
    assert_eq!(d.port.config_state, PortConfigState::Downstream);
    let u = swcci_proto::payload::events::PhysicalSwitchEvent::decode(&up[0].data).unwrap();
    assert_eq!((u.port.ltssm, u.port.negotiated_link_width), (Ltssm::L0, 8));
    assert_eq!(
        u.port,
        PortInfo {
            supported_ld_count: 0,
            ..r.port(&mut mbox, 2)
        }
    );
}

#[test]
fn mld_errors_overflow_a_bounded_log() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 5;
        c.fabric.mld_port = Some(3);
    });
    let mut mbox = r.mbox();
    assert_eq!(r.ctl("set event-log-cap 2"), "ok");
    r.bus.advance(MS);
    assert_eq!(r.ctl("mld-error cor 5"), "ok");
    assert_eq!(r.ctl("mld-error fatal"), "ok");
    let (flags, count, recs) = r.events(&mut mbox, &[], EventLog::Warning);
    assert_eq!(flags, 1, "overflow, no more records");
    assert_eq!((count, recs.len()), (3, 2));
    let m = swcci_proto::payload::events::MldPortEvent::decode(&recs[0].data).unwrap();
    assert_eq!((m.event_type, m.port_id), (MldEventType::Correctable, 3));
    assert_eq!(m.error_message, [0x30, 0, 0, 0, 3, 0, 0, 0x30]);
    let (_, _, fail) = r.events(&mut mbox, &[], EventLog::Failure);
    assert_eq!(fail.len(), 1);
    assert_eq!(fail[0].severity, Severity::Failure);
    assert_eq!(r.bus.stat("events-dropped"), 3);
    // Clearing ends the overflow.
    let handles: Vec<u16> = recs.iter().map(|r| r.handle).collect();
    assert_eq!(
        r.clear_events(&mut mbox, &[], EventLog::Warning, &handles),
        ReturnCode::Success
    );
    let (flags, count, recs) = r.events(&mut mbox, &[], EventLog::Warning);
    assert_eq!((flags, count, recs.len()), (0, 0, 0));
}

#[test]
fn interrupt_policy_sends_msix_on_the_first_record() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let policy = InterruptPolicy::default()
        .with(
            EventLog::Informational,
            InterruptSetting::new(InterruptMode::MsiMsix, 0),
        )
        .with(
            EventLog::Warning,
            InterruptSetting::new(InterruptMode::MsiMsix, 0),
        );
    let mut b = [0u8; 5];
    let n = policy.encode(&mut b).unwrap();
    let (resp, _) = r
        .run(&mut mbox, opcode::SET_EVENT_INTERRUPT_POLICY, &b[..n])
        .unwrap();
    assert!(resp.rc.is_success());
    let (_, out) = r
        .run(&mut mbox, opcode::GET_EVENT_INTERRUPT_POLICY, &[])
        .unwrap();
    let got = InterruptPolicy::decode(&out).unwrap();
    assert_eq!(
        got.informational,
        InterruptSetting::new(InterruptMode::MsiMsix, 3)
    );
    assert_eq!(got.failure, InterruptSetting::NONE);
    assert_eq!(got.dynamic_capacity, Some(InterruptSetting::NONE));
    assert_eq!(r.irqs.count(3), 0);
    assert_eq!(r.unbind(&mut mbox, 0, 0), ReturnCode::Success);
    assert_eq!(r.irqs.count(3), 1);
    // The log was not empty: no second interrupt.
    assert_eq!(r.bind(&mut mbox, 0, 0, 1, LD_NONE), ReturnCode::Success);
    assert_eq!(r.irqs.count(3), 1);
    // The failure log has no interrupt.
    r.ctl("set event-log-cap 8");
    assert_eq!(r.ctl("link 1 down"), "ok");
    assert_eq!(r.irqs.count(3), 2, "warning log: its first record");
    // Swallowed by the fault; counted as due.
    let (_, _, w) = r.events(&mut mbox, &[], EventLog::Warning);
    let h: Vec<u16> = w.iter().map(|r| r.handle).collect();
    assert_eq!(
        r.clear_events(&mut mbox, &[], EventLog::Warning, &h),
        ReturnCode::Success
    );
    assert_eq!(r.ctl("no-event-irq"), "ok");
    assert_eq!(
        r.ctl("mld-error cor"),
        "err no multi-logical device (--mld-port)"
    );
    assert_eq!(r.ctl("link 1 up"), "ok");
    assert_eq!(r.ctl("link 2 down"), "ok");
    assert_eq!(r.irqs.count(3), 2);
    assert_eq!(r.bus.stat("event-irqs"), 3);
    assert_eq!(r.ctl("get faults"), "ok none");
    // Another vector; a function reset turns the interrupts off.
    assert_eq!(r.ctl("set event-vector 5"), "ok");
    let (_, out) = r
        .run(&mut mbox, opcode::GET_EVENT_INTERRUPT_POLICY, &[])
        .unwrap();
    assert_eq!(InterruptPolicy::decode(&out).unwrap().warning.msgnum(), 5);
    assert_eq!(r.ctl("reset"), "ok");
    assert!(r.ctl("get events").ends_with("policy=none,none,none,none"));
    // Records stay across the reset.
    assert!(r.event_status().informational());
}

#[test]
fn firmware_activations_are_logged_where_the_firmware_changed() {
    let r = rig_with(Personality::Switch, |c| {
        c.fabric.ports = 5;
        c.fabric.mld_port = Some(3);
        c.fabric.lds = 2;
    });
    let mut mbox = r.mbox();
    // The switch's own.
    let image = fw_image("sw 2.0", 300);
    assert_eq!(r.fw_transfer(&mut mbox, &image, 2), ReturnCode::Success);
    assert_eq!(
        r.activate(&mut mbox, ActivateAction::Online, 2),
        ReturnCode::Success
    );
    let (_, _, recs) = r.events(&mut mbox, &[], EventLog::Informational);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].uuid, FW_ACTIVATION_UUID);
    assert_eq!(recs[0].data[0], 2);
    assert_eq!(&recs[0].data[1..7], b"sw 2.0");
    // A device's: in its own log, read through the tunnel; the switch's log is unchanged.
    let image = fw_image("t3 2.0", 100);
    assert_eq!(
        r.via_transfer(&mut mbox, &[1], &image, 2),
        ReturnCode::Success
    );
    let act = Activate {
        action: ActivateAction::Online,
        slot: 2,
    }
    .encode();
    assert_eq!(
        r.via_fw(&mut mbox, &[1], OP_ACTIVATE_FW, &act),
        ReturnCode::Success
    );
    let (_, _, dev) = r.events(&mut mbox, &[1], EventLog::Informational);
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0].uuid, FW_ACTIVATION_UUID);
    assert_eq!(&dev[0].data[..7], b"\x02t3 2.0");
    assert_eq!(r.events(&mut mbox, &[], EventLog::Informational).2.len(), 1);
    assert!(r
        .ctl("get port-events 1")
        .starts_with("ok informational=1 "));
    assert_eq!(
        r.clear_events(&mut mbox, &[1], EventLog::Informational, &[dev[0].handle]),
        ReturnCode::Success
    );
    assert!(r
        .events(&mut mbox, &[1], EventLog::Informational)
        .2
        .is_empty());
    // The MLD's FM-owned LD has logs; its LDs answer Unsupported; the policy is the switch's.
    assert!(r.events(&mut mbox, &[3], EventLog::Fatal).2.is_empty());
    let (rc, _) = r.via_ok(
        &mut mbox,
        &[3, 0],
        opcode::GET_EVENT_RECORDS,
        &get_events_request(0),
    );
    assert_eq!(rc, ReturnCode::Unsupported);
    let (rc, _) = r.via_ok(&mut mbox, &[1], opcode::GET_EVENT_INTERRUPT_POLICY, &[]);
    assert_eq!(rc, ReturnCode::Unsupported);
    // A device's cold reset activating a staged slot logs too.
    let image = fw_image("t3 3.0", 100);
    assert_eq!(
        r.via_transfer(&mut mbox, &[2], &image, 3),
        ReturnCode::Success
    );
    let act = Activate {
        action: ActivateAction::OnReset,
        slot: 3,
    }
    .encode();
    assert_eq!(
        r.via_fw(&mut mbox, &[2], OP_ACTIVATE_FW, &act),
        ReturnCode::Success
    );
    assert!(r
        .events(&mut mbox, &[2], EventLog::Informational)
        .2
        .is_empty());
    assert_eq!(r.ctl("reset-port 2"), "ok");
    let (_, _, dev) = r.events(&mut mbox, &[2], EventLog::Informational);
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0].data[0], 3);
}

#[test]
fn event_commands_refuse_bad_input() {
    let r = rig(Personality::Switch);
    let mut mbox = r.mbox();
    let rc = |op, input: &[u8]| r.run(&mut r.mbox(), op, input).unwrap().0.rc;
    assert_eq!(
        rc(opcode::GET_EVENT_RECORDS, &[4]),
        ReturnCode::InvalidInput
    );
    assert_eq!(
        rc(opcode::GET_EVENT_RECORDS, &[0, 0]),
        ReturnCode::InvalidPayloadLength
    );
    assert_eq!(
        rc(opcode::CLEAR_EVENT_RECORDS, &[0, 0, 1, 0, 0, 0, 9, 0]),
        ReturnCode::InvalidHandle
    );
    assert_eq!(
        rc(opcode::SET_EVENT_INTERRUPT_POLICY, &[2, 0, 0, 0]),
        ReturnCode::InvalidInput
    );
    assert_eq!(
        rc(opcode::SET_EVENT_INTERRUPT_POLICY, &[0; 3]),
        ReturnCode::InvalidPayloadLength
    );
    assert_eq!(
        rc(opcode::GET_EVENT_INTERRUPT_POLICY, &[0]),
        ReturnCode::InvalidPayloadLength
    );
    // An output room below one record: the header alone, More Event Records set.
    assert_eq!(r.unbind(&mut mbox, 0, 0), ReturnCode::Success);
    let got = r
        .bus
        .with(|d, _| d.ev.exec(opcode::GET_EVENT_RECORDS, &[0], 100));
    let (rc, out) = got.unwrap();
    assert!(rc.is_success());
    let e = EventRecords::decode(&out).unwrap();
    assert!(e.is_empty() && e.header.more());
    assert!(matches!(
        EventRecords::decode(&r.events_raw(&mut mbox))
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .body(),
        EventBody::VirtualSwitch(_)
    ));
}

impl Rig {
    fn events_raw(&self, mbox: &mut Mailbox) -> Vec<u8> {
        self.run(mbox, opcode::GET_EVENT_RECORDS, &[0]).unwrap().1
    }
}
