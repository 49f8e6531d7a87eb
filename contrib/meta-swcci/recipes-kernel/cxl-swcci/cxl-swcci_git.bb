# SPDX-License-Identifier: GPL-2.0
SUMMARY = "cxl_swcci: Rust kernel driver for CXL switch mailbox CCIs"
DESCRIPTION = "Out-of-tree Linux kernel module, written in Rust, that binds CXL switch \
               mailbox CCIs (PCI class 0C0B00h) and PCIe MMB/MMPT mailboxes and gives \
               userspace /dev/cxl/switchN with the CXL_MEM_SEND_COMMAND ioctl ABI of \
               <linux/cxl_mem.h>."
SECTION = "kernel/modules"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "${SWCCI_LIC_FILES_CHKSUM}"

require recipes-kernel/cxl-swcci/swcci-source.inc

# module-rust (oe-core wrynose and later) inherits module and adds rust-native. It skips
# this recipe unless KERNEL_FEATURES contains "rust" (set it in local.conf, see README.md),
# because a Rust module can only be built against a kernel built with CONFIG_RUST=y.
inherit module-rust

# The project's Makefile checks KDIR (a kernel build tree: .config with CONFIG_RUST=y,
# rust/libkernel.rmeta, Module.symvers) and then runs `make -C $(KDIR) M=$(CURDIR)`.
# STAGING_KERNEL_BUILDDIR is that tree: the kernel's do_shared_workdir copies .config,
# Module.symvers and the signing keys into it, and make-mod-scripts runs `make prepare
# scripts` in it, which for a CONFIG_RUST kernel builds rust/ (core, kernel, macros) with the
# same rustc/bindgen the kernel used. ARCH, CROSS_COMPILE and the compiler variables
# (CC, LD, ... of the kernel's toolchain) come from module.bbclass/module-base.bbclass.
# LLVM= is not passed: OpenEmbedded passes the kernel's tools one by one instead. The
# Makefile's default target builds (and signs) the module.
EXTRA_OEMAKE += "KDIR=${STAGING_KERNEL_BUILDDIR}"

# `make` leaves one module, cxl_swcci.ko at the top, signed with the tree's key when the
# kernel has one (CONFIG_MODULE_SIG, certs/signing_key.pem in STAGING_KERNEL_BUILDDIR). The
# project's `make modules_install` is kbuild's own install, so module.bbclass's
# module_do_install needs nothing more: it runs `make modules_install` with MODLIB set to
# ${D}${nonarch_base_libdir}/modules/${KERNEL_VERSION} and DEPMOD=echo (the module lands in
# updates/, kbuild's directory for external modules; depmod is left to the image), and
# installs Module.symvers for other module recipes. Signed modules are not stripped by
# do_package (oe.package skips signed .ko files), so the signature survives.

# kernel-module-split names the package of cxl_swcci.ko kernel-module-cxl-swcci.
RPROVIDES:${PN} += "kernel-module-cxl-swcci"

# Autoloading needs nothing here: the module's alias matches PCI class 0C0B00h, so udev
# loads it when the kernel finds such a function (modules.alias is built by depmod when the
# image is assembled). To load it at boot regardless, or to pass parameters:
# KERNEL_MODULE_AUTOLOAD += "cxl_swcci"
# KERNEL_MODULE_PROBECONF += "cxl_swcci"
# module_conf_cxl_swcci = "options cxl_swcci bg_timeout_ms=120000"
