/*
 * Peer benchmark: POSIX threads, the baseline a fiber runtime replaces.
 *
 *   spawn_await  pthread_create + pthread_join of an empty function, N times
 *                in a row; ns per create+join.
 *   skynet       not applicable (a million threads), printed as n/a.
 *   yield        two threads pinned to the same CPU, each calling
 *                sched_yield() M times; ns per yield = time / (2*M).
 *
 * Each line is the median of 7 timed runs after one warm-up run.
 * BENCH_SCALE=K divides N and M for a quick run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    return 0;
}
