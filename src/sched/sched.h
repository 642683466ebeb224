// SPDX-License-Identifier: MIT
/*
 * The scheduler's objects and the calls between src/sched, src/uring and
 * src/io.  The design and its invariants are in sched.c.
 */
#ifndef WEFT_SCHED_SCHED_H
#define WEFT_SCHED_SCHED_H

#include "../fiber/fiber.h"
#include "../fiber/stack.h"

#include <weft/io.h>

#include <linux/time_types.h>
#include <pthread.h>
#include <sys/types.h>
#include <time.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct weft__task weft__task;
typedef struct weft__worker weft__worker;
typedef struct weft__sched weft__sched;

/* ---- tasks ---------------------------------------------------------------- */

/* The future word (weft__task.waiter): who waits for the task. */
#define WEFT__WAITER_NONE     ((uintptr_t)0)
#define WEFT__WAITER_FINISHED ((uintptr_t)4)
#define WEFT__WAITER_SELECT   ((uintptr_t)1) /* tag bit: a select registration */

/* The cancel word (weft__task.cancel): bit 0 is "cancel requested"; the
   bits from WHERE_SHIFT up say where the task is blocked in a way a cancel
   must interrupt: 0 nowhere, worker index + 1 for an operation in flight
   on that worker's ring (its record is cancel_key), or WHERE_PARK | the
   index of the parking-lot bucket it waits in.  Where and which bucket
   are one word, read by the canceler's one RMW: a bucket read in a
   second step could belong to a wait the task has since left. */
#define WEFT__CANCEL_REQUESTED   1u
#define WEFT__CANCEL_WHERE_SHIFT 8
#define WEFT__CANCEL_WHERE_PARK  0x800000u /* | bucket index (park.c: 1024 buckets) */
#define WEFT__CANCEL_BUCKET_MASK 0x3ffu

#define WEFT__TASK_LIVE     0x7765667475u /* the future is held by its owner */
#define WEFT__TASK_RELEASED 0x6465616475u /* awaited or canceled */

enum {
    WEFT__TASK_DETACHED = 1u << 0, /* no future: deinit waits for it */
    WEFT__TASK_INLINE = 1u << 1,   /* ran inline, lives in malloc'd memory */
    WEFT__TASK_MAIN = 1u << 2,     /* the loop's main task */
};

struct weft_group;

struct __attribute__((aligned(64))) weft__task {
    weft__task *link; /* global queue, inbox, or a wait list */
    weft__fiber *fiber;
    weft__worker *pinned; /* NULL, or the only worker it may run on */
    weft__sched *sched;
    weft_task_fn *fn;
    void *ctx;
    void *result;
    uint32_t result_len;
    uint32_t flags;
    uint64_t id; /* unique per loop: tells a reused stack's task from the old one */
    int64_t deadline; /* CLOCK_MONOTONIC, or WEFT_NO_DEADLINE */
    char name[WEFT_TASK_NAME_MAX]; /* weft_task_set_name; "" for none */
    int64_t queued_ns; /* when it went into the global queue (CLOCK_MONOTONIC) */

    /* Group members: linked under the group's bucket lock (group.c). */
    struct weft_group *group;
    weft__task *gprev, *gnext;
    bool gcanceled; /* on the group's canceled list */

    _Atomic uintptr_t waiter;   /* WEFT__WAITER_* or a task pointer (| SELECT) */
    _Atomic uint64_t magic;     /* WEFT__TASK_LIVE / RELEASED: catches double release */
    _Atomic uint32_t cancel;    /* see WEFT__CANCEL_* */
    _Atomic(void *) cancel_key; /* the ring operation a cancel must interrupt */

    /* select: counts events; written by the registering handler and the
       finishers (sched.c explains the protocol). */
    _Atomic long sel;
    long sel_registered;
    bool sel_early;
#ifndef NDEBUG
    _Atomic int dbg_queued; /* made runnable and not yet resumed */
#endif
};

/* Debug builds check that a task is never made runnable twice before it
   runs: the scheduler's worst failure, two threads on one stack. */
#ifndef NDEBUG
void weft__dbg_queued(weft__task *t);
void weft__dbg_taken(weft__task *t, const char *from);
#else
static inline void weft__dbg_queued(weft__task *t)
{
    (void)t;
}
static inline void weft__dbg_taken(weft__task *t, const char *from)
{
    (void)t, (void)from;
}
#endif

/* ---- workers -------------------------------------------------------------- */

#define WEFT__RUNQ_SIZE 256u

struct weft__runq {
    _Atomic uint64_t word; /* head << 32 | tail; see runq.h */
    bool solo;             /* the loop's only worker: nobody steals (runq.h) */
    char pad[55];
    _Atomic(weft__task *) slot[WEFT__RUNQ_SIZE];
};

struct weft__ring; /* src/uring */

struct __attribute__((aligned(64))) weft__worker {
    weft__sched *sched;
    unsigned index;
    weft__fiber *sched_fiber; /* the scheduler's context on this worker */
    weft__fiber thread_fiber; /* this thread's own stack as a fiber */
    weft__stack_cache cache;
    struct weft__ring *ring;
    pthread_t thread;
    uint32_t rng;
    uint32_t tick;
    uint32_t fair;
    uint32_t spin_rounds; /* how long the next spin may last (adaptive) */
    int64_t global_taken; /* when the periodic pass last took an overdue task */
    bool periodic; /* the next search starts with the ring and the global queue */
    bool wake_deferred; /* a ready left for the next switch to judge (sched_ready) */
    uint64_t ids; /* task ids handed out here */
    bool spinning;
    bool idle_listed; /* guarded by sched->idle_lock */
    _Atomic bool woken_spinning;
    _Atomic bool parked;
    /* Past park()'s last look for work, blocked in its ring or about to
       be, and sent no message yet (what the stats call parked): set by
       the worker, cleared by the worker and by whoever sends it a
       wake-up or a cancel.  A completion of its own (a timer, I/O) may
       still start it. */
    _Atomic bool asleep;
    /* Counted by the worker, read by anyone (relaxed): passes of its
       search for work, and times it blocked in its ring. */
    _Atomic uint64_t searches;
    _Atomic uint64_t parks;
    /* More of the same, for weft_event_loop_stats and the monitor
       (monitor.c): counted with weft__count. */
    _Atomic uint64_t runs;      /* switches into a task */
    _Atomic uint64_t spawned;   /* tasks started here */
    _Atomic uint64_t finished;  /* tasks that ended here */
    _Atomic uint64_t steals;    /* steals that took something */
    _Atomic uint64_t stolen;    /* tasks they took */
    _Atomic uint64_t wakeups;   /* parked workers it woke */
    _Atomic uint64_t ops;       /* operations put on its ring */
    _Atomic uint64_t cqes;      /* completions reaped from it */
    _Atomic uint64_t offloaded; /* operations sent to the offload threads */
    _Atomic(weft__task *) running; /* the task on this worker now, or NULL */
    pid_t tid;          /* its thread, for the monitor (monitor.c) */
    clockid_t cpu_clock; /* its thread's CPU-time clock */

    struct weft__runq q;
    _Atomic(weft__task *) inbox __attribute__((aligned(64))); /* tasks pinned here */
};

/* ---- the scheduler -------------------------------------------------------- */

/* The offload threads (src/uring/offload.c). */
#define WEFT__OFFLOAD_THREADS 4
struct weft__offload_job {
    struct weft_op *op;
    int64_t res;
    weft__task *task;
    struct weft__offload_job *next;
};
struct weft__offload {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct weft__offload_job *head, *tail;
    unsigned nthreads, idle;
    bool stop;
    pthread_t threads[WEFT__OFFLOAD_THREADS];
};
void weft__offload_init(weft__sched *s);
void weft__offload_fini(weft__sched *s);

/* A timer on a worker's ring whose expiry calls fn on that worker (with
   -ETIME, or -ECANCELED if the ring went away first).  The record must
   stay put until then, or until the loop is torn down. */
struct __attribute__((aligned(16))) weft__ring_timer {
    void (*fn)(weft__worker *w, struct weft__ring_timer *t, int32_t res);
    struct __kernel_timespec ts;
};

struct weft__startup {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned started;
    int error;
    int go; /* 0 wait, 1 run, -1 exit */
};

struct weft__sched {
    struct weft__startup startup;
    unsigned nworkers;
    weft__worker *workers;
    weft__stack_pool pool;
    weft_io io; /* what tasks receive */
    unsigned ring_entries;

    weft__task main_task;

    pthread_mutex_t global_lock; /* the global queue */
    weft__task *global_head, *global_tail;
    _Atomic uint32_t global_size;
    _Atomic int64_t global_since; /* queued_ns of the head, 0 when empty */

    pthread_mutex_t idle_lock; /* the parked workers */
    unsigned *idle;
    unsigned nidle_listed;
    _Atomic uint32_t nidle;
    _Atomic uint32_t nspinning;

    _Atomic long detached; /* detached tasks not yet finished */
    _Atomic(weft__task *) detached_waiter;
    struct weft__ring_timer deinit_timer; /* when deinit says what it waits for */
    _Atomic bool deinit_report_due;
    bool deinit_reported; /* the main task's */

    _Atomic bool stopping;

    /* The monitor thread (monitor.c): WEFT_SCHEDTRACE, stall warnings. */
    struct weft__monitor {
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stop;
        bool ready; /* its thread has made its allocations */
        int64_t trace_ns, stall_ns; /* 0: off */
        _Atomic bool dozing;        /* on its slow tick: wants a kick */
    } monitor;
    _Atomic uint64_t foreign_wakeups; /* wake-ups sent from outside the loop */
    /* The monitor runs, so sched_ready may leave a wake-up for later. */
    _Atomic bool defer_wakes;

    struct weft__offload offload;
    _Atomic long remote_users; /* threads outside the loop inside it (weft__remote_enter) */

    /* Wake-ups sent from threads that are not workers (ring.c). */
    pthread_mutex_t foreign_lock;
    struct io_uring *foreign;
    _Atomic uint32_t remote_next; /* whose inbox the next one goes to */

    weft__sched *debug_next; /* weft__debug_loops (sched.c), for debuggers */
    unsigned serial; /* 1 for the process's first loop, 2 for the next...: in log lines */
};

/* Adds n to one of w's counters: w's own thread only (a relaxed load and
   store, no locked instruction).  WEFT_COUNTERS_OFF (in CFLAGS) compiles
   them out, only to measure what they cost (docs/monitoring.md): the
   stats and the stall warnings then see nothing. */
#ifndef WEFT_COUNTERS_OFF
#define weft__count(w, field, n)                                                                   \
    atomic_store_explicit(&(w)->field,                                                             \
                          atomic_load_explicit(&(w)->field, memory_order_relaxed) + (n),           \
                          memory_order_relaxed)
#else
#define weft__count(w, field, n) ((void)(w), (void)(n))
#endif

struct weft_loop_stats;
struct weft_worker_stats;
unsigned weft__sched_stats(weft__sched *s, struct weft_loop_stats *out,
                           struct weft_worker_stats *per, unsigned n, bool with_rss);
void weft__monitor_start(weft__sched *s);
/* Records the calling thread as w's, for the monitor. */
void weft__monitor_thread(weft__worker *w);
void weft__monitor_stop(weft__sched *s);
/* After the workers are gone: frees what the monitor used. */
void weft__monitor_fini(weft__sched *s);

/* ---- the handoff ---------------------------------------------------------- */

/* What the context resumed by a switch does first, for the task that
   switched away (prev), once prev's registers are saved. */
typedef void weft__handoff_fn(weft__worker *w, weft__task *prev, void *arg);
struct weft__handoff {
    weft__handoff_fn *fn;
    weft__task *prev;
    void *arg;
    weft__worker *w; /* the switching worker: the receiver's too */
};

/* The worker this thread is (NULL outside a loop).  Not inlined, and never
   to be cached across a switch: the task may resume on another thread. */
weft__worker *weft__worker_current(void);
/* The task running on this thread (NULL outside a loop's tasks). */
weft__task *weft__task_current(void);

/* Suspends the current task; the next context runs fn(w, task, arg) first.
   Returns when someone made the task runnable again. */
void weft__sched_block(weft__handoff_fn *fn, void *arg);
/* The same, for a caller that has looked up its worker and task already. */
void weft__sched_block_as(weft__worker *w, weft__task *self, weft__handoff_fn *fn, void *arg);
/* The parts of weft__sched_block, for callers that want to see who runs
   next: take_local gives a task of w's to switch to, or NULL for w's
   scheduler; switch suspends self and resumes `to` (NULL: the scheduler),
   which runs fn(w, self, arg) first. */
weft__task *weft__sched_take_local(weft__worker *w);
void weft__sched_switch(weft__worker *w, weft__task *self, weft__task *to, weft__handoff_fn *fn,
                        void *arg);
/* Makes t runnable behind everything queued on w (a yield). */
void weft__sched_requeue(weft__worker *w, weft__task *t);
/* The last switch of a finished task, carrying h. */
_Noreturn void weft__sched_exit(weft__task *self, struct weft__handoff *h);
/* Runs the handoff a switch delivered; every resume point calls it first. */
void weft__handoff_run(void *msg);
/* Appends first..last (n tasks linked through ->link) to the global queue. */
void weft__global_push(weft__sched *s, weft__task *first, weft__task *last, uint32_t n);
/* Makes t runnable, on w (the calling worker) unless t is pinned elsewhere. */
void weft__sched_ready(weft__worker *w, weft__task *t);
/* A thread that is no worker of s uses s between these (a wake-up, a
   cancel): deinit waits until none does before it frees s. */
static inline void weft__remote_enter(weft__sched *s)
{
    atomic_fetch_add_explicit(&s->remote_users, 1, memory_order_seq_cst);
}
static inline void weft__remote_leave(weft__sched *s)
{
    atomic_fetch_sub_explicit(&s->remote_users, 1, memory_order_release);
}
/* Makes t runnable from a thread that is not one of its loop's workers. */
void weft__sched_ready_remote(weft__sched *s, weft__task *t);
/* From any thread: wakes a parked worker to search for work, unless one
   is searching already. */
void weft__sched_wake_idle(weft__sched *s);
/* Brings a dozing monitor to its fast tick (monitor.c). */
void weft__monitor_kick(weft__sched *s);

/* Scheduler lifecycle, driven by src/io/event_loop.c. */
int weft__sched_init(weft__sched *s, unsigned nworkers, size_t stack_size, unsigned ring_entries,
                     weft_io io);
void weft__sched_deinit(weft__sched *s);
/* The initialised loops, linked through debug_next: for debuggers only. */
extern weft__sched *weft__debug_loops;

/* Tasks (task.c). */
/* Aborts, naming the limits, if a task's ctx or result is too large. */
void weft__check_task_sizes(size_t ctx_len, size_t result_len);
weft__task *weft__task_spawn(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                             size_t result_len, uint32_t flags, int *err);
/* As spawn, but not yet runnable: the caller passes it to weft__sched_ready. */
weft__task *weft__task_create(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                              size_t result_len, uint32_t flags, int *err);
/* Runs fn inline, in memory of its own (when no stack is to be had). */
weft__task *weft__task_inline(weft__sched *s, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                              size_t result_len, uint32_t flags);
void weft__task_await(weft__sched *s, weft__task *t, void *result, const char *who);
void weft__task_request_cancel(weft__task *t);
size_t weft__task_select(weft__sched *s, weft__task *const *ts, size_t n);
void weft__task_finish(weft__task *t) __attribute__((noreturn));
void weft__task_wait_detached(weft__sched *s);
/* Reports futures never released; aborts if one is still running; frees
   the finished ones. */
void weft__task_report_unreleased(weft__sched *s);

/* Cancellation points (task.c).  enter: publish where the task blocks
   (worker index + 1 and the ring operation key, or WHERE_PARK | bucket
   index and no key), or -ECANCELED if a cancel came first.  leave: undo. */
int weft__cancel_enter(weft__task *t, unsigned where, void *key);
void weft__cancel_leave(weft__task *t);
/* The two halves of weft__task_request_cancel: mark sets "requested" and
   says where the task is blocked (0: nowhere, or it was already
   requested), with the key; interrupt acts on that, from a worker of the
   task's loop or from any other thread. */
unsigned weft__cancel_mark(weft__task *t, void **key);
void weft__cancel_interrupt(weft__task *t, unsigned where, void *key);
/* Tests only: when set, called by weft__cancel_mark right after it has set
   the request, to widen the window between the mark and the interrupt. */
extern void (*weft__cancel_mark_hook)(weft__task *t);
/* The event loop's io.vtable->wait. */
int weft__task_wait(weft_waiter *w);

/* Groups (group.c): the event loop's group entries, and a member's exit. */
int weft__group_add(weft__sched *s, struct weft_group *g, weft_task_fn *fn, const void *ctx,
                    size_t ctx_len, bool must);
/* Wait and cancel take the caller's Io (for its wait): any Io may wait for
   or cancel a group of event-loop members. */
void weft__group_wait(weft_io io, struct weft_group *g);
void weft__group_cancel(weft_io io, struct weft_group *g);
void weft__group_leave(weft__task *t);
static inline bool weft__cancel_is_requested(const weft__task *t)
{
    return atomic_load_explicit(&t->cancel, memory_order_acquire) & WEFT__CANCEL_REQUESTED;
}

/* ---- what the scheduler needs from src/uring ------------------------------ */

/* Set up this worker's ring, on the worker's own thread. */
int weft__ring_init(weft__worker *w, unsigned entries);
void weft__ring_fini(weft__worker *w);
/* Submits what is queued and handles completions.  wait: block until at
   least one completion arrives.  The tasks whose operations completed
   wait in the ring's list, in completion order, for the scheduler to take
   them with weft__ring_take (as Go's netpoll hands back a list). */
void weft__ring_poll(weft__worker *w, bool wait);
/* The first task of that list, removed from it, or NULL. */
weft__task *weft__ring_take(weft__worker *w);
/* Has w anything in flight or queued that poll would need to look at? */
bool weft__ring_busy(weft__worker *w);
/* Has w anything to submit or reap now (operations in flight aside)? */
bool weft__ring_pending(weft__worker *w);
/* Wakes worker `to` (parked in its ring's wait) from worker `from`. */
void weft__ring_wake(weft__worker *from, weft__worker *to);
/* Wakes worker `to` from a thread that is not a worker of its loop. */
void weft__ring_wake_foreign(weft__sched *s, weft__worker *to);
/* Sets up the ring weft__ring_wake_foreign sends from (at init). */
int weft__ring_foreign_init(weft__sched *s);
/* Frees what weft__ring_wake_foreign set up. */
void weft__ring_foreign_fini(weft__sched *s);
/* Interrupts the operation `key` in flight on worker `to`'s ring. */
void weft__ring_cancel(weft__worker *from, weft__worker *to, void *key);
/* The same, from a thread that is not a worker of to's loop. */
void weft__ring_cancel_foreign(weft__sched *s, weft__worker *to, void *key);

/* ns: relative, or CLOCK_MONOTONIC absolute if abs. */
void weft__ring_timer_start(weft__worker *w, struct weft__ring_timer *t, int64_t ns, bool abs);
/* Asks `to`'s ring to cancel timer t (fn then gets -ECANCELED, unless it
   expired first).  from: the calling worker, or NULL on another thread. */
#define WEFT__CANCEL_TIMER_BIT 8u
void weft__ring_timer_cancel(weft__worker *from, weft__worker *to, struct weft__ring_timer *t);

#endif
