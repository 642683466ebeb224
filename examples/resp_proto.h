// SPDX-License-Identifier: MIT
/*
 * The Redis protocol (RESP2), as weft-resp speaks it: reading requests
 * from a weft_reader, and writing replies to a weft_writer.
 *
 * A request is either an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\n
 * k\r\n") or an inline command (a line, "GET k\r\n", split on blanks with
 * Redis's quoting rules).  Its arguments are copied into storage the
 * request owns and reuses from one request to the next, so they stay valid
 * while the reader moves on; they are binary-safe, and each is followed by
 * a NUL that is not part of it.
 *
 * Limits, checked before anything is allocated for them: a bulk string
 * longer than RESP_MAX_BULK, an array of more than RESP_MAX_ARGS elements,
 * a request whose arguments add up to more than RESP_MAX_REQUEST bytes.
 * Storage grows with the bytes that actually arrive, never ahead of them by
 * more than RESP_CHUNK, so a client cannot make the server allocate what it
 * only declares.
 */
#ifndef WEFT_EXAMPLES_RESP_PROTO_H
#define WEFT_EXAMPLES_RESP_PROTO_H

#include <weft/stream.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESP_MAX_BULK    (512u * 1024u * 1024u) /* as Redis's proto-max-bulk-len */
#define RESP_MAX_ARGS    (1024u * 1024u)
#define RESP_MAX_REQUEST (1024u * 1024u * 1024u) /* as Redis's client-query-buffer-limit */
#define RESP_CHUNK       (1024u * 1024u)

/* read_request's result when the input is not RESP: the request's err
   holds the message ("Protocol error: ..."), which the caller sends as an
   error reply before closing the connection. */
#define RESP_EPROTO (-10000)

typedef struct resp_request {
    int argc;
    char **argv; /* argv[i]: argl[i] bytes, then a NUL */
    size_t *argl;
    /* What the request owns, kept from one request to the next. */
    size_t args_cap;
    size_t *offs; /* argument offsets in store while it is being read */
    char *store;
    size_t store_cap, store_len;
    char err[128];
} resp_request;

void resp_request_init(resp_request *req);
void resp_request_free(resp_request *req);

/* Reads the next request from r into req.  Returns 1 with a request
   (argc >= 1), 0 at the end of the stream before a request began,
   RESP_EPROTO on malformed input (req->err says why), -ENOMEM, or the
   reader's negative errno (-ENODATA: the stream ended inside a request).
   Empty requests (a blank line, "*0") are skipped, as Redis does. */
int resp_read_request(weft_reader *r, resp_request *req);

/* Whether data[0, len) holds a whole request (or enough of a malformed
   one to answer it).  A server that answers a pipeline flushes its
   replies when the next request is not all there, so that it never waits
   for input while holding back output. */
bool resp_request_complete(const char *data, size_t len);

/* Splits an inline command line (no line ending) Redis's way: blanks
   separate arguments; "..." with \n \r \t \b \a \\ \" \xHH escapes and
   '...' with \' are quoted.  Appends the arguments to req.  0, RESP_EPROTO
   (unbalanced quotes), -ENOMEM. */
int resp_split_inline(resp_request *req, const char *line, size_t len);

/* Parses a whole decimal integer the way Redis's string2ll does: an
   optional '-', no '+', no blanks, no leading zeros, within int64_t. */
bool resp_parse_ll(const char *s, size_t len, long long *out);

/* ---- replies ------------------------------------------------------------ */

/* Each returns what weft_writer_write returns: >= 0, or a negative errno. */
ssize_t resp_reply_simple(weft_writer *w, const char *s); /* +s\r\n */
ssize_t resp_reply_error(weft_writer *w, const char *s);  /* -s\r\n (s starts with ERR etc.) */
ssize_t resp_reply_errorf(weft_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
ssize_t resp_reply_int(weft_writer *w, long long v);                   /* :v\r\n */
ssize_t resp_reply_bulk(weft_writer *w, const void *data, size_t len); /* $len\r\n...\r\n */
ssize_t resp_reply_nil(weft_writer *w);                                /* $-1\r\n */
ssize_t resp_reply_array(weft_writer *w, long long n);                 /* *n\r\n */
/* The bulk header alone: "$len\r\n". */
ssize_t resp_reply_bulk_header(weft_writer *w, size_t len);

/* Formats v in decimal at buf (room for 21 bytes); returns the length. */
size_t resp_format_ll(char *buf, long long v);

#endif
