// SPDX-License-Identifier: MIT
/*
 * Fiber stacks: guarded mappings, pooled.
 *
 * A stack is one anonymous mapping, reserved with MAP_NORESERVE so only the
 * pages a fiber touches cost memory:
 *
 *   map                guard_end = lo                                  top  map + map_size
 *   +------------------+-----------------------------------------+----+---+
 *   | guard (no access)| usable: the fiber's stack grows down  <- |....|hdr|
 *   +------------------+-----------------------------------------+----+---+
 *                                                   caller's bytes ^     ^ weft__stack
 *
 * The header (struct weft__stack) lives in the top bytes of its own stack:
 * the pool needs no memory of its own per stack, and the top page, which
 * any fiber touches first, holds it.
 *
 * The guard is installed with MADV_GUARD_INSTALL where the kernel has it
 * (Linux 6.13+): the guard stays inside the stack's VMA, and adjacent stacks
 * merge into one VMA, so a million guarded stacks fit under the default
 * vm.max_map_count.  Elsewhere it is mprotect(PROT_NONE), at the cost of two
 * VMAs per stack.  Which one is decided once per process, by a probe.
 *
 * Recycling: a per-thread cache (weft__stack_cache, owned by one thread,
 * no atomics) in front of a shared lock-free pool (see stack.c: two
 * version-tagged lists over a fixed array of slots).  A stack coming back
 * whose fiber went deeper than `keep` bytes has its deep pages returned to
 * the kernel first (see weft__stack_put).
 */
#ifndef WEFT_FIBER_STACK_H
#define WEFT_FIBER_STACK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* The shared pool's lists need a double-width compare-and-swap.  On x86_64
   that is cmpxchg16b, which every x86_64 processor since 2006 has, and
   which libatomic_ops uses only when told so: with this macro under gcc,
   with -mcx16 (which the build passes) under clang. */
#if defined(__x86_64__) && !defined(AO_CMPXCHG16B_AVAILABLE)
#define AO_CMPXCHG16B_AVAILABLE 1
#endif
#include <atomic_ops.h>

typedef struct weft__stack weft__stack;

struct weft__stack {
    weft__stack *next;                /* link while in a per-thread cache */
    weft__stack *all_prev, *all_next; /* every mapped stack, under all_lock */
    unsigned vg_id;                   /* valgrind's id for the registered stack */
    bool in_use;                      /* handed out; written by the thread holding it */
    unsigned char sample;             /* the depth the last recycle read (stack.c) */
    char pad[64 - 3 * sizeof(weft__stack *) - sizeof(unsigned) - sizeof(bool) - 1];
};

_Static_assert(sizeof(weft__stack) == 64, "the stack header is one cache line");

/* A place in the shared pool.  Slots live in one array that stays mapped
   as long as the pool: a pop that lost a race reads only slots, never a
   stack that another thread may have unmapped meanwhile. */
typedef struct weft__stack_slot {
    AO_t next;          /* the next slot in the same list; AO_load/AO_store only */
    weft__stack *stack; /* while on the full list */
} weft__stack_slot;

enum weft__guard_mode {
    WEFT__GUARD_AUTO = 0, /* MADV_GUARD_INSTALL if the kernel has it, else mprotect */
    WEFT__GUARD_MADVISE,  /* MADV_GUARD_INSTALL or fail with -EOPNOTSUPP */
    WEFT__GUARD_MPROTECT, /* always mprotect */
};

typedef struct weft__stack_pool_options {
    size_t size;       /* usable bytes per stack; 0: WEFT__STACK_DEFAULT_SIZE */
    size_t guard;      /* guard bytes; 0: WEFT__STACK_DEFAULT_GUARD */
    size_t keep;       /* bytes kept resident on recycle; 0: WEFT__STACK_DEFAULT_KEEP */
    size_t shared_max; /* stacks the shared pool holds; 0: WEFT__STACK_DEFAULT_SHARED_MAX */
    enum weft__guard_mode guard_mode;
} weft__stack_pool_options;

#define WEFT__STACK_DEFAULT_SIZE       (256u * 1024u)
#define WEFT__STACK_DEFAULT_GUARD      (64u * 1024u)
#define WEFT__STACK_DEFAULT_KEEP       (32u * 1024u)
#define WEFT__STACK_DEFAULT_SHARED_MAX 4096u
#define WEFT__STACK_CACHE_MAX          64u

typedef struct weft__stack_pool {
    /* The shared pool: `full` lists the slots holding a stack, `free` the
       empty ones; each head is {slot address, version}, swapped as one. */
    AO_double_t full, free;
    weft__stack_slot *slots; /* shared_max of them */
    size_t size;             /* usable bytes, header included, page multiple */
    size_t guard;            /* page multiple */
    size_t keep;             /* page multiple, <= size */
    size_t shared_max;
    /* MADV_GUARD_INSTALL, or mprotect: set at init, cleared for good if
       the kernel refuses a guard (memory locked with mlockall). */
    atomic_bool guard_madvise;
    /* Stacks handed out and not yet returned, counting only what caches
       have drained: exact once every cache is drained. */
    atomic_long live;
    atomic_size_t mapped;     /* mappings in existence */
    pthread_mutex_t all_lock; /* the list of every mapped stack */
    weft__stack *all;
} weft__stack_pool;

typedef struct weft__stack_cache {
    weft__stack *head;
    unsigned count;
    long out; /* gets minus puts through this cache; folded into live on drain */
} weft__stack_cache;

#define WEFT__STACK_CACHE_INIT                                                                     \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* 0, or -EINVAL (a size too large), -EOPNOTSUPP (WEFT__GUARD_MADVISE asked
   for on a kernel without it), -ENOMEM. */
int weft__stack_pool_init(weft__stack_pool *p, const weft__stack_pool_options *o);
/* Unmaps every pooled stack.  Aborts if stacks are still handed out. */
void weft__stack_pool_deinit(weft__stack_pool *p);

/* 0, or -ENOMEM (no memory, or no more mappings: see the message printed). */
int weft__stack_get(weft__stack_pool *p, weft__stack_cache *c, weft__stack **out);
void weft__stack_put(weft__stack_pool *p, weft__stack_cache *c, weft__stack *s);
/* Hands every cached stack to the shared pool (a thread that exits), and
   settles the cache's count of stacks in use into the pool's. */
void weft__stack_cache_drain(weft__stack_pool *p, weft__stack_cache *c);

/* Calls fn(s, arg) for every stack handed out and not given back.  Only
   when no other thread uses the pool (a leak report at teardown). */
void weft__stack_pool_each_in_use(weft__stack_pool *p, void (*fn)(weft__stack *s, void *arg),
                                  void *arg);

/* Stacks in the shared pool.  Only when no other thread uses the pool. */
size_t weft__stack_pool_shared_count(weft__stack_pool *p);

/* For tests: when set, called by every pop from the shared pool between
   reading the head slot and reading that slot's link, the window in which
   another thread can take the same stack and give it back to the kernel. */
extern void (*weft__stack_test_pop_hook)(weft__stack_pool *p);

/* Stacks in use, as seen from a thread with cache c (or NULL): exact when
   c is the only cache not drained. */
static inline long weft__stack_in_use(weft__stack_pool *p, const weft__stack_cache *c)
{
    return atomic_load_explicit(&p->live, memory_order_relaxed) + (c ? c->out : 0);
}

/* The usable range [lo, top) and the guard [lo - guard, lo). */
static inline char *weft__stack_top(weft__stack *s)
{
    return (char *)s;
}
static inline char *weft__stack_lo(const weft__stack_pool *p, weft__stack *s)
{
    return (char *)s + sizeof(weft__stack) - p->size;
}

/* Does this kernel honour MADV_GUARD_INSTALL?  Probed once. */
bool weft__stack_guard_madvise_supported(void);

#endif
