// SPDX-License-Identifier: MIT
/*
 * The scheduler's promises under the programs that once broke them:
 * completions and spilled tasks reach a worker whose tasks only yield,
 * idle workers with operations in flight park and still steal, a cancel
 * never takes a task's stack for a parking-lot bucket, await and select
 * on one future from two tasks, one loop's Io from another loop's task,
 * ctx alignment on every Io, remote wake-ups that go where a worker is
 * free, the stack-size floor, fork, groups waited for from another Io,
 * and the report of a deinit stuck behind a detached task.
 */
#include "contract.h"

#include "sched/park.h"
#include "sched/sched.h"

#include <weft/weft.h>

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>

#define MS   1000000LL
#define HOUR (3600LL * 1000000000LL)

static void relax(void)
{
    weft__cpu_relax();
}

/* A loop in a death test's child: exit 3 if there is none.  The alarm
   turns a hang (the fault some of these tests look for) into a death the
   parent can report, instead of a child left behind. */
static weft_event_loop *child_loop_start(unsigned threads)
{
    alarm(20);
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = threads};
    if (weft_event_loop_init(&el, &o) != 0)
        _exit(3);
    return el;
}

static void expect_abort_with(void (*fn)(void *), void *arg, const char *a, const char *b)
{
    char out[8192];
    int st = test_run_child(fn, arg, out, sizeof out);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        cr_skip_test("io_uring is not available here");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x, stderr: %s", st, out);
    cr_assert(strstr(out, a) && strstr(out, b), "stderr: %s", out);
}

static void set_flag(weft_io io, void *ctx, void *result)
{
    (void)io, (void)result;
    atomic_store(*(_Atomic bool **)ctx, true);
}

static void flag_then_sleep_an_hour(weft_io io, void *ctx, void *result)
{
    (void)result;
    atomic_store(*(_Atomic bool **)ctx, true);
    weft_sleep(io, HOUR);
}

/* ---- completions and the global queue reach a worker that only yields ---- */

static void yield_until(weft_io io, void *ctx, void *result)
{
    (void)result;
    _Atomic bool *done = *(_Atomic bool **)ctx;
    while (!atomic_load(done))
        weft_yield(io);
}

CONTRACT(sched, a_yielding_task_does_not_keep_a_sleeper_asleep, 30)
{
    NEEDS_EVENT_LOOP(im);
    _Atomic bool done = false, *p = &done;
    weft_future *f[4];
    for (unsigned i = 0; i < im->threads; i++)
        cr_assert_eq(weft_concurrent(io, &f[i], yield_until, &p, sizeof p, 0), 0);
    cr_assert_eq(weft_sleep(io, 10 * MS), 0);
    atomic_store(&done, true);
    for (unsigned i = 0; i < im->threads; i++)
        weft_await(io, f[i], NULL);
}

struct arrive {
    _Atomic long *arrived;
    long n;
};

static void arrive_then_yield(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct arrive *a = ctx;
    atomic_fetch_add(a->arrived, 1);
    while (atomic_load(a->arrived) < a->n)
        weft_yield(io);
}

/* More tasks than a run queue holds: some spill to the global queue, and
   they must run while the others keep yielding. */
CONTRACT(sched, tasks_spilled_to_the_global_queue_run_while_others_yield, 60)
{
    NEEDS_EVENT_LOOP(im);
    enum { N = 600 };
    _Atomic long arrived = 0;
    struct arrive a = {&arrived, N};
    weft_future **f = malloc(N * sizeof *f);
    cr_assert(f);
    for (long i = 0; i < N; i++)
        f[i] = weft_async(io, arrive_then_yield, &a, sizeof a, 0);
    for (long i = 0; i < N; i++)
        weft_await(io, f[i], NULL);
    cr_assert_eq(atomic_load(&arrived), N);
    free(f);
}

/* ---- workers with operations in flight park, and still steal ------------ */

static uint64_t total_searches(weft__sched *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < s->nworkers; i++)
        n += atomic_load_explicit(&s->workers[i].searches, memory_order_relaxed);
    return n;
}

/* While the only task sleeps, every worker parks: a handful of searches,
   not one per turn of a busy loop. */
CONTRACT(sched, idle_workers_park_while_an_operation_is_in_flight, 30)
{
    NEEDS_EVENT_LOOP(im);
    weft__sched *s = weft__worker_current()->sched;
    /* Let the workers settle into their first park. */
    cr_assert_eq(weft_sleep(io, 5 * MS), 0);
    uint64_t before = total_searches(s);
    cr_assert_eq(weft_sleep(io, 50 * MS), 0);
    uint64_t n = total_searches(s) - before;
    cr_assert_lt(n, 64, "%llu searches for work while the only task slept",
                 (unsigned long long)n);
}

/* Worker 0 queues a task and keeps computing; another worker, idle but
   with a sleeping task of its own, must steal it. */
CONTRACT(sched, an_idle_worker_with_a_sleeping_task_still_steals, 30)
{
    NEEDS_EVENT_LOOP(im);
    if (im->threads < 2)
        cr_skip_test("needs two workers");
    _Atomic bool started = false, *sp = &started;
    weft_future *sleeper;
    cr_assert_eq(weft_concurrent(io, &sleeper, flag_then_sleep_an_hour, &sp, sizeof sp, 0), 0);
    while (!atomic_load(&started))
        relax(); /* no yield: another worker takes it */
    _Atomic bool ran = false, *rp = &ran;
    weft_future *f = weft_async(io, set_flag, &rp, sizeof rp, 0);
    while (!atomic_load(&ran))
        relax();
    weft_await(io, f, NULL);
    weft_cancel(io, sleeper, NULL);
}

/* A task made runnable into an empty run queue is left for its worker's
   next switch, without a wake-up; when that switch does not come (the
   spawner computes), the monitor wakes an idle worker to steal it -- even
   with the stall warnings, the monitor's other job, turned off. */
Test(sched, a_task_queued_behind_a_computing_one_is_stolen_with_stall_warnings_off, .timeout = 30)
{
    setenv("WEFT_STALL_MS", "0", 1);
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    for (int round = 0; round < 3; round++) {
        uint64_t woken = test_wait_others_parked(el);
        _Atomic bool ran = false, *rp = &ran;
        weft_future *f = weft_async(io, set_flag, &rp, sizeof rp, 0);
        while (!atomic_load(&ran))
            relax(); /* no switch here: only another worker can run it */
        weft_await(io, f, NULL);
        weft_loop_stats ls;
        weft_event_loop_stats(el, &ls, NULL, 0, false);
        cr_expect_gt(ls.foreign_wakeups, woken, "round %d: the monitor woke nobody", round);
    }
    weft_event_loop_deinit(el);
}

/* The stats' `parked`: a worker sent a wake-up is not parked any more,
   even before it runs.  A task on worker 1 puts into a queue the main
   task (pinned to worker 0) waits on, then reads worker 0's state before
   the main task has taken the element. */
struct parked_after_wake {
    weft_event_loop *el;
    weft_queue *q;
    size_t rounds;
    _Atomic size_t main_seen;
    _Atomic bool started;
    size_t wrong;
};

static void put_then_read_parked(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct parked_after_wake *p = *(struct parked_after_wake **)ctx;
    atomic_store(&p->started, true);
    unsigned seed = 1;
    for (size_t i = 0; i < p->rounds; i++) {
        while (atomic_load(&p->main_seen) != i)
            relax();
        /* A while, for worker 0 to be anywhere from spinning to parked. */
        for (int k = rand_r(&seed) % 2000; k > 0; k--)
            relax();
        weft_queue_put(io, p->q, &i);
        weft_worker_stats per[2];
        weft_event_loop_stats(p->el, NULL, per, 2, false);
        if (per[0].parked && atomic_load(&p->main_seen) == i)
            p->wrong++;
    }
}

Test(sched, a_worker_sent_a_wake_up_is_not_reported_parked, .timeout = 60)
{
    struct parked_after_wake p = {.el = test_loop_start(2), .rounds = test_scaled(50000)};
    weft_io io = weft_event_loop_io(p.el);
    cr_assert_eq(weft_queue_create(&p.q, sizeof(size_t), 4), 0);
    struct parked_after_wake *pp = &p;
    weft_future *f;
    cr_assert_eq(weft_concurrent(io, &f, put_then_read_parked, &pp, sizeof pp, 0), 0);
    while (!atomic_load(&p.started))
        relax(); /* no switch: worker 1 takes it */
    for (size_t i = 0; i < p.rounds; i++) {
        size_t v;
        cr_assert_eq(weft_queue_get(io, p.q, &v), 0);
        atomic_store(&p.main_seen, i + 1);
    }
    weft_await(io, f, NULL);
    cr_expect_eq(p.wrong, 0, "worker 0 reported parked after a wake-up was sent to it, %zu times",
                 p.wrong);
    weft_queue_destroy(p.q);
    weft_event_loop_deinit(p.el);
}

static void deinit_under_stolen_sleeper(void *arg)
{
    weft_event_loop *el = child_loop_start((unsigned)(uintptr_t)arg);
    weft_io io = weft_event_loop_io(el);
    _Atomic bool started = false, *sp = &started;
    weft_future *f;
    if (weft_concurrent(io, &f, flag_then_sleep_an_hour, &sp, sizeof sp, 0) != 0)
        _exit(4);
    while (!atomic_load(&started))
        relax(); /* another worker runs it */
    weft_event_loop_deinit(el);
    _exit(5);
}

/* The documented abort, not a hang: the worker that runs the sleeper
   must notice the loop stopping although its ring has an operation in
   flight. */
Test(sched, deinit_under_a_running_unreleased_task_aborts_on_2_workers, .timeout = 30)
{
    expect_abort_with(deinit_under_stolen_sleeper, (void *)2, "weft_event_loop_deinit",
                      "still running");
}

Test(sched, deinit_under_a_running_unreleased_task_aborts_on_4_workers, .timeout = 30)
{
    expect_abort_with(deinit_under_stolen_sleeper, (void *)4, "weft_event_loop_deinit",
                      "still running");
}

/* ---- a cancel racing with the canceled task's next cancellation point --- */

static struct {
    _Atomic(weft__task *) member;
    _Atomic int phase; /* 1: the canceler is between mark and interrupt; 2: the member moved on */
} race;

/* Holds the canceler between its mark and its interrupt until the member
   has been woken and has reached its next cancellation point. */
static void hold_canceler(weft__task *t)
{
    if (t != atomic_load(&race.member))
        return;
    atomic_store(&race.phase, 1);
    while (atomic_load(&race.phase) != 2)
        relax();
}

static void lock_then_sleep(weft_io io, void *ctx, void *result)
{
    (void)result;
    weft_mutex *m = *(weft_mutex **)ctx;
    atomic_store(&race.member, weft__task_current());
    if (weft_mutex_lock(io, m) == 0) {
        weft_mutex_unlock(io, m);
        /* Canceled already: returns at once, its record on this stack. */
        cr_assert_eq(weft_sleep(io, HOUR), -ECANCELED);
    }
    atomic_store(&race.phase, 2);
}

struct canceler_ctx {
    weft_group *g;
    weft_future *f;
};

static void cancel_it(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct canceler_ctx *c = ctx;
    if (c->g)
        weft_group_cancel(io, c->g);
    else
        weft_cancel(io, c->f, NULL);
}

static void cancel_race(bool group)
{
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    weft_mutex *m = malloc(sizeof *m);
    weft_group *g = malloc(sizeof *g);
    cr_assert(m && g);
    *m = (weft_mutex)WEFT_MUTEX_INIT;
    *g = (weft_group)WEFT_GROUP_INIT;
    cr_assert_neq(weft__park_bucket(m), weft__park_bucket(g), "pick objects in other buckets");
    atomic_store(&race.member, NULL);
    atomic_store(&race.phase, 0);

    weft_mutex_lock(io, m);
    struct canceler_ctx c = {NULL, NULL};
    if (group) {
        weft_group_async(io, g, lock_then_sleep, &m, sizeof m);
        c.g = g;
    } else {
        c.f = weft_async(io, lock_then_sleep, &m, sizeof m, 0);
    }
    while (weft__park_count(m) == 0)
        weft_yield(io);
    weft__cancel_mark_hook = hold_canceler;
    weft_future *cf;
    cr_assert_eq(weft_concurrent(io, &cf, cancel_it, &c, sizeof c, 0), 0);
    while (atomic_load(&race.phase) != 1)
        relax(); /* no yield: the canceler runs on the other worker */
    weft_mutex_unlock(io, m);
    while (atomic_load(&race.phase) != 2)
        weft_yield(io);
    weft_await(io, cf, NULL);
    weft__cancel_mark_hook = NULL;
    cr_assert_eq(weft__park_count(m), 0);
    weft_event_loop_deinit(el);
    free(m);
    free(g);
}

Test(sched, group_cancel_never_reads_a_bucket_off_the_task_stack, .timeout = 30)
{
    cancel_race(true);
}

Test(sched, cancel_never_reads_a_bucket_off_the_task_stack, .timeout = 30)
{
    cancel_race(false);
}

/* ---- await or cancel of a future another task selects on ---------------- */

static void slow_42(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    weft_sleep(io, 200 * MS);
    *(int *)result = 42;
}

static void select_one(weft_io io, void *ctx, void *result)
{
    (void)result;
    weft_future *f = *(weft_future **)ctx;
    weft_select(io, &f, 1);
}

static void release_selected_child(void *arg)
{
    uintptr_t a = (uintptr_t)arg;
    weft_event_loop *el = child_loop_start((unsigned)(a >> 1));
    weft_io io = weft_event_loop_io(el);
    weft_future *f = weft_async(io, slow_42, NULL, 0, sizeof(int));
    weft_future *s = weft_async(io, select_one, &f, sizeof f, 0);
    (void)s;
    weft__task *t = (weft__task *)f;
    while (!(atomic_load(&t->waiter) & WEFT__WAITER_SELECT))
        weft_yield(io);
    int r = 0;
    if (a & 1)
        weft_cancel(io, f, &r);
    else
        weft_await(io, f, &r);
    _exit(r == 42 ? 6 : 7);
}

#define SELECT_RELEASE_TEST(threads)                                                               \
    Test(sched, await_of_a_future_another_task_selects_on_aborts_##threads, .timeout = 30)        \
    {                                                                                              \
        expect_abort_with(release_selected_child, (void *)(uintptr_t)((threads) << 1),            \
                          "weft_await", "weft_select");                                            \
    }                                                                                              \
    Test(sched, cancel_of_a_future_another_task_selects_on_aborts_##threads, .timeout = 30)       \
    {                                                                                              \
        expect_abort_with(release_selected_child, (void *)(uintptr_t)((threads) << 1 | 1),        \
                          "weft_cancel", "weft_select");                                           \
    }
SELECT_RELEASE_TEST(1)
SELECT_RELEASE_TEST(2)
SELECT_RELEASE_TEST(4)

/* ---- one loop's Io from a task of another loop ---------------------------- */

struct other_loop {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    weft_io io;
    bool ready;
    int fds[2];
};

static void *run_other_loop(void *p)
{
    struct other_loop *o = p;
    weft_event_loop *el;
    weft_event_loop_options opt = {.threads = 1, .stack_size = WEFT_STACK_MIN};
    if (weft_event_loop_init(&el, &opt) != 0)
        _exit(3);
    pthread_mutex_lock(&o->lock);
    o->io = weft_event_loop_io(el);
    o->ready = true;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
    char c;
    while (read(o->fds[0], &c, 1) < 0)
        ;
    return NULL;
}

static void noop_task(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
}

static void other_loops_io_child(void *arg)
{
    (void)arg;
    static struct other_loop o;
    pthread_mutex_init(&o.lock, NULL);
    pthread_cond_init(&o.cond, NULL);
    if (pipe(o.fds) != 0)
        _exit(8);
    pthread_t th;
    pthread_create(&th, NULL, run_other_loop, &o);
    pthread_mutex_lock(&o.lock);
    while (!o.ready)
        pthread_cond_wait(&o.cond, &o.lock);
    pthread_mutex_unlock(&o.lock);
    child_loop_start(1);
    weft_future *f = weft_async(o.io, noop_task, NULL, 0, 0);
    weft_await(o.io, f, NULL);
    _exit(5);
}

Test(sched, one_loops_io_from_another_loops_task_aborts, .timeout = 30)
{
    weft_event_loop_deinit(test_loop_start(1)); /* skips where io_uring is missing */
    expect_abort_with(other_loops_io_child, NULL, "weft_async", "another event loop");
}

/* ---- ctx is 64-byte aligned on every Io ----------------------------------- */

struct aligned_ctx {
    alignas(64) _Atomic long *misaligned;
    _Atomic long *ran;
    char pad[200];
};

static void check_alignment(weft_io io, void *ctx, void *result)
{
    (void)io;
    struct aligned_ctx *c = ctx;
    if ((uintptr_t)ctx % 64 || (result && (uintptr_t)result % 64))
        atomic_fetch_add(c->misaligned, 1);
    atomic_fetch_add(c->ran, 1);
}

struct big_aligned_ctx {
    struct aligned_ctx c;
    char more[300]; /* past the blocking Io's on-stack buffer */
};

CONTRACT(tasks, every_way_to_start_a_task_aligns_ctx_to_64_bytes, 30)
{
    _Atomic long misaligned = 0, ran = 0;
    struct big_aligned_ctx big = {{&misaligned, &ran, {0}}, {0}};
    weft_group g = WEFT_GROUP_INIT;
    long expect = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t len = pass ? sizeof big : sizeof big.c;
        weft_await(io, weft_async(io, check_alignment, &big, len, 8), NULL);
        weft_async_detached(io, check_alignment, &big, len);
        weft_group_async(io, &g, check_alignment, &big, len);
        expect += 3;
        if (im->threads) {
            weft_future *f;
            cr_assert_eq(weft_concurrent(io, &f, check_alignment, &big, len, 8), 0);
            weft_await(io, f, NULL);
            cr_assert_eq(weft_group_concurrent(io, &g, check_alignment, &big, len), 0);
            expect += 2;
        }
    }
    weft_group_wait(io, &g);
    while (atomic_load(&ran) < expect)
        weft_yield(io); /* the detached ones */
    cr_assert_eq(atomic_load(&misaligned), 0);
}

/* ---- tasks woken from outside the loop go where a worker is free -------- */

struct remote {
    weft_queue *q;
    _Atomic int got;
    _Atomic bool busy_started;
};

static void get_one(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct remote *r = *(struct remote **)ctx;
    int v;
    if (weft_queue_get(io, r->q, &v) == 0)
        atomic_fetch_add(&r->got, 1);
}

/* Computes without a switch until all four getters have run. */
static void compute_until_all_got(weft_io io, void *ctx, void *result)
{
    (void)io, (void)result;
    struct remote *r = *(struct remote **)ctx;
    atomic_store(&r->busy_started, true);
    while (atomic_load(&r->got) < 4)
        relax();
}

static void *put_four(void *p)
{
    struct remote *r = p;
    for (int i = 0; i < 4; i++)
        weft_queue_put(weft_blocking_io(), r->q, &i);
    return NULL;
}

CONTRACT(sched, tasks_woken_by_a_plain_thread_do_not_wait_behind_a_busy_worker, 30)
{
    NEEDS_EVENT_LOOP(im);
    if (im->threads < 2)
        cr_skip_test("needs two workers");
    struct remote r = {NULL, 0, false}, *rp = &r;
    cr_assert_eq(weft_queue_create(&r.q, sizeof(int), 4), 0);
    weft_future *getters[4], *busy;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(weft_concurrent(io, &getters[i], get_one, &rp, sizeof rp, 0), 0);
    while (weft__park_count(r.q) < 4)
        weft_yield(io);
    cr_assert_eq(weft_concurrent(io, &busy, compute_until_all_got, &rp, sizeof rp, 0), 0);
    while (!atomic_load(&r.busy_started))
        relax(); /* no yield: another worker runs it */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, put_four, &r), 0);
    while (atomic_load(&r.got) < 4)
        weft_yield(io);
    pthread_join(th, NULL);
    for (int i = 0; i < 4; i++)
        weft_await(io, getters[i], NULL);
    weft_await(io, busy, NULL);
    weft_queue_destroy(r.q);
}

/* ---- the stack-size floor -------------------------------------------------- */

static void fill_result(weft_io io, void *ctx, void *result)
{
    (void)io;
    memcpy(result, ctx, WEFT_MAX_RESULT);
}

Test(event_loop, stack_size_below_the_floor_is_rejected_at_init, .timeout = 30)
{
    weft_event_loop_deinit(test_loop_start(1)); /* skips where io_uring is missing */
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 1, .stack_size = 4096};
    cr_assert_eq(weft_event_loop_init(&el, &o), -EINVAL);
    o.stack_size = WEFT_STACK_MIN - 1;
    cr_assert_eq(weft_event_loop_init(&el, &o), -EINVAL);
    o.stack_size = WEFT_STACK_MIN;
    cr_assert_eq(weft_event_loop_init(&el, &o), 0);
    weft_io io = weft_event_loop_io(el);
    static unsigned char ctx[WEFT_MAX_CTX], out[WEFT_MAX_RESULT];
    for (size_t i = 0; i < sizeof ctx; i++)
        ctx[i] = (unsigned char)(i * 7);
    weft_future *f;
    cr_assert_eq(weft_concurrent(io, &f, fill_result, ctx, sizeof ctx, sizeof out), 0);
    weft_await(io, f, out);
    cr_assert_eq(memcmp(ctx, out, sizeof out), 0);
    weft_event_loop_deinit(el);
}

/* ---- fork ------------------------------------------------------------------- */

static void add_one(weft_io io, void *ctx, void *result)
{
    (void)io;
    *(int *)result = *(int *)ctx + 1;
}

Test(event_loop, a_child_forked_by_a_task_can_start_its_own_loop, .timeout = 30)
{
    weft_event_loop *el = test_loop_start(2);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        alarm(20);
        weft_event_loop *child;
        weft_event_loop_options o = {.threads = 2};
        if (weft_event_loop_init(&child, &o) != 0)
            _exit(1);
        weft_io io = weft_event_loop_io(child);
        int x = 41, r = 0;
        weft_future *f;
        if (weft_concurrent(io, &f, add_one, &x, sizeof x, sizeof r) != 0)
            _exit(2);
        weft_await(io, f, &r);
        weft_event_loop_deinit(child);
        _exit(r == 42 ? 0 : 4);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    weft_event_loop_deinit(el);
}

/* ---- a group on the event loop, waited for and canceled by a plain thread */

struct cross_group {
    weft_group g;
    weft_queue *q;
    _Atomic int done;
    _Atomic int canceled;
    _Atomic int sleeping;
    _Atomic bool returned;
    int done_at_return;
};

static void member_get(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct cross_group *x = *(struct cross_group **)ctx;
    int v;
    if (weft_queue_get(io, x->q, &v) == 0)
        atomic_fetch_add(&x->done, 1);
}

static void member_sleep(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct cross_group *x = *(struct cross_group **)ctx;
    atomic_fetch_add(&x->sleeping, 1);
    if (weft_sleep(io, HOUR) == -ECANCELED)
        atomic_fetch_add(&x->canceled, 1);
}

static void *wait_group_blocking(void *p)
{
    struct cross_group *x = p;
    weft_group_wait(weft_blocking_io(), &x->g);
    x->done_at_return = atomic_load(&x->done);
    atomic_store(&x->returned, true);
    return NULL;
}

static void *cancel_group_blocking(void *p)
{
    struct cross_group *x = p;
    weft_group_cancel(weft_blocking_io(), &x->g);
    x->done_at_return = atomic_load(&x->canceled);
    return NULL;
}

CONTRACT(sync, a_plain_thread_waits_for_an_event_loop_group, 30)
{
    NEEDS_EVENT_LOOP(im);
    struct cross_group x = {WEFT_GROUP_INIT, NULL, 0, 0, 0, false, -1}, *xp = &x;
    cr_assert_eq(weft_queue_create(&x.q, sizeof(int), 2), 0);
    weft_group_async(io, &x.g, member_get, &xp, sizeof xp);
    weft_group_async(io, &x.g, member_get, &xp, sizeof xp);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wait_group_blocking, &x), 0);
    /* The thread is parked on the group, or (wrongly) already back. */
    while (!atomic_load(&x.returned) && weft__park_count(&x.g) == 0)
        weft_yield(io);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(weft_queue_put(io, x.q, &i), 0);
    while (!atomic_load(&x.returned))
        weft_yield(io);
    pthread_join(th, NULL);
    cr_assert_eq(x.done_at_return, 2, "weft_group_wait returned with %d of 2 members done",
                 x.done_at_return);
    weft_queue_destroy(x.q);
}

CONTRACT(sync, a_plain_thread_cancels_an_event_loop_group, 30)
{
    NEEDS_EVENT_LOOP(im);
    struct cross_group x = {WEFT_GROUP_INIT, NULL, 0, 0, 0, false, -1}, *xp = &x;
    for (unsigned i = 0; i < 2 * im->threads; i++)
        weft_group_async(io, &x.g, member_sleep, &xp, sizeof xp);
    /* Most of them in their sleep's ring operation (a request that comes
       earlier is seen when the sleep starts). */
    while (atomic_load(&x.sleeping) < (int)(2 * im->threads))
        weft_yield(io);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_group_blocking, &x), 0);
    while (__atomic_load_n(&x.g.count_, __ATOMIC_ACQUIRE) != 0)
        weft_yield(io);
    pthread_join(th, NULL);
    cr_assert_eq(x.done_at_return, (int)(2 * im->threads));
}

/* ---- deinit names the detached tasks it waits for ------------------------ */

void stuck_detached(weft_io io, void *ctx, void *result);
void stuck_detached(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_sleep(io, HOUR);
}

static void deinit_stuck_child(void *arg)
{
    (void)arg;
    setenv("WEFT_DEINIT_REPORT_MS", "50", 1);
    weft_event_loop *el = child_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    weft_async_detached(io, stuck_detached, NULL, 0);
    weft_event_loop_deinit(el);
    _exit(5);
}

Test(event_loop, deinit_stuck_behind_a_detached_task_names_it, .timeout = 30)
{
    char out[8192];
    int st = test_run_child_until(deinit_stuck_child, NULL, out, sizeof out, "stuck_detached");
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        cr_skip_test("io_uring is not available here");
    cr_assert(strstr(out, "weft_event_loop_deinit") && strstr(out, "detached"), "stderr: %s",
              out);
    cr_assert(strstr(out, "stuck_detached"), "stderr: %s", out);
}

/* ---- a plain thread's wake-up racing the loop's teardown ----------------- */

static weft_queue *teardown_q;

static void *put_one(void *p)
{
    (void)p;
    long v = 1;
    weft_queue_put(weft_blocking_io(), teardown_q, &v);
    return NULL;
}

/* The woken task finishes and the loop is freed while the putting thread
   may still be inside the wake-up: deinit waits for it (ASan sees the
   use after free otherwise). */
Test(sched, deinit_waits_for_a_plain_thread_still_waking_a_task, .timeout = 120)
{
    weft_event_loop_deinit(test_loop_start(1)); /* skips where io_uring is missing */
    cr_assert_eq(weft_queue_create(&teardown_q, sizeof(long), 0), 0);
    size_t rounds = test_scaled(200);
    for (size_t i = 0; i < rounds; i++) {
        weft_event_loop *el = test_loop_start(1 + (unsigned)(i % 2));
        weft_io io = weft_event_loop_io(el);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, put_one, NULL), 0);
        long v;
        cr_assert_eq(weft_queue_get(io, teardown_q, &v), 0);
        weft_event_loop_deinit(el);
        pthread_join(th, NULL);
    }
    weft_queue_destroy(teardown_q);
}

/* ---- deadlines on waits survive late timer cancels ----------------------- */

static weft_mutex held = WEFT_MUTEX_INIT;

static void time_out_on_held_mutex(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    for (int i = 0; i < 200; i++) {
        int64_t now;
        weft_now(io, CLOCK_MONOTONIC, &now);
        weft_deadline_set(io, now + 200000);
        int rc = weft_mutex_lock(io, &held);
        weft_deadline_set(io, WEFT_NO_DEADLINE);
        cr_assert_eq(rc, -ETIMEDOUT);
    }
}

/* Each attempt's timer record sits at the same stack address: a cancel
   meant for one attempt's (already fired) timer must not take the next
   attempt's deadline away (that attempt would wait for ever). */
CONTRACT(sched, every_timed_wait_times_out_though_its_timers_share_an_address, 60)
{
    NEEDS_CONCURRENCY(im);
    weft_mutex_lock(io, &held);
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < 8; i++)
        weft_group_async(io, &g, time_out_on_held_mutex, NULL, 0);
    weft_group_wait(io, &g);
    weft_mutex_unlock(io, &held);
}

/* ---- deinit under an unreleased task that only yields --------------------- */

void yield_forever(weft_io io, void *ctx, void *result);
void yield_forever(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    for (;;)
        weft_yield(io);
}

static void deinit_under_yielder(void *arg)
{
    weft_event_loop *el = child_loop_start((unsigned)(uintptr_t)arg);
    weft_io io = weft_event_loop_io(el);
    (void)weft_async(io, yield_forever, NULL, 0, 0);
    weft_sleep(io, 5 * MS); /* another worker may take it */
    weft_event_loop_deinit(el);
    _exit(5);
}

Test(sched, deinit_under_an_unreleased_yielding_task_aborts, .timeout = 60)
{
    for (int i = 0; i < 5; i++)
        expect_abort_with(deinit_under_yielder, (void *)(uintptr_t)(2 + 2 * (i % 2)),
                          "weft_event_loop_deinit", "still running");
}
