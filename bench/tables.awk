# SPDX-License-Identifier: MIT
# Turns "<runtime> <bench> <median> <unit>" lines into one markdown table per
# benchmark, each row with its ratio to weft on every CPU (weft on 1 worker
# for yield, which runs on one thread everywhere).  Lines that are not
# results ("skipped: ...", "<peer> failed ...") are listed under the tables;
# a "<runtime> <bench> error: ..." line also marks that runtime's row.
#   -v only="mutex queue pingpong" tabulates just those benchmarks (and
#   leaves out error lines of the others); by default, every one.
function label(r, b) {
    if (r == "pthread" && b == "yield") return "pthread sched_yield (2 threads, 1 CPU)"
    if (r == "pthread" && b == "mutex") return "pthread_mutex, 8 threads"
    if (r == "pthread" && b == "queue") return "pthread mutex+condvar ring of 64, 4+4 threads"
    if (r == "pthread" && b == "pingpong") return "pthread mutex+condvar, 1 slot each, 2 threads"
    if (r == "boost_fiber" && b == "mutex") return "Boost.Fiber mutex"
    if (r == "boost_fiber" && b == "queue") return "Boost.Fiber buffered_channel(64): 63 slots"
    if (r == "boost_fiber" && b == "pingpong") return "Boost.Fiber buffered_channel(2): 1 slot each"
    if (r == "go" && b == "mutex") return "Go sync.Mutex"
    if (r == "go" && b == "queue") return "Go chan int64, 64 slots"
    if (r == "go" && b == "pingpong") return "Go chan int64, 1 slot each"
    if (r == "go_1" && b == "pingpong") return "Go chan int64, 1 slot each, GOMAXPROCS=1"
    if (r == "weft_1") return "weft, 1 worker"
    if (r == "weft_all") return "weft, " cpus " workers"
    if (r == "weft_pool") return "weft thread pool (max_threads " cpus ")"
    if (r == "pthread") return "pthread create/join"
    if (r == "boost_fiber") return "Boost.Fiber"
    if (r == "go") return "Go"
    if (r == "tokio") return "Tokio"
    return r
}
function title(b) {
    if (b == "spawn_await") return "Spawn + await of an empty task (per task, sequential)"
    if (b == "skynet") return "Skynet: 1,000,000 tasks in a 10-ary tree (per run)"
    if (b == "skynet_100k") return "Skynet: 100,000 tasks in a 10-ary tree (per run)"
    if (b == "yield") return "Yield between two tasks on one thread (per yield)"
    if (b == "mutex") return "Contended mutex: 8 tasks taking turns to add one to a counter (per lock+unlock)"
    if (b == "queue") return "Bounded queue of 64 int64s, 4 producers and 4 consumers (per element)"
    if (b == "pingpong") return "Ping-pong between two tasks through two one-slot queues (per round trip)"
    return b
}
function wanted(b) {
    return only == "" || index(" " only " ", " " b " ") > 0
}
NF == 4 && $3 ~ /^[0-9.]+$/ {
    if (!wanted($2)) next
    key = $2 SUBSEP $1
    val[key] = $3; unit[$2] = $4
    if (!(($2) in seen)) { seen[$2] = 1; order[nb++] = $2 }
    if (!(($2 SUBSEP $1) in has)) { has[$2 SUBSEP $1] = 1; rows[$2] = rows[$2] " " $1 }
    next
}
NF == 3 && $3 == "n/a" { next }
NF >= 3 && $3 == "error:" {
    if (!wanted($2)) next
    bad[$2 SUBSEP $1] = 1
}
{ notes[nn++] = $0 }
END {
    for (i = 0; i < nb; i++) {
        b = order[i]
        base = (b == "yield") ? "weft_1" : "weft_all"
        if (!((b SUBSEP base) in val)) base = "weft_1"
        printf "### %s\n\n| runtime | median | vs %s |\n|---|---:|---:|\n", title(b), label(base, b)
        n = split(rows[b], rs, " ")
        for (j = 1; j <= n; j++) {
            r = rs[j]; v = val[b SUBSEP r]
            ratio = (base_v = val[b SUBSEP base]) > 0 ? sprintf("%.2fx", v / base_v) : "-"
            mark = ((b SUBSEP r) in bad) ? " (WRONG RESULT, see below)" : ""
            printf "| %s%s | %s %s | %s |\n", label(r, b), mark, v, unit[b], ratio
        }
        printf "\n"
    }
    for (i = 0; i < nn; i++) printf "%s\n", notes[i]
    if (nn) printf "\n"
}
