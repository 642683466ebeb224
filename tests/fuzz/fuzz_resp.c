// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: weft-resp's request reader (examples/resp_proto.c).
 * The input is a stream of requests, read over memory until it ends or is
 * refused; every request read must be well formed, and whether a request
 * is complete must agree with what the reader does with it.
 */
#include "../../examples/resp_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weft_reader r;
    weft_reader_init_mem(&r, data, size);
    resp_request req;
    resp_request_init(&req);
    for (int n = 0; n < 10000; n++) {
        size_t before = weft_reader_buffered(&r);
        bool complete = resp_request_complete(r.buf + r.start, before);
        int rc = resp_read_request(&r, &req);
        if (rc == 1) {
            /* A request read from bytes that were all there was complete. */
            if (!complete || req.argc < 1)
                abort();
            for (int i = 0; i < req.argc; i++)
                if (req.argv[i][req.argl[i]] != '\0')
                    abort();
            if (weft_reader_buffered(&r) >= before)
                abort(); /* it consumed something */
            continue;
        }
        if (rc != 0 && rc != RESP_EPROTO && rc != -ENODATA && rc != -ENOMEM)
            abort();
        break;
    }
    resp_request_free(&req);
    return 0;
}
