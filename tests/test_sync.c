// SPDX-License-Identifier: MIT
/*
 * Groups, mutexes, conditions and queues (<weft/sync.h>), run against the
 * event loop with 1, 2 and 4 workers and against the blocking Io.  Tests
 * that need tasks to wait for each other skip on the blocking Io, which
 * runs every task inline; the blocking Io's own waiting (threads on a
 * futex) is tested with pthreads at the end.
 */
#include "contract.h"

#include "sched/park.h"
#include "sched/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define HOUR (3600LL * 1000000000LL)

/* Lets other tasks run until cond holds.  Not a sleep: every pass checks. */
#define YIELD_UNTIL(io, cond)                                                                      \
    do {                                                                                           \
        while (!(cond))                                                                            \
            weft_yield(io);                                                                        \
    } while (0)

/* Runs fn in a child process, which must abort with both strings on
   stderr. */
static void expect_abort(void (*fn)(void *), const char *a, const char *b)
{
    char out[4096];
    int st = test_run_child(fn, NULL, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x, stderr: %s", st, out);
    cr_assert(strstr(out, a) && strstr(out, b), "stderr: %s", out);
}

/* A one-worker loop in a death test's child (exit 3 if there is none). */
static weft_io child_loop(void)
{
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 1};
    if (weft_event_loop_init(&el, &o) != 0)
        _exit(3);
    return weft_event_loop_io(el);
}

bool weft__thread_pool_cancel_requested(weft_future *f);

static bool cancel_was_requested(const struct impl *im, weft_future *f)
{
    if (im->pool)
        return weft__thread_pool_cancel_requested(f);
    return atomic_load(&((weft__task *)f)->cancel) & WEFT__CANCEL_REQUESTED;
}

/* ---- mutex ------------------------------------------------------------------ */

struct counter {
    weft_mutex m;
    long value;
    long per_task;
    void *owner;
};

static void increment_many(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct counter *c = *(struct counter **)ctx;
    for (long i = 0; i < c->per_task; i++) {
        cr_assert_eq(weft_mutex_lock(io, &c->m), 0);
        void *prev = __atomic_exchange_n(&c->owner, weft__task_current(), __ATOMIC_RELAXED);
        cr_assert_null(prev, "two tasks hold the mutex at once");
        cr_assert(__atomic_load_n(&c->m.state_, __ATOMIC_RELAXED) & WEFT_MUTEX_LOCKED_);
        long v = c->value;
        /* Now and then give the mutex away while holding it, so that
           others queue on it even on one worker. */
        if (i % 64 == 0)
            weft_yield(io);
        c->value = v + 1;
        __atomic_store_n(&c->owner, NULL, __ATOMIC_RELAXED);
        weft_mutex_unlock(io, &c->m);
    }
}

CONTRACT(mutex, ten_thousand_tasks_increment_exactly, 240)
{
    (void)im;
    static struct counter c;
    c = (struct counter){WEFT_MUTEX_INIT, 0, 1000, NULL};
    long tasks = (long)test_scaled(10000);
    struct counter *p = &c;
    weft_group g = WEFT_GROUP_INIT;
    for (long i = 0; i < tasks; i++)
        weft_group_async(io, &g, increment_many, &p, sizeof p);
    weft_group_wait(io, &g);
    weft_group_deinit(&g);
    cr_assert_eq(c.value, tasks * c.per_task);
    cr_assert_eq(c.m.state_, 0u, "the mutex is left unlocked, with nobody parked or woken");
}

CONTRACT(mutex, trylock_takes_only_a_free_mutex, 30)
{
    (void)im;
    weft_mutex m = WEFT_MUTEX_INIT;
    cr_assert(weft_mutex_trylock(&m));
    cr_assert_not(weft_mutex_trylock(&m));
    weft_mutex_unlock(io, &m);
    cr_assert(weft_mutex_trylock(&m));
    weft_mutex_unlock(io, &m);
    cr_assert_eq(weft_mutex_lock(io, &m), 0);
    weft_mutex_unlock(io, &m);
}

struct lock_ctx {
    weft_mutex *m;
    atomic_int *state; /* 1 waiting, 2 got it */
    bool uncancelable;
};

static void lock_and_report(weft_io io, void *ctx, void *result)
{
    struct lock_ctx *c = ctx;
    atomic_store(c->state, 1);
    int rc = 0;
    if (c->uncancelable)
        weft_mutex_lock_uncancelable(io, c->m);
    else
        rc = weft_mutex_lock(io, c->m);
    if (rc == 0) {
        atomic_store(c->state, 2);
        weft_mutex_unlock(io, c->m);
    }
    *(int *)result = rc;
}

CONTRACT(mutex, cancel_interrupts_a_task_waiting_for_the_lock, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_mutex m = WEFT_MUTEX_INIT;
    atomic_int state = 0;
    weft_mutex_lock_uncancelable(io, &m);
    struct lock_ctx c = {&m, &state, false};
    weft_future *f = test_spawn(io, lock_and_report, &c, sizeof c, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(&m) == 1);
    int rc = 0;
    weft_cancel(io, f, &rc);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(atomic_load(&state), 1, "the canceled task never held the mutex");
    cr_assert_eq(weft__park_count(&m), 0u);
    cr_assert_eq(m.state_, WEFT_MUTEX_LOCKED_, "still ours, and nobody parked");
    weft_mutex_unlock(io, &m);
    cr_assert(weft_mutex_trylock(&m));
    weft_mutex_unlock(io, &m);
}

struct cancel_ctx {
    weft_future *f;
};

static void cancel_it(weft_io io, void *ctx, void *result)
{
    struct cancel_ctx *c = ctx;
    weft_cancel(io, c->f, result);
}

CONTRACT(mutex, an_uncancelable_lock_waits_through_a_cancel, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_mutex m = WEFT_MUTEX_INIT;
    atomic_int state = 0;
    weft_mutex_lock_uncancelable(io, &m);
    struct lock_ctx c = {&m, &state, true};
    weft_future *f = test_spawn(io, lock_and_report, &c, sizeof c, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(&m) == 1);
    struct cancel_ctx cc = {f};
    weft_future *canceler = test_spawn(io, cancel_it, &cc, sizeof cc, sizeof(int));
    YIELD_UNTIL(io, cancel_was_requested(im, f));
    cr_assert_eq(weft__park_count(&m), 1u, "still waiting for the lock");
    weft_mutex_unlock(io, &m);
    int rc = -1;
    weft_await(io, canceler, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(atomic_load(&state), 2);
}

CONTRACT(mutex, a_canceled_task_still_takes_a_free_mutex, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_mutex m = WEFT_MUTEX_INIT;
    atomic_int state = 0;
    struct lock_ctx c = {&m, &state, false};
    weft_mutex_lock_uncancelable(io, &m);
    weft_future *f = test_spawn(io, lock_and_report, &c, sizeof c, sizeof(int));
    /* Canceled before it ever waits: the free mutex is still taken. */
    struct cancel_ctx cc = {f};
    weft_mutex_unlock(io, &m);
    int rc = -1;
    cancel_it(io, &cc, &rc);
    cr_assert(rc == 0 || rc == -ECANCELED);
    if (rc == 0)
        cr_assert_eq(atomic_load(&state), 2);
    cr_assert_eq(m.state_, 0u);
}

/* Starvation: hogs take the mutex over and over, yielding while they hold
   it so that everyone queues.  A parked task may lose a race for a released
   mutex to a running one at most twice before the mutex is handed to it, so
   the victim is served after at most three releases per task queued ahead
   of it (docs/sync.md). */
struct starve {
    weft_mutex m;
    atomic_long acquisitions;
    atomic_int victim_done;
};

static void hog(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct starve *s = *(struct starve **)ctx;
    while (!atomic_load(&s->victim_done)) {
        weft_mutex_lock_uncancelable(io, &s->m);
        atomic_fetch_add(&s->acquisitions, 1);
        weft_yield(io);
        weft_mutex_unlock(io, &s->m);
    }
}

#define HOGS 6

CONTRACT(mutex, a_waiter_is_not_starved_by_tasks_that_come_back_for_more, 60)
{
    NEEDS_CONCURRENCY(im);
    static struct starve s;
    s = (struct starve){WEFT_MUTEX_INIT, 0, 0};
    struct starve *p = &s;
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < HOGS; i++)
        test_group_spawn(io, &g, hog, &p, sizeof p);
    long most = 0;
    for (int round = 0; round < 50; round++) {
        YIELD_UNTIL(io, weft__park_count(&s.m) >= HOGS - 1);
        long before = atomic_load(&s.acquisitions);
        weft_mutex_lock_uncancelable(io, &s.m);
        long overtaken = atomic_load(&s.acquisitions) - before;
        weft_mutex_unlock(io, &s.m);
        /* On one worker tasks interleave only where they yield: three
           releases for each hog queued ahead and for the victim itself, one
           acquisition each (the releasing hog's own), plus the holder's.
           With more workers a woken task may wait for a CPU (or for its
           worker to wake) while running hogs go round many times, so there
           the test shows only that the victim always gets through; so it
           does on the thread pool, whose tasks are threads. */
        if (im->threads == 1 && !im->pool)
            cr_assert_leq(overtaken, 3 * (HOGS + 1) + 1,
                          "round %d: waited through %ld acquisitions", round, overtaken);
        if (overtaken > most)
            most = overtaken;
    }
    cr_log_info("%s: the victim waited through at most %ld acquisitions", im->name, most);
    atomic_store(&s.victim_done, 1);
    weft_group_wait(io, &g);
}

static void unlock_unlocked_child(void *arg)
{
    (void)arg;
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_mutex_unlock(weft_blocking_io(), &m);
}

Test(mutex, unlocking_an_unlocked_mutex_aborts_with_a_message, .timeout = 30)
{
    expect_abort(unlock_unlocked_child, "weft_mutex_unlock", "not locked");
}

/* ---- condition -------------------------------------------------------------- */

struct tokens {
    weft_mutex m;
    weft_cond c;
    int tokens;
    atomic_int waiting, woken, returns;
};

/* Waits for a token; counts its wake-ups. */
static void take_token(weft_io io, void *ctx, void *result)
{
    struct tokens *t = *(struct tokens **)ctx;
    int rc = 0;
    weft_mutex_lock_uncancelable(io, &t->m);
    atomic_fetch_add(&t->waiting, 1);
    while (t->tokens == 0 && rc == 0) {
        rc = weft_cond_wait(io, &t->c, &t->m);
        atomic_fetch_add(&t->returns, 1);
        cr_assert(__atomic_load_n(&t->m.state_, __ATOMIC_RELAXED) & WEFT_MUTEX_LOCKED_,
                  "the mutex is held again on return");
    }
    if (rc == 0) {
        t->tokens--;
        atomic_fetch_add(&t->woken, 1);
    }
    weft_mutex_unlock(io, &t->m);
    if (result)
        *(int *)result = rc;
}

#define WAITERS 16

CONTRACT(cond, signal_wakes_one_and_broadcast_wakes_every_waiter, 60)
{
    NEEDS_CONCURRENCY(im);
    static struct tokens t;
    t = (struct tokens){WEFT_MUTEX_INIT, WEFT_COND_INIT, 0, 0, 0, 0};
    struct tokens *p = &t;
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < WAITERS; i++)
        test_group_spawn(io, &g, take_token, &p, sizeof p);
    YIELD_UNTIL(io, weft__park_count(&t.c) == WAITERS);

    weft_mutex_lock_uncancelable(io, &t.m);
    t.tokens = 1;
    weft_cond_signal(io, &t.c);
    weft_mutex_unlock(io, &t.m);
    YIELD_UNTIL(io, atomic_load(&t.woken) == 1);
    cr_assert_eq(atomic_load(&t.returns), 1, "one signal, one wake-up");
    cr_assert_eq(weft__park_count(&t.c), (size_t)WAITERS - 1);

    weft_mutex_lock_uncancelable(io, &t.m);
    t.tokens = WAITERS - 1;
    weft_cond_broadcast(io, &t.c);
    weft_mutex_unlock(io, &t.m);
    weft_group_wait(io, &g);
    cr_assert_eq(atomic_load(&t.woken), WAITERS);
    cr_assert_eq(atomic_load(&t.returns), WAITERS);
    cr_assert_eq(weft__park_count(&t.c), 0u);
    cr_assert_eq(t.c.waiters_, 0u);
}

CONTRACT(cond, signal_and_broadcast_without_waiters_do_nothing, 30)
{
    (void)im;
    weft_cond c = WEFT_COND_INIT;
    weft_cond_signal(io, &c);
    weft_cond_broadcast(io, &c);
    cr_assert_eq(c.waiters_, 0u);
}

CONTRACT(cond, cancel_interrupts_a_wait_and_the_mutex_is_held_again, 30)
{
    NEEDS_CONCURRENCY(im);
    static struct tokens t;
    t = (struct tokens){WEFT_MUTEX_INIT, WEFT_COND_INIT, 0, 0, 0, 0};
    struct tokens *p = &t;
    weft_future *f = test_spawn(io, take_token, &p, sizeof p, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(&t.c) == 1);
    /* Hold the mutex across the cancel: the waiter must get it back before
       it returns, so it can only finish after this unlock. */
    weft_mutex_lock_uncancelable(io, &t.m);
    struct cancel_ctx cc = {f};
    weft_future *canceler = test_spawn(io, cancel_it, &cc, sizeof cc, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(&t.c) == 0 && weft__park_count(&t.m) == 1);
    weft_mutex_unlock(io, &t.m);
    int rc = 0;
    weft_await(io, canceler, &rc);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(atomic_load(&t.woken), 0);
    cr_assert_eq(t.c.waiters_, 0u);
    cr_assert_eq(t.m.state_, 0u);
}

/* ---- queue ------------------------------------------------------------------ */

CONTRACT(queue, create_checks_its_arguments, 30)
{
    (void)im, (void)io;
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, 0, 4), -EINVAL);
    cr_assert_eq(weft_queue_create(&q, SIZE_MAX / 2, 4), -EINVAL);
    cr_assert_eq(weft_queue_create(&q, 8, 4), 0);
    weft_queue_destroy(q);
    weft_queue_destroy(NULL);
}

CONTRACT(queue, elements_come_out_in_order_then_close_drains_and_fails, 30)
{
    (void)im;
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 8), 0);
    for (long i = 0; i < 8; i++)
        cr_assert_eq(weft_queue_put(io, q, &i), 0);
    long v;
    for (long i = 0; i < 5; i++) {
        cr_assert_eq(weft_queue_get(io, q, &v), 0);
        cr_assert_eq(v, i);
    }
    for (long i = 8; i < 13; i++) /* wraps around */
        cr_assert_eq(weft_queue_put(io, q, &i), 0);
    weft_queue_close(io, q);
    weft_queue_close(io, q);
    long x = 99;
    cr_assert_eq(weft_queue_put(io, q, &x), -EPIPE);
    for (long i = 5; i < 13; i++) {
        cr_assert_eq(weft_queue_get(io, q, &v), 0);
        cr_assert_eq(v, i);
    }
    cr_assert_eq(weft_queue_get(io, q, &v), -EPIPE);
    weft_queue_destroy(q);
}

struct qop {
    weft_queue *q;
    long value;
    atomic_int *started;
};

static void put_one(weft_io io, void *ctx, void *result)
{
    struct qop *o = ctx;
    if (o->started)
        atomic_fetch_add(o->started, 1);
    *(int *)result = weft_queue_put(io, o->q, &o->value);
}

struct get_result {
    int rc;
    long value;
};

static void get_one(weft_io io, void *ctx, void *result)
{
    struct qop *o = ctx;
    struct get_result *r = result;
    r->value = -1;
    r->rc = weft_queue_get(io, o->q, &r->value);
}

CONTRACT(queue, close_wakes_blocked_getters_and_putters_with_epipe, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 1), 0);
    struct qop o = {q, 0, NULL};
    weft_future *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = test_spawn(io, get_one, &o, sizeof o, sizeof(struct get_result));
    YIELD_UNTIL(io, weft__park_count(q) == 3);
    weft_queue_close(io, q);
    for (int i = 0; i < 3; i++) {
        struct get_result r;
        weft_await(io, g[i], &r);
        cr_assert_eq(r.rc, -EPIPE);
    }
    weft_queue_destroy(q);

    cr_assert_eq(weft_queue_create(&q, sizeof(long), 1), 0);
    long one = 1;
    cr_assert_eq(weft_queue_put(io, q, &one), 0);
    o.q = q;
    o.value = 2;
    weft_future *p[2];
    for (int i = 0; i < 2; i++)
        p[i] = test_spawn(io, put_one, &o, sizeof o, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(q) == 2);
    weft_queue_close(io, q);
    for (int i = 0; i < 2; i++) {
        int rc = 0;
        weft_await(io, p[i], &rc);
        cr_assert_eq(rc, -EPIPE);
    }
    long v;
    cr_assert_eq(weft_queue_get(io, q, &v), 0);
    cr_assert_eq(v, 1, "what was queued before the close is still delivered");
    cr_assert_eq(weft_queue_get(io, q, &v), -EPIPE);
    weft_queue_destroy(q);
}

CONTRACT(queue, cancel_of_a_blocked_put_or_get_moves_nothing, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 2), 0);
    /* A getter on an empty queue, canceled: a later element is not lost. */
    struct qop o = {q, 0, NULL};
    weft_future *g = test_spawn(io, get_one, &o, sizeof o, sizeof(struct get_result));
    YIELD_UNTIL(io, weft__park_count(q) == 1);
    struct get_result r;
    weft_cancel(io, g, &r);
    cr_assert_eq(r.rc, -ECANCELED);
    long v = 7;
    cr_assert_eq(weft_queue_put(io, q, &v), 0);
    v = 8;
    cr_assert_eq(weft_queue_put(io, q, &v), 0);
    /* A putter on a full queue, canceled: its element never appears. */
    o.value = 9;
    weft_future *p = test_spawn(io, put_one, &o, sizeof o, sizeof(int));
    YIELD_UNTIL(io, weft__park_count(q) == 1);
    int rc = 0;
    weft_cancel(io, p, &rc);
    cr_assert_eq(rc, -ECANCELED);
    weft_queue_close(io, q);
    cr_assert_eq(weft_queue_get(io, q, &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(weft_queue_get(io, q, &v), 0);
    cr_assert_eq(v, 8);
    cr_assert_eq(weft_queue_get(io, q, &v), -EPIPE);
    weft_queue_destroy(q);
}

CONTRACT(queue, capacity_zero_hands_each_element_from_putter_to_getter, 30)
{
    NEEDS_CONCURRENCY(im);
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 0), 0);
    struct qop o = {q, 41, NULL};
    weft_future *p = test_spawn(io, put_one, &o, sizeof o, sizeof(int));
    long v = 0;
    cr_assert_eq(weft_queue_get(io, q, &v), 0);
    cr_assert_eq(v, 41);
    int rc = -1;
    weft_await(io, p, &rc);
    cr_assert_eq(rc, 0);
    weft_future *g = test_spawn(io, get_one, &o, sizeof o, sizeof(struct get_result));
    v = 42;
    cr_assert_eq(weft_queue_put(io, q, &v), 0);
    struct get_result r;
    weft_await(io, g, &r);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.value, 42);
    weft_queue_destroy(q);
}

/* 8 producers and 8 consumers through a queue of 64: every element arrives
   exactly once, and each consumer sees each producer's elements in order. */
#define PRODUCERS 8
#define CONSUMERS 8

struct mpmc {
    weft_queue *q;
    long per_producer;
    atomic_uchar *seen; /* PRODUCERS * per_producer */
    atomic_long received;
    atomic_int out_of_order, duplicates;
};

struct mpmc_ctx {
    struct mpmc *m;
    long id;
};

static void producer(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct mpmc_ctx *c = ctx;
    for (long i = 0; i < c->m->per_producer; i++) {
        long e = c->id * c->m->per_producer + i;
        cr_assert_eq(weft_queue_put(io, c->m->q, &e), 0);
    }
}

static void consumer(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct mpmc_ctx *c = ctx;
    struct mpmc *m = c->m;
    long last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    long e, n = 0;
    int rc;
    while ((rc = weft_queue_get(io, m->q, &e)) == 0) {
        long from = e / m->per_producer, seq = e % m->per_producer;
        if (seq <= last[from])
            atomic_fetch_add(&m->out_of_order, 1);
        last[from] = seq;
        if (atomic_exchange(&m->seen[e], 1))
            atomic_fetch_add(&m->duplicates, 1);
        n++;
    }
    cr_assert_eq(rc, -EPIPE);
    atomic_fetch_add(&m->received, n);
}

CONTRACT(queue, eight_producers_eight_consumers_ten_million_elements, 600)
{
    NEEDS_CONCURRENCY(im);
    static struct mpmc m;
    long total = (long)test_scaled(10000000);
    m.per_producer = total / PRODUCERS;
    total = m.per_producer * PRODUCERS;
    m.seen = calloc((size_t)total, 1);
    cr_assert(m.seen);
    atomic_store(&m.received, 0);
    atomic_store(&m.out_of_order, 0);
    atomic_store(&m.duplicates, 0);
    cr_assert_eq(weft_queue_create(&m.q, sizeof(long), 64), 0);
    weft_group producers = WEFT_GROUP_INIT, consumers = WEFT_GROUP_INIT;
    for (long i = 0; i < CONSUMERS; i++) {
        struct mpmc_ctx c = {&m, i};
        test_group_spawn(io, &consumers, consumer, &c, sizeof c);
    }
    for (long i = 0; i < PRODUCERS; i++) {
        struct mpmc_ctx c = {&m, i};
        test_group_spawn(io, &producers, producer, &c, sizeof c);
    }
    weft_group_wait(io, &producers);
    weft_queue_close(io, m.q);
    weft_group_wait(io, &consumers);
    cr_assert_eq(atomic_load(&m.received), total);
    cr_assert_eq(atomic_load(&m.duplicates), 0);
    cr_assert_eq(atomic_load(&m.out_of_order), 0);
    for (long i = 0; i < total; i++)
        if (!m.seen[i])
            cr_assert_fail("element %ld never arrived", i);
    weft_queue_destroy(m.q);
    free(m.seen);
}

/* Producers and consumers canceled at random while they wait: every
   element whose put returned 0 is got exactly once, by a consumer or by
   the final drain, and no other element appears. */
struct chaos {
    weft_queue *q;
    atomic_uchar *put_ok, *got;
    long per_producer;
};

struct chaos_ctx {
    struct chaos *ch;
    long id;
};

static void chaos_producer(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct chaos_ctx *c = ctx;
    for (long i = 0; i < c->ch->per_producer; i++) {
        long e = c->id * c->ch->per_producer + i;
        int rc = weft_queue_put(io, c->ch->q, &e);
        if (rc < 0) {
            cr_assert(rc == -ECANCELED || rc == -EPIPE, "put: %d", rc);
            return;
        }
        atomic_store(&c->ch->put_ok[e], 1);
    }
}

static void chaos_consumer(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct chaos_ctx *c = ctx;
    long e;
    int rc;
    while ((rc = weft_queue_get(io, c->ch->q, &e)) == 0)
        cr_assert_eq(atomic_exchange(&c->ch->got[e], 1), 0, "element %ld got twice", e);
    cr_assert(rc == -ECANCELED || rc == -EPIPE, "get: %d", rc);
}

CONTRACT(queue, canceled_puts_and_gets_lose_and_duplicate_nothing, 120)
{
    NEEDS_CONCURRENCY(im);
    enum { P = 6, C = 6, ROUNDS = 20 };
    static struct chaos ch;
    ch.per_producer = (long)test_scaled(20000);
    long total = ch.per_producer * P;
    ch.put_ok = calloc((size_t)total, 1);
    ch.got = calloc((size_t)total, 1);
    cr_assert(ch.put_ok && ch.got);
    cr_assert_eq(weft_queue_create(&ch.q, sizeof(long), 4), 0);
    weft_future *prod[P], *cons[C];
    for (long i = 0; i < P; i++) {
        struct chaos_ctx c = {&ch, i};
        prod[i] = test_spawn(io, chaos_producer, &c, sizeof c, 0);
    }
    for (long i = 0; i < C; i++) {
        struct chaos_ctx c = {&ch, i};
        cons[i] = test_spawn(io, chaos_consumer, &c, sizeof c, 0);
    }
    /* Cancel and restart consumers while the producers run, then cancel
       the producers too. */
    uint32_t rng = 12345;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 50; k++)
            weft_yield(io);
        rng = rng * 1103515245u + 12345u;
        int i = (int)((rng >> 16) % C);
        weft_cancel(io, cons[i], NULL);
        struct chaos_ctx c = {&ch, i};
        cons[i] = test_spawn(io, chaos_consumer, &c, sizeof c, 0);
    }
    for (int i = 0; i < P; i++)
        weft_cancel(io, prod[i], NULL);
    weft_queue_close(io, ch.q);
    for (int i = 0; i < C; i++)
        weft_await(io, cons[i], NULL);
    long e;
    while (weft_queue_get(io, ch.q, &e) == 0)
        cr_assert_eq(atomic_exchange(&ch.got[e], 1), 0, "element %ld got twice", e);
    for (long i = 0; i < total; i++)
        cr_assert_eq(ch.got[i], ch.put_ok[i], "element %ld: put %d, got %d", i, ch.put_ok[i],
                     ch.got[i]);
    weft_queue_destroy(ch.q);
    free(ch.put_ok);
    free(ch.got);
}

static void destroy_with_waiter_child(void *arg)
{
    (void)arg;
    weft_io io = child_loop();
    weft_queue *q;
    weft_queue_create(&q, sizeof(long), 1);
    struct qop op = {q, 0, NULL};
    weft_future *g = weft_async(io, get_one, &op, sizeof op, sizeof(struct get_result));
    YIELD_UNTIL(io, weft__park_count(q) == 1);
    weft_queue_destroy(q);
    weft_await(io, g, NULL);
}

Test(queue, destroying_a_queue_with_waiters_aborts_with_a_message, .timeout = 30)
{
    weft_event_loop_deinit(test_loop_start(1));
    expect_abort(destroy_with_waiter_child, "weft_queue_destroy", "still waiting");
}

/* ---- group ------------------------------------------------------------------ */

struct tree {
    weft_group *g;
    atomic_long *count;
    int depth;
};

/* Adds two children to its own group, down to depth 0. */
static void tree_node(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct tree *t = ctx;
    atomic_fetch_add(t->count, 1);
    if (t->depth == 0)
        return;
    struct tree child = {t->g, t->count, t->depth - 1};
    weft_group_async(io, t->g, tree_node, &child, sizeof child);
    weft_group_async(io, t->g, tree_node, &child, sizeof child);
}

CONTRACT(group, wait_returns_after_every_member_including_ones_members_added, 60)
{
    (void)im;
    weft_group g = WEFT_GROUP_INIT;
    atomic_long count = 0;
    struct tree root = {&g, &count, 12};
    weft_group_async(io, &g, tree_node, &root, sizeof root);
    weft_group_wait(io, &g);
    cr_assert_eq(atomic_load(&count), (1L << 13) - 1);
    weft_group_deinit(&g);
    /* Reusable, and waiting on an empty group returns at once. */
    weft_group_wait(io, &g);
    weft_group_cancel(io, &g);
    atomic_store(&count, 0);
    root.depth = 3;
    weft_group_async(io, &g, tree_node, &root, sizeof root);
    weft_group_wait(io, &g);
    cr_assert_eq(atomic_load(&count), 15);
}

CONTRACT(group, concurrent_members_run_or_the_call_fails, 30)
{
    weft_group g = WEFT_GROUP_INIT;
    atomic_long count = 0;
    struct tree root = {&g, &count, 0};
    int rc = weft_group_concurrent(io, &g, tree_node, &root, sizeof root);
    if (!im->threads) {
        cr_assert_eq(rc, -EOPNOTSUPP);
        cr_assert_eq(atomic_load(&count), 0);
        return;
    }
    cr_assert_eq(rc, 0);
    weft_group_wait(io, &g);
    cr_assert_eq(atomic_load(&count), 1);
}

/* A member that blocks (sleep, queue, mutex, condition) and adds a nested
   member that does the same; each counts how it ended. */
struct blocker {
    weft_group *g;
    weft_queue *q;
    weft_mutex *m;
    weft_cond *c;
    atomic_long *started, *canceled;
    int depth;
};

static void blocker(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct blocker *b = ctx;
    atomic_fetch_add(b->started, 1);
    if (b->depth > 0) {
        struct blocker child = *b;
        child.depth--;
        weft_group_async(io, b->g, blocker, &child, sizeof child);
    }
    int rc;
    long v;
    switch (b->depth % 4) {
    case 0:
        rc = weft_sleep(io, HOUR);
        break;
    case 1:
        rc = weft_queue_get(io, b->q, &v);
        break;
    case 2: /* m is held by the test */
        rc = weft_mutex_lock(io, b->m);
        if (rc == 0)
            weft_mutex_unlock(io, b->m);
        break;
    default: {
        weft_mutex own = WEFT_MUTEX_INIT;
        weft_mutex_lock_uncancelable(io, &own);
        rc = weft_cond_wait(io, b->c, &own);
        weft_mutex_unlock(io, &own);
        break;
    }
    }
    if (rc == -ECANCELED)
        atomic_fetch_add(b->canceled, 1);
}

CONTRACT(group, cancel_reaches_nested_members_blocked_anywhere, 60)
{
    NEEDS_CONCURRENCY(im);
    weft_group g = WEFT_GROUP_INIT;
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 1), 0);
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_cond c = WEFT_COND_INIT;
    atomic_long started = 0, canceled = 0;
    enum { ROOTS = 8, DEPTH = 7 };
    weft_mutex_lock_uncancelable(io, &m);
    for (int i = 0; i < ROOTS; i++) {
        struct blocker b = {&g, q, &m, &c, &started, &canceled, DEPTH};
        test_group_spawn(io, &g, blocker, &b, sizeof b);
    }
    YIELD_UNTIL(io, atomic_load(&started) == ROOTS * (DEPTH + 1));
    weft_group_cancel(io, &g);
    weft_mutex_unlock(io, &m);
    cr_assert_eq(atomic_load(&canceled), ROOTS * (DEPTH + 1),
                 "every member's blocking call returned -ECANCELED (%ld did)",
                 atomic_load(&canceled));
    cr_assert_eq(g.count_, 0ul);
    weft_group_deinit(&g);
    cr_assert_eq(weft__park_count(q), 0u);
    cr_assert_eq(weft__park_count(&c), 0u);
    weft_queue_destroy(q);
}

struct group_waiter {
    weft_group *g;
};

static void wait_group(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct group_waiter *w = ctx;
    weft_group_wait(io, w->g);
}

CONTRACT(group, canceling_a_task_in_group_wait_cancels_the_members, 60)
{
    NEEDS_CONCURRENCY(im);
    weft_group g = WEFT_GROUP_INIT;
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(long), 1), 0);
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_cond c = WEFT_COND_INIT;
    atomic_long started = 0, canceled = 0;
    struct blocker b = {&g, q, &m, &c, &started, &canceled, 4};
    weft_mutex_lock_uncancelable(io, &m);
    test_group_spawn(io, &g, blocker, &b, sizeof b);
    struct group_waiter gw = {&g};
    weft_future *f = test_spawn(io, wait_group, &gw, sizeof gw, 0);
    YIELD_UNTIL(io, atomic_load(&started) == 5 && weft__park_count(&g) == 1);
    weft_cancel(io, f, NULL);
    cr_assert_eq(g.count_, 0ul, "the waiter returned only after every member");
    cr_assert_eq(atomic_load(&canceled), 5);
    weft_mutex_unlock(io, &m);
    weft_queue_destroy(q);
}

static void deinit_live_group_child(void *arg)
{
    (void)arg;
    weft_io io = child_loop();
    weft_group g = WEFT_GROUP_INIT;
    atomic_long started = 0, canceled = 0;
    weft_mutex m = WEFT_MUTEX_INIT;
    struct blocker b = {&g, NULL, &m, NULL, &started, &canceled, 0};
    weft_group_async(io, &g, blocker, &b, sizeof b);
    weft_group_deinit(&g);
}

Test(group, deinit_with_live_members_aborts_with_a_message, .timeout = 30)
{
    weft_event_loop_deinit(test_loop_start(1));
    expect_abort(deinit_live_group_child, "weft_group_deinit", "1 live member");
}

static void wait_own_group(weft_io io, void *ctx, void *result)
{
    (void)result;
    weft_group_wait(io, *(weft_group **)ctx);
}

static void member_waits_for_own_group_child(void *arg)
{
    (void)arg;
    weft_io io = child_loop();
    weft_group g = WEFT_GROUP_INIT;
    weft_group *p = &g;
    weft_group_async(io, &g, wait_own_group, &p, sizeof p);
    weft_group_wait(io, &g);
}

Test(group, a_member_waiting_for_its_own_group_aborts_with_a_message, .timeout = 30)
{
    weft_event_loop_deinit(test_loop_start(1));
    expect_abort(member_waits_for_own_group_child, "weft_group_wait", "wait for itself");
}

/* ---- the blocking Io: threads wait on a futex ------------------------------- */

struct threads_shared {
    weft_mutex m;
    long value;
    weft_queue *q;
    long per_thread;
};

static void *thread_increments(void *p)
{
    struct threads_shared *s = p;
    weft_io io = weft_blocking_io();
    for (long i = 0; i < s->per_thread; i++) {
        weft_mutex_lock_uncancelable(io, &s->m);
        s->value++;
        weft_mutex_unlock(io, &s->m);
    }
    return NULL;
}

Test(blocking_threads, a_mutex_shared_by_threads_counts_exactly, .timeout = 120)
{
    static struct threads_shared s;
    s = (struct threads_shared){WEFT_MUTEX_INIT, 0, NULL, (long)test_scaled(200000)};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, thread_increments, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(s.value, 4 * s.per_thread);
    cr_assert_eq(s.m.state_, 0u);
}

static void *thread_produces(void *p)
{
    struct threads_shared *s = p;
    for (long i = 0; i < s->per_thread; i++)
        cr_assert_eq(weft_queue_put(weft_blocking_io(), s->q, &i), 0);
    return NULL;
}

/* A plain thread, on the blocking Io, and the loop's tasks share a queue
   and a mutex: the thread wakes tasks (the pinned main task and others)
   from outside the loop, and tasks wake the thread. */
struct foreign {
    weft_queue *to_tasks, *to_thread;
    weft_mutex m;
    atomic_int holding;
    long n;
};

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    weft_io io = weft_blocking_io();
    weft_mutex_lock_uncancelable(io, &f->m);
    atomic_store(&f->holding, 1);
    /* Let the main task park on the mutex, then wake it by unlocking. */
    while (weft__park_count(&f->m) == 0)
        sched_yield();
    weft_mutex_unlock(io, &f->m);
    for (long i = 0; i < f->n; i++)
        cr_assert_eq(weft_queue_put(io, f->to_tasks, &i), 0);
    for (long i = 0; i < f->n; i++) {
        long v;
        cr_assert_eq(weft_queue_get(io, f->to_thread, &v), 0);
        cr_assert_eq(v, i);
    }
    return NULL;
}

static void foreign_consumer(weft_io io, void *ctx, void *result)
{
    struct foreign *f = *(struct foreign **)ctx;
    long sum = 0, v;
    for (long i = 0; i < f->n; i++) {
        cr_assert_eq(weft_queue_get(io, f->to_tasks, &v), 0);
        sum += v;
    }
    *(long *)result = sum;
}

static void foreign_run(unsigned threads)
{
    weft_event_loop *el = test_loop_start(threads);
    weft_io io = weft_event_loop_io(el);
    static struct foreign f;
    f = (struct foreign){NULL, NULL, WEFT_MUTEX_INIT, 0, (long)test_scaled(20000)};
    cr_assert_eq(weft_queue_create(&f.to_tasks, sizeof(long), 1), 0);
    cr_assert_eq(weft_queue_create(&f.to_thread, sizeof(long), 1), 0);
    struct foreign *p = &f;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, foreign_thread, &f), 0);
    while (!atomic_load(&f.holding))
        weft_yield(io);
    weft_mutex_lock_uncancelable(io, &f.m); /* parks; the thread's unlock wakes it */
    weft_mutex_unlock(io, &f.m);
    weft_future *c = weft_async(io, foreign_consumer, &p, sizeof p, sizeof(long));
    for (long i = 0; i < f.n; i++)
        cr_assert_eq(weft_queue_put(io, f.to_thread, &i), 0);
    long sum = 0;
    weft_await(io, c, &sum);
    cr_assert_eq(sum, f.n * (f.n - 1) / 2);
    pthread_join(th, NULL);
    weft_queue_destroy(f.to_tasks);
    weft_queue_destroy(f.to_thread);
    weft_event_loop_deinit(el);
}

Test(foreign_thread, wakes_tasks_of_a_one_worker_loop, .timeout = 120)
{
    foreign_run(1);
}

Test(foreign_thread, wakes_tasks_of_a_two_worker_loop, .timeout = 120)
{
    foreign_run(2);
}

Test(foreign_thread, wakes_tasks_through_eventfds_where_msg_ring_is_missing, .timeout = 120)
{
    setenv("WEFT_URING_COMPAT", "1", 1);
    foreign_run(2);
    unsetenv("WEFT_URING_COMPAT");
}

Test(blocking_threads, a_queue_between_threads_delivers_in_order, .timeout = 120)
{
    static struct threads_shared s;
    s = (struct threads_shared){WEFT_MUTEX_INIT, 0, NULL, (long)test_scaled(200000)};
    cr_assert_eq(weft_queue_create(&s.q, sizeof(long), 2), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, thread_produces, &s), 0);
    for (long i = 0; i < s.per_thread; i++) {
        long v;
        cr_assert_eq(weft_queue_get(weft_blocking_io(), s.q, &v), 0);
        cr_assert_eq(v, i);
    }
    pthread_join(th, NULL);
    weft_queue_destroy(s.q);
}

/* The parking lot's hash spreads heap objects made one after another over
   its buckets as random picks would: a plain multiplicative hash put 4,096
   of them into 452 of the 1,024 buckets, so unrelated mutexes and queues
   shared locks far more often than they should. */
Test(park, heap_objects_made_in_a_row_spread_over_the_buckets, .timeout = 30)
{
    enum { N = 4096 };
    static void *objs[N];
    static bool used[1024];
    unsigned distinct = 0;
    for (unsigned i = 0; i < N; i++) {
        cr_assert_not_null(objs[i] = calloc(1, 100));
        unsigned b = weft__park_bucket_index(objs[i]);
        cr_assert_lt(b, 1024u);
        distinct += !used[b];
        used[b] = true;
    }
    for (unsigned i = 0; i < N; i++)
        free(objs[i]);
    /* Random picks cover about 1,005; anything under 900 is a bad hash. */
    cr_expect_geq(distinct, 900u, "%u of 1024 buckets", distinct);
}

/* Two unrelated queues that share a bucket: one hammered by the tasks of
   two loops of two workers (more threads than this machine may have
   CPUs), the other used by a plain thread. The plain thread's operations
   still go through; a lock whose waiters back off for too long would
   leave it waiting behind the hammering ones. */
static weft_queue *hammered;
static _Atomic bool hammer_stop;
static _Atomic int hammering, hammer_loops_failed;

static void hammer(weft_io io, void *ctx, void *result)
{
    (void)result;
    bool put = *(bool *)ctx;
    int64_t v = 1;
    atomic_fetch_add(&hammering, 1);
    while (!atomic_load_explicit(&hammer_stop, memory_order_relaxed))
        if ((put ? weft_queue_put(io, hammered, &v) : weft_queue_get(io, hammered, &v)) != 0)
            break;
}

static void *hammer_loop(void *arg)
{
    (void)arg;
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 2};
    if (weft_event_loop_init(&el, &o) != 0) {
        atomic_fetch_add(&hammer_loops_failed, 1); /* no io_uring here */
        return NULL;
    }
    weft_io io = weft_event_loop_io(el);
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < 4; i++) {
        bool put = i % 2;
        if (weft_group_concurrent(io, &g, hammer, &put, sizeof put) != 0)
            abort();
    }
    weft_group_wait(io, &g);
    weft_event_loop_deinit(el);
    return NULL;
}

Test(park, a_queue_sharing_a_bucket_with_a_hammered_one_still_moves, .timeout = 60)
{
    static weft_queue *made[4096];
    weft_queue *mine = NULL;
    unsigned n = 0;
    cr_assert_eq(weft_queue_create(&made[n++], sizeof(int64_t), 64), 0);
    hammered = made[0];
    while (!mine && n < 4096) {
        cr_assert_eq(weft_queue_create(&made[n], sizeof(int64_t), 64), 0);
        if (weft__park_bucket_index(made[n]) == weft__park_bucket_index(hammered))
            mine = made[n];
        n++;
    }
    cr_assert_not_null(mine, "no queue shares a bucket with the first of %u", n);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer_loop, NULL), 0);
    while (atomic_load(&hammering) < 8 && !atomic_load(&hammer_loops_failed))
        weft__cpu_relax();
    if (atomic_load(&hammer_loops_failed)) {
        atomic_store(&hammer_stop, true);
        weft_queue_close(weft_blocking_io(), hammered);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        cr_skip_test("io_uring is not available here");
    }
    weft_io io = weft_blocking_io();
    for (int64_t i = 0; i < 500; i++) {
        int64_t back = -1;
        cr_assert_eq(weft_queue_put(io, mine, &i), 0);
        cr_assert_eq(weft_queue_get(io, mine, &back), 0);
        cr_assert_eq(back, i);
    }
    atomic_store(&hammer_stop, true);
    weft_queue_close(io, hammered);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < n; i++)
        weft_queue_destroy(made[i]);
}
