// SPDX-License-Identifier: MIT
/*
 * The offload threads: a few threads per loop, started on first use, that
 * run as plain system calls the operations the ring cannot do (getdents64
 * and getaddrinfo always; ftruncate, socket, mkdirat, unlinkat, renameat
 * and shutdown where the kernel is too old for their opcodes).  A task
 * blocks with a handoff that queues its job once its registers are saved;
 * a thread runs the call and makes the task runnable from outside the loop
 * (sched_ready_remote: the global queue and a wake-up).  The worker never
 * blocks.  These calls are short, so a cancel or a deadline is not sent
 * into them: the task sees it at its next cancellation point.
 *
 * WEFT_URING_OFFLOAD=1 in the environment sends every operation that has
 * this fallback to the threads, so that the path is tested on new kernels.
 */
#include "offload.h"

#include "../io/fault.h"
#include "../io/sys.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

bool weft__offload_forced(void)
{
    static _Atomic int forced = -1; /* loops may start in two threads at once */
    int f = atomic_load_explicit(&forced, memory_order_relaxed);
    if (f < 0) {
        const char *e = getenv("WEFT_URING_OFFLOAD");
        f = e && e[0] == '1';
        atomic_store_explicit(&forced, f, memory_order_relaxed);
    }
    return f;
}

static void *offload_main(void *p)
{
    weft__sched *s = p;
    struct weft__offload *o = &s->offload;
    pthread_mutex_lock(&o->lock);
    for (;;) {
        struct weft__offload_job *j = o->head;
        if (j) {
            o->head = j->next;
            if (!o->head)
                o->tail = NULL;
            pthread_mutex_unlock(&o->lock);
            weft__task *t = j->task;
            j->res = weft__sys_operate(j->op);
            /* The job lives on t's stack: untouched from here on. */
            weft__sched_ready_remote(s, t);
            pthread_mutex_lock(&o->lock);
            continue;
        }
        if (o->stop)
            break;
        o->idle++;
        pthread_cond_wait(&o->cond, &o->lock);
        o->idle--;
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

static bool start_thread(weft__sched *s)
{
    struct weft__offload *o = &s->offload;
    /* The program's signals go to its own threads, not to these. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = weft__fault(WEFT__FAULT_THREAD)
                ? EAGAIN
                : pthread_create(&o->threads[o->nthreads], NULL, offload_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return false;
    o->nthreads++;
    return true;
}

static void queue_job(weft__worker *w, weft__task *prev, void *arg)
{
    (void)prev;
    struct weft__offload_job *j = arg;
    weft__sched *s = w->sched;
    struct weft__offload *o = &s->offload;
    weft__count(w, offloaded, 1);
    pthread_mutex_lock(&o->lock);
    j->next = NULL;
    if (o->tail)
        o->tail->next = j;
    else
        o->head = j;
    o->tail = j;
    bool ok = true;
    if (o->idle > 0)
        pthread_cond_signal(&o->cond);
    else if (o->nthreads < WEFT__OFFLOAD_THREADS)
        ok = start_thread(s) || o->nthreads > 0;
    if (!ok) {
        /* No thread at all: run it here, the one time a worker blocks. */
        o->head = o->tail = NULL;
        pthread_mutex_unlock(&o->lock);
        j->res = weft__sys_operate(j->op);
        weft__sched_ready(w, j->task);
        return;
    }
    pthread_mutex_unlock(&o->lock);
}

int64_t weft__offload_run(weft__task *t, weft_op *op)
{
    struct weft__offload_job j = {op, 0, t, NULL};
    weft__sched_block(queue_job, &j);
    return j.res;
}

void weft__offload_init(weft__sched *s)
{
    struct weft__offload *o = &s->offload;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
}

void weft__offload_fini(weft__sched *s)
{
    struct weft__offload *o = &s->offload;
    pthread_mutex_lock(&o->lock);
    o->stop = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    for (unsigned i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
    o->nthreads = 0;
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
}
