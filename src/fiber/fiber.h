// SPDX-License-Identifier: MIT
/*
 * Fibers: a stack, a saved context, and the switch between two of them.
 *
 * A fiber lives in the top bytes of its own stack, below the stack's header,
 * with `extra` bytes for its owner (the scheduler puts the task's closure
 * there) just below it:
 *
 *   ... stack grows down | extra | struct weft__fiber | struct weft__stack |
 *
 * A thread's own stack can act as a fiber too (weft__fiber_init_thread), so
 * that a thread can switch into fibers and be switched back to.
 *
 * The switch: weft__fiber_switch(self, to, msg) suspends `self` and resumes
 * `to`, which receives `msg`.  The context `self` leaves behind is stored
 * into self->ctx by the *resumed* side, after the stack pointer has moved,
 * not before: until that store, nobody can resume `self`, and no other
 * thread can see `self` half-saved.  A scheduler builds its handoff on this
 * (the message tells the resumed side what to do with the fiber it left).
 *
 * All sanitizer and valgrind bookkeeping for switches happens here: ASan's
 * __sanitizer_start_switch_fiber before the jump and
 * __sanitizer_finish_switch_fiber right after it, in the resumed context;
 * TSan's __tsan_switch_to_fiber right before the jump.
 */
#ifndef WEFT_FIBER_FIBER_H
#define WEFT_FIBER_FIBER_H

#include "../asm/context.h"
#include "stack.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct weft__fiber weft__fiber;

/* A fiber's body.  msg is what the first switch into it carried.  It must
   end with weft__fiber_exit, never return. */
typedef void weft__fiber_entry(weft__fiber *self, void *msg);

struct __attribute__((aligned(64))) weft__fiber {
    weft__context ctx;  /* the saved context, while suspended */
    weft__stack *stack; /* NULL for a thread's own stack */
    char *stack_lo;     /* usable [stack_lo, stack_lo + stack_size) */
    size_t stack_size;
    size_t guard; /* guard bytes below stack_lo */
    weft__fiber_entry *entry;
    void *extra;      /* the owner's bytes below this header */
    const char *name; /* for reports; may be NULL */
    uint64_t id;      /* unique in the process, never 0 */
    void *asan_fake_stack;
    void *tsan_fiber;
    bool fresh; /* made, never yet switched to */
};

/* Makes the calling thread's own stack a fiber, `f`, and the thread's
   current fiber.  Also prepares the thread's overflow reporting. */
void weft__fiber_init_thread(weft__fiber *f);
/* Undo weft__fiber_init_thread (before the thread exits or f goes away). */
void weft__fiber_fini_thread(weft__fiber *f);

/* 0, -ENOMEM, or -EINVAL (extra does not fit in the stack). */
int weft__fiber_create(weft__fiber **out, weft__stack_pool *p, weft__stack_cache *c, size_t extra,
                       weft__fiber_entry *entry);
/* Gives back the stack of a fiber that exited or never ran. */
void weft__fiber_destroy(weft__fiber *f, weft__stack_pool *p, weft__stack_cache *c);

/* Suspends self, resumes to with msg; returns the msg of whoever resumes
   self.  self must be the running fiber. */
void *weft__fiber_switch(weft__fiber *self, weft__fiber *to, void *msg);
/* The last switch of a fiber: resumes to with msg; self is never resumed
   again, and the receiver may destroy it as soon as it runs. */
_Noreturn void weft__fiber_exit(weft__fiber *self, weft__fiber *to, void *msg);

/* The fiber running on this thread (NULL if none).  Not inlined, and not to
   be cached across a switch: a fiber may resume on another thread, and a
   thread-local's address computed before a switch is the old thread's. */
weft__fiber *weft__fiber_current(void);

/* The overflow report: a SIGSEGV/SIGBUS handler, installed once per
   process, on an alternate signal stack, set up per thread by
   weft__fiber_init_thread.  Exposed for tests. */
void weft__overflow_install(void);
void weft__overflow_thread_init(void);
void weft__overflow_thread_fini(void);

#endif
