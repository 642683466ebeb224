// SPDX-License-Identifier: MIT
/*
 * Fault injection (built with -DWEFT_FAULTS=ON; docs/debugging.md).
 *
 * With WEFT_FAULTS in the environment, e.g.
 *     WEFT_FAULTS=seed=7,eintr=0.02,eagain=0.02,enomem=0.01,short=0.2,sqe=0.05,thread=0.5
 * (or all=P for every kind at once), the I/O layer fails that share of its
 * chances: an operation on the ring completes with -EINTR or -EAGAIN
 * without having been made, a submit says -ENOMEM or -EAGAIN, a read or
 * write on a stream socket asks for fewer bytes, the submission queue is
 * taken for full, an offload or pool thread fails to start, a loop's
 * monitor thread fails to start.  Each is a
 * result the kernel or libc may give; weft must absorb it or pass it on as
 * its contract says.  At exit a line on stderr counts what was injected.
 * Without the build option, weft__fault is a constant false.
 */
#ifndef WEFT_IO_FAULT_H
#define WEFT_IO_FAULT_H

#include <stdbool.h>
#include <stddef.h>

enum weft__fault_kind {
    WEFT__FAULT_EINTR,
    WEFT__FAULT_EAGAIN,
    WEFT__FAULT_ENOMEM,
    WEFT__FAULT_SHORT,
    WEFT__FAULT_SQE,
    WEFT__FAULT_THREAD,
    WEFT__FAULT_MONITOR,
    WEFT__FAULT_KINDS
};

/* For tests: replaces the rates with those of spec (WEFT_FAULTS's syntax;
   "" for none).  Not while a loop runs.  -ENOSYS without the build
   option. */
int weft__fault_configure(const char *spec);

#ifdef WEFT_FAULTS
/* Whether to inject a fault of this kind now (and counts it if so). */
bool weft__fault(enum weft__fault_kind k);
/* A length in [1, len] for a short read or write. */
size_t weft__fault_len(size_t len);
#else
static inline bool weft__fault(enum weft__fault_kind k)
{
    (void)k;
    return false;
}
static inline size_t weft__fault_len(size_t len)
{
    return len;
}
#endif

#endif
