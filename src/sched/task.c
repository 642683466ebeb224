// SPDX-License-Identifier: MIT
/*
 * Tasks and futures: spawning, finishing, await, select, cancel.
 *
 * A task lives at the top of its fiber's stack: struct weft__task, then its
 * copy of ctx, then its result bytes.  The future handed to the caller is
 * the task itself; the stack is given back when the future is released.
 *
 * The future word, `waiter`: NONE, FINISHED, or the task waiting for it
 * (tagged SELECT for a select registration).  A task becomes FINISHED only
 * after it has left its stack, in the handoff of its last switch
 * (exit_publish), so whoever sees FINISHED may free the stack at once.  The
 * one exception is the direct hand-back in weft__task_finish: when a plain
 * awaiter is already registered, nobody but that awaiter can free the
 * stack, and it is not running -- the finisher resumes it directly.
 *
 * await: one CAS (NONE -> me) in the handoff; if it fails the task had
 * finished, and the handoff makes the awaiter runnable again.  Exactly one
 * side wakes the awaiter.
 *
 * select: the handoff registers the selector on each future in turn (CAS
 * NONE -> me|SELECT) and stops at the first finished one.  The selector's
 * `sel` counter decides who wakes it, exactly once: it starts at SEL_BIAS
 * while the handoff registers; each finisher that takes a registration adds
 * one; the handoff ends by removing the bias (and adding one if it found a
 * finished future).  Whoever moves the counter from zero, or the handoff if
 * it leaves it above zero, wakes the selector.  Awake, the selector
 * withdraws its registrations (CAS me|SELECT -> NONE); each one it cannot
 * withdraw was taken by a finisher, who will add one to `sel` -- the
 * selector waits for those adds before returning, since after it returns
 * its task may be freed.
 *
 * cancel: the cancel word holds "requested" and "blocked in an operation
 * on worker w's ring".  The blocker publishes where it blocks and learns of
 * an earlier request in one CAS; the canceler sets the bit and learns where
 * to send the interruption in one RMW.  Requests are sticky.
 */
#include "sched.h"

#include "park.h"

#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEL_BIAS (1L << 40)

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static void fn_name(weft_task_fn *fn, char *buf, size_t len)
{
    Dl_info info;
    void *p;
    memcpy(&p, &fn, sizeof p);
    if (dladdr(p, &info) && info.dli_sname)
        snprintf(buf, len, "%s (%p)", info.dli_sname, p);
    else
        snprintf(buf, len, "task function %p (link with -rdynamic to see its name)", p);
}

/* The calling worker, which must be one of s's: a task of another loop
   would mix the two loops' stack pools. */
static weft__worker *current_worker(weft__sched *s, const char *who)
{
    weft__worker *w = weft__worker_current();
    if (!w) {
        fprintf(stderr,
                "weft: %s: called on a thread that is not one of the event loop's workers\n", who);
        abort();
    }
    if (w->sched != s) {
        fprintf(stderr,
                "weft: %s: called with one event loop's Io from a task of another event loop "
                "(each loop's tasks use their own loop's Io)\n",
                who);
        abort();
    }
    return w;
}

/* ---- spawning and finishing ----------------------------------------------- */

static void task_entry(weft__fiber *self, void *msg)
{
    weft__task *t = self->extra;
    weft__handoff_run(msg);
    t->fn(t->sched->io, t->ctx, (t->flags & WEFT__TASK_DETACHED) ? NULL : t->result);
    weft__task_finish(t);
}

void weft__check_task_sizes(size_t ctx_len, size_t result_len)
{
    if (ctx_len > WEFT_MAX_CTX || result_len > WEFT_MAX_RESULT) {
        fprintf(stderr,
                "weft: weft_async: ctx_len %zu / result_len %zu over the limits "
                "(WEFT_MAX_CTX %u, WEFT_MAX_RESULT %u)\n",
                ctx_len, result_len, WEFT_MAX_CTX, WEFT_MAX_RESULT);
        abort();
    }
}

static void task_setup(weft__task *t, weft__sched *s, weft_task_fn *fn, const void *ctx,
                       size_t ctx_len, size_t result_len, uint32_t flags)
{
    /* Field by field, not memset: this is on every spawn's path. */
    t->link = NULL;
    t->fiber = NULL;
    t->pinned = NULL;
    t->sched = s;
    t->fn = fn;
    t->ctx = (char *)t + sizeof *t;
    t->result = (char *)t->ctx + round64(ctx_len);
    t->result_len = (uint32_t)result_len;
    t->flags = flags;
    t->deadline = WEFT_NO_DEADLINE;
    t->name[0] = '\0';
    t->group = NULL;
    if (ctx_len)
        memcpy(t->ctx, ctx, ctx_len);
    atomic_init(&t->waiter, WEFT__WAITER_NONE);
    atomic_init(&t->magic, (flags & WEFT__TASK_DETACHED) ? 0 : WEFT__TASK_LIVE);
    atomic_init(&t->cancel, 0);
    atomic_init(&t->cancel_key, NULL);
    atomic_init(&t->sel, 0);
    t->sel_registered = 0;
    t->sel_early = false;
#ifndef NDEBUG
    atomic_init(&t->dbg_queued, 0);
#endif
}

weft__task *weft__task_create(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                              size_t result_len, uint32_t flags, int *err)
{
    weft__check_task_sizes(ctx_len, result_len);
    weft__worker *w = current_worker(s, "weft_async");
    size_t extra = sizeof(weft__task) + round64(ctx_len) + round64(result_len);
    weft__fiber *f;
    int rc = weft__fiber_create(&f, &s->pool, &w->cache, extra, task_entry);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    weft__task *t = f->extra;
    task_setup(t, s, fn, ctx, ctx_len, result_len, flags);
    t->fiber = f;
    t->id = ++w->ids * s->nworkers + w->index;
    weft__count(w, spawned, 1);
    f->extra = t;
    if (flags & WEFT__TASK_DETACHED)
        atomic_fetch_add_explicit(&s->detached, 1, memory_order_relaxed);
    return t;
}

weft__task *weft__task_spawn(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                             size_t result_len, uint32_t flags, int *err)
{
    weft__task *t = weft__task_create(s, fn, ctx, ctx_len, result_len, flags, err);
    if (t)
        weft__sched_ready(weft__worker_current(), t);
    return t;
}

weft__task *weft__task_inline(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                              size_t result_len, uint32_t flags)
{
    weft__check_task_sizes(ctx_len, result_len);
    current_worker(s, "weft_async");
    weft__task *t = aligned_alloc(64, sizeof(weft__task) + round64(ctx_len) + round64(result_len));
    if (!t) {
        fprintf(stderr, "weft: weft_async: out of memory, even to run the task inline\n");
        abort();
    }
    task_setup(t, s, fn, ctx, ctx_len, result_len, flags | WEFT__TASK_INLINE);
    fn(s->io, t->ctx, (flags & WEFT__TASK_DETACHED) ? NULL : t->result);
    if (flags & WEFT__TASK_DETACHED) {
        free(t);
        return NULL;
    }
    atomic_store_explicit(&t->waiter, WEFT__WAITER_FINISHED, memory_order_release);
    return t;
}

static void wake_registration(weft__worker *w, uintptr_t reg)
{
    if (reg == WEFT__WAITER_NONE)
        return;
    weft__task *a = (weft__task *)(reg & ~WEFT__WAITER_SELECT);
    if (reg & WEFT__WAITER_SELECT) {
        if (atomic_fetch_add_explicit(&a->sel, 1, memory_order_acq_rel) == 0)
            weft__sched_ready(w, a);
    } else {
        weft__sched_ready(w, a);
    }
}

/* The handoff of a finished task: it has left its stack, so it may now be
   seen as finished (and freed by its awaiter). */
static void exit_publish(weft__worker *w, weft__task *prev, void *arg)
{
    (void)arg;
    uintptr_t reg =
        atomic_exchange_explicit(&prev->waiter, WEFT__WAITER_FINISHED, memory_order_acq_rel);
    wake_registration(w, reg);
}

static void exit_detached(weft__worker *w, weft__task *prev, void *arg)
{
    (void)arg;
    weft__sched *s = prev->sched;
    weft__fiber_destroy(prev->fiber, &s->pool, &w->cache);
    /* seq_cst: pairs with wait_detached_handoff (store waiter, read count). */
    if (atomic_fetch_sub_explicit(&s->detached, 1, memory_order_seq_cst) == 1) {
        weft__task *a = atomic_exchange_explicit(&s->detached_waiter, NULL, memory_order_seq_cst);
        if (a)
            weft__sched_ready(w, a);
    }
}

void weft__task_finish(weft__task *t)
{
    weft__worker *w = weft__worker_current();
    struct weft__handoff h = {exit_publish, t, NULL, w}; /* w: set again by sched_exit */
    if (t->flags & WEFT__TASK_DETACHED) {
        if (t->group)
            weft__group_leave(t);
        h.fn = exit_detached;
    } else {
        uintptr_t reg = atomic_load_explicit(&t->waiter, memory_order_acquire);
        weft__task *a = (weft__task *)reg;
        if (reg != WEFT__WAITER_NONE && !(reg & WEFT__WAITER_SELECT) &&
            (!a->pinned || a->pinned == w)) {
            /* A plain awaiter is registered: only it may free this stack,
               and it waits for us to resume it. */
            atomic_store_explicit(&t->waiter, WEFT__WAITER_FINISHED, memory_order_release);
            h.fn = NULL;
            weft__count(w, finished, 1);
            weft__count(w, runs, 1);
            atomic_store_explicit(&w->running, a, memory_order_relaxed);
            weft__fiber_exit(t->fiber, a->fiber, &h);
        }
    }
    weft__sched_exit(t, &h);
}

/* ---- await ------------------------------------------------------------------ */

static void release(weft__task *t, const char *who)
{
    /* Not an exchange: two threads releasing one future at once is a race
       in the program, and a plain check catches the common mistake (a
       second release later) without a locked instruction. */
    uint64_t m = atomic_load_explicit(&t->magic, memory_order_relaxed);
    atomic_store_explicit(&t->magic, WEFT__TASK_RELEASED, memory_order_relaxed);
    if (m != WEFT__TASK_LIVE) {
        fprintf(stderr, "weft: %s: future %p %s\n", who, (void *)t,
                m == WEFT__TASK_RELEASED
                    ? "was already released (each future takes exactly one await or cancel)"
                    : "is not a live future");
        abort();
    }
}

/* A future has one waiter at a time: the task that awaits or cancels it,
   or the task selecting on it.  Anything else in the future word when an
   await registers is a program releasing a future another task waits
   for, which would free a stack that task still reads. */
static _Noreturn void waited_by_another(weft__task *t, uintptr_t reg, const char *who)
{
    fprintf(stderr,
            "weft: %s: future %p is being waited for by %s in another task (a future is "
            "waited for by one task at a time: select on it, or await it, not both)\n",
            who, (void *)t, (reg & WEFT__WAITER_SELECT) ? "weft_select" : "weft_await");
    abort();
}

struct await_arg {
    weft__task *t;
    const char *who;
};

static void await_handoff(weft__worker *w, weft__task *prev, void *arg)
{
    struct await_arg *a = arg;
    uintptr_t cur = WEFT__WAITER_NONE;
    if (atomic_compare_exchange_strong_explicit(&a->t->waiter, &cur, (uintptr_t)prev,
                                                memory_order_acq_rel, memory_order_acquire))
        return;
    if (cur != WEFT__WAITER_FINISHED)
        waited_by_another(a->t, cur, a->who);
    weft__sched_ready(w, prev); /* it finished meanwhile */
}

void weft__task_await(weft__sched *s, weft__task *t, void *result, const char *who)
{
    weft__worker *w = current_worker(s, who);
    release(t, who);
    uintptr_t cur = atomic_load_explicit(&t->waiter, memory_order_acquire);
    if (cur != WEFT__WAITER_FINISHED && !(t->flags & WEFT__TASK_INLINE)) {
        if (cur != WEFT__WAITER_NONE)
            waited_by_another(t, cur, who);
        weft__task *self = weft__task_current();
        weft__task *next = weft__sched_take_local(w);
        if (next == t) {
            /* The usual spawn-then-await: t is ours to run and runs next,
               right here, so it cannot finish before it sees this
               registration -- no handoff needed.  A CAS, not a store: a
               select on another worker may have registered meanwhile. */
            cur = WEFT__WAITER_NONE;
            if (!atomic_compare_exchange_strong_explicit(&t->waiter, &cur, (uintptr_t)self,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed))
                waited_by_another(t, cur, who);
            weft__sched_switch(w, self, t, NULL, NULL);
        } else {
            struct await_arg a = {t, who};
            weft__sched_switch(w, self, next, await_handoff, &a);
        }
    }
    if (result && t->result_len)
        memcpy(result, t->result, t->result_len);
    if (t->flags & WEFT__TASK_INLINE)
        free(t);
    else
        weft__fiber_destroy(t->fiber, &s->pool, &weft__worker_current()->cache);
}

/* ---- cancel ----------------------------------------------------------------- */

int weft__cancel_enter(weft__task *t, unsigned where, void *key)
{
    uint32_t old = atomic_load_explicit(&t->cancel, memory_order_relaxed);
    /* A request seen here leaves the key alone: a canceler that read the
       where of an earlier operation reads that operation's key. */
    if (old & WEFT__CANCEL_REQUESTED)
        return -ECANCELED;
    /* Before the CAS that publishes where (release): a canceler whose RMW
       reads this where reads this key.  A request that lands between the
       load and the CAS read where 0, and reads no key. */
    atomic_store_explicit(&t->cancel_key, key, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&t->cancel, &old,
                                                  (where << WEFT__CANCEL_WHERE_SHIFT) |
                                                      (old & 0xffu),
                                                  memory_order_acq_rel, memory_order_relaxed))
        if (old & WEFT__CANCEL_REQUESTED)
            return -ECANCELED;
    return 0;
}

void weft__cancel_leave(weft__task *t)
{
    atomic_fetch_and_explicit(&t->cancel, 0xffu, memory_order_acq_rel);
}

void (*weft__cancel_mark_hook)(weft__task *t);

unsigned weft__cancel_mark(weft__task *t, void **key)
{
    uint32_t old =
        atomic_fetch_or_explicit(&t->cancel, WEFT__CANCEL_REQUESTED, memory_order_acq_rel);
    if (weft__cancel_mark_hook)
        weft__cancel_mark_hook(t);
    if (old & WEFT__CANCEL_REQUESTED)
        return 0;
    unsigned where = old >> WEFT__CANCEL_WHERE_SHIFT;
    /* A parked task's bucket came with the RMW.  A ring operation's key is
       read after it: the task may have moved on since, but then its next
       enter saw the request and left the key as it was (see enter), so
       this is the key of the operation whose where the RMW read -- one
       that has completed, and whose interruption finds nothing. */
    *key = (where & WEFT__CANCEL_WHERE_PARK)
               ? NULL
               : atomic_load_explicit(&t->cancel_key, memory_order_relaxed);
    return where;
}

void weft__cancel_interrupt(weft__task *t, unsigned where, void *key)
{
    if (where == 0)
        return; /* its next cancellation point sees the request */
    if (where & WEFT__CANCEL_WHERE_PARK) {
        weft__park_cancel(weft__park_bucket_at(where & WEFT__CANCEL_BUCKET_MASK), t, t->id);
        return;
    }
    weft__worker *to = &t->sched->workers[where - 1];
    weft__worker *w = weft__worker_current();
    if (w && w->sched == t->sched)
        weft__ring_cancel(w, to, key);
    else
    {
        weft__sched *s = t->sched; /* e.g. a group canceled from a thread */
        weft__remote_enter(s);
        weft__ring_cancel_foreign(s, to, key);
        weft__remote_leave(s);
    }
}

void weft__task_request_cancel(weft__task *t)
{
    void *key = NULL;
    unsigned where = weft__cancel_mark(t, &key);
    weft__cancel_interrupt(t, where, key);
}

/* ---- waiting on mutexes, conditions, queues, groups ----------------------- */

static void wake_fiber(weft_waiter *wt)
{
    weft__task *t = atomic_load_explicit(&wt->task, memory_order_relaxed);
    weft__worker *w = weft__worker_current();
    if (w && w->sched == t->sched)
        weft__sched_ready(w, t);
    else
        weft__sched_ready_remote(t->sched, t); /* a thread on another Io, or another loop */
}

/* After the waiter's context is saved: asleep, unless a waker came first. */
static void park_handoff(weft__worker *w, weft__task *prev, void *arg)
{
    weft_waiter *wt = arg;
    uint32_t queued = WEFT__WAIT_QUEUED;
    if (!atomic_compare_exchange_strong_explicit(&wt->state, &queued, WEFT__WAIT_FIBER,
                                                 memory_order_acq_rel, memory_order_acquire))
        weft__sched_ready(w, prev);
}

/* A cancelable wait under a deadline: a timer on the worker's ring that
   times the waiter out as a canceler would (by task and id, in its
   bucket).  The timer's record is on the waiting task's stack, so the task
   does not leave the wait before the timer's completion has come: if it
   was woken first, it cancels the timer and waits for that.  state:
   PENDING until the completion or the task's cancel; then the task, if it
   must wait, WAITING; the completion makes it DONE, its last touch. */
enum { TW_PENDING, TW_CANCELING, TW_WAITING, TW_DONE };

struct timed_wait {
    struct weft__ring_timer tm;
    weft__task *task;
    uint64_t id;
    unsigned bucket;
    weft__worker *ring_w;
    int64_t deadline;
    _Atomic uint32_t state;
};

static void timed_wait_fired(weft__worker *w, struct weft__ring_timer *tm, int32_t res)
{
    struct timed_wait *tw = (struct timed_wait *)tm;
    weft__task *t = tw->task;
    if (res == -ECANCELED &&
        atomic_load_explicit(&tw->state, memory_order_acquire) == TW_PENDING) {
        /* Nobody canceled this timer: a late cancel meant for an earlier
           wait's timer at the same address matched it.  Arm it again, as
           an operation hit by a stale cancel is queued again. */
        weft__ring_timer_start(w, tm, tw->deadline, true);
        return;
    }
    /* While state is not DONE the task is still in this wait, so a waiter
       of (t, id) in the bucket is this wait's. */
    if (res == -ETIME)
        weft__park_cancel_with(weft__park_bucket_at(tw->bucket), t, tw->id, -ETIMEDOUT);
    if (atomic_exchange_explicit(&tw->state, TW_DONE, memory_order_acq_rel) == TW_WAITING)
        weft__sched_ready(w, t);
}

static void timer_wait_handoff(weft__worker *w, weft__task *prev, void *arg)
{
    struct timed_wait *tw = arg;
    uint32_t canceling = TW_CANCELING;
    if (!atomic_compare_exchange_strong_explicit(&tw->state, &canceling, TW_WAITING,
                                                 memory_order_acq_rel, memory_order_acquire))
        weft__sched_ready(w, prev); /* the completion came first */
}

static void timed_wait_finish(struct timed_wait *tw)
{
    uint32_t pending = TW_PENDING;
    if (!atomic_compare_exchange_strong_explicit(&tw->state, &pending, TW_CANCELING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return; /* DONE */
    weft__ring_timer_cancel(weft__worker_current(), tw->ring_w, &tw->tm);
    weft__sched_block(timer_wait_handoff, tw);
}

int weft__task_wait(weft_waiter *wt)
{
    weft__task *t = weft__worker_current() ? weft__task_current() : NULL;
    if (!t) {
        fprintf(stderr, "weft: waiting on a mutex, condition, queue or group with an event "
                        "loop's Io from a thread that is not one of its workers\n");
        abort();
    }
    atomic_store_explicit(&wt->task, t, memory_order_relaxed);
    atomic_store_explicit(&wt->task_id, t->id, memory_order_relaxed);
    wt->wake = wake_fiber;
    bool cancelable = wt->cancelable;
    if (cancelable && weft__cancel_enter(t, WEFT__CANCEL_WHERE_PARK |
                                                weft__park_bucket_index(wt->addr),
                                            NULL) < 0) {
        if (weft__park_withdraw(wt))
            return -ECANCELED;
        cancelable = false; /* a waker has taken it: its wake-up is coming */
    }
    struct timed_wait tw;
    bool timed = cancelable && t->deadline != WEFT_NO_DEADLINE;
    if (timed) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec >= t->deadline) {
            timed = false;
            if (weft__park_withdraw_with(wt, -ETIMEDOUT)) {
                weft__cancel_leave(t);
                return -ETIMEDOUT;
            }
            /* a waker has taken it: its wake-up is coming */
        } else {
            tw.tm.fn = timed_wait_fired;
            tw.task = t;
            tw.id = t->id;
            tw.bucket = weft__park_bucket_index(wt->addr);
            tw.ring_w = weft__worker_current();
            tw.deadline = t->deadline;
            atomic_init(&tw.state, TW_PENDING);
            weft__ring_timer_start(tw.ring_w, &tw.tm, t->deadline, true);
        }
    }
    if (atomic_load_explicit(&wt->state, memory_order_acquire) != WEFT__WAIT_WOKEN)
        weft__sched_block(park_handoff, wt);
    if (timed)
        timed_wait_finish(&tw);
    if (cancelable)
        weft__cancel_leave(t);
    return wt->result;
}

/* ---- select ----------------------------------------------------------------- */

struct select_arg {
    weft__task *const *ts;
    size_t n;
};

static void select_handoff(weft__worker *w, weft__task *prev, void *arg)
{
    struct select_arg a = *(struct select_arg *)arg;
    uintptr_t reg = (uintptr_t)prev | WEFT__WAITER_SELECT;
    long r = 0;
    bool early = false;
    for (size_t i = 0; i < a.n; i++) {
        uintptr_t cur = WEFT__WAITER_NONE;
        if (atomic_compare_exchange_strong_explicit(&a.ts[i]->waiter, &cur, reg,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            r++;
            continue;
        }
        if (cur != WEFT__WAITER_FINISHED) {
            fprintf(stderr, "weft: weft_select: future %p appears twice, or is being awaited\n",
                    (void *)a.ts[i]);
            abort();
        }
        early = true;
        break;
    }
    prev->sel_registered = r;
    prev->sel_early = early;
    long old =
        atomic_fetch_sub_explicit(&prev->sel, SEL_BIAS - (early ? 1 : 0), memory_order_acq_rel);
    if (old - SEL_BIAS + (early ? 1 : 0) > 0)
        weft__sched_ready(w, prev);
}

size_t weft__task_select(weft__sched *s, weft__task *const *ts, size_t n)
{
    current_worker(s, "weft_select");
    if (n == 0) {
        fprintf(stderr, "weft: weft_select: no futures to wait for\n");
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t m = atomic_load_explicit(&ts[i]->magic, memory_order_relaxed);
        if (m != WEFT__TASK_LIVE) {
            fprintf(stderr, "weft: weft_select: future %zu (%p) %s\n", i, (void *)ts[i],
                    m == WEFT__TASK_RELEASED ? "was already released" : "is not a live future");
            abort();
        }
        if (atomic_load_explicit(&ts[i]->waiter, memory_order_acquire) == WEFT__WAITER_FINISHED)
            return i;
    }
    weft__task *self = weft__task_current();
    atomic_store_explicit(&self->sel, SEL_BIAS, memory_order_relaxed);
    struct select_arg a = {ts, n};
    weft__sched_block(select_handoff, &a);

    uintptr_t reg = (uintptr_t)self | WEFT__WAITER_SELECT;
    long taken = 0;
    for (long i = 0; i < self->sel_registered; i++) {
        uintptr_t cur = reg;
        if (!atomic_compare_exchange_strong_explicit(&ts[i]->waiter, &cur, WEFT__WAITER_NONE,
                                                     memory_order_acq_rel, memory_order_acquire))
            taken++;
    }
    /* Wait for the finishers that took a registration to finish counting:
       they are between two instructions of exit_publish. */
    long expect = taken + (self->sel_early ? 1 : 0);
    for (unsigned spins = 0; atomic_load_explicit(&self->sel, memory_order_acquire) != expect;
         spins++)
        if (spins > 64)
            sched_yield();
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&ts[i]->waiter, memory_order_acquire) == WEFT__WAITER_FINISHED)
            return i;
    fprintf(stderr, "weft: weft_select: woken with no future finished\n");
    abort();
}

/* ---- detached tasks and deinit --------------------------------------------- */

static void wait_detached_handoff(weft__worker *w, weft__task *prev, void *arg)
{
    weft__sched *s = arg;
    atomic_store_explicit(&s->detached_waiter, prev, memory_order_seq_cst);
    /* seq_cst: pairs with exit_detached (count, then waiter) and with the
       report timer (flag, then waiter). */
    if (atomic_load_explicit(&s->detached, memory_order_seq_cst) == 0 ||
        (atomic_load_explicit(&s->deinit_report_due, memory_order_seq_cst) &&
         !s->deinit_reported)) {
        weft__task *a = atomic_exchange_explicit(&s->detached_waiter, NULL, memory_order_seq_cst);
        if (a)
            weft__sched_ready(w, a);
    }
}

/* How long deinit waits for detached tasks before it says which: 10 s,
   or WEFT_DEINIT_REPORT_MS milliseconds (0: never). */
static int64_t report_delay_ns(void)
{
    const char *e = getenv("WEFT_DEINIT_REPORT_MS");
    if (!e || !*e)
        return 10LL * 1000000000;
    char *end;
    long long ms = strtoll(e, &end, 10);
    if (*end || ms < 0)
        return 10LL * 1000000000;
    if (ms > INT64_MAX / 1000000)
        ms = INT64_MAX / 1000000;
    return ms * 1000000;
}

static void detached_report_due(weft__worker *w, struct weft__ring_timer *tm, int32_t res)
{
    (void)res;
    weft__sched *s = (weft__sched *)((char *)tm - offsetof(weft__sched, deinit_timer));
    atomic_store_explicit(&s->deinit_report_due, true, memory_order_seq_cst);
    /* Wakes the waiting main task, unless a finishing task has (or it is
       not waiting at the moment: it looks at the flag before it waits). */
    weft__task *a = atomic_exchange_explicit(&s->detached_waiter, NULL, memory_order_seq_cst);
    if (a)
        weft__sched_ready(w, a);
}

static void report_detached(weft__stack *st, void *arg)
{
    unsigned *n = arg;
    weft__fiber *f = (weft__fiber *)(weft__stack_top(st) - sizeof(weft__fiber));
    if (f->entry != task_entry)
        return;
    weft__task *t = f->extra;
    if (!(t->flags & WEFT__TASK_DETACHED))
        return;
    char name[256];
    fn_name(t->fn, name, sizeof name);
    unsigned where = atomic_load_explicit(&t->cancel, memory_order_relaxed) >>
                     WEFT__CANCEL_WHERE_SHIFT;
    char state[96];
    if (where & WEFT__CANCEL_WHERE_PARK)
        snprintf(state, sizeof state, "waiting on a mutex, condition, queue or group");
    else if (where)
        snprintf(state, sizeof state, "in an operation on worker %u's ring", where - 1);
    else
        snprintf(state, sizeof state, "running, runnable, or in an uncancelable wait");
    fprintf(stderr, "weft:   %s, task %llu, %s%s\n", name, (unsigned long long)t->id, state,
            t->group ? ", a group member" : "");
    (*n)++;
}

void weft__task_wait_detached(weft__sched *s)
{
    if (atomic_load_explicit(&s->detached, memory_order_seq_cst) == 0)
        return;
    int64_t delay = report_delay_ns();
    s->deinit_reported = delay == 0;
    if (!s->deinit_reported) {
        /* The record lives in s: the timer may still be armed when this
           returns, and only the ring's teardown retires it. */
        s->deinit_timer.fn = detached_report_due;
        weft__ring_timer_start(weft__worker_current(), &s->deinit_timer, delay, false);
    }
    while (atomic_load_explicit(&s->detached, memory_order_seq_cst) > 0) {
        if (!s->deinit_reported &&
            atomic_load_explicit(&s->deinit_report_due, memory_order_seq_cst)) {
            s->deinit_reported = true;
            long left = atomic_load_explicit(&s->detached, memory_order_seq_cst);
            fprintf(stderr,
                    "weft: weft_event_loop_deinit: still waiting after %lld ms for %ld detached "
                    "task%s:\n",
                    (long long)(delay / 1000000), left, left == 1 ? "" : "s");
            unsigned n = 0;
            weft__stack_pool_each_in_use(&s->pool, report_detached, &n);
            if (n == 0)
                fprintf(stderr, "weft:   (tasks that ran inline, or are just finishing)\n");
        }
        weft__sched_block(wait_detached_handoff, s);
    }
}

struct report {
    weft__sched *s;
    unsigned leaked, running;
    weft__task *finished; /* freed after the walk, which holds the pool's lock */
};

static void report_one(weft__stack *st, void *arg)
{
    struct report *r = arg;
    weft__fiber *f = (weft__fiber *)(weft__stack_top(st) - sizeof(weft__fiber));
    if (f->entry != task_entry)
        return; /* a scheduler's own fiber */
    weft__task *t = f->extra;
    char name[256];
    fn_name(t->fn, name, sizeof name);
    bool done = atomic_load_explicit(&t->waiter, memory_order_acquire) == WEFT__WAITER_FINISHED;
    fprintf(stderr,
            "weft: weft_event_loop_deinit: the future of %s was never awaited or canceled%s\n",
            name, done ? "" : ", and its task is still running");
    r->leaked++;
    if (!done) {
        r->running++;
        return;
    }
    t->link = r->finished;
    r->finished = t;
}

void weft__task_report_unreleased(weft__sched *s)
{
    /* The other workers have been joined: the only tasks left are
       unreleased ones (detached tasks have been waited for). */
    struct report r = {s, 0, 0, NULL};
    weft__stack_pool_each_in_use(&s->pool, report_one, &r);
    while (r.finished) {
        weft__task *t = r.finished;
        r.finished = t->link;
        weft__fiber_destroy(t->fiber, &s->pool, &s->workers[0].cache);
    }
    if (r.running) {
        fprintf(stderr,
                "weft: weft_event_loop_deinit: %u task(s) still running; their stacks cannot "
                "be freed under them\n",
                r.running);
        abort();
    }
}
