/*
 * multipart.c — streaming multipart/form-data reader (see multipart.h).
 *
 * The body is consumed by a byte-driven state machine:
 *
 *   PREAMBLE --delimiter--> TAIL --"--"--------------------------> EPILOGUE
 *                            |--[SP/HT]* CRLF--> HEADERS --CRLFCRLF--> BODY
 *   BODY --delimiter--> TAIL ...
 *
 * The delimiter is CRLF "--" boundary (RFC 2046 §5.1.1); the very first one
 * may also open the stream without the CRLF, which is modelled by starting
 * the matcher with the CRLF already "matched".
 *
 * Invariants:
 * - While scanning PREAMBLE or BODY, `match` bytes of the delimiter have been
 *   seen and not yet emitted. Those held-back bytes are exactly delim[0..match),
 *   so no copy is kept and at most boundary length + 3 bytes are ever held.
 * - A boundary never contains CR or LF (checked at creation), so CR occurs in
 *   the delimiter only at offset 0: on a mismatch the held bytes can all be
 *   released, and the mismatching byte is then examined afresh.
 * - Only the first part with a filename parameter ever reaches the sink
 *   (`delivering`); every other byte of a part body is dropped as it passes.
 * - Nothing is allocated after multipart_create; the header block of the
 *   current part lives in a fixed array of MULTIPART_MAX_HEADER bytes.
 * - Once an error is recorded the reader stays failed and repeats the error.
 */
#include "api/multipart.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

#define STR_(x) #x
#define STR(x) STR_(x)

enum state {
    ST_PREAMBLE, /* before the first delimiter: bytes are ignored */
    ST_TAIL,     /* a delimiter matched: "--", padding or CRLF follows */
    ST_DASH2,    /* saw "-" after the delimiter, a second must follow */
    ST_PAD,      /* transport padding (SP/HT) after the delimiter */
    ST_LF,       /* saw CR after the delimiter line, LF must follow */
    ST_HEADERS,  /* collecting a part's header block */
    ST_BODY,     /* scanning a part body for the next delimiter */
    ST_EPILOGUE, /* after the close delimiter: bytes are ignored */
    ST_FAILED,   /* an error was recorded in err/reason */
};

struct multipart {
    multipart_sink sink;
    void *ctx;
    enum state state;
    cb_err err;                             /* CB_EOK unless state == ST_FAILED */
    const char *reason;                     /* static text of the last CB_EBADREQ, or NULL */
    bool started;                           /* a valid delimiter line was seen (preamble over) */
    bool found_file;                        /* the file part's headers were seen */
    bool delivering;                        /* the current part body goes to the sink */
    size_t dlen;                            /* strlen(delim) */
    size_t match;                           /* delimiter bytes matched and held back */
    size_t hlen;                            /* bytes in hdr */
    char delim[MULTIPART_MAX_BOUNDARY + 5]; /* CRLF "--" boundary NUL */
    char hdr[MULTIPART_MAX_HEADER];
    /* A value decodes to at most as many bytes as its header block holds. */
    char filename[MULTIPART_MAX_HEADER];
    char part_type[MULTIPART_MAX_HEADER];
};

/* ---- small lexical helpers over [p, end) spans ------------------------- */

struct cursor {
    const char *p;
    const char *end;
};

/* One `; name=value` parameter; value is raw (quotes stripped, escapes kept). */
struct param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool quoted;
};

/* RFC 7230 tchar. */
static bool is_tchar(char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bchars (space is checked separately: allowed, but not last). */
static bool is_bchar(char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
    while (c->p < c->end && text_is_ows(*c->p))
        c->p++;
}

static size_t take_token(struct cursor *c)
{
    const char *start = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - start);
}

/* Scans a quoted-string whose opening quote is at c->p; false if unterminated. */
static bool take_quoted(struct cursor *c, struct param *out)
{
    assert(c->p < c->end && *c->p == '"');
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != '"')
        c->p += (*c->p == '\\' && c->p + 1 < c->end) ? 2 : 1;
    if (c->p >= c->end)
        return false;
    out->value = start;
    out->value_len = (size_t)(c->p - start);
    out->quoted = true;
    c->p++;
    return true;
}

static void take_bare(struct cursor *c, struct param *out)
{
    out->value = c->p;
    while (c->p < c->end && *c->p != ';' && *c->p != '"' && !text_is_ows(*c->p))
        c->p++;
    out->value_len = (size_t)(c->p - out->value);
    out->quoted = false;
}

/* Next `; name=value` of a parameter list: 1 one read, 0 end, -1 malformed.
 * Empty elements (";;") and a trailing ";" are tolerated. */
static int next_param(struct cursor *c, struct param *out)
{
    for (;;) {
        skip_ows(c);
        if (c->p == c->end)
            return 0;
        if (*c->p != ';')
            return -1;
        c->p++;
        skip_ows(c);
        if (c->p == c->end)
            return 0;
        if (*c->p != ';')
            break;
    }
    out->name = c->p;
    out->name_len = take_token(c);
    skip_ows(c);
    if (out->name_len == 0 || c->p == c->end || *c->p != '=')
        return -1;
    c->p++;
    skip_ows(c);
    if (c->p < c->end && *c->p == '"')
        return take_quoted(c, out) ? 1 : -1;
    take_bare(c, out);
    return out->value_len > 0 ? 1 : -1;
}

/* ---- bounded output for decoded values ---------------------------------- */

struct out {
    char *p;
    size_t len;
    size_t cap; /* including the NUL */
};

static bool out_put(struct out *o, char c)
{
    if (c == '\0' || o->len + 1 >= o->cap)
        return false;
    o->p[o->len++] = c;
    o->p[o->len] = '\0';
    return true;
}

/* Copies a parameter value, undoing quoted-pair escapes of `"` and `\`.
 * Any other backslash is kept: browsers send Windows paths unescaped. */
static bool out_param(struct out *o, const struct param *pm)
{
    for (size_t i = 0; i < pm->value_len; i++) {
        char c = pm->value[i];
        if (pm->quoted && c == '\\' && i + 1 < pm->value_len &&
            (pm->value[i + 1] == '"' || pm->value[i + 1] == '\\'))
            c = pm->value[++i];
        if (!out_put(o, c))
            return false;
    }
    return true;
}

/* Writes one decoded byte; ISO-8859-1 bytes are re-encoded as UTF-8. */
static bool out_charset_byte(struct out *o, unsigned char b, bool latin1)
{
    if (!latin1 || b < 0x80)
        return out_put(o, (char)b);
    return out_put(o, (char)(0xC0 | (b >> 6))) && out_put(o, (char)(0x80 | (b & 0x3F)));
}

/* RFC 5987 ext-value: charset ' [language] ' percent-encoded bytes. */
static bool out_ext_value(struct out *o, const char *v, size_t n)
{
    const char *q1 = memchr(v, '\'', n);
    const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - v)) : NULL;
    if (q2 == NULL || q1 == v)
        return false;
    bool latin1 = text_ieq(v, (size_t)(q1 - v), "ISO-8859-1");
    for (const char *p = q2 + 1; p < v + n; p++) {
        unsigned char b = (unsigned char)*p;
        if (*p == '%') {
            if (v + n - p < 3 || text_hex_value(p[1]) < 0 || text_hex_value(p[2]) < 0)
                return false;
            b = (unsigned char)(text_hex_value(p[1]) * 16 + text_hex_value(p[2]));
            p += 2;
        }
        if (!out_charset_byte(o, b, latin1))
            return false;
    }
    return true;
}

/* ---- errors and emission ------------------------------------------------ */

static void fail(multipart_t *m, cb_err e, const char *reason)
{
    assert(e != CB_EOK);
    m->state = ST_FAILED;
    m->err = e;
    m->reason = reason;
}

static void bad(multipart_t *m, const char *reason)
{
    fail(m, CB_EBADREQ, reason);
}

/* Hands body bytes to the sink when the current part is the file part. */
static void emit(multipart_t *m, const char *p, size_t n)
{
    if (n == 0 || !m->delivering || m->state != ST_BODY)
        return;
    cb_err e = m->sink(m->ctx, p, n);
    if (e != CB_EOK)
        fail(m, e, "the file part was rejected while it was being stored");
}

/* ---- part headers ------------------------------------------------------- */

/* What the header block of one part says about it (spans point into hdr). */
struct part_info {
    bool has_disposition;
    bool has_filename;
    bool has_filename_ext;
    bool has_type;
    struct param filename;
    struct param filename_ext;
    const char *type;
    size_t type_len;
};

static bool param_is(const struct param *pm, const char *name)
{
    return text_ieq(pm->name, pm->name_len, name);
}

/* `form-data; name="x"; filename="y"` (any disposition type is accepted). */
static bool parse_disposition(struct part_info *pi, const char *v, size_t n)
{
    struct cursor c = {v, v + n};
    struct param pm;
    int r;
    if (take_token(&c) == 0)
        return false;
    while ((r = next_param(&c, &pm)) > 0) {
        if (param_is(&pm, "filename") && !pi->has_filename) {
            pi->filename = pm;
            pi->has_filename = true;
        } else if (param_is(&pm, "filename*") && !pi->has_filename_ext) {
            pi->filename_ext = pm;
            pi->has_filename_ext = true;
        }
    }
    return r == 0;
}

/* One unfolded `Name: value` line without its CRLF. */
static bool parse_header_line(multipart_t *m, struct part_info *pi, const char *line, size_t n)
{
    struct cursor c = {line, line + n};
    size_t name_len = take_token(&c);
    if (name_len == 0 || c.p == c.end || *c.p != ':') {
        bad(m, "malformed multipart part header line");
        return false;
    }
    text_span value = text_trim(c.p + 1, (size_t)(c.end - c.p - 1));
    const char *v = value.p;
    size_t vn = value.n;
    if (text_ieq(line, name_len, "Content-Disposition") && !pi->has_disposition) {
        pi->has_disposition = true;
        if (!parse_disposition(pi, v, vn)) {
            bad(m, "malformed Content-Disposition in a multipart part");
            return false;
        }
    } else if (text_ieq(line, name_len, "Content-Type") && !pi->has_type) {
        pi->has_type = true;
        pi->type = v;
        pi->type_len = vn;
    }
    return true;
}

/* Joins obsolete folded lines (CRLF followed by SP/HT) into their header. */
static void unfold(char *h, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (h[i] == '\r' && h[i + 1] == '\n' && text_is_ows(h[i + 2]))
            h[i] = h[i + 1] = ' ';
    }
}

/* Records the first file part's name and type; it is delivered from now on. */
static bool start_file_part(multipart_t *m, const struct part_info *pi)
{
    struct out name = {m->filename, 0, sizeof(m->filename)};
    struct out type = {m->part_type, 0, sizeof(m->part_type)};
    bool ok = pi->has_filename_ext
                  ? out_ext_value(&name, pi->filename_ext.value, pi->filename_ext.value_len)
                  : out_param(&name, &pi->filename);
    if (!ok) {
        bad(m, "malformed filename in a multipart part");
        return false;
    }
    for (size_t i = 0; pi->has_type && i < pi->type_len; i++) {
        bool fits = out_put(&type, pi->type[i]);
        assert(fits); /* a value is shorter than its header block; NUL was refused */
        (void)fits;
    }
    m->found_file = true;
    m->delivering = true;
    return true;
}

/* Parses the complete header block in hdr and enters the part body. */
static void end_headers(multipart_t *m)
{
    struct part_info pi = {0};
    assert(m->hlen >= 2 && m->hdr[m->hlen - 2] == '\r' && m->hdr[m->hlen - 1] == '\n');
    unfold(m->hdr, m->hlen);
    const char *p = m->hdr, *end = m->hdr + m->hlen - 2; /* without the blank line */
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        assert(eol != NULL && eol[1] == '\n');
        if (!parse_header_line(m, &pi, p, (size_t)(eol - p)))
            return;
        p = eol + 2;
    }
    bool is_file = pi.has_filename || pi.has_filename_ext;
    assert(!m->delivering);
    if (is_file && !m->found_file && !start_file_part(m, &pi))
        return;
    m->state = ST_BODY;
    m->match = 0;
}

/* True when hdr now ends the header block: an empty line. */
static bool headers_complete(const multipart_t *m)
{
    const char *h = m->hdr;
    size_t n = m->hlen;
    if (n == 2)
        return h[0] == '\r' && h[1] == '\n';
    return n >= 4 && memcmp(h + n - 4, "\r\n\r\n", 4) == 0;
}

/* Collects header bytes; CR must pair with LF, NUL is refused. */
static size_t on_headers(multipart_t *m, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool after_cr = m->hlen > 0 && m->hdr[m->hlen - 1] == '\r';
        if (m->hlen == sizeof(m->hdr)) {
            bad(m, "multipart part headers exceed " STR(MULTIPART_MAX_HEADER) " bytes");
            return i;
        }
        if (c == '\0' || (c == '\n') != after_cr) {
            bad(m, "malformed multipart part header (bare CR, LF or NUL)");
            return i;
        }
        m->hdr[m->hlen++] = c;
        if (headers_complete(m)) {
            end_headers(m);
            return i + 1;
        }
    }
    return n;
}

/* ---- delimiter scanning ------------------------------------------------- */

/* A whole delimiter was seen: the current part (if any) is over. */
static void on_delimiter(multipart_t *m)
{
    m->match = 0;
    m->delivering = false;
    m->state = ST_TAIL;
}

/* Continues a partial delimiter match; releases the held bytes on mismatch
 * without consuming the mismatching byte. */
static size_t scan_match(multipart_t *m, const char *p, size_t n)
{
    size_t i = 0;
    assert(m->match > 0 && m->match < m->dlen);
    while (i < n && m->match < m->dlen && p[i] == m->delim[m->match]) {
        i++;
        m->match++;
    }
    if (m->match == m->dlen) {
        on_delimiter(m);
    } else if (i < n) {
        size_t held = m->match;
        m->match = 0;
        emit(m, m->delim, held);
    }
    return i;
}

/* Length of the common prefix of p[0..n) and the delimiter. */
static size_t delim_prefix(const multipart_t *m, const char *p, size_t n)
{
    size_t k = 0;
    while (k < n && k < m->dlen && p[k] == m->delim[k])
        k++;
    return k;
}

/* PREAMBLE and BODY: looks for the delimiter at each CR of the chunk (the
 * only place one can start) and emits everything before it in one piece. A
 * delimiter prefix cut off by the end of the chunk is held back. */
static size_t on_scan(multipart_t *m, const char *p, size_t n)
{
    if (m->match > 0)
        return scan_match(m, p, n);
    for (size_t i = 0;;) {
        const char *cr = memchr(p + i, '\r', n - i);
        if (cr == NULL) {
            emit(m, p, n);
            return n;
        }
        size_t at = (size_t)(cr - p), k = delim_prefix(m, cr, n - at);
        if (k == m->dlen || at + k == n) {
            emit(m, p, at);
            if (m->state == ST_FAILED)
                return at;
            m->match = k;
            if (k == m->dlen)
                on_delimiter(m);
            return at + k;
        }
        i = at + 1; /* not a delimiter: the CR is content */
    }
}

/* Something other than "--", padding or CRLF followed a delimiter. Before
 * the first part that is just preamble text; later it is an error. */
static size_t bad_tail(multipart_t *m)
{
    if (m->started) {
        bad(m, "malformed multipart boundary line");
        return 0;
    }
    m->state = ST_PREAMBLE;
    m->match = 0;
    return 0;
}

/* TAIL, DASH2, PAD, LF: the rest of a delimiter line, byte by byte. */
static size_t on_tail(multipart_t *m, char c)
{
    if (m->state == ST_TAIL && c == '-') {
        m->state = ST_DASH2;
    } else if (m->state == ST_DASH2 && c == '-') {
        m->started = true;
        m->state = ST_EPILOGUE;
    } else if ((m->state == ST_TAIL || m->state == ST_PAD) && text_is_ows(c)) {
        m->state = ST_PAD;
    } else if ((m->state == ST_TAIL || m->state == ST_PAD) && c == '\r') {
        m->state = ST_LF;
    } else if (m->state == ST_LF && c == '\n') {
        m->started = true;
        m->state = ST_HEADERS;
        m->hlen = 0;
    } else {
        return bad_tail(m);
    }
    return 1;
}

/* Runs the machine over p[0..n) from the current state; returns the bytes
 * consumed (0 only together with a state change, so the caller progresses). */
static size_t step(multipart_t *m, const char *p, size_t n)
{
    assert(n > 0);
    switch (m->state) {
    case ST_PREAMBLE:
    case ST_BODY:
        return on_scan(m, p, n);
    case ST_TAIL:
    case ST_DASH2:
    case ST_PAD:
    case ST_LF:
        return on_tail(m, p[0]);
    case ST_HEADERS:
        return on_headers(m, p, n);
    case ST_EPILOGUE:
        return n;
    case ST_FAILED:
        break;
    }
    assert(!"step in a failed state");
    return n;
}

/* ---- Content-Type and the public interface ------------------------------ */

/* Validates and copies a boundary parameter value (RFC 2046 §5.1.1). */
static bool take_boundary(const struct param *pm, char *out, size_t *len)
{
    struct out o = {out, 0, MULTIPART_MAX_BOUNDARY + 1};
    if (!out_param(&o, pm) || o.len == 0 || out[o.len - 1] == ' ')
        return false;
    for (size_t i = 0; i < o.len; i++)
        if (!is_bchar(out[i]))
            return false;
    *len = o.len;
    return true;
}

/* `multipart/form-data; boundary=...`: exactly one valid boundary parameter. */
static bool parse_content_type(const char *ct, char *boundary, size_t *len)
{
    struct cursor c = {ct, ct + strlen(ct)};
    struct param pm;
    int r, seen = 0;
    skip_ows(&c);
    const char *type = c.p;
    while (c.p < c.end && *c.p != ';' && !text_is_ows(*c.p))
        c.p++;
    if (!text_ieq(type, (size_t)(c.p - type), "multipart/form-data"))
        return false;
    while ((r = next_param(&c, &pm)) > 0) {
        if (!param_is(&pm, "boundary"))
            continue;
        if (seen++ > 0 || !take_boundary(&pm, boundary, len))
            return false;
    }
    return r == 0 && seen == 1;
}

multipart_t *multipart_create(const char *content_type, multipart_sink sink, void *ctx)
{
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    size_t blen = 0;
    assert(sink != NULL);
    if (content_type == NULL || !parse_content_type(content_type, boundary, &blen))
        return NULL;
    multipart_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->sink = sink;
    m->ctx = ctx;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, blen);
    m->dlen = blen + 4;
    m->state = ST_PREAMBLE;
    m->match = 2; /* the first delimiter may open the body without its CRLF */
    return m;
}

void multipart_destroy(multipart_t *m)
{
    free(m);
}

cb_err multipart_feed(multipart_t *m, const char *data, size_t n)
{
    size_t i = 0;
    assert(data != NULL || n == 0);
    while (i < n && m->state != ST_FAILED) {
        enum state before = m->state;
        size_t used = step(m, data + i, n - i);
        assert(used > 0 || m->state != before || m->match == 0);
        assert(used <= n - i);
        (void)before;
        i += used;
    }
    return m->err;
}

cb_err multipart_finish(multipart_t *m)
{
    switch (m->state) {
    case ST_FAILED:
        return m->err;
    case ST_EPILOGUE:
        return CB_EOK;
    case ST_PREAMBLE:
        bad(m, "multipart body has no boundary line");
        break;
    default:
        bad(m, "multipart body truncated: closing boundary missing");
        break;
    }
    return m->err;
}

bool multipart_found_file(const multipart_t *m)
{
    return m->found_file;
}

const char *multipart_filename(const multipart_t *m)
{
    return m->filename;
}

const char *multipart_part_type(const multipart_t *m)
{
    return m->part_type;
}

const char *multipart_error(const multipart_t *m)
{
    return m->reason != NULL ? m->reason : "";
}
