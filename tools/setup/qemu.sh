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
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${SWCCI_QEMU_VERSION:=1:11.1.3+ds-1~bpo13+1}"
root="$SWCCI_CACHE/qemu-root"
stamp="$root/.swcci-complete"
bindir="$SWCCI_CACHE/qemu-bin"
want="qemu $SWCCI_QEMU_VERSION"

ready() {
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$bindir/qemu-system-x86_64" ] &&
		"$bindir/qemu-system-x86_64" --version >/dev/null 2>&1 &&
		"$bindir/qemu-system-aarch64" --version >/dev/null 2>&1
}

if ready; then
	log "QEMU $("$bindir/qemu-system-x86_64" --version | head -n1 | awk '{print $4}') is cached: $bindir"
	echo "$bindir"
	exit 0
fi

need_root "QEMU setup (debootstrap)"
cache_lock
command -v debootstrap >/dev/null || die "debootstrap missing: run tools/setup/host.sh first"

# Each attempt starts from an empty directory: debootstrap does not resume a partial root.
fresh_debootstrap() {
	rm -rf "$root.tmp"
	run_logged debootstrap --variant=minbase trixie "$root.tmp" http://deb.debian.org/debian
}

if [ ! -f "$root/.swcci-base" ]; then
	rm -rf "$root"
	log "debootstrap a minimal trixie root for QEMU (1-3 min)"
	retry fresh_debootstrap || die "debootstrap of trixie failed"
	touch "$root.tmp/.swcci-base"
	mv "$root.tmp" "$root"
else
	log "QEMU root $root has no QEMU yet: installing it"
fi
cat >"$root/etc/apt/sources.list.d/backports.sources" <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
log "installing QEMU $SWCCI_QEMU_VERSION from trixie-backports into the root"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" "$root/dev" 2>/dev/null || true' EXIT
retry run_logged chroot "$root" apt-get update -q || die "apt-get update in the trixie root failed"
# Read whole before matching: `grep -q` on the pipe may exit at the first match, and the
# SIGPIPE apt-cache then gets fails the pipeline under pipefail.
madison=$(chroot "$root" apt-cache madison qemu-system-x86)
if ! grep -qF "| $SWCCI_QEMU_VERSION |" <<<"$madison"; then
	die "qemu-system-x86=$SWCCI_QEMU_VERSION is not available from trixie-backports (have:" \
		"$(awk -F'|' '{printf "%s", $2}' <<<"$madison"))"
fi
retry run_logged chroot "$root" apt-get install -y -q --no-install-recommends -t trixie-backports \
	"qemu-system-x86=$SWCCI_QEMU_VERSION" "qemu-system-arm=$SWCCI_QEMU_VERSION" seabios || die "installing QEMU failed"
chroot "$root" apt-get clean
umount "$root/proc" "$root/dev"
trap - EXIT

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
echo "$want" >"$stamp"
ready || die "QEMU was installed but does not run from $bindir"
log "QEMU ready: $("$bindir/qemu-system-x86_64" --version | head -n1)"
echo "$bindir"
