// SPDX-License-Identifier: MIT
/*
 * The scheduler's costs, printed in the peers' line format
 * ("<runtime> <bench> <median> <unit>") for bench/tables.sh:
 *   spawn_await  spawn an empty task and await it, one after another
 *   skynet       a 10-ary tree of 1,000,000 tasks summing their numbers
 *   skynet_100k  the same with 100,000 tasks
 *   yield        two tasks on one worker yielding to each other
 * for weft with 1 worker and with one per CPU, and spawn_await and
 * skynet_100k on the thread pool (max_threads: one per CPU; its async runs
 * a task inline when every thread is busy, so most of skynet's tree runs
 * inline there).
 */
#include "bench.h"

#include <weft/weft.h>

#include <unistd.h>

static void empty(weft_io io, void *ctx, void *result)
{
    (void)io, (void)ctx, (void)result;
}

struct sky {
    long num, size;
};

static void skynet(weft_io io, void *ctx, void *result)
{
    struct sky *s = ctx;
    if (s->size == 1) {
        *(long *)result = s->num;
        return;
    }
    weft_future *f[10];
    long d = s->size / 10;
    for (int i = 0; i < 10; i++) {
        struct sky c = {s->num + i * d, d};
        f[i] = weft_async(io, skynet, &c, sizeof c, sizeof(long));
    }
    long sum = 0;
    for (int i = 0; i < 10; i++) {
        long r;
        weft_await(io, f[i], &r);
        sum += r;
    }
    *(long *)result = sum;
}

static void yielder(weft_io io, void *ctx, void *result)
{
    (void)result;
    long n = *(long *)ctx;
    for (long i = 0; i < n; i++)
        weft_yield(io);
}

static double spawn_await(weft_io io, long n)
{
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        weft_await(io, weft_async(io, empty, NULL, 0, 0), NULL);
    return (double)(bench_now_ns() - t0) / (double)n;
}

static double skynet_ms(weft_io io, long size)
{
    struct sky root = {0, size};
    long sum = 0;
    int64_t t0 = bench_now_ns();
    weft_await(io, weft_async(io, skynet, &root, sizeof root, sizeof sum), &sum);
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    if (sum != size * (size - 1) / 2) {
        fprintf(stderr, "bench: skynet sum %ld is wrong\n", sum);
        exit(1);
    }
    return ms;
}

static double yield_ns(weft_io io, long n)
{
    int64_t t0 = bench_now_ns();
    weft_future *a = weft_async(io, yielder, &n, sizeof n, 0);
    weft_future *b = weft_async(io, yielder, &n, sizeof n, 0);
    weft_await(io, a, NULL);
    weft_await(io, b, NULL);
    return (double)(bench_now_ns() - t0) / (double)(2 * n);
}

static void run(const char *name, unsigned threads, bool with_yield, bool pool)
{
    weft_event_loop *el = NULL;
    weft_thread_pool *tp = NULL;
    weft_io io;
    if (pool) {
        tp = bench_pool_start(threads);
        io = weft_thread_pool_io(tp);
    } else {
        el = bench_loop_start(threads);
        io = weft_event_loop_io(el);
    }
    double v[BENCH_REPS];
    long n = bench_scaled(200000);
    spawn_await(io, n / 10);
    for (int i = 0; i < BENCH_REPS; i++)
        v[i] = spawn_await(io, n);
    printf("%s spawn_await %.1f ns\n", name, bench_median(v, BENCH_REPS));
    if (!pool) {
        skynet_ms(io, 1000000);
        for (int i = 0; i < BENCH_REPS; i++)
            v[i] = skynet_ms(io, 1000000);
        printf("%s skynet %.1f ms\n", name, bench_median(v, BENCH_REPS));
    }
    skynet_ms(io, 100000);
    for (int i = 0; i < BENCH_REPS; i++)
        v[i] = skynet_ms(io, 100000);
    printf("%s skynet_100k %.1f ms\n", name, bench_median(v, BENCH_REPS));
    if (with_yield) {
        long m = bench_scaled(1000000);
        yield_ns(io, m / 10);
        for (int i = 0; i < BENCH_REPS; i++)
            v[i] = yield_ns(io, m);
        printf("%s yield %.1f ns\n", name, bench_median(v, BENCH_REPS));
    }
    fflush(stdout);
    if (el)
        weft_event_loop_deinit(el);
    else
        weft_thread_pool_deinit(tp);
}

int main(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    run("weft_1", 1, true, false);
    if (cpus > 1)
        run("weft_all", (unsigned)cpus, false, false);
    run("weft_pool", (unsigned)cpus, false, true);
    return 0;
}
