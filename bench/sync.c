// SPDX-License-Identifier: MIT
/*
 * The synchronisation objects' costs, printed in the peers' line format
 * ("<runtime> <bench> <median> <unit>") for bench/tables.awk:
 *   mutex     8 tasks, each taking a weft_mutex 250,000 times to add one to
 *             a shared counter; ns per lock+unlock (total time / 2,000,000)
 *   queue     4 producers put 2,000,000 int64s (500,000 each) into a
 *             weft_queue of capacity 64, 4 consumers get them until the
 *             queue is closed and empty; ns per element
 *   pingpong  two tasks bounce a number through two capacity-1 queues
 *             200,000 times; ns per round trip
 * for weft with 1 worker and with one per CPU, and on the thread pool (every
 * task an OS thread; the same code).  Every figure is the median
 * of 7 runs after a warm-up of a tenth the size; BENCH_SCALE=N divides the
 * counts.  A run whose counter, sum or echo comes out wrong still prints
 * its figure, followed by "<runtime> <bench> error: ...".
 */
#include "bench.h"

#include <weft/weft.h>

#include <unistd.h>

#define MUTEX_TASKS     8
#define QUEUE_PRODUCERS 4
#define QUEUE_CONSUMERS 4
#define QUEUE_CAPACITY  64

/* The first wrong result of the benchmark being run, if any. */
static char wrong[160];

/* ---- mutex ------------------------------------------------------------------ */

struct counter {
    weft_mutex m;
    long value;
    long per_task;
};

static void increment(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct counter *c = *(struct counter **)ctx;
    for (long i = 0; i < c->per_task; i++) {
        weft_mutex_lock(io, &c->m);
        c->value++;
        weft_mutex_unlock(io, &c->m);
    }
}

static double mutex_ns(weft_io io, long total)
{
    static struct counter c;
    c = (struct counter){WEFT_MUTEX_INIT, 0, total / MUTEX_TASKS};
    struct counter *p = &c;
    weft_group g = WEFT_GROUP_INIT;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < MUTEX_TASKS; i++)
        bench_group_start(io, &g, increment, &p, sizeof p);
    weft_group_wait(io, &g);
    double ns = (double)(bench_now_ns() - t0) / (double)(c.per_task * MUTEX_TASKS);
    if (c.value != c.per_task * MUTEX_TASKS && !wrong[0])
        snprintf(wrong, sizeof wrong, "counter %ld, expected %ld", c.value,
                 c.per_task * MUTEX_TASKS);
    return ns;
}

/* ---- queue ------------------------------------------------------------------ */

struct producer {
    weft_queue *q;
    int64_t first, count;
};

static void produce(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct producer *p = ctx;
    for (int64_t v = p->first; v < p->first + p->count; v++)
        weft_queue_put(io, p->q, &v);
}

struct consumer {
    weft_queue *q;
    int64_t *sum;
};

static void consume(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct consumer *c = ctx;
    int64_t v, sum = 0;
    while (weft_queue_get(io, c->q, &v) == 0)
        sum += v;
    __atomic_fetch_add(c->sum, sum, __ATOMIC_RELAXED);
}

static double queue_ns(weft_io io, long total)
{
    weft_queue *q;
    if (weft_queue_create(&q, sizeof(int64_t), QUEUE_CAPACITY) < 0) {
        fprintf(stderr, "bench: weft_queue_create failed\n");
        exit(1);
    }
    int64_t per = total / QUEUE_PRODUCERS, n = per * QUEUE_PRODUCERS, sum = 0;
    weft_group producers = WEFT_GROUP_INIT, consumers = WEFT_GROUP_INIT;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < QUEUE_CONSUMERS; i++) {
        struct consumer c = {q, &sum};
        bench_group_start(io, &consumers, consume, &c, sizeof c);
    }
    for (int i = 0; i < QUEUE_PRODUCERS; i++) {
        struct producer p = {q, i * per, per};
        bench_group_start(io, &producers, produce, &p, sizeof p);
    }
    weft_group_wait(io, &producers);
    weft_queue_close(io, q);
    weft_group_wait(io, &consumers);
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    weft_queue_destroy(q);
    if (sum != n * (n - 1) / 2 && !wrong[0])
        snprintf(wrong, sizeof wrong, "sum %lld, expected %lld", (long long)sum,
                 (long long)(n * (n - 1) / 2));
    return ns;
}

/* ---- ping-pong ---------------------------------------------------------------- */

struct pong {
    weft_queue *in, *out;
};

/* Sends back every number it gets until its queue is closed. */
static void ponger(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct pong *p = ctx;
    int64_t v;
    while (weft_queue_get(io, p->in, &v) == 0)
        weft_queue_put(io, p->out, &v);
}

static double pingpong_ns(weft_io io, long n)
{
    weft_queue *ping, *pong;
    if (weft_queue_create(&ping, sizeof(int64_t), 1) < 0 ||
        weft_queue_create(&pong, sizeof(int64_t), 1) < 0) {
        fprintf(stderr, "bench: weft_queue_create failed\n");
        exit(1);
    }
    struct pong p = {ping, pong};
    weft_group g = WEFT_GROUP_INIT;
    long bad = 0;
    int64_t t0 = bench_now_ns();
    bench_group_start(io, &g, ponger, &p, sizeof p);
    for (int64_t i = 0; i < n; i++) {
        int64_t back = -1;
        weft_queue_put(io, ping, &i);
        weft_queue_get(io, pong, &back);
        bad += back != i;
    }
    weft_queue_close(io, ping);
    weft_group_wait(io, &g);
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    weft_queue_destroy(ping);
    weft_queue_destroy(pong);
    if (bad && !wrong[0])
        snprintf(wrong, sizeof wrong, "%ld of %ld numbers came back changed", bad, n);
    return ns;
}

/* ---- driver -------------------------------------------------------------------- */

/* n rounded down to a multiple of k, and at least k: one item per task. */
static long per_task_multiple(long n, long k)
{
    return n < k ? k : n / k * k;
}

/* One warm-up run a tenth the size, then the median of BENCH_REPS runs of n,
   n a multiple of k. */
static void report(const char *name, const char *bench, weft_io io, double (*run)(weft_io, long),
                   long n, long k)
{
    double v[BENCH_REPS];
    wrong[0] = 0;
    run(io, per_task_multiple(n / 10, k));
    for (int i = 0; i < BENCH_REPS; i++)
        v[i] = run(io, n);
    printf("%s %s %.1f ns\n", name, bench, bench_median(v, BENCH_REPS));
    if (wrong[0])
        printf("%s %s error: %s\n", name, bench, wrong);
    fflush(stdout);
}

static void run(const char *name, unsigned threads, bool pool)
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
    report(name, "mutex", io, mutex_ns, per_task_multiple(bench_scaled(2000000), MUTEX_TASKS),
           MUTEX_TASKS);
    report(name, "queue", io, queue_ns, per_task_multiple(bench_scaled(2000000), QUEUE_PRODUCERS),
           QUEUE_PRODUCERS);
    report(name, "pingpong", io, pingpong_ns, bench_scaled(200000), 1);
    if (el)
        weft_event_loop_deinit(el);
    else
        weft_thread_pool_deinit(tp);
}

int main(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    run("weft_1", 1, false);
    if (cpus > 1)
        run("weft_all", (unsigned)cpus, false);
    run("weft_pool", (unsigned)cpus, true);
    return 0;
}
