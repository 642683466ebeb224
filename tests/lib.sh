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
# A TCP port nobody listens on, below the ephemeral range.
free_port() {
    local lo p
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}
# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
    for _ in $(seq 200); do
        (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
