# SPDX-License-Identifier: GPL-2.0
SUMMARY = "swcci: command-line tool for CXL switch mailbox CCIs driven by cxl_swcci"
DESCRIPTION = "Sends CXL CCI commands (Identify, Identify Switch Device, Get Physical \
               Port State, Get Virtual CXL Switch Info, bind/unbind vPPB, tunnelled \
               commands, raw commands) to the /dev/cxl/switchN nodes of the cxl_swcci \
               kernel driver and decodes the responses."
SECTION = "console/utils"
# The tool is GPL-2.0-only; it statically links crates under MIT OR Apache-2.0, MIT,
# Unlicense OR MIT and (for unicode-ident) Unicode-3.0 (see tools/Cargo.lock).
LICENSE = "GPL-2.0-only & (MIT | Apache-2.0) & MIT & (Unlicense | MIT) & Unicode-3.0"
LIC_FILES_CHKSUM = "${SWCCI_LIC_FILES_CHKSUM}"

require recipes-kernel/cxl-swcci/swcci-source.inc

inherit cargo cargo-update-recipe-crates bash-completion

# The crates.io dependencies, as crate:// SRC_URI entries (bitbake fetches them; cargo runs
# with --frozen and no network). Regenerate with `bitbake -c update_crates swcci-cli`
# whenever tools/Cargo.lock changes.
require ${BPN}-crates.inc

# The cargo workspace is tools/ (members lib, ktest, runner, cli, ...; swcci-proto is the
# path dependency ../rust). Only the CLI is built. CARGO_LOCK_SRC_DIR keeps update_crates
# to the workspace's lock file (rust/Cargo.lock only holds swcci-proto's test crates).
CARGO_SRC_DIR = "tools"
CARGO_LOCK_SRC_DIR = "${S}/tools"
CARGO_BUILD_FLAGS:append = " --package swcci-cli --bin swcci"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/swcci ${D}${bindir}/swcci
}

# The bash completion and the man page are printed by the tool itself (`swcci completions
# bash`, `swcci man`, hidden commands). The target binary cannot run on the build host, so
# with PACKAGECONFIG "docs" (the default) a native build of the same sources
# (swcci-cli-native) prints them. Without it only the binary is installed.
PACKAGECONFIG ??= "docs"
PACKAGECONFIG:class-native = ""
PACKAGECONFIG[docs] = ",,swcci-cli-native"

do_install:append:class-target() {
    if ${@bb.utils.contains('PACKAGECONFIG', 'docs', 'true', 'false', d)}; then
        install -d ${D}${datadir}/bash-completion/completions ${D}${mandir}/man1
        ${STAGING_BINDIR_NATIVE}/swcci completions bash \
            > ${D}${datadir}/bash-completion/completions/swcci
        ${STAGING_BINDIR_NATIVE}/swcci man > ${D}${mandir}/man1/swcci.1
    fi
}

# The udev rule and group that let a fabric-manager account open /dev/cxl/switchN.
RRECOMMENDS:${PN}:append:class-target = " cxl-swcci-udev"

BBCLASSEXTEND = "native"
