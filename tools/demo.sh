#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's main command: sets up this machine if needed, builds the kernel tree and the
# module, boots a QEMU guest with an emulated CXL switch (switch mailbox CCI, two type-3
# devices) and shows the driver working: the probe line from dmesg, then `swcci list`,
# `identify`, `switch-info`, `ports`, `topology` (the switch, its ports and the devices behind
# them) and a tunnelled Identify of a type-3 device.
#
#   tools/demo.sh [--arch x86_64|arm64|arm|ast2600|ast2700]
#
# --arch ast2600 (ast2700) boots QEMU's AST2600 (AST2700) EVB, the BMC SoC, with the switch
# behind the SoC's own PCIe root complex: a BMC engineer's sandbox (Documentation/bmc.rst).
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arch=x86_64
while [ $# -gt 0 ]; do
	case "$1" in
	--arch)
		[ $# -ge 2 ] || die "--arch needs a value: x86_64, arm64, arm, ast2600 or ast2700"
		arch=$2
		shift
		;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
[[ $arch == x86_64 || $arch == arm64 || $arch == arm || $arch == ast2600 || $arch == ast2700 ]] ||
	die "unknown architecture '$arch' (x86_64, arm64, arm, ast2600 or ast2700)"
need_root "the demo (it installs packages and runs QEMU)"
out=${OUT:-$SWCCI_TOP/out}

log "step 1/4: host setup"
"$SWCCI_TOP/tools/setup/host.sh"
mkdir -p "$out"
# QEMU (first time: a debootstrapped trixie root, mostly downloads) while the kernel builds.
"$SWCCI_TOP/tools/setup/qemu.sh" >"$out/qemu-dir" 2>"$out/qemu-setup.log" &
qemu_pid=$!
log "step 2/4: kernel tree for $arch (about 8 min the first time, cached after)"
kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" "$arch")
log "step 3/4: QEMU and the build"
if ! wait "$qemu_pid"; then
	cat "$out/qemu-setup.log" >&2
	die "QEMU set-up failed (above; log: $out/qemu-setup.log)"
fi
qemu_dir=$(cat "$out/qemu-dir")
log "QEMU: $qemu_dir ($(qemu_version))"
bin=$("$SWCCI_TOP/tools/build.sh" "$arch")
log "step 4/4: booting the guest"
run_guests "$arch" debug "$kdir" "$bin" "$qemu_dir" "$out" --scenario demo

