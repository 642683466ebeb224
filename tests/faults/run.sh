#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The servers under injected faults: weft-echo, weft-http and weft-resp of
# a build made with -DWEFT_FAULTS=ON (and, in the suite, ASan+UBSan), run
# with WEFT_FAULTS set, so that their ring operations meet EINTR, EAGAIN,
# short reads and writes, a submission queue taken for full, submits that
# fail with ENOMEM or EAGAIN, and offload threads that fail to start.
# What must still hold:
#   - echo and http: tests/soak/soak_client, with CONNS connections coming
#     and going badly for SECONDS, sees every byte come back exactly once
#     and every response whole;
#   - resp: every key set (2,000 of them, through redis-cli --pipe) reads
#     back with its value, and redis-benchmark's SET/GET load gets no error;
#   - afterwards each server is back to the fds and live tasks it had
#     before the load (its WEFT_SCHEDTRACE line counts the tasks), stops
#     on SIGTERM with status 0 (its loop's deinit aborts if the stack pool
#     counts a stack still handed out), and AddressSanitizer and
#     LeakSanitizer say nothing; its exit line shows that faults of every
#     kind were injected.
#   tests/faults/run.sh BUILD_DIR [SECONDS] [CONNS]   (defaults: 10, 200)
# Logs go to BUILD_DIR/faults/.
set -u
# shellcheck disable=SC2034  # read by tests/lib.sh
suite=faults
. "$(dirname "$0")/../lib.sh"
build=$1
secs=${2:-10}
conns=${3:-200}
out=$build/faults
mkdir -p "$out" || exit 1
client=$build/tests/soak/soak_client
root=$(cd "$(dirname "$0")/../.." && pwd)
trap 'kill "$server_pid" 2>/dev/null' EXIT
server_pid=

export WEFT_FAULTS=${WEFT_FAULTS:-seed=$RANDOM,eintr=0.03,eagain=0.03,enomem=0.01,short=0.25,sqe=0.05,thread=0.5}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp
echo "WEFT_FAULTS=$WEFT_FAULTS"

fds() { ls "/proc/$server_pid/fd" 2>/dev/null | wc -l; }
# The live-task count of the newest WEFT_SCHEDTRACE line in LOG.
live() { grep -o 'live=[0-9]*' "$1" | tail -n 1 | cut -d= -f2; }
# The number of schedtrace lines so far in LOG.
traces() { grep -c 'schedtrace' "$1"; }

# settle LOG FDS LIVE: waits (10 s at most) for the server to be back to
# FDS fds and, in a schedtrace line written after the wait began, LIVE
# tasks.  Prints what it saw last; non-zero if it never got there.
settle() {
    local log=$1 want_fds=$2 want_live=$3 n0 f l i
    n0=$(traces "$log")
    for i in $(seq 100); do
        f=$(fds)
        l=$(live "$log")
        if [ "$f" -eq "$want_fds" ] && [ "$(traces "$log")" -gt "$n0" ] && [ "$l" = "$want_live" ]; then
            echo "fds $f, live tasks $l"
            return 0
        fi
        [ "$(traces "$log")" -gt "$n0" ] && n0=$(traces "$log")
        sleep 0.1
    done
    echo "fds $f (before the load: $want_fds), live tasks $l (before: $want_live)"
    return 1
}

# ends NAME LOG: the server stops on SIGTERM with status 0, no sanitizer
# report, and EINTR, EAGAIN, short transfers and a full submission queue were
# each injected (the kinds a server meets on every run).
ends() {
    local name=$1 log=$2 kinds k
    stop_server TERM
    server_pid=
    sleep 0.2 # the log's reader (start_server's cat) drains the pipe
    if [ "$server_status" -ne 0 ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
        report "$name-stops-clean" 1 "exit status $server_status" "$(grep -E -A12 'Sanitizer|runtime error' "$log" | head -30)"
    else
        report "$name-stops-clean" 0
    fi
    kinds=$(grep -o 'faults injected.*' "$log" | tail -n 1)
    local zero=()
    for k in eintr eagain short sqe; do
        grep -qE " $k=[1-9]" <<<"$kinds" || zero+=("$k")
    done
    report "$name-faults-were-injected" $((${#zero[@]} != 0)) "${kinds:-no count at exit}" \
        "none injected: ${zero[*]}"
}

# A soak_client run against weft-echo or weft-http.
soaked() { # NAME MODE PROGRAM ARGS...
    local name=$1 mode=$2
    shift 2
    local log=$out/$name-server.log
    : >"$log"
    if ! WEFT_SCHEDTRACE=100 start_server "$log" "$@" --port 0 --host 127.0.0.1; then
        report "$name-starts" 1 "$(tail -n 5 "$log")"
        return
    fi
    local fds0 live0
    settle "$log" "$(fds)" "$(live "$log")" >/dev/null
    fds0=$(fds)
    live0=$(live "$log")
    if "$client" --port "$server_port" --mode "$mode" --conns "$conns" --seconds "$secs" \
        --seed "$RANDOM" >"$out/$name-client.log" 2>&1; then
        report "$name-every-byte-back-once" 0
    else
        report "$name-every-byte-back-once" 1 "$(tail -n 5 "$out/$name-client.log")"
    fi
    local got
    got=$(settle "$log" "$fds0" "$live0")
    report "$name-no-fd-or-task-left" $? "$got"
    ends "$name" "$log"
}

if [ -x "$client" ]; then
    soaked echo echo "$build/examples/weft-echo" --threads 2
    soaked http http "$build/examples/weft-http" --threads 2
else
    report soak-client 1 "no $client"
fi

# weft-resp: keys set and read back, and redis-benchmark's load.
if command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; then
    log=$out/resp-server.log
    : >"$log"
    if WEFT_SCHEDTRACE=100 start_server "$log" "$build/examples/weft-resp" --port 0 --host 127.0.0.1 --threads 2; then
        settle "$log" "$(fds)" "$(live "$log")" >/dev/null
        fds0=$(fds)
        live0=$(live "$log")
        n=2000
        # SET k:i v:i:<i repeated> through --pipe; values of 4 B to 2 KiB.
        awk -v n=$n 'BEGIN {
            for (i = 0; i < n; i++) {
                v = "v:" i ":"; r = i % 300
                for (j = 0; j < r; j++) v = v "x"
                k = "k:" i
                printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
            }
        }' >"$out/resp-set.txt"
        awk -v n=$n 'BEGIN {
            for (i = 0; i < n; i++) {
                v = "v:" i ":"; r = i % 300
                for (j = 0; j < r; j++) v = v "x"
                print v
            }
        }' >"$out/resp-want.txt"
        piped=$(redis-cli -h 127.0.0.1 -p "$server_port" --pipe <"$out/resp-set.txt" 2>&1)
        for i in $(seq 0 $((n - 1))); do echo "GET k:$i"; done |
            redis-cli -h 127.0.0.1 -p "$server_port" >"$out/resp-got.txt" 2>&1
        if grep -q "errors: 0, replies: $n" <<<"$piped" && cmp -s "$out/resp-want.txt" "$out/resp-got.txt"; then
            report resp-every-key-reads-back 0
        else
            report resp-every-key-reads-back 1 "$piped" \
                "$(diff "$out/resp-want.txt" "$out/resp-got.txt" | head -5 | cut -c1-100)"
        fi
        if timeout 120 redis-benchmark -h 127.0.0.1 -p "$server_port" -t set,get -n 20000 -c 50 \
            -r 1000 --csv >"$out/resp-benchmark.log" 2>&1 && grep -q '^"GET"' "$out/resp-benchmark.log" &&
            ! grep -qi 'error' "$out/resp-benchmark.log"; then
            report resp-benchmark-without-error 0
        else
            report resp-benchmark-without-error 1 "$(tail -n 5 "$out/resp-benchmark.log")"
        fi
        got=$(settle "$log" "$fds0" "$live0")
        report resp-no-fd-or-task-left $? "$got"
        ends resp "$log"
    else
        report resp-starts 1 "$(tail -n 5 "$log")"
    fi
else
    echo "skipped: weft-resp under faults (no redis-cli or redis-benchmark; Debian: redis-tools)"
fi
finish
