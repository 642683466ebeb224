// SPDX-License-Identifier: MIT
#include "fiber.h"

#include "sanitize.h"

#include <errno.h>
#include <stdalign.h>
#include <string.h>

/* initial-exec: libweft is position-independent, and the default model for
   that would call __tls_get_addr on every access, doubling the cost of a
   switch.  glibc keeps static TLS room for libraries that ask for this. */
static _Thread_local weft__fiber *tls_current __attribute__((tls_model("initial-exec")));

/* noinline, and an empty asm the optimiser cannot see through: each call
   computes the thread-local's address afresh, on the thread it runs on. */
__attribute__((noinline)) weft__fiber *weft__fiber_current(void)
{
    __asm__ volatile("" ::: "memory");
    return tls_current;
}

__attribute__((noinline)) static void set_current(weft__fiber *f)
{
    __asm__ volatile("" ::: "memory");
    tls_current = f;
}

static _Atomic uint64_t next_id = 1;

/* Ids come from the shared counter in blocks, so that threads creating
   fibers do not all bounce its cache line. */
#define ID_BLOCK 1024
static _Thread_local uint64_t id_next, id_end;

static uint64_t take_id(void)
{
    if (id_next == id_end) {
        id_next = atomic_fetch_add_explicit(&next_id, ID_BLOCK, memory_order_relaxed);
        id_end = id_next + ID_BLOCK;
    }
    return id_next++;
}

/* What travels through a jump: who switched, to whom, and the message. */
struct hop {
    weft__fiber *from;
    weft__fiber *to;
    void *msg;
};

void weft__fiber_init_thread(weft__fiber *f)
{
    memset(f, 0, sizeof *f);
    f->id = take_id();
    f->name = "thread";
#ifdef WEFT__TSAN
    f->tsan_fiber = __tsan_get_current_fiber();
#endif
    weft__overflow_install();
    weft__overflow_thread_init();
    set_current(f);
}

void weft__fiber_fini_thread(weft__fiber *f)
{
    if (weft__fiber_current() == f)
        set_current(NULL);
}

/* Runs in the resumed context, first thing after every jump. */
__attribute__((always_inline)) static inline struct hop *arrived(weft__fiber *self,
                                                                 weft__transfer t)
{
    struct hop *h = t.data;
#ifdef WEFT__ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &bottom, &size);
    /* A thread's own stack has no known bounds until ASan reports them on
       the first switch away from it. */
    if (!h->from->stack && !h->from->stack_lo) {
        h->from->stack_lo = (char *)bottom;
        h->from->stack_size = size;
    }
#endif
    h->from->ctx = t.from;
    set_current(self);
    return h;
}

/* always_inline: under TSan, no instrumented function may return between
   __tsan_switch_to_fiber and the jump, or its exit would be recorded on
   the next fiber's shadow stack. */
__attribute__((always_inline)) static inline void departing(weft__fiber *self, weft__fiber *to,
                                                            bool dying)
{
#ifdef WEFT__ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &self->asan_fake_stack, to->stack_lo,
                                   to->stack_size);
#else
    (void)self, (void)dying;
#endif
#ifdef WEFT__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

static void fiber_start(weft__transfer t)
{
    weft__fiber *self = ((struct hop *)t.data)->to;
    struct hop *h = arrived(self, t);
    self->entry(self, h->msg);
    weft__context_entry_returned();
}

int weft__fiber_create(weft__fiber **out, weft__stack_pool *p, weft__stack_cache *c, size_t extra,
                       weft__fiber_entry *entry)
{
    size_t head = sizeof(weft__fiber) + ((extra + 63) & ~(size_t)63);
    if (head + 4096 > p->size - sizeof(weft__stack))
        return -EINVAL;
    weft__stack *s;
    int rc = weft__stack_get(p, c, &s);
    if (rc < 0)
        return rc;
    char *top = weft__stack_top(s);
    weft__fiber *f = (weft__fiber *)(top - sizeof(weft__fiber));
    /* Field by field: a struct assignment here compiles to `rep stos`,
       whose start-up cost shows in every spawn. */
    f->stack = s;
    f->stack_lo = weft__stack_lo(p, s);
    f->stack_size = p->size - sizeof(weft__stack);
    f->guard = p->guard;
    f->entry = entry;
    f->extra = extra ? top - head : NULL;
    f->name = NULL;
    f->id = take_id();
    f->asan_fake_stack = NULL;
    f->tsan_fiber = NULL;
    f->fresh = true;
    char *sp = top - head;
    f->ctx = weft__context_make(sp, (size_t)(sp - f->stack_lo), fiber_start);
#ifdef WEFT__TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    *out = f;
    return 0;
}

void weft__fiber_destroy(weft__fiber *f, weft__stack_pool *p, weft__stack_cache *c)
{
#ifdef WEFT__TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
#endif
    weft__stack_put(p, c, f->stack);
}

void *weft__fiber_switch(weft__fiber *self, weft__fiber *to, void *msg)
{
    struct hop h = {self, to, msg};
    departing(self, to, false);
    /* Mostly, `to` suspended here too, through the same calls as self:
       a return into it is then predicted, frame after frame.  A fresh
       fiber starts in its entry instead, where an indirect jump is. */
    weft__transfer t;
    if (__builtin_expect(to->fresh, 0)) {
        to->fresh = false;
        t = weft__context_jump(to->ctx, &h);
    } else {
        t = weft__context_jump_ret(to->ctx, &h);
    }
    return arrived(self, t)->msg;
}

_Noreturn void weft__fiber_exit(weft__fiber *self, weft__fiber *to, void *msg)
{
    struct hop h = {self, to, msg};
    departing(self, to, true);
    weft__context_jump(to->ctx, &h);
    __builtin_unreachable();
}
