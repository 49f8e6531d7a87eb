# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of the cxl_swcci kernel module.
#
#   make                     build cxl_swcci.ko against $(KDIR)
#   make KDIR=<tree>         ... against any built Rust-enabled kernel tree (O= build dir)
#   make SWCCI_FWCTL=n       ... without the fwctl device, even on a kernel that has fwctl
#   make ARCH=arm64          ... against the project's cached arm64 tree
#   make modules_install     install it to $(INSTALL_MOD_PATH)/lib/modules/<release>/updates/
#   make clean               remove build products
#   make rust-analyzer       write rust-project.json for editors
#   make rustfmt             format src/ (and rust/, which it includes) with the kernel's
#                            .rustfmt.toml; make rustfmtcheck only checks
#   make demo / make check   the README's two commands (set up, build, boot, test)
#
# Without KDIR the project's own cached tree for ARCH (default x86_64) is used if it is built
# (tools/setup/kernel.sh; the cached trees record the ARCH and LLVM they were built with),
# else the running kernel's /lib/modules/$(uname -r)/build, as for any out-of-tree module.
# The result is cxl_swcci.ko in this directory, the only copy, signed in place with the
# tree's key when the tree has one.

SWCCI_ARCH ?= $(if $(ARCH),$(patsubst x86,x86_64,$(ARCH)),x86_64)
ifeq ($(KDIR),)
KDIR := $(shell [ -x tools/setup/kernel.sh ] && d=$$(tools/setup/kernel.sh --print-kdir $(SWCCI_ARCH) 2>/dev/null) && echo "$$d")
KDIR_FROM := the project's cache
ifeq ($(KDIR),)
KDIR := /lib/modules/$(shell uname -r)/build
KDIR_FROM := the running kernel
endif
endif
-include $(KDIR)/swcci-kbuild.mk

KBUILD_ARGS := -C $(KDIR) M=$(CURDIR) $(if $(ARCH),ARCH=$(ARCH)) $(if $(LLVM),LLVM=$(LLVM)) \
	$(if $(CROSS_COMPILE),CROSS_COMPILE=$(CROSS_COMPILE))
# SWCCI_STRICT=1 (what tools/test.sh sets for every build): the kernel's clippy lints, and
# every Rust warning, clippy's included, an error. (`make CLIPPY=1` alone only warns.)
ifeq ($(SWCCI_STRICT),1)
KBUILD_ARGS += CLIPPY=1 KRUSTFLAGS=-Dwarnings
endif

# The signing key of a tree built with CONFIG_MODULE_SIG (e.g. for lockdown tests).
SIG_HASH = $(shell sed -n 's/^CONFIG_MODULE_SIG_HASH="\(.*\)"/\1/p' $(KDIR)/.config 2>/dev/null)
SIG_KEY = $(KDIR)/certs/signing_key.pem
SIG_CERT = $(KDIR)/certs/signing_key.x509

.PHONY: all modules modules_install clean rust-analyzer rustfmt rustfmtcheck check-kdir demo check
all: modules

check-kdir:
	@if [ -z "$(KDIR)" ] || [ ! -f "$(KDIR)/.config" ]; then \
		if [ -n "$(KDIR_FROM)" ]; then \
			echo "swcci: error: no kernel tree: no cached tree for $(SWCCI_ARCH) (tools/setup/kernel.sh $(SWCCI_ARCH) builds one) and $(KDIR) is not a build tree; pass KDIR=<built kernel tree>" >&2; \
		else \
			if [ -d "$(KDIR)" ]; then \
				echo "swcci: error: KDIR=$(KDIR) is not a kernel build tree (no .config)" >&2; \
			else \
				echo "swcci: error: KDIR=$(KDIR) does not exist" >&2; \
			fi; \
		fi; exit 1; fi
	@grep -qx 'CONFIG_RUST=y' $(KDIR)/.config || { \
		echo "swcci: error: KDIR=$(KDIR) is not Rust-enabled (CONFIG_RUST is not set)" >&2; exit 1; }
	@[ -f $(KDIR)/rust/libkernel.rmeta ] && [ -f $(KDIR)/Module.symvers ] || { \
		echo "swcci: error: KDIR=$(KDIR) is configured but not built (no rust/libkernel.rmeta or Module.symvers): run make in it first" >&2; exit 1; }

# Decimal formatting in `core` that the kernel cannot run: 128-bit everywhere, and on 32-bit
# ARM also 64-bit, whose division is a panicking stub there (see rust/src/num.rs). The module
# must not reference it (v0 mangling: o/n = u128/i128, y/x = u64/i64).
NM_TOOL := $(if $(filter -%,$(LLVM)),llvm-nm$(LLVM),$(if $(filter %/,$(LLVM)),$(LLVM)llvm-nm,$(if $(LLVM),llvm-nm,$(CROSS_COMPILE)nm)))
ARM32 = $(shell grep -qx 'CONFIG_ARM=y' $(KDIR)/.config 2>/dev/null && echo 1)
BAD_FMT = 4core3fmt3num3imp[on$(if $(ARM32),xy)]Nt.*7Display3fmt

# The marker sign-file appends: a module that ends with it is signed already.
SIG_MARKER := ~Module signature appended~

modules: check-kdir
	$(MAKE) $(KBUILD_ARGS) modules
	@bad=$$($(NM_TOOL) -u cxl_swcci.ko | grep -E '$(BAD_FMT)' || true); \
	if [ -n "$$bad" ]; then \
		echo "swcci: error: the module formats integers in decimal with core code this kernel cannot run (use proto::num::Dec):" >&2; \
		echo "$$bad" >&2; rm -f cxl_swcci.ko; exit 1; fi
	@if [ -n "$(SIG_HASH)" ] && [ -f $(SIG_KEY) ] && [ -x $(KDIR)/scripts/sign-file ] && \
	    [ "$$(tail -c 28 cxl_swcci.ko | head -c 27)" != "$(SIG_MARKER)" ]; then \
		$(KDIR)/scripts/sign-file $(SIG_HASH) $(SIG_KEY) $(SIG_CERT) cxl_swcci.ko && \
		echo "  SIGN    cxl_swcci.ko ($(SIG_HASH), key of $(KDIR))"; fi

# Kbuild's own install (INSTALL_MOD_PATH, INSTALL_MOD_DIR, depmod). The module is signed
# already: kbuild does not sign it again unless it strips it first (INSTALL_MOD_STRIP).
modules_install: modules
	$(MAKE) $(KBUILD_ARGS) modules_install $(if $(INSTALL_MOD_STRIP),,CONFIG_MODULE_SIG_ALL=)

clean:
	@if [ -n "$(KDIR)" ] && [ -f $(KDIR)/Makefile ]; then $(MAKE) $(KBUILD_ARGS) clean; fi
	rm -f cxl_swcci.ko cxl_swcci.o cxl_swcci.mod cxl_swcci.mod.c cxl_swcci.mod.o .cxl_swcci.* \
		src/*.o src/.*.cmd modules.order Module.symvers rust-project.json

rust-analyzer: check-kdir
	$(MAKE) $(KBUILD_ARGS) rust-analyzer

RUSTFMT ?= rustfmt
rustfmt: check-kdir
	$(RUSTFMT) --edition 2021 --config-path $(KDIR)/source/.rustfmt.toml $(RUSTFMT_FLAGS) \
		src/cxl_swcci.rs
rustfmtcheck: RUSTFMT_FLAGS = --check
rustfmtcheck: rustfmt


demo:
	tools/demo.sh

check:
	tools/test.sh
