// SPDX-License-Identifier: MIT
/*
 * The scheduler: worker threads, run queues, stealing, parking and waking.
 *
 * Objects.  A task is a fiber plus its closure and future (task.c).  A
 * worker is an OS thread with an io_uring, a run queue, a "next" slot, an
 * inbox and a scheduler context.  The scheduler (weft__sched) holds the
 * workers, the stack pool, a global queue and the parked-worker list.
 *
 * The handoff.  A task that stops running (it yields, waits for a future,
 * sleeps, finishes) must not become visible to any other thread before its
 * registers are saved, or two threads could run on one stack.  So it never
 * publishes itself.  Every switch carries a struct weft__handoff, on the
 * stack of the task leaving, and whatever context resumes next -- another
 * task returning from weft__sched_block, a new task's first instructions,
 * or a worker's scheduler loop -- calls weft__handoff_run first, before
 * touching anything else.  By then the jump has stored the leaving task's
 * context (the resumed side does that store, see src/fiber/fiber.h), so
 * the handler may put it on a run queue, register it as the awaiter of a
 * future, or free its stack.  The handler copies the message out before it
 * publishes anything: the message lives on the stack of the task it
 * publishes.
 *
 * Who touches what.  A worker's runq tail, its `tick`, `spinning` and ring
 * belong to the worker's thread.  The runq head is shared with thieves
 * (CAS), as is `next` (exchange by the owner, CAS by a thief).  The inbox
 * takes pushes from any worker and pops from its owner only; it holds the
 * tasks pinned to that worker (the main task lives on worker 0 only, so
 * that the thread that called init runs it throughout).  The global queue
 * and the idle list are under mutexes: both are slow paths.
 *
 * Memory orders.  Publishing a runnable task is a release (tail store,
 * exchange into next, CAS onto an inbox) and taking one an acquire, so the
 * task's saved context and everything it wrote before blocking is visible
 * to the thread that resumes it.  Run queue slots are relaxed atomics: the
 * CAS on head decides who owns what was read.
 *
 * Waking (Go's discipline).  A worker with nothing to run "spins" (steals)
 * for a while, then parks in its ring's wait.  nspinning counts spinning
 * workers; work made runnable wakes a parked worker only when nobody is
 * spinning (wakep), so a burst wakes one worker, and the spinner that finds
 * work wakes the next (found).  Lost wake-ups: a task on some worker's
 * runq is never lost, since its owner is running and will reach it; what
 * needs care is the parker.  It lists itself idle, stops spinning (a
 * seq_cst RMW), and then re-checks every run queue with a full fence
 * between: a producer that saw nspinning != 0 before the decrement relied
 * on this spinner, and the re-check sees what it queued.  Pinned tasks go
 * to a worker's inbox, and there the producer's push, a full fence and its
 * read of `parked` pair with the parker's store of `parked`, a full fence
 * and its read of the inbox.  A parked worker blocks in io_uring_enter and
 * is woken by a completion -- an IORING_OP_MSG_RING from another worker, or
 * an eventfd read where the kernel lacks MSG_RING -- and completions are
 * not edge-triggered: one sent before the worker blocks is found when it
 * does.
 */
#include "sched.h"

#include "park.h"
#include "runq.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local weft__worker *tls_worker __attribute__((tls_model("initial-exec")));

/* See sched.h: each call computes the thread-local's address afresh. */
__attribute__((noinline)) weft__worker *weft__worker_current(void)
{
    __asm__ volatile("" ::: "memory");
    return tls_worker;
}

__attribute__((noinline)) static void set_worker_current(weft__worker *w)
{
    __asm__ volatile("" ::: "memory");
    tls_worker = w;
}

weft__task *weft__task_current(void)
{
    weft__fiber *f = weft__fiber_current();
    return f ? f->extra : NULL;
}

void weft__handoff_run(void *msg)
{
    struct weft__handoff *h = msg;
    if (!h || !h->fn)
        return;
    weft__handoff_fn *fn = h->fn;
    weft__task *prev = h->prev;
    void *arg = h->arg;
    /* The switch was made on this thread, by h->w. */
    fn(h->w, prev, arg);
}

/* ---- the global queue ------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void weft__global_push(weft__sched *s, weft__task *first, weft__task *last, uint32_t n)
{
    last->link = NULL;
    int64_t now = now_ns();
    for (weft__task *t = first; t; t = t->link)
        t->queued_ns = now;
    pthread_mutex_lock(&s->global_lock);
    if (s->global_tail)
        s->global_tail->link = first;
    else {
        s->global_head = first;
        atomic_store_explicit(&s->global_since, now, memory_order_relaxed);
    }
    s->global_tail = last;
    atomic_fetch_add_explicit(&s->global_size, n, memory_order_relaxed);
    pthread_mutex_unlock(&s->global_lock);
}

/* Takes a fair share of the global queue, at most max: one to run, the
   rest onto w's run queue. */
static weft__task *global_get(weft__worker *w, uint32_t max)
{
    weft__sched *s = w->sched;
    if (atomic_load_explicit(&s->global_size, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&s->global_lock);
    uint32_t size = atomic_load_explicit(&s->global_size, memory_order_relaxed);
    if (size == 0) {
        /* Emptied by another worker since the unlocked look above. */
        pthread_mutex_unlock(&s->global_lock);
        return NULL;
    }
    uint32_t n = size / s->nworkers + 1;
    if (n > size)
        n = size;
    if (n > max)
        n = max;
    weft__task *batch[WEFT__RUNQ_SIZE / 2];
    for (uint32_t i = 0; i < n; i++) {
        batch[i] = s->global_head;
        s->global_head = batch[i]->link;
    }
    if (!s->global_head)
        s->global_tail = NULL;
    atomic_store_explicit(&s->global_since, s->global_head ? s->global_head->queued_ns : 0,
                          memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->global_size, n, memory_order_relaxed);
    pthread_mutex_unlock(&s->global_lock);
    /* In queue order: the newest-first pops then take them oldest first. */
    for (uint32_t i = n; i-- > 1;)
        weft__runq_push(w, batch[i]);
    weft__dbg_taken(batch[0], "the global queue");
    return batch[0];
}

/* The periodic pass's look at the global queue: a busy worker takes its
   oldest task, before its own work, once that task has waited GLOBAL_AGE,
   and then not again for GLOBAL_AGE.  Not at once, and not in batches: a
   spilled task is usually a big subtree of fork-join work, and taking
   those while the local queue still holds work turns depth-first into
   breadth-first (a million-task tree then ran five to ten times slower,
   with many more stacks alive; taking one overdue task every 2 ms costs it
   nothing measurable).  So a task in the global queue waits at most about
   GLOBAL_AGE times its place in the queue while every worker stays busy,
   and not at all once one runs dry. */
#define GLOBAL_AGE 2000000 /* ns */

static weft__task *global_overdue(weft__worker *w)
{
    weft__sched *s = w->sched;
    int64_t since = atomic_load_explicit(&s->global_since, memory_order_relaxed);
    if (since == 0)
        return NULL;
    int64_t now = now_ns();
    if (now - since < GLOBAL_AGE || now - w->global_taken < GLOBAL_AGE)
        return NULL;
    w->global_taken = now;
    return global_get(w, 1);
}

/* ---- the inbox ------------------------------------------------------------ */

static void inbox_push(weft__worker *to, weft__task *t)
{
    weft__task *head = atomic_load_explicit(&to->inbox, memory_order_relaxed);
    do
        t->link = head;
    while (!atomic_compare_exchange_weak_explicit(&to->inbox, &head, t, memory_order_release,
                                                  memory_order_relaxed));
}

/* Owner only.  Pushers never remove, so the head read here stays in the
   list until this CAS: no ABA. */
static weft__task *inbox_pop(weft__worker *w)
{
    weft__task *head = atomic_load_explicit(&w->inbox, memory_order_acquire);
    while (head && !atomic_compare_exchange_weak_explicit(
                       &w->inbox, &head, head->link, memory_order_acquire, memory_order_acquire))
        ;
    return head;
}

/* ---- making tasks runnable ------------------------------------------------ */

static void wakep_from(weft__sched *s, weft__worker *from);

static void wakep(weft__worker *w)
{
    wakep_from(w->sched, w);
}

#ifndef NDEBUG
void weft__dbg_queued(weft__task *t)
{
    if (atomic_exchange_explicit(&t->dbg_queued, 1, memory_order_relaxed)) {
        fprintf(stderr, "weft: internal error: task %p made runnable twice before it ran\n",
                (void *)t);
        abort();
    }
}
void weft__dbg_taken(weft__task *t, const char *from)
{
    if (t && !atomic_exchange_explicit(&t->dbg_queued, 0, memory_order_relaxed)) {
        fprintf(stderr, "weft: internal error: task %p taken from %s but not runnable\n", (void *)t,
                from);
        abort();
    }
}
#endif

void weft__sched_ready(weft__worker *w, weft__task *t)
{
    weft__dbg_queued(t);
    if (t->pinned) {
        weft__worker *to = t->pinned;
        inbox_push(to, t);
        if (to != w) {
            /* Pairs with park(): push, fence, read parked. */
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load_explicit(&to->parked, memory_order_relaxed))
                weft__ring_wake(w, to);
        }
        return;
    }
    /* A task made runnable into an empty queue is left to this worker,
       without waking another: the caller mostly blocks soon after (a put
       that wakes the getter, then waits for the answer), and the task then
       runs here next, with its data warm in this CPU's cache.  Waking a
       parked worker for it would cost a system call on each side and,
       when it steals, a cross-CPU hand-off (measured on two workers:
       ping-pong 390 ns a round trip with a wake-up, 140 without).  The
       next switch on this worker judges: if it runs something else and
       the task is still queued, a worker is woken then (local_get).  A
       second task queued behind the first wakes one at once, as more work
       than this worker can start next.  Tokio's LIFO slot does the same;
       unlike it, the task stays stealable.  A task that computes on
       without a switch is covered by the monitor, which wakes a worker
       for what waits behind it (monitor.c); without a monitor (its thread
       could not be started), every ready wakes as before. */
    bool alone = weft__runq_empty(w) &&
                 atomic_load_explicit(&w->sched->defer_wakes, memory_order_relaxed);
    weft__runq_push(w, t);
    if (alone) {
        w->wake_deferred = true;
        if (atomic_load_explicit(&w->sched->monitor.dozing, memory_order_seq_cst))
            weft__monitor_kick(w->sched);
    } else {
        wakep(w);
    }
}

void weft__sched_ready_remote(weft__sched *s, weft__task *t)
{
    /* Counted for its whole length: once t is runnable it may finish, and
       the loop be torn down, while this thread still sends its wake-up.
       deinit waits for the count to drop to zero before it frees s. */
    weft__remote_enter(s);
    weft__dbg_queued(t);
    weft__worker *to = t->pinned;
    if (!to && s->nworkers == 1)
        to = &s->workers[0]; /* its inbox is seen at every switch */
    if (to) {
        /* The pinned tasks' protocol: push, fence, read parked. */
        inbox_push(to, t);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&to->parked, memory_order_relaxed))
            weft__ring_wake_foreign(s, to);
        weft__remote_leave(s);
        return;
    }
    /* Not some worker's inbox: that worker may be busy with one task for
       a long time while another is idle.  The global queue is seen by the
       first worker to run dry or to make its periodic pass, and a parked
       worker is woken for it unless one is already searching.  The fence
       pairs with park()'s: queue, fence, read nidle/nspinning there;
       list idle, stop spinning, fence, read global_size here. */
    weft__global_push(s, t, t, 1);
    atomic_thread_fence(memory_order_seq_cst);
    wakep_from(s, NULL);
    weft__remote_leave(s);
}

void weft__sched_requeue(weft__worker *w, weft__task *t)
{
    if (t->pinned) {
        weft__sched_ready(w, t);
        return;
    }
    weft__dbg_queued(t);
    weft__runq_push_back(w, t);
    /* A worker that only ever yields would otherwise keep its queue to
       itself while others sleep. */
    wakep(w);
}

/* The wake-up sched_ready left for the next switch: due if what it
   queued still waits while this worker runs something else. */
static inline void wake_if_deferred(weft__worker *w)
{
    if (__builtin_expect(w->wake_deferred, 0)) {
        w->wake_deferred = false;
        if (!weft__runq_empty(w))
            wakep(w);
    }
}

/* What a worker can run without looking beyond itself. */
static weft__task *local_get(weft__worker *w)
{
    weft__task *t;
    if (atomic_load_explicit(&w->inbox, memory_order_relaxed) && (t = inbox_pop(w))) {
        weft__dbg_taken(t, "the inbox");
        wake_if_deferred(w);
        return t;
    }
    /* Newest first, but every 61st time the oldest, so that a worker busy
       with a stream of new work still reaches what waits at the head. */
    bool fifo = ++w->fair % 61 == 0;
    t = weft__runq_pop(w, fifo);
    weft__dbg_taken(t, fifo ? "the run queue's head" : "the run queue's tail");
    wake_if_deferred(w);
    return t;
}

weft__task *weft__sched_take_local(weft__worker *w)
{
    /* Every 61st switch goes through the scheduler instead, which submits
       queued I/O, reaps completions and takes from the global queue before
       it looks at its own (Go's rhythm): tasks that only yield would
       otherwise keep completions and spilled tasks waiting for ever. */
    if (++w->tick % 61 == 0) {
        w->periodic = true;
        return NULL;
    }
    return local_get(w);
}

void weft__sched_switch(weft__worker *w, weft__task *self, weft__task *to, weft__handoff_fn *fn,
                        void *arg)
{
    struct weft__handoff h = {fn, self, arg, w};
    if (to)
        weft__count(w, runs, 1);
    atomic_store_explicit(&w->running, to, memory_order_relaxed);
    void *m = weft__fiber_switch(self->fiber, to ? to->fiber : w->sched_fiber, &h);
    weft__handoff_run(m);
}

void weft__sched_block(weft__handoff_fn *fn, void *arg)
{
    weft__worker *w = weft__worker_current();
    weft__sched_switch(w, weft__task_current(), weft__sched_take_local(w), fn, arg);
}

void weft__sched_block_as(weft__worker *w, weft__task *self, weft__handoff_fn *fn, void *arg)
{
    weft__sched_switch(w, self, weft__sched_take_local(w), fn, arg);
}

void weft__sched_exit(weft__task *self, struct weft__handoff *h)
{
    weft__worker *w = weft__worker_current();
    h->w = w;
    weft__task *t = weft__sched_take_local(w);
    weft__count(w, finished, 1);
    if (t)
        weft__count(w, runs, 1);
    atomic_store_explicit(&w->running, t, memory_order_relaxed);
    weft__fiber_exit(self->fiber, t ? t->fiber : w->sched_fiber, h);
}

/* ---- searching, spinning, parking ----------------------------------------- */

/* Makes runnable the tasks a ring poll handed back, in completion order
   and behind what is already queued: first come, first served.  (Pushed
   newest-first like a spawn, a flood of completions would keep the
   oldest waiting while new ones arrive.)  Only as many as the run queue
   has room for: the rest stay with the ring, in order, until there is
   room -- spilled to the global queue, they would wait there behind every
   newer completion (a p99 of 100 ms at a thousand connections).

   The caller runs one of them next, so another worker is woken only when
   more than one is queued: one wake-up per batch, and none for the lone
   completion this worker is about to run (with a wake-up for each, an
   idle worker would be woken for nothing at every request). */
static void ready_all(weft__worker *w)
{
    uint32_t room = weft__runq_room(w);
    bool queued = false;
    weft__task *t;
    while (room > WEFT__RUNQ_SIZE / 8 && (t = weft__ring_take(w))) {
        if (t->pinned) {
            weft__sched_ready(w, t);
        } else {
            room--;
            weft__dbg_queued(t);
            weft__runq_push_back(w, t);
            queued = true;
        }
    }
    if (queued && weft__runq_room(w) <= WEFT__RUNQ_SIZE - 2)
        wakep(w);
}

static uint32_t rng_next(weft__worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

/* Wakes a parked worker to search, unless one is searching already.  from
   is the calling worker, or NULL on a thread that is no worker of s. */
static void wakep_from(weft__sched *s, weft__worker *from)
{
    if (atomic_load_explicit(&s->nidle, memory_order_relaxed) == 0 ||
        atomic_load_explicit(&s->nspinning, memory_order_relaxed) != 0)
        return;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&s->nspinning, &zero, 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    weft__worker *v = NULL;
    pthread_mutex_lock(&s->idle_lock);
    if (s->nidle_listed > 0) {
        v = &s->workers[s->idle[--s->nidle_listed]];
        v->idle_listed = false;
        atomic_fetch_sub_explicit(&s->nidle, 1, memory_order_relaxed);
        /* Under the lock, so that v, taking the lock when it wakes, sees
           it was counted as spinning on its behalf. */
        atomic_store_explicit(&v->woken_spinning, true, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&s->idle_lock);
    if (!v) {
        atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_seq_cst);
    } else if (from) {
        weft__count(from, wakeups, 1);
        weft__ring_wake(from, v);
    } else {
        atomic_fetch_add_explicit(&s->foreign_wakeups, 1, memory_order_relaxed);
        weft__ring_wake_foreign(s, v);
    }
}

void weft__sched_wake_idle(weft__sched *s)
{
    weft__remote_enter(s);
    wakep_from(s, NULL);
    weft__remote_leave(s);
}

/* A worker found something to run: if it was the last spinner, another
   worker starts searching, since more work may be coming. */
static weft__task *found(weft__worker *w, weft__task *t)
{
    if (w->spinning) {
        w->spinning = false;
        if (atomic_fetch_sub_explicit(&w->sched->nspinning, 1, memory_order_seq_cst) == 1)
            wakep(w);
    }
    return t;
}

/* What a spinner remembers between passes: the lone task it last saw
   queued on some victim, and for how many passes it has sat there. */
struct lone {
    weft__task *task;
    unsigned passes;
};

/* A victim's only queued task is left to its owner unless it has sat there
   for this many passes: a task just spawned is usually awaited at once, and
   stealing it would turn a local hand-off into a cross-thread one; one that
   stays queued has an owner busy with something else. */
#define LONE_PASSES 4

/* One pass over the other workers, in random order. */
static weft__task *steal_pass(weft__worker *w, struct lone *lone)
{
    weft__sched *s = w->sched;
    unsigned n = s->nworkers;
    unsigned start = rng_next(w) % n;
    weft__task *seen = NULL;
    for (unsigned i = 0; i < n; i++) {
        weft__worker *v = &s->workers[(start + i) % n];
        if (v == w)
            continue;
        weft__task *only = weft__runq_lone(v);
        bool last = only && only == lone->task && lone->passes >= LONE_PASSES;
        weft__task *t = weft__runq_steal(w, v, last);
        weft__dbg_taken(t, "a steal");
        if (t) {
            weft__count(w, steals, 1);
            weft__count(w, stolen, 1 + (WEFT__RUNQ_SIZE - weft__runq_room(w)));
            lone->task = NULL;
            return t;
        }
        if (only && !seen)
            seen = only;
    }
    if (seen && seen == lone->task) {
        lone->passes++;
    } else {
        lone->task = seen;
        lone->passes = 0;
    }
    return NULL;
}

/* A spinning worker searches for a while before it parks: parking and
   waking cost system calls and context switches on both sides, and work
   often arrives within microseconds.  While it spins, nobody sends it (or
   anyone) a wake-up.

   How long is adaptive, per worker: a spin that finds work doubles the
   next one's rounds (up to SPIN_ROUNDS), one that finds nothing halves
   them (down to SPIN_ROUNDS_MIN).  Fork-join work, where spinners steal
   what others spawn, keeps the full length; I/O-bound work, where every
   task waits on its own worker's ring and a woken spinner finds nothing
   to steal, soon spins for a few rounds only, and leaves the CPU to
   whoever else needs it (on a small machine: the clients). */
#define SPIN_ROUNDS     256
#define SPIN_ROUNDS_MIN 8
#define SPIN_PAUSES     32

/* NULL with *idle set: every round found nothing. */
static weft__task *spin_rounds(weft__worker *w, unsigned rounds, bool *idle)
{
    weft__sched *s = w->sched;
    struct lone lone = {NULL, 0};
    for (unsigned round = 0; round < rounds; round++) {
        weft__task *t = steal_pass(w, &lone);
        if (t)
            return t;
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
            atomic_load_explicit(&s->global_size, memory_order_relaxed) ||
            atomic_load_explicit(&s->stopping, memory_order_relaxed) || weft__ring_pending(w))
            return NULL;
        /* Mostly pauses; now and then the CPU itself, so that a worker
           holding work gets it back when there are more workers than CPUs
           (a spinner that never yields would take it for whole time slices),
           and a look at its own ring's completions (operations in flight
           are what parking waits for, not a reason to stop searching). */
        if (round % 8 == 7) {
            if (weft__ring_busy(w)) {
                weft__ring_poll(w, false);
                ready_all(w);
                if (!weft__runq_empty(w))
                    return NULL;
            }
            sched_yield();
            continue;
        }
        for (unsigned i = 0; i < SPIN_PAUSES; i++)
            weft__cpu_relax();
    }
    *idle = true;
    return NULL;
}

static weft__task *spin(weft__worker *w)
{
    bool idle = false;
    weft__task *t = spin_rounds(w, w->spin_rounds, &idle);
    if (t && w->spin_rounds < SPIN_ROUNDS)
        w->spin_rounds *= 2;
    else if (idle && w->spin_rounds > SPIN_ROUNDS_MIN)
        w->spin_rounds /= 2;
    return t;
}

static bool any_runq_work(weft__sched *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (!weft__runq_empty(&s->workers[i]))
            return true;
    return atomic_load_explicit(&s->global_size, memory_order_relaxed) != 0;
}

static void park(weft__worker *w)
{
    weft__sched *s = w->sched;
    pthread_mutex_lock(&s->idle_lock);
    if (atomic_load_explicit(&s->global_size, memory_order_relaxed) != 0) {
        pthread_mutex_unlock(&s->idle_lock);
        return;
    }
    s->idle[s->nidle_listed++] = w->index;
    w->idle_listed = true;
    atomic_fetch_add_explicit(&s->nidle, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&s->idle_lock);

    bool was_spinning = w->spinning;
    if (was_spinning) {
        w->spinning = false;
        atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_seq_cst);
    }
    atomic_store_explicit(&w->parked, true, memory_order_seq_cst);
    /* The other half of the pairs described at the top of this file. */
    atomic_thread_fence(memory_order_seq_cst);
    bool work = atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
                atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
                atomic_load_explicit(&s->global_size, memory_order_relaxed) ||
                (was_spinning && any_runq_work(s));
    if (!work) {
        atomic_store_explicit(&w->parks, atomic_load_explicit(&w->parks, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        /* A waker clears asleep as it sends.  One that sent since the
           last look, and cleared it before this store, made its mark
           first: woken_spinning (wakep) or the inbox (a pinned task, a
           remote ready on one worker); both sides seq_cst. */
        atomic_store_explicit(&w->asleep, true, memory_order_seq_cst);
        if (atomic_load_explicit(&w->woken_spinning, memory_order_seq_cst) ||
            atomic_load_explicit(&w->inbox, memory_order_seq_cst))
            atomic_store_explicit(&w->asleep, false, memory_order_relaxed);
        weft__ring_poll(w, true);
        atomic_store_explicit(&w->asleep, false, memory_order_relaxed);
        ready_all(w);
    }
    atomic_store_explicit(&w->parked, false, memory_order_relaxed);

    pthread_mutex_lock(&s->idle_lock);
    if (w->idle_listed) {
        for (unsigned i = 0; i < s->nidle_listed; i++)
            if (s->idle[i] == w->index) {
                s->idle[i] = s->idle[--s->nidle_listed];
                break;
            }
        w->idle_listed = false;
        atomic_fetch_sub_explicit(&s->nidle, 1, memory_order_relaxed);
    }
    bool counted = atomic_exchange_explicit(&w->woken_spinning, false, memory_order_relaxed);
    pthread_mutex_unlock(&s->idle_lock);
    if (counted)
        w->spinning = true;
    else if (work && was_spinning) {
        w->spinning = true;
        atomic_fetch_add_explicit(&s->nspinning, 1, memory_order_seq_cst);
    }
}

/* NULL only when the loop is stopping (never on worker 0, whose scheduler
   context is simply abandoned by deinit). */
static weft__task *find_runnable(weft__worker *w)
{
    weft__sched *s = w->sched;
    for (;;) {
        weft__task *t;
        atomic_store_explicit(&w->searches,
                              atomic_load_explicit(&w->searches, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        /* Stopping: only unreleased tasks are left (deinit has waited for
           the detached ones), and deinit reports them.  Checked before the
           local queue too, or a task that only yields would keep this
           worker from ever exiting. */
        if (w->index != 0 && atomic_load_explicit(&s->stopping, memory_order_acquire)) {
            if (w->spinning) {
                w->spinning = false;
                atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_seq_cst);
            }
            return NULL;
        }
        if (w->periodic) {
            w->periodic = false;
            if (weft__ring_busy(w)) {
                weft__ring_poll(w, false);
                ready_all(w);
            }
            if ((t = global_overdue(w)))
                return found(w, t);
        }
        if ((t = local_get(w)) || (t = global_get(w, WEFT__RUNQ_SIZE / 2)))
            return found(w, t);
        if (weft__ring_busy(w)) {
            weft__ring_poll(w, false);
            ready_all(w);
            if ((t = local_get(w)))
                return found(w, t);
        }
        if (s->nworkers > 1) {
            uint32_t busy = s->nworkers - atomic_load_explicit(&s->nidle, memory_order_relaxed);
            if (!w->spinning &&
                2 * atomic_load_explicit(&s->nspinning, memory_order_relaxed) < busy) {
                w->spinning = true;
                atomic_fetch_add_explicit(&s->nspinning, 1, memory_order_seq_cst);
            }
            if (w->spinning && (t = spin(w)))
                return found(w, t);
            /* Something to look at before parking.  (Not operations in
               flight: parking in the ring is how a worker waits for them.) */
            if (weft__ring_pending(w) || atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
                atomic_load_explicit(&s->global_size, memory_order_relaxed))
                continue;
        }
        /* A stop that comes now is seen by park()'s last look, and by the
           check at the top of the next pass. */
        park(w);
    }
}

static void sched_loop(weft__worker *w)
{
    for (;;) {
        weft__task *t = find_runnable(w);
        if (!t)
            return;
        weft__count(w, runs, 1);
        atomic_store_explicit(&w->running, t, memory_order_relaxed);
        struct weft__handoff h = {NULL, NULL, NULL, w};
        void *m = weft__fiber_switch(w->sched_fiber, t->fiber, &h);
        weft__handoff_run(m);
    }
}

/* Worker 0's scheduler runs on a fiber of its own, since worker 0's thread
   stack is the main task's. */
static void sched0_entry(weft__fiber *self, void *msg)
{
    (void)self;
    weft__handoff_run(msg);
    sched_loop(weft__worker_current());
    fprintf(stderr, "weft: worker 0's scheduler returned\n");
    abort();
}

/* ---- worker threads ------------------------------------------------------- */

struct worker_arg {
    weft__worker *w;
    struct weft__startup *st;
};

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    weft__worker *w = a->w;
    struct weft__startup *st = a->st;
    free(a);
    weft__sched *s = w->sched;

    set_worker_current(w);
    weft__monitor_thread(w);
    weft__fiber_init_thread(&w->thread_fiber);
    w->thread_fiber.name = "scheduler";
    w->sched_fiber = &w->thread_fiber;
    int rc = weft__ring_init(w, s->ring_entries);

    pthread_mutex_lock(&st->lock);
    st->started++;
    if (rc < 0 && st->error == 0)
        st->error = rc;
    pthread_cond_broadcast(&st->cond);
    while (st->go == 0)
        pthread_cond_wait(&st->cond, &st->lock);
    int go = st->go;
    pthread_mutex_unlock(&st->lock);

    if (rc == 0 && go > 0)
        sched_loop(w);
    /* The ring stays: other workers may still be sending to it.  The
       thread that joins this one frees it. */
    weft__stack_cache_drain(&s->pool, &w->cache);
    weft__fiber_fini_thread(&w->thread_fiber);
    set_worker_current(NULL);
    return NULL;
}

static void worker_setup(weft__sched *s, unsigned i)
{
    weft__worker *w = &s->workers[i];
    memset(w, 0, sizeof *w);
    w->sched = s;
    w->index = i;
    w->rng = 0x9e3779b9u * (i + 1) | 1;
    w->spin_rounds = SPIN_ROUNDS;
    w->cache = (weft__stack_cache)WEFT__STACK_CACHE_INIT;
    w->q.solo = s->nworkers == 1;
}

/* What init set up on the calling thread, and the scheduler's memory. */
static void release_thread0(weft__sched *s)
{
    weft__worker *w0 = &s->workers[0];
    weft__stack_cache_drain(&s->pool, &w0->cache);
    weft__fiber_fini_thread(&w0->thread_fiber);
    set_worker_current(NULL);
    weft__stack_pool_deinit(&s->pool);
    pthread_mutex_destroy(&s->startup.lock);
    pthread_cond_destroy(&s->startup.cond);
    pthread_mutex_destroy(&s->global_lock);
    pthread_mutex_destroy(&s->idle_lock);
    weft__ring_foreign_fini(s);
    pthread_mutex_destroy(&s->foreign_lock);
    free(s->workers);
    free(s->idle);
}

/* Every initialised loop, newest first, for debuggers: the gdb extension
   (share/weft/gdb/weft.py) starts here to find the tasks.  Touched only by
   init and deinit. */
__attribute__((used)) weft__sched *weft__debug_loops;
static pthread_mutex_t debug_loops_lock = PTHREAD_MUTEX_INITIALIZER;

static void debug_loops_add(weft__sched *s)
{
    pthread_mutex_lock(&debug_loops_lock);
    s->debug_next = weft__debug_loops;
    weft__debug_loops = s;
    pthread_mutex_unlock(&debug_loops_lock);
}

static void debug_loops_remove(weft__sched *s)
{
    pthread_mutex_lock(&debug_loops_lock);
    for (weft__sched **p = &weft__debug_loops; *p; p = &(*p)->debug_next)
        if (*p == s) {
            *p = s->debug_next;
            break;
        }
    pthread_mutex_unlock(&debug_loops_lock);
}

/* A child forked by a task is a new process with one thread: the loop the
   thread belonged to is not in it (its other threads are not), so the
   thread is no worker there and may start a loop of its own. */
static void forget_worker_after_fork(void)
{
    set_worker_current(NULL);
    /* Nor are the parent's loops running in it; and another of the
       parent's threads may have held the list's lock at the fork. */
    weft__debug_loops = NULL;
    debug_loops_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_worker_after_fork);
}

int weft__sched_init(weft__sched *s, unsigned n, size_t stack_size, unsigned ring_entries,
                     weft_io io)
{
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    pthread_once(&atfork_once, register_atfork);
    if (weft__worker_current())
        return -EBUSY;
    memset(s, 0, sizeof *s);
    s->nworkers = n;
    s->io = io;
    s->ring_entries = ring_entries;
    weft__stack_pool_options po = {.size = stack_size};
    int rc = weft__stack_pool_init(&s->pool, &po);
    if (rc < 0)
        return rc;
    s->workers = aligned_alloc(64, sizeof(weft__worker) * n);
    s->idle = calloc(n, sizeof(unsigned));
    if (!s->workers || !s->idle) {
        free(s->workers);
        free(s->idle);
        weft__stack_pool_deinit(&s->pool);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->global_lock, NULL);
    pthread_mutex_init(&s->idle_lock, NULL);
    pthread_mutex_init(&s->foreign_lock, NULL);
    pthread_mutex_init(&s->startup.lock, NULL);
    pthread_cond_init(&s->startup.cond, NULL);
    weft__offload_init(s);
    for (unsigned i = 0; i < n; i++)
        worker_setup(s, i);

    /* Worker 0 is this thread; its stack becomes the main task's fiber. */
    weft__worker *w0 = &s->workers[0];
    weft__task *m = &s->main_task;
    m->fiber = &w0->thread_fiber;
    m->pinned = w0;
    m->sched = s;
    m->flags = WEFT__TASK_MAIN;
    m->deadline = WEFT_NO_DEADLINE;
    memcpy(m->name, "main", 5);
    set_worker_current(w0);
    weft__monitor_thread(w0);
    weft__fiber_init_thread(&w0->thread_fiber);
    w0->thread_fiber.extra = m;
    w0->thread_fiber.name = "main";
    atomic_store_explicit(&w0->running, m, memory_order_relaxed);
    rc = weft__ring_init(w0, ring_entries);
    if (rc < 0)
        goto fail_thread;
    rc = weft__ring_foreign_init(s);
    if (rc < 0)
        goto fail_ring;
    rc = weft__fiber_create(&w0->sched_fiber, &s->pool, &w0->cache, 0, sched0_entry);
    if (rc < 0)
        goto fail_ring;
    w0->sched_fiber->name = "scheduler 0";

    /* In the scheduler, not on this stack: workers still use it after
       this function returns (re-locking the mutex as they wake). */
    struct weft__startup *st = &s->startup;
    unsigned created = 1;
    for (; created < n; created++) {
        struct worker_arg *a = malloc(sizeof *a);
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        *a = (struct worker_arg){&s->workers[created], st};
        int e = pthread_create(&s->workers[created].thread, NULL, worker_main, a);
        if (e) {
            free(a);
            rc = -e;
            break;
        }
    }
    pthread_mutex_lock(&st->lock);
    while (st->started < created - 1)
        pthread_cond_wait(&st->cond, &st->lock);
    if (rc == 0)
        rc = st->error;
    st->go = rc == 0 ? 1 : -1;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (rc == 0) {
        static _Atomic unsigned serials;
        s->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
        weft__monitor_start(s);
        debug_loops_add(s);
        return 0;
    }
    for (unsigned i = 1; i < created; i++) {
        pthread_join(s->workers[i].thread, NULL);
        weft__ring_fini(&s->workers[i]);
    }
    weft__fiber_destroy(w0->sched_fiber, &s->pool, &w0->cache);
fail_ring:
    weft__ring_fini(w0);
fail_thread:
    weft__offload_fini(s);
    release_thread0(s);
    return rc;
}

void weft__sched_deinit(weft__sched *s)
{
    weft__worker *w0 = &s->workers[0];
    if (weft__worker_current() != w0 || weft__task_current() != &s->main_task) {
        fprintf(stderr, "weft: weft_event_loop_deinit must be called from the loop's main task "
                        "(the thread that called weft_event_loop_init)\n");
        abort();
    }
    weft__task_wait_detached(s);
    debug_loops_remove(s);
    weft__monitor_stop(s);
    /* Before the rings go: an offload thread ends a job with a wake-up. */
    weft__offload_fini(s);

    atomic_store_explicit(&s->stopping, true, memory_order_seq_cst);
    for (unsigned i = 1; i < s->nworkers; i++)
        weft__ring_wake(w0, &s->workers[i]);
    for (unsigned i = 1; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    /* Only now: a worker may still have been kicking the monitor. */
    weft__monitor_fini(s);
    /* Threads outside the loop still in the middle of a wake-up or a
       cancel that reached one of its tasks. */
    for (unsigned spins = 0; atomic_load_explicit(&s->remote_users, memory_order_acquire); spins++)
        if (spins > 64)
            sched_yield();
    weft__task_report_unreleased(s);
    for (unsigned i = 1; i < s->nworkers; i++)
        weft__ring_fini(&s->workers[i]);

    /* Worker 0's scheduler is suspended in its loop; it never runs again.
       (Its abandoned frames' ASan poison is cleared when the stack is put
       back, as for every stack.) */
    weft__fiber_destroy(w0->sched_fiber, &s->pool, &w0->cache);
    weft__ring_fini(w0);
    release_thread0(s);
}
