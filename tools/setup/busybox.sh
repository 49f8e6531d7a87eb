#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the path of a static busybox for a foreign Debian architecture (arm64, armhf),
# downloading Debian's busybox-static package for it on first use. The host's apt state is
# not touched: the package lists of that architecture go to a private directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

arch=${1:?usage: busybox.sh arm64|armhf}
dir="$SWCCI_CACHE/busybox/$arch"
if [ -x "$dir/busybox" ] && grep -q "statically linked" <<<"$(file "$dir/busybox")"; then
	echo "$dir/busybox"
	exit 0
fi
cache_lock
state="$SWCCI_CACHE/apt-$arch"
mkdir -p "$state/lists/partial" "$state/archives/partial" "$dir"
# Only bookworm main: nothing else is needed, and fewer indexes mean fewer mirror hiccups.
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n' \
	>"$state/sources.list"
apt_opts=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
	-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
	-o "Dir::State::Lists=$state/lists" -o "Dir::Cache::Archives=$state/archives"
	-o "Dir::State::Status=$state/status" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
touch "$state/status"
log "fetching busybox-static for $arch"
retry run_logged apt-get "${apt_opts[@]}" -q update || die "apt-get update for $arch failed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get "${apt_opts[@]}" -q download "busybox-static:$arch" >&2) ||
	die "cannot download busybox-static for $arch"
dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/root"
cp "$tmp/root/bin/busybox" "$dir/busybox.tmp"
mv "$dir/busybox.tmp" "$dir/busybox"
grep -q "statically linked" <<<"$(file "$dir/busybox")" || die "$dir/busybox is not a static binary"
echo "$dir/busybox"
