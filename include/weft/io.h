// SPDX-License-Identifier: MIT
/*
 * weft_io: the interface every weft program talks to.
 *
 * A weft_io is a pointer and a vtable, passed by value, like an allocator.
 * The functions below are thin inline wrappers over the vtable, so the same
 * code runs on the fiber event loop, on a pool of threads, or inline on the
 * blocking implementation.  The vtable's layout is public so that other
 * implementations (a tracing wrapper, a test double) can be written outside
 * the library; `size` lets an implementation built against an older header
 * be recognised.
 *
 * Conventions: int results are >= 0 on success and a negative errno on
 * failure; -ECANCELED means the calling task was canceled.  Times are
 * nanoseconds in int64_t.  Nothing here reads or writes errno.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* clockid_t, also under strict -std=c11 */
#include <time.h>      /* the CLOCK_ names, where the feature macros allow */

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions the shared library exports: its whole ABI, with the
   public structs (see "Stability" in <weft/weft.h>). */
#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

typedef struct weft_io_vtable weft_io_vtable;
typedef struct weft_io {
    void *userdata;
    const weft_io_vtable *vtable;
} weft_io;

typedef struct weft_future weft_future; /* opaque; released by one await or cancel */
typedef struct weft_group weft_group;   /* <weft/sync.h> */
typedef struct weft_waiter weft_waiter; /* a parked task; internal to weft */
typedef void weft_task_fn(weft_io io, void *ctx, void *result);
struct weft_op; /* <weft/ops.h>: one file, directory or socket operation */

/* The most ctx and result bytes a task may carry.  ctx and result are
   aligned to 64 bytes inside the task. */
#define WEFT_MAX_CTX    4096u
#define WEFT_MAX_RESULT 4096u

struct weft_io_vtable {
    size_t size; /* sizeof(weft_io_vtable) the implementation was built with */
    weft_future *(*async)(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                          size_t result_len);
    int (*concurrent)(void *ud, weft_future **out, weft_task_fn *fn, const void *ctx,
                      size_t ctx_len, size_t result_len);
    void (*async_detached)(void *ud, weft_task_fn *fn, const void *ctx, size_t ctx_len);
    void (*await)(void *ud, weft_future *f, void *result);
    void (*cancel)(void *ud, weft_future *f, void *result);
    size_t (*select)(void *ud, weft_future *const *futures, size_t n);
    bool (*cancel_requested)(void *ud);
    void (*yield)(void *ud);
    int (*now)(void *ud, clockid_t clock, int64_t *ns);
    int (*sleep_until)(void *ud, clockid_t clock, int64_t deadline_ns);
    /* Waiting (<weft/sync.h>).  wait suspends the calling task on a waiter
       the synchronisation code has queued, until it is woken or (if the
       waiter is cancelable) the task is canceled; it returns the waiter's
       result.  The group entries start members and wait for them. */
    int (*wait)(void *ud, weft_waiter *w);
    void (*group_async)(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx, size_t ctx_len);
    int (*group_concurrent)(void *ud, weft_group *g, weft_task_fn *fn, const void *ctx,
                            size_t ctx_len);
    void (*group_wait)(void *ud, weft_group *g);
    void (*group_cancel)(void *ud, weft_group *g);
    /* Files, directories and sockets (<weft/ops.h>): runs one operation
       record; the result as the corresponding function returns it. */
    int64_t (*operate)(void *ud, struct weft_op *op);
    /* Deadlines: the calling task's, set (returning the old one) and read. */
    int64_t (*deadline_set)(void *ud, int64_t deadline_ns);
    int64_t (*deadline)(void *ud);
};

/* ---- tasks and futures ------------------------------------------------------ */

/* fn may run out of order with the caller, or inline.  ctx_len bytes of ctx
   are copied (the caller may reuse its buffer at once); result_len bytes
   are reserved for fn to write.  Never fails: if no task can be made, fn
   runs inline.  ctx_len > WEFT_MAX_CTX or result_len > WEFT_MAX_RESULT is a
   programming error and aborts. */
static inline weft_future *weft_async(weft_io io, weft_task_fn *fn, const void *ctx, size_t ctx_len,
                                      size_t result_len)
{
    return io.vtable->async(io.userdata, fn, ctx, ctx_len, result_len);
}

/* fn runs concurrently with the caller, or this fails: 0, -ENOMEM,
   -EOPNOTSUPP (the implementation has no concurrency). */
static inline int weft_concurrent(weft_io io, weft_future **out, weft_task_fn *fn, const void *ctx,
                                  size_t ctx_len, size_t result_len)
{
    return io.vtable->concurrent(io.userdata, out, fn, ctx, ctx_len, result_len);
}

/* Fire and forget; the loop's deinit waits for these.  fn gets result NULL. */
static inline void weft_async_detached(weft_io io, weft_task_fn *fn, const void *ctx,
                                       size_t ctx_len)
{
    io.vtable->async_detached(io.userdata, fn, ctx, ctx_len);
}

/* Waits for f's task to finish, copies its result_len result bytes to
   result (which may be NULL) and releases f.  Each future is released by
   exactly one weft_await or weft_cancel; a second release aborts, and so
   does releasing a future another task is waiting for in weft_select. */
static inline void weft_await(weft_io io, weft_future *f, void *result)
{
    io.vtable->await(io.userdata, f, result);
}

/* Asks f's task to stop (its cancellation points return -ECANCELED from
   then on), then awaits it.  Canceling a finished future is awaiting it. */
static inline void weft_cancel(weft_io io, weft_future *f, void *result)
{
    io.vtable->cancel(io.userdata, f, result);
}

/* Blocks until one of futures[0..n) has finished and returns its index (the
   lowest, when several have).  Releases nothing.  n must be > 0.  While it
   waits, no other task may await, cancel or select on those futures. */
static inline size_t weft_select(weft_io io, weft_future *const *futures, size_t n)
{
    return io.vtable->select(io.userdata, futures, n);
}

/* Has the current task been asked to stop?  False outside tasks. */
static inline bool weft_cancel_requested(weft_io io)
{
    return io.vtable->cancel_requested(io.userdata);
}

/* Lets other runnable tasks run. */
static inline void weft_yield(weft_io io)
{
    io.vtable->yield(io.userdata);
}

/* ---- time ------------------------------------------------------------------- */

/* 0 or -EINVAL (a clock the system does not have). */
static inline int weft_now(weft_io io, clockid_t clock, int64_t *ns)
{
    return io.vtable->now(io.userdata, clock, ns);
}

/* Sleeps until clock reads deadline_ns.  0, -ECANCELED, -ETIMEDOUT (the
   task's deadline came first), or -EINVAL (a clock other than
   CLOCK_MONOTONIC, CLOCK_REALTIME or CLOCK_BOOTTIME). */
static inline int weft_sleep_until(weft_io io, clockid_t clock, int64_t deadline_ns)
{
    return io.vtable->sleep_until(io.userdata, clock, deadline_ns);
}

/* Sleeps for duration_ns on CLOCK_MONOTONIC (0 or less: returns at once,
   but still a cancellation point).  0, -ECANCELED or -ETIMEDOUT. */
WEFT_API int weft_sleep(weft_io io, int64_t duration_ns);

/* ---- deadlines -------------------------------------------------------------- */

/* A task may carry a deadline on CLOCK_MONOTONIC.  Once it has passed,
   every cancellation point in that task (I/O, sleep, lock, wait, queue)
   returns -ETIMEDOUT; an operation in flight is interrupted, with the rule
   of cancel: one that completed first keeps its result.  New tasks start
   with none.  Set, do the work, restore: deadlines nest by hand. */
#define WEFT_NO_DEADLINE INT64_MAX

/* Sets the calling task's deadline; returns the previous one. */
static inline int64_t weft_deadline_set(weft_io io, int64_t deadline_ns)
{
    return io.vtable->deadline_set(io.userdata, deadline_ns);
}

/* The calling task's deadline, or WEFT_NO_DEADLINE. */
static inline int64_t weft_deadline(weft_io io)
{
    return io.vtable->deadline(io.userdata);
}

/* ---- task names -------------------------------------------------------------- */

/* A task's name: shown by the stall warning, the monitor and the gdb
   extension.  At most WEFT_TASK_NAME_MAX - 1 bytes are kept, control
   characters (a newline, a tab) as '?'. */
#define WEFT_TASK_NAME_MAX 32

/* Names the calling task (on a loop), or the calling thread (elsewhere:
   the blocking Io's tasks are the thread's code).  NULL clears it. */
WEFT_API void weft_task_set_name(const char *name);
/* Copies the calling task's (or thread's) name, NUL-terminated, into
   buf[0, cap); returns its length ("" and 0 when it has none). */
WEFT_API size_t weft_task_name(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
