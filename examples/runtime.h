// SPDX-License-Identifier: MIT
/*
 * What the example servers share: choosing their Io (--io event_loop or
 * thread_pool, the thread pool where io_uring cannot be had, saying why),
 * and the port a listener was given.
 */
#ifndef WEFT_EXAMPLES_RUNTIME_H
#define WEFT_EXAMPLES_RUNTIME_H

#include <weft/weft.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct runtime {
    weft_event_loop *el;
    weft_thread_pool *tp;
    weft_io io;
};

/* Why weft_event_loop_init failed, in words. */
static inline const char *runtime_loop_error(int rc, char *buf, size_t len)
{
    if (rc == -EPERM || rc == -ENOSYS) {
        int fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
        char v = '0';
        if (fd >= 0) {
            if (read(fd, &v, 1) != 1)
                v = '0';
            close(fd);
        }
        if (rc == -ENOSYS)
            snprintf(buf, len, "this kernel has no io_uring (%s)", strerror(-rc));
        else if (v != '0')
            snprintf(buf, len,
                     "io_uring is disabled by the sysctl kernel.io_uring_disabled=%c (%s)", v,
                     strerror(-rc));
        else
            snprintf(buf, len,
                     "io_uring is not permitted here, by a seccomp filter or a "
                     "container's policy (%s)",
                     strerror(-rc));
        return buf;
    }
    snprintf(buf, len, "%s", strerror(-rc));
    return buf;
}

/* "event_loop" or "thread_pool" (anything else: false). */
static inline bool runtime_parse(const char *v, bool *pool)
{
    if (!strcmp(v, "thread_pool"))
        *pool = true;
    else if (!strcmp(v, "event_loop"))
        *pool = false;
    else
        return false;
    return true;
}

/* The event loop with `threads` workers, or the thread pool with at most
   `threads` threads for weft_async (0: a default): the loop unless pool,
   or unless io_uring cannot be had, which is said on stderr.  0, or the
   pool's error (said too). */
static inline int runtime_open(struct runtime *rt, const char *name, bool pool, unsigned threads)
{
    *rt = (struct runtime){NULL, NULL, {NULL, NULL}};
    if (!pool) {
        weft_event_loop_options o = {.threads = threads};
        int rc = weft_event_loop_init(&rt->el, &o);
        if (rc == 0) {
            rt->io = weft_event_loop_io(rt->el);
            return 0;
        }
        char why[256];
        fprintf(stderr, "%s: weft_event_loop_init: %s; using the thread pool instead\n", name,
                runtime_loop_error(rc, why, sizeof why));
    }
    weft_thread_pool_options o = {.max_threads = threads};
    int rc = weft_thread_pool_init(&rt->tp, &o);
    if (rc < 0) {
        fprintf(stderr, "%s: weft_thread_pool_init: %s\n", name, strerror(-rc));
        return rc;
    }
    rt->io = weft_thread_pool_io(rt->tp);
    return 0;
}

static inline const char *runtime_name(const struct runtime *rt)
{
    return rt->el ? "event loop" : "thread pool";
}

static inline void runtime_close(struct runtime *rt)
{
    if (rt->el)
        weft_event_loop_deinit(rt->el);
    else if (rt->tp)
        weft_thread_pool_deinit(rt->tp);
    rt->el = NULL;
    rt->tp = NULL;
}

/* Prepares a listener for several accept tasks.  On the thread pool an
   accept waits in poll and then calls accept(2), and with many threads
   on one listener, poll wakes them all for one connection: the losers
   would block in accept(2), where no cancel reaches them, and a stop
   would wait for ever.  A non-blocking listener sends them back to poll.
   (The event loop's accepts need no such thing: the ring waits for them.) */
static inline void runtime_listener(const struct runtime *rt, int fd)
{
    if (rt->tp) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

/* Waits up to grace_ns for the group's tasks to end, then cancels the
   ones left: how the servers let their connections finish on a stop. */
static inline void runtime_finish_group(weft_io io, weft_group *g, int64_t grace_ns)
{
    int64_t now = 0;
    weft_now(io, CLOCK_MONOTONIC, &now);
    weft_deadline_set(io, now + grace_ns);
    weft_group_wait(io, g); /* past the deadline: cancels the rest */
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    weft_group_cancel(io, g);
}

/* Whether s is a port number, 0 to 65535 (0: the kernel chooses). */
static inline bool runtime_port_ok(const char *s)
{
    if (!*s || strlen(s) > 5)
        return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    return v <= 65535;
}

/* The port a listening socket is bound to. */
static inline int runtime_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

#endif
