// SPDX-License-Identifier: MIT
/*
 * Memory per idle connection: N TCP connections (default 10,000) accepted
 * by weft, each with a task blocked in weft_recv on a buffer on its stack
 * (4 KiB; bench_idle_16k: 16 KiB).  The clients are a child process, so that the server's resident
 * memory is the server's own.  Prints the server's RSS growth per
 * connection (what the tasks, their stacks and the loop add; the kernel's
 * socket memory is not in RSS).
 *
 *   bench_idle [N]
 */
#include <weft/weft.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

#ifndef IDLE_BUF
#define IDLE_BUF 4096
#endif

static _Atomic long blocked;

static void idle_conn(weft_io io, void *ctx, void *result)
{
    (void)result;
    int fd = *(int *)ctx;
    char buf[IDLE_BUF];
    atomic_fetch_add(&blocked, 1);
    ssize_t n;
    while ((n = weft_recv(io, fd, buf, sizeof buf, 0)) > 0)
        ;
    weft_close(io, fd);
}

static void clients(int port, int n, int ready, int done)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            perror("bench_idle: client");
            _exit(1);
        }
    }
    char c = 1;
    if (write(ready, &c, 1) != 1 || read(done, &c, 1) < 0)
        _exit(1);
    _exit(0);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)n + 64 > rl.rlim_cur) {
        fprintf(stderr, "bench_idle: %d connections need more fds than RLIMIT_NOFILE allows\n", n);
        return 0;
    }
    weft_event_loop *el;
    weft_event_loop_options o = {0};
    if (weft_event_loop_init(&el, &o) < 0) {
        fprintf(stderr, "bench_idle: no event loop here\n");
        return 0;
    }
    weft_io io = weft_event_loop_io(el);
    int l = weft_tcp_listen(io, "127.0.0.1", "0", 4096);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        clients(ntohs(sa.sin_port), n, up[1], down[0]);
    weft_group g = WEFT_GROUP_INIT;
    long before = rss_kib();
    for (int i = 0; i < n; i++) {
        int fd = weft_accept(io, l, NULL, NULL, 0);
        if (fd < 0) {
            fprintf(stderr, "bench_idle: accept: %s\n", strerror(-fd));
            return 1;
        }
        weft_group_async(io, &g, idle_conn, &fd, sizeof fd);
    }
    while (atomic_load(&blocked) < n)
        weft_yield(io);
    weft_sleep(io, 100 * 1000000LL); /* every recv submitted */
    char c;
    if (read(up[0], &c, 1) != 1)
        return 1;
    long after = rss_kib();
    printf("weft idle_conns %d buffer %d B: %.2f KiB RSS per connection (%ld -> %ld KiB)\n", n,
           IDLE_BUF, (double)(after - before) / n, before, after);
    if (write(down[1], &c, 1) != 1)
        return 1;
    waitpid(pid, NULL, 0);
    weft_group_wait(io, &g); /* the clients' exit closes every connection */
    weft_close(io, l);
    weft_event_loop_deinit(el);
    return 0;
}
