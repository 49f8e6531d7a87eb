// SPDX-License-Identifier: GPL-2.0

//! `swcci topology`: the library's [`Fabric`] rendered as a tree (colours on a terminal), as
//! one JSON document (schema in Documentation/cli.rst), or as a Graphviz graph.
//!
//! Nothing here sends a command: the walk is the library's (`swcci::fabric`).

use crate::decode;
use crate::output::Record;
use anstyle::{AnsiColor, Style};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use swcci::dcd::DcdState;
use swcci::fabric::{Component, Fabric, ItemError, Port, Switch};
use swcci_proto::payload::switch::BindingStatus;

/// Styles of the tree; all plain when colours are off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Palette {
    head: Style,
    dim: Style,
    bad: Style,
    good: Style,
}

impl Palette {
    /// Colours (`true`) or plain text.
    pub fn new(colour: bool) -> Self {
        if !colour {
            return Self::default();
        }
        Self {
            head: Style::new().bold(),
            dim: Style::new().dimmed(),
            bad: AnsiColor::Red.on_default().bold(),
            good: AnsiColor::Green.on_default(),
        }
    }
}

/// `text` in `style` (no escape codes for the plain style).
fn paint(style: Style, text: &str) -> String {
    if style == Style::new() {
        text.to_string()
    } else {
        format!("{style}{text}{style:#}")
    }
}

/// The node's short name: `switch0` for /dev/cxl/switch0.
fn short_name(sw: &Switch) -> String {
    sw.node.file_name().map_or_else(
        || sw.node.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A record's fields as one JSON object.
fn obj(r: &Record) -> Value {
    r.to_json()
}

fn error_json(e: &ItemError) -> Value {
    json!({
        "node": e.place.node.display().to_string(),
        "port": e.place.target.port(),
        "ld": e.place.target.ld(),
        "message": e.error.to_string(),
        "errno": e.error.errno(),
        "errno_name": e.error.errno().map(swcci::errno_name),
        "rc": e.error.rc().map(|r| r.raw()),
        "timeout": e.error.is_timeout(),
    })
}

/// A DCD's view (Documentation/cli.rst): Get DCD Info's fields, the regions with their free
/// bytes, the extent counts, and the extents each host holds.
fn dcd_json(d: &DcdState) -> Value {
    let mut m = match crate::dcd::info_record(&d.info).to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let regions: Vec<Value> = d
        .regions
        .regions
        .iter()
        .zip(0u8..)
        .map(|(r, id)| obj(&crate::dcd::region_record(d, None, id, r)))
        .collect();
    m.insert("dc_regions".into(), Value::Array(regions));
    let counts = d.regions.counts;
    m.insert(
        "extents_supported".into(),
        counts.map_or(Value::Null, |c| c.extents_supported.into()),
    );
    m.insert(
        "extents_available".into(),
        counts.map_or(Value::Null, |c| c.extents_available.into()),
    );
    m.insert(
        "host_extents".into(),
        Value::Array(
            d.hosts
                .iter()
                .map(|h| crate::dcd::host_json(d, h))
                .collect(),
        ),
    );
    Value::Object(m)
}

fn component_json(c: &Component) -> Value {
    let lds: Vec<Value> = c
        .ld_allocations
        .as_ref()
        .map(|a| {
            a.lds
                .iter()
                .map(|(id, l)| obj(&decode::ld_record(*id, l, a.granularity)))
                .collect()
        })
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("partial".into(), c.partial.into());
    m.insert(
        "identify".into(),
        c.identify
            .map_or(Value::Null, |i| obj(&decode::identify_record(&i))),
    );
    m.insert(
        "ld_info".into(),
        c.ld_info
            .map_or(Value::Null, |i| obj(&decode::ld_info_record(&i))),
    );
    match &c.ld_allocations {
        Some(a) => {
            let mut g = Record(vec![decode::granularity_field(a.granularity)]).to_json();
            if let Value::Object(ref mut gm) = g {
                gm.insert("number_of_lds".into(), a.number_of_lds.into());
                gm.insert("lds".into(), Value::Array(lds));
            }
            m.insert("ld_allocations".into(), g);
        }
        None => {
            m.insert("ld_allocations".into(), Value::Null);
        }
    }
    m.insert("dcd".into(), c.dcd.as_ref().map_or(Value::Null, dcd_json));
    Value::Object(m)
}

fn port_json(p: &Port) -> Value {
    let mut v = obj(&decode::port_record(&p.info));
    if let Value::Object(ref mut m) = v {
        m.insert(
            "device".into(),
            p.device.as_ref().map_or(Value::Null, component_json),
        );
    }
    v
}

fn switch_json(sw: &Switch) -> Value {
    let vcs: Option<Vec<Value>> = sw.vcss.as_ref().map(|vcss| {
        vcss.iter()
            .map(|v| {
                let g = decode::vcs_group(v);
                let mut m = obj(&g.head);
                if let Value::Object(ref mut mm) = m {
                    let kids = g.children.iter().map(obj).collect();
                    mm.insert("vppbs".into(), Value::Array(kids));
                }
                m
            })
            .collect()
    });
    let info = sw.info.as_ref();
    json!({
        "node": sw.node.display().to_string(),
        "pci_address": info.map(|i| swcci::info_str(&i.pci_addr)),
        "partial": sw.partial,
        "commands": sw.commands,
        "elapsed_ms": u64::try_from(sw.elapsed.as_millis()).unwrap_or(u64::MAX),
        "identify": sw.identify.map_or(Value::Null, |i| obj(&decode::identify_record(&i))),
        "switch": sw
            .identify_switch
            .map_or(Value::Null, |s| obj(&decode::identify_switch_record(&s))),
        "vcs": vcs,
        "ports": sw.ports.iter().map(port_json).collect::<Vec<_>>(),
    })
}

/// The JSON document (Documentation/cli.rst, "swcci topology --json").
pub fn to_json(f: &Fabric) -> Value {
    json!({
        "partial": f.is_partial(),
        "commands": f.commands(),
        "switches": f.switches.iter().map(switch_json).collect::<Vec<_>>(),
        "errors": f.errors.iter().map(error_json).collect::<Vec<_>>(),
    })
}

/// Text of the field `key` of `r` (`-` when absent).
fn t<'a>(r: &'a Record, key: &str) -> &'a str {
    r.text(key).unwrap_or("-")
}

/// One line per item, with tree branches.
struct Tree<'p> {
    out: String,
    pal: &'p Palette,
}

impl Tree<'_> {
    fn line(&mut self, prefix: &str, last: bool, text: &str) {
        let branch = if last { "└── " } else { "├── " };
        let _ = writeln!(self.out, "{prefix}{}{text}", paint(self.pal.dim, branch));
    }

    fn child_prefix(prefix: &str, last: bool) -> String {
        format!("{prefix}{}", if last { "    " } else { "│   " })
    }
}

fn identity_text(id: &swcci_proto::payload::identify::Identify) -> String {
    let r = decode::identify_record(id);
    format!(
        "{}:{} serial {} ({})",
        t(&r, "vendor_id").trim_start_matches("0x"),
        t(&r, "device_id").trim_start_matches("0x"),
        t(&r, "serial"),
        t(&r, "component_type")
    )
}

fn component_lines(tree: &mut Tree<'_>, c: &Component, prefix: &str) {
    let mut text = match &c.identify {
        Some(id) => identity_text(id),
        None => "device (identity not read)".to_string(),
    };
    if let Some(i) = &c.ld_info {
        let r = decode::ld_info_record(i);
        let _ = write!(
            text,
            ", {} LDs, {}",
            t(&r, "ld_count"),
            t(&r, "memory_size")
        );
    }
    if let Some(d) = &c.dcd {
        let total = d
            .info
            .total_capacity_bytes()
            .map_or_else(|| "?".into(), decode::bytes_text);
        let _ = write!(
            text,
            ", DCD {total}, {} region(s), {} host(s)",
            d.regions.regions.len(),
            d.info.num_hosts
        );
    }
    if c.partial {
        text.push(' ');
        text.push_str(&paint(tree.pal.bad, "[partial]"));
    }
    tree.line(prefix, true, &text);
    let inner = Tree::child_prefix(prefix, true);
    let mut children: Vec<String> = c
        .ld_allocations
        .as_ref()
        .map(|a| {
            a.lds
                .iter()
                .map(|(id, l)| {
                    let r = decode::ld_record(*id, l, a.granularity);
                    format!(
                        "LD {}: range 1 {}, range 2 {}",
                        t(&r, "ld"),
                        t(&r, "range1"),
                        t(&r, "range2")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(d) = &c.dcd {
        children.extend(dcd_lines(d));
    }
    for (i, text) in children.iter().enumerate() {
        tree.line(&inner, i + 1 == children.len(), text);
    }
}

/// Extents listed per host in the tree; more are counted.
const TREE_EXTENTS: usize = 4;

/// A DCD's lines in the tree: one per region (block size, length, free), one per host that
/// holds capacity (its extents, the first few of them).
fn dcd_lines(d: &DcdState) -> Vec<String> {
    let mut out: Vec<String> = d
        .regions
        .regions
        .iter()
        .zip(0u8..)
        .map(|(r, id)| {
            format!(
                "DC region {id}: {} at {:#x}, block {}, {} free",
                decode::bytes_text(r.length),
                r.base,
                decode::bytes_text(r.block_size),
                decode::bytes_text(d.free(id))
            )
        })
        .collect();
    for h in d.hosts.iter().filter(|h| !h.extents.is_empty()) {
        let mut list: Vec<String> = h
            .extents
            .iter()
            .take(TREE_EXTENTS)
            .map(|e| format!("{:#x} {}", e.start_dpa, decode::bytes_text(e.length)))
            .collect();
        if h.extents.len() > TREE_EXTENTS {
            list.push(format!("{} more", h.extents.len() - TREE_EXTENTS));
        }
        out.push(format!(
            "host {}: {} extent(s), {}: {}",
            h.host_id,
            h.extents.len(),
            decode::bytes_text(h.bytes()),
            list.join(", ")
        ));
    }
    out
}

fn switch_lines(tree: &mut Tree<'_>, sw: &Switch) {
    let pal = *tree.pal;
    let mut head = paint(pal.head, &short_name(sw));
    let _ = write!(head, " {}", sw.node.display());
    if let Some(i) = &sw.info {
        let _ = write!(head, " ({})", swcci::info_str(&i.pci_addr));
    }
    if let Some(id) = &sw.identify {
        let _ = write!(head, ": {}", identity_text(id));
    }
    if sw.partial {
        head.push(' ');
        head.push_str(&paint(pal.bad, "[partial]"));
    }
    let _ = writeln!(tree.out, "{head}");
    let vcss = sw.vcss.as_deref().unwrap_or_default();
    let items = vcss.len() + sw.ports.len();
    let mut n = 0;
    for v in vcss {
        n += 1;
        let last = n == items;
        let g = decode::vcs_group(v);
        let text = format!(
            "VCS {} {}, USP {}, {} vPPBs",
            t(&g.head, "vcs"),
            t(&g.head, "state"),
            t(&g.head, "usp"),
            t(&g.head, "vppb_count")
        );
        tree.line("", last, &text);
        let inner = Tree::child_prefix("", last);
        for (i, b) in v.vppbs.iter().enumerate() {
            let to = match (b.bound_port(), b.bound_ld()) {
                (Some(p), Some(l)) => format!(" → port {p} LD {l}"),
                (Some(p), None) => format!(" → port {p}"),
                _ => String::new(),
            };
            let status = b.status.to_string();
            let status = match b.status {
                BindingStatus::Unbound => paint(pal.dim, &status),
                BindingStatus::BoundPort | BindingStatus::BoundLd => paint(pal.good, &status),
                _ => status,
            };
            tree.line(
                &inner,
                i + 1 == v.vppbs.len(),
                &format!("vPPB {} {status}{to}", b.id),
            );
        }
    }
    for p in &sw.ports {
        n += 1;
        let last = n == items;
        let r = decode::port_record(&p.info);
        let text = format!(
            "port {} {}, {}, {}, {}, {}",
            t(&r, "port"),
            t(&r, "state"),
            t(&r, "width"),
            t(&r, "speed"),
            t(&r, "ltssm"),
            t(&r, "type")
        );
        tree.line("", last, &text);
        if let Some(c) = &p.device {
            component_lines(tree, c, &Tree::child_prefix("", last));
        }
    }
}

/// The tree: one block per switch; items that could not be read are marked `[partial]` (the
/// errors themselves go to standard error).
pub fn to_tree(f: &Fabric, pal: &Palette) -> String {
    let mut tree = Tree {
        out: String::new(),
        pal,
    };
    if f.switches.is_empty() && f.errors.is_empty() {
        return "no CXL switch CCI nodes (is cxl_swcci loaded?)\n".to_string();
    }
    for (i, sw) in f.switches.iter().enumerate() {
        if i > 0 {
            tree.out.push('\n');
        }
        switch_lines(&mut tree, sw);
    }
    tree.out
}

/// A DOT string literal; line breaks become DOT's `\n` (centred lines).
fn quoted(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The Graphviz graph: switches, VCSs, ports and components as nodes; ports and components
/// hang off their switch, vPPB bindings are dashed edges from a VCS to a port. Partial items
/// are red.
pub fn to_dot(f: &Fabric) -> String {
    let mut o = String::from(
        "digraph fabric {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    let red = |partial: bool| {
        if partial {
            ", color=red, fontcolor=red"
        } else {
            ""
        }
    };
    for (i, sw) in f.switches.iter().enumerate() {
        let id = format!("s{i}");
        let mut label = short_name(sw);
        if let Some(x) = &sw.identify {
            let _ = write!(label, "\n{}", identity_text(x));
        }
        let _ = writeln!(
            o,
            "  {id} [label={}, shape=box3d{}];",
            quoted(&label),
            red(sw.partial)
        );
        for v in sw.vcss.iter().flatten() {
            let vid = format!("{id}_vcs{}", v.id);
            let label = format!("VCS {}\nUSP {}", v.id, v.usp);
            let _ = writeln!(o, "  {vid} [label={}, shape=ellipse];", quoted(&label));
            let _ = writeln!(o, "  {id} -> {vid};");
            for b in &v.vppbs {
                if let Some(p) = b.bound_port() {
                    let mut l = format!("vPPB {}", b.id);
                    if let Some(ld) = b.bound_ld() {
                        let _ = write!(l, " LD {ld}");
                    }
                    let _ = writeln!(
                        o,
                        "  {vid} -> {id}_p{p} [style=dashed, label={}];",
                        quoted(&l)
                    );
                }
            }
        }
        for p in &sw.ports {
            let r = decode::port_record(&p.info);
            let pid = format!("{id}_p{}", p.info.port_id);
            let label = format!(
                "port {}\n{} {} {}",
                t(&r, "port"),
                t(&r, "state"),
                t(&r, "width"),
                t(&r, "speed")
            );
            let _ = writeln!(o, "  {pid} [label={}];", quoted(&label));
            let _ = writeln!(o, "  {id} -> {pid};");
            if let Some(c) = &p.device {
                let did = format!("{pid}_dev");
                let mut label = match &c.identify {
                    Some(x) => identity_text(x),
                    None => "device".to_string(),
                };
                if let Some(a) = &c.ld_allocations {
                    let _ = write!(label, "\n{} LDs", a.number_of_lds);
                    for (id, l) in &a.lds {
                        let bytes = l
                            .units()
                            .and_then(|u| a.granularity.bytes().and_then(|g| u.checked_mul(g)));
                        if let Some(b) = bytes {
                            let _ = write!(label, "\nLD {id}: {}", decode::bytes_text(b));
                        }
                    }
                }
                if let Some(d) = &c.dcd {
                    let free: u64 = (0..u8::try_from(d.regions.regions.len()).unwrap_or(u8::MAX))
                        .map(|r| d.free(r))
                        .sum();
                    let total: u64 = d.regions.regions.iter().map(|r| r.length).sum();
                    let _ = write!(
                        label,
                        "\nDCD: {} free of {}",
                        decode::bytes_text(free),
                        decode::bytes_text(total)
                    );
                    for h in d.hosts.iter().filter(|h| !h.extents.is_empty()) {
                        let _ = write!(
                            label,
                            "\nhost {}: {} in {} extent(s)",
                            h.host_id,
                            decode::bytes_text(h.bytes()),
                            h.extents.len()
                        );
                    }
                }
                let _ = writeln!(
                    o,
                    "  {did} [label={}, shape=component{}];",
                    quoted(&label),
                    red(c.partial)
                );
                let _ = writeln!(o, "  {pid} -> {did};");
            }
        }
    }
    o.push_str("}\n");
    o
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
