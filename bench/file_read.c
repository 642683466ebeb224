// SPDX-License-Identifier: MIT
/*
 * Random 4 KiB reads from a 256 MiB file that is in the page cache.
 *
 *   bench_file_read [--file PATH] [--seconds S]
 *
 * The program writes the file (PATH, or a new file in $TMPDIR or /var/tmp
 * that it removes at the end), reads it once so that every page is cached,
 * says how much of it mincore() finds resident, then times each way of
 * reading for S seconds (default 1; BENCH_SCALE=N divides it) and prints
 * the median of BENCH_REPS runs, the ways interleaved run by run.
 *
 * Every way of reading is a set of readers running reader_run(): a loop
 * that picks a random 4 KiB-aligned block, reads it through the reader's
 * read_at function and checks the block's number, which the file carries
 * in its first 8 bytes, until the deadline.  A way of reading only decides
 * how many readers run, on what, and which read_at they call: the
 * baselines are plain pread(2) on 64 threads and on one thread.  A weft
 * way is a read_at that calls weft's read through a weft_io and a run
 * function that starts the readers as tasks (see the variants[] table).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define FILE_SIZE    (256u << 20)
#define BLOCK        4096u
#define BLOCKS       (FILE_SIZE / BLOCK)
#define MANY_THREADS 64
#define CLOCK_EVERY  16 /* reads between two looks at the clock */

/* Reads len bytes at off into buf; returns bytes read or -errno. */
typedef ssize_t read_at_fn(void *ctx, int fd, void *buf, size_t len, off_t off);

struct reader {
    int fd;
    read_at_fn *read_at;
    void *ctx;
    uint64_t rng;     /* xorshift64 state, never 0 */
    int64_t deadline; /* bench_now_ns() value at which to stop */
    uint64_t ops;     /* blocks read and checked */
    const char *error;
};

/* One reader's loop; safe to run on a thread or in a task. */
static void reader_run(struct reader *r)
{
    _Alignas(64) unsigned char buf[BLOCK];
    for (;;) {
        for (int i = 0; i < CLOCK_EVERY; i++) {
            r->rng ^= r->rng << 13, r->rng ^= r->rng >> 7, r->rng ^= r->rng << 17;
            uint64_t block = r->rng % BLOCKS;
            ssize_t n = r->read_at(r->ctx, r->fd, buf, BLOCK, (off_t)(block * BLOCK));
            uint64_t tag;
            memcpy(&tag, buf, sizeof tag);
            if (n != BLOCK || tag != block) {
                r->error = n < 0 ? strerror((int)-n) : n != BLOCK ? "short read" : "wrong data";
                return;
            }
            r->ops++;
        }
        if (bench_now_ns() >= r->deadline)
            return;
    }
}

static void reader_init(struct reader *r, int fd, read_at_fn *fn, void *ctx, unsigned id,
                        int64_t deadline)
{
    *r = (struct reader){.fd = fd, .read_at = fn, .ctx = ctx, .deadline = deadline};
    r->rng = 0x9e3779b97f4a7c15u * (id + 1) ^ (uint64_t)bench_now_ns();
    if (!r->rng)
        r->rng = 1;
}

/* ---- the plain system call --------------------------------------------------------- */

static ssize_t pread_at(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    ssize_t n = pread(fd, buf, len, off);
    return n < 0 ? -errno : n;
}

struct thread_arg {
    struct reader r;
    pthread_barrier_t *go;
};

static void *reader_thread(void *p)
{
    struct thread_arg *a = p;
    pthread_barrier_wait(a->go);
    a->r.deadline = bench_now_ns() + a->r.deadline; /* was the duration */
    reader_run(&a->r);
    return NULL;
}

/* `threads` threads each calling fn in a loop: reads per second. */
static double run_threads(int fd, double seconds, unsigned threads, read_at_fn *fn)
{
    struct thread_arg args[MANY_THREADS];
    pthread_t tids[MANY_THREADS];
    pthread_barrier_t go;
    if (threads > MANY_THREADS)
        threads = MANY_THREADS;
    pthread_barrier_init(&go, NULL, threads + 1);
    for (unsigned i = 0; i < threads; i++) {
        reader_init(&args[i].r, fd, fn, NULL, i, (int64_t)(seconds * 1e9));
        args[i].go = &go;
        if (pthread_create(&tids[i], NULL, reader_thread, &args[i]) != 0) {
            fprintf(stderr, "bench_file_read: pthread_create failed\n");
            exit(1);
        }
    }
    int64_t t0 = bench_now_ns();
    pthread_barrier_wait(&go);
    uint64_t ops = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        if (args[i].r.error) {
            fprintf(stderr, "bench_file_read: pread: %s\n", args[i].r.error);
            exit(1);
        }
        ops += args[i].r.ops;
    }
    int64_t t1 = bench_now_ns();
    pthread_barrier_destroy(&go);
    return (double)ops / ((double)(t1 - t0) / 1e9);
}

static double run_pread_many(int fd, double seconds)
{
    return run_threads(fd, seconds, MANY_THREADS, pread_at);
}

/* ---- the same loop through weft ----------------------------------------------------- */

static ssize_t weft_blocking_read_at(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    return weft_pread(weft_blocking_io(), fd, buf, len, (int64_t)off);
}

/* The blocking Io on 64 threads: the thread model, through weft's calls. */
static double run_weft_blocking_many(int fd, double seconds)
{
    return run_threads(fd, seconds, MANY_THREADS, weft_blocking_read_at);
}

static ssize_t weft_read_at(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    return weft_pread(*(weft_io *)ctx, fd, buf, len, (int64_t)off);
}

static void reader_task(weft_io io, void *ctx, void *result)
{
    (void)io, (void)result;
    reader_run(*(struct reader **)ctx);
}

/* 64 tasks on an event loop with a worker per CPU, each reading through
   the worker's io_uring. */
static double run_weft_loop(int fd, double seconds)
{
    weft_event_loop *el = bench_loop_start(0);
    weft_io io = weft_event_loop_io(el);
    static struct reader rs[MANY_THREADS];
    weft_future *f[MANY_THREADS];
    int64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < MANY_THREADS; i++) {
        reader_init(&rs[i], fd, weft_read_at, &io, i, t0 + (int64_t)(seconds * 1e9));
        struct reader *r = &rs[i];
        f[i] = weft_async(io, reader_task, &r, sizeof r, 0);
    }
    uint64_t ops = 0;
    for (unsigned i = 0; i < MANY_THREADS; i++) {
        weft_await(io, f[i], NULL);
        if (rs[i].error) {
            fprintf(stderr, "bench_file_read: weft_pread: %s\n", rs[i].error);
            exit(1);
        }
        ops += rs[i].ops;
    }
    int64_t t1 = bench_now_ns();
    weft_event_loop_deinit(el);
    return (double)ops / ((double)(t1 - t0) / 1e9);
}

/* The loop on the calling thread, no thread started. */
static double run_pread_one(int fd, double seconds)
{
    struct reader r;
    int64_t t0 = bench_now_ns();
    reader_init(&r, fd, pread_at, NULL, 0, t0 + (int64_t)(seconds * 1e9));
    reader_run(&r);
    int64_t t1 = bench_now_ns();
    if (r.error) {
        fprintf(stderr, "bench_file_read: pread: %s\n", r.error);
        exit(1);
    }
    return (double)r.ops / ((double)(t1 - t0) / 1e9);
}

/* ---- the table ---------------------------------------------------------------------- */

struct variant {
    const char *name;
    unsigned readers;
    double (*run)(int fd, double seconds); /* reads per second */
};

/* The first row is the base of the ratio column. */
static const struct variant variants[] = {
    {"weft event loop, 64 tasks", MANY_THREADS, run_weft_loop},
    {"weft blocking Io, 64 threads", MANY_THREADS, run_weft_blocking_many},
    {"pread(2), 64 threads", MANY_THREADS, run_pread_many},
    {"pread(2) in a loop, 1 thread", 1, run_pread_one},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* ---- the file ----------------------------------------------------------------------- */

static int make_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench_file_read: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    static unsigned char chunk[1 << 20];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)(i * 31 + 7);
    for (uint64_t off = 0; off < FILE_SIZE; off += sizeof chunk) {
        for (size_t b = 0; b < sizeof chunk; b += BLOCK) {
            uint64_t tag = (off + b) / BLOCK;
            memcpy(chunk + b, &tag, sizeof tag);
        }
        if (pwrite(fd, chunk, sizeof chunk, (off_t)off) != (ssize_t)sizeof chunk) {
            fprintf(stderr, "bench_file_read: writing %s: %s\n", path, strerror(errno));
            exit(1);
        }
    }
    /* Read it back once, so that every page is cached whatever the writes did. */
    for (uint64_t off = 0; off < FILE_SIZE; off += sizeof chunk)
        if (pread(fd, chunk, sizeof chunk, (off_t)off) != (ssize_t)sizeof chunk) {
            fprintf(stderr, "bench_file_read: reading %s: %s\n", path, strerror(errno));
            exit(1);
        }
    return fd;
}

/* Percentage of the file's pages in the page cache. */
static double resident_pct(int fd)
{
    void *p = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    size_t pages = FILE_SIZE / (size_t)sysconf(_SC_PAGESIZE), in = 0;
    unsigned char *vec = malloc(pages);
    if (vec && mincore(p, FILE_SIZE, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    free(vec);
    munmap(p, FILE_SIZE);
    return vec ? 100.0 * (double)in / (double)pages : -1;
}

static const char *fs_name(int fd)
{
    struct statfs s;
    if (fstatfs(fd, &s) != 0)
        return "unknown";
    switch ((unsigned long)s.f_type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x794C7630:
        return "overlayfs";
    default:
        return "other";
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    double seconds = 1;
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"seconds", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'f':
            path = optarg;
            break;
        case 's':
            seconds = strtod(optarg, NULL);
            break;
        default:
            fprintf(stderr, "usage: %s [--file PATH] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (!(seconds > 0))
        seconds = 1;
    seconds *= (double)bench_scaled(1000000) / 1e6; /* BENCH_SCALE */

    char tmp[4096];
    bool remove_after = false;
    if (!path) {
        const char *dir = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/weft-bench-file-read.%ld", dir && *dir ? dir : "/var/tmp",
                 (long)getpid());
        path = tmp;
        remove_after = true;
    }
    int fd = make_file(path);

    printf("### Random 4 KiB reads from a 256 MiB file in the page cache (reads/s, median of %d "
           "runs)\n\n",
           BENCH_REPS);
    printf("file: %s (%s), %.1f %% of its pages resident; %.2f s per run, every block's "
           "number checked\n\n",
           path, fs_name(fd), resident_pct(fd), seconds);

    double v[NVARIANTS][BENCH_REPS];
    for (size_t i = 0; i < NVARIANTS; i++) /* warm-up */
        variants[i].run(fd, seconds / 4);
    for (int rep = 0; rep < BENCH_REPS; rep++)
        for (size_t i = 0; i < NVARIANTS; i++)
            v[i][rep] = variants[i].run(fd, seconds);

    printf("| reader | readers | reads/s | ns per read | vs %s |\n", variants[0].name);
    printf("|---|---:|---:|---:|---:|\n");
    double base = bench_median(v[0], BENCH_REPS);
    for (size_t i = 0; i < NVARIANTS; i++) {
        double m = bench_median(v[i], BENCH_REPS);
        printf("| %s | %u | %.0f | %.0f | %.2fx |\n", variants[i].name, variants[i].readers, m,
               1e9 / m, m / base);
    }
    printf("\n");
    close(fd);
    if (remove_after)
        unlink(path);
    return 0;
}
