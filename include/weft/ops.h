// SPDX-License-Identifier: MIT
/*
 * Files, directories and sockets.  Included by <weft/weft.h>.
 *
 * Every operation is one record, weft_op, handed to the Io's `operate`
 * entry: an opcode and its arguments, as an io_uring SQE.  The functions
 * below fill one in and make that call, so adding an operation changes no
 * vtable layout, and a tracing or fault-injecting Io wraps one function.
 * docs/io.md lists which fields each opcode reads.
 *
 * Descriptors are plain int fds.  Every fd weft hands back is close-on-exec.
 * Results are >= 0 on success and a negative errno on failure.  Every
 * operation except weft_close is a cancellation point and honours the
 * calling task's deadline: -ECANCELED or -ETIMEDOUT, unless the operation
 * completed first -- then its result stands (bytes moved, an accepted fd).
 */
#ifndef WEFT_OPS_H
#define WEFT_OPS_H

#include <weft/io.h>

#include <fcntl.h>      /* AT_FDCWD, O_* */
#include <sys/socket.h> /* struct sockaddr, socklen_t, struct msghdr */
#include <sys/stat.h>   /* struct statx (glibc 2.28+, with _GNU_SOURCE) */
#include <sys/types.h>
#include <signal.h>     /* sigset_t */
#include <sys/uio.h> /* struct iovec */

#ifdef __cplusplus
extern "C" {
#endif

struct statx; /* <sys/stat.h> declares it with _GNU_SOURCE (glibc 2.28+) */

typedef enum weft_opcode {
    WEFT_OP_READ = 1, /* fd, buf, len, offset (-1: the file position) */
    WEFT_OP_WRITE,    /* fd, buf, len, offset */
    WEFT_OP_READV,    /* fd, buf = const struct iovec *, len = iovcnt, offset */
    WEFT_OP_WRITEV,   /* fd, buf = const struct iovec *, len = iovcnt, offset */
    WEFT_OP_OPEN,     /* fd = dirfd, path, flags, mode */
    WEFT_OP_CLOSE,    /* fd */
    WEFT_OP_STATX,    /* fd = dirfd, path, flags, mode = mask, buf = struct statx * */
    WEFT_OP_FSYNC,    /* fd, flags = datasync (0 or 1) */
    WEFT_OP_FTRUNCATE, /* fd, offset = length */
    WEFT_OP_MKDIR,     /* fd = dirfd, path, mode */
    WEFT_OP_UNLINK,    /* fd = dirfd, path, flags (AT_REMOVEDIR) */
    WEFT_OP_RENAME,    /* fd = olddirfd, path, fd2 = newdirfd, path2, flags (renameat2) */
    WEFT_OP_GETDENTS,  /* fd, buf, len: getdents64 */
    WEFT_OP_SOCKET,    /* fd = domain, flags = type, mode = protocol */
    WEFT_OP_ACCEPT,    /* fd, buf = struct sockaddr *, aux = socklen_t *, flags */
    WEFT_OP_CONNECT,   /* fd, buf = const struct sockaddr *, len = addrlen */
    WEFT_OP_RECV,      /* fd, buf, len, flags */
    WEFT_OP_SEND,      /* fd, buf, len, flags */
    WEFT_OP_RECVMSG,   /* fd, buf = struct msghdr *, flags */
    WEFT_OP_SENDMSG,   /* fd, buf = const struct msghdr *, flags */
    WEFT_OP_SHUTDOWN,  /* fd, flags = how */
    WEFT_OP_RESOLVE,   /* path = host, path2 = port, buf = const struct addrinfo *hints,
                          aux = struct addrinfo **out: getaddrinfo, errors as negative errno */
    WEFT_OP_COUNT_
} weft_opcode;

/* One operation.  Fields an opcode does not list are ignored. */
typedef struct weft_op {
    uint32_t code; /* weft_opcode */
    int fd;
    int fd2;
    int flags;
    uint32_t mode;
    int64_t offset;
    void *buf;
    size_t len;
    const char *path;
    const char *path2;
    void *aux;
} weft_op;

/* A record with every field at its "unused" value. */
static inline weft_op weft__op(uint32_t code, int fd)
{
    weft_op op;
    op.code = code;
    op.fd = fd;
    op.fd2 = -1;
    op.flags = 0;
    op.mode = 0;
    op.offset = -1;
    op.buf = NULL;
    op.len = 0;
    op.path = NULL;
    op.path2 = NULL;
    op.aux = NULL;
    return op;
}

/* Runs op on io: the one entry every function below goes through. */
static inline int64_t weft_operate(weft_io io, weft_op *op)
{
    return io.vtable->operate(io.userdata, op);
}

/* ---- any fd ---------------------------------------------------------------- */

/* read/write do one underlying operation: 0 = end of stream. */
static inline ssize_t weft_read(weft_io io, int fd, void *buf, size_t len)
{
    weft_op op = weft__op(WEFT_OP_READ, fd);
    op.offset = -1;
    op.buf = buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_pread(weft_io io, int fd, void *buf, size_t len, int64_t offset)
{
    weft_op op = weft__op(WEFT_OP_READ, fd);
    op.offset = offset;
    op.buf = buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_readv(weft_io io, int fd, const struct iovec *iov, int iovcnt)
{
    weft_op op = weft__op(WEFT_OP_READV, fd);
    op.offset = -1;
    op.buf = (void *)iov;
    op.len = (size_t)iovcnt;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_preadv(weft_io io, int fd, const struct iovec *iov, int iovcnt,
                                  int64_t offset)
{
    weft_op op = weft__op(WEFT_OP_READV, fd);
    op.offset = offset;
    op.buf = (void *)iov;
    op.len = (size_t)iovcnt;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_write(weft_io io, int fd, const void *buf, size_t len)
{
    weft_op op = weft__op(WEFT_OP_WRITE, fd);
    op.offset = -1;
    op.buf = (void *)buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_pwrite(weft_io io, int fd, const void *buf, size_t len, int64_t offset)
{
    weft_op op = weft__op(WEFT_OP_WRITE, fd);
    op.offset = offset;
    op.buf = (void *)buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_writev(weft_io io, int fd, const struct iovec *iov, int iovcnt)
{
    weft_op op = weft__op(WEFT_OP_WRITEV, fd);
    op.offset = -1;
    op.buf = (void *)iov;
    op.len = (size_t)iovcnt;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_pwritev(weft_io io, int fd, const struct iovec *iov, int iovcnt,
                                   int64_t offset)
{
    weft_op op = weft__op(WEFT_OP_WRITEV, fd);
    op.offset = offset;
    op.buf = (void *)iov;
    op.len = (size_t)iovcnt;
    return (ssize_t)weft_operate(io, &op);
}

/* Loop until len bytes moved: read_all returns len, or fewer at end of
   stream; write_all returns len.  Either returns a negative errno on error
   (some bytes may have moved). */
WEFT_API ssize_t weft_read_all(weft_io io, int fd, void *buf, size_t len);
WEFT_API ssize_t weft_write_all(weft_io io, int fd, const void *buf, size_t len);

/* ---- files and directories: the *at() calls ------------------------------- */

/* An fd (always O_CLOEXEC). */
static inline int weft_open(weft_io io, int dirfd, const char *path, int flags, mode_t mode)
{
    weft_op op = weft__op(WEFT_OP_OPEN, dirfd);
    op.flags = flags;
    op.mode = mode;
    op.path = path;
    return (int)weft_operate(io, &op);
}
/* Never a cancellation point: the fd is closed whatever happens. */
static inline int weft_close(weft_io io, int fd)
{
    weft_op op = weft__op(WEFT_OP_CLOSE, fd);
    return (int)weft_operate(io, &op);
}
static inline int weft_statx(weft_io io, int dirfd, const char *path, int flags, unsigned mask,
                             struct statx *out)
{
    weft_op op = weft__op(WEFT_OP_STATX, dirfd);
    op.flags = flags;
    op.mode = mask;
    op.buf = out;
    op.path = path;
    return (int)weft_operate(io, &op);
}
static inline int weft_fsync(weft_io io, int fd, bool datasync)
{
    weft_op op = weft__op(WEFT_OP_FSYNC, fd);
    op.flags = datasync ? 1 : 0;
    return (int)weft_operate(io, &op);
}
static inline int weft_ftruncate(weft_io io, int fd, int64_t length)
{
    weft_op op = weft__op(WEFT_OP_FTRUNCATE, fd);
    op.offset = length;
    return (int)weft_operate(io, &op);
}
static inline int weft_mkdir(weft_io io, int dirfd, const char *path, mode_t mode)
{
    weft_op op = weft__op(WEFT_OP_MKDIR, dirfd);
    op.mode = mode;
    op.path = path;
    return (int)weft_operate(io, &op);
}
/* flags: 0 or AT_REMOVEDIR. */
static inline int weft_unlink(weft_io io, int dirfd, const char *path, int flags)
{
    weft_op op = weft__op(WEFT_OP_UNLINK, dirfd);
    op.flags = flags;
    op.path = path;
    return (int)weft_operate(io, &op);
}
/* flags: renameat2's (RENAME_NOREPLACE, RENAME_EXCHANGE). */
static inline int weft_rename(weft_io io, int olddirfd, const char *oldpath, int newdirfd,
                              const char *newpath, unsigned flags)
{
    weft_op op = weft__op(WEFT_OP_RENAME, olddirfd);
    op.fd2 = newdirfd;
    op.flags = (int)flags;
    op.path = oldpath;
    op.path2 = newpath;
    return (int)weft_operate(io, &op);
}

/* Directory listing.  next: 1 and *name, *type (DT_*) valid until the next
   call; 0 at the end; negative errno.  "." and ".." are skipped. */
typedef struct weft_dir weft_dir;
WEFT_API int weft_dir_open(weft_io io, int dirfd, const char *path, weft_dir **out);
WEFT_API int weft_dir_next(weft_io io, weft_dir *d, const char **name, unsigned char *type);
WEFT_API void weft_dir_close(weft_io io, weft_dir *d);

/* Copies len bytes from in_fd at *offset to out_fd (a socket, pipe or
   file), looping as write_all does; returns len, or fewer only when in_fd
   ends first; advances *offset.  offset NULL: from in_fd's file position,
   which it advances, as sendfile(2) does. */
WEFT_API ssize_t weft_sendfile(weft_io io, int out_fd, int in_fd, int64_t *offset, size_t len);

/* ---- sockets ---------------------------------------------------------------- */

/* An fd (always SOCK_CLOEXEC). */
static inline int weft_socket(weft_io io, int domain, int type, int protocol)
{
    weft_op op = weft__op(WEFT_OP_SOCKET, domain);
    op.flags = type;
    op.mode = (uint32_t)protocol;
    return (int)weft_operate(io, &op);
}
/* An fd (always SOCK_CLOEXEC; flags may add SOCK_NONBLOCK). */
static inline int weft_accept(weft_io io, int fd, struct sockaddr *addr, socklen_t *addrlen,
                              int flags)
{
    weft_op op = weft__op(WEFT_OP_ACCEPT, fd);
    op.flags = flags;
    op.buf = addr;
    op.aux = addrlen;
    return (int)weft_operate(io, &op);
}
static inline int weft_connect(weft_io io, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    weft_op op = weft__op(WEFT_OP_CONNECT, fd);
    op.buf = (void *)addr;
    op.len = addrlen;
    return (int)weft_operate(io, &op);
}
static inline ssize_t weft_recv(weft_io io, int fd, void *buf, size_t len, int flags)
{
    weft_op op = weft__op(WEFT_OP_RECV, fd);
    op.flags = flags;
    op.buf = buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
/* Never raises SIGPIPE (MSG_NOSIGNAL is always added). */
static inline ssize_t weft_send(weft_io io, int fd, const void *buf, size_t len, int flags)
{
    weft_op op = weft__op(WEFT_OP_SEND, fd);
    op.flags = flags;
    op.buf = (void *)buf;
    op.len = len;
    return (ssize_t)weft_operate(io, &op);
}
static inline ssize_t weft_recvmsg(weft_io io, int fd, struct msghdr *msg, int flags)
{
    weft_op op = weft__op(WEFT_OP_RECVMSG, fd);
    op.flags = flags;
    op.buf = msg;
    return (ssize_t)weft_operate(io, &op);
}
/* Never raises SIGPIPE. */
static inline ssize_t weft_sendmsg(weft_io io, int fd, const struct msghdr *msg, int flags)
{
    weft_op op = weft__op(WEFT_OP_SENDMSG, fd);
    op.flags = flags;
    op.buf = (void *)msg;
    return (ssize_t)weft_operate(io, &op);
}
/* Wakes a task blocked in recv or accept on fd (they return 0, or
   -EINVAL for accept): the way to stop a connection's reader. */
static inline int weft_shutdown(weft_io io, int fd, int how)
{
    weft_op op = weft__op(WEFT_OP_SHUTDOWN, fd);
    op.flags = how;
    return (int)weft_operate(io, &op);
}

/* Conveniences.  host NULL listens on every address; names are resolved
   off the worker (getaddrinfo on a helper thread); connect tries each
   address in turn.  Listeners set SO_REUSEADDR.  Return an fd.
   Name-resolution failures: unknown host or service -ENOENT, temporary
   failure -EAGAIN, out of memory -ENOMEM, anything else -EIO.
   weft_unix_listen on a path that exists gives -EADDRINUSE. */
WEFT_API int weft_tcp_listen(weft_io io, const char *host, const char *port, int backlog);
WEFT_API int weft_tcp_connect(weft_io io, const char *host, const char *port);
WEFT_API int weft_unix_listen(weft_io io, const char *path, int backlog);
WEFT_API int weft_unix_connect(weft_io io, const char *path);

/* ---- signals ------------------------------------------------------------ */

/* Waits for the next of the signals in set and returns its number: a
   signalfd read through io, so on the event loop the worker goes on with
   other tasks meanwhile, and the wait is cancelable and honours the
   task's deadline.  The signals must be blocked in every thread of the
   process (pthread_sigmask on the main thread before any other thread is
   made, the loop's workers included), or one would be delivered instead
   of waited for: a signal of set that is not blocked in the calling
   thread gives -EINVAL.  An empty set gives -EINVAL. */
#if defined(__sigset_t_defined) || defined(__DEFINED_sigset_t) || defined(_SIGSET_T_DECLARED)
/* (Declared where <signal.h> gave sigset_t: not under strict ISO C,
   -std=c11 without a POSIX feature macro, which has no sigset_t.) */
WEFT_API int weft_signal_wait(weft_io io, const sigset_t *set);
#endif

#ifdef __cplusplus
}
#endif

#endif
