# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of the cxl_swcci kernel module.
#
#   make                     build cxl_swcci.ko against $(KDIR)
#   make KDIR=<tree>         ... against any built Rust-enabled kernel tree (O= build dir)
#   make ARCH=arm64          ... against the project's cached arm64 tree
#   make clean               remove build products
#   make rust-analyzer       write rust-project.json for editors
#   make rustfmt             format src/ (and rust/, which it includes) with the kernel's
#                            .rustfmt.toml; make rustfmtcheck only checks
#   make demo / make check   the README's two commands (set up, build, boot, test)
#
# Without KDIR the project's own cached tree for ARCH (default x86_64) is used; it is built by
# tools/setup/kernel.sh. The cached trees record the ARCH and LLVM they were built with.

SWCCI_ARCH ?= $(if $(ARCH),$(patsubst x86,x86_64,$(ARCH)),x86_64)
ifeq ($(KDIR),)
KDIR := $(shell tools/setup/kernel.sh --print-kdir $(SWCCI_ARCH) 2>/dev/null)
KDIR_FROM_CACHE := 1
endif
-include $(KDIR)/swcci-kbuild.mk

KBUILD_ARGS := -C $(KDIR) M=$(CURDIR) $(if $(ARCH),ARCH=$(ARCH)) $(if $(LLVM),LLVM=$(LLVM)) \
	$(if $(CROSS_COMPILE),CROSS_COMPILE=$(CROSS_COMPILE))

# The signing key of a tree built with CONFIG_MODULE_SIG (e.g. for lockdown tests).
SIG_HASH = $(shell sed -n 's/^CONFIG_MODULE_SIG_HASH="\(.*\)"/\1/p' $(KDIR)/.config 2>/dev/null)
SIG_KEY = $(KDIR)/certs/signing_key.pem
SIG_CERT = $(KDIR)/certs/signing_key.x509

.PHONY: all modules clean rust-analyzer rustfmt rustfmtcheck check-kdir demo check
all: modules

check-kdir:
	@if [ -z "$(KDIR)" ] || [ ! -f "$(KDIR)/.config" ]; then \
		if [ -n "$(KDIR_FROM_CACHE)" ]; then \
			echo "swcci: error: no cached kernel tree for $(SWCCI_ARCH): run tools/setup/kernel.sh $(SWCCI_ARCH), or pass KDIR=<built kernel tree>" >&2; \
		else \
			echo "swcci: error: KDIR=$(KDIR) is not a kernel build tree (no .config)" >&2; \
		fi; exit 1; fi
	@grep -qx 'CONFIG_RUST=y' $(KDIR)/.config || { \
		echo "swcci: error: KDIR=$(KDIR) is not Rust-enabled (CONFIG_RUST is not set)" >&2; exit 1; }
	@[ -f $(KDIR)/rust/libkernel.rmeta ] && [ -f $(KDIR)/Module.symvers ] || { \
		echo "swcci: error: KDIR=$(KDIR) is configured but not built (no rust/libkernel.rmeta or Module.symvers): run make in it first" >&2; exit 1; }

# Decimal formatting in `core` that the kernel cannot run: 128-bit everywhere, and on 32-bit
# ARM also 64-bit, whose division is a panicking stub there (see rust/src/num.rs). The module
# must not reference it (v0 mangling: o/n = u128/i128, y/x = u64/i64).
NM_TOOL := $(if $(filter -%,$(LLVM)),llvm-nm$(LLVM),$(if $(LLVM),llvm-nm,$(CROSS_COMPILE)nm))
ARM32 = $(shell grep -qx 'CONFIG_ARM=y' $(KDIR)/.config 2>/dev/null && echo 1)
BAD_FMT = 4core3fmt3num3imp[on$(if $(ARM32),xy)]Nt.*7Display3fmt

modules: check-kdir
	$(MAKE) $(KBUILD_ARGS) modules
	@bad=$$($(NM_TOOL) -u src/cxl_swcci.ko | grep -E '$(BAD_FMT)' || true); \
	if [ -n "$$bad" ]; then \
		echo "swcci: error: the module formats integers in decimal with core code this kernel cannot run (use proto::num::Dec):" >&2; \
		echo "$$bad" >&2; rm -f src/cxl_swcci.ko; exit 1; fi

	@if [ -n "$(SIG_HASH)" ] && [ -f $(SIG_KEY) ] && [ -x $(KDIR)/scripts/sign-file ]; then \
		$(KDIR)/scripts/sign-file $(SIG_HASH) $(SIG_KEY) $(SIG_CERT) src/cxl_swcci.ko cxl_swcci.ko && \
		echo "  SIGN    cxl_swcci.ko ($(SIG_HASH), key of $(KDIR))"; \
	else cp src/cxl_swcci.ko cxl_swcci.ko; fi

clean:
	@if [ -n "$(KDIR)" ] && [ -f $(KDIR)/Makefile ]; then $(MAKE) $(KBUILD_ARGS) clean; fi
	rm -f cxl_swcci.ko src/*.o src/*.ko src/*.mod src/*.mod.c src/.*.cmd src/modules.order \
		modules.order Module.symvers rust-project.json

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
