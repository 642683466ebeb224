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
#define NREGS 20
/* x19-x28 x29 d8-d15 FPCR; FPCR holds a different rounding mode on each
   side (RMode, bits 22-23: towards minus infinity, towards plus infinity). */
#define R(n)  (0x0101010101010101ull * (n))
static const uint64_t regs_main[NREGS] = {R(1),  R(2),  R(3),  R(4),  R(5),  R(6),    R(7),
                                          R(8),  R(9),  R(10), R(11), R(12), R(13),   R(14),
                                          R(15), R(16), R(17), R(18), R(19), 0x800000};
static const uint64_t regs_fiber[NREGS] = {
    R(0x21), R(0x22), R(0x23), R(0x24), R(0x25), R(0x26), R(0x27), R(0x28), R(0x29), R(0x2a),
    R(0x2b), R(0x2c), R(0x2d), R(0x2e), R(0x2f), R(0x30), R(0x31), R(0x32), R(0x33), 0x400000};
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

/* ---- MXCSR: control bits travel, status flags stay with the thread ------ */

#if defined(__x86_64__)
#include <xmmintrin.h>

#define MXCSR_FLAGS 0x3fu
#define MXCSR_PE    0x20u /* precision (inexact) flag */

static unsigned fiber_mxcsr;

/* Sets its own control bits (if asked), computes 1.0 / 3.0 (inexact: sets
   the precision flag), then jumps back and reports what it saw when
   resumed. */
static void mxcsr_entry(weft__transfer t)
{
    unsigned control = (unsigned)(uintptr_t)t.data;
    if (control)
        _mm_setcsr(control);
    volatile double third = 1.0;
    third = third / 3.0;
    (void)third;
    t = weft__context_jump(t.from, NULL);
    fiber_mxcsr = _mm_getcsr();
    weft__context_jump(t.from, NULL);
    abort();
}

static void mxcsr_case(unsigned main_control, unsigned fiber_control)
{
    if (strcmp(weft__context_impl, "boost") == 0)
        cr_skip_test("Boost.Context's jump_fcontext restores all of MXCSR, flags included");
    if (test_on_valgrind())
        cr_skip_test("valgrind does not model MXCSR's exception flags");
    unsigned saved = _mm_getcsr();
    char *stack = new_stack();
    _mm_setcsr(main_control); /* flags clear */
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, mxcsr_entry);
    c = weft__context_jump(c, (void *)(uintptr_t)fiber_control).from;
    unsigned back = _mm_getcsr();
    _mm_setcsr(main_control); /* clear the flags again on this side */
    weft__context_jump(c, NULL);
    _mm_setcsr(saved);
    munmap(stack, STACK_SIZE);

    cr_expect_eq(back & ~MXCSR_FLAGS, main_control, "control bits after the switch back: %#x",
                 back & ~MXCSR_FLAGS);
    cr_expect(back & MXCSR_PE,
              "the precision flag the other context raised should still be set (flags are "
              "status, never restored): MXCSR %#x",
              back);
    unsigned want = fiber_control ? fiber_control : main_control;
    cr_expect_eq(fiber_mxcsr & ~MXCSR_FLAGS, want, "the fiber's control bits: %#x",
                 fiber_mxcsr & ~MXCSR_FLAGS);
    cr_expect_eq(fiber_mxcsr & MXCSR_FLAGS, 0, "the flags this side cleared came back: %#x",
                 fiber_mxcsr);
}

/* Same control bits on both sides, only the flags differ: nothing to load. */
Test(context, mxcsr_flags_alone_do_not_travel)
{
    mxcsr_case(0x1f80, 0);
}

/* The control bits differ (rounding towards zero on one side): they are
   loaded, and the flags still stay with the thread. */
Test(context, mxcsr_control_bits_travel_and_flags_stay)
{
    mxcsr_case(0x1f80, 0x7f80);
}
#endif

/* ---- control-flow protection ------------------------------------------- */

static bool bytes_at(void (*fn)(void), const void *want, size_t n)
{
    const void *at = (const void *)(uintptr_t)fn;
    return memcmp(at, want, n) == 0;
}

Test(context, entry_points_are_branch_landing_pads)
{
    if (strcmp(weft__context_impl, "boost") == 0)
        cr_skip_test("weft's assembly only");
#if defined(__x86_64__)
    static const unsigned char endbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
    cr_expect(bytes_at((void (*)(void))weft__context_jump, endbr64, 4), "jump: no endbr64");
    cr_expect(bytes_at((void (*)(void))weft__context_make, endbr64, 4), "make: no endbr64");
    /* A fresh context resumes at a landing pad one byte into
       weft__context_start: its frame's return address, at 0x38. */
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, echo_entry);
    const unsigned char *resume = *(const unsigned char **)((char *)c + 0x38);
    cr_expect(memcmp(resume, endbr64, 4) == 0, "the resume point is no landing pad");
    cr_expect_eq(resume[-1], 0x90, "the resume point should follow a nop");
    munmap(stack, STACK_SIZE);
    /* The switch's indirect jump is notrack: its target is a return
       address, with no endbr64. */
    static const unsigned char notrack_jmp_r8[] = {0x3e, 0x41, 0xff, 0xe0};
    const unsigned char *code = (const unsigned char *)(uintptr_t)weft__context_jump;
    bool found = false;
    for (int i = 0; i < 256 && !found; i++)
        found = memcmp(code + i, notrack_jmp_r8, 4) == 0;
    cr_expect(found, "no notrack jmp *%%r8 in weft__context_jump");
#elif defined(__aarch64__)
    static const uint32_t bti_c = 0xd503245f, nop = 0xd503201f;
    cr_expect(bytes_at((void (*)(void))weft__context_jump, &bti_c, 4), "jump: no bti c");
    cr_expect(bytes_at((void (*)(void))weft__context_make, &bti_c, 4), "make: no bti c");
    char *stack = new_stack();
    weft__context c = weft__context_make(stack + STACK_SIZE, STACK_SIZE, echo_entry);
    const uint32_t *resume = *(const uint32_t **)((char *)c + 0xa0);
    cr_expect_eq(resume[-1], nop, "the resume point should follow a nop");
    munmap(stack, STACK_SIZE);
#endif
}

#ifndef WEFT_STATIC_LIBRARY
#error "WEFT_STATIC_LIBRARY must name libweft.a"
#endif

/* Every object in libweft.a carries the property note for indirect-branch
   protection (IBT on x86_64, BTI and PAC on aarch64), so linking weft does
   not turn it off; and none claims shadow-stack compatibility, which the
   switch does not have (docs/context.md). */
static void run_readelf(void *arg)
{
    (void)arg;
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execlp("readelf", "readelf", "--notes", WEFT_STATIC_LIBRARY, (char *)NULL);
    _exit(127);
}

Test(context, every_object_of_the_library_is_marked_for_branch_protection, .timeout = 60)
{
    if (system("readelf --version >/dev/null 2>&1") != 0)
        cr_skip_test("readelf is not installed");
    static char out[1 << 16];
    int status = test_run_child(run_readelf, NULL, out, sizeof out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "readelf failed: %s", out);
#if defined(__x86_64__)
    const char *want = "Properties: x86 feature: IBT\n";
#else
    const char *want = "Properties: AArch64 feature: BTI, PAC\n";
#endif
    int objects = 0;
    for (const char *f = strstr(out, "\nFile: "); f; f = strstr(f + 1, "\nFile: ")) {
        const char *next = strstr(f + 1, "\nFile: ");
        const char *name_end = strchr(f + 1, '\n');
        int name_len = (int)(name_end - f - 7);
        const char *p = strstr(f, want);
        cr_expect(p && (!next || p < next), "%.*s: no \"%.*s\"", name_len, f + 7,
                  (int)strlen(want) - 1, want);
        objects++;
    }
    cr_assert_gt(objects, 3, "readelf listed %d objects: %s", objects, out);
    cr_expect_null(strstr(out, "SHSTK"), "an object claims shadow-stack compatibility");
}
