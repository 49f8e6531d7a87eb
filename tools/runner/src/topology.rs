// SPDX-License-Identifier: GPL-2.0

//! The QEMU arguments that build a test topology (`swcci::topology`, which the guest's suite
//! reads back from the initramfs).

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;
pub use swcci::topology::{EmuFabric, EmuMctp, Emulated, Topology};

/// The fabric the emulator builds for `e` (a switch personality), from `swcci-emu
/// --describe-json` with the options the runner starts it with.
pub fn describe(emu: &Path, e: &Emulated) -> anyhow::Result<EmuFabric> {
    if emu.as_os_str().is_empty() {
        bail!("this scenario needs the device emulator: pass --emu PATH-TO-swcci-emu");
    }
    let out = Command::new(emu)
        .arg("--describe-json")
        .args(["--personality", &e.personality])
        .args(["--serial", &format!("{:#x}", e.serial)])
        .args(&e.args)
        .output()
        .with_context(|| format!("run {} --describe-json", emu.display()))?;
    if !out.status.success() {
        bail!(
            "{} --describe-json {}: {}",
            emu.display(),
            e.args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parse the output of {} --describe-json", emu.display()))
}

/// Where the PCIe functions of a boot are plugged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// `q35` and `virt`: every switch and every emulated function on a root port of its own
    /// on the host bridge's bus `pcie.0` (on `q35` the switches on CXL root ports of a
    /// `pxb-cxl` instead), the virtio console on `pcie.0` itself.
    RootPorts,
    /// `ast2600-evb`: the SoC has one root port (`aspeed.pcie-root-port`, device 8 of the
    /// root complex's bus, secondary bus `pcie.0`), and a PCIe link takes one device. A PCIe
    /// switch (`x3130-upstream`) there fans out: each switch, each emulated function and the
    /// virtio console get a downstream port (`xio3130-downstream`) of their own, so that
    /// everything is enumerated through the Aspeed root complex.
    Fanout,
}

/// Hands out the ports devices are plugged into, and collects the arguments that make them.
pub struct Ports {
    attach: Attach,
    args: Vec<String>,
    count: usize,
}

impl Ports {
    /// No port yet (with [`Attach::Fanout`], the fan-out switch's upstream port).
    pub fn new(attach: Attach) -> Self {
        let mut p = Self {
            attach,
            args: Vec::new(),
            count: 0,
        };
        if attach == Attach::Fanout {
            p.device("x3130-upstream,id=fanout,bus=pcie.0".into());
        }
        p
    }

    /// How devices are attached.
    pub fn attach(&self) -> Attach {
        self.attach
    }

    fn device(&mut self, d: String) {
        self.args.push("-device".into());
        self.args.push(d);
    }

    /// A new port named `id` for one device, whose bus is then `id`. `chassis` is the chassis
    /// number of its root port with [`Attach::RootPorts`]; with [`Attach::Fanout`] the
    /// downstream ports are chassis 1, slots 1, 2, ... in the order asked for.
    pub fn port(&mut self, id: &str, chassis: usize) -> String {
        self.count += 1;
        let d = match self.attach {
            Attach::RootPorts => {
                format!("pcie-root-port,id={id},bus=pcie.0,chassis={chassis},slot=0")
            }
            Attach::Fanout => format!(
                "xio3130-downstream,id={id},bus=fanout,chassis=1,slot={}",
                self.count
            ),
        };
        self.device(d);
        id.to_string()
    }

    /// The arguments of the ports made so far (each before the devices plugged into it).
    pub fn take_args(&mut self) -> Vec<String> {
        std::mem::take(&mut self.args)
    }
}

/// QEMU arguments that build `topo`'s switches and type-3 devices, with ports from `ports`.
/// Their backing files are created in `work`.
pub fn qemu_args(topo: &Topology, work: &Path, ports: &mut Ports) -> anyhow::Result<Vec<String>> {
    let mut a: Vec<String> = Vec::new();
    let push = |a: &mut Vec<String>, s: String| {
        a.push("-device".into());
        a.push(s);
    };
    let mut objects = Vec::new();
    for (i, sw) in topo.switches.iter().enumerate() {
        for (j, t) in sw.type3.iter().enumerate() {
            let mem = work.join(format!("mem-{i}-{j}.raw"));
            let lsa = work.join(format!("lsa-{i}-{j}.raw"));
            for (p, size) in [(&mem, 256u64 << 20), (&lsa, 1 << 20)] {
                let f = std::fs::File::create(p)?;
                f.set_len(size)?;
            }
            if t.dc_regions > 0 {
                // Sparse: QEMU maps it but nothing touches the dynamic capacity.
                let dc = work.join(format!("dc-{i}-{j}.raw"));
                std::fs::File::create(&dc)?.set_len(t.dc_size)?;
                objects.push(format!(
                    "memory-backend-file,id=dc{i}_{j},mem-path={},size={},share=on",
                    dc.display(),
                    t.dc_size
                ));
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
    if topo.cxl_host_bridge {
        push(
            &mut a,
            "pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1,hdm_for_passthrough=true".into(),
        );
    }
    for (i, sw) in topo.switches.iter().enumerate() {
        if topo.cxl_host_bridge {
            push(
                &mut a,
                format!(
                    "cxl-rp,port={i},bus=cxl.1,id=rp{i},chassis=0,slot={}",
                    2 + i
                ),
            );
        } else {
            // The port goes before the devices on it.
            ports.port(&format!("rp{i}"), 1 + i);
            a.extend(ports.take_args());
        }
        push(
            &mut a,
            format!(
                "cxl-upstream,port={},sn={},bus=rp{i},id=us{i},addr=0.0,multifunction=on",
                sw.usp_port, sw.serial
            ),
        );
        push(
            &mut a,
            format!("cxl-switch-mailbox-cci,bus=rp{i},addr=0.1,target=us{i}"),
        );
        for (k, p) in sw.dsps.iter().enumerate() {
            push(
                &mut a,
                format!(
                    "cxl-downstream,port={p},bus=us{i},id=s{i}dsp{p},chassis=0,slot={}",
                    10 + 10 * i + k
                ),
            );
        }
        for (j, t) in sw.type3.iter().enumerate() {
            let dc = if t.dc_regions > 0 {
                format!(
                    ",volatile-dc-memdev=dc{i}_{j},num-dc-regions={}",
                    t.dc_regions
                )
            } else {
                String::new()
            };
            push(&mut a, format!(
                "cxl-type3,bus=s{i}dsp{},persistent-memdev=mem{i}_{j},lsa=lsa{i}_{j},id=t3_{i}_{j},sn={}{dc}",
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
    if topo.cxl_host_bridge && !topo.switches.is_empty() {
        out.push("-M".into());
        out.push(
            "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G,cxl-fmw.0.interleave-granularity=1k"
                .into(),
        );
    }
    Ok(out)
}
