// SPDX-License-Identifier: GPL-2.0

//! The emulated topology: what the guest tests expect (written to the initramfs as JSON) and
//! the QEMU arguments that build it.

use serde::Serialize;
use std::path::Path;

/// A type-3 device behind a downstream port.
#[derive(Clone, Debug, Serialize)]
pub struct Type3 {
    /// Downstream port number.
    pub port: u8,
    /// Serial number.
    pub serial: u64,
}

/// A switch and its mailbox CCI.
#[derive(Clone, Debug, Serialize)]
pub struct Switch {
    /// Serial number of the upstream port.
    pub serial: u64,
    /// Upstream port number.
    pub usp_port: u8,
    /// Downstream port numbers.
    pub dsps: Vec<u8>,
    /// Type-3 devices.
    pub type3: Vec<Type3>,
}

/// A device served by the vfio-user emulator.
#[derive(Clone, Debug, Serialize)]
pub struct Emulated {
    /// Personality.
    pub personality: String,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Serial number (switch personality).
    pub serial: u64,
    /// virtio serial port name of its control channel.
    pub control: String,
    /// Whether it has MSI-X (else the driver polls it).
    pub msix: bool,
}

/// The topology of one boot.
#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    /// Guest architecture.
    pub arch: String,
    /// Switches.
    pub switches: Vec<Switch>,
    /// Emulated devices.
    pub emulated: Vec<Emulated>,
    /// Build the switches behind a CXL host bridge (pxb-cxl) rather than plain PCIe root ports.
    #[serde(skip)]
    pub cxl_host_bridge: bool,
}

impl Topology {
    /// `switches` switches with `type3` type-3 devices each. Downstream ports are numbered 0, 1,
    /// 3, 4, ...: port 1 is always empty (for the empty-port tests), the upstream port is 2.
    pub fn new(arch: &str, switches: usize, type3: usize, cxl_host_bridge: bool) -> Self {
        let switches = (0..switches)
            .map(|i| {
                let mut t3_ports: Vec<u8> = (0u8..=250)
                    .filter(|p| *p != 1 && *p != 2)
                    .take(type3)
                    .collect();
                let mut dsps = t3_ports.clone();
                dsps.push(1);
                dsps.sort_unstable();
                t3_ports.sort_unstable();
                Switch {
                    serial: 0x1234 + i as u64,
                    usp_port: 2,
                    dsps,
                    type3: t3_ports
                        .iter()
                        .enumerate()
                        .map(|(j, &port)| Type3 {
                            port,
                            serial: 0x100 * (i as u64 + 1) + j as u64 + 3,
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

    /// QEMU arguments for the switches. Backing files are created in `work`.
    pub fn qemu_args(&self, work: &Path) -> anyhow::Result<Vec<String>> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: String| {
            a.push("-device".into());
            a.push(s);
        };
        let mut objects = Vec::new();
        for (i, sw) in self.switches.iter().enumerate() {
            for (j, _) in sw.type3.iter().enumerate() {
                let mem = work.join(format!("mem-{i}-{j}.raw"));
                let lsa = work.join(format!("lsa-{i}-{j}.raw"));
                for (p, size) in [(&mem, 256u64 << 20), (&lsa, 1 << 20)] {
                    let f = std::fs::File::create(p)?;
                    f.set_len(size)?;
                }
                objects.push(format!(
                    "memory-backend-file,id=mem{i}_{j},mem-path={},size=256M,share=on",
                    mem.display()
                ));
                objects.push(format!(
                    "memory-backend-file,id=lsa{i}_{j},mem-path={},size=1M,share=on",
                    lsa.display()
                ));
            }
        }
        if self.cxl_host_bridge {
            push("pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1,hdm_for_passthrough=true".into());
        }
        for (i, sw) in self.switches.iter().enumerate() {
            if self.cxl_host_bridge {
                push(format!(
                    "cxl-rp,port={i},bus=cxl.1,id=rp{i},chassis=0,slot={}",
                    2 + i
                ));
            } else {
                push(format!(
                    "pcie-root-port,id=rp{i},bus=pcie.0,chassis={},slot=0",
                    1 + i
                ));
            }
            push(format!(
                "cxl-upstream,port={},sn={},bus=rp{i},id=us{i},addr=0.0,multifunction=on",
                sw.usp_port, sw.serial
            ));
            push(format!(
                "cxl-switch-mailbox-cci,bus=rp{i},addr=0.1,target=us{i}"
            ));
            for (k, p) in sw.dsps.iter().enumerate() {
                push(format!(
                    "cxl-downstream,port={p},bus=us{i},id=s{i}dsp{p},chassis=0,slot={}",
                    10 + 10 * i + k
                ));
            }
            for (j, t) in sw.type3.iter().enumerate() {
                push(format!(
                    "cxl-type3,bus=s{i}dsp{},persistent-memdev=mem{i}_{j},lsa=lsa{i}_{j},id=t3_{i}_{j},sn={}",
                    t.port, t.serial
                ));
            }
        }
        let mut out = Vec::new();
        for o in objects {
            out.push("-object".to_string());
            out.push(o);
        }
        out.extend(a);
        if self.cxl_host_bridge && !self.switches.is_empty() {
            out.push("-M".into());
            out.push(
                "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G,cxl-fmw.0.interleave-granularity=1k"
                    .into(),
            );
        }
        Ok(out)
    }
}
