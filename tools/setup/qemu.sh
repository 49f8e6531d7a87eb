#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide QEMU 11.1 (Debian trixie-backports) on this bookworm host, and print the
# path of a wrapper directory holding `qemu-system-x86_64` and `qemu-system-aarch64`
# (and `qemu-system-arm`).
#
# trixie's QEMU needs trixie's libc, so it lives in a minimal trixie root made with
# debootstrap under $SWCCI_CACHE/qemu-root. The wrappers start it through that
# root's own dynamic loader and libraries, so no chroot or bind mount is needed and
# every host path (kernel, initramfs, sockets) stays valid.
#
# The version is chosen by the package policy (resolve.sh: the newest revision of QEMU 11.1.x,
# else the newest 11.x with a warning) when QEMU is installed, and recorded in the root's
# stamp; a cached QEMU is kept while it fits the policy. SWCCI_QEMU_VERSION names an exact
# Debian version instead (a cached one of another version is replaced).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root="$SWCCI_CACHE/qemu-root"
stamp="$root/.swcci-complete"
bindir="$SWCCI_CACHE/qemu-bin"

# The cached QEMU fits: its recorded version is the override, or of the verified upstream
# version, and it runs.
ready() {
	local v
	v=$(qemu_version)
	[ "$v" != none ] && [ -x "$bindir/qemu-system-x86_64" ] || return 1
	if [ -n "${SWCCI_QEMU_VERSION:-}" ]; then
		[ "$v" = "$SWCCI_QEMU_VERSION" ] || return 1
	else
		[[ $(pkg_upstream "$v") =~ ${POLICY_QEMU[2]} ]] || return 1
	fi
	"$bindir/qemu-system-x86_64" --version >/dev/null 2>&1 &&
		"$bindir/qemu-system-aarch64" --version >/dev/null 2>&1
}

if ready; then
	log "QEMU $(qemu_version) is cached: $bindir"
	echo "$bindir"
	exit 0
fi

need_root "QEMU setup (debootstrap)"
# Its own lock, not the cache's: tools/test.sh sets QEMU up in the background while the kernel
# builds (which take the cache lock to unpack the source) start.
mkdir -p "$SWCCI_CACHE"
exec 7>"$SWCCI_CACHE/.qemu.lock"
if ! flock -n 7; then
	log "waiting for another QEMU set-up"
	flock 7
fi
if ready; then # set up by a concurrent run while we waited
	echo "$bindir"
	exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap missing: run tools/setup/host.sh first"

[ ! -f "$root/.swcci-base" ] || log "QEMU root $root: installing QEMU (none yet, or not the version wanted: $(qemu_version))"
trixie_root_open "$root" "QEMU"
rm -f "$stamp"
log "choosing QEMU from trixie-backports (policy: ${POLICY_QEMU[0]}${SWCCI_QEMU_VERSION:+; override SWCCI_QEMU_VERSION=$SWCCI_QEMU_VERSION})"
retry apt_refresh chroot "$root" || die "cannot update the package indexes in the trixie root"
resolve_qemu chosen chroot "$root" || die "no QEMU to install (see above)"
version=${chosen#* }
log "installing QEMU $version from trixie-backports into the root"
retry run_logged chroot "$root" apt-get install -y -q --no-install-recommends -t trixie-backports \
	"qemu-system-x86=$version" "qemu-system-arm=$version" seabios || die "installing QEMU failed"
trixie_root_close "$root"

rm -rf "$bindir"
mkdir -p "$bindir"
for q in qemu-system-x86_64 qemu-system-aarch64 qemu-system-arm; do
	cat >"$bindir/$q" <<EOS
#!/bin/sh
# QEMU from the trixie root, run with that root's loader and libraries.
R=$root
export QEMU_MODULE_DIR="\$R/usr/lib/x86_64-linux-gnu/qemu"
exec "\$R/usr/lib64/ld-linux-x86-64.so.2" \\
	--library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" \\
	"\$R/usr/bin/$q" -L "\$R/usr/share/qemu" -L "\$R/usr/share/seabios" "\$@"
EOS
	chmod +x "$bindir/$q"
done
echo "qemu $version" >"$stamp"
ready || die "QEMU was installed but does not run from $bindir"
log "QEMU ready: $("$bindir/qemu-system-x86_64" --version | head -n1)"
echo "$bindir"
