# Turns "<runtime> <bench> <median> <unit>" lines into one markdown table per
# benchmark, each row with its ratio to weft on every CPU (weft on 1 worker
# for yield, which runs on one thread everywhere).  Lines that are not
# results ("skipped: ...", "<peer> failed ...") are listed under the tables.
function label(r, b) {
    if (r == "pthread" && b == "yield") return "pthread sched_yield (2 threads, 1 CPU)"
    if (r == "weft_1") return "weft, 1 worker"
    if (r == "weft_all") return "weft, " cpus " workers"
    if (r == "pthread") return "pthread create/join"
    if (r == "boost_fiber") return "Boost.Fiber"
    if (r == "go") return "Go"
    if (r == "tokio") return "Tokio"
    return r
}
function title(b) {
    if (b == "spawn_await") return "Spawn + await of an empty task (per task, sequential)"
    if (b == "skynet") return "Skynet: 1,000,000 tasks in a 10-ary tree (per run)"
    if (b == "yield") return "Yield between two tasks on one thread (per yield)"
    return b
}
NF == 4 && $3 ~ /^[0-9.]+$/ {
    key = $2 SUBSEP $1
    val[key] = $3; unit[$2] = $4
    if (!(($2) in seen)) { seen[$2] = 1; order[nb++] = $2 }
    if (!(($2 SUBSEP $1) in has)) { has[$2 SUBSEP $1] = 1; rows[$2] = rows[$2] " " $1 }
    next
}
NF == 3 && $3 == "n/a" { next }
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
            printf "| %s | %s %s | %s |\n", label(r, b), v, unit[b], ratio
        }
        printf "\n"
    }
    for (i = 0; i < nn; i++) printf "%s\n", notes[i]
    if (nn) printf "\n"
}
