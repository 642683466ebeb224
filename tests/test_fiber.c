// SPDX-License-Identifier: MIT
/* Fibers (src/fiber/fiber.c, overflow.c): switching with bookkeeping, many
   fibers at once, deep recursion, and overflow reports. */
#include "fiber/fiber.h"
#include "helpers.h"

#include <stdint.h>
#include <stdio.h>

struct env {
    weft__stack_pool pool;
    weft__stack_cache cache;
    weft__fiber main;
};

static void env_init(struct env *e, enum weft__guard_mode mode, size_t size)
{
    weft__stack_pool_options o = {.guard_mode = mode, .size = size};
    cr_assert_eq(weft__stack_pool_init(&e->pool, &o), 0);
    e->cache = (weft__stack_cache)WEFT__STACK_CACHE_INIT;
    weft__fiber_init_thread(&e->main);
}

static void env_fini(struct env *e)
{
    weft__stack_cache_drain(&e->pool, &e->cache);
    weft__stack_pool_deinit(&e->pool);
    weft__fiber_fini_thread(&e->main);
}

/* ---- switching ---------------------------------------------------------- */

struct pingpong {
    weft__fiber *main;
    uint64_t count;
};

static void pingpong_entry(weft__fiber *self, void *msg)
{
    struct pingpong *pp = msg;
    for (;;) {
        pp->count++;
        void *m = weft__fiber_switch(self, pp->main, pp);
        if (m == NULL)
            break;
    }
    weft__fiber_exit(self, pp->main, NULL);
}

Test(fiber, switch_carries_messages_and_current_follows, .timeout = 60)
{
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    cr_assert_eq(weft__fiber_current(), &e.main);
    weft__fiber *f;
    cr_assert_eq(weft__fiber_create(&f, &e.pool, &e.cache, 0, pingpong_entry), 0);
    cr_assert_neq(f->id, e.main.id);
    struct pingpong pp = {&e.main, 0};
    size_t rounds = test_scaled(1000000);
    for (size_t i = 0; i < rounds; i++) {
        void *m = weft__fiber_switch(&e.main, f, &pp);
        cr_assert_eq(m, &pp);
    }
    cr_assert_eq(pp.count, rounds);
    cr_assert_eq(weft__fiber_current(), &e.main);
    cr_assert_null(weft__fiber_switch(&e.main, f, NULL)); /* it exits */
    weft__fiber_destroy(f, &e.pool, &e.cache);
    cr_assert_eq(weft__stack_in_use(&e.pool, &e.cache), 0);
    env_fini(&e);
}

static void extra_entry(weft__fiber *self, void *msg)
{
    weft__fiber *main = msg;
    /* The owner's bytes are below the header, aligned, and ours to use. */
    memset(self->extra, 0xab, 1000);
    weft__fiber_exit(self, main, self->extra);
}

Test(fiber, extra_bytes_sit_below_the_header)
{
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    weft__fiber *f;
    cr_assert_eq(weft__fiber_create(&f, &e.pool, &e.cache, 1000, extra_entry), 0);
    cr_assert_not_null(f->extra);
    cr_assert_eq((uintptr_t)f->extra % 16, 0);
    cr_assert((char *)f->extra + 1000 <= (char *)f);
    unsigned char *x = weft__fiber_switch(&e.main, f, &e.main);
    cr_assert_eq(x, f->extra);
    cr_assert_eq(x[999], 0xab);
    weft__fiber_destroy(f, &e.pool, &e.cache);
    cr_assert_eq(weft__fiber_create(&f, &e.pool, &e.cache, 1 << 30, extra_entry), -EINVAL);
    env_fini(&e);
}

/* ---- 100,000 fibers alive ----------------------------------------------- */

static void parked_entry(weft__fiber *self, void *msg)
{
    weft__fiber *main = msg;
    uint64_t id = self->id;
    /* Park holding a value on our own stack; it must still be there. */
    void *back = weft__fiber_switch(self, main, &id);
    weft__fiber_exit(self, back, (void *)(uintptr_t)(id == self->id));
}

Test(fiber, hundred_thousand_fibers_alive_at_once, .timeout = 300)
{
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    size_t n = test_scaled(100000);
    /* Without MADV_GUARD_INSTALL every stack costs two mappings, and
       vm.max_map_count (65530 by default) caps the count. */
    if (!e.pool.guard_madvise && n > 25000)
        n = 25000;
    weft__fiber **fs = calloc(n, sizeof *fs);
    cr_assert_not_null(fs);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(weft__fiber_create(&fs[i], &e.pool, &e.cache, 0, parked_entry), 0, "fiber %zu",
                     i);
        uint64_t *id = weft__fiber_switch(&e.main, fs[i], &e.main);
        cr_assert_eq(*id, fs[i]->id);
    }
    cr_assert_eq(weft__stack_in_use(&e.pool, &e.cache), (long)n);
    for (size_t i = 0; i < n; i++) {
        uintptr_t ok = (uintptr_t)weft__fiber_switch(&e.main, fs[i], &e.main);
        cr_assert_eq(ok, 1, "fiber %zu lost its stack contents", i);
        weft__fiber_destroy(fs[i], &e.pool, &e.cache);
    }
    cr_assert_eq(weft__stack_in_use(&e.pool, &e.cache), 0);
    free(fs);
    env_fini(&e);
}

/* ---- recursion ---------------------------------------------------------- */

struct deep {
    weft__fiber *main;
    size_t depth;
    uint64_t sum;
    size_t lowest_margin;
};

/* Recurse until fewer than `margin` bytes of stack remain. */
__attribute__((noinline)) static uint64_t recurse(weft__fiber *self, struct deep *d, size_t level)
{
    volatile char frame[512];
    frame[0] = (char)level;
    frame[511] = (char)level;
    size_t left = (size_t)((char *)__builtin_frame_address(0) - self->stack_lo);
    if (left < 24 * 1024) {
        d->depth = level;
        d->lowest_margin = left;
        return level;
    }
    uint64_t r = recurse(self, d, level + 1) + level;
    return r + (uint64_t)(frame[0] != (char)level) + (uint64_t)(frame[511] != (char)level);
}

static void deep_entry(weft__fiber *self, void *msg)
{
    struct deep *d = msg;
    d->sum = recurse(self, d, 1);
    weft__fiber_exit(self, d->main, d);
}

static void recursion_near_stack_size(enum weft__guard_mode mode)
{
    struct env e;
    env_init(&e, mode, 0);
    weft__fiber *f;
    cr_assert_eq(weft__fiber_create(&f, &e.pool, &e.cache, 0, deep_entry), 0);
    struct deep d = {.main = &e.main};
    weft__fiber_switch(&e.main, f, &d);
    size_t n = d.depth;
    cr_assert_gt(n, 10);
    cr_assert_eq(d.sum, (uint64_t)n * (n + 1) / 2, "a frame was corrupted");
    cr_assert_lt(d.lowest_margin, 24 * 1024);
    cr_log_info("recursed %zu frames, to %zu bytes from the bottom of %zu", n, d.lowest_margin,
                f->stack_size);
    weft__fiber_destroy(f, &e.pool, &e.cache);
    env_fini(&e);
}

Test(fiber, recursion_to_near_stack_size, .timeout = 60)
{
    recursion_near_stack_size(WEFT__GUARD_AUTO);
}

Test(fiber, recursion_to_near_stack_size_mprotect_guard, .timeout = 60)
{
    recursion_near_stack_size(WEFT__GUARD_MPROTECT);
}

/* ---- overflow ----------------------------------------------------------- */

__attribute__((noinline)) static uint64_t bottomless(uint64_t n)
{
    volatile char frame[256];
    frame[0] = (char)n;
    if (n == UINT64_MAX) /* never: keeps the compiler from calling it infinite */
        return 0;
    return bottomless(n + 1) + (uint64_t)frame[0];
}

static void overflow_entry(weft__fiber *self, void *msg)
{
    (void)bottomless(0);
    weft__fiber_exit(self, msg, NULL);
}

struct overflow_case {
    enum weft__guard_mode mode;
    uint64_t id;
};

static void overflow_child(void *arg)
{
    struct overflow_case *oc = arg;
    struct env e;
    env_init(&e, oc->mode, 64 * 1024);
    weft__fiber *f;
    if (weft__fiber_create(&f, &e.pool, &e.cache, 0, overflow_entry) != 0)
        _exit(3);
    f->name = "bottomless";
    char line[128];
    snprintf(line, sizeof line, "fiber %llu (bottomless), stack [%p, %p)\n",
             (unsigned long long)f->id, (void *)f->stack_lo, (void *)(f->stack_lo + f->stack_size));
    /* Tell the parent what the report must name, on stdout. */
    fputs(line, stdout);
    fflush(stdout);
    weft__fiber_switch(&e.main, f, &e.main);
    _exit(0);
}

static void expect_overflow_report(enum weft__guard_mode mode)
{
    struct overflow_case oc = {mode, 0};
    char err[2048];
    /* The child writes its expectation to stdout: capture both streams. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(STDOUT_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[1]);
    int status = test_run_child(overflow_child, &oc, err, sizeof err);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char want[256] = {0};
    ssize_t r = read(fds[0], want, sizeof want - 1);
    close(fds[0]);
    cr_assert_gt(r, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x, stderr: %s", status,
              err);
    cr_assert(strstr(err, "weft: fiber stack overflow") != NULL, "stderr: %s", err);
    /* "fiber N (bottomless), stack [lo, hi)": the fiber and its range. */
    char *nl = strchr(want, '\n');
    if (nl)
        *nl = 0;
    cr_assert(strstr(err, want) != NULL, "report should contain \"%s\"; stderr: %s", want, err);
}

Test(fiber, overflow_is_reported_with_fiber_and_range, .timeout = 60)
{
    if (test_on_valgrind())
        cr_skip_test("valgrind reports the overflow itself");
    expect_overflow_report(WEFT__GUARD_AUTO);
}

Test(fiber, overflow_is_reported_with_mprotect_guard, .timeout = 60)
{
    if (test_on_valgrind())
        cr_skip_test("valgrind reports the overflow itself");
    expect_overflow_report(WEFT__GUARD_MPROTECT);
}

/* A fault that is not a stack overflow is not ours to report. */
static void wild_write_child(void *arg)
{
    (void)arg;
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    static volatile uintptr_t where = 16;
    *(volatile int *)where = 1;
    _exit(0);
}

Test(fiber, other_faults_keep_their_default_action, .timeout = 60)
{
    char err[1024];
    int status = test_run_child(wild_write_child, NULL, err, sizeof err);
    /* Killed by the signal, or (under ASan, whose handler is chained)
       exited with an error report. */
    cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0), "status %#x",
              status);
    cr_assert(strstr(err, "weft: fiber stack overflow") == NULL, "stderr: %s", err);
}

/* ---- chaining to the handlers installed before weft --------------------- */

/* ASan and TSan install SIGSEGV handlers of their own, which weft chains
   to: they report and exit or abort. */
static bool under_sanitizer(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return false;
}

/* A signal someone sent is delivered, not swallowed. */
static void raise_child(void *arg)
{
    (void)arg;
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    raise(SIGSEGV);
    _exit(0);
}

Test(fiber, a_sent_sigsegv_is_not_swallowed, .timeout = 60)
{
    static char err[65536];
    int status = test_run_child(raise_child, NULL, err, sizeof err);
    if (under_sanitizer())
        cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "status %#x", status);
    else
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x, stderr: %s",
                  status, err);
}

/* SIGSEGV was ignored before weft: a sent one stays ignored, and weft's
   handler stays in place for the overflow that follows. */
static void ignored_then_overflow_child(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_IGN);
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 64 * 1024);
    raise(SIGSEGV);
    weft__fiber *f;
    if (weft__fiber_create(&f, &e.pool, &e.cache, 0, overflow_entry) != 0)
        _exit(3);
    weft__fiber_switch(&e.main, f, &e.main);
    _exit(0);
}

Test(fiber, overflow_is_reported_after_an_ignored_sent_sigsegv, .timeout = 60)
{
    if (test_on_valgrind())
        cr_skip_test("valgrind reports the overflow itself");
    char err[2048];
    int status = test_run_child(ignored_then_overflow_child, NULL, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x, stderr: %s", status,
              err);
    cr_assert(strstr(err, "weft: fiber stack overflow") != NULL, "stderr: %s", err);
}

/* A crash reporter installed with SA_RESETHAND runs once; the fault then
   ends the process with the default action. */
static volatile sig_atomic_t reporter_runs;

static void reporter(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    static const char msg[] = "reporter ran\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    if (++reporter_runs > 1)
        _exit(42); /* looping: the reset was not honoured */
}

static void resethand_child(void *arg)
{
    (void)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = reporter;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    static volatile uintptr_t where = 16;
    *(volatile int *)where = 1;
    _exit(0);
}

Test(fiber, an_old_sa_resethand_handler_runs_once, .timeout = 60)
{
    char err[2048];
    int status = test_run_child(resethand_child, NULL, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x, stderr: %s", status,
              err);
    const char *first = strstr(err, "reporter ran");
    cr_assert_not_null(first, "stderr: %s", err);
    cr_assert_null(strstr(first + 1, "reporter ran"), "stderr: %s", err);
}

/* The old handler runs with its own sa_mask blocked, and with the signal
   itself blocked unless it asked for SA_NODEFER. */
static volatile sig_atomic_t seen_usr1_blocked, seen_segv_blocked;

static void mask_probe(int sig)
{
    (void)sig;
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    seen_usr1_blocked = sigismember(&now, SIGUSR1);
    seen_segv_blocked = sigismember(&now, SIGSEGV);
}

static void mask_child(void *arg)
{
    int flags = *(int *)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mask_probe;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaction(SIGSEGV, &sa, NULL);
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    seen_usr1_blocked = seen_segv_blocked = -1;
    raise(SIGSEGV);
    _exit(16 + seen_usr1_blocked * 2 + seen_segv_blocked);
}

Test(fiber, an_old_handler_runs_with_its_mask_and_flags, .timeout = 60)
{
    char err[1024];
    int flags = 0;
    int status = test_run_child(mask_child, &flags, err, sizeof err);
    cr_assert(WIFEXITED(status), "status %#x, stderr: %s", status, err);
    cr_expect_eq(WEXITSTATUS(status), 16 + 2 + 1, "without flags: SIGUSR1 blocked %d, SIGSEGV %d",
                 (WEXITSTATUS(status) - 16) / 2, (WEXITSTATUS(status) - 16) % 2);
    flags = SA_NODEFER;
    status = test_run_child(mask_child, &flags, err, sizeof err);
    cr_assert(WIFEXITED(status), "status %#x, stderr: %s", status, err);
    cr_expect_eq(WEXITSTATUS(status), 16 + 2 + 0, "SA_NODEFER: SIGUSR1 blocked %d, SIGSEGV %d",
                 (WEXITSTATUS(status) - 16) / 2, (WEXITSTATUS(status) - 16) % 2);
}

/* ---- a frame larger than the guard -------------------------------------- */

/* Task B sleeps with ~100 KiB of live frames; task A, whose stack sits
   right above B's, gets 8 KiB from its stack bottom and calls a function
   with a 96 KiB local array.  The array's low end lies past A's guard, on
   B's live frames, and the function writes only there.  Built with
   -fstack-clash-protection (which weft's build passes to the code that
   links it), the function touches its frame page by page from the top,
   faults in A's guard, and the overflow is reported; without it, A
   finishes and B's frames are garbage. */
struct clash {
    weft__fiber *main;
    uint64_t sum;
};

__attribute__((noinline)) static uint64_t live_frames(weft__fiber *self, struct clash *c,
                                                      unsigned level)
{
    volatile uint64_t frame[128]; /* 1 KiB */
    for (unsigned i = 0; i < 128; i++)
        frame[i] = level * 1000u + i;
    uint64_t r;
    if (level == 100)
        r = (uintptr_t)weft__fiber_switch(self, c->main, NULL); /* sleep here */
    else
        r = live_frames(self, c, level + 1);
    for (unsigned i = 0; i < 128; i++)
        r += frame[i] != level * 1000u + i;
    return r;
}

/* Uses only the low end of its array, as code with a large buffer often
   does (a string formatted into it): nothing walks through the guard.  The
   empty asm statements make the array real memory the compiler must keep. */
__attribute__((noinline)) static char big_frame(void)
{
    char buf[96 * 1024];
    __asm__ volatile("" : : "r"(buf) : "memory");
    memset(buf, 0x5a, 4096);
    __asm__ volatile("" : : "r"(buf) : "memory");
    return buf[100];
}

__attribute__((noinline)) static char descend(weft__fiber *self, size_t keep_above)
{
    volatile char frame[256];
    frame[0] = 1;
    if ((size_t)((char *)__builtin_frame_address(0) - self->stack_lo) > keep_above)
        return descend(self, keep_above) + frame[0];
    return big_frame() + frame[0];
}

/* The first switch into a fiber says which of the two it is. */
struct clash_role {
    struct clash *c;
    bool sleeper;
};

static void clash_entry(weft__fiber *self, void *msg)
{
    struct clash_role *r = msg;
    struct clash *c = r->c;
    if (r->sleeper)
        c->sum = live_frames(self, c, 1);
    else
        (void)descend(self, 8 * 1024);
    weft__fiber_exit(self, c->main, NULL);
}

static void clash_child(void *arg)
{
    (void)arg;
    struct env e;
    env_init(&e, WEFT__GUARD_AUTO, 0);
    /* Stacks mapped one after another usually lie next to each other
       (below each other with the kernel's allocator, above under
       qemu-user's): take the first pair where one sits right below the
       other's guard. */
    enum { N = 16 };
    weft__fiber *f[N], *a = NULL, *b = NULL;
    for (int i = 0; i < N && !a; i++) {
        if (weft__fiber_create(&f[i], &e.pool, &e.cache, 0, clash_entry) != 0)
            _exit(3);
        for (int j = 0; j < i && !a; j++) {
            weft__fiber *x = f[i], *y = f[j];
            for (int k = 0; k < 2 && !a; k++) {
                if ((char *)y + sizeof(weft__fiber) + sizeof(weft__stack) == x->stack_lo - x->guard)
                    a = x, b = y; /* y right below x */
                weft__fiber *t = x;
                x = y, y = t;
            }
        }
    }
    if (!a)
        _exit(77);
    struct clash c = {&e.main, 0};
    struct clash_role as_sleeper = {&c, true}, as_clasher = {&c, false};
    weft__fiber_switch(&e.main, b, &as_sleeper); /* b sleeps 100 KiB deep */
    weft__fiber_switch(&e.main, a, &as_clasher); /* a overflows */
    weft__fiber_switch(&e.main, b, &c);          /* b wakes and checks its frames */
    _exit(c.sum == 0 ? 10 : 11);
}

Test(fiber, a_frame_that_skips_the_guard_is_reported, .timeout = 60)
{
    if (test_on_valgrind())
        cr_skip_test("valgrind reports the overflow itself");
    char err[2048];
    int status = test_run_child(clash_child, NULL, err, sizeof err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        cr_skip_test("the two stacks were not mapped next to each other");
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "status %#x (exit 10: the overflow went unnoticed; 11: it corrupted the other "
              "task's frames), stderr: %s",
              status, err);
    cr_assert(strstr(err, "weft: fiber stack overflow") != NULL, "stderr: %s", err);
}
