/*
 * batch.c — batch tasks over the API: the REST BatchTask routes and the
 * Batch agent (POST /api/v1/Agents/Batch/{Name}), over the store's tasks
 * (store.h) that the runner (src/jobs/runner.c) claims and runs.
 *
 * Rights: starting a job needs the right its job_def names (every job of
 * crmblob: admin), so viewers and editors start nothing; an admin sees and
 * stops every task, anyone else only their own (another's is answered as
 * one that does not exist). Where REST answers 404 the agent answers null
 * (one task) or an empty list, as the reference does for nothing found.
 *
 * UpdateBatchTask / PUT /api/v1/BatchTask/{Id}: the owner (or an admin)
 * changes what is the client's: Description at any time, ParameterObject
 * while the task is New (its job has not read it yet; afterwards a change
 * is 400 naming it). Every other member is written by the job or fixed when
 * the task started, and is ignored, as PUT ImageInfo ignores a BlobEntity's
 * server-written fields. The store writes the row on the condition that it
 * is as read, so a claim or another server's update is never overwritten.
 *
 * GET /api/v1/BatchTask takes the OData options of the entity lists
 * (list.c's parsers): $top/$skip (a page), $orderby, $select and a $filter
 * of comparisons joined by and; the other options of the reference are
 * ignored as on the entity lists. A user's list holds their own tasks
 * whatever the filter says (an admin's: everyone's).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/text.h"
#include "jobs/job.h"

static const char *const state_names[] = {
    "Unknown", "New", "Aquired", "Started", "Succeeded", "Failed", "SucceededManualCleanup", "All",
};
#define STATE_ALL 7

const char *batch_state_name(int state)
{
    return state >= 0 && state < STATE_ALL ? state_names[state] : "Unknown";
}

/* A BatchTaskState by name (any case) or number; "All" is -1 (any). */
bool batch_state_parse(const char *s, size_t n, int *state)
{
    int32_t v;
    for (int i = 0; i <= STATE_ALL; i++)
        if (text_ieq(s, n, state_names[i])) {
            *state = i == STATE_ALL ? -1 : i;
            return true;
        }
    if (n > 0 && n < 3 && text_parse_pos_i32(s, n, &v) && v <= STATE_ALL) {
        *state = v == STATE_ALL ? -1 : v;
        return true;
    }
    return false;
}

static bool is_admin(const api_exchange *x)
{
    return x->user.role >= MODEL_ROLE_ADMIN;
}

/* May the caller see (and stop, delete) task t? */
static bool visible(const api_exchange *x, const store_task *t)
{
    return is_admin(x) || t->associate_id == x->user.id;
}

/* Task id as the caller may see it: STORE_ABSENT for another's. */
store_err batch_task_read(api_exchange *x, int64_t id, store_task *t)
{
    store_err e = store_task_get(x->store, x->arena, id, t);
    if (e == STORE_OK && !visible(x, t))
        e = STORE_ABSENT;
    return e;
}

/* A store error about task id (the caller's to see), answered by the
 * API's one mapping: ABSENT is 404 naming the task. */
static void fail_task(api_exchange *x, store_err e, int64_t id)
{
    api_fail_store(x, e, &(api_subject){.on = API_ON_BATCH_TASK, .task_id = id});
}

/* ---- answers ---- */

static const char *select_of(const api_request *req)
{
    const char *select = req->query(req->conn, "$select");
    return select != NULL && *select != '\0' ? select : NULL;
}

/* false answered 400 when $select names a member BatchTaskInfo lacks
 * (checked before anything is read, so an empty answer refuses it too). */
static bool select_ok(api_exchange *x, const api_request *req)
{
    const char *select = select_of(req);
    store_task blank = {.name = "",
                        .description = "",
                        .params = "{}",
                        .progress = "",
                        .result = "",
                        .response = "",
                        .file_name = ""};
    json_t *j = select != NULL ? carrier_select(x, carrier_batch_task(x, &blank), select) : NULL;
    json_decref(j);
    return select == NULL || j != NULL;
}

/* Task t's carrier with $select applied (its names checked by select_ok). */
static json_t *task_item(api_exchange *x, const api_request *req, const store_task *t)
{
    json_t *j = carrier_batch_task(x, t);
    const char *select = select_of(req);
    return select != NULL ? carrier_select(x, j, select) : j;
}

static void answer_task(api_exchange *x, const api_request *req, const store_task *t)
{
    json_t *j = task_item(x, req, t);
    if (j != NULL)
        api_answer_carrier(x, 200, "BatchTaskInfo", j);
}

static void answer_tasks(api_exchange *x, const api_request *req, const store_task *ts, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (visible(x, &ts[i]))
            json_array_append_new(arr, task_item(x, req, &ts[i]));
    api_answer_carrier(x, 200, "ArrayOfBatchTaskInfo", arr);
}

/* The caller's tasks matching q (an admin's: everyone's). */
static void answer_query(api_exchange *x, const api_request *req, store_task_query q)
{
    store_task *ts = NULL;
    size_t n = 0;
    if (!is_admin(x))
        q.associate = x->user.id;
    store_err e = store_task_list(x->store, x->arena, &q, &ts, &n);
    if (e != STORE_OK)
        api_fail_store(x, e, NULL);
    else
        answer_tasks(x, req, ts, n);
}

/* ---- starting ---- */

/* The ParameterObject of info: an object (of strings, as the reference's
 * definition says; numbers and booleans are taken too), as JSON text. */
static bool read_params(api_exchange *x, json_t *info, const char **out)
{
    json_t *p = carrier_get(info, "ParameterObject");
    if (p == NULL || json_is_null(p)) {
        *out = "{}";
        return true;
    }
    const char *key;
    json_t *v;
    bool ok = json_is_object(p);
    json_object_foreach(p, key, v)
    {
        ok = ok && (json_is_string(v) || json_is_number(v) || json_is_boolean(v));
    }
    char *text = ok ? json_dumps(p, JSON_COMPACT) : NULL;
    if (text == NULL) {
        API_FAIL0(x, CB_EBADREQ, MSG_BATCH_BAD_PARAMETERS);
        return false;
    }
    *out = arena_strdup(x->arena, text);
    free(text);
    return true;
}

/* The archive a job that takes one (def->input) reads: ParameterObject's
 * BlobId (a string of digits or a number), bound to the task as it is
 * added; 0 when it names none (it reads TaskId's output instead: the job
 * says so). False answered. */
static bool input_of(api_exchange *x, const char *params, int32_t *blob)
{
    json_t *p = json_loads(params, 0, NULL), *v = json_object_get(p, "BlobId");
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
    const char *s = json_string_value(v);
    bool ok = v == NULL || (s != NULL ? text_parse_pos_i32(s, strlen(s), blob) && *blob > 0
                                      : n > 0 && n <= INT32_MAX);
    if (ok && v == NULL)
        *blob = 0;
    else if (ok && s == NULL)
        *blob = (int32_t)n;
    else if (!ok)
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S(arena_strdup(x->arena, s ? s : "BlobId")));
    json_decref(p);
    return ok;
}

/* A New task from a BatchTaskInfo (Name picks the job); its id, or 0
 * answered. */
static int64_t start(api_exchange *x, json_t *info)
{
    const char *name = NULL, *desc = NULL, *params = NULL;
    if (info == NULL || !json_is_object(info)) {
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
        return 0;
    }
    if (!carrier_string(x, info, "Name", &name) || !carrier_string(x, info, "Description", &desc) ||
        !read_params(x, info, &params))
        return 0;
    const job_def *def = job_find(name);
    if (def == NULL) {
        API_FAIL(x, CB_EBADREQ, MSG_BATCH_NO_SUCH_JOB, MSG_S(name ? name : ""));
        return 0;
    }
    if (def->right == JOB_RIGHT_ADMIN && !is_admin(x)) {
        API_FAIL(x, CB_EFORBIDDEN, MSG_BATCH_ADMIN_ONLY, MSG_S(def->name));
        return 0;
    }
    store_task t = {.name = def->name,
                    .description = desc && *desc ? desc : def->description,
                    .params = params,
                    .associate_id = x->user.id};
    if (def->input && !input_of(x, params, &t.input_blob))
        return 0;
    store_err e = store_task_add(x->store, &t);
    if (e != STORE_OK) { /* about its input, when it has one */
        api_subject input = {.on = API_ON_BATCH_INPUT, .blob_id = t.input_blob};
        api_fail_store(x, e, t.input_blob > 0 ? &input : NULL);
        return 0;
    }
    return t.id;
}

static void answer_id(api_exchange *x, int64_t id)
{
    api_answer_carrier(x, 200, "int", json_integer(id));
}

/* ---- stopping and deleting ---- */

/* Stop: true once asked (a New task is Failed at once, a Started one stops
 * at its job's next look); false for a task that has ended. */
static void stop(api_exchange *x, int64_t id, bool null_if_absent)
{
    store_task t;
    store_err e = batch_task_read(x, id, &t);
    bool running = e == STORE_OK && (t.state == STORE_TASK_NEW || t.state == STORE_TASK_STARTED);
    if (running)
        e = store_task_stop(x->store, id, text_now_ms());
    if (e == STORE_OK)
        api_answer_carrier(x, 200, "boolean", json_boolean(running));
    else if (e == STORE_ABSENT && null_if_absent)
        api_answer_carrier(x, 200, "boolean", json_false());
    else
        fail_task(x, e, id);
}

/* Deletes a task with its output (CleanupBatchTask, DeleteBatchTask[s]);
 * a running one is asked to stop first (its job sees the task gone). */
store_err batch_delete(api_exchange *x, int64_t id)
{
    store_task t;
    store_err e = batch_task_read(x, id, &t);
    if (e == STORE_OK)
        e = store_task_delete(x->store, id);
    return e;
}

/* ---- updating ---- */

/* A task that could not be read: 404 (REST) or null (agent). */
static void answer_read_failure(api_exchange *x, store_err e, int64_t id, bool null_if_absent)
{
    if (e == STORE_ABSENT && null_if_absent)
        api_answer_carrier(x, 200, "BatchTaskInfo", json_null());
    else
        fail_task(x, e, id);
}

/* New params of task t name the archive bound to it, if its job reads
 * one: an import reads the archive bound when the task was added
 * (store_task.input_blob, checked then), so a BlobId edit is refused
 * rather than rebound (400 naming BlobId; the task can be deleted and
 * another started). False answered. */
static bool same_input(api_exchange *x, const store_task *t, const char *params)
{
    const job_def *def = job_find(t->name);
    int32_t blob = 0;
    if (def == NULL || !def->input)
        return true;
    if (!input_of(x, params, &blob))
        return false;
    if (blob == t->input_blob)
        return true;
    API_FAIL(x, CB_EBADREQ, MSG_BATCH_INPUT_FIXED, MSG_ID(t->id), MSG_N(t->input_blob));
    return false;
}

/* The edit info asks of task t: Description (when present), and
 * ParameterObject when present, not null and unlike t's (compared as JSON,
 * so a task read and sent back unchanged changes nothing). Every other
 * member is ignored. False answered. */
static bool read_edit(api_exchange *x, json_t *info, const store_task *t, store_task_edit *e)
{
    *e = (store_task_edit){0};
    if (!json_is_object(info)) {
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
        return false;
    }
    if (!carrier_string(x, info, "Description", &e->description))
        return false;
    json_t *p = carrier_get(info, "ParameterObject");
    const char *params;
    if (p == NULL || json_is_null(p))
        return true;
    if (!read_params(x, info, &params))
        return false;
    json_t *now = json_loads(params, 0, NULL), *was = json_loads(t->params, 0, NULL);
    if (!json_equal(now, was))
        e->params = params;
    json_decref(now);
    json_decref(was);
    return e->params == NULL || same_input(x, t, params);
}

/* Applies info to task t (visible to the caller) and answers the task as
 * stored. */
static void update(api_exchange *x, const api_request *req, const store_task *t, json_t *info,
                   bool null_if_absent)
{
    store_task_edit edit;
    store_task now;
    if (!read_edit(x, info, t, &edit))
        return;
    store_err e = store_task_update(x->store, x->arena, t->id, &edit, &now);
    if (e == STORE_OK)
        answer_task(x, req, &now);
    else if (e == STORE_ABSENT && null_if_absent)
        api_answer_carrier(x, 200, "BatchTaskInfo", json_null());
    else /* CONFLICT: its parameters are fixed, in the state it is in now */
        api_fail_store(x, e,
                       &(api_subject){.on = API_ON_BATCH_EDIT,
                                      .task_id = t->id,
                                      .state = e == STORE_CONFLICT ? batch_state_name(now.state)
                                                                   : NULL});
}

/* ---- REST: /api/v1/BatchTask[/{id}|/{state}][/Stop] ---- */

/* ---- GET /api/v1/BatchTask: the OData options ---- */

/* The members a list may filter and sort by, and their store fields. */
static const struct {
    const char *name;
    store_task_field field;
} task_members[] = {
    {"Id", STORE_TF_ID},
    {"Name", STORE_TF_NAME},
    {"Description", STORE_TF_DESCRIPTION},
    {"AssociateId", STORE_TF_ASSOCIATE},
    {"State", STORE_TF_STATE},
    {"ProgressPercent", STORE_TF_PERCENT},
    {"ProgressDescription", STORE_TF_PROGRESS},
    {"Result", STORE_TF_RESULT},
    {"Response", STORE_TF_RESPONSE},
    {"FileName", STORE_TF_FILE_NAME},
    {"Created", STORE_TF_CREATED},
    {"LastStarted", STORE_TF_STARTED},
    {"StartCount", STORE_TF_START_COUNT},
};

/* list_field_fn over task_members: the store field, -2 when none. */
static int task_member(const void *ctx, const char *name, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(task_members) / sizeof(task_members[0]); i++)
        if (text_ieq(name, n, task_members[i].name))
            return (int)task_members[i].field;
    return -2;
}

/* A date value: ISO 8601, or a day ("2026-12-06": its midnight, UTC). */
static bool term_date(arena_t *a, const char *v, int64_t *ms)
{
    if (strlen(v) == 10)
        v = arena_printf(a, "%sT00:00:00Z", v);
    return text_parse_date(v, ms);
}

/* The value of term t for its field into *out; false when it is not one. */
static bool term_value_of(api_exchange *x, const list_term *t, store_task_term *out)
{
    int32_t i32;
    int state;
    size_t n = strlen(t->value);
    *out = (store_task_term){.field = (store_task_field)t->field, .op = (store_cmp)t->op};
    if (store_task_field_is_text(out->field)) {
        out->text = t->value; /* its length: text_too_long, before */
        return true;
    }
    if (t->op == STORE_CMP_BEGINS)
        return false;
    if (out->field == STORE_TF_STATE && batch_state_parse(t->value, n, &state) && state >= 0) {
        out->num = state;
        return true;
    }
    if (out->field == STORE_TF_CREATED || out->field == STORE_TF_STARTED)
        return term_date(x->arena, t->value, &out->num);
    if (out->field != STORE_TF_STATE && text_parse_i32(t->value, n, &i32)) {
        out->num = i32;
        return true;
    }
    return false;
}

/* Is term t a text value longer than the store compares (its limit is in
 * bytes: 254 characters of text, fewer when they are not ASCII)? Then
 * answered 400 saying so. */
static bool text_too_long(api_exchange *x, const list_term *t)
{
    if (!store_task_field_is_text((store_task_field)t->field) ||
        strlen(t->value) <= MODEL_STRING_MAX)
        return false;
    API_FAIL(x, CB_EBADREQ, MSG_BATCH_FILTER_TOO_LONG, MSG_S(t->at), MSG_N(MODEL_STRING_MAX));
    return true;
}

/* $filter into q's terms; false answered 400 naming the piece at fault. */
static bool read_filter(api_exchange *x, const char *filter, store_task_page_query *q)
{
    list_term terms[STORE_TASK_TERMS];
    const char *bad = filter;
    int n = 0;
    bool ok =
        list_parse_terms(x->arena, filter, task_member, NULL, terms, STORE_TASK_TERMS, &n, &bad);
    for (int i = 0; ok && i < n; i++)
        if (text_too_long(x, &terms[i]))
            return false;
    for (int i = 0; ok && i < n; i++) {
        ok = term_value_of(x, &terms[i], &q->terms[i]);
        if (!ok)
            bad = terms[i].at;
    }
    q->nterms = n;
    if (!ok)
        API_FAIL(x, CB_EBADREQ, MSG_BATCH_BAD_FILTER, MSG_S(filter), MSG_S(bad));
    return ok;
}

/* The page the request asks for; false answered 400. */
static bool read_page(api_exchange *x, const api_request *req, store_task_page_query *q)
{
    int64_t top = LIST_TOP;
    const char *order = req->query(req->conn, "$orderby"), *bad;
    const char *filter = req->query(req->conn, "$filter");
    size_t badn;
    *q = (store_task_page_query){.associate = is_admin(x) ? -1 : x->user.id};
    if (!list_param_number(x, req, "$top", 1, STORE_LIST_MAX, &top) ||
        !list_param_number(x, req, "$skip", 0, LIST_SKIP_MAX, &q->skip))
        return false;
    q->top = (int)top;
    if (order == NULL)
        order = req->query(req->conn, "$orderBy");
    if (order != NULL &&
        !list_parse_keys(order, task_member, NULL, q->keys, &q->nkeys, &bad, &badn)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ORDERBY, MSG_S(arena_strndup(x->arena, bad, badn)));
        return false;
    }
    return filter == NULL || *filter == '\0' || read_filter(x, filter, q);
}

static void rest_list(api_exchange *x, const api_request *req)
{
    store_task_page_query q;
    store_task *ts;
    int n;
    bool more;
    if (!select_ok(x, req) || !read_page(x, req, &q))
        return;
    store_err e = store_task_page(x->store, x->arena, &q, &ts, &n, &more);
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, task_item(x, req, &ts[i]));
    json_t *j = json_pack("{s:s, s:o}", "odata.metadata", "", "value", arr);
    const char *next = more ? list_next_link(x, req, "/api/v1/BatchTask", q.top, q.skip) : NULL;
    if (next != NULL)
        json_object_set_new(j, "odata.nextLink", json_string(next));
    api_answer_carrier(x, 200, "ODataSlimResponse", j);
}

static void rest_start(api_exchange *x, const api_request *req)
{
    (void)req;
    json_t *info = carrier_read(x, NULL);
    if (info == NULL)
        return;
    int64_t id = start(x, info);
    json_decref(info);
    if (id > 0)
        answer_id(x, id);
}

static void rest_get(api_exchange *x, const api_request *req)
{
    if (!select_ok(x, req))
        return;
    if (x->route.id == 0) { /* /BatchTask/{state} */
        answer_query(x, req, (store_task_query){NULL, x->route.batch_state, -1});
        return;
    }
    store_task t;
    store_err e = batch_task_read(x, x->route.id, &t);
    if (e == STORE_OK)
        answer_task(x, req, &t);
    else
        fail_task(x, e, x->route.id);
}

/* A path of a state name where an id is needed. */
static bool need_id(api_exchange *x, const api_request *req)
{
    if (x->route.id > 0)
        return true;
    const char *seg = strrchr(req->path, '/');
    API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S(seg ? seg + 1 : ""));
    return false;
}

/* The body of PUT /api/v1/BatchTask/{Id} (a patch applies to the task as
 * it is); NULL answered. */
static json_t *read_update_body(api_exchange *x, const store_task *t)
{
    bool patch = x->body_repr == REPR_PATCH || x->body_repr == REPR_MERGE;
    json_t *current = patch ? carrier_batch_task(x, t) : NULL;
    json_t *body = carrier_read(x, current);
    json_decref(current);
    return body;
}

static void rest_update(api_exchange *x, const api_request *req)
{
    store_task t;
    if (!need_id(x, req) || !select_ok(x, req))
        return;
    store_err e = batch_task_read(x, x->route.id, &t);
    if (e != STORE_OK) {
        answer_read_failure(x, e, x->route.id, false);
        return;
    }
    json_t *info = read_update_body(x, &t);
    if (info != NULL)
        update(x, req, &t, info, false);
    json_decref(info);
}

static void rest_delete(api_exchange *x, const api_request *req)
{
    if (!need_id(x, req))
        return;
    store_err e = batch_delete(x, x->route.id);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else
        fail_task(x, e, x->route.id);
}

static void rest_stop(api_exchange *x, const api_request *req)
{
    if (need_id(x, req))
        stop(x, x->route.id, false);
}

/* POST /api/v1/BatchTask/Archive: the body (spooled and checked to start
 * like a tar by upload.c) stored as an input record for an import task,
 * answered with its BlobId as PUT Image answers one. Unbound, it is swept
 * --blob-grace after; a task started with it binds it. */
static void rest_archive(api_exchange *x, const api_request *req)
{
    const char *ct = req->header(req->conn, "Content-Type");
    bool named = ct != NULL && (strncasecmp(ct, "application/x-tar", 17) == 0 ||
                                strncasecmp(ct, "application/octet-stream", 24) == 0);
    store_content c = {.fd = upload_fd(x->upload),
                       .size = upload_size(x->upload),
                       .mime_type = named ? arena_strndup(x->arena, ct, strcspn(ct, " ;"))
                                          : "application/x-tar"};
    model_blob b;
    store_err e = store_batch_input_create(x->store, x->arena, &c, x->user.id, &b);
    upload_destroy(x->upload); /* the spool and the archive's place go before the answer */
    x->upload = NULL;
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    api_answer_carrier(x, 200, "int", json_integer(b.blob_id));
}

static const route_method list_methods[] = {
    ROUTE_ROW("GET", rest_list, BODY_NONE, false, true),
    ROUTE_ROW("POST", rest_start, BODY_JSON, true, true),
    {0},
};
static const route_method task_methods[] = {
    ROUTE_ROW("GET", rest_get, BODY_NONE, false, true),
    ROUTE_ROW("PUT", rest_update, BODY_JSON, true, true),
    ROUTE_ROW("DELETE", rest_delete, BODY_NONE, true, false),
    {0},
};
static const route_method stop_methods[] = {
    ROUTE_ROW("POST", rest_stop, BODY_NONE, true, true),
    {0},
};
/* Only admins start the jobs that read an archive: only they upload one. */
static const route_method archive_methods[] = {
    ROUTE_ROW("POST", rest_archive, BODY_ARCHIVE, true, true, .admin = true),
    {0},
};

const route_method *batch_route_methods(route_kind k)
{
    return k == ROUTE_BATCH_LIST      ? list_methods
           : k == ROUTE_BATCH         ? task_methods
           : k == ROUTE_BATCH_ARCHIVE ? archive_methods
                                      : stop_methods;
}

/* ---- the Batch agent ---- */

typedef void (*batch_fn)(api_exchange *x, const api_request *req, json_t *args);

typedef struct {
    const char *name;
    batch_fn fn;
    bool info; /* answers BatchTaskInfo(s): $select applies */
    route_method rm[2];
} batch_def;

/* Integer member name (required, > 0). */
static bool arg_id(api_exchange *x, json_t *args, const char *name, int32_t *out)
{
    bool present;
    if (!carrier_int(x, args, name, &present, out))
        return false;
    if (!present || *out == 0) {
        API_FAIL(x, CB_EBADREQ, present ? MSG_BAD_ID : MSG_ARG_MISSING,
                 MSG_S(present ? "0" : name));
        return false;
    }
    return true;
}

/* State member name (a BatchTaskState name or number). */
static bool arg_state(api_exchange *x, json_t *args, const char *name, int *out)
{
    json_t *v = carrier_get(args, name);
    if (v == NULL || json_is_null(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S(name));
        return false;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= STATE_ALL) {
        *out = json_integer_value(v) == STATE_ALL ? -1 : (int)json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && batch_state_parse(json_string_value(v), json_string_length(v), out))
        return true;
    API_FAIL(x, CB_EBADREQ, MSG_BATCH_BAD_STATE,
             MSG_S(json_is_string(v) ? json_string_value(v) : ""));
    return false;
}

/* Required string member name. */
static bool arg_name(api_exchange *x, json_t *args, const char *name, const char **out)
{
    if (!carrier_string(x, args, name, out))
        return false;
    if (*out == NULL)
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S(name));
    return *out != NULL;
}

/* Array member name of positive ids (AssociateIds, BatchTaskIds). */
static bool arg_ids(api_exchange *x, json_t *args, const char *name, json_t **out)
{
    json_t *v = carrier_get(args, name), *item;
    size_t i;
    if (v != NULL && json_is_object(v) && json_object_size(v) == 1) /* XML: <Ids><int>1</int>... */
        v = json_object_iter_value(json_object_iter(v));
    if (v == NULL || json_is_null(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S(name));
        return false;
    }
    if (!json_is_array(v))
        v = json_pack("[O]", v);
    else
        json_incref(v);
    json_array_foreach(v, i, item)
    {
        json_int_t n = json_is_integer(item)  ? json_integer_value(item)
                       : json_is_string(item) ? strtoll(json_string_value(item), NULL, 10)
                                              : -1;
        if (n < 0 || n > INT32_MAX) {
            API_FAIL(x, CB_EBADREQ, MSG_FIELD_NOT_INT, MSG_S(name), MSG_N(INT32_MAX));
            json_decref(v);
            return false;
        }
        json_array_set_new(v, i, json_integer(n));
    }
    *out = v;
    return true;
}

static void a_get(api_exchange *x, const api_request *req, json_t *args)
{
    int32_t id;
    store_task t;
    if (!arg_id(x, args, "Id", &id))
        return;
    store_err e = batch_task_read(x, id, &t);
    if (e == STORE_OK)
        answer_task(x, req, &t);
    else if (e == STORE_ABSENT)
        api_answer_carrier(x, 200, "BatchTaskInfo", json_null());
    else
        api_fail_store(x, e, NULL);
}

/* The tasks of each associate of ids matching name and state, in one list. */
static void answer_by_associates(api_exchange *x, const api_request *req, json_t *ids,
                                 const char *name, int state)
{
    json_t *arr = json_array(), *item;
    size_t i;
    bool ok = true;
    json_array_foreach(ids, i, item)
    {
        store_task_query q = {name, state, (int32_t)json_integer_value(item)};
        store_task *ts = NULL;
        size_t n = 0;
        if (!is_admin(x) && q.associate != x->user.id)
            continue;
        store_err e = store_task_list(x->store, x->arena, &q, &ts, &n);
        if (e != STORE_OK) {
            api_fail_store(x, e, NULL);
            ok = false;
            break;
        }
        for (size_t k = 0; k < n; k++)
            json_array_append_new(arr, task_item(x, req, &ts[k]));
    }
    json_decref(ids);
    if (ok)
        api_answer_carrier(x, 200, "ArrayOfBatchTaskInfo", arr);
    else
        json_decref(arr);
}

static void a_by_associates(api_exchange *x, const api_request *req, json_t *args)
{
    json_t *ids;
    if (arg_ids(x, args, "AssociateIds", &ids))
        answer_by_associates(x, req, ids, NULL, -1);
}

static void a_by_name_and_associates(api_exchange *x, const api_request *req, json_t *args)
{
    json_t *ids;
    const char *name;
    if (arg_name(x, args, "Name", &name) && arg_ids(x, args, "AssociateIds", &ids))
        answer_by_associates(x, req, ids, name, -1);
}

static void a_by_associates_and_state(api_exchange *x, const api_request *req, json_t *args)
{
    json_t *ids;
    int state;
    if (arg_state(x, args, "State", &state) && arg_ids(x, args, "AssociateIds", &ids))
        answer_by_associates(x, req, ids, NULL, state);
}

static void a_start(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int64_t id = start(x, carrier_get(args, "BatchTaskInfo"));
    if (id > 0)
        answer_id(x, id);
}

static void a_stop(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int32_t id;
    if (arg_id(x, args, "Id", &id))
        stop(x, id, true);
}

static void a_by_state(api_exchange *x, const api_request *req, json_t *args)
{
    int state;
    if (arg_state(x, args, "State", &state))
        answer_query(x, req, (store_task_query){NULL, state, -1});
}

/* UpdateBatchTask: BatchTaskInfo.Id names the task; null when it is not
 * the caller's (or none). */
static void a_update(api_exchange *x, const api_request *req, json_t *args)
{
    json_t *info = carrier_get(args, "BatchTaskInfo");
    int32_t id;
    store_task t;
    if (info == NULL || !json_is_object(info)) {
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S("BatchTaskInfo"));
        return;
    }
    if (!arg_id(x, info, "Id", &id))
        return;
    store_err e = batch_task_read(x, id, &t);
    if (e == STORE_OK)
        update(x, req, &t, info, true);
    else
        answer_read_failure(x, e, id, true);
}

static void a_by_name_and_state(api_exchange *x, const api_request *req, json_t *args)
{
    int state;
    const char *name;
    const char *field = carrier_get(args, "TaskName") ? "TaskName" : "Name";
    if (arg_name(x, args, field, &name) && arg_state(x, args, "State", &state))
        answer_query(x, req, (store_task_query){name, state, -1});
}

static void a_all_by_name(api_exchange *x, const api_request *req, json_t *args)
{
    const char *name;
    if (arg_name(x, args, "TaskName", &name))
        answer_query(x, req, (store_task_query){name, -1, -1});
}

/* System tasks are those of AssociateId 0: crmblob's jobs are always a
 * user's, so these lists are empty unless such a task exists. */
static void a_system_by_name(api_exchange *x, const api_request *req, json_t *args)
{
    const char *name;
    int state = -1;
    if (!arg_name(x, args, "TaskName", &name))
        return;
    if (carrier_get(args, "State") != NULL && !arg_state(x, args, "State", &state))
        return;
    if (!is_admin(x)) { /* not the caller's own: nothing to show */
        api_answer_carrier(x, 200, "ArrayOfBatchTaskInfo", json_array());
        return;
    }
    answer_query(x, req, (store_task_query){name, state, 0});
}

/* One deletion of the agent's: absent tasks are skipped (nothing to do). */
static bool delete_one(api_exchange *x, int64_t id)
{
    store_err e = batch_delete(x, id);
    if (e != STORE_OK && e != STORE_ABSENT) {
        api_fail_store(x, e, NULL);
        return false;
    }
    return true;
}

static void a_delete(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int32_t id;
    if (arg_id(x, args, "BatchTaskId", &id) && delete_one(x, id))
        api_answer_empty(x, 204);
}

static void a_delete_many(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    json_t *ids, *item;
    size_t i;
    bool ok = true;
    if (!arg_ids(x, args, "BatchTaskIds", &ids))
        return;
    json_array_foreach(ids, i, item)
    {
        if (ok)
            ok = delete_one(x, json_integer_value(item));
    }
    json_decref(ids);
    if (ok)
        api_answer_empty(x, 204);
}

static void batch_call(api_exchange *x, const api_request *req);

#define B_ROW(body, writes, carrier)                                                               \
    {                                                                                              \
        ROUTE_ROW("POST", batch_call, body, writes, carrier),                                      \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
#define B_READ(name, fn)                                                                           \
    {                                                                                              \
        name, fn, true, B_ROW(BODY_JSON, false, true)                                              \
    }
#define B_WRITE(name, fn, carrier, info)                                                           \
    {                                                                                              \
        name, fn, info, B_ROW(BODY_JSON, true, carrier)                                            \
    }

static const batch_def batch_agents[] = {
    B_READ("GetBatchTaskInfo", a_get),
    B_READ("GetBatchTaskInfosByAssociates", a_by_associates),
    B_WRITE("StartBatchJob", a_start, true, false),
    B_WRITE("StopBatchJob", a_stop, true, false),
    B_READ("GetBatchTaskInfosByState", a_by_state),
    B_WRITE("UpdateBatchTask", a_update, true, true),
    B_READ("GetBatchTaskInfosByNameAndState", a_by_name_and_state),
    B_READ("GetBatchTaskInfosByNameAndAssociates", a_by_name_and_associates),
    B_READ("GetBatchTaskInfosByAssociatesAndState", a_by_associates_and_state),
    B_WRITE("DeleteBatchTasks", a_delete_many, false, false),
    B_WRITE("DeleteBatchTask", a_delete, false, false),
    B_READ("GetAllBatchTaskInfosByName", a_all_by_name),
    B_READ("GetAllBatchTaskInfosByNameAndState", a_by_name_and_state),
    B_READ("GetSystemBatchTaskInfosByName", a_system_by_name),
    B_READ("GetSystemBatchTaskInfosByNameAndState", a_system_by_name),
};
#define N_BATCH (sizeof(batch_agents) / sizeof(batch_agents[0]))

const route_method *batch_agent_find(const char *name, size_t n, int *index)
{
    for (size_t i = 0; i < N_BATCH; i++)
        if (text_ieq(name, n, batch_agents[i].name)) {
            *index = (int)i;
            return batch_agents[i].rm;
        }
    return NULL;
}

size_t batch_agent_count(void)
{
    return N_BATCH;
}

const char *batch_agent_name(int index)
{
    return batch_agents[index].name;
}

const route_method *batch_agent_methods(int index)
{
    return batch_agents[index].rm;
}

static void batch_call(api_exchange *x, const api_request *req)
{
    const batch_def *d = &batch_agents[x->route.agent];
    if (x->body_repr == REPR_PATCH || x->body_repr == REPR_MERGE) {
        API_FAIL(x, CB_EUNSUPPORTED, MSG_UNSUPPORTED_TYPE,
                 MSG_S(req->header(req->conn, "Content-Type")));
        return;
    }
    if (d->info && !select_ok(x, req))
        return;
    json_t *args = carrier_read(x, NULL);
    if (args == NULL)
        return;
    d->fn(x, req, args);
    json_decref(args);
}
