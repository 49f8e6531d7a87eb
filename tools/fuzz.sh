#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A long run of the ioctl fuzzer (tools/ktest/src/tests/fuzz.rs) in its own boot (scenario
# `fuzz`), on a KASAN kernel by default (x86_64's debug kernel, arm64's hardened one); prints
# the ioctls run and the rate.
#
#   tools/fuzz.sh [--iters N] [--seed N] [--arch x86_64|arm64] [--variant debug|hardened]
#                 [--filter fuzz_switch_nodes|fuzz_mmpt_nodes]
#
# --iters: fuzzer steps per node kind, 8 to 1000000000 (default 500000; a step makes one ioctl
# or a few: 200,000 steps on the MMPT node made 358,440 ioctls); --seed: the seed, 64 bits,
# decimal or 0x hex (default: a new one, printed); --variant: on arm64 `debug` boots the kernel
# without KASAN (x86_64 has only debug). A failure prints its seed and iteration: rerun with
# that --seed (and --iters) to replay it.
# Logs: out/<arch>/fuzz/ (OUT= to move them).
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arch=x86_64
variant=
iters=500000
seed=$(printf '%#x' $(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM )))
filter=
while [ $# -gt 0 ]; do
	case "$1" in
	--arch|--variant|--iters|--seed|--filter)
		[ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)" ;;
	esac
	case "$1" in
	--arch) arch=$2; shift ;;
	--variant) variant=$2; shift ;;
	--iters) iters=$2; shift ;;
	--seed) seed=$2; shift ;;
	--filter) filter=$2; shift ;;
	-h|--help) sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
# The guest runs at least 8 steps; the limits' arithmetic needs a count that fits easily.
_d=$iters
while [[ $_d == 0?* ]]; do _d=${_d#0}; done
[[ $_d =~ ^[0-9]{1,10}$ ]] && ((10#$_d >= 8 && 10#$_d <= 1000000000)) ||
	die "--iters $iters: a number of steps from 8 to 1000000000"
iters=$((10#$_d))
# The seed is a 64-bit number, decimal or 0x hex, as the runner reads it (--fuzz-seed).
u64_number "$seed" || die "--seed $seed: not a 64-bit number (decimal or 0x hex)"
[[ -z $filter || $filter == fuzz_switch_nodes || $filter == fuzz_mmpt_nodes ]] ||
	die "--filter $filter: the fuzzer's tests are fuzz_switch_nodes and fuzz_mmpt_nodes"
[[ $arch == x86_64 || $arch == arm64 ]] || die "unknown architecture '$arch' for the fuzzer (x86_64 or arm64)"
[[ -z $variant || $variant == debug || $variant == hardened ]] ||
	die "unknown kernel variant '$variant' (debug or hardened)"
[[ $variant != hardened || $(sanitized_variant "$arch") == hardened ]] ||
	die "no separate hardened kernel for $arch: its debug kernel has KASAN (--variant debug, the default)"
: "${variant:=$(sanitized_variant "$arch")}"
need_root "the fuzzer (it runs QEMU)"
out=${OUT:-$SWCCI_TOP/out}
export SWCCI_STRICT=1

"$SWCCI_TOP/tools/setup/host.sh"
kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" --variant "$variant" "$arch")
qemu_dir=$("$SWCCI_TOP/tools/setup/qemu.sh")
bin=$("$SWCCI_TOP/tools/build.sh" --variant "$variant" "$arch")

log "fuzzing with seed $seed, $iters steps per node kind ($arch, $variant kernel)"
started=$(date +%s)
set +e
# Generous limits: the guest runs as long as the count asks (about 150-400 ioctls/s under
# TCG and KASAN); a stall still ends it after 10 minutes without output.
run_guests "$arch" "$variant" "$kdir" "$bin" "$qemu_dir" "$out" --scenario fuzz \
	--filter "$filter" --fuzz-seed "$seed" --fuzz-iters "$iters" \
	--timeout $((600 + iters / 20)) --idle-timeout 600
rc=$?
set -e
secs=$(($(date +%s) - started))
total=$(sed -n 's/^# fuzz: \([0-9]*\) ioctls in .*/\1/p' "$out/$arch/fuzz/tests.log" | awk '{s+=$1} END {print s+0}')
guest=$(sed -n 's/^# fuzz: [0-9]* ioctls in \([0-9.]*\) s.*/\1/p' "$out/$arch/fuzz/tests.log" | awk '{s+=$1} END {print s+0}')
rate=$(awk -v n="$total" -v s="$guest" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }')
echo "fuzz: seed $seed: $total ioctls in ${guest} s of fuzzing ($rate ioctls/s), ${secs} s in all"
[ "$rc" = 0 ] || echo "fuzz: FAILED: rerun with: tools/fuzz.sh --seed $seed --iters $iters${filter:+ --filter $filter}"
exit "$rc"
