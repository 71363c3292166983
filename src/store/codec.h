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
/* A codec of cfg that also decrypts what prev encrypted (prev's key is
 * copied: prev may go): a value whose first chunk cfg's key does not open
 * is opened with prev's. For a key change while serving (the rekey job):
 * new pictures get the new key, those not yet rewritten still decode. */
cb_err codec_create_after(const codec_config *cfg, const codec_t *prev, codec_t **out);
/* Whether c compresses what it encodes (codec_config.compress). */
bool codec_compresses(const codec_t *c);
void codec_destroy(codec_t *c);
bool codec_encrypts(const codec_t *c);
/* The key's fingerprint (for refusing a key that does not match the data). */
void codec_fingerprint(const codec_t *c, unsigned char out[CODEC_FINGERPRINT_BYTES]);

/* Encodes fd[0, size) into a new unnamed temporary file in tmpdir (the
 * caller closes *out_fd), streaming in chunks. Compression is tried only
 * up to 64 MiB (what the decoder accepts decompressed); encryption streams
 * any size. When neither compression (or it saves < 10 %) nor encryption
 * applies, *out_fd is -1 and the input is to be stored as it is
 * (*out_size = size). CB_ENOSPACE when tmpdir's file system is full. */
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

/* A streaming decoder, for pictures too large to hold: the stored bytes go
 * in with codec_dec_feed in pieces of any size, in order; the plain bytes
 * come out through sink(ctx, p, n) as soon as they are known, in pieces
 * (never more than 64 MiB in all when zipped;
 * a value not zipped is bounded by its stored size). codec_dec_finish says the stored bytes
 * ended. A sink's error stops the decoder and is returned as it is. The
 * same errors as codec_decode: truncated, extended or damaged input, or a
 * wrong key, fail at the latest at finish, and the bytes already handed
 * out must then be thrown away. */
typedef struct codec_dec codec_dec;
typedef cb_err (*codec_sink_fn)(void *ctx, const void *p, size_t n);
cb_err codec_dec_open(const codec_t *c, bool zipped, bool encrypted, codec_sink_fn sink,
                      void *ctx, codec_dec **out);
cb_err codec_dec_feed(codec_dec *d, const void *p, size_t n);
/* *plain_len (may be NULL): the bytes handed to the sink. */
cb_err codec_dec_finish(codec_dec *d, int64_t *plain_len);
void codec_dec_close(codec_dec *d); /* NULL is fine */
/* Decodes fd[0, size) (read with pread) into a new unnamed temporary file
 * in tmpdir, its offset at 0 (the caller closes *out_fd); *out_size its
 * length. The mirror of codec_encode_fd, with codec_decode's errors. */
cb_err codec_decode_fd(const codec_t *c, int fd, int64_t size, bool zipped, bool encrypted,
                       const char *tmpdir, int *out_fd, int64_t *out_size);

/* Writes a new random key as 64 hex digits and a newline to path (mode 0600). */
cb_err codec_keygen(const char *path);

#endif
