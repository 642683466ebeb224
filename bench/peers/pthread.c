// SPDX-License-Identifier: MIT
/*
 * Peer benchmark: POSIX threads, the baseline a fiber runtime replaces.
 *
 *   spawn_await  pthread_create + pthread_join of an empty function, N times
 *                in a row; ns per create+join.
 *   skynet       not applicable (a million threads), printed as n/a.
 *   yield        two threads pinned to the same CPU, each calling
 *                sched_yield() M times; ns per yield = time / (2*M).
 *   mutex        8 threads, each taking one pthread_mutex_t (default type)
 *                250,000 times to add one to a shared counter; ns per
 *                lock+unlock = time / 2,000,000.
 *   queue        4 producer and 4 consumer threads move 200,000 int64s
 *                through a bounded ring of 64 guarded by a mutex and two
 *                condition variables; ns per element.
 *   pingpong     two threads bounce a number through two such rings of
 *                capacity 1, 10,000 times; ns per round trip.
 *
 * The threads are not pinned for mutex, queue and pingpong.  queue and
 * pingpong move a tenth and a twentieth of what the fiber runtimes move:
 * every element or round trip can cost a futex wake-up of a sleeping
 * thread on another CPU (tens of microseconds on a virtual machine), and
 * the figures are per element and per round trip.  A wrong
 * counter, sum or echo adds a line "<bench> error: ..." after the figure.
 * Each line is the median of 7 timed runs after one warm-up run.
 * BENCH_SCALE=K divides N, M and the counts above for a quick run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 7

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long scaled(long n)
{
    const char *s = getenv("BENCH_SCALE");
    long k = s ? strtol(s, NULL, 10) : 1;
    if (k < 1)
        k = 1;
    return n / k > 0 ? n / k : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One warm-up run, then the median of REPS timed runs. */
static double median_of(double (*run)(long), long n)
{
    double v[REPS];
    run(n);
    for (int i = 0; i < REPS; i++)
        v[i] = run(n);
    qsort(v, REPS, sizeof v[0], cmp_double);
    return v[REPS / 2];
}

static void *empty(void *arg)
{
    return arg;
}

static double spawn_await(long n)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, empty, NULL) != 0) {
            perror("pthread_create");
            exit(1);
        }
        pthread_join(t, NULL);
    }
    return (double)(now_ns() - t0) / (double)n;
}

static pthread_barrier_t start;
static int yield_cpu;
static long yield_count;

static void *yielder(void *arg)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(yield_cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    pthread_barrier_wait(&start);
    for (long i = 0; i < yield_count; i++)
        sched_yield();
    return arg;
}

static double yield(long m)
{
    pthread_t a, b;
    yield_count = m;
    pthread_barrier_init(&start, NULL, 3);
    pthread_create(&a, NULL, yielder, NULL);
    pthread_create(&b, NULL, yielder, NULL);
    pthread_barrier_wait(&start);
    int64_t t0 = now_ns();
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    int64_t t1 = now_ns();
    pthread_barrier_destroy(&start);
    return (double)(t1 - t0) / (2.0 * (double)m);
}

/* The first wrong result of the benchmark being run, if any. */
static char wrong[160];

static void report(const char *bench, double (*run)(long), long n)
{
    wrong[0] = 0;
    printf("%s %.1f ns\n", bench, median_of(run, n));
    if (wrong[0])
        printf("%s error: %s\n", bench, wrong);
    fflush(stdout);
}

static void start_threads(pthread_t *t, int n, void *(*fn)(void *), void *arg)
{
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, arg) != 0) {
            perror("pthread_create");
            exit(1);
        }
}

#define MUTEX_THREADS 8

static pthread_mutex_t counter_mutex = PTHREAD_MUTEX_INITIALIZER;
static long counter, per_thread;

static void *increment(void *arg)
{
    for (long i = 0; i < per_thread; i++) {
        pthread_mutex_lock(&counter_mutex);
        counter++;
        pthread_mutex_unlock(&counter_mutex);
    }
    return arg;
}

static double mutex(long total)
{
    pthread_t t[MUTEX_THREADS];
    counter = 0;
    per_thread = total / MUTEX_THREADS;
    int64_t t0 = now_ns();
    start_threads(t, MUTEX_THREADS, increment, NULL);
    for (int i = 0; i < MUTEX_THREADS; i++)
        pthread_join(t[i], NULL);
    double ns = (double)(now_ns() - t0) / (double)(per_thread * MUTEX_THREADS);
    if (counter != per_thread * MUTEX_THREADS && !wrong[0])
        snprintf(wrong, sizeof wrong, "counter %ld, expected %ld", counter,
                 per_thread * MUTEX_THREADS);
    return ns;
}

/* A bounded ring of int64s: the usual mutex + two condition variables. */
#define RING_MAX 64

struct ring {
    pthread_mutex_t m;
    pthread_cond_t not_empty, not_full;
    int64_t buf[RING_MAX];
    size_t head, count, cap;
    bool closed;
};

static void ring_init(struct ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->m, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    pthread_cond_init(&r->not_full, NULL);
    r->cap = cap;
}

static void ring_destroy(struct ring *r)
{
    pthread_mutex_destroy(&r->m);
    pthread_cond_destroy(&r->not_empty);
    pthread_cond_destroy(&r->not_full);
}

static void ring_put(struct ring *r, int64_t v)
{
    pthread_mutex_lock(&r->m);
    while (r->count == r->cap)
        pthread_cond_wait(&r->not_full, &r->m);
    r->buf[(r->head + r->count++) % r->cap] = v;
    pthread_mutex_unlock(&r->m);
    pthread_cond_signal(&r->not_empty);
}

/* false once the ring is closed and empty. */
static bool ring_get(struct ring *r, int64_t *v)
{
    pthread_mutex_lock(&r->m);
    while (r->count == 0 && !r->closed)
        pthread_cond_wait(&r->not_empty, &r->m);
    bool got = r->count > 0;
    if (got) {
        *v = r->buf[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
    pthread_mutex_unlock(&r->m);
    if (got)
        pthread_cond_signal(&r->not_full);
    return got;
}

static void ring_close(struct ring *r)
{
    pthread_mutex_lock(&r->m);
    r->closed = true;
    pthread_mutex_unlock(&r->m);
    pthread_cond_broadcast(&r->not_empty);
}

#define QUEUE_PRODUCERS 4
#define QUEUE_CONSUMERS 4

static struct ring queue_ring;
static long queue_per_producer, queue_next_first;
static int64_t queue_sum;

static void *produce(void *arg)
{
    long first = __atomic_fetch_add(&queue_next_first, queue_per_producer, __ATOMIC_RELAXED);
    for (int64_t v = first; v < first + queue_per_producer; v++)
        ring_put(&queue_ring, v);
    return arg;
}

static void *consume(void *arg)
{
    int64_t v, sum = 0;
    while (ring_get(&queue_ring, &v))
        sum += v;
    __atomic_fetch_add(&queue_sum, sum, __ATOMIC_RELAXED);
    return arg;
}

static double queue(long total)
{
    pthread_t p[QUEUE_PRODUCERS], c[QUEUE_CONSUMERS];
    ring_init(&queue_ring, RING_MAX);
    queue_per_producer = total / QUEUE_PRODUCERS;
    queue_next_first = 0;
    queue_sum = 0;
    int64_t n = queue_per_producer * QUEUE_PRODUCERS;
    int64_t t0 = now_ns();
    start_threads(c, QUEUE_CONSUMERS, consume, NULL);
    start_threads(p, QUEUE_PRODUCERS, produce, NULL);
    for (int i = 0; i < QUEUE_PRODUCERS; i++)
        pthread_join(p[i], NULL);
    ring_close(&queue_ring);
    for (int i = 0; i < QUEUE_CONSUMERS; i++)
        pthread_join(c[i], NULL);
    double ns = (double)(now_ns() - t0) / (double)n;
    ring_destroy(&queue_ring);
    if (queue_sum != n * (n - 1) / 2 && !wrong[0])
        snprintf(wrong, sizeof wrong, "sum %lld, expected %lld", (long long)queue_sum,
                 (long long)(n * (n - 1) / 2));
    return ns;
}

static struct ring ping_ring, pong_ring;

/* Sends back every number it gets until ping_ring is closed. */
static void *ponger(void *arg)
{
    int64_t v;
    while (ring_get(&ping_ring, &v))
        ring_put(&pong_ring, v);
    return arg;
}

static double pingpong(long n)
{
    pthread_t t;
    long bad = 0;
    ring_init(&ping_ring, 1);
    ring_init(&pong_ring, 1);
    int64_t t0 = now_ns();
    start_threads(&t, 1, ponger, NULL);
    for (int64_t i = 0; i < n; i++) {
        int64_t back = -1;
        ring_put(&ping_ring, i);
        ring_get(&pong_ring, &back);
        bad += back != i;
    }
    ring_close(&ping_ring);
    pthread_join(t, NULL);
    double ns = (double)(now_ns() - t0) / (double)n;
    ring_destroy(&ping_ring);
    ring_destroy(&pong_ring);
    if (bad && !wrong[0])
        snprintf(wrong, sizeof wrong, "%ld of %ld numbers came back changed", bad, n);
    return ns;
}

/* n rounded down to a multiple of k, and at least k: one item per thread. */
static long multiple(long n, long k)
{
    return n < k ? k : n / k * k;
}

int main(void)
{
    /* CPU 0, or the lowest CPU this process may run on if 0 is not allowed. */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        while (yield_cpu < CPU_SETSIZE - 1 && !CPU_ISSET(yield_cpu, &allowed))
            yield_cpu++;

    printf("spawn_await %.1f ns\n", median_of(spawn_await, scaled(20000)));
    fflush(stdout);
    printf("skynet n/a\n");
    fflush(stdout);
    printf("yield %.1f ns\n", median_of(yield, scaled(200000)));
    fflush(stdout);
    report("mutex", mutex, multiple(scaled(2000000), MUTEX_THREADS));
    report("queue", queue, multiple(scaled(200000), QUEUE_PRODUCERS));
    report("pingpong", pingpong, scaled(10000));
    return 0;
}
