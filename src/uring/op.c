// SPDX-License-Identifier: MIT
/*
 * One operation from a task: an SQE on the current worker's ring, the task
 * blocked until that SQE's own completion, cancel and deadline in two
 * phases.
 *
 * The record (struct weft__op) and every buffer the kernel reads or writes
 * are on the task's stack, so the task never resumes before its operation's
 * completion has arrived -- whatever a cancel or a timeout says, the
 * completion of the operation itself is what wakes it.  The SQE is only
 * queued here: the worker submits it, with whatever else its tasks queued,
 * when it passes through its scheduler (it runs out of tasks, every 61st
 * switch, or the submission queue fills), once this task's registers are
 * saved.
 *
 * Cancel: the task publishes "blocked on this worker's ring, record r"
 * before it queues the SQE (task.c); a canceler sends IORING_OP_ASYNC_CANCEL
 * for r to that ring, from wherever it runs.  Deadline: the SQE is linked
 * to an IORING_OP_LINK_TIMEOUT with the absolute deadline, which cancels
 * it when the time comes.  Either way the operation's completion decides:
 * a result >= 0 stands (bytes moved, an accepted fd); -ECANCELED (or
 * -EINTR) becomes -ECANCELED if a cancel was requested, -ETIMEDOUT if the
 * deadline has passed, and otherwise -- a stale cancel meant for an
 * earlier operation whose record sat at the same address -- the operation
 * is simply queued again.
 */
#include "offload.h"
#include "prep.h"
#include "ring.h"

#include "../fiber/sanitize.h"
#include "../io/fault.h"
#include "../io/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -1: no opcode family knows it; -2: no io_uring opcode; else the opcode. */
static int opcode_of(const weft_op *op)
{
    int code = weft__prep_file(NULL, op, false);
    if (code == -1)
        code = weft__prep_net(NULL, op, false);
    return code;
}

static void fill(struct io_uring_sqe *sqe, const weft_op *op)
{
    if (weft__prep_file(sqe, op, true) == -1)
        weft__prep_net(sqe, op, true);
}

/* Opcodes from Linux 5.6 (read, write, send, recv, accept, connect, openat,
   statx, close, fsync, readv, writev, recvmsg, sendmsg) run on the ring on
   every kernel weft's ring path supports; later ones are offloaded where
   the probe says the kernel lacks them, or everywhere when forced. */
static bool has_fallback(int code)
{
    switch (code) {
    case IORING_OP_SOCKET:
    case IORING_OP_SHUTDOWN:
    case IORING_OP_MKDIRAT:
    case IORING_OP_UNLINKAT:
    case IORING_OP_RENAMEAT:
    case WEFT__IORING_OP_FTRUNCATE:
        return true;
    default:
        return false;
    }
}

static bool ring_has(weft__worker *w, int code)
{
    return code >= 0 && code < 64 && (w->ring->ops >> code & 1);
}

/* valgrind does not see the kernel write through the ring: tell it which
   bytes a completed operation filled in. */
static void mark_written(const weft_op *op, int32_t res)
{
    if (res < 0 || !weft__vg_running())
        return;
    switch (op->code) {
    case WEFT_OP_READ:
    case WEFT_OP_RECV:
        weft__vg_make_defined(op->buf, (size_t)res);
        break;
    case WEFT_OP_READV: {
        const struct iovec *iov = op->buf;
        size_t left = (size_t)res;
        for (size_t i = 0; i < op->len && left; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            weft__vg_make_defined(iov[i].iov_base, n);
            left -= n;
        }
        break;
    }
    case WEFT_OP_RECVMSG: {
        struct msghdr *m = op->buf;
        size_t left = (size_t)res;
        for (size_t i = 0; i < m->msg_iovlen && left; i++) {
            size_t n = m->msg_iov[i].iov_len < left ? m->msg_iov[i].iov_len : left;
            weft__vg_make_defined(m->msg_iov[i].iov_base, n);
            left -= n;
        }
        if (m->msg_name)
            weft__vg_make_defined(m->msg_name, m->msg_namelen);
        if (m->msg_control)
            weft__vg_make_defined(m->msg_control, m->msg_controllen);
        weft__vg_make_defined(m, sizeof *m);
        break;
    }
    case WEFT_OP_ACCEPT:
        if (op->aux) {
            weft__vg_make_defined(op->aux, sizeof(socklen_t));
            if (op->buf)
                weft__vg_make_defined(op->buf, *(socklen_t *)op->aux);
        }
        break;
    case WEFT_OP_STATX:
        weft__vg_make_defined(op->buf, sizeof(struct statx));
        break;
    default:
        break;
    }
}

int weft__uring_sleep_until(clockid_t clock, int64_t deadline_ns);

/* Operations that wait for a peer, and so may say EAGAIN when the caller
   asked them not to wait. */
static bool may_wait(const weft_op *op)
{
    switch (op->code) {
    case WEFT_OP_READ:
    case WEFT_OP_WRITE:
    case WEFT_OP_READV:
    case WEFT_OP_WRITEV:
    case WEFT_OP_ACCEPT:
        return true;
    case WEFT_OP_RECV:
    case WEFT_OP_SEND:
    case WEFT_OP_RECVMSG:
    case WEFT_OP_SENDMSG:
        return !(op->flags & MSG_DONTWAIT);
    default:
        return false;
    }
}

/* EAGAIN from an operation that was asked to wait (its fd is blocking, no
   MSG_DONTWAIT): the kernel had nothing to give and nothing to wait on
   for the moment.  weft's operations wait, so it is made again. */
static bool again_on_eagain(const weft_op *op)
{
    if (!may_wait(op))
        return false;
    int saved = errno;
    int fl = fcntl(op->fd, F_GETFL);
    errno = saved;
    return fl >= 0 && !(fl & O_NONBLOCK);
}

#ifdef WEFT_FAULTS
/* Whether a short read or write may be injected: plain reads and writes
   of a stream socket, where a short count is an everyday result (never a
   regular file, whose reads are whole but at its end, nor a datagram or a
   pipe's atomic write, nor MSG_WAITALL). */
static bool may_be_short(const weft_op *op)
{
    if (op->len < 2)
        return false;
    switch (op->code) {
    case WEFT_OP_RECV:
        if (op->flags & MSG_WAITALL)
            return false;
        break;
    case WEFT_OP_READ:
    case WEFT_OP_WRITE:
    case WEFT_OP_SEND:
        break;
    default:
        return false;
    }
    int saved = errno, type = 0;
    socklen_t tl = sizeof type;
    bool r = getsockopt(op->fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
    errno = saved;
    return r;
}
#endif

/* Whether op opens a FIFO (a system call on the worker: only on the rare
   path of an open that failed with ENXIO). */
static bool is_fifo(const weft_op *op)
{
    int saved = errno;
    struct stat st;
    bool r = fstatat(op->fd, op->path, &st, 0) == 0 && S_ISFIFO(st.st_mode);
    errno = saved;
    return r;
}

/* A UNIX stream connect: never blocks when non-blocking, except on a
   listener whose backlog is full (EAGAIN), which nothing can be polled
   for and which the ring may hand to a kernel thread that a deadline
   cannot interrupt.  So it is made here, non-blocking, and tried again
   every millisecond (sleeps that a cancel or the deadline end), as the
   blocking Io does.  NOT_UNIX if fd is not a UNIX socket. */
#define NOT_UNIX INT64_MIN
static int64_t unix_connect(weft_op *op)
{
    int saved = errno, domain = 0;
    socklen_t dl = sizeof domain;
    if (getsockopt(op->fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) != 0 || domain != AF_UNIX) {
        errno = saved;
        return NOT_UNIX;
    }
    int fl = fcntl(op->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(op->fd, F_SETFL, fl | O_NONBLOCK);
    int64_t rc;
    for (;;) {
        rc = connect(op->fd, op->buf, (socklen_t)op->len) == 0 ? 0 : -errno;
        if (rc != -EAGAIN)
            break;
        int w = weft__uring_sleep_until(CLOCK_MONOTONIC, now_ns() + 1000000);
        if (w < 0) {
            rc = w;
            break;
        }
    }
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(op->fd, F_SETFL, fl);
    errno = saved;
    return rc;
}

int64_t weft__uring_operate(weft__sched *s, weft_op *op)
{
    weft__worker *w = weft__worker_current();
    weft__task *t = w ? weft__task_current() : NULL;
    if (!t || w->sched != s) {
        fprintf(stderr, "weft: file or socket operation %u: called %s\n", op->code,
                !t ? "on a thread that is not one of the event loop's workers"
                   : "with one event loop's Io from a task of another event loop");
        abort();
    }
    int64_t r = weft__op_check(op);
    if (r < 0)
        return r;
    int code = opcode_of(op);
    if (code == -1)
        return -EINVAL;
    bool cancelable = op->code != WEFT_OP_CLOSE;
    int64_t deadline = cancelable ? t->deadline : WEFT_NO_DEADLINE;
    if (deadline != WEFT_NO_DEADLINE && now_ns() >= deadline)
        return -ETIMEDOUT;

    if (op->code == WEFT_OP_CONNECT && op->fd >= 0) {
        if (cancelable && weft__cancel_is_requested(t))
            return -ECANCELED;
        int64_t rc = unix_connect(op);
        if (rc != NOT_UNIX)
            return rc;
    }
    if (code == -2 || (has_fallback(code) && (weft__offload_forced() || !ring_has(w, code)))) {
        if (cancelable && weft__cancel_is_requested(t))
            return -ECANCELED;
        return weft__offload_run(t, op);
    }

    /* An SQE's length is 32 bits: one operation moves at most what
       read(2) does (MAX_RW_COUNT), a partial result as the call's own. */
    weft_op ring_op = *op;
    if (ring_op.len > 0x7ffff000u &&
        (op->code == WEFT_OP_READ || op->code == WEFT_OP_WRITE || op->code == WEFT_OP_RECV ||
         op->code == WEFT_OP_SEND || op->code == WEFT_OP_GETDENTS))
        ring_op.len = 0x7ffff000u;
    struct weft__op rec = {.task = t};
    struct __kernel_timespec ts = {.tv_sec = deadline / 1000000000,
                                   .tv_nsec = deadline % 1000000000};
    bool fifo_wait = false;
#ifdef WEFT_FAULTS
    bool shortable = may_be_short(op);
    size_t whole = ring_op.len;
#endif
    for (;;) {
        w = weft__worker_current(); /* the task may have moved */
        bool timed = deadline != WEFT_NO_DEADLINE;
#ifdef WEFT_FAULTS
        ring_op.len = shortable && weft__fault(WEFT__FAULT_SHORT) ? weft__fault_len(whole) : whole;
        /* An EINTR, or an EAGAIN where weft makes the operation again (a
           blocking fd; elsewhere the caller would just see it). */
        if (cancelable && (weft__fault(WEFT__FAULT_EINTR) ||
                           (again_on_eagain(op) && weft__fault(WEFT__FAULT_EAGAIN)))) {
            /* As if the kernel had given up on it before doing anything;
               through the scheduler, as a completion would be. */
            (void)weft__uring_sleep_until(CLOCK_MONOTONIC, 0);
            if (weft__cancel_is_requested(t))
                return -ECANCELED;
            if (timed && now_ns() >= deadline)
                return -ETIMEDOUT;
            continue;
        }
#endif
        weft__ring_reserve(w, timed ? 2 : 1);
        if (cancelable && weft__cancel_enter(t, w->index + 1, &rec) < 0)
            return -ECANCELED;
        struct io_uring_sqe *sqe = weft__ring_sqe(w);
        fill(sqe, &ring_op);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&rec |
                                         (cancelable ? WEFT__UD_OP : WEFT__UD_OP_FIXED));
        if (timed) {
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *lt = weft__ring_sqe(w);
            io_uring_prep_link_timeout(lt, &ts, IORING_TIMEOUT_ABS);
            io_uring_sqe_set_data64(lt, WEFT__UD_IGNORE);
            if (w->ring->skip_success)
                lt->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
        w->ring->inflight++;
        weft__count(w, ops, 1);
        weft__sched_block(NULL, NULL);
        if (cancelable)
            weft__cancel_leave(t);
        int32_t res = rec.res;
        mark_written(op, res);
        if (res >= 0 && fifo_wait) {
            /* Blocking, as asked: O_NONBLOCK was ours. */
            int fl = fcntl(res, F_GETFL);
            if (fl >= 0)
                fcntl(res, F_SETFL, fl & ~O_NONBLOCK);
        }
        if (res == -ENXIO && op->code == WEFT_OP_OPEN && !(op->flags & O_NONBLOCK) &&
            (fifo_wait || is_fifo(op))) {
            /* A FIFO opened for writing with no reader: open(2) waits for
               one, but the ring's open does not block, and there is
               nothing to poll for a reader.  Again every millisecond, until
               one comes, a cancel, or the deadline (as the blocking Io
               does). */
            int rc = weft__uring_sleep_until(CLOCK_MONOTONIC, now_ns() + 1000000);
            if (rc < 0)
                return rc;
            fifo_wait = true;
            ring_op.flags |= O_NONBLOCK;
            continue;
        }
        if (res == -EAGAIN && again_on_eagain(op))
            continue;
        if (res != -ECANCELED && res != -EINTR)
            return res;
        if (!cancelable)
            return res; /* close: EINTR means closed anyway */
        if (weft__cancel_is_requested(t))
            return -ECANCELED;
        if (timed && now_ns() >= deadline)
            return -ETIMEDOUT;
        /* A stale interruption: the operation did nothing; again. */
    }
}
