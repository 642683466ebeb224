#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cross-builds weft for aarch64 and runs its Criterion tests under qemu-user,
# on Debian 12 (x86_64).  Exits with the test binary's status.
#
#   scripts/test-aarch64.sh [criterion options...]     e.g. --verbose, --filter 'stack/*'
#
# Steps: the sysroot and host tools (scripts/aarch64-sysroot.sh), configure
# build/aarch64 with cmake/aarch64-linux-gnu.cmake, build, and run
# build/aarch64/tests/weft_tests under qemu-aarch64 with WEFT_TEST_SCALE=10
# (unless WEFT_TEST_SCALE is set already).
#
# Why the user namespace: Criterion runs every test in a worker that it
# starts by fork() and then execve() of its own executable.  Under
# qemu-user that execve reaches the host kernel, which cannot run an aarch64
# ELF unless binfmt_misc has a handler for it: without one every test fails
# with "Could not spawn test instance: Protocol error", whatever Criterion's
# options.  If the host already runs aarch64 binaries (qemu-user-binfmt, or a
# handler registered by hand), that is used.  Otherwise the tests run in a
# new user and mount namespace with a private binfmt_misc instance (Linux
# 6.7+) where qemu-aarch64 is registered: nothing outside that namespace
# changes, and no root is needed where unprivileged user namespaces are
# allowed.  QEMU_LD_PREFIX gives every qemu in the tree the sysroot.
#
# The run is bounded by WEFT_AARCH64_TIMEOUT seconds (default 900): when a
# test times out, Criterion 2.4.1 reports it and then never exits (its runner
# does not reap the worker; natively too).  Then the status is 137 (SIGKILL).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WEFT_AARCH64_BUILD:-$ROOT/build/aarch64}
LIMIT=${WEFT_AARCH64_TIMEOUT:-900}
SELF="$ROOT/scripts/test-aarch64.sh"

say() { printf 'test-aarch64: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# qemu's own binfmt entry for aarch64 ELF executables (qemu-binfmt-conf.sh).
BINFMT_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
BINFMT_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

# qemu-user (Debian 12's 7.2) now and then aborts on an assertion of its
# own, "cpu_exec: assertion failed: (cpu == current_cpu)", in Criterion's
# threaded runner as it exits, after the results are in.  That abort, with
# every test passed, is reported and not counted; anything else keeps the
# runner's status.
run_tests() {
    local out rc
    out=$(mktemp)
    set +e
    qemu-aarch64 -L "$QEMU_LD_PREFIX" "$BUILD/tests/weft_tests" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ] && grep -q 'cpu_exec: assertion failed: (cpu == current_cpu)' "$out" &&
        grep -qE 'Synthesis: Tested: ([0-9]+) \| Passing: \1 \| Failing: 0 \| Crashing: 0' "$out"; then
        say "qemu-aarch64 aborted on its own cpu_exec assertion (status $rc) after every test passed: not counted"
        rc=0
    fi
    rm -f "$out"
    exit "$rc"
}

# The bound on the whole run; the test binary's status otherwise.
# SIGKILL: unshare ignores SIGTERM while it waits; BoxFort's workers die
# with their parent (PR_SET_PDEATHSIG), under qemu too.
bounded() {
    local rc=0 start=$SECONDS
    timeout --signal=KILL "$LIMIT" "$@" || rc=$?
    if [ "$rc" -eq 137 ] && [ $((SECONDS - start)) -ge "$LIMIT" ]; then
        say "error: the tests did not finish in ${LIMIT}s (WEFT_AARCH64_TIMEOUT)"
    fi
    exit "$rc"
}

# ---- the tests alone, where the host runs aarch64 executables ------------------
if [ "${1:-}" = "--run" ]; then
    shift
    run_tests "$@"
fi

# ---- inside the namespace (the script runs itself there) -----------------------
if [ "${1:-}" = "--in-userns" ]; then
    shift
    if ! mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
        say "error: cannot mount a private binfmt_misc in a user namespace (it needs Linux 6.7+)."
        say "Register qemu-aarch64 on the host instead, as root: apt-get install -y qemu-user-binfmt"
        say "(binfmt_misc must be mounted: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
        exit 1
    fi
    # F: the kernel opens qemu-aarch64 now, so the handler works whatever
    # the mount namespace of the process that execs.
    printf '%s' ":qemu-aarch64:M::$BINFMT_MAGIC:$BINFMT_MASK:$(command -v qemu-aarch64):F" \
        >/proc/sys/fs/binfmt_misc/register
    run_tests "$@"
fi

# ---- sysroot, configure, build -------------------------------------------------
SYSROOT=$("$ROOT/scripts/aarch64-sysroot.sh" | tail -n1)
[ -d "$SYSROOT" ] || die "scripts/aarch64-sysroot.sh gave no sysroot"

mkdir -p "$BUILD"
log="$BUILD/test-aarch64.log"
say "configuring $BUILD"
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake" \
    -DWEFT_AARCH64_SYSROOT="$SYSROOT" \
    -DWEFT_BUILD_BENCH=OFF >"$log" 2>&1; then
    cat "$log" >&2
    die "cmake failed"
fi
say "building"
if ! ninja -C "$BUILD" >"$log" 2>&1; then
    cat "$log" >&2
    die "build failed"
fi

# ---- run -----------------------------------------------------------------------
export WEFT_TEST_SCALE=${WEFT_TEST_SCALE:-10}
export QEMU_LD_PREFIX="$SYSROOT"
say "running $BUILD/tests/weft_tests under qemu-aarch64 (WEFT_TEST_SCALE=$WEFT_TEST_SCALE)"

# Can the kernel run an aarch64 executable already?  Run the test binary
# itself, directly; without a handler the exec fails (status 126).
if "$BUILD/tests/weft_tests" --version >/dev/null 2>&1; then
    say "the host runs aarch64 executables (binfmt_misc): Criterion's workers will start"
    bounded "$SELF" --run "$@"
fi
command -v unshare >/dev/null || die "no unshare (util-linux) to make a user namespace"
say "no binfmt_misc handler for aarch64 on the host: using a private one in a user namespace"
# --kill-child: if unshare is killed (the bound), so is everything inside.
bounded unshare --user --map-root-user --mount --kill-child -- "$SELF" --in-userns "$@"
