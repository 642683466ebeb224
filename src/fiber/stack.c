// SPDX-License-Identifier: MIT
/*
 * Stacks: mapping, guarding, pooling.  The layout is drawn in stack.h.
 *
 * The shared pool is two lock-free LIFO lists (Treiber stacks) threaded
 * through one array of shared_max slots that is allocated at init and
 * freed only at deinit:
 *
 *   full: slots that hold a pooled stack      free: slots that hold nothing
 *
 * weft__stack_get pops a slot from `full`, takes its stack and pushes the
 * slot on `free`; giving a stack back pops a slot from `free` (none left:
 * the pool is full and the stack is unmapped) and pushes it on `full`.
 *
 * Why slots and not a link inside each stack: a pop reads the head node's
 * link before its compare-and-swap, and by then another thread may have
 * popped that node, used it and given it back.  Were the node a stack, a
 * full pool would unmap it under the reader.  Slots are never unmapped
 * while the pool lives, so a pop that lost such a race reads a stale but
 * valid slot and its CAS fails.
 *
 * ABA: each head is a pair {slot, version} swapped as one with a double-
 * width CAS (libatomic_ops' AO_compare_double_and_swap_double), and every
 * successful swap increments the version.  A pop reads the version first
 * (acquire), then the slot, then the slot's link; its CAS succeeds only if
 * the head never changed after the version was read (versions never repeat:
 * 64 bits), so the link it read was the head's link then, and nobody
 * writes a slot's link while the slot is on a list.
 *
 * Memory order: a push's CAS releases (the stack's contents and the slot's
 * `stack` field were written before it), a pop's CAS acquires.  TSan cannot
 * see inside the CAS (inline assembly), so the same edges are declared to it
 * on the slot's address.
 */
#include "stack.h"

#include "sanitize.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

/* Linux 6.13 uapi values; Debian 12's headers predate them. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static size_t page_size(void)
{
    static _Atomic size_t ps; /* loops may start in two threads at once */
    size_t p = atomic_load_explicit(&ps, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&ps, p, memory_order_relaxed);
    }
    return p;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/*
 * The probe.  madvise returning 0 is not proof: an emulator (qemu-user) or a
 * seccomp filter may accept the call and do nothing.  So guard a page and
 * ask the kernel to read it for us: write(2) from a guarded page fails with
 * EFAULT, and from an ordinary page succeeds.  No signal is involved.
 */
static bool guard_madvise_works;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_guard_madvise(void)
{
    size_t ps = page_size();
    char *m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    int fds[2];
    if (madvise(m, ps, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
        guard_madvise_works = write(fds[1], m, 1) < 0 && errno == EFAULT;
        close(fds[0]);
        close(fds[1]);
    }
    munmap(m, ps);
}

bool weft__stack_guard_madvise_supported(void)
{
    pthread_once(&probe_once, probe_guard_madvise);
    return guard_madvise_works;
}

void (*weft__stack_test_pop_hook)(weft__stack_pool *p);

/* ---- the lists ------------------------------------------------------------ */

static weft__stack_slot *slot_pop(weft__stack_pool *p, volatile AO_double_t *head)
{
    for (;;) {
        AO_t version = AO_load_acquire(&head->AO_val2);
        AO_t top = AO_load_acquire(&head->AO_val1);
        if (!top)
            return NULL;
        if (weft__stack_test_pop_hook && head == &p->full)
            weft__stack_test_pop_hook(p);
        weft__stack_slot *slot = (weft__stack_slot *)top;
        AO_t next = AO_load(&slot->next);
        if (AO_compare_double_and_swap_double_acquire(head, top, version, next, version + 1)) {
            weft__tsan_acquire(slot);
            return slot;
        }
    }
}

static void slot_push(volatile AO_double_t *head, weft__stack_slot *slot)
{
    weft__tsan_release(slot);
    for (;;) {
        AO_t version = AO_load_acquire(&head->AO_val2);
        AO_t top = AO_load(&head->AO_val1);
        AO_store(&slot->next, top);
        if (AO_compare_double_and_swap_double_release(head, top, version, (AO_t)slot, version + 1))
            return;
    }
}

/* ---- the pool ------------------------------------------------------------- */

int weft__stack_pool_init(weft__stack_pool *p, const weft__stack_pool_options *o)
{
    static const weft__stack_pool_options defaults;
    if (!o)
        o = &defaults;
    size_t ps = page_size();
    size_t size = o->size ? o->size : WEFT__STACK_DEFAULT_SIZE;
    size_t guard = o->guard ? o->guard : WEFT__STACK_DEFAULT_GUARD;
    size_t keep = o->keep ? o->keep : WEFT__STACK_DEFAULT_KEEP;
    if (size > ((size_t)1 << 40) || guard > ((size_t)1 << 30))
        return -EINVAL;
    size = round_up(size < 2 * ps ? 2 * ps : size, ps);
    guard = round_up(guard, ps);
    keep = round_up(keep, ps);

    bool madv = weft__stack_guard_madvise_supported();
    if (o->guard_mode == WEFT__GUARD_MADVISE && !madv)
        return -EOPNOTSUPP;
    if (o->guard_mode == WEFT__GUARD_MPROTECT)
        madv = false;

    size_t shared_max = o->shared_max ? o->shared_max : WEFT__STACK_DEFAULT_SHARED_MAX;
    if (shared_max > ((size_t)1 << 32))
        return -EINVAL;
    weft__stack_slot *slots = calloc(shared_max, sizeof *slots);
    if (!slots)
        return -ENOMEM;

    *p = (weft__stack_pool){
        .slots = slots,
        .size = size,
        .guard = guard,
        .keep = keep < size ? keep : size,
        .shared_max = shared_max,
        .guard_madvise = madv,
    };
    for (size_t i = shared_max; i-- > 0;)
        slot_push(&p->free, &slots[i]);
    pthread_mutex_init(&p->all_lock, NULL);
    return 0;
}

void weft__stack_pool_each_in_use(weft__stack_pool *p, void (*fn)(weft__stack *s, void *arg),
                                  void *arg)
{
    pthread_mutex_lock(&p->all_lock);
    for (weft__stack *s = p->all, *next; s; s = next) {
        next = s->all_next;
        if (s->in_use)
            fn(s, arg);
    }
    pthread_mutex_unlock(&p->all_lock);
}

static weft__stack *header_of(const weft__stack_pool *p, char *map)
{
    return (weft__stack *)(map + p->guard + p->size - sizeof(weft__stack));
}

static char *map_of(const weft__stack_pool *p, weft__stack *s)
{
    return weft__stack_lo(p, s) - p->guard;
}

static void report_map_limit(void)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set_explicit(&said, memory_order_relaxed))
        return;
    long limit = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &limit) != 1)
            limit = -1;
        fclose(f);
    }
    fprintf(stderr,
            "weft: cannot guard another fiber stack: the process has reached "
            "vm.max_map_count (%ld mappings). Stacks guarded with mprotect cost "
            "two mappings each%s; raise vm.max_map_count or run fewer fibers.\n",
            limit,
            weft__stack_guard_madvise_supported()
                ? ""
                : " (this kernel lacks MADV_GUARD_INSTALL, Linux 6.13+, whose guards cost none)");
}

/* The kernel refuses MADV_GUARD_INSTALL in a locked mapping, and after
   mlockall(MCL_FUTURE) every new mapping is locked. */
static void report_guard_fallback(int err)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set_explicit(&said, memory_order_relaxed))
        return;
    fprintf(stderr,
            "weft: MADV_GUARD_INSTALL failed (%s; memory locked with mlockall?): fiber stacks "
            "are guarded with mprotect from now on, at two mappings per stack\n",
            strerror(err));
}

static int guard(weft__stack_pool *p, char *m)
{
    if (atomic_load_explicit(&p->guard_madvise, memory_order_relaxed)) {
        if (madvise(m, p->guard, MADV_GUARD_INSTALL) == 0)
            return 0;
        if (errno != EINVAL)
            return -1;
        atomic_store_explicit(&p->guard_madvise, false, memory_order_relaxed);
        report_guard_fallback(errno);
    }
    if (mprotect(m, p->guard, PROT_NONE) == 0)
        return 0;
    if (errno == ENOMEM)
        report_map_limit();
    return -1;
}

static int map_stack(weft__stack_pool *p, weft__stack **out)
{
    size_t len = p->guard + p->size;
    /* MAP_STACK: on Linux 6.7+ it also keeps transparent huge pages away,
       which would otherwise turn a 4 KiB idle stack into 2 MiB of RSS. */
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    if (guard(p, m) != 0) {
        munmap(m, len);
        return -ENOMEM;
    }
    weft__stack *s = header_of(p, m);
    s->next = NULL;
    s->in_use = false;
    s->sample = 0;
    s->vg_id = weft__vg_stack_register(m + p->guard, m + len);
    pthread_mutex_lock(&p->all_lock);
    s->all_prev = NULL;
    s->all_next = p->all;
    if (p->all)
        p->all->all_prev = s;
    p->all = s;
    pthread_mutex_unlock(&p->all_lock);
    atomic_fetch_add_explicit(&p->mapped, 1, memory_order_relaxed);
    *out = s;
    return 0;
}

static void unmap_stack(weft__stack_pool *p, weft__stack *s)
{
    weft__vg_stack_deregister(s->vg_id);
    pthread_mutex_lock(&p->all_lock);
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        p->all = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    pthread_mutex_unlock(&p->all_lock);
    munmap(map_of(p, s), p->guard + p->size);
    atomic_fetch_sub_explicit(&p->mapped, 1, memory_order_relaxed);
}

void weft__stack_pool_deinit(weft__stack_pool *p)
{
    long live = atomic_load_explicit(&p->live, memory_order_relaxed);
    if (live != 0) {
        fprintf(stderr,
                "weft: stack pool destroyed while %ld stacks are still in use "
                "(or a cache was not drained)\n",
                live);
        abort();
    }
    weft__stack_slot *slot;
    while ((slot = slot_pop(p, &p->full)) != NULL)
        unmap_stack(p, slot->stack);
    free(p->slots);
    p->slots = NULL;
    pthread_mutex_destroy(&p->all_lock);
}

size_t weft__stack_pool_shared_count(weft__stack_pool *p)
{
    size_t n = 0;
    for (AO_t at = AO_load_acquire(&p->full.AO_val1); at;
         at = AO_load(&((weft__stack_slot *)at)->next))
        n++;
    return n;
}

int weft__stack_get(weft__stack_pool *p, weft__stack_cache *c, weft__stack **out)
{
    weft__stack *s = c ? c->head : NULL;
    if (s) {
        /* The hot path: no atomic operation at all. */
        c->head = s->next;
        c->count--;
        c->out++;
        s->in_use = true;
        *out = s;
        return 0;
    }
    weft__stack_slot *slot = slot_pop(p, &p->full);
    if (slot) {
        s = slot->stack;
        slot_push(&p->free, slot);
    } else {
        int rc = map_stack(p, &s);
        if (rc < 0)
            return rc;
    }
    if (c)
        c->out++;
    else
        atomic_fetch_add_explicit(&p->live, 1, memory_order_relaxed);
    s->in_use = true;
    *out = s;
    return 0;
}

/*
 * Did the last fiber on this stack go deeper than `keep`?  A line of 64
 * bytes that no fiber wrote since the stack was mapped or last trimmed reads
 * as zeros (the read maps the kernel's shared zero page, which uses no
 * memory); a fiber that went deep left return addresses and saved
 * registers on most of the lines it passed.  So each recycle reads two
 * lines:
 *
 *   - the line just below `keep`, every time: a fiber that went deeper
 *     almost surely wrote there, and its pages are given back at once;
 *   - one line further down, a different depth each recycle, cycling
 *     through 4, 12, 28, 60, 124 KiB... below the first (each gap twice
 *     the last): a zero-initialised buffer can cover the first line while
 *     the fiber's frames go far deeper.  Those frames stay as they were
 *     until the stack is trimmed (a shallow fiber does not touch them), so
 *     the cycle finds them within as many recycles as it has depths (five
 *     for a 256 KiB stack), unless zeros cover every depth the fiber
 *     passed.
 *
 * Each line read below `keep` touches a page no shallow fiber uses, likely
 * a TLB miss: reading every depth on every recycle made spawning a task a
 * third slower, hence one depth at a time.  The lines sit at different
 * offsets within their pages, so that their reads of the zero page do not
 * all alias one cache line.
 */
/* Whatever types the fiber stored there, the line is read as words. */
typedef uint64_t __attribute__((may_alias)) any_word;

WEFT__NO_SANITIZE_ADDRESS
static bool line_written(const char *at)
{
    const any_word *w = (const any_word *)at;
    weft__vg_make_defined(at, 64);
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0;
}

static bool went_deep(const weft__stack_pool *p, weft__stack *s)
{
    const char *lo = weft__stack_lo(p, s);
    const char *first = weft__stack_top(s) - p->keep - 64;
    if (first < lo)
        return false;
    /* Depth k (1, 2, ...) lies 4 KiB * (2^k - 1) + 64 * k below the first
       line; take the next one inside the stack, wrapping to depth 1 (or
       read the first line twice if there is no room below it). */
    size_t room = (size_t)(first - lo);
    unsigned k = s->sample + 1u;
    size_t down = ((size_t)4096 << k) - 4096 + 64u * k;
    if (down > room) {
        k = 1;
        down = 4096 + 64 <= room ? 4096 + 64 : 0;
    }
    s->sample = (unsigned char)k;
    return line_written(first) || line_written(first - down);
}

static void recycle(weft__stack_pool *p, weft__stack *s)
{
    char *lo = weft__stack_lo(p, s);
    /* A dead fiber leaves ASan's poison behind on its stack; the next fiber
       must start on clean shadow. */
    weft__asan_unpoison(lo, p->size - sizeof(weft__stack));
    if (p->keep < p->size && went_deep(p, s))
        madvise(lo, p->size - p->keep, MADV_DONTNEED);
}

/* The shared pool holds at most shared_max stacks (one per slot); past
   that a stack goes back to the kernel.  Unmapping it here is safe: no
   pop ever reads a stack's memory, only slots. */
static void give_to_shared(weft__stack_pool *p, weft__stack *s)
{
    weft__stack_slot *slot = slot_pop(p, &p->free);
    if (!slot) {
        unmap_stack(p, s);
        return;
    }
    slot->stack = s;
    slot_push(&p->full, slot);
}

void weft__stack_put(weft__stack_pool *p, weft__stack_cache *c, weft__stack *s)
{
    s->in_use = false;
    recycle(p, s);
    if (!c) {
        atomic_fetch_sub_explicit(&p->live, 1, memory_order_relaxed);
        give_to_shared(p, s);
        return;
    }
    c->out--;
    if (c->count >= WEFT__STACK_CACHE_MAX) {
        /* Keep the most recently used (hottest) half; the rest go to the
           other threads. */
        weft__stack *last = c->head;
        for (unsigned i = 1; i < WEFT__STACK_CACHE_MAX / 2; i++)
            last = last->next;
        weft__stack *spill = last->next;
        last->next = NULL;
        c->count = WEFT__STACK_CACHE_MAX / 2;
        while (spill) {
            weft__stack *n = spill->next;
            give_to_shared(p, spill);
            spill = n;
        }
    }
    s->next = c->head;
    c->head = s;
    c->count++;
}

void weft__stack_cache_drain(weft__stack_pool *p, weft__stack_cache *c)
{
    while (c->head) {
        weft__stack *s = c->head;
        c->head = s->next;
        give_to_shared(p, s);
    }
    c->count = 0;
    atomic_fetch_add_explicit(&p->live, c->out, memory_order_relaxed);
    c->out = 0;
}
