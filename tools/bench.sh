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
#                  [--base REV] [--llvm]
#
# --arch      architectures, in order (default x86_64,arm64; the mmap engine needs a 64-bit one)
# --scenario  bench (QEMU's switch: syscall floor, Identify and Get Log through the ioctl and
#             through the userspace mmap engine, a block read of the payload, 1-8 clients,
#             against cxl_pci's raw path on QEMU's type-3), bench-emu (the device emulator:
#             interrupts against polling), bench-fw (firmware transfer; Dynamic Capacity add
#             and release of 1, 16 and 256 extents; Identify and firmware update over
#             MCTP-serial beside the driver, each against its transport's bound, goal line
#             `M1 ...`), bench-topology;
#             default bench,bench-emu,bench-fw. Only bench and bench-emu boot the debug kernel
#             too and make the table; the others' figures follow it.
# --no-debug  skip the debug-kernel boots (the report shows their columns empty)
# --base REV  also build the module at git revision REV (the base) for the bench kernel and
#             measure it beside this checkout's in the same boots (bench and bench-emu: every
#             round loads one build, measures, unloads it and loads the other, alternating
#             which goes first); the report adds the two side by side and their ratios
# --llvm      also boot bench on the bench-llvm kernel (tools/setup/kernel.sh --variant
#             bench-llvm: clang of rustc's LLVM from tools/setup/llvm.sh, C helpers inlined into
#             Rust; x86_64 and arm64), for goal L
#
# Logs: OUT/bench/<kernel>/<arch>/<scenario>/{tests.log,kernel.log,qemu.log} (OUT defaults to
# out/), the runner's output in OUT/bench/runner-<arch>-<kernel>.log, the report in
# OUT/bench/report.txt.
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

arches=x86_64,arm64
scenario=bench,bench-emu,bench-fw
debug=1
base=
llvm=0
while [ $# -gt 0 ]; do
	case "$1" in
	--arch|--scenario|--base) [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)" ;;
	esac
	case "$1" in
	--arch) arches=$2; shift ;;
	--scenario) scenario=$2; shift ;;
	--no-debug) debug=0 ;;
	--base) base=$2; shift ;;
	--llvm) llvm=1 ;;
	-h|--help) sed -n '4,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
# Names are checked before anything is set up or built: the bench kernels exist for x86_64
# and arm64 only (tools/setup/kernel.sh), the scenarios are the runner's bench ones.
check_names --arch "$arches" "x86_64 or arm64" architecture
check_names --scenario "$scenario" "bench, bench-emu, bench-fw or bench-topology" "benchmark scenario"
# The bench-llvm kernel boots the bench scenario only.
[[ $llvm == 0 || ,$scenario, == *,bench,* ]] || die "--llvm boots the bench scenario: name it in --scenario"
kernels=(bench)
[ "$debug" = 0 ] || kernels+=(debug)
[ "$llvm" = 0 ] || kernels+=(bench-llvm)
if [ -n "$base" ]; then
	base_rev=$(git -C "$SWCCI_TOP" rev-parse --short --verify --quiet "$base^{commit}") ||
		die "--base $base: not a commit of $SWCCI_TOP"
fi
need_root "the benchmark"
out=${OUT:-$SWCCI_TOP/out}/bench
mkdir -p "$out"
if [ -n "$base" ]; then
	# The base build's sources (the module's only: Makefile, Kbuild, src/, rust/, include/).
	base_src="$out/base-src"
	rm -rf "$base_src"
	mkdir -p "$base_src"
	git -C "$SWCCI_TOP" archive "$base_rev" Makefile Kbuild src rust include |
		tar -x -C "$base_src" || die "--base $base: cannot extract the module's sources"
fi
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
uptimes=()
boot_s=0
build_s=0
IFS=, read -ra arch_list <<<"$arches"
for arch in "${arch_list[@]}"; do
	for k in "${kernels[@]}"; do
		case "$k" in
		bench) sc=$scenario ;;
		debug)
			sc=$(IFS=,; echo "${table_sc[*]}")
			[ -n "$sc" ] || continue
			;;
		bench-llvm)
			[[ ,$scenario, == *,bench,* ]] || continue
			[ "$arch" != arm ] || continue
			sc=bench
			;;
		esac
		t=$(date +%s)
		log "$k kernel for $arch (built on demand: about 4 min on 2 cores the first time)"
		kdir=$("$SWCCI_TOP/tools/setup/kernel.sh" --variant "$k" "$arch")
		bin=$("$SWCCI_TOP/tools/build.sh" --variant "$k" "$arch")
		extra=()
		if [ -n "$base" ] && [ "$k" = bench ]; then
			log "building the base module ($base_rev) for $arch ($k kernel)"
			make -s -C "$base_src" KDIR="$kdir" modules >&2 || die "the base module ($base_rev) failed to build"
			cp "$base_src/cxl_swcci.ko" "$out/cxl_swcci-base-$arch.ko"
			extra=(--base-module "$out/cxl_swcci-base-$arch.ko")
		fi
		build_s=$((build_s + $(date +%s) - t))

		t=$(date +%s)
		load0=$(cut -d' ' -f1 /proc/loadavg)
		# Only this run's records go into the report.
		rm -rf "${out:?}/$k/$arch"
		log "benchmarks on $arch, $k kernel (scenarios $sc)"
		# Progress: results and verdicts; every guest line is in the runner's log.
		set +e
		run_guests "$arch" "$k" "$kdir" "$bin" "$qemu_dir" "$out/$k" --scenario "$sc" \
			"${extra[@]}" 2>&1 |
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
		uptimes+=("$arch/$k after the boots: $(uptime)")
	done
done

: >"$out/report.txt"
if [ ${#table_sc[@]} -gt 0 ]; then
	"$CARGO_TARGET_DIR/release/swcci-bench-report" --dir "$out" --arch "$arches" \
		--kernels "bench,debug$([ "$llvm" = 0 ] || echo ,bench-llvm)" \
		${base:+--base-label "$base_rev"} \
		>>"$out/report.txt" || status=1
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
{
	echo "host load (1-min average, before-after the boots): ${loads[*]}"
	printf '%s\n' "${uptimes[@]}"
} >>"$out/report.txt"
cat "$out/report.txt"
log "boots and report took ${boot_s} s; kernel trees and builds ${build_s} s"
exit $status
