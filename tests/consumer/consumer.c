// SPDX-License-Identifier: MIT
/* A program outside the tree, built against an installed weft. */
#include <weft/stream.h>
#include <weft/weft.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    const char *v = weft_version();
    if (strcmp(v, WEFT_VERSION_STRING) != 0) {
        fprintf(stderr, "header says %s, library says %s\n", WEFT_VERSION_STRING, v);
        return 1;
    }
    printf("weft %s (%s context switch)\n", v, weft_context_impl());
    return 0;
}
