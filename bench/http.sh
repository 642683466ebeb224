#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The HTTP benchmark: weft-http against nginx, Go's net/http and hyper,
# each loaded by wrk on /plaintext, and a markdown section with one table.
#   bench/http.sh WEFT_HTTP OUTDIR
# WEFT_HTTP is the weft-http program; OUTDIR holds the peers that
# bench/peers/build.sh OUTDIR made (http_go, http_hyper; those missing are
# left out, as is nginx when it is not installed) and gets the logs
# (OUTDIR/http-logs/) and one line per wrk run (OUTDIR/http-lines.txt).
#
# Each server starts on a free port on 127.0.0.1; for each connection count
# wrk runs HTTP_WARMUP s (not counted), then HTTP_DURATION s, with 2
# threads; the server is stopped.  The whole round is done HTTP_RUNS times
# (default 3), every server in turn, and each figure is the median over
# the rounds.  A plot (rps and p99 against connections) is drawn into
# OUTDIR/http.png when gnuplot is installed.  Always exits 0.
set -u
[ $# -eq 2 ] || { echo "usage: $0 WEFT_HTTP OUTDIR" >&2; exit 0; }
weft=$1
out=$(mkdir -p "$2" && cd "$2" && pwd) || exit 0
cpus=$(nproc)
runs=${HTTP_RUNS:-3}
warmup=${HTTP_WARMUP:-1}
duration=${HTTP_DURATION:-3}
if [ "${BENCH_SCALE:-1}" -gt 1 ] 2>/dev/null; then
    runs=${HTTP_RUNS:-1}
    duration=${HTTP_DURATION:-1}
fi
conns_list=(64 256 1000)
logs=$out/http-logs
lines=$out/http-lines.txt

echo "## HTTP server"
echo
if ! command -v wrk >/dev/null; then
    echo "skipped: HTTP benchmark (install wrk)"
    echo
    exit 0
fi
mkdir -p "$logs" && rm -f "$logs"/*.log && : >"$lines" || exit 0
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then ulimit -n 8192; else ulimit -n "$hard"; fi

nginx_conf() { # PORT
    cat >"$out/nginx.conf" <<EOF
# as nginx is run for a benchmark: a worker per CPU, no access log,
# keep-alive connections kept for as many requests as the client sends
worker_processes auto;
daemon off;
pid $out/nginx.pid;
error_log $logs/nginx-error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 65;
    tcp_nodelay on;
    server {
        listen 127.0.0.1:$1 reuseport backlog=4096;
        location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
        location = /json { default_type application/json; return 200 '{"message":"Hello, World!"}'; }
    }
}
EOF
}

keys=() labels=() progs=()
server() { keys+=("$1") labels+=("$2") progs+=("$3"); }
server weft_n "weft-http, $cpus threads" "$weft --threads $cpus"
server weft_1 "weft-http, 1 thread" "$weft --threads 1"
command -v nginx >/dev/null &&
    server nginx "nginx $(nginx -v 2>&1 | sed 's|.*/||'), worker_processes auto" nginx
[ -x "$out/http_go" ] && server go "Go $(go env GOVERSION 2>/dev/null | sed 's/go//') net/http" \
    "$out/http_go --threads $cpus"
[ -x "$out/http_hyper" ] && server hyper "hyper 0.14 on Tokio ($cpus workers)" \
    "$out/http_hyper --threads $cpus"

pid=
stop() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
trap stop EXIT
port=$((20000 + RANDOM % 10000))
start() { # I LOG: 0 once the server answers /plaintext
    local i=$1 log=$2
    for _ in 1 2 3; do
        port=$((port + 1))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        if [ "${keys[$i]}" = nginx ]; then
            nginx_conf "$port"
            nginx -p "$out" -c "$out/nginx.conf" >>"$log" 2>&1 &
        else
            # shellcheck disable=SC2086  # the program and its arguments are words
            ${progs[$i]} --host 127.0.0.1 --port "$port" >>"$log" 2>&1 &
        fi
        pid=$!
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            curl -s -o /dev/null "http://127.0.0.1:$port/plaintext" 2>/dev/null && return 0
            sleep 0.1
        done
        stop
    done
    return 1
}

# wrk's latency in µs from "1.23ms", "456.00us" or "1.01s".
to_us() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
    print (u == "s" ? n * 1e6 : u == "ms" ? n * 1e3 : n) }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$runs"); do
    for i in "${!keys[@]}"; do
        key=${keys[$i]}
        log=$logs/$key.log
        echo "== http: ${labels[$i]}, round $round of $runs" >&2
        if ! start "$i" "$log"; then
            echo "$key 0 failed" >>"$lines"
            continue
        fi
        for c in "${conns_list[@]}"; do
            url=http://127.0.0.1:$port/plaintext
            wrk -t 2 -c "$c" -d "${warmup}s" "$url" >/dev/null 2>&1
            res=$(wrk -t 2 -c "$c" -d "${duration}s" --latency --timeout 10s "$url" 2>&1)
            echo "$res" >>"$log"
            rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$res")
            p50=$(awk '$1 == "50%" { print $2 }' <<<"$res")
            p99=$(awk '$1 == "99%" { print $2 }' <<<"$res")
            errs=$(grep -cE "Socket errors|Non-2xx" <<<"$res")
            if [ -n "$rps" ] && [ -n "$p99" ]; then
                echo "$key $c rps=$rps p50_us=$(to_us "$p50") p99_us=$(to_us "$p99") errs=$errs" >>"$lines"
            else
                echo "$key $c error" >>"$lines"
            fi
        done
        stop
    done
done

echo "wrk 4.1 with 2 threads on /plaintext (\"Hello, World!\", 13 bytes), keep-alive,"
echo "on this machine's $cpus CPUs over 127.0.0.1: client and server compete for them."
echo "${warmup} s warm-up, then ${duration} s measured; medians of $runs round(s), each round"
echo "every server in turn.  Requests per second; p50/p99 latency in µs (wrk's, which"
echo "counts from each request's send).  Load average before: $load_before;"
echo "after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
# shellcheck disable=SC2016  # awk program
awk -v conns="${conns_list[*]}" -v keys="${keys[*]}" -v labels="$(printf '%s\n' "${labels[@]}")" '
    function median(s,    v, n, i, j, t) {
        n = split(s, v, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    $3 == "failed" { failed[$1] = 1; next }
    $3 == "error" { bad[$1, $2]++; next }
    { for (f = 3; f <= NF; f++) { split($f, kv, "="); vals[$1, $2, kv[1]] = vals[$1, $2, kv[1]] " " kv[2] }
      if ($NF != "errs=0") errs[$1, $2] = 1 }
    END {
        nk = split(keys, k, " "); split(labels, lab, "\n"); nc = split(conns, cs, " ")
        # The best peer (not weft) per connection count, for the ratio.
        for (j = 1; j <= nc; j++) {
            best[j] = 0
            for (i = 1; i <= nk; i++) {
                if (k[i] ~ /^weft/ || vals[k[i], cs[j], "rps"] == "") continue
                r = median(vals[k[i], cs[j], "rps"]); if (r > best[j]) best[j] = r
            }
        }
        printf "| server |"
        for (j = 1; j <= nc; j++) printf " %s conns | p50 | p99 | vs best peer |", cs[j]
        printf "\n|---|"
        for (j = 1; j <= nc; j++) printf "---:|---:|---:|---:|"
        printf "\n"
        for (i = 1; i <= nk; i++) {
            printf "| %s |", lab[i]
            for (j = 1; j <= nc; j++) {
                if (failed[k[i]] || vals[k[i], cs[j], "rps"] == "") { printf " failed | | | |"; continue }
                r = median(vals[k[i], cs[j], "rps"])
                printf " %.0f%s | %.0f | %.0f | %s |", r, errs[k[i], cs[j]] ? "*" : "",
                    median(vals[k[i], cs[j], "p50_us"]), median(vals[k[i], cs[j], "p99_us"]),
                    best[j] ? sprintf("%.2fx", r / best[j]) : "-"
            }
            printf "\n"
        }
        print ""
        print "(* wrk reported socket errors or non-2xx responses in a run; see the logs.)"
    }' "$lines"
echo

# The plot: requests/s and p99 against connections, one line per server.
if command -v gnuplot >/dev/null; then
    # shellcheck disable=SC2016  # awk program
    awk '$3 ~ /^rps=/ { split($3, a, "="); split($5, b, "="); print $1, $2, a[2], b[2] }' "$lines" |
        sort -k1,1 -k2,2n >"$out/http-points.txt"
    rps="" p99=""
    for i in "${!keys[@]}"; do
        grep -q "^${keys[$i]} " "$out/http-points.txt" || continue
        src="'< awk \"\\\$1 == \\\"${keys[$i]}\\\"\" $out/http-points.txt'"
        rps+="${rps:+, }$src using 2:3 smooth unique with linespoints title '${labels[$i]}'"
        p99+="${p99:+, }$src using 2:(\$4/1000) smooth unique with linespoints title '${labels[$i]}'"
    done
    if [ -n "$rps" ] && gnuplot -e "set terminal png size 1200,520 noenhanced; set output '$out/http.png';
        set multiplot layout 1,2 title 'HTTP /plaintext under wrk, $cpus CPUs shared with the client';
        set logscale x; set xrange [48:1400]; set xlabel 'connections'; set key top left font ',8';
        set ylabel 'requests/s'; plot $rps;
        set logscale y; set ylabel 'p99 latency (ms)'; plot $p99; unset multiplot" \
        2>"$logs/gnuplot.log"; then
        echo "Plot: $out/http.png"
    else
        echo "(no plot: see $logs/gnuplot.log)"
    fi
    echo
fi
exit 0
