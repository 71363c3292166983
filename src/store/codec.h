/*
 * codec.h — how image bytes are kept at rest (SPEC §9): optionally
 * compressed with zstd (only when that saves at least 10 %, so photos stay
 * as they are) and optionally encrypted with XChaCha20-Poly1305 (libsodium
 * secretstream, 64 KiB chunks, a key from a file). The BLOB record's
 * IsZipped, IsEncrypted, BlobSize (stored) and OriginalSize (served) always
 * describe exactly what the codec produced.
 *
 * A wrong key never yields bytes: decryption authenticates every chunk and
 * fails with a clear error. The key's fingerprint (BLAKE2b of the key under
 * a fixed context) lets the server refuse to start with a key that does not
 * match the data.
 */
#ifndef CB_CODEC_H
#define CB_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CODEC_KEY_BYTES 32
#define CODEC_FINGERPRINT_BYTES 16

typedef struct codec codec_t;

typedef struct {
    bool compress;        /* try zstd */
    int zstd_level;       /* 0 = 3 */
    const char *key_file; /* NULL: no encryption. 32 raw bytes or 64 hex digits (+ newline) */
} codec_config;

/* CB_EBADREQ (with log_error) for an unreadable or malformed key file. */
cb_err codec_create(const codec_config *cfg, codec_t **out);
void codec_destroy(codec_t *c);
bool codec_encrypts(const codec_t *c);
/* The key's fingerprint (for refusing a key that does not match the data). */
void codec_fingerprint(const codec_t *c, unsigned char out[CODEC_FINGERPRINT_BYTES]);

/* Encodes fd[0, size) into a new unnamed temporary file in tmpdir (the
 * caller closes *out_fd), streaming in chunks. When neither compression
 * (or it saves < 10 %) nor encryption applies, *out_fd is -1 and the input
 * is to be stored as it is (*out_size = size). CB_ENOSPACE when tmpdir's
 * file system is full. */
cb_err codec_encode_fd(const codec_t *c, int fd, int64_t size, const char *tmpdir, int *out_fd,
                       int64_t *out_size, bool *zipped, bool *encrypted);
/* The same for bytes in memory (variants); *out malloc'd, or NULL when
 * stored as given. */
cb_err codec_encode(const codec_t *c, const void *in, size_t len, void **out, size_t *out_len,
                    bool *zipped, bool *encrypted);
/* Reverses encode. CB_EINTERNAL with log_error("... wrong encryption key
 * or damaged data") when authentication fails; CB_EUNAVAILABLE when the
 * data is encrypted and no key is configured. *out malloc'd. */
cb_err codec_decode(const codec_t *c, const void *in, size_t len, bool zipped, bool encrypted,
                    void **out, size_t *out_len);

/* Writes a new random key as 64 hex digits and a newline to path (mode 0600). */
cb_err codec_keygen(const char *path);

#endif
