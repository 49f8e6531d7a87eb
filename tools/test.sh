#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's test command: sets up this machine if needed, builds everything and runs the
# whole test suite: host tests (cargo test of the protocol core and the tools) and the
# in-guest suite under QEMU, one boot per scenario.
#
#   tools/test.sh [--arch ARCH[,ARCH]] [--scenario A,B] [--filter TEST] [--host-only]
#                 (default: --arch x86_64,arm64,arm, every scenario)
#                 [--switches N] [--type3 N] [--kvm]
#
# Output: progress, every test result, and a last line "N passed, N failed".
# Logs: out/<arch>/<scenario>/{kernel.log,tests.log,qemu.log} (OUT= to move them).
# Exit status 0 only if everything passed.
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arches=x86_64,arm64,arm
scenario=
filter=
host_only=0
runner_extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arches=$2; shift ;;
	--scenario) scenario=$2; shift ;;
	--filter) filter=$2; shift ;;
	--host-only) host_only=1 ;;
	--switches|--type3) runner_extra+=("$1" "$2"); shift ;;
	--kvm) runner_extra+=(--kvm) ;;
	-h|--help) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

need_root "the test suite (it installs packages and runs QEMU)"
out=${OUT:-$SWCCI_TOP/out}
total_pass=0
total_fail=0

log "step 1/5: host setup"
"$SWCCI_TOP/tools/setup/host.sh"

log "step 2/5: host tests (protocol core, tools)"
host_log="$out/host-tests.log"
mkdir -p "$out"
count_host() {
	local p f
	p=$(grep -E '^test result:' "$host_log" | awk '{s+=$4} END {print s+0}')
	f=$(grep -E '^test result:' "$host_log" | awk '{s+=$6} END {print s+0}')
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	log "host tests: $p passed, $f failed (log: $host_log)"
}
if ! (
	set -o pipefail
	cd "$SWCCI_TOP/rust" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR-proto" cargo test --locked 2>&1
	cd "$SWCCI_TOP/tools" && cargo test --locked 2>&1
) >"$host_log" 2>&1; then
	count_host
	grep -E '^(test .* FAILED|---- |error|thread .* panicked)' "$host_log" | head -20 >&2 || true
	[ "$total_fail" -gt 0 ] || total_fail=1
	echo "$total_pass passed, $total_fail failed"
	die "host tests failed (see $host_log)"
fi
count_host
if [ "$host_only" = 1 ]; then
	echo "$total_pass passed, $total_fail failed"
	exit 0
fi

log "step 3/5: QEMU"
qemu_dir=$("$SWCCI_TOP/tools/setup/qemu.sh")

status=0
IFS=, read -ra arch_list <<<"$arches"
for arch in "${arch_list[@]}"; do
	log "step 4/5: kernel tree and build for $arch"
	kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" "$arch")
	bin=$("$SWCCI_TOP/tools/build.sh" "$arch")
	sc=${scenario:-main,taint,taint-strict,lockdown,emu,fw}

	log "step 5/5: in-guest suite on $arch (scenarios $sc)"
	set +e
	run_guests "$arch" debug "$kdir" "$bin" "$qemu_dir" "$out" --scenario "$sc" --filter "$filter" \
		"${runner_extra[@]}" | tee "$out/runner-$arch.log"

	rc=${PIPESTATUS[0]}
	set -e
	line=$(grep -E "^$arch \(arch" "$out/runner-$arch.log" | tail -n1 || true)
	p=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	total_pass=$((total_pass + ${p:-0}))
	total_fail=$((total_fail + ${f:-0}))
	if [ "$rc" != 0 ]; then
		status=1
		[ "${f:-0}" -gt 0 ] || total_fail=$((total_fail + 1))
	fi
done

log "done in $(($(date +%s) - _swcci_t0)) s"
echo "$total_pass passed, $total_fail failed"
exit $status
