// SPDX-License-Identifier: MIT
/*
 * Files, directories, sockets, cancellation and deadlines, written once
 * against weft_io and run on the event loop (1, 2 and 4 workers, with the
 * offload threads forced, and on the oldest ring paths), on the thread
 * pool (1, 4 and 64 threads) and on the blocking Io.
 */
#include "contract.h"

#include <weft/weft.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>

#define MS   1000000LL
#define HOUR (3600LL * 1000000000LL)

static const struct impl impl_offload = {"event_loop/offload", 2, false};
static const struct impl impl_compat = {"event_loop/compat", 2, false};

/* CONTRACT's implementations, and the event loop's offload and compat
   paths. */
#define IO_CONTRACT(suite, name, secs)                                                             \
    static void name##_body(weft_io io, const struct impl *im);                                    \
    CONTRACT_ON(suite, event_loop_1, name, secs, impl_el1, (void)0)                                \
    CONTRACT_ON(suite, event_loop_2, name, secs, impl_el2, (void)0)                                \
    CONTRACT_ON(suite, event_loop_4, name, secs, impl_el4, (void)0)                                \
    CONTRACT_ON(suite, offload, name, secs, impl_offload, setenv("WEFT_URING_OFFLOAD", "1", 1))    \
    CONTRACT_ON(suite, compat, name, secs, impl_compat, setenv("WEFT_URING_COMPAT", "1", 1))       \
    CONTRACT_ON(suite, thread_pool_1, name, secs, impl_tp1, (void)0)                               \
    CONTRACT_ON(suite, thread_pool_4, name, secs, impl_tp4, (void)0)                               \
    CONTRACT_ON(suite, thread_pool_64, name, secs, impl_tp64, (void)0)                             \
    CONTRACT_ON(suite, blocking, name, secs, impl_blocking, (void)0)                               \
    static void name##_body(weft_io io, const struct impl *im)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A fresh directory, as an fd; removed (with its files) by rm_dir. */
static int tmp_dir(char *path, size_t len)
{
    snprintf(path, len, "/tmp/weft-io-XXXXXX");
    cr_assert(mkdtemp(path), "mkdtemp: %s", strerror(errno));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}

static void rm_dir(const char *path, int dfd)
{
    DIR *d = fdopendir(dup(dfd));
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            if (unlinkat(dfd, e->d_name, 0) < 0)
                unlinkat(dfd, e->d_name, AT_REMOVEDIR);
    if (d)
        closedir(d);
    close(dfd);
    rmdir(path);
}

/* Open sockets (the loop's own rings and eventfds aside, which it makes
   on first use). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

static uint32_t rng_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* ---- files --------------------------------------------------------------------- */

IO_CONTRACT(files, pwrite_and_pread_at_random_offsets_round_trip, 60)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "data", O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "weft_open's fd is close-on-exec");
    size_t chunk = 64 * 1024, n = test_scaled(128), size = n * chunk;
    unsigned char *want = malloc(size), *got = malloc(size);
    uint32_t x = 12345;
    for (size_t i = 0; i < size; i++)
        want[i] = (unsigned char)rng_next(&x);
    /* Chunks of random sizes written at random places, out of order. */
    for (size_t k = 0; k < n; k++) {
        size_t i = (k * 7919) % n;
        ssize_t w = weft_pwrite(io, fd, want + i * chunk, chunk, (int64_t)(i * chunk));
        cr_assert_eq(w, (ssize_t)chunk, "pwrite: %zd", w);
    }
    memset(got, 0, size);
    for (int r = 0; r < 200; r++) {
        size_t off = rng_next(&x) % size, len = 1 + rng_next(&x) % 70000;
        if (off + len > size)
            len = size - off;
        ssize_t g = weft_pread(io, fd, got, len, (int64_t)off);
        cr_assert_eq(g, (ssize_t)len);
        cr_assert_eq(memcmp(got, want + off, len), 0, "bytes at %zu", off);
    }
    /* End of file is 0. */
    cr_assert_eq(weft_pread(io, fd, got, 10, (int64_t)size), 0);
    /* The whole file, with read_all from the start. */
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    cr_assert_eq(weft_read_all(io, fd, got, size), (ssize_t)size);
    cr_assert_eq(memcmp(got, want, size), 0);
    cr_assert_eq(weft_read(io, fd, got, 1), 0);
    cr_assert_eq(weft_close(io, fd), 0);
    free(want);
    free(got);
    rm_dir(dir, dfd);
}

IO_CONTRACT(files, readv_writev_and_write_all, 30)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "v", O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    char a[100], b[3000], c[7];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    memset(c, 'c', sizeof c);
    struct iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
    cr_assert_eq(weft_writev(io, fd, iov, 3), 3107);
    cr_assert_eq(weft_pwritev(io, fd, iov, 1, 5000), 100);
    char x[100], y[3000], z[7];
    struct iovec in[3] = {{x, sizeof x}, {y, sizeof y}, {z, sizeof z}};
    cr_assert_eq(weft_preadv(io, fd, in, 3, 0), 3107);
    cr_assert(!memcmp(x, a, 100) && !memcmp(y, b, 3000) && !memcmp(z, c, 7));
    static char big[1 << 20];
    memset(big, 'q', sizeof big);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    cr_assert_eq(weft_write_all(io, fd, big, sizeof big), (ssize_t)sizeof big);
    cr_assert_eq(weft_close(io, fd), 0);
    rm_dir(dir, dfd);
}

IO_CONTRACT(files, metadata_directories_and_their_errors, 30)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "f", O_RDWR | O_CREAT, 0640);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft_write(io, fd, "hello", 5), 5);
    cr_assert_eq(weft_fsync(io, fd, false), 0);
    cr_assert_eq(weft_fsync(io, fd, true), 0);
    cr_assert_eq(weft_ftruncate(io, fd, 3), 0);
    struct statx st;
    cr_assert_eq(weft_statx(io, dfd, "f", 0, STATX_SIZE | STATX_MODE, &st), 0);
    cr_assert_eq(st.stx_size, 3);
    cr_assert_eq(st.stx_mode & 0777, 0640);
    cr_assert_eq(weft_mkdir(io, dfd, "d", 0750), 0);
    cr_assert_eq(weft_mkdir(io, dfd, "d", 0750), -EEXIST);
    cr_assert_eq(weft_rename(io, dfd, "f", dfd, "d/g", 0), 0);
    cr_assert_eq(weft_statx(io, dfd, "f", 0, STATX_SIZE, &st), -ENOENT);
    cr_assert_eq(weft_open(io, dfd, "missing", O_RDONLY, 0), -ENOENT);
    cr_assert_eq(weft_open(io, dfd, "d", O_WRONLY, 0), -EISDIR);
    cr_assert_eq(weft_unlink(io, dfd, "d", AT_REMOVEDIR), -ENOTEMPTY);
    cr_assert_eq(weft_rename(io, dfd, "d/g", dfd, "h", RENAME_NOREPLACE), 0);
    int other = weft_open(io, dfd, "i", O_RDWR | O_CREAT, 0600);
    cr_assert_geq(other, 0);
    cr_assert_eq(weft_rename(io, dfd, "h", dfd, "i", RENAME_NOREPLACE), -EEXIST);
    /* The directory iterator, 200 entries, "." and ".." skipped. */
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "d/e%03d", i);
        int e = weft_open(io, dfd, name, O_WRONLY | O_CREAT, 0600);
        cr_assert_geq(e, 0);
        weft_close(io, e);
    }
    weft_dir *d;
    cr_assert_eq(weft_dir_open(io, dfd, "d", &d), 0);
    bool seen[200] = {false};
    const char *nm;
    unsigned char type;
    int n = 0, r;
    while ((r = weft_dir_next(io, d, &nm, &type)) == 1) {
        cr_assert(nm[0] == 'e', "entry %s", nm);
        cr_assert_eq(type, DT_REG);
        seen[atoi(nm + 1)] = true;
        n++;
    }
    cr_assert_eq(r, 0);
    cr_assert_eq(n, 200);
    for (int i = 0; i < 200; i++)
        cr_assert(seen[i]);
    weft_dir_close(io, d);
    cr_assert_eq(weft_dir_open(io, dfd, "nope", &d), -ENOENT);
    cr_assert_null(d);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "d/e%03d", i);
        cr_assert_eq(weft_unlink(io, dfd, name, 0), 0);
    }
    cr_assert_eq(weft_unlink(io, dfd, "d", AT_REMOVEDIR), 0);
    cr_assert_eq(weft_unlink(io, dfd, "d", AT_REMOVEDIR), -ENOENT);
    weft_close(io, fd);
    weft_close(io, other);
    rm_dir(dir, dfd);
}

IO_CONTRACT(files, bad_input_gets_a_clear_error, 30)
{
    (void)im;
    char buf[8];
    cr_assert_eq(weft_read(io, 987654, buf, sizeof buf), -EBADF);
    cr_assert_eq(weft_write(io, -1, buf, sizeof buf), -EBADF);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    cr_assert_eq(weft_write(io, fds[1], NULL, 0), 0);
    struct iovec iov[2] = {{buf, 1}, {buf, 1}};
    cr_assert_eq(weft_writev(io, fds[1], iov, IOV_MAX + 1), -EINVAL);
    cr_assert_eq(weft_writev(io, fds[1], iov, -1), -EINVAL);
    char path[PATH_MAX + 16];
    memset(path, 'x', sizeof path - 1);
    path[sizeof path - 1] = 0;
    cr_assert_eq(weft_open(io, AT_FDCWD, path, O_RDONLY, 0), -ENAMETOOLONG);
    weft_op op = weft__op(999, -1);
    cr_assert_eq(weft_operate(io, &op), -EINVAL);
    close(fds[0]);
    close(fds[1]);
}

/* ---- sockets ------------------------------------------------------------------- */

static int listen_any(weft_io io, const char *host, int *port)
{
    int l = weft_tcp_listen(io, host, "0", 128);
    cr_assert_geq(l, 0, "weft_tcp_listen: %s", strerror(-l));
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(l, (struct sockaddr *)&ss, &len);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return l;
}

struct conn_ctx {
    int fd;
    int rounds;
    _Atomic long *bytes;
};

static void echo_conn(weft_io io, void *ctx, void *result)
{
    (void)result;
    int fd = *(int *)ctx;
    char buf[65536];
    ssize_t n;
    while ((n = weft_recv(io, fd, buf, sizeof buf, 0)) > 0)
        if (weft_write_all(io, fd, buf, (size_t)n) != n)
            break;
    weft_close(io, fd);
}

static void acceptor(weft_io io, void *ctx, void *result)
{
    (void)result;
    int l = ((int *)ctx)[0], n = ((int *)ctx)[1];
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < n; i++) {
        int fd = weft_accept(io, l, NULL, NULL, 0);
        cr_assert_geq(fd, 0, "accept: %s", strerror(-fd));
        cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        weft_group_async(io, &g, echo_conn, &fd, sizeof fd);
    }
    weft_group_wait(io, &g);
}

static void client(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct conn_ctx *c = ctx;
    uint32_t x = (uint32_t)c->fd * 2654435761u | 1;
    char *out = malloc(65536), *in = malloc(65536);
    cr_assert(out && in);
    for (int r = 0; r < c->rounds; r++) {
        size_t len = 1 + rng_next(&x) % (r % 4 == 3 ? 65536 : 512);
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(x + i);
        cr_assert_eq(weft_write_all(io, c->fd, out, len), (ssize_t)len);
        cr_assert_eq(weft_read_all(io, c->fd, in, len), (ssize_t)len);
        cr_assert_eq(memcmp(in, out, len), 0);
        atomic_fetch_add(c->bytes, (long)len);
    }
    free(out);
    free(in);
    weft_close(io, c->fd);
}

IO_CONTRACT(sockets, hundreds_of_tcp_connections_echo_every_byte, 120)
{
    NEEDS_CONCURRENCY(im);
    int port;
    int l = listen_any(io, "127.0.0.1", &port);
    /* The loop's own fds (a ring for wake-ups from its helper threads) are
       made on first use: use them once before counting. */
    char ps0[16];
    snprintf(ps0, sizeof ps0, "%d", port);
    weft_close(io, weft_tcp_connect(io, "127.0.0.1", ps0));
    weft_close(io, weft_accept(io, l, NULL, NULL, 0));
    int before = count_fds();
    int n = (int)test_scaled(300);
    int actx[2] = {l, n};
    weft_future *a;
    cr_assert_eq(weft_concurrent(io, &a, acceptor, actx, sizeof actx, 0), 0);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    _Atomic long bytes = 0;
    weft_group g = WEFT_GROUP_INIT;
    for (int i = 0; i < n; i++) {
        int fd = weft_tcp_connect(io, "127.0.0.1", ps);
        cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
        struct conn_ctx c = {fd, 20, &bytes};
        test_group_spawn(io, &g, client, &c, sizeof c);
    }
    weft_group_wait(io, &g);
    weft_await(io, a, NULL);
    cr_assert_gt(atomic_load(&bytes), 0);
    cr_assert_eq(count_fds(), before, "an fd leaked");
    weft_close(io, l);
}

IO_CONTRACT(sockets, connect_to_a_closed_port_is_refused, 30)
{
    (void)im;
    int port;
    int l = listen_any(io, "127.0.0.1", &port);
    weft_close(io, l); /* now nothing listens there */
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    cr_assert_eq(weft_tcp_connect(io, "127.0.0.1", ps), -ECONNREFUSED);
    cr_assert_eq(weft_tcp_connect(io, "no-such-host.invalid", "80"), -ENOENT);
    cr_assert_eq(weft_tcp_listen(io, NULL, "not-a-service", 1), -ENOENT);
}

IO_CONTRACT(sockets, udp_unix_ipv6_and_shutdown, 30)
{
    (void)im;
    /* UDP on loopback, sendmsg/recvmsg with an address. */
    int u1 = weft_socket(io, AF_INET, SOCK_DGRAM, 0), u2 = weft_socket(io, AF_INET, SOCK_DGRAM, 0);
    cr_assert(u1 >= 0 && u2 >= 0);
    cr_assert(fcntl(u1, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(u1, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(u1, (struct sockaddr *)&sa, &len);
    char msg[] = "datagram";
    struct iovec iov = {msg, sizeof msg};
    struct msghdr mh = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov, .msg_iovlen = 1};
    cr_assert_eq(weft_sendmsg(io, u2, &mh, 0), (ssize_t)sizeof msg);
    char in[64];
    struct sockaddr_in from;
    struct iovec iin = {in, sizeof in};
    struct msghdr rh = {
        .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iin, .msg_iovlen = 1};
    cr_assert_eq(weft_recvmsg(io, u1, &rh, 0), (ssize_t)sizeof msg);
    cr_assert_str_eq(in, msg);
    weft_close(io, u1);
    weft_close(io, u2);

    /* Unix stream sockets. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-io-%d.sock", getpid());
    unlink(path);
    int ul = weft_unix_listen(io, path, 4);
    cr_assert_geq(ul, 0, "unix_listen: %s", strerror(-ul));
    cr_assert_eq(weft_unix_listen(io, path, 4), -EADDRINUSE);
    int uc = weft_unix_connect(io, path);
    cr_assert_geq(uc, 0);
    int ua = weft_accept(io, ul, NULL, NULL, 0);
    cr_assert_geq(ua, 0);
    cr_assert_eq(weft_send(io, uc, "x", 1, 0), 1);
    cr_assert_eq(weft_recv(io, ua, in, sizeof in, 0), 1);
    cr_assert_eq(weft_shutdown(io, uc, SHUT_WR), 0);
    cr_assert_eq(weft_recv(io, ua, in, sizeof in, 0), 0);
    weft_close(io, uc);
    weft_close(io, ua);
    weft_close(io, ul);
    unlink(path);
    char longpath[200];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    cr_assert_eq(weft_unix_listen(io, longpath, 1), -ENAMETOOLONG);

    /* IPv6 loopback, where the system has it. */
    int l6 = weft_tcp_listen(io, "::1", "0", 4);
    if (l6 >= 0) {
        struct sockaddr_in6 s6;
        socklen_t l = sizeof s6;
        getsockname(l6, (struct sockaddr *)&s6, &l);
        char ps[16];
        snprintf(ps, sizeof ps, "%d", ntohs(s6.sin6_port));
        int c6 = weft_tcp_connect(io, "[::1]", ps); /* brackets, as in a URL */
        cr_assert_geq(c6, 0);
        int a6 = weft_accept(io, l6, NULL, NULL, 0);
        cr_assert_geq(a6, 0);
        cr_assert_eq(weft_write_all(io, c6, "six", 3), 3);
        cr_assert_eq(weft_read_all(io, a6, in, 3), 3);
        weft_close(io, c6);
        weft_close(io, a6);
        weft_close(io, l6);
    }
}

struct reader {
    int fd;
    unsigned char *buf;
    size_t len;
    ssize_t got;
};

static void *read_everything(void *p)
{
    struct reader *r = p;
    size_t n = 0;
    ssize_t k;
    while (n < r->len && (k = read(r->fd, r->buf + n, r->len - n)) > 0)
        n += (size_t)k;
    r->got = (ssize_t)n;
    return NULL;
}

IO_CONTRACT(sockets, sendfile_copies_a_file_to_a_socket, 60)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "src", O_RDWR | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    size_t size = test_scaled(3u << 20) + 12345;
    unsigned char *data = malloc(size), *got = malloc(size);
    uint32_t x = 99;
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)rng_next(&x);
    cr_assert_eq(weft_write_all(io, fd, data, size), (ssize_t)size);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* The other end is drained by a thread: the socket buffer is far
       smaller than the file. */
    struct reader r = {sv[1], got, size - 100, -1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, read_everything, &r), 0);
    int64_t off = 100;
    cr_assert_eq(weft_sendfile(io, sv[0], fd, &off, size - 100), (ssize_t)(size - 100));
    cr_assert_eq(off, (int64_t)size);
    pthread_join(th, NULL);
    cr_assert_eq(r.got, (ssize_t)(size - 100));
    cr_assert_eq(memcmp(got, data + 100, size - 100), 0);
    /* From the file position, and past the end: fewer bytes. */
    cr_assert_eq(lseek(fd, (off_t)size - 10, SEEK_SET), (off_t)size - 10);
    cr_assert_eq(weft_sendfile(io, sv[0], fd, NULL, 100), 10);
    cr_assert_eq(read(sv[1], got, 10), 10);
    cr_assert_eq(memcmp(got, data + size - 10, 10), 0);
    free(data);
    free(got);
    close(sv[0]);
    close(sv[1]);
    weft_close(io, fd);
    rm_dir(dir, dfd);
}

/* ---- cancellation ---------------------------------------------------------------- */

enum blocker { B_RECV, B_ACCEPT, B_CONNECT, B_PIPE, B_SLEEP };

struct block_ctx {
    enum blocker kind;
    int fd;
    _Atomic bool *started;
};

static void block_in(weft_io io, void *ctx, void *result)
{
    struct block_ctx *c = ctx;
    char buf[16];
    atomic_store(c->started, true);
    ssize_t r;
    switch (c->kind) {
    case B_RECV:
        r = weft_recv(io, c->fd, buf, sizeof buf, 0);
        break;
    case B_ACCEPT:
        r = weft_accept(io, c->fd, NULL, NULL, 0);
        break;
    case B_PIPE:
        r = weft_read(io, c->fd, buf, sizeof buf);
        break;
    default:
        r = weft_sleep(io, HOUR);
        break;
    }
    *(ssize_t *)result = r;
}

IO_CONTRACT(cancel, a_blocked_operation_returns_ECANCELED_and_the_fd_stays_usable, 30)
{
    NEEDS_CONCURRENCY(im);
    int sv[2], pp[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(pipe2(pp, O_CLOEXEC), 0);
    int port;
    int l = listen_any(io, "127.0.0.1", &port);
    int fds[] = {sv[0], l, -1, pp[0], -1};
    for (int k = B_RECV; k <= B_SLEEP; k++) {
        if (k == B_CONNECT)
            continue;
        _Atomic bool started = false;
        struct block_ctx c = {(enum blocker)k, fds[k], &started};
        weft_future *f;
        cr_assert_eq(weft_concurrent(io, &f, block_in, &c, sizeof c, sizeof(ssize_t)), 0);
        while (!atomic_load(&started))
            weft_yield(io);
        ssize_t r;
        weft_cancel(io, f, &r);
        cr_assert_eq(r, -ECANCELED, "kind %d: %zd", k, r);
    }
    /* Each fd still works. */
    char b;
    cr_assert_eq(write(sv[1], "s", 1), 1);
    cr_assert_eq(weft_recv(io, sv[0], &b, 1, 0), 1);
    cr_assert_eq(write(pp[1], "p", 1), 1);
    cr_assert_eq(weft_read(io, pp[0], &b, 1), 1);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int c = weft_tcp_connect(io, "127.0.0.1", ps);
    cr_assert_geq(c, 0);
    int a = weft_accept(io, l, NULL, NULL, 0);
    cr_assert_geq(a, 0);
    weft_close(io, a);
    weft_close(io, c);
    weft_close(io, l);
    close(sv[0]), close(sv[1]), close(pp[0]), close(pp[1]);
}

struct racer {
    int fd;
    _Atomic bool *go;
};

static void recv_one(weft_io io, void *ctx, void *result)
{
    struct racer *r = ctx;
    atomic_store(r->go, true);
    char b;
    ssize_t n = weft_recv(io, r->fd, &b, 1, 0);
    *(int *)result = n == 1 ? (unsigned char)b : (int)n;
}

/* A cancel racing a one-byte send: the byte is either returned by the
   canceled recv or still in the socket -- never lost, never twice. */
IO_CONTRACT(cancel, a_byte_is_never_lost_to_a_cancel_race, 120)
{
    NEEDS_CONCURRENCY(im);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int rounds = (int)test_scaled(3000);
    int got = 0, next = 0;
    for (int i = 0; i < rounds; i++) {
        _Atomic bool go = false;
        struct racer rc = {sv[0], &go};
        weft_future *f;
        cr_assert_eq(weft_concurrent(io, &f, recv_one, &rc, sizeof rc, sizeof(int)), 0);
        while (!atomic_load(&go))
            weft_yield(io);
        unsigned char b = (unsigned char)i;
        cr_assert_eq(write(sv[1], &b, 1), 1);
        if (i % 3)
            weft_yield(io);
        int r;
        weft_cancel(io, f, &r);
        if (r >= 0) {
            cr_assert_eq(r, next & 0xff, "round %d: byte %d, expected %d", i, r, next & 0xff);
            next++;
            got++;
        } else {
            cr_assert_eq(r, -ECANCELED);
            char c;
            cr_assert_eq(read(sv[0], &c, 1), 1, "round %d: the byte was lost", i);
            cr_assert_eq((unsigned char)c, next & 0xff);
            next++;
        }
    }
    cr_assert_eq(next, rounds);
    close(sv[0]);
    close(sv[1]);
}

/* ---- deadlines ------------------------------------------------------------------- */

IO_CONTRACT(deadline, blocking_operations_time_out, 30)
{
    (void)im;
    cr_assert_eq(weft_deadline(io), WEFT_NO_DEADLINE);
    int sv[2], pp[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(pipe2(pp, O_CLOEXEC), 0);
    char b;
    int64_t t0 = now_ns();
    cr_assert_eq(weft_deadline_set(io, t0 + 20 * MS), WEFT_NO_DEADLINE);
    cr_assert_eq(weft_recv(io, sv[0], &b, 1, 0), -ETIMEDOUT);
    cr_assert_geq(now_ns(), t0 + 20 * MS);
    cr_assert_eq(weft_read(io, pp[0], &b, 1), -ETIMEDOUT);
    cr_assert_eq(weft_sleep(io, HOUR), -ETIMEDOUT);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    /* A deadline in the past fails at once; restoring brings the old back. */
    int64_t old = weft_deadline_set(io, 1);
    cr_assert_eq(old, WEFT_NO_DEADLINE);
    cr_assert_eq(weft_write(io, pp[1], "x", 1), -ETIMEDOUT);
    cr_assert_eq(weft_deadline_set(io, old), 1);
    cr_assert_eq(weft_write(io, pp[1], "x", 1), 1);
    /* Completed operations keep their result under a deadline. */
    weft_deadline_set(io, now_ns() + HOUR);
    cr_assert_eq(weft_read(io, pp[0], &b, 1), 1);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    close(sv[0]), close(sv[1]), close(pp[0]), close(pp[1]);
}

struct lock_ctx {
    weft_mutex *m;
    int64_t deadline;
};

static void lock_with_deadline(weft_io io, void *ctx, void *result)
{
    struct lock_ctx *c = ctx;
    weft_deadline_set(io, c->deadline);
    int rc = weft_mutex_lock(io, c->m);
    if (rc == 0)
        weft_mutex_unlock(io, c->m);
    *(int *)result = rc;
}

IO_CONTRACT(deadline, waits_on_locks_and_queues_time_out, 30)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_mutex_lock(io, &m);
    weft_queue *q;
    cr_assert_eq(weft_queue_create(&q, sizeof(int), 1), 0);
    int v = 0;
    int64_t t0 = now_ns();
    weft_deadline_set(io, t0 + 10 * MS);
    cr_assert_eq(weft_queue_get(io, q, &v), -ETIMEDOUT);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert_geq(now_ns(), t0 + 10 * MS);
    if (im->threads) {
        /* Another task times out on the mutex this task holds. */
        struct lock_ctx c = {&m, now_ns() + 10 * MS};
        int rc;
        weft_future *f;
        cr_assert_eq(weft_concurrent(io, &f, lock_with_deadline, &c, sizeof c, sizeof rc), 0);
        weft_await(io, f, &rc);
        cr_assert_eq(rc, -ETIMEDOUT);
        /* And one whose deadline is far gets the lock when it is released. */
        c.deadline = now_ns() + HOUR;
        cr_assert_eq(weft_concurrent(io, &f, lock_with_deadline, &c, sizeof c, sizeof rc), 0);
        weft_yield(io);
        weft_mutex_unlock(io, &m);
        weft_await(io, f, &rc);
        cr_assert_eq(rc, 0);
        weft_mutex_lock(io, &m);
    }
    /* The queue is intact: a put and a get still work. */
    cr_assert_eq(weft_queue_put(io, q, &v), 0);
    weft_deadline_set(io, now_ns() + 10 * MS);
    cr_assert_eq(weft_queue_put(io, q, &v), -ETIMEDOUT); /* full */
    cr_assert_eq(weft_queue_get(io, q, &v), 0);          /* completes: result stands */
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    weft_mutex_unlock(io, &m);
    weft_queue_destroy(q);
}

static void deadline_of_new_task(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    *(int64_t *)result = weft_deadline(io);
}

IO_CONTRACT(deadline, new_tasks_start_without_one, 30)
{
    (void)im;
    weft_deadline_set(io, now_ns() + HOUR);
    int64_t d;
    weft_await(io, weft_async(io, deadline_of_new_task, NULL, 0, sizeof d), &d);
    cr_assert_eq(d, WEFT_NO_DEADLINE);
    cr_assert_neq(weft_deadline(io), WEFT_NO_DEADLINE);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
}

/* ---- a tiny ring under many operations ---------------------------------------------- */

static void sleep_briefly(weft_io io, void *ctx, void *result)
{
    (void)ctx, (void)result;
    cr_assert_eq(weft_sleep(io, 1 * MS), 0);
}

static void pipe_round(weft_io io, void *ctx, void *result)
{
    (void)result;
    int *p = ctx;
    char b = 'z';
    cr_assert_eq(weft_write(io, p[1], &b, 1), 1);
    cr_assert_eq(weft_read(io, p[0], &b, 1), 1);
}

Test(io, a_four_entry_ring_carries_ten_thousand_operations, .timeout = 120)
{
    weft_event_loop_deinit(test_loop_start(1)); /* skips where io_uring is missing */
    weft_event_loop *el;
    weft_event_loop_options o = {.threads = 2, .ring_entries = 4};
    cr_assert_eq(weft_event_loop_init(&el, &o), 0);
    weft_io io = weft_event_loop_io(el);
    weft_group g = WEFT_GROUP_INIT;
    size_t n = test_scaled(10000);
    int (*pipes)[2] = malloc(n / 2 * sizeof *pipes);
    for (size_t i = 0; i < n / 2; i++) {
        cr_assert_eq(pipe2(pipes[i], O_CLOEXEC), 0);
        weft_group_async(io, &g, pipe_round, pipes[i], sizeof pipes[i]);
        weft_group_async(io, &g, sleep_briefly, NULL, 0);
    }
    weft_group_wait(io, &g);
    for (size_t i = 0; i < n / 2; i++)
        close(pipes[i][0]), close(pipes[i][1]);
    free(pipes);
    weft_event_loop_deinit(el);
}

/* ---- shutdown wakes blocked readers; close does not ------------------------------ */

IO_CONTRACT(sockets, shutdown_wakes_a_blocked_recv_and_accept, 30)
{
    NEEDS_CONCURRENCY(im);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int port;
    int l = listen_any(io, "127.0.0.1", &port);
    int fds[] = {sv[0], l};
    ssize_t want[] = {0, -EINVAL};
    for (int k = 0; k < 2; k++) {
        _Atomic bool started = false;
        struct block_ctx c = {k == 0 ? B_RECV : B_ACCEPT, fds[k], &started};
        weft_future *f;
        cr_assert_eq(weft_concurrent(io, &f, block_in, &c, sizeof c, sizeof(ssize_t)), 0);
        while (!atomic_load(&started))
            weft_yield(io);
        /* Give it time to reach the kernel; shutdown wakes it either way. */
        weft_yield(io);
        cr_assert_eq(weft_shutdown(io, fds[k], SHUT_RDWR), 0);
        ssize_t r;
        weft_await(io, f, &r);
        cr_assert_eq(r, want[k], "%s: %zd", k ? "accept" : "recv", r);
    }
    weft_close(io, l);
    close(sv[0]);
    close(sv[1]);
}

/* ---- lengths, offsets and resuming ------------------------------------------------ */

IO_CONTRACT(files, huge_lengths_and_bad_offsets, 30)
{
    (void)im;
    size_t big = (size_t)1 << 32;
    char *buf = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    cr_assert_neq(buf, MAP_FAILED);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    cr_assert_eq(write(p[1], "hello", 5), 5);
    /* 4 GiB asked, 5 bytes there: 5, not a length cut to 32 bits (0). */
    cr_assert_eq(weft_read(io, p[0], buf, big), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    munmap(buf, big);
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "o", O_RDWR | O_CREAT, 0600);
    cr_assert_eq(weft_write(io, fd, "0123456789", 10), 10);
    char b[4];
    cr_assert_eq(weft_pread(io, fd, b, 4, -2), -EINVAL);
    cr_assert_eq(weft_pwrite(io, fd, "XY", 2, -7), -EINVAL);
    cr_assert_eq(weft_pread(io, fd, b, 4, 0), 4);
    cr_assert_eq(memcmp(b, "0123", 4), 0);
    cr_assert_eq(weft_open(io, dfd, NULL, O_RDONLY, 0), -EFAULT);
    weft_deadline_set(io, now_ns() + HOUR);
    cr_assert_eq(weft_read(io, -1, b, 1), -EBADF);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    weft_close(io, fd);
    close(p[0]);
    close(p[1]);
    rm_dir(dir, dfd);
}

/* A deadline bounds a write bigger than the pipe's room: a partial count,
   or -ETIMEDOUT -- never a wait for room for all of it. */
IO_CONTRACT(deadline, a_big_write_to_a_pipe_stops_at_the_deadline, 30)
{
    (void)im;
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    static char big[1 << 20];
    weft_deadline_set(io, now_ns() + 20 * MS);
    ssize_t n = weft_write(io, p[1], big, sizeof big);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert(n == -ETIMEDOUT || (n > 0 && n < (ssize_t)sizeof big), "write: %zd", n);
    close(p[0]);
    close(p[1]);
}

/* ---- found by trying to break it ------------------------------------------- */

struct fifo_end {
    const char *path;
    int flags;
    int fd;
};

static void open_fifo_end(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct fifo_end *e = *(struct fifo_end **)ctx;
    e->fd = weft_open(io, AT_FDCWD, e->path, e->flags, 0);
}

/* Opening a FIFO for writing waits for a reader, as open(2) does (the
   ring's non-blocking first try would say ENXIO). */
IO_CONTRACT(files, a_fifo_opened_for_writing_waits_for_its_reader, 30)
{
    NEEDS_CONCURRENCY(im);
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    struct fifo_end wr = {path, O_WRONLY, -100}, rd = {path, O_RDONLY, -100};
    struct fifo_end *wp = &wr, *rp = &rd;
    weft_future *fw, *fr;
    cr_assert_eq(weft_concurrent(io, &fw, open_fifo_end, &wp, sizeof wp, 0), 0);
    weft_yield(io);
    cr_assert_eq(weft_concurrent(io, &fr, open_fifo_end, &rp, sizeof rp, 0), 0);
    weft_await(io, fw, NULL);
    weft_await(io, fr, NULL);
    cr_assert_geq(wr.fd, 0, "open for writing: %s", strerror(-wr.fd));
    cr_assert_geq(rd.fd, 0, "open for reading: %s", strerror(-rd.fd));
    cr_assert_eq(fcntl(wr.fd, F_GETFL) & O_NONBLOCK, 0, "the fd is as asked: blocking");
    cr_assert_eq(weft_write(io, wr.fd, "f", 1), 1);
    char c = 0;
    cr_assert_eq(weft_read(io, rd.fd, &c, 1), 1);
    cr_assert_eq(c, 'f');
    weft_close(io, wr.fd);
    weft_close(io, rd.fd);
    unlink(path);
    rm_dir(dir, dfd);
}

IO_CONTRACT(files, sendfile_with_a_negative_offset_is_EINVAL, 30)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "f", O_RDWR | O_CREAT, 0600);
    cr_assert_eq(weft_write(io, fd, "hello", 5), 5);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int64_t off = -1;
    cr_assert_eq(weft_sendfile(io, sv[0], fd, &off, 5), -EINVAL);
    cr_assert_eq(off, -1);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "the file position did not move");
    close(sv[0]);
    close(sv[1]);
    weft_close(io, fd);
    rm_dir(dir, dfd);
}

IO_CONTRACT(sockets, resolve_without_somewhere_to_put_the_result_is_EFAULT, 30)
{
    (void)im;
    weft_op op = weft__op(WEFT_OP_RESOLVE, -1);
    op.path = "localhost";
    op.path2 = "80";
    cr_assert_eq(weft_operate(io, &op), -EFAULT);
}

static void v6only_child(void *arg)
{
    (void)arg;
    /* A network namespace of its own, where bindv6only can be set. */
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "skip: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        _exit(0);
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        _exit(10);
    close(s);
    FILE *f = fopen("/proc/sys/net/ipv6/bindv6only", "w");
    if (!f || fputs("1", f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "skip: cannot set bindv6only\n");
        _exit(0);
    }
    weft_io io = weft_blocking_io();
    int l = weft_tcp_listen(io, NULL, "0", 16);
    if (l < 0)
        _exit(11);
    struct sockaddr_in6 a;
    socklen_t al = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &al);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin6_port));
    int c = weft_tcp_connect(io, "127.0.0.1", port);
    if (c < 0) {
        fprintf(stderr, "connect 127.0.0.1: %s\n", strerror(-c));
        _exit(12);
    }
    fprintf(stderr, "ok\n");
    _exit(0);
}

/* A listener on every address (host NULL) takes IPv4 clients even where
   net.ipv6.bindv6only is 1. */
Test(sockets, listening_on_every_address_takes_ipv4_under_bindv6only, .timeout = 30)
{
    char out[512];
    int st = test_run_child(v6only_child, NULL, out, sizeof out);
    if (strstr(out, "skip:"))
        cr_skip_test("%s", out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d: %s", WEXITSTATUS(st), out);
    cr_assert(strstr(out, "ok") != NULL, "%s", out);
}

/* Each kind of wait that gives nothing to poll still honours a deadline:
   a FIFO with no reader, a UNIX listener whose backlog is full, and a
   recv with MSG_WAITALL, which returns what came. */
IO_CONTRACT(deadline, waits_with_nothing_to_poll_time_out, 30)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    weft_deadline_set(io, now_ns() + 30 * MS);
    int fd = weft_open(io, AT_FDCWD, path, O_WRONLY, 0);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert_eq(fd, -ETIMEDOUT, "open of a FIFO with no reader: %d", fd);

    snprintf(path, sizeof path, "%s/sock", dir);
    int l = weft_unix_listen(io, path, 0);
    cr_assert_geq(l, 0);
    /* Fill the backlog (0 admits one or two), then one more must wait. */
    int c[4];
    int n = 0;
    for (; n < 4; n++) {
        c[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strcpy(a.sun_path, path);
        if (connect(c[n], (struct sockaddr *)&a, sizeof a) != 0) {
            close(c[n]);
            break;
        }
    }
    cr_assert_lt(n, 4, "the backlog never filled");
    weft_deadline_set(io, now_ns() + 30 * MS);
    int s = weft_unix_connect(io, path);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert_eq(s, -ETIMEDOUT, "connect to a full listener: %d", s);
    for (int i = 0; i < n; i++)
        close(c[i]);
    weft_close(io, l);
    unlink(path);

    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(send(sv[1], "abc", 3, 0), 3);
    char buf[16];
    weft_deadline_set(io, now_ns() + 30 * MS);
    ssize_t got = weft_recv(io, sv[0], buf, sizeof buf, MSG_WAITALL);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    cr_assert(got == 3 || got == -ETIMEDOUT, "recv MSG_WAITALL: %zd", got);
    close(sv[0]);
    close(sv[1]);
    snprintf(path, sizeof path, "%s/fifo", dir);
    unlink(path);
    rm_dir(dir, dfd);
}

/* A regular file only partly in the page cache is read whole, as read(2)
   reads it (a non-blocking first try gives only the cached part). */
IO_CONTRACT(files, a_partly_cached_file_is_read_whole, 60)
{
    (void)im;
    char dir[64];
    int dfd = tmp_dir(dir, sizeof dir);
    int fd = weft_open(io, dfd, "f", O_RDWR | O_CREAT, 0600);
    size_t len = 8u << 20;
    char *buf = malloc(len);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7 + i / 4096);
    cr_assert_eq(weft_pwrite(io, fd, buf, len, 0), (ssize_t)len);
    cr_assert_eq(fsync(fd), 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* out of the cache */
    char head[16384];
    cr_assert_eq(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head); /* a cached prefix */
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    char *got = malloc(len);
    cr_assert_not_null(got);
    cr_assert_eq(weft_read(io, fd, got, len), (ssize_t)len);
    cr_assert_eq(memcmp(got, buf, len), 0);
    /* And under a deadline, the path of the blocking Io and the pool that
       can wait. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    cr_assert_eq(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    weft_deadline_set(io, now_ns() + HOUR);
    cr_assert_eq(weft_read(io, fd, got, len), (ssize_t)len);
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    free(got);
    free(buf);
    weft_close(io, fd);
    rm_dir(dir, dfd);
}
