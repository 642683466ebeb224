// SPDX-License-Identifier: MIT
/*
 * Socket operations as SQEs.  Sockets stay blocking fds: io_uring arms a
 * poll for them and completes the operation when it can proceed, so no
 * worker ever blocks.  OP_SOCKET needs Linux 5.19 and OP_SHUTDOWN 5.11;
 * name resolution has no opcode: both go to the offload threads where
 * missing.
 */
#include "prep.h"

#include <sys/socket.h>

int weft__prep_net(struct io_uring_sqe *sqe, const weft_op *op, bool fill)
{
    switch (op->code) {
    case WEFT_OP_SOCKET:
        if (fill)
            io_uring_prep_socket(sqe, op->fd, op->flags | SOCK_CLOEXEC, (int)op->mode, 0);
        return IORING_OP_SOCKET;
    case WEFT_OP_ACCEPT:
        if (fill)
            io_uring_prep_accept(sqe, op->fd, op->buf, op->aux, op->flags | SOCK_CLOEXEC);
        return IORING_OP_ACCEPT;
    case WEFT_OP_CONNECT:
        if (fill)
            io_uring_prep_connect(sqe, op->fd, op->buf, (socklen_t)op->len);
        return IORING_OP_CONNECT;
    case WEFT_OP_RECV:
        if (fill)
            io_uring_prep_recv(sqe, op->fd, op->buf, op->len, op->flags);
        return IORING_OP_RECV;
    case WEFT_OP_SEND:
        if (fill)
            io_uring_prep_send(sqe, op->fd, op->buf, op->len, op->flags | MSG_NOSIGNAL);
        return IORING_OP_SEND;
    case WEFT_OP_RECVMSG:
        if (fill)
            io_uring_prep_recvmsg(sqe, op->fd, op->buf, (unsigned)(op->flags | MSG_CMSG_CLOEXEC));
        return IORING_OP_RECVMSG;
    case WEFT_OP_SENDMSG:
        if (fill)
            io_uring_prep_sendmsg(sqe, op->fd, op->buf, (unsigned)(op->flags | MSG_NOSIGNAL));
        return IORING_OP_SENDMSG;
    case WEFT_OP_SHUTDOWN:
        if (fill)
            io_uring_prep_shutdown(sqe, op->fd, op->flags);
        return IORING_OP_SHUTDOWN;
    case WEFT_OP_RESOLVE:
        return -2;
    default:
        return -1;
    }
}
