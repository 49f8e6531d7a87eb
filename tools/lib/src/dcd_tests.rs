// SPDX-License-Identifier: GPL-2.0

//! Dynamic Capacity against the simulated DCD behind port 0 of the simulated switch
//! (`crate::sim_dcd`): paged reads, the checks before anything is sent, adds and releases in
//! several commands, and what the device's refusals mean.

use super::*;
use crate::proto::payload::dcd::ExtentCounts;
use crate::sim::{SimDev, SimSwitch};

const MIB: u64 = 1 << 20;

fn switch() -> SimSwitch {
    let mut sw = SimSwitch::new(0x1234);
    sw.ports[0].dev = Some(SimDev::Dcd(0x103));
    sw
}

fn cci(sw: &SimSwitch) -> Cci<'_> {
    Cci::new(sw, Target::Port(0))
}

/// Tunnelled opcodes sent since the last call (the inner opcode of each 5300h).
fn sent(sw: &SimSwitch) -> Vec<u16> {
    let mut s = sw.sent.lock().unwrap();
    let ops = s
        .iter()
        .filter(|(op, _)| *op == opcode::TUNNEL)
        .map(|(_, input)| u16::from_le_bytes([input[4 + 3], input[4 + 4]]))
        .collect();
    s.clear();
    ops
}

fn ext(mib: u64, len_mib: u64) -> Extent {
    Extent::new(mib * MIB, len_mib * MIB)
}

fn add_spec(extents: Vec<Extent>) -> AddSpec {
    AddSpec {
        extents,
        region: Some(0),
        ..AddSpec::default()
    }
}

#[test]
fn info_and_regions_read_in_pages() {
    let sw = switch();
    {
        let mut d = sw.dcd.lock().unwrap();
        d.regions = (0..8u64)
            .map(|i| (256 * MIB + i * 32 * MIB, 32 * MIB, 2 * MIB, false))
            .collect();
    }
    let c = cci(&sw);
    let info = c.dcd_info().unwrap();
    assert_eq!((info.num_hosts, info.num_regions), (2, 8));
    assert_eq!(info.total_capacity, 1);
    // 240 bytes through one tunnel: 5 regions per command.
    let r = c.dc_regions(1).unwrap();
    assert_eq!((r.host_id, r.num_regions, r.regions.len()), (1, 8, 8));
    assert_eq!(r.regions[7].base, 256 * MIB + 7 * 32 * MIB);
    assert_eq!(
        r.counts,
        Some(ExtentCounts {
            extents_supported: 64,
            extents_available: 64,
            tags_supported: 0,
            tags_available: 0
        })
    );
    assert_eq!(sent(&sw), [0x5600, 0x5601, 0x5601]);
    // A host the device does not serve: the device refuses, with what it means.
    let e = PoolError::failed(c.dc_regions(2).unwrap_err());
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
    assert!(
        e.to_string().ends_with(
            "device returned invalid input (02h): a start region past the device's regions, \
             or a host it does not serve"
        ),
        "{e}"
    );
}

#[test]
fn extents_read_in_pages_and_again_when_the_list_changes() {
    let sw = switch();
    let held: Vec<_> = (0..12u64)
        .map(|i| (256 * MIB + i * 4 * MIB, 2 * MIB, [i as u8; 16]))
        .collect();
    sw.dcd.lock().unwrap().held[1] = held.clone();
    let c = cci(&sw);
    // 5 extents per page: 3 pages.
    let x = c.dc_extents(1).unwrap();
    assert_eq!(x.extents.len(), 12);
    assert_eq!(x.extents[11].start_dpa, 256 * MIB + 44 * MIB);
    assert_eq!(x.extents[3].tag.0, [3; 16]);
    assert_eq!(x.bytes(), 24 * MIB);
    assert_eq!(sent(&sw), [0x5603; 3]);
    // The list changes once while it is read: read again from the start.
    sw.dcd.lock().unwrap().churn = 1;
    let x = c.dc_extents(1).unwrap();
    assert_eq!(x.extents.len(), 12);
    assert_eq!(x.generation, 1);
    assert_eq!(sent(&sw), [0x5603; 5]);
    // It changes all the time: an error after 4 attempts.
    sw.dcd.lock().unwrap().churn = 100;
    let e = c.dc_extents(1).unwrap_err();
    assert!(e.is_malformed(), "{e}");
    assert!(e.to_string().contains("generation number changed"), "{e}");
    assert_eq!(sent(&sw).len(), 8);
    // An empty list: one command.
    assert!(c.dc_extents(0).unwrap().extents.is_empty());
    assert_eq!(sent(&sw), [0x5603]);
}

#[test]
fn prescriptive_add_is_pending_until_the_host_accepts() {
    let sw = switch();
    let c = cci(&sw);
    let spec = add_spec(vec![ext(256, 2), ext(260, 4)]);
    let r = add(&c, &spec).unwrap();
    assert_eq!(
        (r.policy, r.commands, r.bytes, r.rc),
        ("prescriptive", 1, 6 * MIB, ReturnCode::Success)
    );
    assert_eq!(r.target, Target::Port(0));
    // Reads (5600h, 5601h, 5603h of both hosts), then the add.
    assert_eq!(sent(&sw), [0x5600, 0x5601, 0x5603, 0x5603, 0x5604]);
    let s = DcdState::read(&c, 0).unwrap();
    assert!(s.held(0).is_empty(), "pending, not held");
    assert_eq!(s.regions.counts.map(|c| c.extents_available), Some(62));
    assert!(sw.dcd.lock().unwrap().host_accept());
    let s = DcdState::read(&c, 0).unwrap();
    assert_eq!(s.held(0), [ext(256, 2), ext(260, 4)]);
    assert_eq!(s.free(0), 250 * MIB);
    assert_eq!(s.held_in(0, 0), 6 * MIB);
    assert_eq!(s.held_in(0, 1), 0);
    assert_eq!(
        s.free_ranges(0),
        [(258 * MIB, 2 * MIB), (264 * MIB, 248 * MIB)]
    );
    assert_eq!(s.region_of(260 * MIB, 4 * MIB), Some(0));
}

#[test]
fn large_adds_and_releases_go_in_several_commands() {
    let sw = switch();
    let c = cci(&sw);
    // 5 extents per command through one tunnel level of a 256-byte payload.
    let x: Vec<Extent> = (0..12).map(|i| ext(256 + 4 * i, 2)).collect();
    let r = add(&c, &add_spec(x.clone())).unwrap();
    assert_eq!(r.commands, 3);
    assert_eq!(r.extents, x);
    assert_eq!(sent(&sw).iter().filter(|o| **o == 0x5604).count(), 3);
    while sw.dcd.lock().unwrap().host_accept() {}
    let spec = ReleaseSpec {
        host: 0,
        what: Release::All,
        forced: false,
        sanitize: false,
    };
    let r = release(&c, &spec).unwrap();
    assert_eq!(
        (r.policy, r.commands, r.bytes),
        ("prescriptive", 3, 24 * MIB)
    );
    // Not released until the host gives the capacity up.
    assert_eq!(DcdState::read(&c, 0).unwrap().held(0).len(), 12);
    sw.dcd.lock().unwrap().host_release();
    assert!(DcdState::read(&c, 0).unwrap().held(0).is_empty());
    // A failure in the middle says how far it got.
    let x: Vec<Extent> = (0..12).map(|i| ext(256 + 4 * i, 2)).collect();
    sw.dcd.lock().unwrap().max_extents = 7;
    let e = add(&c, &add_spec(x)).unwrap_err();
    // 12 extents are more than the device tracks: refused before anything is sent.
    assert_eq!(
        e.rule(),
        Some(Broken::Dcd(Rule::TooManyExtents {
            count: 12,
            available: 7
        }))
    );
    sw.dcd.lock().unwrap().max_extents = 64;
    sent(&sw);
    // The second command overlaps what the first left pending (the library cannot see
    // pending capacity): the device refuses it.
    let x: Vec<Extent> = (0..6).map(|i| ext(300 + 4 * i, 2)).collect();
    sw.dcd
        .lock()
        .unwrap()
        .pending
        .push((0, vec![(320 * MIB, 2 * MIB, [0; 16])]));
    let e = add(&c, &add_spec(x)).unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidExtentList));
    let t = e.to_string();
    assert!(
        t.starts_with("Initiate Dynamic Capacity Add (5604h) via port 0 on /dev/cxl/switch0"),
        "{t}"
    );
    assert!(t.contains("still pending"), "{t}");
    assert!(
        t.contains("command 2 of 2; the 1 before it were accepted"),
        "{t}"
    );
}

#[test]
fn adds_by_size() {
    let sw = switch();
    let c = cci(&sw);
    sw.dcd.lock().unwrap().held[1] = vec![(256 * MIB, 4 * MIB, [0; 16])];
    // Free is supported: the device chooses.
    let spec = AddSpec {
        size: Some(8 * MIB),
        region: Some(0),
        ..AddSpec::default()
    };
    let r = add(&c, &spec).unwrap();
    assert_eq!((r.policy, r.bytes, r.extents.len()), ("free", 8 * MIB, 0));
    sw.dcd.lock().unwrap().host_accept();
    // Prescriptive by size: the library picks the lowest free ranges around what hosts hold.
    let spec = AddSpec {
        policy: Some(SelectionPolicy::Prescriptive),
        size: Some(10 * MIB),
        tag: Uuid([5; 16]),
        region: Some(0),
        ..AddSpec::default()
    };
    let r = add(&c, &spec).unwrap();
    assert_eq!(r.extents.len(), 1);
    assert_eq!(r.extents[0].start_dpa, 268 * MIB);
    assert_eq!(r.extents[0].length, 10 * MIB);
    assert_eq!(r.extents[0].tag, Uuid([5; 16]));
    // A device without Free: prescriptive is the default.
    sw.dcd.lock().unwrap().selection = 0b100;
    sw.dcd.lock().unwrap().host_accept();
    sw.dcd.lock().unwrap().held[0].clear();
    sw.dcd.lock().unwrap().held[1] = vec![(260 * MIB, 2 * MIB, [0; 16])];
    let spec = AddSpec {
        size: Some(8 * MIB),
        region: Some(0),
        ..AddSpec::default()
    };
    let r = add(&c, &spec).unwrap();
    assert_eq!(r.policy, "prescriptive");
    assert_eq!(r.extents, [ext(256, 4), ext(262, 4)]);
}

fn refusal(sw: &SimSwitch, spec: &AddSpec) -> Rule {
    let e = add(&cci(sw), spec).unwrap_err();
    let sent = sent(sw);
    assert!(!sent.contains(&0x5604), "{sent:?}");
    match e.rule() {
        Some(Broken::Dcd(r)) => {
            assert!(
                e.to_string().starts_with(
                    "Initiate Dynamic Capacity Add (5604h) via port 0 on /dev/cxl/switch0: not \
                     sent: "
                ) || e.to_string().contains("Get Host DC Region Configuration"),
                "{e}"
            );
            r
        }
        other => panic!("{other:?}: {e}"),
    }
}

#[test]
fn adds_that_break_a_rule_are_not_sent() {
    let sw = switch();
    sw.dcd.lock().unwrap().held[1] = vec![(300 * MIB, 4 * MIB, [0; 16])];
    let base = add_spec(vec![ext(256, 2)]);
    let cases = [
        (
            AddSpec {
                host: 2,
                ..base.clone()
            },
            Rule::NoSuchHost { host: 2, hosts: 2 },
        ),
        (
            AddSpec {
                region: Some(2),
                ..base.clone()
            },
            Rule::NoSuchRegion {
                region: 2,
                regions: 2,
            },
        ),
        (
            AddSpec {
                policy: Some(SelectionPolicy::Contiguous),
                size: Some(2 * MIB),
                region: Some(0),
                ..AddSpec::default()
            },
            Rule::SelectionUnsupported {
                policy: SelectionPolicy::Contiguous,
                supported: 0b101,
            },
        ),
        (
            add_spec(vec![ext(257, 2)]),
            Rule::StartMisaligned {
                index: 0,
                dpa: 257 * MIB,
                block_size: 2 * MIB,
            },
        ),
        (
            add_spec(vec![ext(256, 3)]),
            Rule::LengthMisaligned {
                index: 0,
                length: 3 * MIB,
                block_size: 2 * MIB,
            },
        ),
        (
            add_spec(vec![ext(256, 4), ext(258, 2)]),
            Rule::Overlap { a: 0, b: 1 },
        ),
        (
            add_spec(vec![ext(256, 2), ext(302, 2)]),
            Rule::Allocated { index: 1, host: 1 },
        ),
        (
            AddSpec {
                region: Some(0),
                ..add_spec(vec![ext(600, 2)])
            },
            Rule::WrongRegion {
                index: 0,
                found: 1,
                region: 0,
            },
        ),
        (
            add_spec(vec![ext(100, 2)]),
            Rule::OutsideRegions {
                index: 0,
                dpa: 100 * MIB,
                length: 2 * MIB,
            },
        ),
        (
            AddSpec {
                size: Some(3 * MIB),
                region: Some(0),
                ..AddSpec::default()
            },
            Rule::LengthNotBlocks {
                length: 3 * MIB,
                block_size: 2 * MIB,
            },
        ),
        (
            AddSpec {
                size: Some(254 * MIB),
                region: Some(0),
                ..AddSpec::default()
            },
            Rule::NotEnoughFree {
                region: 0,
                asked: 254 * MIB,
                free: 252 * MIB,
            },
        ),
        (
            AddSpec {
                policy: Some(SelectionPolicy::Prescriptive),
                region: Some(0),
                ..AddSpec::default()
            },
            Rule::LengthNotBlocks {
                length: 0,
                block_size: 2 * MIB,
            },
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(refusal(&sw, &spec), want, "{spec:?}");
    }
    // Enable Shared Access needs a tag, and the device's support.
    sw.dcd.lock().unwrap().selection = 0b1111;
    let shared = AddSpec {
        policy: Some(SelectionPolicy::EnableSharedAccess),
        region: Some(0),
        ..AddSpec::default()
    };
    assert_eq!(refusal(&sw, &shared), Rule::NoTag);
    let r = add(
        &cci(&sw),
        &AddSpec {
            tag: Uuid([9; 16]),
            ..shared
        },
    );
    // The simulated device refuses shared access it does not implement: the device's word.
    let e = r.unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
    assert!(
        e.to_string()
            .contains("selection policy it does not implement"),
        "{e}"
    );
}

#[test]
fn releases() {
    let sw = switch();
    let c = cci(&sw);
    let tag = Uuid([7; 16]);
    sw.dcd.lock().unwrap().held[0] = vec![
        (256 * MIB, 8 * MIB, [0; 16]),
        (300 * MIB, 4 * MIB, tag.0),
        (520 * MIB, 2 * MIB, tag.0),
    ];
    let spec = |what, forced| ReleaseSpec {
        host: 0,
        what,
        forced,
        sanitize: false,
    };
    // Part of an extent, not forced: pending until the host releases it.
    let r = release(&c, &spec(Release::Extents(vec![ext(258, 2)]), false)).unwrap();
    assert_eq!((r.commands, r.bytes), (1, 2 * MIB));
    assert_eq!(DcdState::read(&c, 0).unwrap().held(0).len(), 3);
    sw.dcd.lock().unwrap().host_release();
    assert_eq!(
        DcdState::read(&c, 0).unwrap().held(0),
        [
            ext(256, 2),
            ext(260, 4),
            Extent { tag, ..ext(300, 4) },
            Extent { tag, ..ext(520, 2) },
        ]
    );
    // Forced: gone at once in the simulated device.
    release(&c, &spec(Release::Extents(vec![ext(256, 2)]), true)).unwrap();
    assert_eq!(DcdState::read(&c, 0).unwrap().held(0).len(), 3);
    // Tag-based: every extent with the tag, by default.
    sent(&sw);
    let r = release(&c, &spec(Release::Tag { tag, length: None }, true)).unwrap();
    assert_eq!(
        (r.policy, r.bytes, r.extents.len()),
        ("tag-based", 6 * MIB, 0)
    );
    let last = sw.sent.lock().unwrap().last().unwrap().1.clone();
    // The 5605h request inside the tunnel: flags tag-based | forced, length, the tag.
    let req = &last[16..];
    assert_eq!(req[2], 0x10);
    assert_eq!(&req[4..12], &(6 * MIB).to_le_bytes());
    assert_eq!(&req[12..28], &tag.0);
    assert_eq!(DcdState::read(&c, 0).unwrap().held(0), [ext(260, 4)]);
    // Rules.
    let refused = |s: ReleaseSpec| {
        let e = release(&c, &s).unwrap_err();
        match e.rule() {
            Some(Broken::Dcd(r)) => r,
            other => panic!("{other:?} {e}"),
        }
    };
    assert_eq!(
        refused(spec(Release::Extents(vec![ext(256, 2)]), false)),
        Rule::NotHeld { index: 0, host: 0 }
    );
    assert_eq!(
        refused(spec(Release::Extents(vec![ext(262, 4)]), false)),
        Rule::NotHeld { index: 0, host: 0 }
    );
    assert_eq!(
        refused(spec(Release::Extents(vec![]), false)),
        Rule::NoExtents
    );
    assert_eq!(
        refused(spec(Release::Tag { tag, length: None }, false)),
        Rule::TagNotHeld { host: 0 }
    );
    assert_eq!(
        refused(spec(
            Release::Tag {
                tag: Uuid([0; 16]),
                length: None
            },
            false
        )),
        Rule::NoTag
    );
    assert_eq!(
        refused(ReleaseSpec {
            host: 1,
            ..spec(Release::All, false)
        }),
        Rule::NothingHeld { host: 1 }
    );
    sw.dcd.lock().unwrap().removal = 0b10;
    assert_eq!(
        refused(spec(Release::Tag { tag, length: None }, false)),
        Rule::RemovalUnsupported {
            policy: RemovalPolicy::TagBased,
            supported: 0b10
        }
    );
    // What only the device knows: capacity pending for the host is not yet held.
    sw.dcd
        .lock()
        .unwrap()
        .pending
        .push((0, vec![(400 * MIB, 2 * MIB, [0; 16])]));
    let r = c.dc_release(
        &ReleaseRequest {
            host_id: 0,
            flags: ReleaseFlags {
                policy: RemovalPolicy::Prescriptive,
                forced: true,
                sanitize: true,
            },
            length: 0,
            tag: Uuid([0; 16]),
        },
        &[ext(400, 2)],
    );
    let e = PoolError::failed(r.unwrap_err());
    assert_eq!(e.rc(), Some(ReturnCode::InvalidPhysicalAddress));
    assert!(
        e.to_string().contains("not accepted by the host yet"),
        "{e}"
    );
}

#[test]
fn configure_regions() {
    let sw = switch();
    let c = cci(&sw);
    let (cfg, now) = configure(&c, 1, 4 * MIB, None).unwrap();
    assert_eq!((cfg.region, cfg.block_size), (1, 4 * MIB));
    assert_eq!(now.block_size, 4 * MIB);
    let (_, now) = configure(&c, 0, 2 * MIB, Some(true)).unwrap();
    assert!(now.sanitize_on_release);
    let refused = |region, size, sanitize| match configure(&c, region, size, sanitize) {
        Err(e @ PoolError::Refused { .. }) => {
            assert!(
                e.to_string().starts_with(
                    "Set DC Region Configuration (5602h) via port 0 on /dev/cxl/switch0: not \
                     sent: "
                ),
                "{e}"
            );
            e.rule()
        }
        other => panic!("{other:?}"),
    };
    sent(&sw);
    assert_eq!(
        refused(2, 2 * MIB, None),
        Some(Broken::Dcd(Rule::NoSuchRegion {
            region: 2,
            regions: 2
        }))
    );
    assert_eq!(
        refused(0, 8 * MIB, None),
        Some(Broken::Dcd(Rule::BlockSizeUnsupported {
            region: 0,
            size: 8 * MIB,
            mask: 6 * MIB
        }))
    );
    assert_eq!(
        refused(0, 3 * MIB, None),
        Some(Broken::Dcd(Rule::BlockSizeNotPowerOfTwo { size: 3 * MIB }))
    );
    assert_eq!(
        refused(1, 2 * MIB, Some(true)),
        Some(Broken::Dcd(Rule::SanitizeNotConfigurable { region: 1 }))
    );
    assert!(!sent(&sw).contains(&0x5602));
    // A region that holds capacity cannot be reconfigured: the device says so.
    sw.dcd.lock().unwrap().held[0] = vec![(256 * MIB, 2 * MIB, [0; 16])];
    let e = configure(&c, 0, 4 * MIB, None).unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::Unsupported));
    assert!(e.to_string().contains("it holds extents"), "{e}");
}

#[test]
fn dcd_in_a_view_of_the_fabric() {
    let sw = switch();
    // A device that is not a DCD: nothing, no error.
    assert!(read_dcd(&Cci::new(&sw, Target::Port(3))).unwrap().is_none());
    let s = read_dcd(&cci(&sw)).unwrap().unwrap();
    assert_eq!((s.hosts.len(), s.regions.regions.len()), (2, 2));
    assert_eq!(s.free(1), 256 * MIB);
    // One 5600h to port 3 (unsupported); to port 0 no 5600h twice.
    assert_eq!(sent(&sw), [0x5600, 0x5600, 0x5601, 0x5603, 0x5603]);
}

#[test]
fn every_return_code_of_the_pooling_commands_has_a_meaning() {
    use crate::proto::rc::ReturnCode as R;
    let generic = [
        R::Unsupported,
        R::UnsupportedMailbox,
        R::InternalError,
        R::RetryRequired,
        R::Busy,
        R::InvalidPayloadLength,
    ];
    let specific: &[(u16, &[R])] = &[
        (opcode::GET_LD_INFO, &[]),
        (opcode::GET_LD_ALLOCATIONS, &[R::InvalidInput]),
        (
            opcode::SET_LD_ALLOCATIONS,
            &[R::InvalidInput, R::ResourcesExhausted],
        ),
        (opcode::GET_DCD_INFO, &[]),
        (opcode::GET_HOST_DC_REGION_CONFIG, &[R::InvalidInput]),
        (opcode::SET_DC_REGION_CONFIG, &[R::InvalidInput]),
        (opcode::GET_DC_REGION_EXTENT_LISTS, &[R::InvalidInput]),
        (
            opcode::INITIATE_DC_ADD,
            &[
                R::InvalidInput,
                R::InvalidExtentList,
                R::InvalidPhysicalAddress,
                R::ResourcesExhausted,
            ],
        ),
        (
            opcode::INITIATE_DC_RELEASE,
            &[
                R::InvalidInput,
                R::InvalidExtentList,
                R::InvalidPhysicalAddress,
                R::ResourcesExhausted,
            ],
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (op, codes) in specific {
        for rc in generic.iter().chain(codes.iter()) {
            let m = rc_meaning(*op, *rc).unwrap_or_else(|| panic!("{op:04x} {rc}"));
            assert!(m.len() > 20);
            if codes.contains(rc) {
                assert!(seen.insert(m), "{op:04x} {rc}: {m} said twice");
            }
        }
        assert_eq!(rc_meaning(*op, R::Success), None);
    }
    assert_eq!(rc_meaning(opcode::IDENTIFY, R::InvalidInput), None);
    assert!(rc_meaning(opcode::TUNNEL, R::InvalidInput)
        .unwrap()
        .contains("could not route"));
    assert_eq!(rc_meaning(opcode::TUNNEL, R::Busy), None);
}

#[test]
fn errors_name_their_command() {
    let dev = |rc| Error::Device {
        op: "Initiate Dynamic Capacity Release (5605h) via port 0 on /dev/cxl/switch0".into(),
        rc,
    };
    assert_eq!(op_of(&dev(ReturnCode::Busy)), 0x5605);
    let e = Error::Device {
        op: "Tunnel Management Command (5300h) to port 9 on /dev/cxl/switch0".into(),
        rc: ReturnCode::InvalidInput,
    };
    assert_eq!(op_of(&e), 0x5300);
    let e = PoolError::failed(e);
    assert!(e.to_string().ends_with("could not route the command: no component on that port (or LD), or one that does not take tunnelled commands"), "{e}");
    let os = Error::Os {
        op: "open x".into(),
        err: std::io::Error::from_raw_os_error(libc::ENOENT),
    };
    assert_eq!(op_of(&os), 0);
    let e = PoolError::failed(os);
    assert!(e.error().is_some() && e.rc().is_none() && e.rule().is_none());
    let u = PoolError::Unconfirmed {
        op: "Set LD Allocations (5402h) via port 3 on x".into(),
        what: "reads back 1".into(),
    };
    assert_eq!(
        u.to_string(),
        "Set LD Allocations (5402h) via port 3 on x: reads back 1"
    );
}

#[test]
fn typed_commands_refuse_what_does_not_fit_one_payload() {
    let sw = switch();
    let c = cci(&sw);
    let x: Vec<Extent> = (0..6).map(|i| ext(256 + 2 * i, 2)).collect();
    let req = AddRequest {
        host_id: 0,
        policy: SelectionPolicy::Prescriptive,
        region: 0,
        length: 0,
        tag: Uuid([0; 16]),
    };
    let e = c.dc_add(&req, &x).unwrap_err();
    assert!(matches!(e, Error::Encode { .. }), "{e}");
    assert!(sent(&sw).is_empty());
    assert_eq!(c.dc_add(&req, &x[..5]).unwrap(), ReturnCode::Success);
}
