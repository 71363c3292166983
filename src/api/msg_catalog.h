/*
 * msg_catalog.h — the message catalogues as compiled into the binary.
 *
 * The definitions are generated at build time by scripts/embed_messages.sh
 * from src/api/messages/<lang>.msg (into $(BUILD)/gen/msg_catalog.c), so
 * the server stays a single file. Only msg.c reads them; it parses the text.
 */
#ifndef CB_MSG_CATALOG_H
#define CB_MSG_CATALOG_H

#include <stddef.h>

typedef struct {
    const char *lang; /* the file's base name: "en", "de", ... */
    const char *path; /* the source file, for warnings */
    const char *text; /* the file's bytes, NUL-terminated */
} msg_catalog_file;

extern const msg_catalog_file msg_catalog_files[];
extern const size_t msg_catalog_nfiles;

#endif
