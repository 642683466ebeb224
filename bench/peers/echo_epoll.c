// SPDX-License-Identifier: MIT
/*
 * Peer echo server: hand-written epoll, nonblocking sockets, level-triggered.
 *
 *   echo_epoll [--host H] [--port N] [--threads N]
 *
 * Each thread has its own SO_REUSEPORT listener and its own epoll instance
 * and owns the connections it accepts; threads share nothing.  --threads 1
 * is the classic single-threaded event loop.
 *
 * Level-triggered, so a readable connection costs one recv and one send per
 * wake-up: there is no need to read until EAGAIN, since epoll reports the
 * socket again if bytes are left.  A send the socket buffer cannot take
 * whole keeps the rest, and the connection waits for EPOLLOUT instead of
 * EPOLLIN until it is out: a client that does not read is not read from.
 */
#define _GNU_SOURCE /* accept4 */
#include "echo_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>

struct conn {
    int fd;
    uint32_t off, len; /* bytes of buf still to send: buf[off, off+len) */
    char buf[ECHO_BUF];
};

static void drop(struct conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

static void watch(int ep, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends the pending bytes; 1 when all are out, 0 when the socket is full,
   -1 when the connection is gone. */
static int flush(struct conn *c)
{
    while (c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->off += (uint32_t)n;
        c->len -= (uint32_t)n;
    }
    return 1;
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("echo_epoll: accept4");
            return;
        }
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        echo_nodelay(fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            drop(c);
    }
}

static void on_event(int ep, struct conn *c, uint32_t events)
{
    if (c->len) { /* waiting for room to send */
        int r = flush(c);
        if (r < 0)
            drop(c);
        else if (r > 0)
            watch(ep, c, EPOLLIN);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        drop(c); /* end of stream or error */
        return;
    }
    c->off = 0;
    c->len = (uint32_t)n;
    int r = flush(c);
    if (r < 0)
        drop(c);
    else if (r == 0)
        watch(ep, c, EPOLLOUT);
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("echo_epoll: epoll");
        exit(1);
    }
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr)
                on_event(ep, evs[i].data.ptr, evs[i].events);
            else
                accept_all(ep, lfd);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct echo_opts o;
    echo_parse(argc, argv, &o);
    echo_signals();
    int *lfds = calloc((size_t)o.threads, sizeof *lfds);
    if (!lfds)
        return 1;
    /* Every listener is bound before any thread serves: a port that cannot
       be had fails the start, not a thread later. */
    for (int i = 0; i < o.threads; i++)
        lfds[i] = echo_listen(&o, SOCK_NONBLOCK);
    fprintf(stderr, "echo_epoll: listening on %s:%s, %d thread%s\n", o.host, o.port, o.threads,
            o.threads == 1 ? "" : "s");
    for (int i = 1; i < o.threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)lfds[i]) != 0) {
            fprintf(stderr, "echo_epoll: pthread_create failed\n");
            return 1;
        }
    }
    serve((void *)(intptr_t)lfds[0]);
    return 0;
}
