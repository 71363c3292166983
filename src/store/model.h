/*
 * model.h — crmblob's data model: entity kinds, their minimal carriers
 * (SPEC §1), users and BLOB records (SPEC §3).
 *
 * The entity descriptors are the single source of truth for entity field
 * names, types and limits: the store derives its tables from them and the
 * API its carriers. Strings in the value structs point into the caller's
 * arena (or are caller-owned) and are never NULL once filled by the store.
 */
#ifndef CB_MODEL_H
#define CB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MODEL_PERSON,
    MODEL_CONTACT,
    MODEL_PRODUCT,
    MODEL_PROJECT,
    MODEL_KIND_COUNT
} model_kind;

typedef enum { MODEL_FT_STRING, MODEL_FT_INT } model_ftype;

#define MODEL_MAX_FIELDS 3
#define MODEL_STRING_MAX 254 /* characters, for every string field */

/* ConceptualTypes (SPEC §3): of a person's picture; of any other picture,
 * and of a record made without an entity; of a product's thumbnail record. */
#define MODEL_CT_PERSONPHOTO "PERSONPHOTO"
#define MODEL_CT_PHOTO "PHOTO"
#define MODEL_CT_THUMBNAIL "THUMBNAIL"

typedef struct {
    const char *name;   /* carrier name, PascalCase: "Firstname" */
    const char *column; /* SQL column: "firstname" */
    model_ftype type;
    int ref; /* for ints: the model_kind whose id the value holds (value 0 = none); -1: no reference */
} model_field;

typedef struct {
    const char *name;     /* "Person" */
    const char *table;    /* "person" */
    const char *id_field; /* "PersonId" */
    const char *default_conceptual_type;
    int nfields;
    model_field fields[MODEL_MAX_FIELDS];
    int nnames; /* its first nnames fields (strings) are its name: what a list's filter matches */
} model_entity_def;

const model_entity_def *model_entity(model_kind k);
/* Case-insensitive entity name ("person", "Project") -> kind, or -1. */
int model_kind_from_name(const char *name, size_t len);

typedef struct {
    const char *s; /* MODEL_FT_STRING */
    int32_t i;     /* MODEL_FT_INT */
} model_value;

typedef struct {
    model_kind kind;
    int32_t id;
    model_value v[MODEL_MAX_FIELDS]; /* in descriptor order */
    int64_t version;    /* bumped on every change; set by the store */
    int64_t updated_ms; /* last change; set by the store */
} model_entity_t;

typedef enum { MODEL_ROLE_VIEWER, MODEL_ROLE_EDITOR, MODEL_ROLE_ADMIN } model_role;
const char *model_role_name(model_role r);
/* "admin" / "editor" / "viewer" (case-insensitive); false if unknown. */
bool model_role_parse(const char *s, model_role *out);

/* A user (associate). id 0 is the server itself (SystemAssociate). */
typedef struct {
    int32_t id;
    const char *name;
    const char *full_name;
    model_role role;
    bool disabled;
    const char *pw_hash; /* Argon2id encoded string */
    int64_t created_ms;
} model_user;

/* A BLOB record. blob_id 0 is "none" (the empty carrier). */
typedef struct {
    int32_t blob_id;
    int32_t blob_size;     /* bytes as stored */
    int32_t original_size; /* bytes served */
    bool is_encrypted;
    bool is_zipped;
    const char *description;
    const char *extra_info;
    const char *mime_type;
    const char *conceptual_type;
    int64_t created_ms; /* INT64_MIN when none */
    int64_t updated_ms;
    model_user *created_by; /* NULL when none */
    model_user *updated_by;
    int64_t version; /* bumped on every change of the stored bytes */
    int64_t info_version; /* bumped on every change of the record */
} model_blob;

/* The client-written BLOB fields of a PUT ImageInfo; NULL = leave unchanged. */
typedef struct {
    const char *description;
    const char *extra_info;
    const char *conceptual_type;
} model_blob_edit;

/* Fills *b as the empty carrier (SPEC §2 GET ImageInfo without image). */
void model_blob_empty(model_blob *b);

#endif
