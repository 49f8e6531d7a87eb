#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of the set-up's package policy (tools/setup/resolve.sh) over recorded registry
# answers (apt/*/, see apt/README): fake apt-cache and apt-get (fake-bin/) replay them. Run by
# tools/test.sh among the host tests; prints one line per test and cargo's summary line.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../setup/resolve.sh"
export PATH="$here/fake-bin:$PATH"
SWCCI_APT_OPTS=()

pass=0
fail=0
# check NAME CONDITION-TEXT: records the result of the last test block.
ok() { pass=$((pass + 1)); echo "test $1 ... ok"; }
bad() { fail=$((fail + 1)); echo "test $1 ... FAILED: $2"; }

# run CASE FUNCTION ARGS...: runs a resolver against the recorded registry CASE; sets out
# (the chosen "PACKAGE VERSION"), err (stderr) and rc.
run() {
	local case=$1
	shift
	export SWCCI_FAKE_APT="$here/apt/$case"
	local errf
	errf=$(mktemp)
	chosen=
	"$@" chosen 2>"$errf"
	rc=$?
	out=$chosen
	err=$(cat "$errf")
	rm -f "$errf"
}
qemu() { resolve_qemu "$1"; }
linux() { resolve_linux_source "$1"; }
rust() { resolve_rust_src "$1" "$RV"; }
llvm() { resolve_llvm "$1" "$LM"; }

# expect NAME WANT-RC WANT-OUT [STDERR-SUBSTRING...]
expect() {
	local name=$1 wrc=$2 wout=$3 s
	shift 3
	if [ "$rc" != "$wrc" ]; then bad "$name" "exit $rc, wanted $wrc (stderr: $err)"; return; fi
	if [ "$out" != "$wout" ]; then bad "$name" "chose '$out', wanted '$wout'"; return; fi
	for s in "$@"; do
		if [[ $err != *"$s"* ]]; then bad "$name" "stderr lacks '$s': $err"; return; fi
	done
	if [ $# -eq 0 ] && [ -n "$err" ]; then bad "$name" "unexpected stderr: $err"; return; fi
	ok "$name"
}

# The upstream part of Debian versions.
t=pkg_upstream
if [ "$(pkg_upstream 1:11.1.3+ds-2~bpo13+1)" = 11.1.3+ds ] && [ "$(pkg_upstream 7.3.4-1~bpo13+1)" = 7.3.4 ] &&
	[ "$(pkg_upstream 1.2)" = 1.2 ] && [ "$(pkg_upstream 2:1.0-a-b)" = 1.0-a ]; then ok $t; else bad $t "wrong upstream"; fi

# rust-src versions against rustc's.
t=rust_src_fits
if rust_src_fits 1.95.0+dfsg1-2~bpo13+1 1.95.0 && ! rust_src_fits 1.95.1+dfsg1-1 1.95.0 &&
	! rust_src_fits 1.95.0+dfsg1-2 1.95 && ! rust_src_fits none 1.95.0; then ok $t; else bad $t "wrong fit"; fi

# The newcomer's failure: 1:11.1.3+ds-1~bpo13+1 replaced by -2.
run qemu-rebuild qemu
expect qemu_rebuild_takes_new_revision 0 "qemu-system-x86 1:11.1.3+ds-2~bpo13+1"
SWCCI_QEMU_VERSION=1:11.1.3+ds-1~bpo13+1 run qemu-rebuild qemu
expect qemu_override_of_gone_revision_fails 1 "" "qemu-system-x86=1:11.1.3+ds-1~bpo13+1" \
	"not offered" "1:11.1.3+ds-2~bpo13+1 (trixie-backports)"
SWCCI_QEMU_VERSION=1:11.1.3+ds-2~bpo13+1 run qemu-rebuild qemu
expect qemu_override_offered 0 "qemu-system-x86 1:11.1.3+ds-2~bpo13+1"
run qemu-rebuild linux
expect linux_today 0 "linux-source-7.3 7.3.4-1~bpo13+1"

# A kernel point release: 7.3.4 replaced by 7.3.5; the old exact pin fails, naming 7.3.5.
run kernel-point-release linux
expect linux_point_release 0 "linux-source-7.3 7.3.5-1~bpo13+1"
SWCCI_LINUX_SOURCE_VERSION=7.3.4-1~bpo13+1 run kernel-point-release linux
expect linux_override_gone 1 "" "linux-source-7.3=7.3.4-1~bpo13+1" "7.3.5-1~bpo13+1 (trixie-backports)"
SWCCI_LINUX_SOURCE_PKG=linux-source-7.2 run kernel-point-release linux
expect linux_override_package_newest 0 "linux-source-7.2 7.2.12-1~bpo13+1"

# The verified upstream versions gone: the newest of the line, with a warning naming both.
run verified-gone qemu
expect qemu_verified_gone_takes_line 0 "qemu-system-x86 1:11.2.0+ds-1~bpo13+1" \
	"warning" "QEMU 11.1.x is no longer offered" "1:11.2.0+ds-1~bpo13+1" "newest of QEMU 11.x"
run verified-gone linux
expect linux_verified_gone_takes_newest_of_line 0 "linux-source-7.10 7.10.1-1~bpo13+1" \
	"warning" "linux-source-7.3 (Linux 7.3.x) is no longer offered" "linux-source-7.10 7.10.1-1~bpo13+1"

# Nothing of the line left: an error naming what was looked for and what exists.
run line-gone qemu
expect qemu_line_gone_fails 1 "" "error: no usable QEMU" "looked for QEMU 11.1.x, else the newest of QEMU 11.x" \
	"1:12.0.1+ds-1~bpo13+1 (trixie-backports)" "1:10.0.13+ds-0+deb13u1 (trixie)"
run line-gone linux
expect linux_line_gone_fails 1 "" "no usable linux-source-7.3" "linux-source-6.12 6.12.117-1 (trixie)"
RV=1.95.0 run line-gone rust
expect rust_src_no_line 1 "" "looked for rust-src 1.95.0 (equal to rustc 1.95.0)" \
	"rust-src 1.96.1+dfsg1-2~bpo13+1"

# rust-src: exactly rustc's version, never a neighbour.
RV=1.95.0 run qemu-rebuild rust
expect rust_src_exact 0 "rust-src 1.95.0+dfsg1-2~bpo13+1"
RV=1.95 run qemu-rebuild rust
expect rust_src_no_prefix_match 1 "" "no usable rust-src"

# An empty answer.
run empty qemu
expect qemu_empty_answer 1 "" "looked for QEMU 11.1.x" "the registry offers nothing"
run empty linux
expect linux_empty_answer 1 "" "no usable linux-source-7.3" "offers nothing"

# An unreachable registry: its own error, before anything is chosen.
export SWCCI_FAKE_APT="$here/apt/unreachable"
err=$(apt_refresh 2>&1)
rc=$?
out=
expect unreachable_registry 1 "" "could not be reached" "Temporary failure resolving 'deb.debian.org'"
export SWCCI_FAKE_APT="$here/apt/qemu-rebuild"
err=$(apt_refresh 2>&1)
rc=$?
expect reachable_registry 0 ""

# clang of rustc's LLVM major version: the newest revision all three packages are offered at;
# never another major version.
LM=22 run llvm llvm
expect llvm_newest_of_major 0 "clang-22 1:22.1.8-1~deb13u5"
LM=22 run llvm-behind llvm
expect llvm_all_three_same_version 0 "clang-22 1:22.1.6-1~deb13u2"
LM=23 run llvm llvm
expect llvm_no_other_major 1 "" "no usable clang-23" "looked for clang-23 (LLVM 23, rustc's)" \
	"the registry offers nothing"
t=rustc_llvm_major
if [ "$(rustc() { printf 'rustc 1.95.0\nLLVM version: 22.1.2\n'; }; . "$here/../../setup/lib.sh" 2>/dev/null; rustc_llvm_major)" = 22 ]; then ok $t; else bad $t "wrong major"; fi

# A mirror mid-sync: only a version both QEMU packages are offered at.
run arm-behind qemu
expect qemu_both_packages_same_version 0 "qemu-system-x86 1:11.1.3+ds-1~bpo13+1"

echo "test result: $([ "$fail" = 0 ] && echo ok || echo FAILED). $pass passed; $fail failed; 0 ignored"
[ "$fail" = 0 ]
