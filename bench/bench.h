// SPDX-License-Identifier: MIT
/* Small helpers shared by the benchmark programs: a clock, medians, and
   markdown table rows.  Benchmarks print; they never fail the build. */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <weft/weft.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_REPS 7

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* BENCH_SCALE=N divides iteration counts (for a quick look). */
static inline long bench_scaled(long n)
{
    const char *s = getenv("BENCH_SCALE");
    long d = s ? strtol(s, NULL, 10) : 1;
    if (d < 1)
        d = 1;
    return n / d > 0 ? n / d : 1;
}

/* An event loop with `threads` workers (exits if there is none). */
static inline weft_event_loop *bench_loop_start(unsigned threads)
{
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = threads};
    int rc = weft_event_loop_init(&el, &o);
    if (rc < 0) {
        fprintf(stderr, "bench: weft_event_loop_init: %d\n", rc);
        exit(1);
    }
    return el;
}

/* A thread pool with at most max_threads threads for weft_async (exits if
   there is none). */
static inline weft_thread_pool *bench_pool_start(unsigned max_threads)
{
    weft_thread_pool *tp;
    weft_thread_pool_options o = {.max_threads = max_threads};
    int rc = weft_thread_pool_init(&tp, &o);
    if (rc < 0) {
        fprintf(stderr, "bench: weft_thread_pool_init: %d\n", rc);
        exit(1);
    }
    return tp;
}

/* Starts a group member that must run beside the others (a consumer that
   waits for producers): weft_group_async may run it inline, as the thread
   pool does once its threads are busy. */
static inline void bench_group_start(weft_io io, weft_group *g, weft_task_fn *fn, const void *ctx,
                                     size_t ctx_len)
{
    if (weft_group_concurrent(io, g, fn, ctx, ctx_len) < 0)
        weft_group_async(io, g, fn, ctx, ctx_len);
}

#endif
