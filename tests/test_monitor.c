// SPDX-License-Identifier: MIT
/*
 * Seeing inside a loop: weft_event_loop_stats, task names, the stall
 * warning and WEFT_SCHEDTRACE.
 */
#include "contract.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

static void yielder(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_yield(io);
    weft_sleep(io, 1000);
}

Test(monitor, stats_count_what_the_loop_did, .timeout = 60)
{
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    weft_loop_stats before;
    cr_assert_eq(weft_event_loop_stats(el, &before, NULL, 0, false), 2);
    enum { N = 1000 };
    static weft_future *f[N];
    for (int i = 0; i < N; i++)
        f[i] = weft_async(io, yielder, NULL, 0, 0);
    for (int i = 0; i < N; i++)
        weft_await(io, f[i], NULL);
    /* Some I/O on the ring. */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char c = 'x';
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(weft_send(io, sv[0], &c, 1, 0), 1);
        cr_assert_eq(weft_recv(io, sv[1], &c, 1, 0), 1);
    }
    weft_loop_stats st;
    weft_worker_stats per[4];
    memset(per, 0xff, sizeof per);
    cr_assert_eq(weft_event_loop_stats(el, &st, per, 4, true), 2);
    cr_assert_eq(st.workers, 2);
    cr_assert_geq(st.total.spawned - before.total.spawned, N);
    cr_assert_geq(st.total.finished - before.total.finished, N);
    cr_assert_eq(st.live_tasks, 0, "every task awaited");
    /* Each task was switched to at least three times: start, yield, sleep. */
    cr_assert_geq(st.total.runs - before.total.runs, 3 * N);
    cr_assert_geq(st.total.ops - before.total.ops, N + 20, "sleeps and the socket ops");
    cr_assert_geq(st.total.cqes - before.total.cqes, N);
    cr_assert_eq(per[0].runs + per[1].runs, st.total.runs, "the total is the workers' sum");
    cr_assert_eq(per[2].runs, UINT64_MAX, "nothing written past the workers");
    cr_assert_gt(st.stacks_mapped, 0);
    cr_assert_gt(st.stacks_rss_bytes, 0);
    cr_assert(per[0].running, "worker 0 runs this, the main task");
    close(sv[0]);
    close(sv[1]);
    weft_event_loop_deinit(el);
}

static void named(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx;
    char *out = result;
    char buf[WEFT_TASK_NAME_MAX];
    cr_assert_eq(weft_task_name(buf, sizeof buf), 0, "a new task has no name");
    weft_task_set_name("worker-of-the-month");
    weft_yield(io);
    weft_task_name(out, 64);
}

Test(monitor, task_names, .timeout = 30)
{
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    char got[64];
    weft_future *f = weft_async(io, named, NULL, 0, sizeof got);
    weft_await(io, f, got);
    cr_assert_str_eq(got, "worker-of-the-month");

    char buf[8];
    weft_task_set_name("a name longer than thirty-one bytes, cut");
    cr_assert_eq(weft_task_name(NULL, 0), WEFT_TASK_NAME_MAX - 1);
    cr_assert_eq(weft_task_name(buf, sizeof buf), WEFT_TASK_NAME_MAX - 1);
    cr_assert_str_eq(buf, "a name ", "a bounded copy");
    weft_task_set_name(NULL);
    cr_assert_eq(weft_task_name(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    /* A newline in a name would forge a line of a warning. */
    weft_task_set_name("a\nweft: stall:\t\x7f");
    char all[WEFT_TASK_NAME_MAX];
    weft_task_name(all, sizeof all);
    cr_assert_str_eq(all, "a?weft: stall:??");
    weft_task_set_name(NULL);
    weft_event_loop_deinit(el);
}

Test(monitor, a_thread_outside_a_loop_has_a_name_too)
{
    char buf[WEFT_TASK_NAME_MAX];
    weft_task_set_name("plain thread");
    cr_assert_eq(weft_task_name(buf, sizeof buf), 12);
    cr_assert_str_eq(buf, "plain thread");
}

static void hog(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
    weft_task_set_name("the-hog");
    for (;;)
        __asm__ volatile("" ::: "memory"); /* computes, never switches, until killed */
}

/* In a forked child: a loop of 2 workers, with the environment as the
   caller set it; where io_uring is missing, says "skip:" and exits. */
static weft_event_loop *child_loop(void)
{
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 2};
    if (weft_event_loop_init(&el, &o) != 0) {
        fprintf(stderr, "skip: io_uring is not available here\n");
        _exit(0);
    }
    return el;
}

/* In a forked child, with stall warnings at 30 ms: a loop running the
   task function arg, until the parent has seen the warning and kills it. */
static void stall_child(void *arg)
{
    weft_task_fn *fn = *(weft_task_fn **)arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    setenv("WEFT_STALL_MS", "30", 1);
    weft_event_loop *el = child_loop();
    weft_io io = weft_event_loop_io(el);
    weft_future *f;
    if (weft_concurrent(io, &f, fn, NULL, 0, 0) != 0)
        _exit(4);
    weft_await(io, f, NULL);
    _exit(5);
}

/* Runs stall_child with fn until its output holds `until`, into out;
   skips the test where the child could not start a loop. */
static void stall_output(weft_task_fn *fn, const char *until, char *out, size_t len)
{
    test_run_child_until(stall_child, &fn, out, len, until);
    if (strstr(out, "skip:"))
        cr_skip_test("%s", out);
}

Test(monitor, a_task_that_never_switches_is_named_in_a_warning, .timeout = 30)
{
    char out[4096];
    stall_output(hog, "weft: stall:", out, sizeof out);
    cr_assert(strstr(out, "weft: stall: loop 1, worker ") != NULL, "%s", out);
    cr_assert(strstr(out, "(the-hog)") != NULL, "names the task: %s", out);
    cr_assert(strstr(out, "without a switch") != NULL, "%s", out);
}

static void sleeper_in_the_kernel(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
    weft_task_set_name("the-sleeper");
    for (;;)
        pause(); /* a plain system call, not through the Io: until killed */
}

/* A task blocked in a plain system call uses no CPU: the monitor tells it
   from a thread the machine did not run by the thread's state in /proc. */
Test(monitor, a_task_blocked_in_a_plain_system_call_is_named_in_a_warning, .timeout = 30)
{
    char out[4096];
    stall_output(sleeper_in_the_kernel, "system call", out, sizeof out);
    cr_assert(strstr(out, "(the-sleeper)") != NULL, "names the task: %s", out);
    cr_assert(strstr(out, "blocked in a system call") != NULL, "%s", out);
}

static void trace_child(void *arg)
{
    (void)arg;
    setenv("WEFT_SCHEDTRACE", "10", 1);
    weft_event_loop *el = child_loop();
    weft_io io = weft_event_loop_io(el);
    for (;;)
        weft_sleep(io, 1000000);
}

Test(monitor, schedtrace_prints_a_line_every_period, .timeout = 30)
{
    char out[8192];
    test_run_child_until(trace_child, NULL, out, sizeof out, "weft: schedtrace");
    if (strstr(out, "skip:"))
        cr_skip_test("%s", out);
    cr_assert(strstr(out, "weft: schedtrace loop 1 ") != NULL, "%s", out);
    cr_assert(strstr(out, "workers=2 ") != NULL, "%s", out);
    cr_assert(strstr(out, " ops=+") != NULL, "%s", out);
}

/* Computes for 150 ms, never switching. */
static void short_hog(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 150000000L);
}

static void quiet_child(void *arg)
{
    (void)arg;
    setenv("WEFT_STALL_MS", "0", 1);
    weft_event_loop *el = child_loop();
    weft_io io = weft_event_loop_io(el);
    weft_future *f;
    if (weft_concurrent(io, &f, short_hog, NULL, 0, 0) != 0)
        _exit(4);
    weft_await(io, f, NULL);
    weft_event_loop_deinit(el);
    fprintf(stderr, "done\n");
}

/* Periods so large that the monitor's time sums would wrap: taken as a
   day, said so, and no flood of lines. */
static void huge_child(void *arg)
{
    (void)arg;
    setenv("WEFT_SCHEDTRACE", "9223372036855", 1);
    setenv("WEFT_STALL_MS", "99999999999999999999", 1);
    weft_event_loop *el = child_loop();
    weft_io io = weft_event_loop_io(el);
    weft_sleep(io, 50000000);
    weft_event_loop_deinit(el);
    fprintf(stderr, "done\n");
}

Test(monitor, periods_over_a_day_are_a_day, .timeout = 30)
{
    char out[8192];
    int st = test_run_child(huge_child, NULL, out, sizeof out);
    if (strstr(out, "skip:"))
        cr_skip_test("%s", out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    cr_assert(strstr(out, "WEFT_SCHEDTRACE=9223372036855 is more than a day") != NULL, "%s", out);
    cr_assert(strstr(out, "WEFT_STALL_MS=99999999999999999999 is more than a day") != NULL, "%s",
              out);
    cr_assert(strstr(out, "schedtrace") == NULL, "%s", out);
    cr_assert(strstr(out, "done") != NULL, "%s", out);
}

Test(monitor, the_stall_warning_can_be_turned_off, .timeout = 30)
{
    char out[4096];
    int st = test_run_child(quiet_child, NULL, out, sizeof out);
    if (strstr(out, "skip:"))
        cr_skip_test("%s", out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    cr_assert(strstr(out, "stall") == NULL, "%s", out);
    cr_assert(strstr(out, "done") != NULL, "%s", out);
}
