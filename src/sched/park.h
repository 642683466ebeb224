// SPDX-License-Identifier: MIT
/*
 * The parking lot: where tasks (and threads) wait for mutexes, conditions,
 * queues and groups.  park.c explains the protocol.
 */
#ifndef WEFT_SCHED_PARK_H
#define WEFT_SCHED_PARK_H

#include <weft/io.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct weft__bucket weft__bucket;

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* waiter.state */
enum {
    WEFT__WAIT_QUEUED = 0, /* queued, its owner not yet asleep */
    WEFT__WAIT_WOKEN = 1,  /* taken off the queue and woken: the owner may go */
    WEFT__WAIT_FIBER = 2,  /* asleep; wake() makes it runnable */
    WEFT__WAIT_THREAD = 3, /* a thread asleep in futex_wait on `state` */
};

/* One waiting task, on its own stack.  Queued under its bucket's lock; the
   one who takes it off the queue (a waker, or a canceler) owns it until it
   sets state to WOKEN. */
struct weft_waiter {
    weft_waiter *next, *prev;
    const void *addr; /* what it waits on */
    uintptr_t kind;   /* the object's own tag (queue: put or get) */
    void *data;       /* the object's own payload (queue: the element) */
    int result;       /* set by whoever dequeues it */
    bool cancelable;
    /* Called under the bucket lock when a cancel takes the waiter off its
       queue (last: no other waiter on addr remains); may be NULL. */
    void (*on_cancel)(weft_waiter *w, bool last);
    /* Set by the Io's wait before it sleeps as WAIT_FIBER. */
    void (*wake)(weft_waiter *w);
    /* Who waits, for a canceler's search: set by the Io's wait, after the
       waiter is queued, so other cancelers may read them meanwhile. */
    _Atomic(void *) task;
    _Atomic uint64_t task_id;
    _Atomic uint32_t state;
};

void weft__waiter_init(weft_waiter *w, const void *addr, uintptr_t kind, void *data,
                       bool cancelable);

/* The bucket addr hashes to, locked / unlocked. */
weft__bucket *weft__park_lock(const void *addr);
void weft__park_unlock(weft__bucket *b);
/* Under the lock: queue w at the tail of its address's waiters. */
void weft__park_enqueue(weft__bucket *b, weft_waiter *w);
/* Under the lock: queue w ahead of every waiter. */
void weft__park_enqueue_front(weft__bucket *b, weft_waiter *w);
/* Under the lock: the first waiter on addr, or NULL. */
weft_waiter *weft__park_first(weft__bucket *b, const void *addr);
/* Under the lock: takes w off the queue; returns whether another waiter on
   the same address remains. */
bool weft__park_remove(weft__bucket *b, weft_waiter *w);
/* Under the lock: takes every waiter on addr off the queue, linked through
   ->next in queue order. */
weft_waiter *weft__park_remove_all(weft__bucket *b, const void *addr);
/* After the lock is dropped: lets a dequeued waiter go (result already set).
   w may be gone once this returns. */
void weft__waiter_wake(weft_waiter *w);
/* Wakes every waiter of a list from weft__park_remove_all with result. */
void weft__waiter_wake_list(weft_waiter *list, int result);

/* Waits through the Io: io.vtable->wait. */
static inline int weft__park_wait(weft_io io, weft_waiter *w)
{
    return io.vtable->wait(io.userdata, w);
}

/* For the Io implementations. */
/* A task's own cancel, before it sleeps: takes w off its queue if it is
   still there (true: the task may return -ECANCELED at once). */
bool weft__park_withdraw(weft_waiter *w);
/* The same, with another result (-ETIMEDOUT for a deadline). */
bool weft__park_withdraw_with(weft_waiter *w, int result);
/* A canceler: takes the waiter of task/task_id off bucket b's queue, if it
   is there, and wakes it with -ECANCELED. */
void weft__park_cancel(weft__bucket *b, const void *task, uint64_t task_id);
/* The same with another result (-ETIMEDOUT: a deadline). */
void weft__park_cancel_with(weft__bucket *b, const void *task, uint64_t task_id, int result);
/* The bucket a waiter is queued in (what a canceler needs), and its index
   in the table (what a task's cancel word holds). */
weft__bucket *weft__park_bucket(const void *addr);
unsigned weft__park_bucket_index(const void *addr);
weft__bucket *weft__park_bucket_at(unsigned index);
/* How many wait on addr now (tests and debugging). */
size_t weft__park_count(const void *addr);
/* A thread's wait: futex on w->state. */
int weft__park_wait_thread(weft_waiter *w);
/* The same until a CLOCK_MONOTONIC deadline (INT64_MAX: none) if w is
   cancelable: then -ETIMEDOUT, unless a waker dequeued it first. */
int weft__park_wait_thread_until(weft_waiter *w, int64_t deadline_ns);

#endif
