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
 * A task's fields are written by its job only: UpdateBatchTask is refused
 * (400) — stop the task or delete it.
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

static void fail_absent(api_exchange *x, int64_t id)
{
    API_FAIL(x, CB_ENOTFOUND, MSG_BATCH_NOT_FOUND, MSG_ID(id));
}

/* ---- answers ---- */

static void answer_task(api_exchange *x, const api_request *req, const store_task *t)
{
    json_t *j = carrier_batch_task(x, t);
    const char *select = req->query(req->conn, "$select");
    if (select != NULL && *select != '\0' && (j = carrier_select(x, j, select)) == NULL)
        return;
    api_answer_carrier(x, 200, "BatchTaskInfo", j);
}

static void answer_tasks(api_exchange *x, const api_request *req, const store_task *ts, size_t n,
                         bool odata)
{
    const char *select = req->query(req->conn, "$select");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!visible(x, &ts[i]))
            continue;
        json_t *j = carrier_batch_task(x, &ts[i]);
        if (select != NULL && *select != '\0' && (j = carrier_select(x, j, select)) == NULL) {
            json_decref(arr);
            return;
        }
        json_array_append_new(arr, j);
    }
    if (odata)
        api_answer_carrier(x, 200, "ODataSlimResponse",
                           json_pack("{s:s, s:o}", "odata.metadata", "", "value", arr));
    else
        api_answer_carrier(x, 200, "ArrayOfBatchTaskInfo", arr);
}

/* The caller's tasks matching q (an admin's: everyone's). */
static void answer_query(api_exchange *x, const api_request *req, store_task_query q, bool odata)
{
    store_task *ts = NULL;
    size_t n = 0;
    if (!is_admin(x))
        q.associate = x->user.id;
    store_err e = store_task_list(x->store, x->arena, &q, &ts, &n);
    if (e != STORE_OK)
        api_fail_store(x, e, NULL);
    else
        answer_tasks(x, req, ts, n, odata);
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
    if (t.input_blob > 0 && (e == STORE_ABSENT || e == STORE_CONFLICT)) {
        API_FAIL(x, CB_EBADREQ, MSG_BATCH_NOT_AN_ARCHIVE, MSG_N(t.input_blob));
        return 0;
    }
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
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
    else if (e == STORE_ABSENT)
        fail_absent(x, id);
    else
        api_fail_store(x, e, NULL);
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

/* ---- REST: /api/v1/BatchTask[/{id}|/{state}][/Stop] ---- */

static void rest_list(api_exchange *x, const api_request *req)
{
    answer_query(x, req, (store_task_query){NULL, -1, -1}, true);
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
    if (x->route.id == 0) { /* /BatchTask/{state} */
        answer_query(x, req, (store_task_query){NULL, x->route.batch_state, -1}, false);
        return;
    }
    store_task t;
    store_err e = batch_task_read(x, x->route.id, &t);
    if (e == STORE_OK)
        answer_task(x, req, &t);
    else if (e == STORE_ABSENT)
        fail_absent(x, x->route.id);
    else
        api_fail_store(x, e, NULL);
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

static void rest_update(api_exchange *x, const api_request *req)
{
    if (need_id(x, req))
        API_FAIL0(x, CB_EBADREQ, MSG_BATCH_READ_ONLY);
}

static void rest_delete(api_exchange *x, const api_request *req)
{
    if (!need_id(x, req))
        return;
    store_err e = batch_delete(x, x->route.id);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else if (e == STORE_ABSENT)
        fail_absent(x, x->route.id);
    else
        api_fail_store(x, e, NULL);
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
            json_array_append_new(arr, carrier_batch_task(x, &ts[k]));
    }
    json_decref(ids);
    if (ok)
        api_answer_carrier(x, 200, "ArrayOfBatchTaskInfo", arr);
    else
        json_decref(arr);
    (void)req;
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
        answer_query(x, req, (store_task_query){NULL, state, -1}, false);
}

static void a_update(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    (void)args;
    API_FAIL0(x, CB_EBADREQ, MSG_BATCH_READ_ONLY);
}

static void a_by_name_and_state(api_exchange *x, const api_request *req, json_t *args)
{
    int state;
    const char *name;
    const char *field = carrier_get(args, "TaskName") ? "TaskName" : "Name";
    if (arg_name(x, args, field, &name) && arg_state(x, args, "State", &state))
        answer_query(x, req, (store_task_query){name, state, -1}, false);
}

static void a_all_by_name(api_exchange *x, const api_request *req, json_t *args)
{
    const char *name;
    if (arg_name(x, args, "TaskName", &name))
        answer_query(x, req, (store_task_query){name, -1, -1}, false);
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
    answer_query(x, req, (store_task_query){name, state, 0}, false);
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
        name, fn, B_ROW(BODY_JSON, false, true)                                                    \
    }
#define B_WRITE(name, fn, carrier)                                                                 \
    {                                                                                              \
        name, fn, B_ROW(BODY_JSON, true, carrier)                                                  \
    }

static const batch_def batch_agents[] = {
    B_READ("GetBatchTaskInfo", a_get),
    B_READ("GetBatchTaskInfosByAssociates", a_by_associates),
    B_WRITE("StartBatchJob", a_start, true),
    B_WRITE("StopBatchJob", a_stop, true),
    B_READ("GetBatchTaskInfosByState", a_by_state),
    B_WRITE("UpdateBatchTask", a_update, true),
    B_READ("GetBatchTaskInfosByNameAndState", a_by_name_and_state),
    B_READ("GetBatchTaskInfosByNameAndAssociates", a_by_name_and_associates),
    B_READ("GetBatchTaskInfosByAssociatesAndState", a_by_associates_and_state),
    B_WRITE("DeleteBatchTasks", a_delete_many, false),
    B_WRITE("DeleteBatchTask", a_delete, false),
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
    json_t *args = carrier_read(x, NULL);
    if (args == NULL)
        return;
    d->fn(x, req, args);
    json_decref(args);
}
