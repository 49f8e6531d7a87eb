#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The command path benchmark (Documentation/testing.rst, "Benchmarks"): per architecture, one
# boot of each scenario on the bench kernel (no lock or leak debugging, built on demand by
# tools/setup/kernel.sh --variant bench) and of bench and bench-emu on the test suite's debug
# kernel, then one table of medians, p99 and ratios with the two kernels side by side, one
# line per goal (`P1 ioctl/(mmap+floor) ratio 1.08 (goal <= 1.10) met [x86_64]`), and the
# other scenarios' figures. Nothing here passes or fails on speed: the exit status is non-zero
# only if a boot failed (a command failed, a kernel warning, a hung guest).
#
#   tools/bench.sh [--arch x86_64,arm64] [--scenario bench,bench-emu,bench-fw] [--no-debug]
#
# --arch      architectures, in order (default x86_64,arm64; the mmap engine needs a 64-bit one)
# --scenario  bench (QEMU's switch: syscall floor, Identify and Get Log through the ioctl and
#             through the userspace mmap engine, 1-8 clients), bench-emu (the device emulator:
#             interrupts against polling), bench-fw (firmware transfer; Dynamic Capacity add
#             and release of 1, 16 and 256 extents; Identify and firmware update over
#             MCTP-serial beside the driver, each against its transport's bound, goal line
#             `M1 ...`), bench-topology;
#             default bench,bench-emu,bench-fw. Only bench and bench-emu boot the debug kernel
#             too and make the table; the others' figures follow it.
# --no-debug  skip the debug-kernel boots (the report shows their columns empty)
#
# Logs: OUT/bench/<kernel>/<arch>/<scenario>/{tests.log,kernel.log,qemu.log} (OUT defaults to
# out/), the runner's output in OUT/bench/runner-<arch>-<kernel>.log, the report in
# OUT/bench/report.txt.
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arches=x86_64,arm64
scenario=bench,bench-emu,bench-fw
kernels=(bench debug)
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arches=$2; shift ;;
	--scenario) scenario=$2; shift ;;
	--no-debug) kernels=(bench) ;;
	-h|--help) sed -n '4,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
need_root "the benchmarks"
out=${OUT:-$SWCCI_TOP/out}/bench
mkdir -p "$out"
"$SWCCI_TOP/tools/setup/host.sh"
qemu_dir=$("$SWCCI_TOP/tools/setup/qemu.sh")

# The scenarios of the table (both kernels) and the others (bench kernel only).
table_sc=()
other_sc=()
IFS=, read -ra sc_list <<<"$scenario"
for sc in "${sc_list[@]}"; do
	case "$sc" in
	bench|bench-emu) table_sc+=("$sc") ;;
	*) other_sc+=("$sc") ;;
	esac
done

status=0
loads=()
boot_s=0
build_s=0
IFS=, read -ra arch_list <<<"$arches"
for arch in "${arch_list[@]}"; do
	for k in "${kernels[@]}"; do
		if [ "$k" = bench ]; then
			sc=$scenario
		else
			sc=$(IFS=,; echo "${table_sc[*]}")
			[ -n "$sc" ] || continue
		fi
		t=$(date +%s)
		log "$k kernel for $arch (built on demand: about 4 min on 2 cores the first time)"
		kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" --variant "$k" "$arch")
		bin=$("$SWCCI_TOP/tools/build.sh" --variant "$k" "$arch")
		build_s=$((build_s + $(date +%s) - t))

		t=$(date +%s)
		load0=$(cut -d' ' -f1 /proc/loadavg)
		# Only this run's records go into the report.
		rm -rf "${out:?}/$k/$arch"
		log "benchmarks on $arch, $k kernel (scenarios $sc)"
		# Progress: results and verdicts; every guest line is in the runner's log.
		set +e
		run_guests "$arch" "$k" "$kdir" "$bin" "$qemu_dir" "$out/$k" --scenario "$sc" 2>&1 |
			tee "$out/runner-$arch-$k.log" |
			grep --line-buffered -E '^\[[^]]*\] (ok |not ok |booting|PASS|FAIL|swcci: guest)|FAIL:' >&2
		rc=${PIPESTATUS[0]}
		set -e
		if [ "$rc" != 0 ]; then
			status=1
			log "$arch $k kernel: a boot failed (see $out/runner-$arch-$k.log)"
		fi
		boot_s=$((boot_s + $(date +%s) - t))
		loads+=("$arch/$k $load0-$(cut -d' ' -f1 /proc/loadavg)")
	done
done

: >"$out/report.txt"
if [ ${#table_sc[@]} -gt 0 ]; then
	"$CARGO_TARGET_DIR/release/swcci-bench-report" --dir "$out" --arch "$arches" \
		--kernels bench,debug >>"$out/report.txt" || status=1
fi
# The other scenarios' figures: their KTAP diagnostics.
for arch in "${arch_list[@]}"; do
	for sc in "${other_sc[@]}"; do
		f="$out/bench/$arch/$sc/tests.log"
		[ -f "$f" ] || continue
		{
			echo
			echo "== $arch: $sc, bench kernel =="
			grep -E '^# ' "$f" | grep -vE '^# (running |swcci scenario |[0-9]+ skipped)' || true
		} >>"$out/report.txt"
	done
done
# The host's 1-minute load average before and after each kernel's boots: other work on the
# host's cores slows the guests' vCPUs and widens the spread of every figure.
echo "host load (1-min average, before-after the boots): ${loads[*]}" >>"$out/report.txt"
cat "$out/report.txt"
log "boots and report took ${boot_s} s; kernel trees and builds ${build_s} s"
exit $status
