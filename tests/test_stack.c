// SPDX-License-Identifier: MIT
/* Fiber stacks (src/fiber/stack.c): guards, the pool, recycling. */
#include "fiber/stack.h"
#include "helpers.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static bool resident(void *addr)
{
    unsigned char v = 0;
    char *a = (char *)((uintptr_t)addr & ~(page() - 1));
    cr_assert_eq(mincore(a, page(), &v), 0);
    return v & 1;
}

static void pool_init(weft__stack_pool *p, enum weft__guard_mode mode)
{
    weft__stack_pool_options o = {.guard_mode = mode};
    cr_assert_eq(weft__stack_pool_init(p, &o), 0);
}

Test(stack, default_sizes_are_page_multiples)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    cr_expect_eq(p.size, WEFT__STACK_DEFAULT_SIZE);
    cr_expect_eq(p.guard % page(), 0);
    cr_expect_geq(p.guard, page());
    cr_expect_eq(p.guard_madvise, weft__stack_guard_madvise_supported());
    cr_log_info("MADV_GUARD_INSTALL honoured by this kernel: %s",
                weft__stack_guard_madvise_supported() ? "yes" : "no");
    weft__stack_pool_deinit(&p);
}

Test(stack, odd_sizes_round_up_and_absurd_ones_fail)
{
    weft__stack_pool p;
    weft__stack_pool_options o = {.size = 10000, .guard = 1};
    cr_assert_eq(weft__stack_pool_init(&p, &o), 0);
    cr_expect_eq(p.size % page(), 0);
    cr_expect_geq(p.size, 10000);
    cr_expect_eq(p.guard, page());
    weft__stack_pool_deinit(&p);
    o.size = (size_t)1 << 50;
    cr_expect_eq(weft__stack_pool_init(&p, &o), -EINVAL);
}

Test(stack, usable_range_is_writable_and_only_top_page_resident)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    weft__stack *s;
    cr_assert_eq(weft__stack_get(&p, NULL, &s), 0);
    char *lo = weft__stack_lo(&p, s), *top = weft__stack_top(s);
    cr_expect_eq(top - lo + sizeof(weft__stack), p.size);
    cr_expect(resident(top - 1));
    cr_expect(!resident(lo), "a fresh stack's bottom page should not be resident");
    lo[0] = 1;
    top[-1] = 2;
    cr_expect(resident(lo));
    weft__stack_put(&p, NULL, s);
    weft__stack_pool_deinit(&p);
}

struct guard_case {
    enum weft__guard_mode mode;
};

static void touch_guard(void *arg)
{
    struct guard_case *gc = arg;
    weft__stack_pool p;
    weft__stack_pool_options o = {.guard_mode = gc->mode};
    if (weft__stack_pool_init(&p, &o) != 0)
        _exit(3);
    weft__stack *s;
    if (weft__stack_get(&p, NULL, &s) != 0)
        _exit(4);
    /* Restore the default action: this tests the guard, not a handler. */
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    volatile char *below = weft__stack_lo(&p, s) - 1;
    *below = 1;
    _exit(0);
}

static void expect_guard_faults(enum weft__guard_mode mode)
{
    struct guard_case gc = {mode};
    char err[512];
    int status = test_run_child(touch_guard, &gc, err, sizeof err);
    cr_assert(WIFSIGNALED(status), "status %#x: writing below the stack did not fault", status);
    cr_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

Test(stack, guard_faults_with_mprotect, .timeout = 30)
{
    expect_guard_faults(WEFT__GUARD_MPROTECT);
}

Test(stack, guard_faults_with_madvise_guard, .timeout = 30)
{
    if (!weft__stack_guard_madvise_supported())
        cr_skip_test("this kernel does not honour MADV_GUARD_INSTALL");
    expect_guard_faults(WEFT__GUARD_MADVISE);
}

/* Of two stacks next to each other, the lower one's top lies right below
   the upper one's guard.  A write anywhere in the default guard below the
   upper one must fault, not land on the lower one's top. */
static void touch_below_guard(void *arg)
{
    size_t below = *(size_t *)arg;
    weft__stack_pool p;
    if (weft__stack_pool_init(&p, NULL) != 0)
        _exit(3);
    /* Stacks mapped one after another usually lie next to each other
       (below each other with the kernel's allocator, above under
       qemu-user's): find one right below another's guard. */
    enum { N = 16 };
    weft__stack *s[N], *upper = NULL;
    for (int i = 0; i < N && !upper; i++) {
        if (weft__stack_get(&p, NULL, &s[i]) != 0)
            _exit(4);
        for (int j = 0; j < i && !upper; j++) {
            if (weft__stack_top(s[j]) + sizeof(weft__stack) == weft__stack_lo(&p, s[i]) - p.guard)
                upper = s[i];
            else if (weft__stack_top(s[i]) + sizeof(weft__stack) ==
                     weft__stack_lo(&p, s[j]) - p.guard)
                upper = s[j];
        }
    }
    if (!upper)
        _exit(77); /* none adjacent: the case under test does not arise */
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    volatile char *at = weft__stack_lo(&p, upper) - below;
    *at = 1;
    _exit(0);
}

Test(stack, the_default_guard_covers_64_kib_below_a_neighbouring_stack, .timeout = 30)
{
    for (size_t below = 1; below <= 64 * 1024; below += 16 * 1024 - 1) {
        char err[512];
        int status = test_run_child(touch_below_guard, &below, err, sizeof err);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
            cr_skip_test("the two stacks were not mapped next to each other");
        cr_assert(WIFSIGNALED(status) &&
                      (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS),
                  "status %#x: a write %zu bytes below the stack did not fault", status, below);
    }
}

Test(stack, deep_pages_are_returned_on_recycle)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    weft__stack_cache c = WEFT__STACK_CACHE_INIT;
    weft__stack *s;
    cr_assert_eq(weft__stack_get(&p, &c, &s), 0);
    char *lo = weft__stack_lo(&p, s), *top = weft__stack_top(s);
    /* Act like a fiber that went all the way down. */
    memset(lo, 0x5a, (size_t)(top - lo));
    cr_assert(resident(lo));
    weft__stack_put(&p, &c, s);
    cr_expect(!resident(lo), "the deepest page should have been given back");
    cr_expect(!resident(top - p.keep - 1), "the page just past `keep` should have been given back");
    cr_expect(resident(top - 1), "the top page is kept");
    /* The same stack comes back from the cache, and reads as zeros below. */
    weft__stack *again;
    cr_assert_eq(weft__stack_get(&p, &c, &again), 0);
    cr_expect_eq(again, s);
    cr_expect_eq(lo[0], 0);
    weft__stack_put(&p, &c, again);
    weft__stack_cache_drain(&p, &c);
    weft__stack_pool_deinit(&p);
}

/* A fiber with a zero-initialised 16 KiB buffer straddling the `keep` depth,
   that then used 160 KiB of frames below it: the line just below `keep`
   reads as zeros, so the deeper depths that recycling cycles through must
   find the frames, within as many recycles as there are depths. */
Test(stack, deep_pages_below_a_zeroed_buffer_are_returned)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    weft__stack_cache c = WEFT__STACK_CACHE_INIT;
    weft__stack *s;
    cr_assert_eq(weft__stack_get(&p, &c, &s), 0);
    char *top = weft__stack_top(s);
    char *buf = top - p.keep - 8192;
    memset(buf + 16384, 0x5a, (size_t)(top - (buf + 16384)));
    memset(buf, 0, 16384);
    memset(buf - 160 * 1024, 0x5a, 160 * 1024);
    cr_assert(resident(buf - 100 * 1024));
    int recycles = 0;
    do {
        weft__stack_put(&p, &c, s);
        recycles++;
        cr_assert_eq(weft__stack_get(&p, &c, &s), 0);
        top[-1] = 1; /* a shallow fiber */
    } while (resident(buf - 100 * 1024) && recycles < 8);
    cr_log_info("trimmed after %d recycles", recycles);
    cr_expect(!resident(buf - 100 * 1024), "a page 100 KiB below the buffer was kept");
    cr_expect(!resident(buf - 160 * 1024), "the deepest page used was kept");
    cr_expect(!resident(top - p.keep - 1), "the page just past `keep` should have been given back");
    cr_expect_leq(recycles, 5, "found after %d recycles", recycles);
    weft__stack_put(&p, &c, s);
    weft__stack_cache_drain(&p, &c);
    weft__stack_pool_deinit(&p);
}

Test(stack, shallow_stacks_are_recycled_without_trimming)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    weft__stack *s;
    cr_assert_eq(weft__stack_get(&p, NULL, &s), 0);
    char *top = weft__stack_top(s);
    memset(top - 8192, 0x5a, 8192);
    weft__stack_put(&p, NULL, s);
    cr_expect(resident(top - 8192));
    cr_expect_eq(top[-8192], 0x5a, "a shallow stack keeps its pages and contents");
    weft__stack_pool_deinit(&p);
}

Test(stack, cache_spills_half_to_shared_pool_and_drains)
{
    weft__stack_pool p;
    pool_init(&p, WEFT__GUARD_AUTO);
    weft__stack_cache c = WEFT__STACK_CACHE_INIT;
    enum { N = WEFT__STACK_CACHE_MAX + 1 };
    weft__stack *s[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(weft__stack_get(&p, &c, &s[i]), 0);
    cr_expect_eq(weft__stack_in_use(&p, &c), N);
    cr_expect_eq(atomic_load(&p.mapped), N);
    for (int i = 0; i < N; i++)
        weft__stack_put(&p, &c, s[i]);
    cr_expect_leq(c.count, WEFT__STACK_CACHE_MAX);
    cr_expect_eq(c.count + weft__stack_pool_shared_count(&p), N);
    cr_expect_eq(weft__stack_in_use(&p, &c), 0);
    weft__stack_cache_drain(&p, &c);
    cr_expect_eq(c.count, 0);
    cr_expect_eq(weft__stack_pool_shared_count(&p), N);
    weft__stack_pool_deinit(&p);
    cr_expect_eq(atomic_load(&p.mapped), 0);
}

Test(stack, shared_pool_keeps_at_most_shared_max)
{
    weft__stack_pool p;
    weft__stack_pool_options o = {.shared_max = 4};
    cr_assert_eq(weft__stack_pool_init(&p, &o), 0);
    weft__stack *s[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(weft__stack_get(&p, NULL, &s[i]), 0);
    for (int i = 0; i < 10; i++)
        weft__stack_put(&p, NULL, s[i]);
    cr_expect_eq(weft__stack_pool_shared_count(&p), 4);
    cr_expect_eq(atomic_load(&p.mapped), 4);
    weft__stack_pool_deinit(&p);
}

/* ---- a pop that loses its head to a full pool ---------------------------- */

/* One thread's pop is parked between reading the head slot and reading its
   link; meanwhile the main thread takes that stack, fills the pool and
   gives the stack back, which unmaps it.  The parked pop must then retry
   without touching the unmapped stack. */
static struct parked_pop {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state; /* 0: not yet in the hook, 1: parked, 2: released */
} pp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static _Thread_local bool in_popper;

static void park_first_pop(weft__stack_pool *p)
{
    (void)p;
    if (!in_popper)
        return;
    pthread_mutex_lock(&pp.lock);
    if (pp.state == 0) {
        pp.state = 1;
        pthread_cond_broadcast(&pp.cond);
        while (pp.state != 2)
            pthread_cond_wait(&pp.cond, &pp.lock);
    }
    pthread_mutex_unlock(&pp.lock);
}

struct popper {
    weft__stack_pool *pool;
    weft__stack *got;
    int rc;
};

static void *popper_thread(void *arg)
{
    struct popper *po = arg;
    in_popper = true;
    po->rc = weft__stack_get(po->pool, NULL, &po->got);
    return NULL;
}

static bool mapped_at(void *addr)
{
    unsigned char v;
    char *a = (char *)((uintptr_t)addr & ~(page() - 1));
    return mincore(a, page(), &v) == 0;
}

Test(stack, a_pop_never_reads_a_stack_unmapped_under_it, .timeout = 60)
{
    weft__stack_pool p;
    weft__stack_pool_options o = {.shared_max = 1};
    cr_assert_eq(weft__stack_pool_init(&p, &o), 0);
    weft__stack *a, *b;
    cr_assert_eq(weft__stack_get(&p, NULL, &a), 0);
    cr_assert_eq(weft__stack_get(&p, NULL, &b), 0);
    weft__stack_put(&p, NULL, a); /* the pool: a */

    struct popper po = {&p, NULL, -1};
    pthread_t t;
    pthread_mutex_lock(&pp.lock);
    pp.state = 0;
    weft__stack_test_pop_hook = park_first_pop;
    cr_assert_eq(pthread_create(&t, NULL, popper_thread, &po), 0);
    while (pp.state != 1)
        pthread_cond_wait(&pp.cond, &pp.lock);
    pthread_mutex_unlock(&pp.lock);

    /* The popper holds a's slot as the head it read.  Take a, fill the
       pool with b, give a back: the pool is full, so a is unmapped. */
    weft__stack *again;
    cr_assert_eq(weft__stack_get(&p, NULL, &again), 0);
    cr_assert_eq(again, a);
    weft__stack_put(&p, NULL, b);
    weft__stack_put(&p, NULL, a);
    cr_assert_eq(atomic_load(&p.mapped), 1);
    cr_assert(!mapped_at(a), "the stack should be unmapped now");

    pthread_mutex_lock(&pp.lock);
    pp.state = 2;
    pthread_cond_broadcast(&pp.cond);
    pthread_mutex_unlock(&pp.lock);
    pthread_join(t, NULL);
    weft__stack_test_pop_hook = NULL;

    cr_assert_eq(po.rc, 0);
    cr_assert_eq(po.got, b, "the retried pop should take the stack now in the pool");
    weft__stack_top(po.got)[-1] = 1;
    weft__stack_put(&p, NULL, po.got);
    weft__stack_pool_deinit(&p);
    cr_expect_eq(atomic_load(&p.mapped), 0);
}

/* ---- guards when memory is locked --------------------------------------- */

/* Does the guard below this stack fault?  write(2) from it fails with
   EFAULT if so, with no signal. */
static bool guarded(weft__stack_pool *p, weft__stack *s)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    bool ok = write(fds[1], weft__stack_lo(p, s) - 1, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return ok;
}

/* The sanitizers' runtimes turn mlockall into a no-op: look at VmLck. */
static bool memory_locked(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "VmLck: %ld", &kib);
    if (f)
        fclose(f);
    return kib > 0;
}

static void locked_child(void *arg)
{
    (void)arg;
    weft__stack_pool p;
    weft__stack_pool_options o = {.size = 16384};
    if (weft__stack_pool_init(&p, &o) != 0)
        _exit(10);
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0 || !memory_locked())
        _exit(77);
    weft__stack *s[3];
    for (int i = 0; i < 3; i++) {
        if (weft__stack_get(&p, NULL, &s[i]) != 0)
            _exit(20 + i);
        if (!guarded(&p, s[i]))
            _exit(30 + i);
    }
    if (atomic_load(&p.guard_madvise))
        _exit(40);
    for (int i = 0; i < 3; i++)
        weft__stack_put(&p, NULL, s[i]);
    weft__stack_pool_deinit(&p);
    _exit(0);
}

Test(stack, guards_fall_back_to_mprotect_under_mlockall, .timeout = 60)
{
    if (!weft__stack_guard_madvise_supported())
        cr_skip_test("this kernel does not honour MADV_GUARD_INSTALL: nothing to fall back from");
    if (test_on_valgrind())
        cr_skip_test("valgrind does not lock memory");
    char err[2048];
    int status = test_run_child(locked_child, NULL, err, sizeof err);
    cr_assert(WIFEXITED(status), "status %#x, stderr: %s", status, err);
    if (WEXITSTATUS(status) == 77)
        cr_skip_test("mlockall is not permitted here, or does nothing (a sanitizer's runtime)");
    cr_assert_eq(WEXITSTATUS(status), 0, "exit status %d, stderr: %s", WEXITSTATUS(status), err);
    const char *say = "weft: MADV_GUARD_INSTALL failed";
    const char *first = strstr(err, say);
    cr_assert_not_null(first, "no word of the fallback on stderr: %s", err);
    cr_assert_null(strstr(first + 1, say), "said more than once: %s", err);
}

/* ---- four threads hammering one pool ------------------------------------ */

struct hammer {
    weft__stack_pool *pool;
    uintptr_t id;
    size_t rounds;
    size_t bad;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    weft__stack_cache cache = WEFT__STACK_CACHE_INIT;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (h->id + 1);
    weft__stack *held[8];
    for (size_t r = 0; r < h->rounds; r++) {
        /* Half the rounds bypass the cache, to hammer the shared pool. */
        weft__stack_cache *c = (r & 1) ? &cache : NULL;
        unsigned k = 1 + (unsigned)(xorshift(&rng) % 8);
        for (unsigned i = 0; i < k; i++) {
            if (weft__stack_get(h->pool, c, &held[i]) != 0) {
                h->bad++;
                k = i;
                break;
            }
            /* Stamp the stack with who owns it, now. */
            uint64_t *mark = (uint64_t *)(weft__stack_top(held[i]) - 64);
            mark[0] = h->id;
            mark[1] = r;
        }
        for (unsigned i = 0; i < k; i++) {
            uint64_t *mark = (uint64_t *)(weft__stack_top(held[i]) - 64);
            if (mark[0] != h->id || mark[1] != r)
                h->bad++; /* someone else was handed this stack too */
        }
        for (unsigned i = 0; i < k; i++)
            weft__stack_put(h->pool, c, held[i]);
    }
    weft__stack_cache_drain(h->pool, &cache);
    return NULL;
}

Test(stack, pool_never_hands_one_stack_to_two_owners, .timeout = 120)
{
    weft__stack_pool p;
    weft__stack_pool_options o = {.size = 16384, .shared_max = 64};
    cr_assert_eq(weft__stack_pool_init(&p, &o), 0);
    enum { T = 4 };
    pthread_t th[T];
    struct hammer h[T];
    for (int i = 0; i < T; i++) {
        h[i] = (struct hammer){&p, (uintptr_t)i + 1, test_scaled(200000), 0};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(h[i].bad, 0, "thread %d saw %zu stacks owned twice", i, h[i].bad);
    }
    cr_expect_eq(atomic_load(&p.live), 0);
    cr_expect_eq(weft__stack_pool_shared_count(&p), atomic_load(&p.mapped));
    weft__stack_pool_deinit(&p);
    cr_expect_eq(atomic_load(&p.mapped), 0);
}
