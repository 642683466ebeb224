// SPDX-License-Identifier: MIT
/*
 * Mutex, condition and queue: the slow paths behind <weft/sync.h>.  They
 * are the same for every Io; only the sleeping differs (io.vtable->wait).
 *
 * Mutex.  state: LOCKED | PARKED | WOKEN | HANDOFF.  Bounded barging:
 * unlock normally releases the mutex and wakes the first parked task
 * (WOKEN: at most one woken task is on its way at a time), which then
 * competes for it with whoever comes along, the way Go's and the kernel's
 * mutexes work -- a running task takes a free mutex straight away, so under
 * contention one task runs many critical sections in a row instead of
 * paying a context switch for each.  A woken task that loses goes back to
 * the front of the queue; one that has lost BARGE_LIMIT times parks asking
 * for HANDOFF, and the next unlock passes the mutex to the first waiter
 * directly (it stays LOCKED), with no race.  So a parked task waits for at
 * most the tasks ahead of it, each served within BARGE_LIMIT + 1 releases:
 * nobody starves.  Lockers queue themselves under the bucket lock after
 * checking that the mutex is still LOCKED with PARKED set, so the unlocker,
 * who takes the same lock to pick a waiter, always sees them.  The last
 * waiter leaving by cancel clears PARKED and HANDOFF.
 *
 * Condition.  The word is nonzero while tasks may wait.  A waiter queues
 * itself under the bucket lock, sets the word, and only then unlocks the
 * mutex, so a signal sent by anyone who took the mutex after it finds it.
 *
 * Queue.  The buffer and both kinds of waiters live under the bucket lock
 * of the queue's address.  Getters wait only when the buffer is empty and
 * putters only when it is full, so at most one kind waits at a time
 * (except at capacity 0, where putters wait for getters).  A put finding a
 * getter waiting copies the element straight into the getter; a get that
 * frees a slot refills it from the first waiting putter.  An element moves
 * only while its waiter is dequeued, under the lock, so a canceled put or
 * get moved nothing.
 */
#include "park.h"

#include <weft/sync.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCKED  WEFT_MUTEX_LOCKED_
#define PARKED  WEFT_MUTEX_PARKED_
#define WOKEN   4u
#define HANDOFF 8u

/* Races a woken task may lose before it asks for the mutex to be handed to
   it. */
#define BARGE_LIMIT 2

/* What a parked locker is woken with (waiter.result). */
enum { RETRY = 1, HANDED = 0 };

/* ---- mutex ------------------------------------------------------------------ */

static void mutex_on_cancel(weft_waiter *w, bool last)
{
    if (last)
        __atomic_fetch_and(&((weft_mutex *)w->addr)->state_, ~(PARKED | HANDOFF), __ATOMIC_RELAXED);
}

int weft_mutex_lock_slow_(weft_io io, weft_mutex *m, bool cancelable)
{
    unsigned spins = 0, lost = 0;
    bool woken = false; /* this task holds the WOKEN token */
    for (;;) {
        unsigned int s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);
        if (!(s & LOCKED)) {
            unsigned int next = (s | LOCKED) & ~(woken ? WOKEN : 0u);
            if (__atomic_compare_exchange_n(&m->state_, &s, next, true, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        /* A few looks before parking: a holder on another worker may be
           about to let go. */
        if (!(s & PARKED) && spins++ < 8) {
            weft__cpu_relax();
            continue;
        }
        unsigned int next = s | PARKED;
        if (woken)
            next &= ~WOKEN;
        if (lost >= BARGE_LIMIT)
            next |= HANDOFF;
        if (next != s && !__atomic_compare_exchange_n(&m->state_, &s, next, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
            continue;
        woken = false;
        weft_waiter w;
        weft__waiter_init(&w, m, 0, NULL, cancelable);
        w.on_cancel = mutex_on_cancel;
        weft__bucket *b = weft__park_lock(m);
        unsigned int now = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);
        if ((now & (LOCKED | PARKED)) != (LOCKED | PARKED)) {
            weft__park_unlock(b);
            continue;
        }
        /* A task that lost a race keeps its place at the front. */
        if (lost)
            weft__park_enqueue_front(b, &w);
        else
            weft__park_enqueue(b, &w);
        weft__park_unlock(b);
        int rc = weft__park_wait(io, &w);
        if (rc != RETRY)
            return rc; /* HANDED (0: the mutex is ours) or -ECANCELED */
        woken = true;
        lost++;
        spins = 0;
    }
}

void weft_mutex_unlock_slow_(weft_mutex *m)
{
    for (;;) {
        unsigned int s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);
        if (!(s & LOCKED)) {
            fprintf(stderr, "weft: weft_mutex_unlock: mutex %p is not locked\n", (void *)m);
            abort();
        }
        if (s & HANDOFF) {
            /* The first waiter has lost enough races: it gets the mutex
               without one.  It stays LOCKED throughout. */
            weft__bucket *b = weft__park_lock(m);
            weft_waiter *w = weft__park_first(b, m);
            if (w) {
                bool more = weft__park_remove(b, w);
                __atomic_fetch_and(&m->state_, ~(HANDOFF | (more ? 0u : PARKED)), __ATOMIC_RELAXED);
                w->result = HANDED;
            } else {
                __atomic_fetch_and(&m->state_, ~(LOCKED | HANDOFF | PARKED), __ATOMIC_RELEASE);
            }
            weft__park_unlock(b);
            if (w)
                weft__waiter_wake(w); /* release: the critical section goes with it */
            return;
        }
        bool wake = (s & PARKED) && !(s & WOKEN);
        unsigned int next = (s & ~LOCKED) | (wake ? WOKEN : 0u);
        if (!__atomic_compare_exchange_n(&m->state_, &s, next, true, __ATOMIC_RELEASE,
                                         __ATOMIC_RELAXED))
            continue;
        if (!wake)
            return;
        weft__bucket *b = weft__park_lock(m);
        weft_waiter *w = weft__park_first(b, m);
        if (w) {
            if (!weft__park_remove(b, w))
                __atomic_fetch_and(&m->state_, ~PARKED, __ATOMIC_RELAXED);
            w->result = RETRY;
        } else {
            /* Everyone left (canceled): nobody to hand the token to. */
            __atomic_fetch_and(&m->state_, ~(WOKEN | PARKED), __ATOMIC_RELAXED);
        }
        weft__park_unlock(b);
        if (w)
            weft__waiter_wake(w);
        return;
    }
}

/* ---- condition -------------------------------------------------------------- */

static void cond_on_cancel(weft_waiter *w, bool last)
{
    if (last)
        __atomic_store_n(&((weft_cond *)w->addr)->waiters_, 0u, __ATOMIC_RELAXED);
}

int weft_cond_wait(weft_io io, weft_cond *c, weft_mutex *m)
{
    if (weft_cancel_requested(io))
        return -ECANCELED;
    weft_waiter w;
    weft__waiter_init(&w, c, 0, NULL, true);
    w.on_cancel = cond_on_cancel;
    weft__bucket *b = weft__park_lock(c);
    __atomic_store_n(&c->waiters_, 1u, __ATOMIC_RELAXED);
    weft__park_enqueue(b, &w);
    weft__park_unlock(b);
    weft_mutex_unlock(io, m);
    int rc = weft__park_wait(io, &w);
    weft_mutex_lock_uncancelable(io, m);
    return rc;
}

void weft_cond_wake_(weft_cond *c, bool all)
{
    weft__bucket *b = weft__park_lock(c);
    weft_waiter *list;
    if (all) {
        list = weft__park_remove_all(b, c);
        __atomic_store_n(&c->waiters_, 0u, __ATOMIC_RELAXED);
    } else {
        list = weft__park_first(b, c);
        if (list && !weft__park_remove(b, list))
            __atomic_store_n(&c->waiters_, 0u, __ATOMIC_RELAXED);
    }
    weft__park_unlock(b);
    weft__waiter_wake_list(list, 0);
}

/* ---- queue ------------------------------------------------------------------ */

struct weft_queue {
    size_t elem_size;
    size_t capacity;
    size_t head;  /* index of the oldest element */
    size_t count; /* elements buffered */
    bool closed;
    unsigned char *buf;
};

enum { PUT = 1, GET = 2 };

int weft_queue_create(weft_queue **out, size_t elem_size, size_t capacity)
{
    if (!out || elem_size == 0 || (capacity && elem_size > SIZE_MAX / capacity))
        return -EINVAL;
    weft_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->elem_size = elem_size;
    q->capacity = capacity;
    if (capacity && !(q->buf = malloc(elem_size * capacity))) {
        free(q);
        return -ENOMEM;
    }
    *out = q;
    return 0;
}

void weft_queue_destroy(weft_queue *q)
{
    if (!q)
        return;
    weft__bucket *b = weft__park_lock(q);
    weft_waiter *w = weft__park_first(b, q);
    weft__park_unlock(b);
    if (w) {
        fprintf(stderr, "weft: weft_queue_destroy: tasks are still waiting %s queue %p\n",
                w->kind == PUT ? "to put into" : "to get from", (void *)q);
        abort();
    }
    free(q->buf);
    free(q);
}

static inline unsigned char *slot(weft_queue *q, size_t i)
{
    return q->buf + ((q->head + i) % q->capacity) * q->elem_size;
}

int weft_queue_put(weft_io io, weft_queue *q, const void *elem)
{
    weft__bucket *b = weft__park_lock(q);
    if (q->closed) {
        weft__park_unlock(b);
        return -EPIPE;
    }
    weft_waiter *w = NULL;
    if (q->count == 0 && (w = weft__park_first(b, q)) && w->kind == GET) {
        memcpy(w->data, elem, q->elem_size);
        weft__park_remove(b, w);
        w->result = 0;
        weft__park_unlock(b);
        weft__waiter_wake(w);
        return 0;
    }
    if (q->count < q->capacity) {
        memcpy(slot(q, q->count), elem, q->elem_size);
        q->count++;
        weft__park_unlock(b);
        return 0;
    }
    weft_waiter me;
    weft__waiter_init(&me, q, PUT, (void *)elem, true);
    weft__park_enqueue(b, &me);
    weft__park_unlock(b);
    return weft__park_wait(io, &me);
}

int weft_queue_get(weft_io io, weft_queue *q, void *elem)
{
    weft__bucket *b = weft__park_lock(q);
    weft_waiter *w = weft__park_first(b, q);
    if (w && w->kind != PUT)
        w = NULL;
    if (q->count) {
        memcpy(elem, slot(q, 0), q->elem_size);
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        if (w) { /* refill the freed slot from the first waiting putter */
            memcpy(slot(q, q->count), w->data, q->elem_size);
            q->count++;
        }
    } else if (w) { /* capacity 0: straight from the putter */
        memcpy(elem, w->data, q->elem_size);
    } else if (q->closed) {
        weft__park_unlock(b);
        return -EPIPE;
    } else {
        weft_waiter me;
        weft__waiter_init(&me, q, GET, elem, true);
        weft__park_enqueue(b, &me);
        weft__park_unlock(b);
        return weft__park_wait(io, &me);
    }
    if (w) {
        weft__park_remove(b, w);
        w->result = 0;
    }
    weft__park_unlock(b);
    if (w)
        weft__waiter_wake(w);
    return 0;
}

void weft_queue_close(weft_io io, weft_queue *q)
{
    (void)io;
    weft__bucket *b = weft__park_lock(q);
    q->closed = true;
    /* Putters cannot finish now; getters wait only on an empty queue. */
    weft_waiter *list = weft__park_remove_all(b, q);
    weft__park_unlock(b);
    weft__waiter_wake_list(list, -EPIPE);
}
