/*
 * answer.c — builds the exchange's single answer: carriers as JSON, raw
 * bytes, and the SPEC §4 error carrier for every status >= 400.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/log.h"

void api_add_header(api_exchange *x, const char *name, const char *value)
{
    assert(x->resp.nheaders < API_MAX_HEADERS);
    x->resp.headers[x->resp.nheaders++] = (api_header){name, value};
}

static bool has_header(const api_exchange *x, const char *name)
{
    for (size_t i = 0; i < x->resp.nheaders; i++)
        if (strcasecmp(x->resp.headers[i].name, name) == 0)
            return true;
    return false;
}

static void set_status(api_exchange *x, int status)
{
    assert(!x->answered);
    x->answered = true;
    x->resp.status = status;
    cors_answer_headers(x);
}

void api_answer_bytes(api_exchange *x, int status, const char *type, void *owned, size_t len)
{
    api_answer_lent(x, status, type, owned, len, (api_body_owner){free, owned});
}

void api_answer_lent(api_exchange *x, int status, const char *type, const void *body, size_t len,
                     api_body_owner owner)
{
    set_status(x, status);
    x->resp.content_type = type;
    x->resp.body = body;
    x->resp.body_len = len;
    x->resp.owner = owner;
}

void api_answer_fd(api_exchange *x, int status, const char *type, int fd, int64_t off, size_t len,
                   api_body_owner owner)
{
    assert(fd >= 0 && off >= 0);
    api_answer_lent(x, status, type, NULL, len, owner);
    x->resp.from_fd = true;
    x->resp.body_fd = fd;
    x->resp.body_off = off;
}

void api_answer_pull(api_exchange *x, int status, const char *type, api_pull_fn pull, void *ctx,
                     uint64_t len, api_body_owner owner)
{
    assert(pull != NULL);
    api_answer_lent(x, status, type, NULL, (size_t)len, owner);
    x->resp.from_pull = true;
    x->resp.pull = pull;
    x->resp.pull_ctx = ctx;
}

void api_answer_empty(api_exchange *x, int status)
{
    set_status(x, status);
}

void api_answer_withdraw(api_exchange *x, size_t headers_before)
{
    assert(x->answered && headers_before <= x->resp.nheaders);
    if (x->resp.owner.release != NULL)
        x->resp.owner.release(x->resp.owner.cls);
    x->resp.owner = (api_body_owner){NULL, NULL};
    x->resp.status = 0;
    x->resp.content_type = NULL;
    x->resp.body = NULL;
    x->resp.body_len = 0;
    x->resp.from_fd = false;
    x->resp.from_pull = false;
    x->resp.pull = NULL;
    x->resp.pull_ctx = NULL;
    x->resp.nheaders = headers_before;
    x->answered = false;
}

void api_fail(api_exchange *x, cb_err e, msg_id id, const msg_arg *args, int nargs)
{
    if (x->answered)
        return;
    char *text = msg_format(x->arena, &x->locale, id, args, nargs);
    json_t *j = json_pack("{s:b, s:s, s:s, s:s}", "Error", 1, "ErrorType", err_type(e),
                          "ErrorMessage", text, "ErrorSource", "crmblob");
    if (e == CB_EUNAUTH)
        api_add_header(x, "WWW-Authenticate",
                       x->from_script ? AUTH_COOKIE_CHALLENGE : auth_challenge(x->api->auth));
    if (e == CB_EUNAVAILABLE && !has_header(x, "Retry-After")) /* unless a caller knows better */
        api_add_header(x, "Retry-After", arena_printf(x->arena, "%d", API_RETRY_UNAVAILABLE_S));
    if (e == CB_EINTERNAL)
        log_error("%s %s: %s", x->method, x->path, text);
    api_answer_carrier(x, err_status(e), "Error", j);
}

void api_fail_auth(api_exchange *x, cb_err e, const auth_throttle *t)
{
    if (e == CB_ETOOMANY) {
        int secs = t->retry_after_s > 0 ? t->retry_after_s : 1;
        api_add_header(x, "Retry-After", arena_printf(x->arena, "%d", secs));
        API_FAIL(x, e, t->account_locked ? MSG_ACCOUNT_LOCKED : MSG_TOO_MANY_FAILURES, MSG_N(secs));
    } else if (e == CB_EUNAUTH) {
        API_FAIL0(x, e, x->rm != NULL && x->rm->signs_in ? MSG_LOGIN_FAILED : MSG_UNAUTHORIZED);
    } else {
        API_FAIL0(x, e, e == CB_EUNAVAILABLE ? MSG_UNAVAILABLE : MSG_INTERNAL);
    }
}

/* The status of a store error whose subject has no answer of its own:
 * INVALID and CONFLICT name something only a subject can tell (a
 * reference, a taken id, a linked BLOB), so without one they are ours. */
static cb_err store_status(store_err e)
{
    switch (e) {
    case STORE_ABSENT:
        return CB_ENOTFOUND;
    case STORE_PRECONDITION:
        return CB_EPRECOND;
    case STORE_TOO_LARGE:
        return CB_ETOOLARGE;
    case STORE_UNAVAILABLE:
        return CB_EUNAVAILABLE;
    case STORE_NO_SPACE:
        return CB_ENOSPACE;
    default: /* CONFLICT, INVALID, CORRUPT, INTERNAL, PENDING */
        return CB_EINTERNAL;
    }
}

/* The answer of the entity written from the body: its id is taken, or a
 * reference field names nothing (the first one set is named). */
static bool fail_entity_write(api_exchange *x, store_err e, const model_entity_t *ent)
{
    const model_entity_def *def = model_entity(ent->kind);
    if (e == STORE_CONFLICT) {
        API_FAIL(x, CB_ECONFLICT, MSG_ID_CONFLICT, MSG_S(def->name), MSG_ID(ent->id));
        return true;
    }
    for (int i = 0; e == STORE_INVALID && i < def->nfields; i++) {
        const model_field *f = &def->fields[i];
        if (f->type == MODEL_FT_INT && f->ref >= 0 && ent->v[i].i != 0) {
            API_FAIL(x, CB_EBADREQ, MSG_REF_NOT_FOUND, MSG_S(f->name),
                     MSG_S(model_entity((model_kind)f->ref)->name), MSG_ID(ent->v[i].i));
            return true;
        }
    }
    return false;
}

/* The answer of a batch task that is not there (404), or whose parameters
 * an update may no longer change (400 naming its state). */
static bool fail_batch_task(api_exchange *x, store_err e, const api_subject *what)
{
    if (e == STORE_ABSENT)
        API_FAIL(x, CB_ENOTFOUND, MSG_BATCH_NOT_FOUND, MSG_ID(what->task_id));
    else if (e == STORE_CONFLICT && what->on == API_ON_BATCH_EDIT)
        API_FAIL(x, CB_EBADREQ, MSG_BATCH_PARAMS_FIXED, MSG_ID(what->task_id),
                 MSG_S(what->state != NULL ? what->state : ""));
    else
        return false;
    return true;
}

/* The answer e has for subject what, or false when it has none of its own. */
static bool fail_subject(api_exchange *x, store_err e, const api_subject *what)
{
    const char *name = model_entity(what->kind)->name;
    switch (what->on) {
    case API_ON_ENTITY_WRITE:
        return fail_entity_write(x, e, what->entity);
    case API_ON_ARG_ENTITY: /* a write's target that is not there is the request's fault */
        if (e != STORE_ABSENT)
            return false;
        API_FAIL(x, CB_EBADREQ, MSG_ENTITY_NOT_FOUND, MSG_S(name), MSG_ID(what->id));
        return true;
    case API_ON_ARG_BLOB:
        if (e != STORE_ABSENT)
            return false;
        API_FAIL(x, CB_EBADREQ, MSG_BLOB_NOT_FOUND, MSG_ID(what->id));
        return true;
    case API_ON_LINK:
        if (e == STORE_ABSENT)
            API_FAIL(x, CB_EBADREQ, MSG_ENTITY_NOT_FOUND, MSG_S(name), MSG_ID(what->id));
        else if (e == STORE_INVALID)
            API_FAIL(x, CB_EBADREQ, MSG_BLOB_NOT_FOUND, MSG_ID(what->blob_id));
        else if (e == STORE_CONFLICT)
            API_FAIL(x, CB_ECONFLICT, MSG_BLOB_IN_USE, MSG_ID(what->blob_id));
        return e == STORE_ABSENT || e == STORE_INVALID || e == STORE_CONFLICT;
    case API_ON_LIBRARY:
        if (e != STORE_ABSENT)
            return false;
        API_FAIL(x, CB_ENOTFOUND, MSG_BLOB_NOT_FOUND, MSG_ID(what->id));
        return true;
    case API_ON_BATCH_TASK:
    case API_ON_BATCH_EDIT:
        return fail_batch_task(x, e, what);
    case API_ON_BATCH_INPUT:
        if (e != STORE_ABSENT && e != STORE_CONFLICT)
            return false;
        API_FAIL(x, CB_EBADREQ, MSG_BATCH_NOT_AN_ARCHIVE, MSG_N(what->blob_id));
        return true;
    default:
        return false;
    }
}

void api_fail_store(api_exchange *x, store_err e, const api_subject *what)
{
    if (what != NULL && fail_subject(x, e, what))
        return;
    if (e == STORE_CORRUPT) /* stored bytes that do not decode (damaged, another key) */
        API_FAIL0(x, CB_EINTERNAL, MSG_IMAGE_UNREADABLE);
    else
        api_fail_below(x, store_status(e));
}

void api_fail_below(api_exchange *x, cb_err status)
{
    const model_entity_def *def = model_entity(x->route.ent);
    switch (status) {
    case CB_ENOTFOUND:
        API_FAIL(x, status, MSG_ENTITY_NOT_FOUND, MSG_S(def->name), MSG_ID(x->route.id));
        break;
    case CB_EUNAVAILABLE:
        API_FAIL0(x, status, MSG_UNAVAILABLE);
        break;
    case CB_ENOSPACE:
        API_FAIL0(x, status, MSG_NO_SPACE);
        break;
    case CB_EPRECOND:
        API_FAIL(x, status, MSG_PRECONDITION_FAILED, MSG_S(def->name), MSG_ID(x->route.id));
        break;
    case CB_ETOOLARGE:
        API_FAIL(x, status, MSG_BODY_TOO_LARGE, MSG_N(x->api->cfg.image_max));
        break;
    default:
        API_FAIL0(x, CB_EINTERNAL, MSG_INTERNAL);
        break;
    }
}

void api_fail_image(api_exchange *x, cb_err e, const char *reason, bool uploaded)
{
    const char *why = arena_strdup(x->arena, reason != NULL ? reason : "");
    switch (e) {
    case CB_EWORK:
        API_FAIL(x, e, MSG_IMAGE_TOO_COSTLY, MSG_S(why));
        break;
    case CB_EUNAVAILABLE:
        API_FAIL0(x, e, MSG_IMAGE_WORKER_STOPPED);
        break;
    default:
        if (e == CB_EBADREQ && uploaded) /* the client's picture */
            API_FAIL(x, e, MSG_IMAGE_INVALID, MSG_S(why));
        else /* a stored picture the pipeline refuses, or a failure of ours */
            API_FAIL0(x, CB_EINTERNAL, uploaded ? MSG_UPLOAD_FAILED : MSG_IMAGE_UNREADABLE);
        break;
    }
}
