/*
 * patch.c — JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396) over
 * jansson values (see patch.h).
 *
 * patch_apply works in two passes. The first reads every operation
 * (parse_op) and refuses a malformed patch or an unsupported op before
 * anything is touched, so such a patch is a 400 whatever its tests would
 * have said. The second applies the operations in order to a deep copy of
 * the document; only when all of them succeed does the copy's content
 * replace the document's.
 *
 * Invariants:
 * - The caller's document is changed only at the very end, by moving the
 *   finished copy's members into it: a failing op leaves it untouched.
 * - Values from the patch are deep-copied before they are inserted, so a
 *   later op never writes into the (const) patch and no node is shared.
 * - Paths are NUL-free and their ~ escapes valid (checked in the first
 *   pass), so a decoded reference token is never longer than its path and
 *   fits the one scratch buffer sized for the longest path.
 * - Member names match case-insensitively (ASCII) and, where several
 *   spellings of one name exist, the last one counts, as in carrier_get.
 *   An existing member keeps its spelling when its value is replaced.
 */
#include "api/patch.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

/* Longest piece of a path quoted in a reason. */
#define PATH_QUOTE_MAX 200

typedef enum { OP_ADD, OP_REPLACE, OP_REMOVE, OP_TEST } op_kind;

/* One operation as read from the patch; the pointers borrow from it. */
typedef struct {
    op_kind kind;
    size_t number;    /* 1-based position in the patch, for reasons */
    const char *path; /* NUL-free, escapes valid */
    size_t path_len;
    const json_t *value; /* NULL for remove */
} patch_op;

typedef struct {
    json_t *root; /* the working copy of the document */
    char *tok;    /* scratch for one decoded reference token */
    char *err;
    size_t cap;
} apply_ctx;

/* A JSON Pointer being read token by token; "" has no tokens. */
typedef struct {
    const char *p, *end;
    bool done;
} ptr_cursor;

static const struct {
    const char *name;
    op_kind kind;
} op_names[] = {
    {"add", OP_ADD},
    {"replace", OP_REPLACE},
    {"remove", OP_REMOVE},
    {"test", OP_TEST},
};

static patch_status fail(apply_ctx *ctx, patch_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason (or the op name, or the path: see patch.h) and
 * returns st. */
static patch_status fail(apply_ctx *ctx, patch_status st, const char *fmt, ...)
{
    assert(st != PATCH_OK);
    if (ctx->err == NULL || ctx->cap == 0)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->cap, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- names -------------------------------------------------------------- */



/* The last member of obj whose name matches name[0..n) case-insensitively,
 * or NULL; when found and key is not NULL, *key and *key_len give its spelling. */
static json_t *member_find(const json_t *obj, const char *name, size_t n, const char **key,
                           size_t *key_len)
{
    const char *k;
    size_t kn;
    json_t *v, *found = NULL;
    json_object_keylen_foreach((json_t *)obj, k, kn, v)
    {
        if (!text_span_ieq(k, kn, name, n))
            continue;
        found = v;
        if (key != NULL)
            *key = k, *key_len = kn;
    }
    return found;
}

/* Removes every member of obj whose name matches case-insensitively. */
static void member_remove_all(json_t *obj, const char *name, size_t n)
{
    const char *k;
    size_t kn;
    json_t *v;
    void *next;
    json_object_keylen_foreach_safe(obj, next, k, kn, v)
    {
        if (text_span_ieq(k, kn, name, n))
            json_object_deln(obj, k, kn);
    }
}

/* ---- JSON Pointer ------------------------------------------------------- */

/* True when every '~' of path is followed by '0' or '1' (RFC 6901). */
static bool path_escapes_valid(const char *path, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (path[i] == '~' && (i + 1 == n || (path[i + 1] != '0' && path[i + 1] != '1')))
            return false;
    return true;
}

/* The leading '/' is optional: "a/b" reads as "/a/b". */
static void cursor_init(ptr_cursor *c, const char *path, size_t n)
{
    c->p = path + (n > 0 && path[0] == '/');
    c->end = path + n;
    c->done = n == 0;
}

/* Decodes the next reference token into out (~1 → '/', ~0 → '~');
 * false when no token is left. c->done tells whether it was the last. */
static bool cursor_next(ptr_cursor *c, char *out, size_t *n)
{
    size_t o = 0;
    if (c->done)
        return false;
    for (; c->p < c->end && *c->p != '/'; c->p++) {
        char ch = *c->p;
        if (ch == '~') {
            assert(c->p + 1 < c->end);
            ch = *++c->p == '0' ? '~' : '/';
        }
        out[o++] = ch;
    }
    if (c->p == c->end)
        c->done = true;
    else
        c->p++; /* the '/' before the next token */
    out[o] = '\0';
    *n = o;
    return true;
}

/* An RFC 6901 array index ("0" or digits without a leading zero) <= max. */
static bool array_index(const char *tok, size_t n, size_t max, size_t *out)
{
    uint64_t v;
    if ((n > 1 && tok[0] == '0') || !text_parse_u64(tok, n, &v) || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

/* The member or element that tok names in cont, or NULL. */
static json_t *child(json_t *cont, const char *tok, size_t n)
{
    size_t i, size = json_array_size(cont);
    if (json_is_object(cont))
        return member_find(cont, tok, n, NULL, NULL);
    if (size > 0 && array_index(tok, n, size - 1, &i))
        return json_array_get(cont, i);
    return NULL;
}

/* Follows every token of op's path but the last, which is left decoded in
 * ctx->tok (length *n). *parent is its container, or NULL for the path ""
 * (the document itself). False when an intermediate step does not exist. */
static bool walk(apply_ctx *ctx, const patch_op *op, json_t **parent, size_t *n)
{
    ptr_cursor c;
    json_t *cur = ctx->root;
    cursor_init(&c, op->path, op->path_len);
    *parent = NULL;
    *n = 0;
    while (cursor_next(&c, ctx->tok, n)) {
        if (c.done) {
            *parent = cur;
            return true;
        }
        if ((cur = child(cur, ctx->tok, *n)) == NULL)
            return false;
    }
    return true;
}

/* ---- equality for test -------------------------------------------------- */

static bool values_equal(const json_t *a, const json_t *b);

static bool arrays_equal(const json_t *a, const json_t *b)
{
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
            return false;
    return true;
}

/* Member names compare exactly here: test compares values, not paths. */
static bool objects_equal(const json_t *a, const json_t *b)
{
    const char *k;
    size_t kn;
    json_t *v;
    if (json_object_size(a) != json_object_size(b))
        return false;
    json_object_keylen_foreach((json_t *)a, k, kn, v)
    {
        json_t *w = json_object_getn(b, k, kn);
        if (w == NULL || !values_equal(v, w))
            return false;
    }
    return true;
}

/* json_equal, except that numbers compare by value (RFC 6902 §4.6: 1 ≡ 1.0). */
static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a))
        return arrays_equal(a, b);
    if (json_is_object(a))
        return objects_equal(a, b);
    return json_equal(a, b);
}

/* ---- the operations ----------------------------------------------------- */

static patch_status missing(apply_ctx *ctx, const patch_op *op)
{
    int n = op->path_len > PATH_QUOTE_MAX ? PATH_QUOTE_MAX : (int)op->path_len;
    return fail(ctx, PATCH_EBAD, "operation %zu: path \"%.*s\" does not exist", op->number, n,
                op->path);
}

static patch_status out_of_memory(apply_ctx *ctx)
{
    return fail(ctx, PATCH_EBAD, "out of memory");
}

/* add or replace at "": the document becomes a copy of the value. */
static patch_status set_document(apply_ctx *ctx, const patch_op *op)
{
    if (!json_is_object(op->value))
        return fail(ctx, PATCH_EBAD, "operation %zu: the document can only become an object",
                    op->number);
    json_t *copy = json_deep_copy(op->value);
    int rc = copy == NULL || json_object_clear(ctx->root) != 0 ||
             json_object_update(ctx->root, copy) != 0;
    json_decref(copy);
    return rc ? out_of_memory(ctx) : PATCH_OK;
}

/* Sets the member tok of obj, keeping an existing member's spelling. */
static patch_status set_member(apply_ctx *ctx, json_t *obj, const json_t *value, size_t n)
{
    const char *key = ctx->tok;
    size_t key_len = n;
    member_find(obj, ctx->tok, n, &key, &key_len);
    if (json_object_setn_new(obj, key, key_len, json_deep_copy(value)) != 0)
        return out_of_memory(ctx);
    return PATCH_OK;
}

static patch_status op_add(apply_ctx *ctx, const patch_op *op, json_t *parent, size_t n)
{
    size_t i, size = json_array_size(parent);
    if (parent == NULL)
        return set_document(ctx, op);
    if (json_is_object(parent))
        return set_member(ctx, parent, op->value, n);
    if (!json_is_array(parent))
        return missing(ctx, op);
    if (n == 1 && ctx->tok[0] == '-')
        i = size;
    else if (!array_index(ctx->tok, n, size, &i))
        return fail(ctx, PATCH_EBAD, "operation %zu: array index out of range", op->number);
    if (json_array_insert_new(parent, i, json_deep_copy(op->value)) != 0)
        return out_of_memory(ctx);
    return PATCH_OK;
}

static patch_status op_replace(apply_ctx *ctx, const patch_op *op, json_t *parent, size_t n)
{
    size_t i, size = json_array_size(parent);
    if (parent == NULL)
        return set_document(ctx, op);
    if (child(parent, ctx->tok, n) == NULL)
        return missing(ctx, op);
    if (json_is_object(parent))
        return set_member(ctx, parent, op->value, n);
    assert(size > 0);
    if (!array_index(ctx->tok, n, size - 1, &i) ||
        json_array_set_new(parent, i, json_deep_copy(op->value)) != 0)
        return out_of_memory(ctx);
    return PATCH_OK;
}

static patch_status op_remove(apply_ctx *ctx, const patch_op *op, json_t *parent, size_t n)
{
    const char *key;
    size_t i, key_len, size = json_array_size(parent);
    if (parent == NULL)
        return fail(ctx, PATCH_EBAD, "operation %zu: the document itself cannot be removed",
                    op->number);
    if (json_is_object(parent) && member_find(parent, ctx->tok, n, &key, &key_len) != NULL) {
        json_object_deln(parent, key, key_len);
        return PATCH_OK;
    }
    if (size > 0 && array_index(ctx->tok, n, size - 1, &i)) {
        json_array_remove(parent, i);
        return PATCH_OK;
    }
    return missing(ctx, op);
}

static patch_status op_test(apply_ctx *ctx, const patch_op *op, json_t *parent, size_t n)
{
    json_t *target = parent == NULL ? ctx->root : child(parent, ctx->tok, n);
    if (target != NULL && values_equal(target, op->value))
        return PATCH_OK;
    return fail(ctx, PATCH_ETEST, "%s", op->path);
}

/* ---- reading and running the patch ------------------------------------- */

/* The kind named by an "op" string, any case ("Add" ≡ "add"). */
static bool op_lookup(const json_t *name, op_kind *kind)
{
    const char *s = json_string_value(name);
    if (strlen(s) != json_string_length(name))
        return false;
    for (size_t k = 0; k < sizeof(op_names) / sizeof(op_names[0]); k++) {
        if (strcasecmp(s, op_names[k].name) == 0) {
            *kind = op_names[k].kind;
            return true;
        }
    }
    return false;
}

/* Reads operation i of ops into op; refuses what is malformed (EBAD) or
 * not supported (EOP). */
static patch_status parse_op(apply_ctx *ctx, const json_t *ops, size_t i, patch_op *op)
{
    json_t *o = json_array_get(ops, i), *name, *path;
    op->number = i + 1;
    if (!json_is_object(o))
        return fail(ctx, PATCH_EBAD, "operation %zu is not an object", op->number);
    name = member_find(o, "op", 2, NULL, NULL);
    if (!json_is_string(name))
        return fail(ctx, PATCH_EBAD, "operation %zu has no \"op\" string", op->number);
    if (!op_lookup(name, &op->kind))
        return fail(ctx, PATCH_EOP, "%s", json_string_value(name));
    path = member_find(o, "path", 4, NULL, NULL);
    if (!json_is_string(path))
        return fail(ctx, PATCH_EBAD, "operation %zu has no \"path\" string", op->number);
    op->path = json_string_value(path);
    op->path_len = json_string_length(path);
    if (strlen(op->path) != op->path_len || !path_escapes_valid(op->path, op->path_len))
        return fail(ctx, PATCH_EBAD, "operation %zu: invalid path", op->number);
    op->value = member_find(o, "value", 5, NULL, NULL);
    if (op->value == NULL && op->kind != OP_REMOVE)
        return fail(ctx, PATCH_EBAD, "operation %zu has no \"value\"", op->number);
    return PATCH_OK;
}

/* First pass: the whole patch is well-formed; *longest is its longest path. */
static patch_status check_ops(apply_ctx *ctx, const json_t *ops, size_t *longest)
{
    patch_op op;
    patch_status st;
    if (!json_is_array(ops))
        return fail(ctx, PATCH_EBAD, "a JSON Patch must be an array of operations");
    *longest = 0;
    for (size_t i = 0; i < json_array_size(ops); i++) {
        if ((st = parse_op(ctx, ops, i, &op)) != PATCH_OK)
            return st;
        if (op.path_len > *longest)
            *longest = op.path_len;
    }
    return PATCH_OK;
}

static patch_status apply_one(apply_ctx *ctx, const json_t *ops, size_t i)
{
    patch_op op;
    json_t *parent;
    size_t n;
    patch_status st = parse_op(ctx, ops, i, &op);
    assert(st == PATCH_OK); /* checked by check_ops */
    (void)st;
    if (!walk(ctx, &op, &parent, &n))
        return op.kind == OP_TEST ? fail(ctx, PATCH_ETEST, "%s", op.path) : missing(ctx, &op);
    switch (op.kind) {
    case OP_ADD:
        return op_add(ctx, &op, parent, n);
    case OP_REPLACE:
        return op_replace(ctx, &op, parent, n);
    case OP_REMOVE:
        return op_remove(ctx, &op, parent, n);
    case OP_TEST:
        return op_test(ctx, &op, parent, n);
    }
    assert(!"unknown op kind");
    return PATCH_EBAD;
}

patch_status patch_apply(json_t *doc, const json_t *ops, char *err, size_t err_cap)
{
    apply_ctx ctx = {.err = err, .cap = err_cap};
    size_t longest = 0;
    patch_status st;
    assert(json_is_object(doc));
    if ((st = check_ops(&ctx, ops, &longest)) != PATCH_OK || json_array_size(ops) == 0)
        return st;
    ctx.root = json_deep_copy(doc);
    ctx.tok = malloc(longest + 1);
    if (ctx.root == NULL || ctx.tok == NULL) {
        st = out_of_memory(&ctx);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(ops) && st == PATCH_OK; i++)
        st = apply_one(&ctx, ops, i);
    /* Commit: only allocation can fail here, and jansson then has bigger
     * problems than atomicity. */
    if (st == PATCH_OK && (json_object_clear(doc) != 0 || json_object_update(doc, ctx.root) != 0))
        st = out_of_memory(&ctx);
out:
    free(ctx.tok);
    json_decref(ctx.root);
    return st;
}

/* ---- merge patch -------------------------------------------------------- */

/* Merges one member of a merge patch into out (an object we own). */
static bool merge_member(json_t *out, const char *name, size_t n, const json_t *value)
{
    const char *key = name;
    size_t key_len = n;
    if (json_is_null(value)) {
        member_remove_all(out, name, n);
        return true;
    }
    json_t *cur = member_find(out, name, n, &key, &key_len);
    json_t *merged = patch_merge(cur, value);
    return merged != NULL && json_object_setn_new(out, key, key_len, merged) == 0;
}

json_t *patch_merge(const json_t *target, const json_t *patch)
{
    const char *key;
    size_t key_len;
    json_t *value;
    assert(patch != NULL);
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (out == NULL)
        return NULL;
    json_object_keylen_foreach((json_t *)patch, key, key_len, value)
    {
        if (!merge_member(out, key, key_len, value)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
