#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes weft's parsers and its buffered reader with libFuzzer (clang,
# AddressSanitizer + UndefinedBehaviorSanitizer), from the seed corpora in
# tests/fuzz/corpus/.
#   scripts/fuzz.sh [SECONDS]     (per target; default 20)
# Builds into build/fuzz; new inputs go to build/fuzz/corpus/<target>/, a
# crash to build/fuzz/crash-<target>-*.  Prints a [PASS]/[FAIL] line per
# target and "fuzz: N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
secs=${1:-20}
suite=fuzz
. tests/lib.sh
if ! command -v clang >/dev/null; then
    echo "clang is not installed: skipped"
    finish
fi
if ! { cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
    -DWEFT_SANITIZE=address,undefined -DWEFT_BUILD_FUZZ=ON -DWEFT_BUILD_TESTS=OFF \
    -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF >build/fuzz-configure.log 2>&1 &&
    ninja -C build/fuzz >build/fuzz-build.log 2>&1; }; then
    report build 1 "$(tail -n 20 build/fuzz-build.log 2>/dev/null)"
    finish
fi
for t in tests/fuzz/corpus/*/; do
    t=$(basename "$t")
    bin=build/fuzz/tests/fuzz/fuzz_$t
    [ -x "$bin" ] || { report "$t" 1 "no $bin"; continue; }
    mkdir -p "build/fuzz/corpus/$t"
    log=build/fuzz/fuzz-$t.log
    ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build/fuzz/crash-$t-" "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
        >"$log" 2>&1
    rc=$?
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+')
    report "$t" "$rc" "exit $rc; see $log" "$(grep -E 'ERROR|SUMMARY|crash-' "$log" | head -5)"
    [ "$rc" -eq 0 ] && echo "    $t: ${runs:-?} runs in ${secs} s"
done
finish
