// SPDX-License-Identifier: MIT
/*
 * One operation record as plain system calls: the blocking Io's and the
 * thread pool's I/O, and what the event loop's offload threads run for
 * operations its ring cannot do.  errno is saved and restored; results
 * are negative errno.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h> /* renameat2 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int64_t ret(int64_t r)
{
    return r < 0 ? -errno : r;
}

/* getaddrinfo's errors as API.md maps them. */
int weft__gai_errno(int e)
{
    switch (e) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_SERVICE:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

int64_t weft__op_check(const weft_op *op)
{
    switch (op->code) {
    case WEFT_OP_READ:
    case WEFT_OP_WRITE:
        if (op->offset < -1)
            return -EINVAL;
        break;
    case WEFT_OP_OPEN:
    case WEFT_OP_MKDIR:
    case WEFT_OP_UNLINK:
        if (!op->path)
            return -EFAULT;
        break;
    case WEFT_OP_RENAME:
        if (!op->path || !op->path2)
            return -EFAULT;
        break;
    case WEFT_OP_READV:
    case WEFT_OP_WRITEV:
        if (op->len > IOV_MAX || (op->len && !op->buf) || op->offset < -1)
            return -EINVAL;
        break;
    case WEFT_OP_RECVMSG:
    case WEFT_OP_SENDMSG:
        if (!op->buf)
            return -EINVAL;
        if (((const struct msghdr *)op->buf)->msg_iovlen > IOV_MAX)
            return -EINVAL;
        break;
    case WEFT_OP_STATX:
        if (!op->buf || !op->path)
            return -EFAULT;
        break;
    case WEFT_OP_RESOLVE:
        if (!op->aux || (!op->path && !op->path2))
            return !op->aux ? -EFAULT : -ENOENT;
        break;
    default:
        if (op->code == 0 || op->code >= WEFT_OP_COUNT_)
            return -EINVAL;
    }
    return 0;
}

int64_t weft__sys_operate(weft_op *op)
{
    int64_t r = weft__op_check(op);
    if (r < 0)
        return r;
    int saved = errno;
    errno = 0;
    switch (op->code) {
    case WEFT_OP_READ:
        r = op->offset < 0 ? read(op->fd, op->buf, op->len)
                           : pread(op->fd, op->buf, op->len, (off_t)op->offset);
        break;
    case WEFT_OP_WRITE:
        r = op->offset < 0 ? write(op->fd, op->buf, op->len)
                           : pwrite(op->fd, op->buf, op->len, (off_t)op->offset);
        break;
    case WEFT_OP_READV:
        r = op->offset < 0 ? readv(op->fd, op->buf, (int)op->len)
                           : preadv(op->fd, op->buf, (int)op->len, (off_t)op->offset);
        break;
    case WEFT_OP_WRITEV:
        r = op->offset < 0 ? writev(op->fd, op->buf, (int)op->len)
                           : pwritev(op->fd, op->buf, (int)op->len, (off_t)op->offset);
        break;
    case WEFT_OP_OPEN:
        r = openat(op->fd, op->path, op->flags | O_CLOEXEC, (mode_t)op->mode);
        break;
    case WEFT_OP_CLOSE:
        r = close(op->fd);
        if (r < 0 && errno == EINTR)
            r = 0; /* Linux has closed it */
        break;
    case WEFT_OP_STATX:
        r = statx(op->fd, op->path, op->flags, op->mode, op->buf);
        break;
    case WEFT_OP_FSYNC:
        r = op->flags ? fdatasync(op->fd) : fsync(op->fd);
        break;
    case WEFT_OP_FTRUNCATE:
        r = ftruncate(op->fd, (off_t)op->offset);
        break;
    case WEFT_OP_MKDIR:
        r = mkdirat(op->fd, op->path, (mode_t)op->mode);
        break;
    case WEFT_OP_UNLINK:
        r = unlinkat(op->fd, op->path, op->flags);
        break;
    case WEFT_OP_RENAME:
        r = renameat2(op->fd, op->path, op->fd2, op->path2, (unsigned)op->flags);
        break;
    case WEFT_OP_GETDENTS:
        r = syscall(SYS_getdents64, op->fd, op->buf, op->len);
        break;
    case WEFT_OP_SOCKET:
        r = socket(op->fd, op->flags | SOCK_CLOEXEC, (int)op->mode);
        break;
    case WEFT_OP_ACCEPT:
        r = accept4(op->fd, op->buf, op->aux, op->flags | SOCK_CLOEXEC);
        break;
    case WEFT_OP_CONNECT:
        r = connect(op->fd, op->buf, (socklen_t)op->len);
        break;
    case WEFT_OP_RECV:
        r = recv(op->fd, op->buf, op->len, op->flags);
        break;
    case WEFT_OP_SEND:
        r = send(op->fd, op->buf, op->len, op->flags | MSG_NOSIGNAL);
        break;
    case WEFT_OP_RECVMSG:
        r = recvmsg(op->fd, op->buf, op->flags | MSG_CMSG_CLOEXEC);
        break;
    case WEFT_OP_SENDMSG:
        r = sendmsg(op->fd, op->buf, op->flags | MSG_NOSIGNAL);
        break;
    case WEFT_OP_SHUTDOWN:
        r = shutdown(op->fd, op->flags);
        break;
    case WEFT_OP_RESOLVE: {
        int e = getaddrinfo(op->path, op->path2, op->buf, op->aux);
        r = weft__gai_errno(e);
        errno = saved;
        return r;
    }
    default:
        errno = saved;
        return -EINVAL;
    }
    r = ret(r);
    errno = saved;
    return r;
}

/* ---- deadlines and cancel: waiting for a peer ------------------------------ */

/*
 * A call that can wait for as long as its peer likes (a read of an empty
 * socket or pipe, a write to a full one, accept, connect) is made so that
 * it never waits inside the kernel: it is tried without waiting, and on
 * EAGAIN the thread waits in poll for the fd, for the time left and for
 * the cancel eventfd, then tries again.  Nothing is interrupted in the
 * middle of a call, so a call that moved bytes or accepted a connection
 * always returns that result: a cancel can only land while the thread
 * sits in poll, where nothing has happened yet.  No signal is involved.
 *
 * How a call is made not to wait, cheapest first:
 *   - send/recv/sendmsg/recvmsg: MSG_DONTWAIT, per call;
 *   - read/write and the vectored forms at the file position:
 *     preadv2/pwritev2 with RWF_NOWAIT, per call, where the fd supports
 *     it (sockets and pipes do on current kernels); a regular file that
 *     answers EAGAIN (data not cached) is then read the plain way;
 *   - fds without RWF_NOWAIT (terminals, old kernels): poll, then a
 *     plain read; a write sets O_NONBLOCK on the open file for the length
 *     of the call, since poll's "writable" does not promise room for all
 *     of it;
 *   - connect: O_NONBLOCK for the length of the call, then poll for
 *     writability and SO_ERROR;
 *   - accept: poll, then the plain call (a listener another thread drains
 *     first can make it wait until the next connection).
 * The first try costs nothing extra when the call would not have waited
 * anyway, which is the common case on a busy server: poll runs only when
 * there is nothing to do yet.
 */

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool canceled(const weft__sys_cancel *c)
{
    return c && c->requested(c->arg);
}

int weft__sys_ready(int fd, short events, int64_t deadline, const weft__sys_cancel *c)
{
    int saved = errno, rc = 0;
    for (;;) {
        if (canceled(c)) {
            rc = -ECANCELED;
            break;
        }
        struct timespec ts, *tp = NULL;
        if (deadline != INT64_MAX) {
            int64_t left = deadline - mono_now();
            if (left <= 0) {
                rc = -ETIMEDOUT;
                break;
            }
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            tp = &ts;
        }
        struct pollfd p[2] = {{.fd = fd, .events = events},
                              {.fd = c ? c->fd : -1, .events = POLLIN}};
        int n = ppoll(p, 2, tp, NULL);
        if (n < 0 && errno != EINTR)
            break; /* the call reports it */
        if (n > 0 && p[1].revents) {
            /* A cancel (ours, or one meant for a task this thread ran
               before): drain it and look at the flag again. */
            uint64_t v;
            if (read(c->fd, &v, sizeof v) < 0) {
                /* EAGAIN: another wake-up drained it first */
            }
        }
        if (n > 0 && p[0].revents)
            break;
    }
    errno = saved;
    return rc;
}

/* Regular files, block devices and directories: nothing to wait for. */
static bool never_waits(int fd)
{
    int saved = errno;
    struct stat st;
    bool r =
        fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode));
    errno = saved;
    return r;
}

/* O_NONBLOCK on fd's open file for the length of one call. */
static int64_t call_nonblocking(weft_op *op)
{
    int saved = errno;
    int fl = fcntl(op->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(op->fd, F_SETFL, fl | O_NONBLOCK);
    errno = saved;
    int64_t rc = weft__sys_operate(op);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(op->fd, F_SETFL, fl);
    errno = saved;
    return rc;
}

/* send/recv/sendmsg/recvmsg: MSG_DONTWAIT, and poll on EAGAIN.  A recv
   with MSG_WAITALL gathers until it has len bytes, the stream ends, or it
   is interrupted: then it returns what it has, if anything. */
static int64_t sock_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c)
{
    if (op->flags & MSG_DONTWAIT)
        return weft__sys_operate(op); /* the caller asked not to wait */
    bool in = op->code == WEFT_OP_RECV || op->code == WEFT_OP_RECVMSG;
    bool all = op->code == WEFT_OP_RECV && (op->flags & MSG_WAITALL);
    weft_op o = *op;
    o.flags = (op->flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    size_t got = 0;
    for (;;) {
        if (all) {
            o.buf = (char *)op->buf + got;
            o.len = op->len - got;
        }
        int64_t r = weft__sys_operate(&o);
        if (all && r > 0) {
            got += (size_t)r;
            if (got == op->len)
                return (int64_t)got;
            continue;
        }
        if (r != -EAGAIN)
            return all && got ? (int64_t)got : r;
        int w = weft__sys_ready(op->fd, in ? POLLIN : POLLOUT, deadline, c);
        if (w < 0)
            return all && got ? (int64_t)got : w;
    }
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* Reads into iov[0, cnt) past its first `skip` bytes, at the file position,
   as one plain readv.  The count, or a negative errno. */
static int64_t read_rest(int fd, const struct iovec *iov, int cnt, size_t skip)
{
    struct iovec *rest = malloc(sizeof *rest * (size_t)cnt);
    if (!rest)
        return -ENOMEM;
    int k = 0;
    for (int i = 0; i < cnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        rest[k].iov_base = (char *)iov[i].iov_base + skip;
        rest[k].iov_len = iov[i].iov_len - skip;
        skip = 0;
        k++;
    }
    int saved = errno;
    ssize_t r = k ? readv(fd, rest, k) : 0;
    int64_t rc = r < 0 ? -errno : r;
    errno = saved;
    free(rest);
    return rc;
}

/* read/write/readv/writev at the file position. */
static int64_t rw_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c)
{
    bool in = op->code == WEFT_OP_READ || op->code == WEFT_OP_READV;
    struct iovec one = {op->buf, op->len};
    const struct iovec *iov = &one;
    int cnt = 1;
    if (op->code == WEFT_OP_READV || op->code == WEFT_OP_WRITEV) {
        iov = op->buf;
        cnt = (int)op->len;
    }
    bool nowait = one.iov_len <= SSIZE_MAX; /* else the plain call says what is wrong */
    for (;;) {
        if (nowait) {
            int saved = errno;
            ssize_t n = in ? preadv2(op->fd, iov, cnt, -1, RWF_NOWAIT)
                           : pwritev2(op->fd, iov, cnt, -1, RWF_NOWAIT);
            int e = n < 0 ? errno : 0;
            errno = saved;
            if (n >= 0 && in && n > 0 && (size_t)n < iov_total(iov, cnt) && never_waits(op->fd)) {
                /* A file only partly in the page cache: RWF_NOWAIT gives
                   what is cached, where read(2) gives it all.  The rest,
                   by the plain call. */
                int64_t more = read_rest(op->fd, iov, cnt, (size_t)n);
                return more > 0 ? n + more : n;
            }
            if (n >= 0)
                return n;
            if (e != EAGAIN && e != EOPNOTSUPP && e != ENOSYS && e != EINVAL)
                return -e;
            if (e != EAGAIN)
                nowait = false; /* not here: the fallbacks below */
        }
        if (never_waits(op->fd))
            return weft__sys_operate(op);
        int w = weft__sys_ready(op->fd, in ? POLLIN : POLLOUT, deadline, c);
        if (w < 0)
            return w;
        if (nowait)
            continue;
        if (in)
            return weft__sys_operate(op);
        int64_t r = call_nonblocking(op);
        if (r != -EAGAIN)
            return r;
    }
}

/* Waits a millisecond, or less if the deadline comes first: for calls
   that give nothing to poll (a full UNIX listener, a FIFO with no reader
   yet).  -ETIMEDOUT, -ECANCELED, or 0. */
static int nap(int64_t deadline, const weft__sys_cancel *c)
{
    int64_t soon = mono_now() + 1000000;
    int r = weft__sys_ready(-1, 0, soon < deadline ? soon : deadline, c);
    if (r == -ETIMEDOUT && soon < deadline)
        return 0;
    return r;
}

/* connect: non-blocking, then wait for writability and read SO_ERROR.  A
   UNIX socket whose listener's backlog is full says EAGAIN, and gives
   nothing to poll: then it is tried again every millisecond. */
static int64_t connect_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c)
{
    int64_t rc;
    while ((rc = call_nonblocking(op)) == -EAGAIN) {
        int w = nap(deadline, c);
        if (w < 0)
            return w;
    }
    if (rc != -EINPROGRESS)
        return rc;
    rc = weft__sys_ready(op->fd, POLLOUT, deadline, c);
    if (rc < 0)
        return rc;
    int saved = errno, err = 0;
    socklen_t len = sizeof err;
    rc = getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno : -err;
    errno = saved;
    return rc;
}

/* open: a FIFO's open waits for its other end, which nothing can poll
   for.  It is opened non-blocking instead (a reader's open then succeeds
   at once, a writer's fails with ENXIO while there is no reader, and is
   tried again every millisecond), then made blocking again if that was
   asked. */
static int64_t open_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c)
{
    int saved = errno;
    struct stat st;
    bool fifo = fstatat(op->fd, op->path, &st, 0) == 0 && S_ISFIFO(st.st_mode);
    errno = saved;
    if (!fifo || (op->flags & O_NONBLOCK))
        return weft__sys_operate(op);
    weft_op o = *op;
    o.flags |= O_NONBLOCK;
    for (;;) {
        int64_t fd = weft__sys_operate(&o);
        if (fd >= 0) {
            int fl = fcntl((int)fd, F_GETFL);
            if (fl >= 0)
                fcntl((int)fd, F_SETFL, fl & ~O_NONBLOCK);
            errno = saved;
            return fd;
        }
        if (fd != -ENXIO)
            return fd;
        int w = nap(deadline, c);
        if (w < 0)
            return w;
    }
}

int64_t weft__sys_operate_until(weft_op *op, int64_t deadline, const weft__sys_cancel *c)
{
    if (op->code == WEFT_OP_CLOSE || (!c && deadline == INT64_MAX))
        return weft__sys_operate(op);
    if (canceled(c))
        return -ECANCELED;
    if (deadline != INT64_MAX && mono_now() >= deadline)
        return -ETIMEDOUT;
    int64_t r = weft__op_check(op);
    if (r == 0 && op->code == WEFT_OP_OPEN)
        return open_until(op, deadline, c); /* op->fd is a directory, maybe AT_FDCWD */
    if (r < 0 || op->fd < 0)
        return weft__sys_operate(op); /* its error, as the plain call gives it */
    switch (op->code) {
    case WEFT_OP_RECV:
    case WEFT_OP_SEND:
    case WEFT_OP_RECVMSG:
    case WEFT_OP_SENDMSG:
        return sock_until(op, deadline, c);
    case WEFT_OP_READ:
    case WEFT_OP_WRITE:
    case WEFT_OP_READV:
    case WEFT_OP_WRITEV:
        if (op->offset >= 0)
            return weft__sys_operate(op); /* positioned: a file */
        return rw_until(op, deadline, c);
    case WEFT_OP_ACCEPT:
        for (;;) {
            r = weft__sys_ready(op->fd, POLLIN, deadline, c);
            if (r < 0)
                return r;
            r = weft__sys_operate(op);
            if (r != -EAGAIN)
                return r;
        }
    case WEFT_OP_CONNECT:
        return connect_until(op, deadline, c);
    default:
        return weft__sys_operate(op);
    }
}
