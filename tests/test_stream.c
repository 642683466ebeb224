// SPDX-License-Identifier: MIT
/*
 * Buffered streams (weft/stream.h) and weft_signal_wait: over memory, and
 * over sockets on every Io, with a peer thread that feeds a reader one
 * byte at a time or drains a writer a few bytes at a time.
 */
#include "contract.h"

#include <weft/stream.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- over memory ---------------------------------------------------------- */

Test(stream_mem, take_peek_delim_discard_and_the_end)
{
    static const char text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
    weft_reader r;
    weft_reader_init_mem(&r, text, sizeof text - 1);
    const void *p;
    ssize_t n = weft_reader_take_delim(&r, '\n', &p);
    cr_assert_eq(n, 16);
    cr_assert_eq(memcmp(p, "GET / HTTP/1.1\r\n", 16), 0);
    cr_assert_eq(weft_reader_peek(&r, 4, &p), 4);
    cr_assert_eq(memcmp(p, "Host", 4), 0);
    cr_assert_eq(weft_reader_take(&r, 6, &p), 6);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 3);
    cr_assert_eq(weft_reader_discard(&r, 2), 2);
    char body[8] = {0};
    /* Ends part-way: -ENODATA, and nothing is lost. */
    cr_assert_eq(weft_reader_peek(&r, 5, &p), -ENODATA);
    cr_assert_eq(weft_reader_buffered(&r), 4);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), -ENODATA);
    cr_assert_eq(weft_reader_read_exact(&r, body, 4), 4);
    cr_assert_str_eq(body, "BODY");
    /* Then the end, cleanly, as often as asked. */
    cr_assert_eq(weft_reader_take(&r, 1, &p), 0);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 0);
    cr_assert_eq(weft_reader_read_exact(&r, body, 1), 0);
    cr_assert_eq(weft_reader_discard(&r, 10), 0);
    cr_assert_eq(weft_reader_fill_more(&r), 0);
}

Test(stream_mem, more_than_there_is_is_the_end_of_the_stream)
{
    weft_reader r;
    weft_reader_init_mem(&r, "abc", 3);
    const void *p;
    cr_assert_eq(weft_reader_fill(&r, 4), 3);
    cr_assert_eq(weft_reader_peek(&r, 4, &p), -ENODATA);
    cr_assert_eq(weft_reader_buffered(&r), 3, "nothing consumed");
}

Test(stream, a_request_larger_than_the_buffer_is_EINVAL)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char buf[8];
    weft_reader r;
    weft_reader_init(&r, weft_blocking_io(), sv[0], buf, sizeof buf);
    const void *p;
    cr_assert_eq(weft_reader_fill(&r, 9), -EINVAL);
    cr_assert_eq(weft_reader_peek(&r, 9, &p), -EINVAL);
    cr_assert_eq(weft_reader_take(&r, 9, &p), -EINVAL);
    close(sv[0]);
    close(sv[1]);
}

/* ---- over a socket, on every Io ------------------------------------------ */

struct feeder {
    int fd;
    const unsigned char *data;
    size_t len;
    size_t step; /* bytes per send */
};

static void *feed(void *p)
{
    struct feeder *f = p;
    for (size_t off = 0; off < f->len;) {
        size_t k = f->len - off < f->step ? f->len - off : f->step;
        ssize_t n = send(f->fd, f->data + off, k, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *b = malloc(len);
    cr_assert_not_null(b);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

/* Lines, then a binary block larger than the buffer, arriving one byte
   per send: every call must fill across many short reads. */
CONTRACT(stream, a_reader_fed_one_byte_at_a_time, 60)
{
    (void)im;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    size_t blob_len = test_scaled(20000);
    unsigned char *blob = pattern(blob_len, 7);
    const char *head = "first line\nsecond\n\nKEY 12345\n";
    size_t hl = strlen(head);
    unsigned char *all = malloc(hl + blob_len + 3);
    memcpy(all, head, hl);
    memcpy(all + hl, blob, blob_len);
    memcpy(all + hl + blob_len, "end", 3);
    struct feeder f = {sv[1], all, hl + blob_len + 3, 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, feed, &f), 0);

    char buf[64];
    weft_reader r;
    weft_reader_init(&r, io, sv[0], buf, sizeof buf);
    const void *p;
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 11);
    cr_assert_eq(memcmp(p, "first line\n", 11), 0);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 7);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 1);
    cr_assert_eq(weft_reader_take(&r, 4, &p), 4);
    cr_assert_eq(memcmp(p, "KEY ", 4), 0);
    cr_assert_eq(weft_reader_peek(&r, 6, &p), 6);
    cr_assert_eq(memcmp(p, "12345\n", 6), 0);
    cr_assert_eq(weft_reader_discard(&r, 6), 6);
    unsigned char *got = malloc(blob_len);
    cr_assert_eq(weft_reader_read_exact(&r, got, blob_len), (ssize_t)blob_len);
    cr_assert_eq(memcmp(got, blob, blob_len), 0, "every byte of the block");
    /* A line that never ends: the stream's end says so. */
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), -ENODATA);
    cr_assert_eq(weft_reader_take(&r, 3, &p), 3);
    cr_assert_eq(memcmp(p, "end", 3), 0);
    cr_assert_eq(weft_reader_take(&r, 1, &p), 0);
    pthread_join(th, NULL);
    free(got);
    free(all);
    free(blob);
    close(sv[0]);
    close(sv[1]);
}

CONTRACT(stream, a_line_longer_than_the_buffer_is_ENOBUFS, 30)
{
    (void)im;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char line[100];
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    cr_assert_eq(send(sv[1], line, sizeof line, 0), (ssize_t)sizeof line);
    char buf[32];
    weft_reader r;
    weft_reader_init(&r, io, sv[0], buf, sizeof buf);
    const void *p;
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), -ENOBUFS);
    cr_assert_eq(weft_reader_buffered(&r), sizeof buf, "what came stays buffered");
    /* The caller may drop it and go on. */
    cr_assert_eq(weft_reader_discard(&r, 96), 96);
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 4);
    close(sv[0]);
    close(sv[1]);
}

struct drainer {
    int fd;
    unsigned char *got;
    size_t cap, len;
};

/* Reads a few bytes at a time until the end: a slow peer. */
static void *drain_slowly(void *p)
{
    struct drainer *d = p;
    for (;;) {
        size_t want = d->cap - d->len < 7 ? d->cap - d->len : 7;
        if (want == 0) {
            char c;
            if (recv(d->fd, &c, 1, 0) <= 0)
                break;
            d->len = d->cap + 1; /* more than expected */
            break;
        }
        ssize_t n = recv(d->fd, d->got + d->len, want, 0);
        if (n <= 0)
            break;
        d->len += (size_t)n;
    }
    return NULL;
}

/* Writes, prints, splats and a sendfile, through a writer whose buffer is
   small, to a peer that reads 7 bytes at a time: the peer gets exactly
   what was written, in order. */
CONTRACT(stream, a_writer_to_a_slow_reader_loses_nothing, 60)
{
    (void)im;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    size_t big_len = test_scaled(300000);
    unsigned char *big = pattern(big_len, 3);
    /* The file for sendfile. */
    char path[] = "/tmp/weft-stream-XXXXXX";
    int file = mkstemp(path);
    cr_assert_geq(file, 0);
    unlink(path);
    unsigned char *fdata = pattern(10000, 9);
    cr_assert_eq(write(file, fdata, 10000), 10000);

    /* What the peer must see. */
    size_t expect_cap = big_len + 100000;
    unsigned char *expect = malloc(expect_cap);
    size_t el = 0;
#define EXPECT(p, n) (memcpy(expect + el, (p), (n)), el += (n))
    struct drainer d = {sv[1], malloc(expect_cap), expect_cap, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, drain_slowly, &d), 0);

    char buf[100];
    weft_writer w;
    weft_writer_init(&w, io, sv[0], buf, sizeof buf);
    cr_assert_eq(weft_writer_write(&w, "hello ", 6), 6);
    EXPECT("hello ", 6);
    cr_assert_eq(weft_writer_print(&w, "n=%d s=%s;", 42, "forty-two"), 17);
    EXPECT("n=42 s=forty-two;", 17);
    char longer[300];
    int ll = snprintf(longer, sizeof longer, "%0250d|", 7);
    cr_assert_eq(weft_writer_print(&w, "%0250d|", 7), ll);
    EXPECT(longer, (size_t)ll);
    cr_assert_eq(weft_writer_write(&w, big, big_len), (ssize_t)big_len);
    EXPECT(big, big_len);
    cr_assert_eq(weft_writer_splat(&w, "ab", 2, 1000), 2000);
    for (int i = 0; i < 1000; i++)
        EXPECT("ab", 2);
    cr_assert_eq(weft_writer_splat(&w, big, 150, 3), 450);
    for (int i = 0; i < 3; i++)
        EXPECT(big, 150);
    struct iovec v[3] = {{"x", 1}, {"yy", 2}, {"-", 1}};
    cr_assert_eq(weft_writer_drain(&w, v, 3, 40), 43);
    EXPECT("xyy", 3);
    for (int i = 0; i < 40; i++)
        EXPECT("-", 1);
    cr_assert_eq(weft_writer_drain(&w, v, 3, 0), 3, "splat 0 drops the last element");
    EXPECT("xyy", 3);
    int64_t off = 100;
    cr_assert_eq(weft_writer_sendfile(&w, file, &off, 5000), 5000);
    cr_assert_eq(off, 5100);
    EXPECT(fdata + 100, 5000);
    cr_assert_eq(weft_writer_write(&w, "tail", 4), 4);
    EXPECT("tail", 4);
    cr_assert_eq(weft_writer_flush(&w), 0);
    cr_assert_eq(w.len, 0);
    shutdown(sv[0], SHUT_WR);
    pthread_join(th, NULL);
    cr_assert_eq(d.len, el, "the peer got %zu bytes, expected %zu", d.len, el);
    cr_assert_eq(memcmp(d.got, expect, el), 0, "every byte in order");
#undef EXPECT
    free(d.got);
    free(expect);
    free(big);
    free(fdata);
    close(file);
    close(sv[0]);
    close(sv[1]);
}

/* Nothing, any number of times, is nothing; and no buffer at all is a
   writer that writes through. */
Test(stream, empty_pieces_and_no_buffer, .timeout = 10)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char buf[16];
    weft_writer w;
    weft_writer_init(&w, weft_blocking_io(), sv[0], buf, sizeof buf);
    cr_assert_eq(weft_writer_splat(&w, "", 0, SIZE_MAX), 0);
    cr_assert_eq(w.len, 0);
    weft_writer_init(&w, weft_blocking_io(), sv[0], NULL, 0);
    struct iovec none = {NULL, 0};
    cr_assert_eq(weft_writer_drain(&w, &none, 1, 1), 0);
    cr_assert_eq(weft_writer_write(&w, "abc", 3), 3);
    char got[4] = {0};
    cr_assert_eq(recv(sv[1], got, 3, 0), 3);
    cr_assert_str_eq(got, "abc");
    weft_reader r;
    weft_reader_init_mem(&r, NULL, 0);
    const void *p;
    cr_assert_eq(weft_reader_take_delim(&r, '\n', &p), 0);
    close(sv[0]);
    close(sv[1]);
}

/* A peer that went away: -EPIPE (no SIGPIPE), and it sticks. */
CONTRACT(stream, a_writer_error_is_sticky_and_raises_no_signal, 30)
{
    (void)im;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]);
    char buf[16];
    weft_writer w;
    weft_writer_init(&w, io, sv[0], buf, sizeof buf);
    cr_assert_eq(weft_writer_write(&w, "abc", 3), 3, "buffered: no error yet");
    cr_assert_eq(weft_writer_flush(&w), -EPIPE);
    cr_assert_eq(weft_writer_write(&w, "d", 1), -EPIPE);
    cr_assert_eq(weft_writer_print(&w, "%d", 1), -EPIPE);
    cr_assert_eq(weft_writer_flush(&w), -EPIPE);
    close(sv[0]);
}

/* A writer over a pipe (not a socket) goes through writev. */
CONTRACT(stream, a_writer_over_a_pipe, 30)
{
    (void)im;
    int pv[2];
    cr_assert_eq(pipe2(pv, O_CLOEXEC), 0);
    char buf[8];
    weft_writer w;
    weft_writer_init(&w, io, pv[1], buf, sizeof buf);
    cr_assert_eq(weft_writer_print(&w, "%s-%d", "pipe", 12345), 10);
    cr_assert_eq(weft_writer_flush(&w), 0);
    char got[16] = {0};
    cr_assert_eq(read(pv[0], got, sizeof got), 10);
    cr_assert_str_eq(got, "pipe-12345");
    close(pv[0]);
    close(pv[1]);
}

/* ---- signals --------------------------------------------------------------- */

CONTRACT(signal, a_pending_signal_is_returned, 30)
{
    (void)im;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    /* Blocked on this thread only: a loop made before this has workers
       that do not block it, but a signal sent to this thread (tgkill)
       stays pending here, which is what the task on this thread reads. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    cr_assert_eq(pthread_kill(pthread_self(), SIGUSR2), 0);
    cr_assert_eq(weft_signal_wait(io, &set), SIGUSR2);
}

Test(signal, bad_sets_are_EINVAL)
{
    sigset_t set;
    sigemptyset(&set);
    cr_assert_eq(weft_signal_wait(weft_blocking_io(), &set), -EINVAL, "empty set");
    cr_assert_eq(weft_signal_wait(weft_blocking_io(), NULL), -EINVAL);
    sigaddset(&set, SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    cr_assert_eq(weft_signal_wait(weft_blocking_io(), &set), -EINVAL, "not blocked");
}

struct sigwaiter {
    sigset_t set;
    int rc;
};

static void sig_task(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct sigwaiter *s = *(struct sigwaiter **)ctx;
    s->rc = weft_signal_wait(io, &s->set);
}

/* A wait for a signal that never comes ends when the task is canceled,
   and a signal sent to the process (blocked everywhere) reaches one. */
Test(signal, a_wait_is_canceled_or_gets_a_process_signal, .timeout = 30)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    /* Before the loop, so that its workers inherit the mask. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    weft_event_loop *el = test_loop_start(2);
    weft_io io = weft_event_loop_io(el);
    struct sigwaiter s = {set, 1};
    struct sigwaiter *sp = &s;
    weft_future *f;
    cr_assert_eq(weft_concurrent(io, &f, sig_task, &sp, sizeof sp, 0), 0);
    weft_yield(io);
    weft_cancel(io, f, NULL);
    cr_assert_eq(s.rc, -ECANCELED);

    s.rc = 1;
    cr_assert_eq(weft_concurrent(io, &f, sig_task, &sp, sizeof sp, 0), 0);
    cr_assert_eq(kill(getpid(), SIGUSR1), 0);
    weft_await(io, f, NULL);
    cr_assert_eq(s.rc, SIGUSR1);
    weft_event_loop_deinit(el);
}
