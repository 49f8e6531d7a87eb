#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the host needs to build the module, the kernel tree and the
# tools: Debian packages (some from trixie/trixie-backports, pinned low so that
# nothing of the base system is upgraded), rust-src matching rustc exactly, and
# bindgen-cli. Idempotent: a second run checks and says there is nothing to do.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SOURCES=/etc/apt/sources.list.d/swcci.sources
PREFS=/etc/apt/preferences.d/swcci.pref

want_sources='Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'

# trixie and trixie-backports are only used for the packages named below.
want_prefs='Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100'

# Packages from the base release (bookworm).
BASE_PKGS=(
	build-essential flex bison bc libelf-dev libssl-dev cpio kmod xz-utils rsync
	busybox-static debootstrap
	"clang$SWCCI_LLVM_SUFFIX" "lld$SWCCI_LLVM_SUFFIX" "llvm$SWCCI_LLVM_SUFFIX"
	"libclang$SWCCI_LLVM_SUFFIX-dev"
	libc6-dev-i386 lib32gcc-12-dev
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
)

changed=0

check_os() {
	local id ver
	id=$(. /etc/os-release && echo "$ID")
	ver=$(. /etc/os-release && echo "${VERSION_ID:-}")
	if [ "$id" != debian ] || [ "$ver" != 12 ]; then
		log "warning: verified on Debian 12 (bookworm) only; this is $id $ver"
	fi
	[ "$(uname -m)" = x86_64 ] || die "the build host must be x86_64 (this is $(uname -m))"
}

setup_apt() {
	local update=0
	if [ "$(cat "$SOURCES" 2>/dev/null)" != "$want_sources" ]; then
		log "adding apt suites bookworm-backports, trixie, trixie-backports ($SOURCES)"
		printf '%s\n' "$want_sources" >"$SOURCES"
		update=1
	fi
	if [ "$(cat "$PREFS" 2>/dev/null)" != "$want_prefs" ]; then
		log "pinning trixie and trixie-backports to priority 100 ($PREFS)"
		printf '%s\n' "$want_prefs" >"$PREFS"
		update=1
	fi
	if ! ls /var/lib/apt/lists/*trixie-backports*Packages* >/dev/null 2>&1; then
		update=1
	fi
	if [ "$update" = 1 ]; then
		log "apt-get update"
		retry run_logged apt-get update -q || die "apt-get update failed"
		changed=1
	fi
}

installed_version() {
	dpkg-query -W -f '${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "installed" {print $2}' || true
}

# Pick the rust-src whose upstream version equals rustc's, exactly.
rust_src_version() {
	local rv cand
	rv=$(rustc_version)
	cand=$(apt-cache madison rust-src | awk -F'|' '{gsub(/ /,"",$2); print $2}' |
		grep -E "^${rv//./\\.}\+" | head -n1 || true)
	if [ -z "$cand" ]; then
		die "no Debian rust-src package matches rustc $rv (available: $(apt-cache madison rust-src |
			awk -F'|' '{gsub(/ /,"",$2); printf "%s ", $2}')); install rustc of one of those versions"
	fi
	echo "$cand"
}

install_pkgs() {
	local missing=() p v rs
	for p in "${BASE_PKGS[@]}"; do
		[ -n "$(installed_version "$p")" ] || missing+=("$p")
	done
	rs=$(rust_src_version)
	[ "$(installed_version rust-src)" = "$rs" ] || missing+=("rust-src=$rs")
	v=$(installed_version "$SWCCI_LINUX_SOURCE_PKG")
	if [ "$v" != "$SWCCI_LINUX_SOURCE_VERSION" ]; then
		# Whole before matching: a `grep -q` that exits early makes apt-cache fail with SIGPIPE.
		madison=$(apt-cache madison "$SWCCI_LINUX_SOURCE_PKG")
		if ! grep -qF "| $SWCCI_LINUX_SOURCE_VERSION |" <<<"$madison"; then
			die "$SWCCI_LINUX_SOURCE_PKG=$SWCCI_LINUX_SOURCE_VERSION is no longer available from apt" \
				"(have: $(awk -F'|' '{printf "%s", $2}' <<<"$madison"));" \
				"set SWCCI_LINUX_SOURCE_VERSION to one of those after checking it"
		fi
		missing+=("$SWCCI_LINUX_SOURCE_PKG=$SWCCI_LINUX_SOURCE_VERSION")
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		retry run_logged apt-get install -y -q --no-install-recommends "${missing[@]}" ||
			die "apt-get install failed"
		changed=1
	fi
	[ -d "$RUST_LIB_SRC/core" ] || die "rust-src is installed but $RUST_LIB_SRC/core is missing"
}

install_bindgen() {
	local have
	have=$(bindgen --version 2>/dev/null | awk '{print $2}' || true)
	if [ "$have" != "$SWCCI_BINDGEN_VERSION" ]; then
		log "cargo install bindgen-cli $SWCCI_BINDGEN_VERSION into $SWCCI_CACHE (about 1.5 min)"
		retry run_logged cargo install --quiet --locked --root "$SWCCI_CACHE" \
			bindgen-cli --version "$SWCCI_BINDGEN_VERSION" ||
			die "cargo install bindgen-cli failed"
		changed=1
	fi
}

check_rust() {
	command -v rustc >/dev/null || die "rustc not found (install rustup's $(printf 1.95.0) toolchain)"
	command -v cargo >/dev/null || die "cargo not found"
	# rustc's own sysroot must not shadow the Debian sources with a different version.
	local rv srcv
	rv=$(rustc_version)
	srcv=$(installed_version rust-src | sed 's/+.*//')
	[ "$rv" = "$srcv" ] || die "rust-src $srcv does not match rustc $rv"
}

need_root "host setup"
check_os
mkdir -p "$SWCCI_CACHE"
cache_lock
setup_apt
install_pkgs
check_rust
install_bindgen
if [ "$changed" = 0 ]; then
	log "host setup: nothing to do (packages, rust-src $(rustc_version), bindgen $SWCCI_BINDGEN_VERSION present)"
else
	log "host setup: done"
fi
