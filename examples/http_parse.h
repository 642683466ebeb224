// SPDX-License-Identifier: MIT
/*
 * weft-http's request parsing: the request head, and a request target
 * turned into a path under the served root.  Pure functions over bytes,
 * so that tests can feed them anything.
 */
#ifndef WEFT_EXAMPLES_HTTP_PARSE_H
#define WEFT_EXAMPLES_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_OTHER };

struct http_request {
    enum http_method method;
    const char *target; /* not NUL-terminated */
    size_t target_len;
    int minor;                /* HTTP/1.minor: 0 or 1 */
    bool keep_alive;          /* after this request, per version and Connection */
    int64_t content_length;   /* -1: none given */
    bool transfer_encoding;   /* a Transfer-Encoding header was given */
};

/* The end of the request head in buf[0, len): the length up to and
   including the blank line that ends it, or 0 when it is not all there
   yet.  Lines may end in CRLF or a bare LF. */
size_t http_head_end(const char *buf, size_t len);

/* Parses the head buf[0, len) (as http_head_end measured it).  Returns 0,
   or the HTTP status to answer with: 400 (malformed), 501 (a method this
   server does not know), 505 (not HTTP/1.x). */
int http_parse_head(const char *buf, size_t len, struct http_request *req);

/* Turns a request target into a relative path (no leading slash, "" for
   the root) in out[0, cap): the query is dropped and %XX decoded.
   Returns 0, or the status to answer with: 400 (not origin-form, bad
   escapes), 404 (an encoded '/' or NUL: no such file), 403 (a ".."
   segment), 414 (too long for out).  On failure out is "" (if cap > 0). */
int http_target_path(const char *target, size_t len, char *out, size_t cap);

/* The Content-Type for a file name, by its extension. */
const char *http_content_type(const char *path);

#endif
