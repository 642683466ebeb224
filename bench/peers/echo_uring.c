// SPDX-License-Identifier: MIT
/*
 * Peer echo server: hand-written liburing, one ring per thread.
 *
 *   echo_uring [--host H] [--port N] [--threads N]
 *
 * Each thread has its own SO_REUSEPORT listener and its own ring, created
 * in that thread with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
 * (only this thread submits, and completions are processed when it asks
 * for them, not by interrupting it); a kernel that refuses those gets
 * IORING_SETUP_COOP_TASKRUN, and one that refuses that gets no flags.
 *
 * One multishot accept per listener (re-armed if the kernel ends it, and
 * replaced by one accept at a time on kernels without multishot).  Each
 * connection has one 16 KiB buffer and one operation in flight: a recv,
 * then a send of what it got (again for the rest after a short send), then
 * the next recv.  The recv carries IORING_RECVSEND_POLL_FIRST: it is issued
 * right after an echo went out, when the next request is almost never
 * there yet, so the kernel arms its poll at once instead of trying the read
 * first.  All new requests of a round go in with the wait for the next
 * completions, one io_uring_enter per round.
 */
#define _GNU_SOURCE
#include "echo_server.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RING_ENTRIES 1024
#define CQ_ENTRIES   8192

struct conn {
    int fd;
    bool sending;
    uint32_t off, len; /* while sending: buf[off, off+len) is still to go */
    char buf[ECHO_BUF];
};

struct server {
    struct io_uring ring;
    int lfd;
    bool multishot_accept, poll_first;
};

#define ACCEPT_TAG 0 /* user_data of the accept; a connection's is its address */

static struct io_uring_sqe *sqe_get(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    while (!sqe) { /* the queue is full: hand it to the kernel first */
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

static void arm_accept(struct server *s)
{
    struct io_uring_sqe *sqe = sqe_get(&s->ring);
    if (s->multishot_accept)
        io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ACCEPT_TAG);
}

static void arm_recv(struct server *s, struct conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(&s->ring);
    io_uring_prep_recv(sqe, c->fd, c->buf, sizeof c->buf, 0);
    if (s->poll_first)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data(sqe, c);
    c->sending = false;
}

static void arm_send(struct server *s, struct conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(&s->ring);
    io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, c);
    c->sending = true;
}

static void drop(struct conn *c)
{
    close(c->fd);
    free(c);
}

static void on_accept(struct server *s, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        /* A kernel without multishot accept says so with -EINVAL. */
        if (cqe->res == -EINVAL && s->multishot_accept)
            s->multishot_accept = false;
        arm_accept(s);
    }
    if (cqe->res < 0)
        return;
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        close(cqe->res);
        return;
    }
    c->fd = cqe->res;
    echo_nodelay(c->fd);
    arm_recv(s, c);
}

static void on_conn(struct server *s, struct conn *c, int res)
{
    if (!c->sending) {
        if (res == -EINVAL && s->poll_first) { /* a kernel before IORING_RECVSEND_POLL_FIRST */
            s->poll_first = false;
            arm_recv(s, c);
        } else if (res <= 0) {
            drop(c); /* end of stream or error */
        } else {
            c->off = 0;
            c->len = (uint32_t)res;
            arm_send(s, c);
        }
        return;
    }
    if (res < 0) {
        drop(c);
    } else if ((uint32_t)res < c->len) {
        c->off += (uint32_t)res;
        c->len -= (uint32_t)res;
        arm_send(s, c);
    } else {
        arm_recv(s, c);
    }
}

/* The ring, with the most helpful flags this kernel takes. */
static void ring_init(struct io_uring *ring)
{
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct io_uring_params p = {.flags = tries[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = CQ_ENTRIES};
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
        if (rc == 0) {
            io_uring_register_ring_fd(ring); /* saves a file lookup per enter */
            return;
        }
        if (rc != -EINVAL)
            break;
    }
    fprintf(stderr, "echo_uring: io_uring_queue_init_params: %s\n", strerror(-rc));
    exit(1);
}

static void *serve(void *arg)
{
    struct server *s = arg;
    ring_init(&s->ring);
    s->multishot_accept = true;
    s->poll_first = true;
    arm_accept(s);
    for (;;) {
        int rc = io_uring_submit_and_wait(&s->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            fprintf(stderr, "echo_uring: io_uring_submit_and_wait: %s\n", strerror(-rc));
            exit(1);
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&s->ring, head, cqe)
        {
            seen++;
            if (cqe->user_data == ACCEPT_TAG)
                on_accept(s, cqe);
            else
                on_conn(s, io_uring_cqe_get_data(cqe), cqe->res);
        }
        io_uring_cq_advance(&s->ring, seen);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct echo_opts o;
    echo_parse(argc, argv, &o);
    echo_signals();
    struct server *ss = calloc((size_t)o.threads, sizeof *ss);
    if (!ss)
        return 1;
    for (int i = 0; i < o.threads; i++)
        ss[i].lfd = echo_listen(&o, 0);
    fprintf(stderr, "echo_uring: listening on %s:%s, %d thread%s\n", o.host, o.port, o.threads,
            o.threads == 1 ? "" : "s");
    for (int i = 1; i < o.threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, &ss[i]) != 0) {
            fprintf(stderr, "echo_uring: pthread_create failed\n");
            return 1;
        }
    }
    serve(&ss[0]);
    return 0;
}
