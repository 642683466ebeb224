#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The echo server benchmark: weft-echo against the peer echo servers, all
# loaded by bench_echo_client on this machine, and a markdown section with
# one table per connection count.
#   bench/echo.sh WEFT_ECHO OUTDIR
# WEFT_ECHO is the weft-echo program (its row says "not built" if it is not
# there); OUTDIR holds the peer servers that bench/peers/build.sh OUTDIR made
# (echo_epoll, echo_uring, echo_go, echo_tokio; those missing are left out)
# and gets the servers' logs (OUTDIR/echo-logs/) and the client's result
# lines (OUTDIR/echo-lines.txt).  The client is
# ${ECHO_CLIENT:-OUTDIR/../bench/bench_echo_client}.
#
# Each server starts on a free port on 127.0.0.1 and serves 64-byte messages
# to 1, 64, 1000 and 10000 connections (ECHO_CONNS="1 64" to choose), one
# run of each, and is stopped (SIGTERM,
# then SIGKILL after 5 s); the whole round is done ECHO_RUNS times, so that
# a slow spell of this shared machine falls on every server alike.  Each
# figure is the median over the rounds.  ECHO_WARMUP and ECHO_DURATION set
# the client's warm-up and timed window (s); BENCH_SCALE > 1 shortens them.
# weft-echo runs on the event loop (fibers) and on the thread pool (an OS
# thread per connection): same binary, same client.  While the client runs,
# the server's resident memory and thread count are sampled every 0.2 s;
# the tables give the peaks.  With gnuplot, requests/s and p99 against
# connections, one line per server, go to ECHO_PLOT (a PNG; default
# OUTDIR/echo.png); without it the plot is skipped with a message.
# Benchmarks never fail the build: this script always exits 0.
set -u
[ $# -eq 2 ] || { echo "usage: $0 WEFT_ECHO OUTDIR" >&2; exit 0; }
weft=$1
out=$2
client=${ECHO_CLIENT:-$out/../bench/bench_echo_client}
cpus=$(nproc)
runs=${ECHO_RUNS:-3}
warmup=${ECHO_WARMUP:-1}
duration=${ECHO_DURATION:-3}
if [ "${BENCH_SCALE:-1}" -gt 1 ] 2>/dev/null; then
    warmup=${ECHO_WARMUP:-0.5}
    duration=${ECHO_DURATION:-1}
fi
size=64
# shellcheck disable=SC2206  # a list of numbers
conns_list=(${ECHO_CONNS:-1 64 1000 10000})
plot=${ECHO_PLOT:-$out/echo.png}
logs=$out/echo-logs
lines=$out/echo-lines.txt

echo "## Echo server"
echo
if [ ! -x "$client" ]; then
    echo "skipped: echo benchmark (no client at $client; build the bench_echo_client target)"
    echo
    exit 0
fi
mkdir -p "$logs" || exit 0
rm -f "$logs"/*.log
: >"$lines"

# N connections are N descriptors in the client and N in the server.
want_fds=20480
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $want_fds ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -ge $want_fds ]; then
        ulimit -n $want_fds
    else
        ulimit -n "$hard"
    fi
fi
fds=$(ulimit -n)

# The servers: key, label, program, its arguments (the port is added).
keys=() labels=() progs=() argss=()
server() { keys+=("$1") labels+=("$2") progs+=("$3") argss+=("$4"); }
server weft_n "weft-echo, $cpus threads" "$weft" "--threads $cpus"
server weft_1 "weft-echo, 1 thread" "$weft" "--threads 1"
server weft_pool "weft-echo --io thread_pool, a thread per connection" "$weft" "--io thread_pool --threads $cpus"
server epoll_1 "epoll, 1 thread" "$out/echo_epoll" "--threads 1"
server epoll_n "epoll, $cpus threads (a listener each)" "$out/echo_epoll" "--threads $cpus"
server uring_1 "io_uring, 1 thread" "$out/echo_uring" "--threads 1"
server uring_n "io_uring, $cpus threads (a ring and a listener each)" "$out/echo_uring" "--threads $cpus"
server go "Go, goroutine per connection (GOMAXPROCS $cpus)" "$out/echo_go" "--threads $cpus"
server tokio "Tokio, task per connection ($cpus workers)" "$out/echo_tokio" "--threads $cpus"

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
        # Free if nothing answers there.
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
    done
    return 1
}

# start_server I LOG: starts server I on a free port and waits until it
# accepts connections; 1 if it did not (the log says why).
start_server() {
    local i=$1 log=$2 attempt
    for attempt in 1 2 3; do
        next_free_port || return 1
        # shellcheck disable=SC2086  # the arguments are words
        "${progs[$i]}" --host 127.0.0.1 --port "$port" ${argss[$i]} >>"$log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null
                pid=
                echo "(attempt $attempt on port $port: the server exited)" >>"$log"
                continue 2
            fi
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
            sleep 0.1
        done
        echo "(attempt $attempt: no connection accepted on port $port within 10 s)" >>"$log"
        stop_server
    done
    return 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
declare -A state # key -> "not built", "failed to start"
limit=()
command -v timeout >/dev/null 2>&1 &&
    limit=(timeout "$(awk -v w="$warmup" -v d="$duration" 'BEGIN { print int(w + d + 60) }')")
for round in $(seq "$runs"); do
    for i in "${!keys[@]}"; do
        key=${keys[$i]}
        [ -n "${state[$key]:-}" ] && continue
        if [ ! -x "${progs[$i]}" ]; then
            state[$key]="not built"
            continue
        fi
        log=$logs/$key.log
        echo "== echo: ${labels[$i]}, round $round of $runs" >&2
        if ! start_server "$i" "$log"; then
            state[$key]="failed to start"
            continue
        fi
        for c in "${conns_list[@]}"; do
            if [ "$c" -gt $((fds - 100)) ]; then
                echo "$key $c skipped (ulimit -n is $fds)" >>"$lines"
                continue
            fi
            threads=$((c < cpus ? c : cpus))
            # The server's peak RSS (kB) and threads while the client runs.
            rm -f "$logs/client.done"
            (
                rss=0 thr=0
                while kill -0 "$pid" 2>/dev/null && [ ! -e "$logs/client.done" ]; do
                    read -r r t < <(awk '/^VmRSS:/ { r = $2 } /^Threads:/ { t = $2 }
                        END { print r + 0, t + 0 }' "/proc/$pid/status" 2>/dev/null)
                    [ "${r:-0}" -gt "$rss" ] && rss=$r
                    [ "${t:-0}" -gt "$thr" ] && thr=$t
                    sleep 0.2
                done
                echo "rss_kb=$rss threads_used=$thr" >"$logs/sample.out"
            ) &
            sampler=$!
            "${limit[@]}" "$client" --host 127.0.0.1 --port "$port" --conns "$c" \
                --size $size --threads $threads --warmup "$warmup" --duration "$duration" \
                >"$logs/client.out" 2>>"$log"
            rc=$?
            touch "$logs/client.done"
            wait "$sampler" 2>/dev/null
            cat "$logs/client.out" >>"$log"
            res=$(grep '^echo_result ' "$logs/client.out")
            if [ "$rc" -eq 0 ] && [ -n "$res" ]; then
                echo "$key $c ${res#echo_result } $(cat "$logs/sample.out" 2>/dev/null)" >>"$lines"
            else
                echo "$key $c error (client exit $rc)" >>"$lines"
            fi
        done
        stop_server
    done
done

echo "64-byte messages, closed loop: each connection sends one message and waits for"
echo "its whole echo before the next (bench_echo_client, every byte checked).  Client"
echo "and server run on this machine's $cpus CPUs, over 127.0.0.1, so they compete for"
echo "them; the client uses min(connections, $cpus) epoll threads.  ${warmup} s warm-up,"
echo "then requests completed in ${duration} s are counted; medians of $runs round(s), each"
echo "round every server in turn.  Latencies are from the client's send of a message to"
echo "the receipt of the last byte of its echo, in µs.  Load average (1, 5, 15 min)"
echo "before the runs: ${load_before:-?}; after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)."
echo "RSS and threads: the server's peak resident memory and thread count while the"
echo "client ran (sampled every 0.2 s)."
echo
for c in "${conns_list[@]}"; do
    # shellcheck disable=SC2016  # awk program
    awk -v c="$c" -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" \
        -v states="$(for k in "${keys[@]}"; do echo "$k ${state[$k]:-}"; done)" '
        function median(s,    v, n, i, j, t) {
            n = split(s, v, " ")
            for (i = 2; i <= n; i++)    # insertion sort, n is small
                for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $2 != c { next }
        $3 == "skipped" { skip[$1] = 1; next }
        $3 == "error" { bad[$1]++; next }
        {
            n[$1]++
            for (f = 3; f <= NF; f++) {
                split($f, kv, "=")
                vals[$1, kv[1]] = vals[$1, kv[1]] " " kv[2]
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
            printf "### %d connection%s\n\n", c, c == 1 ? "" : "s"
            printf "| server | requests/s | p50 µs | p99 µs | p99.9 µs | RSS MiB | threads | requests/s vs weft |\n"
            printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            base = ("weft_n" in n) ? median(vals["weft_n", "rps"]) : 0
            for (i = 1; i <= nk; i++) {
                key = k[i]
                if (stat[key] == "not built" && key != "weft_n")
                    continue    # a peer whose toolchain is missing, or the second weft row
                if (!(key in n)) {
                    why = stat[key] != "" ? stat[key] : (key in skip) ? "skipped (ulimit -n)" : \
                        (key in bad) ? "error (see echo-logs)" : "no result"
                    printf "| %s | %s | - | - | - | - | - | - |\n", lab[i], why
                    continue
                }
                r = median(vals[key, "rps"])
                note = (key in bad) ? sprintf(" (%d of %d runs failed)", bad[key], bad[key] + n[key]) : ""
                rss = ((key, "rss_kb") in vals) ? sprintf("%.1f", median(vals[key, "rss_kb"]) / 1024) : "-"
                thr = ((key, "threads_used") in vals) ? sprintf("%d", median(vals[key, "threads_used"])) : "-"
                printf "| %s%s | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |\n", lab[i], note, r,
                    median(vals[key, "p50_us"]), median(vals[key, "p99_us"]),
                    median(vals[key, "p999_us"]), rss, thr, (base > 0 ? sprintf("%.2fx", r / base) : "-")
            }
            printf "\n"
        }' "$lines"
done
rm -f "$logs/client.out" "$logs/client.done" "$logs/sample.out"

# The plot: requests/s and p99 against connections, a line per server.
if command -v gnuplot >/dev/null 2>&1; then
    data=$out/echo-plot.dat
    # shellcheck disable=SC2016  # awk program
    awk -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" '
        function median(s,    v, n, i, j, t) {
            n = split(s, v, " ")
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $3 ~ /=/ {
            for (f = 3; f <= NF; f++) { split($f, kv, "="); vals[$1, $2, kv[1]] = vals[$1, $2, kv[1]] " " kv[2] }
            if (!(($1, $2) in seen)) { seen[$1, $2] = 1; cs[$1] = cs[$1] " " $2 }
        }
        END {
            nk = split(keys, k, " "); split(labels, lab, "\n")
            for (i = 1; i <= nk; i++) {
                if (!(k[i] in cs)) continue
                printf "\"%s\"\n", lab[i]
                n = split(cs[k[i]], c, " ")
                for (j = 1; j <= n; j++)
                    printf "%s %s %s\n", c[j], median(vals[k[i], c[j], "rps"]), median(vals[k[i], c[j], "p99_us"])
                printf "\n\n"
            }
        }' "$lines" >"$data"
    if [ -s "$data" ] && gnuplot -e "
        set terminal pngcairo size 1200,480 font ',10' noenhanced;
        set output '$plot';
        set multiplot layout 1,2 title 'weft-echo: fibers (event loop) against threads (thread pool), 64-byte messages, $cpus CPUs';
        set logscale x; set xlabel 'connections'; set grid; set key top left font ',8';
        set ylabel 'requests/s'; set yrange [0:*];
        plot for [i=0:*] '$data' index i using 1:2 with linespoints title columnheader(1);
        set logscale y; set ylabel 'p99 latency (us)'; set yrange [*:*];
        plot for [i=0:*] '$data' index i using 1:3 with linespoints title columnheader(1);
        unset multiplot" 2>>"$logs/gnuplot.log"; then
        echo "Plot: $plot"
    else
        echo "skipped: the plot (gnuplot failed, see $logs/gnuplot.log)"
    fi
    echo
else
    echo "skipped: the plot (gnuplot is not installed; apt-get install gnuplot-nox)"
    echo
fi

notes=$(
    for i in "${!keys[@]}"; do
        case ${keys[$i]} in weft_*) continue ;; esac
        [ "${state[${keys[$i]}]:-}" = "not built" ] &&
            echo "skipped: ${labels[$i]} (not built; bench/peers/build.sh $out says why)"
    done
    grep -E '^[^ ]+ [0-9]+ (error|skipped)' "$lines" | sed 's/^/note: /'
    for k in "${keys[@]}"; do
        [ "${state[$k]:-}" = "failed to start" ] && echo "note: $k failed to start, see $logs/$k.log"
    done
)
[ -n "$notes" ] && printf '%s\n\n' "$notes"
exit 0
