// SPDX-License-Identifier: GPL-2.0

//! Property tests of every payload decoder, the effects classifier and the uapi structures:
//! arbitrary bytes never panic, and decoding succeeds exactly when the input holds the layout's
//! fixed part (and whatever its header announces).
//!
//! The number of cases per property comes from `SWCCI_PROPTEST_CASES` (default 2000), so CI
//! runs quickly and a long fuzzing run is `SWCCI_PROPTEST_CASES=1000000 cargo test --test
//! decoders_prop`.

use proptest::prelude::*;
use swcci_proto::effects::{classify, MAX_TUNNEL_DEPTH};
use swcci_proto::opcode;
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::dcd::{
    self, check_extents, covered, encode_extent_list, encode_extent_update,
    encode_host_region_config, AddRequest, DcRegion, DcdInfo, Extent, ExtentList,
    ExtentListRequest, ExtentUpdate, HostRegionConfig, HostRegionRequest, ReleaseFlags,
    ReleaseRequest, RemovalPolicy, SelectionPolicy, SetRegionConfig, CAPACITY_REQUEST_HEADER,
    DCD_INFO_LEN, EXTENT_LEN, EXTENT_LIST_HEADER, EXTENT_UPDATE_HEADER, HOST_REGION_HEADER,
    REGION_CONFIG_LEN, UPDATED_EXTENT_LEN,
};
use swcci_proto::payload::events::{
    clear_events_request, encode_event_records, encode_record, ClearEvents, CommonHeader,
    EventBody, EventRecord, EventRecords, GetEventsHeader, InterruptPolicy, InterruptSetting,
    MldEventType, MldPortEvent, PhysicalEventType, PhysicalSwitchEvent, VirtualEventType,
    VirtualSwitchEvent, CLEAR_EVENTS_HEADER_LEN, COMMON_HEADER_LEN, EVENT_DATA_LEN,
    EVENT_RECORD_LEN, GET_EVENTS_HEADER_LEN, INTERRUPT_POLICY_LEN, MLD_PORT_EVENT_UUID,
    PHYSICAL_SWITCH_EVENT_UUID, VIRTUAL_SWITCH_EVENT_UUID,
};
use swcci_proto::payload::firmware::{
    Activate, FwInfo, Transfer, ACTIVATE_LEN, FW_INFO_LEN, TRANSFER_HEADER_LEN,
};
use swcci_proto::payload::identify::{Identify, IDENTIFY_LEN};
use swcci_proto::payload::ld::{
    check_ld_allocations, encode_ld_allocations, encode_set_ld_allocations, Granularity,
    LdAllocation, LdAllocations, LdInfo, LdRule, SetLdAllocations, LD_ALLOCATIONS_HEADER,
    LD_ALLOCATION_ENTRY, LD_INFO_LEN, SET_LD_ALLOCATIONS_HEADER,
};
use swcci_proto::payload::logs::{
    Cel, SupportedLogs, Uuid, CEL_ENTRY, SUPPORTED_LOGS_HEADER, SUPPORTED_LOG_ENTRY,
};
use swcci_proto::payload::mctp::{self as mctp, CxlMessage, CxlMessageType};
use swcci_proto::payload::switch::{
    mask_bits, BindingStatus, ConnectedMode, ConnectedType, IdentifySwitch, Ltssm, PortConfigState,
    PortInfo, PortStates, VcsInfos, IDENTIFY_SWITCH_LEN, PORT_INFO_LEN, PORT_STATE_HEADER,
};
use swcci_proto::payload::tunnel::{
    encode_request, Category, CciHeader, TunnelRequest, TunnelResponse, CCI_HEADER_LEN,
    TUNNEL_HEADER_LEN,
};
use swcci_proto::rc::ReturnCode;
use swcci_proto::uapi::{
    get_cstr, put_cstr, CxlCommandInfo, CxlMemQueryCommands, CxlPayload, CxlSendCommand,
    SwcciBgPolicy, SwcciInfo, Wire,
};
use swcci_proto::wire::{DecodeError, Writer};

/// Cases per property: `SWCCI_PROPTEST_CASES`, default 2000.
fn cases() -> u32 {
    std::env::var("SWCCI_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2000)
}

/// `len` pseudo-random bytes from `seed` (splitmix64): much cheaper to generate than a vector
/// strategy with a value tree per byte, so large inputs do not dominate the run time. Such
/// inputs shrink by length and seed; byte-wise shrinking is left to the small inputs.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Arbitrary payloads of 0 to 4095 bytes: half small (shrinking byte by byte), half of any
/// size.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (0usize..4096, any::<u64>()).prop_map(|(len, seed)| noise(len, seed)),
    ]
}

/// Payloads around `len` bytes (so that boundaries are hit often).
fn bytes_near(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), len.saturating_sub(3)..len + 4)
}

/// Payloads whose first bytes are a small little-endian count (so that headers are often
/// satisfiable).
fn counted(max_count: u8) -> impl Strategy<Value = Vec<u8>> {
    (0..=max_count, 0usize..1024, any::<u64>()).prop_map(|(n, len, seed)| {
        let mut v = noise(len, seed);
        for (b, x) in v.iter_mut().zip([n, 0]) {
            *b = x;
        }
        v
    })
}

/// A truncation error must point past the end of the input.
fn truncated_past_end(e: &DecodeError, len: usize) -> bool {
    match *e {
        DecodeError::Truncated {
            offset, need, have, ..
        } => have <= len && offset.saturating_add(need) > have,
        DecodeError::Invalid { .. } => true,
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Whether a Get Virtual CXL Switch Info output is complete for `start` and `limit`.
fn vcs_model(b: &[u8], start: u8, limit: u8) -> Option<Vec<usize>> {
    if b.len() < 4 {
        return None;
    }
    let mut listed = Vec::new();
    let mut pos = 4usize;
    for _ in 0..b[0] {
        let num = *b.get(pos + 3)?;
        let n = usize::from(num.saturating_sub(start).min(limit));
        pos += 4 + 4 * n;
        if pos > b.len() {
            return None;
        }
        listed.push(n);
    }
    Some(listed)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Payloads whose little-endian u32 at `at` is a small count (so that lists are often
/// complete).
fn counted32(at: usize, max_count: u32) -> impl Strategy<Value = Vec<u8>> {
    (0..=max_count, 0usize..2048, any::<u64>()).prop_map(move |(n, len, seed)| {
        let mut v = noise(len, seed);
        if let Some(f) = v.get_mut(at..at + 4) {
            f.copy_from_slice(&n.to_le_bytes());
        }
        v
    })
}

fn extent() -> impl Strategy<Value = Extent> {
    (any::<u64>(), any::<u64>(), any::<[u8; 16]>(), any::<u16>()).prop_map(|(d, l, t, s)| Extent {
        start_dpa: d,
        length: l,
        tag: Uuid(t),
        shared_seq: s,
    })
}

/// Small extents on a 1 KiB grid, where overlaps, misalignment and region edges are common.
fn small_extent() -> impl Strategy<Value = Extent> {
    (0u64..64, 0u64..12).prop_map(|(d, l)| Extent::new(d * 512, l * 512))
}

/// Up to 4 regions laid out one after the other on the same grid.
fn small_regions() -> impl Strategy<Value = Vec<DcRegion>> {
    prop::collection::vec((0u64..4, 1u64..16, 0u32..3), 0..4).prop_map(|v| {
        let mut base = 0u64;
        v.into_iter()
            .map(|(gap, len, shift)| {
                base += gap * 1024;
                let r = DcRegion {
                    base,
                    decode_len: 0,
                    length: len * 1024,
                    block_size: 512u64 << shift,
                    flags: 0,
                    sanitize_on_release: false,
                };
                base += r.length;
                r
            })
            .collect()
    })
}

fn roundtrip<T: Wire + PartialEq + std::fmt::Debug>(b: &[u8]) -> Result<(), TestCaseError> {
    match T::from_bytes(b) {
        Some(v) => {
            prop_assert_eq!(b.len(), T::SIZE);
            let mut out = vec![0u8; T::SIZE];
            prop_assert!(v.to_bytes(&mut out).is_some());
            prop_assert_eq!(&out[..], b);
            prop_assert!(v.to_bytes(&mut vec![0u8; T::SIZE - 1]).is_none());
            prop_assert_eq!(T::from_bytes(&out), Some(v));
        }
        None => prop_assert_ne!(b.len(), T::SIZE),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn identify(b in prop_oneof![bytes(), bytes_near(IDENTIFY_LEN)]) {
        match Identify::decode(&b) {
            Ok(id) => {
                prop_assert!(b.len() >= IDENTIFY_LEN);
                prop_assert_eq!(id.vendor_id, u16_at(&b, 0).unwrap_or(0));
                prop_assert_eq!(Identify::decode(&b[..IDENTIFY_LEN]), Ok(id));
                let _ = (id.max_msg_size(), id.component_type.to_string());
            }
            Err(e) => {
                prop_assert!(b.len() < IDENTIFY_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn identify_switch(b in prop_oneof![bytes(), bytes_near(IDENTIFY_SWITCH_LEN)]) {
        match IdentifySwitch::decode(&b) {
            Ok(s) => {
                prop_assert!(b.len() >= IDENTIFY_SWITCH_LEN);
                let ports: Vec<u8> = s.active_port_ids().collect();
                let set: u32 = s.active_ports.iter().map(|x| x.count_ones()).sum();
                prop_assert_eq!(ports.len() as u32, set);
                prop_assert!(ports.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(s.active_vcs_ids().count() as u32,
                    s.active_vcs.iter().map(|x| x.count_ones()).sum::<u32>());
                prop_assert_eq!(IdentifySwitch::decode(&b[..IDENTIFY_SWITCH_LEN]), Ok(s));
            }
            Err(e) => {
                prop_assert!(b.len() < IDENTIFY_SWITCH_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn mask_bits_match_the_mask(mask in prop::array::uniform32(any::<u8>())) {
        for id in mask_bits(&mask) {
            prop_assert!(mask[usize::from(id / 8)] & (1 << (id % 8)) != 0);
        }
    }

    #[test]
    fn port_states(b in prop_oneof![bytes(), counted(64)]) {
        let need = b.first().map(|&n| PORT_STATE_HEADER + usize::from(n) * PORT_INFO_LEN);
        match PortStates::decode(&b) {
            Ok(ps) => {
                let need = need.unwrap_or(usize::MAX);
                prop_assert!(b.len() >= need);
                prop_assert_eq!(ps.len(), usize::from(b[0]));
                prop_assert_eq!(ps.is_empty(), b[0] == 0);
                let ports: Vec<PortInfo> = ps.iter().collect();
                prop_assert_eq!(ports.len(), ps.len());
                for (i, p) in ports.iter().enumerate() {
                    prop_assert_eq!(p.port_id, b[PORT_STATE_HEADER + i * PORT_INFO_LEN]);
                    let _ = (p.config_state.to_string(), p.connected_mode.to_string(),
                        p.connected_type.to_string(), p.ltssm.to_string());
                }
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(PORT_STATE_HEADER));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn port_info(b in prop_oneof![bytes(), bytes_near(PORT_INFO_LEN)]) {
        match PortInfo::decode(&b) {
            Ok(p) => {
                prop_assert!(b.len() >= PORT_INFO_LEN);
                prop_assert_eq!(p.config_state.raw(), b[1] & 0xf);
                prop_assert_eq!(p.supported_ld_count, b[15]);
                prop_assert_eq!(p.link_state, u16_at(&b, 13).unwrap_or(0));
            }
            Err(e) => {
                prop_assert!(b.len() < PORT_INFO_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn vcs_infos(
        b in prop_oneof![bytes(), counted(8)],
        start in prop_oneof![0u8..4, any::<u8>()],
        limit in prop_oneof![0u8..4, any::<u8>()],
    ) {
        let model = vcs_model(&b, start, limit);
        match VcsInfos::decode(&b, start, limit) {
            Ok(v) => {
                let listed = model.unwrap_or_default();
                prop_assert_eq!(v.len(), usize::from(b[0]));
                prop_assert_eq!(v.is_empty(), b[0] == 0);
                let blocks: Vec<_> = v.iter().collect();
                prop_assert_eq!(blocks.len(), listed.len());
                for (blk, n) in blocks.iter().zip(&listed) {
                    let _ = blk.state.to_string();
                    let vppbs: Vec<_> = blk.vppbs().collect();
                    prop_assert_eq!(vppbs.len(), *n);
                    for (i, (id, info)) in vppbs.iter().enumerate() {
                        prop_assert_eq!(usize::from(*id), usize::from(start) + i);
                        let _ = info.status.to_string();
                    }
                }
            }
            Err(e) => {
                prop_assert!(model.is_none());
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn supported_logs(b in prop_oneof![bytes(), counted(16)]) {
        let need = u16_at(&b, 0)
            .map(|n| SUPPORTED_LOGS_HEADER + usize::from(n) * SUPPORTED_LOG_ENTRY);
        match SupportedLogs::decode(&b) {
            Ok(logs) => {
                let need = need.unwrap_or(usize::MAX);
                prop_assert!(b.len() >= need);
                prop_assert_eq!(logs.len(), usize::from(u16_at(&b, 0).unwrap_or(0)));
                let all: Vec<_> = logs.iter().collect();
                prop_assert_eq!(all.len(), logs.len());
                for l in &all {
                    // The first entry with this UUID decides.
                    let first = all.iter().find(|x| x.uuid == l.uuid).map(|x| x.size);
                    prop_assert_eq!(logs.find(&l.uuid), first);
                    let _ = l.uuid.to_string();
                }
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(SUPPORTED_LOGS_HEADER));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn cel(b in bytes(), op in any::<u16>()) {
        let cel = Cel::new(&b);
        prop_assert_eq!(cel.len(), b.len() / CEL_ENTRY);
        prop_assert_eq!(cel.is_empty(), b.len() < CEL_ENTRY);
        let entries: Vec<_> = cel.iter().collect();
        prop_assert_eq!(entries.len(), cel.len());
        prop_assert_eq!(cel.find(op), entries.iter().copied().find(|e| e.opcode == op));
        // `find` returns the first entry with the opcode (checked for a sample of entries;
        // checking all would be quadratic).
        for e in entries.iter().step_by(entries.len() / 8 + 1) {
            let first = entries.iter().copied().find(|x| x.opcode == e.opcode);
            prop_assert_eq!(cel.find(e.opcode), first);
            let _ = e.no_effects();
        }
    }

    #[test]
    fn bg_op_status(b in prop_oneof![bytes(), bytes_near(8)]) {
        match BgOpStatus::decode(&b) {
            Ok(s) => {
                prop_assert!(b.len() >= 8);
                prop_assert_eq!(s.running, b[0] & 1 != 0);
                prop_assert_eq!(s.percent, b[0] >> 1);
                let _ = s.rc.to_string();
            }
            Err(e) => {
                prop_assert!(b.len() < 8);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn cci_header(b in prop_oneof![bytes(), bytes_near(CCI_HEADER_LEN)]) {
        match CciHeader::decode(&b) {
            Ok(h) => {
                prop_assert!(b.len() >= CCI_HEADER_LEN);
                // Re-encoding and decoding gives the same header.
                let mut buf = [0u8; CCI_HEADER_LEN];
                let mut w = Writer::new(&mut buf);
                prop_assert!(h.encode(&mut w).is_ok());
                prop_assert_eq!(CciHeader::decode(&buf), Ok(h));
            }
            Err(e) => {
                prop_assert!(b.len() < CCI_HEADER_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn tunnel_request(b in bytes()) {
        // Complete iff the command size fits, covers a CCI header, and matches the header's
        // payload length.
        let model = u16_at(&b, 2).map(usize::from).and_then(|size| {
            let msg = b.get(TUNNEL_HEADER_LEN..TUNNEL_HEADER_LEN + size)?;
            let len = u32::from_le_bytes([*msg.get(5)?, *msg.get(6)?, *msg.get(7)?, 0]) & 0x0f_ffff;
            (size >= CCI_HEADER_LEN && len as usize == size - CCI_HEADER_LEN).then_some(size)
        });
        match TunnelRequest::decode(&b) {
            Ok(t) => {
                prop_assert_eq!(Some(CCI_HEADER_LEN + t.payload.len()), model);
                prop_assert_eq!(t.payload.len(), t.header.payload_len as usize);
            }
            Err(e) => {
                prop_assert!(model.is_none());
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn tunnel_request_round_trip(
        target in any::<u8>(), kind in any::<u8>(), tag in any::<u8>(), op in any::<u16>(),
        payload in bytes(),
    ) {
        let mut buf = vec![0u8; TUNNEL_HEADER_LEN + CCI_HEADER_LEN + payload.len()];
        let n = encode_request(&mut buf, target, kind, tag, op, &payload);
        prop_assert_eq!(n, Ok(buf.len()));
        let t = TunnelRequest::decode(&buf);
        prop_assert!(t.is_ok());
        if let Ok(t) = t {
            prop_assert_eq!((t.target, t.target_type, t.header.tag, t.header.opcode), (target, kind, tag, op));
            prop_assert_eq!(t.payload, &payload[..]);
        }
        // Too small a buffer is an error, not a panic.
        let short = buf.len() - 1;
        prop_assert!(encode_request(&mut buf[..short], target, kind, tag, op, &payload).is_err());
    }

    #[test]
    fn tunnel_response(b in bytes()) {
        let model = u16_at(&b, 0).map(usize::from).and_then(|len| {
            let msg = b.get(TUNNEL_HEADER_LEN..TUNNEL_HEADER_LEN + len)?;
            let plen = u32::from_le_bytes([*msg.get(5)?, *msg.get(6)?, *msg.get(7)?, 0]) & 0x0f_ffff;
            (len >= CCI_HEADER_LEN && plen as usize <= len - CCI_HEADER_LEN).then_some(plen as usize)
        });
        match TunnelResponse::decode(&b) {
            Ok(r) => {
                prop_assert_eq!(Some(r.payload.len()), model);
                prop_assert_eq!(r.payload.len(), r.header.payload_len as usize);
            }
            Err(e) => {
                prop_assert!(model.is_none());
                let truncated = matches!(e, DecodeError::Truncated { .. });
                prop_assert!(truncated, "{:?}", e);
            }
        }
    }

    #[test]
    fn tunnel_response_round_trip(
        tag in any::<u8>(), op in any::<u16>(), rc in any::<u16>(), bg in any::<bool>(),
        payload in bytes(), extra in 0usize..8, cut in 1usize..16,
    ) {
        let header = CciHeader {
            category: Category::Response,
            tag,
            opcode: op,
            payload_len: payload.len() as u32,
            background: bg,
            rc: ReturnCode::from_raw(rc),
            vendor_status: 0,
        };
        let mut msg = vec![0u8; CCI_HEADER_LEN];
        prop_assert!(header.encode(&mut Writer::new(&mut msg)).is_ok());
        msg.extend_from_slice(&payload);
        msg.extend(std::iter::repeat_n(0xa5, extra)); // after the announced payload
        let mut out = (msg.len() as u16).to_le_bytes().to_vec();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&msg);
        let r = TunnelResponse::decode(&out);
        prop_assert_eq!(r.map(|r| (r.header, r.payload)), Ok((header, &payload[..])));
        // Cutting the buffer short, or announcing a shorter message, is a truncation.
        let short = out.len().saturating_sub(cut);
        prop_assert!(TunnelResponse::decode(&out[..short]).is_err() || extra >= cut);
        let shorter = (msg.len().saturating_sub(extra + cut) as u16).to_le_bytes();
        out[..2].copy_from_slice(&shorter);
        prop_assert!(TunnelResponse::decode(&out).is_err());
    }

    #[test]
    fn effects_classify(op in any::<u16>(), b in bytes(), cel in bytes()) {
        let cel = Cel::new(&cel);
        for c in [None, Some(&cel)] {
            let j = classify(op, &b, c);
            prop_assert!(j.depth <= MAX_TUNNEL_DEPTH);
            if op != opcode::TUNNEL {
                prop_assert_eq!((j.opcode, j.depth), (op, 0));
            }
            if opcode::is_vendor_specific(j.opcode)
                || (!opcode::spec_read_only(j.opcode) && opcode::info(j.opcode).is_some())
            {
                prop_assert!(j.effectful);
            }
            if opcode::spec_read_only(j.opcode) && j.opcode != opcode::TUNNEL {
                prop_assert!(!j.effectful);
            }
            let _ = j.reason.to_string();
        }
    }

    #[test]
    fn effects_classify_nested(
        levels in 0u8..6, inner in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64),
        cel in bytes(),
    ) {
        let mut msg = payload;
        let mut op = inner;
        for _ in 0..levels {
            let mut buf = vec![0u8; TUNNEL_HEADER_LEN + CCI_HEADER_LEN + msg.len()];
            let n = encode_request(&mut buf, 0, 0, 0, op, &msg);
            prop_assert_eq!(n, Ok(buf.len()));
            msg = buf;
            op = opcode::TUNNEL;
        }
        let j = classify(op, &msg, Some(&Cel::new(&cel)));
        if levels > MAX_TUNNEL_DEPTH || (levels == MAX_TUNNEL_DEPTH && inner == opcode::TUNNEL) {
            prop_assert!(j.effectful);
        } else if inner != opcode::TUNNEL {
            prop_assert_eq!((j.opcode, j.depth), (inner, levels));
            // Behind a tunnel, an opcode the specification does not list is never judged by
            // the CEL.
            if levels > 0 && opcode::info(inner).is_none() {
                prop_assert!(j.effectful);
            }
        }
    }

    #[test]
    fn fw_info(b in prop_oneof![bytes(), bytes_near(FW_INFO_LEN)]) {
        match FwInfo::decode(&b) {
            Ok(i) => {
                prop_assert!(b.len() >= FW_INFO_LEN);
                prop_assert!(i.active_slot <= 7 && i.staged_slot <= 7);
                for slot in 0..=5 {
                    let _ = i.revision(slot);
                }
                // What decodes re-encodes to the same fields (reserved bytes become zero).
                let mut out = [0u8; FW_INFO_LEN];
                if i.encode(&mut out).is_ok() {
                    prop_assert_eq!(FwInfo::decode(&out), Ok(i));
                    prop_assert_eq!(&out[0x10..], &b[0x10..FW_INFO_LEN]);
                } else {
                    prop_assert!(i.active_slot > 4 || i.staged_slot > 4);
                }
            }
            Err(e) => {
                prop_assert!(b.len() < FW_INFO_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn transfer_fw(b in prop_oneof![bytes(), bytes_near(TRANSFER_HEADER_LEN)]) {
        match Transfer::decode(&b) {
            Ok(t) => {
                prop_assert!(b.len() >= TRANSFER_HEADER_LEN && b[0] <= 4);
                prop_assert_eq!(t.data, &b[TRANSFER_HEADER_LEN..]);
                let mut out = vec![0u8; b.len()];
                if let Ok(n) = t.encode(&mut out) {
                    prop_assert_eq!(n, b.len());
                    prop_assert_eq!(Transfer::decode(&out), Ok(t));
                }
            }
            Err(_) => prop_assert!(b.len() < TRANSFER_HEADER_LEN || b[0] > 4),
        }
    }

    #[test]
    fn activate_fw(b in prop_oneof![bytes(), bytes_near(ACTIVATE_LEN)]) {
        match Activate::decode(&b) {
            Ok(a) => prop_assert_eq!(&a.encode()[..], &b[..ACTIVATE_LEN]),
            Err(_) => prop_assert!(b.len() < ACTIVATE_LEN || b[0] > 1),
        }
    }

    #[test]
    fn ld_info(b in prop_oneof![bytes(), bytes_near(LD_INFO_LEN)]) {
        match LdInfo::decode(&b) {
            Ok(i) => {
                let mut out = [0u8; LD_INFO_LEN];
                prop_assert_eq!(i.encode(&mut out), Ok(LD_INFO_LEN));
                prop_assert_eq!(&out[..], &b[..LD_INFO_LEN]);
            }
            Err(e) => {
                prop_assert!(b.len() < LD_INFO_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn ld_allocations(b in prop_oneof![bytes(), counted(8)]) {
        match LdAllocations::decode(&b) {
            Ok(a) => {
                let n = LD_ALLOCATIONS_HEADER + usize::from(b[3]) * LD_ALLOCATION_ENTRY;
                prop_assert!(b.len() >= n);
                let list: Vec<(u8, LdAllocation)> = a.iter().collect();
                prop_assert!(list.len() <= a.len());
                if usize::from(a.start_ld) + a.len() <= 256 {
                    prop_assert_eq!(list.len(), a.len());
                    let entries: Vec<LdAllocation> = list.iter().map(|e| e.1).collect();
                    let mut out = vec![0u8; n];
                    prop_assert_eq!(
                        encode_ld_allocations(&mut out, a.number_of_lds, a.granularity,
                            a.start_ld, &entries),
                        Ok(n)
                    );
                    prop_assert_eq!(&out[..], &b[..n]);
                }
            }
            Err(_) => prop_assert!(
                b.len() < LD_ALLOCATIONS_HEADER
                    || b.len() < LD_ALLOCATIONS_HEADER + usize::from(b[3]) * LD_ALLOCATION_ENTRY
            ),
        }
    }

    #[test]
    fn uapi_from_bytes(b in prop_oneof![
        bytes(),
        bytes_near(CxlCommandInfo::SIZE),
        bytes_near(CxlSendCommand::SIZE),
        bytes_near(SwcciInfo::SIZE),
        bytes_near(CxlPayload::SIZE),
    ]) {
        roundtrip::<CxlCommandInfo>(&b)?;
        roundtrip::<CxlMemQueryCommands>(&b)?;
        roundtrip::<CxlPayload>(&b)?;
        roundtrip::<CxlSendCommand>(&b)?;
        roundtrip::<SwcciInfo>(&b)?;
        roundtrip::<SwcciBgPolicy>(&b)?;
        let s = get_cstr(&b);
        prop_assert!(!s.contains(&0));
        let mut field = [0xffu8; 32];
        put_cstr(&mut field, &b);
        prop_assert_eq!(field[31], 0);
    }

    #[test]
    fn mctp_cxl_message(b in bytes()) {
        // Complete iff the type byte is 07h or 08h, the body starts with a header of a defined
        // category, and exactly its payload length of bytes follows it.
        let t = b.first().copied().unwrap_or(0);
        let body = b.get(1..).unwrap_or(&[]);
        let model = (|| {
            CxlMessageType::from_raw(t)?;
            let h = body.get(..CCI_HEADER_LEN)?;
            let len = u32::from_le_bytes([h[5], h[6], h[7], 0]) & 0x0f_ffff;
            (h[0] & 0xf <= 1 && body.len() == mctp::CXL_MESSAGE_OVERHEAD + len as usize).then_some(len)
        })();
        match CxlMessage::decode(t, body) {
            Ok(m) => {
                prop_assert_eq!(Some(m.payload.len() as u32), model);
                prop_assert_eq!(m.header.payload_len as usize, m.payload.len());
            }
            Err(_) => prop_assert!(model.is_none()),
        }
    }

    #[test]
    fn mctp_cxl_message_round_trip(
        cci in any::<bool>(), tag in any::<u8>(), op in any::<u16>(), rc in any::<u16>(),
        vendor in any::<u16>(), bg in any::<bool>(), response in any::<bool>(), payload in bytes(),
    ) {
        let t = if cci { CxlMessageType::Cci } else { CxlMessageType::FmApi };
        let header = CciHeader {
            category: if response { Category::Response } else { Category::Request },
            tag,
            opcode: op,
            payload_len: 0,
            background: bg,
            rc: ReturnCode::from_raw(rc),
            vendor_status: vendor,
        };
        let mut buf = vec![0u8; mctp::CXL_MESSAGE_OVERHEAD + payload.len()];
        prop_assert_eq!(mctp::encode(&mut buf, &header, &payload), Ok(buf.len()));
        let m = CxlMessage::decode(t.raw(), &buf);
        prop_assert!(m.is_ok());
        if let Ok(m) = m {
            prop_assert_eq!(m.msg_type, t);
            prop_assert_eq!(m.header, CciHeader { payload_len: payload.len() as u32, ..header });
            prop_assert_eq!(m.payload, &payload[..]);
            prop_assert_eq!(m.answers(t, op, tag), response);
        }
        let short = buf.len() - 1;
        prop_assert!(mctp::encode(&mut buf[..short], &header, &payload).is_err());
    }

    #[test]
    fn dcd_info(b in prop_oneof![bytes(), bytes_near(DCD_INFO_LEN)]) {
        match DcdInfo::decode(&b) {
            Ok(i) => {
                prop_assert!(b.len() >= DCD_INFO_LEN);
                let mut out = [0u8; DCD_INFO_LEN];
                prop_assert_eq!(i.encode(&mut out), Ok(DCD_INFO_LEN));
                prop_assert_eq!(DcdInfo::decode(&out), Ok(i));
                for p in SelectionPolicy::ALL {
                    prop_assert_eq!(i.supports_selection(p), i.selection_policies & p.bit() != 0);
                }
                for p in RemovalPolicy::ALL {
                    prop_assert_eq!(i.supports_removal(p), i.removal_policies & p.bit() != 0);
                }
                for r in 0..10u8 {
                    let sizes: Vec<u64> = dcd::block_sizes(i.block_size_mask(r)).collect();
                    prop_assert_eq!(sizes.len() as u32, i.block_size_mask(r).count_ones());
                }
            }
            Err(e) => {
                prop_assert!(b.len() < DCD_INFO_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn host_region_config(b in prop_oneof![bytes(), counted(8)], start in any::<u8>()) {
        let need = b.get(3).map(|&n| HOST_REGION_HEADER + usize::from(n) * REGION_CONFIG_LEN);
        match HostRegionConfig::decode(&b, start) {
            Ok(c) => {
                let need = need.unwrap_or(usize::MAX);
                prop_assert!(b.len() >= need);
                prop_assert_eq!(c.len(), usize::from(b[3]));
                prop_assert_eq!(c.counts.is_some(), b.len() >= need + 16);
                let regions: Vec<(u8, DcRegion)> = c.iter().collect();
                prop_assert_eq!(regions.len(), c.len().min(256 - usize::from(start)));
                // Re-encoding gives the same fields (reserved bytes become zero).
                let list: Vec<DcRegion> = regions.iter().map(|r| r.1).collect();
                let mut out = vec![0u8; need + 16];
                let n = encode_host_region_config(&mut out, c.host_id, c.num_regions, &list,
                    c.counts.as_ref());
                prop_assert!(n.is_ok());
                let back = HostRegionConfig::decode(&out[..n.unwrap_or(0)], start);
                prop_assert!(back.is_ok());
                if let Ok(back) = back {
                    prop_assert_eq!(back.counts, c.counts);
                    prop_assert_eq!(back.iter().collect::<Vec<_>>(), regions);
                }
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(HOST_REGION_HEADER));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn fixed_dcd_requests_round_trip(
        host in any::<u16>(), a in any::<u8>(), c in any::<u8>(), size in any::<u64>(),
        san in any::<bool>(), n in any::<u32>(), s in any::<u32>(),
    ) {
        let r = HostRegionRequest { host_id: host, region_count: a, start_region: c };
        prop_assert_eq!(HostRegionRequest::decode(&r.encode()), Ok(r));
        let r = SetRegionConfig { region: a, block_size: size, sanitize_on_release: san };
        prop_assert_eq!(SetRegionConfig::decode(&r.encode()), Ok(r));
        let r = ExtentListRequest { host_id: host, count: n, start: s };
        prop_assert_eq!(ExtentListRequest::decode(&r.encode()), Ok(r));
        let f = ReleaseFlags::from_raw(a);
        prop_assert_eq!(f.raw(), a & 0x3f);
        prop_assert_eq!(SelectionPolicy::from_raw(a).raw(), a & 0xf);
    }

    #[test]
    fn extent_list(b in prop_oneof![bytes(), counted32(8, 8)]) {
        let need = u32_at(&b, 8)
            .map(|n| EXTENT_LIST_HEADER.saturating_add((n as usize).saturating_mul(EXTENT_LEN)));
        match ExtentList::decode(&b) {
            Ok(l) => {
                let need = need.unwrap_or(usize::MAX);
                prop_assert!(b.len() >= need);
                let ext: Vec<Extent> = l.extents.iter().collect();
                prop_assert_eq!(ext.len(), l.extents.len());
                prop_assert_eq!(Some(ext.len() as u32), u32_at(&b, 8));
                let mut out = vec![0u8; need];
                prop_assert_eq!(
                    encode_extent_list(&mut out, l.host_id, l.start, l.total, l.generation, &ext),
                    Ok(need)
                );
                let back = ExtentList::decode(&out);
                prop_assert!(back.is_ok());
                if let Ok(back) = back {
                    prop_assert_eq!((back.host_id, back.start, back.total, back.generation),
                        (l.host_id, l.start, l.total, l.generation));
                    prop_assert_eq!(back.extents.iter().collect::<Vec<_>>(), ext);
                }
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(EXTENT_LIST_HEADER));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn capacity_requests_round_trip(
        host in any::<u16>(), policy in any::<u8>(), region in any::<u8>(), length in any::<u64>(),
        tag in any::<[u8; 16]>(), extents in prop::collection::vec(extent(), 0..8),
    ) {
        let add = AddRequest {
            host_id: host,
            policy: SelectionPolicy::from_raw(policy),
            region,
            length,
            tag: Uuid(tag),
        };
        let size = CAPACITY_REQUEST_HEADER + extents.len() * EXTENT_LEN;
        let mut b = vec![0u8; size];
        prop_assert_eq!(add.encode(&mut b, &extents), Ok(size));
        let d = AddRequest::decode(&b);
        prop_assert!(d.is_ok());
        if let Ok((a, x)) = d {
            prop_assert_eq!(a, add);
            prop_assert_eq!(x.iter().collect::<Vec<_>>(), extents.clone());
        }
        prop_assert!(AddRequest::decode(&b[..size - 1]).is_err());
        prop_assert!(add.encode(&mut b[..size - 1], &extents).is_err());
        let rel = ReleaseRequest {
            host_id: host,
            flags: ReleaseFlags::from_raw(policy),
            length,
            tag: Uuid(tag),
        };
        prop_assert_eq!(rel.encode(&mut b, &extents), Ok(size));
        let d = ReleaseRequest::decode(&b);
        prop_assert!(d.is_ok());
        if let Ok((r, x)) = d {
            prop_assert_eq!(r, rel);
            prop_assert_eq!(x.len(), extents.len());
        }
    }

    #[test]
    fn capacity_requests_decode(b in prop_oneof![bytes(), counted32(0x1c, 6)]) {
        let need = u32_at(&b, 0x1c).map(|n| {
            CAPACITY_REQUEST_HEADER.saturating_add((n as usize).saturating_mul(EXTENT_LEN))
        });
        let ok = need.is_some_and(|n| b.len() >= n);
        prop_assert_eq!(AddRequest::decode(&b).is_ok(), ok);
        prop_assert_eq!(ReleaseRequest::decode(&b).is_ok(), ok);
    }

    #[test]
    fn extent_update(
        flags in any::<u8>(),
        list in prop::collection::vec((any::<u64>(), any::<u64>()), 0..8),
        b in prop_oneof![bytes(), counted32(0, 6)],
    ) {
        let size = EXTENT_UPDATE_HEADER + list.len() * UPDATED_EXTENT_LEN;
        let mut out = vec![0u8; size];
        prop_assert_eq!(encode_extent_update(&mut out, flags, &list), Ok(size));
        let u = ExtentUpdate::decode(&out);
        prop_assert!(u.is_ok());
        if let Ok(u) = u {
            prop_assert_eq!(u.flags, flags);
            prop_assert_eq!(u.iter().collect::<Vec<_>>(), list);
        }
        let need = u32_at(&b, 0).map(|n| {
            EXTENT_UPDATE_HEADER.saturating_add((n as usize).saturating_mul(UPDATED_EXTENT_LEN))
        });
        prop_assert_eq!(ExtentUpdate::decode(&b).is_ok(), need.is_some_and(|n| b.len() >= n));
    }

    #[test]
    fn extent_rules_model(
        extents in prop::collection::vec(small_extent(), 0..6),
        regions in small_regions(),
        named in prop::option::of(0u8..5),
    ) {
        let r = check_extents(&extents, &regions, named);
        // The model: each extent non-empty, inside one region (the named one, if any), on its
        // block size from the region's base; no two overlap.
        let fine = |e: &Extent| {
            e.length > 0
                && regions.iter().enumerate().any(|(i, g)| {
                    e.start_dpa >= g.base
                        && e.start_dpa + e.length <= g.base + g.length
                        && (e.start_dpa - g.base).is_multiple_of(g.block_size)
                        && e.length.is_multiple_of(g.block_size)
                        && named.is_none_or(|n| usize::from(n) == i)
                })
        };
        let disjoint = extents.iter().enumerate().all(|(i, a)| {
            extents.iter().skip(i + 1).all(|b| {
                a.start_dpa + a.length <= b.start_dpa || b.start_dpa + b.length <= a.start_dpa
            })
        });
        prop_assert_eq!(r.is_ok(), extents.iter().all(fine) && disjoint, "{:?}", r);
        if let Err(rule) = r {
            prop_assert!(!rule.to_string().is_empty());
        }
    }

    #[test]
    fn coverage_model(
        held in prop::collection::vec(small_extent(), 0..6),
        dpa in 0u64..40, len in 0u64..12,
    ) {
        let (dpa, len) = (dpa * 512, len * 512);
        let byte_held = |x: u64| held.iter().any(|h| x >= h.start_dpa && x < h.start_dpa + h.length);
        let model = (0..len / 512).all(|k| byte_held(dpa + k * 512));
        prop_assert_eq!(covered(dpa, len, &held), model);
    }

    #[test]
    fn set_ld_allocations_round_trip(
        start in any::<u8>(), list in prop::collection::vec((any::<u64>(), any::<u64>()), 0..8),
        b in prop_oneof![bytes(), counted(8)],
    ) {
        let list: Vec<LdAllocation> =
            list.into_iter().map(|(range1, range2)| LdAllocation { range1, range2 }).collect();
        let size = SET_LD_ALLOCATIONS_HEADER + list.len() * LD_ALLOCATION_ENTRY;
        let mut out = vec![0u8; size];
        prop_assert_eq!(encode_set_ld_allocations(&mut out, start, &list), Ok(size));
        let d = SetLdAllocations::decode(&out);
        prop_assert!(d.is_ok());
        if let Ok(d) = d {
            prop_assert_eq!(d.start_ld, start);
            let got: Vec<LdAllocation> = d.iter().map(|e| e.1).collect();
            let n = list.len().min(256 - usize::from(start));
            prop_assert_eq!(&got[..], &list[..n]);
        }
        let need = b.first().map(|&n| SET_LD_ALLOCATIONS_HEADER + usize::from(n) * LD_ALLOCATION_ENTRY);
        prop_assert_eq!(
            SetLdAllocations::decode(&b).is_ok(),
            need.is_some_and(|n| b.len() >= n)
        );
    }

    #[test]
    fn ld_allocation_rules_model(
        cur in prop::collection::vec((0u64..8, 0u64..8), 1..6),
        start in 0u8..6, new in prop::collection::vec((0u64..8, 0u64..8), 0..4),
        memory_units in 0u64..40,
    ) {
        let g = Granularity::Mib256;
        let unit = 256u64 << 20;
        let current: Vec<(u8, LdAllocation)> = cur.iter().enumerate()
            .map(|(i, &(a, b))| (i as u8, LdAllocation { range1: a, range2: b })).collect();
        let new: Vec<LdAllocation> =
            new.into_iter().map(|(range1, range2)| LdAllocation { range1, range2 }).collect();
        let lds = current.len() as u16;
        let r = check_ld_allocations(memory_units * unit, lds, g, &current, start, &new);
        let end = usize::from(start) + new.len();
        let total: u64 = current.iter()
            .filter(|(ld, _)| usize::from(*ld) < usize::from(start) || usize::from(*ld) >= end)
            .map(|(_, a)| a.range1 + a.range2)
            .chain(new.iter().map(|a| a.range1 + a.range2))
            .sum();
        let want = if new.is_empty() {
            Err(LdRule::NoLds)
        } else if end > usize::from(lds) {
            Err(LdRule::NoSuchLd { start, count: new.len(), lds })
        } else if total > memory_units {
            Err(LdRule::ExceedsDevice { total: total * unit, memory: memory_units * unit })
        } else {
            Ok(total * unit)
        };
        prop_assert_eq!(r, want);
    }
}

/// Common Event Record headers with any field values (flags within their 24 bits).
fn common_header() -> impl Strategy<Value = CommonHeader> {
    (
        prop::array::uniform16(any::<u8>()),
        any::<u8>(),
        0u32..(1 << 24),
        (any::<u16>(), any::<u16>(), any::<u64>()),
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>()),
    )
        .prop_map(
            |(uuid, length, flags, (handle, related_handle, timestamp), (c, s, ld, head))| {
                CommonHeader {
                    uuid: Uuid(uuid),
                    length,
                    flags,
                    handle,
                    related_handle,
                    timestamp,
                    maint_op_class: c,
                    maint_op_subclass: s,
                    ld_id: ld,
                    head_id: head,
                }
            },
        )
}

/// Port state as a Physical Switch Event Record carries it: 4-bit state and mode, 6-bit
/// widths and speeds.
fn record_port(port_id: u8) -> impl Strategy<Value = PortInfo> {
    (
        (0u8..16, 0u8..16, any::<u8>(), any::<u8>()),
        (0u8..64, 0u8..64, 0u8..64, 0u8..64, 0u8..64),
        (any::<u8>(), any::<u8>(), any::<u16>()),
    )
        .prop_map(
            move |(
                (state, mode, kind, modes),
                (maxw, negw, speeds, maxs, curs),
                (l, lane, flags),
            )| {
                PortInfo {
                    port_id,
                    config_state: PortConfigState::from_raw(state),
                    connected_mode: ConnectedMode::from_raw(mode),
                    connected_type: ConnectedType::from_raw(kind),
                    supported_cxl_modes: modes,
                    max_link_width: maxw,
                    negotiated_link_width: negw,
                    supported_speeds: speeds,
                    max_link_speed: maxs,
                    current_link_speed: curs,
                    ltssm: Ltssm::from_raw(l),
                    first_lane: lane,
                    link_state: flags,
                    supported_ld_count: 0,
                }
            },
        )
}

/// One switch event record of each kind, as (UUID, data) with the decoded body expected.
fn switch_record() -> impl Strategy<Value = (CommonHeader, [u8; EVENT_DATA_LEN])> {
    let phys = (any::<u8>(), any::<u8>(), any::<u16>())
        .prop_flat_map(|(port, ty, slot)| {
            record_port(port).prop_map(move |p| PhysicalSwitchEvent {
                port_id: port,
                event_type: PhysicalEventType::from_raw(ty),
                slot_status: slot,
                port: p,
            })
        })
        .prop_map(|e| {
            (
                PHYSICAL_SWITCH_EVENT_UUID,
                e.data().unwrap_or([0; EVENT_DATA_LEN]),
            )
        });
    let virt = (
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u16>()),
    )
        .prop_map(|((vcs, vppb, ty, binding), (port, ld, lc, sc))| {
            let e = VirtualSwitchEvent {
                vcs_id: vcs,
                vppb_id: vppb,
                event_type: VirtualEventType::from_raw(ty),
                binding: BindingStatus::from_raw(binding),
                port_id: port,
                ld_id: ld,
                link_control: lc,
                slot_control: sc,
            };
            (VIRTUAL_SWITCH_EVENT_UUID, e.data())
        });
    let mld = (any::<u8>(), any::<u8>(), any::<[u8; 8]>()).prop_map(|(ty, port, msg)| {
        let e = MldPortEvent {
            event_type: MldEventType::from_raw(ty),
            port_id: port,
            error_message: msg,
        };
        (MLD_PORT_EVENT_UUID, e.data())
    });
    (common_header(), prop_oneof![phys, virt, mld])
        .prop_map(|(h, (uuid, data))| (CommonHeader { uuid, ..h }, data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn event_records(b in prop_oneof![bytes(), counted(8), bytes_near(GET_EVENTS_HEADER_LEN)]) {
        let count = u16_at(&b, 0x14).map(usize::from);
        let need = count.map(|n| GET_EVENTS_HEADER_LEN + n * EVENT_RECORD_LEN);
        match EventRecords::decode(&b) {
            Ok(e) => {
                let need = need.unwrap_or(usize::MAX);
                prop_assert!(b.len() >= need.max(GET_EVENTS_HEADER_LEN));
                prop_assert_eq!(e.len(), count.unwrap_or(0));
                prop_assert_eq!(e.header.overflow(), b[0] & 1 != 0);
                prop_assert_eq!(e.header.more(), b[0] & 2 != 0);
                let recs: Vec<EventRecord<'_>> = e.iter().collect();
                prop_assert_eq!(recs.len(), e.len());
                for (i, r) in recs.iter().enumerate() {
                    let at = GET_EVENTS_HEADER_LEN + i * EVENT_RECORD_LEN;
                    prop_assert_eq!(&r.header.uuid.0[..], &b[at..at + 16]);
                    prop_assert_eq!(r.data, &b[at + COMMON_HEADER_LEN..at + EVENT_RECORD_LEN]);
                    // Every body decodes (or stays raw) without failing.
                    let _ = (r.body(), r.header.severity().to_string());
                }
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(GET_EVENTS_HEADER_LEN));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn event_record_round_trip((h, data) in switch_record()) {
        let mut rec = [0u8; EVENT_RECORD_LEN];
        prop_assert_eq!(encode_record(&mut rec, &h, &data), Ok(EVENT_RECORD_LEN));
        let r = EventRecord::decode(&rec);
        prop_assert!(r.is_ok());
        let Ok(r) = r else { return Ok(()) };
        prop_assert_eq!(r.header, h);
        prop_assert_eq!(r.data, &data[..]);
        // The decoded body encodes back to the same data.
        let again = match r.body() {
            EventBody::PhysicalSwitch(p) => p.data().ok(),
            EventBody::VirtualSwitch(v) => Some(v.data()),
            EventBody::MldPort(m) => Some(m.data()),
            EventBody::Other(_) => None,
        };
        prop_assert_eq!(again, Some(data));
        // A record in a Get Event Records output comes back the same.
        let header = GetEventsHeader { flags: 2, count: 1, ..GetEventsHeader::default() };
        let mut out = vec![0u8; GET_EVENTS_HEADER_LEN + EVENT_RECORD_LEN];
        prop_assert_eq!(encode_event_records(&mut out, &header, &[rec]), Ok(out.len()));
        let e = EventRecords::decode(&out);
        prop_assert!(e.is_ok());
        if let Ok(e) = e {
            prop_assert_eq!(e.header, header);
            prop_assert_eq!(e.iter().next(), Some(r));
        }
    }

    #[test]
    fn any_record_data_decodes(h in common_header(), data in prop::array::uniform32(any::<u8>())) {
        // Arbitrary data under each switch UUID: decoding never fails, and what decodes
        // re-encodes to the data with its reserved bits cleared.
        for uuid in [PHYSICAL_SWITCH_EVENT_UUID, VIRTUAL_SWITCH_EVENT_UUID, MLD_PORT_EVENT_UUID] {
            let mut rec = [0u8; EVENT_RECORD_LEN];
            let header = CommonHeader { uuid, ..h };
            prop_assert!(encode_record(&mut rec, &header, &data).is_ok());
            let r = EventRecord::decode(&rec);
            prop_assert!(r.is_ok());
            let Ok(r) = r else { continue };
            match r.body() {
                EventBody::PhysicalSwitch(p) => {
                    prop_assert_eq!(p.port_id, data[0]);
                    prop_assert!(p.port.max_link_width < 64 && p.port.current_link_speed < 64);
                    prop_assert!(p.data().is_ok());
                }
                EventBody::VirtualSwitch(v) => prop_assert_eq!(&v.data()[..10], &data[..10]),
                EventBody::MldPort(m) => {
                    prop_assert_eq!(&m.error_message[..], &data[4..12]);
                    prop_assert_eq!(&m.data()[4..12], &data[4..12]);
                }
                EventBody::Other(_) => prop_assert!(false, "a switch record stayed raw"),
            }
        }
    }

    #[test]
    fn clear_events(b in prop_oneof![bytes(), counted(8)]) {
        let need = b.get(2).map(|&n| CLEAR_EVENTS_HEADER_LEN + 2 * usize::from(n));
        match ClearEvents::decode(&b) {
            Ok(c) => {
                prop_assert!(b.len() >= need.unwrap_or(usize::MAX));
                prop_assert_eq!(c.len(), usize::from(b[2]));
                let handles: Vec<u16> = c.handles().collect();
                let mut out = vec![0u8; need.unwrap_or(0)];
                prop_assert_eq!(clear_events_request(&mut out, c.log, &handles), Ok(out.len()));
                // Reserved bytes and the flags aside, the request is the input.
                prop_assert_eq!(out[0], b[0]);
                prop_assert_eq!(&out[2..3], &b[2..3]);
                prop_assert_eq!(&out[CLEAR_EVENTS_HEADER_LEN..], &b[CLEAR_EVENTS_HEADER_LEN..out.len()]);
            }
            Err(e) => {
                prop_assert!(b.len() < need.unwrap_or(usize::MAX).max(CLEAR_EVENTS_HEADER_LEN));
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }

    #[test]
    fn interrupt_policy(b in prop_oneof![bytes(), bytes_near(INTERRUPT_POLICY_LEN)]) {
        match InterruptPolicy::decode(&b) {
            Ok(p) => {
                prop_assert!(b.len() >= INTERRUPT_POLICY_LEN);
                prop_assert_eq!(p.dynamic_capacity.is_some(), b.len() > INTERRUPT_POLICY_LEN);
                let mut out = [0u8; 8];
                let n = p.encode(&mut out);
                prop_assert_eq!(n, Ok(b.len().min(5)));
                prop_assert_eq!(&out[..b.len().min(5)], &b[..b.len().min(5)]);
                for s in [p.informational, p.warning, p.failure, p.fatal] {
                    prop_assert_eq!(InterruptSetting::new(s.mode(), s.msgnum()).0, s.0 & 0xf3);
                }
            }
            Err(e) => {
                prop_assert!(b.len() < INTERRUPT_POLICY_LEN);
                prop_assert!(truncated_past_end(&e, b.len()));
            }
        }
    }
}
