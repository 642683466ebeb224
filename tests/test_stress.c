// SPDX-License-Identifier: MIT
/*
 * Load: a million tasks in a tree, randomized spawn/select/cancel, and a
 * million hand-offs between tasks on different workers.
 */
#include "contract.h"

#include "fiber/stack.h"
#include "sched/sched.h"

#include <stdatomic.h>

/* ---- skynet: 10-ary tree, leaves return their number ------------------- */

struct sky {
    long num, size;
};

static void skynet(weft_io io, void *ctx, void *result)
{
    struct sky *s = ctx;
    if (s->size == 1) {
        *(long *)result = s->num;
        return;
    }
    weft_future *f[10];
    long d = s->size / 10;
    for (int i = 0; i < 10; i++) {
        struct sky c = {s->num + i * d, d};
        f[i] = weft_async(io, skynet, &c, sizeof c, sizeof(long));
    }
    long sum = 0;
    for (int i = 0; i < 10; i++) {
        long r;
        weft_await(io, f[i], &r);
        sum += r;
    }
    *(long *)result = sum;
}

static void skynet_body(weft_io io, const struct impl *im)
{
    (void)im;
    long size = 1000000;
    while (size > 10 && test_scaled((size_t)size) < (size_t)size &&
           size > (long)test_scaled(1000000))
        size /= 10;
    struct sky root = {0, size};
    long sum = 0;
    weft_await(io, weft_async(io, skynet, &root, sizeof root, sizeof sum), &sum);
    cr_assert_eq(sum, size * (size - 1) / 2, "skynet(%ld) = %ld", size, sum);
}

Test(stress, skynet_million_tasks_1_worker, .timeout = 300)
{
    contract_run(&impl_el1, skynet_body);
}
Test(stress, skynet_million_tasks_2_workers, .timeout = 300)
{
    contract_run(&impl_el2, skynet_body);
}
Test(stress, skynet_million_tasks_4_workers, .timeout = 300)
{
    contract_run(&impl_el4, skynet_body);
}

/* ---- randomized spawn / select / cancel ------------------------------------ */

static atomic_long started, finished;

static void rnd_task(weft_io io, void *ctx, void *result)
{
    unsigned kind = *(unsigned *)ctx;
    atomic_fetch_add(&started, 1);
    int r = 0;
    switch (kind % 4) {
    case 0:
        break;
    case 1:
        for (unsigned i = 0; i < kind % 7; i++)
            weft_yield(io);
        break;
    case 2:
        r = weft_sleep(io, (int64_t)(kind % 50) * 1000);
        break;
    case 3:
        r = weft_sleep(io, 3600LL * 1000000000LL);
        break;
    }
    *(int *)result = r;
    atomic_fetch_add(&finished, 1);
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void random_body(weft_io io, const struct impl *im)
{
    (void)im;
    uint32_t seed = 12345;
    size_t rounds = test_scaled(100000);
    for (size_t round = 0; round < rounds; round++) {
        weft_future *f[4];
        unsigned n = 1 + xorshift(&seed) % 4, kinds[4];
        bool any_short = false;
        for (unsigned i = 0; i < n; i++) {
            kinds[i] = xorshift(&seed);
            if (kinds[i] % 4 != 3)
                any_short = true;
            f[i] = weft_async(io, rnd_task, &kinds[i], sizeof kinds[i], sizeof(int));
        }
        if (any_short) {
            size_t w = weft_select(io, f, n);
            cr_assert_lt(w, n);
            cr_assert_neq(kinds[w] % 4, 3u, "select returned a task that sleeps for an hour");
        }
        for (unsigned i = 0; i < n; i++) {
            int r = 1;
            if (xorshift(&seed) % 2 || kinds[i] % 4 == 3)
                weft_cancel(io, f[i], &r);
            else
                weft_await(io, f[i], &r);
            cr_assert(r == 0 || r == -ECANCELED, "task result %d", r);
            if (kinds[i] % 4 == 3)
                cr_assert_eq(r, -ECANCELED);
        }
    }
    cr_assert_eq(atomic_load(&started), atomic_load(&finished));
}

static void random_run(const struct impl *im)
{
    weft_event_loop *el = test_loop_start(im->threads);
    random_body(weft_event_loop_io(el), im);
    weft_event_loop_deinit(el); /* aborts if a stack is still out */
}

Test(stress, random_spawn_select_cancel_1_worker, .timeout = 300)
{
    random_run(&impl_el1);
}
Test(stress, random_spawn_select_cancel_2_workers, .timeout = 300)
{
    random_run(&impl_el2);
}
Test(stress, random_spawn_select_cancel_4_workers, .timeout = 300)
{
    random_run(&impl_el4);
}

/* ---- ping-pong between tasks on different workers ------------------------- */

/* Two tasks pass a counter back and forth through two queues of one slot:
   every turn parks one side and wakes the other, across workers when the
   two run on different ones. */
struct pingpong {
    weft_queue *to[2]; /* to[i]: what side i receives */
    long rounds;
    atomic_int on[2][8]; /* which workers each side ran on */
};

struct pp_ctx {
    struct pingpong *p;
    int me;
};

static void pp_side(weft_io io, void *ctx, void *result)
{
    struct pp_ctx *c = ctx;
    struct pingpong *p = c->p;
    long v = 0, turns = 0;
    if (c->me == 0)
        cr_assert_eq(weft_queue_put(io, p->to[1], &v), 0);
    for (;;) {
        int rc = weft_queue_get(io, p->to[c->me], &v);
        if (rc == -EPIPE)
            break;
        cr_assert_eq(rc, 0);
        atomic_store(&p->on[c->me][weft__worker_current()->index & 7], 1);
        turns++;
        if (v + 1 == 2 * p->rounds) {
            weft_queue_close(io, p->to[0]);
            weft_queue_close(io, p->to[1]);
            break;
        }
        v++;
        rc = weft_queue_put(io, p->to[1 - c->me], &v);
        if (rc == -EPIPE)
            break;
        cr_assert_eq(rc, 0);
    }
    *(long *)result = turns;
}

static void pingpong_run(unsigned threads)
{
    weft_event_loop *el = test_loop_start(threads);
    weft_io io = weft_event_loop_io(el);
    static struct pingpong p;
    memset(&p, 0, sizeof p);
    p.rounds = (long)test_scaled(1000000);
    /* valgrind runs one thread at a time and switches between them only
       every few thousand blocks: each turn of a cross-thread ping-pong
       waits for that switch. */
    if (test_on_valgrind())
        p.rounds /= 50;
    cr_assert_eq(weft_queue_create(&p.to[0], sizeof(long), 1), 0);
    cr_assert_eq(weft_queue_create(&p.to[1], sizeof(long), 1), 0);
    struct pp_ctx c0 = {&p, 0}, c1 = {&p, 1};
    weft_future *a = weft_async(io, pp_side, &c0, sizeof c0, sizeof(long));
    weft_future *b = weft_async(io, pp_side, &c1, sizeof c1, sizeof(long));
    long ta = 0, tb = 0;
    weft_await(io, a, &ta);
    weft_await(io, b, &tb);
    cr_assert_eq(ta, p.rounds, "side 0 took %ld turns", ta);
    cr_assert_eq(tb, p.rounds, "side 1 took %ld turns", tb);
    int workers = 0;
    for (int i = 0; i < 8; i++)
        workers += atomic_load(&p.on[0][i]) | atomic_load(&p.on[1][i]);
    cr_log_info("ping-pong on %u workers: the two tasks ran on %d of them", threads, workers);
    weft_queue_destroy(p.to[0]);
    weft_queue_destroy(p.to[1]);
    weft_event_loop_deinit(el);
}

Test(stress, million_ping_pongs_2_workers, .timeout = 300)
{
    pingpong_run(2);
}
Test(stress, million_ping_pongs_4_workers, .timeout = 300)
{
    pingpong_run(4);
}
