#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tiny programs against an installed weft, with pkg-config and with
# CMake's find_package, shared and static, C11 and C++, and runs them.
# Usage: run.sh PREFIX WORKDIR, PREFIX absolute: an installed copy, or the
# usr/ of unpacked Debian packages (libraries in lib/<multiarch triplet>).
# Prints one line per check and a closing "consumer: N passed, N failed".
set -u
prefix=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
pass=0
fail=0
check() {
    local name=$1
    shift
    if "$@" >"$work/$name.log" 2>&1; then
        echo "[PASS] consumer::$name"
        pass=$((pass + 1))
    else
        echo "[FAIL] consumer::$name (log: $work/$name.log)"
        sed 's/^/    /' "$work/$name.log" | tail -15
        fail=$((fail + 1))
    fi
}
pcdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/weft.pc "$prefix"/lib/*/pkgconfig/weft.pc 2>/dev/null | head -1)")
export PKG_CONFIG_PATH=$pcdir
libdir=${pcdir%/pkgconfig}
strict="-Wall -Wextra -Wpedantic -Werror"

check pkgconfig_shared bash -c "cc -std=c11 $strict '$here/consumer.c' \$(pkg-config --cflags --libs weft) \
    -Wl,-rpath,$libdir -o '$work/pc_shared' && ldd '$work/pc_shared' | grep -qF '$libdir/libweft.so.0' \
    && '$work/pc_shared'"
check pkgconfig_static bash -c "cc -std=c11 $strict '$here/consumer.c' \$(pkg-config --cflags weft) \
    \$(pkg-config --static --libs weft | sed 's/-lweft /-l:libweft.a /') -o '$work/pc_static' \
    && ! ldd '$work/pc_static' | grep -q libweft && '$work/pc_static'"
check header_is_cxx bash -c "c++ -std=c++11 $strict '$here/consumer.cpp' \$(pkg-config --cflags --libs weft) \
    -Wl,-rpath,$libdir -o '$work/pc_cxx' && '$work/pc_cxx'"
check cmake_find_package bash -c "cmake -S '$here' -B '$work/cmake' -DCMAKE_PREFIX_PATH='$prefix' >/dev/null \
    && cmake --build '$work/cmake' >/dev/null && '$work/cmake/consumer_shared' && '$work/cmake/consumer_static' \
    && '$work/cmake/consumer_cxx' && ! ldd '$work/cmake/consumer_static' | grep -q libweft"
echo "consumer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
