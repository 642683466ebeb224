#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the peer benchmarks (pthread, Boost.Fiber, Go, Tokio) into OUTDIR as
# peer_pthread, peer_boost_fiber, peer_go and peer_tokio, the peer echo
# servers as echo_epoll, echo_uring, echo_go and echo_tokio, and the peer
# HTTP servers as http_go (net/http) and http_hyper, optimised, offline.
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

# build NAME LABEL CMD...: run CMD with its output in OUTDIR/NAME.log; CMD
# makes OUTDIR/peer_NAME, or OUTDIR/NAME when NAME starts with "echo_" or "http_".
build() {
    local name=$1 label=$2 bin
    shift 2
    case $name in echo_* | http_*) bin=$out/$name ;; *) bin=$out/peer_$name ;; esac
    rm -f "$bin"
    if ! "$@" >"$out/$name.log" 2>&1 || [ ! -x "$bin" ]; then
        rm -f "$bin"
        echo "skipped: $label (build failed, see $out/$name.log)"
    fi
}

if have "$CC"; then
    build pthread "pthread peer" \
        "$CC" -O2 -Wall -Wextra -pthread "$here/pthread.c" -o "$out/peer_pthread"
    build echo_epoll "epoll echo peer" \
        "$CC" -O2 -Wall -Wextra -Werror -pthread "$here/echo_epoll.c" -o "$out/echo_epoll"
    if echo '#include <liburing.h>' | "$CC" -E - >/dev/null 2>&1; then
        build echo_uring "io_uring echo peer" \
            "$CC" -O2 -Wall -Wextra -Werror -pthread "$here/echo_uring.c" -o "$out/echo_uring" -luring
    else
        echo "skipped: io_uring echo peer (install liburing-dev)"
    fi
else
    echo "skipped: pthread peer (install build-essential)"
    echo "skipped: epoll and io_uring echo peers (install build-essential liburing-dev)"
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
# shellcheck disable=SC2317  # called through build()
build_go_echo() ( # NAME DIR
    cd "$here/go" &&
        GOCACHE="$out/go-cache" GOPATH="$out/go-path" GOFLAGS=-mod=mod GOPROXY=off \
            GOTOOLCHAIN=local go build -o "$out/$1" "./$2"
)
if have go; then
    build go "Go peer" build_go
    build echo_go "Go echo peer" build_go_echo echo_go echo
    build http_go "Go net/http peer" build_go_echo http_go http
else
    echo "skipped: Go peer (install golang-go)"
    echo "skipped: Go echo peer (install golang-go)"
    echo "skipped: Go net/http peer (install golang-go)"
fi

# Cargo builds a copy of the crate, so its Cargo.lock stays out of the tree;
# the copy's .cargo/config.toml points crates-io at Debian's crate directory.
# The crate has two programs, built one at a time so that each can fail alone.
# shellcheck disable=SC2317  # called through build()
build_tokio() ( # BIN
    cd "$out/tokio-src" &&
        CARGO_TARGET_DIR="$out/tokio-target" cargo build --release --offline --bin "$1" &&
        cp "$out/tokio-target/release/$1" "$out/$1"
)
# shellcheck disable=SC2317  # called through build()
build_hyper() (
    cd "$out/hyper-src" &&
        CARGO_TARGET_DIR="$out/hyper-target" cargo build --release --offline --bin http_hyper &&
        cp "$out/hyper-target/release/http_hyper" "$out/http_hyper"
)
if have cargo && have rustc && ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1; then
    rm -rf "$out/tokio-src" && cp -R "$here/tokio" "$out/tokio-src" &&
        rm -rf "$out/tokio-src/Cargo.lock" "$out/tokio-src/target"
    build tokio "Tokio peer" build_tokio peer_tokio
    build echo_tokio "Tokio echo peer" build_tokio echo_tokio
    if ls -d /usr/share/cargo/registry/hyper-0.14.* >/dev/null 2>&1; then
        rm -rf "$out/hyper-src" && cp -R "$here/hyper" "$out/hyper-src" &&
            rm -rf "$out/hyper-src/Cargo.lock" "$out/hyper-src/target"
        build http_hyper "hyper HTTP peer" build_hyper
    else
        echo "skipped: hyper HTTP peer (install librust-hyper-dev)"
    fi
else
    echo "skipped: Tokio peer (install cargo rustc librust-tokio-dev)"
    echo "skipped: Tokio echo peer (install cargo rustc librust-tokio-dev)"
    echo "skipped: hyper HTTP peer (install cargo rustc librust-tokio-dev librust-hyper-dev)"
fi
exit 0
