// SPDX-License-Identifier: GPL-2.0

//! Switch payload tests with byte vectors in the spec layout (values as QEMU reports them for
//! a switch with downstream ports 0, 1 and 3 and upstream port 2).

extern crate std;

use super::*;
use std::vec::Vec;

fn identify_switch_bytes() -> [u8; IDENTIFY_SWITCH_LEN] {
    let mut b = [0u8; IDENTIFY_SWITCH_LEN];
    b[2] = 4; // physical ports: 3 DSPs + the USP
    b[3] = 1; // one VCS
    b[4] = 0b0000_1111; // ports 0, 1, 2, 3
    b[0x24] = 1; // VCS 0
    b[0x44] = 4; // total vPPBs
    b[0x46] = 4; // bound vPPBs
    b[0x48] = 4; // HDM decoders
    b
}

#[test]
fn identify_switch() {
    let s = IdentifySwitch::decode(&identify_switch_bytes()).unwrap();
    assert_eq!(s.num_physical_ports, 4);
    assert_eq!(s.num_vcs, 1);
    assert_eq!(s.active_port_ids().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(s.active_vcs_ids().collect::<Vec<_>>(), [0]);
    assert_eq!((s.total_vppbs, s.bound_vppbs, s.hdm_decoders), (4, 4, 4));
    for len in 0..IDENTIFY_SWITCH_LEN {
        assert!(
            IdentifySwitch::decode(&identify_switch_bytes()[..len]).is_err(),
            "len {len}"
        );
    }
    assert!(matches!(
        IdentifySwitch::decode(&identify_switch_bytes()[..0x45]),
        Err(DecodeError::Truncated {
            field: "total_vppbs",
            ..
        })
    ));
    let mut all = [0xffu8; 32];
    all[31] = 0x80;
    assert_eq!(mask_bits(&all).last(), Some(255));
}

fn port_block(id: u8, state: u8, mode: u8, kind: u8) -> [u8; PORT_INFO_LEN] {
    [
        id, state, mode, 0, kind, 0x06, 16, 16, 0x3f, 6, 6, 7, 0, 0x02, 0x00, 3,
    ]
}

#[test]
fn port_states() {
    let mut b = std::vec![2u8, 0, 0, 0];
    b.extend_from_slice(&port_block(0, 3, 2, 5));
    b.extend_from_slice(&port_block(1, 3, 0, 0));
    let ps = PortStates::decode(&b).unwrap();
    assert_eq!(ps.len(), 2);
    let ports: Vec<PortInfo> = ps.iter().collect();
    assert_eq!(ports[0].config_state, PortConfigState::Downstream);
    assert_eq!(ports[0].connected_type, ConnectedType::Type3Mld);
    assert_eq!(ports[0].connected_mode, ConnectedMode::Flit68Vh);
    assert_eq!(ports[0].max_link_width, 16);
    assert_eq!(link_speed_decigt(ports[0].max_link_speed), Some(640));
    assert_eq!(ports[0].ltssm, Ltssm::L2);
    assert_eq!(ports[0].link_state, LINK_PERST_ASSERTED);
    assert_eq!(ports[1].connected_type, ConnectedType::None);
    assert_eq!(ports[1].connected_type.to_string(), "none");
    assert_eq!(PortConfigState::from_raw(9).to_string(), "unknown (09h)");
    // The header announces a third port that is not there.
    b[0] = 3;
    assert!(matches!(
        PortStates::decode(&b),
        Err(DecodeError::Truncated {
            field: "port information",
            ..
        })
    ));
    let mut req = [0u8; 8];
    assert_eq!(port_state_request(&mut req, &[0, 1, 3]), Ok(4));
    assert_eq!(&req[..4], &[3, 0, 1, 3]);
    assert!(port_state_request(&mut req, &[0u8; 300]).is_err());
}

#[test]
fn vcs_info() {
    // Two VCSs; request start 1, limit 2. VCS 0 has 4 vPPBs (lists 1 and 2), VCS 1 has 2
    // (lists 1 only).
    let mut b = std::vec![2u8, 0, 0, 0];
    b.extend_from_slice(&[0, 1, 2, 4]);
    b.extend_from_slice(&[2, 0, 0, 0, 3, 3, 1, 0]);
    b.extend_from_slice(&[1, 0, 5, 2]);
    b.extend_from_slice(&[0, 0, 0, 0]);
    let v = VcsInfos::decode(&b, 1, 2).unwrap();
    assert_eq!(v.len(), 2);
    let all: Vec<_> = v.iter().collect();
    assert_eq!(all[0].state, VcsState::Enabled);
    let vppbs: Vec<_> = all[0].vppbs().collect();
    assert_eq!(
        vppbs[0],
        (
            1,
            VppbInfo {
                status: BindingStatus::BoundPort,
                port: 0,
                ld: 0
            }
        )
    );
    assert_eq!(
        vppbs[1],
        (
            2,
            VppbInfo {
                status: BindingStatus::BoundLd,
                port: 3,
                ld: 1
            }
        )
    );
    assert_eq!(all[1].state, VcsState::Disabled);
    assert_eq!(all[1].vppbs().count(), 1);
    // Cut inside the second block.
    assert!(VcsInfos::decode(&b[..b.len() - 1], 1, 2).is_err());
    let mut req = [0u8; 8];
    assert_eq!(vcs_info_request(&mut req, 1, 2, &[0, 1]), Ok(5));
    assert_eq!(&req[..5], &[1, 2, 2, 0, 1]);
}

#[test]
fn small_requests() {
    assert_eq!(
        bind_vppb_request(0, 1, 3, LD_NONE),
        [0, 1, 3, 0, 0xff, 0xff]
    );
    assert_eq!(
        unbind_vppb_request(0, 1, UnbindOption::ManagedHotRemove),
        [0, 1, 1]
    );
    assert_eq!(port_control_request(4, PortOp::ResetPpb), [4, 2]);
}

use std::string::ToString;

#[test]
fn encoders_reproduce_the_spec_layout() {
    let bytes = identify_switch_bytes();
    let s = IdentifySwitch::decode(&bytes).unwrap();
    let mut out = [0u8; 128];
    assert_eq!(s.encode(&mut out), Ok(IDENTIFY_SWITCH_LEN));
    assert_eq!(out[..IDENTIFY_SWITCH_LEN], bytes);

    let mut b = std::vec![2u8, 0, 0, 0];
    b.extend_from_slice(&port_block(0, 3, 2, 5));
    b.extend_from_slice(&port_block(1, 3, 0, 0));
    let ports: Vec<PortInfo> = PortStates::decode(&b).unwrap().iter().collect();
    assert_eq!(encode_port_states(&mut out, &ports), Ok(b.len()));
    assert_eq!(out[..b.len()], b[..]);
    assert_eq!(
        decode_port_state_request(&[3, 0, 1, 3]),
        Ok(&[0u8, 1, 3][..])
    );
    assert!(decode_port_state_request(&[3, 0]).is_err());

    let bound = [
        VppbInfo {
            status: BindingStatus::BoundPort,
            port: 0,
            ld: 0,
        },
        VppbInfo {
            status: BindingStatus::BoundLd,
            port: 3,
            ld: 1,
        },
    ];
    let blocks = [VcsBlock {
        vcs_id: 0,
        state: VcsState::Enabled,
        usp_id: 2,
        num_vppbs: 4,
        vppbs: &bound,
    }];
    let n = encode_vcs_infos(&mut out, &blocks).unwrap();
    assert_eq!(out[..n], [1, 0, 0, 0, 0, 1, 2, 4, 2, 0, 0, 0, 3, 3, 1, 0]);
    let v = VcsInfos::decode(&out[..n], 1, 2).unwrap();
    let got: Vec<_> = v.iter().next().unwrap().vppbs().map(|(_, i)| i).collect();
    assert_eq!(got, bound);
    assert_eq!(
        decode_vcs_info_request(&[1, 2, 2, 0, 1]),
        Ok((1, 2, &[0u8, 1][..]))
    );
}

#[test]
fn bind_and_unbind_inputs_decode() {
    let b = BindVppb::decode(&bind_vppb_request(1, 2, 3, 4)).unwrap();
    assert_eq!(
        b,
        BindVppb {
            vcs: 1,
            vppb: 2,
            port: 3,
            ld: 4
        }
    );
    assert!(BindVppb::decode(&[1, 2, 3, 0, 4]).is_err());
    assert_eq!(
        decode_unbind_vppb_request(&unbind_vppb_request(0, 1, UnbindOption::SurpriseHotRemove)),
        Ok((0, 1, UnbindOption::SurpriseHotRemove))
    );
    assert!(decode_unbind_vppb_request(&[0, 1, 7]).is_err());
}
