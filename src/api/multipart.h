/*
 * multipart.h — a streaming multipart/form-data reader that extracts the
 * first part carrying a file.
 *
 * Bytes are fed in arbitrary chunks (a boundary may be split across any two
 * chunks); the content of the first part whose Content-Disposition has a
 * `filename` parameter (whatever its field name, e.g. "projectimg") is
 * handed to the sink as it arrives, never buffered whole. Every other part
 * is skipped. Part headers are capped (MULTIPART_MAX_HEADER bytes per part):
 * a larger header block is an error. The reader is a plain state machine
 * with no allocation after multipart_create.
 */
#ifndef CB_MULTIPART_H
#define CB_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define MULTIPART_MAX_HEADER 8192
#define MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 */

typedef struct multipart multipart_t;

/* Receives the file part's bytes; a non-CB_EOK return stops the reader and
 * is returned by multipart_feed. */
typedef cb_err (*multipart_sink)(void *ctx, const char *data, size_t n);

/* Parses the boundary parameter of a Content-Type value such as
 * `multipart/form-data; boundary="abc"` (quoted or not, any case of the
 * parameter name) and creates a reader. NULL when the value is not
 * multipart/form-data or has no valid boundary. */
multipart_t *multipart_create(const char *content_type, multipart_sink sink, void *ctx);
void multipart_destroy(multipart_t *m);

/* Feeds the next chunk. CB_EBADREQ on malformed input (reason in
 * multipart_error), or the sink's error. */
cb_err multipart_feed(multipart_t *m, const char *data, size_t n);
/* Call at end of body: CB_EBADREQ when the closing boundary was not seen
 * (truncated body). */
cb_err multipart_finish(multipart_t *m);
/* True once a file part was found (even if empty). */
bool multipart_found_file(const multipart_t *m);
/* The file part's filename and Content-Type as sent ("" if none). */
const char *multipart_filename(const multipart_t *m);
const char *multipart_part_type(const multipart_t *m);
/* Human-readable reason of the last CB_EBADREQ. */
const char *multipart_error(const multipart_t *m);

#endif
