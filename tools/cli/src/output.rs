// SPDX-License-Identifier: GPL-2.0

//! What commands print: named fields with a human text and a JSON value, rendered as aligned
//! tables, `key : value` lists, hex dumps, or one pretty JSON document.
//!
//! A [`Field`]'s key is both the JSON member name and (upper-cased, with spaces) the table
//! column, so the two outputs always agree. Extra JSON members ride along with a field, e.g.
//! `"state": "DSP"` with `"state_code": 3`.

use crate::error::CliError;
use crate::hex;
use serde_json::{Map, Value};

/// One named value.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// snake_case name: the JSON member and (as `UPPER CASE`) the table column.
    pub key: &'static str,
    /// Column heading, when it is not derived from the key.
    pub label: Option<&'static str>,
    /// Human-readable value.
    pub text: String,
    /// JSON value.
    pub json: Value,
    /// Further JSON members (codes, raw masks, limits) that have no column of their own.
    pub extra: Vec<(&'static str, Value)>,
}

impl Field {
    /// A field with separate text and JSON values.
    pub fn new(key: &'static str, text: impl Into<String>, json: impl Into<Value>) -> Self {
        Self {
            key,
            label: None,
            text: text.into(),
            json: json.into(),
            extra: Vec::new(),
        }
    }

    /// A number, printed in decimal.
    pub fn num(key: &'static str, n: impl Into<u64>) -> Self {
        let n = n.into();
        Self::new(key, n.to_string(), n)
    }

    /// A number printed as `0x` and `digits` hex digits (an id); a number in JSON.
    pub fn hex(key: &'static str, n: impl Into<u64>, digits: usize) -> Self {
        let n = n.into();
        Self::new(key, format!("{n:#0w$x}", w = digits.saturating_add(2)), n)
    }

    /// A list of small numbers: `0,1,3` (`-` when empty); an array in JSON.
    pub fn ids(key: &'static str, ids: &[u8]) -> Self {
        let text = join(ids.iter().map(u8::to_string));
        Self::new(key, text, ids.to_vec())
    }

    /// A list of names: `a,b` (`-` when empty); an array of strings in JSON.
    pub fn names(key: &'static str, names: Vec<String>) -> Self {
        let text = join(names.iter().cloned());
        Self::new(key, text, names)
    }

    /// Adds a JSON member that has no column.
    #[must_use]
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// Sets the column heading.
    #[must_use]
    pub fn label(mut self, label: &'static str) -> Self {
        self.label = Some(label);
        self
    }

    /// The column heading: the label, or the key upper-cased with `_` as spaces.
    pub fn heading(&self) -> String {
        match self.label {
            Some(l) => l.to_string(),
            None => self.key.to_uppercase().replace('_', " "),
        }
    }
}

/// Joins items with commas; `-` for none.
pub fn join(items: impl Iterator<Item = String>) -> String {
    let s = items.collect::<Vec<_>>().join(",");
    if s.is_empty() {
        "-".to_string()
    } else {
        s
    }
}

/// An ordered set of fields: one table row, or one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(pub Vec<Field>);

impl Record {
    /// Appends a field.
    pub fn push(&mut self, f: Field) {
        self.0.push(f);
    }

    /// Appends all fields of `other`.
    pub fn extend(&mut self, other: Record) {
        self.0.extend(other.0);
    }

    /// The field named `key`.
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.0.iter().find(|f| f.key == key)
    }

    /// The text of the field named `key`.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).map(|f| f.text.as_str())
    }

    /// The record as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.to_map())
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for f in &self.0 {
            m.insert(f.key.to_string(), f.json.clone());
            for (k, v) in &f.extra {
                m.insert((*k).to_string(), v.clone());
            }
        }
        m
    }
}

impl FromIterator<Field> for Record {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Renders rows of cells as columns aligned on their widest cell, separated by two spaces,
/// without trailing blanks.
pub fn render_table(headings: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(headings).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count()).saturating_add(2);
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders a record as `key : value` lines, keys padded to the longest.
pub fn render_record(r: &Record) -> String {
    let width = r.0.iter().map(|f| f.key.len()).max().unwrap_or(0);
    r.0.iter()
        .map(|f| format!("{:width$} : {}\n", f.key, f.text))
        .collect()
}

/// A record with records below it (a VCS and its vPPBs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    /// The parent's fields.
    pub head: Record,
    /// The children.
    pub children: Vec<Record>,
}

/// The one document a command prints.
#[derive(Clone, Debug, PartialEq)]
pub enum Doc {
    /// A single object: `key : value` lines.
    Record(Record),
    /// A list of objects: a table (a JSON array).
    Table {
        /// The rows.
        rows: Vec<Record>,
        /// Printed instead of an empty table (nothing when empty itself).
        empty: &'static str,
    },
    /// Objects with sub-lists: one table row per child (a JSON array of objects, each with an
    /// array member `child`).
    Groups {
        /// The groups.
        groups: Vec<Group>,
        /// JSON member name of the children.
        child: &'static str,
        /// Printed instead of an empty table.
        empty: &'static str,
    },
    /// A record followed by a hex dump of bytes (JSON member `out`, a hex string).
    Dump {
        /// The fields before the dump.
        record: Record,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

impl Doc {
    /// The JSON document.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Record(r) => r.to_json(),
            Self::Table { rows, .. } => Value::Array(rows.iter().map(Record::to_json).collect()),
            Self::Groups { groups, child, .. } => Value::Array(
                groups
                    .iter()
                    .map(|g| {
                        let mut m = g.head.to_map();
                        let kids = g.children.iter().map(Record::to_json).collect();
                        m.insert((*child).to_string(), Value::Array(kids));
                        Value::Object(m)
                    })
                    .collect(),
            ),
            Self::Dump { record, bytes } => {
                let mut m = record.to_map();
                m.insert("out".into(), Value::String(hex::to_hex(bytes)));
                Value::Object(m)
            }
        }
    }

    /// The human-readable text.
    pub fn to_text(&self) -> String {
        match self {
            Self::Record(r) => render_record(r),
            Self::Table { rows, empty } => table_text(rows, empty),
            Self::Groups { groups, empty, .. } => groups_text(groups, empty),
            Self::Dump { record, bytes } => {
                let mut r = record.clone();
                r.push(Field::new("out", format!("{} bytes", bytes.len()), 0u64));
                render_record(&r) + &hex::dump(bytes)
            }
        }
    }

    /// The document as printed: pretty JSON or text.
    pub fn render(&self, json: bool) -> String {
        if json {
            format!("{:#}\n", self.to_json())
        } else {
            self.to_text()
        }
    }
}

fn table_text(rows: &[Record], empty: &str) -> String {
    let Some(first) = rows.first() else {
        if empty.is_empty() {
            return String::new();
        }
        return format!("{empty}\n");
    };
    let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
        .collect();
    render_table(&headings, &cells)
}

fn groups_text(groups: &[Group], empty: &str) -> String {
    let Some(first) = groups.first() else {
        return format!("{empty}\n");
    };
    let child_headings: Vec<String> = groups
        .iter()
        .find_map(|g| g.children.first())
        .map(|c| c.0.iter().map(Field::heading).collect())
        .unwrap_or_default();
    let mut headings: Vec<String> = first.head.0.iter().map(Field::heading).collect();
    let head_len = headings.len();
    headings.extend(child_headings.iter().cloned());
    let mut rows = Vec::new();
    for g in groups {
        let head: Vec<String> = g.head.0.iter().map(|f| f.text.clone()).collect();
        if g.children.is_empty() {
            let dashes = child_headings.iter().map(|_| "-".to_string());
            rows.push(head.iter().cloned().chain(dashes).collect());
        }
        for (i, c) in g.children.iter().enumerate() {
            let lead = if i == 0 {
                head.clone()
            } else {
                vec![String::new(); head_len]
            };
            rows.push(
                lead.into_iter()
                    .chain(c.0.iter().map(|f| f.text.clone()))
                    .collect(),
            );
        }
    }
    render_table(&headings, &rows)
}

/// What a command printed, and the errors to report after it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Text for standard output.
    pub stdout: String,
    /// Warnings for standard error (the exit status stays 0).
    pub warnings: Vec<String>,
    /// Errors for standard error; the first decides the exit status.
    pub errors: Vec<CliError>,
}

impl Outcome {
    /// Just `stdout`: no warnings, no errors.
    pub fn text(stdout: String) -> Self {
        Self {
            stdout,
            ..Self::default()
        }
    }
}

/// A document and what comes with it: errors (a raw command's non-success return code, nodes
/// that do not answer) and warnings (a log the device ended early).
#[derive(Default)]
pub struct Report {
    /// The document, if the command made one.
    pub doc: Option<Doc>,
    /// Warnings for standard error.
    pub warnings: Vec<String>,
    /// Errors for standard error.
    pub errors: Vec<CliError>,
}

impl From<Doc> for Report {
    fn from(doc: Doc) -> Self {
        Self {
            doc: Some(doc),
            ..Self::default()
        }
    }
}

impl Report {
    /// The outcome: the document rendered as text or JSON, then the warnings and errors.
    pub fn outcome(self, json: bool) -> Outcome {
        Outcome {
            stdout: self.doc.map(|d| d.render(json)).unwrap_or_default(),
            warnings: self.warnings,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(port: u8, state: &str) -> Record {
        Record(vec![
            Field::num("port", port),
            Field::new("state", state, state).with("state_code", 3),
            Field::new("link_width", "x16", 16),
        ])
    }

    #[test]
    fn fields() {
        assert_eq!(Field::hex("vendor_id", 0x19e5u16, 4).text, "0x19e5");
        assert_eq!(
            Field::hex("serial", 0x4d2u64, 16).text,
            "0x00000000000004d2"
        );
        assert_eq!(Field::ids("ports", &[0, 1, 3]).text, "0,1,3");
        assert_eq!(Field::ids("ports", &[]).text, "-");
        assert_eq!(Field::ids("ports", &[0, 1]).json, json!([0, 1]));
        assert_eq!(Field::names("f", vec![]).json, json!([]));
        assert_eq!(Field::num("link_width", 1u8).heading(), "LINK WIDTH");
        assert_eq!(
            Field::num("vid_did", 1u8).label("VID:DID").heading(),
            "VID:DID"
        );
    }

    #[test]
    fn tables_align_and_match_json() {
        let doc = Doc::Table {
            rows: vec![row(0, "DSP"), row(12, "disabled")],
            empty: "none",
        };
        assert_eq!(
            doc.to_text(),
            "PORT  STATE     LINK WIDTH\n0     DSP       x16\n12    disabled  x16\n"
        );
        assert_eq!(
            doc.to_json(),
            json!([
                {"port": 0, "state": "DSP", "state_code": 3, "link_width": 16},
                {"port": 12, "state": "disabled", "state_code": 3, "link_width": 16},
            ])
        );
        // Every column has a JSON member of the same name.
        for f in &row(0, "x").0 {
            let key = f.heading().to_lowercase().replace(' ', "_");
            assert!(doc.to_json()[0].get(&key).is_some(), "{key}");
        }
        let empty = Doc::Table {
            rows: vec![],
            empty: "no ports",
        };
        assert_eq!(empty.to_text(), "no ports\n");
        assert_eq!(empty.render(true), "[]\n");
    }

    #[test]
    fn records() {
        let r = Record(vec![Field::num("a", 1u8), Field::new("long_key", "v", "v")]);
        assert_eq!(render_record(&r), "a        : 1\nlong_key : v\n");
        assert_eq!(r.text("long_key"), Some("v"));
        assert_eq!(r.get("zz"), None);
        assert_eq!(
            Doc::Record(r).render(true),
            "{\n  \"a\": 1,\n  \"long_key\": \"v\"\n}\n"
        );
        assert_eq!(render_record(&Record::default()), "");
    }

    #[test]
    fn groups() {
        let head = |id: u8| Record(vec![Field::num("vcs", id)]);
        let kid = |id: u8| {
            Record(vec![
                Field::num("vppb", id),
                Field::new("status", "unbound", "unbound"),
            ])
        };
        let doc = Doc::Groups {
            groups: vec![
                Group {
                    head: head(0),
                    children: vec![kid(0), kid(1)],
                },
                Group {
                    head: head(1),
                    children: vec![],
                },
            ],
            child: "vppbs",
            empty: "none",
        };
        assert_eq!(
            doc.to_text(),
            "VCS  VPPB  STATUS\n0    0     unbound\n     1     unbound\n1    -     -\n"
        );
        assert_eq!(
            doc.to_json(),
            json!([
                {"vcs": 0, "vppbs": [{"vppb": 0, "status": "unbound"}, {"vppb": 1, "status": "unbound"}]},
                {"vcs": 1, "vppbs": []},
            ])
        );
        let none = Doc::Groups {
            groups: vec![],
            child: "x",
            empty: "no VCSs",
        };
        assert_eq!(none.to_text(), "no VCSs\n");
    }

    #[test]
    fn dumps() {
        let doc = Doc::Dump {
            record: Record(vec![Field::num("rc", 0u8).with("rc_name", "success")]),
            bytes: vec![0x41, 0x42],
        };
        assert_eq!(
            doc.to_json(),
            json!({"rc": 0, "rc_name": "success", "out": "4142"})
        );
        let text = doc.to_text();
        assert!(
            text.starts_with("rc  : 0\nout : 2 bytes\n00000000  41 42"),
            "{text}"
        );
        assert!(text.ends_with("|AB|\n00000002\n"));
    }
}
