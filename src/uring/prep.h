// SPDX-License-Identifier: MIT
/*
 * Filling an SQE from a weft_op: one function per op family (file.c,
 * net.c).  Each returns the io_uring opcode it needs (so the caller can
 * check the kernel has it) and fills sqe only when fill is true.
 */
#ifndef WEFT_URING_PREP_H
#define WEFT_URING_PREP_H

#include <weft/weft.h>

#include <liburing.h>

/* Opcodes newer than Debian's liburing 2.3 headers (6.1): the values the
   kernel uses, probed before use. */
#define WEFT__IORING_OP_FTRUNCATE 55

/* -1: not a file (or not a net) op; -2: no io_uring opcode does it. */
int weft__prep_file(struct io_uring_sqe *sqe, const weft_op *op, bool fill);
int weft__prep_net(struct io_uring_sqe *sqe, const weft_op *op, bool fill);

#endif
