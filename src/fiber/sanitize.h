// SPDX-License-Identifier: MIT
/*
 * What the sanitizers and valgrind must be told about stack switching.
 * Every helper compiles to nothing when its tool is absent.
 */
#ifndef WEFT_FIBER_SANITIZE_H
#define WEFT_FIBER_SANITIZE_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

#ifdef WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define WEFT__NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
static inline void weft__asan_unpoison(void *p, size_t n)
{
    ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
#define WEFT__NO_SANITIZE_ADDRESS
static inline void weft__asan_unpoison(void *p, size_t n)
{
    (void)p, (void)n;
}
#endif

#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
/* The shared stack pool's double-width CAS is inline assembly TSan cannot
   see: say what its pushes and pops order. */
static inline void weft__tsan_release(void *p)
{
    __tsan_release(p);
}
static inline void weft__tsan_acquire(void *p)
{
    __tsan_acquire(p);
}
#else
static inline void weft__tsan_release(void *p)
{
    (void)p;
}
static inline void weft__tsan_acquire(void *p)
{
    (void)p;
}
#endif

#ifdef WEFT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
static inline unsigned weft__vg_stack_register(void *lo, void *hi)
{
    return VALGRIND_STACK_REGISTER(lo, hi);
}
static inline void weft__vg_stack_deregister(unsigned id)
{
    VALGRIND_STACK_DEREGISTER(id);
}
static inline void weft__vg_make_defined(const void *p, size_t n)
{
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
}
static inline int weft__vg_running(void)
{
    return (int)RUNNING_ON_VALGRIND;
}
#else
static inline unsigned weft__vg_stack_register(void *lo, void *hi)
{
    return (void)lo, (void)hi, 0;
}
static inline void weft__vg_stack_deregister(unsigned id)
{
    (void)id;
}
static inline void weft__vg_make_defined(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline int weft__vg_running(void)
{
    return 0;
}
#endif

#endif
