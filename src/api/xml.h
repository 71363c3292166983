/*
 * xml.h — the XML representation of carriers (SPEC §4), as a translation to
 * and from jansson values so that the rest of the API only handles JSON.
 *
 * Reading (xml_parse) maps a carrier document onto a JSON object:
 * - each child element of the root becomes a member named by its local
 *   name: namespaces and prefixes are dropped (<a:Description> and
 *   <Description xmlns="urn:x"> both give "Description"). Prefixes must be
 *   declared: an unbound prefix is malformed XML;
 * - an element with child elements becomes a nested object (recursively);
 *   text mixed between its child elements, whitespace or not, is ignored;
 * - an element whose attribute nil (in the XMLSchema-instance namespace
 *   http://www.w3.org/2001/XMLSchema-instance, any prefix) is "true" or "1"
 *   becomes null, whatever its content;
 * - any other element becomes a string of its text content exactly as
 *   decoded (CDATA, predefined entities and character references
 *   included; whitespace kept; empty element → "");
 * - a repeated member name: the later element wins (no arrays are made);
 * - other attributes, xmlns declarations, comments and processing
 *   instructions are ignored.
 * The root's local name is returned apart. A root with child elements is an
 * object; a nil root is null; a root with text only (`<int>5</int>`) is that
 * string; an empty or whitespace-only root (`<BlobEntity/>`) is the empty
 * object, as `{}` would be in JSON. Callers check the type they get.
 *
 * Refused, before anything of them is processed: any DOCTYPE (internal or
 * external subset), hence any entity declaration, and any reference to an
 * entity other than the five predefined ones. These make xml_parse fail
 * with *err_line == XML_LINE_REFUSED, the caller's cue to answer
 * MSG_XML_DTD rather than MSG_BAD_XML ("Malformed XML at line N").
 *
 * Limits: at most XML_DEPTH_MAX nested elements counting the root, at most
 * XML_MEMBERS_MAX elements below the root in all. Input must be UTF-8: an
 * XML declaration naming another encoding, a UTF-16 byte order mark or a
 * NUL byte is an error.
 *
 * Writing (xml_write) is the inverse for answers: see its comment. Element
 * names are made valid XML 1.0 names without a colon: each character that
 * may not be in a name (':' included) becomes '_', and '_' is put in front
 * of a name whose first character may not start one ("1x" → "_1x", "" →
 * "_"). Text keeps every character XML 1.0 allows; the others (C0 controls
 * but tab, LF and CR; U+FFFE, U+FFFF; invalid UTF-8 bytes) are replaced by
 * U+FFFD. CR is written as &#13; so that it survives a reader's line-end
 * normalisation.
 */
#ifndef CB_XML_H
#define CB_XML_H

#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define XML_DEPTH_MAX 32
#define XML_MEMBERS_MAX 1024
#define XML_WRITE_DEPTH_MAX 256
/* *err_line of xml_parse for a refused DOCTYPE or entity. */
#define XML_LINE_REFUSED (-1)
/* The namespace of i:nil. */
#define XML_XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

/* Parses data[0..len) (no NUL terminator needed). On success returns a new
 * reference (object, string or null as described above), and copies the
 * root's local name into root (truncated to root_cap - 1 bytes on a UTF-8
 * character boundary). On failure returns NULL with a reason in err and in
 * *err_line the line of the fault (1-based) or XML_LINE_REFUSED; root is
 * then "". Every out parameter may be NULL (with a zero cap). */
json_t *xml_parse(const char *data, size_t len, char *root, size_t root_cap, char *err,
                  size_t err_cap, int *err_line);

/* Appends `<?xml version="1.0" encoding="utf-8"?>` and the document whose
 * root is named root:
 * - an object: <Root xmlns:i="XML_XSI_NS"> and one child per member, in
 *   the object's order, then </Root>;
 * - a string, number or boolean: <Root>text</Root> with no namespace
 *   declaration (the PUT Image answer <int>167</int>);
 * - null: <Root xmlns:i="..." i:nil="true"/>; an array: as an object
 *   whose members are its items (see below).
 * Member values: string → escaped text; integer → decimal; real → the
 * shortest %g form that reads back to the same double; true/false →
 * `true`/`false`; null → <Name i:nil="true"/>; object → its members as
 * children (FieldProperties: one child per field name); array → one child
 * per item, named xml_item_name(Name). Returns CB_ETOOLARGE when out's cap
 * is reached, CB_EINTERNAL when memory runs out or value nests deeper than
 * XML_WRITE_DEPTH_MAX (a cycle); on error out is left as it was. */
cb_err xml_write(buf_t *out, const char *root, json_t *value);

/* The element name of the items of an array member named name. For now
 * always "Item"; xml_parse does not rebuild arrays (the last item wins). */
const char *xml_item_name(const char *name);

#endif
