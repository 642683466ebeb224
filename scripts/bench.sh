#!/usr/bin/env bash
# Installs what is missing, builds weft in Release and prints the benchmark
# tables (markdown; also saved to build/bench-results.md).
#   BENCH_SCALE=N divides iteration counts, for a quick look.
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh bench || exit 1
mkdir -p build
echo "== build release" >&2
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
    >build/release-configure.log 2>&1 && ninja -C build/release >build/release-build.log 2>&1 || {
    tail -30 build/release-configure.log build/release-build.log
    exit 1
}
BENCH_REPS_NOTE=7
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
        bench/peers/build.sh build/release/peers
        bench/peers/run.sh build/release/peers
    } | awk -v cpus="$(nproc)" -f bench/tables.awk
} | tee build/bench-results.md
# Benchmarks report; they never fail the build.
exit 0
