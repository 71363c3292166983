/*
 * store.c — the public store API: picks a backend at open, then forwards
 * every call through the backend's ops table (store_int.h).
 *
 * Nothing here knows about SQL or files; argument checks that every
 * backend needs (non-NULL store, the PostgreSQL prefix) live here so that
 * backends do not repeat them.
 *
 * A scope (store_scope_open) is a view: a store_t of its own, in the
 * caller's arena, with the root's ops, a pointer to the root and the
 * scope. Calls through it reach the backend with the view, which reads the
 * scope from it; everything else (cache, counts) is the root's.
 *
 * The read cache (cache.h) also lives here, for the reads every request
 * repeats: a user by name (each Basic-authenticated request), an entity's
 * BLOB record (GET ImageInfo) and the record with its bytes (GET Image).
 * Only successful reads are kept. A cached record is flat: the struct's
 * own bytes, then its strings in a fixed order (each a u32 of length + 1,
 * 0 for NULL, then the characters), a user behind a flag byte; an image's
 * bytes follow its record.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "store/cache.h"
#include "store/store_backend.h"
#include "store/store_int.h"

const char *store_err_name(store_err e)
{
    static const char *const names[] = {
        [STORE_OK] = "OK",
        [STORE_ABSENT] = "ABSENT",
        [STORE_CONFLICT] = "CONFLICT",
        [STORE_PRECONDITION] = "PRECONDITION",
        [STORE_INVALID] = "INVALID",
        [STORE_TOO_LARGE] = "TOO_LARGE",
        [STORE_UNAVAILABLE] = "UNAVAILABLE",
        [STORE_NO_SPACE] = "NO_SPACE",
        [STORE_CORRUPT] = "CORRUPT",
        [STORE_INTERNAL] = "INTERNAL",
        [STORE_PENDING] = "PENDING",
    };
    if ((unsigned)e < sizeof(names) / sizeof(names[0]) && names[e] != NULL)
        return names[e];
    if (e == STORE_NOMATCH || e == STORE_RETRY) /* internal; logged only */
        return e == STORE_NOMATCH ? "NOMATCH" : "RETRY";
    return "?";
}

/* ---- the recipe runner ------------------------------------------------- */

/* One run of fn: begin, fn, end. */
static store_err run_once(store_t *s, store_tx_mode m, store_recipe fn, void *ctx)
{
    store_tx *tx = NULL;
    store_err rc = s->be->ops->begin(s->be, s->sc, m, &tx);
    if (rc == STORE_OK)
        rc = s->be->ops->end(tx, fn(tx, ctx));
    return rc;
}

store_err store_run(store_t *s, store_tx_mode m, store_recipe fn, void *ctx)
{
    store_err rc = STORE_RETRY;
    for (int i = 0; i < STORE_RUN_TRIES && rc == STORE_RETRY; i++)
        rc = run_once(s, m, fn, ctx);
    if (rc == STORE_RETRY) {
        log_warn("store: a transaction met a conflict %d times; given up", STORE_RUN_TRIES);
        return STORE_UNAVAILABLE;
    }
    if (rc == STORE_NOMATCH) { /* a recipe must say what no row means */
        log_error("store: a recipe passed NOMATCH on");
        return STORE_INTERNAL;
    }
    return rc;
}

static bool is_postgres_url(const char *where)
{
    return strncasecmp(where, "postgres://", 11) == 0 ||
           strncasecmp(where, "postgresql://", 13) == 0;
}

/* Copies `where` into buf with the password of a URL's user part (between
 * "user:" and "@" after "://") left out. */
static void url_without_password(const char *where, char *buf, size_t cap)
{
    const char *auth = strstr(where, "://");
    auth = auth != NULL ? auth + 3 : where;
    const char *at = strchr(auth, '@');
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon == NULL)
        snprintf(buf, cap, "%s", where);
    else
        snprintf(buf, cap, "%.*s%s", (int)(colon - where), where, at);
}

void store_describe(const char *where, char *buf, size_t cap)
{
    assert(where != NULL && buf != NULL && cap > 0);
    if (is_postgres_url(where))
        url_without_password(where, buf, cap);
    else
        snprintf(buf, cap, "%s", where);
}

/* The picture layer's settings (store_pic.c): the codec, a codec that
 * reads what was kept without one, and the spool directory. */
static store_err pictures_open(store_t *s, const store_options *opt)
{
    static const codec_config plain = {0};
    s->codec = opt->codec;
    s->spool_dir = opt->spool_dir != NULL ? opt->spool_dir : s->ops->spool_hint(s);
    if (s->spool_dir == NULL)
        s->spool_dir = "/tmp"; /* a backend with no place of its own */
    if (opt->codec == NULL && codec_create(&plain, &s->plain_codec) != CB_EOK)
        return STORE_INTERNAL;
    s->decoder = opt->codec != NULL ? opt->codec : s->plain_codec;
    return STORE_OK;
}

store_err store_open(const char *where, const store_options *opt, store_t **out)
{
    assert(where != NULL && out != NULL);
    static const store_options defaults = {0};
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    if (is_postgres_url(where)) {
        log_error("PostgreSQL backend not built yet");
        return STORE_UNAVAILABLE;
    }
    store_err rc = store_sqlite_open(where, opt, out);
    if (rc == STORE_OK && (*out)->changes != NULL && opt->cache_bytes > 0)
        (*out)->cache = store_cache_create(opt->cache_bytes);
    if (rc == STORE_OK)
        rc = pictures_open(*out, opt);
    if (rc != STORE_OK && *out != NULL) {
        store_close(*out);
        *out = NULL;
    }
    return rc;
}

const char *store_spool_hint(store_t *s)
{
    return s->ops->spool_hint(s);
}

store_err store_hold(store_t *s, store_hold_mode h)
{
    return s->ops->hold(s, h);
}

void store_close(store_t *s)
{
    if (s == NULL)
        return;
    assert(s->root == s); /* the store, not a view of it */
    if (s->cache != NULL) {
        store_cache_stats st;
        store_cache_stats_get(s->cache, &st);
        if (st.hits + st.misses > 0)
            log_info("store: read cache: %llu hits, %llu misses", (unsigned long long)st.hits,
                     (unsigned long long)st.misses);
        store_cache_destroy(s->cache);
        s->cache = NULL;
    }
    if (s->changes != NULL)
        store_changes_watch(s, true); /* a last write counted in a lost file is moved on */
    codec_destroy(s->plain_codec);
    s->ops->close(s);
}

/* Microseconds of a clock a few ms coarse (read from memory, no system
 * call): plenty for a check every 100 ms, and cheap on every read. */
static uint64_t coarse_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void store_changes_watch(store_t *s, bool force)
{
    assert(s->root == s);
    uint64_t now = coarse_now_us();
    uint64_t last = atomic_load_explicit(&s->changes_checked_us, memory_order_relaxed);
    if (s->ops->changes_check == NULL || (!force && now - last < STORE_CHANGES_CHECK_US))
        return;
    if (!atomic_compare_exchange_strong(&s->changes_checked_us, &last, now) && !force)
        return; /* another thread checks */
    if (s->ops->changes_check(s) && s->cache != NULL)
        store_cache_clear(s->cache);
}

/* Change count `which`, from a file seen to be the database's within the
 * last STORE_CHANGES_CHECK_US. */
static uint64_t changes_read(store_t *s, int which)
{
    store_changes_watch(s, false);
    return atomic_load_explicit(&s->changes[which], memory_order_acquire);
}

bool store_users_changes(store_t *s, uint64_t *out)
{
    s = s->root;
    if (s->changes == NULL)
        return false;
    *out = changes_read(s, STORE_CHANGES_USERS);
    return true;
}

void store_stats(store_t *s, store_cache_stats *out)
{
    s = s->root;
    *out = (store_cache_stats){0};
    if (s->cache != NULL)
        store_cache_stats_get(s->cache, out);
}

/* ---- scopes: views that defer their writes --------------------------------- */

/* A view and its scope, allocated together from the scope's arena. */
struct scoped_view {
    struct store view;
    store_scope sc;
};

store_t *store_scope_open(store_t *root, arena_t *a)
{
    assert(root != NULL && root->root == root && a != NULL);
    if (!root->defers)
        return root;
    struct scoped_view *v = arena_alloc(a, sizeof(*v)); /* zeroed */
    if (v == NULL)
        return root; /* the writes then wait where they are */
    v->sc = (store_scope){.s = root, .a = a};
    v->view.ops = root->ops;
    v->view.root = root;
    v->view.be = root->be;
    v->view.sc = &v->sc;
    return &v->view;
}

bool store_scope_close(store_t *view)
{
    assert(view != NULL);
    store_scope *sc = view->sc;
    if (sc == NULL)
        return false;
    assert(!sc->ended);
    sc->ended = true;
    return sc->wrote;
}

store_err store_scope_wait(store_t *view, store_scope_fn fn, void *ctx)
{
    store_scope *sc = view->sc;
    assert(sc != NULL && sc->ended && sc->wrote && fn != NULL);
    return view->ops->scope_wait(sc, fn, ctx);
}

/* ---- flat records for the cache ------------------------------------------ */

/* A record is written through a buf_writer, whose first failure sticks:
 * keep files it only when every append went in. */
static void wr_str(buf_writer *w, const char *str)
{
    uint32_t n = str == NULL ? 0 : (uint32_t)strlen(str) + 1;
    buf_w_append(w, &n, sizeof(n));
    if (n > 0)
        buf_w_append(w, str, n - 1);
}

static void wr_user(buf_writer *w, const model_user *u)
{
    buf_w_append(w, u, sizeof(*u));
    wr_str(w, u->name);
    wr_str(w, u->full_name);
    wr_str(w, u->pw_hash);
}

static void wr_user_ref(buf_writer *w, const model_user *u)
{
    unsigned char has = u != NULL;
    buf_w_append(w, &has, 1);
    if (u != NULL)
        wr_user(w, u);
}

static void wr_blob(buf_writer *w, const model_blob *b)
{
    buf_w_append(w, b, sizeof(*b));
    wr_str(w, b->description);
    wr_str(w, b->extra_info);
    wr_str(w, b->mime_type);
    wr_str(w, b->conceptual_type);
    wr_user_ref(w, b->created_by);
    wr_user_ref(w, b->updated_by);
}

typedef struct {
    arena_t *a;
    const unsigned char *p, *end;
    bool ok;
} flat_rd;

static void rd(flat_rd *r, void *dst, size_t n)
{
    if (!r->ok || (size_t)(r->end - r->p) < n) {
        r->ok = false;
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
}

static const char *rd_str(flat_rd *r)
{
    uint32_t n = 0;
    rd(r, &n, sizeof(n));
    if (!r->ok || n == 0)
        return NULL;
    if ((size_t)(r->end - r->p) < n - 1) {
        r->ok = false;
        return NULL;
    }
    const char *str = arena_strndup(r->a, (const char *)r->p, n - 1);
    r->p += n - 1;
    return str;
}

static void rd_user(flat_rd *r, model_user *u)
{
    rd(r, u, sizeof(*u));
    u->name = rd_str(r);
    u->full_name = rd_str(r);
    u->pw_hash = rd_str(r);
}

static model_user *rd_user_ref(flat_rd *r)
{
    unsigned char has = 0;
    rd(r, &has, 1);
    if (!r->ok || !has)
        return NULL;
    model_user *u = arena_alloc(r->a, sizeof(*u));
    rd_user(r, u);
    return u;
}

static void rd_blob(flat_rd *r, model_blob *b)
{
    rd(r, b, sizeof(*b));
    b->description = rd_str(r);
    b->extra_info = rd_str(r);
    b->mime_type = rd_str(r);
    b->conceptual_type = rd_str(r);
    b->created_by = rd_user_ref(r);
    b->updated_by = rd_user_ref(r);
}

/* ---- reads through the cache ---------------------------------------------- */

/* What a cached entity read is filed under. */
typedef struct {
    int32_t what; /* 'I' record, 'G' record and bytes */
    int32_t kind;
    int32_t id;
} entity_key;

/* The root's cache for a read through s, and the change count
 * (STORE_CHANGES_*) to file the read under; NULL when nothing is cached,
 * or when s is a view that wrote: it must see its own writes. A user is
 * filed under the users' count, so that the writes of pictures and
 * records do not push users out. */
static struct store_cache *cache_on(store_t *s, int which, uint64_t *changes)
{
    store_t *root = s->root;
    assert(s->sc == NULL || !s->sc->ended);
    if (root->cache == NULL || (s->sc != NULL && s->sc->wrote))
        return NULL;
    *changes = changes_read(root, which);
    return root->cache;
}

static void keep(struct store_cache *c, uint64_t changes, const void *key, size_t klen,
                 buf_writer *w, const void *tail, size_t tlen)
{
    if (w->err == CB_EOK)
        store_cache_put(c, changes, key, klen, w->b->data, w->b->len, tail, tlen);
    buf_free(w->b);
}

/* Files a record (and its bytes, when there are) under key. */
static void keep_blob(struct store_cache *c, uint64_t changes, const entity_key *key,
                      const model_blob *b, const void *bytes, size_t len)
{
    buf_t flat;
    buf_init(&flat, SIZE_MAX);
    buf_writer w = buf_writer_on(&flat);
    wr_blob(&w, b);
    keep(c, changes, key, sizeof(*key), &w, bytes, len);
}

typedef struct {
    arena_t *a;
    model_user *user;
    model_blob *blob;
    store_pic_view *view; /* read_image_shared: the entry's own bytes */
} read_dst;

static bool read_user(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    (void)e;
    read_dst *d = cls;
    flat_rd r = {d->a, v, (const unsigned char *)v + n, true};
    rd_user(&r, d->user);
    return r.ok && r.p == r.end;
}

static bool read_blob(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    (void)e;
    read_dst *d = cls;
    flat_rd r = {d->a, v, (const unsigned char *)v + n, true};
    rd_blob(&r, d->blob);
    return r.ok && r.p == r.end;
}

/* A record followed by its plain bytes (OriginalSize of them): the record
 * into d->blob, *bytes where they start; false when the value is not that. */
static bool image_value(read_dst *d, const void *v, size_t n, const unsigned char **bytes,
                        size_t *len)
{
    flat_rd r = {d->a, v, (const unsigned char *)v + n, true};
    rd_blob(&r, d->blob);
    *len = (size_t)(r.end - r.p);
    if (!r.ok || d->blob->original_size < 0 || *len != (size_t)d->blob->original_size)
        return false;
    *bytes = r.p;
    return true;
}

/* The entry's own bytes, lent (held). */
static bool read_image_shared(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    read_dst *d = cls;
    const unsigned char *p;
    size_t len;
    if (!image_value(d, v, n, &p, &len))
        return false;
    store_cache_entry_hold(e);
    *d->view = (store_pic_view){p, -1, len, {store_cache_entry_drop, e}};
    return true;
}

/* Names are one user case-insensitively (ASCII, as the backends compare);
 * longer names than this are not cached. */
#define USER_KEY_MAX 128

static size_t user_key(const char *name, char key[USER_KEY_MAX])
{
    size_t n = strlen(name);
    if (n + 1 > USER_KEY_MAX)
        return 0;
    key[0] = 'U';
    for (size_t i = 0; i < n; i++)
        key[i + 1] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    return n + 1;
}

/* ---- dispatch ---------------------------------------------------------- */

store_err store_user_add(store_t *s, model_user *u)
{
    return s->ops->user_add(s, u);
}

store_err store_user_get(store_t *s, arena_t *a, int32_t id, model_user *out)
{
    return s->ops->user_get(s, a, id, out);
}

store_err store_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out)
{
    uint64_t changes;
    char key[USER_KEY_MAX];
    size_t klen = user_key(name, key);
    struct store_cache *c = klen > 0 ? cache_on(s, STORE_CHANGES_USERS, &changes) : NULL;
    if (c == NULL)
        return s->ops->user_by_name(s, a, name, out);
    read_dst d = {.a = a, .user = out};
    if (store_cache_get(c, changes, key, klen, read_user, &d))
        return STORE_OK;
    store_err rc = s->ops->user_by_name(s, a, name, out);
    if (rc == STORE_OK) {
        buf_t flat;
        buf_init(&flat, SIZE_MAX);
        buf_writer w = buf_writer_on(&flat);
        wr_user(&w, out);
        keep(c, changes, key, klen, &w, NULL, 0);
    }
    return rc;
}

store_err store_user_list(store_t *s, arena_t *a, model_user **out, size_t *n)
{
    return s->ops->user_list(s, a, out, n);
}

store_err store_ping(store_t *s, char *why, size_t why_cap)
{
    if (why_cap > 0)
        why[0] = '\0';
    return s->ops->ping(s, why, why_cap);
}

store_err store_user_count(store_t *s, int64_t *n)
{
    return s->ops->user_count(s, n);
}

store_err store_user_set_password(store_t *s, const char *name, const char *pw_hash)
{
    return s->ops->user_set_password(s, name, pw_hash);
}

store_err store_user_set_disabled(store_t *s, const char *name, bool disabled)
{
    return s->ops->user_set_disabled(s, name, disabled);
}

static bool cred_kind_ok(store_cred_kind kind)
{
    return kind == STORE_CRED_TICKET || kind == STORE_CRED_TOKEN || kind == STORE_CRED_SESSION;
}

store_err store_cred_add(store_t *s, store_cred *c)
{
    assert(c != NULL && cred_kind_ok(c->kind));
    return s->ops->cred_add(s, c);
}

store_err store_cred_find(store_t *s, arena_t *a, store_cred_kind kind,
                          const unsigned char hash[STORE_HASH_BYTES], store_cred *out)
{
    assert(cred_kind_ok(kind) && hash != NULL);
    return s->ops->cred_find(s, a, kind, hash, out);
}

store_err store_cred_list(store_t *s, arena_t *a, store_cred_kind kind, int64_t now_ms,
                          store_cred **out, size_t *n)
{
    assert(cred_kind_ok(kind));
    return s->ops->cred_list(s, a, kind, now_ms, out, n);
}

store_err store_cred_revoke(store_t *s, store_cred_kind kind, int64_t id)
{
    assert(cred_kind_ok(kind));
    return s->ops->cred_revoke(s, kind, id);
}

store_err store_cred_revoke_user(store_t *s, const char *name)
{
    assert(name != NULL);
    return s->ops->cred_revoke_user(s, name);
}

store_err store_cred_purge(store_t *s, int64_t now_ms)
{
    return s->ops->cred_purge(s, now_ms);
}

store_err store_app_add(store_t *s, store_app *a)
{
    assert(a != NULL && a->name != NULL);
    return s->ops->app_add(s, a);
}

store_err store_app_find(store_t *s, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                         store_app *out)
{
    assert(hash != NULL);
    return s->ops->app_find(s, a, hash, out);
}

store_err store_app_list(store_t *s, arena_t *a, store_app **out, size_t *n)
{
    return s->ops->app_list(s, a, out, n);
}

store_err store_app_revoke(store_t *s, const char *name)
{
    assert(name != NULL);
    return s->ops->app_revoke(s, name);
}

store_err store_entity_create(store_t *s, model_entity_t *e)
{
    return s->ops->entity_create(s, e);
}

store_err store_entity_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_entity_t *out)
{
    return s->ops->entity_get(s, a, k, id, out);
}

store_err store_entity_exists(store_t *s, model_kind k, int32_t id)
{
    return s->ops->entity_exists(s, k, id);
}

store_err store_entity_update(store_t *s, model_entity_t *e, int64_t expect)
{
    return s->ops->entity_update(s, e, expect);
}

store_err store_entity_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    return s->ops->entity_delete(s, k, id, expect);
}

store_err store_image_info(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out)
{
    uint64_t changes;
    entity_key key = {'I', (int32_t)k, id};
    struct store_cache *c = cache_on(s, STORE_CHANGES_ALL, &changes);
    if (c == NULL)
        return s->ops->image_info(s, a, k, id, out);
    read_dst d = {.a = a, .blob = out};
    if (store_cache_get(c, changes, &key, sizeof(key), read_blob, &d))
        return STORE_OK;
    store_err rc = s->ops->image_info(s, a, k, id, out);
    if (rc == STORE_OK)
        keep_blob(c, changes, &key, out, NULL, 0);
    return rc;
}

store_err store_image_info_put(store_t *s, arena_t *a, model_kind k, int32_t id,
                               const model_blob_edit *edit, int32_t user_id, int64_t expect,
                               model_blob *out)
{
    return s->ops->image_info_put(s, a, k, id, edit, user_id, expect, out);
}

/* Encodes c (store_pic.c), then writes it with fn: one of the backend's
 * content writes, bound to its arguments. */
typedef store_err (*content_write_fn)(void *args, const store_content *enc);

static store_err write_content(store_t *s, const store_content *c, content_write_fn fn,
                               void *args)
{
    store_content enc;
    int efd = -1;
    store_err rc = c != NULL ? store_pic_encode(s, c, &enc, &efd) : STORE_OK;
    if (rc == STORE_OK)
        rc = fn(args, c != NULL ? &enc : NULL);
    if (efd >= 0)
        close(efd);
    return rc;
}

/* A content call's arguments, bound for write_content and store_pic_read. */
typedef struct {
    store_t *s;
    arena_t *a;
    model_kind k;
    int32_t id; /* entity, BlobId or product */
    int32_t user_id;
    int64_t expect;
    const model_blob_edit *edit;
    model_blob *out;
} pic_args;

static store_err image_put_bound(void *args, const store_content *enc)
{
    pic_args *g = args;
    return g->s->ops->image_put(g->s, g->a, g->k, g->id, enc, g->user_id, g->expect, g->out);
}

store_err store_image_put(store_t *s, arena_t *a, model_kind k, int32_t id, const store_content *c,
                          int32_t user_id, int64_t expect, model_blob *out)
{
    assert(c != NULL);
    pic_args g = {s, a, k, id, user_id, expect, NULL, out};
    model_blob_empty(out);
    return write_content(s, c, image_put_bound, &g);
}

static store_err image_get_bound(void *args, model_blob *out, store_pic_fill_fn fill, void *ctx)
{
    pic_args *g = args;
    return g->s->ops->image_get(g->s, g->a, g->k, g->id, out, fill, ctx);
}

/* The picture of (k, id) into *v, through the cache when there is one;
 * may_spool: a large one may come as a file. */
static store_err image_view(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                            store_pic_view *v, bool may_spool)
{
    uint64_t changes = 0;
    entity_key key = {'G', (int32_t)k, id};
    struct store_cache *c = cache_on(s, STORE_CHANGES_ALL, &changes);
    read_dst d = {.a = a, .blob = out, .view = v};
    if (c != NULL && store_cache_get(c, changes, &key, sizeof(key), read_image_shared, &d))
        return STORE_OK;
    pic_args g = {.s = s, .a = a, .k = k, .id = id};
    store_err rc = store_pic_read(s, image_get_bound, &g, may_spool, out, v);
    if (rc == STORE_OK && c != NULL && v->fd < 0)
        keep_blob(c, changes, &key, out, v->bytes, v->len);
    return rc;
}

/* The view's bytes as the caller's own (malloc'd): a read that missed the
 * cache made them so already, a hit is copied. The view is released. */
static store_err view_take(store_err rc, store_pic_view *v, void **bytes, size_t *len)
{
    *bytes = NULL;
    *len = rc == STORE_OK ? v->len : 0;
    assert(rc != STORE_OK || v->fd < 0);
    if (rc == STORE_OK && v->rel.release == free) {
        *bytes = v->rel.cls;
        return rc;
    }
    if (rc == STORE_OK && (*bytes = malloc(v->len > 0 ? v->len : 1)) == NULL)
        rc = STORE_INTERNAL;
    if (*bytes != NULL)
        memcpy(*bytes, v->bytes, v->len);
    v->rel.release(v->rel.cls);
    return rc;
}

store_err store_image_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                          void **bytes, size_t *len)
{
    store_pic_view v;
    store_err rc = image_view(s, a, k, id, out, &v, false);
    return view_take(rc, &v, bytes, len);
}

store_err store_image_get_shared(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                                 store_pic_view *v)
{
    return image_view(s, a, k, id, out, v, true);
}

store_err store_image_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    return s->ops->image_delete(s, k, id, expect);
}

static store_err blob_create_bound(void *args, const store_content *enc)
{
    pic_args *g = args;
    return g->s->ops->blob_create(g->s, g->a, g->edit, enc, g->user_id, g->out);
}

store_err store_blob_create(store_t *s, arena_t *a, const model_blob_edit *edit,
                            const store_content *c, int32_t user_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    pic_args g = {.s = s, .a = a, .user_id = user_id, .edit = edit, .out = out};
    model_blob_empty(out);
    return write_content(s, c, blob_create_bound, &g);
}

store_err store_blob_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    return s->ops->blob_get(s, a, blob_id, out);
}

store_err store_blob_info_put(store_t *s, arena_t *a, int32_t blob_id, const model_blob_edit *edit,
                              int32_t user_id, model_blob *out)
{
    assert(a != NULL && edit != NULL && out != NULL);
    return s->ops->blob_info_put(s, a, blob_id, edit, user_id, out);
}

static store_err blob_content_put_bound(void *args, const store_content *enc)
{
    pic_args *g = args;
    return g->s->ops->blob_content_put(g->s, g->a, g->id, enc, g->user_id, g->out);
}

store_err store_blob_content_put(store_t *s, arena_t *a, int32_t blob_id, const store_content *c,
                                 int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    pic_args g = {.s = s, .a = a, .id = blob_id, .user_id = user_id, .out = out};
    model_blob_empty(out);
    return write_content(s, c, blob_content_put_bound, &g);
}

static store_err blob_content_get_bound(void *args, model_blob *out, store_pic_fill_fn fill,
                                        void *ctx)
{
    pic_args *g = args;
    return g->s->ops->blob_content_get(g->s, g->a, g->id, out, fill, ctx);
}

store_err store_blob_content_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out,
                                 void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    store_pic_view v;
    pic_args g = {.s = s, .a = a, .id = blob_id};
    store_err rc = store_pic_read(s, blob_content_get_bound, &g, false, out, &v);
    return view_take(rc, &v, bytes, len);
}

store_err store_blob_delete(store_t *s, int32_t blob_id)
{
    return s->ops->blob_delete(s, blob_id);
}

store_err store_image_link(store_t *s, model_kind k, int32_t id, int32_t blob_id, int32_t user_id)
{
    return s->ops->image_link(s, k, id, blob_id, user_id);
}

store_err store_blob_sweep(store_t *s, int64_t cutoff_ms, int64_t *count)
{
    assert(count != NULL);
    return s->ops->blob_sweep(s, cutoff_ms, count);
}

static store_err thumbnail_put_bound(void *args, const store_content *enc)
{
    pic_args *g = args;
    return g->s->ops->thumbnail_put(g->s, g->a, g->id, enc, g->user_id, g->out);
}

store_err store_thumbnail_put(store_t *s, arena_t *a, int32_t product_id, const store_content *c,
                              int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    pic_args g = {.s = s, .a = a, .id = product_id, .user_id = user_id, .out = out};
    model_blob_empty(out);
    return write_content(s, c, thumbnail_put_bound, &g);
}

static store_err thumbnail_get_bound(void *args, model_blob *out, store_pic_fill_fn fill,
                                     void *ctx)
{
    pic_args *g = args;
    return g->s->ops->thumbnail_get(g->s, g->a, g->id, out, fill, ctx);
}

store_err store_thumbnail_get(store_t *s, arena_t *a, int32_t product_id, model_blob *out,
                              void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    store_pic_view v;
    pic_args g = {.s = s, .a = a, .id = product_id};
    store_err rc = store_pic_read(s, thumbnail_get_bound, &g, false, out, &v);
    return view_take(rc, &v, bytes, len);
}

store_err store_variant_get(store_t *s, arena_t *a, int32_t blob_id, int64_t version,
                            const char *key, store_variant_meta *meta, void **bytes, size_t *len)
{
    assert(a != NULL && key != NULL && meta != NULL && bytes != NULL && len != NULL);
    void *stored = NULL;
    size_t n = 0;
    *bytes = NULL;
    *len = 0;
    store_err rc = s->ops->variant_get(s, a, blob_id, version, key, meta, &stored, &n);
    return rc == STORE_OK ? store_pic_variant_decode(s, meta, stored, n, bytes, len) : rc;
}

store_err store_variant_put(store_t *s, int32_t blob_id, int64_t version, const char *key,
                            const store_variant_meta *meta, const void *bytes, size_t len,
                            bool pinned, int64_t cache_max_bytes)
{
    assert(key != NULL && meta != NULL && meta->mime != NULL && (bytes != NULL || len == 0));
    store_variant_meta m;
    void *enc = NULL;
    size_t enc_len = 0;
    store_err rc = store_pic_variant_encode(s, meta, bytes, len, &m, &enc, &enc_len);
    if (rc == STORE_OK)
        rc = s->ops->variant_put(s, blob_id, version, key, &m, enc != NULL ? enc : bytes,
                                 enc != NULL ? enc_len : len, pinned, cache_max_bytes);
    free(enc);
    return rc;
}

store_err store_variant_total(store_t *s, int64_t *bytes, int64_t *count)
{
    assert(bytes != NULL && count != NULL);
    return s->ops->variant_total(s, bytes, count);
}

store_err store_meta_get(store_t *s, arena_t *a, const char *name, void **value, size_t *len)
{
    assert(a != NULL && name != NULL && value != NULL && len != NULL);
    return s->ops->meta_get(s, a, name, value, len);
}

store_err store_meta_put(store_t *s, const char *name, const void *value, size_t len)
{
    assert(name != NULL && (value != NULL || len == 0));
    return s->ops->meta_put(s, name, value, len);
}

store_err store_rewrite_all(store_t *s, store_rewrite_fn fn, void *ctx, int64_t *count)
{
    assert(fn != NULL && count != NULL);
    return s->ops->rewrite_all(s, fn, ctx, count);
}
