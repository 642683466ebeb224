#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Redis-protocol benchmark: weft-resp against redis-server 7, both
# loaded by redis-benchmark on this machine, and a markdown section with a
# table per pipeline depth.
#   bench/resp.sh WEFT_RESP OUTDIR
# WEFT_RESP is the weft-resp program; OUTDIR gets the servers' logs and the
# raw results (OUTDIR/resp-logs/, OUTDIR/resp-lines.txt).
#
# redis-benchmark -t ping,set,get -c 50, with -P 1 and -P 16, against
# weft-resp on 1 thread and on every CPU, and redis-server (--save ""
# --appendonly no), alone and with --io-threads 2.  Each server starts on a
# free port on 127.0.0.1 and is stopped after its runs; the whole round is
# done RESP_RUNS times (3 by default), every server in turn, so that a slow
# spell of this shared machine falls on all of them alike.  Figures are
# medians over the rounds.  RESP_N1 and RESP_N16 are the requests per test
# at -P 1 and -P 16 (about 3 s each here); BENCH_SCALE > 1 divides them.
# Then GET alone at -P 1 with 10, 50, 200 and 1000 connections (RESP_NC
# requests each, RESP_N1 / 2 by default): a table and, when gnuplot is
# installed, a plot of requests/s and p99 against connections
# (OUTDIR/resp.png).  Benchmarks never fail the build: this script always
# exits 0.
set -u
[ $# -eq 2 ] || { echo "usage: $0 WEFT_RESP OUTDIR" >&2; exit 0; }
weft=$1
out=$(mkdir -p "$2" && cd "$2" && pwd) || exit 0
cpus=$(nproc)
runs=${RESP_RUNS:-3}
scale=${BENCH_SCALE:-1}
[ "$scale" -ge 1 ] 2>/dev/null || scale=1
n1=$((${RESP_N1:-120000} / scale))
n16=$((${RESP_N16:-1800000} / scale))
nc=$((${RESP_NC:-$((${RESP_N1:-120000} / 2))} / scale))
conns=50
sweep=(10 50 200 1000)
logs=$out/resp-logs
lines=$out/resp-lines.txt

echo "## Redis protocol"
echo
if ! command -v redis-benchmark >/dev/null 2>&1; then
    echo "skipped: Redis-protocol benchmark (no redis-benchmark; Debian: redis-tools)"
    echo
    exit 0
fi
mkdir -p "$logs" || exit 0
rm -f "$logs"/*.log
: >"$lines"
redis=$(command -v redis-server || true)

# The servers: key, label, program, its arguments before the port.
keys=() labels=() progs=() kinds=() argss=()
server() { keys+=("$1") labels+=("$2") progs+=("$3") kinds+=("$4") argss+=("$5"); }
server weft_1 "weft-resp, 1 thread" "$weft" weft "--threads 1"
server weft_n "weft-resp, $cpus threads" "$weft" weft "--threads $cpus"
server redis "redis-server $("${redis:-false}" --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')" "${redis:-/nonexistent/redis-server}" redis ""
server redis_io2 "redis-server, --io-threads 2" "${redis:-/nonexistent/redis-server}" redis "--io-threads 2"

pid=
stop_server() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

# Ports below the kernel's ephemeral range, so no client socket holds one.
port=$((20000 + RANDOM % 10000))
next_free_port() {
    local tries=0
    while [ $tries -lt 100 ]; do
        port=$((port + 1))
        [ $port -lt 32000 ] || port=20000
        tries=$((tries + 1))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
    done
    return 1
}

# start_server I LOG: server I on a free port, answering PING; 1 if not.
start_server() {
    local i=$1 log=$2 attempt
    for attempt in 1 2 3; do
        next_free_port || return 1
        if [ "${kinds[$i]}" = weft ]; then
            # shellcheck disable=SC2086  # the arguments are words
            "${progs[$i]}" --host 127.0.0.1 --port "$port" ${argss[$i]} >>"$log" 2>&1 &
        else
            # shellcheck disable=SC2086
            "${progs[$i]}" --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
                --daemonize no --protected-mode no ${argss[$i]} >>"$log" 2>&1 &
        fi
        pid=$!
        for _ in $(seq 100); do
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null
                pid=
                echo "(attempt $attempt on port $port: the server exited)" >>"$log"
                continue 2
            fi
            if command -v redis-cli >/dev/null 2>&1; then
                [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && return 0
            else
                (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
            fi
            sleep 0.1
        done
        echo "(attempt $attempt: no PONG on port $port within 10 s)" >>"$log"
        stop_server
    done
    return 1
}

# cpu_ticks PID: the user and system CPU time PID has used, in clock ticks.
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
declare -A state # key -> "not built", "not installed", "failed to start"
for round in $(seq "$runs"); do
    for i in "${!keys[@]}"; do
        key=${keys[$i]}
        [ -n "${state[$key]:-}" ] && continue
        if [ ! -x "${progs[$i]}" ]; then
            [ "${kinds[$i]}" = weft ] && state[$key]="not built" || state[$key]="not installed"
            continue
        fi
        log=$logs/$key.log
        echo "== resp: ${labels[$i]}, round $round of $runs" >&2
        if ! start_server "$i" "$log"; then
            state[$key]="failed to start"
            continue
        fi
        for p in 1 16; do
            n=$n1
            [ "$p" -eq 16 ] && n=$n16
            cpu0=$(cpu_ticks "$pid")
            timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t ping,set,get -c $conns -n "$n" \
                -P "$p" --csv >"$logs/client.out" 2>>"$log"
            rc=$?
            cpu1=$(cpu_ticks "$pid")
            cat "$logs/client.out" >>"$log"
            # "PING_INLINE","97087.38","0.279","0.016","0.255","0.431","0.567","1.247"
            got=$(awk -F'"' -v key="$key" -v p="$p" 'NF >= 16 && $2 != "test" {
                printf "%s %s %s rps=%s p50=%s p99=%s\n", key, p, $2, $4, $10, $14 }' "$logs/client.out")
            if [ "$rc" -eq 0 ] && [ -n "$got" ]; then
                echo "$got" >>"$lines"
                # The server's CPU time (user + system) per request, in µs,
                # over the 4 tests of this run.
                [ -n "$cpu0" ] && [ -n "$cpu1" ] &&
                    echo "$key $p CPU us=$(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v n="$n" \
                        'BEGIN { printf "%.2f", t * 1e6 / hz / (4 * n) }')" >>"$lines"
            else
                echo "$key $p error (redis-benchmark exit $rc)" >>"$lines"
            fi
        done
        # GET against the number of connections: lines "KEY cN GET ...".
        for c in "${sweep[@]}"; do
            timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t get -c "$c" -n "$nc" \
                -P 1 --csv >"$logs/client.out" 2>>"$log"
            rc=$?
            cat "$logs/client.out" >>"$log"
            got=$(awk -F'"' -v key="$key" -v c="$c" 'NF >= 16 && $2 == "GET" {
                printf "%s c%s GET rps=%s p50=%s p99=%s\n", key, c, $4, $10, $14 }' "$logs/client.out")
            if [ "$rc" -eq 0 ] && [ -n "$got" ]; then
                echo "$got" >>"$lines"
            else
                echo "$key c$c error (redis-benchmark exit $rc)" >>"$lines"
            fi
        done
        stop_server
    done
done

echo "redis-benchmark -c $conns, -t ping,set,get (ping runs as PING_INLINE and PING_MBULK),"
echo "$n1 requests per test at -P 1 and $n16 at -P 16, 3-byte values, one"
echo "redis-benchmark thread.  Client and server share this machine's $cpus CPUs over"
echo "127.0.0.1.  redis-server runs with --save \"\" --appendonly no.  Medians of $runs"
echo "round(s), each round every server in turn; p50 and p99 are redis-benchmark's, in ms."
echo "Load average (1, 5, 15 min) before the runs: ${load_before:-?}; after:"
echo "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)."
echo
for p in 1 16; do
    # shellcheck disable=SC2016  # awk program
    awk -v p="$p" -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" \
        -v states="$(for k in "${keys[@]}"; do echo "$k ${state[$k]:-}"; done)" '
        function median(s,    v, n, i, j, t) {
            n = split(s, v, " ")
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $2 != p || $3 == "CPU" { next }
        $3 == "error" { bad[$1]++; next }
        {
            if (!($3 in seen)) { seen[$3] = 1; tests[++nt] = $3 }
            n[$1, $3]++
            for (f = 4; f <= NF; f++) {
                split($f, kv, "=")
                vals[$1, $3, kv[1]] = vals[$1, $3, kv[1]] " " kv[2]
            }
        }
        END {
            nk = split(keys, k, " ")
            split(labels, lab, "\n")
            ns = split(states, st, "\n")
            for (i = 1; i <= ns; i++) {
                key = st[i]; sub(/ .*/, "", key)
                s = st[i]; sub(/^[^ ]* ?/, "", s)
                stat[key] = s
            }
            printf "### -P %d\n\n", p
            printf "| test | server | requests/s | p50 ms | p99 ms | vs best redis-server |\n"
            printf "|---|---|---:|---:|---:|---:|\n"
            for (t = 1; t <= nt; t++) {
                test = tests[t]
                best = 0
                for (i = 1; i <= nk; i++)
                    if (k[i] ~ /^redis/ && n[k[i], test]) {
                        r = median(vals[k[i], test, "rps"])
                        if (r > best) best = r
                    }
                for (i = 1; i <= nk; i++) {
                    key = k[i]
                    if (!n[key, test]) {
                        why = stat[key] != "" ? stat[key] : (key in bad) ? "error (see resp-logs)" : "no result"
                        printf "| %s | %s | %s | - | - | - |\n", test, lab[i], why
                        continue
                    }
                    r = median(vals[key, test, "rps"])
                    note = (key in bad) ? sprintf(" (%d runs failed)", bad[key]) : ""
                    printf "| %s | %s%s | %.0f | %.3f | %.3f | %s |\n", test, lab[i], note, r,
                        median(vals[key, test, "p50"]), median(vals[key, test, "p99"]),
                        (best > 0 ? sprintf("%.2fx", r / best) : "-")
                }
            }
            if (nt == 0)
                printf "| - | no results | - | - | - | - |\n"
            printf "\n"
        }' "$lines"
done
# The servers' CPU time per request: what a request costs the server,
# whatever share of the CPUs it got.
# shellcheck disable=SC2016  # awk program
awk -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" '
    function median(s,    v, n, i, j, t) {
        n = split(s, v, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    $3 == "CPU" { split($4, kv, "="); cpu[$1, $2] = cpu[$1, $2] " " kv[2]; any = 1 }
    END {
        if (!any)
            exit
        nk = split(keys, k, " ")
        split(labels, lab, "\n")
        printf "### Server CPU time per request\n\n"
        printf "User + system CPU time of the server process over all four tests of a run,\n"
        printf "divided by the requests (/proc/PID/stat), in µs; medians over the rounds.\n\n"
        printf "| server | -P 1 | -P 16 |\n|---|---:|---:|\n"
        for (i = 1; i <= nk; i++)
            if ((k[i], 1) in cpu || (k[i], 16) in cpu)
                printf "| %s | %s | %s |\n", lab[i],
                    ((k[i], 1) in cpu) ? sprintf("%.2f", median(cpu[k[i], 1])) : "-",
                    ((k[i], 16) in cpu) ? sprintf("%.2f", median(cpu[k[i], 16])) : "-"
        printf "\n"
    }' "$lines"
# GET against connections: a table, and the plot.
# shellcheck disable=SC2016  # awk program
awk -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" -v sweep="${sweep[*]}" '
    function median(s,    v, n, i, j, t) {
        n = split(s, v, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    $2 ~ /^c[0-9]+$/ && $3 == "GET" {
        c = substr($2, 2)
        for (f = 4; f <= NF; f++) {
            split($f, kv, "=")
            vals[$1, c, kv[1]] = vals[$1, c, kv[1]] " " kv[2]
        }
        any = 1
    }
    END {
        if (!any)
            exit
        nk = split(keys, k, " ")
        split(labels, lab, "\n")
        nc = split(sweep, cs, " ")
        printf "### GET at -P 1 against connections\n\n"
        printf "requests/s, p99 in ms, and requests/s against the best redis-server, for\n"
        printf "redis-benchmark -t get -P 1 -c N; medians over the rounds.\n\n"
        printf "| server |"
        for (j = 1; j <= nc; j++) printf " %s conns | p99 | vs redis |", cs[j]
        printf "\n|---|"
        for (j = 1; j <= nc; j++) printf "---:|---:|---:|"
        printf "\n"
        for (j = 1; j <= nc; j++) {
            best[j] = 0
            for (i = 1; i <= nk; i++)
                if (k[i] ~ /^redis/ && vals[k[i], cs[j], "rps"] != "" && median(vals[k[i], cs[j], "rps"]) > best[j])
                    best[j] = median(vals[k[i], cs[j], "rps"])
        }
        for (i = 1; i <= nk; i++) {
            printf "| %s |", lab[i]
            for (j = 1; j <= nc; j++) {
                if (vals[k[i], cs[j], "rps"] == "") { printf " - | - | - |"; continue }
                r = median(vals[k[i], cs[j], "rps"])
                printf " %.0f | %.3f | %s |", r, median(vals[k[i], cs[j], "p99"]),
                    (best[j] > 0 ? sprintf("%.2fx", r / best[j]) : "-")
            }
            printf "\n"
        }
        printf "\n"
    }' "$lines"
if command -v gnuplot >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # awk program
    awk '$2 ~ /^c[0-9]+$/ && $3 == "GET" {
        split($4, a, "="); split($6, b, "="); print $1, substr($2, 2), a[2], b[2] }' "$lines" |
        sort -k1,1 -k2,2n >"$out/resp-points.txt"
    rps="" p99=""
    for i in "${!keys[@]}"; do
        grep -q "^${keys[$i]} " "$out/resp-points.txt" || continue
        src="'< awk \"\\\$1 == \\\"${keys[$i]}\\\"\" $out/resp-points.txt'"
        rps+="${rps:+, }$src using 2:3 smooth unique with linespoints title '${labels[$i]}'"
        p99+="${p99:+, }$src using 2:4 smooth unique with linespoints title '${labels[$i]}'"
    done
    if [ -n "$rps" ] && gnuplot -e "set terminal png size 1200,520 noenhanced; set output '$out/resp.png';
        set multiplot layout 1,2 title 'redis-benchmark -t get -P 1, $cpus CPUs shared with the client';
        set logscale x; set xrange [8:1250]; set xlabel 'connections'; set key top left font ',8';
        set ylabel 'requests/s'; set yrange [0:*]; plot $rps;
        set logscale y; set yrange [*:*]; set ylabel 'p99 latency (ms)'; plot $p99; unset multiplot" \
        2>"$logs/gnuplot.log"; then
        echo "Plot: $out/resp.png"
    else
        echo "(no plot: see $logs/gnuplot.log)"
    fi
    echo
fi
rm -f "$logs/client.out"
notes=$(
    for k in "${keys[@]}"; do
        case ${state[$k]:-} in
        "failed to start") echo "note: $k failed to start, see $logs/$k.log" ;;
        "not installed") echo "skipped: $k (redis-server is not installed; Debian: redis-server)" ;;
        esac
    done
    grep -E '^[^ ]+ c?[0-9]+ error' "$lines" | sed 's/^/note: /'
)
[ -n "$notes" ] && printf '%s\n\n' "$notes"
exit 0
