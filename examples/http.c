// SPDX-License-Identifier: MIT
/*
 * weft-http: an HTTP/1.1 server, a task per connection.
 *
 *   weft-http [--port N] [--host H] [--threads N] [--io event_loop|thread_pool]
 *             [--root DIR] [--idle-timeout MS] [--head-timeout MS]
 *
 * GET /plaintext answers "Hello, World!" and GET /json a small JSON object
 * (TechEmpower's two simplest tests, with Date and Server headers).  With
 * --root, other GET and HEAD paths serve the files under DIR, never one
 * outside it.  Keep-alive and pipelining (responses to the requests that
 * arrived together go out in one write), HTTP/1.0, HEAD.
 *
 * Limits: a request head over 8 KiB is answered 431, a malformed one 400,
 * a method other than GET, HEAD and POST 501, POST 405 (411 without a
 * Content-Length); a head that takes longer than --head-timeout (10 s) to
 * arrive 408; a keep-alive connection idle for --idle-timeout (5 s) is
 * closed.  Each of these closes the connection.
 *
 * SIGINT or SIGTERM: stop accepting, close idle connections, let requests
 * in progress finish (10 s at most), exit 0.
 */
#include "http_parse.h"
#include "runtime.h"

#include <weft/stream.h>
#include <weft/sync.h>
#include <weft/weft.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX    8192
#define BODY_MAX    (1 << 20) /* a POST body read and dropped; larger closes */
#define WRITE_BUF   16384
#define ACCEPTORS   16

struct conn {
    struct conn *prev, *next;
    int fd;
    _Atomic bool idle; /* waiting for the first byte of a request */
};

struct server {
    int listener;
    int root; /* the served directory, or -1 */
    int64_t idle_ns, head_ns;
    _Atomic bool stopping;
    weft_mutex lock; /* guards conns */
    struct conn conns; /* list head */
    weft_group group;
};

/* ---- the Date header --------------------------------------------------- */

/* "Date: <IMF-fixdate>\r\n", remade when the second changes (per thread:
   a task reads it without a switch in between). */
static const char *date_line(size_t *len)
{
    static _Thread_local time_t last = -1;
    static _Thread_local char line[64];
    static _Thread_local size_t n;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        n = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        last = now;
    }
    *len = n;
    return line;
}

/* ---- responses ----------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* The status line and the headers every response has. */
static void head(weft_writer *w, int minor, int status, const char *type, uint64_t length,
                 bool keep_alive)
{
    size_t dl;
    const char *date = date_line(&dl);
    weft_writer_print(w, "HTTP/1.%d %d %s\r\nServer: weft\r\n", minor, status, reason(status));
    weft_writer_write(w, date, dl);
    weft_writer_print(w, "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n", type, length);
    if (!keep_alive)
        weft_writer_write(w, "Connection: close\r\n", 19);
    else if (minor == 0)
        weft_writer_write(w, "Connection: keep-alive\r\n", 24);
    if (status == 405)
        weft_writer_write(w, "Allow: GET, HEAD\r\n", 18);
    weft_writer_write(w, "\r\n", 2);
}

static void respond(weft_writer *w, int minor, int status, const char *type, const char *body,
                    size_t len, bool keep_alive, bool with_body)
{
    head(w, minor, status, type, len, keep_alive);
    if (with_body && len)
        weft_writer_write(w, body, len);
}

/* An error page (its body left out for HEAD); keep: the connection goes
   on after it. */
static void error_page(weft_writer *w, int minor, int status, bool keep, bool with_body)
{
    char body[80];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    respond(w, minor, status, "text/plain; charset=utf-8", body, (size_t)n, keep, with_body);
}

/* An error page; the connection closes after it. */
static void fail(weft_writer *w, int minor, int status)
{
    error_page(w, minor, status, false, true);
}

/* Opens path under the root, never outside it: RESOLVE_BENEATH refuses
   "..", absolute symlinks and symlinks that lead out (Linux 5.6). */
static int open_beneath(int root, const char *path)
{
    /* O_NONBLOCK: a FIFO or a device under the root must not hold the
       worker in open(); it is refused as not a regular file after. */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, path[0] ? path : ".", &how, sizeof how);
    return fd < 0 ? -errno : fd;
}

/* A file under the root, as a response.  Returns false if the connection
   must close. */
static bool serve_file(weft_io io, struct server *sv, weft_writer *w,
                       const struct http_request *req, bool keep)
{
    char path[4096];
    int st = http_target_path(req->target, req->target_len, path, sizeof path);
    if (st) {
        fail(w, req->minor, st);
        return false;
    }
    bool body = req->method != HTTP_HEAD;
    int fd = open_beneath(sv->root, path);
    if (fd < 0) {
        /* Outside the root (EXDEV), no permission, missing; or out of
           descriptors or memory, which is the server's trouble (503,
           and the connection closes to give some back). */
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
            error_page(w, req->minor, 503, false, body);
            return false;
        }
        error_page(w, req->minor, fd == -EXDEV || fd == -EACCES || fd == -ELOOP ? 403 : 404,
                   keep, body);
        return keep;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        weft_close(io, fd);
        error_page(w, req->minor, 404, keep, body);
        return keep;
    }
    /* Blocking again: a non-blocking read of a file not in the page cache
       says EAGAIN on the ring instead of waiting for the disk. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    head(w, req->minor, 200, http_content_type(path), (uint64_t)sb.st_size, keep);
    bool ok = true;
    if (req->method != HTTP_HEAD && sb.st_size > 0) {
        int64_t off = 0;
        ssize_t n = weft_writer_sendfile(w, fd, &off, (size_t)sb.st_size);
        /* A file that shrank meanwhile: the length sent is wrong, close. */
        ok = n == (ssize_t)sb.st_size;
    }
    weft_close(io, fd);
    return ok && keep;
}

static int64_t now_ns(weft_io io);

/* Reads past a request body of len bytes, which must come within the
   head timeout: a body that never arrives holds nothing for ever. */
static bool skip_body(weft_io io, struct server *sv, weft_reader *r, int64_t len)
{
    weft_deadline_set(io, now_ns(io) + sv->head_ns);
    bool ok = weft_reader_discard(r, (size_t)len) == len;
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    return ok;
}

/* Answers one parsed request.  Returns false if the connection must
   close afterwards. */
static bool handle(weft_io io, struct server *sv, weft_reader *r, weft_writer *w,
                   const struct http_request *req, bool keep)
{
    bool body = req->method != HTTP_HEAD;
    if (req->method == HTTP_POST) {
        if (req->transfer_encoding) {
            fail(w, req->minor, 501);
            return false;
        }
        if (req->content_length < 0) {
            fail(w, req->minor, 411);
            return false;
        }
        if (req->content_length > BODY_MAX) {
            fail(w, req->minor, 413);
            return false;
        }
        if (!skip_body(io, sv, r, req->content_length))
            return false;
        static const char na[] = "405 Method Not Allowed\n";
        respond(w, req->minor, 405, "text/plain; charset=utf-8", na, sizeof na - 1, keep, true);
        return keep;
    }
    /* A body on GET or HEAD means nothing here, but it must be read past. */
    if (req->transfer_encoding) {
        fail(w, req->minor, 501);
        return false;
    }
    if (req->content_length > 0) {
        if (req->content_length > BODY_MAX) {
            fail(w, req->minor, 413);
            return false;
        }
        if (!skip_body(io, sv, r, req->content_length))
            return false;
    }
    const char *t = req->target;
    size_t tl = req->target_len;
    static const char hello[] = "Hello, World!";
    static const char json[] = "{\"message\":\"Hello, World!\"}";
    if (tl == 10 && memcmp(t, "/plaintext", 10) == 0) {
        respond(w, req->minor, 200, "text/plain", hello, sizeof hello - 1, keep, body);
        return keep;
    }
    if (tl == 5 && memcmp(t, "/json", 5) == 0) {
        respond(w, req->minor, 200, "application/json", json, sizeof json - 1, keep, body);
        return keep;
    }
    if (sv->root >= 0)
        return serve_file(io, sv, w, req, keep);
    static const char nf[] = "404 Not Found\n";
    respond(w, req->minor, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1, keep, body);
    return keep;
}

static int64_t now_ns(weft_io io)
{
    int64_t t = 0;
    weft_now(io, CLOCK_MONOTONIC, &t);
    return t;
}

/* Reads until the reader holds a whole request head; its length, or 0
   when the connection is to close (after the error response, if any, has
   been queued on w). */
static size_t read_head(weft_io io, struct server *sv, struct conn *c, weft_reader *r,
                        weft_writer *w)
{
    size_t scanned = 0;
    bool waiting = weft_reader_buffered(r) == 0;
    if (waiting) {
        /* Idle: a stop closes this connection now (the server's scan and
           this check are ordered by the seq_cst pair). */
        atomic_store(&c->idle, true);
        if (atomic_load(&sv->stopping))
            return 0;
    }
    weft_deadline_set(io, now_ns(io) + (waiting ? sv->idle_ns : sv->head_ns));
    for (;;) {
        size_t have = weft_reader_buffered(r);
        const char *p = r->buf + r->start;
        /* Scan from a little before where the last look stopped: the
           blank line may straddle the two reads. */
        size_t from = scanned > 3 ? scanned - 3 : 0;
        size_t end = http_head_end(p + from, have - from);
        if (end) {
            atomic_store(&c->idle, false);
            if (from + end > HEAD_MAX) {
                fail(w, 1, 431);
                return 0;
            }
            return from + end;
        }
        scanned = have;
        if (waiting && have) {
            /* The first byte: the head now has head_ns to come whole. */
            waiting = false;
            atomic_store(&c->idle, false);
            weft_deadline_set(io, now_ns(io) + sv->head_ns);
        }
        if (have >= HEAD_MAX) {
            fail(w, 1, 431);
            return 0;
        }
        ssize_t n = weft_reader_fill_more(r);
        if (n > 0)
            continue;
        atomic_store(&c->idle, false);
        if (n == -ENOBUFS)
            fail(w, 1, 431);
        else if (n == -ETIMEDOUT && weft_reader_buffered(r) > 0)
            fail(w, 1, 408);
        return 0; /* the end, an error, an idle timeout, or a stop */
    }
}

struct conn_ctx {
    struct server *sv;
    int fd;
};

static void serve(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct conn_ctx cc = *(struct conn_ctx *)ctx;
    struct server *sv = cc.sv;
    struct conn c = {.fd = cc.fd};
    weft_mutex_lock_uncancelable(io, &sv->lock);
    c.next = sv->conns.next;
    c.prev = &sv->conns;
    c.next->prev = &c;
    sv->conns.next = &c;
    weft_mutex_unlock(io, &sv->lock);

    /* Room for a full head plus what may follow it in the same read. */
    char rbuf[HEAD_MAX + 4096];
    char wbuf[WRITE_BUF];
    weft_reader r;
    weft_writer w;
    weft_reader_init(&r, io, cc.fd, rbuf, sizeof rbuf);
    weft_writer_init(&w, io, cc.fd, wbuf, sizeof wbuf);
    for (;;) {
        size_t len = read_head(io, sv, &c, &r, &w);
        if (!len)
            break;
        /* Writes may take as long as the client reads (a slow reader holds
           its own task only); the next head gets a deadline anew. */
        weft_deadline_set(io, WEFT_NO_DEADLINE);
        struct http_request req;
        int st = http_parse_head(r.buf + r.start, len, &req);
        r.start += len;
        if (st) {
            fail(&w, st == 505 ? 1 : req.minor, st);
            break;
        }
        bool keep = req.keep_alive && !atomic_load(&sv->stopping);
        if (!handle(io, sv, &r, &w, &req, keep) || w.err)
            break;
        /* Pipelined requests already here are answered before the
           responses go out, together. */
        if (weft_reader_buffered(&r) == 0 && weft_writer_flush(&w) < 0)
            break;
    }
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    /* What is queued (an error page, the last responses) goes out, within
       a few seconds: a client that does not read loses it. */
    weft_deadline_set(io, now_ns(io) + 5 * 1000000000LL);
    if (weft_writer_flush(&w) == 0 && !r.eof) {
        /* A lingering close: closing with unread input makes the kernel
           send a reset, which can destroy the response (a 431, a 400) on
           its way to the client.  So: our end first, then read and drop
           what the client still sends, until it closes (1 s and 256 KiB
           at most). */
        weft_shutdown(io, cc.fd, SHUT_WR);
        weft_deadline_set(io, now_ns(io) + 1000000000LL);
        char sink[4096];
        ssize_t n;
        for (size_t dropped = 0; dropped < (256u << 10) &&
                                 (n = weft_recv(io, cc.fd, sink, sizeof sink, 0)) > 0;)
            dropped += (size_t)n;
    }
    weft_deadline_set(io, WEFT_NO_DEADLINE);
    weft_mutex_lock_uncancelable(io, &sv->lock);
    c.prev->next = c.next;
    c.next->prev = c.prev;
    weft_mutex_unlock(io, &sv->lock);
    weft_close(io, cc.fd);
}

static void accept_loop(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct server *sv = *(struct server **)ctx;
    for (;;) {
        int fd = weft_accept(io, sv->listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EINVAL || fd == -EBADF)
                break;
            if (fd == -EMFILE || fd == -ENFILE) {
                /* Said once a second at most, by whichever acceptor. */
                static _Atomic int64_t said;
                int64_t now = now_ns(io), last = atomic_load(&said);
                if (now - last >= 1000000000LL && atomic_compare_exchange_strong(&said, &last, now))
                    fprintf(stderr, "weft-http: accept: %s\n", strerror(-fd));
                weft_sleep(io, 10 * 1000000LL);
            }
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* A task of its own (on the thread pool, weft_group_async would
           run it inline once the pool is busy, and nobody would accept). */
        struct conn_ctx cc = {sv, fd};
        if (weft_group_concurrent(io, &sv->group, serve, &cc, sizeof cc) < 0)
            weft_close(io, fd);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: weft-http [--port N] [--host H] [--threads N] "
                    "[--io event_loop|thread_pool]\n"
                    "                 [--root DIR] [--idle-timeout MS] [--head-timeout MS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *port = "8080", *host = NULL, *root = NULL;
    unsigned threads = 0;
    bool pool = false;
    long idle_ms = 5000, head_ms = 10000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--port") && runtime_port_ok(v))
            port = v;
        else if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--threads"))
            threads = (unsigned)atoi(v);
        else if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--io") && runtime_parse(v, &pool))
            continue;
        else if (!strcmp(a, "--idle-timeout") && (idle_ms = atol(v)) > 0)
            continue;
        else if (!strcmp(a, "--head-timeout") && (head_ms = atol(v)) > 0)
            continue;
        else
            usage();
    }

    struct server sv = {.listener = -1, .root = -1, .lock = WEFT_MUTEX_INIT,
                        .group = WEFT_GROUP_INIT};
    sv.conns.next = sv.conns.prev = &sv.conns;
    sv.idle_ns = idle_ms * 1000000LL;
    sv.head_ns = head_ms * 1000000LL;
    if (root) {
        sv.root = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sv.root < 0) {
            fprintf(stderr, "weft-http: --root %s: %s\n", root, strerror(errno));
            return 1;
        }
        int probe = open_beneath(sv.root, ".");
        if (probe < 0) {
            fprintf(stderr, "weft-http: --root needs openat2 (Linux 5.6): %s\n",
                    strerror(-probe));
            return 1;
        }
        close(probe);
    }

    /* The stop signals are read by the main task (weft_signal_wait):
       blocked in every thread, the workers inheriting this mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct runtime rt;
    if (runtime_open(&rt, "weft-http", pool, threads) < 0)
        return 1;
    weft_io io = rt.io;
    sv.listener = weft_tcp_listen(io, host, port, 4096);
    if (sv.listener < 0) {
        fprintf(stderr, "weft-http: listen on %s:%s: %s\n", host ? host : "*", port,
                strerror(-sv.listener));
        runtime_close(&rt);
        return 1;
    }
    runtime_listener(&rt, sv.listener);
    fprintf(stderr, "weft-http (%s): listening on %s:%d\n", runtime_name(&rt), host ? host : "*",
            runtime_port(sv.listener));

    struct server *svp = &sv;
    /* Several accepts in flight: when a thousand clients connect at once,
       each pass of a worker's scheduler takes in that many, instead of one
       per pass while a thousand connections are being served. */
    weft_future *acceptors[ACCEPTORS];
    int nacc = 0;
    for (int i = 0; i < ACCEPTORS; i++)
        if (weft_concurrent(io, &acceptors[nacc], accept_loop, &svp, sizeof svp, 0) == 0)
            nacc++;
    if (!nacc) {
        fprintf(stderr, "weft-http: no task to accept with\n");
        return 1;
    }
    int sig = weft_signal_wait(io, &stop);
    fprintf(stderr, "weft-http: %s, stopping\n", sig > 0 ? strsignal(sig) : strerror(-sig));

    /* Stop accepting; close the idle connections (a shutdown ends their
       read with the end of the stream); the others close after the
       request in progress. */
    for (int i = 0; i < nacc; i++)
        weft_cancel(io, acceptors[i], NULL);
    weft_close(io, sv.listener);
    atomic_store(&sv.stopping, true);
    weft_mutex_lock_uncancelable(io, &sv.lock);
    for (struct conn *c = sv.conns.next; c != &sv.conns; c = c->next)
        if (atomic_load(&c->idle))
            weft_shutdown(io, c->fd, SHUT_RD);
    weft_mutex_unlock(io, &sv.lock);
    runtime_finish_group(io, &sv.group, 10 * 1000000000LL);
    weft_group_deinit(&sv.group);
    if (sv.root >= 0)
        close(sv.root);
    runtime_close(&rt);
    return 0;
}
