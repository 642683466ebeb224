// SPDX-License-Identifier: MIT
/*
 * weft-resp's protocol code (examples/resp_proto.c): requests read from
 * memory and from a pipe through a small buffer, malformed and hostile
 * input, pipelines, and the replies' bytes.
 */
#include "../examples/resp_proto.h"

#include <weft/weft.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads one request from the len bytes at text into req. */
static int parse_mem(resp_request *req, weft_reader *r, const char *text, size_t len)
{
    weft_reader_init_mem(r, text, len);
    return resp_read_request(r, req);
}

#define PARSE(req, r, lit) parse_mem(req, r, lit, sizeof lit - 1)

static void assert_arg(const resp_request *req, int i, const char *want, size_t len)
{
    cr_assert_lt(i, req->argc);
    cr_assert_eq(req->argl[i], len, "argument %d: length %zu, want %zu", i, req->argl[i], len);
    cr_assert_eq(memcmp(req->argv[i], want, len), 0, "argument %d", i);
    cr_assert_eq(req->argv[i][len], '\0', "argument %d is NUL-terminated", i);
}

#define ARG(req, i, lit) assert_arg(req, i, lit, sizeof lit - 1)

Test(resp_parse, an_array_of_bulk_strings_is_binary_safe)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    int rc = PARSE(&req, &r, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\0\r\nb\n\r\n");
    cr_assert_eq(rc, 1);
    cr_assert_eq(req.argc, 3);
    ARG(&req, 0, "SET");
    ARG(&req, 1, "k");
    ARG(&req, 2, "a\0\r\nb\n");
    cr_assert_eq(resp_read_request(&r, &req), 0, "then the end of the stream");
    resp_request_free(&req);
}

Test(resp_parse, empty_bulk_strings_and_empty_requests)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    /* "*0", "*-1" and blank lines are skipped, as Redis skips them. */
    int rc = PARSE(&req, &r, "*0\r\n*-1\r\n\r\n   \r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
    cr_assert_eq(rc, 1);
    cr_assert_eq(req.argc, 2);
    ARG(&req, 1, "");
    resp_request_free(&req);
}

Test(resp_parse, inline_commands_split_on_blanks_with_quotes)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, "  set   key\t\"a b\\x41\\n\\\"\" 'it\\'s'  \r\n"), 1);
    cr_assert_eq(req.argc, 4);
    ARG(&req, 0, "set");
    ARG(&req, 1, "key");
    ARG(&req, 2, "a bA\n\"");
    ARG(&req, 3, "it's");
    /* A line ending in a bare "\n" is a command too. */
    cr_assert_eq(PARSE(&req, &r, "PING\n"), 1);
    cr_assert_eq(req.argc, 1);
    ARG(&req, 0, "PING");
    /* Quotes inside a word open a quoted part, as Redis reads them. */
    cr_assert_eq(PARSE(&req, &r, "ECHO a\"b c\"\r\n"), 1);
    ARG(&req, 1, "ab c");
    resp_request_free(&req);
}

Test(resp_parse, unbalanced_quotes_are_a_protocol_error)
{
    static const char *const bad[] = {"ECHO \"abc\r\n", "ECHO 'abc\r\n", "ECHO \"a\"b\r\n",
                                      "ECHO 'a'b\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp_request req;
        resp_request_init(&req);
        weft_reader r;
        cr_assert_eq(parse_mem(&req, &r, bad[i], strlen(bad[i])), RESP_EPROTO, "%s", bad[i]);
        cr_assert_str_eq(req.err, "Protocol error: unbalanced quotes in request");
        resp_request_free(&req);
    }
}

Test(resp_parse, malformed_frames_are_protocol_errors)
{
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"*abc\r\n", "Protocol error: invalid multibulk length"},
        {"*\r\n", "Protocol error: invalid multibulk length"},
        {"*+1\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
        {"*01\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
        {"*3000000000\r\n", "Protocol error: invalid multibulk length"},
        {"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"},
        {"*2\r\nx\r\n", "Protocol error: expected '$', got 'x'"},
        {"*1\r\n:4\r\n", "Protocol error: expected '$', got ':'"},
        {"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$ 4\r\nPING\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$4\r\nPINGxx", "Protocol error: expected '\\r\\n' after bulk string"},
        {"*1\r\n$4\r\nPINGPONG\r\n", "Protocol error: expected '\\r\\n' after bulk string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp_request req;
        resp_request_init(&req);
        weft_reader r;
        int rc = parse_mem(&req, &r, cases[i].in, strlen(cases[i].in));
        cr_assert_eq(rc, RESP_EPROTO, "case %zu: rc %d", i, rc);
        cr_assert_str_eq(req.err, cases[i].err, "case %zu", i);
        resp_request_free(&req);
    }
}

Test(resp_parse, an_error_message_is_one_line)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, "*1\r\n\r\n"), RESP_EPROTO);
    cr_assert_str_eq(req.err, "Protocol error: expected '$', got ' '");
    resp_request_free(&req);
}

Test(resp_parse, a_bulk_over_512_MiB_is_refused_without_allocating)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, "*2\r\n$3\r\nSET\r\n$629145600\r\nxxxx"), RESP_EPROTO);
    cr_assert_str_eq(req.err, "Protocol error: invalid bulk length");
    cr_assert_lt(req.store_cap, 4096, "storage: %zu bytes", req.store_cap);
    /* 512 MiB exactly is allowed; one more byte is not. */
    cr_assert_eq(PARSE(&req, &r, "*1\r\n$536870913\r\n"), RESP_EPROTO);
    cr_assert_eq(PARSE(&req, &r, "*1\r\n$536870912\r\nabc"), -ENODATA);
    resp_request_free(&req);
}

Test(resp_parse, a_declared_length_allocates_only_what_arrives)
{
    /* 500 MiB declared, 3 bytes sent: the stream ends inside the request
       and the storage never grew anywhere near the declared size. */
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, "*2\r\n$3\r\nSET\r\n$524288000\r\nabc"), -ENODATA);
    cr_assert_leq(req.store_cap, 2 * RESP_CHUNK, "storage: %zu bytes", req.store_cap);
    /* Nor does a huge element count allocate its argument table. */
    cr_assert_eq(PARSE(&req, &r, "*1048576\r\n$1\r\na\r\n"), -ENODATA);
    cr_assert_leq(req.args_cap, 64, "argument table: %zu", req.args_cap);
    resp_request_free(&req);
}

Test(resp_parse, more_than_a_million_elements_is_refused)
{
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, "*1048577\r\n"), RESP_EPROTO);
    cr_assert_str_eq(req.err, "Protocol error: invalid multibulk length");
    cr_assert_eq(req.args_cap, 0);
    resp_request_free(&req);
}

Test(resp_parse, a_large_bulk_arrives_whole)
{
    size_t n = 3 * RESP_CHUNK + 12345;
    char head[64];
    int h = snprintf(head, sizeof head, "*1\r\n$%zu\r\n", n);
    char *in = malloc((size_t)h + n + 2);
    cr_assert_not_null(in);
    memcpy(in, head, (size_t)h);
    for (size_t i = 0; i < n; i++)
        in[(size_t)h + i] = (char)(i * 7);
    memcpy(in + h + n, "\r\n", 2);
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(parse_mem(&req, &r, in, (size_t)h + n + 2), 1);
    cr_assert_eq(req.argl[0], n);
    cr_assert_eq(memcmp(req.argv[0], in + h, n), 0);
    /* The next request gives the large storage back. */
    cr_assert_eq(PARSE(&req, &r, "PING\r\n"), 1);
    cr_assert_leq(req.store_cap, 64 * 1024);
    resp_request_free(&req);
    free(in);
}

Test(resp_parse, truncated_requests_are_ENODATA_and_a_clean_end_is_0)
{
    static const char *const cut[] = {"*2\r\n$3\r\nGET\r\n",
                                      "*1\r\n$4\r\nPI",
                                      "*1\r\n$4\r\nPING",
                                      "*1\r\n$4\r\nPING\r",
                                      "*1\r\n",
                                      "*1",
                                      "PING"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        resp_request req;
        resp_request_init(&req);
        weft_reader r;
        cr_assert_eq(parse_mem(&req, &r, cut[i], strlen(cut[i])), -ENODATA, "case %zu", i);
        resp_request_free(&req);
    }
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    cr_assert_eq(PARSE(&req, &r, ""), 0);
    cr_assert_eq(PARSE(&req, &r, "\r\n\r\n*0\r\n"), 0, "only empty requests");
    resp_request_free(&req);
}

Test(resp_parse, pipelined_requests_come_out_in_order)
{
    static const char in[] = "*1\r\n$4\r\nPING\r\n"
                             "SET a 1\r\n"
                             "*0\r\n"
                             "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                             "\r\n"
                             "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n";
    resp_request req;
    resp_request_init(&req);
    weft_reader r;
    weft_reader_init_mem(&r, in, sizeof in - 1);
    static const int argcs[] = {1, 3, 2, 3};
    static const char *const names[] = {"PING", "SET", "GET", "MGET"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(resp_read_request(&r, &req), 1, "request %d", i);
        cr_assert_eq(req.argc, argcs[i]);
        cr_assert_str_eq(req.argv[0], names[i]);
    }
    cr_assert_eq(resp_read_request(&r, &req), 0);
    resp_request_free(&req);
}

Test(resp_parse, request_complete_is_false_for_every_prefix)
{
    static const char frame[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n";
    size_t n = sizeof frame - 1;
    for (size_t i = 0; i < n; i++)
        cr_assert(!resp_request_complete(frame, i), "prefix of %zu bytes", i);
    cr_assert(resp_request_complete(frame, n));
    cr_assert(resp_request_complete("PING\r\n", 6));
    cr_assert(!resp_request_complete("PING", 4));
    cr_assert(!resp_request_complete("\r\n*0\r\n", 6), "empty requests are skipped");
    cr_assert(resp_request_complete("\r\n*0\r\nPING\n", 11));
    cr_assert(resp_request_complete("*x\r\n", 4), "a malformed one is answered at once");
    cr_assert(resp_request_complete("*1\r\n$999999999999\r\n", 20));
}

/* A reader over a pipe through a buffer smaller than the line. */
Test(resp_parse, a_line_longer_than_the_buffer_is_a_protocol_error)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char line[200];
    memset(line, 'a', sizeof line);
    cr_assert_eq(write(p[1], line, sizeof line), (ssize_t)sizeof line);
    cr_assert_eq(write(p[1], "\r\n", 2), 2);
    close(p[1]);
    char buf[64];
    weft_reader r;
    weft_reader_init(&r, weft_blocking_io(), p[0], buf, sizeof buf);
    resp_request req;
    resp_request_init(&req);
    cr_assert_eq(resp_read_request(&r, &req), RESP_EPROTO);
    cr_assert_str_eq(req.err, "Protocol error: too big inline request");
    close(p[0]);

    cr_assert_eq(pipe(p), 0);
    line[0] = '*';
    cr_assert_eq(write(p[1], line, sizeof line), (ssize_t)sizeof line);
    close(p[1]);
    weft_reader_init(&r, weft_blocking_io(), p[0], buf, sizeof buf);
    cr_assert_eq(resp_read_request(&r, &req), RESP_EPROTO);
    cr_assert_str_eq(req.err, "Protocol error: too big mbulk count string");
    close(p[0]);
    resp_request_free(&req);
}

/* A pipeline read through a 20-byte buffer: most pieces cross a fill. */
Test(resp_parse, requests_cross_buffer_refills)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    static const char in[] = "*2\r\n$4\r\nECHO\r\n$20\r\n0123456789abcdefghij\r\n"
                             "ECHO \"quoted arg\"\r\n";
    cr_assert_eq(write(p[1], in, sizeof in - 1), (ssize_t)(sizeof in - 1));
    close(p[1]);
    char buf[20];
    weft_reader r;
    weft_reader_init(&r, weft_blocking_io(), p[0], buf, sizeof buf);
    resp_request req;
    resp_request_init(&req);
    cr_assert_eq(resp_read_request(&r, &req), 1);
    ARG(&req, 1, "0123456789abcdefghij");
    cr_assert_eq(resp_read_request(&r, &req), 1);
    ARG(&req, 1, "quoted arg");
    cr_assert_eq(resp_read_request(&r, &req), 0);
    close(p[0]);
    resp_request_free(&req);
}

Test(resp_parse, integers_parse_as_redis_parses_them)
{
    static const struct {
        const char *s;
        bool ok;
        long long v;
    } cases[] = {
        {"0", true, 0},
        {"-1", true, -1},
        {"9223372036854775807", true, LLONG_MAX},
        {"-9223372036854775808", true, LLONG_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"18446744073709551616", false, 0},
        {"", false, 0},
        {"-", false, 0},
        {"-0", false, 0},
        {"01", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1x", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long v = 12345;
        bool ok = resp_parse_ll(cases[i].s, strlen(cases[i].s), &v);
        cr_assert_eq(ok, cases[i].ok, "'%s'", cases[i].s);
        if (ok)
            cr_assert_eq(v, cases[i].v, "'%s'", cases[i].s);
    }
}

Test(resp_reply, replies_have_redis_bytes)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char buf[64];
    weft_writer w;
    weft_writer_init(&w, weft_blocking_io(), p[1], buf, sizeof buf);
    resp_reply_simple(&w, "OK");
    resp_reply_error(&w, "ERR x");
    resp_reply_errorf(&w, "ERR %s", "a\r\nb");
    resp_reply_int(&w, LLONG_MIN);
    resp_reply_int(&w, 0);
    resp_reply_bulk(&w, "a\0b", 3);
    resp_reply_bulk(&w, "", 0);
    resp_reply_nil(&w);
    resp_reply_array(&w, 2);
    /* Larger than the writer's buffer: written around it. */
    char big[100];
    memset(big, 'z', sizeof big);
    resp_reply_bulk(&w, big, sizeof big);
    cr_assert_eq(weft_writer_flush(&w), 0);
    close(p[1]);
    static const char want[] = "+OK\r\n-ERR x\r\n-ERR a  b\r\n:-9223372036854775808\r\n:0\r\n"
                               "$3\r\na\0b\r\n$0\r\n\r\n$-1\r\n*2\r\n$100\r\n";
    char got[512];
    size_t n = 0;
    ssize_t k;
    while ((k = read(p[0], got + n, sizeof got - n)) > 0)
        n += (size_t)k;
    close(p[0]);
    cr_assert_eq(n, sizeof want - 1 + 100 + 2);
    cr_assert_eq(memcmp(got, want, sizeof want - 1), 0);
    cr_assert_eq(memcmp(got + sizeof want - 1 + 100, "\r\n", 2), 0);
}
