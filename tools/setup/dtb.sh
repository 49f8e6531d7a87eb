#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Compile the device tree of an emulated SoC board with the kernel tree's own preprocessor
# flags and dtc, and print the .dtb's path:
#
#   tools/setup/dtb.sh KDIR MACHINE
#
# KDIR is a built tree of tools/setup/kernel.sh; MACHINE names the board: ast2600 compiles
# tools/testing/dts/aspeed-ast2600-evb-swcci.dts (the kernel's aspeed-ast2600-evb.dts with the
# project's PCIe node). The result is KDIR/swcci-dtb/<name>-<hash of the .dts>.dtb, so trees
# shared by several checkouts keep one file per version of the source; it is compiled once
# (about a second) and reused. dtc's warnings go to KDIR/swcci-dtb/<name>-<hash>.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: dtb.sh KDIR MACHINE"
kdir=$1
machine=$2
case "$machine" in
ast2600) dts="$SWCCI_TOP/tools/testing/dts/aspeed-ast2600-evb-swcci.dts" ;;
ast2700) dts="$SWCCI_TOP/tools/testing/dts/ast2700-evb-swcci.dts" ;;
*) die "dtb.sh: no device tree for machine '$machine' (ast2600 or ast2700)" ;;
esac
[ -f "$kdir/.swcci-complete" ] || die "dtb.sh: $kdir is not a built kernel tree (tools/setup/kernel.sh)"
dtc="$kdir/scripts/dtc/dtc"
[ -x "$dtc" ] || die "dtb.sh: $kdir has no dtc (scripts/dtc/dtc): is CONFIG_DTC set?"
src=$(readlink -f "$kdir/source")
[ -d "$src/scripts/dtc/include-prefixes" ] || die "dtb.sh: kernel source $src lacks scripts/dtc/include-prefixes"

name=$(basename "$dts" .dts)
hash=$(sha256sum "$dts" | cut -c1-16)
dir="$kdir/swcci-dtb"
dtb="$dir/$name-$hash.dtb"
if [ -s "$dtb" ]; then
	echo "$dtb"
	exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp "$dir/.$name.XXXXXX")
trap 'rm -f "$tmp" "$tmp.pre"' EXIT
# What scripts/Makefile.dtbs does by default (no W=): cpp over the include prefixes (arm/,
# dt-bindings/), then dtc with its default warning flags and the file's own directory as
# include path.
cpp -nostdinc -I "$src/scripts/dtc/include-prefixes" -undef -D__DTS__ -x assembler-with-cpp \
	-o "$tmp.pre" "$dts" || die "dtb.sh: preprocessing $dts failed"
"$dtc" -O dtb -o "$tmp" -b 0 -Wno-unique_unit_address -Wunique_unit_address_if_enabled -i "$(dirname "$dts")" \
	"$tmp.pre" 2>"$dir/$name-$hash.log" || {
	cat "$dir/$name-$hash.log" >&2
	die "dtb.sh: dtc failed on $dts"
}
mv "$tmp" "$dtb"
log "device tree $dtb compiled from $(basename "$dts") (dtc warnings: $dir/$name-$hash.log)"
echo "$dtb"
