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
{
    echo "## weft benchmarks"
    echo
    echo "$(uname -m), $(nproc) CPUs, Linux $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo
    build/release/bench/bench_switch
    build/release/bench/bench_stacks
} | tee build/bench-results.md
# Benchmarks report; they never fail the build.
exit 0
