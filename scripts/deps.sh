#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages weft needs for a job, if any are missing.
#   scripts/deps.sh build|package|test|bench
# (package: what dpkg-buildpackage needs to build debian/'s packages)
# Packages are required (the job cannot run without them) or optional (the
# job runs and skips what needs them: a benchmark peer, the gdb unwinding
# tests).  As root it installs both with apt-get.  Otherwise it prints the
# exact command; it fails only if a required package is missing.
set -u
job=${1:-build}
required=(build-essential cmake ninja-build pkg-config liburing-dev libatomic-ops-dev)
optional=()
deb=(dpkg-dev debhelper valgrind)
case $job in
build) optional+=(libboost-context-dev) ;;
package) required+=(libboost-context-dev "${deb[@]}") ;;
test)
    # scripts/test.sh builds with clang and the Boost.Context switch, runs
    # valgrind, the C++ consumer, the Debian packages and the aarch64 cross
    # build under qemu.
    required+=(libboost-context-dev libcriterion-dev clang g++ valgrind gcc-aarch64-linux-gnu
        libc6-dev-arm64-cross qemu-user curl "${deb[@]}")
    required+=(redis-tools) # tests/servers/resp.sh: redis-cli, redis-benchmark
    optional+=(gdb wrk) ;;
bench)
    required+=(libboost-context-dev)
    optional+=(libboost-fiber-dev golang-go cargo rustc librust-tokio-dev librust-hyper-dev
        wrk nginx-light curl gnuplot-nox)
    optional+=(redis-server redis-tools) # bench/resp.sh: the peer, and redis-benchmark
    ;;
*)
    echo "usage: $0 build|package|test|bench" >&2
    exit 2
    ;;
esac

# missing NAME...: the packages among NAME... that are not installed.
missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}
mapfile -t need < <(missing "${required[@]}")
mapfile -t want < <(missing "${optional[@]}")
[ ${#need[@]} -eq 0 ] && [ ${#want[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if [ ${#want[@]} -ne 0 ]; then
        echo "weft: optional Debian packages not installed (what needs them is skipped): ${want[*]}" >&2
        echo "    sudo apt-get install -y ${want[*]}" >&2
    fi
    [ ${#need[@]} -eq 0 ] && exit 0
    echo "weft: missing Debian packages: ${need[*]}" >&2
    echo "Install them, then run this again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || exit 1
if [ ${#need[@]} -ne 0 ]; then
    echo "weft: installing ${need[*]}"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 1
fi
if [ ${#want[@]} -ne 0 ]; then
    echo "weft: installing optional ${want[*]}"
    apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null ||
        echo "weft: could not install ${want[*]}; what needs them is skipped" >&2
fi
exit 0
