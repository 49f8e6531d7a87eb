// SPDX-License-Identifier: GPL-2.0

//! The emulated topology, as the host runner describes it in /etc/swcci/topology.json.

use serde::{Deserialize, Serialize};

/// A type-3 device behind a downstream port.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Type3 {
    /// Downstream port number (`port=` of its cxl-downstream).
    pub port: u8,
    /// Serial number.
    pub serial: u64,
}

/// One switch with its mailbox CCI.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Switch {
    /// Serial number of the upstream port (what Identify reports).
    pub serial: u64,
    /// Port number of the upstream port.
    pub usp_port: u8,
    /// Downstream port numbers.
    pub dsps: Vec<u8>,
    /// Type-3 devices.
    pub type3: Vec<Type3>,
}

/// A device served by the vfio-user emulator.
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
}

impl Topology {
    /// Reads the topology file.
    pub fn load(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("read topology {path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("parse topology {path}: {e}"))
    }
}
