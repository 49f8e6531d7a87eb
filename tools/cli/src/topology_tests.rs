// SPDX-License-Identifier: GPL-2.0

//! Rendering of a fabric built by hand: JSON members, the tree, DOT.

use super::*;
use std::time::Duration;
use swcci::dcd::{DcdState, Extent, HostExtents, HostRegions};
use swcci::fabric::{Place, Switch};
use swcci::{LdAllocs, Vcs, Vppb};
use swcci_proto::payload::dcd::{DcRegion, DcdInfo, ExtentCounts};
use swcci_proto::payload::identify::{ComponentType, Identify};
use swcci_proto::payload::ld::{Granularity, LdAllocation, LdInfo};
use swcci_proto::payload::logs::Uuid;
use swcci_proto::payload::switch::{PortInfo, VcsState};

fn id(vendor: u16, device: u16, serial: u64, kind: u8) -> Identify {
    Identify {
        vendor_id: vendor,
        device_id: device,
        subsys_vendor_id: 0,
        subsys_id: 0,
        serial,
        max_msg_size_log2: 11,
        component_type: ComponentType::from_raw(kind),
    }
}

/// A port information block (CXL r3.1 Table 7-19): `state` 3 DSP / 4 USP, `kind` the
/// connected device type.
fn port(id: u8, state: u8, kind: u8) -> PortInfo {
    let b = [
        id, state, 2, 0, kind, 0x07, 16, 16, 0x1f, 5, 5, 4, 0, 0, 0, 1,
    ];
    PortInfo::decode(&b).unwrap()
}

/// QEMU's DCD: 1 host, 2 regions of 256 MiB with 2 MiB blocks; host 0 holds 4 MiB of region 0
/// and a tagged 2 MiB extent of region 1.
fn dcd_state() -> DcdState {
    let mib = 1u64 << 20;
    let r = |base| DcRegion {
        base,
        decode_len: 1,
        length: 256 * mib,
        block_size: 2 * mib,
        flags: 0,
        sanitize_on_release: false,
    };
    DcdState {
        info: DcdInfo {
            num_hosts: 1,
            num_regions: 2,
            selection_policies: 0b100,
            removal_policies: 0b10,
            sanitize_config_mask: 0,
            total_capacity: 2,
            block_size_masks: [2 * mib, 2 * mib, 0, 0, 0, 0, 0, 0],
        },
        regions: HostRegions {
            host_id: 0,
            num_regions: 2,
            regions: vec![r(256 * mib), r(512 * mib)],
            counts: Some(ExtentCounts {
                extents_supported: 512,
                extents_available: 510,
                tags_supported: 0,
                tags_available: 0,
            }),
        },
        hosts: vec![HostExtents {
            host_id: 0,
            generation: 2,
            extents: vec![
                Extent::new(256 * mib, 4 * mib),
                Extent {
                    tag: Uuid([0xab; 16]),
                    ..Extent::new(600 * mib, 2 * mib)
                },
            ],
        }],
    }
}

/// Switch 0: VCS 0 (vPPB 0 bound to port 0, vPPB 1 to LD 1 of port 3, vPPB 2 unbound), port 0
/// with a type-3 device (a DCD), port 1 empty, port 2 the USP, port 3 an MLD with 2 LDs. Switch 1: its
/// device on port 0 did not answer.
fn fabric() -> Fabric {
    let vppb = |id, status, port, ld| Vppb {
        id,
        status,
        port,
        ld,
    };
    let s0 = Switch {
        node: "/dev/cxl/switch0".into(),
        info: None,
        identify: Some(id(0x19e5, 0xa128, 0x1234, 0)),
        identify_switch: None,
        vcss: Some(vec![Vcs {
            id: 0,
            state: VcsState::Enabled,
            usp: 2,
            num_vppbs: 3,
            vppbs: vec![
                vppb(0, BindingStatus::BoundPort, 0, 0),
                vppb(1, BindingStatus::BoundLd, 3, 1),
                vppb(2, BindingStatus::Unbound, 0, 0),
            ],
        }]),
        ports: vec![
            Port {
                info: port(0, 3, 4),
                device: Some(Component {
                    identify: Some(id(0x8086, 0x0d93, 0x103, 3)),
                    dcd: Some(dcd_state()),
                    ..Component::default()
                }),
            },
            Port {
                info: port(1, 3, 0),
                device: None,
            },
            Port {
                info: port(2, 4, 0),
                device: None,
            },
            Port {
                info: port(3, 3, 5),
                device: Some(Component {
                    identify: Some(id(0x8086, 0x0d94, 0x500, 3)),
                    ld_info: Some(LdInfo {
                        memory_size: 2 << 30,
                        ld_count: 2,
                        qos_telemetry: 1,
                    }),
                    ld_allocations: Some(LdAllocs {
                        number_of_lds: 2,
                        granularity: Granularity::Mib256,
                        lds: vec![
                            (
                                0,
                                LdAllocation {
                                    range1: 4,
                                    range2: 0,
                                },
                            ),
                            (
                                1,
                                LdAllocation {
                                    range1: 2,
                                    range2: 1,
                                },
                            ),
                        ],
                    }),
                    dcd: None,
                    partial: false,
                }),
            },
        ],
        partial: false,
        commands: 9,
        elapsed: Duration::from_millis(3),
    };
    let s1 = Switch {
        node: "/dev/cxl/switch1".into(),
        info: None,
        identify: Some(id(0x19e5, 0xa128, 0x1235, 0)),
        identify_switch: None,
        vcss: None,
        ports: vec![Port {
            info: port(0, 3, 4),
            device: Some(Component {
                partial: true,
                ..Component::default()
            }),
        }],
        partial: true,
        commands: 4,
        elapsed: Duration::from_millis(2003),
    };
    let dead = ItemError {
        place: Place {
            node: "/dev/cxl/switch1".into(),
            target: swcci::Target::Port(0),
        },
        error: swcci::Error::Os {
            op: "Tunnel Management Command (5300h) on /dev/cxl/switch1".into(),
            err: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        },
    };
    Fabric {
        switches: vec![s0, s1],
        errors: vec![dead],
    }
}

#[test]
fn json_document() {
    let j = to_json(&fabric());
    assert_eq!(j["partial"], true);
    assert_eq!(j["commands"], 13);
    let s0 = &j["switches"][0];
    assert_eq!(s0["node"], "/dev/cxl/switch0");
    assert_eq!(s0["partial"], false);
    assert_eq!(s0["identify"]["serial"], 0x1234);
    assert_eq!(s0["switch"], Value::Null);
    assert_eq!(s0["pci_address"], Value::Null);
    assert_eq!(s0["elapsed_ms"], 3);
    let v = &s0["vcs"][0];
    assert_eq!((v["vcs"].clone(), v["usp"].clone()), (json!(0), json!(2)));
    assert_eq!(
        v["vppbs"][1],
        json!({"vppb": 1, "binding": "bound-ld", "binding_code": 3, "port": 3, "ld": 1})
    );
    assert_eq!(v["vppbs"][2]["port"], Value::Null);
    let ports = s0["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 4);
    assert_eq!(ports[0]["state"], "DSP");
    assert_eq!(ports[0]["device"]["identify"]["serial"], 0x103);
    assert_eq!(ports[0]["device"]["ld_info"], Value::Null);
    let d = &ports[0]["device"]["dcd"];
    assert_eq!(d["host_extents"][0]["host"], 0);
    assert_eq!(d["hosts"], 1);
    assert_eq!(d["regions"], 2);
    assert_eq!(d["total_capacity"], 512u64 << 20);
    assert_eq!(d["selection_policies"], json!(["prescriptive"]));
    assert_eq!(d["extents_available"], 510);
    assert_eq!(
        d["dc_regions"][0],
        json!({"region": 0, "base": 256u64 << 20, "length": 256u64 << 20,
               "decode_length": 256u64 << 20, "block_size": 2u64 << 20, "flags": [],
               "flags_code": 0, "sanitize": false, "free": 252u64 << 20})
    );
    assert_eq!(d["dc_regions"][1]["free"], 254u64 << 20);
    let h = &d["host_extents"][0];
    assert_eq!(
        (h["bytes"].clone(), h["generation"].clone()),
        (json!(6u64 << 20), json!(2))
    );
    assert_eq!(
        h["extents"][1],
        json!({"host": 0, "start": 600u64 << 20, "length": 2u64 << 20, "region": 1,
               "tag": "abababab-abab-abab-abab-abababababab", "shared_seq": 0})
    );
    assert_eq!(ports[1]["device"], Value::Null);
    let mld = &ports[3]["device"];
    assert_eq!(ports[3]["type"], "cxl-type-3-mld");
    assert_eq!(mld["ld_info"]["ld_count"], 2);
    assert_eq!(mld["dcd"], Value::Null);
    assert_eq!(mld["ld_info"]["memory_size"], 2u64 << 30);
    let a = &mld["ld_allocations"];
    assert_eq!(a["granularity"], 256u64 << 20);
    assert_eq!(a["number_of_lds"], 2);
    assert_eq!(
        a["lds"][1],
        json!({"ld": 1, "range1": 2, "range1_bytes": 512u64 << 20, "range2": 1,
               "range2_bytes": 256u64 << 20})
    );
    let s1 = &j["switches"][1];
    assert_eq!(s1["partial"], true);
    assert_eq!(s1["vcs"], Value::Null);
    assert_eq!(s1["ports"][0]["device"]["partial"], true);
    assert_eq!(s1["ports"][0]["device"]["identify"], Value::Null);
    let e = &j["errors"][0];
    assert_eq!(e["node"], "/dev/cxl/switch1");
    assert_eq!(
        (e["port"].clone(), e["ld"].clone()),
        (json!(0), Value::Null)
    );
    assert_eq!(e["errno"], libc::ETIMEDOUT);
    assert_eq!(e["errno_name"], "ETIMEDOUT");
    assert_eq!(e["timeout"], true);
    assert_eq!(e["rc"], Value::Null);
    assert!(e["message"].as_str().unwrap().contains("ETIMEDOUT"));
}

#[test]
fn tree() {
    let text = to_tree(&fabric(), &Palette::new(false));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "switch0 /dev/cxl/switch0: 19e5:a128 serial 0x0000000000001234 (switch)"
    );
    assert_eq!(lines[1], "├── VCS 0 enabled, USP 2, 3 vPPBs");
    assert_eq!(lines[2], "│   ├── vPPB 0 bound-physical-port → port 0");
    assert_eq!(lines[3], "│   ├── vPPB 1 bound-ld → port 3 LD 1");
    assert_eq!(lines[4], "│   └── vPPB 2 unbound");
    assert_eq!(
        lines[5],
        "├── port 0 DSP, x16/x16, 32/32 GT/s, L0, cxl-type-3-sld"
    );
    assert_eq!(
        lines[6],
        "│   └── 8086:0d93 serial 0x0000000000000103 (type-3 device), DCD 512 MiB, 2 region(s), \
         1 host(s)"
    );
    assert_eq!(
        lines[7],
        "│       ├── DC region 0: 256 MiB at 0x10000000, block 2 MiB, 252 MiB free"
    );
    assert_eq!(
        lines[8],
        "│       ├── DC region 1: 256 MiB at 0x20000000, block 2 MiB, 254 MiB free"
    );
    assert_eq!(
        lines[9],
        "│       └── host 0: 2 extent(s), 6 MiB: 0x10000000 4 MiB, 0x25800000 2 MiB"
    );
    assert!(lines[10].starts_with("├── port 1 DSP"), "{}", lines[10]);
    assert!(lines[11].starts_with("├── port 2 USP"), "{}", lines[11]);
    assert!(lines[12].starts_with("└── port 3 DSP"), "{}", lines[12]);
    assert_eq!(
        lines[13],
        "    └── 8086:0d94 serial 0x0000000000000500 (type-3 device), 2 LDs, 2 GiB"
    );
    assert_eq!(
        lines[14],
        "        ├── LD 0: range 1 4 (1 GiB), range 2 0 (0 bytes)"
    );
    assert_eq!(
        lines[15],
        "        └── LD 1: range 1 2 (512 MiB), range 2 1 (256 MiB)"
    );
    assert_eq!(lines[16], "");
    assert!(lines[17].ends_with("[partial]"), "{}", lines[17]);
    assert_eq!(lines[19], "    └── device (identity not read) [partial]");
    assert!(!text.contains('\x1b'));
    // With colours: the same text with escape codes around the styled parts.
    let coloured = to_tree(&fabric(), &Palette::new(true));
    assert!(coloured.contains("\x1b[1mswitch0\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[1m\x1b[31m[partial]") || coloured.contains("[partial]\x1b[0m"));
    let empty = to_tree(&Fabric::default(), &Palette::new(false));
    assert!(empty.starts_with("no CXL switch CCI nodes"));
}

#[test]
fn dot() {
    let d = to_dot(&fabric());
    assert!(
        d.starts_with("digraph fabric {\n") && d.ends_with("}\n"),
        "{d}"
    );
    for needle in [
        "  s0 -> s0_vcs0;",
        "  s0 -> s0_p3;",
        "  s0_p3 -> s0_p3_dev;",
        "  s0_vcs0 -> s0_p0 [style=dashed, label=\"vPPB 0\"];",
        "  s0_vcs0 -> s0_p3 [style=dashed, label=\"vPPB 1 LD 1\"];",
        "\\n2 LDs\\nLD 0: 1 GiB\\nLD 1: 768 MiB\"",
        "\\nDCD: 506 MiB free of 512 MiB\\nhost 0: 6 MiB in 2 extent(s)\"",
        "s1_p0_dev [label=\"device\", shape=component, color=red, fontcolor=red];",
    ] {
        assert!(d.contains(needle), "{needle} in\n{d}");
    }
    // vPPB 2 is unbound: no edge.
    assert!(!d.contains("vPPB 2"));
    assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    assert!(!d.contains("switch0\n19e5"), "labels are one line each");
}
