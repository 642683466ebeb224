// SPDX-License-Identifier: MIT
/*
 * The thread-pool Io: every task is an OS thread, taken from a pool.
 *
 * Threads.  A pool thread runs one task at a time.  Between tasks it waits
 * on its own condition variable, on the idle list (a LIFO: the most recently
 * used thread, with warm caches, is handed the next task; the coldest ones
 * sit at the far end and are the first to time out).  weft_async takes an
 * idle thread, or starts one while the pool has fewer than max_threads, or
 * else runs the task inline: the caller does the work itself rather than
 * queueing it behind busy threads.  weft_concurrent must run the task on a
 * thread of its own, so it may start threads beyond max_threads, up to
 * HARD_CAP in all, and fails with -ENOMEM past that (or when the system
 * refuses a thread).  A thread idle for IDLE_NS exits.  The pool lock
 * guards the idle list, the counts and each thread's `job` slot; a
 * thread's condition is signalled under that lock, since an idle thread
 * may exit (and free itself) as soon as it can take the lock.
 *
 * Futures.  A task is one allocation: header, ctx, result.  Whoever waits
 * (await, select) registers a selector in the task's `sel`, under the
 * parking-lot bucket lock of the task's address; the finisher sets `done`
 * under the same lock and wakes the selector it finds there.  A selector
 * registered on several tasks is claimed by exactly one finisher (or by the
 * selector itself when it leaves): only the claimer touches it afterwards,
 * and the selector does not return before the claimer's wake has landed.
 * All waiting is weft_waiter sleeping through the vtable's wait, as on the
 * blocking Io: futexes.
 *
 * Cancel, without signals.  A signal that interrupts a blocked system call
 * has to be sent again until the target notices it (a signal can arrive
 * just before the call starts), and sanitizers and debuggers defer or
 * swallow signals.  Here no call is ever left waiting inside the kernel
 * where a cancel cannot reach it:
 *   - I/O that can wait on a peer is tried without waiting, then waits in
 *     ppoll on the fd and on the thread's eventfd (sys.c, shared with the
 *     blocking Io, which passes no eventfd);
 *   - sleeps are ppoll on the eventfd alone;
 *   - waits on mutexes, conditions, queues, groups and futures are futex
 *     waits on a parking-lot waiter; a task in a cancelable one publishes
 *     its bucket in its cancel word, and the canceler dequeues its waiter
 *     with -ECANCELED (park.c), exactly as on the event loop.
 * A cancel sets REQUESTED in the task's cancel word, dequeues the waiter
 * if the word says the task is parked, and writes the eventfd of the
 * thread the task runs on.  A call that completed before the cancel keeps
 * its result: cancels land only in poll or in a futex wait, never in the
 * middle of a transfer.
 *
 * The cancel word: REQUESTED, PARKED with the bucket index, FINISHED, and
 * a count of cancelers inside their interrupt.  The task's thread must not
 * exit (closing its eventfd) and a group member must not be freed while a
 * canceler is writing to them, so a canceler that finds the task not
 * FINISHED raises the count in the same RMW that sets REQUESTED, and the
 * finisher, after setting FINISHED, waits for the count to drop to zero.
 * Every change is an RMW on the one word, so the two always see each
 * other in one order.
 *
 * Groups use the fields of struct weft_group as group.c does for the event
 * loop (count, flags, a live and a canceled member list under the group's
 * bucket lock), with pool tasks as members.
 */
#include "../fiber/sanitize.h"
#include "../sched/park.h"
#include "fault.h"
#include "sys.h"

#include <weft/weft.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int weft__clock_now(clockid_t clock, int64_t *ns);
void weft__check_task_sizes(size_t ctx_len, size_t result_len);
void weft__group_wait(weft_io io, weft_group *g);
void weft__group_cancel(weft_io io, weft_group *g);

/* Threads weft_concurrent may start in all (or max_threads, if larger): a
   thread-per-connection server holds one per client, and each costs two
   memory maps of vm.max_map_count's 65530 and a slot of kernel.threads-max. */
#define HARD_CAP 16384u
/* A thread idle this long exits (WEFT_THREAD_POOL_IDLE_MS overrides it). */
#define IDLE_NS (10LL * 1000000000LL)
/* Each thread's stack: what a fiber gets on the event loop, so the same
   code runs under the same limit on both; sanitizers need more. */
#if defined(WEFT__ASAN) || defined(WEFT__TSAN)
#define STACK_SIZE (1024u * 1024u)
#else
#define STACK_SIZE (256u * 1024u)
#endif

#define LIVE     0x7470746c697665u
#define RELEASED 0x7470746465616475u
#define CACHE    16

/* The cancel word. */
#define C_REQUESTED    1u
#define C_PARKED       2u
#define C_FINISHED     4u
#define C_BUCKET_SHIFT 8
#define C_BUCKET_MASK  (0x3ffu << C_BUCKET_SHIFT)
#define C_INTR_ONE     (1u << 20)
#define C_INTR_MASK    (0xfffu << 20)

enum { T_DETACHED = 1, T_GROUP = 2, T_INLINE = 4 };

/* weft_group.flags_: bit 0 is CANCELING (as in group.c); bit 1 says the
   members are this pool's tasks. */
#define G_CANCELING 1ul
#define G_POOL      2ul

struct selector;
struct tp_thread;

struct tp_task {
    uint64_t magic;
    weft_thread_pool *tp;
    weft_task_fn *fn;
    uint64_t id;
    uint32_t flags;
    size_t result_off, result_len, cap;
    struct tp_thread *thread; /* where it runs: whose eventfd a cancel writes */
    _Atomic uint32_t done;    /* set under the bucket lock of the task */
    _Atomic uint32_t cancel;  /* the cancel word */
    struct selector *sel;     /* under the bucket lock of the task */
    weft_group *group;        /* members: linked under the group's bucket lock */
    struct tp_task *gprev, *gnext, *next;
    bool gcanceled;
    _Alignas(64) unsigned char data[];
};

struct tp_thread {
    weft_thread_pool *tp;
    struct tp_thread *prev, *next; /* the idle list */
    struct tp_task *job;           /* handed over under the pool lock */
    pthread_cond_t cond;
    int efd;
    bool idle;
};

struct weft_thread_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* deinit: detached tasks done, threads gone */
    struct tp_thread *idle;
    unsigned max_threads, hard_cap;
    unsigned nthreads; /* alive */
    unsigned busy;     /* running a task, or about to */
    long detached;     /* detached tasks and group members not finished */
    bool stopping;
    int64_t idle_ns;
    _Atomic uint64_t ids;
};

struct selector {
    weft_waiter w;
    _Atomic uint32_t claimed;
};

/* Who this thread is: its pool thread (NULL on any other thread), the
   task it runs (NULL outside tasks) and that task's deadline (or this
   thread's own, outside tasks). */
static _Thread_local struct {
    struct tp_thread *th;
    struct tp_task *task;
    int64_t deadline;
} self = {NULL, NULL, WEFT_NO_DEADLINE};

static _Thread_local struct {
    struct tp_task *head;
    unsigned count;
} cache;

static const weft_io_vtable tp_vtable;

static weft_io io_of(weft_thread_pool *tp)
{
    weft_io io = {tp, &tp_vtable};
    return io;
}

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* ---- task memory ------------------------------------------------------------ */

static struct tp_task *task_new(weft_thread_pool *tp, weft_task_fn *fn, const void *ctx,
                                size_t ctx_len, size_t result_len, uint32_t flags)
{
    weft__check_task_sizes(ctx_len, result_len);
    size_t need = round64(ctx_len) + result_len;
    struct tp_task *t = NULL;
    for (struct tp_task **pp = &cache.head; *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= need) {
            t = *pp;
            *pp = t->next;
            cache.count--;
            break;
        }
    if (!t) {
        size_t cap = need < 256 ? 256 : need;
        t = aligned_alloc(64, round64(sizeof *t + cap));
        if (!t) {
            fprintf(stderr, "weft: thread pool: out of memory for a task\n");
            abort();
        }
        t->cap = cap;
    }
    t->magic = LIVE;
    t->tp = tp;
    t->fn = fn;
    t->id = atomic_fetch_add_explicit(&tp->ids, 1, memory_order_relaxed) + 1;
    t->flags = flags;
    t->result_off = round64(ctx_len);
    t->result_len = result_len;
    t->thread = NULL;
    atomic_init(&t->done, 0);
    atomic_init(&t->cancel, 0);
    t->sel = NULL;
    t->group = NULL;
    t->gprev = t->gnext = t->next = NULL;
    t->gcanceled = false;
    if (ctx_len)
        memcpy(t->data, ctx, ctx_len);
    return t;
}

/* Released blocks stay marked RELEASED while cached, so a second release
   of one is caught (as long as the block was not reused). */
static void task_free(struct tp_task *t)
{
    t->magic = RELEASED;
    if (cache.count < CACHE) {
        t->next = cache.head;
        cache.head = t;
        cache.count++;
        return;
    }
    free(t);
}

static struct tp_task *live(weft_future *f, const char *who)
{
    struct tp_task *t = (struct tp_task *)f;
    if (!t || t->magic != LIVE) {
        fprintf(stderr, "weft: %s: future %p %s\n", who, (void *)f,
                t && t->magic == RELEASED
                    ? "was already released (each future takes exactly one await or cancel)"
                    : "is not a live future");
        abort();
    }
    return t;
}

/* ---- cancel --------------------------------------------------------------------- */

static bool task_canceled(void *arg)
{
    const struct tp_task *t = arg;
    return atomic_load_explicit(&t->cancel, memory_order_acquire) & C_REQUESTED;
}

/* Sets REQUESTED.  True when the task has not finished and the caller must
   interrupt it (with *old, the word before) and then unpin it. */
static bool cancel_pin(struct tp_task *t, uint32_t *old)
{
    uint32_t o = atomic_load_explicit(&t->cancel, memory_order_relaxed), n;
    do {
        if (o & C_REQUESTED)
            return false; /* whoever requested it interrupts it */
        n = o | C_REQUESTED | (o & C_FINISHED ? 0u : C_INTR_ONE);
    } while (!atomic_compare_exchange_weak_explicit(&t->cancel, &o, n, memory_order_acq_rel,
                                                    memory_order_relaxed));
    *old = o;
    return !(o & C_FINISHED);
}

/* The pinned task cannot finish past its FINISHED wait, so its thread and
   (for a member) its memory stay. */
static void cancel_interrupt(struct tp_task *t, uint32_t old)
{
    if (old & C_PARKED)
        weft__park_cancel(weft__park_bucket_at((old & C_BUCKET_MASK) >> C_BUCKET_SHIFT), t, t->id);
    if (t->thread) {
        int saved = errno;
        uint64_t one = 1;
        if (write(t->thread->efd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is full of earlier wake-ups already */
        }
        errno = saved;
    }
    atomic_fetch_sub_explicit(&t->cancel, C_INTR_ONE, memory_order_release);
}

static void cancel_request(struct tp_task *t)
{
    uint32_t old;
    if (cancel_pin(t, &old))
        cancel_interrupt(t, old);
}

static const weft__sys_cancel *cancel_of(weft__sys_cancel *c)
{
    if (!self.task)
        return NULL;
    c->fd = self.th ? self.th->efd : -1;
    c->requested = task_canceled;
    c->arg = self.task;
    return c;
}

/* ---- groups --------------------------------------------------------------------- */

static struct tp_task **list_of(weft_group *g, bool canceled)
{
    return (struct tp_task **)&g->members_[canceled ? 1 : 0];
}

static void list_add(weft_group *g, struct tp_task *t, bool canceled)
{
    struct tp_task **head = list_of(g, canceled);
    t->gcanceled = canceled;
    t->gprev = NULL;
    t->gnext = *head;
    if (*head)
        (*head)->gprev = t;
    *head = t;
}

static void list_del(weft_group *g, struct tp_task *t)
{
    if (t->gprev)
        t->gprev->gnext = t->gnext;
    else
        *list_of(g, t->gcanceled) = t->gnext;
    if (t->gnext)
        t->gnext->gprev = t->gprev;
}

static void group_add(weft_group *g, struct tp_task *t)
{
    t->group = g;
    weft__bucket *b = weft__park_lock(g);
    g->flags_ |= G_POOL;
    __atomic_add_fetch(&g->count_, 1, __ATOMIC_RELAXED);
    if (g->flags_ & G_CANCELING) {
        list_add(g, t, true); /* not running yet: nothing to interrupt */
        atomic_fetch_or_explicit(&t->cancel, C_REQUESTED, memory_order_relaxed);
    } else {
        list_add(g, t, false);
    }
    weft__park_unlock(b);
}

static void group_leave(struct tp_task *t)
{
    weft_group *g = t->group;
    weft__bucket *b = weft__park_lock(g);
    list_del(g, t);
    weft_waiter *waiters = NULL;
    if (__atomic_load_n(&g->count_, __ATOMIC_RELAXED) == 1) {
        waiters = weft__park_remove_all(b, g);
        g->flags_ &= ~G_POOL;
    }
    __atomic_sub_fetch(&g->count_, 1, __ATOMIC_RELEASE); /* the last touch of g */
    weft__park_unlock(b);
    weft__waiter_wake_list(waiters, 0);
}

/* ---- running tasks ---------------------------------------------------------------- */

static void detached_done(weft_thread_pool *tp)
{
    pthread_mutex_lock(&tp->lock);
    if (--tp->detached == 0)
        pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->lock);
}

static void finish(struct tp_task *t)
{
    atomic_fetch_or_explicit(&t->cancel, C_FINISHED, memory_order_acq_rel);
    while (atomic_load_explicit(&t->cancel, memory_order_acquire) & C_INTR_MASK)
        sched_yield(); /* a canceler is writing to this thread's eventfd */
    if (t->flags & (T_DETACHED | T_GROUP)) {
        weft_thread_pool *tp = t->tp;
        bool counted = !(t->flags & T_INLINE);
        if (t->group)
            group_leave(t);
        task_free(t);
        if (counted)
            detached_done(tp);
        return;
    }
    weft__bucket *b = weft__park_lock(t);
    struct selector *s = t->sel;
    t->sel = NULL;
    bool wake = s && !atomic_exchange_explicit(&s->claimed, 1, memory_order_acq_rel);
    /* The last touch of t: an await that sees done may free it at once. */
    atomic_store_explicit(&t->done, 1, memory_order_release);
    weft__park_unlock(b);
    if (wake)
        weft__waiter_wake(&s->w);
}

/* Runs t on this thread (a pool thread, or inline in the caller). */
static void run(struct tp_task *t)
{
    struct tp_task *outer = self.task;
    int64_t outer_deadline = self.deadline;
    self.task = t;
    self.deadline = WEFT_NO_DEADLINE;
    bool has_result = !(t->flags & (T_DETACHED | T_GROUP));
    t->fn(io_of(t->tp), t->data, has_result ? t->data + t->result_off : NULL);
    self.task = outer;
    self.deadline = outer_deadline;
    finish(t);
}

static void run_inline(struct tp_task *t)
{
    t->flags |= T_INLINE;
    t->thread = self.th;
    run(t);
}

static void *thread_main(void *arg)
{
    struct tp_thread *th = arg;
    weft_thread_pool *tp = th->tp;
    self.th = th;
    pthread_mutex_lock(&tp->lock);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + tp->idle_ns % 1000000000;
        until.tv_sec += (time_t)(tp->idle_ns / 1000000000 + ns / 1000000000);
        until.tv_nsec = ns % 1000000000;
        bool expired = false;
        /* A thread on the idle list may leave when it has been idle too
           long or the pool is going away.  One that is not -- just made,
           or taken off the list by reserve() for a task that dispatch()
           has yet to hand it -- waits for that task, whatever happens:
           leaving then would lose the task and free what dispatch()
           writes to. */
        while (!th->job && (!th->idle || (!tp->stopping && !expired))) {
            if (th->idle)
                expired = pthread_cond_timedwait(&th->cond, &tp->lock, &until) == ETIMEDOUT;
            else
                pthread_cond_wait(&th->cond, &tp->lock);
        }
        if (!th->job)
            break; /* idle too long, or the pool is going away */
        struct tp_task *t = th->job;
        th->job = NULL;
        pthread_mutex_unlock(&tp->lock);

        run(t);

        pthread_mutex_lock(&tp->lock);
        tp->busy--;
        th->idle = true;
        th->prev = NULL;
        th->next = tp->idle;
        if (tp->idle)
            tp->idle->prev = th;
        tp->idle = th;
    }
    if (th->idle) {
        if (th->prev)
            th->prev->next = th->next;
        else
            tp->idle = th->next;
        if (th->next)
            th->next->prev = th->prev;
    }
    if (--tp->nthreads == 0)
        pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->lock);
    close(th->efd);
    pthread_cond_destroy(&th->cond);
    free(th);
    self.th = NULL;
    while (cache.head) {
        struct tp_task *t = cache.head;
        cache.head = t->next;
        free(t);
    }
    cache.count = 0;
    return NULL;
}

/* A thread for one task: an idle one, or a new one while the pool has
   fewer than cap.  NULL if there is none to be had. */
static struct tp_thread *reserve(weft_thread_pool *tp, unsigned cap)
{
    pthread_mutex_lock(&tp->lock);
    struct tp_thread *th = tp->idle;
    if (th) {
        tp->idle = th->next;
        if (th->next)
            th->next->prev = NULL;
        th->idle = false;
        tp->busy++;
        pthread_mutex_unlock(&tp->lock);
        return th;
    }
    if (tp->nthreads >= cap || tp->stopping) {
        pthread_mutex_unlock(&tp->lock);
        return NULL;
    }
    tp->nthreads++;
    tp->busy++;
    pthread_mutex_unlock(&tp->lock);

    int saved = errno;
    th = calloc(1, sizeof *th);
    bool cond_ok = false, ok = false;
    pthread_condattr_t ca;
    if (th)
        th->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (th && th->efd >= 0) {
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        cond_ok = pthread_cond_init(&th->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (cond_ok) {
        th->tp = tp;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        size_t stack = STACK_SIZE < PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN : STACK_SIZE;
        pthread_attr_setstacksize(&a, stack);
        /* The pool's threads take no asynchronous signals: those go to the
           program's own threads, as they would without the pool. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_t id;
        ok = !weft__fault(WEFT__FAULT_THREAD) && pthread_create(&id, &a, thread_main, th) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&a);
    }
    errno = saved;
    if (ok)
        return th;
    if (th) {
        if (cond_ok)
            pthread_cond_destroy(&th->cond);
        if (th->efd >= 0)
            close(th->efd);
        free(th);
    }
    pthread_mutex_lock(&tp->lock);
    tp->nthreads--;
    tp->busy--;
    if (tp->nthreads == 0)
        pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->lock);
    return NULL;
}

static void dispatch(struct tp_thread *th, struct tp_task *t)
{
    weft_thread_pool *tp = th->tp;
    pthread_mutex_lock(&tp->lock);
    if (t->flags & (T_DETACHED | T_GROUP))
        tp->detached++; /* deinit waits for it */
    th->job = t;
    pthread_cond_signal(&th->cond); /* under the lock: th may exit once it has it */
    pthread_mutex_unlock(&tp->lock);
}

/* ---- the vtable: tasks and futures ----------------------------------------------- */

static weft_future *tp_async(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                             size_t result_len)
{
    weft_thread_pool *tp = ud;
    struct tp_task *t = task_new(tp, fn, ctx, ctx_len, result_len, 0);
    struct tp_thread *th = reserve(tp, tp->max_threads);
    if (!th) {
        run_inline(t);
        return (weft_future *)t;
    }
    t->thread = th;
    dispatch(th, t);
    return (weft_future *)t;
}

static int tp_concurrent(void *ud, weft_future **out, weft_task_fn *fn, const void *ctx,
                         size_t ctx_len, size_t result_len)
{
    weft_thread_pool *tp = ud;
    weft__check_task_sizes(ctx_len, result_len);
    struct tp_thread *th = reserve(tp, tp->hard_cap);
    if (!th) {
        *out = NULL;
        return -ENOMEM;
    }
    struct tp_task *t = task_new(tp, fn, ctx, ctx_len, result_len, 0);
    t->thread = th;
    dispatch(th, t);
    *out = (weft_future *)t;
    return 0;
}

static void tp_async_detached(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len)
{
    weft_thread_pool *tp = ud;
    struct tp_task *t = task_new(tp, fn, ctx, ctx_len, 0, T_DETACHED);
    struct tp_thread *th = reserve(tp, tp->max_threads);
    if (!th) {
        run_inline(t);
        return;
    }
    t->thread = th;
    dispatch(th, t);
}

/* Blocks until one of ts[0..n) is done; returns its index. */
static size_t wait_any(weft_thread_pool *tp, struct tp_task *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&ts[i]->done, memory_order_acquire))
            return i;
    struct selector s = {0};
    weft__waiter_init(&s.w, &s, 0, NULL, false);
    atomic_init(&s.claimed, 0);
    size_t reg = 0;
    bool found = false;
    for (; reg < n && !found; reg++) {
        weft__bucket *b = weft__park_lock(ts[reg]);
        if (atomic_load_explicit(&ts[reg]->done, memory_order_relaxed)) {
            found = true;
        } else if (ts[reg]->sel) {
            weft__park_unlock(b);
            fprintf(stderr,
                    "weft: future %p is already being waited for (in weft_select, or by "
                    "another await)\n",
                    (void *)ts[reg]);
            abort();
        } else {
            ts[reg]->sel = &s;
        }
        weft__park_unlock(b);
    }
    if (!found)
        weft__park_wait(io_of(tp), &s.w); /* until a finisher wakes us */
    for (size_t i = 0; i < reg; i++) {
        weft__bucket *b = weft__park_lock(ts[i]);
        if (ts[i]->sel == &s)
            ts[i]->sel = NULL;
        weft__park_unlock(b);
    }
    /* A finisher that claimed s will wake it: s must outlive that. */
    if (atomic_exchange_explicit(&s.claimed, 1, memory_order_acq_rel))
        weft__park_wait_thread(&s.w);
    for (size_t i = 0; i < n; i++)
        if (atomic_load_explicit(&ts[i]->done, memory_order_acquire))
            return i;
    fprintf(stderr, "weft: thread pool: select woke with no future finished\n");
    abort();
}

static void tp_await(void *ud, weft_future *f, void *result)
{
    struct tp_task *t = live(f, "weft_await");
    if (!atomic_load_explicit(&t->done, memory_order_acquire))
        wait_any(ud, &t, 1);
    if (result && t->result_len)
        memcpy(result, t->data + t->result_off, t->result_len);
    task_free(t);
}

static void tp_cancel(void *ud, weft_future *f, void *result)
{
    struct tp_task *t = live(f, "weft_cancel");
    cancel_request(t);
    tp_await(ud, f, result);
}

static size_t tp_select(void *ud, weft_future *const *futures, size_t n)
{
    if (n == 0) {
        fprintf(stderr, "weft: weft_select: no futures to wait for\n");
        abort();
    }
    for (size_t i = 0; i < n; i++)
        live(futures[i], "weft_select");
    return wait_any(ud, (struct tp_task *const *)futures, n);
}

static bool tp_cancel_requested(void *ud)
{
    (void)ud;
    return self.task && task_canceled(self.task);
}

static void tp_yield(void *ud)
{
    (void)ud;
    sched_yield();
}

/* ---- time ------------------------------------------------------------------------ */

static int tp_now(void *ud, clockid_t clock, int64_t *ns)
{
    (void)ud;
    return weft__clock_now(clock, ns);
}

/* ppoll on the thread's eventfd, a slice at a time until clock reads
   `when` (a CLOCK_REALTIME sleep sees a clock change at the next slice). */
static int tp_sleep_until(void *ud, clockid_t clock, int64_t when)
{
    (void)ud;
    if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME)
        return -EINVAL;
    weft__sys_cancel cs;
    const weft__sys_cancel *c = cancel_of(&cs);
    for (;;) {
        if (c && c->requested(c->arg))
            return -ECANCELED;
        int64_t now, mono;
        weft__clock_now(CLOCK_MONOTONIC, &mono);
        if (mono >= self.deadline)
            return -ETIMEDOUT;
        if (weft__clock_now(clock, &now) < 0)
            return -EINVAL;
        if (now >= when)
            return 0;
        int64_t left = when - now;
        if (clock != CLOCK_MONOTONIC && left > 1000000000)
            left = 1000000000;
        int64_t until = left > INT64_MAX - mono ? INT64_MAX - 1 : mono + left;
        if (until > self.deadline)
            until = self.deadline;
        int rc = weft__sys_ready(-1, 0, until, c);
        if (rc == -ECANCELED)
            return rc;
    }
}

/* ---- waiting (<weft/sync.h>) ------------------------------------------------------ */

static int tp_wait(void *ud, weft_waiter *w)
{
    (void)ud;
    struct tp_task *t = self.task;
    if (!t || !w->cancelable)
        return weft__park_wait_thread_until(w, self.deadline);
    atomic_store_explicit(&w->task, t, memory_order_relaxed);
    atomic_store_explicit(&w->task_id, t->id, memory_order_relaxed);
    /* Publish where the task waits; release: a canceler that reads this
       word finds the waiter's task fields set. */
    uint32_t where = C_PARKED | (weft__park_bucket_index(w->addr) << C_BUCKET_SHIFT);
    uint32_t old = atomic_load_explicit(&t->cancel, memory_order_relaxed);
    do {
        if (old & C_REQUESTED) {
            if (weft__park_withdraw(w))
                return -ECANCELED;
            return weft__park_wait_thread(w); /* a waker took it first */
        }
    } while (!atomic_compare_exchange_weak_explicit(&t->cancel, &old, old | where,
                                                    memory_order_release, memory_order_relaxed));
    int rc = weft__park_wait_thread_until(w, self.deadline);
    atomic_fetch_and_explicit(&t->cancel, ~(C_PARKED | C_BUCKET_MASK), memory_order_relaxed);
    return rc;
}

/* ---- groups ---------------------------------------------------------------------- */

static void tp_group_async(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                           size_t ctx_len)
{
    weft_thread_pool *tp = ud;
    struct tp_task *t = task_new(tp, fn, ctx, ctx_len, 0, T_GROUP);
    struct tp_thread *th = reserve(tp, tp->max_threads);
    if (!th) {
        t->flags |= T_INLINE;
        t->thread = self.th;
        group_add(g, t);
        run(t);
        return;
    }
    t->thread = th;
    group_add(g, t);
    dispatch(th, t);
}

static int tp_group_concurrent(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                               size_t ctx_len)
{
    weft_thread_pool *tp = ud;
    weft__check_task_sizes(ctx_len, 0);
    struct tp_thread *th = reserve(tp, tp->hard_cap);
    if (!th)
        return -ENOMEM;
    struct tp_task *t = task_new(tp, fn, ctx, ctx_len, 0, T_GROUP);
    t->thread = th;
    group_add(g, t);
    dispatch(th, t);
    return 0;
}

static bool pool_members(weft_group *g)
{
    weft__bucket *b = weft__park_lock(g);
    bool pool = (g->flags_ & G_POOL) || __atomic_load_n(&g->count_, __ATOMIC_RELAXED) == 0;
    weft__park_unlock(b);
    return pool;
}

static void check_not_member(weft_group *g, const char *who)
{
    if (self.task && self.task->group == g) {
        fprintf(stderr, "weft: %s: called by a member of group %p, which would wait for itself\n",
                who, (void *)g);
        abort();
    }
}

/* Parks until the group has no members.  0, or -ECANCELED / -ETIMEDOUT. */
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

static void tp_group_cancel(void *ud, weft_group *g)
{
    weft_io io = io_of(ud);
    if (!pool_members(g)) {
        weft__group_cancel(io, g); /* members on an event loop */
        return;
    }
    check_not_member(g, "weft_group_cancel");
    enum { BATCH = 32 };
    struct {
        struct tp_task *t;
        uint32_t old;
    } pinned[BATCH];
    bool more;
    do {
        unsigned n = 0;
        weft__bucket *b = weft__park_lock(g);
        g->flags_ |= G_CANCELING;
        struct tp_task *t;
        while (n < BATCH && (t = *list_of(g, false))) {
            list_del(g, t);
            list_add(g, t, true);
            if (cancel_pin(t, &pinned[n].old))
                pinned[n++].t = t;
        }
        more = *list_of(g, false) != NULL;
        weft__park_unlock(b);
        for (unsigned i = 0; i < n; i++)
            cancel_interrupt(pinned[i].t, pinned[i].old);
    } while (more);
    wait_empty(io, g, false);
    weft__bucket *b = weft__park_lock(g);
    if (__atomic_load_n(&g->count_, __ATOMIC_RELAXED) == 0)
        g->flags_ &= ~G_CANCELING;
    weft__park_unlock(b);
}

static void tp_group_wait(void *ud, weft_group *g)
{
    weft_io io = io_of(ud);
    if (!pool_members(g)) {
        weft__group_wait(io, g);
        return;
    }
    check_not_member(g, "weft_group_wait");
    if (wait_empty(io, g, true) < 0) /* canceled, or past the deadline */
        tp_group_cancel(ud, g);      /* the members go with their waiter */
}

/* ---- files, sockets, deadlines ------------------------------------------------------ */

static int64_t tp_operate(void *ud, weft_op *op)
{
    (void)ud;
    weft__sys_cancel cs;
    return weft__sys_operate_until(op, self.deadline, cancel_of(&cs));
}

static int64_t tp_deadline_set(void *ud, int64_t d)
{
    (void)ud;
    int64_t old = self.deadline;
    self.deadline = d;
    return old;
}

static int64_t tp_deadline(void *ud)
{
    (void)ud;
    return self.deadline;
}

static const weft_io_vtable tp_vtable = {
    .size = sizeof(weft_io_vtable),
    .async = tp_async,
    .concurrent = tp_concurrent,
    .async_detached = tp_async_detached,
    .await = tp_await,
    .cancel = tp_cancel,
    .select = tp_select,
    .cancel_requested = tp_cancel_requested,
    .yield = tp_yield,
    .now = tp_now,
    .sleep_until = tp_sleep_until,
    .wait = tp_wait,
    .group_async = tp_group_async,
    .group_concurrent = tp_group_concurrent,
    .group_wait = tp_group_wait,
    .group_cancel = tp_group_cancel,
    .operate = tp_operate,
    .deadline_set = tp_deadline_set,
    .deadline = tp_deadline,
};

/* ---- the pool ---------------------------------------------------------------------- */

static unsigned cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

WEFT_API int weft_thread_pool_init(weft_thread_pool **out, const weft_thread_pool_options *opts)
{
    if (!out)
        return -EINVAL;
    unsigned max = opts && opts->max_threads ? opts->max_threads : cpus();
    if (max > HARD_CAP * 4)
        return -EINVAL;
    weft_thread_pool *tp = calloc(1, sizeof *tp);
    if (!tp)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&tp->lock, NULL) || pthread_cond_init(&tp->cond, &ca)) {
        pthread_condattr_destroy(&ca);
        free(tp);
        return -ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    tp->max_threads = max;
    tp->hard_cap = max > HARD_CAP ? max : HARD_CAP;
    tp->idle_ns = IDLE_NS;
    const char *e = getenv("WEFT_THREAD_POOL_IDLE_MS");
    if (e && *e) {
        long ms = strtol(e, NULL, 10);
        if (ms > 0)
            tp->idle_ns = ms * 1000000LL;
    }
    atomic_init(&tp->ids, 0);
    *out = tp;
    return 0;
}

WEFT_API weft_io weft_thread_pool_io(weft_thread_pool *tp)
{
    return io_of(tp);
}

WEFT_API void weft_thread_pool_deinit(weft_thread_pool *tp)
{
    if (!tp)
        return;
    if (self.th && self.th->tp == tp) {
        fprintf(stderr, "weft: weft_thread_pool_deinit: called by one of the pool's own tasks, "
                        "which would wait for itself\n");
        abort();
    }
    pthread_mutex_lock(&tp->lock);
    while (tp->detached)
        pthread_cond_wait(&tp->cond, &tp->lock);
    tp->stopping = true;
    for (struct tp_thread *th = tp->idle; th; th = th->next)
        pthread_cond_signal(&th->cond);
    /* Threads still running a task (a future nobody released) finish it
       first. */
    while (tp->nthreads)
        pthread_cond_wait(&tp->cond, &tp->lock);
    pthread_mutex_unlock(&tp->lock);
    pthread_cond_destroy(&tp->cond);
    pthread_mutex_destroy(&tp->lock);
    free(tp);
}

/* For tests: has f's task been asked to stop? */
bool weft__thread_pool_cancel_requested(weft_future *f);
bool weft__thread_pool_cancel_requested(weft_future *f)
{
    return task_canceled(f);
}

/* For tests: threads alive now. */
unsigned weft__thread_pool_threads(weft_thread_pool *tp);
unsigned weft__thread_pool_threads(weft_thread_pool *tp)
{
    pthread_mutex_lock(&tp->lock);
    unsigned n = tp->nthreads;
    pthread_mutex_unlock(&tp->lock);
    return n;
}
