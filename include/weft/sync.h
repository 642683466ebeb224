// SPDX-License-Identifier: MIT
/*
 * Synchronisation for tasks: groups, mutexes, conditions and bounded
 * queues.  Included by <weft/weft.h>.
 *
 * None of these ever blocks a worker thread: a task that has to wait is
 * parked and its worker runs something else.  The uncontended paths below
 * are inline atomics on the objects' public words; only waiting (and
 * waking a waiter) leaves the header, through the weft_io the caller
 * passes.  docs/sync.md has the guarantees, the fairness policy and what
 * cancellation does to each call.
 *
 * The fields of these structs are public only so that the objects can be
 * embedded and statically initialised; touch them through the functions.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- mutex ------------------------------------------------------------------ */

/* One 32-bit word: bit 0 locked, bit 1 tasks are parked on it (bits 2 and
   3 are the slow path's).  A running task may take a released mutex ahead
   of a parked one that was just woken, but a parked task that loses twice
   is handed the mutex directly: nobody starves (docs/sync.md). */
typedef struct weft_mutex {
    unsigned int state_;
} weft_mutex;
#define WEFT_MUTEX_INIT                                                                            \
    {                                                                                              \
        0u                                                                                         \
    }

#define WEFT_MUTEX_LOCKED_ 1u
#define WEFT_MUTEX_PARKED_ 2u

WEFT_API int weft_mutex_lock_slow_(weft_io io, weft_mutex *m, bool cancelable);
WEFT_API void weft_mutex_unlock_slow_(weft_mutex *m);

/* Takes m, waiting if another task holds it.  0, or -ECANCELED if the
   calling task is canceled while it would wait (a free mutex is taken even
   by a canceled task). */
static inline int weft_mutex_lock(weft_io io, weft_mutex *m)
{
    unsigned int unlocked = 0;
    if (__atomic_compare_exchange_n(&m->state_, &unlocked, WEFT_MUTEX_LOCKED_, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    return weft_mutex_lock_slow_(io, m, true);
}

/* As weft_mutex_lock, but a cancel does not interrupt the wait. */
static inline void weft_mutex_lock_uncancelable(weft_io io, weft_mutex *m)
{
    unsigned int unlocked = 0;
    if (!__atomic_compare_exchange_n(&m->state_, &unlocked, WEFT_MUTEX_LOCKED_, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        (void)weft_mutex_lock_slow_(io, m, false);
}

/* Takes m if it is free; never waits. */
static inline bool weft_mutex_trylock(weft_mutex *m)
{
    unsigned int s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);
    while (!(s & WEFT_MUTEX_LOCKED_))
        if (__atomic_compare_exchange_n(&m->state_, &s, s | WEFT_MUTEX_LOCKED_, true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return true;
    return false;
}

/* Releases m, waking the first parked task if there is one (or handing m
   to it, if it has lost twice).
   Unlocking a mutex that is not locked aborts with a message.  (A mutex
   records no owner: unlocking one another task holds is not caught.) */
static inline void weft_mutex_unlock(weft_io io, weft_mutex *m)
{
    (void)io;
    unsigned int locked = WEFT_MUTEX_LOCKED_;
    if (!__atomic_compare_exchange_n(&m->state_, &locked, 0u, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        weft_mutex_unlock_slow_(m);
}

/* ---- condition -------------------------------------------------------------- */

/* One 32-bit word: nonzero while tasks may be waiting on it. */
typedef struct weft_cond {
    unsigned int waiters_;
} weft_cond;
#define WEFT_COND_INIT                                                                             \
    {                                                                                              \
        0u                                                                                         \
    }

WEFT_API int weft_cond_wait(weft_io io, weft_cond *c, weft_mutex *m);
WEFT_API void weft_cond_wake_(weft_cond *c, bool all);

/* Wakes one task waiting on c (the longest waiting), if any. */
static inline void weft_cond_signal(weft_io io, weft_cond *c)
{
    (void)io;
    if (__atomic_load_n(&c->waiters_, __ATOMIC_RELAXED))
        weft_cond_wake_(c, false);
}

/* Wakes every task waiting on c. */
static inline void weft_cond_broadcast(weft_io io, weft_cond *c)
{
    (void)io;
    if (__atomic_load_n(&c->waiters_, __ATOMIC_RELAXED))
        weft_cond_wake_(c, true);
}

/* ---- queue ------------------------------------------------------------------ */

/* A bounded MPMC channel of fixed-size elements; see weft_queue_create in
   docs/sync.md.  Opaque. */
typedef struct weft_queue weft_queue;

/* capacity elements of elem_size bytes each (capacity 0: every put waits
   for a get, a rendezvous).  0, -EINVAL (elem_size 0, or the sizes
   overflow), -ENOMEM. */
WEFT_API int weft_queue_create(weft_queue **q, size_t elem_size, size_t capacity);
/* Frees q.  Tasks still waiting on it is a programming error: abort. */
WEFT_API void weft_queue_destroy(weft_queue *q);
/* Copies elem into q, waiting while q is full.  0; -EPIPE once q is closed
   (the element is not queued); -ECANCELED if the calling task is canceled
   while it would wait (the element is not queued). */
WEFT_API int weft_queue_put(weft_io io, weft_queue *q, const void *elem);
/* Copies the oldest element out of q into elem, waiting while q is empty.
   0; -EPIPE once q is closed and empty; -ECANCELED if the calling task is
   canceled while it would wait (nothing is taken). */
WEFT_API int weft_queue_get(weft_io io, weft_queue *q, void *elem);
/* Closes q: puts fail with -EPIPE from now on, gets drain what is queued
   and then fail with -EPIPE.  Wakes every waiter.  Closing twice is
   harmless. */
WEFT_API void weft_queue_close(weft_io io, weft_queue *q);

/* ---- group ------------------------------------------------------------------ */

/* A set of tasks started together and waited for (or canceled) together.
   Members need no await: each is released when it returns.  A group must
   be waited for, or canceled, before it goes out of scope. */
typedef struct weft_group {
    unsigned long count_; /* live members */
    unsigned long flags_;
    void *members_[2];
} weft_group;
#define WEFT_GROUP_INIT                                                                            \
    {                                                                                              \
        0ul, 0ul,                                                                                  \
        {                                                                                          \
            0, 0                                                                                   \
        }                                                                                          \
    }

/* Starts fn(io, ctx copy, NULL) as a member of g.  Never fails: if no task
   can be made, fn runs inline. */
static inline void weft_group_async(weft_io io, weft_group *g, weft_task_fn *fn, const void *ctx,
                                    size_t ctx_len)
{
    io.vtable->group_async(io.userdata, g, fn, ctx, ctx_len);
}

/* Starts fn as a member of g, running concurrently with the caller, or
   fails: 0, -ENOMEM, -EOPNOTSUPP. */
static inline int weft_group_concurrent(weft_io io, weft_group *g, weft_task_fn *fn,
                                        const void *ctx, size_t ctx_len)
{
    return io.vtable->group_concurrent(io.userdata, g, fn, ctx, ctx_len);
}

/* Returns once every member of g has finished (members started meanwhile
   included).  If the calling task is canceled while it waits, the cancel
   is passed on to every member and the wait goes on until all are done. */
static inline void weft_group_wait(weft_io io, weft_group *g)
{
    if (__atomic_load_n(&g->count_, __ATOMIC_ACQUIRE) != 0)
        io.vtable->group_wait(io.userdata, g);
}

/* Cancels every member of g (and those that members add meanwhile), then
   waits for all of them. */
static inline void weft_group_cancel(weft_io io, weft_group *g)
{
    if (__atomic_load_n(&g->count_, __ATOMIC_ACQUIRE) != 0)
        io.vtable->group_cancel(io.userdata, g);
}

/* Checks that g is finished with: a group with live members aborts with a
   message.  Optional; it frees nothing. */
WEFT_API void weft_group_deinit(weft_group *g);

#ifdef __cplusplus
}
#endif

#endif
