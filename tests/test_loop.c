// SPDX-License-Identifier: MIT
/*
 * What only the event loop promises: its options, its deinit report, the
 * old-kernel paths, and cancellation across workers' rings.
 */
#include "contract.h"

#include "sched/sched.h"

#include <weft/weft.h>

#include <pthread.h>
#include <stdatomic.h>

#define HOUR (3600LL * 1000000000LL)

static weft_event_loop *start(unsigned threads)
{
    return test_loop_start(threads);
}

Test(event_loop, init_rejects_bad_options)
{
    weft_event_loop_deinit(start(1)); /* skips where io_uring is missing */
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 100000};
    cr_assert_eq(weft_event_loop_init(&el, &o), -EINVAL);
    cr_assert_eq(weft_event_loop_init(NULL, NULL), -EINVAL);
    o = (weft_event_loop_options){.stack_size = (size_t)1 << 62};
    cr_assert_eq(weft_event_loop_init(&el, &o), -EINVAL);
}

Test(event_loop, init_twice_on_one_thread_is_busy, .timeout = 30)
{
    weft_event_loop *el = start(2), *el2;
    cr_assert_eq(weft_event_loop_init(&el2, NULL), -EBUSY);
    weft_event_loop_deinit(el);
    /* and the thread may start a loop again afterwards */
    el = start(1);
    weft_event_loop_deinit(el);
}

Test(event_loop, default_options_use_every_cpu, .timeout = 30)
{
    weft_event_loop_deinit(start(0));
}

/* ---- the deinit report --------------------------------------------------- */

void leaky_task(weft_io io, void *ctx, void *result);
void leaky_task(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
}

void stuck_task(weft_io io, void *ctx, void *result);
void stuck_task(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_sleep(io, HOUR);
}

static void leak_child(void *arg)
{
    weft_event_loop *el = start(2);
    weft_io io = weft_event_loop_io(el);
    weft_future *f = weft_async(io, arg ? stuck_task : leaky_task, NULL, 0, 0);
    weft_yield(io);
    (void)f;
    weft_event_loop_deinit(el);
    _exit(7);
}

Test(event_loop, deinit_names_a_future_never_released, .timeout = 30)
{
    weft_event_loop_deinit(start(1)); /* skips where io_uring is missing */
    char out[4096];
    int st = test_run_child(leak_child, NULL, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x: %s", st, out);
    cr_assert(strstr(out, "leaky_task"), "stderr: %s", out);
    cr_assert(strstr(out, "never awaited or canceled"), "stderr: %s", out);
}

Test(event_loop, deinit_aborts_when_an_unreleased_task_still_runs, .timeout = 30)
{
    weft_event_loop_deinit(start(1)); /* skips where io_uring is missing */
    char out[4096];
    int st = test_run_child(leak_child, (void *)1, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x: %s", st, out);
    cr_assert(strstr(out, "stuck_task"), "stderr: %s", out);
    cr_assert(strstr(out, "still running"), "stderr: %s", out);
}

/* ---- misuse --------------------------------------------------------------- */

static void *foreign_thread(void *arg)
{
    weft_io io = *(weft_io *)arg;
    weft_future *f = weft_async(io, leaky_task, NULL, 0, 0);
    return f;
}

static void foreign_child(void *arg)
{
    (void)arg;
    weft_event_loop *el = start(1);
    weft_io io = weft_event_loop_io(el);
    pthread_t t;
    pthread_create(&t, NULL, foreign_thread, &io);
    pthread_join(t, NULL);
    _exit(0);
}

Test(event_loop, a_foreign_thread_using_the_loop_aborts_with_a_message, .timeout = 30)
{
    weft_event_loop_deinit(start(1)); /* skips where io_uring is missing */
    char out[4096];
    int st = test_run_child(foreign_child, NULL, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x: %s", st, out);
    cr_assert(strstr(out, "not one of the event loop's workers"), "stderr: %s", out);
}

static void deinit_from_task(weft_io io, void *ctx, void *result)
{
    (void)io, (void)result;
    weft_event_loop_deinit(*(weft_event_loop **)ctx);
}

static void deinit_task_child(void *arg)
{
    (void)arg;
    weft_event_loop *el = start(1);
    weft_io io = weft_event_loop_io(el);
    weft_await(io, weft_async(io, deinit_from_task, &el, sizeof el, 0), NULL);
    _exit(0);
}

Test(event_loop, deinit_outside_the_main_task_aborts_with_a_message, .timeout = 30)
{
    weft_event_loop_deinit(start(1)); /* skips where io_uring is missing */
    char out[4096];
    int st = test_run_child(deinit_task_child, NULL, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x: %s", st, out);
    cr_assert(strstr(out, "main task"), "stderr: %s", out);
}

/* ---- cancellation across rings -------------------------------------------- */

struct placed {
    atomic_int worker; /* -1 until the sleeper sleeps */
    int result;
};

/* Yields until it runs on a worker other than 0, then sleeps there. */
static void sleep_off_worker0(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct placed *p = *(struct placed **)ctx;
    while (weft__worker_current()->index == 0)
        weft_yield(io);
    atomic_store(&p->worker, (int)weft__worker_current()->index);
    p->result = weft_sleep(io, HOUR);
}

static void cancel_remote(void)
{
    weft_event_loop *el = start(2);
    weft_io io = weft_event_loop_io(el);
    struct placed p = {-1, 0};
    struct placed *pp = &p;
    weft_future *f = weft_async(io, sleep_off_worker0, &pp, sizeof pp, 0);
    /* The sleeper yields on worker 0 until worker 1, woken by its yields,
       steals it. */
    while (atomic_load(&p.worker) < 0)
        weft_sleep(io, 10000);
    /* The main task is pinned to worker 0: this cancel crosses rings. */
    cr_assert_eq(weft__worker_current()->index, 0);
    weft_cancel(io, f, NULL);
    cr_assert_eq(p.result, -ECANCELED);
    weft_event_loop_deinit(el);
}

Test(event_loop, cancel_reaches_a_sleep_on_another_workers_ring, .timeout = 60)
{
    cancel_remote();
}

Test(event_loop, old_kernel_paths_eventfd_wakeups_and_mailed_cancels, .timeout = 60)
{
    setenv("WEFT_URING_COMPAT", "1", 1);
    cancel_remote();
    weft_event_loop *el = start(4);
    weft_io io = weft_event_loop_io(el);
    int64_t a, b;
    weft_now(io, CLOCK_MONOTONIC, &a);
    cr_assert_eq(weft_sleep(io, 1000000), 0);
    weft_now(io, CLOCK_MONOTONIC, &b);
    cr_assert_geq(b - a, 1000000);
    weft_event_loop_deinit(el);
    unsetenv("WEFT_URING_COMPAT");
}

static void pinned_main_probe(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_sleep(io, 100000);
}

Test(event_loop, the_main_task_stays_on_the_thread_that_started_the_loop, .timeout = 60)
{
    weft_event_loop *el = start(4);
    weft_io io = weft_event_loop_io(el);
    pthread_t self = pthread_self();
    for (int i = 0; i < 200; i++) {
        weft_future *f = weft_async(io, pinned_main_probe, NULL, 0, 0);
        weft_yield(io);
        weft_await(io, f, NULL);
        cr_assert(pthread_equal(pthread_self(), self));
    }
    weft_event_loop_deinit(el);
}
