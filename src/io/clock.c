// SPDX-License-Identifier: MIT
/*
 * weft_now, shared by every implementation: clock_gettime, with errno left
 * as the caller had it.
 */
#include <weft/weft.h>

#include <errno.h>
#include <stdint.h>
#include <time.h>

int weft__clock_now(clockid_t clock, int64_t *ns)
{
    struct timespec ts;
    int saved = errno;
    if (clock_gettime(clock, &ts) < 0) {
        int e = errno;
        errno = saved;
        return -e;
    }
    *ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

WEFT_API int weft_sleep(weft_io io, int64_t duration_ns)
{
    int64_t now;
    int rc = weft_now(io, CLOCK_MONOTONIC, &now);
    if (rc < 0)
        return rc;
    if (duration_ns > INT64_MAX - now)
        duration_ns = INT64_MAX - now;
    return weft_sleep_until(io, CLOCK_MONOTONIC, now + duration_ns);
}
