// SPDX-License-Identifier: MIT
/* Run under gdb by test_unwind.c: stops at probe_here, three calls deep
   inside a fiber, so a backtrace from there can be checked. */
#include "fiber/fiber.h"

#include <stdio.h>

static weft__fiber main_fiber;
static volatile int sink;

__attribute__((noinline)) void probe_here(int depth)
{
    sink = depth;
}

__attribute__((noinline)) int fiber_level3(int d)
{
    probe_here(d);
    return sink + 1; /* not a tail call: the frame must stay */
}

__attribute__((noinline)) int fiber_level2(int d)
{
    return fiber_level3(d + 1) + 1;
}

__attribute__((noinline)) void fiber_level1(weft__fiber *self, void *msg)
{
    sink = fiber_level2(1);
    weft__fiber_exit(self, msg, NULL);
}

int main(void)
{
    weft__stack_pool pool;
    weft__stack_cache cache = WEFT__STACK_CACHE_INIT;
    weft__fiber *f;
    if (weft__stack_pool_init(&pool, NULL) != 0)
        return 1;
    weft__fiber_init_thread(&main_fiber);
    if (weft__fiber_create(&f, &pool, &cache, 0, fiber_level1) != 0)
        return 1;
    weft__fiber_switch(&main_fiber, f, &main_fiber);
    weft__fiber_destroy(f, &pool, &cache);
    weft__stack_cache_drain(&pool, &cache);
    weft__stack_pool_deinit(&pool);
    printf("done %d\n", sink);
    return 0;
}
