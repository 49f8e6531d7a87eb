// SPDX-License-Identifier: GPL-2.0

//! Set LD Allocations (5402h) on the emulated multi-logical device, through the tunnel to its
//! port: allocations set and read back, refused when they exceed the device or name LDs it
//! does not have, malformed requests.

use super::*;
use swcci_proto::payload::ld::{ld_allocations_request, LdAllocations};
use swcci_proto::payload::tunnel::{encode_request, TunnelResponse};

const PAYLOAD: usize = 2048;

/// An emulated switch whose port 3 is an MLD with 2 LDs (2 GiB, all allocated at start).
fn fabric() -> Fabric {
    let cfg = FabricConfig {
        ports: 4,
        mld_port: Some(3),
        lds: 2,
        ..FabricConfig::default()
    };
    Fabric::new(cfg, 0x1234, 2)
}

/// Sends `op` with `input` to the MLD on port 3; returns its return code and output.
fn send(f: &mut Fabric, op: u16, input: &[u8]) -> (ReturnCode, Vec<u8>) {
    let mut req = vec![0u8; TUNNEL_HEADER_LEN + CCI_HEADER_LEN + input.len()];
    let n = encode_request(&mut req, 3, 0, 1, op, input).unwrap();
    match f.tunnel(Duration::ZERO, &req[..n], PAYLOAD) {
        FabricOutcome::Done(rc, out) => {
            assert!(rc.is_success(), "the tunnel itself: {rc}");
            let t = TunnelResponse::decode(&out).unwrap();
            (t.header.rc, t.payload.to_vec())
        }
        FabricOutcome::Background(_) => panic!("no background here"),
    }
}

fn set(f: &mut Fabric, start: u8, list: &[(u64, u64)]) -> (ReturnCode, Vec<u8>) {
    let list: Vec<LdAllocation> = list
        .iter()
        .map(|&(range1, range2)| LdAllocation { range1, range2 })
        .collect();
    let mut b = vec![0u8; SET_LD_ALLOCATIONS_HEADER + LD_ALLOCATION_ENTRY * list.len()];
    let n = encode_set_ld_allocations(&mut b, start, &list).unwrap();
    send(f, OP_SET_LD_ALLOCATIONS, &b[..n])
}

fn read(f: &mut Fabric) -> Vec<(u64, u64)> {
    let (rc, out) = send(f, OP_GET_LD_ALLOCATIONS, &ld_allocations_request(0, 8));
    assert!(rc.is_success());
    LdAllocations::decode(&out)
        .unwrap()
        .iter()
        .map(|(_, a)| (a.range1, a.range2))
        .collect()
}

#[test]
fn allocations_are_set_and_read_back() {
    let mut f = fabric();
    assert_eq!(read(&mut f), [(4, 0), (4, 0)]);
    // Shrink LD 1 to 512 MiB; its answer lists what was set.
    let (rc, out) = set(&mut f, 1, &[(2, 0)]);
    assert_eq!(rc, ReturnCode::Success);
    let d = SetLdAllocations::decode(&out).unwrap();
    assert_eq!(
        d.iter().collect::<Vec<_>>(),
        [(
            1,
            LdAllocation {
                range1: 2,
                range2: 0
            }
        )]
    );
    // Give LD 0 the 512 MiB freed, in range 2; both at once.
    assert_eq!(set(&mut f, 0, &[(4, 2), (2, 0)]).0, ReturnCode::Success);
    assert_eq!(read(&mut f), [(4, 2), (2, 0)]);
    assert_eq!(f.ld_allocations().len(), 2);
    let d = f.describe();
    assert_eq!(d["ports"][3]["device"]["lds"][0]["range2"], 2);
}

#[test]
fn allocations_beyond_the_device_are_refused_and_change_nothing() {
    let mut f = fabric();
    // 4 + 5 units of the 8 the device has.
    assert_eq!(set(&mut f, 1, &[(5, 0)]).0, ReturnCode::ResourcesExhausted);
    assert_eq!(
        set(&mut f, 0, &[(4, 1), (0, 0)]).0,
        ReturnCode::Success,
        "LD 0 grows to 5 units as LD 1 gives up its 4"
    );
    assert_eq!(set(&mut f, 0, &[(8, 1)]).0, ReturnCode::ResourcesExhausted);
    assert_eq!(read(&mut f), [(4, 1), (0, 0)]);
    // LDs the device does not have, an empty list, a short request.
    assert_eq!(set(&mut f, 2, &[(1, 0)]).0, ReturnCode::InvalidInput);
    assert_eq!(
        set(&mut f, 1, &[(1, 0), (1, 0)]).0,
        ReturnCode::InvalidInput
    );
    assert_eq!(set(&mut f, 0, &[]).0, ReturnCode::InvalidInput);
    assert_eq!(
        send(&mut f, OP_SET_LD_ALLOCATIONS, &[1, 0, 0, 0, 1]).0,
        ReturnCode::InvalidPayloadLength
    );
    assert_eq!(read(&mut f), [(4, 1), (0, 0)]);
    assert!(f
        .events
        .iter()
        .any(|e| e.contains("refused") && e.contains("Get LD Info 5400h")));
}
