// SPDX-License-Identifier: MIT
/*
 * The parking lot.  Every object a task can wait on -- a mutex, a
 * condition, a queue, a group -- keeps its waiters here, in a table of
 * buckets keyed by the object's address, so the objects themselves stay
 * one or two words and need no setup.  One table serves the whole process
 * and every Io: a thread on the blocking Io and a fiber on an event loop
 * can wait on the same mutex.
 *
 * A bucket is a short spinlock and a doubly linked FIFO of waiters, each on
 * its waiting task's stack.  The objects decide under the bucket lock
 * whether to wait (so a wake-up cannot slip between "check" and "queue")
 * and wake waiters by taking them off the queue under the lock.
 *
 * Sleeping and waking: the waiter's `state` settles the race between its
 * owner going to sleep and a waker, without holding the lock across a
 * context switch.  The waker, having dequeued the waiter and set its
 * result, exchanges state to WOKEN; the owner, once its context is saved
 * (the event loop's handoff) or before futex_wait (a thread), CASes QUEUED
 * to FIBER or THREAD.  Whoever comes second acts: a waker that finds FIBER
 * makes the task runnable, one that finds THREAD wakes the futex; an owner
 * whose CAS fails (already WOKEN) just goes on.  A waker never touches the
 * waiter after the exchange except when it found FIBER, and then the task
 * is not running and its stack is intact until it is made runnable.
 *
 * Cancel: a task blocked in a cancelable wait publishes WHERE_PARK and its
 * bucket's index in its cancel word (task.c).  The canceler locks that bucket and
 * looks for the waiter by task and task id -- never through a pointer to
 * the waiter, which may be gone -- and if it is still queued, dequeues it
 * with -ECANCELED.  Whoever dequeues a waiter decides its result, so a
 * hand-off (a mutex, a queue element) and a cancel never both happen.
 */
#include "park.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NBUCKETS 1024u

struct __attribute__((aligned(64))) weft__bucket {
    _Atomic uint32_t lock;
    weft_waiter *head, *tail;
};

static weft__bucket table[NBUCKETS];

_Static_assert(NBUCKETS == 1u << 10, "the cancel word holds a 10-bit bucket index");

/* The address's high bits folded in before the multiply, and the
   product's high bits folded back after: a plain multiplicative hash put
   4,096 heap objects allocated in a row into 452 of the 1,024 buckets
   (their spacing resonates with the constant); this puts them into 1,017,
   as random picks would (1,005). */
unsigned weft__park_bucket_index(const void *addr)
{
    uint64_t h = (uint64_t)(uintptr_t)addr;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15u;
    h ^= h >> 29;
    return (unsigned)(h >> (64 - 10));
}

weft__bucket *weft__park_bucket_at(unsigned index)
{
    return &table[index % NBUCKETS];
}

weft__bucket *weft__park_bucket(const void *addr)
{
    return &table[weft__park_bucket_index(addr)];
}

/* Held for a few dozen instructions at a time.

   A waiter backs off exponentially, 1, 2, 4 ... BACKOFF_MAX pauses between
   looks, and gives its CPU away (sched_yield) after every YIELD_AFTER
   pauses.  Under contention from several CPUs (tasks on two workers
   hammering one queue) the holder's CPU then takes the lock again and
   again with the queue's lines still in its cache, instead of handing
   them across at every operation; and when threads outnumber CPUs, a
   holder that lost its CPU gets it back soon.  Measured (docs/scheduler.md):
   the queue of 64 between 4+4 tasks on two workers went from 105-140 ns an
   item (a look after every pause, a yield every 64) to 38-45; four loops
   of two workers sharing one queue, from 400-430 ns an item with single
   operations waiting up to 37 ms, to 338 ns and 4.4 ms.  Waiting longer
   between looks made the queue no faster and let waiters starve behind
   newcomers when threads outnumber CPUs (an unrelated object sharing the
   bucket waited 25 ms at p99, against 0.3-1.5 ms now). */
#define BACKOFF_MAX 32
#define YIELD_AFTER 64

static void bucket_lock(weft__bucket *b)
{
    unsigned delay = 1, spent = 0;
    while (atomic_exchange_explicit(&b->lock, 1, memory_order_acquire)) {
        do {
            if (spent >= YIELD_AFTER) {
                sched_yield();
                spent = 0;
                continue;
            }
            for (unsigned i = 0; i < delay; i++)
                weft__cpu_relax();
            spent += delay;
            if (delay < BACKOFF_MAX)
                delay *= 2;
        } while (atomic_load_explicit(&b->lock, memory_order_relaxed));
    }
}

weft__bucket *weft__park_lock(const void *addr)
{
    weft__bucket *b = weft__park_bucket(addr);
    bucket_lock(b);
    return b;
}

void weft__park_unlock(weft__bucket *b)
{
    atomic_store_explicit(&b->lock, 0, memory_order_release);
}

void weft__waiter_init(weft_waiter *w, const void *addr, uintptr_t kind, void *data,
                       bool cancelable)
{
    w->next = w->prev = NULL;
    w->addr = addr;
    w->kind = kind;
    w->data = data;
    w->result = 0;
    w->cancelable = cancelable;
    w->on_cancel = NULL;
    w->wake = NULL;
    atomic_init(&w->task, NULL);
    atomic_init(&w->task_id, 0);
    atomic_init(&w->state, WEFT__WAIT_QUEUED);
}

void weft__park_enqueue(weft__bucket *b, weft_waiter *w)
{
    w->next = NULL;
    w->prev = b->tail;
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
}

void weft__park_enqueue_front(weft__bucket *b, weft_waiter *w)
{
    w->prev = NULL;
    w->next = b->head;
    if (b->head)
        b->head->prev = w;
    else
        b->tail = w;
    b->head = w;
}

weft_waiter *weft__park_first(weft__bucket *b, const void *addr)
{
    for (weft_waiter *w = b->head; w; w = w->next)
        if (w->addr == addr)
            return w;
    return NULL;
}

bool weft__park_remove(weft__bucket *b, weft_waiter *w)
{
    bool more = false;
    for (weft_waiter *x = w->next; x; x = x->next)
        if (x->addr == w->addr) {
            more = true;
            break;
        }
    if (!more)
        for (weft_waiter *x = w->prev; x; x = x->prev)
            if (x->addr == w->addr) {
                more = true;
                break;
            }
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->tail = w->prev;
    w->next = w->prev = NULL;
    return more;
}

weft_waiter *weft__park_remove_all(weft__bucket *b, const void *addr)
{
    weft_waiter *first = NULL, *last = NULL;
    for (weft_waiter *w = b->head, *next; w; w = next) {
        next = w->next;
        if (w->addr != addr)
            continue;
        weft__park_remove(b, w);
        if (last)
            last->next = w;
        else
            first = w;
        last = w;
    }
    return first;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

void weft__waiter_wake(weft_waiter *w)
{
    uint32_t old = atomic_exchange_explicit(&w->state, WEFT__WAIT_WOKEN, memory_order_acq_rel);
    if (old == WEFT__WAIT_FIBER)
        w->wake(w);
    else if (old == WEFT__WAIT_THREAD)
        /* The address only: the thread may already be gone from it. */
        futex(&w->state, FUTEX_WAKE_PRIVATE, 1);
}

void weft__waiter_wake_list(weft_waiter *list, int result)
{
    while (list) {
        weft_waiter *next = list->next;
        list->result = result;
        weft__waiter_wake(list);
        list = next;
    }
}

/* Under the lock: takes a waiter off its queue as canceled (or timed out:
   the object's on_cancel undoes what waiting meant, either way). */
static void remove_canceled(weft__bucket *b, weft_waiter *w)
{
    bool more = weft__park_remove(b, w);
    if (w->on_cancel)
        w->on_cancel(w, !more);
    w->result = -ECANCELED;
}

bool weft__park_withdraw(weft_waiter *w)
{
    return weft__park_withdraw_with(w, -ECANCELED);
}

bool weft__park_withdraw_with(weft_waiter *w, int result)
{
    weft__bucket *b = weft__park_lock(w->addr);
    bool queued = false;
    for (weft_waiter *x = b->head; x; x = x->next)
        if (x == w) {
            queued = true;
            break;
        }
    if (queued) {
        remove_canceled(b, w);
        w->result = result;
    }
    weft__park_unlock(b);
    return queued;
}

void weft__park_cancel(weft__bucket *b, const void *task, uint64_t task_id)
{
    weft__park_cancel_with(b, task, task_id, -ECANCELED);
}

void weft__park_cancel_with(weft__bucket *b, const void *task, uint64_t task_id, int result)
{
    bucket_lock(b);
    weft_waiter *w = b->head;
    while (w && !(w->cancelable && atomic_load_explicit(&w->task, memory_order_relaxed) == task &&
                  atomic_load_explicit(&w->task_id, memory_order_relaxed) == task_id))
        w = w->next;
    if (w) {
        remove_canceled(b, w);
        w->result = result;
    }
    weft__park_unlock(b);
    if (w)
        weft__waiter_wake(w);
}

int weft__park_wait_thread(weft_waiter *w)
{
    int saved = errno;
    uint32_t queued = WEFT__WAIT_QUEUED;
    if (atomic_compare_exchange_strong_explicit(&w->state, &queued, WEFT__WAIT_THREAD,
                                                memory_order_acq_rel, memory_order_acquire))
        while (atomic_load_explicit(&w->state, memory_order_acquire) == WEFT__WAIT_THREAD)
            futex(&w->state, FUTEX_WAIT_PRIVATE, WEFT__WAIT_THREAD);
    errno = saved;
    return w->result;
}

int weft__park_wait_thread_until(weft_waiter *w, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX || !w->cancelable)
        return weft__park_wait_thread(w);
    uint32_t queued = WEFT__WAIT_QUEUED;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &queued, WEFT__WAIT_THREAD,
                                                 memory_order_acq_rel, memory_order_acquire))
        return w->result;
    int saved = errno;
    while (atomic_load_explicit(&w->state, memory_order_acquire) == WEFT__WAIT_THREAD) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        if (left <= 0) {
            if (weft__park_withdraw_with(w, -ETIMEDOUT)) {
                errno = saved;
                return -ETIMEDOUT;
            }
            /* A waker dequeued it first: its wake-up is on the way. */
            while (atomic_load_explicit(&w->state, memory_order_acquire) == WEFT__WAIT_THREAD)
                futex(&w->state, FUTEX_WAIT_PRIVATE, WEFT__WAIT_THREAD);
            break;
        }
        struct timespec ts = {left / 1000000000, left % 1000000000};
        syscall(SYS_futex, (uint32_t *)&w->state, FUTEX_WAIT_PRIVATE, WEFT__WAIT_THREAD, &ts,
                NULL, 0);
    }
    errno = saved;
    return w->result;
}

size_t weft__park_count(const void *addr)
{
    weft__bucket *b = weft__park_lock(addr);
    size_t n = 0;
    for (weft_waiter *w = b->head; w; w = w->next)
        n += w->addr == addr;
    weft__park_unlock(b);
    return n;
}
