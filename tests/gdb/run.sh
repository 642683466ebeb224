#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The gdb extension (gdb/weft.py), on tests/gdb/tasks.c: a loop whose tasks
# wait in weft_sleep, weft_queue_get, weft_mutex_lock and weft_recv, and
# one runnable.  gdb runs it to weft_gdb_tasks_ready() (every task is
# parked by then: the program waits for that, and gdb stops it there), with
# the extension auto-loaded as libweft.so's -gdb.py script; lists the tasks,
# prints their backtraces, writes a core with weft-gcore and lets the
# program finish.  Then the same from the core, with the extension loaded
# by `source`.
#   tests/gdb/run.sh BUILD_DIR
suite=gdb
. "$(dirname "$0")/../lib.sh"
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
script=$src/gdb/weft.py
prog=$build/tests/gdb/weft_gdb_tasks
if ! command -v gdb >/dev/null; then
    echo "gdb is not installed: skipped"
    finish
fi
if ! gdb -nx -batch -ex 'python import gdb.unwinder' >/dev/null 2>&1; then
    echo "this gdb has no Python: skipped"
    finish
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Standalone, the program finishes by itself (77: no io_uring here).
"$prog" >"$work/plain.log" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
    echo "no io_uring here: skipped"
    finish
fi
report program_runs_alone $((rc != 0)) "exit status $rc" "$(cat "$work/plain.log")"

# gdb's auto-load: <scripts-directory>/<the library's real path>-gdb.py, as
# installed under /usr/share/gdb/auto-load for /usr/lib/<triplet>/libweft.so.*.
lib=$(ls "$build"/libweft.so.*.*.* 2>/dev/null | head -1)
auto=$work/auto
mkdir -p "$auto$(dirname "$(realpath "$lib")")"
cp "$script" "$auto$(realpath "$lib")-gdb.py"

# The backtraces each task must show: the weft call it waits in, then its
# own function.
declare -A calls=([sleeper]=weft_sleep [consumer]=weft_queue_get [holder]=weft_queue_get
    [locker]=weft_mutex_lock [reader]=weft_recv)
names=(sleeper consumer holder locker reader)
bt_cmds=()
for n in "${names[@]}"; do bt_cmds+=(-ex "echo @@bt $n\\n" -ex "weft-bt $n"); done

# check_tasks LOG WHERE: the `info weft-tasks` table between "@@tasks" and
# the next "@@" marker.
check_tasks() {
    local log=$1 where=$2 table problems=() n row
    table=$(awk '/^@@tasks/ { on = 1; next } /^@@/ { on = 0 } on' "$log")
    for n in "${names[@]}"; do
        row=$(grep -E "^[0-9]+ +\"$n\" " <<<"$table")
        if ! grep -qE "\"$n\" +parked +[0-9-]+ +${calls[$n]} +0x[0-9a-f]+-0x[0-9a-f]+ +[0-9]+$" <<<"$row"; then
            problems+=("$n: not parked in ${calls[$n]} with a stack and its use: '$row'")
        fi
    done
    grep -qE '^0 +"main" +running on worker 0 +0 +thread ' <<<"$table" ||
        problems+=("the main task is not shown running on worker 0")
    grep -qE '^[0-9]+ +runnable +[0-9-]+ +\(not started\) ' <<<"$table" ||
        problems+=("the task never run (late) is not shown runnable and not started")
    [ "$(grep -cE '^[0-9]+ ' <<<"$table")" -eq 8 ] || problems+=("not 8 tasks")
    grep -qE '^[0-9]+ +parked +0 +weft_sleep ' <<<"$table" ||
        problems+=("the unnamed task is not shown parked in weft_sleep")
    report "info_weft_tasks_$where" ${#problems[@]} "${problems[@]}" "$table"
}

# check_bts LOG WHERE: each task's weft-bt holds its wait call and its own
# function, and not the thread's frame 0.
check_bts() {
    local log=$1 where=$2 problems=() n bt
    for n in "${names[@]}"; do
        bt=$(awk -v m="@@bt $n" '$0 == m { on = 1; next } /^@@/ { on = 0 } on' "$log")
        grep -qE "^#[0-9]+ .*\b${calls[$n]} \(" <<<"$bt" ||
            problems+=("$n: no ${calls[$n]} frame" "$bt")
        grep -qE "^#[0-9]+ .*\b$n \(" <<<"$bt" || problems+=("$n: no frame of $n" "$bt")
        grep -q "weft_gdb_tasks_ready" <<<"$bt" && problems+=("$n: shows the thread's own frame" "$bt")
    done
    report "weft_bt_$where" ${#problems[@]} "${problems[@]}"
}

# ---- a live process ------------------------------------------------------------
timeout 300 gdb -nx -batch \
    -iex "set auto-load scripts-directory $auto" -iex "set auto-load safe-path $auto" \
    -ex 'set pagination off' -ex 'set width 0' \
    -ex 'break weft_gdb_tasks_ready' -ex run \
    -ex 'echo @@autoload\n' -ex 'info auto-load python-scripts' \
    -ex 'echo @@tasks\n' -ex 'info weft-tasks' \
    "${bt_cmds[@]}" \
    -ex 'echo @@after\n' -ex 'bt 1' \
    -ex 'echo @@main\n' -ex 'weft-bt 0' \
    -ex 'echo @@twins\n' -ex 'weft-bt ""' \
    -ex 'echo @@task\n' -ex 'weft-task reader' \
    -ex "python f = gdb.selected_frame(); exec('while f is not None and f.name() != \"reader\": f = f.older()'); f.select()" \
    -ex frame -ex 'info locals' \
    -ex 'weft-task off' -ex 'bt 1' \
    -ex 'echo @@inmain\n' -ex finish -ex 'weft-bt sleeper' \
    -ex 'echo @@gcore\n' -ex "weft-gcore $work/core" \
    -ex 'echo @@continue\n' -ex continue \
    "$prog" >"$work/live.log" 2>&1
rc=$?
awk '/^@@autoload/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log" | grep -qE '^Yes +.*-gdb\.py' 
report autoloaded_with_libweft $? "gdb did not auto-load $auto$(realpath "$lib")-gdb.py" \
    "$(tail -30 "$work/live.log")"
check_tasks "$work/live.log" live
check_bts "$work/live.log" live
after=$(awk '/^@@after/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")
grep -q '^#0 .*weft_gdb_tasks_ready' <<<"$after"
report bt_is_the_threads_again $? "after weft-bt, bt shows:" "$after"
main=$(awk '/^@@main/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")
grep -q 'running on worker 0' <<<"$main" && grep -q '^#1 .* main (' <<<"$main"
report weft_bt_of_the_running_main_task $? "$main"
# Two tasks answer to the empty name (the unnamed one and the one never
# run): the command names both instead of picking one.
twins=$(awk '/^@@twins/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")
grep -qE '2 live tasks match : [0-9]+\.[0-9]+, [0-9]+\.[0-9]+; name one by LOOP\.ID' <<<"$twins"
report weft_bt_of_an_ambiguous_name_lists_the_tasks $? "$twins"
task=$(awk '/^@@task/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")
grep -q '^buf = ' <<<"$task" && grep -q '^#0 .*weft_gdb_tasks_ready' <<<"$task"
report weft_task_selects_its_frames $? "weft-task reader, select reader's frame, info locals," \
    "weft-task off, bt 1:" "$task"
# Stopped in main itself, where gdb stops unwinding unless told otherwise.
inmain=$(awk '/^@@inmain/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")
grep -qE '^#[0-9]+ .*\bweft_sleep \(' <<<"$inmain" && grep -qE '^#[0-9]+ .*\bsleeper \(' <<<"$inmain"
report weft_bt_when_stopped_in_main $? "$inmain"
grep -q 'exited normally' "$work/live.log"
report program_finishes_after_gdb_looked $? "gdb exit status $rc" "$(tail -20 "$work/live.log")"

# ---- the core ------------------------------------------------------------------------
if [ -s "$work/core" ]; then
    timeout 300 gdb -nx -batch -ex 'set pagination off' -ex 'set width 0' \
        -ex "source $script" \
        -ex 'echo @@tasks\n' -ex 'info weft-tasks' \
        "${bt_cmds[@]}" \
        -ex 'echo @@end\n' \
        "$prog" "$work/core" >"$work/core.log" 2>&1
    check_tasks "$work/core.log" core
    check_bts "$work/core.log" core
else
    report weft_gcore_wrote_a_core 1 "$(awk '/^@@gcore/ { on = 1; next } /^@@/ { on = 0 } on' "$work/live.log")"
fi

# ---- a core the kernel wrote, where the system lets one be written here --------
# (Optional: it needs `ulimit -c` and a core_pattern naming a plain file.)
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
mkdir -p "$work/kernel"
if [[ -n $pattern && $pattern != "|"* && $pattern != /* ]]; then
    # (The braces take the shell's own "Aborted (core dumped)".)
    { (cd "$work/kernel" && ulimit -c unlimited && exec "$prog" abort) >/dev/null 2>&1; } 2>/dev/null
fi
kcore=$(ls "$work"/kernel/core* 2>/dev/null | head -1)
if [ -n "$kcore" ]; then
    timeout 300 gdb -nx -batch -ex 'set pagination off' -ex 'set width 0' \
        -ex "source $script" \
        -ex 'echo @@tasks\n' -ex 'info weft-tasks' \
        "${bt_cmds[@]}" \
        -ex 'echo @@end\n' \
        "$prog" "$kcore" >"$work/kernel.log" 2>&1
    check_tasks "$work/kernel.log" kernel_core
    check_bts "$work/kernel.log" kernel_core
else
    echo "no core from the kernel here (core_pattern '$pattern', ulimit -c): its checks skipped"
fi
finish
