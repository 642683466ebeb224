// SPDX-License-Identifier: MIT
/*
 * weft-echo: a TCP echo server, one task per connection.
 *
 *   weft-echo [--port N] [--host H] [--threads N] [--io event_loop|thread_pool]
 *
 * Listens on port 7000 on every address by default.  The same code runs on
 * fibers (--io event_loop, the default: --threads workers, one per CPU by
 * default) or on OS threads (--io thread_pool: a thread per connection;
 * --threads caps the pool's idle-thread reuse, as max_threads).  Where
 * io_uring cannot be had, the event loop's init fails, the error says why,
 * and the server runs on the thread pool instead.  SIGINT or SIGTERM stops
 * it cleanly: the listener closes, open connections get 5 seconds to
 * finish, then they are canceled, and the Io is torn down.
 */
#include "runtime.h"

#include <weft/weft.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct server {
    int listener;
    weft_group conns;
};

static void serve(weft_io io, void *ctx, void *result)
{
    (void)result;
    int fd = *(int *)ctx;
    char buf[16384];
    for (;;) {
        ssize_t n = weft_recv(io, fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        if (weft_write_all(io, fd, buf, (size_t)n) < 0)
            break;
    }
    weft_close(io, fd);
}

static void accept_loop(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct server *sv = *(struct server **)ctx;
    for (;;) {
        int fd = weft_accept(io, sv->listener, NULL, NULL, 0);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EINVAL || fd == -EBADF)
                break; /* shut down */
            if (fd == -EMFILE || fd == -ENFILE) {
                fprintf(stderr, "weft-echo: accept: %s\n", strerror(-fd));
                weft_sleep(io, 10 * 1000000LL);
            }
            continue;
        }
        /* A task of its own for each connection, or none: on the thread
           pool, weft_group_async would run it inline here once the pool's
           threads are busy, and nobody would accept meanwhile. */
        int rc = weft_group_concurrent(io, &sv->conns, serve, &fd, sizeof fd);
        if (rc < 0) {
            fprintf(stderr, "weft-echo: no task for a connection: %s\n", strerror(-rc));
            weft_close(io, fd);
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: weft-echo [--port N] [--host H] [--threads N] "
                    "[--io event_loop|thread_pool]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *port = "7000", *host = NULL;
    unsigned threads = 0;
    bool pool = false;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--port")) {
            port = argv[++i];
            if (!runtime_port_ok(port))
                usage();
        }
        else if (!strcmp(argv[i], "--host"))
            host = argv[++i];
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--io")) {
            if (!runtime_parse(argv[++i], &pool))
                usage();
        } else
            usage();
    }

    /* Signals are read from a signalfd by a task: blocked in every thread
       (the workers inherit this mask). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("weft-echo: signalfd");
        return 1;
    }

    struct runtime rt;
    if (runtime_open(&rt, "weft-echo", pool, threads) < 0)
        return 1;
    weft_io io = rt.io;
    struct server sv = {-1, WEFT_GROUP_INIT}, *svp = &sv;
    sv.listener = weft_tcp_listen(io, host, port, 4096);
    if (sv.listener < 0) {
        fprintf(stderr, "weft-echo: listen on %s:%s: %s\n", host ? host : "*", port,
                strerror(-sv.listener));
        runtime_close(&rt);
        return 1;
    }
    runtime_listener(&rt, sv.listener);
    fprintf(stderr, "weft-echo (%s): listening on %s:%d\n", runtime_name(&rt), host ? host : "*",
            runtime_port(sv.listener));

    weft_future *acceptor;
    int rc = weft_concurrent(io, &acceptor, accept_loop, &svp, sizeof svp, 0);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: no task to accept with: %s\n", strerror(-rc));
        weft_close(io, sv.listener);
        runtime_close(&rt);
        return 1;
    }
    struct signalfd_siginfo si;
    ssize_t n = weft_read(io, sfd, &si, sizeof si);
    fprintf(stderr, "weft-echo: %s, stopping\n",
            n == (ssize_t)sizeof si ? strsignal((int)si.ssi_signo) : "signalfd failed");

    /* Stop accepting, give the connections time to finish, then cancel. */
    weft_cancel(io, acceptor, NULL);
    weft_close(io, sv.listener);
    runtime_finish_group(io, &sv.conns, 5 * 1000000000LL);
    runtime_close(&rt);
    close(sfd);
    return 0;
}
