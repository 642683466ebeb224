// SPDX-License-Identifier: MIT
/*
 * Closed-loop load client for TCP echo servers.
 *
 *   bench_echo_client [--host H] [--port N] [--conns C] [--size M]
 *                     [--threads T] [--warmup S] [--duration S]
 *
 * C connections, spread round-robin over T threads, each thread running its
 * own level-triggered epoll loop.  Every connection sends one M-byte message,
 * waits until all M bytes have come back, compares them with what it sent,
 * and only then sends the next: one request in flight per connection, so
 * the offered load is C requests at a time and throughput is C / latency.
 *
 * Requests that complete during the first S seconds (--warmup) are not
 * counted; those that complete in the following --duration seconds are, and
 * their latencies (send of the first byte to receipt of the last) go into
 * the percentiles.  The last line of output is machine-readable:
 *
 *   echo_result conns=C size=M threads=T seconds=D requests=N rps=R
 *               p50_us=.. p99_us=.. p999_us=.. max_us=.. cpu_us_per_req=.. errors=0
 *
 * cpu_us_per_req is the client's own CPU time (user + system, warm-up
 * included) per completed request: what the client takes from CPUs it
 * shares with the server.
 *
 * Any connection that closes, fails, or echoes a byte that differs from the
 * one sent stops the run: the client says which, and exits with status 1.
 *
 * Messages are cut from one random buffer at an offset that moves with every
 * request, so consecutive messages differ and nothing is filled per request.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SHIFT_SPAN 251 /* distinct message offsets into the pattern buffer */

struct conn {
    int fd;
    bool want_out;            /* EPOLLOUT is registered: a send did not finish */
    size_t sent, got;         /* bytes of the current message sent and received */
    const unsigned char *msg; /* the current message, inside the pattern */
    unsigned char *in;        /* what has come back of it */
    int64_t t_sent;           /* when its first byte was handed to the kernel */
    uint64_t seq;
};

struct worker {
    pthread_t thread;
    int ep;
    struct conn *conns;
    size_t nconns;
    uint64_t done;  /* requests completed inside the window */
    uint64_t total; /* requests completed, warm-up included */
    uint32_t *lat;  /* their latencies, ns (saturated at 2^32-1) */
    size_t nlat, cap;
    char error[256]; /* the first failure, empty if none */
};

static size_t msg_size = 64;
static const unsigned char *pattern; /* msg_size + SHIFT_SPAN random bytes */
static int64_t t_window, t_end;      /* window start and end (monotonic ns) */
static atomic_bool stop_all;         /* set by a failing worker */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(struct worker *w, const char *what, int err)
{
    if (!w->error[0])
        snprintf(w->error, sizeof w->error, "%s%s%s", what, err ? ": " : "",
                 err ? strerror(err) : "");
    atomic_store_explicit(&stop_all, true, memory_order_relaxed);
}

static int set_events(struct worker *w, struct conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        fail(w, "epoll_ctl", errno);
        return -1;
    }
    c->want_out = out;
    return 0;
}

/* Sends what is left of the current message; registers for EPOLLOUT while
   the socket buffer is full and drops it once the message is out. */
static int pump_out(struct worker *w, struct conn *c)
{
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, c->msg + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return c->want_out ? 0 : set_events(w, c, true);
        fail(w, "send", errno);
        return -1;
    }
    return c->want_out ? set_events(w, c, false) : 0;
}

static int start_request(struct worker *w, struct conn *c, int64_t now)
{
    c->msg = pattern + c->seq % SHIFT_SPAN;
    c->sent = c->got = 0;
    c->t_sent = now;
    return pump_out(w, c);
}

static void record(struct worker *w, int64_t lat_ns)
{
    if (w->nlat == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1 << 16;
        uint32_t *p = realloc(w->lat, cap * sizeof *p);
        if (!p) {
            fail(w, "out of memory for latencies", 0);
            return;
        }
        w->lat = p;
        w->cap = cap;
    }
    w->lat[w->nlat++] = lat_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_ns;
}

/* Reads what has come back; on a full echo, checks it, counts it and sends
   the next message. */
static int pump_in(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->got, msg_size - c->got, 0);
        if (n > 0) {
            /* The echo of bytes not yet sent would be the server's invention. */
            if (c->got + (size_t)n > c->sent) {
                fail(w, "server sent bytes before they were sent to it", 0);
                return -1;
            }
            if (memcmp(c->in + c->got, c->msg + c->got, (size_t)n) != 0) {
                fail(w, "echoed bytes differ from the bytes sent", 0);
                return -1;
            }
            c->got += (size_t)n;
            if (c->got < msg_size)
                continue;
            int64_t t = now_ns();
            w->total++;
            if (t >= t_window && t < t_end) {
                w->done++;
                record(w, t - c->t_sent);
            }
            c->seq++;
            if (start_request(w, c, t) < 0)
                return -1;
            /* A closed loop: the next echo cannot be here yet. */
            return 0;
        }
        if (n == 0) {
            fail(w, "server closed a connection", 0);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        fail(w, "recv", errno);
        return -1;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    int64_t now = now_ns();
    for (size_t i = 0; i < w->nconns; i++)
        if (start_request(w, &w->conns[i], now) < 0)
            return NULL;
    while (!atomic_load_explicit(&stop_all, memory_order_relaxed)) {
        int n = epoll_wait(w->ep, evs, 256, 50);
        if (n < 0 && errno != EINTR) {
            fail(w, "epoll_wait", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && pump_out(w, c) < 0)
                return NULL;
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && pump_in(w, c) < 0)
                return NULL;
        }
        if (now_ns() >= t_end)
            break;
    }
    return NULL;
}

static int connect_one(const struct addrinfo *ai)
{
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The value below which a fraction q of the sorted samples lie (nearest rank). */
static double pct_us(const uint32_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1] / 1000.0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--host H] [--port N] [--conns C] [--size M] [--threads T]\n"
            "          [--warmup S] [--duration S]\n"
            "defaults: 127.0.0.1, 7000, 64 connections, 64 bytes, 1 thread, 1 s, 3 s\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "7000";
    long conns = 64, threads = 1;
    double warmup = 1, duration = 3;
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'h'},     {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},    {"size", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},  {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
    };
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'c':
            conns = strtol(optarg, NULL, 10);
            break;
        case 's':
            msg_size = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            threads = strtol(optarg, NULL, 10);
            break;
        case 'w':
            warmup = strtod(optarg, NULL);
            break;
        case 'd':
            duration = strtod(optarg, NULL);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc || conns < 1 || threads < 1 || msg_size < 1 || msg_size > (64u << 20) ||
        warmup < 0 || duration <= 0)
        usage(argv[0]);
    if (threads > conns)
        threads = conns;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo client: %s:%s: %s\n", host, port, gai_strerror(rc));
        return 1;
    }

    unsigned char *pat = malloc(msg_size + SHIFT_SPAN);
    if (!pat)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15u ^ (uint64_t)now_ns();
    for (size_t i = 0; i < msg_size + SHIFT_SPAN; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        pat[i] = (unsigned char)(x >> 24);
    }
    pattern = pat;

    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    unsigned char *inbufs = malloc((size_t)conns * msg_size);
    if (!ws || !cs || !inbufs) {
        fprintf(stderr, "echo client: out of memory\n");
        return 1;
    }
    /* Connection i belongs to worker i % T; each worker's are contiguous. */
    size_t next = 0;
    for (long t = 0; t < threads; t++) {
        struct worker *w = &ws[t];
        w->nconns = (size_t)(conns / threads + (t < conns % threads));
        w->conns = cs + next;
        next += w->nconns;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) {
            perror("echo client: epoll_create1");
            return 1;
        }
    }
    for (long t = 0; t < threads; t++) {
        struct worker *w = &ws[t];
        for (size_t i = 0; i < w->nconns; i++) {
            struct conn *c = &w->conns[i];
            c->in = inbufs + (size_t)(c - cs) * msg_size;
            c->seq = (uint64_t)(c - cs);
            c->fd = connect_one(ai);
            if (c->fd < 0) {
                fprintf(stderr, "echo client: connection %zu of %ld to %s:%s: %s\n",
                        (size_t)(c - cs) + 1, conns, host, port, strerror(errno));
                return 1;
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                perror("echo client: epoll_ctl");
                return 1;
            }
        }
    }
    freeaddrinfo(ai);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = now_ns();
    t_window = t0 + (int64_t)(warmup * 1e9);
    t_end = t_window + (int64_t)(duration * 1e9);
    for (long t = 0; t < threads; t++)
        if ((rc = pthread_create(&ws[t].thread, NULL, worker_main, &ws[t])) != 0) {
            fprintf(stderr, "echo client: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    uint64_t done = 0, total = 0;
    size_t nlat = 0;
    int errors = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(ws[t].thread, NULL);
        done += ws[t].done;
        total += ws[t].total;
        nlat += ws[t].nlat;
        if (ws[t].error[0]) {
            fprintf(stderr, "echo client: thread %ld: %s\n", t, ws[t].error);
            errors++;
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                             ru0.ru_stime.tv_sec) *
                        1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                             ru0.ru_stime.tv_usec);
    double cpu_per_req = total ? cpu_us / (double)total : 0;
    uint32_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
    if (!all)
        return 1;
    size_t k = 0;
    for (long t = 0; t < threads; t++) {
        if (ws[t].nlat)
            memcpy(all + k, ws[t].lat, ws[t].nlat * sizeof *all);
        k += ws[t].nlat;
        free(ws[t].lat);
        close(ws[t].ep);
    }
    for (long i = 0; i < conns; i++)
        close(cs[i].fd);
    qsort(all, nlat, sizeof *all, cmp_u32);

    double rps = (double)done / duration;
    double p50 = pct_us(all, nlat, 0.50), p99 = pct_us(all, nlat, 0.99),
           p999 = pct_us(all, nlat, 0.999), max = nlat ? all[nlat - 1] / 1000.0 : 0;
    printf("echo client: %s:%s, %ld connection%s on %ld thread%s, %zu-byte messages, "
           "%.1f s warm-up, %.1f s measured\n",
           host, port, conns, conns == 1 ? "" : "s", threads, threads == 1 ? "" : "s", msg_size,
           warmup, duration);
    printf("  %llu requests: %.0f requests/s\n", (unsigned long long)done, rps);
    printf("  latency (us): p50 %.1f, p99 %.1f, p99.9 %.1f, max %.1f\n", p50, p99, p999, max);
    printf("  client CPU time: %.2f us per request\n", cpu_per_req);
    printf("echo_result conns=%ld size=%zu threads=%ld seconds=%.3f requests=%llu rps=%.1f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f cpu_us_per_req=%.2f errors=%d\n",
           conns, msg_size, threads, duration, (unsigned long long)done, rps, p50, p99, p999, max,
           cpu_per_req, errors);
    fflush(stdout);
    free(all);
    free(inbufs);
    free(cs);
    free(ws);
    free(pat);
    return errors ? 1 : 0;
}
