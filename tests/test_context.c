// SPDX-License-Identifier: MIT
/* The context switch (src/asm): what weft__context_jump and
   weft__context_make promise, tested directly on raw stacks. */
#include "asm/context.h"
#include "helpers.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#define STACK_SIZE (64 * 1024)

static char *new_stack(void)
{
    char *s = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(s, MAP_FAILED);
    return s;
}

/* ---- registers ---------------------------------------------------------- */

#if defined(__x86_64__)
#define NREGS 8
/* rbx rbp r12 r13 r14 r15 MXCSR x87-CW; the control words hold non-default
   rounding modes, different on each side (valgrind emulates the x87
   rounding bits but not the precision bits, so only rounding differs). */
static const uint64_t regs_main[NREGS] = {0x1111111111111111,
                                          0x2222222222222222,
                                          0x3333333333333333,
                                          0x4444444444444444,
                                          0x5555555555555555,
                                          0x6666666666666666,
                                          0x3f80,
                                          0x077f};
static const uint64_t regs_fiber[NREGS] = {0xa1a1a1a1a1a1a1a1,
                                           0xb2b2b2b2b2b2b2b2,
                                           0xc3c3c3c3c3c3c3c3,
                                           0xd4d4d4d4d4d4d4d4,
                                           0xe5e5e5e5e5e5e5e5,
                                           0xf6f6f6f6f6f6f6f6,
                                           0x7f80,
                                           0x0f7f};
#elif defined(__aarch64__)
#define NREGS 19
/* x19-x28 x29 d8-d15 */
#define R(n)  (0x0101010101010101ull * (n))
static const uint64_t regs_main[NREGS] = {R(1),  R(2),  R(3),  R(4),  R(5),  R(6),  R(7),
                                          R(8),  R(9),  R(10), R(11), R(12), R(13), R(14),
                                          R(15), R(16), R(17), R(18), R(19)};
static const uint64_t regs_fiber[NREGS] = {
    R(0x21), R(0x22), R(0x23), R(0x24), R(0x25), R(0x26), R(0x27), R(0x28), R(0x29), R(0x2a),
    R(0x2b), R(0x2c), R(0x2d), R(0x2e), R(0x2f), R(0x30), R(0x31), R(0x32), R(0x33)};
#endif

weft__transfer weft_test_jump_regs(weft__context to, void *data, const uint64_t *in, uint64_t *out);

static uint64_t fiber_out[NREGS];
static int fiber_checked;

static void regs_entry(weft__transfer t)
{
    /* Suspend with our registers set; main runs (with its own values), and
       when it jumps back ours must be exactly as we left them. */
    t = weft_test_jump_regs(t.from, NULL, regs_fiber, fiber_out);
    fiber_checked = memcmp(fiber_out, regs_fiber, sizeof fiber_out) == 0 ? 1 : -1;
    weft__context_jump(t.from, NULL);
    abort();
}

Test(context, callee_saved_registers_and_fp_control_survive_both_ways)
{
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, regs_entry);
    uint64_t out[NREGS];
    weft__transfer t = weft_test_jump_regs(c, NULL, regs_main, out);
    for (int i = 0; i < NREGS; i++)
        cr_expect_eq(out[i], regs_main[i], "main side, register %d: %#llx != %#llx", i,
                     (unsigned long long)out[i], (unsigned long long)regs_main[i]);
    /* Resume the fiber, again from inside the helper so that our side's
       registers hold other values while the fiber restores its own. */
    t = weft_test_jump_regs(t.from, NULL, regs_main, out);
    cr_expect_eq(fiber_checked, 1, "fiber side registers were not restored");
    for (int i = 0; i < NREGS; i++) {
        cr_expect_eq(out[i], regs_main[i]);
        cr_expect_eq(fiber_out[i], regs_fiber[i], "fiber side, register %d: %#llx != %#llx", i,
                     (unsigned long long)fiber_out[i], (unsigned long long)regs_fiber[i]);
    }
    munmap(stack, STACK_SIZE);
}

/* ---- alignment ---------------------------------------------------------- */

static uintptr_t entry_frame;
static char entry_text[64];

static void align_entry(weft__transfer t)
{
    entry_frame = (uintptr_t)__builtin_frame_address(0);
    /* glibc's printf of a double uses aligned SSE stores on x86_64: it
       crashes on a misaligned stack. */
    snprintf(entry_text, sizeof entry_text, "%.3f", (double)entry_frame / 3.0);
    weft__context_jump(t.from, NULL);
    abort();
}

Test(context, stack_is_16_byte_aligned_at_entry_for_any_top)
{
    char *stack = new_stack();
    for (int skew = 0; skew < 16; skew++) {
        char *top = stack + STACK_SIZE - skew;
        weft__context c = weft__context_make(top, STACK_SIZE - 64, align_entry);
        entry_frame = 1;
        weft__context_jump(c, NULL);
        cr_expect_eq(entry_frame % 16, 0, "skew %d: frame at %#lx", skew,
                     (unsigned long)entry_frame);
        cr_expect(entry_frame < (uintptr_t)top && entry_frame > (uintptr_t)top - 512);
        cr_expect_neq(entry_text[0], 0);
    }
    munmap(stack, STACK_SIZE);
}

/* ---- data, both ways ---------------------------------------------------- */

static void echo_entry(weft__transfer t)
{
    for (;;) {
        uintptr_t v = (uintptr_t)t.data;
        t = weft__context_jump(t.from, (void *)(v * 2 + 1));
    }
}

Test(context, data_passes_through_jump_both_ways)
{
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, echo_entry);
    weft__transfer t = weft__context_jump(c, (void *)(uintptr_t)20);
    cr_assert_eq((uintptr_t)t.data, 41);
    cr_assert_neq(t.from, NULL);
    t = weft__context_jump(t.from, (void *)(uintptr_t)0x7fffffff);
    cr_assert_eq((uintptr_t)t.data, (uintptr_t)0x7fffffff * 2 + 1);
    munmap(stack, STACK_SIZE);
}

/* ---- many switches ------------------------------------------------------ */

static void counter_entry(weft__transfer t)
{
    uint64_t n = 0;
    for (;;) {
        n++;
        t = weft__context_jump(t.from, (void *)(uintptr_t)n);
    }
}

Test(context, ten_million_ping_pong_switches, .timeout = 120)
{
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, counter_entry);
    size_t rounds = test_scaled(10000000);
    uint64_t got = 0;
    for (size_t i = 0; i < rounds; i++) {
        weft__transfer t = weft__context_jump(c, NULL);
        c = t.from;
        got = (uintptr_t)t.data;
        if (got != i + 1)
            break;
    }
    cr_assert_eq(got, rounds);
    munmap(stack, STACK_SIZE);
}

/* ---- returning from an entry -------------------------------------------- */

static void returning_entry(weft__transfer t)
{
    (void)t;
}

static void run_returning_entry(void *arg)
{
    (void)arg;
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, returning_entry);
    weft__context_jump(c, NULL);
}

Test(context, returning_from_entry_aborts_with_message, .timeout = 60)
{
    char err[1024];
    int status = test_run_child(run_returning_entry, NULL, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x, stderr: %s", status,
              err);
    cr_assert(strstr(err, "weft: a context's entry function returned") != NULL, "stderr: %s", err);
}
