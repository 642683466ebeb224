// SPDX-License-Identifier: MIT
/*
 * RESP2 requests and replies (resp_proto.h).
 *
 * The parser takes lines with weft_reader_take_delim and bulk strings with
 * weft_reader_read_exact, copying every argument into the request's own
 * storage: a later take may compact the reader's buffer, so nothing may
 * point into it once the next piece is read.  Offsets are kept while the
 * storage grows and turned into pointers at the end.
 */
#include "resp_proto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Storage a request keeps between requests; more than this is given back
   after a large request. */
#define KEEP_STORE (64u * 1024u)
#define KEEP_ARGS  1024u

void resp_request_init(resp_request *req)
{
    memset(req, 0, sizeof *req);
}

void resp_request_free(resp_request *req)
{
    free(req->argv);
    free(req->argl);
    free(req->offs);
    free(req->store);
    memset(req, 0, sizeof *req);
}

static int proto_error(resp_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int proto_error(resp_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->err, sizeof req->err, fmt, ap);
    va_end(ap);
    /* It goes out as an error reply: one line. */
    for (char *p = req->err; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    return RESP_EPROTO;
}

/* Room for `more` bytes after store_len, growing at most geometrically
   from what is there, so that storage follows the bytes that arrive. */
static int store_reserve(resp_request *req, size_t more)
{
    if (req->store_cap - req->store_len >= more)
        return 0;
    size_t need = req->store_len + more;
    size_t cap = req->store_cap ? req->store_cap * 2 : 256;
    if (cap < need)
        cap = need;
    char *s = realloc(req->store, cap);
    if (!s)
        return -ENOMEM;
    req->store = s;
    req->store_cap = cap;
    return 0;
}

/* Room for one more argument. */
static int args_reserve(resp_request *req)
{
    if ((size_t)req->argc < req->args_cap)
        return 0;
    size_t cap = req->args_cap ? req->args_cap * 2 : 16;
    char **argv = realloc(req->argv, cap * sizeof *argv);
    if (argv)
        req->argv = argv;
    size_t *argl = realloc(req->argl, cap * sizeof *argl);
    if (argl)
        req->argl = argl;
    size_t *offs = realloc(req->offs, cap * sizeof *offs);
    if (offs)
        req->offs = offs;
    if (!argv || !argl || !offs)
        return -ENOMEM;
    req->args_cap = cap;
    return 0;
}

static int arg_begin(resp_request *req)
{
    if (args_reserve(req) < 0)
        return -ENOMEM;
    req->offs[req->argc] = req->store_len;
    return 0;
}

static int arg_end(resp_request *req)
{
    if (store_reserve(req, 1) < 0)
        return -ENOMEM;
    req->argl[req->argc] = req->store_len - req->offs[req->argc];
    req->store[req->store_len++] = '\0';
    req->argc++;
    return 0;
}

static int store_byte(resp_request *req, char c)
{
    if (store_reserve(req, 1) < 0)
        return -ENOMEM;
    req->store[req->store_len++] = c;
    return 0;
}

static void finish(resp_request *req)
{
    for (int i = 0; i < req->argc; i++)
        req->argv[i] = req->store + req->offs[i];
}

/* Gives back what one large request made the storage grow to. */
static void shrink(resp_request *req)
{
    if (req->store_cap > KEEP_STORE) {
        free(req->store);
        req->store = NULL;
        req->store_cap = 0;
    }
    if (req->args_cap > KEEP_ARGS) {
        free(req->argv);
        free(req->argl);
        free(req->offs);
        req->argv = NULL;
        req->argl = req->offs = NULL;
        req->args_cap = 0;
    }
}

bool resp_parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        if (++i == len)
            return false;
    }
    if (s[i] == '0') {
        if (len == 1) {
            *out = 0;
            return true;
        }
        return false; /* leading zero, or "-0" */
    }
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int resp_split_inline(resp_request *req, const char *line, size_t len)
{
    const char *p = line, *end = line + len;
    for (;;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            return 0;
        if (arg_begin(req) < 0)
            return -ENOMEM;
        bool dq = false, sq = false, done = false;
        while (!done) {
            char c;
            if (dq) {
                if (p == end)
                    return proto_error(req, "Protocol error: unbalanced quotes in request");
                if (*p == '\\' && end - p >= 4 && p[1] == 'x' && is_hex(p[2]) && is_hex(p[3])) {
                    c = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
                    p += 3;
                } else if (*p == '\\' && end - p >= 2) {
                    p++;
                    switch (*p) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'b':
                        c = '\b';
                        break;
                    case 'a':
                        c = '\a';
                        break;
                    default:
                        c = *p;
                        break;
                    }
                } else if (*p == '"') {
                    /* A closing quote must end the argument. */
                    if (end - p >= 2 && !is_blank(p[1]))
                        return proto_error(req, "Protocol error: unbalanced quotes in request");
                    done = true;
                    p++;
                    continue;
                } else {
                    c = *p;
                }
            } else if (sq) {
                if (p == end)
                    return proto_error(req, "Protocol error: unbalanced quotes in request");
                if (*p == '\\' && end - p >= 2 && p[1] == '\'') {
                    c = '\'';
                    p++;
                } else if (*p == '\'') {
                    if (end - p >= 2 && !is_blank(p[1]))
                        return proto_error(req, "Protocol error: unbalanced quotes in request");
                    done = true;
                    p++;
                    continue;
                } else {
                    c = *p;
                }
            } else {
                if (p == end)
                    break;
                if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '\0') {
                    p++;
                    break;
                }
                if (*p == '"' || *p == '\'') {
                    dq = *p == '"';
                    sq = *p == '\'';
                    p++;
                    continue;
                }
                c = *p;
            }
            if (store_byte(req, c) < 0)
                return -ENOMEM;
            p++;
        }
        if (arg_end(req) < 0)
            return -ENOMEM;
    }
}

/* The next line, without its "\n" or "\r\n": 1, or what take_delim gave
   (0, -ENODATA, -ENOBUFS, an errno). */
static int take_line(weft_reader *r, const char **line, size_t *len)
{
    const void *p;
    ssize_t n = weft_reader_take_delim(r, '\n', &p);
    if (n <= 0)
        return (int)n;
    size_t k = (size_t)n - 1;
    if (k && ((const char *)p)[k - 1] == '\r')
        k--;
    *line = p;
    *len = k;
    return 1;
}

/* Copies a bulk string's len bytes and checks the "\r\n" after it. */
static int read_bulk(weft_reader *r, resp_request *req, size_t len)
{
    if (arg_begin(req) < 0)
        return -ENOMEM;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < RESP_CHUNK ? len - done : RESP_CHUNK;
        if (store_reserve(req, want) < 0)
            return -ENOMEM;
        ssize_t k = weft_reader_read_exact(r, req->store + req->store_len, want);
        if (k == 0)
            return -ENODATA;
        if (k < 0)
            return (int)k;
        req->store_len += want;
        done += want;
    }
    const void *p;
    ssize_t k = weft_reader_take(r, 2, &p);
    if (k == 0)
        return -ENODATA;
    if (k < 0)
        return (int)k;
    if (memcmp(p, "\r\n", 2) != 0)
        return proto_error(req, "Protocol error: expected '\\r\\n' after bulk string");
    return arg_end(req);
}

static int read_multibulk(weft_reader *r, resp_request *req, long long count)
{
    for (long long i = 0; i < count; i++) {
        const char *line = NULL;
        size_t len = 0;
        int rc = take_line(r, &line, &len);
        if (rc == -ENOBUFS)
            return proto_error(req, "Protocol error: too big bulk count string");
        if (rc == 0)
            return -ENODATA;
        if (rc < 0)
            return rc;
        if (len == 0 || line[0] != '$')
            return proto_error(req, "Protocol error: expected '$', got '%c'",
                               len ? line[0] : line[len]);
        long long n;
        if (!resp_parse_ll(line + 1, len - 1, &n) || n < 0 || n > (long long)RESP_MAX_BULK)
            return proto_error(req, "Protocol error: invalid bulk length");
        if (req->store_len + (size_t)n > RESP_MAX_REQUEST)
            return proto_error(req, "Protocol error: request larger than %u bytes",
                               RESP_MAX_REQUEST);
        rc = read_bulk(r, req, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int resp_read_request(weft_reader *r, resp_request *req)
{
    shrink(req);
    for (;;) {
        req->argc = 0;
        req->store_len = 0;
        req->err[0] = '\0';
        const char *line = NULL;
        size_t len = 0;
        int rc = take_line(r, &line, &len);
        if (rc == -ENOBUFS) {
            const void *p;
            bool multibulk = weft_reader_peek(r, 1, &p) == 1 && *(const char *)p == '*';
            return proto_error(req, multibulk ? "Protocol error: too big mbulk count string"
                                              : "Protocol error: too big inline request");
        }
        if (rc <= 0)
            return rc;
        if (len && line[0] == '*') {
            long long count;
            if (!resp_parse_ll(line + 1, len - 1, &count) || count > (long long)RESP_MAX_ARGS)
                return proto_error(req, "Protocol error: invalid multibulk length");
            if (count <= 0)
                continue; /* an empty request: no reply */
            rc = read_multibulk(r, req, count);
        } else {
            rc = resp_split_inline(req, line, len);
            if (rc == 0 && req->argc == 0)
                continue; /* a blank line */
        }
        if (rc < 0)
            return rc;
        finish(req);
        return 1;
    }
}

/* Where the line at data[pos] ends: the index of its '\n', or len. */
static size_t line_end(const char *data, size_t len, size_t pos)
{
    const char *nl = memchr(data + pos, '\n', len - pos);
    return nl ? (size_t)(nl - data) : len;
}

static bool blank_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_blank(s[i]))
            return false;
    return true;
}

bool resp_request_complete(const char *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t nl = line_end(data, len, pos);
        if (nl == len)
            return false;
        size_t ll = nl - pos;
        if (ll && data[nl - 1] == '\r')
            ll--;
        const char *line = data + pos;
        pos = nl + 1;
        if (line[0] != '*') {
            if (blank_line(line, ll))
                continue; /* skipped, as read_request does */
            return true;
        }
        long long count;
        if (!resp_parse_ll(line + 1, ll - 1, &count) || count > (long long)RESP_MAX_ARGS)
            return true; /* malformed: answered at once */
        if (count <= 0)
            continue;
        for (long long i = 0; i < count; i++) {
            if (pos >= len)
                return false;
            nl = line_end(data, len, pos);
            if (nl == len)
                return false;
            ll = nl - pos;
            if (ll && data[nl - 1] == '\r')
                ll--;
            long long n;
            if (data[pos] != '$' || !resp_parse_ll(data + pos + 1, ll - 1, &n) || n < 0 ||
                n > (long long)RESP_MAX_BULK)
                return true;
            pos = nl + 1;
            if ((size_t)n + 2 > len - pos)
                return false;
            pos += (size_t)n + 2;
        }
        return true;
    }
    return false;
}

/* ---- replies ------------------------------------------------------------ */

size_t resp_format_ll(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0)
        buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    return k;
}

/* c, then v in decimal, then "\r\n". */
static ssize_t reply_prefixed(weft_writer *w, char c, long long v)
{
    char buf[32];
    buf[0] = c;
    size_t n = 1 + resp_format_ll(buf + 1, v);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return weft_writer_write(w, buf, n);
}

ssize_t resp_reply_simple(weft_writer *w, const char *s)
{
    size_t n = strlen(s);
    struct iovec v[3] = {{(void *)"+", 1}, {(void *)s, n}, {(void *)"\r\n", 2}};
    return weft_writer_drain(w, v, 3, 1);
}

ssize_t resp_reply_error(weft_writer *w, const char *s)
{
    size_t n = strlen(s);
    struct iovec v[3] = {{(void *)"-", 1}, {(void *)s, n}, {(void *)"\r\n", 2}};
    return weft_writer_drain(w, v, 3, 1);
}

ssize_t resp_reply_errorf(weft_writer *w, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    /* An error reply is one line: no line breaks inside it. */
    for (char *p = buf; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    return resp_reply_error(w, buf);
}

ssize_t resp_reply_int(weft_writer *w, long long v)
{
    return reply_prefixed(w, ':', v);
}

ssize_t resp_reply_bulk_header(weft_writer *w, size_t len)
{
    return reply_prefixed(w, '$', (long long)len);
}

ssize_t resp_reply_bulk(weft_writer *w, const void *data, size_t len)
{
    char head[32];
    head[0] = '$';
    size_t n = 1 + resp_format_ll(head + 1, (long long)len);
    head[n++] = '\r';
    head[n++] = '\n';
    if (n + len + 2 <= w->cap - w->len && !w->err) {
        memcpy(w->buf + w->len, head, n);
        if (len)
            memcpy(w->buf + w->len + n, data, len);
        memcpy(w->buf + w->len + n + len, "\r\n", 2);
        w->len += n + len + 2;
        return (ssize_t)(n + len + 2);
    }
    struct iovec v[3] = {{head, n}, {(void *)data, len}, {(void *)"\r\n", 2}};
    return weft_writer_drain(w, v, 3, 1);
}

ssize_t resp_reply_nil(weft_writer *w)
{
    return weft_writer_write(w, "$-1\r\n", 5);
}

ssize_t resp_reply_array(weft_writer *w, long long n)
{
    return reply_prefixed(w, '*', n);
}
