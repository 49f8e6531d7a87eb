// SPDX-License-Identifier: GPL-2.0

//! The emulated topology of one test boot: what the host runner builds in QEMU and writes to
//! the guest's `/etc/swcci/topology.json`, and what the in-guest suite expects to find.
//!
//! Both sides use these types, so the numbering scheme and the file format are defined once.

use serde::{Deserialize, Serialize};
use std::io;

/// A type-3 device behind a downstream port.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Type3 {
    /// Downstream port number (`port=` of its `cxl-downstream`).
    pub port: u8,
    /// Serial number.
    pub serial: u64,
    /// DC regions (`num-dc-regions=`); 0: not a Dynamic Capacity Device.
    #[serde(default)]
    pub dc_regions: u8,
    /// Bytes of its dynamic capacity (`volatile-dc-memdev=`, split evenly between the
    /// regions); 0 without DC regions.
    #[serde(default)]
    pub dc_size: u64,
}

impl Type3 {
    /// Dynamic capacity of a device made a DCD with [`Topology::make_dcd`]: 2 GiB, so that
    /// QEMU's 512-extent limit (2 MiB blocks) can be reached.
    pub const DC_SIZE: u64 = 2 << 30;
}

/// A switch and its mailbox CCI.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Switch {
    /// Serial number of the upstream port (what Identify reports).
    pub serial: u64,
    /// Port number of the upstream port.
    pub usp_port: u8,
    /// Downstream port numbers, ascending.
    pub dsps: Vec<u8>,
    /// Type-3 devices.
    pub type3: Vec<Type3>,
}

/// A device served by the vfio-user emulator (`tools/emu`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Emulated {
    /// Personality: "switch" or "mmpt".
    pub personality: String,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Serial number reported by Identify (switch personality).
    pub serial: u64,
    /// Name of the virtio serial port of its control channel.
    pub control: String,
    /// Whether it has MSI-X (else the driver polls it).
    pub msix: bool,
    /// Further options the runner gives the emulator (`--ports 6 --mld-port 3 ...`).
    #[serde(default)]
    pub args: Vec<String>,
    /// The fabric behind a switch personality, as `swcci-emu --describe-json` with the same
    /// options describes it (tools/emu/README.md); `None` for an MMPT function.
    #[serde(default)]
    pub fabric: Option<EmuFabric>,
    /// The same switch as an MCTP endpoint over the serial binding (`swcci-emu --mctp`), if
    /// the scenario gives it one.
    #[serde(default)]
    pub mctp: Option<EmuMctp>,
}

/// An emulated switch's MCTP endpoint: the guest tty wired to it and the EIDs to use.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuMctp {
    /// The guest's tty (a virtio console) on which to set the N_MCTP line discipline.
    pub tty: String,
    /// The virtio port name of that console (`swcci.mctpN`).
    pub name: String,
    /// The endpoint's EID.
    pub eid: u8,
    /// The EID the guest gives its end of the link.
    pub local_eid: u8,
}

/// The fabric of an emulated switch: the parts of `swcci-emu --describe-json` the tests
/// compare with (other members of that document are ignored).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EmuFabric {
    /// Physical ports, by id.
    pub ports: Vec<EmuPort>,
    /// VCSs.
    pub vcs: Vec<EmuVcs>,
}

/// A physical port of an emulated switch.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuPort {
    /// Port id.
    pub port: u8,
    /// `usp` or `dsp`.
    pub role: String,
    /// The VCS of an upstream port.
    #[serde(default)]
    pub vcs: Option<u8>,
    /// Configuration state as Get Physical Port State names it (`USP`, `DSP`, `disabled`,
    /// ...).
    pub state: String,
    /// The device behind it.
    pub device: Option<EmuDevice>,
}

/// A device behind a port of an emulated switch.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuDevice {
    /// `type3`, `mld` or `dead` (never answers).
    pub kind: String,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Serial number Identify reports.
    pub serial: u64,
    /// Memory size in bytes (MLD).
    #[serde(default)]
    pub memory_size: Option<u64>,
    /// LDs (MLD).
    #[serde(default)]
    pub lds: Vec<EmuLd>,
}

/// An LD of an emulated multi-logical device.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuLd {
    /// LD id.
    pub ld: u8,
    /// Serial number its Identify reports.
    pub serial: u64,
    /// Range 1 allocation, in 256 MiB units.
    pub range1: u64,
    /// Range 2 allocation, in 256 MiB units.
    pub range2: u64,
}

/// A VCS of an emulated switch.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuVcs {
    /// VCS id.
    pub vcs: u8,
    /// Its upstream port.
    pub usp: u8,
    /// Its vPPBs.
    pub vppbs: Vec<EmuVppb>,
}

/// A vPPB of an emulated VCS.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmuVppb {
    /// vPPB index.
    pub vppb: u8,
    /// The port it is bound to.
    pub port: Option<u8>,
    /// The LD it is bound to.
    pub ld: Option<u8>,
    /// Binding status as Get Virtual CXL Switch Info names it (`unbound`,
    /// `bound-physical-port`, `bound-ld`, `bind-or-unbind-in-progress`).
    pub status: String,
}

/// The whole topology of one boot.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Topology {
    /// Guest architecture (`x86_64`, `arm64`, `arm`).
    pub arch: String,
    /// QEMU machine the guest runs on (`q35`, `virt`, `ast2600-evb`); empty in files written
    /// before it was recorded.
    #[serde(default)]
    pub machine: String,
    /// Switches of QEMU's CXL emulation.
    pub switches: Vec<Switch>,
    /// Devices of the emulator.
    #[serde(default)]
    pub emulated: Vec<Emulated>,
    /// Whether the switches sit behind a CXL host bridge (`pxb-cxl`) rather than on plain
    /// PCIe root ports.
    #[serde(default)]
    pub cxl_host_bridge: bool,
}

impl Topology {
    /// `switches` switches with `type3` type-3 devices each. Switch `i`'s upstream port is
    /// port 2 with serial 0x1234 + i; downstream ports are numbered 0, 1, 3, 4, ...: port 1
    /// is always empty (for the empty-port tests).
    pub fn new(arch: &str, switches: usize, type3: usize, cxl_host_bridge: bool) -> Self {
        let switches = (0..switches as u64)
            .map(|i| {
                let t3_ports: Vec<u8> = (0u8..=250)
                    .filter(|p| *p != 1 && *p != 2)
                    .take(type3)
                    .collect();
                let mut dsps = t3_ports.clone();
                dsps.push(1);
                dsps.sort_unstable();
                Switch {
                    serial: 0x1234 + i,
                    usp_port: 2,
                    dsps,
                    type3: (0u64..)
                        .zip(t3_ports)
                        .map(|(j, port)| Type3 {
                            port,
                            serial: 0x100 * (i + 1) + j + 3,
                            dc_regions: 0,
                            dc_size: 0,
                        })
                        .collect(),
                }
            })
            .collect();
        Self {
            arch: arch.to_string(),
            machine: String::new(),
            switches,
            emulated: Vec::new(),
            cxl_host_bridge,
        }
    }

    /// Makes the first type-3 device of the first switch a Dynamic Capacity Device with
    /// `regions` DC regions of [`Type3::DC_SIZE`] in all (its static memory stays: QEMU's DC
    /// regions follow it in DPA); returns its port. `None` if there is no such device.
    pub fn make_dcd(&mut self, regions: u8) -> Option<u8> {
        let t = self.switches.first_mut()?.type3.first_mut()?;
        t.dc_regions = regions;
        t.dc_size = Type3::DC_SIZE;
        Some(t.port)
    }

    /// The Dynamic Capacity Devices: switch index, device.
    pub fn dcds(&self) -> impl Iterator<Item = (usize, &Type3)> {
        self.switches
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.type3.iter().map(move |t| (i, t)))
            .filter(|(_, t)| t.dc_regions > 0)
    }

    /// Reads a topology file. The error names the file.
    pub fn load(path: &str) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("read topology {path}: {e}")))?;
        serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("parse topology {path}: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_leaves_port_1_empty() {
        let t = Topology::new("x86_64", 2, 3, true);
        assert_eq!(t.switches.len(), 2);
        let s = &t.switches[1];
        assert_eq!(s.serial, 0x1235);
        assert_eq!(s.dsps, [0, 1, 3, 4]);
        let ports: Vec<u8> = s.type3.iter().map(|t| t.port).collect();
        assert_eq!(ports, [0, 3, 4]);
        assert_eq!(s.type3[2].serial, 0x200 + 2 + 3);
    }

    #[test]
    fn round_trips_through_json() {
        let mut t = Topology::new("arm64", 1, 2, false);
        t.emulated.push(Emulated {
            personality: "mmpt".into(),
            vendor: 0x1b36,
            device: 0x5c02,
            serial: 7,
            control: "swcci.emu0".into(),
            msix: true,
            args: vec!["--ports".into(), "6".into()],
            fabric: None,
            mctp: Some(EmuMctp {
                tty: "/dev/hvc1".into(),
                name: "swcci.mctp0".into(),
                eid: 9,
                local_eid: 8,
            }),
        });
        let text = serde_json::to_string(&t).unwrap();
        let back: Topology = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        // The optional parts may be left out.

        let old: Topology = serde_json::from_str(r#"{"arch":"x86_64","switches":[]}"#).unwrap();
        assert!(!old.cxl_host_bridge && old.emulated.is_empty() && old.machine.is_empty());
        let old: Type3 = serde_json::from_str(r#"{"port":0,"serial":3}"#).unwrap();
        assert_eq!((old.dc_regions, old.dc_size), (0, 0));
    }

    #[test]
    fn one_dynamic_capacity_device() {
        let mut t = Topology::new("x86_64", 2, 2, true);
        assert_eq!(t.dcds().count(), 0);
        assert_eq!(t.make_dcd(2), Some(0));
        let d: Vec<_> = t.dcds().collect();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].0, d[0].1.dc_regions, d[0].1.dc_size), (0, 2, 2 << 30));
        assert_eq!(Topology::new("x86_64", 0, 0, true).make_dcd(2), None);
    }

    #[test]
    fn reads_the_emulators_description() {
        // The members tools/emu/README.md documents for `--describe-json` (others ignored).
        let text = r#"{"personality":"switch","vendor":6966,"device":23553,"serial":7,
            "payload_size":2048,"firmware":{"slots":[]},
            "ports":[{"port":0,"role":"usp","vcs":0,"state":"USP","device":null},
                     {"port":1,"role":"dsp","state":"DSP","device":{"kind":"mld",
                      "vendor":6966,"device":23556,"serial":8589934599,
                      "memory_size":4294967296,
                      "lds":[{"ld":0,"serial":281483566645255,"range1":4,"range2":0}]}},
                     {"port":2,"role":"dsp","state":"disabled","device":null}],
            "vcs":[{"vcs":0,"usp":0,"vppbs":[
                {"vppb":0,"port":1,"ld":0,"status":"bound-ld"},
                {"vppb":1,"port":null,"ld":null,"status":"unbound"}]}]}"#;
        let f: EmuFabric = serde_json::from_str(text).unwrap();
        assert_eq!(f.ports.len(), 3);
        assert_eq!(f.ports[0].vcs, Some(0));
        let mld = f.ports[1].device.as_ref().unwrap();
        assert_eq!((mld.kind.as_str(), mld.lds.len()), ("mld", 1));
        assert_eq!(mld.memory_size, Some(4 << 30));
        assert!(f.ports[2].device.is_none());
        assert_eq!(f.vcs[0].vppbs[0].ld, Some(0));
        assert_eq!(f.vcs[0].vppbs[1].status, "unbound");
    }
}
