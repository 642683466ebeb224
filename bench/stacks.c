// SPDX-License-Identifier: MIT
/*
 * Fiber stacks: what getting and returning one costs, and what a million
 * idle ones cost in memory and mappings.
 *
 * "Idle" means a fiber was created on the stack, ran, and is parked: its
 * top page is resident, as for a real parked fiber.  RSS and page-table
 * bytes come from /proc/self/status, mappings from /proc/self/maps, each
 * measured in a child process before and after.
 */
#include "bench.h"
#include "fiber/fiber.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static const size_t SIZE = WEFT__STACK_DEFAULT_SIZE, GUARD = WEFT__STACK_DEFAULT_GUARD;

/* ---- get + put ---------------------------------------------------------- */

static double pool_cached(long n)
{
    weft__stack_pool p;
    weft__stack_pool_init(&p, NULL);
    weft__stack_cache c = WEFT__STACK_CACHE_INIT;
    weft__stack *s;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        if (weft__stack_get(&p, &c, &s) != 0)
            abort();
        weft__stack_put(&p, &c, s);
    }
    int64_t t1 = bench_now_ns();
    weft__stack_cache_drain(&p, &c);
    weft__stack_pool_deinit(&p);
    return (double)(t1 - t0) / (double)n;
}

static double pool_shared(long n)
{
    weft__stack_pool p;
    weft__stack_pool_init(&p, NULL);
    weft__stack *s;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        if (weft__stack_get(&p, NULL, &s) != 0)
            abort();
        weft__stack_put(&p, NULL, s);
    }
    int64_t t1 = bench_now_ns();
    weft__stack_pool_deinit(&p);
    return (double)(t1 - t0) / (double)n;
}

static double no_pool(long n, bool madv)
{
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        char *m = mmap(NULL, GUARD + SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED)
            abort();
        if ((madv ? madvise(m, GUARD, MADV_GUARD_INSTALL) : mprotect(m, GUARD, PROT_NONE)) != 0)
            abort();
        m[GUARD + SIZE - 1] = 1; /* a fiber always touches its top page */
        munmap(m, GUARD + SIZE);
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}
static double no_pool_madvise(long n)
{
    return no_pool(n, true);
}
static double no_pool_mprotect(long n)
{
    return no_pool(n, false);
}

/* ---- memory for N idle stacks ------------------------------------------- */

struct mem {
    long rss_kib, pte_kib, maps;
};

static void read_mem(struct mem *m)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    m->rss_kib = m->pte_kib = 0;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &m->rss_kib);
        sscanf(line, "VmPTE: %ld", &m->pte_kib);
    }
    if (f)
        fclose(f);
    m->maps = 0;
    f = fopen("/proc/self/maps", "r");
    int ch;
    while (f && (ch = fgetc(f)) != EOF)
        m->maps += ch == '\n';
    if (f)
        fclose(f);
}

static weft__fiber bench_main;
static void parked(weft__fiber *self, void *msg)
{
    (void)msg;
    weft__fiber_switch(self, &bench_main, NULL);
    abort(); /* never resumed */
}

struct idle_result {
    long made;
    double rss_per, pte_per, ns_per;
    long maps_added;
};

static struct idle_result idle_child(long n, enum weft__guard_mode mode, size_t guard)
{
    weft__stack_pool p;
    weft__stack_pool_options o = {.guard_mode = mode, .guard = guard};
    struct idle_result r = {0};
    if (weft__stack_pool_init(&p, &o) != 0)
        return r;
    weft__fiber_init_thread(&bench_main);
    struct mem before, after;
    read_mem(&before);
    int64_t t0 = bench_now_ns();
    long i;
    for (i = 0; i < n; i++) {
        weft__fiber *f;
        if (weft__fiber_create(&f, &p, NULL, 0, parked) != 0)
            break;
        weft__fiber_switch(&bench_main, f, NULL);
    }
    int64_t t1 = bench_now_ns();
    read_mem(&after);
    r.made = i;
    if (i) {
        r.rss_per = (double)(after.rss_kib - before.rss_kib) / (double)i;
        r.pte_per = (double)(after.pte_kib - before.pte_kib) / (double)i;
        r.ns_per = (double)(t1 - t0) / (double)i;
    }
    r.maps_added = after.maps - before.maps;
    return r;
}

static struct idle_result idle(long n, enum weft__guard_mode mode, size_t guard)
{
    int fds[2];
    struct idle_result r = {0};
    if (pipe(fds) != 0)
        return r;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        r = idle_child(n, mode, guard);
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == sizeof r ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], &r, sizeof r) != sizeof r)
        memset(&r, 0, sizeof r);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return r;
}

static long max_map_count(void)
{
    long v = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

int main(void)
{
    struct {
        const char *name;
        double (*run)(long);
        long n;
        double s[BENCH_REPS];
    } rows[] = {
        {"pool, per-thread cache hit", pool_cached, bench_scaled(10000000), {0}},
        {"pool, shared lock-free pool (no cache)", pool_shared, bench_scaled(5000000), {0}},
        {"no pool: mmap + MADV_GUARD_INSTALL + munmap", no_pool_madvise, bench_scaled(100000), {0}},
        {"no pool: mmap + mprotect + munmap", no_pool_mprotect, bench_scaled(100000), {0}},
    };
    int nrows = (int)(sizeof rows / sizeof rows[0]);
    bool madv = weft__stack_guard_madvise_supported();
    for (int r = 0; r < BENCH_REPS; r++)
        for (int i = 0; i < nrows; i++)
            rows[i].s[r] = (i == 2 && !madv) ? 0 : rows[i].run(rows[i].n);

    printf(
        "### Stack get + put (%zu KiB stacks, %zu KiB guard; ns per pair, median of %d runs)\n\n",
        SIZE / 1024, GUARD / 1024, BENCH_REPS);
    printf("| path | pairs per run | ns/pair | vs cache hit |\n|---|---:|---:|---:|\n");
    double base = bench_median(rows[0].s, BENCH_REPS);
    for (int i = 0; i < nrows; i++) {
        if (i == 2 && !madv) {
            printf("| %s | - | (kernel lacks it) | - |\n", rows[i].name);
            continue;
        }
        double m = bench_median(rows[i].s, BENCH_REPS);
        printf("| %s | %ld | %.1f | %.1fx |\n", rows[i].name, rows[i].n, m, m / base);
    }

    printf("\n### Idle guarded stacks (a fiber ran on each and is parked)\n\n");
    printf("guard mode in use by default: %s; vm.max_map_count = %ld\n\n",
           madv ? "MADV_GUARD_INSTALL" : "mprotect", max_map_count());
    printf("| stacks asked | guard | stacks made | RSS KiB/stack | page tables KiB/stack "
           "| mappings added | create+first switch ns/stack |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|\n");
    /* The default guard, and a 16 KiB one for comparison: a guard installed
       with MADV_GUARD_INSTALL costs page-table entries, not memory. */
    struct {
        long n;
        enum weft__guard_mode mode;
        size_t guard;
    } cases[] = {
        {bench_scaled(100000), WEFT__GUARD_AUTO, GUARD},
        {bench_scaled(1000000), WEFT__GUARD_AUTO, GUARD},
        {bench_scaled(1000000), WEFT__GUARD_AUTO, 16 * 1024},
        {bench_scaled(100000), WEFT__GUARD_MPROTECT, GUARD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct idle_result r = idle(cases[i].n, cases[i].mode, cases[i].guard);
        const char *g = cases[i].mode == WEFT__GUARD_MPROTECT ? "mprotect"
                        : madv                                ? "MADV_GUARD_INSTALL"
                                                              : "mprotect";
        printf("| %ld | %zu KiB, %s | %ld | %.2f | %.2f | %ld | %.0f |\n", cases[i].n,
               cases[i].guard / 1024, g, r.made, r.rss_per, r.pte_per, r.maps_added, r.ns_per);
    }
    printf("\n");
    return 0;
}
