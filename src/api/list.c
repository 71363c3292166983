/*
 * list.c — GET /api/v1/{E}: a page of one kind's entities (SPEC §11), in
 * the shape of the reference's entity lists (ODataSlimResponse): an object
 * with `odata.metadata`, a `value` array and, when rows follow,
 * `odata.nextLink` (a path: the request's, its parameters kept).
 *
 * Parameters (OData names, as the reference's lists take them):
 *   $top      rows of the page, 1..STORE_LIST_MAX (default LIST_TOP)
 *   $skip     rows left out before it, 0..LIST_SKIP_MAX (default 0)
 *   $select   the members of each item, comma-separated (any case)
 *   $orderby  (or $orderBy) "Field [asc|desc]", comma-separated, at most
 *             STORE_LIST_KEYS; strings sort ASCII case-insensitively
 *   $filter   name begins 'text': the name fields (Person: Firstname or
 *             Lastname; others: Name) start with text, ASCII
 *             case-insensitively ('' in text is one quote)
 * A bad one is 400 naming it. Each item is the entity's carrier (as GET
 * /api/v1/{E}/{id} answers it) with ImageBlobId (0: none) and
 * ImageVersion (its bytes' version; 0: none stored), so a page shows
 * thumbnails without asking per row: GET .../Image?w=..&h=.. answers the
 * ETag "ImageBlobId.ImageVersion...", and a new picture changes the pair.
 * The next link repeats the request's parameters with $skip moved on.
 *
 * The parsers and the paging here are shared with the batch task list
 * (batch.c): $orderby over any field table (list_parse_keys), $filter
 * comparisons (list_parse_terms), $top/$skip, the next link.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/text.h"

#define LIST_LINK_MAX 4096 /* the next link's bytes at most */

/* The members an item has beyond the entity's carrier. */
static json_t *list_item(const store_list_item *it)
{
    json_t *j = carrier_entity(&it->e);
    json_object_set_new(j, "ImageBlobId", json_integer(it->image_blob_id));
    json_object_set_new(j, "ImageVersion", json_integer(it->image_version));
    return j;
}

bool list_param_number(api_exchange *x, const api_request *req, const char *name, int64_t lo,
                       int64_t hi, int64_t *out)
{
    const char *v = req->query(req->conn, name);
    uint64_t n;
    if (v == NULL)
        return true;
    if (!text_parse_u64(v, strlen(v), &n) || (int64_t)n < lo || n > (uint64_t)hi) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_PAGING, MSG_S(name), MSG_N(lo), MSG_N(hi), MSG_S(v));
        return false;
    }
    *out = (int64_t)n;
    return true;
}

/* The field of def (ctx) named name[0..n) (any case): its index, -1 for
 * the id; -2 when none. */
static int list_field(const void *ctx, const char *name, size_t n)
{
    const model_entity_def *def = ctx;
    if (text_ieq(name, n, def->id_field))
        return -1;
    for (int i = 0; i < def->nfields; i++)
        if (text_ieq(name, n, def->fields[i].name))
            return i;
    return -2;
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && **p == ' ')
        (*p)++, (*n)--;
    while (*n > 0 && (*p)[*n - 1] == ' ')
        (*n)--;
}

/* One "Field [asc|desc]" of $orderby into *k; false when it is not one. */
static bool list_key(list_field_fn field, const void *ctx, const char *p, size_t n,
                     store_list_key *k)
{
    trim(&p, &n);
    size_t word = 0;
    while (word < n && p[word] != ' ')
        word++;
    const char *dir = p + word;
    size_t dn = n - word;
    trim(&dir, &dn);
    k->field = field(ctx, p, word);
    k->desc = dn > 0 && text_ieq(dir, dn, "desc");
    return k->field >= -1 && (dn == 0 || k->desc || text_ieq(dir, dn, "asc"));
}

bool list_parse_keys(const char *s, list_field_fn field, const void *ctx, store_list_key *keys,
                     int *nkeys, const char **bad, size_t *badn)
{
    *nkeys = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (*nkeys == STORE_LIST_KEYS || !list_key(field, ctx, s, n, &keys[*nkeys])) {
            *bad = s, *badn = n;
            return false;
        }
        (*nkeys)++;
        s += n + (s[n] == ',');
    }
    return true;
}

bool list_parse_orderby(const model_entity_def *def, const char *s, store_list_query *q,
                        const char **bad, size_t *badn)
{
    return list_parse_keys(s, list_field, def, q->keys, &q->nkeys, bad, badn);
}

/* Skips spaces, then the word w (any case) and at least one space after it. */
static bool take_word(const char **p, const char *w)
{
    while (**p == ' ')
        (*p)++;
    size_t n = strlen(w);
    if (strncasecmp(*p, w, n) != 0 || (*p)[n] != ' ')
        return false;
    *p += n;
    while (**p == ' ')
        (*p)++;
    return true;
}

const char *list_parse_filter(arena_t *a, const char *s)
{
    const char *p = s;
    if (!take_word(&p, "name") || !take_word(&p, "begins") || *p++ != '\'')
        return NULL;
    size_t len = strlen(p);
    char *out = arena_alloc(a, len + 1), *o = out;
    for (; *p; p++) {
        if (*p == '\'' && p[1] == '\'')
            *o++ = *p++;
        else if (*p == '\'')
            break;
        else
            *o++ = *p;
    }
    if (*p++ != '\'')
        return NULL;
    while (*p == ' ')
        p++;
    *o = '\0';
    return *p == '\0' && o - out <= MODEL_STRING_MAX ? out : NULL;
}

/* ---- $filter terms: "Field op value [and Field op value]..." ------------
 * op eq, ne, lt, le, gt, ge or begins (any case), or the reference's
 * function startswith(Field, value) (begins); value 'text' ('' is one
 * quote) or a bare word of letters, digits and _ . - + : (numbers, state
 * names). What a field's value must be is the caller's to check. */

static const char *const term_ops[] = {"eq", "ne", "lt", "le", "gt", "ge", "begins"};

static void skip_spaces(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

static size_t word_len(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
           (p[n] >= '0' && p[n] <= '9') || (p[n] != '\0' && strchr("_.-+:", p[n]) != NULL))
        n++;
    return n;
}

/* A value at p into *t: the end, or NULL. */
static const char *term_value(arena_t *a, const char *p, list_term *t)
{
    size_t n = word_len(p);
    t->quoted = *p == '\'';
    if (!t->quoted) {
        t->value = arena_strndup(a, p, n);
        return n > 0 ? p + n : NULL;
    }
    char *out = arena_alloc(a, strlen(p)), *o = out; /* the quotes make room for the NUL */
    for (p++; *p; p++) {
        if (*p == '\'' && p[1] == '\'')
            *o++ = *p++;
        else if (*p == '\'')
            break;
        else
            *o++ = *p;
    }
    *o = '\0';
    t->value = out;
    return *p == '\'' ? p + 1 : NULL;
}

/* "startswith(Field, value)" at p (after its name and spaces, at the
 * parenthesis) into *t as "Field begins value": the end, or NULL. */
static const char *term_startswith(arena_t *a, const char *p, list_field_fn field, const void *ctx,
                                   list_term *t, const char **bad)
{
    p++;
    skip_spaces(&p);
    size_t n = word_len(p);
    *bad = p;
    if (n == 0 || (t->field = field(ctx, p, n)) < -1)
        return NULL;
    p += n;
    skip_spaces(&p);
    *bad = p;
    if (*p++ != ',')
        return NULL;
    skip_spaces(&p);
    t->op = 6; /* begins */
    *bad = t->at = p;
    if ((p = term_value(a, p, t)) == NULL)
        return NULL;
    skip_spaces(&p);
    *bad = p;
    return *p == ')' ? p + 1 : NULL;
}

/* One "Field op value" (or "startswith(Field, value)") at p into *t: the
 * end, or NULL (*bad at the fault). */
static const char *term(arena_t *a, const char *p, list_field_fn field, const void *ctx,
                        list_term *t, const char **bad)
{
    skip_spaces(&p);
    size_t n = word_len(p);
    *bad = p;
    if (text_ieq(p, n, "startswith")) {
        const char *q = p + n;
        skip_spaces(&q);
        if (*q == '(')
            return term_startswith(a, q, field, ctx, t, bad);
    }
    if (n == 0 || (t->field = field(ctx, p, n)) < -1)
        return NULL;
    p += n;
    skip_spaces(&p);
    *bad = p;
    n = word_len(p);
    t->op = -1;
    for (int i = 0; i < (int)(sizeof(term_ops) / sizeof(term_ops[0])); i++)
        if (text_ieq(p, n, term_ops[i]))
            t->op = i;
    if (t->op < 0)
        return NULL;
    p += n;
    skip_spaces(&p);
    *bad = t->at = p;
    return term_value(a, p, t);
}

bool list_parse_terms(arena_t *a, const char *s, list_field_fn field, const void *ctx,
                      list_term *terms, int max, int *n, const char **bad)
{
    const char *p = s;
    *n = 0;
    for (;;) {
        *bad = p;
        if (*n == max || (p = term(a, p, field, ctx, &terms[*n], bad)) == NULL)
            return false;
        (*n)++;
        skip_spaces(&p);
        if (*p == '\0')
            return true;
        size_t w = word_len(p);
        *bad = p;
        if (!text_ieq(p, w, "and") || p[w] != ' ')
            return false;
        p += w;
    }
}

/* The query of the request; false answered 400. */
static bool list_query(api_exchange *x, const api_request *req, store_list_query *q)
{
    const model_entity_def *def = model_entity(x->route.ent);
    int64_t top = LIST_TOP;
    *q = (store_list_query){.kind = x->route.ent};
    if (!list_param_number(x, req, "$top", 1, STORE_LIST_MAX, &top) ||
        !list_param_number(x, req, "$skip", 0, LIST_SKIP_MAX, &q->skip))
        return false;
    q->top = (int)top;
    const char *order = req->query(req->conn, "$orderby"), *bad;
    size_t badn;
    if (order == NULL)
        order = req->query(req->conn, "$orderBy");
    if (order != NULL && !list_parse_orderby(def, order, q, &bad, &badn)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ORDERBY, MSG_S(arena_strndup(x->arena, bad, badn)));
        return false;
    }
    const char *filter = req->query(req->conn, "$filter");
    if (filter != NULL && (q->prefix = list_parse_filter(x->arena, filter)) == NULL) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_FILTER, MSG_S(filter));
        return false;
    }
    return true;
}

/* s percent-encoded as a query value (unreserved characters kept). */
static void put_encoded(buf_writer *w, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL)
            buf_w_append(w, s, 1);
        else
            buf_w_printf(w, "%%%02X", c);
    }
}

const char *list_next_link(api_exchange *x, const api_request *req, const char *path, int top,
                           int64_t skip)
{
    static const char *const keep[] = {"$select", "$orderby", "$orderBy", "$filter"};
    buf_t b;
    buf_init(&b, LIST_LINK_MAX);
    buf_writer w = buf_writer_on(&b);
    buf_w_printf(&w, "%s?$top=%d&$skip=%lld", path, top, (long long)(skip + top));
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *v = req->query(req->conn, keep[i]);
        if (v != NULL) {
            buf_w_printf(&w, "&%s=", keep[i]);
            put_encoded(&w, v);
        }
    }
    const char *link = w.err == CB_EOK ? arena_strdup(x->arena, buf_str(&b)) : NULL;
    buf_free(&b);
    return link;
}

/* The page's items, with $select applied (select checked already). */
static json_t *list_values(api_exchange *x, const store_list_item *items, int n, const char *select)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *j = list_item(&items[i]);
        if (select != NULL)
            j = carrier_select(x, j, select);
        json_array_append_new(arr, j);
    }
    return arr;
}

/* false answered 400 when $select names a member no item has. */
static bool list_select_ok(api_exchange *x, model_kind k, const char *select)
{
    store_list_item blank = {.e = {.kind = k}};
    const model_entity_def *def = model_entity(k);
    for (int i = 0; i < def->nfields; i++)
        blank.e.v[i].s = "";
    json_t *j = select != NULL ? carrier_select(x, list_item(&blank), select) : NULL;
    json_decref(j);
    return select == NULL || j != NULL;
}

void entity_list(api_exchange *x, const api_request *req)
{
    store_list_query q;
    store_list_item *items;
    int n;
    bool more;
    const char *select = req->query(req->conn, "$select");
    if (!list_query(x, req, &q) || !list_select_ok(x, q.kind, select))
        return;
    store_err err = store_entity_list(x->store, x->arena, &q, &items, &n, &more);
    if (err != STORE_OK) {
        api_fail_store(x, err, NULL);
        return;
    }
    const char *name = model_entity(q.kind)->name;
    json_t *j = json_object();
    json_object_set_new(j, "odata.metadata",
                        json_string(arena_printf(x->arena, "/api/v1/$metadata#%s", name)));
    json_object_set_new(j, "value", list_values(x, items, n, select));
    const char *next =
        more ? list_next_link(x, req, arena_printf(x->arena, "/api/v1/%s", name), q.top, q.skip)
             : NULL;
    if (next != NULL)
        json_object_set_new(j, "odata.nextLink", json_string(next));
    api_answer_carrier(x, 200, "ODataSlimResponse", j); /* as the TimeZone list */
}
