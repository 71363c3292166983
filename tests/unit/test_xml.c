/*
 * test_xml.c — unit tests of the XML carrier reader and writer.
 *
 * The reader is pinned down on the BlobEntity carrier in the spellings
 * clients send (no namespaces, a default namespace, prefixes, i:nil), on
 * every way a DOCTYPE or entity can come in (all refused with the distinct
 * XML_LINE_REFUSED), on malformed input (expat's reason and the line), and
 * on its limits. The writer is checked byte for byte on small documents and
 * by round trip: what xml_write makes, xml_parse reads back to the same
 * members with every scalar as its text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/xml.h"
#include "core/buf.h"

#define XSI "http://www.w3.org/2001/XMLSchema-instance"

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    json_t *v;
    char root[64];
    char err[256];
    int line;
} parsed;

static parsed parse_n(const char *data, size_t len)
{
    parsed p = {.line = 12345};
    p.v = xml_parse(data, len, p.root, sizeof(p.root), p.err, sizeof(p.err), &p.line);
    return p;
}

static parsed parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void assert_refused(const char *text)
{
    parsed p = parse(text);
    assert_null(p.v);
    assert_int_equal(p.line, XML_LINE_REFUSED);
    assert_string_equal(p.err, "XML with a DOCTYPE or entity declarations is refused");
}

/* A failure that is not a refusal, at the given line. */
static void assert_bad_at(const char *text, int line)
{
    parsed p = parse(text);
    assert_null(p.v);
    assert_int_equal(p.line, line);
    assert_true(p.err[0] != '\0');
}

static void assert_member(json_t *obj, const char *name, const char *text)
{
    json_t *v = json_object_get(obj, name);
    assert_non_null(v);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), text);
}

/* True when the parsed value x carries j's content with every scalar as
 * its XML text: numbers as decimal, booleans as true/false, null as null. */
static bool same_as_text(json_t *x, json_t *j)
{
    char tmp[64];
    const char *key;
    json_t *v;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        if (!json_is_object(x) || json_object_size(x) != json_object_size(j))
            return false;
        json_object_foreach(j, key, v)
        {
            if (!same_as_text(json_object_get(x, key), v))
                return false;
        }
        return true;
    case JSON_NULL:
        return json_is_null(x);
    case JSON_STRING:
        return json_is_string(x) && json_equal(x, j);
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return json_is_string(x) && strcmp(json_string_value(x), tmp) == 0;
    case JSON_REAL:
        return json_is_string(x) && strtod(json_string_value(x), NULL) == json_real_value(j);
    case JSON_TRUE:
    case JSON_FALSE:
        return json_is_string(x) &&
               strcmp(json_string_value(x), json_is_true(j) ? "true" : "false") == 0;
    default:
        return false;
    }
}

/* Writes value under root and returns the document (malloc'd). */
static char *write_doc(const char *root, json_t *value)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    assert_int_equal(xml_write(&b, root, value), CB_EOK);
    return buf_steal(&b, NULL);
}

#define DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>"

/* ---- samples --------------------------------------------------------------- */

static const char blob_plain[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<BlobEntity xmlns:i=\"" XSI "\">\n"
    "  <BlobId>605</BlobId>\n"
    "  <BlobSize>432</BlobSize>\n"
    "  <Description>Synchronised zero administration protocol</Description>\n"
    "  <ExtraInfo>fuga</ExtraInfo>\n"
    "  <IsEncrypted>true</IsEncrypted>\n"
    "  <IsZipped>false</IsZipped>\n"
    "  <MimeType>non</MimeType>\n"
    "  <OriginalSize>244</OriginalSize>\n"
    "  <CreatedDate>2003-12-07T02:49:51.3078143+01:00</CreatedDate>\n"
    "  <UpdatedDate>2005-09-08T02:49:51.3078143+02:00</UpdatedDate>\n"
    "  <CreatedBy>\n"
    "    <AssociateId>7</AssociateId>\n"
    "    <Name>tje0</Name>\n"
    "    <Deleted>false</Deleted>\n"
    "  </CreatedBy>\n"
    "  <UpdatedBy i:nil=\"true\"/>\n"
    "  <ConceptualType>sunt</ConceptualType>\n"
    "  <TableRight><Mask>FULL</Mask><Reason/></TableRight>\n"
    "</BlobEntity>\n";

/* The same carrier as a .NET DataContractSerializer writes it. */
static const char blob_ns[] =
    "<BlobEntity xmlns=\"http://www.superoffice.net/ws/crm/NetServer/Services88\"\n"
    "            xmlns:a=\"http://schemas.datacontract.org/2004/07/SuperOffice\"\n"
    "            xmlns:xsi=\"" XSI "\">\n"
    "  <BlobId>605</BlobId>\n"
    "  <a:Description>Synchronised zero administration protocol</a:Description>\n"
    "  <a:ExtraInfo xsi:type=\"string\">fuga</a:ExtraInfo>\n"
    "  <IsEncrypted>true</IsEncrypted>\n"
    "  <CreatedBy xsi:nil=\"false\">\n"
    "    <a:AssociateId>7</a:AssociateId>\n"
    "    <a:Name>tje0</a:Name>\n"
    "  </CreatedBy>\n"
    "  <UpdatedBy xsi:nil=\"true\"></UpdatedBy>\n"
    "  <ConceptualType>sunt</ConceptualType>\n"
    "</BlobEntity>";

/* ---- reading: the carrier ------------------------------------------------- */

static void test_parse_blob_plain(void **state)
{
    (void)state;
    parsed p = parse(blob_plain);
    assert_non_null(p.v);
    assert_string_equal(p.root, "BlobEntity");
    assert_true(json_is_object(p.v));
    assert_int_equal(json_object_size(p.v), 14);
    assert_member(p.v, "BlobId", "605");
    assert_member(p.v, "Description", "Synchronised zero administration protocol");
    assert_member(p.v, "IsEncrypted", "true");
    assert_member(p.v, "CreatedDate", "2003-12-07T02:49:51.3078143+01:00");
    json_t *by = json_object_get(p.v, "CreatedBy");
    assert_true(json_is_object(by));
    assert_int_equal(json_object_size(by), 3);
    assert_member(by, "AssociateId", "7");
    assert_member(by, "Name", "tje0");
    assert_true(json_is_null(json_object_get(p.v, "UpdatedBy")));
    json_t *tr = json_object_get(p.v, "TableRight");
    assert_member(tr, "Mask", "FULL");
    assert_member(tr, "Reason", "");
    /* members keep document order */
    assert_string_equal(json_object_iter_key(json_object_iter(p.v)), "BlobId");
    json_decref(p.v);
}

static void test_parse_blob_namespaces(void **state)
{
    (void)state;
    parsed p = parse(blob_ns);
    assert_non_null(p.v);
    assert_string_equal(p.root, "BlobEntity");
    assert_int_equal(json_object_size(p.v), 7);
    assert_member(p.v, "BlobId", "605");
    assert_member(p.v, "Description", "Synchronised zero administration protocol");
    assert_member(p.v, "ExtraInfo", "fuga");
    json_t *by = json_object_get(p.v, "CreatedBy");
    assert_true(json_is_object(by)); /* nil="false" is not nil */
    assert_member(by, "AssociateId", "7");
    assert_member(by, "Name", "tje0");
    assert_true(json_is_null(json_object_get(p.v, "UpdatedBy")));
    json_decref(p.v);
}

static void test_parse_prefixed_root_and_nil_forms(void **state)
{
    (void)state;
    parsed p = parse("<s:BlobEntity xmlns:s=\"urn:s\" xmlns:n=\"" XSI "\">"
                     "<s:CreatedBy n:nil=\"true\"><s:Name>x</s:Name></s:CreatedBy>"
                     "<s:A n:nil=\" 1 \"/>"
                     "<s:B n:nil=\"TRUE\"/>"
                     "<s:C xmlns:o=\"urn:other\" o:nil=\"true\">c</s:C>"
                     "<s:D nil=\"true\">d</s:D>"
                     "</s:BlobEntity>");
    assert_non_null(p.v);
    assert_string_equal(p.root, "BlobEntity");
    assert_true(json_is_null(json_object_get(p.v, "CreatedBy"))); /* nil wins over content */
    assert_true(json_is_null(json_object_get(p.v, "A")));
    assert_member(p.v, "B", "");  /* xs:boolean is case-sensitive */
    assert_member(p.v, "C", "c"); /* nil of another namespace */
    assert_member(p.v, "D", "d"); /* unprefixed: no namespace */
    json_decref(p.v);
}

/* A default namespace, even the XMLSchema-instance one, only names
 * elements: an unprefixed attribute is in no namespace. */
static void test_parse_default_xsi_namespace(void **state)
{
    (void)state;
    parsed p = parse("<BlobEntity xmlns=\"" XSI "\">"
                     "<Description>d</Description><CreatedBy nil=\"true\"/>"
                     "<UpdatedBy xmlns:i=\"" XSI "\" i:nil=\"true\"/></BlobEntity>");
    assert_non_null(p.v);
    assert_string_equal(p.root, "BlobEntity");
    assert_member(p.v, "Description", "d");
    assert_member(p.v, "CreatedBy", "");
    assert_true(json_is_null(json_object_get(p.v, "UpdatedBy")));
    json_decref(p.v);
}

static void test_parse_root_forms(void **state)
{
    (void)state;
    parsed p = parse("<int>5</int>");
    assert_true(json_is_string(p.v));
    assert_string_equal(json_string_value(p.v), "5");
    assert_string_equal(p.root, "int");
    json_decref(p.v);

    p = parse("<int xmlns:i=\"" XSI "\" i:nil=\"true\"/>");
    assert_true(json_is_null(p.v));
    json_decref(p.v);

    const char *empties[] = {"<BlobEntity/>", "<BlobEntity></BlobEntity>",
                             "<BlobEntity>\n  \t</BlobEntity>",
                             "<BlobEntity><!-- c --></BlobEntity>"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        p = parse(empties[i]);
        assert_true(json_is_object(p.v));
        assert_int_equal(json_object_size(p.v), 0);
        json_decref(p.v);
    }
}

/* ---- reading: text ----------------------------------------------------------- */

static void test_parse_text(void **state)
{
    (void)state;
    parsed p = parse("<r>\n"
                     "<Ws>  a  b \n</Ws>\n"
                     "<OnlyWs>   </OnlyWs>"
                     "<Empty></Empty><Empty2/>"
                     "<Ent>&lt;&gt;&amp;&quot;&apos;&#65;&#x263A;&#x1F600;</Ent>"
                     "<Cdata><![CDATA[<b>&amp;</b> ]]>tail</Cdata>"
                     "<Mixed>lost<X>1</X>lost too</Mixed>"
                     "<Utf>ærø 漢字</Utf>"
                     "<Dup>first</Dup><Dup>second</Dup>"
                     "<Attr a=\"1\" b=\"2\">v</Attr>"
                     "<?pi ignored?><!-- comment -->"
                     "<Crlf>a\r\nb\rc</Crlf>"
                     "</r>");
    assert_non_null(p.v);
    assert_member(p.v, "Ws", "  a  b \n");
    assert_member(p.v, "OnlyWs", "   ");
    assert_member(p.v, "Empty", "");
    assert_member(p.v, "Empty2", "");
    assert_member(p.v, "Ent", "<>&\"'A\xE2\x98\xBA\xF0\x9F\x98\x80");
    assert_member(p.v, "Cdata", "<b>&amp;</b> tail");
    json_t *mixed = json_object_get(p.v, "Mixed");
    assert_true(json_is_object(mixed));
    assert_int_equal(json_object_size(mixed), 1);
    assert_member(mixed, "X", "1");
    assert_member(p.v, "Utf", "ærø 漢字");
    assert_member(p.v, "Dup", "second"); /* the later wins */
    assert_member(p.v, "Attr", "v");
    assert_member(p.v, "Crlf", "a\nb\nc"); /* XML line-end normalisation */
    assert_int_equal(json_object_size(p.v), 11);
    json_decref(p.v);
}

static void test_parse_out_params(void **state)
{
    (void)state;
    char root[5];
    json_t *v = xml_parse("<BlobEntity/>", 13, root, sizeof(root), NULL, 0, NULL);
    assert_non_null(v);
    assert_string_equal(root, "Blob"); /* truncated */
    json_decref(v);
    v = xml_parse("<Bæææ/>", strlen("<Bæææ/>"), root, sizeof(root), NULL, 0, NULL);
    assert_string_equal(root, "B\xC3\xA6"); /* cut on a character boundary */
    json_decref(v);
    v = xml_parse("<x>1</x>", 8, NULL, 0, NULL, 0, NULL);
    assert_string_equal(json_string_value(v), "1");
    json_decref(v);
    assert_null(xml_parse("<x>", 3, root, sizeof(root), NULL, 0, NULL));
    assert_string_equal(root, "");
    /* no NUL terminator needed */
    char raw[8];
    memcpy(raw, "<a>1</a>", 8);
    v = xml_parse(raw, sizeof(raw), NULL, 0, NULL, 0, NULL);
    assert_string_equal(json_string_value(v), "1");
    json_decref(v);
}

/* ---- reading: refusals ------------------------------------------------------- */

static void test_refuse_doctype_and_entities(void **state)
{
    (void)state;
    assert_refused("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>");
    assert_refused("<!DOCTYPE x><x/>");
    assert_refused("<?xml version=\"1.0\"?>\n<!DOCTYPE BlobEntity SYSTEM \"blob.dtd\">\n"
                   "<BlobEntity/>");
    assert_refused("<!DOCTYPE x PUBLIC \"-//x//y\" \"http://example.com/x.dtd\"><x/>");
    assert_refused("<?xml version=\"1.0\"?>\n"
                   "<!DOCTYPE lolz [\n"
                   " <!ENTITY lol \"lol\">\n"
                   " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                   " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
                   " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                   " <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
                   "]>\n"
                   "<lolz>&lol9;</lolz>");
    assert_refused("<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
                   "<BlobEntity><Description>&xxe;</Description></BlobEntity>");
    assert_refused("<!DOCTYPE foo [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><foo/>");
    /* an entity reference with no DOCTYPE at all */
    assert_refused("<x>&a;</x>");
    assert_refused("<BlobEntity>\n<Description>&nbsp;</Description></BlobEntity>");
    assert_refused("<x a=\"&ext;\"/>");
}

/* ---- reading: malformed input and limits -------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    assert_bad_at("<BlobEntity>\n<Description>x</Description>\n", 3); /* unclosed */
    assert_bad_at("<a/>\n<b/>", 2);                                   /* two roots */
    assert_bad_at("garbage", 1);
    assert_bad_at("{\"BlobId\": 1}", 1);
    assert_bad_at("<a>\n\n<b></c></a>", 3);
    assert_bad_at("", 1);
    assert_bad_at("<a><p:b/></a>", 1); /* unbound prefix */
    assert_bad_at("<a>\xC3(</a>", 1);  /* invalid UTF-8 */
    assert_bad_at("<a>&#0;</a>", 1);   /* not an XML character */
    assert_bad_at("<a b=\"1\" b=\"2\"/>", 1);
    int line = 0;
    assert_null(xml_parse(NULL, 0, NULL, 0, NULL, 0, &line));
    assert_int_equal(line, 1);
    parsed p = parse("<a></b>");
    assert_string_equal(p.err, "mismatched tag");
}

static char *nested(int depth)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_puts(&b, "<e>\n"), CB_EOK);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_puts(&b, "</e>"), CB_EOK);
    return buf_steal(&b, NULL);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *ok = nested(XML_DEPTH_MAX);
    parsed p = parse(ok);
    assert_non_null(p.v);
    json_t *v = p.v;
    for (int i = 1; i < XML_DEPTH_MAX - 1; i++)
        v = json_object_get(v, "e");
    assert_member(v, "e", "\n");
    json_decref(p.v);
    free(ok);

    char *deep = nested(XML_DEPTH_MAX + 1);
    p = parse(deep);
    assert_null(p.v);
    assert_int_equal(p.line, XML_DEPTH_MAX + 1);
    assert_string_equal(p.err, "elements nested deeper than 32 levels");
    free(deep);
}

static char *many(int members)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "<r>"), CB_EOK);
    for (int i = 0; i < members; i++)
        assert_int_equal(buf_printf(&b, "<m%d>%d</m%d>", i % 600, i, i % 600), CB_EOK);
    assert_int_equal(buf_puts(&b, "</r>"), CB_EOK);
    return buf_steal(&b, NULL);
}

static void test_member_limit(void **state)
{
    (void)state;
    char *ok = many(XML_MEMBERS_MAX);
    parsed p = parse(ok);
    assert_non_null(p.v);
    assert_int_equal(json_object_size(p.v), 600);
    assert_member(p.v, "m0", "600");
    json_decref(p.v);
    free(ok);

    char *over = many(XML_MEMBERS_MAX + 1);
    p = parse(over);
    assert_null(p.v);
    assert_int_equal(p.line, 1);
    assert_string_equal(p.err, "more than 1024 elements");
    free(over);

    /* nested members count too */
    char *deep = many(XML_MEMBERS_MAX);
    deep[strlen(deep) - 4] = '\0';
    buf_t b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "%s<x><y/></x></r>", deep), CB_EOK);
    p = parse(buf_str(&b));
    assert_null(p.v);
    assert_string_equal(p.err, "more than 1024 elements");
    free(deep);
    buf_free(&b);
}

static void test_encoding(void **state)
{
    (void)state;
    const char *good[] = {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><x>1</x>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><x>1</x>",
        "<?xml version=\"1.0\"?><x>1</x>",
        "\xEF\xBB\xBF<x>1</x>", /* UTF-8 byte order mark */
        "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?><x>1</x>",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        parsed p = parse(good[i]);
        assert_string_equal(json_string_value(p.v), "1");
        json_decref(p.v);
    }
    assert_bad_at("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<x>\xE6</x>", 1);
    assert_bad_at("<?xml version=\"1.0\" encoding=\"us-ascii\"?><x/>", 1);
    assert_bad_at("<?xml version=\"1.0\" encoding=\"UTF-16\"?><x/>", 1);
    parsed p = parse("<?xml version=\"1.0\" encoding=\"latin1\"?><x/>");
    assert_string_equal(p.err, "the document's encoding is not UTF-8");

    static const char utf16le[] = "<\0x\0/\0>\0";
    p = parse_n(utf16le, sizeof(utf16le) - 1);
    assert_null(p.v);
    assert_int_equal(p.line, 1);
    static const char utf16be_bom[] = "\xFE\xFF\0<\0x\0/\0>";
    p = parse_n(utf16be_bom, sizeof(utf16be_bom) - 1);
    assert_null(p.v);
    assert_string_equal(p.err, "the document is not UTF-8");
    static const char utf16le_bom[] = "\xFF\xFE<\0x\0/\0>\0";
    p = parse_n(utf16le_bom, sizeof(utf16le_bom) - 1);
    assert_null(p.v);
}

/* ---- writing --------------------------------------------------------------------- */

static json_t *sample_blob(void)
{
    json_t *fp = json_pack("{s:{s:{s:s,s:s},s:s,s:i}, s:{s:{s:s,s:s},s:s,s:i}}", "BlobId",
                           "FieldRight", "Mask", "Read", "Reason", "", "FieldType", "System.Int32",
                           "FieldLength", 0, "Description", "FieldRight", "Mask", "Update",
                           "Reason", "", "FieldType", "System.String", "FieldLength", 254);
    json_t *by =
        json_pack("{s:i, s:s, s:i, s:s, s:b, s:s}", "AssociateId", 7, "Name", "tje0", "PersonId", 0,
                  "Type", "InternalAssociate", "Deleted", 0, "FullName", "Tje <Zero> & \"Co\"");
    return json_pack("{s:i, s:i, s:s, s:s, s:b, s:b, s:s, s:I, s:s, s:o, s:n, s:s, s:{s:s,s:s}, "
                     "s:o, s:f}",
                     "BlobId", 605, "BlobSize", 432, "Description", "a < b && c > d 'q' \"dq\"",
                     "ExtraInfo", "", "IsEncrypted", 1, "IsZipped", 0, "MimeType", "image/png",
                     "OriginalSize", (json_int_t)-9007199254740993LL, "CreatedDate",
                     "2003-12-07T01:49:51Z", "CreatedBy", by, "UpdatedBy", "ConceptualType",
                     "ærø 漢字 \xF0\x9F\x98\x80", "TableRight", "Mask", "FULL", "Reason", "",
                     "FieldProperties", fp, "Ratio", 0.1);
}

static void test_write_round_trip(void **state)
{
    (void)state;
    json_t *blob = sample_blob();
    assert_non_null(blob);
    char *doc = write_doc("BlobEntity", blob);
    static const char head[] = DECL "<BlobEntity xmlns:i=\"" XSI "\"><BlobId>605</BlobId>";
    assert_memory_equal(doc, head, sizeof(head) - 1);
    assert_non_null(strstr(doc, "<UpdatedBy i:nil=\"true\"/>"));
    assert_non_null(strstr(doc, "<IsEncrypted>true</IsEncrypted><IsZipped>false</IsZipped>"));
    assert_non_null(strstr(doc, "<FieldProperties><BlobId><FieldRight><Mask>Read</Mask>"
                                "<Reason></Reason></FieldRight><FieldType>System.Int32"
                                "</FieldType><FieldLength>0</FieldLength></BlobId>"));
    assert_non_null(strstr(doc, "<Ratio>0.1</Ratio>"));
    parsed p = parse(doc);
    assert_non_null(p.v);
    assert_string_equal(p.root, "BlobEntity");
    assert_true(same_as_text(p.v, blob));
    assert_false(same_as_text(p.v, json_object_get(blob, "CreatedBy"))); /* the helper bites */
    json_decref(p.v);
    free(doc);
    json_decref(blob);
}

static void test_write_escaping(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "D", "<a href='x'>&amp;\"</a>]]>");
    char *doc = write_doc("R", v);
    assert_string_equal(doc, DECL "<R xmlns:i=\"" XSI "\"><D>&lt;a href=&apos;x&apos;&gt;&amp;amp;"
                                  "&quot;&lt;/a&gt;]]&gt;</D></R>");
    free(doc);
    json_decref(v);

    /* controls other than tab, LF, CR become U+FFFD; CR survives a reader */
    static const char raw[] = "a\tb\nc\rd\x01"
                              "e\x1f"
                              "f\x7f\xEF\xBF\xBE\0g";
    v = json_pack("{s:s%}", "T", raw, sizeof(raw) - 1);
    doc = write_doc("R", v);
    assert_non_null(strstr(doc, "<T>a\tb\nc&#13;d\xEF\xBF\xBD"
                                "e\xEF\xBF\xBD"
                                "f\x7f\xEF\xBF\xBD\xEF\xBF\xBDg</T>"));
    parsed p = parse(doc);
    assert_member(p.v, "T",
                  "a\tb\nc\rd\xEF\xBF\xBD"
                  "e\xEF\xBF\xBD"
                  "f\x7f\xEF\xBF\xBD\xEF\xBF\xBDg");
    json_decref(p.v);
    free(doc);
    json_decref(v);
}

static void test_write_scalar_roots(void **state)
{
    (void)state;
    json_t *v = json_integer(167);
    char *doc = write_doc("int", v);
    assert_string_equal(doc, DECL "<int>167</int>");
    parsed p = parse(doc);
    assert_string_equal(json_string_value(p.v), "167");
    assert_string_equal(p.root, "int");
    json_decref(p.v);
    free(doc);
    json_decref(v);

    v = json_string("a&b");
    doc = write_doc("string", v);
    assert_string_equal(doc, DECL "<string>a&amp;b</string>");
    free(doc);
    json_decref(v);

    v = json_true();
    doc = write_doc("boolean", v);
    assert_string_equal(doc, DECL "<boolean>true</boolean>");
    free(doc);

    v = json_real(-2.5e-300);
    doc = write_doc("double", v);
    assert_string_equal(doc, DECL "<double>-2.5e-300</double>");
    free(doc);
    json_decref(v);

    doc = write_doc("BlobEntity", json_null());
    assert_string_equal(doc, DECL "<BlobEntity xmlns:i=\"" XSI "\" i:nil=\"true\"/>");
    p = parse(doc);
    assert_true(json_is_null(p.v));
    json_decref(p.v);
    free(doc);

    v = json_object();
    doc = write_doc("BlobEntity", v);
    assert_string_equal(doc, DECL "<BlobEntity xmlns:i=\"" XSI "\"></BlobEntity>");
    p = parse(doc);
    assert_true(json_is_object(p.v) && json_object_size(p.v) == 0);
    json_decref(p.v);
    free(doc);
    json_decref(v);
}

static void test_write_names_and_arrays(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:[i,n,{s:i}]}",
                          "odata.metadata", 1, "a:b", 2, "1x", 3, "", 4, "-y", 5, "sp ace", 6,
                          "Æble", 7, "x\xC3\x97y", 8, "List", 1, "K", 3);
    char *doc = write_doc("9 root", v);
    assert_string_equal(doc, DECL "<_9_root xmlns:i=\"" XSI "\">"
                                  "<odata.metadata>1</odata.metadata><a_b>2</a_b><_1x>3</_1x>"
                                  "<_>4</_><_-y>5</_-y><sp_ace>6</sp_ace><Æble>7</Æble>"
                                  "<x_y>8</x_y>"
                                  "<List><Item>1</Item><Item i:nil=\"true\"/>"
                                  "<Item><K>3</K></Item></List></_9_root>");
    parsed p = parse(doc);
    assert_non_null(p.v);
    assert_string_equal(p.root, "_9_root");
    assert_member(p.v, "odata.metadata", "1");
    assert_member(json_object_get(json_object_get(p.v, "List"), "Item"), "K", "3"); /* last */
    json_decref(p.v);
    free(doc);
    json_decref(v);
    assert_string_equal(xml_item_name("Anything"), "Item");
}

static void test_write_reals(void **state)
{
    (void)state;
    const double samples[] = {
        0.1, 1.0 / 3, 1e21, 123456789.125, -0.0, 5e-324, 1.7976931348623157e308};
    const char *want[] = {"0.1",    "0.3333333333333333",     "1e+21", "123456789.125", "-0",
                          "5e-324", "1.7976931348623157e+308"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        json_t *v = json_real(samples[i]);
        char *doc = write_doc("d", v);
        char expect[128];
        snprintf(expect, sizeof(expect), DECL "<d>%s</d>", want[i]);
        assert_string_equal(doc, expect);
        free(doc);
        json_decref(v);
    }
}

static void test_write_cap(void **state)
{
    (void)state;
    json_t *blob = sample_blob();
    char *doc = write_doc("BlobEntity", blob);
    size_t need = strlen(doc);
    free(doc);

    buf_t b;
    buf_init(&b, 3 + need - 1);
    assert_int_equal(buf_puts(&b, "pre"), CB_EOK);
    assert_int_equal(xml_write(&b, "BlobEntity", blob), CB_ETOOLARGE);
    assert_int_equal(b.len, 3);
    assert_string_equal(buf_str(&b), "pre"); /* cut back */
    buf_free(&b);

    buf_init(&b, 3 + need);
    assert_int_equal(buf_puts(&b, "pre"), CB_EOK);
    assert_int_equal(xml_write(&b, "BlobEntity", blob), CB_EOK);
    assert_int_equal(b.len, 3 + need);
    buf_free(&b);

    buf_init(&b, 10);
    assert_int_equal(xml_write(&b, "int", json_true()), CB_ETOOLARGE);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    json_decref(blob);
}

static void test_write_depth(void **state)
{
    (void)state;
    json_t *top = json_object(), *v = top;
    for (int i = 0; i < XML_WRITE_DEPTH_MAX + 5; i++) {
        json_t *child = json_object();
        json_object_set_new(v, "n", child);
        v = child;
    }
    buf_t b;
    buf_init(&b, 1 << 20);
    assert_int_equal(xml_write(&b, "r", top), CB_EINTERNAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    json_decref(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_blob_plain),
        cmocka_unit_test(test_parse_blob_namespaces),
        cmocka_unit_test(test_parse_prefixed_root_and_nil_forms),
        cmocka_unit_test(test_parse_default_xsi_namespace),
        cmocka_unit_test(test_parse_root_forms),
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_parse_out_params),
        cmocka_unit_test(test_refuse_doctype_and_entities),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_member_limit),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_write_escaping),
        cmocka_unit_test(test_write_scalar_roots),
        cmocka_unit_test(test_write_names_and_arrays),
        cmocka_unit_test(test_write_reals),
        cmocka_unit_test(test_write_cap),
        cmocka_unit_test(test_write_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
