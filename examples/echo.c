// SPDX-License-Identifier: MIT
/*
 * weft-echo: a TCP echo server, one task per connection.
 *
 *   weft-echo [--port N] [--host H] [--threads N]
 *
 * Listens on port 7000 on every address by default, with one worker per
 * CPU.  SIGINT or SIGTERM stops it cleanly: the listener closes, open
 * connections get 5 seconds to finish, then they are canceled, and the
 * loop is torn down.
 */
#include <weft/weft.h>

#include <errno.h>
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
        weft_group_async(io, &sv->conns, serve, &fd, sizeof fd);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: weft-echo [--port N] [--host H] [--threads N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *port = "7000", *host = NULL;
    unsigned threads = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--port"))
            port = argv[++i];
        else if (!strcmp(argv[i], "--host"))
            host = argv[++i];
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)atoi(argv[++i]);
        else
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

    weft_event_loop *el;
    weft_event_loop_options o = {.threads = threads};
    int rc = weft_event_loop_init(&el, &o);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: weft_event_loop_init: %s\n", strerror(-rc));
        return 1;
    }
    weft_io io = weft_event_loop_io(el);
    struct server sv = {-1, WEFT_GROUP_INIT}, *svp = &sv;
    sv.listener = weft_tcp_listen(io, host, port, 4096);
    if (sv.listener < 0) {
        fprintf(stderr, "weft-echo: listen on %s:%s: %s\n", host ? host : "*", port,
                strerror(-sv.listener));
        weft_event_loop_deinit(el);
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int bound = 0;
    if (getsockname(sv.listener, (struct sockaddr *)&ss, &sl) == 0)
        bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    fprintf(stderr, "weft-echo: listening on %s:%d\n", host ? host : "*", bound);

    weft_future *acceptor = weft_async(io, accept_loop, &svp, sizeof svp, 0);
    struct signalfd_siginfo si;
    ssize_t n = weft_read(io, sfd, &si, sizeof si);
    fprintf(stderr, "weft-echo: %s, stopping\n",
            n == (ssize_t)sizeof si ? strsignal((int)si.ssi_signo) : "signalfd failed");

    /* Stop accepting, give the connections time to finish, then cancel. */
    weft_cancel(io, acceptor, NULL);
    weft_close(io, sv.listener);
    int64_t now;
    weft_now(io, CLOCK_MONOTONIC, &now);
    weft_deadline_set(io, now + 5 * 1000000000LL);
    weft_group_wait(io, &sv.conns); /* past the deadline: cancels the rest */
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    weft_group_cancel(io, &sv.conns);
    weft_event_loop_deinit(el);
    close(sfd);
    return 0;
}
