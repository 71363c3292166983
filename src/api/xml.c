/*
 * xml.c — XML carriers to and from JSON values (see xml.h for the mapping).
 *
 * Reading runs expat with namespace processing (names arrive as
 * "URI\x01local": \x01 cannot occur in an XML 1.0 document, so it can never
 * be part of a URI) over an explicit stack of open elements, one frame per
 * level. A frame holds the object of its child elements (NULL until the
 * first one) and the text seen so far; when the element ends its value is
 * built and set into the parent's object. Any fault sets st->failed, records
 * the reason and line once and stops the parser; every handler does nothing
 * once failed, since expat may still deliver an event or two after
 * XML_StopParser. Nothing from a DOCTYPE is ever processed: the parser stops
 * at its first token, and parameter entities are never read.
 *
 * Writing goes through a buf_writer (core/buf.h), whose first error
 * sticks, so that the emitters stay linear; on error the buffer is cut
 * back to where it started.
 */
#include "api/xml.h"

#include <assert.h>
#include <expat.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_SEP '\x01'
#define NIL_ATTR XML_XSI_NS "\x01nil"
#define REFUSED_TEXT "XML with a DOCTYPE or entity declarations is refused"

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    json_t *obj; /* child elements so far; NULL until the first */
    buf_t text;
    bool nil;
} frame;

typedef struct {
    XML_Parser p;
    frame stack[XML_DEPTH_MAX];
    int depth; /* open elements */
    int members;
    json_t *result;
    char *root;
    size_t root_cap;
    bool failed;
    char *err;
    size_t err_cap;
    int line;
} parse_state;

/* Records the first fault (reason and line) and stops the parser. */
static void fail(parse_state *st, int line, const char *why)
{
    if (st->failed)
        return;
    st->failed = true;
    st->line = line;
    if (st->err != NULL && st->err_cap > 0)
        snprintf(st->err, st->err_cap, "%s", why);
    XML_StopParser(st->p, XML_FALSE);
}

static int current_line(const parse_state *st)
{
    XML_Size line = XML_GetCurrentLineNumber(st->p);
    return line > INT_MAX ? INT_MAX : (int)line;
}

static void fail_here(parse_state *st, const char *why)
{
    fail(st, current_line(st), why);
}

static void refuse(parse_state *st)
{
    fail(st, XML_LINE_REFUSED, REFUSED_TEXT);
}

/* The local part of an expat name ("URI\x01local" or "local"). */
static const char *local_name(const XML_Char *name)
{
    const char *sep = strchr(name, NS_SEP);
    return sep != NULL ? sep + 1 : name;
}

/* Copies s into dst[cap], cutting on a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t cap, const char *s)
{
    if (dst == NULL || cap == 0)
        return;
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* xs:boolean true, allowing the whitespace the type collapses. */
static bool is_true(const char *v)
{
    v += strspn(v, " \t\r\n");
    size_t n = strcspn(v, " \t\r\n");
    if (v[n + strspn(v + n, " \t\r\n")] != '\0')
        return false;
    return (n == 4 && memcmp(v, "true", 4) == 0) || (n == 1 && v[0] == '1');
}

static bool has_nil(const XML_Char **attrs)
{
    for (size_t i = 0; attrs[i] != NULL; i += 2) {
        if (strcmp(attrs[i], NIL_ATTR) == 0 && is_true(attrs[i + 1]))
            return true;
    }
    return false;
}

/* Counts a new child of the top frame and makes sure it has an object. */
static bool adopt_child(parse_state *st)
{
    frame *parent = &st->stack[st->depth - 1];
    if (++st->members > XML_MEMBERS_MAX) {
        fail_here(st, "more than 1024 elements");
        return false;
    }
    if (parent->obj == NULL && (parent->obj = json_object()) == NULL) {
        fail_here(st, "out of memory");
        return false;
    }
    return true;
}

static void XMLCALL on_start(void *ctx, const XML_Char *name, const XML_Char **attrs)
{
    parse_state *st = ctx;
    if (st->failed)
        return;
    if (st->depth == XML_DEPTH_MAX) {
        fail_here(st, "elements nested deeper than 32 levels");
        return;
    }
    if (st->depth == 0)
        copy_utf8(st->root, st->root_cap, local_name(name));
    else if (!adopt_child(st))
        return;
    frame *f = &st->stack[st->depth++];
    assert(f->obj == NULL);
    f->nil = has_nil(attrs);
    buf_reset(&f->text);
}

static void XMLCALL on_text(void *ctx, const XML_Char *s, int len)
{
    parse_state *st = ctx;
    if (st->failed || st->depth == 0)
        return;
    frame *f = &st->stack[st->depth - 1];
    if (f->obj != NULL || f->nil)
        return; /* text between child elements, or of a null */
    assert(len >= 0);
    if (buf_append(&f->text, s, (size_t)len) != CB_EOK)
        fail_here(st, "out of memory");
}

static bool all_space(const buf_t *b)
{
    const char *s = buf_str(b);
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* The value of the frame that just closed; takes its object. */
static json_t *frame_value(frame *f, bool is_root)
{
    json_t *obj = f->obj;
    f->obj = NULL;
    if (f->nil) {
        json_decref(obj);
        return json_null();
    }
    if (obj != NULL)
        return obj;
    if (is_root && all_space(&f->text))
        return json_object();
    return json_stringn(buf_str(&f->text), f->text.len);
}

static void XMLCALL on_end(void *ctx, const XML_Char *name)
{
    parse_state *st = ctx;
    if (st->failed)
        return;
    assert(st->depth > 0);
    frame *f = &st->stack[--st->depth];
    json_t *v = frame_value(f, st->depth == 0);
    if (v == NULL) {
        fail_here(st, "out of memory");
        return;
    }
    if (st->depth == 0) {
        assert(st->result == NULL);
        st->result = v;
        return;
    }
    /* set, not add: a repeated name replaces the earlier value */
    if (json_object_set_new(st->stack[st->depth - 1].obj, local_name(name), v) != 0)
        fail_here(st, "out of memory");
}

static void XMLCALL on_xml_decl(void *ctx, const XML_Char *version, const XML_Char *encoding,
                                int standalone)
{
    parse_state *st = ctx;
    (void)version;
    (void)standalone;
    if (encoding != NULL && strcasecmp(encoding, "utf-8") != 0)
        fail_here(st, "the document's encoding is not UTF-8");
}

static void XMLCALL on_doctype(void *ctx, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    refuse(ctx);
}

static void XMLCALL on_entity_decl(void *ctx, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base;
    (void)sysid, (void)pubid, (void)notation;
    refuse(ctx);
}

static void XMLCALL on_skipped_entity(void *ctx, const XML_Char *name, int is_param)
{
    (void)name, (void)is_param;
    refuse(ctx);
}

static int XMLCALL on_external_entity(XML_Parser p, const XML_Char *context, const XML_Char *base,
                                      const XML_Char *sysid, const XML_Char *pubid)
{
    (void)context, (void)base, (void)sysid, (void)pubid;
    refuse(XML_GetUserData(p));
    return XML_STATUS_ERROR;
}

static void install_handlers(parse_state *st)
{
    XML_Parser p = st->p;
    XML_SetUserData(p, st);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetXmlDeclHandler(p, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity_decl);
    XML_SetSkippedEntityHandler(p, on_skipped_entity);
    XML_SetExternalEntityRefHandler(p, on_external_entity);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
}

/* UTF-16 and UTF-32 (with a BOM or not) contain NUL bytes or start with
 * FE FF / FF FE; UTF-8 text never does. Expat would otherwise decode them. */
static bool looks_utf8(const char *data, size_t len)
{
    if (len == 0)
        return true; /* and data may be NULL */
    if (len >= 2 &&
        ((data[0] == '\xFE' && data[1] == '\xFF') || (data[0] == '\xFF' && data[1] == '\xFE')))
        return false;
    return memchr(data, '\0', len) == NULL;
}

/* Feeds the whole input, in pieces that fit expat's int lengths. */
static void run(parse_state *st, const char *data, size_t len)
{
    do {
        size_t n = len > INT_MAX ? INT_MAX : len;
        bool last = n == len;
        if (XML_Parse(st->p, data, (int)n, last) != XML_STATUS_OK) {
            enum XML_Error code = XML_GetErrorCode(st->p);
            if (code == XML_ERROR_UNDEFINED_ENTITY)
                refuse(st); /* &name; with no DOCTYPE at all */
            else
                fail_here(st, XML_ErrorString(code));
            return;
        }
        data += n;
        len -= n;
    } while (len > 0);
    assert(st->failed || st->result != NULL);
}

static void state_free(parse_state *st)
{
    for (int i = 0; i < XML_DEPTH_MAX; i++) {
        json_decref(st->stack[i].obj);
        buf_free(&st->stack[i].text);
    }
    if (st->p != NULL)
        XML_ParserFree(st->p);
}

json_t *xml_parse(const char *data, size_t len, char *root, size_t root_cap, char *err,
                  size_t err_cap, int *err_line)
{
    assert(data != NULL || len == 0);
    parse_state st = {.root = root, .root_cap = root_cap, .err = err, .err_cap = err_cap};
    for (int i = 0; i < XML_DEPTH_MAX; i++)
        buf_init(&st.stack[i].text, len); /* decoded text never outgrows its source */
    copy_utf8(root, root_cap, "");
    st.p = XML_ParserCreateNS(NULL, NS_SEP);
    if (st.p == NULL) {
        st.failed = true;
        copy_utf8(err, err_cap, "out of memory");
        goto out;
    }
    if (!looks_utf8(data, len)) {
        fail(&st, 1, "the document is not UTF-8");
        goto out;
    }
    install_handlers(&st);
    run(&st, data != NULL ? data : "", len);
out:
    state_free(&st);
    if (st.failed) {
        json_decref(st.result);
        st.result = NULL;
        copy_utf8(root, root_cap, "");
        if (err_line != NULL)
            *err_line = st.line;
    }
    return st.result;
}

/* ---- writing ------------------------------------------------------------- */

/* Decodes one UTF-8 character of s[0..n), n > 0; -1 when invalid (then it
 * is one byte long). Sets *used to its byte length. */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t *used)
{
    static const unsigned char len_of[] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};
    static const int32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t k = len_of[s[0] >> 4];
    *used = 1;
    if (k == 0 || k > n || (k == 4 && s[0] > 0xF4))
        return -1;
    int32_t c = k == 1 ? s[0] : s[0] & (0x3F >> (k - 1));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min_of[k] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    *used = k;
    return c;
}

/* XML 1.0 (fifth edition) NameStartChar, without ':'. */
static bool name_start(int32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
           (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) || c == 0x200C ||
           c == 0x200D || (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
           (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
           (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

/* XML 1.0 NameChar, without ':'. */
static bool name_char(int32_t c)
{
    return name_start(c) || c == '-' || c == '.' || (c >= '0' && c <= '9') || c == 0xB7 ||
           (c >= 0x300 && c <= 0x36F) || c == 0x203F || c == 0x2040;
}

/* Writes name as a valid element name (see xml.h). */
static void put_name(buf_writer *w, const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name), used;
    int32_t first = n > 0 ? utf8_next(s, n, &used) : -1;
    if (n == 0 || (!name_start(first) && name_char(first)))
        buf_w_append(w, "_", 1); /* "1x" → "_1x"; ":x" becomes "_x" below */
    for (size_t i = 0; i < n; i += used) {
        int32_t c = utf8_next(s + i, n - i, &used);
        if (name_char(c))
            buf_w_append(w, name + i, used);
        else
            buf_w_append(w, "_", 1);
    }
}

/* Characters XML 1.0 allows in a document. */
static bool xml_char(int32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* The escape of an ASCII character, or NULL when it stands for itself. */
static const char *escape_of(int32_t c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\r':
        return "&#13;";
    default:
        return NULL;
    }
}

static void put_text(buf_writer *w, const char *s, size_t n)
{
    size_t used;
    for (size_t i = 0; i < n; i += used) {
        int32_t c = utf8_next((const unsigned char *)s + i, n - i, &used);
        const char *esc = escape_of(c);
        if (esc != NULL)
            buf_w_puts(w, esc);
        else if (xml_char(c))
            buf_w_append(w, s + i, used);
        else
            buf_w_puts(w, "\xEF\xBF\xBD"); /* U+FFFD */
    }
}

/* The shortest %.Ng (N ≤ 17) that reads back to d exactly. */
static void put_real(buf_writer *w, double d)
{
    char tmp[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    buf_w_puts(w, tmp);
}

static void put_scalar(buf_writer *w, json_t *v)
{
    char tmp[32];
    switch (json_typeof(v)) {
    case JSON_STRING:
        put_text(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        buf_w_puts(w, tmp);
        break;
    case JSON_REAL:
        put_real(w, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        buf_w_puts(w, json_is_true(v) ? "true" : "false");
        break;
    default:
        assert(!"not a scalar");
    }
}

static void put_element(buf_writer *w, const char *name, json_t *v, int depth);

/* The children of an object (members) or an array (items). */
static void put_children(buf_writer *w, const char *name, json_t *v, int depth)
{
    if (depth > XML_WRITE_DEPTH_MAX) {
        if (w->err == CB_EOK)
            w->err = CB_EINTERNAL;
        return;
    }
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, item)
        {
            put_element(w, key, item, depth + 1);
        }
    } else {
        json_array_foreach(v, i, item)
        {
            put_element(w, xml_item_name(name), item, depth + 1);
        }
    }
}

static void put_element(buf_writer *w, const char *name, json_t *v, int depth)
{
    buf_w_puts(w, "<");
    put_name(w, name);
    if (json_is_null(v)) {
        buf_w_puts(w, " i:nil=\"true\"/>");
        return;
    }
    buf_w_puts(w, ">");
    if (json_is_object(v) || json_is_array(v))
        put_children(w, name, v, depth);
    else
        put_scalar(w, v);
    buf_w_puts(w, "</");
    put_name(w, name);
    buf_w_puts(w, ">");
}

/* The root: the namespace of i:nil is declared unless the value is a plain
 * scalar, which can hold no nil. */
static void put_root(buf_writer *w, const char *root, json_t *v)
{
    bool scalar = !json_is_object(v) && !json_is_array(v) && !json_is_null(v);
    buf_w_puts(w, "<");
    put_name(w, root);
    if (scalar) {
        buf_w_puts(w, ">");
        put_scalar(w, v);
    } else {
        buf_w_puts(w, " xmlns:i=\"" XML_XSI_NS "\"");
        if (json_is_null(v)) {
            buf_w_puts(w, " i:nil=\"true\"/>");
            return;
        }
        buf_w_puts(w, ">");
        put_children(w, root, v, 1);
    }
    buf_w_puts(w, "</");
    put_name(w, root);
    buf_w_puts(w, ">");
}

cb_err xml_write(buf_t *out, const char *root, json_t *value)
{
    assert(out != NULL && root != NULL && value != NULL);
    size_t start = out->len;
    buf_writer w = buf_writer_on(out);
    buf_w_puts(&w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    put_root(&w, root, value);
    if (w.err != CB_EOK) {
        out->len = start; /* cut back: no half document */
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return w.err;
}

const char *xml_item_name(const char *name)
{
    (void)name;
    return "Item";
}
