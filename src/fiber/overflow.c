// SPDX-License-Identifier: MIT
/*
 * Stack overflow reporting.
 *
 * A fiber that runs off the bottom of its stack touches the guard below it
 * and takes SIGSEGV (SIGBUS on some faults).  The handler cannot run on the
 * overflowed stack, so it runs on a per-thread alternate signal stack
 * (sigaltstack), installed by weft__overflow_thread_init.
 *
 * The handler asks one question: is the fault address in the guard of the
 * fiber running on this thread (or just below it: a frame larger than the
 * guard can jump past it)?  If so it prints which fiber and which stack, with
 * write(2) and no stdio, as befits a signal handler, and aborts.  Any other
 * fault goes to the handler that was installed before ours, or to the
 * default action, so weft never hides a crash that is not its own.
 */
#include "fiber.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)
/* How far below the guard a fault still counts as this stack's overflow. */
#define BELOW_GUARD_SLACK (64 * 1024)

static struct sigaction old_segv, old_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;

struct out {
    char buf[512];
    size_t n;
};

static void put_str(struct out *o, const char *s)
{
    while (*s && o->n < sizeof o->buf)
        o->buf[o->n++] = *s++;
}

static void put_num(struct out *o, uintptr_t v, unsigned base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16)
        put_str(o, "0x");
    while (i > 0 && o->n < sizeof o->buf)
        o->buf[o->n++] = tmp[--i];
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return; the faulting instruction runs
       again and the kernel ends the process the usual way, with a core. */
    signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    weft__fiber *f = weft__fiber_current();
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (f && f->stack) {
        uintptr_t lo = (uintptr_t)f->stack_lo;
        uintptr_t guard_lo = lo - f->guard;
        if (addr < lo && addr + BELOW_GUARD_SLACK >= guard_lo) {
            struct out o = {.n = 0};
            put_str(&o, "weft: fiber stack overflow: fiber ");
            put_num(&o, f->id, 10);
            put_str(&o, " (");
            put_str(&o, f->name ? f->name : "unnamed");
            put_str(&o, "), stack [");
            put_num(&o, lo, 16);
            put_str(&o, ", ");
            put_num(&o, lo + f->stack_size, 16);
            put_str(&o, "), guard [");
            put_num(&o, guard_lo, 16);
            put_str(&o, ", ");
            put_num(&o, lo, 16);
            put_str(&o, "), fault at ");
            put_num(&o, addr, 16);
            put_str(&o, "\n");
            ssize_t w = write(STDERR_FILENO, o.buf, o.n);
            (void)w;
            abort();
        }
    }
    chain(sig, si, uc);
}

static void free_altstack(void *mem)
{
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(mem, ALTSTACK_SIZE);
}

static void install(void)
{
    pthread_key_create(&altstack_key, free_altstack);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void weft__overflow_install(void)
{
    pthread_once(&install_once, install);
}

void weft__overflow_thread_init(void)
{
    weft__overflow_install();
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the thread has one already: use it */
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_SIZE);
        return;
    }
    pthread_setspecific(altstack_key, mem);
}

void weft__overflow_thread_fini(void)
{
    void *mem = pthread_getspecific(altstack_key);
    if (mem) {
        pthread_setspecific(altstack_key, NULL);
        free_altstack(mem);
    }
}
