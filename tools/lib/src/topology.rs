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
}

/// The whole topology of one boot.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Topology {
    /// Guest architecture.
    pub arch: String,
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
                        })
                        .collect(),
                }
            })
            .collect();
        Self {
            arch: arch.to_string(),
            switches,
            emulated: Vec::new(),
            cxl_host_bridge,
        }
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
        });
        let text = serde_json::to_string(&t).unwrap();
        let back: Topology = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        // The optional parts may be left out.

        let old: Topology = serde_json::from_str(r#"{"arch":"x86_64","switches":[]}"#).unwrap();
        assert!(!old.cxl_host_bridge && old.emulated.is_empty());
    }
}
