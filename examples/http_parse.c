// SPDX-License-Identifier: MIT
/*
 * weft-http's request parsing (http_parse.h).  RFC 9112's grammar, taken
 * strictly where leniency would be a security hole (no whitespace before
 * a header's colon, no obsolete line folding, one Content-Length, no
 * Content-Length together with Transfer-Encoding) and leniently elsewhere
 * (bare LF line ends, header names in any case).
 */
#include "http_parse.h"

#include <string.h>
#include <strings.h>

size_t http_head_end(const char *buf, size_t len)
{
    /* Empty lines before the request line are not the end of a head. */
    size_t i = 0;
    while (i < len && (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')))
        i += buf[i] == '\r' ? 2 : 1;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        /* A blank line: LF LF, or LF CR LF. */
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* One line of buf[*pos, len) without its line end; false at the end. */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= len)
        return false;
    const char *s = buf + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    size_t k = nl ? (size_t)(nl - s) : len - *pos;
    *pos += k + (nl ? 1 : 0);
    if (k && s[k - 1] == '\r')
        k--;
    *line = s;
    *n = k;
    return true;
}

static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool eq(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static bool ieq(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* Whether the comma-separated list v[0, n) holds token tok. */
static bool list_has(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t b = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (ieq(v + b, e - b, tok))
            return true;
    }
    return false;
}

int http_parse_head(const char *buf, size_t len, struct http_request *req)
{
    size_t pos = 0;
    const char *line;
    size_t n;
    *req = (struct http_request){.minor = 1, .content_length = -1};
    /* Empty lines before the request line are ignored (RFC 9112 2.2). */
    do {
        if (!next_line(buf, len, &pos, &line, &n))
            return 400;
    } while (n == 0);

    /* method SP target SP HTTP/1.x */
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1 || sp1 == line)
        return 400;
    size_t mlen = (size_t)(sp1 - line);
    for (size_t i = 0; i < mlen; i++)
        if (!tchar((unsigned char)line[i]))
            return 400;
    const char *t = sp1 + 1;
    const char *end = line + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t)
        return 400;
    const char *ver = sp2 + 1;
    size_t vlen = (size_t)(end - ver);
    if (vlen != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[6] != '.' || ver[5] < '0' ||
        ver[5] > '9' || ver[7] < '0' || ver[7] > '9')
        return 400;
    if (ver[5] != '1')
        return 505;
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return 400;

    *req = (struct http_request){.target = t, .target_len = (size_t)(sp2 - t), .content_length = -1};
    req->minor = ver[7] == '0' ? 0 : 1;
    if (eq(line, mlen, "GET"))
        req->method = HTTP_GET;
    else if (eq(line, mlen, "HEAD"))
        req->method = HTTP_HEAD;
    else if (eq(line, mlen, "POST"))
        req->method = HTTP_POST;
    else
        req->method = HTTP_OTHER;

    bool close = false, keep = false;
    while (next_line(buf, len, &pos, &line, &n) && n) {
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line)
            return 400;
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < nlen; i++)
            if (!tchar((unsigned char)line[i]))
                return 400; /* also whitespace before the colon, and folding */
        const char *v = colon + 1;
        const char *ve = line + n;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
        for (size_t i = 0; i < vl; i++)
            if ((unsigned char)v[i] < ' ' && v[i] != '\t')
                return 400;
        if (ieq(line, nlen, "Content-Length")) {
            if (vl == 0 || vl > 18)
                return 400;
            int64_t cl = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return 400;
                cl = cl * 10 + (v[i] - '0');
            }
            if (req->content_length >= 0 && req->content_length != cl)
                return 400;
            req->content_length = cl;
        } else if (ieq(line, nlen, "Transfer-Encoding")) {
            req->transfer_encoding = true;
        } else if (ieq(line, nlen, "Connection")) {
            close |= list_has(v, vl, "close");
            keep |= list_has(v, vl, "keep-alive");
        }
    }
    if (req->transfer_encoding && req->content_length >= 0)
        return 400; /* request smuggling's favourite ambiguity */
    req->keep_alive = req->minor == 1 ? !close : (keep && !close);
    if (req->method == HTTP_OTHER)
        return 501;
    return 0;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int target_path(const char *target, size_t len, char *out, size_t cap);

int http_target_path(const char *target, size_t len, char *out, size_t cap)
{
    int st = target_path(target, len, out, cap);
    /* A failure leaves out an empty string, never a cut-off one without
       its terminator (the fuzzer found a caller reading one). */
    if (st && cap)
        out[0] = '\0';
    return st;
}

static int target_path(const char *target, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 414;
    if (len == 0 || target[0] != '/')
        return 400;
    const char *q = memchr(target, '?', len);
    if (q)
        len = (size_t)(q - target);
    const char *hash = memchr(target, '#', len);
    if (hash)
        len = (size_t)(hash - target);
    size_t o = 0;
    /* Decoded, with runs of '/' made one and the leading one dropped. */
    for (size_t i = 1; i < len; i++) {
        char c = target[i];
        if (c == '%') {
            if (i + 2 >= len)
                return 400;
            int h = hex(target[i + 1]), l = hex(target[i + 2]);
            if (h < 0 || l < 0)
                return 400;
            c = (char)(h * 16 + l);
            i += 2;
            if (c == '/' || c == '\0' || c == '\\')
                return 404;
        } else if (c == '/' && (o == 0 || out[o - 1] == '/')) {
            continue;
        }
        if (o + 1 >= cap)
            return 414;
        out[o++] = c;
    }
    out[o] = '\0';
    /* No segment may be "..", however it was spelled. */
    for (size_t b = 0; b < o;) {
        size_t e = b;
        while (e < o && out[e] != '/')
            e++;
        if (e - b == 2 && out[b] == '.' && out[b + 1] == '.')
            return 403;
        b = e + 1;
    }
    return 0;
}

const char *http_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"txt", "text/plain; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"pdf", "application/pdf"},
        {"wasm", "application/wasm"},
        {"woff2", "font/woff2"},
        {"mp4", "video/mp4"},
        {"gz", "application/gzip"},
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (dot && dot[1])
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}
