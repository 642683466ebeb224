// SPDX-License-Identifier: MIT
/*
 * What the C echo peers (echo_epoll.c, echo_uring.c) share with each other
 * and with weft-echo's command line:
 *
 *   --host H     address to listen on (default 127.0.0.1)
 *   --port N     port (default 7000)
 *   --threads N  serving threads, 0 for one per CPU (the default)
 *
 * Each serving thread has its own listening socket, bound to the same
 * address with SO_REUSEPORT, so the kernel spreads new connections over the
 * threads and no thread ever hands a connection to another.  SIGINT and
 * SIGTERM end the process at once with status 0: the kernel closes every
 * socket, and there is nothing else to flush.
 */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_BUF 16384 /* bytes read at a time, per connection */

struct echo_opts {
    const char *host, *port;
    int threads;
};

static void echo_parse(int argc, char **argv, struct echo_opts *o)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct echo_opts){.host = "127.0.0.1", .port = "7000", .threads = 0};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = optarg;
            break;
        case 't':
            o->threads = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [--host H] [--port N] [--threads N (0: one per CPU)]\n",
                    argv[0]);
            exit(2);
        }
    }
    if (o->threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = n > 0 ? (int)n : 1;
    }
}

/* A listening socket on host:port with SO_REUSEPORT; exits on failure. */
static int echo_listen(const struct echo_opts *o, int sock_flags)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai;
    int rc = getaddrinfo(o->host, o->port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | sock_flags, ai->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        fprintf(stderr, "echo: listen on %s:%s: %s\n", o->host, o->port, strerror(errno));
        exit(1);
    }
    freeaddrinfo(ai);
    return fd;
}

/* Echo servers answer small requests one at a time: never wait for more. */
static inline void echo_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void echo_on_signal(int sig)
{
    (void)sig;
    _exit(0);
}

/* Exits with status 0 on SIGINT and SIGTERM; ignores SIGPIPE. */
static void echo_signals(void)
{
    signal(SIGINT, echo_on_signal);
    signal(SIGTERM, echo_on_signal);
    signal(SIGPIPE, SIG_IGN);
}

#endif
