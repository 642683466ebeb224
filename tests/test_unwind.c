// SPDX-License-Identifier: MIT
/* The assembly's CFI: a debugger stopped inside a fiber unwinds through the
   fiber's frames to its entry and stops cleanly at the context's start. */
#include "helpers.h"

#include <weft/weft.h>

#include <stdio.h>

#ifndef WEFT_UNWIND_PROBE
#error "WEFT_UNWIND_PROBE must name the probe executable"
#endif

static void run_gdb(void *arg)
{
    (void)arg;
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execlp("gdb", "gdb", "-nx", "-batch", "-ex", "break probe_here", "-ex", "run", "-ex", "bt",
           "-ex", "kill", WEFT_UNWIND_PROBE, (char *)NULL);
    _exit(127);
}

Test(unwind, gdb_backtrace_from_a_fiber_stops_at_context_start, .timeout = 120)
{
#if !defined(__x86_64__)
    cr_skip_test("checked with the host's gdb on x86_64 only (qemu-user has no ptrace)");
#endif
    if (strcmp(weft_context_impl(), "boost") == 0)
        cr_skip_test("Boost.Context's make_fcontext (1.74) carries no CFI that ends a "
                     "backtrace; weft's assembly does");
    if (test_on_valgrind())
        cr_skip_test("gdb does not run under valgrind");
    if (system("gdb --version >/dev/null 2>&1") != 0)
        cr_skip_test("gdb is not installed");
    static char out[16384];
    int status = test_run_child(run_gdb, NULL, out, sizeof out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gdb failed: %s", out);
    const char *bt = strstr(out, "#0 ");
    cr_assert_not_null(bt, "no backtrace in: %s", out);
    const char *want[] = {"probe_here", "fiber_level3", "fiber_level2", "fiber_level1",
                          /* gdb may print the local symbol weft__context_start as
                             "weft.context_start" */
                          "context_start"};
    const char *at = bt;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *p = strstr(at, want[i]);
        cr_assert_not_null(p, "frame %s missing or out of order in:\n%s", want[i], bt);
        at = p;
    }
    /* The fiber's outermost frame is the last: no frames from the thread
       that switched to it, and no complaint from the unwinder. */
    cr_assert_null(strstr(at, "\n#"), "unwinding ran past the fiber:\n%s", bt);
    cr_assert_null(strstr(bt, "Backtrace stopped"), "%s", bt);
    cr_assert_null(strstr(bt, "corrupt"), "%s", bt);
}

/* Stopped inside the first jump into a fresh context, after the stack
   pointer has moved: the frame above weft__context_jump is the new
   context's start, whose unwind entry must cover the return address the
   frame holds (gdb looks it up at that address minus one). */
static char gdb_script[64];

static void run_gdb_script(void *arg)
{
    (void)arg;
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execlp("gdb", "gdb", "-nx", "-batch", "-x", gdb_script, WEFT_UNWIND_PROBE, (char *)NULL);
    _exit(127);
}

Test(unwind, gdb_backtrace_inside_the_first_jump_into_a_fresh_context, .timeout = 120)
{
#if !defined(__x86_64__)
    cr_skip_test("checked with the host's gdb on x86_64 only (qemu-user has no ptrace)");
#endif
    if (strcmp(weft_context_impl(), "boost") == 0)
        cr_skip_test("weft's assembly only");
    if (test_on_valgrind())
        cr_skip_test("gdb does not run under valgrind");
    if (system("gdb --version >/dev/null 2>&1") != 0)
        cr_skip_test("gdb is not installed");
    strcpy(gdb_script, "/tmp/weft-unwind-XXXXXX");
    int fd = mkstemp(gdb_script);
    cr_assert_geq(fd, 0);
    /* The probe's first jump is the one into its fresh fiber: step until
       the stack pointer is the new context's. */
    static const char script[] = "set pagination off\n"
                                 "break weft__context_jump\n"
                                 "run\n"
                                 "set $to = $rdi\n"
                                 "while $rsp != $to\n"
                                 "  stepi\n"
                                 "end\n"
                                 "bt\n"
                                 "kill\n";
    cr_assert_eq(write(fd, script, sizeof script - 1), (ssize_t)(sizeof script - 1));
    close(fd);
    static char out[16384];
    int status = test_run_child(run_gdb_script, NULL, out, sizeof out);
    unlink(gdb_script);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gdb failed: %s", out);
    const char *bt = strstr(out, "#0 ");
    cr_assert_not_null(bt, "no backtrace in: %s", out);
    cr_assert_not_null(strstr(bt, "context_jump"), "%s", bt);
    const char *start = strstr(bt, "#1 ");
    cr_assert_not_null(start, "no caller frame:\n%s", bt);
    cr_assert_not_null(strstr(start, "context_start"), "the caller should be the start:\n%s", bt);
    cr_assert_null(strstr(bt, "??"), "%s", bt);
    cr_assert_null(strstr(start, "\n#"), "unwinding ran past the fresh context:\n%s", bt);
    cr_assert_null(strstr(bt, "Backtrace stopped"), "%s", bt);
}
