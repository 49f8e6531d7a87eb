// SPDX-License-Identifier: GPL-2.0

//! Targets and typed commands against the simulated switch (`crate::sim`).

use super::*;
use crate::sim::{SimDev, SimPort, SimSwitch};
use std::path::PathBuf;

/// A mailbox that answers every command with success and the same output.
struct Canned(Vec<u8>, PathBuf);

impl Mailbox for Canned {
    fn send(&self, _: u16, _: &[u8], out_size: usize) -> Result<RawResponse> {
        let mut out = self.0.clone();
        out.truncate(out_size);
        Ok(RawResponse {
            rc: ReturnCode::Success,
            out,
        })
    }
    fn payload_size(&self) -> Result<usize> {
        Ok(256)
    }
    fn path(&self) -> &Path {
        &self.1
    }
}

/// Asserts a decode error of `op` naming `field`.
fn malformed<T: fmt::Debug>(r: Result<T>, op: &str, field: &str) {
    match r {
        Err(Error::Decode {
            op: o,
            err: DecodeError::Truncated { field: f, .. },
        }) => {
            assert_eq!(o, op);
            assert_eq!(f, field);
        }
        other => panic!("expected a truncation at `{field}`, got {other:?}"),
    }
}

#[test]
fn short_responses_are_malformed_and_name_the_field() {
    let on = "/dev/cxl/switch0";
    let dev = |bytes: &[u8]| Canned(bytes.to_vec(), PathBuf::from(on));
    let c = dev(&[0; 12]);
    malformed(
        Cci::new(&c, Target::Direct).identify(),
        &format!("Identify (0001h) on {on}"),
        "serial",
    );
    let c = dev(&[0; 0x30]);
    malformed(
        Cci::new(&c, Target::Direct).identify_switch(),
        &format!("Identify Switch Device (5100h) on {on}"),
        "active_vcs_bitmask",
    );
    let c = dev(&[2, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    malformed(
        Cci::new(&c, Target::Direct).port_states(&[1, 2]),
        &format!("Get Physical Port State (5101h) on {on}"),
        "port information",
    );
    let c = dev(&[1, 0, 0, 0, 0, 1, 2, 4, 2, 0]);
    malformed(
        Cci::new(&c, Target::Direct).vcs_info(0, 4, &[0]),
        &format!("Get Virtual CXL Switch Info (5200h) on {on}"),
        "vppb information",
    );
    let c = dev(&[2, 0, 0, 0, 0, 0, 0, 0, 1]);
    malformed(
        Cci::new(&c, Target::Direct).supported_logs(),
        &format!("Get Supported Logs (0400h) on {on}"),
        "supported log entries",
    );
    let c = dev(&[0, 0, 1, 0, 0]);
    malformed(
        Cci::new(&c, Target::Direct).bg_status(),
        &format!("Background Operation Status (0002h) on {on}"),
        "return_code",
    );
    // A tunnel response shorter than its own header says.
    let c = dev(&[40, 0, 0, 0, 1, 0, 0, 1, 0, 18, 0, 0, 0, 0, 0, 0]);
    malformed(
        Cci::new(&c, Target::Port(1)).identify(),
        &format!("Identify (0001h) via port 1 on {on}"),
        "tunnelled response",
    );
    // Longer outputs than the layout needs are accepted (newer revisions append fields).
    let mut long = vec![0u8; 18];
    long[8] = 7;
    long.extend_from_slice(&[0xee; 30]);
    let c = dev(&long);
    assert_eq!(Cci::new(&c, Target::Direct).identify().unwrap().serial, 7);
}

#[test]
fn targets_from_paths_and_arguments() {
    assert_eq!(Target::from_path(&[]), Some(Target::Direct));
    assert_eq!(Target::from_path(&[3]), Some(Target::Port(3)));
    assert_eq!(Target::from_path(&[3, 1]), Some(Target::PortLd(3, 1)));
    assert_eq!(Target::from_path(&[3, 1, 0]), None);
    assert_eq!(Target::from_args(None, None), Some(Target::Direct));
    assert_eq!(Target::from_args(Some(4), None), Some(Target::Port(4)));
    assert_eq!(
        Target::from_args(Some(4), Some(2)),
        Some(Target::PortLd(4, 2))
    );
    assert_eq!(Target::from_args(None, Some(2)), None);
    for t in [Target::Direct, Target::Port(7), Target::PortLd(7, 255)] {
        assert_eq!(Target::from_path(&t.path()), Some(t));
        assert_eq!(t.path().len(), t.depth());
    }
    assert_eq!(Target::PortLd(1, 0).to_string(), "port 1 LD 0");
    assert_eq!(Target::Port(1).to_string(), "port 1");
    assert_eq!(Target::Direct.to_string(), "switch CCI");
    assert_eq!(
        (Target::PortLd(1, 2).port(), Target::PortLd(1, 2).ld()),
        (Some(1), Some(2))
    );
    assert_eq!((Target::Direct.port(), Target::Port(1).ld()), (None, None));
}

#[test]
fn direct_and_tunnelled_identify() {
    let mut sw = SimSwitch::new(0x1234);
    sw.ports[1].dev = Some(SimDev::Mld(0x500, 3));
    let cci = Cci::new(&sw, Target::Direct);
    assert_eq!(cci.identify().unwrap().serial, 0x1234);
    assert_eq!(cci.payload_size().unwrap(), 256);
    let port = Cci::new(&sw, Target::Port(3));
    assert_eq!(port.identify().unwrap().serial, 0x104);
    assert_eq!(port.payload_size().unwrap(), 256 - 16);
    // The request on the wire: port 3, target type 0, size 12, a request header for 0001h.
    let sent = sw.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent.0, opcode::TUNNEL);
    assert_eq!(
        sent.1,
        [3, 0, 12, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0]
    );
    // Two levels: the MLD on port 1, then its LD 2.
    let ld = Cci::new(&sw, Target::PortLd(1, 2));
    assert_eq!(ld.identify().unwrap().serial, 0x503);
    assert_eq!(ld.payload_size().unwrap(), 256 - 32);
    let sent = sw.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!(&sent.1[..4], &[1, 0, 28, 0]);
    // Inner header: Tunnel Management Command (5300h), tag 0, 16 bytes of payload.
    assert_eq!(&sent.1[4..12], &[0, 0, 0, 0x00, 0x53, 16, 0, 0]);
    assert_eq!(&sent.1[16..20], &[2, 0, 12, 0]);
    // The innermost header comes back with the response.
    let r = ld.raw(opcode::IDENTIFY, &[], 8).unwrap();
    assert_eq!(r.outer_rc, ReturnCode::Success);
    assert_eq!(r.header.map(|h| h.opcode), Some(opcode::IDENTIFY));
    assert_eq!(r.payload.len(), 8, "truncated to out_size");
}

#[test]
fn refusals_name_the_level_that_failed() {
    let mut sw = SimSwitch::new(1);
    sw.ports[1].dev = Some(SimDev::Mld(0x500, 2));
    // An empty port: the outer tunnel fails.
    let e = Cci::new(&sw, Target::Port(9)).identify().unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
    assert_eq!(
        e.to_string(),
        "Tunnel Management Command (5300h) to port 9 on /dev/cxl/switch0: device returned \
         invalid input (02h)"
    );
    // The device refuses the command.
    let e = Cci::new(&sw, Target::Port(0))
        .identify_switch()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Identify Switch Device (5100h) via port 0 on /dev/cxl/switch0: device returned \
         unsupported (03h)"
    );
    // The MLD refuses the inner tunnel (no LD 5): named as the tunnel.
    let e = Cci::new(&sw, Target::PortLd(1, 5)).identify().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Tunnel Management Command (5300h) via port 1 LD 5 on"),
        "{e}"
    );
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
    // raw gives the codes instead.
    let r = Cci::new(&sw, Target::Port(9)).raw(0x0001, &[], 64).unwrap();
    assert_eq!(
        (r.outer_rc, r.header, r.rc()),
        (ReturnCode::InvalidInput, None, ReturnCode::InvalidInput)
    );
    // A device that never answers: the driver's ETIMEDOUT, as an OS error.
    sw.ports[0].dev = Some(SimDev::Dead);
    let e = Cci::new(&sw, Target::Port(0)).identify().unwrap_err();
    assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
    assert_eq!(
        e.to_string(),
        "Identify (0001h) via port 0 on /dev/cxl/switch0: ETIMEDOUT (Connection timed out)"
    );
}

#[test]
fn input_larger_than_a_tunnelled_payload_is_refused_before_sending() {
    let sw = SimSwitch::new(1);
    let port = Cci::new(&sw, Target::Port(0));
    let e = port.raw(0xc000, &[0; 241], 16).unwrap_err();
    assert!(matches!(e, Error::Encode { .. }), "{e:?}");
    assert!(sw.opcodes().is_empty());
    port.raw(0xc000, &[0; 240], 16).unwrap();
    assert_eq!(sw.opcodes(), [opcode::TUNNEL]);
}

#[test]
fn cel_in_payload_sized_pieces() {
    let mut sw = SimSwitch::new(1);
    sw.cel = (0..100u16).map(|i| (i, 0)).collect();
    let cel = Cci::new(&sw, Target::Direct).cel_log().unwrap();
    assert_eq!(cel.entries.len(), 100);
    assert_eq!((cel.announced, cel.read, cel.is_short()), (400, 400, false));
    assert_eq!(cel.entries[99].opcode, 99);
    let gets: Vec<Vec<u8>> = sw
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(o, _)| *o == opcode::GET_LOG)
        .map(|(_, i)| i.clone())
        .collect();
    assert_eq!(gets.len(), 2);
    // Offsets 0 and 256, lengths 256 and 144.
    assert_eq!(&gets[0][16..24], &[0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&gets[1][16..24], &[0, 1, 0, 0, 144, 0, 0, 0]);
}

#[test]
fn a_log_ended_early_keeps_what_was_read() {
    for (end, read, gets) in [(100, 100, 1), (0, 0, 1), (256, 256, 2), (258, 258, 2)] {
        let mut sw = SimSwitch::new(1);
        sw.cel = (0..100u16).map(|i| (i, 0)).collect();
        sw.log_end = Some(end);
        let cel = Cci::new(&sw, Target::Direct).cel_log().unwrap();
        assert_eq!(cel.read, read, "end {end}");
        assert_eq!(
            cel.entries.len(),
            read / 4,
            "end {end}: partial entry dropped"
        );
        assert!(cel.is_short());
        let n = sw
            .opcodes()
            .iter()
            .filter(|&&o| o == opcode::GET_LOG)
            .count();
        assert_eq!(n, gets, "end {end}: Get Log commands");
    }
}

#[test]
fn missing_cel_is_a_malformed_response() {
    let mut sw = SimSwitch::new(1);
    sw.lists_cel = false;
    let e = Cci::new(&sw, Target::Direct).cel().unwrap_err();
    assert!(e.is_malformed());
    assert_eq!(
        e.to_string(),
        "Get Supported Logs (0400h) on /dev/cxl/switch0: malformed response: no Command \
         Effects Log listed"
    );
}

#[test]
fn tunnelled_log_uses_the_smaller_payload() {
    let sw = SimSwitch::new(1);
    // The type-3 on port 0 does not implement logs: its refusal names the command and offset.
    let e = Cci::new(&sw, Target::Port(0))
        .read_log(&logs::CEL_UUID, 1000)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Get Log (0401h) via port 0 on /dev/cxl/switch0")
            && e.to_string().contains("at offset 0"),
        "{e}"
    );
    let sent = sw.sent.lock().unwrap().last().cloned().unwrap();
    // Length asked: 256 - 16.
    assert_eq!(&sent.1[16 + 20..16 + 24], &240u32.to_le_bytes());
}

#[test]
fn port_states_in_as_few_commands_as_fit() {
    let mut sw = SimSwitch::new(1);
    sw.payload = 64;
    let states = Cci::new(&sw, Target::Direct)
        .port_states(&[0, 1, 2, 3])
        .unwrap();
    let ids: Vec<u8> = states.iter().map(|p| p.port_id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    // (64 - 4) / 16 = 3 ports per command.
    assert_eq!(sw.opcodes(), [opcode::GET_PHYS_PORT_STATE; 2]);
}

#[test]
fn vcs_all_pages_through_vppbs() {
    let mut sw = SimSwitch::new(1);
    sw.payload = 32;
    let vppbs: Vec<(u8, u8, u8)> = (0..10).map(|i| (2, i, 0)).collect();
    sw.vcs = vec![(0, 2, vppbs.clone()), (1, 4, vppbs[..3].to_vec())];
    let all = Cci::new(&sw, Target::Direct).vcs_all(&[0, 1]).unwrap();
    assert_eq!(all.len(), 2);
    let ids: Vec<u8> = all[0].vppbs.iter().map(|v| v.id).collect();
    assert_eq!(ids, (0..10).collect::<Vec<u8>>());
    assert_eq!(all[0].vppbs[7].bound_port(), Some(7));
    assert_eq!(all[1].vppbs.len(), 3);
    assert_eq!(all[1].usp, 4);
    // Limit for two VCSs in 32 bytes: ((32 - 4) / 2 - 4) / 4 = 2; then 6 for one VCS.
    assert_eq!(vppb_limit(32, 2), 2);
    assert_eq!(vppb_limit(32, 1), 6);
    let n = sw.opcodes().len();
    assert_eq!(n, 3, "{:?}", sw.opcodes());
}

#[test]
fn vppb_limits() {
    // 2 KiB payload, one VCS: (2044 - 4) / 4 = 510, capped at 255.
    assert_eq!(vppb_limit(2048, 1), 255);
    // 256 bytes, 4 VCSs: 252 / 4 = 63 per VCS, (63 - 4) / 4 = 14 vPPBs.
    assert_eq!(vppb_limit(256, 4), 14);
    // Never 0 (the device then says what it can do).
    assert_eq!(vppb_limit(256, 200), 1);
    assert_eq!(vppb_limit(0, 0), 1);
}

#[test]
fn vppb_bindings() {
    let v = |status| Vppb {
        id: 0,
        status,
        port: 4,
        ld: 2,
    };
    assert_eq!(v(BindingStatus::Unbound).bound_port(), None);
    assert_eq!(v(BindingStatus::BoundPort).bound_port(), Some(4));
    assert_eq!(v(BindingStatus::BoundPort).bound_ld(), None);
    assert_eq!(v(BindingStatus::BoundLd).bound_ld(), Some(2));
}

#[test]
fn unknown_ports_of_a_simulated_switch() {
    // The simulation itself: an id it does not have reads as invalid.
    let mut sw = SimSwitch::new(1);
    sw.ports.push(SimPort {
        id: 200,
        state: 3,
        dev: None,
    });
    let s = Cci::new(&sw, Target::Direct)
        .port_states(&[200, 9])
        .unwrap();
    assert_eq!(s[0].port_id, 200);
    assert_eq!(s[1].config_state.raw(), 0xf);
}
