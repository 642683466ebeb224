#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every peer benchmark that bench/peers/build.sh built into OUTDIR and
# prints each result line prefixed with the peer's name:
#   <peer> <bench> <median> <unit>      e.g. "tokio spawn_await 812.4 ns"
# A peer that exits nonzero adds "<peer> failed (exit N)".  Always exits 0.
#   bench/peers/run.sh OUTDIR           (BENCH_SCALE=K shortens the runs)
set -u
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 0; }
out=$1
limit=()
command -v timeout >/dev/null 2>&1 && limit=(timeout 900)

for peer in pthread boost_fiber go tokio; do
    bin=$out/peer_$peer
    [ -x "$bin" ] || continue
    "${limit[@]}" "$bin" | while IFS= read -r line; do
        echo "$peer $line"
    done
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || echo "$peer failed (exit $rc)"
done
# Go's ping-pong again on one thread (GOMAXPROCS=1), beside weft's on one
# worker.
if [ -x "$out/peer_go" ]; then
    GOMAXPROCS=1 "${limit[@]}" "$out/peer_go" pingpong | while IFS= read -r line; do
        echo "go_1 $line"
    done
fi
exit 0
