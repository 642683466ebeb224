// SPDX-License-Identifier: MIT
/*
 * The event loop's weft_io: the vtable over src/sched and src/uring.
 */
#include "../sched/sched.h"

#include <weft/weft.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int weft__uring_sleep_until(clockid_t clock, int64_t deadline_ns);
int64_t weft__uring_operate(weft__sched *s, weft_op *op);

struct weft_event_loop {
    weft__sched s;
};

static weft__sched *S(void *ud)
{
    return &((struct weft_event_loop *)ud)->s;
}

static weft_future *el_async(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                             size_t result_len)
{
    int err;
    weft__task *t = weft__task_spawn(S(ud), fn, ctx, ctx_len, result_len, 0, &err);
    if (!t)
        t = weft__task_inline(S(ud), fn, ctx, ctx_len, result_len, 0);
    return (weft_future *)t;
}

static int el_concurrent(void *ud, weft_future **out, weft_task_fn *fn, const void *ctx,
                         size_t ctx_len, size_t result_len)
{
    int err = 0;
    weft__task *t = weft__task_spawn(S(ud), fn, ctx, ctx_len, result_len, 0, &err);
    *out = (weft_future *)t;
    return t ? 0 : err;
}

static void el_async_detached(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len)
{
    int err;
    if (!weft__task_spawn(S(ud), fn, ctx, ctx_len, 0, WEFT__TASK_DETACHED, &err))
        weft__task_inline(S(ud), fn, ctx, ctx_len, 0, WEFT__TASK_DETACHED);
}

static void el_await(void *ud, weft_future *f, void *result)
{
    weft__task_await(S(ud), (weft__task *)f, result, "weft_await");
}

static void el_cancel(void *ud, weft_future *f, void *result)
{
    weft__task *t = (weft__task *)f;
    uint64_t m = atomic_load_explicit(&t->magic, memory_order_relaxed);
    if (m == WEFT__TASK_LIVE)
        weft__task_request_cancel(t);
    weft__task_await(S(ud), t, result, "weft_cancel");
}

static size_t el_select(void *ud, weft_future *const *futures, size_t n)
{
    return weft__task_select(S(ud), (weft__task *const *)futures, n);
}

static bool el_cancel_requested(void *ud)
{
    (void)ud;
    weft__task *t = weft__worker_current() ? weft__task_current() : NULL;
    return t && weft__cancel_is_requested(t);
}

static void reschedule(weft__worker *w, weft__task *prev, void *arg)
{
    (void)arg;
    /* The back of the line: behind what is already queued. */
    weft__sched_requeue(w, prev);
}

static void el_yield(void *ud)
{
    (void)ud;
    weft__worker *w = weft__worker_current();
    weft__task *self = w ? weft__task_current() : NULL;
    if (!self) {
        fprintf(stderr, "weft: weft_yield: called outside the event loop's tasks\n");
        abort();
    }
    weft__sched_block_as(w, self, reschedule, NULL);
}

int weft__clock_now(clockid_t clock, int64_t *ns);

static int el_now(void *ud, clockid_t clock, int64_t *ns)
{
    (void)ud;
    return weft__clock_now(clock, ns);
}

static int el_sleep_until(void *ud, clockid_t clock, int64_t deadline_ns)
{
    (void)ud;
    return weft__uring_sleep_until(clock, deadline_ns);
}

static int el_wait(void *ud, weft_waiter *w)
{
    (void)ud;
    return weft__task_wait(w);
}

static void el_group_async(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                           size_t ctx_len)
{
    weft__group_add(S(ud), g, fn, ctx, ctx_len, true);
}

static int el_group_concurrent(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                               size_t ctx_len)
{
    return weft__group_add(S(ud), g, fn, ctx, ctx_len, false);
}

static void el_group_wait(void *ud, weft_group *g)
{
    weft__group_wait(S(ud)->io, g);
}

static void el_group_cancel(void *ud, weft_group *g)
{
    weft__group_cancel(S(ud)->io, g);
}

static int64_t el_operate(void *ud, weft_op *op)
{
    return weft__uring_operate(S(ud), op);
}

static weft__task *deadline_task(void *ud, const char *who)
{
    weft__worker *w = weft__worker_current();
    weft__task *t = w ? weft__task_current() : NULL;
    if (!t || w->sched != S(ud)) {
        fprintf(stderr, "weft: %s: called outside the event loop's tasks\n", who);
        abort();
    }
    return t;
}

static int64_t el_deadline_set(void *ud, int64_t deadline_ns)
{
    weft__task *t = deadline_task(ud, "weft_deadline_set");
    int64_t old = t->deadline;
    t->deadline = deadline_ns;
    return old;
}

static int64_t el_deadline(void *ud)
{
    return deadline_task(ud, "weft_deadline")->deadline;
}

static const weft_io_vtable el_vtable = {
    .size = sizeof(weft_io_vtable),
    .async = el_async,
    .concurrent = el_concurrent,
    .async_detached = el_async_detached,
    .await = el_await,
    .cancel = el_cancel,
    .select = el_select,
    .cancel_requested = el_cancel_requested,
    .yield = el_yield,
    .now = el_now,
    .sleep_until = el_sleep_until,
    .wait = el_wait,
    .group_async = el_group_async,
    .group_concurrent = el_group_concurrent,
    .group_wait = el_group_wait,
    .group_cancel = el_group_cancel,
    .operate = el_operate,
    .deadline_set = el_deadline_set,
    .deadline = el_deadline,
};

/* WEFT_STACK_MIN holds the largest task (its header, ctx and result at the
   top of the stack) with 4 KiB to spare, the least weft__fiber_create
   accepts. */
_Static_assert(WEFT_STACK_MIN >= 4096 + sizeof(weft__fiber) + sizeof(weft__stack) +
                                      sizeof(weft__task) + WEFT_MAX_CTX + WEFT_MAX_RESULT + 64,
               "WEFT_STACK_MIN must hold the largest task");

static unsigned cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    return 1;
}

WEFT_API int weft_event_loop_init(weft_event_loop **out, const weft_event_loop_options *opts)
{
    weft_event_loop_options o = {0};
    if (opts)
        o = *opts;
    if (!out || o.threads > 1024 || o.ring_entries > 32768 ||
        (o.ring_entries && o.ring_entries < 4) ||
        (o.stack_size && o.stack_size < WEFT_STACK_MIN))
        return -EINVAL;
    unsigned n = o.threads ? o.threads : cpus_allowed();
    unsigned entries = o.ring_entries ? o.ring_entries : 256;
    struct weft_event_loop *el = aligned_alloc(64, (sizeof *el + 63) & ~(size_t)63);
    if (!el)
        return -ENOMEM;
    weft_io io = {el, &el_vtable};
    int rc = weft__sched_init(&el->s, n, o.stack_size, entries, io);
    if (rc < 0) {
        free(el);
        return rc;
    }
    *out = el;
    return 0;
}

WEFT_API weft_io weft_event_loop_io(weft_event_loop *el)
{
    return el->s.io;
}

WEFT_API unsigned weft_event_loop_stats(weft_event_loop *el, weft_loop_stats *out,
                                        weft_worker_stats *per, unsigned n, bool with_rss)
{
    return weft__sched_stats(&el->s, out, per, n, with_rss);
}

WEFT_API void weft_event_loop_deinit(weft_event_loop *el)
{
    weft__sched_deinit(&el->s);
    free(el);
}
