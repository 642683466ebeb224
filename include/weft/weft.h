/*
 * weft: stackful fibers on work-stealing threads, with io_uring I/O.
 *
 * The one header a program includes.  Compiles as C11 and as C++.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* The library's version, "MAJOR.MINOR.PATCH", as built (which may differ
   from the header's WEFT_VERSION_STRING when linked against another copy). */
WEFT_API const char *weft_version(void);

/* Which context switch this build uses: "asm" (weft's own) or "boost". */
WEFT_API const char *weft_context_impl(void);

#ifdef __cplusplus
}
#endif

#endif
