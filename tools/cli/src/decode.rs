// SPDX-License-Identifier: GPL-2.0

//! The library's typed results (swcci-lib, which decodes every response with `swcci-proto`)
//! turned into named fields with units: the rows and objects the commands print. Nothing here
//! reads response bytes.

use crate::output::{Field, Group, Record};
use serde_json::Value;
use std::path::Path;
use swcci::{Response, Target, Vcs, Vppb};
use swcci_proto::opcode;
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::identify::Identify;
use swcci_proto::payload::ld::{Granularity, LdAllocation, LdInfo};
use swcci_proto::payload::logs::{self, effect, CelEntry, SupportedLog};
use swcci_proto::payload::switch::{self, IdentifySwitch, PortInfo};
use swcci_proto::rc::ReturnCode;
use swcci_proto::uapi::{self, SwcciInfo};

/// A return code: `key` is the number, `name_key` the specification's name.
pub fn rc_named(key: &'static str, name_key: &'static str, rc: ReturnCode) -> Field {
    Field::new(key, rc.to_string(), rc.raw()).with(name_key, rc.name().unwrap_or("unknown"))
}

/// A return code as `rc` and `rc_name`.
pub fn rc_field(rc: ReturnCode) -> Field {
    rc_named("rc", "rc_name", rc)
}

/// An opcode: `5100h` in text, a number in JSON, with its name as `opcode_name`.
pub fn opcode_field(key: &'static str, name_key: &'static str, op: u16) -> Field {
    let name = opcode::name(op);
    let text = match name {
        Some(n) => format!("{op:04x}h ({n})"),
        None => format!("{op:04x}h"),
    };
    Field::new(key, text, op).with(name_key, name)
}

/// An enumerated value: its name in text and JSON, the raw value as `code_key`.
fn named(key: &'static str, code_key: &'static str, name: String, raw: u8) -> Field {
    Field::new(key, name.clone(), name).with(code_key, raw)
}

/// Names of the bits set in `value`; bits without a name are `bitN`.
pub fn bit_names<T: Copy + Into<u64>>(value: T, names: &[(T, &str)]) -> Vec<String> {
    let v: u64 = value.into();
    let mut known = 0u64;
    let mut out = Vec::new();
    for &(bit, name) in names {
        let bit: u64 = bit.into();
        known |= bit;
        if v & bit != 0 {
            out.push(name.to_string());
        }
    }
    let unknown = v & !known;
    out.extend(
        (0..64)
            .filter(|i| (unknown >> i) & 1 != 0)
            .map(|i| format!("bit{i}")),
    );
    out
}

/// GT/s from tenths of GT/s: `2.5`, `32`.
fn gts_text(decigt: u16) -> String {
    if decigt.is_multiple_of(10) {
        (decigt / 10).to_string()
    } else {
        format!("{}.{}", decigt / 10, decigt % 10)
    }
}

fn gts_json(decigt: Option<u16>) -> Value {
    decigt
        .and_then(|d| serde_json::Number::from_f64(f64::from(d) / 10.0))
        .map_or(Value::Null, Value::Number)
}

/// A link speed code as text without the unit: `32`, `-` (no link), `07h?` (undefined).
fn speed_text(code: u8) -> String {
    match switch::link_speed_decigt(code) {
        Some(d) => gts_text(d),
        None if code == 0 => "-".to_string(),
        None => format!("{code:02x}h?"),
    }
}

/// Identify (0001h).
pub fn identify_record(id: &Identify) -> Record {
    let size = match id.max_msg_size() {
        Some(n) => Field::new("max_msg_size", format!("{n} bytes"), n),
        None => Field::new(
            "max_msg_size",
            format!("invalid (2^{})", id.max_msg_size_log2),
            Value::Null,
        ),
    };
    Record(vec![
        Field::hex("vendor_id", id.vendor_id, 4),
        Field::hex("device_id", id.device_id, 4),
        Field::hex("subsys_vendor_id", id.subsys_vendor_id, 4),
        Field::hex("subsys_id", id.subsys_id, 4),
        Field::hex("serial", id.serial, 16),
        size.with("max_msg_size_log2", id.max_msg_size_log2),
        named(
            "component_type",
            "component_type_code",
            id.component_type.to_string(),
            id.component_type.raw(),
        ),
    ])
}

/// Identify Switch Device (5100h).
pub fn identify_switch_record(s: &IdentifySwitch) -> Record {
    let ports: Vec<u8> = s.active_port_ids().collect();
    let vcs: Vec<u8> = s.active_vcs_ids().collect();
    Record(vec![
        Field::num("ingress_port", s.ingress_port),
        Field::num("physical_ports", s.num_physical_ports),
        Field::num("vcs_count", s.num_vcs),
        Field::ids("active_ports", &ports),
        Field::ids("active_vcs", &vcs),
        Field::num("total_vppbs", s.total_vppbs),
        Field::num("bound_vppbs", s.bound_vppbs),
        Field::num("hdm_decoders", s.hdm_decoders),
    ])
}

fn width_text(lanes: u8) -> String {
    if lanes == 0 {
        "-".to_string()
    } else {
        format!("x{lanes}")
    }
}

/// Supported link speeds vector: bit N is speed code N + 1.
fn speeds_field(mask: u8) -> Field {
    let decigts: Vec<u16> = (0u8..8)
        .filter(|i| mask & (1 << i) != 0)
        .filter_map(|i| switch::link_speed_decigt(i.saturating_add(1)))
        .collect();
    let unknown = (0u8..8).filter(|i| mask & (1 << i) != 0).count() != decigts.len();
    let mut text = crate::output::join(decigts.iter().map(|&d| gts_text(d)));
    if !decigts.is_empty() {
        text.push_str(" GT/s");
    }
    if unknown {
        text.push_str(&format!(" (mask {mask:02x}h)"));
    }
    let json: Vec<Value> = decigts.iter().map(|&d| gts_json(Some(d))).collect();
    Field::new("speeds", text, json).with("speeds_mask", mask)
}

/// One port information block.
pub fn port_record(p: &PortInfo) -> Record {
    let (cur, max) = (p.current_link_speed, p.max_link_speed);
    Record(vec![
        Field::num("port", p.port_id),
        named(
            "state",
            "state_code",
            p.config_state.to_string(),
            p.config_state.raw(),
        ),
        named(
            "type",
            "type_code",
            p.connected_type.to_string(),
            p.connected_type.raw(),
        ),
        named(
            "mode",
            "mode_code",
            p.connected_mode.to_string(),
            p.connected_mode.raw(),
        ),
        Field::names(
            "cxl_modes",
            bit_names(p.supported_cxl_modes, switch::CXL_MODE_NAMES),
        )
        .with("cxl_modes_mask", p.supported_cxl_modes),
        Field::new(
            "width",
            format!(
                "{}/{}",
                width_text(p.negotiated_link_width),
                width_text(p.max_link_width)
            ),
            p.negotiated_link_width,
        )
        .with("max_width", p.max_link_width),
        Field::new(
            "speed",
            format!("{}/{} GT/s", speed_text(cur), speed_text(max)),
            gts_json(switch::link_speed_decigt(cur)),
        )
        .with("speed_code", cur)
        .with("max_speed", gts_json(switch::link_speed_decigt(max)))
        .with("max_speed_code", max),
        speeds_field(p.supported_speeds),
        named("ltssm", "ltssm_code", p.ltssm.to_string(), p.ltssm.raw()),
        Field::num("first_lane", p.first_lane),
        Field::names("flags", bit_names(p.link_state, switch::LINK_FLAG_NAMES))
            .with("flags_mask", p.link_state),
        Field::num("ld_count", p.supported_ld_count),
    ])
}

/// Get Virtual CXL Switch Info (5200h): a VCS with its listed vPPBs.
pub fn vcs_group(v: &Vcs) -> Group {
    Group {
        head: Record(vec![
            Field::num("vcs", v.id),
            named("state", "state_code", v.state.to_string(), v.state.raw()),
            Field::num("usp", v.usp),
            Field::num("vppb_count", v.num_vppbs),
        ]),
        children: v.vppbs.iter().map(vppb_record).collect(),
    }
}

/// A small number, or `-` (JSON null) when absent.
pub fn opt_num(key: &'static str, n: Option<u8>) -> Field {
    match n {
        Some(n) => Field::num(key, n),
        None => Field::new(key, "-", Value::Null),
    }
}

/// One vPPB: its binding and the port (and LD) it is bound to.
pub fn vppb_record(b: &Vppb) -> Record {
    let (port, ld) = match b.status {
        switch::BindingStatus::Unbound => (None, None),
        switch::BindingStatus::BoundPort => (Some(b.port), None),
        _ => (Some(b.port), Some(b.ld)),
    };
    Record(vec![
        Field::num("vppb", b.id),
        named(
            "binding",
            "binding_code",
            b.status.to_string(),
            b.status.raw(),
        ),
        opt_num("port", port),
        opt_num("ld", ld),
    ])
}

/// One log of Get Supported Logs (0400h).
pub fn log_record(l: &SupportedLog) -> Record {
    let name = logs::log_name(&l.uuid);
    Record(vec![
        Field::new("uuid", l.uuid.to_string(), l.uuid.to_string()),
        Field::new("name", name.unwrap_or("-"), name),
        Field::new("size", format!("{} bytes", l.size), l.size),
    ])
}

/// One Command Effects Log entry.
pub fn cel_record(e: &CelEntry) -> Record {
    let name = opcode::name(e.opcode);
    Record(vec![
        Field::new("opcode", format!("{:04x}h", e.opcode), e.opcode),
        Field::new("name", name.unwrap_or("-"), name),
        Field::names("effects", bit_names(e.effect, effect::NAMES)).with("effects_mask", e.effect),
    ])
}

/// Background Operation Status (0002h).
pub fn bg_status_record(s: &BgOpStatus) -> Record {
    Record(vec![
        Field::new("running", if s.running { "yes" } else { "no" }, s.running),
        Field::new("percent", format!("{}%", s.percent), s.percent),
        opcode_field("opcode", "opcode_name", s.opcode),
        rc_field(s.rc),
        Field::hex("vendor_status", s.vendor_status, 4),
    ])
}

/// Bytes as text: `3 GiB`, `256 MiB`, `1000 bytes` (whole binary units only).
pub fn bytes_text(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Get LD Info (5400h): memory size (bytes), LD count, QoS telemetry capability.
pub fn ld_info_record(i: &LdInfo) -> Record {
    Record(vec![
        Field::new("memory_size", bytes_text(i.memory_size), i.memory_size),
        Field::num("ld_count", i.ld_count),
        Field::hex("qos_telemetry", i.qos_telemetry, 2),
    ])
}

/// One LD of Get LD Allocations (5401h): its two ranges in units of `granularity` and in
/// bytes (null for a reserved granularity code).
pub fn ld_record(id: u8, a: &LdAllocation, granularity: Granularity) -> Record {
    let bytes = |units: u64| {
        granularity
            .bytes()
            .and_then(|g| units.checked_mul(g))
            .map_or(Value::Null, Value::from)
    };
    let text = |units: u64| match granularity.bytes().and_then(|g| units.checked_mul(g)) {
        Some(b) => format!("{units} ({})", bytes_text(b)),
        None => units.to_string(),
    };
    Record(vec![
        Field::num("ld", id),
        Field::new("range1", text(a.range1), a.range1).with("range1_bytes", bytes(a.range1)),
        Field::new("range2", text(a.range2), a.range2).with("range2_bytes", bytes(a.range2)),
    ])
}

/// An LD allocation granularity: `256 MiB`, or `reserved (05h)`.
pub fn granularity_field(g: Granularity) -> Field {
    match g.bytes() {
        Some(b) => Field::new("granularity", bytes_text(b), b),
        None => Field::new(
            "granularity",
            format!("reserved ({:02x}h)", g.raw()),
            Value::Null,
        ),
    }
    .with("granularity_code", g.raw())
}

/// One row of `swcci list`: a switch CCI (`switch-cci`) or a PCIe MMB/MMPT function (`mmpt`).
pub fn list_row(path: &Path, info: &SwcciInfo) -> Record {
    let identified = info.flags & uapi::SWCCI_INFO_IDENTIFIED != 0;
    let (vid_did, serial) = if identified {
        (
            Field::new(
                "vid_did",
                format!("{:04x}:{:04x}", info.vendor_id, info.device_id),
                format!("{:04x}:{:04x}", info.vendor_id, info.device_id),
            )
            .with("vendor_id", info.vendor_id)
            .with("device_id", info.device_id),
            Field::hex("serial", info.serial, 16),
        )
    } else {
        (
            Field::new("vid_did", "-", Value::Null)
                .with("vendor_id", Value::Null)
                .with("device_id", Value::Null),
            Field::new("serial", "-", Value::Null),
        )
    };
    let irq = info.flags & uapi::SWCCI_INFO_IRQ != 0;
    let pci = swcci::info_str(&info.pci_addr);
    let kind = match info.kind {
        uapi::SWCCI_KIND_SWITCH_CCI => "switch-cci".to_string(),
        uapi::SWCCI_KIND_MMPT => "mmpt".to_string(),
        k => format!("unknown ({k})"),
    };
    Record(vec![
        Field::new(
            "node",
            path.display().to_string(),
            path.display().to_string(),
        ),
        Field::new("kind", kind.clone(), kind).with("kind_code", info.kind),
        Field::new("pci_address", pci.clone(), pci),
        vid_did.label("VID:DID"),
        serial,
        Field::new(
            "payload_size",
            format!("{} bytes", info.payload_size),
            info.payload_size,
        ),
        Field::new(
            "mode",
            if irq { "interrupt" } else { "poll" },
            if irq { "interrupt" } else { "poll" },
        ),
    ])
}

/// A row of `swcci list` for an MCTP endpoint that answered FM-API: the columns of a node's
/// row, from its Identify (0001h); no PCI address; mode `mctp`.
pub fn mctp_list_row(f: &swcci::mctp::Found) -> Record {
    let id = &f.identify;
    let node = f.addr.to_string();
    let payload = 1u64 << u32::from(id.max_msg_size_log2).min(20);
    Record(vec![
        Field::new("node", node.clone(), node),
        Field::new("kind", "fm-api", "fm-api").with("kind_code", Value::Null),
        Field::new("pci_address", "-", Value::Null),
        Field::new(
            "vid_did",
            format!("{:04x}:{:04x}", id.vendor_id, id.device_id),
            format!("{:04x}:{:04x}", id.vendor_id, id.device_id),
        )
        .with("vendor_id", id.vendor_id)
        .with("device_id", id.device_id)
        .label("VID:DID"),
        Field::hex("serial", id.serial, 16),
        Field::new("payload_size", format!("{payload} bytes"), payload),
        Field::new("mode", "mctp", "mctp"),
    ])
}

/// Where a command went: `port` and `ld` (`-`/null for levels not used).
pub fn target_record(t: Target) -> Record {
    Record(vec![opt_num("port", t.port()), opt_num("ld", t.ld())])
}

/// The return codes of a command's response: `rc` on a direct target; on a tunnelled one the
/// target, the outer Tunnel Management Command's `outer_rc`, the opcode of the innermost
/// response that came back and its `rc`.
pub fn response_record(t: Target, r: &Response) -> Record {
    if t == Target::Direct {
        return Record(vec![rc_field(r.rc())]);
    }
    let mut rec = target_record(t);
    rec.push(rc_named("outer_rc", "outer_rc_name", r.outer_rc));
    if let Some(h) = r.header {
        rec.push(opcode_field("inner_opcode", "inner_opcode_name", h.opcode));
    }
    rec.push(rc_field(r.rc()));
    rec
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
