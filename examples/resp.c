// SPDX-License-Identifier: MIT
/*
 * weft-resp: a key-value server that speaks the Redis protocol (RESP2).
 *
 *   weft-resp [--port N] [--host H] [--threads N] [--io event_loop]
 *
 * Listens on port 6380 on every address by default (--port 0: a port the
 * kernel chooses), with one worker per CPU, and says where on stderr:
 * "weft-resp: listening on HOST:PORT".  docs/resp.md lists the commands.
 *
 * Design.  One task per connection reads requests with a buffered
 * weft_reader and queues replies in a weft_writer, which it flushes only
 * when the next request is not already buffered whole: a pipeline of N
 * requests that arrived together is answered with one write.
 *
 * The keys live in NSHARDS hash tables, each guarded by a weft_mutex (a
 * task that finds it taken is parked; its worker runs other connections).
 * A key's shard and bucket come from one seeded 64-bit hash.  An entry
 * holds its key and value in one allocation and is never changed in
 * place: SET builds the new entry before it takes the lock and frees the
 * old one after, so a lock is held for a lookup and a few pointer moves.
 * A reply is copied into the writer's buffer under the lock when it fits;
 * otherwise the value is copied out first, so no lock is held across I/O.
 *
 * Keys with a time to live are removed when an access finds them expired,
 * and by a sweeper task that walks a few buckets of each shard every
 * 100 ms.  Times are CLOCK_REALTIME milliseconds, as Redis keeps them.
 *
 * SIGINT or SIGTERM: the listener closes, every connection's read side is
 * shut down, so each task answers the requests it already has, flushes
 * and closes; those still busy after 5 s are canceled; then everything is
 * freed and the process exits 0.
 */
#include "resp_proto.h"
#include "runtime.h"

#include <weft/weft.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define NSHARDS       256u
#define SHARD_BITS    8
#define FIRST_BUCKETS 16u
#define SWEEP_NS      (100 * 1000000LL)
#define SWEEP_BUCKETS 32u
#define STOP_GRACE_NS (5 * 1000000000LL)
#define CONN_BUF      16384u

/* ---- the key space ------------------------------------------------------ */

/* Key bytes, then value bytes, in data; neither is NUL-terminated. */
struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t expire; /* ms since the epoch; 0: none */
    size_t klen, vlen;
    char data[];
};

struct shard {
    weft_mutex lock;
    struct entry **buckets;
    size_t nbuckets; /* a power of 2 */
    size_t count, expires;
    size_t sweep_pos;
} __attribute__((aligned(64)));

static struct shard shards[NSHARDS];
static uint64_t hash_seed;

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = hash_seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, k, 8);
        h = rotl((h ^ v) * 0x9e3779b97f4a7c15ull, 29) * 0xbf58476d1ce4e5b9ull;
        k += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, k, n);
    h = rotl((h ^ v) * 0x9e3779b97f4a7c15ull, 29) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline struct shard *shard_of(uint64_t h)
{
    return &shards[h & (NSHARDS - 1)];
}

static inline size_t bucket_of(const struct shard *s, uint64_t h)
{
    return (size_t)(h >> SHARD_BITS) & (s->nbuckets - 1);
}

static int db_init(void)
{
    if (getrandom(&hash_seed, sizeof hash_seed, 0) != (ssize_t)sizeof hash_seed)
        hash_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (size_t i = 0; i < NSHARDS; i++) {
        shards[i] = (struct shard){.lock = WEFT_MUTEX_INIT, .nbuckets = FIRST_BUCKETS};
        shards[i].buckets = calloc(FIRST_BUCKETS, sizeof(struct entry *));
        if (!shards[i].buckets)
            return -ENOMEM;
    }
    return 0;
}

static void free_chains(struct entry **buckets, size_t n)
{
    for (size_t b = 0; b < n; b++)
        for (struct entry *e = buckets[b], *next; e; e = next) {
            next = e->next;
            free(e);
        }
}

static void db_free(void)
{
    for (size_t i = 0; i < NSHARDS; i++) {
        if (shards[i].buckets)
            free_chains(shards[i].buckets, shards[i].nbuckets);
        free(shards[i].buckets);
        shards[i].buckets = NULL;
    }
}

static struct entry *entry_new(const char *k, size_t klen, const char *v, size_t vlen,
                               uint64_t hash, int64_t expire)
{
    struct entry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return NULL;
    e->next = NULL;
    e->hash = hash;
    e->expire = expire;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->data, k, klen);
    if (vlen)
        memcpy(e->data + klen, v, vlen);
    return e;
}

static inline const char *entry_val(const struct entry *e)
{
    return e->data + e->klen;
}

/* Doubles s's bucket array (under s->lock); stays as is if memory is short. */
static void shard_grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (struct entry *e = s->buckets[b], *next; e; e = next) {
            next = e->next;
            size_t i = (size_t)(e->hash >> SHARD_BITS) & (n - 1);
            e->next = nb[i];
            nb[i] = e;
        }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

/* What one command needs: where replies go, and the time, read once. */
struct cmd {
    weft_io io;
    weft_writer *w;
    int argc;
    char **argv;
    size_t *argl;
    int64_t now; /* ms; 0 until read */
    bool quit;
    bool oom; /* a quiet set (MSET's) ran out of memory */
};

static int64_t now_ms(struct cmd *c)
{
    if (!c->now) {
        int64_t ns = 0;
        weft_now(c->io, CLOCK_REALTIME, &ns);
        c->now = ns / 1000000;
    }
    return c->now;
}

/* The slot that points at key's live entry (expired ones met on the way
   are unlinked and freed), or NULL.  Under s->lock. */
static struct entry **shard_find(struct cmd *c, struct shard *s, const char *k, size_t klen,
                                 uint64_t h)
{
    struct entry **slot = &s->buckets[bucket_of(s, h)];
    for (struct entry *e; (e = *slot);) {
        if (e->hash == h && e->klen == klen && memcmp(e->data, k, klen) == 0) {
            if (e->expire && e->expire <= now_ms(c)) {
                *slot = e->next;
                s->count--;
                s->expires--;
                free(e);
                return NULL;
            }
            return slot;
        }
        slot = &e->next;
    }
    return NULL;
}

/* Puts e where *slot's entry was (slot non-NULL) or at the head of its
   bucket; returns the entry it replaced, to be freed after the unlock. */
static struct entry *shard_put(struct shard *s, struct entry **slot, struct entry *e)
{
    struct entry *old = NULL;
    if (slot) {
        old = *slot;
        e->next = old->next;
        *slot = e;
        if (old->expire)
            s->expires--;
    } else {
        size_t b = bucket_of(s, e->hash);
        e->next = s->buckets[b];
        s->buckets[b] = e;
        s->count++;
    }
    if (e->expire)
        s->expires++;
    if (!slot && s->count > s->nbuckets)
        shard_grow(s);
    return old;
}

static void shard_unlink(struct shard *s, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->next;
    s->count--;
    if (e->expire)
        s->expires--;
}

/* ---- replies ------------------------------------------------------------ */

static void reply_ok(struct cmd *c)
{
    weft_writer_write(c->w, "+OK\r\n", 5);
}

static void reply_syntax(struct cmd *c)
{
    resp_reply_error(c->w, "ERR syntax error");
}

static void reply_not_int(struct cmd *c)
{
    resp_reply_error(c->w, "ERR value is not an integer or out of range");
}

static void reply_arity(struct cmd *c, const char *name)
{
    resp_reply_errorf(c->w, "ERR wrong number of arguments for '%s' command", name);
}

/* Replies with e's value, under s->lock, which it releases: straight into
   the writer's buffer if it fits there, else from a copy. */
static void reply_value_unlock(struct cmd *c, struct shard *s, const struct entry *e)
{
    weft_writer *w = c->w;
    if (e->vlen + 32 <= w->cap - w->len) {
        resp_reply_bulk(w, entry_val(e), e->vlen); /* a memcpy: no I/O */
        weft_mutex_unlock(c->io, &s->lock);
        return;
    }
    size_t n = e->vlen;
    char *copy = malloc(n ? n : 1);
    if (!copy) {
        weft_mutex_unlock(c->io, &s->lock);
        resp_reply_error(w, "ERR out of memory");
        return;
    }
    memcpy(copy, entry_val(e), n);
    weft_mutex_unlock(c->io, &s->lock);
    resp_reply_bulk(w, copy, n);
    free(copy);
}

static bool arg_is(const struct cmd *c, int i, const char *word)
{
    return strlen(word) == c->argl[i] && strcasecmp(c->argv[i], word) == 0;
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_ping(struct cmd *c)
{
    if (c->argc > 2)
        reply_arity(c, "ping");
    else if (c->argc == 2)
        resp_reply_bulk(c->w, c->argv[1], c->argl[1]);
    else
        weft_writer_write(c->w, "+PONG\r\n", 7);
}

static void cmd_echo(struct cmd *c)
{
    resp_reply_bulk(c->w, c->argv[1], c->argl[1]);
}

static void cmd_get(struct cmd *c)
{
    uint64_t h = hash_key(c->argv[1], c->argl[1]);
    struct shard *s = shard_of(h);
    weft_mutex_lock_uncancelable(c->io, &s->lock);
    struct entry **slot = shard_find(c, s, c->argv[1], c->argl[1], h);
    if (!slot) {
        weft_mutex_unlock(c->io, &s->lock);
        resp_reply_nil(c->w);
        return;
    }
    reply_value_unlock(c, s, *slot);
}

/* Stores key = value with the given expiry and SET's conditions. */
enum { SET_NX = 1, SET_XX = 2, SET_GET = 4, SET_KEEPTTL = 8 };

static void set_generic(struct cmd *c, const char *k, size_t klen, const char *v, size_t vlen,
                        int64_t expire, int flags)
{
    uint64_t h = hash_key(k, klen);
    struct entry *e = entry_new(k, klen, v, vlen, h, expire);
    if (!e) {
        if (c->w)
            resp_reply_error(c->w, "ERR out of memory");
        c->oom = true;
        return;
    }
    struct shard *s = shard_of(h);
    weft_mutex_lock_uncancelable(c->io, &s->lock);
    struct entry **slot = shard_find(c, s, k, klen, h);
    if (((flags & SET_NX) && slot) || ((flags & SET_XX) && !slot)) {
        if (flags & SET_GET) {
            if (slot)
                reply_value_unlock(c, s, *slot);
            else {
                weft_mutex_unlock(c->io, &s->lock);
                resp_reply_nil(c->w);
            }
        } else {
            weft_mutex_unlock(c->io, &s->lock);
            resp_reply_nil(c->w);
        }
        free(e);
        return;
    }
    if ((flags & SET_KEEPTTL) && slot)
        e->expire = (*slot)->expire;
    struct entry *old = shard_put(s, slot, e);
    weft_mutex_unlock(c->io, &s->lock);
    if (flags & SET_GET) {
        if (old)
            resp_reply_bulk(c->w, entry_val(old), old->vlen);
        else
            resp_reply_nil(c->w);
    } else if (c->w) {
        reply_ok(c);
    }
    free(old);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL] */
static void cmd_set(struct cmd *c)
{
    int flags = 0;
    int unit = 0; /* 'e' EX, 'p' PX, 'E' EXAT, 'P' PXAT */
    int when_arg = 0;
    for (int i = 3; i < c->argc; i++) {
        bool more = i + 1 < c->argc;
        if (arg_is(c, i, "NX") && !(flags & SET_XX))
            flags |= SET_NX;
        else if (arg_is(c, i, "XX") && !(flags & SET_NX))
            flags |= SET_XX;
        else if (arg_is(c, i, "GET"))
            flags |= SET_GET;
        else if (arg_is(c, i, "KEEPTTL") && !unit)
            flags |= SET_KEEPTTL;
        else if (more && !(flags & SET_KEEPTTL) &&
                 (arg_is(c, i, "EX") || arg_is(c, i, "PX") || arg_is(c, i, "EXAT") ||
                  arg_is(c, i, "PXAT"))) {
            int u = arg_is(c, i, "EX")     ? 'e'
                    : arg_is(c, i, "PX")   ? 'p'
                    : arg_is(c, i, "EXAT") ? 'E'
                                           : 'P';
            /* The same unit again: the last one stands, as in Redis 7.0;
               two different units are a syntax error. */
            if (unit && u != unit) {
                reply_syntax(c);
                return;
            }
            unit = u;
            when_arg = ++i;
        } else {
            reply_syntax(c);
            return;
        }
    }
    int64_t expire = 0;
    if (unit) {
        long long when;
        if (!resp_parse_ll(c->argv[when_arg], c->argl[when_arg], &when)) {
            reply_not_int(c);
            return;
        }
        bool secs = unit == 'e' || unit == 'E';
        if (when <= 0 || (secs && when > LLONG_MAX / 1000)) {
            resp_reply_error(c->w, "ERR invalid expire time in 'set' command");
            return;
        }
        if (secs)
            when *= 1000;
        if (unit == 'e' || unit == 'p') {
            if (when > LLONG_MAX - now_ms(c)) {
                resp_reply_error(c->w, "ERR invalid expire time in 'set' command");
                return;
            }
            when += now_ms(c);
        }
        expire = when;
    }
    set_generic(c, c->argv[1], c->argl[1], c->argv[2], c->argl[2], expire, flags);
}

static void cmd_mset(struct cmd *c)
{
    if (c->argc % 2 == 0) {
        reply_arity(c, "mset");
        return;
    }
    weft_writer *w = c->w;
    c->w = NULL; /* one reply for all of them */
    for (int i = 1; i < c->argc; i += 2)
        set_generic(c, c->argv[i], c->argl[i], c->argv[i + 1], c->argl[i + 1], 0, 0);
    c->w = w;
    if (c->oom)
        resp_reply_error(c->w, "ERR out of memory");
    else
        reply_ok(c);
}

static void cmd_mget(struct cmd *c)
{
    resp_reply_array(c->w, c->argc - 1);
    for (int i = 1; i < c->argc; i++) {
        uint64_t h = hash_key(c->argv[i], c->argl[i]);
        struct shard *s = shard_of(h);
        weft_mutex_lock_uncancelable(c->io, &s->lock);
        struct entry **slot = shard_find(c, s, c->argv[i], c->argl[i], h);
        if (slot) {
            reply_value_unlock(c, s, *slot);
        } else {
            weft_mutex_unlock(c->io, &s->lock);
            resp_reply_nil(c->w);
        }
    }
}

/* DEL (remove) or EXISTS (count only). */
static void del_exists(struct cmd *c, bool remove)
{
    long long n = 0;
    for (int i = 1; i < c->argc; i++) {
        uint64_t h = hash_key(c->argv[i], c->argl[i]);
        struct shard *s = shard_of(h);
        struct entry *gone = NULL;
        weft_mutex_lock_uncancelable(c->io, &s->lock);
        struct entry **slot = shard_find(c, s, c->argv[i], c->argl[i], h);
        if (slot) {
            n++;
            if (remove) {
                gone = *slot;
                shard_unlink(s, slot);
            }
        }
        weft_mutex_unlock(c->io, &s->lock);
        free(gone);
    }
    resp_reply_int(c->w, n);
}

static void cmd_del(struct cmd *c)
{
    del_exists(c, true);
}

static void cmd_exists(struct cmd *c)
{
    del_exists(c, false);
}

/* INCR, DECR, INCRBY, DECRBY: adds by to the key's integer value. */
static void incr_by(struct cmd *c, long long by)
{
    const char *k = c->argv[1];
    size_t klen = c->argl[1];
    uint64_t h = hash_key(k, klen);
    struct shard *s = shard_of(h);
    weft_mutex_lock_uncancelable(c->io, &s->lock);
    struct entry **slot = shard_find(c, s, k, klen, h);
    long long v = 0;
    int64_t expire = 0;
    if (slot) {
        if (!resp_parse_ll(entry_val(*slot), (*slot)->vlen, &v)) {
            weft_mutex_unlock(c->io, &s->lock);
            reply_not_int(c);
            return;
        }
        expire = (*slot)->expire; /* INCR keeps the time to live */
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        weft_mutex_unlock(c->io, &s->lock);
        resp_reply_error(c->w, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    char num[24];
    size_t n = resp_format_ll(num, v);
    struct entry *e = entry_new(k, klen, num, n, h, expire);
    if (!e) {
        weft_mutex_unlock(c->io, &s->lock);
        resp_reply_error(c->w, "ERR out of memory");
        return;
    }
    struct entry *old = shard_put(s, slot, e);
    weft_mutex_unlock(c->io, &s->lock);
    free(old);
    resp_reply_int(c->w, v);
}

static void cmd_incr(struct cmd *c)
{
    incr_by(c, 1);
}

static void cmd_decr(struct cmd *c)
{
    incr_by(c, -1);
}

static void cmd_incrby(struct cmd *c)
{
    long long by;
    if (!resp_parse_ll(c->argv[2], c->argl[2], &by))
        reply_not_int(c);
    else
        incr_by(c, by);
}

static void cmd_decrby(struct cmd *c)
{
    long long by;
    if (!resp_parse_ll(c->argv[2], c->argl[2], &by))
        reply_not_int(c);
    else if (by == LLONG_MIN)
        resp_reply_error(c->w, "ERR decrement would overflow");
    else
        incr_by(c, -by);
}

/* EXPIRE key seconds [NX|XX|GT|LT] (PEXPIRE: milliseconds). */
static void expire_generic(struct cmd *c, bool secs, const char *name)
{
    bool nx = false, xx = false, gt = false, lt = false;
    for (int i = 3; i < c->argc; i++) {
        if (arg_is(c, i, "NX"))
            nx = true;
        else if (arg_is(c, i, "XX"))
            xx = true;
        else if (arg_is(c, i, "GT"))
            gt = true;
        else if (arg_is(c, i, "LT"))
            lt = true;
        else {
            resp_reply_errorf(c->w, "ERR Unsupported option %s", c->argv[i]);
            return;
        }
    }
    if (nx && (xx || gt || lt)) {
        resp_reply_error(c->w,
                         "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if (gt && lt) {
        resp_reply_error(c->w, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (!resp_parse_ll(c->argv[2], c->argl[2], &when)) {
        reply_not_int(c);
        return;
    }
    if (secs) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            resp_reply_errorf(c->w, "ERR invalid expire time in '%s' command", name);
            return;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - now_ms(c)) {
        resp_reply_errorf(c->w, "ERR invalid expire time in '%s' command", name);
        return;
    }
    when += now_ms(c);

    uint64_t h = hash_key(c->argv[1], c->argl[1]);
    struct shard *s = shard_of(h);
    struct entry *gone = NULL;
    int result = 0;
    weft_mutex_lock_uncancelable(c->io, &s->lock);
    struct entry **slot = shard_find(c, s, c->argv[1], c->argl[1], h);
    if (slot) {
        struct entry *e = *slot;
        int64_t cur = e->expire;
        if ((nx && cur) || (xx && !cur) || (gt && (!cur || when <= cur)) ||
            (lt && cur && when >= cur)) {
            result = 0;
        } else if (when <= now_ms(c)) {
            gone = e;
            shard_unlink(s, slot);
            result = 1;
        } else {
            if (!cur)
                s->expires++;
            e->expire = when;
            result = 1;
        }
    }
    weft_mutex_unlock(c->io, &s->lock);
    free(gone);
    resp_reply_int(c->w, result);
}

static void cmd_expire(struct cmd *c)
{
    expire_generic(c, true, "expire");
}

static void cmd_pexpire(struct cmd *c)
{
    expire_generic(c, false, "pexpire");
}

static void ttl_generic(struct cmd *c, bool secs)
{
    uint64_t h = hash_key(c->argv[1], c->argl[1]);
    struct shard *s = shard_of(h);
    weft_mutex_lock_uncancelable(c->io, &s->lock);
    struct entry **slot = shard_find(c, s, c->argv[1], c->argl[1], h);
    long long ttl = !slot ? -2 : !(*slot)->expire ? -1 : (*slot)->expire - now_ms(c);
    weft_mutex_unlock(c->io, &s->lock);
    if (ttl >= 0 && secs)
        ttl = (ttl + 500) / 1000;
    resp_reply_int(c->w, ttl);
}

static void cmd_ttl(struct cmd *c)
{
    ttl_generic(c, true);
}

static void cmd_pttl(struct cmd *c)
{
    ttl_generic(c, false);
}

static void db_counts(weft_io io, size_t *keys, size_t *expires)
{
    *keys = *expires = 0;
    for (size_t i = 0; i < NSHARDS; i++) {
        weft_mutex_lock_uncancelable(io, &shards[i].lock);
        *keys += shards[i].count;
        *expires += shards[i].expires;
        weft_mutex_unlock(io, &shards[i].lock);
    }
}

static void cmd_dbsize(struct cmd *c)
{
    size_t keys, expires;
    db_counts(c->io, &keys, &expires);
    resp_reply_int(c->w, (long long)keys);
}

static void cmd_flushall(struct cmd *c)
{
    if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "SYNC") && !arg_is(c, 1, "ASYNC"))) {
        reply_syntax(c);
        return;
    }
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &shards[i];
        struct entry **fresh = calloc(FIRST_BUCKETS, sizeof *fresh);
        if (!fresh) {
            resp_reply_error(c->w, "ERR out of memory");
            return;
        }
        weft_mutex_lock_uncancelable(c->io, &s->lock);
        struct entry **old = s->buckets;
        size_t n = s->nbuckets;
        s->buckets = fresh;
        s->nbuckets = FIRST_BUCKETS;
        s->count = s->expires = 0;
        s->sweep_pos = 0;
        weft_mutex_unlock(c->io, &s->lock);
        free_chains(old, n);
        free(old);
    }
    reply_ok(c);
}

static void cmd_select(struct cmd *c)
{
    long long db;
    if (!resp_parse_ll(c->argv[1], c->argl[1], &db))
        reply_not_int(c);
    else if (db != 0)
        resp_reply_error(c->w, "ERR DB index is out of range");
    else
        reply_ok(c);
}

static void cmd_quit(struct cmd *c)
{
    reply_ok(c);
    c->quit = true;
}

static void cmd_command(struct cmd *c);

/* CONFIG GET pattern...: the few settings clients ask about, by exact
   name (no glob patterns). */
static void cmd_config(struct cmd *c)
{
    static const char *const settings[][2] = {
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"maxmemory", "0"},
        {"proto-max-bulk-len", "536870912"},
    };
    const size_t nsettings = sizeof settings / sizeof settings[0];
    if (!arg_is(c, 1, "GET")) {
        resp_reply_errorf(c->w, "ERR unknown subcommand '%.128s'. Try CONFIG HELP.", c->argv[1]);
        return;
    }
    if (c->argc < 3) {
        resp_reply_error(c->w, "ERR wrong number of arguments for 'config|get' command");
        return;
    }
    bool found[sizeof settings / sizeof settings[0]] = {false};
    long long n = 0;
    for (int i = 2; i < c->argc; i++)
        for (size_t j = 0; j < nsettings; j++)
            if (!found[j] && arg_is(c, i, settings[j][0])) {
                found[j] = true;
                n++;
            }
    resp_reply_array(c->w, 2 * n);
    for (size_t j = 0; j < nsettings; j++)
        if (found[j]) {
            resp_reply_bulk(c->w, settings[j][0], strlen(settings[j][0]));
            resp_reply_bulk(c->w, settings[j][1], strlen(settings[j][1]));
        }
}

static long connections; /* open now, for INFO */
static int64_t started_ms;
static int listen_port;

static void cmd_info(struct cmd *c)
{
    size_t keys, expires;
    db_counts(c->io, &keys, &expires);
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "# Server\r\n"
                     "redis_version:7.0.0\r\n"
                     "weft_version:%s\r\n"
                     "redis_mode:standalone\r\n"
                     "arch_bits:%d\r\n"
                     "process_id:%ld\r\n"
                     "tcp_port:%d\r\n"
                     "uptime_in_seconds:%lld\r\n"
                     "\r\n"
                     "# Clients\r\n"
                     "connected_clients:%ld\r\n"
                     "\r\n"
                     "# Persistence\r\n"
                     "loading:0\r\n"
                     "\r\n"
                     "# Keyspace\r\n",
                     weft_version(), (int)(sizeof(void *) * 8), (long)getpid(), listen_port,
                     (long long)((now_ms(c) - started_ms) / 1000),
                     __atomic_load_n(&connections, __ATOMIC_RELAXED));
    if (keys && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n",
                      keys, expires);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    resp_reply_bulk(c->w, buf, (size_t)n);
}

/* The command table.  arity as Redis gives it: N exactly N arguments
   (the name included), -N at least N. */
struct command {
    const char *name;
    int arity;
    void (*fn)(struct cmd *c);
};

static const struct command commands[] = {
    {"get", 2, cmd_get},        {"set", -3, cmd_set},         {"ping", -1, cmd_ping},
    {"incr", 2, cmd_incr},      {"del", -2, cmd_del},         {"exists", -2, cmd_exists},
    {"mget", -2, cmd_mget},     {"mset", -3, cmd_mset},       {"echo", 2, cmd_echo},
    {"decr", 2, cmd_decr},      {"incrby", 3, cmd_incrby},    {"decrby", 3, cmd_decrby},
    {"expire", -3, cmd_expire}, {"pexpire", -3, cmd_pexpire}, {"ttl", 2, cmd_ttl},
    {"pttl", 2, cmd_pttl},      {"dbsize", 1, cmd_dbsize},    {"flushall", -1, cmd_flushall},
    {"select", 2, cmd_select},  {"quit", -1, cmd_quit},       {"command", -1, cmd_command},
    {"config", -2, cmd_config}, {"info", -1, cmd_info},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* COMMAND [COUNT|DOCS|INFO|...]: enough for clients that ask at start
   (redis-cli asks COMMAND DOCS, and takes an empty answer). */
static void cmd_command(struct cmd *c)
{
    if (c->argc == 2 && arg_is(c, 1, "COUNT"))
        resp_reply_int(c->w, (long long)NCOMMANDS);
    else
        resp_reply_array(c->w, 0);
}

static const struct command *command_find(const char *name, size_t len)
{
    if (len > 16)
        return NULL;
    char lower[17];
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[len] = '\0';
    /* By length and bytes: "GET\0zz" is not GET. */
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strlen(commands[i].name) == len && memcmp(commands[i].name, lower, len) == 0)
            return &commands[i];
    return NULL;
}

static void execute(struct cmd *c)
{
    const struct command *cmd = command_find(c->argv[0], c->argl[0]);
    if (!cmd) {
        /* Worded as Redis words it: the name and the first arguments,
           128 characters of each at most. */
        char args[160];
        size_t n = 0;
        args[0] = '\0';
        for (int i = 1; i < c->argc && n < 128; i++) {
            int k = snprintf(args + n, sizeof args - n, "'%.*s' ", (int)(128 - n), c->argv[i]);
            if (k < 0)
                break;
            n += (size_t)k < sizeof args - n ? (size_t)k : sizeof args - n - 1;
        }
        resp_reply_errorf(c->w, "ERR unknown command '%.128s', with args beginning with: %s",
                          c->argv[0], args);
        return;
    }
    if ((cmd->arity > 0 && c->argc != cmd->arity) || (cmd->arity < 0 && c->argc < -cmd->arity)) {
        reply_arity(c, cmd->name);
        return;
    }
    cmd->fn(c);
}

/* ---- the server --------------------------------------------------------- */

/* A connection, on its task's stack, listed so that a stop can shut
   down its read side. */
struct conn {
    int fd;
    struct conn *prev, *next;
};

struct server {
    int listener;
    weft_group conns;
    weft_mutex lock; /* guards the list and stopping */
    struct conn *list;
    bool stopping;
};

static struct server server = {.listener = -1, .conns = WEFT_GROUP_INIT, .lock = WEFT_MUTEX_INIT};

static void conn_register(weft_io io, struct conn *cn)
{
    weft_mutex_lock_uncancelable(io, &server.lock);
    cn->prev = NULL;
    cn->next = server.list;
    if (server.list)
        server.list->prev = cn;
    server.list = cn;
    if (server.stopping)
        shutdown(cn->fd, SHUT_RD);
    weft_mutex_unlock(io, &server.lock);
    __atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
}

static void conn_unregister(weft_io io, struct conn *cn)
{
    weft_mutex_lock_uncancelable(io, &server.lock);
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        server.list = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    weft_mutex_unlock(io, &server.lock);
    __atomic_sub_fetch(&connections, 1, __ATOMIC_RELAXED);
}

static void serve(weft_io io, void *ctx, void *result)
{
    (void)result;
    struct conn cn = {.fd = *(int *)ctx};
    char rbuf[CONN_BUF], wbuf[CONN_BUF];
    weft_reader r;
    weft_writer w;
    weft_reader_init(&r, io, cn.fd, rbuf, sizeof rbuf);
    weft_writer_init(&w, io, cn.fd, wbuf, sizeof wbuf);
    resp_request req;
    resp_request_init(&req);
    conn_register(io, &cn);
    for (;;) {
        int rc = resp_read_request(&r, &req);
        if (rc == RESP_EPROTO) {
            resp_reply_errorf(&w, "ERR %s", req.err);
            break;
        }
        if (rc <= 0)
            break; /* the end, a stream error, or out of memory */
        struct cmd c = {.io = io, .w = &w, .argc = req.argc, .argv = req.argv, .argl = req.argl};
        execute(&c);
        if (w.err || c.quit)
            break;
        /* Answer a pipeline in one write: flush only when the next
           request has not arrived whole. */
        if (!resp_request_complete(r.buf + r.start, weft_reader_buffered(&r)) &&
            weft_writer_flush(&w) < 0)
            break;
    }
    weft_writer_flush(&w);
    conn_unregister(io, &cn);
    resp_request_free(&req);
    weft_close(io, cn.fd);
}

static void accept_loop(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    (void)result;
    for (;;) {
        int fd = weft_accept(io, server.listener, NULL, NULL, 0);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EINVAL || fd == -EBADF)
                break; /* shut down */
            if (fd == -EMFILE || fd == -ENFILE) {
                fprintf(stderr, "weft-resp: accept: %s\n", strerror(-fd));
                weft_sleep(io, 10 * 1000000LL);
            }
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* A task of its own (weft_group_async would run it inline on a
           busy thread pool, and nobody would accept meanwhile). */
        if (weft_group_concurrent(io, &server.conns, serve, &fd, sizeof fd) < 0)
            weft_close(io, fd);
    }
}

/* Removes expired keys that no access has come to: a few buckets of each
   shard at a time, so that no lock is held long. */
static void sweep_loop(weft_io io, void *ctx, void *result)
{
    (void)ctx;
    (void)result;
    struct cmd c = {.io = io};
    for (;;) {
        if (weft_sleep(io, SWEEP_NS) == -ECANCELED)
            return;
        c.now = 0;
        for (size_t i = 0; i < NSHARDS; i++) {
            struct shard *s = &shards[i];
            if (!__atomic_load_n(&s->expires, __ATOMIC_RELAXED))
                continue;
            struct entry *gone = NULL;
            weft_mutex_lock_uncancelable(io, &s->lock);
            int64_t now = now_ms(&c);
            for (size_t k = 0; k < SWEEP_BUCKETS && s->expires; k++) {
                size_t b = s->sweep_pos++ & (s->nbuckets - 1);
                for (struct entry **slot = &s->buckets[b], *e; (e = *slot);) {
                    if (e->expire && e->expire <= now) {
                        shard_unlink(s, slot);
                        e->next = gone;
                        gone = e;
                    } else {
                        slot = &e->next;
                    }
                }
            }
            weft_mutex_unlock(io, &s->lock);
            for (struct entry *next; gone; gone = next) {
                next = gone->next;
                free(gone);
            }
        }
    }
}

/* ---- setup -------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: weft-resp [--port N] [--host H] [--threads N] "
                    "[--io event_loop|thread_pool]\n");
    exit(2);
}

/* The port the listener is bound to, and its address as text. */
static int local_port(int fd, char *addr, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)len);
        return ntohs(s6->sin6_port);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)len);
    return ntohs(s4->sin_port);
}

int main(int argc, char **argv)
{
    const char *port = "6380", *host = NULL;
    unsigned threads = 0;
    bool pool = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            usage();
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--port")) {
            port = argv[++i];
            if (!runtime_port_ok(port))
                usage();
        }
        else if (!strcmp(argv[i], "--host"))
            host = argv[++i];
        else if (!strcmp(argv[i], "--threads")) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 0 || t > 1024)
                usage();
            threads = (unsigned)t;
        } else if (!strcmp(argv[i], "--io")) {
            if (!runtime_parse(argv[++i], &pool))
                usage();
        } else
            usage();
    }

    /* SIGINT and SIGTERM are waited for by the main task: blocked in every
       thread (the workers inherit this mask). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct runtime rt;
    if (runtime_open(&rt, "weft-resp", pool, threads) < 0)
        return 1;
    weft_io io = rt.io;
    if (db_init() < 0) {
        fprintf(stderr, "weft-resp: out of memory\n");
        db_free();
        runtime_close(&rt);
        return 1;
    }
    int64_t ns = 0;
    weft_now(io, CLOCK_REALTIME, &ns);
    started_ms = ns / 1000000;

    server.listener = weft_tcp_listen(io, host, port, 4096);
    if (server.listener < 0) {
        fprintf(stderr, "weft-resp: listen on %s:%s: %s\n", host ? host : "*", port,
                strerror(-server.listener));
        db_free();
        runtime_close(&rt);
        return 1;
    }
    runtime_listener(&rt, server.listener);
    char addr[INET6_ADDRSTRLEN] = "*";
    listen_port = local_port(server.listener, addr, sizeof addr);
    fprintf(stderr, "weft-resp (%s): listening on %s:%d\n", runtime_name(&rt), host ? host : "*",
            listen_port);

    /* Tasks of their own: on the thread pool, weft_async may run its task
       inline, and these never end by themselves. */
    weft_future *acceptor, *sweeper;
    if (weft_concurrent(io, &acceptor, accept_loop, NULL, 0, 0) < 0 ||
        weft_concurrent(io, &sweeper, sweep_loop, NULL, 0, 0) < 0) {
        fprintf(stderr, "weft-resp: no task to accept with\n");
        return 1;
    }
    int sig = weft_signal_wait(io, &stop);
    fprintf(stderr, "weft-resp: %s, stopping\n", sig > 0 ? strsignal(sig) : strerror(-sig));

    /* Stop accepting; then end each connection's input, so that it
       answers what it has and closes; cancel what is left after a grace
       period. */
    weft_cancel(io, acceptor, NULL);
    weft_close(io, server.listener);
    weft_mutex_lock_uncancelable(io, &server.lock);
    server.stopping = true;
    for (struct conn *cn = server.list; cn; cn = cn->next)
        shutdown(cn->fd, SHUT_RD);
    weft_mutex_unlock(io, &server.lock);
    runtime_finish_group(io, &server.conns, STOP_GRACE_NS);
    weft_cancel(io, sweeper, NULL);
    runtime_close(&rt);
    db_free();
    return 0;
}
