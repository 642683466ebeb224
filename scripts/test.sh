#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds weft every way it ships and runs the whole test suite on each:
#   gcc and clang (warnings are errors), the asm and the Boost.Context
#   switch, ASan+UBSan, TSan, valgrind, an installed-copy consumer, the
#   Debian packages, and aarch64 under qemu-user; checks the license
#   lines, the exported symbols, and that nothing links a GPL library.
# Ends with one line, "tests: N passed, N failed"; exits non-zero on any
# failure.  Logs go to build/logs/.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
scripts/deps.sh test || exit 1

logs=$root/build/logs
mkdir -p "$logs"
pass=0
fail=0
failed=()

# configure NAME [cmake args...]: a build tree under build/NAME, built.
configure() {
    local name=$1
    shift
    echo "== build $name"
    if cmake -S . -B "build/$name" -G Ninja -DWEFT_BUILD_TESTS=ON -DWEFT_BUILD_BENCH=OFF "$@" >"$logs/build-$name.log" 2>&1 &&
        ninja -C "build/$name" >>"$logs/build-$name.log" 2>&1; then
        return 0
    fi
    tail -30 "$logs/build-$name.log"
    fail=$((fail + 1))
    failed+=("build-$name")
    return 1
}

# suite NAME COMMAND...: runs a Criterion binary (or anything that prints a
# Criterion synthesis line) and adds its counts.
suite() {
    local name=$1
    shift
    echo "== test $name"
    # A bound on the whole run: Criterion 2.4.1 reports a test that times
    # out and then never exits (its runner does not reap the worker).
    local t0=$SECONDS
    timeout --signal=KILL "${WEFT_SUITE_TIMEOUT:-900}" "$@" >"$logs/test-$name.log" 2>&1
    local rc=$?
    echo "   ($((SECONDS - t0)) s)"
    [ "$rc" -eq 137 ] && echo "   (killed after ${WEFT_SUITE_TIMEOUT:-900}s: WEFT_SUITE_TIMEOUT)"
    grep -E '^\[(FAIL|----)\]|Synthesis' "$logs/test-$name.log" | grep -v '^\[----\]   $' | tail -40
    local line p f c
    line=$(grep -a 'Synthesis:' "$logs/test-$name.log" | tail -1)
    if [ -z "$line" ]; then
        echo "   (no test summary; exit status $rc; see $logs/test-$name.log)"
        tail -20 "$logs/test-$name.log"
        fail=$((fail + 1))
        failed+=("$name")
        return
    fi
    p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
    c=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$line")
    pass=$((pass + p))
    fail=$((fail + f + c))
    if [ "$rc" -ne 0 ] || [ $((f + c)) -ne 0 ]; then
        [ $((f + c)) -eq 0 ] && fail=$((fail + 1)) # e.g. a sanitizer report at exit
        failed+=("$name")
        [ "$rc" -ne 0 ] && tail -20 "$logs/test-$name.log"
    fi
}

# checks NAME COMMAND...: runs a script that prints a [PASS] or [FAIL] line
# per check (details indented below it) and closes with "WORD: N passed,
# N failed"; shows the failures and adds the counts.
checks() {
    local name=$1
    shift
    echo "== test $name"
    local t0=$SECONDS
    "$@" >"$logs/test-$name.log" 2>&1
    local rc=$?
    echo "   ($((SECONDS - t0)) s)"
    awk '/^\[FAIL\]/ { show = 1; print; next } /^\[/ { show = 0 } show && /^    / { print }' \
        "$logs/test-$name.log" | head -40
    local line p f
    line=$(grep -aE '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$logs/test-$name.log" | tail -1)
    if [ -z "$line" ]; then
        echo "   (no summary; exit status $rc; see $logs/test-$name.log)"
        tail -20 "$logs/test-$name.log"
        fail=$((fail + 1))
        failed+=("$name")
        return 1
    fi
    echo "   $line"
    p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
    pass=$((pass + p))
    fail=$((fail + f))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        [ "$f" -eq 0 ] && fail=$((fail + 1))
        failed+=("$name")
        return 1
    fi
}

# valgrind_errors: the valgrind stage's per-process logs, read for errors
# (see the stage below); each log with one is shown and counted.
valgrind_errors() {
    local log bad=0
    for log in "$logs"/valgrind/*.log; do
        [ -s "$log" ] || continue
        grep -q 'Process terminating with default action' "$log" && continue
        grep -qE '^==[0-9]+== +[A-Z]' "$log" || continue
        bad=$((bad + 1))
        [ "$bad" -le 3 ] && head -30 "$log"
    done
    if [ "$bad" -ne 0 ]; then
        echo "   valgrind: errors in $bad processes (logs: $logs/valgrind/)"
        fail=$((fail + bad))
        failed+=("valgrind-errors")
    else
        echo "   valgrind: no errors"
    fi
}

# The license: LICENSE, an SPDX line in every file, the license named.
checks license tests/license/check.sh "$root"

if configure gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc; then
    suite gcc build/gcc/tests/weft_tests
    # The gdb extension, on a live process and on a core (-O2 -g, as shipped).
    checks gdb tests/gdb/run.sh build/gcc
    # weft-resp against redis-cli, redis-benchmark and raw sockets.
    if command -v redis-cli >/dev/null 2>&1; then
        checks resp tests/servers/resp.sh build/gcc/examples
    else
        echo "== test resp: skipped (no redis-cli; Debian: redis-tools)"
    fi
    # valgrind runs the same binary, with loop counts divided by 20, on the
    # event loop with 1 worker, the pool with 4 threads, the blocking Io,
    # and the tests that have no variants: valgrind runs one thread at a
    # time, and each test costs over a second of start-up alone (its
    # process loads Criterion's 20 libraries under valgrind).  The other
    # variants run the same code, and do so in every other build; races
    # between workers are ASan's and TSan's part.
    # The runner runs natively and each test's process restarts itself
    # under valgrind (tests/valgrind_child.c), one log per process.  A
    # Criterion test passes whatever valgrind said, so the logs are read
    # afterwards: any error in a process that was not killed by a signal
    # (the tests that crash a child on purpose) fails the stage.
    # --fair-sched=yes: its default lock lets one thread take the CPU back
    # for long spells, and a worker whose thread does not run holds the
    # tasks in its run queue (a test whose tasks wait for each other by
    # yielding then timed out).
    # The paths are relative (to $root, where the tests run): the command
    # is split on spaces, and a checkout's path may hold one.
    rm -rf "$logs/valgrind" && mkdir -p "$logs/valgrind"
    WEFT_SUITE_TIMEOUT=${WEFT_SUITE_TIMEOUT:-1800} suite valgrind env WEFT_TEST_SCALE=20 \
        WEFT_TEST_VALGRIND="valgrind -q --fair-sched=yes --trace-children=yes --error-exitcode=99 --suppressions=tests/valgrind.supp --log-file=build/logs/valgrind/%p.log" \
        build/gcc/tests/weft_tests --filter '!(*_@(event_loop_2|event_loop_4|thread_pool_1|thread_pool_64))/*'
    valgrind_errors
    # The example servers, with real clients.
    checks http tests/servers/http.sh build/gcc/examples
    checks http_thread_pool tests/servers/http.sh build/gcc/examples thread_pool
    # 10,000 connections coming and going badly for 60 s against each server:
    # nothing lost, nothing growing.  (Longer: tests/soak/run.sh build/gcc SECONDS.)
    checks soak tests/soak/run.sh build/gcc 45 10000
    # The ABI: libweft.so exports the headers' WEFT_API functions and nothing else.
    checks abi tests/abi/exports.sh build/gcc/libweft.so include/weft
    # A prefix with a space in it: consumers' paths often have one.
    rm -rf "build/install prefix"
    if cmake --install build/gcc --prefix "$root/build/install prefix" >"$logs/install.log" 2>&1; then
        checks consumer tests/consumer/run.sh "$root/build/install prefix" "$root/build/consumer"
        # No GPL library in libweft.so or in a program linked with libweft.a.
        checks no-gpl tests/license/no_gpl.sh "$root/build/install prefix" build/gcc
    else
        echo "== install failed: see $logs/install.log"
        fail=$((fail + 1))
        failed+=(install)
    fi
fi
# The Debian packages (libweft0, libweft-dev), built by dpkg-buildpackage
# from a copy of the tree and unpacked with dpkg -x into build/deb/root:
# the installed-copy checks run again against them.
checks package tests/package/run.sh "$root/build/deb"
if [ -d build/deb/root/usr/include/weft ]; then
    checks package-abi tests/abi/exports.sh "$(ls build/deb/root/usr/lib/*/libweft.so.0)" \
        build/deb/root/usr/include/weft
    checks package-consumer tests/consumer/run.sh "$root/build/deb/root/usr" "$root/build/deb/consumer"
    checks package-no-gpl tests/license/no_gpl.sh "$root/build/deb/root/usr" build/deb/build
fi
if configure clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang; then
    suite clang build/clang/tests/weft_tests
fi
if configure boost -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_CONTEXT=boost; then
    suite boost build/boost/tests/weft_tests
fi
# The ASan tree is also the fault-injection build (docs/monitoring.md):
# nothing is injected unless WEFT_FAULTS is set.
if configure asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DWEFT_SANITIZE=address,undefined \
    -DWEFT_FAULTS=ON; then
    suite asan env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        LSAN_OPTIONS="suppressions=$root/tests/lsan.supp" UBSAN_OPTIONS=print_stacktrace=1 \
        build/asan/tests/weft_tests
    # Under injected faults: every test on the event loop, then the three
    # servers with real clients.
    # monitor: 0 or 1, drawn per run.  Each test process starts its loop
    # with the same first draw of the same seed, so a rate in between
    # would still decide for every process of the run at once.
    faults="seed=$RANDOM,eintr=0.05,eagain=0.05,enomem=0.02,short=0.3,sqe=0.1,thread=0.5,monitor=$((RANDOM % 2))"
    echo "   (WEFT_FAULTS=$faults)"
    suite faults-tests env WEFT_FAULTS="$faults" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        LSAN_OPTIONS="suppressions=$root/tests/lsan.supp" UBSAN_OPTIONS=print_stacktrace=1 \
        build/asan/tests/weft_tests --filter '*_@(event_loop_*|offload|compat)/*'
    checks faults-servers tests/faults/run.sh build/asan 10 200
fi
# The parsers and the buffered reader under libFuzzer (15 s each here;
# longer runs: scripts/fuzz.sh SECONDS).
checks fuzz scripts/fuzz.sh 15
# ThreadSanitizer: Criterion needs tests/tsan/criterion_arena.c (linked in
# by CMake) to place its shared arenas.  Loop counts are divided by 20:
# TSan keeps state per fiber, and a million of them exhaust the address
# space and vm.max_map_count.  die_after_fork=0: the death tests fork a
# child that starts a loop.
if configure tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DWEFT_SANITIZE=thread; then
    suite tsan env WEFT_TEST_SCALE=20 \
        TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:die_after_fork=0" \
        build/tsan/tests/weft_tests
fi
suite aarch64 scripts/test-aarch64.sh

echo
[ ${#failed[@]} -ne 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
