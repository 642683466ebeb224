// SPDX-License-Identifier: MIT
/*
 * weft: stackful fibers on work-stealing threads, with io_uring I/O.
 *
 * The one header a program includes.  Compiles as C11 and as C++.
 *
 * Stability.  The shared library's soname is libweft.so.0, and for as long
 * as it is, a program built against these headers keeps running against a
 * newer libweft.so.0.  That covers:
 *   - every function declared WEFT_API: the library exports these and
 *     nothing else (the test suite checks both);
 *   - the layout of every public struct: weft_io, weft_io_vtable (which
 *     grows only at its end; its size field says how much of it an
 *     implementation fills in), weft_event_loop_options, weft_mutex,
 *     weft_cond, weft_group, and their _INIT initialisers;
 *   - the behaviour the comments and docs/ describe, and the values of the
 *     WEFT_ constants.
 * A change that breaks any of these comes with a new soname (and Debian
 * package name).  Names ending in an underscore (weft_mutex_lock_slow_,
 * weft_cond_wake_, WEFT_MUTEX_LOCKED_, the struct fields) belong to the
 * inline fast paths: they are in the ABI because compiled programs call or
 * touch them through those inlines, but they are not an interface to use
 * by name, and a later header may drop them from view.  Minor releases
 * may add functions; a program that uses one needs at least that release
 * (WEFT_VERSION_* in <weft/version.h> name the headers' release).
 * Everything outside include/weft is internal.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <weft/io.h>
#include <weft/ops.h>
#include <weft/sync.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH", as built (which may differ
   from the header's WEFT_VERSION_STRING when linked against another copy). */
WEFT_API const char *weft_version(void);

/* Which context switch this build uses: "asm" (weft's own) or "boost". */
WEFT_API const char *weft_context_impl(void);

/* ---- the event loop: fibers on worker threads, I/O through io_uring -------- */

typedef struct weft_event_loop weft_event_loop;

/* The smallest stack_size init accepts: room for a task with the largest
   ctx and result (WEFT_MAX_CTX, WEFT_MAX_RESULT) and a few KiB of stack. */
#define WEFT_STACK_MIN (16u * 1024u)

typedef struct weft_event_loop_options {
    unsigned threads;      /* 0: the CPUs this process may run on */
    size_t stack_size;     /* 0: 256 KiB usable, 64 KiB guard; >= WEFT_STACK_MIN */
    unsigned ring_entries; /* 0: the default (256 submission entries per worker) */
} weft_event_loop_options;

/* Starts threads-1 worker threads; the calling thread becomes worker 0 and
   runs as the loop's main task until weft_event_loop_deinit.  opts may be
   NULL.  0, or -EINVAL (bad options), -EBUSY (this thread already runs a
   loop), -ENOMEM, -EAGAIN (no threads), or the error io_uring_setup gave
   (-EPERM where io_uring is disabled, -ENOSYS on kernels without it). */
WEFT_API int weft_event_loop_init(weft_event_loop **out, const weft_event_loop_options *opts);
WEFT_API weft_io weft_event_loop_io(weft_event_loop *el);
/* Waits for detached tasks, stops and joins the workers and frees every
   stack and ring.  Must be called by the main task (the thread that called
   init).  A future that was never awaited or canceled is reported on stderr
   by its task function's name; if such a task is still running, deinit
   aborts, since its stack cannot be freed under it. */
WEFT_API void weft_event_loop_deinit(weft_event_loop *el);

/* What a loop's workers have done: counters since init, and a few
   present values.  Read from any thread at any time; each worker's
   counters are its own (no shared cache line on the hot path), summed
   here, so a total is a sum of moments, not one. */
typedef struct weft_worker_stats {
    uint64_t runs;      /* switches into a task */
    uint64_t spawned;   /* tasks started from this worker */
    uint64_t finished;  /* tasks that ended on it */
    uint64_t steals;    /* times it stole work */
    uint64_t stolen;    /* tasks those steals took */
    uint64_t searches;  /* passes of its search for work */
    uint64_t parks;     /* times it blocked in its ring, idle */
    uint64_t wakeups;   /* parked workers it woke */
    uint64_t ops;       /* operations put on its ring */
    uint64_t cqes;      /* completions reaped from its ring */
    uint64_t offloaded; /* operations sent to the offload threads */
    uint32_t queued;    /* tasks in its run queue now */
    bool parked;        /* blocked in its ring now, sent no wake-up yet */
    bool running;       /* running a task now */
    uint64_t reserved[6];
} weft_worker_stats;

typedef struct weft_loop_stats {
    unsigned workers;
    weft_worker_stats total;   /* the sum over the workers */
    uint64_t live_tasks;       /* started and not ended, the main task not counted */
    uint64_t global_queued;    /* tasks in the global queue now */
    uint64_t foreign_wakeups;  /* wake-ups sent from threads outside the loop */
    uint64_t stacks_mapped;    /* task stacks in existence, in use or pooled */
    uint64_t stacks_in_use;    /* of which in use (exact when no worker holds a cache) */
    uint64_t stacks_rss_bytes; /* their resident memory (mincore); 0 if not asked */
    uint64_t reserved[8];
} weft_loop_stats;

/* Fills *out (and per[0 .. n), one per worker, when per is not NULL);
   returns the number of workers.  with_rss: also measure the stacks'
   resident memory, a mincore() over every stack (milliseconds for a
   million stacks; the rest is a few loads per worker). */
WEFT_API unsigned weft_event_loop_stats(weft_event_loop *el, weft_loop_stats *out,
                                        weft_worker_stats *per, unsigned n, bool with_rss);

/* ---- the thread pool: tasks are OS threads, I/O is plain system calls ----- */

typedef struct weft_thread_pool weft_thread_pool;

typedef struct weft_thread_pool_options {
    unsigned max_threads; /* 0: the CPUs this process may run on */
} weft_thread_pool_options;

/* Makes a pool; starts no thread until a task needs one.  weft_async runs
   its task on an idle pool thread, on a new one while fewer than
   max_threads exist, or else inline in the caller.  weft_concurrent always
   gets a thread of its own, beyond max_threads if need be, up to 16384
   threads in all (or max_threads, if larger): then -ENOMEM.  Threads idle
   for 10 seconds exit.  Cancel and deadlines interrupt a thread waiting in
   a system call on a socket, pipe or terminal, in a sleep or in a wait,
   without signals.  opts may be NULL.  0, -EINVAL, -ENOMEM.  docs/threads.md
   has the design. */
WEFT_API int weft_thread_pool_init(weft_thread_pool **out, const weft_thread_pool_options *opts);
WEFT_API weft_io weft_thread_pool_io(weft_thread_pool *tp);
/* Waits for detached tasks and group members (and any task still
   running), then stops the threads and frees the pool.  Must not be called
   by one of the pool's tasks. */
WEFT_API void weft_thread_pool_deinit(weft_thread_pool *tp);

/* ---- the blocking Io: no concurrency, plain blocking calls ------------------ */

/* async runs the task inline and returns a finished future; concurrent
   fails with -EOPNOTSUPP; sleep is clock_nanosleep.  Usable from any
   thread, no setup. */
WEFT_API weft_io weft_blocking_io(void);

#ifdef __cplusplus
}
#endif

#endif
