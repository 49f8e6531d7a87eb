# SPDX-License-Identifier: GPL-2.0
#
# make-mod-scripts runs `make prepare scripts` in STAGING_KERNEL_BUILDDIR for every
# out-of-tree module. For a kernel with CONFIG_RUST=y, `make prepare` runs
# scripts/rust_is_available.sh and builds rust/ (libcore, libkernel.rmeta, libmacros.so),
# which the cxl_swcci build needs; that takes rustc (with the library sources), bindgen and
# libclang. kernel-yocto-rust.bbclass gives the kernel recipe these tools; this gives them
# to make-mod-scripts too, from the same recipes, so both use the same rustc. Nothing changes
# (value or signature) unless KERNEL_FEATURES contains "rust"; if oe-core already provides
# them, this adds nothing new.
python () {
    if bb.utils.contains('KERNEL_FEATURES', 'rust', True, False, d):
        d.appendVar('DEPENDS', ' rust-native bindgen-cli-native clang-native')
}
