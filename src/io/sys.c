// SPDX-License-Identifier: MIT
/*
 * One operation record as plain system calls: the blocking Io's I/O, and
 * what the event loop's offload threads run for operations its ring
 * cannot do.  errno is saved and restored; results are negative errno.
 */
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h> /* renameat2 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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
