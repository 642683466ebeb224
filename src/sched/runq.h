// SPDX-License-Identifier: MIT
/*
 * A worker's run queue: a bounded ring of task pointers.  The owner pushes
 * and pops at the tail (LIFO: a task it just spawned or woke runs next,
 * which keeps fork-join depth-first, its memory bounded and its stacks
 * cache-hot), puts yielding tasks at the head (they run after everything
 * already queued), and other workers steal half from the head (the oldest
 * work: in fork-join, the biggest subtrees).  A full queue moves half of
 * itself to the global queue.
 *
 * head and tail share one 64-bit word with a version, and every change to
 * either is a CAS on it that also bumps the version, so the owner's pops at
 * the tail and a thief's batch at the head can never both claim a slot.
 * The version matters: without it a pop and a push by the owner would put
 * the word back as a thief last read it, and the thief's CAS would succeed
 * on slots it read before the owner rewrote them (ABA).  Indices are 21
 * bits, taken modulo 2^21 (a multiple of the ring size); the version is the
 * remaining 22.  Slots are written before the CAS that
 * publishes them (release) and read before the CAS that claims them: a
 * reader that loses the CAS drops what it read.  Slots are relaxed atomics
 * because a losing reader may read one while the owner rewrites it.
 *
 * A loop's only worker has no thief (steals are between workers of one
 * loop; every other thread reaches a worker through its inbox or the
 * global queue), so its owner pushes and pops with a plain store of the
 * word: no locked instruction on its yield, spawn and wake-up paths (two
 * locked instructions were most of a yield's cost).  Others only read the
 * word (stats, the monitor).
 */
#ifndef WEFT_SCHED_RUNQ_H
#define WEFT_SCHED_RUNQ_H

#include "sched.h"

#define WEFT__RUNQ_MASK (WEFT__RUNQ_SIZE - 1)

#define WEFT__RUNQ_IDX_BITS 21
#define WEFT__RUNQ_IDX_MASK ((1u << WEFT__RUNQ_IDX_BITS) - 1)

static inline uint32_t weft__runq_head(uint64_t word)
{
    return (uint32_t)(word >> WEFT__RUNQ_IDX_BITS) & WEFT__RUNQ_IDX_MASK;
}

static inline uint32_t weft__runq_tail(uint64_t word)
{
    return (uint32_t)word & WEFT__RUNQ_IDX_MASK;
}

static inline uint32_t weft__runq_len(uint64_t word)
{
    return (weft__runq_tail(word) - weft__runq_head(word)) & WEFT__RUNQ_IDX_MASK;
}

/* The word that replaces `old`: new indices, next version. */
static inline uint64_t weft__runq_word(uint64_t old, uint32_t head, uint32_t tail)
{
    uint64_t version = (old >> (2 * WEFT__RUNQ_IDX_BITS)) + 1;
    return version << (2 * WEFT__RUNQ_IDX_BITS) |
           (uint64_t)(head & WEFT__RUNQ_IDX_MASK) << WEFT__RUNQ_IDX_BITS |
           (tail & WEFT__RUNQ_IDX_MASK);
}

static inline weft__task *weft__runq_slot(weft__worker *w, uint32_t i)
{
    return atomic_load_explicit(&w->q.slot[i & WEFT__RUNQ_MASK], memory_order_relaxed);
}

static inline void weft__runq_set(weft__worker *w, uint32_t i, weft__task *t)
{
    atomic_store_explicit(&w->q.slot[i & WEFT__RUNQ_MASK], t, memory_order_relaxed);
}

/* Full queue: moves the older half, and t, to the global queue.  false if
   the word changed meanwhile (try again). */
static inline bool weft__runq_spill(weft__worker *w, weft__task *t, uint64_t word)
{
    uint32_t h = weft__runq_head(word), tl = weft__runq_tail(word);
    weft__task *batch[WEFT__RUNQ_SIZE / 2 + 1];
    uint32_t n = weft__runq_len(word) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = weft__runq_slot(w, h + i);
    if (!atomic_compare_exchange_strong_explicit(&w->q.word, &word,
                                                 weft__runq_word(word, h + n, tl),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    batch[n] = t;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->link = batch[i + 1];
    weft__global_push(w->sched, batch[0], batch[n], n + 1);
    return true;
}

/* Owner only: t goes at the tail (it runs next: LIFO) or at the head (it
   runs after everything queued). */
static inline void weft__runq_insert(weft__worker *w, weft__task *t, bool at_head)
{
    uint64_t word = atomic_load_explicit(&w->q.word, memory_order_acquire);
    for (;;) {
        uint32_t h = weft__runq_head(word), tl = weft__runq_tail(word);
        if (weft__runq_len(word) >= WEFT__RUNQ_SIZE) {
            if (weft__runq_spill(w, t, word))
                return;
            word = atomic_load_explicit(&w->q.word, memory_order_acquire);
            continue;
        }
        weft__runq_set(w, at_head ? h - 1 : tl, t);
        uint64_t next =
            at_head ? weft__runq_word(word, h - 1, tl) : weft__runq_word(word, h, tl + 1);
        if (w->q.solo) {
            atomic_store_explicit(&w->q.word, next, memory_order_release);
            return;
        }
        /* seq_cst (the same instruction as release on x86_64 and on
           aarch64's CASAL): a push that leaves a wake-up for later then
           reads the monitor's `dozing` (sched_ready), which pairs with the
           monitor's flag-then-look. */
        if (atomic_compare_exchange_weak_explicit(&w->q.word, &word, next, memory_order_seq_cst,
                                                  memory_order_acquire))
            return;
    }
}

static inline void weft__runq_push(weft__worker *w, weft__task *t)
{
    weft__runq_insert(w, t, false);
}

static inline void weft__runq_push_back(weft__worker *w, weft__task *t)
{
    weft__runq_insert(w, t, true);
}

/* Owner only.  fifo: take the oldest instead of the newest. */
static inline weft__task *weft__runq_pop(weft__worker *w, bool fifo)
{
    uint64_t word = atomic_load_explicit(&w->q.word, memory_order_acquire);
    for (;;) {
        uint32_t h = weft__runq_head(word), tl = weft__runq_tail(word);
        if (h == tl)
            return NULL;
        weft__task *t = weft__runq_slot(w, fifo ? h : tl - 1);
        uint64_t next = fifo ? weft__runq_word(word, h + 1, tl) : weft__runq_word(word, h, tl - 1);
        if (w->q.solo) {
            atomic_store_explicit(&w->q.word, next, memory_order_relaxed);
            return t;
        }
        if (atomic_compare_exchange_weak_explicit(&w->q.word, &word, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            return t;
    }
}

/* Owner only: how many more tasks fit before a push spills. */
static inline uint32_t weft__runq_room(weft__worker *w)
{
    uint64_t word = atomic_load_explicit(&w->q.word, memory_order_relaxed);
    return WEFT__RUNQ_SIZE - weft__runq_len(word);
}

static inline bool weft__runq_empty(weft__worker *w)
{
    return weft__runq_len(atomic_load_explicit(&w->q.word, memory_order_acquire)) == 0;
}

/* v's only queued task, or NULL (none, or more than one).  A hint. */
static inline weft__task *weft__runq_lone(weft__worker *v)
{
    uint64_t word = atomic_load_explicit(&v->q.word, memory_order_acquire);
    uint32_t h = weft__runq_head(word), tl = weft__runq_tail(word);
    return tl - h == 1 ? weft__runq_slot(v, h) : NULL;
}

/* A thief (w, whose own queue is empty) takes the older half of v's queue
   into its own and returns one of them to run.  last: a queue of one is
   taken too (else the half rounds down). */
static inline weft__task *weft__runq_steal(weft__worker *w, weft__worker *v, bool last)
{
    uint64_t mine = atomic_load_explicit(&w->q.word, memory_order_relaxed);
    uint32_t wt = weft__runq_tail(mine);
    uint64_t word = atomic_load_explicit(&v->q.word, memory_order_acquire);
    for (;;) {
        uint32_t h = weft__runq_head(word), tl = weft__runq_tail(word);
        uint32_t n = weft__runq_len(word);
        n = (n == 1 && last) ? 1 : n / 2;
        if (n == 0)
            return NULL;
        for (uint32_t i = 0; i < n; i++)
            weft__runq_set(w, wt + i, weft__runq_slot(v, h + i));
        if (!atomic_compare_exchange_weak_explicit(&v->q.word, &word,
                                                   weft__runq_word(word, h + n, tl),
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        /* Run the newest of the batch; publish the rest. */
        weft__task *t = weft__runq_slot(w, wt + n - 1);
        if (n > 1)
            atomic_store_explicit(&w->q.word,
                                  weft__runq_word(mine, weft__runq_head(mine), wt + n - 1),
                                  memory_order_release);
        return t;
    }
}

#endif
