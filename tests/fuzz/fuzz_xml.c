/*
 * fuzz_xml.c — the XML carrier reader and writer directly: xml_parse() on
 * the input as a document, and xml_write() of the input read as JSON.
 *
 * Invariants beyond "no crash":
 *  - parse → write → parse round trip: a document xml_parse accepts,
 *    written back by xml_write under its root name, reads back to an equal
 *    value with the same root name;
 *  - a refused document reports a line >= 1 or XML_LINE_REFUSED, and an
 *    empty root name;
 *  - write → parse: any JSON value within the reader's limits (depth,
 *    element count) that xml_write writes is well-formed XML that
 *    xml_parse accepts, under the root name it was given.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROOT_MAX 1024

/* KNOWN BUG (crashes/xml-1): xml_write keeps the name characters of XML
 * 1.0 fifth edition (U+079C, say) but expat only takes those of the
 * fourth edition, so such a member name makes a document xml_parse
 * refuses. Until fixed, write → parse is only checked for ASCII names
 * unless FUZZ_STRICT is set in the environment. */
static bool has_non_ascii_name(json_t *v)
{
    const char *k;
    size_t i;
    json_t *c;
    if (json_is_object(v)) {
        json_object_foreach(v, k, c)
        {
            for (const char *p = k; *p; p++)
                if ((unsigned char)*p >= 0x80)
                    return true;
            if (has_non_ascii_name(c))
                return true;
        }
    }
    json_array_foreach(v, i, c)
    {
        if (has_non_ascii_name(c))
            return true;
    }
    return false;
}

/* Elements xml_write makes below the root for v, and its depth of nested
 * containers (0 for a scalar or an empty container). */
static size_t elements(json_t *v, int *depth)
{
    size_t n = 0;
    int d = 0, cd;
    *depth = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            n += 1 + elements(c, &cd);
            d = cd > d ? cd : d;
        }
        *depth = json_object_size(v) ? d + 1 : 0;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            n += 1 + elements(c, &cd);
            d = cd > d ? cd : d;
        }
        *depth = json_array_size(v) ? d + 1 : 0;
    }
    return n;
}

static void parse_write_parse(const char *data, size_t size)
{
    char root[ROOT_MAX], root2[ROOT_MAX], err[256] = "";
    int line = 0;
    json_t *v = xml_parse(data, size, root, sizeof(root), err, sizeof(err), &line);
    if (v == NULL) {
        assert(line >= 1 || line == XML_LINE_REFUSED);
        assert(root[0] == '\0' && err[0] != '\0');
        return;
    }
    assert(json_is_object(v) || json_is_string(v) || json_is_null(v));
    if (strlen(root) < sizeof(root) - 8) { /* a truncated name would not compare */
        buf_t out;
        buf_init(&out, 16u << 20);
        assert(xml_write(&out, root, v) == CB_EOK);
        json_t *w = xml_parse(out.data, out.len, root2, sizeof(root2), err, sizeof(err), &line);
        assert(w != NULL && json_equal(v, w) && strcmp(root, root2) == 0);
        json_decref(w);
        buf_free(&out);
    }
    json_decref(v);
}

static void write_parse(const char *data, size_t size)
{
    json_t *v = json_loadb(data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v == NULL)
        return;
    int depth;
    size_t n = elements(v, &depth);
    buf_t out;
    buf_init(&out, 16u << 20);
    bool known = has_non_ascii_name(v) && getenv("FUZZ_STRICT") == NULL;
    if (xml_write(&out, "BlobEntity", v) == CB_EOK && n <= XML_MEMBERS_MAX &&
        depth + 1 <= XML_DEPTH_MAX && !known) {
        char root[ROOT_MAX], err[256] = "";
        int line = 0;
        json_t *w = xml_parse(out.data, out.len, root, sizeof(root), err, sizeof(err), &line);
        if (w == NULL)
            fprintf(stderr, "xml_write made a document xml_parse refuses (line %d: %s):\n%.*s\n",
                    line, err, (int)out.len, out.data);
        assert(w != NULL && strcmp(root, "BlobEntity") == 0);
        json_decref(w);
    }
    buf_free(&out);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_write_parse((const char *)data, size);
    write_parse((const char *)data, size);
    return 0;
}
