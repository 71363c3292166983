/*
 * tar.c — a streaming tar reader (bulk.h): members one after another from
 * a read callback (a file for `crmblob import FILE.tar`, a store_reader for
 * the import job), never seeking, never going back.
 *
 * Accepted: POSIX ustar headers (magic "ustar\0" "00", with the prefix
 * field) and GNU ones (magic "ustar  \0"), GNU 'L' long names and pax 'x'
 * records "path" and "size" for the next member. Regular files ('0', and
 * '\0' of old archives) and directories ('5') are handed out; every other
 * type (links, devices, FIFOs, sparse...) is handed out as BULK_TAR_OTHER
 * for the caller to note and skip. Pax 'g' and GNU 'K' (a global record,
 * a long link name) are read over like 'x' and 'L', never members: they
 * leave a pending long name or pax path to the member it is for.
 *
 * Invariants: every field is checked before it is used — the header's
 * checksum (unsigned, or signed as some old tars wrote it), octal numbers
 * (digits, then only NULs or spaces) and base-256 sizes (positive, fitting
 * in 63 bits), names (NUL-terminated inside their field with only NULs
 * after, no NUL inside a long name or a pax path, not absolute, no "." or
 * ".." part, no empty part, shorter than BULK_TAR_NAME_MAX); a member's
 * size is at most the reader's max_member. The archive never makes the
 * reader allocate: a long name and a pax header go into fixed buffers of
 * the reader (a pax header above BULK_TAR_PAX_MAX is refused). An archive
 * that ends without its end marker (two zero blocks; one zero block then
 * the end of the input is accepted, as GNU tar does) or inside a member is
 * an error naming that member.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bulk/bulk.h"

#define BLOCK 512

static int fail(bulk_tar_reader *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(bulk_tar_reader *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
    t->failed = true;
    return BULK_TAR_ERROR;
}

void bulk_tar_reader_init(bulk_tar_reader *t, bulk_read_fn read, void *ctx, int64_t max_member)
{
    memset(t, 0, sizeof(*t));
    t->read = read;
    t->ctx = ctx;
    t->max_member = max_member;
}

/* Exactly n bytes, or *eof when the input ended before the first one; -1
 * when it failed or ended inside them (t->why says so). */
static int pull(bulk_tar_reader *t, void *buf, size_t n, bool *eof)
{
    size_t have = 0;
    if (eof != NULL)
        *eof = false;
    while (have < n) {
        size_t got = 0;
        if (t->read(t->ctx, (char *)buf + have, n - have, &got) != 0) {
            fail(t, "the archive cannot be read");
            return -1;
        }
        if (got == 0 && have == 0 && eof != NULL) {
            *eof = true;
            return 0;
        }
        if (got == 0)
            return -1;
        have += got;
        t->offset += (int64_t)got;
    }
    return 0;
}

/* Skips n bytes of the input. */
static int skip(bulk_tar_reader *t, int64_t n)
{
    char buf[4096];
    while (n > 0) {
        size_t k = n < (int64_t)sizeof(buf) ? (size_t)n : sizeof(buf);
        if (pull(t, buf, k, NULL) != 0)
            return -1;
        n -= (int64_t)k;
    }
    return 0;
}

/* ---- fields ---------------------------------------------------------------- */

/* An octal field: optional leading spaces, digits, then only NULs or
 * spaces; or base-256 (first byte 0x80, the rest big-endian). */
static bool number(const unsigned char *f, size_t w, int64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;
    if (f[0] == 0x80) {
        for (i = 1; i < w; i++) {
            if (x >> 55)
                return false; /* would pass 63 bits */
            x = x << 8 | f[i];
        }
        *v = (int64_t)x;
        return true;
    }
    while (i < w && f[i] == ' ')
        i++;
    size_t start = i;
    for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
        if (x >> 60)
            return false;
        x = x << 3 | (uint64_t)(f[i] - '0');
    }
    if (i == start)
        return false;
    for (; i < w; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return false;
    *v = (int64_t)x;
    return true;
}

/* A name field: its text up to the first NUL, only NULs after it. */
static bool text_field(const unsigned char *f, size_t w, char *out)
{
    size_t n = strnlen((const char *)f, w);
    for (size_t i = n; i < w; i++)
        if (f[i] != '\0')
            return false;
    memcpy(out, f, n);
    out[n] = '\0';
    return true;
}

static bool checksum_ok(const unsigned char h[BLOCK])
{
    int64_t want;
    unsigned long u = 0;
    long s = 0;
    if (!number(h + 148, 8, &want))
        return false;
    for (int i = 0; i < BLOCK; i++) {
        unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
        u += c;
        s += (signed char)c;
    }
    return (int64_t)u == want || (int64_t)s == want;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* The name made safe to use as a path below a directory: a leading "./"
 * dropped, a directory's trailing '/' dropped; false when it is absolute,
 * empty, or has an empty, "." or ".." part. */
static bool clean_name(char *name)
{
    char *p = name;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    memmove(name, p, strlen(p) + 1);
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '/')
        name[--n] = '\0';
    if (n == 0 || name[0] == '/')
        return false;
    for (const char *q = name; *q;) {
        size_t len = strcspn(q, "/");
        if (len == 0 || (len == 1 && q[0] == '.') || (len == 2 && q[0] == '.' && q[1] == '.'))
            return false;
        q += len;
        if (*q == '/')
            q++;
        else
            break;
    }
    return true;
}

/* ---- extension headers --------------------------------------------------------- */

/* The data of an 'L', 'x', 'K' or 'g' member (size bytes) into t->ext. */
static int read_ext(bulk_tar_reader *t, int64_t size, const char *what)
{
    if (size < 0 || size > BULK_TAR_PAX_MAX)
        return fail(t, "%s of %lld bytes (at most %d)", what, (long long)size, BULK_TAR_PAX_MAX);
    if (pull(t, t->ext, (size_t)size, NULL) != 0 || skip(t, (BLOCK - size % BLOCK) % BLOCK) != 0)
        return t->failed ? BULK_TAR_ERROR : fail(t, "the archive ends inside a %s", what);
    t->ext_len = (size_t)size;
    return 0;
}

/* A GNU long name: the name, a NUL, only NULs after it. */
static int long_name(bulk_tar_reader *t, int64_t size)
{
    if (size > BULK_TAR_NAME_MAX)
        return fail(t, "a long name of %lld bytes (at most %d)", (long long)size,
                    BULK_TAR_NAME_MAX);
    if (read_ext(t, size, "long name") != 0)
        return BULK_TAR_ERROR;
    size_t n = strnlen(t->ext, t->ext_len);
    if (n == 0 || !all_zero((const unsigned char *)t->ext + n, t->ext_len - n))
        return fail(t, "a long name with a NUL inside it");
    memcpy(t->next_name, t->ext, n);
    t->next_name[n] = '\0';
    t->has_next_name = true;
    return 0;
}

/* A decimal number of digits only (no sign, no spaces), within 63 bits. */
static bool decimal(const char *s, size_t n, int64_t *v)
{
    uint64_t x = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = (int64_t)x;
    return true;
}

/* One pax record "LEN key=value\n" at p (n bytes left): its length. */
static int pax_record(bulk_tar_reader *t, const char *p, size_t n, size_t *used)
{
    const char *sp = memchr(p, ' ', n < 20 ? n : 20);
    int64_t len;
    if (sp == NULL || !decimal(p, (size_t)(sp - p), &len) || len <= sp - p + 3 || (size_t)len > n ||
        p[len - 1] != '\n')
        return fail(t, "a pax header record that is not \"LEN key=value\\n\"");
    const char *key = sp + 1, *end = p + len - 1;
    const char *eq = memchr(key, '=', (size_t)(end - key));
    if (eq == NULL || eq == key)
        return fail(t, "a pax header record without a key");
    size_t klen = (size_t)(eq - key), vlen = (size_t)(end - eq - 1);
    if (klen == 4 && memcmp(key, "path", 4) == 0) {
        if (vlen == 0 || vlen > BULK_TAR_NAME_MAX || memchr(eq + 1, '\0', vlen) != NULL)
            return fail(t, "a pax path that is empty, too long or holds a NUL");
        memcpy(t->next_name, eq + 1, vlen);
        t->next_name[vlen] = '\0';
        t->has_next_name = true;
    } else if (klen == 4 && memcmp(key, "size", 4) == 0) {
        if (!decimal(eq + 1, vlen, &t->next_size))
            return fail(t, "a pax size that is not a decimal number");
        t->has_next_size = true;
    }
    *used = (size_t)len;
    return 0;
}

static int pax_header(bulk_tar_reader *t, int64_t size)
{
    if (read_ext(t, size, "pax header") != 0)
        return BULK_TAR_ERROR;
    for (size_t off = 0, used = 0; off < t->ext_len; off += used)
        if (pax_record(t, t->ext + off, t->ext_len - off, &used) != 0)
            return BULK_TAR_ERROR;
    return 0;
}

/* ---- members -------------------------------------------------------------------- */

/* The name of header h: an extension header's, else prefix/name. */
static int header_name(bulk_tar_reader *t, const unsigned char *h, char *name)
{
    char base[101], prefix[156];
    bool posix = memcmp(h + 257,
                        "ustar\0"
                        "00",
                        8) == 0;
    if (!posix && memcmp(h + 257, "ustar  \0", 8) != 0)
        return fail(t, "a header at byte %lld that is not a ustar or GNU tar header",
                    (long long)(t->offset - BLOCK));
    if (!text_field(h, 100, base) || (posix && !text_field(h + 345, 155, prefix)))
        return fail(t, "a header at byte %lld whose name has bytes after its end",
                    (long long)(t->offset - BLOCK));
    if (t->has_next_name)
        snprintf(name, BULK_TAR_NAME_MAX + 1, "%s", t->next_name);
    else if (posix && prefix[0] != '\0')
        snprintf(name, BULK_TAR_NAME_MAX + 1, "%s/%s", prefix, base);
    else
        snprintf(name, BULK_TAR_NAME_MAX + 1, "%s", base);
    t->has_next_name = false;
    return 0;
}

/* The next header block: 1 a header in h, 0 the end of the archive. */
static int next_block(bulk_tar_reader *t, unsigned char h[BLOCK])
{
    bool eof;
    if (pull(t, h, BLOCK, &eof) != 0)
        return t->failed ? BULK_TAR_ERROR : fail(t, "the archive ends inside a header (truncated)");
    if (eof)
        return fail(t, "the archive ends without its end marker (truncated after %s)",
                    t->member.name[0] ? t->member.name : "its start");
    if (!all_zero(h, BLOCK))
        return 1;
    if (pull(t, h, BLOCK, &eof) != 0)
        return t->failed ? BULK_TAR_ERROR : fail(t, "the archive ends inside its end marker");
    if (!eof && !all_zero(h, BLOCK))
        return fail(t, "a zero block inside the archive at byte %lld",
                    (long long)(t->offset - 2 * BLOCK));
    return 0;
}

/* The header h's member into t->member (its size checked). */
static int take_member(bulk_tar_reader *t, const unsigned char *h, int64_t size)
{
    bulk_tar_member *m = &t->member;
    if (header_name(t, h, m->name) != 0)
        return BULK_TAR_ERROR;
    if (t->has_next_size)
        size = t->next_size;
    t->has_next_size = false;
    m->type = (char)h[156];
    m->size = size;
    if (size > t->max_member)
        return fail(t, "member %s: %lld bytes (at most %lld)", m->name, (long long)size,
                    (long long)t->max_member);
    t->left = size;
    t->pad = (BLOCK - size % BLOCK) % BLOCK;
    if (!clean_name(m->name))
        return fail(t, "member %s: not a name inside the archive (absolute, empty, '.' or '..')",
                    m->name);
    m->kind = m->type == '0' || m->type == '\0' ? BULK_TAR_FILE
              : m->type == '5'                  ? BULK_TAR_DIR
                                                : BULK_TAR_OTHER;
    t->members++;
    return BULK_TAR_MEMBER;
}

bool bulk_tar_looks_like(const unsigned char h[512])
{
    return !all_zero(h, BLOCK) && checksum_ok(h) &&
           (memcmp(h + 257, "ustar\0" "00", 8) == 0 || memcmp(h + 257, "ustar  \0", 8) == 0);
}

int bulk_tar_next(bulk_tar_reader *t, bulk_tar_member *out)
{
    unsigned char h[BLOCK];
    if (t->failed)
        return BULK_TAR_ERROR;
    if (t->left + t->pad > 0 && skip(t, t->left + t->pad) != 0)
        return t->failed
                   ? BULK_TAR_ERROR
                   : fail(t, "member %s: the archive ends inside it (truncated)", t->member.name);
    t->left = t->pad = 0;
    for (;;) {
        int rc = next_block(t, h);
        int64_t size;
        if (rc != 1)
            return rc == 0 ? BULK_TAR_END : BULK_TAR_ERROR;
        if (!checksum_ok(h))
            return fail(t, "the header at byte %lld has a wrong checksum",
                        (long long)(t->offset - BLOCK));
        if (!number(h + 124, 12, &size))
            return fail(t, "the header at byte %lld has a size that is not a number",
                        (long long)(t->offset - BLOCK));
        if (h[156] == 'L')
            rc = long_name(t, size);
        else if (h[156] == 'x')
            rc = pax_header(t, size);
        else if (h[156] == 'K' || h[156] == 'g') /* nothing of ours: read over */
            rc = read_ext(t, size, h[156] == 'K' ? "long link name" : "global pax header");
        else if ((rc = take_member(t, h, size)) == BULK_TAR_MEMBER) {
            *out = t->member;
            return rc;
        }
        if (rc != 0)
            return BULK_TAR_ERROR;
    }
}

int bulk_tar_read(bulk_tar_reader *t, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (t->failed)
        return -1;
    if ((int64_t)n > t->left)
        n = (size_t)t->left;
    if (n == 0)
        return 0;
    if (pull(t, buf, n, NULL) != 0) {
        if (!t->failed)
            fail(t, "member %s: the archive ends inside it (truncated)", t->member.name);
        return -1;
    }
    t->left -= (int64_t)n;
    *got = n;
    return 0;
}
