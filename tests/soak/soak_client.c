// SPDX-License-Identifier: MIT
/*
 * The soak client: holds many connections to weft-echo or weft-http for a
 * while and treats them badly, checking every byte that comes back.
 *
 *   soak_client --port N [--host H] [--mode echo|http] [--conns C]
 *               [--seconds S] [--seed X]
 *
 * Each connection runs a few requests (echo: a message of 1 B to 4 KiB,
 * each different, compared byte for byte; http: GET /plaintext, its body
 * checked), then ends one of four ways: a clean close, a reset (SO_LINGER
 * 0), an abandoned request (half of it sent, then close), or silence (it
 * stays open and idle, and the server's idle timeout must close it -- in
 * echo mode, where there is none, it closes after a while itself).  A new
 * connection takes its place, so C are open at once.  One line a second:
 *
 *   soak t=S conns=C requests=N closes=N resets=N abandoned=N idled=N errors=0
 *
 * A byte that differs, a response that is not one, or a connection the
 * server closed in the middle of a request counts as an error; the run
 * ends with exit status 1 if there was any.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

enum { ECHO, HTTP };
enum end { END_CLOSE, END_RESET, END_ABANDON, END_IDLE };

struct conn {
    int fd;
    bool connecting;
    unsigned left;      /* requests before it ends */
    enum end how;
    size_t len, sent, got;
    unsigned char msg[4096];
    unsigned char in[4096 + 512];
    int64_t idle_until; /* END_IDLE: waiting for the server to close */
};

static int mode = ECHO;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static int ep;
static uint64_t rng = 88172645463325252ull;
static struct {
    uint64_t requests, closes, resets, abandoned, idled, errors;
} n;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char get[] = "GET /plaintext HTTP/1.1\r\nHost: soak\r\n\r\n";

static void next_request(struct conn *c)
{
    c->sent = c->got = 0;
    if (mode == ECHO) {
        c->len = 1 + rnd() % sizeof c->msg;
        for (size_t i = 0; i < c->len; i++)
            c->msg[i] = (unsigned char)rnd();
    } else {
        c->len = sizeof get - 1;
        memcpy(c->msg, get, c->len);
    }
}

static void open_conn(struct conn *c)
{
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("soak_client: socket");
        exit(2);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connecting = connect(c->fd, (struct sockaddr *)&addr, addrlen) < 0;
    if (c->connecting && errno != EINPROGRESS) {
        perror("soak_client: connect");
        exit(2);
    }
    unsigned r = (unsigned)(rnd() % 100);
    c->how = r < 55 ? END_CLOSE : r < 75 ? END_RESET : r < 92 ? END_ABANDON : END_IDLE;
    c->left = 1 + (unsigned)(rnd() % 20);
    c->idle_until = 0;
    next_request(c);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void end_conn(struct conn *c, bool reset)
{
    if (reset) {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd);
    open_conn(c);
}

static void error(struct conn *c, const char *what)
{
    if (n.errors++ < 10)
        fprintf(stderr, "soak_client: error: %s\n", what);
    end_conn(c, false);
}

/* A request finished: the next, or the end. */
static void done(struct conn *c)
{
    n.requests++;
    if (--c->left) {
        next_request(c);
        return;
    }
    switch (c->how) {
    case END_CLOSE:
        n.closes++;
        end_conn(c, false);
        return;
    case END_RESET:
        n.resets++;
        end_conn(c, true);
        return;
    case END_ABANDON:
        /* Half a request, then away. */
        n.abandoned++;
        next_request(c);
        if (send(c->fd, c->msg, c->len / 2 + (c->len == 1), MSG_NOSIGNAL) < 0) {
            /* the server may have gone: the close below is all there is */
        }
        end_conn(c, rnd() % 2);
        return;
    case END_IDLE:
        n.idled++;
        c->idle_until = now_ms() + (mode == ECHO ? 2000 : 15000);
        c->len = 0; /* nothing more to send */
        return;
    }
}

/* Whether in[0, got) holds a whole response; -1 if it is not one. */
static int http_complete(struct conn *c)
{
    c->in[c->got] = 0;
    char *end = strstr((char *)c->in, "\r\n\r\n");
    if (!end)
        return c->got > 1024 ? -1 : 0;
    if (strncmp((char *)c->in, "HTTP/1.1 200 ", 13) != 0)
        return -1;
    size_t body = (size_t)(end + 4 - (char *)c->in);
    if (c->got < body + 13)
        return 0;
    if (c->got > body + 13 || memcmp(end + 4, "Hello, World!", 13) != 0)
        return -1;
    return 1;
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->connecting) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            error(c, strerror(err));
            return;
        }
        c->connecting = false;
    }
    if ((ev & EPOLLOUT) && c->sent < c->len) {
        ssize_t k = send(c->fd, c->msg + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (k > 0)
            c->sent += (size_t)k;
        else if (k < 0 && errno != EAGAIN) {
            error(c, "send failed");
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t k = recv(c->fd, c->in + c->got, sizeof c->in - 1 - c->got, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN)) {
            if (c->idle_until) {
                c->idle_until = 0; /* the server closed an idle connection */
                end_conn(c, false);
            } else {
                error(c, k == 0 ? "the server closed a connection mid-request" : "recv failed");
            }
            return;
        }
        if (k < 0)
            return;
        if (c->idle_until) {
            error(c, "bytes on an idle connection");
            return;
        }
        c->got += (size_t)k;
        int r;
        if (mode == ECHO)
            r = c->got > c->sent || memcmp(c->in, c->msg, c->got) != 0 ? -1 : c->got == c->len;
        else
            r = http_complete(c);
        if (r < 0)
            error(c, mode == ECHO ? "an echoed byte differs" : "not the expected response");
        else if (r > 0)
            done(c);
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = NULL;
    unsigned conns = 1000, seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host"))
            host = argv[i + 1];
        else if (!strcmp(argv[i], "--port"))
            port = argv[i + 1];
        else if (!strcmp(argv[i], "--mode"))
            mode = !strcmp(argv[i + 1], "http") ? HTTP : ECHO;
        else if (!strcmp(argv[i], "--conns"))
            conns = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            rng = strtoull(argv[i + 1], NULL, 0) | 1;
    }
    if (!port || !conns) {
        fprintf(stderr, "usage: soak_client --port N [--host H] [--mode echo|http] [--conns C] "
                        "[--seconds S] [--seed X]\n");
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "soak_client: cannot resolve %s:%s\n", host, port);
        return 2;
    }
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < conns + 64) {
        rl.rlim_cur = rl.rlim_max < conns + 64 ? rl.rlim_max : conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < conns + 64)
            conns = (unsigned)rl.rlim_cur - 64;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *cs = calloc(conns, sizeof *cs);
    if (!cs)
        return 2;
    for (unsigned i = 0; i < conns; i++)
        open_conn(&cs[i]);
    int64_t start = now_ms(), next = start + 1000, stop = start + (int64_t)seconds * 1000;
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        int64_t t = now_ms();
        if (t >= next) {
            /* Echo has no idle timeout: its silent connections end here.
               weft-http must have closed them long before. */
            for (unsigned i = 0; i < conns; i++)
                if (cs[i].idle_until && t >= cs[i].idle_until) {
                    cs[i].idle_until = 0;
                    if (mode == HTTP)
                        error(&cs[i], "the server kept an idle connection open");
                    else
                        end_conn(&cs[i], false);
                }
            printf("soak t=%lld conns=%u requests=%llu closes=%llu resets=%llu abandoned=%llu "
                   "idled=%llu errors=%llu\n",
                   (long long)((t - start) / 1000), conns, (unsigned long long)n.requests,
                   (unsigned long long)n.closes, (unsigned long long)n.resets,
                   (unsigned long long)n.abandoned, (unsigned long long)n.idled,
                   (unsigned long long)n.errors);
            fflush(stdout);
            next += 1000;
        }
        if (t >= stop)
            break;
    }
    for (unsigned i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    close(ep);
    return n.errors ? 1 : 0;
}
