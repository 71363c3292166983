/*
 * entity.c — the minimal entity endpoints of SPEC §1:
 * POST /api/v1/{E}, GET/PUT/DELETE /api/v1/{E}/{id}.
 *
 * A PUT changes only the fields present in the body (a patch body may
 * also remove one: it becomes "" or 0); an id in the body must be 0 or the
 * id of the path. Answers carry ETag (the entity's version) and
 * Last-Modified, and honour the conditional headers.
 *
 * A PUT reads the entity, applies the body and writes the whole on the
 * version it read: a write in between is never overwritten unseen; the
 * PUT is then applied again to the entity as it has become
 * (cond_write_again), or, with If-Match, answered 412.
 */
#include <stdio.h>

#include "api/api_int.h"

/* Applies the body's fields to e; false when answered with 400. */
static bool read_fields(api_exchange *x, json_t *body, model_entity_t *e)
{
    const model_entity_def *def = model_entity(e->kind);
    for (int i = 0; i < def->nfields; i++) {
        const model_field *f = &def->fields[i];
        if (f->type == MODEL_FT_STRING) {
            const char *s;
            if (!carrier_string(x, body, f->name, &s))
                return false;
            if (s != NULL)
                e->v[i].s = s;
        } else {
            bool present;
            int32_t v;
            if (!carrier_int(x, body, f->name, &present, &v))
                return false;
            if (present)
                e->v[i].i = v;
        }
    }
    return true;
}

static void empty_entity(model_entity_t *e, model_kind k)
{
    *e = (model_entity_t){.kind = k};
    const model_entity_def *def = model_entity(k);
    for (int i = 0; i < def->nfields; i++)
        e->v[i].s = "";
}

/* What a write of entity e from the body addressed (its id, its references). */
#define WRITTEN(e) (&(api_subject){.on = API_ON_ENTITY_WRITE, .kind = (e).kind, .entity = &(e)})

static cond_state entity_cond(api_exchange *x, const model_entity_t *e)
{
    return (cond_state){arena_printf(x->arena, "\"e%lld\"", (long long)e->version),
                        e->updated_ms, true};
}

static void answer_entity(api_exchange *x, int status, const model_entity_t *e)
{
    if (status == 201) {
        api_add_header(x, "Location", arena_printf(x->arena, "/api/v1/%s/%d",
                                                   model_entity(e->kind)->name, e->id));
    }
    cond_state c = entity_cond(x, e);
    cond_headers(x, &c);
    api_answer_carrier(x, status, model_entity(e->kind)->name, carrier_entity(e));
}

void entity_create(api_exchange *x, const api_request *req)
{
    (void)req;
    model_entity_t e;
    bool has_id;
    empty_entity(&e, x->route.ent);
    json_t *current = carrier_entity(&e);
    json_t *body = carrier_read(x, current);
    json_decref(current);
    if (body == NULL)
        return;
    if (carrier_int(x, body, model_entity(e.kind)->id_field, &has_id, &e.id) &&
        read_fields(x, body, &e)) {
        store_err err = store_entity_create(x->store, &e);
        if (err == STORE_OK)
            answer_entity(x, 201, &e);
        else
            api_fail_store(x, err, WRITTEN(e));
    }
    json_decref(body);
}

void entity_get(api_exchange *x, const api_request *req)
{
    model_entity_t e;
    store_err err = store_entity_get(x->store, x->arena, x->route.ent, x->route.id, &e);
    cond_state c;
    if (err != STORE_OK) {
        api_fail_store(x, err, NULL);
        return;
    }
    c = entity_cond(x, &e);
    if (!cond_not_modified(x, req, &c))
        answer_entity(x, 200, &e);
}

/* The entity as it is, checked against the request's preconditions; false
 * answered (404, 412). x->expect is its version, for the write that follows. */
static bool load_for_write(api_exchange *x, const api_request *req, model_entity_t *e)
{
    store_err err = store_entity_get(x->store, x->arena, x->route.ent, x->route.id, e);
    if (err != STORE_OK) {
        api_fail_store(x, err, NULL);
        return false;
    }
    cond_state c = entity_cond(x, e);
    if (!cond_write_allowed(x, req, &c))
        return false;
    x->expect = e->version;
    return true;
}

static bool body_id_matches(api_exchange *x, json_t *body)
{
    bool has_id;
    int32_t id = 0;
    const char *id_field = model_entity(x->route.ent)->id_field;
    if (!carrier_int(x, body, id_field, &has_id, &id))
        return false;
    if (!has_id || id == 0 || id == x->route.id)
        return true;
    API_FAIL(x, CB_EBADREQ, MSG_ID_MISMATCH, MSG_S(id_field), MSG_ID(id), MSG_ID(x->route.id));
    return false;
}

/* One attempt at a PUT: the entity read, the body applied, the whole
 * written on the version read. The write's outcome, unanswered; STORE_OK
 * too when answered here (404, 412, 400). */
static store_err put_once(api_exchange *x, const api_request *req, model_entity_t *e)
{
    store_err err = STORE_OK;
    if (!load_for_write(x, req, e))
        return STORE_OK;
    json_t *current = carrier_entity(e);
    json_t *body = carrier_read(x, current);
    json_decref(current);
    if (body != NULL && body_id_matches(x, body) && read_fields(x, body, e))
        err = store_entity_update(x->store, e, x->expect);
    json_decref(body);
    return err;
}

void entity_put(api_exchange *x, const api_request *req)
{
    model_entity_t e;
    store_err err;
    int attempts = 0;
    do
        err = put_once(x, req, &e);
    while (cond_write_again(req, &err, ++attempts));
    if (x->answered)
        return;
    if (err == STORE_OK)
        answer_entity(x, 200, &e);
    else
        api_fail_store(x, err, WRITTEN(e));
}

void entity_delete(api_exchange *x, const api_request *req)
{
    model_entity_t e;
    x->expect = STORE_ANY;
    if (cond_is_conditional(req) && !load_for_write(x, req, &e))
        return;
    store_err err = store_entity_delete(x->store, x->route.ent, x->route.id, x->expect);
    if (err == STORE_OK)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, err, NULL);
}
