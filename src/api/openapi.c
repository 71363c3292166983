/*
 * openapi.c — GET /api/openapi.json: crmblob's own API description
 * (OpenAPI 2.0), compiled in from src/api/openapi.json by
 * scripts/embed_text.sh.
 *
 * The document is a source file kept next to the router; the unit test
 * test_router.c checks its paths and methods against the route table
 * (api_route_walk) both ways, and tests/http/test_openapi.py its carriers
 * against the SuperOffice reference. Needs no credentials (its row says
 * `public`).
 */
#include "api/api_int.h"

extern const char openapi_doc[];
extern const size_t openapi_doc_len;

const char *api_openapi_document(size_t *len)
{
    *len = openapi_doc_len;
    return openapi_doc;
}

void openapi_get(api_exchange *x, const api_request *req)
{
    (void)req;
    /* the document changes only with the binary: revalidate, never stale */
    api_add_header(x, "Cache-Control", "no-cache");
    api_answer_lent(x, 200, "application/json; charset=utf-8", openapi_doc, openapi_doc_len,
                    (api_body_owner){0});
}
