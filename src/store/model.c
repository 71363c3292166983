/*
 * model.c — the entity descriptor table and small model helpers.
 */
#include "store/model.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include "core/text.h"

static const model_entity_def entity_defs[MODEL_KIND_COUNT] = {
    [MODEL_PERSON] = {"Person", "person", "PersonId", MODEL_CT_PERSONPHOTO, 3,
                      {{"Firstname", "firstname", MODEL_FT_STRING, -1},
                       {"Lastname", "lastname", MODEL_FT_STRING, -1},
                       {"ContactId", "contact_id", MODEL_FT_INT, MODEL_CONTACT}},
                      2},
    [MODEL_CONTACT] = {"Contact", "contact", "ContactId", MODEL_CT_PHOTO, 1,
                       {{"Name", "name", MODEL_FT_STRING, -1}},
                       1},
    [MODEL_PRODUCT] = {"Product", "product", "ProductId", MODEL_CT_PHOTO, 2,
                       {{"Name", "name", MODEL_FT_STRING, -1},
                        {"ERPProductKey", "erp_product_key", MODEL_FT_STRING, -1}},
                       1},
    [MODEL_PROJECT] = {"Project", "project", "ProjectId", MODEL_CT_PHOTO, 2,
                       {{"Name", "name", MODEL_FT_STRING, -1},
                        {"ProjectNumber", "project_number", MODEL_FT_STRING, -1}},
                       1},
};

const model_entity_def *model_entity(model_kind k)
{
    assert(k >= 0 && k < MODEL_KIND_COUNT);
    return &entity_defs[k];
}

int model_kind_from_name(const char *name, size_t len)
{
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        if (text_ieq(name, len, entity_defs[k].name))
            return k;
    return -1;
}

static const char *const role_names[] = {"viewer", "editor", "admin"};

const char *model_role_name(model_role r)
{
    assert(r >= MODEL_ROLE_VIEWER && r <= MODEL_ROLE_ADMIN);
    return role_names[r];
}

bool model_role_parse(const char *s, model_role *out)
{
    for (int r = MODEL_ROLE_VIEWER; r <= MODEL_ROLE_ADMIN; r++) {
        if (strcasecmp(s, role_names[r]) == 0) {
            *out = (model_role)r;
            return true;
        }
    }
    return false;
}

void model_blob_empty(model_blob *b)
{
    *b = (model_blob){0};
    b->description = b->extra_info = b->mime_type = b->conceptual_type = "";
    b->created_ms = b->updated_ms = INT64_MIN;
}
