// SPDX-License-Identifier: MIT
#include <weft/weft.h>

#include "asm/context.h"

const char *weft_version(void)
{
    return WEFT_VERSION_STRING;
}

const char *weft_context_impl(void)
{
    return weft__context_impl;
}
