#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Make `cargo -Zbuild-std` work for a cross target (the guest programs for arm64 and ARMv7).
#
# rustup cannot download target standard libraries here, and the rustup toolchain has no
# rust-src component. Debian's rust-src package of exactly the same version (installed by
# host.sh for the kernel build) has the standard library sources: link them where cargo looks,
# $(rustc --print sysroot)/lib/rustlib/src/rust, so cargo can build std for any target.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

triple=${1:?usage: cross-std.sh TARGET-TRIPLE}
sysroot=$(rustc --print sysroot)
want=/usr/lib/rustlib/src/rust
[ -f "$want/library/Cargo.lock" ] || die "$want/library is missing: run tools/setup/host.sh"
link="$sysroot/lib/rustlib/src/rust"
if [ "$(readlink "$link" 2>/dev/null)" != "$want" ]; then
	if [ -e "$link" ] && [ ! -L "$link" ]; then
		log "$link exists (rustup's rust-src): using it for $triple"
		exit 0
	fi
	log "linking Debian's rust-src into the toolchain ($link) for build-std"
	mkdir -p "$(dirname "$link")"
	ln -sfn "$want" "$link"
fi
log "standard library sources ready for $triple"
