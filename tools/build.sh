#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build everything a test boot needs for one architecture:
#   tools/build.sh [-h|--help] [--variant V | --variant=V] [ARCH]
# - the module (make, against the cached kernel tree of ARCH and variant V: debug (the
#   default), hardened, bench or bench-llvm, as tools/setup/kernel.sh builds them), signed
#   with the tree's key, as GUEST-BIN/../cxl_swcci-ARCH-V.ko;
#   for the x86_64 debug kernel also built without fwctl (make SWCCI_FWCTL=n), as
#   ...-x86_64-debug-nofwctl.ko, which the hardened scenario loads too;
# ARCH is x86_64 (default), arm64, arm, ast2600 (the arm guest programs, the module against
# the ast2600 tree) or ast2700 (the arm64 ones, against the ast2700 tree).
# - the guest programs, statically linked for ARCH: swcci-ktest, the swcci CLI, the C ABI
#   tests (and their 32-bit build on x86_64), the fwctl client;
# - the host runner.
# Prints the guest program directory, GUEST-BIN = $CARGO_TARGET_DIR/guest-bin/ARCH (cargo
# output, by default in $SWCCI_CACHE/cargo-target; a checkout with its own CARGO_TARGET_DIR
# gets its own guest programs).
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

usage() { sed -n '4,18s/^# \{0,1\}//p' "$0"; }
variant=debug arch=
while [ $# -gt 0 ]; do
	case "$1" in
	-h|--help) usage; exit 0 ;;
	--variant) [ $# -ge 2 ] && [ -n "$2" ] || die "--variant needs a value (debug, bench, bench-llvm, hardened)"
		variant=$2; shift 2 ;;
	--variant=*) variant=${1#--variant=}; [ -n "$variant" ] || die "--variant needs a value (debug, bench, bench-llvm, hardened)"; shift ;;
	-*) die "unknown option '$1' (tools/build.sh --help)" ;;
	*) [ -z "$arch" ] || die "one architecture only: '$arch' and '$1' (tools/build.sh --help)"
		[ -n "$1" ] || die "an empty architecture name (x86_64, arm64, arm, ast2600 or ast2700)"
		arch=$1; shift ;;
	esac
done
arch=${arch:-x86_64}
case "$arch" in
x86_64) triple=x86_64-unknown-linux-gnu cc=gcc rustflags= ;;
arm64|ast2700) triple=aarch64-unknown-linux-gnu cc=aarch64-linux-gnu-gcc rustflags= ;;
# ARMv7 guest programs use VFPv3-D16 (no d16-d31, no NEON), the floating point the AST2600's
# Cortex-A7 has (OpenBMC's armv7ahf-vfpv4d16 tune; QEMU's ast2600-evb models it so): rustc's
# armv7-unknown-linux-gnueabihf code uses d16-d31 otherwise (seen with rustc 1.95: SIGILL on
# the AST2600). The virt machine's Cortex-A15 runs the same programs.
arm|ast2600) triple=armv7-unknown-linux-gnueabihf cc=arm-linux-gnueabihf-gcc rustflags=,-d32 ;;
*) die "unknown architecture '$arch' (x86_64, arm64, arm, ast2600 or ast2700)" ;;
esac

# The kernel's name of the architecture (the SoC boards are arm and arm64).
case "$arch" in
ast2600) karch=arm ;;
ast2700) karch=arm64 ;;
*) karch=$arch ;;
esac

# kernel.sh refuses a variant the architecture has not with its own message; only a tree not
# built yet gets the advice to build it.
kerr=$(mktemp)
if ! kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" --print-kdir --variant "$variant" "$arch" 2>"$kerr"); then
	[ ! -s "$kerr" ] || { cat "$kerr" >&2; rm -f "$kerr"; exit 1; }
	rm -f "$kerr"
	die "no $variant kernel tree for $arch: run tools/setup/kernel.sh --variant $variant $arch"
fi
rm -f "$kerr"
bin="$CARGO_TARGET_DIR/guest-bin/$arch"
mkdir -p "$bin"

ko="$bin/../cxl_swcci-$arch-$variant"
if [ "$arch-$variant" = x86_64-debug ] && grep -qx 'CONFIG_RUST_FWCTL_ABSTRACTIONS=y' "$kdir/.config"; then
	# The hardened scenario also loads the module as it is on a kernel without fwctl.
	log "building the module for $arch ($variant kernel) without fwctl (SWCCI_FWCTL=n)"
	make -s -C "$SWCCI_TOP" KDIR="$kdir" SWCCI_FWCTL=n modules >&2 ||
		die "module build without fwctl failed"
	cp "$SWCCI_TOP/cxl_swcci.ko" "$ko-nofwctl.ko"
else
	rm -f "$ko-nofwctl.ko"
fi
log "building the module for $arch ($variant kernel)"
make -s -C "$SWCCI_TOP" KDIR="$kdir" modules >&2 || die "module build failed"
cp "$SWCCI_TOP/cxl_swcci.ko" "$ko.ko"

log "building the guest programs for $arch ($triple, static)"
# Static guest programs. The host programs (runner, emulator, bench report) are built with
# exactly the x86_64 guest programs' settings (static, the same target), so that one release
# build of the dependencies serves both: on x86_64 in the same cargo invocation.
host_triple=x86_64-unknown-linux-gnu
host_env=("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=-C target-feature=+crt-static")
host_pkgs=(-p swcci-runner -p swcci-emu)
guest_pkgs=(-p swcci-ktest -p swcci-cli)
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
guest_env=("CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static$rustflags")
cargo_target_flags=()
guest_target_dir=$CARGO_TARGET_DIR
if [ "$arch" != x86_64 ]; then
	"$SWCCI_TOP/tools/setup/cross-std.sh" "$triple" >&2
	cargo_target_flags=(-Zbuild-std=std,panic_unwind)
	guest_env+=(RUSTC_BOOTSTRAP=1 "CARGO_TARGET_${upper}_LINKER=$cc")
	# -Zbuild-std needs RUSTC_BOOTSTRAP, which build scripts (proc-macro2's) watch: in the
	# host target directory every change of it would rebuild the host crates, for the cross
	# build and again for the runner below. Cross builds get their own directory.
	guest_target_dir=$CARGO_TARGET_DIR/cross
else
	guest_pkgs+=("${host_pkgs[@]}")
fi
(cd "$SWCCI_TOP/tools" && env "${guest_env[@]}" CARGO_TARGET_DIR="$guest_target_dir" \
	cargo build --quiet --release --locked --target "$triple" "${cargo_target_flags[@]}" \
	"${guest_pkgs[@]}") >&2 || die "guest programs failed to build"
for p in swcci-ktest swcci; do
	cp "$guest_target_dir/$triple/release/$p" "$bin/"
done

log "building the C ABI tests for $arch"
cflags=(-static -O2 -Wall -Wextra -Werror -I"$SWCCI_TOP/include/uapi")
"$cc" "${cflags[@]}" -o "$bin/swcci-abi-test" "$SWCCI_TOP/tools/testing/c/abi-test.c" ||
	die "C ABI test failed to build"
# 32-bit processes on a 64-bit kernel (compat ioctls): i386 on x86_64, AArch32 on arm64.
case "$arch" in
x86_64) cc32=(gcc -m32 -I/usr/include/x86_64-linux-gnu) ;;
arm64|ast2700) cc32=(arm-linux-gnueabihf-gcc) ;;
*) cc32=() ;;
esac
if [ ${#cc32[@]} -gt 0 ]; then
	"${cc32[@]}" "${cflags[@]}" -o "$bin/swcci-abi-test32" "$SWCCI_TOP/tools/testing/c/abi-test.c" ||
		die "32-bit C ABI test failed to build"
fi

"$cc" "${cflags[@]}" -o "$bin/swcci-event-loop" "$SWCCI_TOP/tools/testing/c/event-loop.c" ||
	die "the C event loop failed to build"

log "building the fwctl client for $arch"
# It includes the kernel's <fwctl/fwctl.h> and <fwctl/cxl.h>, which the distribution's
# headers lack: the tree's sanitized uapi headers (usr/include after `make headers`), or else
# the source's, installed once per kernel version and architecture next to the guest programs.
uapi="$kdir/usr/include"
if [ ! -f "$uapi/fwctl/cxl.h" ]; then
	# The tree's source (kbuild links it as $kdir/source), named by the package and version
	# it was built from.
	srcdir=$(readlink -f "$kdir/source")
	hdr="$CARGO_TARGET_DIR/uapi-headers/$(basename "$srcdir")-$arch"
	uapi="$hdr/include"
	if [ ! -f "$hdr/.installed" ]; then
		rm -rf "$hdr"
		make -s -C "$srcdir" O="$hdr/build" \
			ARCH="$karch" INSTALL_HDR_PATH="$hdr" headers_install >&2 ||
			die "installing the kernel's uapi headers for $arch failed"
		rm -rf "$hdr/build"
		touch "$hdr/.installed"
	fi
fi
"$cc" "${cflags[@]}" -I"$uapi" -o "$bin/swcci-fwctl-test" "$SWCCI_TOP/tools/testing/c/fwctl-test.c" ||
	die "fwctl client failed to build"

log "building the runner and the device emulator"
if [ "$arch" != x86_64 ]; then
	(cd "$SWCCI_TOP/tools" && env "${host_env[@]}" cargo build --quiet --release --locked \
		--target "$host_triple" "${host_pkgs[@]}") >&2 || die "runner or emulator failed to build"
fi
# Where the scripts run them from; renamed into place, so that a copy in use is not disturbed.
mkdir -p "$CARGO_TARGET_DIR/release"
for p in swcci-runner swcci-emu swcci-bench-report; do
	# A name of this process's own: two runs on one cache must not share the temporary file.
	cp "$CARGO_TARGET_DIR/$host_triple/release/$p" "$CARGO_TARGET_DIR/release/.$p.new.$$"
	mv -f "$CARGO_TARGET_DIR/release/.$p.new.$$" "$CARGO_TARGET_DIR/release/$p"
done
echo "$bin"
