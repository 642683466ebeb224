/*
 * A worker's run queue: a bounded ring of task pointers, FIFO, that the
 * owner pushes at the tail and pops at the head, and that other workers
 * steal half of (Go's runq, with the same discipline).
 *
 * Only the owner writes `tail`, with release, after filling the slot.
 * `head` moves by CAS, from the owner popping one or from a thief taking
 * half; the CAS decides who owns the slots read before it, which is why a
 * slot may be read (relaxed) by a thief that then loses the race.  A full
 * queue moves half of itself to the global queue.
 */
#ifndef WEFT_SCHED_RUNQ_H
#define WEFT_SCHED_RUNQ_H

#include "sched.h"

#define WEFT__RUNQ_MASK (WEFT__RUNQ_SIZE - 1)

/* Full queue: moves half of it, and t, to the global queue.  false if a
   thief moved head meanwhile (then there is room again). */
static inline bool weft__runq_put_slow(weft__worker *w, weft__task *t, uint32_t h, uint32_t tl)
{
    weft__task *batch[WEFT__RUNQ_SIZE / 2 + 1];
    uint32_t n = (tl - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->q.slot[(h + i) & WEFT__RUNQ_MASK],
                                        memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&w->q.head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = t;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->link = batch[i + 1];
    weft__global_push(w->sched, batch[0], batch[n], n + 1);
    return true;
}

/* Owner only. */
static inline void weft__runq_put(weft__worker *w, weft__task *t)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->q.head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->q.tail, memory_order_relaxed);
        if (tl - h < WEFT__RUNQ_SIZE) {
            atomic_store_explicit(&w->q.slot[tl & WEFT__RUNQ_MASK], t, memory_order_relaxed);
            atomic_store_explicit(&w->q.tail, tl + 1, memory_order_release);
            return;
        }
        if (weft__runq_put_slow(w, t, h, tl))
            return;
    }
}

/* Owner only. */
static inline weft__task *weft__runq_get(weft__worker *w)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->q.head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->q.tail, memory_order_relaxed);
        if (tl == h)
            return NULL;
        weft__task *t = atomic_load_explicit(&w->q.slot[h & WEFT__RUNQ_MASK], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->q.head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return t;
    }
}

static inline bool weft__runq_empty(weft__worker *w)
{
    uint32_t h = atomic_load_explicit(&w->q.head, memory_order_acquire);
    uint32_t tl = atomic_load_explicit(&w->q.tail, memory_order_acquire);
    return h == tl && !atomic_load_explicit(&w->next, memory_order_acquire);
}

/* A thief (w, whose own queue is empty) takes half of v's queue into its
   own, and returns one of them to run.  take_next: also take v's next
   slot when its queue is empty. */
static inline weft__task *weft__runq_steal(weft__worker *w, weft__worker *v, bool take_next)
{
    uint32_t wt = atomic_load_explicit(&w->q.tail, memory_order_relaxed);
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->q.head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&v->q.tail, memory_order_acquire);
        uint32_t n = tl - h;
        n -= n / 2;
        if (n == 0) {
            if (!take_next)
                return NULL;
            weft__task *t = atomic_load_explicit(&v->next, memory_order_relaxed);
            if (t && atomic_compare_exchange_strong_explicit(&v->next, &t, NULL,
                                                             memory_order_acq_rel,
                                                             memory_order_relaxed))
                return t;
            return NULL;
        }
        if (n > WEFT__RUNQ_SIZE / 2)
            continue; /* h and tl read at different times */
        for (uint32_t i = 0; i < n; i++) {
            weft__task *t = atomic_load_explicit(&v->q.slot[(h + i) & WEFT__RUNQ_MASK],
                                                 memory_order_relaxed);
            atomic_store_explicit(&w->q.slot[(wt + i) & WEFT__RUNQ_MASK], t, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(&v->q.head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        n--;
        weft__task *t = atomic_load_explicit(&w->q.slot[(wt + n) & WEFT__RUNQ_MASK],
                                             memory_order_relaxed);
        if (n)
            atomic_store_explicit(&w->q.tail, wt + n, memory_order_release);
        return t;
    }
}

#endif
