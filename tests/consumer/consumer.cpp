// SPDX-License-Identifier: MIT
// The public headers compile as C++ too.
#include <weft/stream.h>
#include <weft/weft.h>

#include <cstdio>
#include <cstring>

int main()
{
    return std::strcmp(weft_version(), WEFT_VERSION_STRING) == 0 ? 0 : 1;
}
