// SPDX-License-Identifier: MIT
/*
 * Buffered streams: the slow paths of include/weft/stream.h, which fill
 * and drain the buffer through the stream's weft_io.
 */
#include <weft/stream.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* ---- reader ------------------------------------------------------------- */

WEFT_API void weft_reader_init(weft_reader *r, weft_io io, int fd, void *buf, size_t cap)
{
    *r = (weft_reader){.io = io, .fd = fd, .buf = buf, .cap = buf ? cap : 0};
}

WEFT_API void weft_reader_init_mem(weft_reader *r, const void *data, size_t len)
{
    /* Never written: fills stop at eof before they touch the buffer. */
    *r = (weft_reader){.fd = -1, .eof = true, .buf = (char *)data, .cap = len, .end = len};
}

/* Moves what is buffered to the front, so that the free room is one
   piece at the end. */
static void compact(weft_reader *r)
{
    if (r->start == 0)
        return;
    size_t n = r->end - r->start;
    if (n)
        memmove(r->buf, r->buf + r->start, n);
    r->start = 0;
    r->end = n;
}

WEFT_API ssize_t weft_reader_fill_more(weft_reader *r)
{
    if (r->err)
        return r->err;
    if (r->eof)
        return 0;
    if (r->end == r->cap)
        compact(r);
    if (r->end == r->cap)
        return -ENOBUFS;
    ssize_t n = weft_read(r->io, r->fd, r->buf + r->end, r->cap - r->end);
    if (n < 0) {
        /* A timeout or a cancel is no fault of the stream: the next call
           may go on where this one stopped. */
        if (n != -ETIMEDOUT && n != -ECANCELED)
            r->err = (int)n;
        return n;
    }
    if (n == 0)
        r->eof = true;
    r->end += (size_t)n;
    return n;
}

WEFT_API ssize_t weft_reader_fill(weft_reader *r, size_t n)
{
    if (r->err)
        return r->err;
    /* More than the buffer holds can never be had -- unless the stream
       has ended, and then the answer is what there is. */
    if (n > r->cap && !r->eof)
        return -EINVAL;
    if (r->cap - r->start < n && !r->eof) /* (a reader over memory is at eof) */
        compact(r);
    while (r->end - r->start < n) {
        ssize_t got = weft_reader_fill_more(r);
        if (got < 0)
            return got;
        if (got == 0)
            break;
    }
    return (ssize_t)(r->end - r->start);
}

WEFT_API ssize_t weft_reader_peek_slow_(weft_reader *r, size_t n, const void **out)
{
    ssize_t got = weft_reader_fill(r, n);
    if (got < 0)
        return got;
    if ((size_t)got < n)
        return got == 0 ? 0 : -ENODATA;
    *out = r->buf + r->start;
    return (ssize_t)n;
}

WEFT_API ssize_t weft_reader_take_delim(weft_reader *r, int delim, const void **out)
{
    if (r->err)
        return r->err;
    size_t scanned = 0; /* bytes after start already known not to hold delim */
    for (;;) {
        size_t left = r->end - r->start - scanned;
        char *hit = left ? memchr(r->buf + r->start + scanned, delim, left) : NULL;
        if (hit) {
            size_t n = (size_t)(hit - (r->buf + r->start)) + 1;
            *out = r->buf + r->start;
            r->start += n;
            return (ssize_t)n;
        }
        scanned = r->end - r->start;
        ssize_t got = weft_reader_fill_more(r);
        if (got < 0)
            return got;
        if (got == 0)
            return r->end == r->start ? 0 : -ENODATA;
    }
}

WEFT_API ssize_t weft_reader_discard(weft_reader *r, size_t n)
{
    if (r->err)
        return r->err;
    size_t done = 0;
    while (done < n) {
        size_t have = r->end - r->start;
        if (have == 0) {
            r->start = r->end = 0;
            ssize_t got = weft_reader_fill_more(r);
            if (got < 0) {
                if (done)
                    r->err = (int)got; /* part of it is gone: no retry */
                return got;
            }
            if (got == 0)
                break;
            continue;
        }
        size_t k = n - done < have ? n - done : have;
        r->start += k;
        done += k;
    }
    return (ssize_t)done;
}

WEFT_API ssize_t weft_reader_read_exact(weft_reader *r, void *dst, size_t n)
{
    if (r->err)
        return r->err;
    if (n > SSIZE_MAX)
        return -EINVAL;
    char *d = dst;
    size_t done = 0;
    while (done < n) {
        size_t have = r->end - r->start;
        if (have) {
            size_t k = n - done < have ? n - done : have;
            memcpy(d + done, r->buf + r->start, k);
            r->start += k;
            done += k;
            continue;
        }
        if (r->eof)
            break;
        /* Large reads go straight to dst; small ones through the buffer,
           which may then hold what follows. */
        ssize_t got;
        if (n - done >= r->cap) {
            got = weft_read(r->io, r->fd, d + done, n - done);
            if (got > 0)
                done += (size_t)got;
        } else {
            r->start = r->end = 0;
            got = weft_reader_fill_more(r);
        }
        if (got < 0) {
            if (done || (got != -ETIMEDOUT && got != -ECANCELED))
                r->err = (int)got; /* part of it is gone: no retry */
            return got;
        }
        if (got == 0)
            r->eof = true;
    }
    if (done < n)
        return done == 0 ? 0 : -ENODATA;
    return (ssize_t)n;
}

/* ---- writer ------------------------------------------------------------- */

WEFT_API void weft_writer_init(weft_writer *w, weft_io io, int fd, void *buf, size_t cap)
{
    *w = (weft_writer){.io = io, .fd = fd, .buf = buf, .cap = buf ? cap : 0};
}

#define VEC_MAX 64

/* Writes all of iov[0..n) (which it may change), as one vectored send or
   write after another.  0 or a negative errno (sticky). */
static int write_vec(weft_writer *w, struct iovec *iov, int n)
{
    while (n > 0 && iov[0].iov_len == 0)
        iov++, n--;
    while (n > 0) {
        int batch = n < VEC_MAX ? n : VEC_MAX;
        ssize_t k;
        if (!w->notsock) {
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)batch};
            k = weft_sendmsg(w->io, w->fd, &m, MSG_NOSIGNAL);
            if (k == -ENOTSOCK) {
                w->notsock = 1;
                continue;
            }
        } else {
            k = weft_writev(w->io, w->fd, iov, batch);
        }
        if (k < 0) {
            w->err = (int)k;
            return (int)k;
        }
        if (k == 0) {
            w->err = -EIO;
            return -EIO;
        }
        size_t left = (size_t)k;
        while (n > 0 && left >= iov[0].iov_len) {
            left -= iov[0].iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + left;
            iov[0].iov_len -= left;
        }
        while (n > 0 && iov[0].iov_len == 0)
            iov++, n--;
    }
    return 0;
}

/* Writes the buffer out; on a partial failure what was not written stays
   buffered, at the front. */
static int flush_buf(weft_writer *w)
{
    if (w->len == 0)
        return 0;
    struct iovec v = {w->buf, w->len};
    int rc = write_vec(w, &v, 1);
    size_t left = rc ? v.iov_len : 0;
    if (left && left != w->len)
        memmove(w->buf, (char *)v.iov_base, left);
    w->len = left;
    return rc;
}

WEFT_API int weft_writer_flush(weft_writer *w)
{
    if (w->err)
        return w->err;
    return flush_buf(w);
}

WEFT_API ssize_t weft_writer_drain(weft_writer *w, const struct iovec *data, int n, size_t splat)
{
    if (w->err)
        return w->err;
    if (n < 0 || (n > 0 && !data))
        return -EINVAL;
    /* How many bytes data makes, with its last element splat times. */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t times = i == n - 1 ? splat : 1;
        size_t len = data[i].iov_len;
        if (len && !data[i].iov_base)
            return -EFAULT;
        if (times && len > (SSIZE_MAX - total) / times)
            return -EOVERFLOW;
        total += len * times;
    }
    if (total <= w->cap - w->len) {
        for (int i = 0; i < n; i++) {
            size_t len = data[i].iov_len;
            if (len == 0)
                continue; /* (however many times: nothing) */
            for (size_t t = 0; t < (i == n - 1 ? splat : 1); t++) {
                memcpy(w->buf + w->len, data[i].iov_base, len);
                w->len += len;
            }
        }
        return (ssize_t)total;
    }
    /* The buffer, then data's elements (the last once), in vectored writes
       of up to VEC_MAX pieces. */
    struct iovec v[VEC_MAX];
    int k = 0;
    if (w->len)
        v[k++] = (struct iovec){w->buf, w->len};
    for (int i = 0; i < n; i++) {
        if (i == n - 1 && splat == 0)
            break;
        v[k++] = data[i];
        if (k == VEC_MAX) {
            int rc = write_vec(w, v, k);
            if (rc)
                return rc;
            w->len = 0;
            k = 0;
        }
    }
    int rc = write_vec(w, v, k);
    if (rc)
        return rc;
    w->len = 0;
    /* The last element's other splat - 1 copies: into the buffer while
       they fit, written a buffer at a time. */
    if (n > 0 && splat > 1) {
        const struct iovec *last = &data[n - 1];
        size_t left = splat - 1;
        if (last->iov_len == 0)
            return (ssize_t)total;
        if (last->iov_len > w->cap) {
            for (size_t i = 0; i < left; i++) {
                struct iovec one = *last;
                if ((rc = write_vec(w, &one, 1)))
                    return rc;
            }
            return (ssize_t)total;
        }
        while (left) {
            while (left && last->iov_len <= w->cap - w->len) {
                memcpy(w->buf + w->len, last->iov_base, last->iov_len);
                w->len += last->iov_len;
                left--;
            }
            if (left && (rc = flush_buf(w)))
                return rc;
        }
    }
    return (ssize_t)total;
}

WEFT_API ssize_t weft_writer_splat(weft_writer *w, const void *data, size_t len, size_t times)
{
    struct iovec v = {(void *)data, len};
    return weft_writer_drain(w, &v, 1, times);
}

WEFT_API ssize_t weft_writer_vprint(weft_writer *w, const char *fmt, va_list ap)
{
    if (w->err)
        return w->err;
    va_list again;
    va_copy(again, ap);
    size_t room = w->cap - w->len;
    int n = vsnprintf(room ? w->buf + w->len : NULL, room, fmt, ap);
    if (n < 0) {
        va_end(again);
        return -EINVAL;
    }
    if ((size_t)n < room) {
        w->len += (size_t)n;
        va_end(again);
        return n;
    }
    /* Too long for the room left: format into memory of its own. */
    char small[512];
    char *p = (size_t)n < sizeof small ? small : malloc((size_t)n + 1);
    if (!p) {
        va_end(again);
        return -ENOMEM;
    }
    vsnprintf(p, (size_t)n + 1, fmt, again);
    va_end(again);
    struct iovec v = {p, (size_t)n};
    ssize_t rc = weft_writer_drain(w, &v, 1, 1);
    if (p != small)
        free(p);
    return rc;
}

WEFT_API ssize_t weft_writer_print(weft_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = weft_writer_vprint(w, fmt, ap);
    va_end(ap);
    return rc;
}

WEFT_API ssize_t weft_writer_sendfile(weft_writer *w, int in_fd, int64_t *offset, size_t len)
{
    if (w->err)
        return w->err;
    int rc = flush_buf(w);
    if (rc)
        return rc;
    ssize_t n = weft_sendfile(w->io, w->fd, in_fd, offset, len);
    if (n < 0)
        w->err = (int)n;
    return n;
}
