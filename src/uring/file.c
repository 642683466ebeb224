// SPDX-License-Identifier: MIT
/*
 * File and directory operations as SQEs.  getdents64 has no io_uring
 * opcode; ftruncate has one from Linux 6.9, mkdirat from 5.15, unlinkat
 * and renameat from 5.11.  Where the kernel lacks one, the operation runs
 * on the offload threads (offload.c).
 */
#include "prep.h"

#include <errno.h>
#include <string.h>

int weft__prep_file(struct io_uring_sqe *sqe, const weft_op *op, bool fill)
{
    switch (op->code) {
    case WEFT_OP_READ:
        if (fill)
            io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->offset);
        return IORING_OP_READ;
    case WEFT_OP_WRITE:
        if (fill)
            io_uring_prep_write(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->offset);
        return IORING_OP_WRITE;
    case WEFT_OP_READV:
        if (fill)
            io_uring_prep_readv(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->offset);
        return IORING_OP_READV;
    case WEFT_OP_WRITEV:
        if (fill)
            io_uring_prep_writev(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->offset);
        return IORING_OP_WRITEV;
    case WEFT_OP_OPEN:
        if (fill)
            io_uring_prep_openat(sqe, op->fd, op->path, op->flags | O_CLOEXEC, (mode_t)op->mode);
        return IORING_OP_OPENAT;
    case WEFT_OP_CLOSE:
        if (fill)
            io_uring_prep_close(sqe, op->fd);
        return IORING_OP_CLOSE;
    case WEFT_OP_STATX:
        if (fill)
            io_uring_prep_statx(sqe, op->fd, op->path, op->flags, op->mode, op->buf);
        return IORING_OP_STATX;
    case WEFT_OP_FSYNC:
        if (fill)
            io_uring_prep_fsync(sqe, op->fd, op->flags ? IORING_FSYNC_DATASYNC : 0);
        return IORING_OP_FSYNC;
    case WEFT_OP_FTRUNCATE:
        if (fill) {
            memset(sqe, 0, sizeof *sqe);
            sqe->opcode = WEFT__IORING_OP_FTRUNCATE;
            sqe->fd = op->fd;
            sqe->off = (uint64_t)op->offset;
        }
        return WEFT__IORING_OP_FTRUNCATE;
    case WEFT_OP_MKDIR:
        if (fill)
            io_uring_prep_mkdirat(sqe, op->fd, op->path, (mode_t)op->mode);
        return IORING_OP_MKDIRAT;
    case WEFT_OP_UNLINK:
        if (fill)
            io_uring_prep_unlinkat(sqe, op->fd, op->path, op->flags);
        return IORING_OP_UNLINKAT;
    case WEFT_OP_RENAME:
        if (fill)
            io_uring_prep_renameat(sqe, op->fd, op->path, op->fd2, op->path2,
                                   (unsigned)op->flags);
        return IORING_OP_RENAMEAT;
    case WEFT_OP_GETDENTS:
        return -2;
    default:
        return -1;
    }
}
