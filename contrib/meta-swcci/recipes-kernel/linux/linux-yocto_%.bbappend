# SPDX-License-Identifier: GPL-2.0
# The cxl_swcci kernel fragments for oe-core's linux-yocto (e.g. for qemuarm64 tests).
require recipes-kernel/linux/swcci-kernel.inc
