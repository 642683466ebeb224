// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the buffered reader (weft/stream.h).  The input's
 * first bytes are a script of calls, the rest the stream: read once from
 * memory, and once through a socket pair with a small buffer on the
 * blocking Io, where every call must agree with the memory reader on what
 * it returns and what it consumes.
 */
#include <weft/stream.h>
#include <weft/weft.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CAP 64

static ssize_t step(weft_reader *r, uint8_t op, uint8_t arg, char *out, size_t *outlen)
{
    const void *p = NULL;
    ssize_t n;
    size_t k = arg % (CAP + 8);
    *outlen = 0;
    switch (op % 5) {
    case 0:
        n = weft_reader_take_delim(r, arg, &p);
        break;
    case 1:
        n = weft_reader_peek(r, k, &p);
        break;
    case 2:
        n = weft_reader_take(r, k, &p);
        break;
    case 3:
        return weft_reader_discard(r, (size_t)arg * 3);
    default:
        n = weft_reader_read_exact(r, out, (size_t)arg * 2);
        if (n > 0)
            *outlen = (size_t)n;
        return n;
    }
    if (n > 0) {
        memcpy(out, p, (size_t)n);
        *outlen = (size_t)n;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nops = data[0] % 16;
    if (size < 1 + 2 * nops)
        return 0;
    const uint8_t *ops = data + 1;
    const char *stream = (const char *)data + 1 + 2 * nops;
    size_t slen = size - 1 - 2 * nops;
    if (slen > 100000)
        return 0;

    /* The memory reader sees the stream whole (its buffer is the stream). */
    weft_reader mem;
    weft_reader_init_mem(&mem, stream, slen);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    int sz = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (slen && write(sv[1], stream, slen) != (ssize_t)slen) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    shutdown(sv[1], SHUT_WR);
    char buf[CAP];
    weft_reader sock;
    weft_reader_init(&sock, weft_blocking_io(), sv[0], buf, sizeof buf);

    /* Room for the largest result: a line or a take as long as the stream. */
    static char a[100000 + 2 * 256 + CAP], b[100000 + 2 * 256 + CAP];
    for (size_t i = 0; i < nops; i++) {
        size_t la, lb;
        ssize_t ra = step(&mem, ops[2 * i], ops[2 * i + 1], a, &la);
        ssize_t rb = step(&sock, ops[2 * i], ops[2 * i + 1], b, &lb);
        /* The memory reader's "buffer" is the whole stream, so a line or a
           request longer than CAP succeeds there and is -ENOBUFS/-EINVAL
           on the socket: only compare where the socket reader could. */
        if (rb == -ENOBUFS || rb == -EINVAL)
            break; /* the two have parted ways; nothing more to compare */
        if (ra != rb || la != lb || memcmp(a, b, la) != 0)
            abort();
        if (mem.start > mem.end || sock.start > sock.end || sock.end > sock.cap)
            abort();
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
