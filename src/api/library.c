/*
 * library.c — the project image library over REST (crmblob's own routes;
 * the reference has only the agent's SaveProjectImage):
 *   GET    /api/v1/ProjectImageLibrary         its records, as a list
 *   GET    /api/v1/ProjectImageLibrary/{id}    a picture's bytes
 *   DELETE /api/v1/ProjectImageLibrary/{id}    a picture removed
 * A picture joins through the agent's SaveProjectImage and becomes a
 * project's image through ChangeProjectImage (agent.c), which gives the
 * project a copy. A record not in the library is 404 here, whatever else
 * it is.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"

/* Records in one answer; odata.nextLink asks for the ones after them. */
#define LIBRARY_PAGE 200

static api_subject library_subject(const api_exchange *x)
{
    return (api_subject){.on = API_ON_LIBRARY, .id = x->route.id};
}

/* ?after=N (absent: 0), the BlobId the page starts after. */
static bool after_param(api_exchange *x, const api_request *req, int32_t *after)
{
    const char *v = req->query(req->conn, "after");
    *after = 0;
    if (v == NULL || (text_parse_i32(v, strlen(v), after) && *after >= 0))
        return true;
    API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S(arena_strdup(x->arena, v)));
    return false;
}

void library_list(api_exchange *x, const api_request *req)
{
    model_blob *recs = NULL;
    size_t n = 0;
    bool more = false;
    int32_t after;
    if (!after_param(x, req, &after))
        return;
    store_err e = store_library_list(x->store, x->arena, after, LIBRARY_PAGE, &recs, &n, &more);
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    json_t *value = json_array(), *j = json_object();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(value, carrier_blob(x, &recs[i]));
    json_object_set_new(j, "odata.metadata", json_string("/api/v1/$metadata#ProjectImageLibrary"));
    json_object_set_new(j, "value", value);
    if (more)
        json_object_set_new(
            j, "odata.nextLink",
            json_string(arena_printf(x->arena, "/api/v1/ProjectImageLibrary?after=%d",
                                     (int)recs[n - 1].blob_id)));
    api_answer_carrier(x, 200, "ODataSlimResponse", j);
}

void library_get(api_exchange *x, const api_request *req)
{
    (void)req;
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    api_subject what = library_subject(x);
    store_err e = store_library_has(x->store, x->route.id);
    if (e == STORE_OK)
        e = store_blob_content_get(x->store, x->arena, x->route.id, &b, &bytes, &len);
    if (e != STORE_OK) {
        free(bytes);
        api_fail_store(x, e, &what);
        return;
    }
    api_answer_bytes(x, 200, arena_strdup(x->arena, b.mime_type), bytes, len);
}

void library_delete(api_exchange *x, const api_request *req)
{
    (void)req;
    api_subject what = library_subject(x);
    store_err e = store_library_delete(x->store, x->route.id);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, e, &what);
}
