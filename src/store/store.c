/*
 * store.c — the public store API's frame: picks a backend at open (SQLite
 * for a path, PostgreSQL for a URL or key=value string) and makes the
 * generic store_t around it; health, holds, scopes and the read cache.
 * The recipes are store_account.c's (users, credentials, apps, meta),
 * store_entity.c's (entities, records, links, sweep), store_variant.c's
 * and store_pic.c's (picture bytes, the codec, the rekey walk).
 *
 * Nothing here knows about SQL or files; argument checks that every
 * backend needs (non-NULL store, the PostgreSQL prefix) live here so that
 * backends do not repeat them.
 *
 * A scope (store_scope_open) is a view: a store_t of its own, in the
 * caller's arena, with the root's backend, a pointer to the root and the
 * scope. Recipes run through it begin their transactions in that scope;
 * everything else (cache, counts) is the root's.
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
#include "store/store_pgmod.h"
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

/* ---- metrics ---------------------------------------------------------- */

/* The label values of crmblob_store_errors_total. */
enum { ERR_UNAVAILABLE, ERR_NO_SPACE, ERR_CORRUPT, ERR_INTERNAL, ERR_CONFLICT, ERR__COUNT };

static void cache_collect(void *cls)
{
    store_t *s = cls;
    store_cache_stats st;
    store_stats(s, &st);
    metrics_set(s->m_cache_hits, 0, (int64_t)st.hits);
    metrics_set(s->m_cache_misses, 0, (int64_t)st.misses);
    metrics_set(s->m_cache_bytes, 0, (int64_t)st.bytes);
}

static metrics_family *plain(metrics_t *m, const char *name, const char *help, metrics_type t)
{
    return metrics_register(m, &(metrics_def){.name = name, .help = help, .type = t});
}

static void metrics_open(store_t *s, metrics_t *m)
{
    static const char *const modes[] = {"read", "write"};
    static const char *const errors[ERR__COUNT] = {"unavailable", "no_space", "corrupt",
                                                   "internal", "conflict"};
    metrics_label mode = {"mode", modes, 2}, error = {"error", errors, ERR__COUNT};
    if ((s->metrics = m) == NULL)
        return;
    s->m_tx = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_transactions_total",
                          .help = "Database transactions run (each try of a recipe), by mode.",
                          .labels = &mode, .nlabels = 1});
    s->m_errors = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_errors_total",
                          .help = "Database transactions that failed, by error (conflict: a "
                                  "serialization failure or deadlock, tried again).",
                          .labels = &error, .nlabels = 1});
    s->m_cache_hits = plain(m, "crmblob_store_cache_hits_total",
                            "Reads answered by the read cache.", METRICS_COUNTER);
    s->m_cache_misses = plain(m, "crmblob_store_cache_misses_total",
                              "Reads the read cache could not answer.", METRICS_COUNTER);
    s->m_cache_bytes = plain(m, "crmblob_store_cache_bytes", "Bytes the read cache holds.",
                             METRICS_GAUGE);
    if (metrics_collect(m, cache_collect, s) != CB_EOK)
        log_warn("store: the read cache's counts will not be shown");
}

/* One transaction's outcome, counted. */
static void count_tx(store_t *s, store_tx_mode m, store_err rc)
{
    store_t *r = s->root;
    int err = rc == STORE_UNAVAILABLE ? ERR_UNAVAILABLE
              : rc == STORE_NO_SPACE  ? ERR_NO_SPACE
              : rc == STORE_CORRUPT   ? ERR_CORRUPT
              : rc == STORE_INTERNAL  ? ERR_INTERNAL
              : rc == STORE_RETRY     ? ERR_CONFLICT
                                      : -1;
    metrics_add(r->m_tx, m == STORE_TX_READ1 || m == STORE_TX_READ ? 0 : 1, 1);
    if (err >= 0)
        metrics_add(r->m_errors, (size_t)err, 1);
}

/* ---- the recipe runner ------------------------------------------------- */

/* One run of fn: begin, fn, end. */
static store_err run_once(store_t *s, store_tx_mode m, store_recipe fn, void *ctx)
{
    store_tx *tx = NULL;
    store_err rc = s->be->ops->begin(s->be, s->sc, m, &tx);
    if (rc == STORE_OK)
        rc = s->be->ops->end(tx, fn(tx, ctx));
    count_tx(s, m, rc);
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

void store_describe(const char *where, char *buf, size_t cap)
{
    assert(where != NULL && buf != NULL && cap > 0);
    const store_pgmod *pg = NULL;
    if (!store_pgmod_is_pg(where))
        snprintf(buf, cap, "%s", where);
    else if ((pg = store_pgmod_get()) != NULL)
        pg->describe(where, buf, cap);
    else /* no libpq to parse it, and never shown as it is (a password) */
        snprintf(buf, cap, "PostgreSQL (conninfo not shown)");
}

/* The picture layer's settings (store_pic.c): the codec, a codec that
 * reads what was kept without one, and the spool directory. */
static store_err pictures_open(store_t *s, const store_options *opt)
{
    static const codec_config plain = {0};
    s->codec = opt->codec;
    const struct store_be_ops *ops = s->be->ops;
    s->spool_dir = opt->spool_dir;
    if (s->spool_dir == NULL && ops->spool_hint != NULL)
        s->spool_dir = ops->spool_hint(s->be);
    if (s->spool_dir == NULL) /* a backend with no place of its own (PostgreSQL) */
        s->spool_dir =
            getenv("TMPDIR") != NULL && *getenv("TMPDIR") != '\0' ? getenv("TMPDIR") : "/tmp";
    if (opt->codec == NULL && codec_create(&plain, &s->plain_codec) != CB_EOK)
        return STORE_INTERNAL;
    s->decoder = opt->codec != NULL ? opt->codec : s->plain_codec;
    return STORE_OK;
}

/* The backend `where` names: PostgreSQL through its module (store_pgmod.h),
 * else a SQLite file. */
static store_err open_backend(const char *where, const store_options *opt, store_be **be)
{
    if (!store_pgmod_is_pg(where))
        return store_sqlite_open(where, opt, be);
    const store_pgmod *pg = store_pgmod_get();
    return pg != NULL ? pg->open(where, opt, be) : STORE_INTERNAL;
}

store_err store_open(const char *where, const store_options *opt, store_t **out)
{
    assert(where != NULL && out != NULL);
    static const store_options defaults = {0};
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    store_be *be = NULL;
    store_err rc = open_backend(where, opt, &be);
    if (rc != STORE_OK)
        return rc;
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        log_error("store: out of memory");
        be->ops->close(be);
        return STORE_INTERNAL;
    }
    store_t *s = *out;
    s->root = s;
    s->be = be;
    s->where = strdup(where);
    if (s->where == NULL)
        rc = STORE_INTERNAL;
    s->changes = be->ops->counts != NULL ? be->ops->counts(be) : NULL;
    s->defers = be->defers;
    if (rc == STORE_OK && (s->urefs = store_urefs_create()) == NULL) {
        log_error("store: no memory for the user references");
        rc = STORE_INTERNAL;
    }
    if (rc == STORE_OK)
        rc = store_variant_open(*out);
    if (rc != STORE_OK && *out != NULL) {
        store_close(*out);
        *out = NULL;
        return rc;
    }
    if (rc == STORE_OK && (*out)->changes != NULL && opt->cache_bytes > 0)
        (*out)->cache = store_cache_create(opt->cache_bytes);
    if (rc == STORE_OK)
        rc = pictures_open(*out, opt);
    if (rc == STORE_OK)
        metrics_open(*out, opt->metrics);
    if (rc != STORE_OK && *out != NULL) {
        store_close(*out);
        *out = NULL;
    }
    return rc;
}

const char *store_where(const store_t *s)
{
    return s->root->where;
}

const codec_t *store_codec(const store_t *s)
{
    return s->root->codec;
}

store_err store_set_codec(store_t *s, codec_t *c)
{
    store_t *r = s->root;
    if (r->nowned == STORE_CODECS_MAX)
        return STORE_CONFLICT;
    r->owned[r->nowned++] = c;
    r->decoder = c; /* first: what is written with c must be readable at once */
    r->codec = c;
    return STORE_OK;
}

const char *store_spool_hint(store_t *s)
{
    return s->root->spool_dir;
}

store_err store_hold(store_t *s, store_hold_mode h)
{
    store_be *be = s->root->be;
    return be->ops->hold(be, h);
}

void store_close(store_t *s)
{
    if (s == NULL)
        return;
    assert(s->root == s); /* the store, not a view of it */
    metrics_uncollect(s->metrics, cache_collect, s);
    store_variant_close(s); /* a write: before the cache and the counts go */
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
    struct store_urefs *urefs = s->urefs;
    codec_destroy(s->plain_codec);
    for (size_t i = 0; i < s->nowned; i++)
        codec_destroy(s->owned[i]);
    s->be->ops->close(s->be);
    store_urefs_destroy(urefs);
    free(s->where);
    free(s);
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
    const struct store_be_ops *ops = s->be->ops;
    if (ops->counts_check == NULL || (!force && now - last < STORE_CHANGES_CHECK_US))
        return;
    if (!atomic_compare_exchange_strong(&s->changes_checked_us, &last, now) && !force)
        return; /* another thread checks */
    if (ops->counts_check(s->be) && s->cache != NULL)
        store_cache_clear(s->cache);
}

/* Change count `which`, from a file seen to be the database's within the
 * last STORE_CHANGES_CHECK_US. */
static uint64_t changes_read(store_t *s, int which)
{
    store_changes_watch(s, false);
    return atomic_load_explicit(&s->changes[which], memory_order_acquire);
}

static store_err users_stamp_fn(store_tx *tx, void *ctx)
{
    return tx->be->ops->users_stamp(tx, ctx);
}

/* Without shared counts (PostgreSQL), the users change count is a row of
 * the database, which every server's user writes move (users_bump): one
 * statement, far cheaper than a password check. */
bool store_users_changes(store_t *s, uint64_t *out)
{
    s = s->root;
    if (s->changes != NULL) {
        *out = changes_read(s, STORE_CHANGES_USERS);
        return true;
    }
    if (s->be->ops->users_bump == NULL || s->be->ops->users_stamp == NULL)
        return false;
    return store_run(s, STORE_TX_READ1, users_stamp_fn, out) == STORE_OK;
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
    return view->be->ops->scope_wait(sc, fn, ctx);
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
 * or when s is a view that wrote (it must see its own writes) or is
 * behind (it must see the write that refused its own). A user is
 * filed under the users' count, so that the writes of pictures and
 * records do not push users out. */
static struct store_cache *cache_on(store_t *s, int which, uint64_t *changes)
{
    store_t *root = s->root;
    assert(s->sc == NULL || !s->sc->ended);
    if (root->cache == NULL || (s->sc != NULL && (s->sc->wrote || s->sc->behind)))
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

store_err store_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out)
{
    uint64_t changes;
    char key[USER_KEY_MAX];
    size_t klen = user_key(name, key);
    struct store_cache *c = klen > 0 ? cache_on(s, STORE_CHANGES_USERS, &changes) : NULL;
    if (c == NULL)
        return store_account_user_by_name(s, a, name, out);
    read_dst d = {.a = a, .user = out};
    if (store_cache_get(c, changes, key, klen, read_user, &d))
        return STORE_OK;
    store_err rc = store_account_user_by_name(s, a, name, out);
    if (rc == STORE_OK) {
        buf_t flat;
        buf_init(&flat, SIZE_MAX);
        buf_writer w = buf_writer_on(&flat);
        wr_user(&w, out);
        keep(c, changes, key, klen, &w, NULL, 0);
    }
    return rc;
}

store_err store_ping(store_t *s, char *why, size_t why_cap)
{
    if (why_cap > 0)
        why[0] = '\0';
    return s->root->be->ops->ping(s->root->be, why, why_cap);
}

store_err store_image_info(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out)
{
    uint64_t changes;
    entity_key key = {'I', (int32_t)k, id};
    struct store_cache *c = cache_on(s, STORE_CHANGES_ALL, &changes);
    if (c == NULL)
        return store_image_info_read(s, a, k, id, out);
    read_dst d = {.a = a, .blob = out};
    if (store_cache_get(c, changes, &key, sizeof(key), read_blob, &d))
        return STORE_OK;
    store_err rc = store_image_info_read(s, a, k, id, out);
    if (rc == STORE_OK)
        keep_blob(c, changes, &key, out, NULL, 0);
    return rc;
}

/* The picture of (k, id) into *v, through the cache when there is one;
 * may_spool: a large one may come as a file (never cached). */
static store_err image_view(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                            store_pic_view *v, bool may_spool)
{
    uint64_t changes = 0;
    entity_key key = {'G', (int32_t)k, id};
    struct store_cache *c = cache_on(s, STORE_CHANGES_ALL, &changes);
    read_dst d = {.a = a, .blob = out, .view = v};
    if (c != NULL && store_cache_get(c, changes, &key, sizeof(key), read_image_shared, &d))
        return STORE_OK;
    store_err rc = store_pic_image_read(s, a, k, id, may_spool, out, v);
    if (rc == STORE_OK && c != NULL && v->fd < 0)
        keep_blob(c, changes, &key, out, v->bytes, v->len);
    return rc;
}

store_err store_image_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                          void **bytes, size_t *len)
{
    store_pic_view v;
    store_err rc = image_view(s, a, k, id, out, &v, false);
    return store_pic_view_take(rc, &v, bytes, len);
}

store_err store_image_get_shared(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                                 store_pic_view *v)
{
    return image_view(s, a, k, id, out, v, true);
}
