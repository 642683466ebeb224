// SPDX-License-Identifier: MIT
/*
 * Buffered streams over a file descriptor and a weft_io.
 *
 * The buffer belongs to the stream, and the stream's state is public: the
 * common cases (a take that is already buffered, a write that fits) are
 * inline pointer arithmetic and a memcpy; only filling and draining call
 * into the library, and through it into the Io.  The caller owns the
 * memory: a stream is a plain struct with a buffer the caller provides
 * (on a task's stack, or anywhere), and needs no deinit.
 *
 * Errors are negative errno values, and sticky: once a call fails, every
 * later call on that stream returns the same error (err holds it).
 * Cancellation and deadlines reach the reads and writes underneath, so a
 * canceled task sees -ECANCELED and one past its deadline -ETIMEDOUT.
 * On a reader those two are not sticky when nothing was consumed (a fill,
 * a peek, a take that found its bytes missing): the call can be made
 * again, under a new deadline.  On a writer every error is sticky: part
 * of the data may have gone out, and the stream cannot say how much.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <weft/ops.h>

#include <stdarg.h>
#include <string.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reader ------------------------------------------------------------- */

/* Bytes buf[start, end) are buffered and not yet consumed. */
typedef struct weft_reader {
    weft_io io;
    int fd;   /* -1: a reader over memory only */
    int err;  /* sticky negative errno, or 0 */
    bool eof; /* the fd has reported end of stream */
    char *buf;
    size_t cap, start, end;
} weft_reader;

/* A reader of fd through io, buffering up to cap bytes in buf. */
WEFT_API void weft_reader_init(weft_reader *r, weft_io io, int fd, void *buf, size_t cap);
/* A reader of the len bytes at data, then end of stream (no fd; data is
   read in place, never written). */
WEFT_API void weft_reader_init_mem(weft_reader *r, const void *data, size_t len);

static inline size_t weft_reader_buffered(const weft_reader *r)
{
    return r->end - r->start;
}

/* Reads until at least n bytes are buffered (n <= cap).  Returns the
   number buffered (>= n), or fewer when the stream ended first (0: ended
   with nothing buffered), or a negative errno (-EINVAL: n > cap on a
   stream that has not ended). */
WEFT_API ssize_t weft_reader_fill(weft_reader *r, size_t n);

/* Reads once more into the buffer, however much the fd gives (the buffer
   is compacted first).  Returns the number of bytes added, 0 at end of
   stream, -ENOBUFS when the buffer is full, or a negative errno. */
WEFT_API ssize_t weft_reader_fill_more(weft_reader *r);

WEFT_API ssize_t weft_reader_peek_slow_(weft_reader *r, size_t n, const void **out);

/* The next n bytes (n <= cap) without consuming them: *out points into the
   buffer, valid until the next call on r.  Returns n, 0 when the stream
   ended before any byte, -ENODATA when it ended part-way (the bytes there
   are stay buffered), or a negative errno. */
static inline ssize_t weft_reader_peek(weft_reader *r, size_t n, const void **out)
{
    if (n <= r->end - r->start && !r->err) {
        *out = r->buf + r->start;
        return (ssize_t)n;
    }
    return weft_reader_peek_slow_(r, n, out);
}

/* As peek, and consumes them. */
static inline ssize_t weft_reader_take(weft_reader *r, size_t n, const void **out)
{
    ssize_t got = weft_reader_peek(r, n, out);
    if (got > 0)
        r->start += (size_t)got;
    return got;
}

/* Consumes bytes up to and including the first delim: *out points at
   them.  Returns their count (delim included), 0 at end of stream with
   nothing buffered, -ENODATA when the stream ended without a delim (what
   came is still buffered: weft_reader_buffered), -ENOBUFS when the buffer
   filled without one (a line longer than cap), or a negative errno. */
WEFT_API ssize_t weft_reader_take_delim(weft_reader *r, int delim, const void **out);

/* Skips n bytes (any number: beyond the buffer, they are read and
   dropped).  Returns n, fewer when the stream ended first, or a negative
   errno. */
WEFT_API ssize_t weft_reader_discard(weft_reader *r, size_t n);

/* Copies exactly n bytes (any number) to dst.  Returns n, 0 when the
   stream ended before any byte, -ENODATA when it ended part-way, or a
   negative errno. */
WEFT_API ssize_t weft_reader_read_exact(weft_reader *r, void *dst, size_t n);

/* ---- writer ------------------------------------------------------------- */

/* Bytes buf[0, len) are waiting to be written. */
typedef struct weft_writer {
    weft_io io;
    int fd;
    int err;     /* sticky negative errno, or 0 */
    int notsock; /* 0: not known yet; 1: writes go through writev */
    char *buf;
    size_t cap, len;
} weft_writer;

/* A writer to fd through io, collecting up to cap bytes in buf.  Writes to
   a socket never raise SIGPIPE (a peer that went away is -EPIPE). */
WEFT_API void weft_writer_init(weft_writer *w, weft_io io, int fd, void *buf, size_t cap);

/* Writes what is buffered, then data[0..n), with data[n-1] repeated splat
   times (splat 1: once; 0: not at all).  The core the others use: what
   fits is copied into the buffer, the rest goes out in vectored writes.
   Returns the number of bytes taken from data (all of them, or an error),
   or a negative errno. */
WEFT_API ssize_t weft_writer_drain(weft_writer *w, const struct iovec *data, int n, size_t splat);

/* Queues len bytes.  Returns len or a negative errno. */
static inline ssize_t weft_writer_write(weft_writer *w, const void *data, size_t len)
{
    if (len <= w->cap - w->len && !w->err) {
        if (len)
            memcpy(w->buf + w->len, data, len);
        w->len += len;
        return (ssize_t)len;
    }
    struct iovec v = {(void *)data, len};
    return weft_writer_drain(w, &v, 1, 1);
}

/* Queues len bytes, times times over. */
WEFT_API ssize_t weft_writer_splat(weft_writer *w, const void *data, size_t len, size_t times);

/* Queues printf-style output.  Returns its length or a negative errno. */
WEFT_API ssize_t weft_writer_print(weft_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
WEFT_API ssize_t weft_writer_vprint(weft_writer *w, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Writes out what is buffered, then len bytes of in_fd from *offset (or
   from its file position, offset NULL) with weft_sendfile.  Returns the
   bytes sent from in_fd (fewer than len if in_fd ended) or a negative
   errno. */
WEFT_API ssize_t weft_writer_sendfile(weft_writer *w, int in_fd, int64_t *offset, size_t len);

/* Writes out everything buffered.  0 or a negative errno. */
WEFT_API int weft_writer_flush(weft_writer *w);

#ifdef __cplusplus
}
#endif

#endif
