// SPDX-License-Identifier: MIT
/*
 * A worker's io_uring, and how a task waits for one operation on it.
 *
 * user_data of every SQE weft submits is a pointer with a kind in its low
 * three bits (all weft pointers it carries are 8-aligned):
 *   OP      a struct weft__op on the stack of a blocked task
 *   WAKE    a ring message (or eventfd read) that only wakes the worker
 *   CANCEL  a ring message asking this worker to cancel operation `key`
 *   IGNORE  a completion nobody waits for (ASYNC_CANCEL's own result)
 *   MSGFAIL a ring message that could not be delivered
 *   EVENTFD the wake-up read on the eventfd, where MSG_RING is missing
 *   TIMER   a struct weft__ring_timer whose expiry calls its function
 *   OP_FIXED an OP that no cancel may match (close): a canceler's
 *           ASYNC_CANCEL names OP records only
 * Control messages never pose as operation results (no fake -EINTR).
 */
#ifndef WEFT_URING_RING_H
#define WEFT_URING_RING_H

#include "../sched/sched.h"

#include <liburing.h>

enum {
    WEFT__UD_OP = 0,
    WEFT__UD_WAKE = 1,
    WEFT__UD_CANCEL = 2,
    WEFT__UD_IGNORE = 3,
    WEFT__UD_MSGFAIL = 4,
    WEFT__UD_EVENTFD = 5,
    WEFT__UD_TIMER = 6,
    WEFT__UD_OP_FIXED = 7,
    WEFT__UD_MASK = 7,
};

struct weft__mail {
    struct weft__mail *next;
    void *key;
};

struct weft__ring {
    struct io_uring ring;
    bool defer;        /* IORING_SETUP_DEFER_TASKRUN: completions need an enter */
    bool msg_ring;     /* IORING_OP_MSG_RING works; else eventfd + mail */
    bool skip_success; /* IOSQE_CQE_SKIP_SUCCESS works */
    uint64_t ops;      /* bit n: the kernel has opcode n (IORING_REGISTER_PROBE) */
    unsigned inflight; /* OP operations not yet completed */
    unsigned chain;    /* SQEs of a reserved chain not yet taken */
    weft__task *done, *done_tail; /* completed, for the scheduler (->link) */
    int efd;
    uint64_t efd_buf;
    _Atomic(struct weft__mail *) mail; /* cancel requests, eventfd mode */
};

/* One operation a task waits for: the completion's result lands here.
   16-aligned: a cancel message carries its address with a flag in bit 3. */
struct __attribute__((aligned(16))) weft__op {
    weft__task *task;
    int32_t res;
    uint32_t cqe_flags;
};

/* An SQE on w's ring, submitting what is queued if the ring is full. */
struct io_uring_sqe *weft__ring_sqe(weft__worker *w);

/* Makes room for n SQEs in a row, so that a linked chain is never split by
   a submit. */
void weft__ring_reserve(weft__worker *w, unsigned n);

/* Prepares nothing: marks sqe as op's, then blocks the calling task until
   the completion arrives.  Returns the completion's res. */
int32_t weft__ring_wait(weft__worker *w, struct io_uring_sqe *sqe, struct weft__op *op);

#endif
