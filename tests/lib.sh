# SPDX-License-Identifier: MIT
# What the shell test scripts share.  Source it after setting `suite`:
#   suite=NAME; . tests/lib.sh
# then call `report CHECK STATUS [details...]` once per check and `finish`
# at the end, which prints "NAME: N passed, N failed" (the line
# scripts/test.sh reads) and exits non-zero if any check failed.
pass=0
fail=0
report() { # CHECK STATUS [details...]
    local name=$1 status=$2
    shift 2
    if [ "$status" -eq 0 ]; then
        echo "[PASS] $suite::$name"
        pass=$((pass + 1))
    else
        echo "[FAIL] $suite::$name"
        printf '    %s\n' "$@"
        fail=$((fail + 1))
    fi
}
finish() {
    echo "$suite: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
# start_server LOG COMMAND...: starts a server in the background (pid in
# $server_pid), its output to LOG, and waits -- for its line saying
# "listening on HOST:PORT", never for a fixed time -- 20 s at most.  Run
# servers with --port 0: the line gives the port the kernel chose, in
# $server_port.  Returns non-zero if the line never came.
start_server() {
    local log=$1 fifo line fd
    shift
    fifo=$(mktemp -u) && mkfifo "$fifo" || return 1
    "$@" >"$fifo" 2>&1 &
    server_pid=$!
    server_port=
    exec {fd}<"$fifo"
    rm -f "$fifo"
    while IFS= read -r -t 20 line <&"$fd"; do
        printf '%s\n' "$line" >>"$log"
        case $line in *"listening on "*) server_port=${line##*:}; break ;; esac
    done
    cat <&"$fd" >>"$log" &
    exec {fd}<&-
    [ -n "$server_port" ]
}
# stop_server [SIGNAL]: signals the server (TERM by default), waits for it
# and sets $server_status to its exit status.
stop_server() {
    kill -"${1:-TERM}" "$server_pid" 2>/dev/null
    wait "$server_pid"
    server_status=$?
}
