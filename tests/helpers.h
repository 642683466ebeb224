// SPDX-License-Identifier: MIT
/* Shared by the tests: scaling for slow runners, and running code in a
   child process whose death and stderr are the behaviour under test. */
#ifndef WEFT_TESTS_HELPERS_H
#define WEFT_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
static inline int test_on_valgrind(void)
{
    return (int)RUNNING_ON_VALGRIND;
}
#else
static inline int test_on_valgrind(void)
{
    return 0;
}
#endif

/* WEFT_TEST_SCALE=N divides the big loop counts by N: valgrind and
   qemu-user run the same tests, with less repetition. */
static inline size_t test_scaled(size_t n)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    long d = s ? strtol(s, NULL, 10) : 1;
    if (d < 1)
        d = 1;
    size_t r = n / (size_t)d;
    return r ? r : 1;
}

/* Skips a test that starts threads in a forked child where that cannot
   work: under qemu-user (QEMU_LD_PREFIX, set by scripts/test-aarch64.sh),
   whose emulated CPUs do not survive a fork followed by new threads. */
#define SKIP_THREADS_AFTER_FORK_UNDER_QEMU()                                                       \
    do {                                                                                           \
        if (getenv("QEMU_LD_PREFIX"))                                                              \
            cr_skip_test("qemu-user cannot start threads in a forked child");                      \
    } while (0)

/* Runs fn(arg) in a forked child with stderr captured into out (NUL-
   terminated).  With until, stops reading once a line containing it has
   arrived and kills the child (for a child that would never exit).
   Returns the child's wait status. */
static inline int test_run_child_until(void (*fn)(void *), void *arg, char *out, size_t outlen,
                                       const char *until)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    out[0] = 0;
    while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0) {
        n += (size_t)r;
        out[n] = 0;
        const char *hit = until ? strstr(out, until) : NULL;
        if (hit && strchr(hit, '\n')) {
            kill(pid, SIGKILL);
            break;
        }
    }
    out[n] = 0;
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static inline int test_run_child(void (*fn)(void *), void *arg, char *out, size_t outlen)
{
    return test_run_child_until(fn, arg, out, outlen, NULL);
}

#endif
