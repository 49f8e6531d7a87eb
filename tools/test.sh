#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's test command: sets up this machine if needed, builds everything and runs the
# whole test suite: the host checks (rustfmt, clippy) and tests (cargo test of the protocol
# core and the tools), then the in-guest suite under QEMU, one boot per scenario.
#
#   tools/test.sh [--arch ARCH[,ARCH]] [--scenario A,B] [--filter TEST] [--host-only]
#                 (default: --arch x86_64,ast2700,ast2600, every scenario; `hardened` on x86_64)
#                 [--switches N] [--type3 N] [--kvm] [--fuzz-seed N] [--fuzz-iters N]
#
# SCENARIO (tools/runner/src/main.rs): main, taint, taint-strict, lockdown, emu, fw (debug
# kernel) and hardened (KASAN kernel: on x86_64 the debug one) run by default; demo, fuzz,
# bench, bench-emu, bench-fw, bench-topology on request.
# ARCH: x86_64 (q35), ast2700 and ast2600 (QEMU's AST2700 and AST2600 EVBs: the BMC SoCs,
# arm64 and ARMv7, the switch behind the SoC's PCIe root complex; Documentation/bmc.rst),
# arm64 and arm (ARMv7) on QEMU's virt, selectable.
#
# Each scenario boots the kernel variant it needs (tools/setup/kernel.sh): `hardened` a
# KASAN/UBSAN/fault-injection kernel (x86_64 by default, whose debug kernel is one, so that all
# its scenarios boot one kernel; SWCCI_HARDENED_ARCHES=x86_64,arm64 with --arch naming arm64
# adds arm64's hardened kernel; none for 32-bit ARM), every other one the debug kernel;
# only the trees and builds the chosen scenarios need are made. Kernel trees not built yet
# are built in the background, at the lowest CPU priority, while the foreground runs
# host tests and guests (SWCCI_PREBUILD=0 turns that off). The guests of two architectures
# (or variants) run at once, each pair's programs built while others' guests run
# (SWCCI_GUEST_JOBS=1: one at a time).
#
# --filter TEST runs the tests whose name contains TEST, in the scenarios that boot (name them
# with --scenario: a scenario without a matching test still boots, and says so); a TEST no
# test's name contains is refused before anything runs, and a run in which no scenario has
# one fails. --host-only: only the host checks and tests (step 2). --switches N (1 or more)
# and --type3 N: QEMU switches per boot and type-3 devices behind each (up to 999999999 as
# numbers; QEMU refuses a topology without free slots). --kvm: QEMU with KVM (opt-in; TCG by
# default). --fuzz-seed N (64 bits, decimal or 0x hex) and --fuzz-iters N (8 or more): the
# fuzz scenario's seed and steps (tools/fuzz.sh runs it alone).
# Output: progress, every test result, and a last line "N passed, N failed".
# Logs: out/<arch>/<scenario>/{kernel.log,tests.log,qemu.log,...}, out/runner-<arch>-<variant>.log
# (OUT= to move them). A failed run lists what failed again at its end.
# Exit status 0 only if everything passed; 130 after Ctrl-C, which stops builds and guests.
set -euo pipefail
. "$(dirname "$0")/setup/lib.sh"

# Scenarios by the kernel they boot: the debug kernel, or one with KASAN, UBSAN and fault
# injection (x86_64's debug kernel, arm64's hardened one: tools/setup/kernel.sh).
DEBUG_SCENARIOS=main,taint,taint-strict,lockdown,emu,fw
HARDENED_SCENARIOS=hardened
# Architectures whose default run includes the hardened scenario (x86_64, arm64 possible).
: "${SWCCI_HARDENED_ARCHES:=x86_64}"

arches=x86_64,ast2700,ast2600
arch_given=0
scenario=
scenario_given=0
filter=
filter_given=0
host_only=0
runner_extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--arch|--scenario|--filter|--switches|--type3|--fuzz-seed|--fuzz-iters)
		[ $# -ge 2 ] || die "$1 needs a value (see --help)" ;;
	esac
	case "$1" in
	--arch) arches=$2; arch_given=1; shift ;;
	--scenario) scenario=$2; scenario_given=1; shift ;;
	--filter) filter=$2; filter_given=1; shift ;;
	--host-only) host_only=1 ;;
	--switches|--type3|--fuzz-seed|--fuzz-iters) runner_extra+=("$1" "$2"); shift ;;
	--kvm) runner_extra+=(--kvm) ;;
	-h|--help) sed -n '4,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

# Names are checked before anything is set up or built. The scenarios are the runner's
# (tools/runner/src/main.rs, SCENARIOS).
ALL_SCENARIOS=demo,main,taint,taint-strict,lockdown,emu,fw,hardened,fuzz,bench,bench-emu,bench-fw,bench-topology
# The runner's numbers: decimal, as it reads them (the fuzzer's seed may be hex too), and at
# least one switch.
for ((_i = 0; _i < ${#runner_extra[@]}; _i++)); do
	_o=${runner_extra[$_i]}
	[[ $_o != --kvm ]] || continue
	_v=${runner_extra[$((_i + 1))]}
	_i=$((_i + 1))
	if [[ $_o == --fuzz-seed ]]; then
		u64_number "$_v" || die "$_o $_v: not a 64-bit number (decimal or 0x hex)"
	else
		[[ $_v =~ ^[0-9]+$ ]] || die "$_o $_v: not a decimal number (see --help)"
		# Far below what the runner holds (and than a topology QEMU accepts).
		_d=$_v
		while [[ $_d == 0?* ]]; do _d=${_d#0}; done
		[[ ${#_d} -le 9 ]] || die "$_o $_v: too large (at most 999999999)"
		# As tools/fuzz.sh: the guest runs at least 8 steps.
		[[ $_o != --fuzz-iters || $((10#$_d)) -ge 8 ]] || die "--fuzz-iters $_v: from 8 to 999999999"
	fi
	[[ $_o != --switches || $((10#$_v)) -gt 0 ]] || die "--switches $_v: at least one switch"
done
check_names --arch "$arches" "x86_64, arm64, arm, ast2600 or ast2700" architecture
[ "$scenario_given" = 0 ] || check_names --scenario "$scenario" "${ALL_SCENARIOS//,/, }" scenario
# A filter that names no test at all is a typo: say so before anything is built or booted
# (whether a test of the scenarios run matches is known only from the guests, at the end).
# Test names are snake_case, and the filter goes on the guest's kernel command line.
if [ "$filter_given" = 1 ]; then
	[[ $filter =~ ^[a-z0-9_]+$ ]] ||
		die "--filter '$filter': a part of a test name (lower-case letters, digits, _)"
	test_names=$(sed -n 's/^ *name: "\(.*\)",$/\1/p' "$SWCCI_TOP/tools/ktest/src/tests/mod.rs")
	[[ $'\n'$test_names$'\n' == *"$filter"* ]] ||
		die "--filter $filter: no test of the suite has that in its name (tools/ktest/src/tests/mod.rs lists them)"
fi

: "${SWCCI_GUEST_JOBS:=2}"
[[ $SWCCI_GUEST_JOBS =~ ^[1-9][0-9]?$ ]] || die "SWCCI_GUEST_JOBS=$SWCCI_GUEST_JOBS: a number from 1 to 99"
[[ ${SWCCI_PREBUILD:-1} == [01] ]] || die "SWCCI_PREBUILD=$SWCCI_PREBUILD: 1 (the default) or 0"
[[ ${SWCCI_PREBUILD_JOBS:-2} =~ ^[1-9]$ ]] || die "SWCCI_PREBUILD_JOBS=$SWCCI_PREBUILD_JOBS: a number from 1 to 9"
[ -z "$SWCCI_HARDENED_ARCHES" ] ||
	check_names SWCCI_HARDENED_ARCHES "$SWCCI_HARDENED_ARCHES" "x86_64, arm64, arm, ast2600 or ast2700" architecture

need_root "the test suite (it installs packages and runs QEMU)"
out=${OUT:-$SWCCI_TOP/out}
mkdir -p "$out"
total_pass=0
total_fail=0
# What failed, one line each, repeated at the end of the run (where a CI log's tail shows it).
failures=()
# Logs a failure of the run and counts it.
fail() {
	log "FAIL: $*"
	failures+=("$*")
	total_fail=$((total_fail + 1))
}
# Every module build is checked with the kernel's clippy lints, warnings as errors (Makefile).
export SWCCI_STRICT=1

# The scenarios of VARIANT to run on ARCH (comma-separated, maybe empty).
scenarios_for() {
	local arch=$1 variant=$2 all s want=()
	if [ -n "$scenario" ]; then
		all=$scenario
	else
		all=$DEBUG_SCENARIOS
		[[ ",$SWCCI_HARDENED_ARCHES," == *",$arch,"* ]] && all+=",$HARDENED_SCENARIOS"
	fi
	IFS=, read -ra list <<<"$all"
	for s in "${list[@]}"; do
		if [[ ",$HARDENED_SCENARIOS," == *",$s,"* || $s == fuzz ]]; then
			[ "$variant" = "$(sanitized_variant "$arch")" ] || continue
			# Named explicitly, on the architectures asked for; else where the default says.
			[[ $arch_given == 1 || ",$SWCCI_HARDENED_ARCHES," == *",$arch,"* ]] || continue
			[[ $arch != arm && $arch != ast2600 ]] ||
				{ log "no hardened kernel for 32-bit ARM: $s skipped on $arch"; continue; }
		else
			[ "$variant" = debug ] || continue
		fi
		want+=("$s")
	done
	(IFS=,; echo "${want[*]}")
}

IFS=, read -ra arch_list <<<"$arches"
# The kernel trees this run needs, in the order they are built and their guests run: the
# debug trees of every architecture (x86_64's, clang with KASAN, the costliest, first), then
# the hardened ones (arm64's, when SWCCI_HARDENED_ARCHES asks for it).
trees=()
for variant in debug hardened; do
	for arch in "${arch_list[@]}"; do
		[ -n "$(scenarios_for "$arch" $variant 2>/dev/null)" ] && trees+=("$arch:$variant")
	done
done

if [ "$host_only" = 0 ] && [ ${#trees[@]} -eq 0 ]; then
	# Every scenario asked for was skipped on every architecture asked for (the reasons are
	# printed here): a run that boots nothing does not pass.
	for arch in "${arch_list[@]}"; do scenarios_for "$arch" hardened >/dev/null; done
	die "nothing to boot: no scenario of --scenario ${scenario:-(default)} runs on --arch $arches"
fi

log "step 1/5: host setup"
"$SWCCI_TOP/tools/setup/host.sh"
# QEMU (a debootstrapped trixie root on first use: mostly downloads) is set up in the
# background while the host tests and kernel builds keep the CPUs busy.
qemu_pid=
if [ "$host_only" = 0 ]; then
	"$SWCCI_TOP/tools/setup/qemu.sh" >"$out/qemu-dir" 2>"$out/qemu-setup.log" &
	qemu_pid=$!
fi

prebuild_pid=
if [ "$host_only" = 0 ] && [ "${SWCCI_PREBUILD:-1}" = 1 ] && [ ${#trees[@]} -gt 0 ]; then
	# SWCCI_PREBUILD_JOBS trees at a time (default 2: one build's serial steps, the Rust
	# crates and the link, leave a core idle that the other fills), in the order the guests
	# need them, niced so that guests and host tests keep the CPU; a failure here is reported
	# when the foreground asks for the same tree and builds it itself. Its own process group
	# (setsid), so that an early exit stops every build.
	setsid bash -c 'jobs=$1; shift
		for t in "$@"; do
			while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
			nice -n 19 "$SWCCI_TOP/tools/setup/kernel.sh" --variant "${t#*:}" "${t%:*}" >/dev/null &
		done
		wait' prebuild "${SWCCI_PREBUILD_JOBS:-2}" "${trees[@]}" 2>>"$out/prebuild.log" &
	prebuild_pid=$!
	log "building kernel trees in the background, ${SWCCI_PREBUILD_JOBS:-2} at a time: ${trees[*]} (log: $out/prebuild.log)"
fi
# The running guests of each pair: their architecture and runner log, by the pid of the job.
declare -A guest_arch_of=() guest_rlog_of=()
# A process and everything under it (a pair's guests: the runner, QEMU, the emulators).
kill_tree() {
	local c
	for c in $(pgrep -P "$1"); do kill_tree "$c"; done
	kill "$1" 2>/dev/null || true
}
# An early exit stops the background work: the tree builds and the guests running.
stop_background() {
	[ -z "$prebuild_pid" ] || kill -- -"$prebuild_pid" 2>/dev/null || true
	local pid
	for pid in "${!guest_arch_of[@]}"; do kill_tree "$pid"; done
}
trap stop_background EXIT
# Ctrl-C (or a TERM) stops the run: nothing more is built or booted, and it says so.
interrupted() {
	trap - INT TERM
	log "interrupted: stopping the kernel builds and the guests"
	echo "$total_pass passed, $total_fail failed (interrupted)"
	exit 130
}
trap interrupted INT TERM

log "step 2/5: host checks and tests (rustfmt, clippy, protocol core, tools)"
host_log="$out/host-tests.log"
: >"$host_log"
# Checks: each failure says what to run to see or fix it.
check() {
	local what=$1 fix=$2
	shift 2
	if ! "$@" >>"$host_log" 2>&1; then
		fail "$what (fix: $fix; output in $host_log)"
		return 0
	fi
	total_pass=$((total_pass + 1))
}
proto_target="$CARGO_TARGET_DIR-proto"
# The set-up's package policy over recorded registry answers (tools/setup/resolve.sh).
if ! "$SWCCI_TOP/tools/testing/setup/resolve-test.sh" >>"$host_log" 2>&1; then
	fail "set-up package policy tests (tools/testing/setup/resolve-test.sh; output in $host_log)"
fi
check "rustfmt of rust/" "cd rust && cargo fmt" \
	bash -c "cd '$SWCCI_TOP/rust' && cargo fmt --check"
check "rustfmt of tools/" "cd tools && cargo fmt" \
	bash -c "cd '$SWCCI_TOP/tools' && cargo fmt --check"
check "clippy of rust/" "cd rust && cargo clippy --all-targets -- -D warnings" \
	bash -c "cd '$SWCCI_TOP/rust' && CARGO_TARGET_DIR='$proto_target' cargo clippy --locked --all-targets -- -D warnings"
check "clippy of tools/" "cd tools && cargo clippy --all-targets -- -D warnings" \
	bash -c "cd '$SWCCI_TOP/tools' && cargo clippy --locked --all-targets -- -D warnings"
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
	cd "$SWCCI_TOP/rust" && CARGO_TARGET_DIR="$proto_target" cargo test --locked 2>&1
	cd "$SWCCI_TOP/tools" && cargo test --locked 2>&1
) >>"$host_log" 2>&1; then
	count_host
	grep -E '^(test .* FAILED|---- |error|thread .* panicked)' "$host_log" | head -20 >&2 || true
	[ "$total_fail" -gt 0 ] || total_fail=1
	echo "$total_pass passed, $total_fail failed"
	die "host tests failed (see $host_log)"
fi
count_host
if [ "$total_fail" -gt 0 ]; then
	echo "$total_pass passed, $total_fail failed"
	die "host checks failed (see above)"
fi
if [ "$host_only" = 1 ]; then
	echo "$total_pass passed, $total_fail failed"
	exit 0
fi

log "step 3/5: QEMU"
if ! wait "$qemu_pid"; then
	cat "$out/qemu-setup.log" >&2
	die "QEMU set-up failed (above; log: $out/qemu-setup.log)"
fi
qemu_dir=$(cat "$out/qemu-dir")
log "QEMU: $qemu_dir ($(qemu_version))"

status=0
formatted=0
# The guests of an (architecture, variant) pair run in the background while the next pair's
# tree is waited for and its programs are built (niced, so that the guests keep their CPU: a
# TCG guest keeps about one core busy), and the guests of up to SWCCI_GUEST_JOBS pairs
# (default 2) run at once. A pair of the same architecture as running guests waits for them
# before it builds (one directory of guest programs per architecture). The next pair is one
# whose tree is built already, else the first to finish among those the background builds.
guest_ran=0
# Waits for the guests of one pair (pid $1, else whichever finishes first) and counts their
# results.
wait_guests() {
	local pid=${1:-} rc=0 p f k
	if [ -n "$pid" ]; then
		wait "$pid" || rc=$?
	else
		wait -n -p pid "${!guest_arch_of[@]}" || rc=$?
	fi
	# The runner's last line: "ARCH (arch ARCH): N passed, N failed, N skipped".
	read -r p f k < <(sed -n "s/^${guest_arch_of[$pid]} (arch .*: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped\$/\1 \2 \3/p" \
		"${guest_rlog_of[$pid]}" | tail -n1) || true
	# The runner's reasons, one line per failed boot ("swcci: FAIL: ARCH/SCENARIO: ...": the
	# failed tests by name, a kernel warning, a boot that did not finish).
	local before=${#failures[@]}
	mapfile -t -O "$before" failures < <(sed -n 's/^swcci: FAIL: //p' "${guest_rlog_of[$pid]}")
	if [ "$rc" != 0 ] && [ "${f:-0}" -eq 0 ] && [ ${#failures[@]} -eq "$before" ]; then
		failures+=("${guest_arch_of[$pid]}: the runner ended with status $rc (log: ${guest_rlog_of[$pid]})")
	fi
	unset "guest_arch_of[$pid]" "guest_rlog_of[$pid]"
	guest_ran=$((guest_ran + ${p:-0} + ${f:-0} + ${k:-0}))
	total_pass=$((total_pass + ${p:-0}))
	total_fail=$((total_fail + ${f:-0}))
	if [ "$rc" != 0 ]; then
		status=1
		[ "${f:-0}" -gt 0 ] || total_fail=$((total_fail + 1))
	fi
}
tree_ready() {
	"$SWCCI_TOP/tools/setup/kernel.sh" --print-kdir --variant "${1#*:}" "${1%:*}" >/dev/null 2>&1
}
# Sets pick to the index in pending of the pair to build next.
next_pair() {
	local i
	while :; do
		for i in "${!pending[@]}"; do
			tree_ready "${pending[$i]}" && { pick=$i; return; }
		done
		# None is built: wait while the background builds run; without them (turned off, or
		# failed) the first pair's tree is built here.
		if [ -n "$prebuild_pid" ] && kill -0 "$prebuild_pid" 2>/dev/null; then
			sleep 5
		else
			pick=0
			return
		fi
	done
}
pending=("${trees[@]}")
while [ ${#pending[@]} -gt 0 ]; do
	next_pair
	t=${pending[$pick]}
	pending=("${pending[@]:0:$pick}" "${pending[@]:$((pick + 1))}")
	arch=${t%:*} variant=${t#*:}
	for pid in "${!guest_arch_of[@]}"; do
		[ "${guest_arch_of[$pid]}" != "$arch" ] || wait_guests "$pid"
	done
	sc=$(scenarios_for "$arch" "$variant")
	log "step 4/5: $variant kernel tree and build for $arch"
	kdir=$(nice -n 10 "$SWCCI_TOP/tools/setup/kernel.sh" --variant $variant "$arch")
	if [ "$formatted" = 0 ]; then
		# The module's formatting, with the kernel's rustfmt settings (needs a tree).
		formatted=1
		if make -s -C "$SWCCI_TOP" KDIR="$kdir" rustfmtcheck >>"$host_log" 2>&1; then
			total_pass=$((total_pass + 1))
		else
			fail "rustfmt of the module (fix: make rustfmt; output in $host_log)"
			status=1
		fi
	fi
	bin=$(nice -n 10 "$SWCCI_TOP/tools/build.sh" --variant $variant "$arch")
	while [ ${#guest_arch_of[@]} -ge "$SWCCI_GUEST_JOBS" ]; do wait_guests; done

	log "step 5/5: in-guest suite on $arch, $variant kernel (scenarios $sc)"
	rlog="$out/runner-$arch-$variant.log"
	(
		set +e
		run_guests "$arch" $variant "$kdir" "$bin" "$qemu_dir" "$out" --scenario "$sc" \
			--filter "$filter" "${runner_extra[@]}" 2>&1 | tee "$rlog"
		exit "${PIPESTATUS[0]}"
	) &
	guest_arch_of[$!]=$arch
	guest_rlog_of[$!]=$rlog
done
while [ ${#guest_arch_of[@]} -gt 0 ]; do wait_guests; done
if [ -n "$filter" ] && [ "$guest_ran" -eq 0 ] && [ "$status" = 0 ]; then
	fail "no test of the scenarios run (${scenario:-the default ones}) on $arches matches --filter $filter"
	status=1
fi

log "done in $(($(date +%s) - _swcci_t0)) s"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:" >&2
	printf '  %s\n' "${failures[@]}" >&2
fi
echo "$total_pass passed, $total_fail failed"
exit $status
