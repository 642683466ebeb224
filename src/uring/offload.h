// SPDX-License-Identifier: MIT
/* The offload threads (offload.c). */
#ifndef WEFT_URING_OFFLOAD_H
#define WEFT_URING_OFFLOAD_H

#include "../sched/sched.h"

#include <weft/weft.h>

/* WEFT_URING_OFFLOAD=1: every operation with a fallback takes it. */
bool weft__offload_forced(void);
/* Runs op on an offload thread; t (the caller) blocks until it is done. */
int64_t weft__offload_run(weft__task *t, weft_op *op);

#endif
