# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the swcci setup and test scripts. Sourced, not run.

# Everything built or downloaded for the project lives here, outside the checkout,
# so that a fresh clone reuses it. Safe to delete: it is rebuilt on demand.
: "${SWCCI_CACHE:=/var/cache/swcci}"
export SWCCI_CACHE

SWCCI_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SWCCI_TOP

# Outside Debian packages are chosen by policy at set-up time, never by a pinned revision
# (resolve.sh: QEMU 11.1.x, linux-source-7.3 7.3.x, rust-src equal to rustc). These override
# variables, when set, name an exact choice instead:
#   SWCCI_QEMU_VERSION           a Debian version of qemu-system-x86/-arm (trixie-backports)
#   SWCCI_LINUX_SOURCE_PKG       a kernel source package (linux-source-N.M)
#   SWCCI_LINUX_SOURCE_VERSION   a Debian version of that package
# bindgen-cli (crates.io keeps every version) and the LLVM suffix of bookworm's clang are fixed.
: "${SWCCI_BINDGEN_VERSION:=0.71.1}"
: "${SWCCI_LLVM_SUFFIX:=-19}"
. "$(dirname "${BASH_SOURCE[0]}")/resolve.sh"

export PATH="$SWCCI_CACHE/bin:$HOME/.cargo/bin:$PATH"
# Cargo output of the tools (host and guest builds), kept across clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SWCCI_CACHE/cargo-target}"
export LIBCLANG_PATH="${LIBCLANG_PATH:-/usr/lib/llvm${SWCCI_LLVM_SUFFIX}/lib}"
export RUST_LIB_SRC="${RUST_LIB_SRC:-/usr/lib/rustlib/src/rust/library}"
export DEBIAN_FRONTEND=noninteractive

_swcci_t0=${_swcci_t0:-$(date +%s)}
export _swcci_t0

log() {
	printf '[swcci %4ss] %s\n' "$(($(date +%s) - _swcci_t0))" "$*" >&2
}

die() {
	printf 'swcci: error: %s\n' "$*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" = 0 ] || die "$1 needs root (run it with sudo)"
}

# Run a command with its output indented on stderr, so long steps show progress. (Never on
# stdout: the setup scripts print their result there for $(...).)
run_logged() {
	"$@" 2>&1 | sed -u 's/^/    /' >&2
	return "${PIPESTATUS[0]}"
}

# Run a command up to three times (mirrors are occasionally mid-sync).
retry() {
	local n
	for n in 1 2 3; do
		"$@" && return 0
		[ "$n" = 3 ] || { log "attempt $n of: $* failed; retrying in 10 s"; sleep 10; }
	done
	return 1
}

# Serialise cache updates between concurrent runs.
cache_lock() {
	mkdir -p "$SWCCI_CACHE"
	exec 9>"$SWCCI_CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for another swcci run to release $SWCCI_CACHE/.lock"
		flock 9
	fi
}

rustc_version() {
	rustc --version | awk '{print $2}'
}

# The major version of the LLVM rustc is built on (`LLVM version: 22.1.2` -> 22).
rustc_llvm_major() {
	rustc -vV | sed -n 's/^LLVM version: \([0-9]*\)\..*/\1/p' | grep .
}

installed_version() {
	dpkg-query -W -f '${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "installed" {print $2}' || true
}

# The installed kernel source the trees are built from, as "PACKAGE VERSION": the override
# package if SWCCI_LINUX_SOURCE_PKG is set, else the installed linux-source-N.M the policy
# prefers (tools/setup/host.sh installed it). Returns 1, printing nothing, if there is none.
linux_source() {
	local all
	if [ -n "${SWCCI_LINUX_SOURCE_PKG:-}" ]; then
		all=$(installed_version "$SWCCI_LINUX_SOURCE_PKG")
		[ -n "$all" ] || return 1
		echo "$SWCCI_LINUX_SOURCE_PKG $all"
		return 0
	fi
	all=$(dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n' 'linux-source-*' 2>/dev/null |
		awk '$3 == "installed" {print $1, $2, "installed"}' || true)
	local pick
	pick=$(policy_pick "${POLICY_LINUX[@]}" <<<"$all") || return 1
	echo "$pick" | awk '{print $2, $3}'
}

# The QEMU version of the cached QEMU root (tools/setup/qemu.sh), or "none".
qemu_version() {
	sed -n 's/^qemu //p' "$SWCCI_CACHE/qemu-root/.swcci-complete" 2>/dev/null | grep . || echo none
}

# One line naming what a boot runs on (the top line of its logs): the chosen outside packages
# and the tools that built the kernel tree KDIR.
provenance() {
	local kdir=$1
	printf 'QEMU %s; kernel %s (tree %s); rustc %s; rust-src %s; bindgen %s\n' \
		"$(qemu_version)" "$(cat "$kdir/.swcci-source" 2>/dev/null || echo unknown)" \
		"$(basename "$kdir")" "$(rustc_version)" "$(installed_version rust-src)" \
		"$(bindgen --version 2>/dev/null | awk '{print $2}')"
}

# trixie_root_open ROOT WHAT: a minimal trixie root at ROOT (debootstrapped on first use, each
# attempt from an empty directory: debootstrap does not resume a partial root) with
# trixie-backports among its sources, /dev and /proc mounted (unmounted on exit, or by
# trixie_root_close), ready for apt-get in a chroot. WHAT names its use in the log. The roots
# of tools/setup/qemu.sh and llvm.sh.
trixie_root_open() {
	local root=$1 what=$2
	if [ ! -f "$root/.swcci-base" ]; then
		rm -rf "$root"
		log "debootstrap a minimal trixie root for $what (1-3 min)"
		retry _trixie_debootstrap "$root" || die "debootstrap of trixie failed"
		touch "$root.tmp/.swcci-base"
		mv "$root.tmp" "$root"
	fi
	cat >"$root/etc/apt/sources.list.d/backports.sources" <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
	mount --bind /dev "$root/dev"
	mount -t proc proc "$root/proc"
	# shellcheck disable=SC2064 # the root is fixed now
	trap "umount '$root/proc' '$root/dev' 2>/dev/null || true" EXIT
}

_trixie_debootstrap() {
	rm -rf "$1.tmp"
	run_logged debootstrap --variant=minbase trixie "$1.tmp" http://deb.debian.org/debian
}

# trixie_root_close ROOT: drops the root's package cache and unmounts what trixie_root_open
# mounted.
trixie_root_close() {
	chroot "$1" apt-get clean
	umount "$1/proc" "$1/dev"
	trap - EXIT
}

# check_names OPTION LIST ALLOWED WHAT: dies unless LIST, the comma-separated value given to
# OPTION, names only WHAT names of ALLOWED ("a, b or c"), none empty, none twice.
check_names() {
	local opt=$1 list=$2 allowed=$3 what=$4 seen=, n names all
	all=${allowed//, /,}
	all=${all// or /,}
	[[ -n $list && $list != *, && $list != ,* && $list != *,,* ]] ||
		die "$opt $list: an empty $what name ($allowed)"
	IFS=, read -ra names <<<"$list"
	for n in "${names[@]}"; do
		[[ ",$all," == *",$n,"* ]] || die "unknown $what '$n' ($allowed)"
		[[ $seen != *",$n,"* ]] || die "$opt $list: $n named twice"
		seen+="$n,"
	done
}

# u64_number VALUE: whether VALUE is a 64-bit number as swcci-runner reads one (--fuzz-seed):
# decimal, or 0x and hex digits, leading zeros allowed (same-length strings compare as numbers).
u64_number() {
	local d=${1#0x}
	while [[ $d == 0?* ]]; do d=${d#0}; done
	[[ ($1 =~ ^0x[0-9a-fA-F]+$ && ${#d} -le 16) ||
		($1 =~ ^[0-9]+$ && (${#d} -lt 20 || (${#d} -eq 20 && ! $d > 18446744073709551615))) ]]
}

# sanitized_variant ARCH: the kernel variant with KASAN, UBSAN and fault injection on ARCH:
# x86_64's debug kernel, the hardened one elsewhere (tools/setup/kernel.sh).
sanitized_variant() {
	if [ "$1" = x86_64 ]; then echo debug; else echo hardened; fi
}

# run_guests ARCH VARIANT KDIR BIN QEMU_DIR OUT RUNNER-ARGS...: boots the guests of
# swcci-runner (built by tools/build.sh) for ARCH (x86_64, arm64, arm; ast2600: ARMv7 on QEMU's
# ast2600-evb, ast2700: arm64 on ast2700a2-evb, each with the device tree of
# tools/setup/dtb.sh), with the kernel of the tree KDIR (of
# VARIANT), the guest programs and the module in BIN and QEMU from QEMU_DIR; logs go below OUT.
run_guests() {
	local arch=$1 variant=$2 kdir=$3 bin=$4 qemu_dir=$5 out=$6 image busybox d dtb=()
	shift 6
	for d in "$kdir" "$bin" "$qemu_dir"; do
		[ -d "$d" ] || die "a setup step printed '$d' where a directory was expected"
	done

	case "$arch" in
	x86_64) image=arch/x86/boot/bzImage busybox=/bin/busybox ;;
	arm64) image=arch/arm64/boot/Image busybox=$("$SWCCI_TOP/tools/setup/busybox.sh" arm64) ;;
	arm) image=arch/arm/boot/zImage busybox=$("$SWCCI_TOP/tools/setup/busybox.sh" armhf) ;;
	ast2600)
		image=arch/arm/boot/zImage busybox=$("$SWCCI_TOP/tools/setup/busybox.sh" armhf)
		dtb=(--dtb "$("$SWCCI_TOP/tools/setup/dtb.sh" "$kdir" ast2600)") || die "no device tree for the ast2600 machine"
		;;
	ast2700)
		image=arch/arm64/boot/Image busybox=$("$SWCCI_TOP/tools/setup/busybox.sh" arm64)
		dtb=(--dtb "$("$SWCCI_TOP/tools/setup/dtb.sh" "$kdir" ast2700)") || die "no device tree for the ast2700 machine"
		;;
	*) die "no guest for architecture $arch (x86_64, arm64, arm, ast2600 or ast2700)" ;;
	esac
	# The module built without fwctl, where tools/build.sh made one.
	local nofwctl=()
	[ ! -f "$bin/../cxl_swcci-$arch-$variant-nofwctl.ko" ] ||
		nofwctl=(--module-without-fwctl "$bin/../cxl_swcci-$arch-$variant-nofwctl.ko")
	"$CARGO_TARGET_DIR/release/swcci-runner" --arch "$arch" --kernel "$kdir/$image" \
		--module "$bin/../cxl_swcci-$arch-$variant.ko" "${nofwctl[@]}" --guest-bin "$bin" \
		--busybox "$busybox" --qemu-dir "$qemu_dir" \
		--emu "$CARGO_TARGET_DIR/release/swcci-emu" --out "$out" \
		--provenance "$(provenance "$kdir")" "${dtb[@]}" "$@"
}
