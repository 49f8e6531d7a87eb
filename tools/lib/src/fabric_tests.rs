// SPDX-License-Identifier: GPL-2.0

//! The fabric walk against simulated switches (`crate::sim`).

use super::*;
use crate::proto::opcode;
use crate::proto::payload::switch::{BindingStatus, ConnectedType};
use crate::sim::{SimDev, SimSwitch};

fn walk_one(sw: &SimSwitch, opts: &WalkOptions) -> Fabric {
    walk_mailboxes(&[sw], opts)
}

#[test]
fn a_healthy_switch() {
    let mut sw = SimSwitch::new(0x1234);
    sw.ports[1].dev = Some(SimDev::Mld(0x500, 3));
    let f = walk_one(&sw, &WalkOptions::default());
    assert!(!f.is_partial(), "{:?}", f.errors);
    let s = &f.switches[0];
    assert!(!s.partial);
    assert_eq!(s.identify.map(|i| i.serial), Some(0x1234));
    assert_eq!(s.identify_switch.map(|i| i.num_physical_ports), Some(4));
    let ports: Vec<u8> = s.ports.iter().map(|p| p.info.port_id).collect();
    assert_eq!(ports, [0, 1, 2, 3]);
    // Port 0: a type-3 device; port 2 is the USP: nothing asked behind it.
    let d0 = s.ports[0].device.as_ref().unwrap();
    assert_eq!(d0.identify.map(|i| i.serial), Some(0x103));
    assert!(d0.ld_info.is_none() && d0.ld_allocations.is_none());
    assert!(s.ports[2].device.is_none());
    // Port 1: the MLD with 3 LDs.
    let mld = s.ports[1].device.as_ref().unwrap();
    assert_eq!(s.ports[1].info.connected_type, ConnectedType::Type3Mld);
    assert_eq!(mld.identify.map(|i| i.serial), Some(0x500));
    assert_eq!(
        mld.ld_info.map(|i| (i.ld_count, i.memory_size)),
        Some((3, 3 << 30))
    );
    let a = mld.ld_allocations.as_ref().unwrap();
    assert_eq!(a.number_of_lds, 3);
    let lds: Vec<(u8, u64)> = a.lds.iter().map(|(id, l)| (*id, l.range1)).collect();
    assert_eq!(lds, [(0, 1), (1, 2), (2, 3)]);
    // VCS 0 with its three vPPBs.
    let vcss = s.vcss.as_ref().unwrap();
    assert_eq!(vcss.len(), 1);
    let b: Vec<BindingStatus> = vcss[0].vppbs.iter().map(|v| v.status).collect();
    assert_eq!(
        b,
        [
            BindingStatus::BoundPort,
            BindingStatus::BoundPort,
            BindingStatus::Unbound
        ]
    );
    // Identify, 5100h, 5101h, 5200h, then tunnels: Identify and Get DCD Info (5600h,
    // unsupported) for port 0, Identify, 5400h, 5401h and 5600h for the MLD, 2 for port 3.
    let mut want = vec![
        opcode::IDENTIFY,
        opcode::IDENTIFY_SWITCH,
        opcode::GET_PHYS_PORT_STATE,
        opcode::GET_VCS_INFO,
    ];
    want.extend([opcode::TUNNEL; 8]);
    assert_eq!(sw.opcodes(), want);
    assert!(d0.dcd.is_none() && mld.dcd.is_none());
    assert_eq!(s.commands, 12);
    assert_eq!(f.commands(), 12);
}

#[test]
fn a_dynamic_capacity_device_shows_its_regions_and_what_each_host_holds() {
    let mut sw = SimSwitch::new(7);
    sw.ports[3].dev = Some(SimDev::Dcd(0x104));
    {
        let mut d = sw.dcd.lock().unwrap();
        d.held[0] = vec![(256 << 20, 4 << 20, [0; 16])];
        d.held[1] = vec![(512 << 20, 2 << 20, [1; 16]), (600 << 20, 2 << 20, [0; 16])];
    }
    let f = walk_one(&sw, &WalkOptions::default());
    assert!(!f.is_partial(), "{:?}", f.errors);
    let d = f.switches[0].ports[3].device.as_ref().unwrap();
    let dcd = d.dcd.as_ref().unwrap();
    assert_eq!(dcd.info.num_regions, 2);
    assert_eq!(dcd.regions.regions.len(), 2);
    assert_eq!(dcd.hosts.len(), 2);
    assert_eq!(dcd.held(1).len(), 2);
    assert_eq!(dcd.free(0), 252 << 20);
    assert_eq!(dcd.free(1), 252 << 20);
    // A DCD that fails a read is partial, with the error, and the walk goes on.
    sw.dcd.lock().unwrap().churn = 1000;
    sw.dcd.lock().unwrap().held[1] = (0..20u64)
        .map(|i| ((256 + 8 * i) << 20, 2 << 20, [0; 16]))
        .collect();
    let f = walk_one(&sw, &WalkOptions::default());
    let d = f.switches[0].ports[3].device.as_ref().unwrap();
    assert!(d.partial && d.dcd.is_none() && d.identify.is_some());
    assert_eq!(f.errors.len(), 1);
    assert!(f.errors[0].error.to_string().contains("generation number"));
}

#[test]
fn devices_on_unbound_ports_are_read_too() {
    // Port 3's vPPB unbound: the port reads disabled, its device is still there.
    let mut sw = SimSwitch::new(1);
    sw.ports[3].state = 0;
    let f = walk_one(&sw, &WalkOptions::default());
    let d = f.switches[0].ports[3].device.as_ref().unwrap();
    assert_eq!(d.identify.map(|i| i.serial), Some(0x104));
    // The upstream port and an empty port are not asked.
    assert!(f.switches[0].ports[2].device.is_none());
    assert!(f.switches[0].ports[1].device.is_none());
}

#[test]
fn a_dead_device_is_reported_and_the_rest_is_read() {
    let mut sw = SimSwitch::new(1);
    sw.ports[0].dev = Some(SimDev::Dead);
    let f = walk_one(&sw, &WalkOptions::default());
    assert!(f.is_partial());
    let s = &f.switches[0];
    assert!(s.partial);
    let dead = s.ports[0].device.as_ref().unwrap();
    assert!(dead.partial && dead.identify.is_none());
    // The device on port 3 was still read.
    let d3 = s.ports[3].device.as_ref().unwrap();
    assert!(!d3.partial);
    assert_eq!(d3.identify.map(|i| i.serial), Some(0x104));
    assert_eq!(f.errors.len(), 1);
    let e = &f.errors[0];
    assert_eq!(e.place.target, Target::Port(0));
    assert!(e.error.is_timeout(), "{}", e.error);
}

#[test]
fn a_slow_device_gets_its_time_and_no_more() {
    let mut sw = SimSwitch::new(1);
    sw.ports[1].dev = Some(SimDev::Slow(100, 0x777));
    // Every command of the slow device takes 100 ms, the walk allows 50 ms per device: its
    // Identify is sent and answered; nothing after it is (its Get DCD Info is not sent: a
    // timeout, and the device is partial). The switch and the other devices each have their
    // own time.
    let opts = WalkOptions {
        timeout: Duration::from_millis(50),
    };
    let f = walk_one(&sw, &opts);
    let s = &f.switches[0];
    let slow = s.ports[1].device.as_ref().unwrap();
    assert_eq!(slow.identify.map(|i| i.serial), Some(0x777));
    assert!(slow.partial && slow.dcd.is_none());
    assert!(s.ports[3].device.as_ref().unwrap().identify.is_some());
    assert!(!s.ports[3].device.as_ref().unwrap().partial);
    assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
    let e = &f.errors[0];
    assert_eq!(e.place.target, Target::Port(1));
    assert!(e.error.is_timeout(), "{}", e.error);
    assert!(e.error.to_string().contains("ETIMEDOUT"), "{}", e.error);
    // Its next command would not be sent: the metering, command by command.
    let mut sw = SimSwitch::new(1);
    sw.ports[1].dev = Some(SimDev::Slow(100, 0x777));
    let m = Metered::new(&sw, Duration::from_millis(50));
    let cci = Cci::new(&m, Target::Port(1));
    cci.identify().unwrap();
    let e = cci.identify().unwrap_err();
    assert!(matches!(e, Error::Timeout { ms: 50, .. }), "{e:?}");
    assert!(e.is_timeout());
    assert_eq!(m.sent.get(), 1);
    m.next_device();
    assert_eq!(
        Cci::new(&m, Target::Port(3)).identify().unwrap().serial,
        0x104
    );
}

#[test]
fn optional_mld_commands_are_not_errors() {
    let mut sw = SimSwitch::new(1);
    sw.ports[0].dev = Some(SimDev::MldWithoutLdCommands(0x103));
    let f = walk_one(&sw, &WalkOptions::default());
    assert!(!f.is_partial(), "{:?}", f.errors);
    let d = f.switches[0].ports[0].device.as_ref().unwrap();
    assert_eq!(d.identify.map(|i| i.serial), Some(0x103));
    assert!(d.ld_info.is_none() && d.ld_allocations.is_none() && !d.partial);
}

#[test]
fn a_switch_without_vcs_info_has_no_vcs_list_and_no_error() {
    let mut sw = SimSwitch::new(1);
    sw.vcs_info = false;
    let f = walk_one(&sw, &WalkOptions::default());
    assert!(!f.is_partial(), "{:?}", f.errors);
    assert!(f.switches[0].vcss.is_none());
    assert_eq!(f.switches[0].ports.len(), 4);
    // A switch with no active VCS has an empty list, without asking.
    let mut sw = SimSwitch::new(1);
    sw.vcs.clear();
    let f = walk_one(&sw, &WalkOptions::default());
    assert_eq!(f.switches[0].vcss.as_deref(), Some(&[][..]));
    assert!(!sw.opcodes().contains(&opcode::GET_VCS_INFO));
}

#[test]
fn switches_are_walked_side_by_side_and_kept_in_order() {
    let mut a = SimSwitch::new(0xa);
    a.path = "/dev/cxl/switch0".into();
    a.ports[0].dev = Some(SimDev::Slow(50, 1));
    let mut b = SimSwitch::new(0xb);
    b.path = "/dev/cxl/switch1".into();
    b.ports[0].dev = Some(SimDev::Dead);
    let f = walk_mailboxes(&[&a, &b], &WalkOptions::default());
    let serials: Vec<u64> = f
        .switches
        .iter()
        .map(|s| s.identify.unwrap().serial)
        .collect();
    assert_eq!(serials, [0xa, 0xb]);
    assert!(!f.switches[0].partial);
    assert!(f.switches[1].partial);
    assert_eq!(f.errors.len(), 1);
    assert_eq!(f.errors[0].place.node, Path::new("/dev/cxl/switch1"));
}

#[test]
fn a_switch_that_fails_identify_switch_has_no_ports() {
    let mut sw = SimSwitch::new(1);
    sw.payload = 64; // Identify Switch Device's 73 bytes do not fit: a truncated response.
    let f = walk_one(&sw, &WalkOptions::default());
    let s = &f.switches[0];
    assert!(s.partial && s.ports.is_empty() && s.identify.is_some());
    assert!(f.errors[0].error.is_malformed(), "{}", f.errors[0].error);
}

#[test]
fn a_switch_that_answers_nothing_is_not_read() {
    // Open works, every command fails with EPERM (no CAP_SYS_RAWIO): listed, partial, unread.
    let mut a = SimSwitch::new(0xa);
    a.errno = Some(libc::EPERM);
    let f = walk_one(&a, &WalkOptions::default());
    assert_eq!(f.switches.len(), 1);
    let s = &f.switches[0];
    assert!(s.partial && !s.is_read());
    assert!(f.nothing_read());
    assert_eq!(f.errors.len(), 1);
    assert_eq!(f.errors[0].error.errno(), Some(libc::EPERM));
    // Next to a switch that answers, something was read.
    let b = SimSwitch::new(0xb);
    let f = walk_mailboxes(&[&a, &b], &WalkOptions::default());
    assert!(!f.switches[0].is_read() && f.switches[1].is_read());
    assert!(!f.nothing_read());
    // A switch that answered Identify but not Identify Switch Device was read.
    let mut c = SimSwitch::new(0xc);
    c.payload = 64;
    let f = walk_one(&c, &WalkOptions::default());
    assert!(f.switches[0].is_read() && !f.nothing_read() && f.is_partial());
    // No switch at all: nothing read.
    assert!(Fabric::default().nothing_read());
}

#[test]
fn nodes_that_do_not_answer_are_errors_and_mmpt_nodes_are_skipped() {
    let nodes = vec![
        Node {
            path: "/nonexistent/switch0".into(),
            info: Err(Error::Os {
                op: "open /nonexistent/switch0".into(),
                err: std::io::Error::from_raw_os_error(libc::ENOENT),
            }),
        },
        Node {
            path: "/dev/swcci/mmpt0".into(),
            info: Ok(SwcciInfo {
                kind: crate::proto::uapi::SWCCI_KIND_MMPT,
                ..SwcciInfo::default()
            }),
        },
    ];
    let f = walk(nodes, &WalkOptions::default());
    assert!(f.switches.is_empty() && f.nothing_read());
    assert_eq!(f.errors.len(), 1);
    assert_eq!(f.errors[0].place.node, Path::new("/nonexistent/switch0"));
    assert_eq!(f.errors[0].error.errno(), Some(libc::ENOENT));
}
