// SPDX-License-Identifier: MIT
/*
 * Per-worker rings: setup with the modern flags where the kernel has them,
 * completion dispatch, ring messages between workers, and parking.
 *
 * Only the worker's own thread touches its ring (the ring is set up as
 * single-issuer where possible, and the kernel would reject a second
 * submitter).  Other workers reach it by IORING_OP_MSG_RING, submitted on
 * their own ring, or -- where the kernel lacks MSG_RING -- by writing its
 * eventfd, on which the ring always has a read outstanding, with cancel
 * requests passed in a lock-free mailbox.
 */
#include "ring.h"

#include "../fiber/sanitize.h"
#include "../io/fault.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define UD(p, kind) ((uint64_t)(uintptr_t)(p) | (kind))

static void die(const char *what, int err)
{
    fprintf(stderr, "weft: io_uring: %s: %s\n", what, strerror(-err));
    abort();
}

/* WEFT_URING_COMPAT=1 makes a loop use the oldest paths (no setup flags,
   eventfd wake-ups): the test suite runs them on new kernels this way. */
static bool compat_forced(void)
{
    const char *e = getenv("WEFT_URING_COMPAT");
    return e && e[0] == '1';
}

static void arm_eventfd(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    struct io_uring_sqe *sqe = weft__ring_sqe(w);
    io_uring_prep_read(sqe, r->efd, &r->efd_buf, sizeof r->efd_buf, 0);
    io_uring_sqe_set_data64(sqe, UD(NULL, WEFT__UD_EVENTFD));
}

int weft__ring_init(weft__worker *w, unsigned entries)
{
    struct weft__ring *r = aligned_alloc(64, (sizeof *r + 63) & ~(size_t)63);
    if (!r)
        return -ENOMEM;
    memset(r, 0, sizeof *r);
    r->efd = -1;
    bool compat = compat_forced();
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int rc = -EINVAL;
    for (unsigned i = compat ? 2 : 0; i < 3; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
        if (rc == -EINVAL && i < 2)
            continue; /* an older kernel: fewer flags */
        if (rc < 0)
            break;
        r->defer = p.flags & IORING_SETUP_DEFER_TASKRUN;
        r->skip_success = !compat && (p.features & IORING_FEAT_CQE_SKIP);
        break;
    }
    if (rc < 0) {
        free(r);
        return rc;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
    if (probe) {
        for (unsigned op = 0; op < 64; op++)
            if (io_uring_opcode_supported(probe, (int)op))
                r->ops |= (uint64_t)1 << op;
        io_uring_free_probe(probe);
    }
    r->msg_ring = !compat && (r->ops >> IORING_OP_MSG_RING & 1);
    w->ring = r;
    if (!r->msg_ring) {
        r->efd = eventfd(0, EFD_CLOEXEC);
        if (r->efd < 0) {
            rc = -errno;
            io_uring_queue_exit(&r->ring);
            free(r);
            w->ring = NULL;
            return rc;
        }
        arm_eventfd(w);
        io_uring_submit(&r->ring);
    }
    return 0;
}

void weft__ring_fini(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    if (!r)
        return;
    io_uring_queue_exit(&r->ring);
    if (r->efd >= 0)
        close(r->efd);
    struct weft__mail *m = atomic_exchange_explicit(&r->mail, NULL, memory_order_acquire);
    while (m) {
        struct weft__mail *next = m->next;
        free(m);
        m = next;
    }
    free(r);
    w->ring = NULL;
}

/* A submit's result, or the failure a fault injects in its place. */
static int submit_once(struct weft__ring *r)
{
    if (weft__fault(WEFT__FAULT_ENOMEM))
        return -ENOMEM;
    if (weft__fault(WEFT__FAULT_EAGAIN))
        return -EAGAIN;
    return io_uring_submit(&r->ring);
}

/* Submits; on a full completion queue (EBUSY), or when the kernel is
   short of memory for the moment (EAGAIN, ENOMEM), makes room and tries
   again. */
static void submit(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    for (unsigned tries = 0;; tries++) {
        int rc = submit_once(r);
        if (rc >= 0 || rc == -EINTR)
            return;
        if (rc == -EBUSY || rc == -EAGAIN || rc == -ENOMEM) {
            /* Make room; what completed waits in r->done for the
               scheduler (ring_pending says so). */
            weft__ring_poll(w, false);
            if (tries >= 16)
                sched_yield(); /* memory, not room: let others run */
            continue;
        }
        die("submit", rc);
    }
}

struct io_uring_sqe *weft__ring_sqe(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    struct io_uring_sqe *sqe;
    /* A fault takes the queue for full, but never inside a reserved chain
       (reserve made the room, so the kernel cannot split one). */
    if (r->chain)
        r->chain--;
    else if (weft__fault(WEFT__FAULT_SQE) && io_uring_sq_ready(&r->ring))
        submit(w);
    while (!(sqe = io_uring_get_sqe(&r->ring)))
        submit(w);
    return sqe;
}

void weft__ring_reserve(weft__worker *w, unsigned n)
{
    struct weft__ring *r = w->ring;
    if (weft__fault(WEFT__FAULT_SQE) && io_uring_sq_ready(&r->ring))
        submit(w);
    while (io_uring_sq_space_left(&r->ring) < n)
        submit(w);
    r->chain = n;
}

int32_t weft__ring_wait(weft__worker *w, struct io_uring_sqe *sqe, struct weft__op *op)
{
    io_uring_sqe_set_data64(sqe, UD(op, WEFT__UD_OP));
    w->ring->inflight++;
    weft__count(w, ops, 1);
    /* Nothing to hand off: the completion, reaped by this worker's
       scheduler after this switch, makes the task runnable. */
    weft__sched_block(NULL, NULL);
    return op->res;
}

/* key: an OP record, or a TIMER record with WEFT__CANCEL_TIMER_BIT set
   (records are 16-aligned, so the bit is free). */
static void prep_cancel(weft__worker *w, void *key)
{
    struct io_uring_sqe *sqe = weft__ring_sqe(w);
    uintptr_t k = (uintptr_t)key;
    io_uring_prep_cancel64(sqe,
                           (k & WEFT__CANCEL_TIMER_BIT)
                               ? UD(k & ~(uintptr_t)WEFT__CANCEL_TIMER_BIT, WEFT__UD_TIMER)
                               : UD(key, WEFT__UD_OP),
                           0);
    io_uring_sqe_set_data64(sqe, UD(NULL, WEFT__UD_IGNORE));
    if (w->ring->skip_success)
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void take_mail(weft__worker *w)
{
    struct weft__mail *m = atomic_exchange_explicit(&w->ring->mail, NULL, memory_order_acquire);
    while (m) {
        struct weft__mail *next = m->next;
        prep_cancel(w, m->key);
        free(m);
        m = next;
    }
}

static void dispatch(weft__worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
    void *p = (void *)(uintptr_t)(ud & ~(uint64_t)WEFT__UD_MASK);
    switch (ud & WEFT__UD_MASK) {
    case WEFT__UD_OP:
    case WEFT__UD_OP_FIXED: {
        struct weft__op *op = p;
        op->res = res;
        op->cqe_flags = flags;
        w->ring->inflight--;
        /* Handed back to the scheduler, in completion order. */
        weft__task *t = op->task;
        t->link = NULL;
        if (w->ring->done_tail)
            w->ring->done_tail->link = t;
        else
            w->ring->done = t;
        w->ring->done_tail = t;
        break;
    }
    case WEFT__UD_WAKE:
    case WEFT__UD_IGNORE:
        break;
    case WEFT__UD_CANCEL:
        prep_cancel(w, p);
        break;
    case WEFT__UD_MSGFAIL:
        if (res < 0)
            die("a message to another worker's ring failed", res);
        break;
    case WEFT__UD_EVENTFD:
        take_mail(w);
        arm_eventfd(w);
        break;
    case WEFT__UD_TIMER: {
        struct weft__ring_timer *t = p;
        w->ring->inflight--;
        t->fn(w, t, res);
        break;
    }
    default:
        fprintf(stderr, "weft: io_uring: completion with unknown user_data %#llx\n",
                (unsigned long long)ud);
        abort();
    }
}

bool weft__ring_busy(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    return r->inflight || r->done || io_uring_sq_ready(&r->ring) || io_uring_cq_ready(&r->ring) ||
           atomic_load_explicit(&r->mail, memory_order_relaxed);
}

bool weft__ring_pending(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    return r->done || io_uring_sq_ready(&r->ring) || io_uring_cq_ready(&r->ring) ||
           atomic_load_explicit(&r->mail, memory_order_relaxed);
}

weft__task *weft__ring_take(weft__worker *w)
{
    struct weft__ring *r = w->ring;
    weft__task *t = r->done;
    if (t) {
        r->done = t->link;
        if (!r->done)
            r->done_tail = NULL;
    }
    return t;
}


void weft__ring_poll(weft__worker *w, bool wait)
{
    struct weft__ring *r = w->ring;
    if (r->efd >= 0 && atomic_load_explicit(&r->mail, memory_order_relaxed))
        take_mail(w);
    int rc = 0;
    if (wait && r->done)
        wait = false; /* completions reaped by a submit are waiting already */
    if (wait && weft__vg_running()) {
        /* valgrind runs one thread at a time and does not let go of its
           lock in a blocking io_uring_enter, so a worker parked there would
           stop every other thread.  Under valgrind, park by polling. */
        while (!io_uring_cq_ready(&r->ring)) {
            rc = io_uring_submit_and_get_events(&r->ring);
            if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN && rc != -ENOMEM)
                die("submit", rc);
            if (io_uring_cq_ready(&r->ring))
                break;
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        }
        rc = 0;
    } else if (wait)
        rc = io_uring_submit_and_wait(&r->ring, 1);
    else if (r->defer && r->inflight)
        rc = io_uring_submit_and_get_events(&r->ring);
    else if (io_uring_sq_ready(&r->ring))
        rc = io_uring_submit(&r->ring);
    /* Transient: EINTR, a full completion queue, memory short for now
       (what was not submitted goes with the next submit). */
    if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN && rc != -ENOMEM && rc != -ETIME)
        die("submit and wait", rc);
    /* Each completion is consumed before it is acted on: acting on one
       may submit (a wake-up, an ASYNC_CANCEL), and a submit that finds the
       completion queue full polls again, which must not see it twice. */
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int32_t res = cqe->res;
        uint32_t flags = cqe->flags;
        io_uring_cqe_seen(&r->ring, cqe);
        weft__count(w, cqes, 1);
        dispatch(w, ud, res, flags);
    }
}

/* Wakes `to` through its eventfd (rings without MSG_RING). */
static void efd_kick(weft__worker *to)
{
    uint64_t one = 1;
    int saved = errno;
    ssize_t n = write(to->ring->efd, &one, sizeof one);
    errno = saved;
    if (n != (ssize_t)sizeof one) {
        fprintf(stderr, "weft: waking a worker through its eventfd failed\n");
        abort();
    }
}

/* A cancel request for `to`'s ring, where it has no MSG_RING: into its
   mailbox, which it empties when its eventfd read completes. */
static void mail_cancel(weft__worker *to, void *key)
{
    struct weft__mail *m = malloc(sizeof *m);
    if (!m) {
        fprintf(stderr, "weft: out of memory sending a cancel request\n");
        abort();
    }
    m->key = key;
    m->next = atomic_load_explicit(&to->ring->mail, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&to->ring->mail, &m->next, m,
                                                  memory_order_release, memory_order_relaxed))
        ;
}

/* Every message (wake-up or cancel) to a worker's ring starts it if it is
   parked: the stats stop calling it parked from here (sched.h, asleep). */
static void send_msg(weft__worker *from, weft__worker *to, uint64_t ud)
{
    atomic_store_explicit(&to->asleep, false, memory_order_seq_cst);
    struct weft__ring *r = from->ring;
    if (r->msg_ring) {
        struct io_uring_sqe *sqe = weft__ring_sqe(from);
        io_uring_prep_msg_ring(sqe, to->ring->ring.ring_fd, 0, ud, 0);
        io_uring_sqe_set_data64(sqe, UD(NULL, WEFT__UD_MSGFAIL));
        if (r->skip_success)
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        /* Now, not at the next batch: the receiver may be parked. */
        submit(from);
        return;
    }
    if ((ud & WEFT__UD_MASK) == WEFT__UD_CANCEL)
        mail_cancel(to, (void *)(uintptr_t)(ud & ~(uint64_t)WEFT__UD_MASK));
    efd_kick(to);
}

void weft__ring_wake(weft__worker *from, weft__worker *to)
{
    send_msg(from, to, UD(NULL, WEFT__UD_WAKE));
}

/* A thread that is no worker has no ring to send from: it borrows one
   made for the purpose, on first use, under a lock (this path is rare:
   a thread on another Io waking a task of this loop, or canceling one).
   It is made at init (weft__ring_foreign_init): made on first use, it
   could meet a process out of fds with no way to report it. */
static void foreign_send(weft__sched *s, weft__worker *to, uint64_t ud)
{
    atomic_store_explicit(&to->asleep, false, memory_order_seq_cst);
    int saved = errno;
    if (!to->ring->msg_ring) {
        if ((ud & WEFT__UD_MASK) == WEFT__UD_CANCEL)
            mail_cancel(to, (void *)(uintptr_t)(ud & ~(uint64_t)WEFT__UD_MASK));
        efd_kick(to);
        errno = saved;
        return;
    }
    pthread_mutex_lock(&s->foreign_lock);
    if (!s->foreign) {
        struct io_uring *r = malloc(sizeof *r);
        if (!r || io_uring_queue_init(4, r, 0) < 0) {
            fprintf(stderr, "weft: cannot set up a ring to reach a worker from another thread\n");
            abort();
        }
        s->foreign = r;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(s->foreign);
    io_uring_prep_msg_ring(sqe, to->ring->ring.ring_fd, 0, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
    struct io_uring_cqe *cqe;
    if (io_uring_submit_and_wait(s->foreign, 1) < 0 || io_uring_wait_cqe(s->foreign, &cqe) < 0 ||
        cqe->res < 0) {
        fprintf(stderr, "weft: a message to a worker from another thread failed\n");
        abort();
    }
    io_uring_cqe_seen(s->foreign, cqe);
    pthread_mutex_unlock(&s->foreign_lock);
    errno = saved;
}

int weft__ring_foreign_init(weft__sched *s)
{
    if (!s->workers[0].ring->msg_ring)
        return 0; /* eventfd wake-ups: no ring needed */
    struct io_uring *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    int rc = io_uring_queue_init(4, r, 0);
    if (rc < 0) {
        free(r);
        return rc;
    }
    s->foreign = r;
    return 0;
}

void weft__ring_wake_foreign(weft__sched *s, weft__worker *to)
{
    foreign_send(s, to, UD(NULL, WEFT__UD_WAKE));
}

void weft__ring_cancel_foreign(weft__sched *s, weft__worker *to, void *key)
{
    foreign_send(s, to, UD(key, WEFT__UD_CANCEL));
}

void weft__ring_foreign_fini(weft__sched *s)
{
    if (s->foreign) {
        io_uring_queue_exit(s->foreign);
        free(s->foreign);
        s->foreign = NULL;
    }
}

void weft__ring_cancel(weft__worker *from, weft__worker *to, void *key)
{
    if (from == to)
        prep_cancel(from, key);
    else
        send_msg(from, to, UD(key, WEFT__UD_CANCEL));
}

void weft__ring_timer_cancel(weft__worker *from, weft__worker *to, struct weft__ring_timer *t)
{
    void *key = (void *)((uintptr_t)t | WEFT__CANCEL_TIMER_BIT);
    if (!from)
        weft__ring_cancel_foreign(to->sched, to, key);
    else
        weft__ring_cancel(from, to, key);
}

void weft__ring_timer_start(weft__worker *w, struct weft__ring_timer *t, int64_t ns, bool abs)
{
    t->ts.tv_sec = ns / 1000000000;
    t->ts.tv_nsec = ns % 1000000000;
    struct io_uring_sqe *sqe = weft__ring_sqe(w);
    io_uring_prep_timeout(sqe, &t->ts, 0, abs ? IORING_TIMEOUT_ABS : 0);
    io_uring_sqe_set_data64(sqe, UD(t, WEFT__UD_TIMER));
    w->ring->inflight++;
}
