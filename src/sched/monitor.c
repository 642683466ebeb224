// SPDX-License-Identifier: MIT
/*
 * Seeing inside a running loop: task names, weft_event_loop_stats, and the
 * monitor thread, which prints a line of counters every WEFT_SCHEDTRACE ms
 * (as Go's schedtrace) and warns when a worker has run one task for longer
 * than WEFT_STALL_MS (default 100; 0: off) without a switch -- in a
 * cooperative scheduler, the task that computes or blocks in a plain
 * system call holds up every task queued behind it.  It also wakes an idle
 * worker for tasks queued on a busy one: a task made runnable into an empty
 * run queue waits for its worker's next switch, without a wake-up
 * (sched.c), and this is what bounds the wait.  It ticks every millisecond
 * while that may be needed, and dozes (10 ms) when every worker is parked
 * or nothing has been queued for a few ticks; the worker that leaves a
 * wake-up for later kicks a dozing monitor.  So the thread runs even with
 * WEFT_STALL_MS=0.
 *
 * The monitor reads what workers publish with relaxed loads: their
 * counters and the task each runs.  A stalled task's name is copied with
 * process_vm_readv, which returns an error instead of faulting if the task
 * ended and its stack went away in the meantime.
 */
#include "runq.h"
#include "sched.h"
#include "../fiber/sanitize.h"
#include "../io/fault.h"

#include <weft/weft.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- names ----------------------------------------------------------------- */

static _Thread_local char thread_name[WEFT_TASK_NAME_MAX];

static char *name_slot(weft__task **owner)
{
    weft__task *t = weft__worker_current() ? weft__task_current() : NULL;
    *owner = t;
    return t ? t->name : thread_name;
}

WEFT_API void weft_task_set_name(const char *name)
{
    weft__task *t;
    char *slot = name_slot(&t);
    size_t n = name ? strnlen(name, WEFT_TASK_NAME_MAX - 1) : 0;
    /* Control characters become '?': a name is printed inside one line
       of a warning or a gdb table, and must not start another. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        slot[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    slot[n] = '\0';
    if (t && t->fiber)
        t->fiber->name = n ? slot : NULL; /* for the stack-overflow report */
}

WEFT_API size_t weft_task_name(char *buf, size_t cap)
{
    weft__task *t;
    const char *slot = name_slot(&t);
    size_t n = strnlen(slot, WEFT_TASK_NAME_MAX - 1);
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, slot, k);
        buf[k] = '\0';
    }
    return n;
}

/* ---- stats ------------------------------------------------------------------ */

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void worker_stats(weft__sched *s, weft__worker *w, weft_worker_stats *o)
{
    memset(o, 0, sizeof *o);
    o->runs = LOAD(w->runs);
    o->spawned = LOAD(w->spawned);
    o->finished = LOAD(w->finished);
    o->steals = LOAD(w->steals);
    o->stolen = LOAD(w->stolen);
    o->searches = LOAD(w->searches);
    o->parks = LOAD(w->parks);
    o->wakeups = LOAD(w->wakeups);
    o->ops = LOAD(w->ops);
    o->cqes = LOAD(w->cqes);
    o->offloaded = LOAD(w->offloaded);
    o->queued = weft__runq_len(atomic_load_explicit(&w->q.word, memory_order_relaxed));
    o->parked = LOAD(w->asleep);
    o->running = LOAD(w->running) != NULL;
    (void)s;
}

static void add(weft_worker_stats *t, const weft_worker_stats *w)
{
    t->runs += w->runs;
    t->spawned += w->spawned;
    t->finished += w->finished;
    t->steals += w->steals;
    t->stolen += w->stolen;
    t->searches += w->searches;
    t->parks += w->parks;
    t->wakeups += w->wakeups;
    t->ops += w->ops;
    t->cqes += w->cqes;
    t->offloaded += w->offloaded;
    t->queued += w->queued;
    t->parked |= w->parked;
    t->running |= w->running;
}

/* Resident bytes of every mapped stack: mincore over each one. */
static uint64_t stacks_rss(weft__stack_pool *p)
{
    uint64_t bytes = 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (p->size + p->guard) / (size_t)page;
    unsigned char *vec = malloc(pages ? pages : 1);
    if (!vec)
        return 0;
    pthread_mutex_lock(&p->all_lock);
    for (weft__stack *st = p->all; st; st = st->all_next) {
        char *lo = weft__stack_lo(p, st) - p->guard;
        if (mincore(lo, pages * (size_t)page, vec) == 0)
            for (size_t i = 0; i < pages; i++)
                bytes += (vec[i] & 1) ? (uint64_t)page : 0;
    }
    pthread_mutex_unlock(&p->all_lock);
    free(vec);
    return bytes;
}

unsigned weft__sched_stats(weft__sched *s, weft_loop_stats *out, weft_worker_stats *per,
                           unsigned n, bool with_rss)
{
    weft_loop_stats o;
    memset(&o, 0, sizeof o);
    o.workers = s->nworkers;
    for (unsigned i = 0; i < s->nworkers; i++) {
        weft_worker_stats w;
        worker_stats(s, &s->workers[i], &w);
        add(&o.total, &w);
        if (per && i < n)
            per[i] = w;
    }
    o.live_tasks = o.total.spawned > o.total.finished ? o.total.spawned - o.total.finished : 0;
    o.global_queued = LOAD(s->global_size);
    o.foreign_wakeups = LOAD(s->foreign_wakeups);
    o.stacks_mapped = atomic_load_explicit(&s->pool.mapped, memory_order_relaxed);
    long live = atomic_load_explicit(&s->pool.live, memory_order_relaxed);
    o.stacks_in_use = live > 0 ? (uint64_t)live : 0;
    if (with_rss)
        o.stacks_rss_bytes = stacks_rss(&s->pool);
    if (out)
        *out = o;
    return s->nworkers;
}

/* ---- the monitor thread ------------------------------------------------------ */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An environment variable's value in ms as ns; dflt when unset or bad. */
#define DAY_MS (24LL * 3600 * 1000)

static int64_t env_ms(const char *var, int64_t dflt_ms)
{
    const char *e = getenv(var);
    if (!e || !*e)
        return dflt_ms * 1000000;
    char *end;
    errno = 0;
    long long v = strtoll(e, &end, 10);
    if (*end || end == e || v < 0) {
        fprintf(stderr, "weft: %s=%s is not a number of milliseconds; using %lld\n", var, e,
                (long long)dflt_ms);
        return dflt_ms * 1000000;
    }
    /* A day at most: the monitor's times are sums that must not wrap. */
    if (errno == ERANGE || v > DAY_MS) {
        fprintf(stderr, "weft: %s=%s is more than a day; using a day (%lld ms)\n", var, e,
                (long long)DAY_MS);
        v = DAY_MS;
    }
    return (int64_t)v * 1000000;
}

/* Copies the name (and id) of task t, which may have ended: a read that
   cannot fault. */
static void read_task(weft__task *t, uint64_t *id, char *name)
{
    struct {
        uint64_t id;
        char name[WEFT_TASK_NAME_MAX];
    } got;
    struct iovec local[2] = {{&got.id, sizeof got.id}, {got.name, sizeof got.name}};
    struct iovec remote[2] = {{&t->id, sizeof t->id}, {t->name, sizeof t->name}};
    ssize_t n = process_vm_readv(getpid(), local, 2, remote, 2, 0);
    if (n != (ssize_t)(sizeof got.id + sizeof got.name)) {
        *id = 0;
        name[0] = '\0';
        return;
    }
    got.name[WEFT_TASK_NAME_MAX - 1] = '\0';
    *id = got.id;
    memcpy(name, got.name, WEFT_TASK_NAME_MAX);
}

void weft__monitor_thread(weft__worker *w)
{
    w->tid = gettid();
    if (pthread_getcpuclockid(pthread_self(), &w->cpu_clock) != 0)
        w->cpu_clock = (clockid_t)-1;
}

/* The longest a task made runnable behind a running one waits for a
   worker to be woken for it (rescue), once the monitor has seen the loop
   awake; and the tick while every worker is parked. */
#define RESCUE_NS (1000000LL)
#define IDLE_NS   (10 * 1000000LL)
/* Fast ticks with workers awake but nothing queued before the monitor
   dozes (and relies on kicks) again. */
#define QUIET_TICKS 8

struct watch {
    uint64_t runs;    /* at the last look */
    weft__task *task; /* running then */
    int64_t since;    /* when runs last changed */
    int64_t cpu;      /* the worker thread's CPU time then */
    bool warned;      /* about this stall */
};

static int64_t cpu_ns(weft__worker *w)
{
    struct timespec ts;
    if (w->cpu_clock == (clockid_t)-1 || clock_gettime(w->cpu_clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether the worker's thread is asleep in the kernel (state S or D in
   /proc): a task blocked in a plain system call.  open and read, not
   stdio: the monitor allocates nothing after its start (a task may fork
   at any moment, and not every allocator is fork-safe). */
static bool blocked_in_kernel(weft__worker *w)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)w->tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name, which may hold anything */
    return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

static void trace_line(weft__sched *s, weft_loop_stats *prev, int64_t start)
{
    weft_loop_stats st;
    weft_worker_stats per[64];
    unsigned n = weft__sched_stats(s, &st, per, 64, false);
    char q[256];
    size_t ql = 0;
    for (unsigned i = 0; i < n && i < 64 && ql < sizeof q - 16; i++)
        ql += (size_t)snprintf(q + ql, sizeof q - ql, "%s%u%s", i ? " " : "", per[i].queued,
                               per[i].parked ? "p" : per[i].running ? "" : "s");
    fprintf(stderr,
            "weft: schedtrace loop %u %lldms: workers=%u parked=%u spinning=%u global=%llu runq=[%s] "
            "live=%llu runs=+%llu steals=+%llu parks=+%llu wakeups=+%llu ops=+%llu cqes=+%llu "
            "offloaded=+%llu stacks=%llu\n",
            s->serial, (long long)((mono_ns() - start) / 1000000), n, LOAD(s->nidle), LOAD(s->nspinning),
            (unsigned long long)st.global_queued, q, (unsigned long long)st.live_tasks,
            (unsigned long long)(st.total.runs - prev->total.runs),
            (unsigned long long)(st.total.steals - prev->total.steals),
            (unsigned long long)(st.total.parks - prev->total.parks),
            (unsigned long long)(st.total.wakeups + st.foreign_wakeups - prev->total.wakeups -
                                 prev->foreign_wakeups),
            (unsigned long long)(st.total.ops - prev->total.ops),
            (unsigned long long)(st.total.cqes - prev->total.cqes),
            (unsigned long long)(st.total.offloaded - prev->total.offloaded),
            (unsigned long long)st.stacks_mapped);
    *prev = st;
}

/* Tasks queued on a worker that is not parked: a task made runnable there
   into an empty queue waits for the worker's next switch, without a
   wake-up (sched_ready), and that switch may be far off (the task it runs
   computes, or blocks in a plain system call; or the worker's scheduler
   makes an offload call inline).  An idle worker is woken to steal it.  At
   every tick while it lasts, since a worker woken before may have found
   other work; when no worker is idle, or one is searching already, this
   is a few loads. */
enum { ALL_PARKED, AWAKE, QUEUED };

static int rescue(weft__sched *s)
{
    int seen = ALL_PARKED;
    for (unsigned i = 0; i < s->nworkers; i++) {
        weft__worker *w = &s->workers[i];
        if (LOAD(w->parked))
            continue;
        if (seen == ALL_PARKED)
            seen = AWAKE;
        if (weft__runq_len(atomic_load_explicit(&w->q.word, memory_order_relaxed)) != 0) {
            seen = QUEUED;
            weft__sched_wake_idle(s);
        }
    }
    return seen;
}

/* Whether any worker has tasks queued, looked at after the monitor set
   `dozing` (seq_cst, as the pushes that may leave a wake-up are). */
static bool any_queued(weft__sched *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (weft__runq_len(atomic_load_explicit(&s->workers[i].q.word, memory_order_seq_cst)) != 0)
            return true;
    return false;
}

void weft__monitor_kick(weft__sched *s)
{
    struct weft__monitor *m = &s->monitor;
    if (!atomic_exchange_explicit(&m->dozing, false, memory_order_relaxed))
        return;
    pthread_mutex_lock(&m->lock);
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void check_stalls(weft__sched *s, struct watch *wt, int64_t now)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        weft__worker *w = &s->workers[i];
        uint64_t runs = LOAD(w->runs);
        weft__task *t = LOAD(w->running);
        if (runs != wt[i].runs || t != wt[i].task || !t) {
            wt[i] = (struct watch){runs, t, now, cpu_ns(w), false};
            continue;
        }
        int64_t held = now - wt[i].since;
        if (!s->monitor.stall_ns || held < s->monitor.stall_ns || wt[i].warned)
            continue;
        /* A thread that the machine did not run (more threads than CPUs)
           is not stalled by its task: it must have computed for most of
           the time, or be blocked in a system call. */
        int64_t cpu = cpu_ns(w);
        bool computing = cpu >= 0 && wt[i].cpu >= 0 && cpu - wt[i].cpu >= held / 4;
        bool blocked = !computing && blocked_in_kernel(w);
        if (!computing && !blocked)
            continue;
        wt[i].warned = true;
        uint64_t id;
        char name[WEFT_TASK_NAME_MAX];
        read_task(t, &id, name);
        if (LOAD(w->runs) != runs)
            continue; /* it switched while we looked */
        fprintf(stderr,
                "weft: stall: loop %u, worker %u has run task %llu%s%s%s for %lld ms without a switch, "
                "%s; the %u tasks queued there wait (a long computation should call "
                "weft_yield, a blocking call go through the Io)\n",
                s->serial, i, (unsigned long long)id, name[0] ? " (" : "", name, name[0] ? ")" : "",
                (long long)(held / 1000000),
                computing ? "computing" : "blocked in a system call",
                weft__runq_len(atomic_load_explicit(&w->q.word, memory_order_relaxed)));
    }
}

static void *monitor_main(void *arg)
{
    weft__sched *s = arg;
    struct weft__monitor *m = &s->monitor;
    struct watch *wt = calloc(s->nworkers, sizeof *wt);
    weft_loop_stats prev;
    weft__sched_stats(s, &prev, NULL, 0, false);
    int64_t start = mono_ns(), next_trace = start + m->trace_ns, next_stall = start;
    /* Stalls are looked for four times per threshold.  While a worker is
       awake the tick is RESCUE_NS, for the tasks a running one holds up
       (rescue); while every worker is parked there is nothing to rescue,
       and the tick is IDLE_NS at most, so that an idle loop's monitor
       wakes 100 times a second, not 1,000. */
    int64_t slow = m->stall_ns ? m->stall_ns / 4 : IDLE_NS;
    if (slow > IDLE_NS)
        slow = IDLE_NS;
    if (m->trace_ns && m->trace_ns < slow)
        slow = m->trace_ns;
    int64_t fast = slow < RESCUE_NS ? slow : RESCUE_NS;
    int64_t tick = slow;
    unsigned quiet = 0; /* fast ticks in a row that found nothing queued */
    pthread_mutex_lock(&m->lock);
    m->ready = true;
    pthread_cond_broadcast(&m->cond);
    while (!m->stop) {
        /* Dozing (every worker parked, or QUIET_TICKS ticks with nothing
           queued): a worker that leaves a wake-up for later kicks the
           monitor back to its fast tick.  The flag first, then one more
           look at the queues: a push that raced it is either seen here,
           or sees the flag (both sides seq_cst) and kicks. */
        if (tick > fast) {
            atomic_store_explicit(&m->dozing, true, memory_order_seq_cst);
            atomic_thread_fence(memory_order_seq_cst);
            if (any_queued(s)) {
                atomic_store_explicit(&m->dozing, false, memory_order_relaxed);
                tick = fast;
                quiet = 0;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + tick;
        ts.tv_sec = at / 1000000000;
        ts.tv_nsec = at % 1000000000;
        bool kicked = pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0;
        atomic_store_explicit(&m->dozing, false, memory_order_relaxed);
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->lock);
        int64_t now = mono_ns();
        if (kicked) {
            /* The kick came with the task just queued, whose worker may
               well switch to it at once: it gets one tick for that. */
            tick = fast;
            quiet = 0;
        } else {
            switch (rescue(s)) {
            case QUEUED:
                tick = fast;
                quiet = 0;
                break;
            case AWAKE:
                tick = ++quiet >= QUIET_TICKS ? slow : fast;
                break;
            default:
                tick = slow;
            }
        }
        if (m->stall_ns && wt && now >= next_stall) {
            check_stalls(s, wt, now);
            next_stall = now + slow;
        }
        if (m->trace_ns && now >= next_trace) {
            trace_line(s, &prev, start);
            next_trace = now + m->trace_ns;
        }
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    free(wt);
    return NULL;
}

void weft__monitor_start(weft__sched *s)
{
    struct weft__monitor *m = &s->monitor;
    m->trace_ns = env_ms("WEFT_SCHEDTRACE", 0);
    /* Under valgrind, threads run one at a time and everything is slower:
       every wait would look like a stall. */
    m->stall_ns = env_ms("WEFT_STALL_MS", weft__vg_running() ? 0 : 100);
    m->stop = false;
    m->ready = false;
    m->started = false;
    atomic_store_explicit(&m->dozing, false, memory_order_relaxed);
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* The program's signals go to its own threads, not to this one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = weft__fault(WEFT__FAULT_MONITOR) ? EAGAIN
                                             : pthread_create(&m->thread, NULL, monitor_main, s);
    m->started = e == 0;
    if (e)
        fprintf(stderr,
                "weft: loop %u: its monitor thread could not start (%s): no stall warnings, no "
                "WEFT_SCHEDTRACE, and every task made runnable wakes a worker at once\n",
                s->serial, strerror(e));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Init returns with the new thread settled in its wait: a thread that
       allocates while a task forks can leave an allocator lock held in the
       child, where nobody will release it (AddressSanitizer's allocator,
       unlike glibc's, does not take its locks around a fork). */
    if (m->started) {
        pthread_mutex_lock(&m->lock);
        while (!m->ready)
            pthread_cond_wait(&m->cond, &m->lock);
        pthread_mutex_unlock(&m->lock);
    }
    /* With one worker there is nobody to wake, deferred or not. */
    atomic_store_explicit(&s->defer_wakes, m->started && s->nworkers > 1, memory_order_relaxed);
    if (!m->started) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cond);
    }
}

void weft__monitor_stop(weft__sched *s)
{
    struct weft__monitor *m = &s->monitor;
    atomic_store_explicit(&s->defer_wakes, false, memory_order_relaxed);
    if (!m->started)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    atomic_store_explicit(&m->dozing, false, memory_order_relaxed);
}

void weft__monitor_fini(weft__sched *s)
{
    struct weft__monitor *m = &s->monitor;
    if (!m->started)
        return;
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    m->started = false;
}
