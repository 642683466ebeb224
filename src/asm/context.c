// SPDX-License-Identifier: MIT
#include "context.h"

#include <stdlib.h>
#include <unistd.h>

#ifdef WEFT_CONTEXT_BOOST
const char weft__context_impl[] = "boost";
#else
const char weft__context_impl[] = "asm";
#endif

_Noreturn void weft__context_entry_returned(void)
{
    static const char msg[] = "weft: a context's entry function returned; "
                              "an entry must jump away and never return\n";
    /* write(2), not stdio: the stack we are on is about to be abandoned and
       may be small. */
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    abort();
}
