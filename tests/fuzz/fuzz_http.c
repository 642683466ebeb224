// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: weft-http's request parsing (examples/http_parse.c).
 * The input is a request head, and what follows it.
 */
#include "../../examples/http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t end = http_head_end(buf, size);
    if (end > size)
        abort();
    struct http_request req;
    int st = http_parse_head(buf, end ? end : size, &req);
    if (st == 0 || st == 501) {
        /* The target lies inside the head. */
        if (req.target < buf || req.target + req.target_len > buf + size)
            abort();
        char path[256];
        int ps = http_target_path(req.target, req.target_len, path, sizeof path);
        if (ps == 0) {
            size_t n = strlen(path);
            if (n >= sizeof path || path[0] == '/')
                abort();
            /* No ".." segment survives. */
            for (size_t b = 0; b <= n;) {
                size_t e = b;
                while (e < n && path[e] != '/')
                    e++;
                if (e - b == 2 && path[b] == '.' && path[b + 1] == '.')
                    abort();
                b = e + 1;
            }
        }
        (void)http_content_type(path);
    } else if (st != 400 && st != 505) {
        abort();
    }
    return 0;
}
