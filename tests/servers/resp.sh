#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# weft-resp against real clients: redis-cli for every command (the replies
# as redis-server 7 gives them), raw bytes over bash's /dev/tcp for the
# exact encoding, pipelines, a malformed frame that closes only its own
# connection, a 600 MiB bulk declared and refused, redis-benchmark, and a
# SIGTERM that ends the server with status 0.
#   tests/servers/resp.sh BUILD_EXAMPLES_DIR
set -u
suite=resp
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
[ $# -eq 1 ] || { echo "usage: $0 BUILD_EXAMPLES_DIR" >&2; exit 2; }
bin=$1/weft-resp
if ! command -v redis-cli >/dev/null 2>&1; then
    echo "skipped: redis-cli is not installed (Debian: redis-tools)"
    finish
fi
if [ ! -x "$bin" ]; then
    report built 1 "no $bin"
    finish
fi
# --io names the Io: anything but event_loop and thread_pool is refused.
got=$(timeout 10 "$bin" --port 0 --io fibres 2>&1)
rc=$?
[ $rc -eq 2 ] && [[ $got == *"thread_pool"* ]]
report io_unknown_refused $? "exit $rc" "$got"
timeout 10 "$bin" --port 65537 >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ]
report port_out_of_range_exits_2 $? "exit $rc"
timeout 10 "$bin" --port 0 --bogus >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ]
report bad_flag_exits_2 $? "exit $rc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${server_pid:-}" ] && kill -KILL "$server_pid" 2>/dev/null' EXIT
log=$tmp/server.log
# The same server on the thread pool: a few commands, then a stop.
if start_server "$tmp/pool.log" "$bin" --host 127.0.0.1 --port 0 --io thread_pool; then
    got=$(redis-cli -p "$server_port" SET k v 2>&1; redis-cli -p "$server_port" GET k 2>&1;
        redis-cli -p "$server_port" INCRBY n 41 2>&1)
    stop_server
    [ "$got" = $'OK\nv\n41' ] && [ "$server_status" -eq 0 ]
    report thread_pool_serves $? "$got" "exit $server_status" "$(tail -n 3 "$tmp/pool.log")"
else
    report thread_pool_serves 1 "$(cat "$tmp/pool.log")"
fi
if ! start_server "$log" "$bin" --host 127.0.0.1 --port 0 --threads 2; then
    report starts 1 "$(cat "$log")"
    finish
fi
report starts 0

# cli ARGS...: redis-cli's replies as it shows them to a person ("(integer)
# 1", "(nil)", "(error) ERR ..."), whatever stdout is.
cli() { timeout 10 redis-cli --no-raw -h 127.0.0.1 -p "$server_port" "$@" 2>&1; }
# expect NAME WANT ARGS...: redis-cli ARGS... shows WANT.
expect() {
    local name=$1 want=$2 got
    shift 2
    got=$(cli "$@")
    if [ "$got" = "$want" ]; then report "$name" 0; else report "$name" 1 "redis-cli $*" "want: $want" "got:  $got"; fi
}
# expect_ttl NAME KEY: TTL KEY is about 100 s (a loaded machine may take a
# second or two between the commands).
expect_ttl() {
    local got
    got=$(cli ttl "$2")
    case $got in "(integer) 100" | "(integer) 99" | "(integer) 98") report "$1" 0 ;;
    *) report "$1" 1 "redis-cli ttl $2" "want: (integer) 100" "got:  $got" ;; esac
}
# raw INPUT: sends INPUT (printf %b escapes) on a new connection and prints
# what comes back until the server closes it, as od -c shows bytes.
raw() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$server_port" || return 1
    printf '%b' "$1" >&"$fd"
    timeout 10 cat <&"$fd" | od -An -c
    exec {fd}<&-
}
# expect_raw NAME INPUT WANT: the exact bytes of the replies (both with
# printf %b escapes); INPUT should end the connection (QUIT, or an error).
expect_raw() {
    local got want
    got=$(raw "$2")
    want=$(printf '%b' "$3" | od -An -c)
    if [ "$got" = "$want" ]; then report "$1" 0; else report "$1" 1 "input: $2" "want:$want" "got: $got"; fi
}

expect flushall OK flushall
# A command name with a NUL inside is no command ("GET\0zz" is not GET).
expect set_for_nul OK set nulkey v
expect_raw command_name_with_a_nul_is_unknown '*2\r\n$6\r\nDEL\0zz\r\n$6\r\nnulkey\r\n*1\r\n$4\r\nQUIT\r\n' \
    "-ERR unknown command 'DEL', with args beginning with: 'nulkey' \r\n+OK\r\n"
expect nul_command_deleted_nothing '"v"' get nulkey
# The same expiry option twice: the last stands (Redis 7.0); two units: an error.
expect set_ex_twice OK set exkey v ex 10 ex 100
expect_ttl set_ex_twice_last_wins exkey
expect set_ex_px '(error) ERR syntax error' set exkey v ex 10 px 100
expect del_those '(integer) 2' del nulkey exkey
expect ping PONG ping
expect ping_message '"hello"' ping hello
expect ping_arity "(error) ERR wrong number of arguments for 'ping' command" ping a b
expect echo '"a b"' echo "a b"
expect echo_arity "(error) ERR wrong number of arguments for 'echo' command" echo
expect set OK set k v
expect get '"v"' get k
expect get_missing '(nil)' get nosuch
expect get_arity "(error) ERR wrong number of arguments for 'get' command" get
expect set_nx_existing '(nil)' set k v2 nx
expect set_nx_new OK set k2 v2 nx
expect set_xx_existing OK set k v3 xx
expect set_xx_missing '(nil)' set k3 v xx
expect set_nx_xx '(error) ERR syntax error' set k v nx xx
expect set_get '"v3"' set k v4 get
expect set_ex OK set k v ex 100
expect_ttl ttl_ex k
expect set_px OK set k v px 100000
expect_ttl ttl_px k
expect set_keepttl OK set k v5 keepttl
expect_ttl ttl_keepttl k
expect set_clears_ttl OK set k v
expect ttl_none '(integer) -1' ttl k
expect ttl_missing '(integer) -2' ttl nosuch
expect set_ex_zero "(error) ERR invalid expire time in 'set' command" set k v ex 0
expect set_ex_not_int '(error) ERR value is not an integer or out of range' set k v ex x
expect set_ex_no_value '(error) ERR syntax error' set k v ex
expect set_arity "(error) ERR wrong number of arguments for 'set' command" set k
expect del '(integer) 2' del k k2 nosuch
expect del_arity "(error) ERR wrong number of arguments for 'del' command" del
expect exists_none '(integer) 0' exists k
expect mset OK mset a 1 b 2 c 3
expect mset_odd "(error) ERR wrong number of arguments for 'mset' command" mset a 1 b
expect mget "$(printf '1) "1"\n2) "2"\n3) (nil)\n4) "3"')" mget a b nosuch c
expect exists '(integer) 3' exists a a b nosuch
expect incr '(integer) 2' incr a
expect incr_new '(integer) 1' incr n
expect incrby '(integer) 11' incrby n 10
expect incrby_negative '(integer) 1' incrby n -10
expect decr '(integer) 0' decr n
expect decr_new '(integer) -1' decr m
expect incrby_not_int '(error) ERR value is not an integer or out of range' incrby n x
cli set s hello >/dev/null
expect incr_string '(error) ERR value is not an integer or out of range' incr s
cli set big 9223372036854775807 >/dev/null
expect incr_overflow '(error) ERR increment or decrement would overflow' incr big
expect expire '(integer) 1' expire a 100
expect_ttl expire_ttl a
expect expire_missing '(integer) 0' expire nosuch 100
expect expire_nx '(integer) 0' expire a 50 nx
expect expire_gt '(integer) 1' expire a 200 gt
expect expire_bad_option '(error) ERR Unsupported option zz' expire a 10 zz
expect expire_not_int '(error) ERR value is not an integer or out of range' expire a x
expect expire_past '(integer) 1' expire a -1
expect expire_past_deletes '(integer) 0' exists a
expect dbsize '(integer) 6' dbsize
expect dbsize_arity "(error) ERR wrong number of arguments for 'dbsize' command" dbsize x
expect unknown "(error) ERR unknown command 'nosuch', with args beginning with: 'a' 'b c' " nosuch a "b c"
expect unknown_no_args "(error) ERR unknown command 'nosuch', with args beginning with: " nosuch
expect command_docs '(empty array)' command docs
expect config_get_save "$(printf '1) "save"\n2) ""')" config get save
expect config_get_appendonly "$(printf '1) "appendonly"\n2) "no"')" config get appendonly
expect config_get_unknown '(empty array)' config get nosuch
got=$(cli info)
case $got in *redis_version:*db0:keys=6*) report info 0 ;; *) report info 1 "$got" ;; esac
expect flushall_again OK flushall
expect dbsize_empty '(integer) 0' dbsize

# Keys that expire: found gone by an access, and by the sweeper.
cli set e1 v px 100 >/dev/null
cli set e2 v px 100 >/dev/null
sleep 0.5
expect expired_get '(nil)' get e1
expect expired_swept '(integer) 0' dbsize

# Binary-safe values, through redis-cli -x (the value from stdin).
printf 'a\0b\r\nc\xff' | cli -x set bin >/dev/null
got=$(timeout 10 redis-cli --raw -h 127.0.0.1 -p "$server_port" get bin | od -An -c)
want=$(printf 'a\0b\r\nc\xff\n' | od -An -c)
[ "$got" = "$want" ]
report binary_value $? "want:$want" "got: $got"

# The exact bytes, a pipeline, inline commands and the connection going on
# after errors.
expect_raw raw_replies '*2\r\n$4\r\nECHO\r\n$5\r\na\0\r\nb\r\nPING\r\nGET nosuch\r\nSET n 5\r\nINCR n\r\nMGET n nosuch\r\nQUIT\r\n' \
    '$5\r\na\0\r\nb\r\n+PONG\r\n$-1\r\n+OK\r\n:6\r\n*2\r\n$1\r\n6\r\n$-1\r\n+OK\r\n'
expect_raw errors_leave_the_connection_open 'FOO bar\r\nGET\r\nINCR nosuch x\r\nPING\r\nQUIT\r\n' \
    "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n-ERR wrong number of arguments for 'get' command\r\n-ERR wrong number of arguments for 'incr' command\r\n+PONG\r\n+OK\r\n"
expect_raw inline_quotes 'ECHO "a\\x41\\n" '"'"'b c'"'"'\r\nECHO "x y"\r\nQUIT\r\n' '-ERR wrong number of arguments for '"'"'echo'"'"' command\r\n$3\r\nx y\r\n+OK\r\n'
pipeline="$(for i in $(seq 1000); do printf 'PING\\r\\n'; done)QUIT\\r\\n"
expect_raw pipeline_of_1000 "$pipeline" "$(for i in $(seq 1000); do printf '+PONG\\r\\n'; done)+OK\\r\\n"
got=$( (for i in $(seq 2000); do printf 'SET key:%d %d\r\n' "$i" "$i"; done) | timeout 30 redis-cli -h 127.0.0.1 -p "$server_port" --pipe 2>&1)
case $got in *"errors: 0, replies: 2000"*) report redis_cli_pipe 0 ;; *) report redis_cli_pipe 1 "$got" ;; esac
expect after_pipe '"1234"' get key:1234

# A malformed frame: an error, and that connection (only) closes.
exec {other}<>"/dev/tcp/127.0.0.1/$server_port"
expect_raw malformed_closes '*1\r\n$x\r\nPING\r\n' '-ERR Protocol error: invalid bulk length\r\n'
expect_raw malformed_dollar '*2\r\n$3\r\nGET\r\n:1\r\n' "-ERR Protocol error: expected '\$', got ':'\r\n"
expect_raw unbalanced_quotes 'SET "k v\r\nPING\r\n' '-ERR Protocol error: unbalanced quotes in request\r\n'
# 600 MiB declared: refused at once, nothing allocated for it.
rss_before=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
expect_raw bulk_600MiB_refused '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$629145600\r\nxxxx' '-ERR Protocol error: invalid bulk length\r\n'
expect_raw array_over_1M_refused '*1048577\r\n' '-ERR Protocol error: invalid multibulk length\r\n'
rss_after=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
[ $((rss_after - rss_before)) -lt 65536 ]
report no_allocation_for_declared_lengths $? "VmRSS $rss_before kB before, $rss_after kB after"
printf 'PING\r\n' >&"$other"
got=$(timeout 5 head -c 7 <&"$other" | od -An -c)
[ "$got" = "$(printf '+PONG\r\n' | od -An -c)" ]
report other_connection_goes_on $? "got: $got"

# redis-benchmark, unchanged.
if command -v redis-benchmark >/dev/null 2>&1; then
    got=$(timeout 60 redis-benchmark -h 127.0.0.1 -p "$server_port" -t ping,set,get -n 5000 -c 10 -P 4 -q 2>&1)
    rc=$?
    n=$(grep -c 'requests per second' <<<"$got")
    [ $rc -eq 0 ] && [ "$n" -ge 4 ] && ! grep -qi 'error' <<<"$got"
    report redis_benchmark $? "exit $rc" "$got"
fi

# SIGTERM, with an idle client connected and another in the middle of a
# pipeline: what the server had received is answered to the end (12 KB on
# loopback: all of it is in the server's socket once the first reply is
# back), then exit status 0.
exec {busy}<>"/dev/tcp/127.0.0.1/$server_port"
(for i in $(seq 2000); do printf 'PING\r\n'; done) >&"$busy"
first=$(timeout 5 head -c 7 <&"$busy")
kill -TERM "$server_pid"
rest=$(timeout 20 cat <&"$busy" | grep -c PONG)
exec {busy}<&-
[ "$first" = "$(printf '+PONG\r')" ] && [ "$rest" -eq 1999 ]
report stop_answers_what_was_sent $? "first: $first" "then $rest of 1999 replies"
stop_server TERM
exec {other}<&-
[ "$server_status" -eq 0 ]
report sigterm_exits_0 $? "exit status $server_status" "$(tail -5 "$log")"
finish
