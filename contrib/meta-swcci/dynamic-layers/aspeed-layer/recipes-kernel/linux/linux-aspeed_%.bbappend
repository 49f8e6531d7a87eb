# SPDX-License-Identifier: GPL-2.0
# The cxl_swcci kernel fragments for OpenBMC's Aspeed kernel (AST2600: ARMv7,
# AST2700: arm64). linux-aspeed has no yocto-kernel-cache, so KERNEL_FEATURES "rust" is
# resolved from this layer's copy of features/kernel-rust/kernel-rust.scc.
require recipes-kernel/linux/swcci-kernel.inc
