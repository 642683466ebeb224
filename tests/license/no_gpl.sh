#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Nothing weft ships links a GPL library: neither libweft.so (what it was
# linked from, what it needs at run time) nor a program linked statically
# against libweft.a (what pkg-config --static and the CMake package tell it
# to link, and what the linked program then needs).  Each library named is
# looked up in the table below; a GPL one fails, and so does one missing
# from the table, since its license has not been checked.
# Usage: no_gpl.sh PREFIX [BUILD_DIR].  PREFIX is an installed copy (or an
# unpacked package's usr/); BUILD_DIR, if given, is the Ninja build tree
# libweft.so was linked in.  Prints one line per check and a closing
# "no_gpl: N passed, N failed".
set -u
prefix=$(cd "$1" && pwd) || exit 1
build=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name (as in -lNAME or libNAME.so) | license | verdict
table='
weft|MIT (this library)|ok
c|LGPL-2.1-or-later (GNU C library)|ok
m|LGPL-2.1-or-later (GNU C library)|ok
dl|LGPL-2.1-or-later (GNU C library)|ok
rt|LGPL-2.1-or-later (GNU C library)|ok
pthread|LGPL-2.1-or-later (GNU C library)|ok
ld-linux-x86-64|LGPL-2.1-or-later (GNU C library)|ok
ld-linux-aarch64|LGPL-2.1-or-later (GNU C library)|ok
linux-vdso|the kernel'"'"'s vDSO, not a file|ok
gcc|GPL-3.0-or-later WITH GCC-exception-3.1 (GCC runtime; the exception permits any use)|ok
gcc_s|GPL-3.0-or-later WITH GCC-exception-3.1 (GCC runtime; the exception permits any use)|ok
atomic|GPL-3.0-or-later WITH GCC-exception-3.1 (GCC runtime; the exception permits any use)|ok
uring|MIT OR LGPL-2.1-or-later (liburing)|ok
atomic_ops|MIT (libatomic_ops'"'"' core)|ok
boost_context|BSL-1.0 (Boost.Context)|ok
atomic_ops_gpl|GPL-2.0-or-later (libatomic_ops'"'"' AO_stack and AO_malloc)|gpl
'

pass=0
fail=0
# check NAME SOURCE-DESCRIPTION NAMES...: every name's license is known
# and not GPL.
check() {
    local name=$1 what=$2
    shift 2
    local bad=() good=() n row license verdict
    [ $# -gt 0 ] || bad+=("$what: nothing found to check")
    for n in $(printf '%s\n' "$@" | sort -u); do
        row=$(grep -m1 "^$n|" <<<"$table")
        license=$(cut -d'|' -f2 <<<"$row")
        verdict=$(cut -d'|' -f3 <<<"$row")
        case $verdict in
        ok) good+=("$n: $license") ;;
        gpl) bad+=("GPL: $n: $license, named by $what") ;;
        *) bad+=("UNKNOWN LICENSE: $n, named by $what: look it up and add it to $0") ;;
        esac
    done
    if [ ${#bad[@]} -eq 0 ]; then
        echo "[PASS] no_gpl::$name"
        pass=$((pass + 1))
    else
        echo "[FAIL] no_gpl::$name"
        printf '    %s\n' "${bad[@]}"
        fail=$((fail + 1))
    fi
    [ ${#good[@]} -eq 0 ] || echo "    allowed: $(printf '%s; ' "${good[@]}" | sed 's/; $//')"
}

# Library names from a link line: -lNAME, -l:libNAME.a, .../libNAME.so.N,
# .../libNAME.a, -pthread.
link_names() {
    tr ' ' '\n' <<<"$1" | sed -nE \
        -e 's/^-pthread$/pthread/p' \
        -e 's/^-l:lib([^/]+)\.(a|so)(\..*)?$/\1/p' \
        -e 's/^-l([^:].*)$/\1/p' \
        -e 's/^(.*\/)?lib([^/]+)\.(a|so)(\.[0-9.]+)?$/\2/p'
}
# Library names from ldd (the whole run-time closure).
ldd_names() {
    ldd "$1" | awk '{ print $1 }' | sed -E 's|.*/||; s/^lib//; s/\.so(\..*)?$//'
}

libdir=$(dirname "$(ls -d "$prefix"/lib*/pkgconfig/weft.pc "$prefix"/lib/*/pkgconfig/weft.pc 2>/dev/null |
    head -1)")
libdir=${libdir%/pkgconfig}
so=$(ls "$libdir"/libweft.so.[0-9]* 2>/dev/null | head -1)
if [ ! -d "$libdir" ] || [ -z "$so" ]; then
    echo "no weft.pc or libweft.so under $prefix" >&2
    echo "no_gpl: 0 passed, 1 failed"
    exit 1
fi

# libweft.so at run time: its NEEDED entries and everything they need.
needed=$(readelf -dW "$so" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' | sed -E 's/^lib//; s/\.so(\..*)?$//')
# shellcheck disable=SC2046
check libweft_so_needs_no_gpl "libweft.so's NEEDED list or ldd" $needed $(ldd_names "$so")

# libweft.so's link line, from the build tree it was linked in.
if [ -n "$build" ]; then
    line=$(ninja -C "$build" -t commands weft_shared 2>/dev/null | grep -E -- '-o libweft\.so' | tail -1)
    # shellcheck disable=SC2046
    check libweft_so_link_line_has_no_gpl "the link line of libweft.so in $build" $(link_names "$line")
fi

# A static consumer through pkg-config.  pkg-config escapes spaces in
# paths with backslashes, for a shell to read: so let the shell read it.
export PKG_CONFIG_PATH=$libdir/pkgconfig
libs=$(pkg-config --static --libs weft)
eval "cflags_a=($(pkg-config --cflags weft))"
eval "libs_a=($libs)"
libs_a=("${libs_a[@]/#-lweft/-l:libweft.a}")
bin=$work/pc_static
if cc "$here/../consumer/consumer.c" "${cflags_a[@]}" "${libs_a[@]}" -o "$bin" >"$work/pc.log" 2>&1; then
    # shellcheck disable=SC2046
    check static_consumer_pkgconfig_has_no_gpl "pkg-config --static --libs weft ($libs) or the linked program" \
        $(link_names "$libs") $(ldd_names "$bin")
else
    check static_consumer_pkgconfig_has_no_gpl "a static pkg-config consumer that did not link: $(tail -3 "$work/pc.log")"
fi

# A static consumer through the CMake package (weft::weft_static).
if cmake -S "$here/../consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
    ninja -C "$work/cmake" consumer_static >>"$work/cmake.log" 2>&1; then
    line=$(ninja -C "$work/cmake" -t commands consumer_static | grep -E -- '-o consumer_static' | tail -1)
    # shellcheck disable=SC2046
    check static_consumer_cmake_has_no_gpl "the link line of weft::weft_static's consumer or the linked program" \
        $(link_names "$line") $(ldd_names "$work/cmake/consumer_static")
else
    check static_consumer_cmake_has_no_gpl "a static CMake consumer that did not link: $(tail -3 "$work/cmake.log")"
fi

echo "no_gpl: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
