// SPDX-License-Identifier: MIT
/*
 * A program for tests/gdb/run.sh: a loop with tasks suspended in the
 * common places -- weft_sleep, weft_queue_get, weft_mutex_lock (the mutex
 * held by another task), weft_recv on a socketpair -- and one runnable,
 * then a call to weft_gdb_tasks_ready(), where the test stops it.
 * Afterwards it cancels everything and exits 0 -- or, given "abort",
 * aborts there, for a core written by the kernel.
 *
 * One worker: when the main task runs, every other task is suspended, so
 * a task that has said "about to wait" has parked by the time the main
 * task looks again.  No sleeping to synchronise.
 */
#define _GNU_SOURCE
#include <weft/weft.h>

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static weft_mutex lock = WEFT_MUTEX_INIT;
static weft_queue *jobs, *release;
static int fds[2];
static int waiting; /* tasks about to wait */

/* Where the test stops: every task but `late` is suspended in its wait,
   and late is runnable. */
__attribute__((noinline)) void weft_gdb_tasks_ready(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void about_to_wait(void)
{
    waiting++;
}

/* A use of the result after the call: a tail call would leave the task's
   own frame out of its backtrace. */
static void expect_canceled(const char *who, int rc)
{
    if (rc != -ECANCELED) {
        fprintf(stderr, "tasks: %s: %d, not -ECANCELED\n", who, rc);
        exit(1);
    }
}

static void sleeper(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_task_set_name("sleeper");
    about_to_wait();
    expect_canceled("sleeper", weft_sleep(io, 3600 * 1000000000LL));
}

static void consumer(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_task_set_name("consumer");
    int job;
    about_to_wait();
    weft_queue_get(io, jobs, &job);
}

static void holder(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_task_set_name("holder");
    weft_mutex_lock(io, &lock);
    int v;
    about_to_wait();
    weft_queue_get(io, release, &v);
    weft_mutex_unlock(io, &lock);
}

static void locker(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_task_set_name("locker");
    about_to_wait();
    if (weft_mutex_lock(io, &lock) == 0)
        weft_mutex_unlock(io, &lock);
}

static void reader(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    weft_task_set_name("reader");
    char buf[16];
    about_to_wait();
    weft_recv(io, fds[0], buf, sizeof buf, 0);
}

/* No name: shown as such. */
static void anonymous(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    about_to_wait();
    expect_canceled("anonymous", weft_sleep(io, 3600 * 1000000000LL));
}

static void late(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
    weft_task_set_name("late");
}

int main(int argc, char **argv)
{
    /* "abort": dies at the stopping point instead, for a kernel's core. */
    bool die = argc > 1 && strcmp(argv[1], "abort") == 0;
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 1};
    int rc = weft_event_loop_init(&el, &o);
    if (rc < 0) {
        fprintf(stderr, "tasks: weft_event_loop_init: %d\n", rc);
        return 77; /* no io_uring here */
    }
    weft_io io = weft_event_loop_io(el);
    if (weft_queue_create(&jobs, sizeof(int), 4) < 0 ||
        weft_queue_create(&release, sizeof(int), 4) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
        perror("tasks: setup");
        return 1;
    }
    weft_task_fn *fns[] = {sleeper, consumer, holder, locker, reader, anonymous};
    enum { N = sizeof fns / sizeof fns[0] };
    weft_future *fs[N];
    /* One at a time, each to its wait before the next starts: holder
       has the mutex before locker asks for it. */
    for (int i = 0; i < N; i++) {
        if (weft_concurrent(io, &fs[i], fns[i], NULL, 0, 0) < 0) {
            fprintf(stderr, "tasks: weft_concurrent failed\n");
            return 1;
        }
        while (waiting < i + 1)
            weft_yield(io);
    }
    weft_future *l;
    if (weft_concurrent(io, &l, late, NULL, 0, 0) < 0)
        return 1;

    weft_gdb_tasks_ready();
    if (die)
        abort();

    weft_await(io, l, NULL);
    int one = 1;
    weft_queue_put(io, release, &one); /* holder unlocks, locker locks */
    weft_queue_close(io, jobs);
    if (write(fds[1], "x", 1) != 1)
        return 1;
    for (int i = 0; i < N; i++) {
        if (fns[i] == sleeper || fns[i] == anonymous)
            weft_cancel(io, fs[i], NULL);
        else
            weft_await(io, fs[i], NULL);
    }
    weft_queue_destroy(jobs);
    weft_queue_destroy(release);
    close(fds[0]);
    close(fds[1]);
    weft_event_loop_deinit(el);
    puts("tasks: done");
    return 0;
}
