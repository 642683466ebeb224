// SPDX-License-Identifier: MIT
/*
 * Fault injection: the rates from WEFT_FAULTS, a generator per thread, and
 * the counts printed at exit (fault.h).  Compiled only with WEFT_FAULTS.
 */
#include "fault.h"

#ifdef WEFT_FAULTS

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[WEFT__FAULT_KINDS] = {"eintr", "eagain", "enomem",
                                                     "short", "sqe",    "thread", "monitor"};

static struct {
    bool on;
    uint64_t seed;
    uint64_t threshold[WEFT__FAULT_KINDS]; /* fault when a draw is below */
    _Atomic uint64_t count[WEFT__FAULT_KINDS];
    _Atomic uint64_t threads;
} cfg;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local uint64_t state;

static void report(void)
{
    fprintf(stderr, "weft: faults injected (seed %llu):", (unsigned long long)cfg.seed);
    for (int k = 0; k < WEFT__FAULT_KINDS; k++)
        fprintf(stderr, " %s=%llu", names[k],
                (unsigned long long)atomic_load_explicit(&cfg.count[k], memory_order_relaxed));
    fputc('\n', stderr);
}

static void bad(const char *spec, const char *why)
{
    fprintf(stderr,
            "weft: WEFT_FAULTS=%s: %s (expected seed=N and KIND=P pairs, KIND one of eintr, "
            "eagain, enomem, short, sqe, thread, monitor or all, P between 0 and 1)\n",
            spec, why);
    abort();
}

static void parse_spec(const char *spec)
{
    cfg.on = false;
    memset(cfg.threshold, 0, sizeof cfg.threshold);
    if (!spec || !*spec)
        return;
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        bad(spec, "too long");
    strcpy(buf, spec);
    cfg.seed = 1;
    char *save = NULL;
    if (buf[0] == ',' || strstr(buf, ",,") || buf[strlen(buf) - 1] == ',')
        bad(spec, "an empty item");
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            bad(spec, "an item without '='");
        *eq = '\0';
        char *end;
        if (strcmp(item, "seed") == 0) {
            errno = 0;
            cfg.seed = strtoull(eq + 1, &end, 10);
            if (*end || end == eq + 1 || eq[1] == '-' || errno == ERANGE)
                bad(spec, "the seed is not a number from 0 to 2^64-1");
            continue;
        }
        double p = strtod(eq + 1, &end);
        if (*end || end == eq + 1 || isspace((unsigned char)eq[1]) || !(p >= 0 && p <= 1))
            bad(spec, "a rate that is not a number between 0 and 1");
        uint64_t t = p >= 1 ? UINT64_MAX : (uint64_t)(p * 18446744073709551616.0);
        bool all = strcmp(item, "all") == 0, known = all;
        for (int k = 0; k < WEFT__FAULT_KINDS; k++)
            if (all || strcmp(item, names[k]) == 0) {
                cfg.threshold[k] = t;
                known = true;
            }
        if (!known)
            bad(spec, "an unknown kind of fault");
    }
    cfg.on = true;
}

static void parse(void)
{
    const char *spec = getenv("WEFT_FAULTS");
    parse_spec(spec);
    if (cfg.on)
        atexit(report);
}

int weft__fault_configure(const char *spec)
{
    pthread_once(&once, parse);
    parse_spec(spec);
    return 0;
}

/* splitmix64: each thread's sequence starts from the seed and the order in
   which it first drew. */
static uint64_t draw(void)
{
    if (state == 0)
        state = cfg.seed * 0x9e3779b97f4a7c15u +
                (atomic_fetch_add_explicit(&cfg.threads, 1, memory_order_relaxed) + 1) *
                    0xbf58476d1ce4e5b9u;
    uint64_t z = (state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* At load: a malformed WEFT_FAULTS stops the program before it runs,
   whichever Io it uses. */
__attribute__((constructor)) static void parse_at_load(void)
{
    pthread_once(&once, parse);
}

bool weft__fault(enum weft__fault_kind k)
{
    pthread_once(&once, parse);
    if (!cfg.on || cfg.threshold[k] == 0 || draw() >= cfg.threshold[k])
        return false;
    atomic_fetch_add_explicit(&cfg.count[k], 1, memory_order_relaxed);
    return true;
}

size_t weft__fault_len(size_t len)
{
    return len <= 1 ? len : 1 + (size_t)(draw() % len);
}

#else

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int weft__fault_configure(const char *spec)
{
    (void)spec;
    return -ENOSYS;
}

/* A build without the option says so when asked for faults, rather than
   let a test believe it ran under them. */
__attribute__((constructor)) static void no_faults_here(void)
{
    const char *spec = getenv("WEFT_FAULTS");
    if (spec && *spec)
        fprintf(stderr, "weft: WEFT_FAULTS is set, but this libweft was built without fault "
                        "injection (cmake -DWEFT_FAULTS=ON): no faults will be injected\n");
}
#endif
