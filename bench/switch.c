// SPDX-License-Identifier: MIT
/*
 * Context switch cost: weft's assembly against Boost.Context's fcontext and
 * glibc's swapcontext, in one run.  Two contexts ping-pong; one jump is one
 * switch.  Each row is the median of BENCH_REPS runs of N switches.
 *
 * The Boost row calls libboost_context's jump_fcontext directly, whatever
 * WEFT_CONTEXT this tree was configured with.
 */
#include "asm/context.h"
#include "bench.h"
#include "fiber/fiber.h"

#include <fenv.h>
#include <sys/mman.h>
#include <ucontext.h>

#define STACK (64 * 1024)

static char *new_stack(void)
{
    char *s = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        abort();
    return s;
}

/* ---- weft asm ---- */
static void weft_entry(weft__transfer t)
{
    for (;;)
        t = weft__context_jump(t.from, t.data);
}

static double run_weft(long n)
{
    char *s = new_stack();
    weft__context c = weft__context_make(s + STACK, STACK, weft_entry);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n / 2; i++)
        c = weft__context_jump(c, NULL).from;
    int64_t t1 = bench_now_ns();
    munmap(s, STACK);
    return (double)(t1 - t0) / (double)(n / 2 * 2);
}

/* ---- weft asm, two contexts running the same loop ----
   Each side resumes the other from the same instruction, as two tasks
   that yield to each other do; weft__context_jump_ret's return is then
   the predicted one.  (In the row above, one side is main's loop and the
   other the entry's: there the indirect jump is the right ending.) */
static weft__context pair_main;
static long pair_left;

static void pair_entry(weft__transfer t)
{
    if (t.data) {
        /* The first side: from main, with the second side to start. */
        pair_main = t.from;
        t = weft__context_jump(t.data, NULL);
    }
    while (--pair_left > 0)
        t = weft__context_jump_ret(t.from, NULL);
    weft__context_jump(pair_main, NULL);
    abort();
}

static double run_weft_pair(long n)
{
    char *s1 = new_stack(), *s2 = new_stack();
    weft__context a = weft__context_make(s1 + STACK, STACK, pair_entry);
    weft__context b = weft__context_make(s2 + STACK, STACK, pair_entry);
    pair_left = n;
    int64_t t0 = bench_now_ns();
    weft__context_jump(a, b);
    int64_t t1 = bench_now_ns();
    munmap(s1, STACK);
    munmap(s2, STACK);
    return (double)(t1 - t0) / (double)n;
}

/* ---- weft asm, after an inexact floating-point operation ----
   1.0 / 3.0 sets MXCSR's sticky precision flag in one context and not in
   the other.  The flags are status, not control: a switch that treats them
   as part of the saved state reloads MXCSR on every jump. */
static void weft_fp_entry(weft__transfer t)
{
    volatile double third = 1.0;
    third = third / 3.0;
    (void)third;
    for (;;)
        t = weft__context_jump(t.from, t.data);
}

static double run_weft_fp(long n)
{
    char *s = new_stack();
    feclearexcept(FE_ALL_EXCEPT); /* this side's flags are clear */
    weft__context c = weft__context_make(s + STACK, STACK, weft_fp_entry);
    c = weft__context_jump(c, NULL).from;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n / 2; i++)
        c = weft__context_jump(c, NULL).from;
    int64_t t1 = bench_now_ns();
    munmap(s, STACK);
    return (double)(t1 - t0) / (double)(n / 2 * 2);
}

/* ---- weft fiber switch (with the fiber layer's bookkeeping) ---- */
static weft__fiber *bench_main;
static void fiber_entry(weft__fiber *self, void *msg)
{
    for (;;)
        msg = weft__fiber_switch(self, bench_main, msg);
}

static double run_weft_fiber(long n)
{
    weft__stack_pool pool;
    weft__stack_pool_init(&pool, NULL);
    weft__fiber main, *f;
    weft__fiber_init_thread(&main);
    bench_main = &main;
    if (weft__fiber_create(&f, &pool, NULL, 0, fiber_entry) != 0)
        abort();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n / 2; i++)
        weft__fiber_switch(&main, f, NULL);
    int64_t t1 = bench_now_ns();
    /* The fiber never exits: its stack is reclaimed with the process. */
    weft__fiber_fini_thread(&main);
    return (double)(t1 - t0) / (double)(n / 2 * 2);
}

/* ---- Boost.Context fcontext ---- */
#ifdef WEFT_BENCH_BOOST
#include "asm/boost_fcontext.h"

static void boost_entry(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, t.data);
}

static double run_boost(long n)
{
    char *s = new_stack();
    fcontext_t c = make_fcontext(s + STACK, STACK, boost_entry);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n / 2; i++)
        c = jump_fcontext(c, NULL).fctx;
    int64_t t1 = bench_now_ns();
    munmap(s, STACK);
    return (double)(t1 - t0) / (double)(n / 2 * 2);
}
#endif

/* ---- glibc swapcontext ---- */
static ucontext_t uc_main, uc_other;
static void uc_entry(void)
{
    for (;;)
        swapcontext(&uc_other, &uc_main);
}

static double run_ucontext(long n)
{
    char *s = new_stack();
    getcontext(&uc_other);
    uc_other.uc_stack.ss_sp = s;
    uc_other.uc_stack.ss_size = STACK;
    uc_other.uc_link = NULL;
    makecontext(&uc_other, uc_entry, 0);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n / 2; i++)
        swapcontext(&uc_main, &uc_other);
    int64_t t1 = bench_now_ns();
    munmap(s, STACK);
    return (double)(t1 - t0) / (double)(n / 2 * 2);
}

struct row {
    const char *name;
    double (*run)(long);
    long n;
    double median;
};

int main(void)
{
    long n = bench_scaled(20000000);
    struct row rows[] = {
        {"weft asm (weft__context_jump)", run_weft, n, 0},
        {"weft asm, both sides in one loop (weft__context_jump_ret)", run_weft_pair, n, 0},
        {"weft asm, one side after 1.0/3.0 (MXCSR flags differ)", run_weft_fp, n, 0},
        {"weft fiber switch (+ bookkeeping)", run_weft_fiber, n, 0},
#ifdef WEFT_BENCH_BOOST
        {"Boost.Context fcontext (jump_fcontext)", run_boost, n, 0},
#endif
        {"glibc swapcontext", run_ucontext, n / 20, 0},
    };
    int nrows = (int)(sizeof rows / sizeof rows[0]);
    /* Interleave the repetitions so a frequency change or a noisy
       neighbour hits every row alike. */
    double samples[sizeof rows / sizeof rows[0]][BENCH_REPS];
    for (int r = 0; r < BENCH_REPS; r++)
        for (int i = 0; i < nrows; i++)
            samples[i][r] = rows[i].run(rows[i].n);
    for (int i = 0; i < nrows; i++)
        rows[i].median = bench_median(samples[i], BENCH_REPS);

    printf("### Context switch (ns per switch, median of %d runs)\n\n", BENCH_REPS);
    printf("| implementation | switches per run | ns/switch | vs weft asm |\n");
    printf("|---|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++)
        printf("| %s | %ld | %.2f | %.2fx |\n", rows[i].name, rows[i].n / 2 * 2, rows[i].median,
               rows[i].median / rows[0].median);
#ifndef WEFT_BENCH_BOOST
    printf(
        "\n(Boost.Context row skipped: libboost-context-dev was not found at configure time.)\n");
#endif
    printf("\n");
    return 0;
}
