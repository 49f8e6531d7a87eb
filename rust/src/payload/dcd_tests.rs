// SPDX-License-Identifier: GPL-2.0

//! Dynamic Capacity payload tests with byte vectors in the specification's layout (values as
//! QEMU's type-3 device with two DC regions reports them: 256 MiB of static memory, then two
//! regions of 256 MiB with 2 MiB blocks).

extern crate std;

use super::*;
use std::string::ToString;
use std::vec::Vec;

const MIB: u64 = 1 << 20;

fn qemu_regions() -> [DcRegion; 2] {
    let r = |base| DcRegion {
        base,
        decode_len: 1,
        length: 256 * MIB,
        block_size: 2 * MIB,
        flags: 0,
        sanitize_on_release: false,
    };
    [r(256 * MIB), r(512 * MIB)]
}

#[test]
fn dcd_info_layout() {
    let mut b = [0u8; DCD_INFO_LEN];
    b[0] = 1; // hosts
    b[1] = 2; // regions
    b[4] = 0b100; // prescriptive
    b[8] = 0b10; // prescriptive removal
    b[0x0a] = 0b01; // region 0's sanitize setting configurable
    b[0x0c] = 2; // 512 MiB
    b[0x14..0x1c].copy_from_slice(&(2 * MIB).to_le_bytes());
    b[0x1c..0x24].copy_from_slice(&((2 * MIB) | (4 * MIB)).to_le_bytes());
    let i = DcdInfo::decode(&b).unwrap();
    assert_eq!((i.num_hosts, i.num_regions, i.total_capacity), (1, 2, 2));
    assert_eq!(i.total_capacity_bytes(), Some(512 * MIB));
    assert!(i.supports_selection(SelectionPolicy::Prescriptive));
    assert!(!i.supports_selection(SelectionPolicy::Free));
    assert!(!i.supports_selection(SelectionPolicy::Reserved(4)));
    assert!(i.supports_removal(RemovalPolicy::Prescriptive));
    assert!(!i.supports_removal(RemovalPolicy::TagBased));
    assert!(i.sanitize_configurable(0) && !i.sanitize_configurable(1));
    assert!(!i.sanitize_configurable(9));
    assert_eq!(i.block_size_mask(1), 6 * MIB);
    assert_eq!(i.block_size_mask(8), 0);
    let sizes: Vec<u64> = block_sizes(i.block_size_mask(1)).collect();
    assert_eq!(sizes, [2 * MIB, 4 * MIB]);
    let mut out = [0u8; DCD_INFO_LEN];
    assert_eq!(i.encode(&mut out), Ok(DCD_INFO_LEN));
    assert_eq!(out, b);
    assert!(matches!(
        DcdInfo::decode(&b[..DCD_INFO_LEN - 1]),
        Err(DecodeError::Truncated {
            field: "region_supported_block_size_mask",
            offset: 0x4c,
            ..
        })
    ));
    assert!(i.encode(&mut out[..DCD_INFO_LEN - 1]).is_err());
}

#[test]
fn policies() {
    for (i, p) in SelectionPolicy::ALL.iter().enumerate() {
        assert_eq!(usize::from(p.raw()), i);
        assert_eq!(SelectionPolicy::from_raw(p.raw()), *p);
        assert_eq!(p.bit(), 1 << i);
    }
    // Bits 7:4 are reserved.
    assert_eq!(
        SelectionPolicy::from_raw(0xf2),
        SelectionPolicy::Prescriptive
    );
    assert_eq!(SelectionPolicy::from_raw(5).to_string(), "reserved (5h)");
    assert_eq!(
        SelectionPolicy::EnableSharedAccess.to_string(),
        "enable-shared-access"
    );
    assert_eq!(RemovalPolicy::from_raw(1), RemovalPolicy::Prescriptive);
    assert_eq!(RemovalPolicy::TagBased.bit(), 1);
    assert_eq!(RemovalPolicy::from_raw(0x0e).name(), None);
    let f = ReleaseFlags {
        policy: RemovalPolicy::Prescriptive,
        forced: true,
        sanitize: true,
    };
    assert_eq!(f.raw(), 0x31);
    assert_eq!(ReleaseFlags::from_raw(0x31), f);
    assert_eq!(
        ReleaseFlags::from_raw(0xc0),
        ReleaseFlags {
            policy: RemovalPolicy::TagBased,
            forced: false,
            sanitize: false
        }
    );
}

#[test]
fn host_region_config_layout_and_round_trip() {
    let req = HostRegionRequest {
        host_id: 0x0102,
        region_count: 8,
        start_region: 1,
    };
    assert_eq!(req.encode(), [2, 1, 8, 1]);
    assert_eq!(HostRegionRequest::decode(&req.encode()), Ok(req));
    assert!(HostRegionRequest::decode(&[0, 0, 1]).is_err());

    let regions = qemu_regions();
    let counts = ExtentCounts {
        extents_supported: 512,
        extents_available: 510,
        tags_supported: 0,
        tags_available: 0,
    };
    let mut b = [0u8; 128];
    let n = encode_host_region_config(&mut b, 0, 2, &regions, Some(&counts)).unwrap();
    assert_eq!(
        n,
        HOST_REGION_HEADER + 2 * REGION_CONFIG_LEN + EXTENT_COUNTS_LEN
    );
    assert_eq!(&b[..4], &[0, 0, 2, 2]);
    // Region 1: base at 04h + 28h, block size at +18h.
    assert_eq!(&b[0x2c..0x34], &(512 * MIB).to_le_bytes());
    assert_eq!(&b[0x2c + 0x18..0x2c + 0x20], &(2 * MIB).to_le_bytes());
    assert_eq!(&b[0x54..0x58], &512u32.to_le_bytes());
    let c = HostRegionConfig::decode(&b[..n], 0).unwrap();
    assert_eq!((c.host_id, c.num_regions, c.len()), (0, 2, 2));
    assert_eq!(c.counts, Some(counts));
    let got: Vec<(u8, DcRegion)> = c.iter().collect();
    assert_eq!(got, [(0, regions[0]), (1, regions[1])]);
    // A device of r3.0 ends after the list: no counts.
    let c = HostRegionConfig::decode(&b[..n - EXTENT_COUNTS_LEN], 3).unwrap();
    assert_eq!(c.counts, None);
    assert_eq!(c.iter().next().map(|r| r.0), Some(3));
    assert!(matches!(
        HostRegionConfig::decode(&b[..n - EXTENT_COUNTS_LEN - 1], 0),
        Err(DecodeError::Truncated {
            field: "region configuration list",
            ..
        })
    ));
    // Sanitize on release and flags.
    let s = DcRegion {
        flags: region_flag::SHARABLE,
        sanitize_on_release: true,
        ..regions[0]
    };
    let n = encode_host_region_config(&mut b, 7, 1, &[s], None).unwrap();
    assert_eq!(b[4 + 0x20], 0x08);
    assert_eq!(b[4 + 0x24], 1);
    let back: Vec<_> = HostRegionConfig::decode(&b[..n], 0)
        .unwrap()
        .iter()
        .collect();
    assert_eq!(back, [(0, s)]);
}

#[test]
fn region_geometry() {
    let [r0, r1] = qemu_regions();
    assert_eq!(r0.end(), Some(512 * MIB));
    assert_eq!(r0.decode_len_bytes(), Some(256 * MIB));
    assert!(r0.contains(256 * MIB, 256 * MIB));
    assert!(!r0.contains(256 * MIB, 256 * MIB + 1));
    assert!(!r0.contains(255 * MIB, 2 * MIB));
    assert!(!r0.contains(u64::MAX, 2));
    assert!(r0.overlaps(510 * MIB, 4 * MIB) && r1.overlaps(510 * MIB, 4 * MIB));
    assert!(!r0.overlaps(512 * MIB, 1));
    assert!(r0.aligned(258 * MIB, true));
    assert!(!r0.aligned(257 * MIB, true));
    assert!(!r0.aligned(0, true));
    assert!(r0.aligned(4 * MIB, false) && !r0.aligned(MIB, false));
    let zero = DcRegion::default();
    assert!(!zero.aligned(0, false));
    assert!(!ranges_overlap(0, 0, 0, 10));
    assert!(ranges_overlap(u64::MAX - 1, 10, u64::MAX - 1, 1));
    assert_eq!(region_of(&[r0, r1], 600 * MIB, 2 * MIB), Some(1));
    assert_eq!(region_of(&[r0, r1], 510 * MIB, 4 * MIB), None);
}

#[test]
fn set_region_config_layout() {
    let s = SetRegionConfig {
        region: 1,
        block_size: 2 * MIB,
        sanitize_on_release: true,
    };
    let b = s.encode();
    assert_eq!(b[0], 1);
    assert_eq!(&b[4..12], &(2 * MIB).to_le_bytes());
    assert_eq!(b[12], 1);
    assert_eq!(SetRegionConfig::decode(&b), Ok(s));
    assert!(SetRegionConfig::decode(&b[..12]).is_err());
}

#[test]
fn extent_list_layout_and_round_trip() {
    let req = ExtentListRequest {
        host_id: 3,
        count: 50,
        start: 7,
    };
    let b = req.encode();
    assert_eq!(b, [3, 0, 0, 0, 50, 0, 0, 0, 7, 0, 0, 0]);
    assert_eq!(ExtentListRequest::decode(&b), Ok(req));

    let tag = Uuid([0xab; 16]);
    let e = [
        Extent::new(256 * MIB, 2 * MIB),
        Extent {
            start_dpa: 512 * MIB,
            length: 4 * MIB,
            tag,
            shared_seq: 9,
        },
    ];
    let mut out = [0u8; 256];
    let n = encode_extent_list(&mut out, 0, 4, 6, 11, &e).unwrap();
    assert_eq!(n, EXTENT_LIST_HEADER + 2 * EXTENT_LEN);
    assert_eq!(&out[4..8], &4u32.to_le_bytes()); // start
    assert_eq!(&out[8..12], &2u32.to_le_bytes()); // returned
    assert_eq!(&out[12..16], &6u32.to_le_bytes()); // total
    assert_eq!(&out[16..20], &11u32.to_le_bytes()); // generation
                                                    // Second extent: tag at +10h, shared sequence at +20h.
    let x = EXTENT_LIST_HEADER + EXTENT_LEN;
    assert_eq!(&out[x + 0x10..x + 0x20], &[0xab; 16]);
    assert_eq!(&out[x + 0x20..x + 0x22], &[9, 0]);
    let l = ExtentList::decode(&out[..n]).unwrap();
    assert_eq!((l.host_id, l.start, l.total, l.generation), (0, 4, 6, 11));
    assert_eq!(l.extents.len(), 2);
    let back: Vec<Extent> = l.extents.iter().collect();
    assert_eq!(back, e);
    assert!(back[1].is_tagged() && !back[0].is_tagged());
    assert!(ExtentList::decode(&out[..n - 1]).is_err());
    // A count that does not fit any payload is a truncation, not a panic.
    out[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(ExtentList::decode(&out[..n]).is_err());
}

#[test]
fn capacity_requests_layout_and_round_trip() {
    let e = [
        Extent::new(256 * MIB, 2 * MIB),
        Extent::new(260 * MIB, 2 * MIB),
    ];
    let add = AddRequest {
        host_id: 1,
        policy: SelectionPolicy::Prescriptive,
        region: 0,
        length: 0,
        tag: Uuid([0; 16]),
    };
    let mut b = [0u8; 256];
    let n = add.encode(&mut b, &e).unwrap();
    assert_eq!(n, CAPACITY_REQUEST_HEADER + 2 * EXTENT_LEN);
    assert_eq!(&b[..4], &[1, 0, 2, 0]);
    assert_eq!(&b[0x1c..0x20], &2u32.to_le_bytes());
    assert_eq!(&b[0x20..0x28], &(256 * MIB).to_le_bytes());
    let (a, x) = AddRequest::decode(&b[..n]).unwrap();
    assert_eq!(a, add);
    assert_eq!(x.iter().collect::<Vec<_>>(), e);
    assert!(AddRequest::decode(&b[..n - 1]).is_err());
    assert!(add.encode(&mut b[..n - 1], &e).is_err());

    let free = AddRequest {
        policy: SelectionPolicy::Free,
        region: 1,
        length: 64 * MIB,
        tag: Uuid([7; 16]),
        ..add
    };
    let n = free.encode(&mut b, &[]).unwrap();
    assert_eq!(n, CAPACITY_REQUEST_HEADER);
    assert_eq!(&b[2..4], &[0, 1]);
    assert_eq!(&b[4..12], &(64 * MIB).to_le_bytes());
    assert_eq!(&b[12..28], &[7; 16]);
    assert_eq!(AddRequest::decode(&b[..n]).unwrap().0, free);

    let rel = ReleaseRequest {
        host_id: 0,
        flags: ReleaseFlags {
            policy: RemovalPolicy::Prescriptive,
            forced: true,
            sanitize: false,
        },
        length: 0,
        tag: Uuid([0; 16]),
    };
    let n = rel.encode(&mut b, &e[..1]).unwrap();
    assert_eq!(&b[..4], &[0, 0, 0x11, 0]);
    let (r, x) = ReleaseRequest::decode(&b[..n]).unwrap();
    assert_eq!((r, x.len()), (rel, 1));
    assert_eq!(extents_per_request(2032), 50);
    assert_eq!(extents_per_list(2032), 50);
    assert_eq!(regions_per_config(2032), 50);
    assert_eq!(regions_per_config(220), 5);
    assert_eq!(extents_per_request(10), 0);
}

#[test]
fn extent_update_layout() {
    let mut b = [0u8; 64];
    let n = encode_extent_update(&mut b, UPDATE_MORE, &[(256 * MIB, 2 * MIB)]).unwrap();
    assert_eq!(n, EXTENT_UPDATE_HEADER + UPDATED_EXTENT_LEN);
    assert_eq!(&b[..8], &[1, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(&b[8..16], &(256 * MIB).to_le_bytes());
    assert_eq!(&b[16..24], &(2 * MIB).to_le_bytes());
    let u = ExtentUpdate::decode(&b[..n]).unwrap();
    assert_eq!((u.flags, u.len()), (UPDATE_MORE, 1));
    assert_eq!(u.iter().collect::<Vec<_>>(), [(256 * MIB, 2 * MIB)]);
    let n = encode_extent_update(&mut b, 0, &[]).unwrap();
    assert_eq!(n, EXTENT_UPDATE_HEADER);
    assert!(ExtentUpdate::decode(&b[..n]).unwrap().is_empty());
    assert!(ExtentUpdate::decode(&b[..7]).is_err());
}

#[test]
fn block_size_rules() {
    let mask = 2 * MIB;
    assert_eq!(check_block_size(0, 2 * MIB, mask), Ok(()));
    let e = check_block_size(0, 3 * MIB, mask).unwrap_err();
    assert_eq!(e, Rule::BlockSizeNotPowerOfTwo { size: 3 * MIB });
    assert!(e.to_string().contains("power of two"), "{e}");
    assert_eq!(
        check_block_size(0, 32, u64::MAX),
        Err(Rule::BlockSizeTooSmall { size: 32 })
    );
    assert_eq!(
        check_block_size(0, 0, u64::MAX),
        Err(Rule::BlockSizeNotPowerOfTwo { size: 0 })
    );
    let e = check_block_size(1, 4 * MIB, mask).unwrap_err();
    assert_eq!(
        e.to_string(),
        "block size 4 MiB: region 1 supports 2 MiB (Get DCD Info 5600h, supported block size \
         mask 0x200000)"
    );
    assert!(check_block_size(1, 4 * MIB, 0)
        .unwrap_err()
        .to_string()
        .contains("supports no block size"));
}

#[test]
fn extent_rules() {
    let regions = qemu_regions();
    let ok = [
        Extent::new(256 * MIB, 2 * MIB),
        Extent::new(300 * MIB, 10 * MIB),
    ];
    assert_eq!(check_extents(&ok, &regions, Some(0)), Ok(()));
    assert_eq!(check_extents(&ok, &regions, None), Ok(()));
    assert_eq!(
        check_extents(&ok, &regions, Some(1)),
        Err(Rule::WrongRegion {
            index: 0,
            found: 0,
            region: 1
        })
    );
    let cases: [(&[Extent], Rule); 6] = [
        (&[Extent::new(256 * MIB, 0)], Rule::EmptyExtent { index: 0 }),
        (
            &[ok[0], Extent::new(257 * MIB, 2 * MIB)],
            Rule::StartMisaligned {
                index: 1,
                dpa: 257 * MIB,
                block_size: 2 * MIB,
            },
        ),
        (
            &[Extent::new(256 * MIB, 3 * MIB)],
            Rule::LengthMisaligned {
                index: 0,
                length: 3 * MIB,
                block_size: 2 * MIB,
            },
        ),
        (
            &[Extent::new(510 * MIB, 4 * MIB)],
            Rule::OutsideRegions {
                index: 0,
                dpa: 510 * MIB,
                length: 4 * MIB,
            },
        ),
        (
            &[Extent::new(0, 2 * MIB)],
            Rule::OutsideRegions {
                index: 0,
                dpa: 0,
                length: 2 * MIB,
            },
        ),
        (
            &[ok[1], ok[0], Extent::new(308 * MIB, 4 * MIB)],
            Rule::Overlap { a: 0, b: 2 },
        ),
    ];
    for (extents, rule) in cases {
        assert_eq!(check_extents(extents, &regions, None), Err(rule));
        assert!(rule.to_string().contains("extent"), "{rule}");
    }
    assert!(Rule::StartMisaligned {
        index: 1,
        dpa: 257 * MIB,
        block_size: 2 * MIB
    }
    .to_string()
    .contains("§9.13.3"));
    assert_eq!(check_extents(&[], &regions, None), Ok(()));
    // An extent reaching past the address space.
    assert!(check_extents(&[Extent::new(u64::MAX - 1, 4)], &regions, None).is_err());
}

#[test]
fn arithmetic_without_64_bit_division() {
    for (n, d) in [
        (0u64, 1u64),
        (10, 3),
        (u64::MAX, 7),
        (u64::MAX, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (1 << 63, (1 << 63) + 1),
        (12345678901234, 1 << 21),
        (98765, 98766),
    ] {
        assert_eq!(rem64(n, d), Some(n % d), "{n} % {d}");
    }
    assert_eq!(rem64(5, 0), None);
    assert_eq!(shl_checked(3, 62), Some(3 << 62));
    assert_eq!(shl_checked(4, 62), None);
    assert_eq!(shl_checked(1, 63), Some(1 << 63));
    assert_eq!(shl_checked(1, 64), None);
    assert_eq!(shl_checked(0, 70), None);
    assert_eq!(Size(1018 * MIB).to_string(), "1018 MiB");
    assert_eq!(Size(2 << 30).to_string(), "2 GiB");
    assert_eq!(Size(3 << 40).to_string(), "3 TiB");
    assert_eq!(Size(1536).to_string(), "0x600 bytes");
    assert_eq!(Size(0).to_string(), "0 bytes");
    assert_eq!(Size(100).to_string(), "100 bytes");
    assert_eq!(Size(3 * MIB + 1).to_string(), "0x300001 bytes");
}

#[test]
fn coverage() {
    let held = [
        Extent::new(300, 100),
        Extent::new(100, 100),
        Extent::new(200, 50),
        Extent::new(240, 60),
    ];
    assert!(covered(100, 300, &held));
    assert!(covered(150, 10, &held));
    assert!(!covered(50, 60, &held));
    assert!(!covered(350, 100, &held));
    assert!(covered(7, 0, &held));
    assert!(!covered(u64::MAX, 2, &held));
    assert!(!covered(100, 10, &[]));
}

#[test]
fn rule_texts() {
    let t = Rule::NoSuchHost { host: 3, hosts: 1 }.to_string();
    assert_eq!(
        t,
        "host 3: the device serves 1 host(s), ids 0 to 0 (Get DCD Info 5600h; CXL r3.1 §7.6.7.6)"
    );
    let t = Rule::SelectionUnsupported {
        policy: SelectionPolicy::Free,
        supported: 0b100,
    }
    .to_string();
    assert!(
        t.starts_with("selection policy free: the device supports prescriptive"),
        "{t}"
    );
    let t = Rule::RemovalUnsupported {
        policy: RemovalPolicy::TagBased,
        supported: 0,
    }
    .to_string();
    assert!(t.contains("supports none"), "{t}");
    let t = Rule::SelectionUnsupported {
        policy: SelectionPolicy::Prescriptive,
        supported: 0b11,
    }
    .to_string();
    assert!(t.contains("supports free, contiguous"), "{t}");
    for r in [
        Rule::NoSuchRegion {
            region: 2,
            regions: 2,
        },
        Rule::SanitizeNotConfigurable { region: 0 },
        Rule::NoExtents,
        Rule::Allocated { index: 0, host: 0 },
        Rule::NotHeld { index: 0, host: 0 },
        Rule::LengthNotBlocks {
            length: 1,
            block_size: 2,
        },
        Rule::NotEnoughFree {
            region: 0,
            asked: 2,
            free: 1,
        },
        Rule::TooManyExtents {
            count: 600,
            available: 512,
        },
        Rule::NoTag,
        Rule::TagNotHeld { host: 0 },
        Rule::NothingHeld { host: 0 },
    ] {
        assert!(r.to_string().len() > 20, "{r}");
    }
}
