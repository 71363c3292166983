/*
 * asset_table.h — the web page's static files as compiled into the binary.
 *
 * The definitions are generated at build time by scripts/embed_assets.c
 * from the directories of the Makefile's ASSET_MOUNTS (into
 * $(BUILD)/gen/assets.c), so the server stays a single file. Only
 * asset.c reads them. The table is sorted by url (strcmp) and ends with
 * a zeroed row; asset_nfiles does not count it.
 */
#ifndef CB_ASSET_TABLE_H
#define CB_ASSET_TABLE_H

#include <stddef.h>

typedef struct {
    const char *url;           /* "/index.html", "/api/docs/swagger-ui.css", ... */
    const char *content_type;  /* from the file name's extension */
    const unsigned char *data; /* the file's bytes */
    size_t len;
    const char *etag; /* strong, quoted: a hash of the bytes */
} asset_file;

extern const asset_file asset_files[];
extern const size_t asset_nfiles;

#endif
