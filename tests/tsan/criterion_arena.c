// SPDX-License-Identifier: MIT
/*
 * Lets Criterion 2.4 run under ThreadSanitizer (x86_64).
 *
 * Criterion's process-sharing allocator (BoxFort) maps each arena with
 * MAP_FIXED at 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB, skips
 * slots that are already mapped and gives up after ten tries.  Under TSan
 * almost all of that window is TSan's shadow or its protected gaps, so the
 * runner fails with "Could not initialize inheritable arena" (or crashes
 * later, in a test whose arena could not be placed).
 *
 * This file, linked into the TSan test binary only, steers those draws:
 * when rand_r is called from libcriterion, its result is mapped into slots
 * inside [0x550000000000, 0x555000000000), which is application memory for
 * TSan and below where the kernel loads position-independent executables,
 * so every test process can map its arena at the same address.  Every
 * other caller gets the C library's rand_r.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#define ARENA_BASE 0x200000000000ull
#define ARENA_STEP (1ull << 24)
#define WINDOW_LO  0x550000000000ull
#define WINDOW_HI  0x555000000000ull

static int from_criterion(const void *pc)
{
    Dl_info info;
    return dladdr(pc, &info) && info.dli_fname && strstr(info.dli_fname, "libcriterion");
}

int rand_r(unsigned int *seed)
{
    static int (*libc_rand_r)(unsigned int *);
    if (!libc_rand_r)
        libc_rand_r = (int (*)(unsigned int *))dlsym(RTLD_NEXT, "rand_r");
    int v = libc_rand_r(seed);
    if (!from_criterion(__builtin_return_address(0)))
        return v;
    uint64_t lo = (WINDOW_LO - ARENA_BASE) / ARENA_STEP;
    uint64_t hi = (WINDOW_HI - ARENA_BASE) / ARENA_STEP;
    return (int)(lo + (uint64_t)(unsigned)v % (hi - lo));
}
