// SPDX-License-Identifier: MIT
/*
 * Time on the event loop: now is clock_gettime; sleep is an absolute
 * IORING_OP_TIMEOUT on the worker's ring, which a cancel interrupts with
 * ASYNC_CANCEL on that ring.
 */
#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int weft__uring_sleep_until(clockid_t clock, int64_t deadline_ns)
{
    unsigned flags = IORING_TIMEOUT_ABS;
    switch (clock) {
    case CLOCK_MONOTONIC:
        break;
    case CLOCK_REALTIME:
        flags |= IORING_TIMEOUT_REALTIME;
        break;
    case CLOCK_BOOTTIME:
        flags |= IORING_TIMEOUT_BOOTTIME;
        break;
    default:
        return -EINVAL;
    }
    weft__task *t = weft__task_current();
    if (!t || !weft__worker_current()) {
        fprintf(stderr, "weft: weft_sleep_until: called outside the event loop's tasks\n");
        abort();
    }
    if (deadline_ns < 0)
        deadline_ns = 0;
    /* The task's deadline, on the sleep's clock, if it comes first. */
    int timedout = 0;
    if (t->deadline != WEFT_NO_DEADLINE) {
        int64_t d = t->deadline;
        if (clock != CLOCK_MONOTONIC) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            clock_gettime(clock, &b);
            int64_t mono = (int64_t)a.tv_sec * 1000000000 + a.tv_nsec;
            int64_t other = (int64_t)b.tv_sec * 1000000000 + b.tv_nsec;
            d = t->deadline - mono > INT64_MAX - other ? INT64_MAX : other + (t->deadline - mono);
        }
        if (d <= deadline_ns) {
            deadline_ns = d < 0 ? 0 : d;
            timedout = -ETIMEDOUT;
        }
    }
    /* On this stack: the kernel reads it when the SQE is submitted. */
    struct __kernel_timespec ts = {.tv_sec = deadline_ns / 1000000000,
                                   .tv_nsec = deadline_ns % 1000000000};
    struct weft__op op = {.task = t};
    for (;;) {
        weft__worker *w = weft__worker_current();
        if (weft__cancel_enter(t, w->index + 1, &op) < 0)
            return -ECANCELED;
        struct io_uring_sqe *sqe = weft__ring_sqe(w);
        io_uring_prep_timeout(sqe, &ts, 0, flags);
        int32_t res = weft__ring_wait(w, sqe, &op);
        weft__cancel_leave(t);
        if (res == -ETIME || res == 0)
            return timedout;
        if (res != -ECANCELED && res != -EINTR)
            return res;
        /* Interrupted: by our cancel, or by a stale request meant for an
           earlier operation at this address -- then sleep on. */
        if (weft__cancel_is_requested(t))
            return -ECANCELED;
    }
}
