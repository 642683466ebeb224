// SPDX-License-Identifier: MIT
/*
 * The contract suite's harness: each CONTRACT test is written once, as a
 * body taking a weft_io, and runs against the event loop with 1, 2 and 4
 * workers, the thread pool with 1, 4 and 64 threads, and the blocking Io.
 * A body that needs real concurrency calls NEEDS_CONCURRENCY first and is
 * skipped, with the reason, on the blocking Io; one that looks inside the
 * event loop's scheduler calls NEEDS_EVENT_LOOP.
 */
#ifndef WEFT_TESTS_CONTRACT_H
#define WEFT_TESTS_CONTRACT_H

#include "helpers.h"

#include <weft/weft.h>

struct impl {
    const char *name;
    unsigned threads; /* workers, or the pool's max_threads; 0: the blocking Io */
    bool pool;        /* the thread pool */
};

static const struct impl impl_el1 = {"event_loop/1", 1, false};
static const struct impl impl_el2 = {"event_loop/2", 2, false};
static const struct impl impl_el4 = {"event_loop/4", 4, false};
static const struct impl impl_tp1 = {"thread_pool/1", 1, true};
static const struct impl impl_tp4 = {"thread_pool/4", 4, true};
static const struct impl impl_tp64 = {"thread_pool/64", 64, true};
static const struct impl impl_blocking = {"blocking", 0, false};

typedef void contract_body(weft_io io, const struct impl *im);

/* A loop with `threads` workers, or the test is skipped where io_uring
   cannot be had (qemu-user, a kernel without it, io_uring_disabled). */
static inline weft_event_loop *test_loop_start(unsigned threads)
{
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = threads};
    int rc = weft_event_loop_init(&el, &o);
    if (rc == -ENOSYS || rc == -EPERM)
        cr_skip_test("io_uring is not available here (%s)", strerror(-rc));
    cr_assert_eq(rc, 0, "weft_event_loop_init: %s", strerror(-rc));
    return el;
}

/* Spins until every worker of el but worker 0 (which runs the caller) is
   parked, so that only a wake-up can start another; returns the loop's
   wake-ups from outside its workers at that moment. */
static inline uint64_t test_wait_others_parked(weft_event_loop *el)
{
    weft_loop_stats ls;
    weft_worker_stats per[16];
    for (;;) {
        unsigned n = weft_event_loop_stats(el, &ls, per, 16, false);
        bool all = true;
        for (unsigned i = 1; i < n && i < 16; i++)
            all = all && per[i].parked;
        if (all)
            return ls.foreign_wakeups;
    }
}

static inline void contract_run(const struct impl *im, contract_body *body)
{
    if (!im->threads) {
        body(weft_blocking_io(), im);
        return;
    }
    if (im->pool) {
        weft_thread_pool *tp;
        weft_thread_pool_options o = {.max_threads = im->threads};
        cr_assert_eq(weft_thread_pool_init(&tp, &o), 0);
        body(weft_thread_pool_io(tp), im);
        weft_thread_pool_deinit(tp);
        return;
    }
    weft_event_loop *el = test_loop_start(im->threads);
    body(weft_event_loop_io(el), im);
    weft_event_loop_deinit(el);
}

#define NEEDS_CONCURRENCY(im)                                                                      \
    do {                                                                                           \
        if (!(im)->threads)                                                                        \
            cr_skip_test("needs concurrency: the blocking Io runs every task inline");             \
    } while (0)

#define NEEDS_EVENT_LOOP(im)                                                                       \
    do {                                                                                           \
        if (!(im)->threads || (im)->pool)                                                          \
            cr_skip_test("looks inside the event loop's scheduler");                               \
    } while (0)

/* For bodies that need fn to run beside them (NEEDS_CONCURRENCY):
   weft_async may run fn inline, and the thread pool does once max_threads
   are busy, so these ask for concurrency and fail the test without it. */
static inline weft_future *test_spawn(weft_io io, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                                      size_t result_len)
{
    weft_future *f = NULL;
    int rc = weft_concurrent(io, &f, fn, ctx, ctx_len, result_len);
    cr_assert_eq(rc, 0, "weft_concurrent: %s", strerror(-rc));
    return f;
}

static inline void test_group_spawn(weft_io io, weft_group *g, weft_task_fn *fn, const void *ctx,
                                    size_t ctx_len)
{
    int rc = weft_group_concurrent(io, g, fn, ctx, ctx_len);
    cr_assert_eq(rc, 0, "weft_group_concurrent: %s", strerror(-rc));
}

/* One Criterion test of body `name` on implementation `im`, after `env`
   (a statement: setenv for the variants that need it). */
#define CONTRACT_ON(suite, variant, name, secs, im, env)                                           \
    Test(suite##_##variant, name, .timeout = secs)                                                 \
    {                                                                                              \
        env;                                                                                       \
        contract_run(&(im), name##_body);                                                          \
    }

#define CONTRACT(suite, name, secs)                                                                \
    static void name##_body(weft_io io, const struct impl *im);                                    \
    CONTRACT_ON(suite, event_loop_1, name, secs, impl_el1, (void)0)                                \
    CONTRACT_ON(suite, event_loop_2, name, secs, impl_el2, (void)0)                                \
    CONTRACT_ON(suite, event_loop_4, name, secs, impl_el4, (void)0)                                \
    CONTRACT_ON(suite, thread_pool_1, name, secs, impl_tp1, (void)0)                               \
    CONTRACT_ON(suite, thread_pool_4, name, secs, impl_tp4, (void)0)                               \
    CONTRACT_ON(suite, thread_pool_64, name, secs, impl_tp64, (void)0)                             \
    CONTRACT_ON(suite, blocking, name, secs, impl_blocking, (void)0)                               \
    static void name##_body(weft_io io, const struct impl *im)

#endif
