// SPDX-License-Identifier: MIT
/*
 * The task and time contract of weft_io (API.md, "Tasks and futures" and
 * "Time"), one test per sentence, run against every implementation.
 */
#include "contract.h"

#include <stdatomic.h>
#include <stdint.h>

#define HOUR (3600LL * 1000000000LL)

/* ---- tasks used below ---------------------------------------------------- */

static void add(weft_io io, void *ctx, void *result)
{
    (void)io;
    const int *a = ctx;
    *(int *)result = a[0] + a[1];
}

/* Sleeps an hour; its result is what the sleep returned. */
static void sleeper(weft_io io, void *ctx, void *result)
{
    atomic_int *started = *(atomic_int **)ctx;
    if (started)
        atomic_fetch_add(started, 1);
    *(int *)result = weft_sleep(io, HOUR);
}

struct flag_ctx {
    atomic_int *flag;
    int value;
};

static void set_flag(weft_io io, void *ctx, void *result)
{
    (void)io;
    struct flag_ctx *c = ctx;
    atomic_store(c->flag, c->value);
    if (result)
        *(int *)result = c->value;
}

/* Waits until a future's task has finished, without releasing it. */
static void wait_finished(weft_io io, weft_future *f)
{
    cr_assert_eq(weft_select(io, &f, 1), 0);
}

/* ---- async and await ------------------------------------------------------ */

CONTRACT(tasks, await_copies_the_result_out, 30)
{
    (void)im;
    int a[2] = {20, 22}, r = 0;
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof r);
    weft_await(io, f, &r);
    cr_assert_eq(r, 42);
}

CONTRACT(tasks, await_with_null_result_discards_it, 30)
{
    (void)im;
    int a[2] = {1, 2};
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof(int));
    weft_await(io, f, NULL);
}

CONTRACT(tasks, ctx_is_copied_so_the_caller_may_reuse_its_buffer, 30)
{
    (void)im;
    enum { N = 64 };
    weft_future *f[N];
    int a[2];
    for (int i = 0; i < N; i++) {
        a[0] = i;
        a[1] = 1000;
        f[i] = weft_async(io, add, a, sizeof a, sizeof(int));
        memset(a, 0xff, sizeof a); /* reused at once */
    }
    for (int i = 0; i < N; i++) {
        int r;
        weft_await(io, f[i], &r);
        cr_assert_eq(r, i + 1000, "task %d saw its ctx change", i);
    }
}

static void check_alignment(weft_io io, void *ctx, void *result)
{
    (void)io;
    *(int *)result = ((uintptr_t)ctx % 64 == 0) && ((uintptr_t)result % 64 == 0);
}

CONTRACT(tasks, ctx_and_result_are_64_byte_aligned, 30)
{
    (void)im;
    char c[3] = {1, 2, 3};
    int ok[16] = {0};
    weft_await(io, weft_async(io, check_alignment, c, sizeof c, sizeof ok), ok);
    cr_assert(ok[0]);
}

static void copy_big(weft_io io, void *ctx, void *result)
{
    (void)io;
    memcpy(result, ctx, WEFT_MAX_RESULT);
}

CONTRACT(tasks, max_sized_ctx_and_result_round_trip, 30)
{
    (void)im;
    static unsigned char in[WEFT_MAX_CTX], out[WEFT_MAX_RESULT];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    weft_await(io, weft_async(io, copy_big, in, sizeof in, sizeof out), out);
    cr_assert_arr_eq(in, out, sizeof out);
}

CONTRACT(tasks, await_of_a_finished_future_returns_its_result, 30)
{
    (void)im;
    int a[2] = {5, 6}, r = 0;
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof r);
    wait_finished(io, f);
    weft_await(io, f, &r);
    cr_assert_eq(r, 11);
}

CONTRACT(tasks, cancel_of_a_finished_future_is_await, 30)
{
    (void)im;
    int a[2] = {7, 8}, r = 0;
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof r);
    wait_finished(io, f);
    weft_cancel(io, f, &r);
    cr_assert_eq(r, 15);
}

struct tree_ctx {
    int depth;
};

static void tree(weft_io io, void *ctx, void *result)
{
    int depth = ((struct tree_ctx *)ctx)->depth;
    long sum = 1;
    if (depth > 0) {
        weft_future *f[4];
        struct tree_ctx c = {depth - 1};
        for (int i = 0; i < 4; i++)
            f[i] = weft_async(io, tree, &c, sizeof c, sizeof(long));
        for (int i = 0; i < 4; i++) {
            long r;
            weft_await(io, f[i], &r);
            sum += r;
        }
    }
    *(long *)result = sum;
}

CONTRACT(tasks, tasks_spawn_and_await_tasks, 60)
{
    (void)im;
    struct tree_ctx c = {6};
    long n = 0;
    weft_await(io, weft_async(io, tree, &c, sizeof c, sizeof n), &n);
    cr_assert_eq(n, (4 * 4 * 4 * 4 * 4 * 4 * 4 - 1) / 3); /* 1 + 4 + ... + 4^6 */
}

CONTRACT(tasks, yield_lets_other_tasks_run, 30)
{
    (void)im;
    atomic_int flag = 0;
    struct flag_ctx c = {&flag, 1};
    weft_future *f = weft_async(io, set_flag, &c, sizeof c, sizeof(int));
    while (!atomic_load(&flag))
        weft_yield(io);
    weft_await(io, f, NULL);
}

CONTRACT(tasks, concurrent_runs_tasks_or_says_it_cannot, 30)
{
    weft_future *f = NULL;
    int a[2] = {1, 1}, r = 0;
    int rc = weft_concurrent(io, &f, add, a, sizeof a, sizeof r);
    if (!im->threads) {
        cr_assert_eq(rc, -EOPNOTSUPP);
        return;
    }
    cr_assert_eq(rc, 0);
    weft_await(io, f, &r);
    cr_assert_eq(r, 2);
}

/* A concurrent task and its caller hand a value back and forth: each
   waits for the other, which only real concurrency can satisfy. */
struct rendezvous {
    atomic_int turn;
    int rounds;
};

static void rendezvous_peer(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct rendezvous *r = *(struct rendezvous **)ctx;
    for (int i = 0; i < r->rounds; i++) {
        while (atomic_load(&r->turn) != 2 * i + 1)
            weft_yield(io);
        atomic_store(&r->turn, 2 * i + 2);
    }
}

CONTRACT(tasks, concurrent_task_and_caller_make_progress_together, 60)
{
    NEEDS_CONCURRENCY(im);
    struct rendezvous r = {0, (int)test_scaled(10000)};
    struct rendezvous *p = &r;
    weft_future *f;
    cr_assert_eq(weft_concurrent(io, &f, rendezvous_peer, &p, sizeof p, 0), 0);
    for (int i = 0; i < r.rounds; i++) {
        atomic_store(&r.turn, 2 * i + 1);
        while (atomic_load(&r.turn) != 2 * i + 2)
            weft_yield(io);
    }
    weft_await(io, f, NULL);
}

/* ---- detached tasks -------------------------------------------------------- */

static void detached_work(weft_io io, void *ctx, void *result)
{
    atomic_int *done = *(atomic_int **)ctx;
    for (int i = 0; i < 3; i++)
        weft_yield(io);
    weft_sleep(io, 1000000);
    atomic_fetch_add(done, result == NULL ? 1 : 1000);
}

static atomic_int detached_done;

static void detached_body(weft_io io, const struct impl *im)
{
    (void)im;
    atomic_int *p = &detached_done;
    for (int i = 0; i < 100; i++)
        weft_async_detached(io, detached_work, &p, sizeof p);
}

#define DETACHED_TEST(suite, im)                                                                   \
    Test(suite, detached_tasks_finish_before_deinit_returns, .timeout = 30)                        \
    {                                                                                              \
        atomic_store(&detached_done, 0);                                                           \
        contract_run(&im, detached_body);                                                          \
        cr_assert_eq(atomic_load(&detached_done), 100, "%d", atomic_load(&detached_done));         \
    }
DETACHED_TEST(tasks_event_loop_1, impl_el1)
DETACHED_TEST(tasks_event_loop_2, impl_el2)
DETACHED_TEST(tasks_event_loop_4, impl_el4)
DETACHED_TEST(tasks_thread_pool_1, impl_tp1)
DETACHED_TEST(tasks_thread_pool_4, impl_tp4)
DETACHED_TEST(tasks_thread_pool_64, impl_tp64)
DETACHED_TEST(tasks_blocking, impl_blocking)

/* ---- select ---------------------------------------------------------------- */

CONTRACT(select, select_returns_the_index_of_a_finished_future, 30)
{
    NEEDS_CONCURRENCY(im);
    atomic_int *none = NULL;
    weft_future *f[3];
    f[0] = test_spawn(io, sleeper, &none, sizeof none, sizeof(int));
    int a[2] = {1, 2};
    f[1] = test_spawn(io, add, a, sizeof a, sizeof(int));
    f[2] = test_spawn(io, sleeper, &none, sizeof none, sizeof(int));
    cr_assert_eq(weft_select(io, f, 3), 1);
    int r;
    weft_await(io, f[1], &r);
    cr_assert_eq(r, 3);
    weft_cancel(io, f[0], &r);
    cr_assert_eq(r, -ECANCELED);
    weft_cancel(io, f[2], &r);
    cr_assert_eq(r, -ECANCELED);
}

CONTRACT(select, select_releases_nothing, 30)
{
    (void)im;
    int a[2] = {2, 2}, r = 0;
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof r);
    cr_assert_eq(weft_select(io, &f, 1), 0);
    cr_assert_eq(weft_select(io, &f, 1), 0);
    weft_await(io, f, &r);
    cr_assert_eq(r, 4);
}

CONTRACT(select, select_when_several_finished_returns_a_finished_one, 60)
{
    (void)im;
    enum { N = 8 };
    size_t rounds = test_scaled(2000);
    for (size_t round = 0; round < rounds; round++) {
        atomic_int flags[N];
        weft_future *f[N];
        for (int i = 0; i < N; i++) {
            atomic_init(&flags[i], 0);
            struct flag_ctx c = {&flags[i], 1};
            f[i] = weft_async(io, set_flag, &c, sizeof c, sizeof(int));
        }
        size_t i = weft_select(io, f, N);
        cr_assert_lt(i, (size_t)N);
        cr_assert_eq(atomic_load(&flags[i]), 1, "select returned %zu, which has not run", i);
        for (int j = 0; j < N; j++)
            weft_await(io, f[j], NULL);
    }
}

/* ---- cancel ---------------------------------------------------------------- */

CONTRACT(cancel, cancel_interrupts_a_sleep, 30)
{
    NEEDS_CONCURRENCY(im);
    atomic_int started = 0;
    atomic_int *p = &started;
    int r = 0;
    weft_future *f = test_spawn(io, sleeper, &p, sizeof p, sizeof r);
    while (!atomic_load(&started))
        weft_yield(io);
    weft_cancel(io, f, &r);
    cr_assert_eq(r, -ECANCELED);
}

CONTRACT(cancel, cancel_before_the_task_runs_stops_its_first_sleep, 30)
{
    NEEDS_CONCURRENCY(im);
    atomic_int *none = NULL;
    int r = 0;
    weft_future *f = test_spawn(io, sleeper, &none, sizeof none, sizeof r);
    weft_cancel(io, f, &r);
    cr_assert_eq(r, -ECANCELED);
}

CONTRACT(cancel, cancel_interrupts_sleeps_on_every_worker, 60)
{
    NEEDS_CONCURRENCY(im);
    enum { N = 64 };
    atomic_int started = 0;
    atomic_int *p = &started;
    weft_future *f[N];
    for (int i = 0; i < N; i++)
        f[i] = test_spawn(io, sleeper, &p, sizeof p, sizeof(int));
    while (atomic_load(&started) < N)
        weft_yield(io);
    for (int i = 0; i < N; i++) {
        int r = 0;
        weft_cancel(io, f[i], &r);
        cr_assert_eq(r, -ECANCELED, "sleeper %d: %d", i, r);
    }
}

struct observe {
    atomic_int started;
    int during, after;
};

static void observe_cancel(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct observe *o = *(struct observe **)ctx;
    o->during = weft_cancel_requested(io);
    atomic_store(&o->started, 1);
    int rc = weft_sleep(io, HOUR);
    o->after = weft_cancel_requested(io) && rc == -ECANCELED;
}

static void report_cancel_requested(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    *(int *)result = weft_cancel_requested(io);
}

CONTRACT(cancel, cancel_requested_is_true_only_inside_the_canceled_task, 30)
{
    NEEDS_CONCURRENCY(im);
    cr_assert_not(weft_cancel_requested(io));
    struct observe o = {0};
    struct observe *p = &o;
    weft_future *f = test_spawn(io, observe_cancel, &p, sizeof p, 0);
    while (!atomic_load(&o.started))
        weft_yield(io);
    int other = -1;
    weft_future *g = test_spawn(io, report_cancel_requested, NULL, 0, sizeof other);
    weft_cancel(io, f, NULL);
    weft_await(io, g, &other);
    cr_assert_not(o.during);
    cr_assert(o.after);
    cr_assert_eq(other, 0);
    cr_assert_not(weft_cancel_requested(io));
}

static void sleep_then_report(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    int a = weft_sleep(io, HOUR);
    int b = weft_sleep(io, 0);
    ((int *)result)[0] = a;
    ((int *)result)[1] = b;
}

CONTRACT(cancel, cancel_is_sticky_for_later_cancellation_points, 30)
{
    NEEDS_CONCURRENCY(im);
    int r[2] = {0, 0};
    weft_future *f = test_spawn(io, sleep_then_report, NULL, 0, sizeof r);
    weft_yield(io);
    weft_cancel(io, f, r);
    cr_assert_eq(r[0], -ECANCELED);
    cr_assert_eq(r[1], -ECANCELED);
}

/* ---- double release --------------------------------------------------------- */

static const struct impl *child_impl;
static int child_second; /* 0: await twice, 1: await then cancel */

static void double_release_body(weft_io io, const struct impl *im)
{
    (void)im;
    int a[2] = {1, 2};
    weft_future *f = weft_async(io, add, a, sizeof a, sizeof(int));
    weft_await(io, f, NULL);
    if (child_second)
        weft_cancel(io, f, NULL);
    else
        weft_await(io, f, NULL);
}

static void double_release_child(void *arg)
{
    (void)arg;
    contract_run(child_impl, double_release_body);
}

#define DOUBLE_RELEASE_TEST(suite, im)                                                             \
    Test(suite, a_second_release_aborts_with_a_message, .timeout = 30)                             \
    {                                                                                              \
        if ((im).threads && !(im).pool)                                                            \
            weft_event_loop_deinit(test_loop_start((im).threads));                                 \
        for (child_second = 0; child_second < 2; child_second++) {                                 \
            char out[4096];                                                                        \
            child_impl = &im;                                                                      \
            if (im.pool)                                                                           \
                SKIP_THREADS_AFTER_FORK_UNDER_QEMU();                                              \
            int st = test_run_child(double_release_child, NULL, out, sizeof out);                  \
            cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x, stderr: %s", st,    \
                      out);                                                                        \
            cr_assert(strstr(out, "already released"), "stderr: %s", out);                         \
        }                                                                                          \
    }
DOUBLE_RELEASE_TEST(tasks_event_loop_1, impl_el1)
DOUBLE_RELEASE_TEST(tasks_event_loop_2, impl_el2)
DOUBLE_RELEASE_TEST(tasks_event_loop_4, impl_el4)
DOUBLE_RELEASE_TEST(tasks_thread_pool_1, impl_tp1)
DOUBLE_RELEASE_TEST(tasks_thread_pool_4, impl_tp4)
DOUBLE_RELEASE_TEST(tasks_thread_pool_64, impl_tp64)
DOUBLE_RELEASE_TEST(tasks_blocking, impl_blocking)

/* ---- time ------------------------------------------------------------------- */

CONTRACT(time, now_reads_the_clocks_and_rejects_bad_ones, 30)
{
    (void)im;
    int64_t a, b;
    cr_assert_eq(weft_now(io, CLOCK_MONOTONIC, &a), 0);
    cr_assert_eq(weft_now(io, CLOCK_MONOTONIC, &b), 0);
    cr_assert_geq(b, a);
    cr_assert_eq(weft_now(io, CLOCK_REALTIME, &a), 0);
    cr_assert_gt(a, 1600000000LL * 1000000000LL);
    errno = 1234;
    cr_assert_eq(weft_now(io, (clockid_t)12345, &a), -EINVAL);
    cr_assert_eq(errno, 1234, "weft_now changed errno");
}

CONTRACT(time, sleep_waits_at_least_its_duration, 30)
{
    (void)im;
    int64_t a, b;
    weft_now(io, CLOCK_MONOTONIC, &a);
    cr_assert_eq(weft_sleep(io, 2000000), 0);
    weft_now(io, CLOCK_MONOTONIC, &b);
    cr_assert_geq(b - a, 2000000);
}

CONTRACT(time, sleep_until_takes_each_supported_clock, 30)
{
    (void)im;
    clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        int64_t now, after;
        weft_now(io, clocks[i], &now);
        cr_assert_eq(weft_sleep_until(io, clocks[i], now + 1000000), 0);
        weft_now(io, clocks[i], &after);
        cr_assert_geq(after, now + 1000000);
    }
    cr_assert_eq(weft_sleep_until(io, CLOCK_PROCESS_CPUTIME_ID, 0), -EINVAL);
}

CONTRACT(time, sleep_until_a_past_deadline_returns_at_once, 30)
{
    (void)im;
    cr_assert_eq(weft_sleep_until(io, CLOCK_MONOTONIC, 0), 0);
    cr_assert_eq(weft_sleep(io, 0), 0);
    cr_assert_eq(weft_sleep(io, -5), 0);
}

static void timed_sleeper(weft_io io, void *ctx, void *result)
{
    int64_t ns = *(int64_t *)ctx;
    *(int *)result = weft_sleep(io, ns);
}

CONTRACT(time, many_sleepers_all_wake, 60)
{
    (void)im;
    enum { N = 200 };
    weft_future *f[N];
    for (int i = 0; i < N; i++) {
        int64_t ns = (int64_t)(i % 10) * 100000;
        f[i] = weft_async(io, timed_sleeper, &ns, sizeof ns, sizeof(int));
    }
    for (int i = 0; i < N; i++) {
        int r = -1;
        weft_await(io, f[i], &r);
        cr_assert_eq(r, 0);
    }
}
