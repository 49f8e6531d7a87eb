# SPDX-License-Identifier: GPL-2.0
# The package policy of the set-up: which version of each outside Debian package to install,
# chosen at set-up time from what the registry offers. Sourced by lib.sh; tested by
# tools/testing/setup/resolve-test.sh over recorded registry answers.
#
# Debian's backports and security archives keep only the newest revision of a package, so a
# pinned Debian revision breaks the set-up the day Debian publishes a rebuild. No revision is
# pinned here. Each outside package has a policy instead (POLICY_* below):
#
#   QEMU            qemu-system-x86 and qemu-system-arm of one version, from trixie-backports
#                   (installed into the QEMU root, tools/setup/qemu.sh): verified upstream 11.1,
#                   line 11
#   kernel source   linux-source-7.3: verified upstream 7.3, line 7 (any linux-source-7.N)
#   rust-src        upstream equal to `rustc --version`: no line, an exact match or nothing
#   clang           clang-M, lld-M and llvm-M of one version with M = rustc's LLVM major version
#                   (`rustc -vV`), from trixie (installed into the LLVM root, tools/setup/llvm.sh,
#                   for the bench-llvm kernel only): any M.x, no line
#
# The choice: the newest Debian revision of the verified upstream version; if no revision of
# that version is offered any more, the newest of the same line, with a warning naming both;
# if nothing of the line is offered, an error saying what was looked for and what exists. An
# unreachable registry is its own error (nothing is chosen from stale or missing indexes).
# The override variables (SWCCI_QEMU_VERSION, SWCCI_LINUX_SOURCE_PKG/_VERSION) name an exact
# version instead; it must be offered.

# Extra options of every apt-get/apt-cache call (the check mode's private package state).
SWCCI_APT_OPTS=()

# Policies: what is looked for (words), the package-name pattern and upstream-version pattern of
# the verified version, then the same three for the line (empty: no fallback). Patterns are
# bash regexes.
POLICY_QEMU=("QEMU 11.1.x" '^qemu-system-x86$' '^11\.1(\.|\+|$)'
	"QEMU 11.x" '^qemu-system-x86$' '^11\.')
POLICY_LINUX=("linux-source-7.3 (Linux 7.3.x)" '^linux-source-7\.3$' '^7\.3(\.|\+|$)'
	"Linux 7.x (linux-source-7.N)" '^linux-source-7\.[0-9]+$' '^7\.')

# The rust-src policy for rustc version RV (x.y.z): exactly that upstream version.
policy_rust_src() {
	local rv=$1
	POLICY_RUST_SRC=("rust-src $rv (equal to rustc $rv)" '^rust-src$' "^${rv//./\\.}(\\+|\$)" '' '' '')
}

# The clang policy for LLVM major version M: clang-M of upstream M.x (CONFIG_RUST_INLINE_HELPERS
# needs clang and rustc of the same LLVM major version; nothing else fits).
policy_llvm() {
	local m=$1
	POLICY_LLVM=("clang-$m (LLVM $m, rustc's)" "^clang-$m\$" "^$m\\." '' '' '')
}

# Whether Debian version V of rust-src fits rustc version RV (rust-src 1.95.0+dfsg1-2~bpo13+1
# fits rustc 1.95.0).
rust_src_fits() {
	policy_rust_src "$2"
	[[ $(pkg_upstream "$1") =~ ${POLICY_RUST_SRC[2]} ]]
}

# The upstream part of a Debian version: no epoch, no Debian revision (1:11.1.3+ds-2~bpo13+1
# -> 11.1.3+ds).
pkg_upstream() {
	local v=$1
	[[ $v == *:* ]] && v=${v#*:}
	[[ $v == *-* ]] && v=${v%-*}
	echo "$v"
}

# `apt-cache madison` output on stdin -> "PACKAGE VERSION SUITE" lines on stdout.
madison_lines() {
	awk -F'|' 'NF >= 3 {
		gsub(/^ +| +$/, "", $1); gsub(/^ +| +$/, "", $2)
		n = split($3, w, " "); suite = (n >= 2) ? w[2] : "?"; sub(/\/.*/, "", suite)
		print $1, $2, suite }'
}

# "PACKAGE VERSION SUITE" lines on stdin -> the line of the newest version (Debian ordering),
# nothing if there are none. Ties keep the first line.
newest_line() {
	local best= bestv= p v s
	while read -r p v s; do
		[ -n "$v" ] || continue
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$bestv"; then
			best="$p $v $s"
			bestv=$v
		fi
	done
	[ -z "$best" ] || echo "$best"
}

# policy_pick WHAT PKG_RE UP_RE LINE_WHAT LINE_PKG_RE LINE_UP_RE < candidates ("PACKAGE VERSION
# SUITE")
# Prints "verified PACKAGE VERSION SUITE" or "line PACKAGE VERSION SUITE"; returns 1 (printing
# nothing) when no candidate fits the policy.
policy_pick() {
	local pre=$2 ure=$3 lpre=$5 lure=$6 p v s up verified=() line=() best
	while read -r p v s; do
		[ -n "$v" ] || continue
		up=$(pkg_upstream "$v")
		if [[ $p =~ $pre && $up =~ $ure ]]; then
			verified+=("$p $v $s")
		elif [ -n "$lpre" ] && [[ $p =~ $lpre && $up =~ $lure ]]; then
			line+=("$p $v $s")
		fi
	done
	if [ ${#verified[@]} -gt 0 ]; then
		best=$(printf '%s\n' "${verified[@]}" | newest_line)
		echo "verified $best"
	elif [ ${#line[@]} -gt 0 ]; then
		best=$(printf '%s\n' "${line[@]}" | newest_line)
		echo "line $best"
	else
		return 1
	fi
}

# "PACKAGE VERSION SUITE" lines on stdin -> "VERSION (SUITE), ..." or "nothing".
describe_offers() {
	local p v s out=
	while read -r p v s; do
		[ -z "$v" ] || out+="${out:+, }$p $v ($s)"
	done
	echo "${out:-nothing}"
}

# resolve VAR WHAT PKG_RE UP_RE LINE_WHAT LINE_PKG_RE LINE_UP_RE < candidates
# Applies a policy to the registry's candidates and sets VAR to "PACKAGE VERSION" (log lines
# and warnings on stderr). Returns 1 with an error message naming what was looked for and what
# exists when nothing fits.
resolve() {
	local var=$1 what=$2 line_what=$5 cands pick kind p v s
	shift 1
	cands=$(cat)
	if ! pick=$(policy_pick "$@" <<<"$cands"); then
		printf 'swcci: error: no usable %s: looked for %s%s; the registry offers %s\n' \
			"${what%% *}" "$what" "${line_what:+, else the newest of $line_what}" \
			"$(describe_offers <<<"$cands")" >&2
		return 1
	fi
	read -r kind p v s <<<"$pick"
	if [ "$kind" = line ]; then
		printf 'swcci: warning: %s is no longer offered; taking %s %s (%s), the newest of %s, which this project was not verified with\n' \
			"$what" "$p" "$v" "$s" "$line_what" >&2
	fi
	printf -v "$var" '%s %s' "$p" "$v"
}

# resolve_exact VAR PACKAGE VERSION < candidates: an override variable's exact version, which
# must be offered.
resolve_exact() {
	local var=$1 pkg=$2 ver=$3 cands
	cands=$(cat)
	if ! awk -v p="$pkg" -v v="$ver" '$1 == p && $2 == v {f = 1} END {exit !f}' <<<"$cands"; then
		printf 'swcci: error: %s=%s (set by an override variable) is not offered; the registry offers %s\n' \
			"$pkg" "$ver" "$(awk -v p="$pkg" '$1 == p' <<<"$cands" | describe_offers)" >&2
		return 1
	fi
	printf -v "$var" '%s %s' "$pkg" "$ver"
}

# apt_refresh APT-COMMAND-PREFIX...: update the package indexes; on failure print the registry
# error (apt's first "Failed to fetch" line, which names the address and the reason, else its
# first error line) and return 1. The prefix runs apt-get (e.g. `chroot
# ROOT`, or nothing); extra apt options come from SWCCI_APT_OPTS.
apt_refresh() {
	local out rc
	out=$("$@" apt-get "${SWCCI_APT_OPTS[@]}" -q --error-on=any update 2>&1) && return 0
	rc=$?
	printf 'swcci: error: the package registry could not be reached (apt-get update exit %s): %s\n' \
		"$rc" "$(grep -m1 'Failed to fetch' <<<"$out" || grep -m1 -E '^E:' <<<"$out" ||
			tail -n1 <<<"$out")" >&2
	return 1
}

# apt_candidates APT-COMMAND-PREFIX... -- PACKAGE...: the registry's offers for the packages,
# as "PACKAGE VERSION SUITE" lines.
apt_candidates() {
	local pre=() out
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	out=$("${pre[@]}" apt-cache "${SWCCI_APT_OPTS[@]}" madison "$@" 2>/dev/null) || true
	madison_lines <<<"$out"
}

# The linux-source-N.M package names the registry knows.
apt_linux_source_names() {
	local out
	out=$("$@" apt-cache "${SWCCI_APT_OPTS[@]}" pkgnames linux-source- 2>/dev/null) || true
	grep -E '^linux-source-[0-9]+\.[0-9]+$' <<<"$out" | sort -V || true
}

# resolve_qemu VAR APT-COMMAND-PREFIX...: the QEMU version to install, by POLICY_QEMU or
# SWCCI_QEMU_VERSION; qemu-system-arm must be offered at the same version.
resolve_qemu() {
	local var=$1 x86 arm both
	shift
	x86=$(apt_candidates "$@" -- qemu-system-x86)
	arm=$(apt_candidates "$@" -- qemu-system-arm)
	# Only versions both packages are offered at.
	both=$(awk 'NR == FNR {a[$2] = 1; next} a[$2]' <(echo "$arm") <(echo "$x86"))
	if [ -n "${SWCCI_QEMU_VERSION:-}" ]; then
		resolve_exact "$var" qemu-system-x86 "$SWCCI_QEMU_VERSION" <<<"$both"
	else
		resolve "$var" "${POLICY_QEMU[@]}" <<<"$both"
	fi
}

# resolve_linux_source VAR APT-COMMAND-PREFIX...: the kernel source package and version, by
# POLICY_LINUX or SWCCI_LINUX_SOURCE_PKG/SWCCI_LINUX_SOURCE_VERSION.
resolve_linux_source() {
	local var=$1 names cands
	shift
	if [ -n "${SWCCI_LINUX_SOURCE_PKG:-}" ]; then
		names=$SWCCI_LINUX_SOURCE_PKG
	else
		names=$(apt_linux_source_names "$@")
	fi
	# shellcheck disable=SC2086 # one name per word
	cands=$([ -z "$names" ] || apt_candidates "$@" -- $names)
	if [ -n "${SWCCI_LINUX_SOURCE_VERSION:-}" ]; then
		resolve_exact "$var" "${SWCCI_LINUX_SOURCE_PKG:-linux-source-7.3}" \
			"$SWCCI_LINUX_SOURCE_VERSION" <<<"$cands"
	elif [ -n "${SWCCI_LINUX_SOURCE_PKG:-}" ]; then
		resolve "$var" "$SWCCI_LINUX_SOURCE_PKG" "^${SWCCI_LINUX_SOURCE_PKG//./\\.}\$" '.' '' '' '' \
			<<<"$cands"
	else
		resolve "$var" "${POLICY_LINUX[@]}" <<<"$cands"
	fi
}

# resolve_rust_src VAR RUSTC-VERSION APT-COMMAND-PREFIX...: rust-src of exactly rustc's version.
resolve_rust_src() {
	local var=$1 rv=$2
	shift 2
	policy_rust_src "$rv"
	resolve "$var" "${POLICY_RUST_SRC[@]}" < <(apt_candidates "$@" -- rust-src)
}

# resolve_llvm VAR MAJOR APT-COMMAND-PREFIX...: the version of clang-MAJOR to install, by
# POLICY_LLVM; lld-MAJOR and llvm-MAJOR must be offered at the same version.
resolve_llvm() {
	local var=$1 m=$2 clang lld llvm all
	shift 2
	policy_llvm "$m"
	clang=$(apt_candidates "$@" -- "clang-$m")
	lld=$(apt_candidates "$@" -- "lld-$m")
	llvm=$(apt_candidates "$@" -- "llvm-$m")
	# Only versions all three packages are offered at.
	all=$(awk 'FILENAME == ARGV[1] {a[$2] = 1; next} FILENAME == ARGV[2] {if (a[$2]) b[$2] = 1; next} b[$2]' \
		<(echo "$lld") <(echo "$llvm") <(echo "$clang"))
	resolve "$var" "${POLICY_LLVM[@]}" <<<"$all"
}
