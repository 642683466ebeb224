// SPDX-License-Identifier: MIT
/*
 * What every Io shares above single operations: the *_all loops, sendfile,
 * the directory iterator and the socket conveniences.  All of it goes
 * through weft_operate, so it runs the same on every implementation (and
 * through any wrapping Io).
 */
#include "sys.h"

#include <weft/weft.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

WEFT_API ssize_t weft_read_all(weft_io io, int fd, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = weft_read(io, fd, (char *)buf + done, len - done);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

WEFT_API ssize_t weft_write_all(weft_io io, int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = weft_write(io, fd, (const char *)buf + done, len - done);
        if (n < 0)
            return n;
        if (n == 0)
            return -EIO; /* a write that moves nothing would loop for ever */
        done += (size_t)n;
    }
    return (ssize_t)len;
}

/* Sends buf to fd -- a send where fd is a socket (never SIGPIPE), else a
   write -- until all of it has gone or an error: returns how much went,
   and the error in *err. */
static size_t put_all(weft_io io, int fd, const char *buf, size_t len, bool *sock, ssize_t *err)
{
    size_t done = 0;
    *err = 0;
    while (done < len) {
        ssize_t n;
        if (*sock) {
            n = weft_send(io, fd, buf + done, len - done, 0);
            if (n == -ENOTSOCK) {
                *sock = false;
                continue;
            }
        } else {
            n = weft_write(io, fd, buf + done, len - done);
        }
        if (n <= 0) {
            *err = n < 0 ? n : -EIO;
            break;
        }
        done += (size_t)n;
    }
    return done;
}

#define SENDFILE_CHUNK (64u * 1024u)

WEFT_API ssize_t weft_sendfile(weft_io io, int out_fd, int in_fd, int64_t *offset, size_t len)
{
    if (offset && *offset < 0)
        return -EINVAL; /* as sendfile(2) */
    if (len == 0)
        return 0;
    /* Read at explicit positions wherever in_fd has one, so that the
       position (or *offset) moves by what was sent, not by what was read:
       after an error or a timeout the transfer resumes where it stopped. */
    int saved = errno;
    int64_t pos = offset ? *offset : (int64_t)lseek(in_fd, 0, SEEK_CUR);
    errno = saved;
    bool positional = pos >= 0;
    size_t chunk = len < SENDFILE_CHUNK ? len : SENDFILE_CHUNK;
    char *buf = malloc(chunk);
    if (!buf)
        return -ENOMEM;
    bool sock = true;
    size_t done = 0;
    ssize_t rc = 0;
    while (done < len) {
        size_t want = len - done < chunk ? len - done : chunk;
        ssize_t n = positional ? weft_pread(io, in_fd, buf, want, pos)
                               : weft_read(io, in_fd, buf, want);
        if (n <= 0) {
            rc = n;
            break;
        }
        size_t sent = put_all(io, out_fd, buf, (size_t)n, &sock, &rc);
        done += sent;
        if (positional)
            pos += (int64_t)sent;
        if (rc < 0)
            break;
    }
    free(buf);
    if (offset && positional)
        *offset = pos;
    else if (positional) {
        saved = errno;
        lseek(in_fd, (off_t)pos, SEEK_SET);
        errno = saved;
    }
    if (rc < 0)
        return rc;
    return (ssize_t)done;
}

/* ---- directories ------------------------------------------------------------ */

#define DIR_BUF (32u * 1024u)

struct weft_dir {
    int fd;
    size_t len, pos;
    char buf[DIR_BUF];
};

/* getdents64's record. */
struct dirent64_rec {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

WEFT_API int weft_dir_open(weft_io io, int dirfd, const char *path, weft_dir **out)
{
    *out = NULL;
    weft_dir *d = malloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    int fd = weft_open(io, dirfd, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        free(d);
        return fd;
    }
    d->fd = fd;
    d->len = d->pos = 0;
    *out = d;
    return 0;
}

WEFT_API int weft_dir_next(weft_io io, weft_dir *d, const char **name, unsigned char *type)
{
    for (;;) {
        if (d->pos >= d->len) {
            weft_op op = weft__op(WEFT_OP_GETDENTS, d->fd);
            op.buf = d->buf;
            op.len = sizeof d->buf;
            int64_t n = weft_operate(io, &op);
            if (n <= 0)
                return (int)n;
            d->len = (size_t)n;
            d->pos = 0;
        }
        struct dirent64_rec *e = (struct dirent64_rec *)(d->buf + d->pos);
        d->pos += e->reclen;
        if (e->name[0] == '.' && (e->name[1] == 0 || (e->name[1] == '.' && e->name[2] == 0)))
            continue;
        *name = e->name;
        if (type)
            *type = e->type;
        return 1;
    }
}

WEFT_API void weft_dir_close(weft_io io, weft_dir *d)
{
    if (!d)
        return;
    weft_close(io, d->fd);
    free(d);
}

/* ---- sockets -------------------------------------------------------------------- */

static int resolve(weft_io io, const char *host, const char *port, int flags,
                   struct addrinfo **res)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    /* "[::1]", as in a URL: the address inside the brackets. */
    char bare[INET6_ADDRSTRLEN + 16];
    size_t hl = host ? strlen(host) : 0;
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof bare) {
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = '\0';
        host = bare;
    }
    weft_op op = weft__op(WEFT_OP_RESOLVE, -1);
    op.path = host;
    op.path2 = port;
    op.buf = &hints;
    op.aux = res;
    *res = NULL;
    return (int)weft_operate(io, &op);
}

static int errno_of(int r)
{
    return r < 0 ? -errno : r;
}

static int listen_on(weft_io io, const struct sockaddr *addr, socklen_t len, int family,
                     int backlog, bool reuse)
{
    int fd = weft_socket(io, family, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    int saved = errno, one = 1, zero = 0, rc = 0;
    if (reuse)
        rc = errno_of(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    /* "::" takes IPv4 clients too, whatever net.ipv6.bindv6only says. */
    if (rc == 0 && family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)addr)->sin6_addr))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (rc == 0)
        rc = errno_of(bind(fd, addr, len));
    if (rc == 0)
        rc = errno_of(listen(fd, backlog));
    errno = saved;
    if (rc < 0) {
        weft_close(io, fd);
        return rc;
    }
    return fd;
}

WEFT_API int weft_tcp_listen(weft_io io, const char *host, const char *port, int backlog)
{
    struct addrinfo *res;
    int rc = resolve(io, host, port, AI_PASSIVE, &res);
    if (rc < 0)
        return rc;
    /* Every address on one socket where the system allows it: "::" takes
       IPv4 too unless IPV6_V6ONLY is set, so prefer it for host NULL. */
    rc = -EADDRNOTAVAIL;
    for (int pass = 0; pass < 2 && rc < 0; pass++)
        for (struct addrinfo *a = res; a; a = a->ai_next) {
            if (!host && pass == 0 && a->ai_family != AF_INET6)
                continue;
            rc = listen_on(io, a->ai_addr, a->ai_addrlen, a->ai_family, backlog, true);
            if (rc >= 0)
                break;
        }
    freeaddrinfo(res);
    return rc;
}

WEFT_API int weft_tcp_connect(weft_io io, const char *host, const char *port)
{
    struct addrinfo *res;
    int rc = resolve(io, host, port, 0, &res);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = weft_socket(io, a->ai_family, SOCK_STREAM, 0);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = weft_connect(io, fd, a->ai_addr, a->ai_addrlen);
        if (rc == 0) {
            rc = fd;
            break;
        }
        weft_close(io, fd);
        if (rc == -ECANCELED || rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(path);
    if (n >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

WEFT_API int weft_unix_listen(weft_io io, const char *path, int backlog)
{
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(path, &sa, &len);
    if (rc < 0)
        return rc;
    return listen_on(io, (struct sockaddr *)&sa, len, AF_UNIX, backlog, false);
}

WEFT_API int weft_unix_connect(weft_io io, const char *path)
{
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(path, &sa, &len);
    if (rc < 0)
        return rc;
    int fd = weft_socket(io, AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    rc = weft_connect(io, fd, (struct sockaddr *)&sa, len);
    if (rc < 0) {
        weft_close(io, fd);
        return rc;
    }
    return fd;
}

WEFT_API int weft_signal_wait(weft_io io, const sigset_t *set)
{
    if (!set || sigisemptyset(set))
        return -EINVAL;
    int saved = errno;
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1 && sigismember(&blocked, sig) != 1) {
            errno = saved;
            return -EINVAL;
        }
    int fd = signalfd(-1, set, SFD_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        errno = saved;
        return -e;
    }
    errno = saved;
    struct signalfd_siginfo si;
    ssize_t n = weft_read(io, fd, &si, sizeof si);
    weft_close(io, fd);
    if (n < 0)
        return (int)n;
    if (n != (ssize_t)sizeof si)
        return -EIO;
    return (int)si.ssi_signo;
}
