// SPDX-License-Identifier: MIT
/*
 * Injected faults at their extreme rates (a build with -DWEFT_FAULTS=ON;
 * skipped elsewhere): an operation that meets EINTR or EAGAIN at every try
 * retries, and still ends when its deadline passes or its task is
 * canceled; a short write at every try still moves every byte through
 * weft_write_all.
 */
#include "contract.h"

#include "io/fault.h"

#include <weft/weft.h>

#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define MS 1000000LL

static void use_faults(const char *spec)
{
    if (weft__fault_configure(spec) == -ENOSYS)
        cr_skip_test("this build has no fault injection (-DWEFT_FAULTS=ON)");
}

struct recv_ctx {
    int fd;
    int64_t deadline_in; /* 0: none */
};

static void recv_once(weft_io io, void *ctx, void *result)
{
    struct recv_ctx *c = ctx;
    char b[8];
    if (c->deadline_in) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        weft_deadline_set(io, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + c->deadline_in);
    }
    *(ssize_t *)result = weft_recv(io, c->fd, b, sizeof b, 0);
}

static void ends_anyway(const char *spec)
{
    use_faults(spec);
    weft_event_loop *el = test_loop_start(1);
    weft_io io = weft_event_loop_io(el);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

    /* A deadline ends it. */
    struct recv_ctx c = {sv[0], 20 * MS};
    ssize_t r = 0;
    weft_future *f = weft_async(io, recv_once, &c, sizeof c, sizeof r);
    weft_await(io, f, &r);
    cr_assert_eq(r, -ETIMEDOUT, "%zd", r);

    /* So does a cancel. */
    c.deadline_in = 0;
    cr_assert_eq(weft_concurrent(io, &f, recv_once, &c, sizeof c, sizeof r), 0);
    cr_assert_eq(weft_sleep(io, 20 * MS), 0);
    weft_cancel(io, f, &r);
    cr_assert_eq(r, -ECANCELED, "%zd", r);

    close(sv[0]);
    close(sv[1]);
    weft_event_loop_deinit(el);
    weft__fault_configure("");
}

Test(faults, eagain_at_every_try_still_ends_at_the_deadline_or_the_cancel, .timeout = 30)
{
    ends_anyway("eagain=1");
}

Test(faults, eintr_at_every_try_still_ends_at_the_deadline_or_the_cancel, .timeout = 30)
{
    ends_anyway("eintr=1");
}

static void write_all_of(weft_io io, void *ctx, void *result)
{
    int fd = *(int *)ctx;
    static char out[200000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7 + 3);
    *(ssize_t *)result = weft_write_all(io, fd, out, sizeof out);
}

Test(faults, short_writes_and_reads_at_every_try_lose_nothing, .timeout = 60)
{
    use_faults("short=1,sqe=1");
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ssize_t w = 0;
    weft_future *f;
    cr_assert_eq(weft_concurrent(io, &f, write_all_of, &sv[0], sizeof sv[0], sizeof w), 0);
    static char in[200000];
    cr_assert_eq(weft_read_all(io, sv[1], in, sizeof in), (ssize_t)sizeof in);
    weft_await(io, f, &w);
    cr_assert_eq(w, (ssize_t)sizeof in);
    for (size_t i = 0; i < sizeof in; i++)
        cr_assert_eq(in[i], (char)(i * 7 + 3), "byte %zu", i);
    close(sv[0]);
    close(sv[1]);
    weft_event_loop_deinit(el);
    weft__fault_configure("");
}

static void set_flag(weft_io io, void *ctx, void *result)
{
    (void)io, (void)result;
    atomic_store(*(_Atomic bool **)ctx, true);
}

/* Without its monitor thread (it could not be started), a loop cannot
   leave a task made runnable for its worker's next switch: nothing would
   bound the wait.  Each ready wakes a worker, as without the deferral; a
   task queued behind one that never switches still runs. */
Test(faults, a_loop_without_its_monitor_still_runs_a_task_queued_behind_a_busy_one, .timeout = 30)
{
    use_faults("seed=1,monitor=1");
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    for (int round = 0; round < 3; round++) {
        test_wait_others_parked(el);
        _Atomic bool ran = false, *rp = &ran;
        weft_future *f;
        cr_assert_eq(weft_concurrent(io, &f, set_flag, &rp, sizeof rp, 0), 0);
        while (!atomic_load(&ran))
            ; /* no switch: only the other worker can run it */
        weft_await(io, f, NULL);
    }
    weft_event_loop_deinit(el);
    weft__fault_configure("");
}
