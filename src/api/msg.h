/*
 * msg.h — the catalogue of every ErrorMessage crmblob sends.
 *
 * Messages are named by id and written as templates with numbered
 * placeholders ({0}, {1}, ...) so that a translation may reorder them.
 * Numbers are passed as numbers so that they can be formatted for the
 * caller's culture. English is the source language; other languages are
 * added as further catalogues with the same ids.
 */
#ifndef CB_MSG_H
#define CB_MSG_H

#include <stdint.h>

#include "core/arena.h"

/*      id                 English template */
#define MSG_MAP(X)                                                                                 \
    X(ENTITY_NOT_FOUND, "{0} id {1} not found")                                                    \
    X(IMAGE_NOT_FOUND, "{0} id {1} has no image")                                                  \
    X(ROUTE_NOT_FOUND, "There is no resource at {0}")                                              \
    X(METHOD_NOT_ALLOWED, "Method {0} is not allowed on {1}")                                      \
    X(BAD_ID, "'{0}' is not a valid id: expected a positive 32-bit integer")                      \
    X(UNAUTHORIZED, "Authentication is required: send valid credentials")                         \
    X(FORBIDDEN, "User {0} with role {1} may not change data")                                     \
    X(BODY_TOO_LARGE, "The request body is larger than the limit of {0} bytes")                    \
    X(IMAGE_MISSING, "Image bitmap is missing from body")                                          \
    X(IMAGE_UNSUPPORTED, "The body is not a PNG, JPEG, GIF or TIFF image")                         \
    X(ENTITY_MISSING, "Entity to save is not in request body")                                     \
    X(BAD_JSON, "Malformed JSON at line {0}, column {1}: {2}")                                     \
    X(JSON_NOT_OBJECT, "The request body must be a JSON object")                                   \
    X(FIELD_TYPE, "Field {0} must be {1}")                                                         \
    X(FIELD_TOO_LONG, "Field {0} is longer than {1} characters")                                   \
    X(UNSUPPORTED_TYPE, "Content-Type {0} is not supported here")                                  \
    X(PROJECT_ID_MISMATCH, "Project id {0} in the path and projectId {1} in the query differ")    \
    X(BAD_QUERY, "Query parameter {0} has an invalid value '{1}'")                                 \
    X(ID_CONFLICT, "{0} id {1} already exists")                                                    \
    X(REF_NOT_FOUND, "{0} refers to {1} id {2}, which does not exist")                             \
    X(ID_MISMATCH, "{0} {1} in the body differs from id {2} in the path")                          \
    X(MULTIPART, "Malformed multipart body: {0}")                                                  \
    X(NO_FILE_PART, "The multipart body has no file part")                                         \
    X(UPLOAD_FAILED, "The upload could not be stored")                                             \
    X(BAD_XML, "Malformed XML at line {0}: {1}")                                                   \
    X(XML_DTD, "XML with a DOCTYPE or entity declarations is refused")                            \
    X(BAD_FORM, "Malformed form body: {0}")                                                        \
    X(BAD_PATCH, "Malformed JSON Patch: {0}")                                                      \
    X(PATCH_OP_UNSUPPORTED, "JSON Patch operation {0} is not supported; use add, replace, remove or test") \
    X(PATCH_TEST_FAILED, "JSON Patch test failed at {0}")                                          \
    X(NOT_ACCEPTABLE, "None of the media types in Accept can be produced; use {0}")               \
    X(PRECONDITION_FAILED, "{0} id {1} has changed since the version the request is based on")    \
    X(BAD_TIMEZONE, "Unknown time zone code '{0}'; GET /api/v1/TimeZone lists the codes")         \
    X(BAD_HEADER, "Header {0} has an invalid value '{1}'")                                         \
    X(BAD_SELECT, "$select names an unknown field '{0}'")                                          \
    X(BAD_CHARSET, "Only the UTF-8 charset is supported, not '{0}'")                               \
    X(INTERNAL, "Internal server error")                                                           \
    X(UNAVAILABLE, "The server is busy; try again")

typedef enum {
#define MSG_ENUM(id, text) MSG_##id,
    MSG_MAP(MSG_ENUM)
#undef MSG_ENUM
        MSG__COUNT
} msg_id;

typedef struct {
    const char *s; /* string argument, or NULL for a number */
    int64_t n;
} msg_arg;

#define MSG_S(str) ((msg_arg){(str), 0})
#define MSG_N(num) ((msg_arg){NULL, (int64_t)(num)})
#define MSG_MAX_ARGS 4

/* The message in the catalogue's language with its arguments filled in. */
char *msg_format(arena_t *a, msg_id id, const msg_arg *args, int nargs);

#endif
