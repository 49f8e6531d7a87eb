// SPDX-License-Identifier: GPL-2.0

//! The kernel glue's `unsafe` sites are listed in two places, the crate root's documentation
//! (src/cxl_swcci.rs) and Documentation/design.rst; this test keeps both lists equal to the
//! files of src/ that have `unsafe` code, so that a new site is documented where reviewers
//! look (issue 21).

use std::collections::BTreeSet;
use std::path::Path;

/// The files of src/ (below it, `device/mmpt.rs` style) whose code, comments aside, says
/// `unsafe`.
fn files_with_unsafe(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_with_unsafe(&p, base, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .any(|l| l.contains("unsafe"));
            if code {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(if rel.contains('/') { rel } else { name });
            }
        }
    }
}

/// The `*.rs` names quoted (between `quote` marks) in `text`.
fn quoted(text: &str, quote: &str) -> BTreeSet<String> {
    text.split(quote)
        .skip(1)
        .step_by(2)
        .filter(|w| w.ends_with(".rs") && !w.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn unsafe_site_lists_name_every_file_with_unsafe() {
    let root = manifest_dir().join("..");
    let src = root.join("src");
    let mut have = BTreeSet::new();
    files_with_unsafe(&src, &src, &mut have);
    assert!(have.contains("sys.rs"), "the scan found nothing: {have:?}");

    let krate = std::fs::read_to_string(src.join("cxl_swcci.rs")).unwrap();
    let start = krate.find("//! `unsafe` sites").expect("crate root's list");
    let para: String = krate[start..]
        .lines()
        .take_while(|l| l.starts_with("//!") && l.trim() != "//!")
        .map(|l| l.trim_start_matches("//!").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut listed = quoted(&para, "`");
    // "this file" is the crate root.
    if para.contains("this file") {
        listed.insert("cxl_swcci.rs".into());
    }
    assert_eq!(listed, have, "src/cxl_swcci.rs's unsafe-site list");

    let design = std::fs::read_to_string(root.join("Documentation/design.rst")).unwrap();
    let start = design
        .find("``unsafe`` appears at these sites")
        .expect("design.rst's list");
    let list: String = design[start..]
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with("The command path"))
        .filter(|l| l.starts_with("- ``"))
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        quoted(&list, "``"),
        have,
        "Documentation/design.rst's unsafe-site list"
    );
}

/// This checkout's rust/ directory, as cargo names it when it runs the test (not the one the
/// test binary was compiled in: checkouts that share a target directory share binaries).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo test sets CARGO_MANIFEST_DIR")
        .into()
}
