/*
 * msg.h — the catalogue of every ErrorMessage crmblob sends, in the
 * caller's language.
 *
 * Messages are named by id; their text lives in one catalogue per language,
 * src/api/messages/<lang>.msg (`ID = template`), compiled into the binary.
 * Templates carry numbered placeholders ({0}, {1}, ...) so that a translation
 * may reorder them. English (en.msg) is the source language: a message a
 * translation lacks is answered in English. Numbers are passed as numbers so
 * that quantities can be written the way the caller's culture writes them;
 * identifiers are never grouped.
 *
 * The catalogues are parsed once, on first use, and only read afterwards, so
 * every function here is safe to call from any thread.
 */
#ifndef CB_MSG_H
#define CB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* Every message id; the text of each is in src/api/messages/<lang>.msg. */
#define MSG_MAP(X)                                                                                 \
    X(ENTITY_NOT_FOUND)                                                                            \
    X(IMAGE_NOT_FOUND)                                                                             \
    X(ROUTE_NOT_FOUND)                                                                             \
    X(METHOD_NOT_ALLOWED)                                                                          \
    X(BAD_ID)                                                                                      \
    X(UNAUTHORIZED)                                                                                \
    X(FORBIDDEN)                                                                                   \
    X(BODY_TOO_LARGE)                                                                              \
    X(IMAGE_MISSING)                                                                               \
    X(IMAGE_UNSUPPORTED)                                                                           \
    X(ENTITY_MISSING)                                                                              \
    X(BAD_JSON)                                                                                    \
    X(JSON_NOT_OBJECT)                                                                             \
    X(FIELD_NOT_STRING)                                                                            \
    X(FIELD_NOT_INT)                                                                               \
    X(FIELD_HAS_NUL)                                                                               \
    X(FIELD_TOO_LONG)                                                                              \
    X(UNSUPPORTED_TYPE)                                                                            \
    X(PROJECT_ID_MISMATCH)                                                                         \
    X(BAD_QUERY)                                                                                   \
    X(ID_CONFLICT)                                                                                 \
    X(REF_NOT_FOUND)                                                                               \
    X(ID_MISMATCH)                                                                                 \
    X(MULTIPART)                                                                                   \
    X(NO_FILE_PART)                                                                                \
    X(UPLOAD_FAILED)                                                                               \
    X(UPLOADS_BUSY)                                                                                \
    X(DOWNLOADS_BUSY)                                                                              \
    X(NO_SPACE)                                                                                    \
    X(BAD_XML)                                                                                     \
    X(XML_DTD)                                                                                     \
    X(BAD_FORM)                                                                                    \
    X(FORM_HOLDS_OTHER)                                                                            \
    X(BAD_PATCH)                                                                                   \
    X(PATCH_OP_UNSUPPORTED)                                                                        \
    X(PATCH_TEST_FAILED)                                                                           \
    X(NOT_ACCEPTABLE)                                                                              \
    X(PRECONDITION_FAILED)                                                                         \
    X(BAD_TIMEZONE)                                                                                \
    X(BAD_HEADER)                                                                                  \
    X(MALFORMED_REQUEST)                                                                           \
    X(BAD_SELECT)                                                                                  \
    X(BAD_CHARSET)                                                                                 \
    X(INTERNAL)                                                                                    \
    X(CORS_ORIGIN)                                                                             \
    X(URL_TOO_LONG)                                                                            \
    X(HEADERS_TOO_LARGE)                                                                       \
    X(TOO_MANY_HEADERS)                                                                        \
    X(TOO_MANY_FAILURES)                                                                       \
    X(ACCOUNT_LOCKED)                                                                          \
    X(PASSWORD_CHECKS_BUSY)                                                                    \
    X(LOGIN_CROSS_SITE)                                                                        \
    X(LOGIN_FIELDS)                                                                            \
    X(LOGIN_FAILED)                                                                            \
    X(IMAGE_INVALID)                                                                           \
    X(RANGE_NOT_SATISFIABLE)                                                                   \
    X(IMAGE_UNREADABLE)                                                                        \
    X(IMAGE_TOO_COSTLY)                                                                        \
    X(IMAGE_WORKER_STOPPED)                                                                    \
    X(UNAVAILABLE)                                                                             \
    X(ARG_MISSING)                                                                             \
    X(BAD_BASE64)                                                                              \
    X(BLOB_NOT_FOUND)                                                                          \
    X(BLOB_IN_USE)                                                                             \
    X(BAD_LINK_TYPE)                                                                           \
    X(NOT_READY_DATABASE)                                                                      \
    X(NOT_READY_IMAGE_WORKER)                                                                  \
    X(BAD_PAGING)                                                                              \
    X(BAD_ORDERBY)                                                                             \
    X(BAD_FILTER)                                                                              \
    X(BATCH_NOT_FOUND)                                                                         \
    X(BATCH_NO_SUCH_JOB)                                                                       \
    X(BATCH_ADMIN_ONLY)                                                                        \
    X(BATCH_BAD_STATE)                                                                         \
    X(BATCH_PARAMS_FIXED)                                                                      \
    X(BATCH_BAD_FILTER)                                                                        \
    X(BATCH_FILTER_TOO_LONG)                                                                   \
    X(BATCH_BAD_PARAMETERS)                                                                    \
    X(BATCH_NOT_AN_ARCHIVE)                                                                    \
    X(BATCH_INPUT_FIXED)                                                                       \
    X(ARCHIVE_NOT_TAR)

typedef enum {
#define MSG_ENUM(id) MSG_##id,
    MSG_MAP(MSG_ENUM)
#undef MSG_ENUM
        MSG__COUNT
} msg_id;

/* The languages with a catalogue; also the cultures numbers are written in.
 * English is 0 so that a zeroed msg_locale is the default one. */
typedef enum {
    MSG_LANG_EN,
    MSG_LANG_NO, /* Norwegian bokmål; nb, nn and no all select it */
    MSG_LANG_SV,
    MSG_LANG_DA,
    MSG_LANG_DE,
    MSG_LANG_NL,
    MSG_LANG__COUNT
} msg_lang;

/* How one exchange's messages are written: the text's language, the
 * culture of quantities in it, and whether translation is off (then
 * quantities are written without grouping). */
typedef struct {
    msg_lang lang;
    msg_lang culture;
    bool plain_numbers;
} msg_locale;

/* No language headers: English text, English digit grouping. */
#define MSG_LOCALE_DEFAULT ((msg_locale){MSG_LANG_EN, MSG_LANG_EN, false})

typedef enum {
    MSG_ARG_STR, /* s, written as is */
    MSG_ARG_NUM, /* n, a quantity: grouped the culture's way (10,485,760) */
    MSG_ARG_ID,  /* n, an identifier: digits only (12345) */
} msg_arg_kind;

typedef struct {
    msg_arg_kind kind;
    const char *s; /* MSG_ARG_STR; NULL is written as "" */
    int64_t n;     /* MSG_ARG_NUM, MSG_ARG_ID */
} msg_arg;

#define MSG_S(str) ((msg_arg){MSG_ARG_STR, (str), 0})
#define MSG_N(num) ((msg_arg){MSG_ARG_NUM, NULL, (int64_t)(num)})
#define MSG_ID(num) ((msg_arg){MSG_ARG_ID, NULL, (int64_t)(num)})
#define MSG_MAX_ARGS 4

/*
 * The locale of a request from its headers (each NULL when absent), after
 * SPEC §6 and the reference API's header documentation:
 *  - SO-Language, when present and not empty, overrides Accept-Language. It
 *    is a language code (only the primary subtag counts: "de-DE" is de), or
 *    "*", "x" or "-": translation off, i.e. English text and quantities
 *    without grouping.
 *  - Accept-Language is a list with q-values ("de-DE,de;q=0.9,en;q=0.5"): the
 *    acceptable (q > 0) supported language with the highest q wins, ties in
 *    header order, named languages before ones only "*" admits. "*" alone (no
 *    language named) sets no language: English, quantities not grouped.
 *  - nb, nn and no select Norwegian; codes match case-insensitively; a
 *    language without a catalogue gives English.
 *  - SO-Culture ("de", "de-DE", "nb-NO", ...) chooses how quantities are
 *    written; absent or unknown, the chosen language's way. It is ignored
 *    when translation is off ("ignored if no language set").
 * No language headers at all give MSG_LOCALE_DEFAULT.
 */
msg_locale msg_locale_pick(const char *accept_language, const char *so_language,
                           const char *so_culture);

/* The message in loc's language (MSG_LOCALE_DEFAULT when loc is NULL) with
 * its arguments filled in, allocated from a. A placeholder naming a missing
 * argument is left as written. */
char *msg_format(arena_t *a, const msg_locale *loc, msg_id id, const msg_arg *args, int nargs);

/* ---- for tests and tools ---- */
/* The template lang's own catalogue has for id, or NULL (no English
 * fallback here). */
const char *msg_template(msg_lang lang, msg_id id);
/* "ENTITY_NOT_FOUND" for MSG_ENTITY_NOT_FOUND. */
const char *msg_id_name(msg_id id);
/* "en", "no", "sv", "da", "de", "nl". */
const char *msg_lang_code(msg_lang lang);
/* Lines the catalogues' parser warned about and ignored (0 when clean). */
size_t msg_catalog_warnings(void);

#endif
