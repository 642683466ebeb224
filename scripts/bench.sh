#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds weft in Release and prints the benchmark
# tables (markdown; also saved to build/bench-results.md).
#   BENCH_SCALE=N divides iteration counts, for a quick look.
set -u
cd "$(dirname "$0")/.." || exit 1
scripts/deps.sh bench || exit 1
mkdir -p build
echo "== build release" >&2
if ! { cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
    >build/release-configure.log 2>&1 && ninja -C build/release >build/release-build.log 2>&1; }; then
    tail -30 build/release-configure.log build/release-build.log
    exit 1
fi
BENCH_REPS_NOTE=7

# The "## Echo server" section: weft-echo (examples/echo.c), wherever this
# build put it, on the event loop and on the thread pool, against the echo
# peers that bench/peers/build.sh made; the plot goes to docs/.
echo_server() {
    local weft_echo
    weft_echo=$(find build/release -name weft-echo -type f -perm -u+x 2>/dev/null | head -1)
    ECHO_PLOT=${ECHO_PLOT:-docs/echo-fibers-vs-threads.png} \
        bench/echo.sh "${weft_echo:-build/release/examples/weft-echo}" build/release/peers
}
# The "## Redis protocol" section: weft-resp (examples/resp.c) against
# redis-server, both loaded by redis-benchmark.
resp_server() {
    local weft_resp
    weft_resp=$(find build/release -name weft-resp -type f -perm -u+x 2>/dev/null | head -1)
    bench/resp.sh "${weft_resp:-build/release/examples/weft-resp}" build/release/peers
}
{
    echo "## weft benchmarks"
    echo
    echo "$(uname -m), $(nproc) CPUs, Linux $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo
    build/release/bench/bench_switch
    build/release/bench/bench_stacks
    echo "## Scheduler: weft against threads, Boost.Fiber, Go and Tokio"
    echo
    echo "Peers run with their defaults on every CPU (Boost.Fiber: work_stealing), except"
    echo "yield, which runs two tasks on one thread everywhere (pthread: two threads pinned"
    echo "to one CPU).  Medians of $BENCH_REPS_NOTE runs, same machine, same run."
    echo
    {
        build/release/bench/bench_sched
        build/release/bench/bench_sync
        bench/peers/build.sh build/release/peers
        bench/peers/run.sh build/release/peers
    } >build/bench-lines.txt
    awk -v cpus="$(nproc)" -v only="spawn_await skynet skynet_100k yield" -f bench/tables.awk build/bench-lines.txt
    echo "## Synchronisation: weft against threads, Boost.Fiber and Go"
    echo
    echo "2,000,000 lock+unlock pairs, 2,000,000 queued elements and 200,000 round trips per"
    echo "run (pthread: 200,000 elements and 10,000 round trips, as each can cost a futex"
    echo "wake-up on another CPU).  weft runs with 1 worker and with one per CPU; on 1 worker"
    echo "a task is never interrupted, so its mutex is never contended there.  Peers run on"
    echo "every CPU (Go: default GOMAXPROCS; Boost.Fiber: work_stealing; pthread: threads not"
    echo "pinned).  Boost.Fiber's buffered_channel needs a power of 2 and keeps one slot free:"
    echo "capacity 64 holds 63 elements, capacity 2 holds one.  Medians of $BENCH_REPS_NOTE runs,"
    echo "same machine, same run."
    echo
    awk -v cpus="$(nproc)" -v only="mutex queue pingpong" -f bench/tables.awk build/bench-lines.txt
    echo_server
    resp_server
    echo "## File reads"
    echo
    build/release/bench/bench_file_read
    echo
    bench/http.sh build/release/examples/weft-http build/release/peers
} | tee build/bench-results.md
# Benchmarks report; they never fail the build.
exit 0
