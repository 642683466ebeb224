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
 * signal goes to the handler that was installed before ours, with that
 * handler's flags and mask honoured, or to the default action (see chain),
 * so weft never hides a crash that is not its own and never swallows a
 * signal someone sent.
 */
#include "fiber.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)
/* How far below the guard a fault still counts as this stack's overflow: a
   frame larger than the guard can skip it and fault further down when
   nothing is mapped there.  Below most stacks, though, lies the top of the
   next one, mapped, where nothing faults: what makes those overflows loud
   is the guard's size and -fstack-clash-protection (docs/stacks.md). */
#define BELOW_GUARD_SLACK (64 * 1024)

static struct sigaction old_segv, old_bus, mine;
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

/* SA_RESETHAND on the handler found at install time: the kernel would have
   reset it to SIG_DFL on its first delivery, so it runs at most once. */
static atomic_flag reset_taken[2] = {ATOMIC_FLAG_INIT, ATOMIC_FLAG_INIT};

/* The action weft's handler stands in for, at the moment of delivery. */
static const struct sigaction *previous(int sig, bool *spent)
{
    int i = sig == SIGBUS;
    const struct sigaction *old = i ? &old_bus : &old_segv;
    *spent = (old->sa_flags & SA_RESETHAND) &&
             atomic_flag_test_and_set_explicit(&reset_taken[i], memory_order_relaxed);
    return old;
}

/* The default action, for a signal that was sent rather than caused by a
   fault (si_code <= 0: kill, raise, sigqueue, tgkill): returning would
   swallow it, since nothing re-executes.  Deliver it again with the
   default action (terminate, with a core); if something stops that from
   ending the process (a debugger that discards it), put weft's handler
   back for the next fault. */
static void redeliver(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigset_t one, saved;
    sigemptyset(&one);
    sigaddset(&one, sig);
    raise(sig); /* pending: the signal is blocked while its handler runs */
    pthread_sigmask(SIG_UNBLOCK, &one, &saved);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    sigaction(sig, &mine, NULL);
}

/*
 * Hands a signal that is not weft's to whoever had it before weft, as the
 * kernel would have: the old handler runs with its own sa_mask added to the
 * blocked set, with the signal itself blocked unless it asked for
 * SA_NODEFER, and only once if it asked for SA_RESETHAND.  An old
 * disposition of SIG_DFL (or SIG_IGN, which the kernel does not honour for
 * a fault) ends the process: a fault by running again once the default is
 * restored, a sent signal by being delivered again.  A sent signal that was
 * ignored stays ignored, and weft's handler stays in place.
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
    bool spent;
    const struct sigaction *old = previous(sig, &spent);
    bool sent = si->si_code <= 0;
    bool custom = !spent && ((old->sa_flags & SA_SIGINFO)
                                 ? old->sa_sigaction != NULL
                                 : old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN);
    if (custom) {
        sigset_t block = old->sa_mask, saved;
        if (old->sa_flags & SA_NODEFER)
            sigdelset(&block, sig);
        else
            sigaddset(&block, sig);
        pthread_sigmask(SIG_BLOCK, &block, &saved);
        if (old->sa_flags & SA_NODEFER) {
            sigset_t self;
            sigemptyset(&self);
            sigaddset(&self, sig);
            pthread_sigmask(SIG_UNBLOCK, &self, NULL);
        }
        if (old->sa_flags & SA_SIGINFO)
            old->sa_sigaction(sig, si, uc);
        else
            old->sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return;
    }
    if (sent) {
        if (!spent && !(old->sa_flags & SA_SIGINFO) && old->sa_handler == SIG_IGN)
            return;
        redeliver(sig);
        return;
    }
    /* A fault: restore the default action and return; the faulting
       instruction runs again and the kernel ends the process the usual way,
       with a core. */
    signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    weft__fiber *f = weft__fiber_current();
    uintptr_t addr = (uintptr_t)si->si_addr;
    /* si_addr means something only for a fault (si_code > 0); a sent
       signal carries a sender's pid and uid there instead. */
    if (si->si_code > 0 && f && f->stack) {
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
    memset(&mine, 0, sizeof mine);
    mine.sa_sigaction = on_fault;
    mine.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&mine.sa_mask);
    sigaction(SIGSEGV, &mine, &old_segv);
    sigaction(SIGBUS, &mine, &old_bus);
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
