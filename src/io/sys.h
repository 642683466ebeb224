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

#endif
