#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak: weft-echo and weft-http held under many connections that come and
# go badly (resets, half-sent requests, silence), every byte checked by
# tests/soak/soak_client.c.  Each second the server's RSS, open fds and
# live tasks (from its WEFT_SCHEDTRACE line) are sampled; the run fails if
# the client saw an error, the server died, or any of the three kept
# growing: the last third of the run may not exceed the middle third's
# peak by more than 25% plus a little slack (4 MiB, 64 fds, 64 tasks).
#   tests/soak/run.sh BUILD_DIR [SECONDS] [CONNS]     (defaults: 60, 10000)
# BUILD_DIR holds examples/weft-echo, examples/weft-http and
# tests/soak/soak_client.  Samples go to BUILD_DIR/soak/.
set -u
suite=soak
. "$(dirname "$0")/../lib.sh"
build=$1
secs=${2:-60}
conns=${3:-10000}
out=$build/soak
mkdir -p "$out" || exit 1
client=$build/tests/soak/soak_client
trap 'kill "$server_pid" 2>/dev/null' EXIT

# Room for the connections: the client and the server each hold them all.
hard=$(ulimit -Hn)
want=$((conns + 200))
[ "$hard" != unlimited ] && [ "$hard" -lt "$want" ] && conns=$((hard - 200)) && want=$hard
ulimit -n "$want"

# check NAME FILE COLUMN SLACK: growth of one column of the samples.
grows() {
    awk -v col="$2" -v slack="$3" '
        { v[NR] = $col }
        END {
            if (NR < 6) { print "too few samples (" NR ")"; exit 1 }
            a = int(NR / 3); b = int(2 * NR / 3)
            for (i = a + 1; i <= b; i++) if (v[i] > mid) mid = v[i]
            for (i = b + 1; i <= NR; i++) if (v[i] > last) last = v[i]
            printf "middle third peak %d, last third peak %d", mid, last
            exit !(last <= mid * 1.25 + slack)
        }' "$1"
}

soak() { # NAME MODE PROGRAM ARGS...
    local name=$1 mode=$2
    shift 2
    local log=$out/$name-server.log samples=$out/$name-samples.txt
    : >"$log"
    : >"$samples"
    if ! WEFT_SCHEDTRACE=1000 start_server "$log" "$@" --port 0 --host 127.0.0.1; then
        report "$name" 1 "the server did not start" "$(tail -n 5 "$log")"
        return
    fi
    "$client" --port "$server_port" --mode "$mode" --conns "$conns" --seconds "$secs" \
        --seed "$RANDOM" >"$out/$name-client.log" 2>&1 &
    local cpid=$! rss fds live
    while kill -0 "$cpid" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null)
        fds=$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)
        live=$(grep -o 'live=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)
        [ -n "$rss" ] && echo "$rss $fds ${live:-0}" >>"$samples"
        sleep 1 # a sampling period, not a synchronisation
    done
    wait "$cpid"
    local crc=$?
    kill -0 "$server_pid" 2>/dev/null
    local alive=$?
    stop_server
    local details=("client: $(tail -n 1 "$out/$name-client.log")"
        "$(grep -m3 'error:' "$out/$name-client.log")")
    local bad=0 g
    [ $crc -eq 0 ] || bad=1
    [ $alive -eq 0 ] || { bad=1; details+=("the server died: $(tail -n 3 "$log")"); }
    [ "$server_status" -eq 0 ] || { bad=1; details+=("the server exited $server_status"); }
    g=$(grows "$samples" 1 4096) || bad=1
    details+=("RSS KiB: $g")
    g=$(grows "$samples" 2 64) || bad=1
    details+=("fds: $g")
    g=$(grows "$samples" 3 64) || bad=1
    details+=("live tasks: $g")
    report "$name" $bad "${details[@]}"
    printf '    %s\n' "${details[@]}"
}

if [ ! -x "$client" ]; then
    echo "no $client: skipped"
    finish
fi
soak echo echo "$build/examples/weft-echo" --threads 2
soak http http "$build/examples/weft-http" --threads 2 --idle-timeout 2000 --head-timeout 2000
finish
