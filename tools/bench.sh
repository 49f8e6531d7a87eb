#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmarks, side by side in one guest boot, reported as numbers and ratios (not part of the
# test suite: nothing here passes or fails on speed).
#
#   tools/bench.sh [--arch ARCH] [--scenario bench[,bench-emu,bench-fw]]
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arch=x86_64
scenario=bench,bench-emu,bench-fw
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arch=$2; shift ;;
	--scenario) scenario=$2; shift ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root "the benchmarks"
out=${OUT:-$SWCCI_TOP/out}
"$SWCCI_TOP/tools/setup/host.sh"
kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" "$arch")
qemu_dir=$("$SWCCI_TOP/tools/setup/qemu.sh")
bin=$("$SWCCI_TOP/tools/build.sh" "$arch")
run_guests "$arch" debug "$kdir" "$bin" "$qemu_dir" "$out" --scenario "$scenario"

