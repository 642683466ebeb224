// SPDX-License-Identifier: MIT
/*
 * weft-http's parsers (examples/http_parse.c) on hand-made input, most of
 * it malformed.
 */
#include "../examples/http_parse.h"

#include <criterion/criterion.h>

#include <string.h>

static int parse(const char *text, struct http_request *req)
{
    size_t len = strlen(text);
    size_t end = http_head_end(text, len);
    cr_assert_neq(end, 0, "no head end in %s", text);
    return http_parse_head(text, end, req);
}

Test(http_parse, head_end_needs_a_blank_line)
{
    cr_assert_eq(http_head_end("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
    cr_assert_eq(http_head_end("GET / HTTP/1.1\r\n\r\nrest", 22), 18);
    cr_assert_eq(http_head_end("GET / HTTP/1.1\n\nrest", 20), 16);
    cr_assert_eq(http_head_end("", 0), 0);
    cr_assert_eq(http_head_end("\r\n", 2), 0, "a lone line end is not a blank line after a head");
}

Test(http_parse, a_good_request)
{
    struct http_request r;
    cr_assert_eq(parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\n", &r), 0);
    cr_assert_eq(r.method, HTTP_GET);
    cr_assert_eq(r.target_len, 6);
    cr_assert_eq(memcmp(r.target, "/a?b=c", 6), 0);
    cr_assert_eq(r.minor, 1);
    cr_assert(r.keep_alive);
    cr_assert_eq(r.content_length, 5);
    cr_assert_eq(parse("\r\nHEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 0,
                 "a leading empty line is ignored");
    cr_assert_eq(r.method, HTTP_HEAD);
    cr_assert(r.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
    cr_assert(!r.keep_alive, "1.0 closes by default");
    cr_assert_eq(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r), 0);
    cr_assert(!r.keep_alive);
}

Test(http_parse, malformed_heads_are_400)
{
    static const char *bad[] = {
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/x.1\r\n\r\n",
        "GET / HTTP/1.11\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_request r;
        cr_expect_eq(parse(bad[i], &r), 400, "%s", bad[i]);
    }
}

Test(http_parse, a_malformed_request_leaves_the_request_defined)
{
    struct http_request r;
    memset(&r, 0x5a, sizeof r);
    cr_assert_eq(http_parse_head("GARBAGE\r\n\r\n", 11, &r), 400);
    cr_assert_eq(r.minor, 1, "the error page's version is defined");
}

Test(http_parse, blank_lines_before_a_request_are_not_a_head)
{
    static const char t[] = "\r\n\r\n\nGET / HTTP/1.1\r\n\r\n";
    size_t len = sizeof t - 1;
    cr_assert_eq(http_head_end(t, len), len);
    struct http_request r;
    cr_assert_eq(http_parse_head(t, len, &r), 0);
    cr_assert_eq(r.method, HTTP_GET);
}

Test(http_parse, other_versions_and_methods)
{
    struct http_request r;
    cr_assert_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), 505);
    cr_assert_eq(parse("GET / HTTP/0.9\r\n\r\n", &r), 505);
    cr_assert_eq(parse("DELETE / HTTP/1.1\r\n\r\n", &r), 501);
    cr_assert_eq(parse("get / HTTP/1.1\r\n\r\n", &r), 501, "methods are case-sensitive");
    cr_assert_eq(parse("POST / HTTP/1.1\r\n\r\n", &r), 0);
    cr_assert_eq(r.method, HTTP_POST);
    cr_assert_eq(r.content_length, -1);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &r), 0,
                 "a repeated, equal length is allowed");
}

static int target(const char *t, char *out, size_t cap)
{
    return http_target_path(t, strlen(t), out, cap);
}

Test(http_parse, targets_become_paths_under_the_root)
{
    char p[64];
    cr_assert_eq(target("/", p, sizeof p), 0);
    cr_assert_str_eq(p, "");
    cr_assert_eq(target("/a/b.html?x=1#f", p, sizeof p), 0);
    cr_assert_str_eq(p, "a/b.html");
    cr_assert_eq(target("//a///b", p, sizeof p), 0);
    cr_assert_str_eq(p, "a/b");
    cr_assert_eq(target("/a%20b", p, sizeof p), 0);
    cr_assert_str_eq(p, "a b");
    cr_assert_eq(target("/..a/b..", p, sizeof p), 0, "dots inside names are names");
    cr_assert_str_eq(p, "..a/b..");

    cr_assert_eq(target("/..", p, sizeof p), 403);
    cr_assert_eq(target("/a/../../b", p, sizeof p), 403);
    cr_assert_eq(target("/a/%2e%2e/b", p, sizeof p), 403);
    cr_assert_eq(target("/a/%2E./b", p, sizeof p), 403);
    cr_assert_eq(target("/a%2fb", p, sizeof p), 404, "an encoded slash");
    cr_assert_eq(target("/a%5cb", p, sizeof p), 404, "an encoded backslash");
    cr_assert_eq(target("/a%00", p, sizeof p), 404);
    cr_assert_eq(target("/a%", p, sizeof p), 400);
    cr_assert_eq(target("/a%4", p, sizeof p), 400);
    cr_assert_eq(target("/a%g0", p, sizeof p), 400);
    cr_assert_eq(target("a", p, sizeof p), 400);
    cr_assert_eq(target("*", p, sizeof p), 400);
    cr_assert_eq(target("http://x/", p, sizeof p), 400);
    cr_assert_eq(target("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", p, sizeof p),
                 414);
    /* A failure leaves "", not the bytes written so far without an end
       (the fuzzer's find: a caller read past the buffer). */
    memset(p, 'x', sizeof p);
    cr_assert_eq(target("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", p, sizeof p),
                 414);
    cr_assert_str_eq(p, "");
    memset(p, 'x', sizeof p);
    cr_assert_eq(target("/ab%g0", p, sizeof p), 400);
    cr_assert_str_eq(p, "");
    cr_assert_eq(http_target_path("/a", 2, p, 0), 414, "no room at all");
}

Test(http_parse, content_types)
{
    cr_assert_str_eq(http_content_type("a/b.HTML"), "text/html; charset=utf-8");
    cr_assert_str_eq(http_content_type("x.png"), "image/png");
    cr_assert_str_eq(http_content_type("dir.d/noext"), "application/octet-stream");
    cr_assert_str_eq(http_content_type("trailing."), "application/octet-stream");
}
