#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) a Rust-enabled kernel tree the module and the QEMU guests use.
#
#   tools/setup/kernel.sh [--variant V] [ARCH]             build if needed, print the tree's path
#   tools/setup/kernel.sh --print-kdir [--variant V] ARCH  print where the tree lives
#                                                          (exit 1 if it is not built)
#
# ARCH is x86_64 (default), arm64, arm (ARMv7, for QEMU's virt machine), ast2600 (ARMv7
# configured for the AST2600 BMC SoC and QEMU's ast2600-evb machine: ast2600.config instead of
# arm.config) or ast2700 (arm64 for the AST2700 and QEMU's ast2700a2-evb: ast2700.config
# instead of arm64.config). V is one of
#   debug     (default) the suite's kernel: lockdep, sleep-in-atomic, kmemleak, Rust overflow
#             and debug assertions (debug.config), fwctl (fwctl.config); on x86_64 also KASAN,
#             UBSAN and fault injection (hardened.config), built with LLVM: one x86_64 kernel
#             for every scenario, the hardened one included
#   hardened  arm64 and ast2700 only: debug plus KASAN, UBSAN and fault injection
#             (hardened.config), without fwctl, built with LLVM (32-bit ARM has no KASAN
#             with Rust; x86_64's debug kernel is its hardened one)
#   bench     no lock or leak debugging, fwctl, cxl_pci with raw commands: what tools/bench.sh
#             measures the command path on
#   bench-llvm  bench built with the clang whose LLVM matches rustc's (tools/setup/llvm.sh, a
#             prefix LLVM=<dir>/) and CONFIG_RUST_INLINE_HELPERS; x86_64 and arm64 only; only
#             tools/bench.sh --llvm builds it
# Every variant but hardened on x86_64 and arm64, and the AST2700 tree (OpenBMC's kernels for
# it have MCTP), also gets mctp.config (AF_MCTP, the serial binding).
# x86_64 has one debug kernel with the sanitizers rather than a debug and a hardened one: two
# x86_64 trees (the KASAN one alone about 15 CPU-minutes) did not fit the cold test run's 30
# minutes (Documentation/testing.rst, "Architectures").
# C is compiled by GCC, on ARM by Debian's cross GCC (CROSS_COMPILE=aarch64-linux-gnu- or
# arm-linux-gnueabihf-, recorded in the tree's swcci-kbuild.mk): OpenBMC builds its kernels
# with GCC, and GCC 12 needs less CPU for them (the AST2700 tree's kernel/, mm/ and fs/:
# 174 s against clang 19's 302). Clang only where a variant needs it (KASAN: hardened and
# x86_64's debug; bench-llvm).
# The tree is `make tinyconfig` merged with tools/testing/kconfig/common.config, <ARCH>.config
# and the variant's fragments, built with O= under $SWCCI_CACHE/kernel/<ARCH>-<V>-<key>, where
# key hashes the kernel source package and version the set-up chose (tools/setup/resolve.sh),
# the fragments, the configure and build steps, rustc, bindgen and the C compiler. A tree is
# reused only if it carries the completion stamp for that key and its build artefacts are all
# present; anything else is deleted and rebuilt. Trees of other variants are kept.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

print_only=0
variant=debug
arch=
while [ $# -gt 0 ]; do
	case "$1" in
	--print-kdir) print_only=1 ;;
	--variant)
		[ $# -ge 2 ] || die "kernel.sh: --variant needs a value (debug, hardened, bench or bench-llvm)"
		variant=$2
		shift
		;;
	-*) die "kernel.sh: unknown option $1" ;;
	*)
		[ -z "$arch" ] || die "kernel.sh: one architecture only (got $arch and $1)"
		arch=$1
		;;
	esac
	shift
done
arch=${arch:-x86_64}
frag_dir="$SWCCI_TOP/tools/testing/kconfig"

case "$arch" in
x86_64) karch=x86_64 cross= image=arch/x86/boot/bzImage target=bzImage ;;
arm64|ast2700) karch=arm64 cross=aarch64-linux-gnu- image=arch/arm64/boot/Image target=Image ;;
arm|ast2600) karch=arm cross=arm-linux-gnueabihf- image=arch/arm/boot/zImage target=zImage ;;
*) die "unknown architecture '$arch' (x86_64, arm64, arm, ast2600 or ast2700)" ;;
esac

frags=("$frag_dir/common.config" "$frag_dir/$arch.config")
# The C compiler: GCC (the cross GCC on ARM, as OpenBMC builds its kernels), except where a
# variant needs clang (llvm set below).
llvm=
case "$variant" in
debug)
	frags+=("$frag_dir/debug.config" "$frag_dir/fwctl.config")
	if [ "$arch" = x86_64 ]; then
		frags+=("$frag_dir/hardened.config")
		llvm=$SWCCI_LLVM_SUFFIX # Rust with KASAN needs a clang-built kernel
	fi
	;;
hardened)
	[ "$karch" != arm ] || die "no hardened kernel for 32-bit ARM: Rust there rules out KASAN"
	[ "$arch" != x86_64 ] ||
		die "no separate hardened kernel for x86_64: its debug kernel has KASAN, UBSAN and fault injection (--variant debug)"
	frags+=("$frag_dir/debug.config" "$frag_dir/hardened.config")
	llvm=$SWCCI_LLVM_SUFFIX # Rust with KASAN needs a clang-built kernel
	;;
bench) frags+=("$frag_dir/fwctl.config" "$frag_dir/cxl-pci.config") ;;
bench-llvm)
	[ "$karch" != arm ] || die "no bench-llvm kernel for 32-bit ARM: CONFIG_RUST_INLINE_HELPERS is x86_64 and arm64 only"
	frags+=("$frag_dir/fwctl.config" "$frag_dir/cxl-pci.config" "$frag_dir/inline-helpers.config")
	# The clang, lld and LLVM tools whose LLVM matches rustc's, as a prefix (LLVM=<dir>/);
	# --print-kdir only needs their place (part of the key), not the tools.
	if [ "$print_only" = 1 ]; then
		llvm=$("$SWCCI_TOP/tools/setup/llvm.sh" --print-prefix) || die "cannot tell rustc's LLVM version"
		# Without the tools there is no tree of theirs either.
		[ -x "${llvm}clang" ] || exit 1
	else
		llvm=$("$SWCCI_TOP/tools/setup/llvm.sh") || die "no LLVM toolchain for the bench-llvm kernel"
	fi
	# Its bindgen wrapper loads that LLVM's libclang (the kernel hands bindgen clang's flags).
	export PATH="$llvm:$PATH"
	;;
*) die "unknown kernel variant '$variant' (debug, hardened, bench or bench-llvm)" ;;
esac
# AF_MCTP and the serial binding for the MCTP tests and benchmark (mctp.config); the hardened
# scenarios use no MCTP
case "$arch-$variant" in
*-hardened) ;;
x86_64-* | arm64-* | ast2700-debug) frags+=("$frag_dir/mctp.config") ;;
esac

# The installed kernel source package the policy chose (host.sh), e.g. "linux-source-7.3
# 7.3.4-1~bpo13+1": its version names the unpacked source and is part of the trees' key.
source=$(linux_source) || die "no kernel source package is installed: run tools/setup/host.sh first"
src_pkg=${source% *}
src="$SWCCI_CACHE/src/$src_pkg-${source#* }"
tarball="/usr/src/$src_pkg.tar.xz"
kmake=(make -s -C "$src" ARCH="$karch")
[ -n "$llvm" ] && kmake+=(LLVM="$llvm")
# GCC builds name the cross compiler through the environment (Kbuild reads CROSS_COMPILE
# there); clang builds take the target from ARCH.
if [ -n "$llvm" ]; then
	unset CROSS_COMPILE
else
	export CROSS_COMPILE=$cross
fi

cc_id() {
	case "$llvm" in
	"") "${cross}gcc" --version | sed -n 1p ;;
	*/) "${llvm}clang" --version | sed -n 1p ;;
	*) "clang$llvm" --version | sed -n 1p ;;
	esac
}

# Configure the tree in $out: tinyconfig merged with the fragments; every option the fragments
# ask for must have stuck (Kconfig drops unmet ones silently).
configure_tree() {
	"${kmake[@]}" O="$out" tinyconfig >/dev/null
	(cd "$out" && KCONFIG_CONFIG=.config "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
		.config "${frags[@]}" >"$out/merge.log" 2>&1) ||
		die "merging config fragments failed (see $out/merge.log)"
	"${kmake[@]}" O="$out" olddefconfig >/dev/null
	local missing
	missing=$(grep -hE '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' \
		"${frags[@]}" | while IFS= read -r line; do
		if [[ $line == "# "* ]]; then
			sym=${line#\# }
			sym=${sym%% *}
			grep -q "^$sym=" "$out/.config" && echo "$line"
		else
			grep -qxF "$line" "$out/.config" || echo "$line"
		fi
	done || true)
	[ -z "$missing" ] || die "kernel config did not take these options: $(echo "$missing" | tr '\n' ' ')"
}

# Build the image and modules of the configured tree in $out.
build_tree() {
	run_logged make -C "$src" O="$out" ARCH="$karch" ${llvm:+LLVM=$llvm} -j"$(nproc)" "$target" modules ||
		die "kernel build failed (output above)"
}

# The key of a tree: the kernel source, what configures and builds it (the fragments and the
# two functions below, as bash prints them), and the tools. Editing anything else in this
# script keeps the cached trees.
cache_key() {
	{
		echo "source $source arch $arch llvm $llvm"
		echo "variant $variant"
		cat "${frags[@]}"
		declare -f configure_tree build_tree
		rustc -vV
		bindgen --version 2>/dev/null || echo "no bindgen"
		cc_id
	} | sha256sum | cut -c1-16
}

out="$SWCCI_CACHE/kernel/$arch-$variant-$(cache_key)"
stamp="$out/.swcci-complete"

# Everything a built tree must contain for `make M=` of a Rust module and a boot.
tree_ok() {
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(basename "$out")" ] || return 1
	local f
	for f in .config Module.symvers "$image" scripts/mod/modpost rust/libkernel.rmeta \
		rust/libmacros.so include/generated/autoconf.h; do
		[ -s "$out/$f" ] || return 1
	done
	grep -qx CONFIG_RUST=y "$out/.config"
}

if [ "$print_only" = 1 ]; then
	echo "$out"
	tree_ok || exit 1
	exit 0
fi

# Marks the tree as used now (pruning keeps the most recently used ones).
mark_used() {
	touch "$out/.swcci-used" 2>/dev/null || true
}

# Deletes the least recently used trees of this architecture and variant beyond the newest
# $SWCCI_KERNEL_KEEP (default 3), never this key's.
prune_trees() {
	local keep=${SWCCI_KERNEL_KEEP:-3} t
	for t in "$SWCCI_CACHE/kernel/$arch-$variant-"*; do
		[ -d "$t" ] && [ "$t" != "$out" ] || continue
		echo "$(stat -c %Y "$t/.swcci-used" 2>/dev/null || stat -c %Y "$t") $t"
	done | sort -rn | tail -n +"$keep" | while read -r _ t; do
		log "removing the least recently used $arch $variant tree $(basename "$t")"
		rm -rf "$t"
	done
}

if tree_ok; then
	log "kernel tree for $arch is cached: $out"
	mark_used
	echo "$out"
	exit 0
fi

# One build of a tree at a time; trees of other architectures or variants may build at the
# same time (tools/test.sh builds two at once, which keeps both cores busy while one build is
# in a serial step such as the Rust crates or the link).
mkdir -p "$SWCCI_CACHE/kernel"
exec 8>"$SWCCI_CACHE/kernel/.$arch-$variant.lock"
if ! flock -n 8; then
	log "waiting for another build of the $arch $variant kernel"
	flock 8
fi
if tree_ok; then # built by a concurrent run while we waited
	echo "$out"
	exit 0
fi

command -v bindgen >/dev/null || die "bindgen not found: run tools/setup/host.sh first"
[ -f "$tarball" ] || die "$tarball missing: run tools/setup/host.sh first"
# The source tree is shared by every build: unpacked once, under the cache lock.
cache_lock
if [ ! -f "$src/.swcci-unpacked" ]; then
	log "unpacking $tarball"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -xJf "$tarball" -C "$src.tmp" --strip-components=1 || die "unpacking $tarball failed"
	mv "$src.tmp" "$src"
	touch "$src/.swcci-unpacked"
fi
flock -u 9

if [ -e "$out" ]; then
	log "kernel tree $out is incomplete or stale: rebuilding it from scratch"
	rm -rf "$out"
fi
mkdir -p "$out"
# Trees of this architecture and variant with other keys (other fragments, another kernel
# source, another checkout's edits) are kept: several checkouts share the cache. Only the
# least recently used beyond the newest $SWCCI_KERNEL_KEEP go.
prune_trees

log "checking that Rust is available to the kernel build"
"${kmake[@]}" O="$out" rustavailable >/dev/null 2>"$out/rustavailable.err" ||
	die "the kernel reports Rust is not available: $(tail -n3 "$out/rustavailable.err" | tr '\n' ' ')"

log "configuring $arch ($variant) from $source: tinyconfig + $(for f in "${frags[@]}"; do basename "$f"; done | paste -sd+ | sed 's/+/ + /g')"
configure_tree
log "building the $arch $variant kernel from $source with $(nproc) jobs (about 4-10 min cold)"
build_tree
echo "$source" >"$out/.swcci-source"
printf 'ARCH := %s\n' "$karch" >"$out/swcci-kbuild.mk"
[ -n "$llvm" ] && printf 'LLVM := %s\n' "$llvm" >>"$out/swcci-kbuild.mk"
[ -n "$llvm" ] || [ -z "$cross" ] || printf 'CROSS_COMPILE := %s\n' "$cross" >>"$out/swcci-kbuild.mk"
basename "$out" >"$stamp"
mark_used
tree_ok || die "kernel build finished but $out lacks expected artefacts"
log "kernel tree ready: $out"
echo "$out"
