// SPDX-License-Identifier: MIT
/*
 * Groups on the event loop.
 *
 * A member is a detached task (deinit waits for it) that also sits on its
 * group's member list.  The list, the flags and the count change under the
 * bucket lock of the group's address, which is also where group_wait and
 * group_cancel park.  A member leaving takes itself off the list, wakes
 * the waiters if it was the last, and decrements the count as its very
 * last touch of the group: a waiter that sees the count at zero may free
 * the group at once.
 *
 * group_cancel marks CANCELING (members started from then on are canceled
 * before they run) and walks the list, moving each member to the canceled
 * list and marking it canceled.  While the bucket lock is held no member
 * can leave, so each is alive; a member parked on some other object's
 * bucket is interrupted only after the lock is dropped (two buckets are
 * never held at once), looked up by its task id since it may be gone by
 * then.  The walk goes in batches so the list is never copied.
 *
 * Waiting and canceling work from any Io: a plain thread may wait for (or
 * cancel) a group whose members run on an event loop.  It parks in the
 * same bucket, as a thread, and its cancels reach the members' rings
 * through the loop's foreign-thread path.
 */
#include "park.h"
#include "sched.h"

#include <weft/sync.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define CANCELING 1ul
#define POOL      2ul /* the members are a thread pool's tasks (thread_pool.c) */
#define BATCH     32

/* The thread pool's members are not this file's tasks: a group of them
   is waited for and canceled through the pool's Io (which any thread may
   use), never through another Io. */
static void check_not_pool(weft_group *g, const char *who)
{
    weft__bucket *b = weft__park_lock(g);
    bool pool = (g->flags_ & POOL) && __atomic_load_n(&g->count_, __ATOMIC_RELAXED) != 0;
    weft__park_unlock(b);
    if (pool) {
        fprintf(stderr,
                "weft: %s: group %p has members on a thread pool; call it through that pool's "
                "Io (any thread may)\n",
                who, (void *)g);
        abort();
    }
}

static weft__task **list_of(weft_group *g, bool canceled)
{
    return (weft__task **)&g->members_[canceled ? 1 : 0];
}

static void list_add(weft_group *g, weft__task *t, bool canceled)
{
    weft__task **head = list_of(g, canceled);
    t->gcanceled = canceled;
    t->gprev = NULL;
    t->gnext = *head;
    if (*head)
        (*head)->gprev = t;
    *head = t;
}

static void list_del(weft_group *g, weft__task *t)
{
    if (t->gprev)
        t->gprev->gnext = t->gnext;
    else
        *list_of(g, t->gcanceled) = t->gnext;
    if (t->gnext)
        t->gnext->gprev = t->gprev;
}

int weft__group_add(weft__sched *s, weft_group *g, weft_task_fn *fn, const void *ctx,
                    size_t ctx_len, bool must)
{
    int err = 0;
    weft__task *t = weft__task_create(s, fn, ctx, ctx_len, 0, WEFT__TASK_DETACHED, &err);
    if (!t) {
        if (!must)
            return err;
        weft__task_inline(s, fn, ctx, ctx_len, 0, WEFT__TASK_DETACHED);
        return 0;
    }
    t->group = g;
    weft__bucket *b = weft__park_lock(g);
    list_add(g, t, false);
    __atomic_add_fetch(&g->count_, 1, __ATOMIC_RELAXED);
    if (g->flags_ & CANCELING) {
        /* Not yet running: nothing to interrupt. */
        list_del(g, t);
        list_add(g, t, true);
        atomic_fetch_or_explicit(&t->cancel, WEFT__CANCEL_REQUESTED, memory_order_relaxed);
    }
    weft__park_unlock(b);
    weft__sched_ready(weft__worker_current(), t);
    return 0;
}

void weft__group_leave(weft__task *t)
{
    weft_group *g = t->group;
    weft__bucket *b = weft__park_lock(g);
    list_del(g, t);
    weft_waiter *waiters = NULL;
    if (__atomic_load_n(&g->count_, __ATOMIC_RELAXED) == 1)
        waiters = weft__park_remove_all(b, g);
    __atomic_sub_fetch(&g->count_, 1, __ATOMIC_RELEASE); /* the last touch of g */
    weft__park_unlock(b);
    weft__waiter_wake_list(waiters, 0);
}

/* Parks until the group has no members.  0, or -ECANCELED. */
static int wait_empty(weft_io io, weft_group *g, bool cancelable)
{
    for (;;) {
        weft__bucket *b = weft__park_lock(g);
        if (__atomic_load_n(&g->count_, __ATOMIC_ACQUIRE) == 0) {
            weft__park_unlock(b);
            return 0;
        }
        weft_waiter w;
        weft__waiter_init(&w, g, 0, NULL, cancelable);
        weft__park_enqueue(b, &w);
        weft__park_unlock(b);
        int rc = weft__park_wait(io, &w);
        if (rc < 0)
            return rc;
    }
}

/* A member waiting for its own group would wait for itself. */
static void check_not_member(weft_group *g, const char *who)
{
    weft__task *me = weft__worker_current() ? weft__task_current() : NULL;
    if (me && me->group == g) {
        fprintf(stderr, "weft: %s: called by a member of group %p, which would wait for itself\n",
                who, (void *)g);
        abort();
    }
}

void weft__group_wait(weft_io io, weft_group *g)
{
    check_not_pool(g, "weft_group_wait");
    check_not_member(g, "weft_group_wait");
    if (wait_empty(io, g, true) < 0) /* canceled, or past its deadline */
        weft__group_cancel(io, g); /* the members go with their waiter */
}

void weft__group_cancel(weft_io io, weft_group *g)
{
    check_not_pool(g, "weft_group_cancel");
    check_not_member(g, "weft_group_cancel");
    struct {
        weft__task *t;
        uint64_t id;
        void *key;
    } parked[BATCH];
    bool more;
    do {
        unsigned n = 0;
        weft__bucket *b = weft__park_lock(g);
        g->flags_ |= CANCELING;
        weft__task *t;
        while (n < BATCH && (t = *list_of(g, false))) {
            list_del(g, t);
            list_add(g, t, true);
            void *key = NULL;
            unsigned where = weft__cancel_mark(t, &key);
            if (where & WEFT__CANCEL_WHERE_PARK) {
                parked[n].t = t;
                parked[n].id = t->id;
                parked[n].key = weft__park_bucket_at(where & WEFT__CANCEL_BUCKET_MASK);
                n++;
            } else {
                weft__cancel_interrupt(t, where, key);
            }
        }
        more = *list_of(g, false) != NULL;
        weft__park_unlock(b);
        for (unsigned i = 0; i < n; i++)
            weft__park_cancel(parked[i].key, parked[i].t, parked[i].id);
    } while (more);
    wait_empty(io, g, false);
    weft__bucket *b = weft__park_lock(g);
    if (__atomic_load_n(&g->count_, __ATOMIC_RELAXED) == 0)
        g->flags_ &= ~CANCELING;
    weft__park_unlock(b);
}

void weft_group_deinit(weft_group *g)
{
    unsigned long n = __atomic_load_n(&g->count_, __ATOMIC_ACQUIRE);
    if (n) {
        fprintf(stderr,
                "weft: weft_group_deinit: group %p still has %lu live member%s (wait for or "
                "cancel the group first)\n",
                (void *)g, n, n == 1 ? "" : "s");
        abort();
    }
}
