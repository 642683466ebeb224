// SPDX-License-Identifier: MIT
/*
 * The blocking Io: no concurrency and no setup.  async runs the task
 * inline and returns a finished future; concurrent fails with -EOPNOTSUPP;
 * sleep is clock_nanosleep.  It is the baseline the other implementations
 * are measured against, so it does as little as it can: a future is a
 * small header and the result bytes, from a per-thread cache of blocks.
 *
 * Released futures stay marked released while they sit in the cache, so
 * a second await of one is caught (as long as the block was not reused).
 */
#include "../sched/park.h"
#include "../sched/sched.h"
#include "sys.h"

#include <weft/weft.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int weft__clock_now(clockid_t clock, int64_t *ns);

#define LIVE     0x626c6b6c697665u
#define RELEASED 0x626c6b72656cu
#define CACHE    16

struct bfuture {
    uint64_t magic;
    size_t cap; /* bytes of data[] */
    size_t result_off;
    size_t result_len;
    struct bfuture *next;
    _Alignas(64) unsigned char data[];
};

static _Thread_local struct {
    struct bfuture *head;
    unsigned count;
} cache;

/* This thread's deadline (CLOCK_MONOTONIC). */
static _Thread_local int64_t deadline = WEFT_NO_DEADLINE;

static struct bfuture *bf_get(size_t need)
{
    struct bfuture **pp = &cache.head;
    for (struct bfuture *b = *pp; b; pp = &b->next, b = *pp)
        if (b->cap >= need) {
            *pp = b->next;
            cache.count--;
            return b;
        }
    size_t cap = need < 256 ? 256 : need;
    struct bfuture *b = aligned_alloc(64, (sizeof *b + cap + 63) & ~(size_t)63);
    if (b)
        b->cap = cap;
    return b;
}

static void bf_put(struct bfuture *b)
{
    b->magic = RELEASED;
    if (cache.count < CACHE) {
        b->next = cache.head;
        cache.head = b;
        cache.count++;
        return;
    }
    free(b);
}

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static weft_future *b_async(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                            size_t result_len)
{
    (void)ud;
    weft__check_task_sizes(ctx_len, result_len);
    struct bfuture *b = bf_get(round64(ctx_len) + result_len);
    if (!b) {
        fprintf(stderr, "weft: weft_async: out of memory, even to run the task inline\n");
        abort();
    }
    b->magic = LIVE;
    b->result_off = round64(ctx_len);
    b->result_len = result_len;
    /* ctx is copied, as on every Io: fn may write to its ctx. */
    if (ctx_len)
        memcpy(b->data, ctx, ctx_len);
    /* A task starts with no deadline; the caller's is back afterwards. */
    int64_t saved = deadline;
    deadline = WEFT_NO_DEADLINE;
    fn(weft_blocking_io(), b->data, b->data + b->result_off);
    deadline = saved;
    return (weft_future *)b;
}

static int b_concurrent(void *ud, weft_future **out, weft_task_fn *fn, const void *ctx,
                        size_t ctx_len, size_t result_len)
{
    (void)ud, (void)fn, (void)ctx, (void)ctx_len, (void)result_len;
    *out = NULL;
    return -EOPNOTSUPP;
}

static void b_async_detached(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len)
{
    (void)ud;
    weft__check_task_sizes(ctx_len, 0);
    /* 64-byte aligned, as ctx is on every Io (io.h). */
    _Alignas(64) unsigned char buf[256];
    void *c = ctx_len <= sizeof buf ? buf : aligned_alloc(64, round64(ctx_len));
    if (!c) {
        fprintf(stderr, "weft: weft_async_detached: out of memory\n");
        abort();
    }
    if (ctx_len)
        memcpy(c, ctx, ctx_len);
    int64_t saved = deadline;
    deadline = WEFT_NO_DEADLINE;
    fn(weft_blocking_io(), c, NULL);
    deadline = saved;
    if (c != buf)
        free(c);
}

/* Members started here run inline, so they are gone by the time wait or
   cancel is called; a group with live members has them on an event loop,
   and this thread waits for them (or cancels them) as a thread. */
static void b_group_async(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                          size_t ctx_len)
{
    (void)g;
    b_async_detached(ud, fn, ctx, ctx_len);
}

static int b_group_concurrent(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                              size_t ctx_len)
{
    (void)ud, (void)g, (void)fn, (void)ctx, (void)ctx_len;
    return -EOPNOTSUPP;
}

static void b_group_wait(void *ud, weft_group *g)
{
    (void)ud;
    weft__group_wait(weft_blocking_io(), g);
}

static void b_group_cancel(void *ud, weft_group *g)
{
    (void)ud;
    weft__group_cancel(weft_blocking_io(), g);
}

/* The thread sleeps; nothing cancels it (the blocking Io has no cancel). */
static int b_wait(void *ud, weft_waiter *w)
{
    (void)ud;
    return weft__park_wait_thread_until(w, deadline);
}

static struct bfuture *live(weft_future *f, const char *who)
{
    struct bfuture *b = (struct bfuture *)f;
    if (!b || b->magic != LIVE) {
        fprintf(stderr, "weft: %s: future %p %s\n", who, (void *)f,
                b && b->magic == RELEASED
                    ? "was already released (each future takes exactly one await or cancel)"
                    : "is not a live future");
        abort();
    }
    return b;
}

static void b_await(void *ud, weft_future *f, void *result)
{
    (void)ud;
    struct bfuture *b = live(f, "weft_await");
    if (result && b->result_len)
        memcpy(result, b->data + b->result_off, b->result_len);
    bf_put(b);
}

static void b_cancel(void *ud, weft_future *f, void *result)
{
    b_await(ud, f, result);
}

static size_t b_select(void *ud, weft_future *const *futures, size_t n)
{
    (void)ud;
    if (n == 0) {
        fprintf(stderr, "weft: weft_select: no futures to wait for\n");
        abort();
    }
    for (size_t i = 0; i < n; i++)
        live(futures[i], "weft_select");
    return 0; /* every future of this Io has finished */
}

static bool b_cancel_requested(void *ud)
{
    (void)ud;
    return false;
}

static void b_yield(void *ud)
{
    (void)ud;
}

static int b_now(void *ud, clockid_t clock, int64_t *ns)
{
    (void)ud;
    return weft__clock_now(clock, ns);
}

static int b_sleep_until(void *ud, clockid_t clock, int64_t deadline_ns)
{
    (void)ud;
    if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME)
        return -EINVAL;
    if (deadline_ns < 0)
        deadline_ns = 0;
    /* The task's deadline, on the sleep's clock, if it comes first. */
    int timedout = 0;
    if (deadline != WEFT_NO_DEADLINE) {
        int64_t d = deadline, mono, other;
        if (clock != CLOCK_MONOTONIC && weft__clock_now(CLOCK_MONOTONIC, &mono) == 0 &&
            weft__clock_now(clock, &other) == 0)
            d = deadline - mono > INT64_MAX - other ? INT64_MAX : other + (deadline - mono);
        if (d <= deadline_ns) {
            deadline_ns = d < 0 ? 0 : d;
            timedout = -ETIMEDOUT;
        }
    }
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    int rc;
    while ((rc = clock_nanosleep(clock, TIMER_ABSTIME, &ts, NULL)) == EINTR)
        ;
    return rc ? -rc : timedout;
}

/* ---- files and sockets: plain system calls (sys.c) ------------------------ */

/* The deadline interrupts waits for a peer; nothing cancels this Io. */
static int64_t b_operate(void *ud, weft_op *op)
{
    (void)ud;
    return weft__sys_operate_until(op, deadline, NULL);
}

static int64_t b_deadline_set(void *ud, int64_t d)
{
    (void)ud;
    int64_t old = deadline;
    deadline = d;
    return old;
}

static int64_t b_deadline(void *ud)
{
    (void)ud;
    return deadline;
}

static const weft_io_vtable b_vtable = {
    .size = sizeof(weft_io_vtable),
    .async = b_async,
    .concurrent = b_concurrent,
    .async_detached = b_async_detached,
    .await = b_await,
    .cancel = b_cancel,
    .select = b_select,
    .cancel_requested = b_cancel_requested,
    .yield = b_yield,
    .now = b_now,
    .sleep_until = b_sleep_until,
    .wait = b_wait,
    .group_async = b_group_async,
    .group_concurrent = b_group_concurrent,
    .group_wait = b_group_wait,
    .group_cancel = b_group_cancel,
    .operate = b_operate,
    .deadline_set = b_deadline_set,
    .deadline = b_deadline,
};

WEFT_API weft_io weft_blocking_io(void)
{
    weft_io io = {NULL, &b_vtable};
    return io;
}
