#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide the clang, lld and LLVM tools whose LLVM major version matches rustc's on this
# bookworm host, and print a prefix for the kernel's `LLVM=<prefix>/` (a directory of wrappers,
# ending in a slash). Only the bench-llvm kernel (tools/setup/kernel.sh --variant bench-llvm,
# built by `tools/bench.sh --llvm`) uses it: CONFIG_RUST_INLINE_HELPERS links the kernel's C
# helpers into Rust code as LLVM bitcode, which needs clang and rustc of the same LLVM.
#
# rustc 1.95 is built on LLVM 22; bookworm has no clang-22, trixie does, and trixie's clang
# needs trixie's libc. As for QEMU (tools/setup/qemu.sh), the tools live in a minimal trixie
# root made with debootstrap, under $SWCCI_CACHE/llvm-root, and the wrappers in
# $SWCCI_CACHE/llvm-bin run them through that root's own dynamic loader and libraries: no
# chroot, every host path stays valid. clang is run with -no-canonical-prefixes so that it
# finds its resource directory (its headers) beside itself in the root rather than beside the
# loader, and with -fintegrated-cc1 so that it never starts itself again outside the wrapper;
# what it compiles for the host (the kernel's host programs) uses the host's headers,
# libraries and linker, as the host's own clang would. No clang++ (no C++ in the kernel build).
#
# The version is chosen by the package policy (resolve.sh: POLICY_LLVM, the newest Debian
# revision of clang-M with M = rustc's LLVM major version; lld-M and llvm-M at the same
# version) and recorded in the root's stamp; a cached one is kept while its major version is
# rustc's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root="$SWCCI_CACHE/llvm-root"
stamp="$root/.swcci-complete"

major=$(rustc_llvm_major) || die "cannot tell rustc's LLVM version (rustc -vV)"
policy_llvm "$major"
# The wrappers live in the root, beside LLVM's own bin/: clang finds its resource directory
# (../lib/clang/M) from the directory it was started from.
bindir="$root/usr/lib/llvm-$major/swcci-bin"
# --print-prefix: only where the tools are or will be (tools/setup/kernel.sh --print-kdir,
# which must not set anything up).
if [ "${1:-}" = --print-prefix ]; then
	echo "$bindir/"
	exit 0
fi

# The cached tools fit: the recorded clang is of rustc's LLVM major version, and it runs.
ready() {
	local v
	v=$(sed -n 's/^clang-[0-9]* //p' "$stamp" 2>/dev/null || true)
	[ -n "$v" ] && [ -x "${bindir}/clang" ] || return 1
	grep -q "^clang-$major " "$stamp" && [[ $(pkg_upstream "$v") =~ ${POLICY_LLVM[2]} ]] ||
		return 1
	"$bindir/clang" --version >/dev/null 2>&1 && "$bindir/ld.lld" --version >/dev/null 2>&1 &&
		"$bindir/bindgen" --version >/dev/null 2>&1
}

if ready; then
	log "clang $(sed -n 's/^clang-[0-9]* //p' "$stamp") is cached: $bindir/"
	echo "$bindir/"
	exit 0
fi

need_root "LLVM setup (debootstrap)"
cache_lock
command -v debootstrap >/dev/null || die "debootstrap missing: run tools/setup/host.sh first"

[ ! -f "$root/.swcci-base" ] || log "LLVM root $root: installing clang-$major (none yet, or not of rustc's LLVM)"
trixie_root_open "$root" "clang-$major"
rm -f "$stamp"
log "choosing clang-$major (policy: ${POLICY_LLVM[0]})"
retry apt_refresh chroot "$root" || die "cannot update the package indexes in the trixie root"
resolve_llvm chosen "$major" chroot "$root" || die "no clang-$major to install (see above)"
version=${chosen#* }
log "installing clang-$major, lld-$major and llvm-$major $version into the root"
retry run_logged chroot "$root" apt-get install -y -q --no-install-recommends \
	"clang-$major=$version" "lld-$major=$version" "llvm-$major=$version" ||
	die "installing clang-$major failed"
trixie_root_close "$root"

rm -rf "$bindir"
mkdir -p "$bindir"
llvm_bin="$root/usr/lib/llvm-$major/bin"
for tool in clang ld.lld llvm-ar llvm-link llvm-nm llvm-objcopy llvm-objdump \
	llvm-readelf llvm-strip; do
	# The binary the tool's name leads to inside the root (Debian's links may be absolute,
	# which would resolve against the host's /).
	real=$(chroot "$root" readlink -e "/usr/lib/llvm-$major/bin/$tool") ||
		die "/usr/lib/llvm-$major/bin/$tool missing in $root after installing clang-$major"
	# clang: with -no-canonical-prefixes it takes the name it was started by (--argv0, this
	# wrapper) as its own, not /proc/self/exe (the loader): it finds its resource directory
	# from there, and a compiler proper it starts as a new process (clang -cc1, for an
	# invocation of several jobs) comes back through this wrapper, which passes -cc1
	# invocations on unchanged. -fintegrated-cc1 keeps a single job in the same process.
	args=
	[ "$tool" != clang ] ||
		args='case "${1:-}" in -cc1*) ;; *) set -- -no-canonical-prefixes -fintegrated-cc1 "$@" ;; esac'
	cat >"$bindir/$tool" <<EOS
#!/bin/sh
# $tool of LLVM $major from the trixie root, run with that root's loader and libraries.
R=$root
$args
exec "\$R/usr/lib64/ld-linux-x86-64.so.2" \\
	--library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu:\$R/usr/lib/llvm-$major/lib" \\
	--argv0 "$bindir/$tool" "\$R$real" "\$@"
EOS
	chmod +x "$bindir/$tool"
done
# bindgen: the host's (tools/setup/host.sh) with the host's libclang (lib.sh's LIBCLANG_PATH),
# through a wrapper that kernel.sh puts first in PATH for the bench-llvm tree. bindgen 0.71
# with libclang 22 loses the definitions of most kernel structures (task_struct, device, ...:
# it emits them as incomplete types, and the kernel crate does not build), so the older
# libclang parses the headers, with two additions at the end of the clang arguments:
# -Wno-unknown-warning-option, because the kernel hands bindgen clang-22's warning options
# (-Wno-default-const-init-unsafe, ...), and a header included after the kernel's own that
# defines the counted_by macros away: with clang 20.1 and later the kernel marks flexible
# arrays, and from 22.1 pointers, with counted_by (include/linux/compiler_types.h), which the
# older libclang rejects on pointers. The attribute changes no layout or ABI.
host_bindgen=$(command -v bindgen) || die "bindgen not found: run tools/setup/host.sh first"
cat >"$bindir/bindgen-no-counted-by.h" <<'EOS'
/* For bindgen only (tools/setup/llvm.sh): counted_by changes no layout. */
#undef __counted_by
#define __counted_by(member)
#undef __counted_by_ptr
#define __counted_by_ptr(member)
EOS
cat >"$bindir/bindgen" <<EOS
#!/bin/bash
# The host's bindgen and libclang, for a kernel built by clang $major (tools/setup/llvm.sh).
args=("\$@")
# Clang arguments follow "--": the additions go last among them.
for a in "\$@"; do
	if [ "\$a" = -- ]; then
		args+=(-Wno-unknown-warning-option -include "$bindir/bindgen-no-counted-by.h")
		break
	fi
done
exec "$host_bindgen" "\${args[@]}"
EOS
chmod +x "$bindir/bindgen"
echo "clang-$major $version" >"$stamp"
ready || die "clang-$major was installed but does not run from $bindir"
log "LLVM ready: $("$bindir/clang" --version | head -n1)"
echo "$bindir/"
