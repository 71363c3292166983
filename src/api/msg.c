/*
 * msg.c — the message catalogues: parsing the embedded <lang>.msg texts,
 * picking a request's locale from its headers, filling a template's {n}
 * placeholders with strings, quantities and identifiers.
 *
 * Invariants: the catalogues are parsed exactly once (pthread_once) into
 * templates[lang][id], malloc'd strings kept for the life of the process and
 * only read afterwards; a line the parser cannot use is logged, counted and
 * skipped; a message a language lacks falls back to English, and one English
 * lacks to its id name, so msg_format always has a text. A placeholder
 * naming a missing argument is left as written so that a faulty translation
 * shows up in the text rather than crashing.
 */
#include "api/msg.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/msg_catalog.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/text.h"

#define MSG_TEXT_MAX 4096 /* an answer's message, placeholders filled in */

static const char *const id_names[MSG__COUNT] = {
#define MSG_NAME(id) [MSG_##id] = #id,
    MSG_MAP(MSG_NAME)
#undef MSG_NAME
};

static const char *const lang_codes[MSG_LANG__COUNT] = {
    [MSG_LANG_EN] = "en", [MSG_LANG_NO] = "no", [MSG_LANG_SV] = "sv",
    [MSG_LANG_DA] = "da", [MSG_LANG_DE] = "de", [MSG_LANG_NL] = "nl",
};

/* Digit group separator of each culture; plain_numbers writes none. */
static const char group_seps[MSG_LANG__COUNT] = {
    [MSG_LANG_EN] = ',', [MSG_LANG_NO] = ' ', [MSG_LANG_SV] = ' ',
    [MSG_LANG_DA] = '.', [MSG_LANG_DE] = '.', [MSG_LANG_NL] = '.',
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char *templates[MSG_LANG__COUNT][MSG__COUNT];
static size_t warnings;

/* ---- small text helpers ---- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static text_span span_of(const char *s)
{
    return s == NULL ? (text_span){"", 0} : text_trim(s, strlen(s));
}

/* Splits s at the first sep: *head before it, the rest after it (empty
 * when there is no sep). */
static text_span split(text_span s, char sep, text_span *rest)
{
    const char *at = memchr(s.p, sep, s.n);
    size_t n = at == NULL ? s.n : (size_t)(at - s.p);
    *rest = at == NULL ? (text_span){s.p + s.n, 0} : (text_span){at + 1, s.n - n - 1};
    return text_trim(s.p, n);
}

/* ---- catalogue loading ---- */

static void catalog_warn(const char *path, int line, const char *what, text_span s)
{
    warnings++;
    log_warn("messages/%s:%d: %s '%.*s', ignored", path, line, what, (int)s.n, s.p);
}

static bool find_id(text_span name, msg_id *out)
{
    for (int i = 0; i < MSG__COUNT; i++) {
        if (strlen(id_names[i]) == name.n && memcmp(id_names[i], name.p, name.n) == 0) {
            *out = (msg_id)i;
            return true;
        }
    }
    return false;
}

/* One line of a catalogue: a comment, blank, or `ID = template`. */
static void parse_line(const msg_catalog_file *f, msg_lang lang, int lineno, text_span line)
{
    line = text_trim(line.p, line.n);
    if (line.n == 0 || line.p[0] == '#')
        return;
    text_span text;
    text_span name = split(line, '=', &text);
    text = text_trim(text.p, text.n);
    msg_id id;
    if (name.n == line.n || text.n == 0) {
        catalog_warn(f->path, lineno, "not a line of the form ID = text:", line);
    } else if (!find_id(name, &id)) {
        catalog_warn(f->path, lineno, "unknown message id", name);
    } else if (templates[lang][id] != NULL) {
        catalog_warn(f->path, lineno, "second text for", name);
    } else {
        templates[lang][id] = strndup(text.p, text.n);
        if (templates[lang][id] == NULL)
            abort(); /* out of memory before the first answer: nothing to save */
    }
}

static void parse_file(const msg_catalog_file *f, msg_lang lang)
{
    text_span rest = {f->text, strlen(f->text)};
    if (rest.n >= 3 && memcmp(rest.p, "\xEF\xBB\xBF", 3) == 0) { /* a BOM some editors write */
        rest.p += 3;
        rest.n -= 3;
    }
    for (int lineno = 1; rest.n > 0; lineno++) {
        text_span line = split(rest, '\n', &rest);
        parse_line(f, lang, lineno, line);
    }
}

/* Bit k set when {k} occurs; *count is the number of placeholders. */
static unsigned placeholder_mask(const char *t, int *count)
{
    unsigned mask = 0;
    *count = 0;
    for (; *t; t++) {
        if (t[0] == '{' && t[1] >= '0' && t[1] <= '9' && t[2] == '}') {
            mask |= 1u << (t[1] - '0');
            (*count)++;
        }
    }
    return mask;
}

static bool same_placeholders(const char *a, const char *b)
{
    int na, nb;
    unsigned ma = placeholder_mask(a, &na), mb = placeholder_mask(b, &nb);
    return ma == mb && na == nb;
}

/* Each translation must use English's placeholders, each as often; a
 * message it lacks is answered in English (worth a warning, not an error). */
static void check_language(msg_lang lang)
{
    int missing = 0;
    for (int i = 0; i < MSG__COUNT; i++) {
        const char *en = templates[MSG_LANG_EN][i], *t = templates[lang][i];
        if (t == NULL) {
            missing++;
            continue;
        }
        if (en != NULL && !same_placeholders(en, t)) {
            warnings++;
            log_warn("messages/%s.msg: %s has other placeholders than in English: '%s'",
                     lang_codes[lang], id_names[i], t);
        }
    }
    if (missing > 0) {
        warnings++;
        log_warn("messages/%s.msg: %d of %d messages missing, answered in English",
                 lang_codes[lang], missing, (int)MSG__COUNT);
    }
}

static bool lang_of_file(const char *code, msg_lang *out)
{
    for (int l = 0; l < MSG_LANG__COUNT; l++) {
        if (strcmp(lang_codes[l], code) == 0) {
            *out = (msg_lang)l;
            return true;
        }
    }
    return false;
}

static void load(void)
{
    bool seen[MSG_LANG__COUNT] = {false};
    for (size_t i = 0; i < msg_catalog_nfiles; i++) {
        const msg_catalog_file *f = &msg_catalog_files[i];
        msg_lang lang;
        if (!lang_of_file(f->lang, &lang)) {
            catalog_warn(f->path, 0, "no such language", span_of(f->lang));
            continue;
        }
        parse_file(f, lang);
        seen[lang] = true;
    }
    for (int l = 0; l < MSG_LANG__COUNT; l++) {
        if (seen[l])
            check_language((msg_lang)l);
    }
}

static void ensure_loaded(void)
{
    int rc = pthread_once(&load_once, load);
    assert(rc == 0);
    (void)rc;
}

/* ---- locale picking ---- */

/* The supported language a tag's primary subtag names ("de-DE" → de). */
static bool lang_of_tag(text_span tag, msg_lang *out)
{
    size_t n = 0;
    while (n < tag.n && is_alpha(tag.p[n]))
        n++;
    if (text_ieq(tag.p, n, "nb") || text_ieq(tag.p, n, "nn")) {
        *out = MSG_LANG_NO;
        return true;
    }
    for (int l = 0; l < MSG_LANG__COUNT; l++) {
        if (text_ieq(tag.p, n, lang_codes[l])) {
            *out = (msg_lang)l;
            return true;
        }
    }
    return false;
}

/* The tag of a header's first list item ("de-DE;q=1, en" → "de-DE"). */
static text_span first_tag(const char *header)
{
    text_span rest;
    text_span item = split(span_of(header), ',', &rest);
    return split(item, ';', &rest);
}

/* RFC 9110 qvalue ("0", "0.5", "1.000") in thousandths; -1 if malformed. */
static int parse_qvalue(text_span v)
{
    if (v.n == 0 || (v.p[0] != '0' && v.p[0] != '1') || v.n > 5 || (v.n > 1 && v.p[1] != '.'))
        return -1;
    int q = (v.p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < v.n; i++, scale /= 10) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        q += (v.p[i] - '0') * scale;
    }
    return q <= 1000 ? q : -1;
}

/* The q of an item's parameters ("q=0.5;x=y"): 1000 when absent, -1 when
 * malformed. */
static int item_q(text_span params)
{
    while (params.n > 0) {
        text_span p = split(params, ';', &params);
        text_span value;
        text_span name = split(p, '=', &value);
        if (text_ieq(name.p, name.n, "q"))
            return parse_qvalue(text_trim(value.p, value.n));
    }
    return 1000;
}

/* What an Accept-Language header says about each supported language. */
typedef struct {
    int q[MSG_LANG__COUNT];   /* best q of an item naming it; -1 none */
    int pos[MSG_LANG__COUNT]; /* index of that item */
    int wild_q, wild_pos;     /* "*"; wild_q -1 when absent */
    bool named;               /* some item names a language, supported or not */
} accept_scan;

static void scan_item(accept_scan *s, text_span item, int pos)
{
    text_span params;
    text_span tag = split(item, ';', &params);
    int q = item_q(params);
    if (tag.n == 0 || q < 0)
        return; /* malformed: ignored, as RFC 9110 lets a recipient do */
    msg_lang l;
    if (tag.n == 1 && tag.p[0] == '*') {
        if (s->wild_q < 0) {
            s->wild_q = q;
            s->wild_pos = pos;
        }
        return;
    }
    s->named = true;
    if (lang_of_tag(tag, &l) && q > s->q[l]) {
        s->q[l] = q;
        s->pos[l] = pos;
    }
}

static accept_scan scan_accept(const char *header)
{
    accept_scan s = {.wild_q = -1, .wild_pos = 0, .named = false};
    for (int l = 0; l < MSG_LANG__COUNT; l++)
        s.q[l] = -1;
    text_span rest = span_of(header);
    for (int pos = 0; rest.n > 0; pos++)
        scan_item(&s, split(rest, ',', &rest), pos);
    return s;
}

/* The acceptable language with the highest q; ties: named before admitted
 * by "*", then header order, then English first. False when none. */
static bool best_accepted(const accept_scan *s, msg_lang *out)
{
    int best_q = 0, best_named = 0, best_pos = 0;
    bool found = false;
    for (int l = 0; l < MSG_LANG__COUNT; l++) {
        int named = s->q[l] >= 0;
        int q = named ? s->q[l] : s->wild_q, pos = named ? s->pos[l] : s->wild_pos;
        if (q <= 0)
            continue;
        bool better = !found || q > best_q || (q == best_q && named > best_named) ||
                      (q == best_q && named == best_named && pos < best_pos);
        if (better) {
            best_q = q;
            best_named = named;
            best_pos = pos;
            *out = (msg_lang)l;
            found = true;
        }
    }
    return found;
}

/* "*", "x" or "-" in SO-Language: translation off. */
static bool is_off(text_span tag)
{
    return tag.n == 1 && (tag.p[0] == '*' || tag.p[0] == 'x' || tag.p[0] == 'X' || tag.p[0] == '-');
}

msg_locale msg_locale_pick(const char *accept_language, const char *so_language,
                           const char *so_culture)
{
    const msg_locale off = {MSG_LANG_EN, MSG_LANG_EN, true};
    msg_locale loc = MSG_LOCALE_DEFAULT;
    text_span so = first_tag(so_language);
    if (so.n > 0) {
        if (is_off(so))
            return off;
        if (!lang_of_tag(so, &loc.lang))
            loc.lang = MSG_LANG_EN;
    } else if (span_of(accept_language).n > 0) {
        accept_scan s = scan_accept(accept_language);
        if (!best_accepted(&s, &loc.lang)) /* "*" alone admits English first */
            loc.lang = MSG_LANG_EN;
    }
    loc.culture = loc.lang;
    msg_lang c;
    if (lang_of_tag(first_tag(so_culture), &c))
        loc.culture = c;
    return loc;
}

/* ---- formatting ---- */

static inline bool lang_ok(msg_lang l)
{
    return (int)l >= 0 && (int)l < MSG_LANG__COUNT;
}

/* n in decimal, digits grouped by three with sep unless sep is 0. */
static void put_number(buf_writer *w, int64_t n, char sep)
{
    char digits[24];
    int len = 0;
    uint64_t u = n < 0 ? -(uint64_t)n : (uint64_t)n; /* unsigned: INT64_MIN is fine */
    do {
        digits[len++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (n < 0)
        buf_w_append(w, "-", 1);
    for (int i = len - 1; i >= 0; i--) {
        buf_w_append(w, &digits[i], 1);
        if (sep != 0 && i > 0 && i % 3 == 0)
            buf_w_append(w, &sep, 1);
    }
}

/* A string argument comes from the request (a path, a field name, a
 * parser's complaint about the body) and may not be UTF-8: each invalid
 * byte becomes U+FFFD, so that the error carrier can always be written. */
static void put_text(buf_writer *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = text_utf8_seq(p, n);
        if (len == 0) {
            buf_w_puts(w, "\xEF\xBF\xBD");
            len = 1;
        } else {
            buf_w_append(w, p, len);
        }
        p += len;
        n -= len;
    }
}

static void put_arg(buf_writer *w, const msg_locale *loc, const msg_arg *arg)
{
    switch (arg->kind) {
    case MSG_ARG_STR:
        put_text(w, arg->s != NULL ? arg->s : "");
        break;
    case MSG_ARG_NUM:
        put_number(w, arg->n, loc->plain_numbers ? 0 : group_seps[loc->culture]);
        break;
    case MSG_ARG_ID:
        put_number(w, arg->n, 0);
        break;
    }
}

static const char *template_for(msg_lang lang, msg_id id)
{
    ensure_loaded();
    if (templates[lang][id] != NULL)
        return templates[lang][id];
    if (templates[MSG_LANG_EN][id] != NULL)
        return templates[MSG_LANG_EN][id];
    return id_names[id]; /* en.msg lacks it: visible, not a crash */
}

char *msg_format(arena_t *a, const msg_locale *loc, msg_id id, const msg_arg *args, int nargs)
{
    const msg_locale dflt = MSG_LOCALE_DEFAULT;
    if (loc == NULL)
        loc = &dflt;
    assert(id >= 0 && id < MSG__COUNT);
    assert(lang_ok(loc->lang) && lang_ok(loc->culture));
    assert(nargs >= 0 && nargs <= MSG_MAX_ARGS && (nargs == 0 || args != NULL));
    const char *t = template_for(loc->lang, id);
    buf_t b;
    buf_init(&b, MSG_TEXT_MAX);
    buf_writer w = buf_writer_on(&b); /* past the cap: the text up to it */
    while (*t) {
        if (t[0] == '{' && t[1] >= '0' && t[1] <= '9' && t[2] == '}' && t[1] - '0' < nargs) {
            put_arg(&w, loc, &args[t[1] - '0']);
            t += 3;
        } else { /* a whole character: a cut never splits one */
            size_t len = text_utf8_seq((const unsigned char *)t, strnlen(t, 4));
            len = len > 0 ? len : 1;
            buf_w_append(&w, t, len);
            t += len;
        }
    }
    char *out = arena_strdup(a, buf_str(&b));
    buf_free(&b);
    return out;
}

/* ---- for tests and tools ---- */

const char *msg_template(msg_lang lang, msg_id id)
{
    assert(lang_ok(lang) && id >= 0 && id < MSG__COUNT);
    ensure_loaded();
    return templates[lang][id];
}

const char *msg_id_name(msg_id id)
{
    assert(id >= 0 && id < MSG__COUNT);
    return id_names[id];
}

const char *msg_lang_code(msg_lang lang)
{
    assert(lang_ok(lang));
    return lang_codes[lang];
}

size_t msg_catalog_warnings(void)
{
    ensure_loaded();
    return warnings;
}
