/*
 * form.h — application/x-www-form-urlencoded request bodies (SPEC §4).
 *
 * A form body such as `Description=Front+view&ExtraInfo=%C3%A9` becomes a
 * JSON object of JSON strings, which the carrier readers then treat like a
 * JSON body (member names match case-insensitively there). Parsing is
 * strict: a bad %-escape, bytes that do not decode to valid UTF-8, a NUL
 * character or too many pairs refuse the whole body.
 */
#ifndef CB_FORM_H
#define CB_FORM_H

#include <stddef.h>

#include <jansson.h>

/* Most name=value pairs one body may hold. */
#define FORM_MAX_PAIRS 256

/*
 * Parses data[0..len) (need not be NUL-terminated). '+' is a space, %XX a
 * byte (hex digits of any case), in names and values alike. A pair without
 * '=' has the value "", empty pairs ("a=1&&b=2") are skipped, names are kept
 * as sent, and of names that match case-insensitively only the last pair
 * is kept (under its own spelling). An empty body gives {}.
 *
 * Returns a new object, or NULL with a short English reason in err (which
 * never echoes the client's bytes; err may be NULL when err_cap is 0).
 */
json_t *form_parse(const char *data, size_t len, char *err, size_t err_cap);

#endif
