#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the host needs to build the module, the kernel tree and the
# tools: Debian packages (some from trixie/trixie-backports, pinned low so that
# nothing of the base system is upgraded), the kernel source and rust-src chosen by the
# package policy (resolve.sh), and bindgen-cli. Idempotent: a second run checks and says
# there is nothing to do.
#
#   tools/setup/host.sh            set up (root)
#   tools/setup/host.sh --check    install nothing: ask the registries (Debian, crates.io)
#                                  whether everything the set-up would install is offered,
#                                  and print what it would choose; exit 1 naming what is not
set -euo pipefail
. "$(dirname "$0")/lib.sh"

check_only=0
case "${1:-}" in
--check) check_only=1 ;;
"") ;;
-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown option $1 (see --help)" ;;
esac

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
apt_fresh=0

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
		retry apt_refresh || die "cannot update the package indexes (see the error above)"
		apt_fresh=1
		changed=1
	fi
}

# Kernel source and rust-src: what is installed stays if it fits the policy (resolve.sh), so a
# warm machine needs no registry; otherwise the registry is asked (fresh indexes first: stale
# ones name revisions Debian has already removed) and the policy's choice is installed.
install_pkgs() {
	local missing=() p rv ls rs
	for p in "${BASE_PKGS[@]}"; do
		[ -n "$(installed_version "$p")" ] || missing+=("$p")
	done
	rv=$(rustc_version)
	ls=$(linux_source || true)
	rs=$(installed_version rust-src)
	if [ -n "${SWCCI_LINUX_SOURCE_VERSION:-}" ] &&
		[ "${ls#* }" != "$SWCCI_LINUX_SOURCE_VERSION" ]; then
		ls=
	fi
	rust_src_fits "${rs:-none}" "$rv" || rs=
	if [ ${#missing[@]} -eq 0 ] && [ -n "$ls" ] && [ -n "$rs" ]; then
		log "kernel source: $ls (installed); rust-src $rs (installed)"
		return 0
	fi
	if [ "$apt_fresh" = 0 ]; then
		log "apt-get update (packages to choose or install)"
		retry apt_refresh || die "cannot update the package indexes (see the error above)"
		apt_fresh=1
	fi
	if [ -z "$ls" ]; then
		resolve_linux_source ls || die "no kernel source package to install (see above)"
		missing+=("${ls% *}=${ls#* }")
	fi
	if [ -z "$rs" ]; then
		resolve_rust_src rs "$rv" || die "no rust-src for rustc $rv: install a rustc whose version Debian's rust-src has"
		missing+=("rust-src=${rs#* }")
	fi
	log "kernel source: $ls; rust-src ${rs#rust-src }"
	log "installing ${missing[*]}"
	retry run_logged apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed"
	changed=1
	[ -d "$RUST_LIB_SRC/core" ] || die "rust-src is installed but $RUST_LIB_SRC/core is missing"
}

# bindgen-cli from crates.io (it loads libclang at run time, so it builds before the Debian
# packages are there): started in the background, so that its build overlaps the package
# downloads; `wait_bindgen` collects it.
bindgen_pid=
start_bindgen() {
	local have
	have=$(bindgen --version 2>/dev/null | awk '{print $2}' || true)
	if [ "$have" != "$SWCCI_BINDGEN_VERSION" ]; then
		log "cargo install bindgen-cli $SWCCI_BINDGEN_VERSION into $SWCCI_CACHE, in the background (about 1 min)"
		retry run_logged cargo install --quiet --locked --root "$SWCCI_CACHE" \
			bindgen-cli --version "$SWCCI_BINDGEN_VERSION" &
		bindgen_pid=$!
		changed=1
	fi
}

wait_bindgen() {
	[ -z "$bindgen_pid" ] || wait "$bindgen_pid" || die "cargo install bindgen-cli failed (output above)"
	bindgen_pid=
}

check_rust() {
	command -v rustc >/dev/null || die "rustc not found (install rustup's $(printf 1.95.0) toolchain)"
	command -v cargo >/dev/null || die "cargo not found"
	# rustc's own sysroot must not shadow the Debian sources with a different version.
	local rv srcv
	rv=$(rustc_version)
	srcv=$(installed_version rust-src)
	rust_src_fits "$srcv" "$rv" || die "rust-src ${srcv:-(none)} does not match rustc $rv"
}

# --check: a private copy of the package indexes the set-up uses (the host's apt state is not
# touched), then every choice the set-up would make.
check_registries() {
	local problems=0 p out ls rs q rv
	check_dir=$(mktemp -d)
	trap 'rm -rf "$check_dir"' EXIT
	local dir=$check_dir
	mkdir -p "$dir/lists/partial" "$dir/cache"
	: >"$dir/status"
	{
		echo "deb [arch=amd64,arm64,armhf signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
		for suite in bookworm-backports trixie trixie-backports; do
			echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main"
		done
	} >"$dir/sources.list"
	SWCCI_APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o "Dir::State::Status=$dir/status"
		-o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts=/nonexistent
		-o Debug::NoLocking=1 -o "APT::Sandbox::User=$(id -un)"
		-o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o APT::Architectures::=armhf)
	log "check: asking the Debian registry (bookworm, bookworm-backports, trixie, trixie-backports)"
	retry apt_refresh || die "check failed: the Debian registry could not be reached"
	problem() { printf 'swcci: error: %s\n' "$*" >&2; problems=$((problems + 1)); }
	out=$(apt_candidates -- "${BASE_PKGS[@]}" busybox-static:arm64 busybox-static:armhf)
	for p in "${BASE_PKGS[@]}" busybox-static:arm64 busybox-static:armhf; do
		awk -v p="$p" '$1 == p {f = 1} END {exit !f}' <<<"$out" || problem "$p is not offered by bookworm"
	done
	[ "$problems" != 0 ] || log "check: ${#BASE_PKGS[@]} bookworm packages and busybox-static (arm64, armhf): offered"
	if resolve_linux_source ls; then
		log "check: kernel source: would install $ls (installed: $(linux_source || echo none))"
	else problems=$((problems + 1)); fi
	rv=$(rustc_version)
	if resolve_rust_src rs "$rv"; then
		log "check: rust-src for rustc $rv: would install ${rs#* } (installed: $(installed_version rust-src | grep . || echo none))"
	else problems=$((problems + 1)); fi
	if resolve_qemu q; then
		log "check: QEMU (trixie-backports, in the QEMU root): would install ${q#* } (cached: $(qemu_version))"
	else problems=$((problems + 1)); fi
	if out=$(timeout 120 cargo info --quiet "bindgen-cli@$SWCCI_BINDGEN_VERSION" 2>&1); then
		log "check: bindgen-cli $SWCCI_BINDGEN_VERSION: offered by crates.io"
	else
		problem "bindgen-cli $SWCCI_BINDGEN_VERSION: crates.io did not offer it: $(tail -n1 <<<"$out")"
	fi
	[ "$problems" = 0 ] || die "check: $problems of the set-up's packages cannot be installed from the registries today (above)"
	log "check: everything the set-up installs is offered"
}

if [ "$check_only" = 1 ]; then
	check_registries
	exit 0
fi

need_root "host setup"
check_os
mkdir -p "$SWCCI_CACHE"
cache_lock
start_bindgen
setup_apt
install_pkgs
check_rust
wait_bindgen
if [ "$changed" = 0 ]; then
	log "host setup: nothing to do ($(linux_source), rust-src $(installed_version rust-src), bindgen $SWCCI_BINDGEN_VERSION present)"
else
	log "host setup: done"
fi
