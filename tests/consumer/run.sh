#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tiny programs against an installed weft, with pkg-config and with
# CMake's find_package, shared and static, C11 and C++, and runs them.
# Usage: run.sh PREFIX WORKDIR, PREFIX absolute: an installed copy, or the
# usr/ of unpacked Debian packages (libraries in lib/<multiarch triplet>).
# Prints one line per check and a closing "consumer: N passed, N failed".
# Paths may contain spaces.
set -u
prefix=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd) || exit 1
rm -rf "$work" && mkdir -p "$work" || exit 1
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
pcdir=$(find "$prefix" -mindepth 2 -maxdepth 3 -type d \( -path "$prefix/lib*/pkgconfig" -o \
    -path "$prefix/lib/*/pkgconfig" \) | head -1)
export PKG_CONFIG_PATH=$pcdir
strict=(-Wall -Wextra -Wpedantic -Werror)

# pc VAR ARGS...: pkg-config's output for weft, as an array.  pkg-config
# escapes the spaces inside a path with backslashes, for a shell to read: so
# let the shell read it.
pc() {
    local var=$1 out
    shift
    out=$(pkg-config "$@" weft) || return 1
    eval "$var=($out)"
}

pkgconfig_shared() {
    local flags libdir
    pc flags --cflags --libs && pc libdir --variable=libdir || return 1
    cc -std=c11 "${strict[@]}" "$here/consumer.c" "${flags[@]}" -Wl,-rpath,"${libdir[0]}" \
        -o "$work/pc_shared" && ldd "$work/pc_shared" | grep -qF "${libdir[0]}/libweft.so.0" &&
        "$work/pc_shared"
}

pkgconfig_static() {
    local cflags libs
    pc cflags --cflags && pc libs --static --libs || return 1
    libs=("${libs[@]/#-lweft/-l:libweft.a}")
    cc -std=c11 "${strict[@]}" "$here/consumer.c" "${cflags[@]}" "${libs[@]}" -o "$work/pc_static" &&
        ! ldd "$work/pc_static" | grep -q libweft && "$work/pc_static"
}

header_is_cxx() {
    local flags libdir
    pc flags --cflags --libs && pc libdir --variable=libdir || return 1
    c++ -std=c++11 "${strict[@]}" "$here/consumer.cpp" "${flags[@]}" -Wl,-rpath,"${libdir[0]}" \
        -o "$work/pc_cxx" && "$work/pc_cxx"
}

cmake_find_package() {
    cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
        cmake --build "$work/cmake" >/dev/null && "$work/cmake/consumer_shared" &&
        "$work/cmake/consumer_static" && "$work/cmake/consumer_cxx" &&
        ! ldd "$work/cmake/consumer_static" | grep -q libweft
}

# Fiber stacks lie next to each other: weft asks the code that links it to
# probe large frames (docs/stacks.md).  Both ways of using it must say so.
stack_clash_protection_is_passed_on() {
    local flags
    pc flags --cflags || return 1
    [[ " ${flags[*]} " == *" -fstack-clash-protection "* ]] || {
        echo "pkg-config --cflags weft: ${flags[*]}"
        return 1
    }
    grep -q -- -fstack-clash-protection "$work/cmake/compile_commands.json" || {
        echo "no -fstack-clash-protection in the CMake consumer's compile commands"
        return 1
    }
}

# libweft links libatomic_ops' MIT-licensed core only, never the GPL part.
no_gpl_library() {
    ! grep -rl atomic_ops_gpl "$prefix" && ! pkg-config --static --libs weft | grep -q gpl
}

check pkgconfig_shared pkgconfig_shared
check pkgconfig_static pkgconfig_static
check header_is_cxx header_is_cxx
check cmake_find_package cmake_find_package
check stack_clash_protection_is_passed_on stack_clash_protection_is_passed_on
check no_gpl_library no_gpl_library
echo "consumer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
