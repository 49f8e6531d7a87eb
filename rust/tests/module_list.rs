// SPDX-License-Identifier: GPL-2.0

//! The kernel module compiles this crate as its `proto` module and has to list the same modules
//! (src/cxl_swcci.rs); this test keeps the two lists equal.

fn mods(text: &str, from: &str, until: &str) -> Vec<String> {
    let start = text.find(from).expect("start marker");
    let body = &text[start..];
    let body = &body[..body.find(until).expect("end marker")];
    body.lines()
        .map(str::trim)
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
                .and_then(|m| m.strip_suffix(';'))
                .map(String::from)
        })
        .collect()
}

#[test]
fn kernel_module_lists_the_same_modules() {
    let root = manifest_dir();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let kmod = std::fs::read_to_string(root.join("../src/cxl_swcci.rs")).unwrap();
    let lib_mods = mods(&lib, "#[macro_use]", "#[cfg(test)]");
    let kernel_mods = mods(&kmod, "pub mod proto {", "}");
    assert!(!lib_mods.is_empty());
    assert_eq!(
        lib_mods, kernel_mods,
        "rust/src/lib.rs and src/cxl_swcci.rs list different modules"
    );
}

/// This checkout's rust/ directory, as cargo names it when it runs the test (not the one the
/// test binary was compiled in: checkouts that share a target directory share binaries).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo test sets CARGO_MANIFEST_DIR")
        .into()
}
