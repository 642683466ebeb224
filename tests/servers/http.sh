#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# weft-http against real clients: curl for what browsers and tools do,
# bash's /dev/tcp for what they never do (malformed heads, a head that
# stops half-way).
#   tests/servers/http.sh EXAMPLES_DIR [IO]
# EXAMPLES_DIR holds weft-http; IO (event_loop by default) is passed as
# --io when it is not event_loop.
set -u
suite=http
. "$(dirname "$0")/../lib.sh"
bin=$1/weft-http
io=${2:-event_loop}
[ "$io" != event_loop ] && suite=http_$io
iof=()
[ "$io" != event_loop ] && iof=(--io "$io")
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
if ! command -v curl >/dev/null; then
    echo "curl is not installed: skipped"
    finish
fi

# The served tree: a file, a file in a subdirectory, a symlink inside the
# root, one leading out of it, and a secret beside the root.
mkdir -p "$work/root/sub" "$work/root/dir.html"
printf '<h1>weft</h1>\n' >"$work/root/index.html"
head -c 300000 /dev/urandom >"$work/root/sub/blob.bin"
echo secret >"$work/secret.txt"
ln -s index.html "$work/root/inside.html"
ln -s ../secret.txt "$work/root/outside.txt"
ln -s /etc/passwd "$work/root/passwd"

log=$work/server.log
if ! start_server "$log" "$bin" --port 0 --host 127.0.0.1 --threads 2 --root "$work/root" \
    --idle-timeout 300 --head-timeout 300 "${iof[@]}"; then
    report starts 1 "no listening line:" "$(cat "$log")"
    finish
fi
url=http://127.0.0.1:$server_port

# status PATH [curl args...]: the status code curl gets.
status() {
    local p=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --path-as-is "$@" "$url$p"
}
# raw TEXT: sends TEXT on a new connection, prints what comes back until
# the server closes (5 s at most).
raw() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$server_port" || return 1
    printf '%b' "$1" >&"$fd"
    timeout 5 cat <&"$fd"
    exec {fd}>&-
}

out=$(curl -si "$url/plaintext")
[[ $out == *"HTTP/1.1 200 OK"* && $out == *"Content-Type: text/plain"* && $out == *"Date: "* &&
    $out == *"Server: weft"* && $out == *$'\r\n\r\nHello, World!' ]]
report plaintext $? "$out"

out=$(curl -s -D - "$url/json")
[[ $out == *"application/json"* && $out == *'{"message":"Hello, World!"}' ]]
report json $? "$out"

# Keep-alive: three requests, one connection.
out=$(curl -sv "$url/plaintext" "$url/json" "$url/index.html" 2>&1)
n=$(grep -c "Re-using existing connection" <<<"$out")
[ "$n" -eq 2 ]
report keep_alive_reuses_the_connection $? "reused $n times" "$(tail -5 <<<"$out")"

out=$(curl -sI "$url/index.html")
[[ $out == *"200 OK"* && $out == *"Content-Length: 14"* && $out == *"text/html"* ]]
report head_has_the_headers $? "$out"
out=$(raw 'HEAD /index.html HTTP/1.1\r\nConnection: close\r\n\r\n')
[[ $out == *"Content-Length: 14"* && $out != *"<h1>"* ]]
report head_has_no_body $? "$out"

curl -s "$url/sub/blob.bin" -o "$work/got.bin" && cmp -s "$work/got.bin" "$work/root/sub/blob.bin"
report file_from_root_byte_for_byte $?

out=$(curl -s --http1.0 -D - "$url/plaintext")
[[ $out == *"HTTP/1.0 200"* && $out == *"Connection: close"* ]]
report http_1_0 $? "$out"

# Pipelining: three requests in one write, three responses in order.
out=$(raw 'GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\nHEAD /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n')
n=$(grep -c "HTTP/1.1 200" <<<"$out")
[ "$n" -eq 3 ] && [[ $(tr -d '\r\n' <<<"$out") == *"Hello, World!"*message*"Content-Length: 13"* ]]
report pipelined_requests_answered_in_order $? "$n responses" "$out"

# HEAD of a missing file: no body, and the connection goes on in step.
out=$(raw 'HEAD /nope.html HTTP/1.1\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n')
[[ $out == "HTTP/1.1 404"* && $out != *"404 Not Found"$'\n'* &&
    $(tr -d '\r' <<<"$out") == *$'\n\nHTTP/1.1 200 OK'*"Hello, World!" ]]
report head_of_a_missing_file_has_no_body $? "$out"

# A FIFO under the root is not a file to serve, and does not hold a worker.
mkfifo "$work/root/fifo"
[ "$(status /fifo --max-time 5)" = 404 ] && [ "$(status /plaintext --max-time 5)" = 200 ]
report a_fifo_under_the_root_is_404 $?

# A body that never comes: the connection is closed by the head timeout.
out=$(raw 'POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nab')
st=$?
[ $st -eq 0 ]
report a_body_that_never_comes_times_out $? "raw: $st" "$out"

# Files: never outside the root, however asked.
declare -A expect=(
    ["/inside.html"]=200
    ["/nope.html"]=404
    ["/dir.html"]=404
    ["/outside.txt"]=403
    ["/passwd"]=403
    ["/../secret.txt"]=403
    ["/sub/../../secret.txt"]=403
    ["/sub/%2e%2e/%2e%2e/secret.txt"]=403
    ["/sub%2F..%2F..%2Fsecret.txt"]=404
    ["/%00"]=404
    ["/%zz"]=400
)
bad=()
for p in "${!expect[@]}"; do
    got=$(status "$p")
    [ "$got" = "${expect[$p]}" ] || bad+=("$p: $got, expected ${expect[$p]}")
done
[ ${#bad[@]} -eq 0 ]
report traversal_and_missing_files $? "${bad[@]}"

# Errors, each closing the connection.
out=$(raw "GET /$(head -c 9000 /dev/zero | tr '\0' a) HTTP/1.1\r\n\r\n")
[[ $out == "HTTP/1.1 431"* && $out == *"Connection: close"* ]]
report head_over_8k_is_431 $? "${out:0:200}"

out=$(raw 'GET / HTTP/1.1\r\nBad Header: x\r\n\r\n')
[[ $out == "HTTP/1.1 400"* ]]
report malformed_head_is_400 $? "$out"

out=$(raw 'NONSENSE\r\n\r\n')
[[ $out == "HTTP/1.1 400"* ]]
report garbage_is_400 $? "$out"

out=$(raw 'BREW /pot HTTP/1.1\r\n\r\n')
[[ $out == "HTTP/1.1 501"* ]]
report unknown_method_is_501 $? "$out"

out=$(raw 'POST /x HTTP/1.1\r\nHost: x\r\n\r\n')
[[ $out == "HTTP/1.1 411"* ]]
report post_without_length_is_411 $? "$out"

[ "$(status /x -X POST -d hello)" = 405 ]
report post_with_body_is_405 $?

out=$(raw 'GET /plaintext HTTP/2.0\r\n\r\n')
[[ $out == "HTTP/1.1 505"* ]]
report http_2_0_is_505 $? "$out"

# A head that stops half-way: 408 once --head-timeout has passed.  (The
# client waits for the answer, whenever it comes; nothing here times it.)
out=$(raw 'GET /plaintext HTTP/1.1\r\nHost: x\r\n')
[[ $out == "HTTP/1.1 408"* ]]
report slow_head_is_408 $? "$out"

# An idle keep-alive connection is closed (the read sees the end).
exec {fd}<>"/dev/tcp/127.0.0.1/$server_port"
printf 'GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
out=$(timeout 5 cat <&"$fd")
st=$?
exec {fd}>&-
[ $st -eq 0 ] && [[ $out == *"Hello, World!" ]]
report idle_keep_alive_connection_closes $? "cat: $st" "$out"

# Many connections at once, if wrk is here and descriptors allow.  On the
# thread pool each connection is a thread, and each thread holds an
# eventfd (how a cancel reaches it): two descriptors a connection, so
# 9,000 connections there, within the hard limit of 20,000 that a
# Debian machine gives by default.
many=10000 fds=12000
[ "$io" = thread_pool ] && many=9000 fds=20000
if command -v wrk >/dev/null && ulimit -n $fds 2>/dev/null; then
    stop_server
    start_server "$log" "$bin" --port 0 --host 127.0.0.1 --threads 2 "${iof[@]}"
    url=http://127.0.0.1:$server_port
    out=$(wrk -t 2 -c $many -d 10s --timeout 10s "$url/plaintext" 2>&1)
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    ! grep -q "Socket errors" <<<"$out" && [ "${reqs:-0}" -ge $many ] &&
        ! grep -q "Non-2xx" <<<"$out"
    report many_connections_at_once $? "$many connections" "$out"
else
    echo "wrk missing or ulimit -n $fds refused: $many connections not tried"
fi

# A stop: idle connections are closed, the server exits 0.
exec {fd}<>"/dev/tcp/127.0.0.1/$server_port"
printf 'GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
IFS= read -r first <&"$fd"
stop_server TERM
out=$(timeout 5 cat <&"$fd")
st=$?
exec {fd}>&-
[ "$server_status" -eq 0 ] && [ $st -eq 0 ] && [[ $first == "HTTP/1.1 200"* ]]
report sigterm_closes_idle_connections_and_exits_0 $? "exit $server_status, cat $st" \
    "$(tail -3 "$log")"
finish
