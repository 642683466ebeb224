#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages weft needs for a job, if any are missing.
#   scripts/deps.sh build|package|test|bench
# (package: what dpkg-buildpackage needs to build debian/'s packages)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -u
job=${1:-build}
pkgs=(build-essential cmake ninja-build pkg-config liburing-dev libatomic-ops-dev
      libboost-context-dev)
deb=(dpkg-dev debhelper valgrind)
case $job in
build) ;;
package) pkgs+=("${deb[@]}") ;;
test) pkgs+=(libcriterion-dev clang g++ valgrind gdb gcc-aarch64-linux-gnu libc6-dev-arm64-cross
             qemu-user "${deb[@]}") ;;
bench) pkgs+=(libboost-fiber-dev golang-go cargo rustc librust-tokio-dev) ;;
*) echo "usage: $0 build|package|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "weft: missing Debian packages: ${missing[*]}" >&2
    echo "Install them, then run this again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "weft: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
