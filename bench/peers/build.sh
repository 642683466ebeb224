#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the peer benchmarks (pthread, Boost.Fiber, Go, Tokio) into OUTDIR as
# peer_pthread, peer_boost_fiber, peer_go and peer_tokio, optimised, offline.
#   bench/peers/build.sh OUTDIR
# Compiler output goes to OUTDIR/<peer>.log.  A peer whose toolchain is missing,
# or that fails to build, is reported with one "skipped: ..." line; the script
# itself exits 0 unless OUTDIR cannot be made.
set -u
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
CC=${CC:-cc}
CXX=${CXX:-c++}

have() { command -v "$1" >/dev/null 2>&1; }

# build NAME LABEL CMD...: run CMD with its output in OUTDIR/NAME.log.
build() {
    local name=$1 label=$2
    shift 2
    rm -f "$out/peer_$name"
    if ! "$@" >"$out/$name.log" 2>&1 || [ ! -x "$out/peer_$name" ]; then
        rm -f "$out/peer_$name"
        echo "skipped: $label (build failed, see $out/$name.log)"
    fi
}

if have "$CC"; then
    build pthread "pthread peer" \
        "$CC" -O2 -Wall -Wextra -pthread "$here/pthread.c" -o "$out/peer_pthread"
else
    echo "skipped: pthread peer (install build-essential)"
fi

if have "$CXX" && echo '#include <boost/fiber/all.hpp>' | "$CXX" -x c++ -std=c++20 -E - >/dev/null 2>&1; then
    build boost_fiber "Boost.Fiber peer" \
        "$CXX" -std=c++20 -O2 -Wall -Wextra -pthread "$here/boost_fiber.cpp" \
        -o "$out/peer_boost_fiber" -lboost_fiber -lboost_context
elif have "$CXX"; then
    echo "skipped: Boost.Fiber peer (install libboost-fiber-dev)"
else
    echo "skipped: Boost.Fiber peer (install g++ libboost-fiber-dev)"
fi

# shellcheck disable=SC2317  # called through build()
build_go() (
    cd "$here/go" &&
        GOCACHE="$out/go-cache" GOPATH="$out/go-path" GOFLAGS=-mod=mod GOPROXY=off \
            GOTOOLCHAIN=local go build -o "$out/peer_go" .
)
if have go; then
    build go "Go peer" build_go
else
    echo "skipped: Go peer (install golang-go)"
fi

# Cargo builds a copy of the crate, so its Cargo.lock stays out of the tree;
# the copy's .cargo/config.toml points crates-io at Debian's crate directory.
# shellcheck disable=SC2317  # called through build()
build_tokio() (
    rm -rf "$out/tokio-src" &&
        cp -R "$here/tokio" "$out/tokio-src" &&
        cd "$out/tokio-src" &&
        rm -rf Cargo.lock target &&
        CARGO_TARGET_DIR="$out/tokio-target" cargo build --release --offline &&
        cp "$out/tokio-target/release/peer_tokio" "$out/peer_tokio"
)
if have cargo && have rustc && ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1; then
    build tokio "Tokio peer" build_tokio
else
    echo "skipped: Tokio peer (install cargo rustc librust-tokio-dev)"
fi
exit 0
