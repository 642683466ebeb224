// SPDX-License-Identifier: MIT
/*
 * The run queue under contention: an owner pushing and popping at both
 * ends while thieves steal batches.  Every task must be taken exactly once
 * (a lost or doubled task is a hang or two threads on one stack).
 */
#include "helpers.h"

#include "sched/runq.h"

#include <pthread.h>
#include <stdatomic.h>

enum { THIEVES = 3 };

static weft__sched sched;
static weft__worker workers[1 + THIEVES];
static atomic_int done;

struct fake {
    weft__task task;
    atomic_int taken;
};

static void take(weft__task *t)
{
    int was = atomic_fetch_add(&((struct fake *)t)->taken, 1);
    cr_assert_eq(was, 0, "task %p taken twice", (void *)t);
}

static void *thief(void *arg)
{
    weft__worker *w = arg;
    uint32_t rng = w->index * 7919u + 1;
    while (!atomic_load(&done)) {
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
        weft__task *t = weft__runq_steal(w, &workers[0], rng & 1);
        if (!t)
            continue;
        take(t);
        while ((t = weft__runq_pop(w, rng & 2)))
            take(t);
    }
    return NULL;
}

Test(runq, owner_and_thieves_take_every_task_exactly_once, .timeout = 120)
{
    sched.nworkers = 1 + THIEVES;
    sched.workers = workers;
    pthread_mutex_init(&sched.global_lock, NULL);
    for (unsigned i = 0; i < 1 + THIEVES; i++) {
        workers[i].sched = &sched;
        workers[i].index = i;
    }
    size_t n = test_scaled(2000000);
    if (test_on_valgrind())
        n /= 20; /* one thread at a time: the thieves mostly wait their turn */
    struct fake *tasks = aligned_alloc(64, n * sizeof *tasks);
    cr_assert_not_null(tasks);
    memset(tasks, 0, n * sizeof *tasks);
    pthread_t th[THIEVES];
    for (int i = 0; i < THIEVES; i++)
        pthread_create(&th[i], NULL, thief, &workers[1 + i]);

    weft__worker *w = &workers[0];
    uint32_t rng = 12345;
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
        if (rng % 3 == 0)
            weft__runq_push_back(w, &tasks[i].task);
        else
            weft__runq_push(w, &tasks[i].task);
        /* Pop a little less often than we push, so the queue fills, spills
           to the global queue, and offers thieves something. */
        if (rng % 8 < 3) {
            weft__task *t = weft__runq_pop(w, rng % 61 == 0);
            if (t)
                take(t);
        }
    }
    weft__task *t;
    while ((t = weft__runq_pop(w, false)))
        take(t);
    atomic_store(&done, 1);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 1; i < 1 + THIEVES; i++)
        while ((t = weft__runq_pop(&workers[i], false)))
            take(t);
    for (t = sched.global_head; t; t = t->link)
        take(t);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&tasks[i].taken), 1, "task %zu taken %d times", i,
                     atomic_load(&tasks[i].taken));
    free(tasks);
}
