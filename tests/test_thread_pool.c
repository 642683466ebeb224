// SPDX-License-Identifier: MIT
/*
 * What only the thread pool promises (docs/threads.md): where weft_async
 * runs a task, how far weft_concurrent goes past max_threads, idle threads
 * exiting, deinit waiting for detached tasks, and the pool's own errors.
 * The contract every Io keeps is in the CONTRACT suites.
 */
#include "helpers.h"

#include <weft/weft.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

unsigned weft__thread_pool_threads(weft_thread_pool *tp);

#define HOUR (3600LL * 1000000000LL)

static weft_thread_pool *pool_start(unsigned max_threads)
{
    weft_thread_pool *tp;
    weft_thread_pool_options o = {.max_threads = max_threads};
    cr_assert_eq(weft_thread_pool_init(&tp, &o), 0);
    return tp;
}

static void record_thread(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx;
    *(pthread_t *)result = pthread_self();
}

struct gate {
    atomic_int started;
    weft_queue *q;
};

/* Counts itself in, then waits for an element (or a cancel). */
static void wait_at_gate(weft_io io, void *ctx, void *result)
{
    struct gate *g = *(struct gate **)ctx;
    atomic_fetch_add(&g->started, 1);
    int v;
    int rc = weft_queue_get(io, g->q, &v);
    if (result)
        *(int *)result = rc;
}

Test(thread_pool, async_runs_on_a_pool_thread_while_one_is_free, .timeout = 30)
{
    weft_thread_pool *tp = pool_start(2);
    weft_io io = weft_thread_pool_io(tp);
    pthread_t t;
    weft_await(io, weft_async(io, record_thread, NULL, 0, sizeof t), &t);
    cr_assert_not(pthread_equal(t, pthread_self()));
    weft_thread_pool_deinit(tp);
}

Test(thread_pool, async_runs_inline_when_every_thread_is_busy, .timeout = 30)
{
    weft_thread_pool *tp = pool_start(1);
    weft_io io = weft_thread_pool_io(tp);
    struct gate g = {0, NULL}, *gp = &g;
    cr_assert_eq(weft_queue_create(&g.q, sizeof(int), 1), 0);
    weft_future *busy = weft_async(io, wait_at_gate, &gp, sizeof gp, sizeof(int));
    while (atomic_load(&g.started) == 0)
        sched_yield();
    pthread_t t;
    weft_future *f = weft_async(io, record_thread, NULL, 0, sizeof t);
    weft_await(io, f, &t);
    cr_assert(pthread_equal(t, pthread_self()), "ran on another thread with max_threads busy");
    int rc = -1;
    weft_cancel(io, busy, &rc);
    cr_assert_eq(rc, -ECANCELED);
    weft_queue_destroy(g.q);
    weft_thread_pool_deinit(tp);
}

Test(thread_pool, concurrent_goes_past_max_threads, .timeout = 30)
{
    enum { N = 8 };
    weft_thread_pool *tp = pool_start(1);
    weft_io io = weft_thread_pool_io(tp);
    struct gate g = {0, NULL}, *gp = &g;
    cr_assert_eq(weft_queue_create(&g.q, sizeof(int), 0), 0);
    weft_future *f[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(weft_concurrent(io, &f[i], wait_at_gate, &gp, sizeof gp, sizeof(int)), 0);
    while (atomic_load(&g.started) < N)
        sched_yield(); /* all N wait at once: each has a thread */
    cr_assert_geq(weft__thread_pool_threads(tp), (unsigned)N);
    weft_queue_close(io, g.q);
    for (int i = 0; i < N; i++) {
        int rc = 0;
        weft_await(io, f[i], &rc);
        cr_assert_eq(rc, -EPIPE);
    }
    weft_queue_destroy(g.q);
    weft_thread_pool_deinit(tp);
}

Test(thread_pool, idle_threads_exit, .timeout = 30)
{
    setenv("WEFT_THREAD_POOL_IDLE_MS", "20", 1);
    weft_thread_pool *tp = pool_start(4);
    unsetenv("WEFT_THREAD_POOL_IDLE_MS");
    weft_io io = weft_thread_pool_io(tp);
    weft_future *f[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(weft_concurrent(io, &f[i], record_thread, NULL, 0, sizeof(pthread_t)), 0);
    for (int i = 0; i < 4; i++)
        weft_await(io, f[i], NULL);
    cr_assert_gt(weft__thread_pool_threads(tp), 0u);
    /* Bounded by the test's timeout: the threads leave by themselves. */
    while (weft__thread_pool_threads(tp) != 0)
        sched_yield();
    /* And the pool starts new ones when it needs them again. */
    pthread_t t;
    weft_await(io, weft_async(io, record_thread, NULL, 0, sizeof t), &t);
    cr_assert_not(pthread_equal(t, pthread_self()));
    weft_thread_pool_deinit(tp);
}

static atomic_int detached_done;

static void slow_detached(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_sleep(io, 20 * 1000000LL);
    atomic_fetch_add(&detached_done, 1);
}

Test(thread_pool, deinit_waits_for_detached_tasks, .timeout = 30)
{
    atomic_store(&detached_done, 0);
    weft_thread_pool *tp = pool_start(8);
    weft_io io = weft_thread_pool_io(tp);
    for (int i = 0; i < 8; i++)
        weft_async_detached(io, slow_detached, NULL, 0);
    weft_thread_pool_deinit(tp);
    cr_assert_eq(atomic_load(&detached_done), 8);
}

/* A thread that is not the pool's calls through its Io: its own deadline,
   never canceled. */
Test(thread_pool, a_plain_thread_has_its_own_deadline, .timeout = 30)
{
    weft_thread_pool *tp = pool_start(1);
    weft_io io = weft_thread_pool_io(tp);
    cr_assert_not(weft_cancel_requested(io));
    int64_t now;
    weft_now(io, CLOCK_MONOTONIC, &now);
    weft_deadline_set(io, now + 10 * 1000000LL);
    cr_assert_eq(weft_sleep(io, HOUR), -ETIMEDOUT);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert_eq(weft_deadline(io), WEFT_NO_DEADLINE);
    weft_thread_pool_deinit(tp);
}

Test(thread_pool, init_checks_its_arguments, .timeout = 30)
{
    cr_assert_eq(weft_thread_pool_init(NULL, NULL), -EINVAL);
    weft_thread_pool *tp;
    cr_assert_eq(weft_thread_pool_init(&tp, NULL), 0); /* NULL options: defaults */
    weft_thread_pool_deinit(tp);
}

static weft_thread_pool *self_tp;

static void deinit_own_pool(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
    weft_thread_pool_deinit(self_tp);
}

static void deinit_from_task_child(void *arg)
{
    (void)arg;
    self_tp = pool_start(1);
    weft_io io = weft_thread_pool_io(self_tp);
    weft_future *f;
    weft_concurrent(io, &f, deinit_own_pool, NULL, 0, 0);
    weft_await(io, f, NULL);
}

Test(thread_pool, deinit_from_one_of_its_tasks_aborts_with_a_message, .timeout = 30)
{
    char out[4096];
    SKIP_THREADS_AFTER_FORK_UNDER_QEMU();
    int st = test_run_child(deinit_from_task_child, NULL, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x, stderr: %s", st, out);
    cr_assert(strstr(out, "weft_thread_pool_deinit"), "stderr: %s", out);
}

static void sleeper(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_sleep(io, 60 * 1000000000LL);
}

static void other_io_child(void *arg)
{
    (void)arg;
    weft_thread_pool *tp;
    if (weft_thread_pool_init(&tp, NULL) != 0)
        _exit(3);
    weft_io io = weft_thread_pool_io(tp);
    weft_group g = WEFT_GROUP_INIT;
    if (weft_group_concurrent(io, &g, sleeper, NULL, 0) != 0)
        _exit(4);
    weft_group_cancel(weft_blocking_io(), &g); /* the wrong Io: aborts */
    _exit(0);
}

/* A group of pool tasks canceled through another Io is a programming
   error, said and stopped: its members are not that Io's tasks. */
Test(thread_pool, a_pool_group_through_another_io_aborts_with_a_message, .timeout = 30)
{
    char out[1024];
    SKIP_THREADS_AFTER_FORK_UNDER_QEMU();
    int st = test_run_child(other_io_child, NULL, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x: %s", st, out);
    cr_assert(strstr(out, "members on a thread pool") != NULL, "%s", out);
}

static void nothing(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
}

/* Threads that time out of the idle list while tasks are being handed to
   them: a thread taken off the list for a task waits for it, and never
   leaves with it (the task was lost, and the thread's memory written to
   after it was freed). */
Test(thread_pool, a_thread_leaving_the_idle_list_never_loses_a_task, .timeout = 60)
{
    setenv("WEFT_THREAD_POOL_IDLE_MS", "1", 1);
    weft_thread_pool *tp = pool_start(4);
    weft_io io = weft_thread_pool_io(tp);
    size_t rounds = test_scaled(2000);
    for (size_t r = 0; r < rounds; r++) {
        weft_future *f[4];
        for (int i = 0; i < 4; i++)
            cr_assert_eq(weft_concurrent(io, &f[i], nothing, NULL, 0, 0), 0);
        for (int i = 0; i < 4; i++)
            weft_await(io, f[i], NULL);
        if (r % 16 == 0)
            sched_yield(); /* let some of them time out */
    }
    weft_thread_pool_deinit(tp);
}
