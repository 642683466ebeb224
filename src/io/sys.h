// SPDX-License-Identifier: MIT
/*
 * The plain-syscall path every Io shares: the blocking Io's I/O and the
 * event loop's offload threads.
 */
#ifndef WEFT_IO_SYS_H
#define WEFT_IO_SYS_H

#include <weft/weft.h>

#include <stdint.h>

/* Arguments every implementation rejects the same way (-EINVAL: iovcnt over
   IOV_MAX, an unknown opcode); 0 when op may go ahead. */
int64_t weft__op_check(const weft_op *op);
/* Runs op as system calls on this thread.  Never touches the caller's errno. */
int64_t weft__sys_operate(weft_op *op);
/* A getaddrinfo result as a negative errno (API.md's mapping). */
int weft__gai_errno(int e);

/* What interrupts a wait for an fd: the calling task's cancel.  The
   canceler sets the task's flag and then makes `fd` (an eventfd of the
   thread the task runs on) readable; the waiter polls it beside its own fd
   and checks `requested` after every wake-up.  An eventfd left readable by
   a cancel meant for another task is drained and the wait goes on. */
typedef struct weft__sys_cancel {
    int fd;
    bool (*requested)(void *arg);
    void *arg;
} weft__sys_cancel;

/* Waits until fd (negative: none) is ready for events, or until the
   CLOCK_MONOTONIC deadline (INT64_MAX: none) passes, -ETIMEDOUT, or c
   (NULL: nothing) is canceled, -ECANCELED.  0 also when poll fails: the
   call that follows reports the error. */
int weft__sys_ready(int fd, short events, int64_t deadline, const weft__sys_cancel *c);

/* weft__sys_operate that a deadline and a cancel interrupt wherever the
   call could wait for a peer (sockets, pipes, terminals): the blocking
   Io's and the thread pool's I/O.  Without either it is exactly
   weft__sys_operate.  Regular files and block devices are never waited
   for (their calls do not wait on a peer and cannot be interrupted). */
int64_t weft__sys_operate_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c);

#endif
