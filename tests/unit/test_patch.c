/*
 * test_patch.c — unit tests of JSON Patch (RFC 6902) and JSON Merge Patch
 * (RFC 7396) as crmblob applies them to carriers.
 *
 * JSON in the tests is written with single quotes for readability; J()
 * turns them into double quotes (no test text needs a literal apostrophe).
 * Every patch_apply run checks the status, the resulting document and, on
 * failure, that the document was left exactly as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/patch.h"

/* Parses test JSON written with ' for ". Any JSON value is accepted. */
static json_t *J(const char *text)
{
    char *s = strdup(text);
    json_error_t e;
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (j == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    free(s);
    return j;
}

static void fail_unequal(const char *what, const json_t *got, const char *want)
{
    char *dump = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fail_msg("%s: got %s, want %s", what, dump, want);
}

/* Applies ops to doc; checks the status, the document afterwards (want;
 * the original when the patch fails) and that err contains needle. */
static void run(const char *doc, const char *ops, patch_status want_st, const char *want,
                const char *needle)
{
    char err[256] = "";
    json_t *d = J(doc), *o = J(ops), *w = J(want_st == PATCH_OK ? want : doc);
    patch_status st = patch_apply(d, o, err, sizeof(err));
    if (st != want_st)
        fail_msg("%s on %s: status %d, want %d (%s)", ops, doc, st, want_st, err);
    if (!json_equal(d, w))
        fail_unequal(ops, d, want_st == PATCH_OK ? want : doc);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("%s: reason \"%s\" lacks \"%s\"", ops, err, needle);
    json_decref(d);
    json_decref(o);
    json_decref(w);
}

static void ok(const char *doc, const char *ops, const char *want)
{
    run(doc, ops, PATCH_OK, want, NULL);
}

/* ---- RFC 6902 appendix A (the examples on object documents) ------------ */

static void test_rfc6902_appendix_a(void **state)
{
    (void)state;
    /* A.1 - A.5 */
    ok("{'foo':'bar'}", "[{'op':'add','path':'/baz','value':'qux'}]", "{'baz':'qux','foo':'bar'}");
    ok("{'foo':['bar','baz']}", "[{'op':'add','path':'/foo/1','value':'qux'}]",
       "{'foo':['bar','qux','baz']}");
    ok("{'baz':'qux','foo':'bar'}", "[{'op':'remove','path':'/baz'}]", "{'foo':'bar'}");
    ok("{'foo':['bar','qux','baz']}", "[{'op':'remove','path':'/foo/1'}]", "{'foo':['bar','baz']}");
    ok("{'baz':'qux','foo':'bar'}", "[{'op':'replace','path':'/baz','value':'boo'}]",
       "{'baz':'boo','foo':'bar'}");
    /* A.6, A.7: move is not supported here. */
    run("{'foo':{'bar':'baz','waldo':'fred'},'qux':{'corge':'grault'}}",
        "[{'op':'move','from':'/foo/waldo','path':'/qux/thud'}]", PATCH_EOP, NULL, "move");
    run("{'foo':['all','grass','cows','eat']}", "[{'op':'move','from':'/foo/1','path':'/foo/3'}]",
        PATCH_EOP, NULL, "move");
    /* A.8, A.9 */
    ok("{'baz':'qux','foo':['a',2,'c']}",
       "[{'op':'test','path':'/baz','value':'qux'},{'op':'test','path':'/foo/1','value':2}]",
       "{'baz':'qux','foo':['a',2,'c']}");
    run("{'baz':'qux'}", "[{'op':'test','path':'/baz','value':'bar'}]", PATCH_ETEST, NULL, "/baz");
    /* A.10, A.11 */
    ok("{'foo':'bar'}", "[{'op':'add','path':'/child','value':{'grandchild':{}}}]",
       "{'foo':'bar','child':{'grandchild':{}}}");
    ok("{'foo':'bar'}", "[{'op':'add','path':'/baz','value':'qux','xyz':123}]",
       "{'foo':'bar','baz':'qux'}");
    /* A.12 */
    run("{'foo':'bar'}", "[{'op':'add','path':'/baz/bat','value':'qux'}]", PATCH_EBAD, NULL,
        "does not exist");
    /* A.14, A.15 */
    ok("{'/':9,'~1':10}", "[{'op':'test','path':'/~01','value':10}]", "{'/':9,'~1':10}");
    run("{'/':9,'~1':10}", "[{'op':'test','path':'/~01','value':'10'}]", PATCH_ETEST, NULL, NULL);
    /* A.16 */
    ok("{'foo':['bar']}", "[{'op':'add','path':'/foo/-','value':['abc','def']}]",
       "{'foo':['bar',['abc','def']]}");
}

/* ---- crmblob's leniency ------------------------------------------------- */

#define CARRIER "{'BlobId':7,'Description':'d','ExtraInfo':'e','CreatedBy':{'Name':'ann'}}"

static void test_patch_case_insensitive_paths(void **state)
{
    (void)state;
    const char *want = "{'BlobId':7,'Description':'x','ExtraInfo':'e','CreatedBy':{'Name':'ann'}}";
    ok(CARRIER, "[{'op':'replace','path':'/description','value':'x'}]", want);
    ok(CARRIER, "[{'op':'replace','path':'DESCRIPTION','value':'x'}]", want);
    ok(CARRIER, "[{'op':'replace','path':'Description','value':'x'}]", want);
    ok(CARRIER, "[{'op':'add','path':'description','value':'x'}]", want);
    ok(CARRIER, "[{'op':'test','path':'extrainfo','value':'e'}]", CARRIER);
    ok(CARRIER, "[{'op':'remove','path':'extraINFO'}]",
       "{'BlobId':7,'Description':'d','CreatedBy':{'Name':'ann'}}");
    /* The member names of the operations and the op itself, in any case. */
    ok(CARRIER, "[{'OP':'Replace','Path':'/description','VALUE':'x'}]", want);
}

static void test_patch_add_new_member(void **state)
{
    (void)state;
    ok("{'A':1}", "[{'op':'add','path':'/newField','value':[1]}]", "{'A':1,'newField':[1]}");
    ok("{'A':1}", "[{'op':'add','path':'b','value':null}]", "{'A':1,'b':null}");
    ok("{'A':1}", "[{'op':'add','path':'/','value':2}]", "{'A':1,'':2}"); /* RFC 6901: "" */
}

static void test_patch_replace_and_remove(void **state)
{
    (void)state;
    ok(CARRIER, "[{'op':'replace','path':'/BlobId','value':{'x':[1]}}]",
       "{'BlobId':{'x':[1]},'Description':'d','ExtraInfo':'e','CreatedBy':{'Name':'ann'}}");
    run(CARRIER, "[{'op':'replace','path':'/Missing','value':1}]", PATCH_EBAD, NULL,
        "\"/Missing\" does not exist");
    run(CARRIER, "[{'op':'remove','path':'/Missing'}]", PATCH_EBAD, NULL, "does not exist");
    ok("{'a':[1,2,3]}", "[{'op':'replace','path':'/a/2','value':9}]", "{'a':[1,2,9]}");
    run("{'a':[1,2,3]}", "[{'op':'replace','path':'/a/3','value':9}]", PATCH_EBAD, NULL, NULL);
    run("{'a':[1,2,3]}", "[{'op':'remove','path':'/a/-'}]", PATCH_EBAD, NULL, NULL);
    run("{'a':[]}", "[{'op':'remove','path':'/a/0'}]", PATCH_EBAD, NULL, NULL);
    run("{'a':'s'}", "[{'op':'remove','path':'/a/0'}]", PATCH_EBAD, NULL, NULL);
}

static void test_patch_arrays(void **state)
{
    (void)state;
    ok("{'a':[1,2]}", "[{'op':'add','path':'/a/2','value':3}]", "{'a':[1,2,3]}");
    ok("{'a':[1,2]}", "[{'op':'add','path':'/a/0','value':0}]", "{'a':[0,1,2]}");
    ok("{'a':[]}", "[{'op':'add','path':'/a/-','value':0}]", "{'a':[0]}");
    run("{'a':[1,2]}", "[{'op':'add','path':'/a/3','value':3}]", PATCH_EBAD, NULL, "range");
    run("{'a':[1,2]}", "[{'op':'add','path':'/a/01','value':3}]", PATCH_EBAD, NULL, NULL);
    run("{'a':[1,2]}", "[{'op':'add','path':'/a/-1','value':3}]", PATCH_EBAD, NULL, NULL);
    run("{'a':[1,2]}", "[{'op':'add','path':'/a/99999999999999999999999','value':3}]", PATCH_EBAD,
        NULL, NULL);
    run("{'a':1}", "[{'op':'add','path':'/a/b','value':3}]", PATCH_EBAD, NULL, NULL);
    ok("{'a':[[1],[2]]}", "[{'op':'replace','path':'/a/1/0','value':3}]", "{'a':[[1],[3]]}");
}

static void test_patch_test_op(void **state)
{
    (void)state;
    ok(CARRIER, "[{'op':'test','path':'/BlobId','value':7}]", CARRIER);
    ok(CARRIER, "[{'op':'test','path':'/BlobId','value':7.0}]", CARRIER); /* numbers by value */
    ok(CARRIER, "[{'op':'test','path':'/CreatedBy','value':{'Name':'ann'}}]", CARRIER);
    run(CARRIER, "[{'op':'test','path':'/BlobId','value':8}]", PATCH_ETEST, NULL, "/BlobId");
    run(CARRIER, "[{'op':'test','path':'/Description','value':'D'}]", PATCH_ETEST, NULL, NULL);
    run(CARRIER, "[{'op':'test','path':'/CreatedBy','value':{'name':'ann'}}]", PATCH_ETEST, NULL,
        NULL); /* values compare exactly, member names included */
    run(CARRIER, "[{'op':'test','path':'/Nope','value':null}]", PATCH_ETEST, NULL, "/Nope");
    run(CARRIER, "[{'op':'test','path':'/Nope/deeper','value':1}]", PATCH_ETEST, NULL, NULL);
    run("{'a':[1]}", "[{'op':'test','path':'/a','value':[1,2]}]", PATCH_ETEST, NULL, NULL);
    /* The reason of a failed test is the path as sent. */
    char err[64];
    json_t *d = J(CARRIER), *o = J("[{'op':'test','path':'description','value':1}]");
    assert_int_equal(patch_apply(d, o, err, sizeof(err)), PATCH_ETEST);
    assert_string_equal(err, "description");
    json_decref(d);
    json_decref(o);
}

static void test_patch_unsupported_ops(void **state)
{
    (void)state;
    char err[64];
    json_t *d = J("{'a':1}"), *o = J("[{'op':'copy','from':'/a','path':'/b'}]");
    assert_int_equal(patch_apply(d, o, err, sizeof(err)), PATCH_EOP);
    assert_string_equal(err, "copy"); /* the op as sent, for the message */
    json_decref(o);
    o = J("[{'op':'frobnicate','path':'/a','value':1}]");
    assert_int_equal(patch_apply(d, o, err, sizeof(err)), PATCH_EOP);
    assert_string_equal(err, "frobnicate");
    json_decref(o);
    json_decref(d);
    run("{'a':1}", "[{'op':'MOVE','from':'/a','path':'/b'}]", PATCH_EOP, NULL, "MOVE");
    run("{'a':1}", "[{'op':'','path':'/a'}]", PATCH_EOP, NULL, NULL);
}

static void test_patch_malformed(void **state)
{
    (void)state;
    run("{'a':1}", "{'op':'remove','path':'/a'}", PATCH_EBAD, NULL, "array");
    run("{'a':1}", "'remove'", PATCH_EBAD, NULL, "array");
    run("{'a':1}", "[1]", PATCH_EBAD, NULL, "operation 1 is not an object");
    run("{'a':1}", "[{'path':'/a'}]", PATCH_EBAD, NULL, "\"op\"");
    run("{'a':1}", "[{'op':1,'path':'/a'}]", PATCH_EBAD, NULL, "\"op\"");
    run("{'a':1}", "[{'op':'remove'}]", PATCH_EBAD, NULL, "\"path\"");
    run("{'a':1}", "[{'op':'remove','path':5}]", PATCH_EBAD, NULL, "\"path\"");
    run("{'a':1}", "[{'op':'add','path':'/b'}]", PATCH_EBAD, NULL, "\"value\"");
    run("{'a':1}", "[{'op':'replace','path':'/a'}]", PATCH_EBAD, NULL, "\"value\"");
    run("{'a':1}", "[{'op':'test','path':'/a'}]", PATCH_EBAD, NULL, "\"value\"");
    run("{'a~':1}", "[{'op':'remove','path':'/a~'}]", PATCH_EBAD, NULL, "invalid path");
    run("{'a':1}", "[{'op':'remove','path':'/a~2'}]", PATCH_EBAD, NULL, "invalid path");
    /* The whole patch is checked before anything runs: a malformed second
     * op wins over a failing first test. */
    run("{'a':1}", "[{'op':'test','path':'/a','value':2},{'op':'add','path':'/b'}]", PATCH_EBAD,
        NULL, "operation 2");
    run("{'a':1}", "[{'op':'test','path':'/a','value':2},{'op':'copy','path':'/b'}]", PATCH_EOP,
        NULL, "copy");
}

static void test_patch_atomic(void **state)
{
    (void)state;
    run(CARRIER,
        "[{'op':'replace','path':'/Description','value':'x'},"
        "{'op':'add','path':'/New','value':1},"
        "{'op':'replace','path':'/Missing','value':1}]",
        PATCH_EBAD, NULL, "operation 3");
    run(CARRIER,
        "[{'op':'remove','path':'/Description'},"
        "{'op':'replace','path':'/CreatedBy/Name','value':'bob'},"
        "{'op':'test','path':'/BlobId','value':8}]",
        PATCH_ETEST, NULL, NULL);
    /* Later ops see what earlier ones did. */
    ok("{'a':1}",
       "[{'op':'add','path':'/b','value':{}},{'op':'add','path':'/b/c','value':2},"
       "{'op':'test','path':'/b','value':{'c':2}},{'op':'remove','path':'/a'}]",
       "{'b':{'c':2}}");
    ok(CARRIER, "[]", CARRIER);
}

static void test_patch_nested_and_escapes(void **state)
{
    (void)state;
    ok(CARRIER, "[{'op':'replace','path':'/CreatedBy/Name','value':'bob'}]",
       "{'BlobId':7,'Description':'d','ExtraInfo':'e','CreatedBy':{'Name':'bob'}}");
    ok(CARRIER, "[{'op':'replace','path':'createdby/name','value':'bob'}]",
       "{'BlobId':7,'Description':'d','ExtraInfo':'e','CreatedBy':{'Name':'bob'}}");
    ok(CARRIER, "[{'op':'test','path':'/CREATEDBY/NAME','value':'ann'}]", CARRIER);
    run("{'CreatedBy':null}", "[{'op':'replace','path':'/CreatedBy/Name','value':'x'}]", PATCH_EBAD,
        NULL, NULL);
    ok("{'a/b':1,'m~n':2}",
       "[{'op':'replace','path':'/a~1b','value':3},{'op':'replace','path':'/M~0N','value':4}]",
       "{'a/b':3,'m~n':4}");
    ok("{}", "[{'op':'add','path':'/~01','value':1}]", "{'~1':1}");
}

static void test_patch_whole_document(void **state)
{
    (void)state;
    ok(CARRIER, "[{'op':'replace','path':'','value':{'x':1}}]", "{'x':1}");
    ok(CARRIER, "[{'op':'add','path':'','value':{}}]", "{}");
    run(CARRIER, "[{'op':'replace','path':'','value':[1]}]", PATCH_EBAD, NULL, "object");
    run(CARRIER, "[{'op':'remove','path':''}]", PATCH_EBAD, NULL, NULL);
    ok("{'a':1}", "[{'op':'test','path':'','value':{'a':1}}]", "{'a':1}");
    run("{'a':1}", "[{'op':'test','path':'','value':{'a':2}}]", PATCH_ETEST, NULL, NULL);
}

/* An existing member keeps its spelling; values are copied, never shared. */
static void test_patch_spelling_and_copies(void **state)
{
    (void)state;
    json_t *d = J(CARRIER);
    json_t *o = J("[{'op':'add','path':'/description','value':{'k':[1]}},"
                  "{'op':'add','path':'/DESCRIPTION/k/-','value':2}]");
    assert_int_equal(patch_apply(d, o, NULL, 0), PATCH_OK);
    assert_non_null(json_object_get(d, "Description"));
    assert_null(json_object_get(d, "description"));
    assert_int_equal(json_object_size(d), 4);
    /* The second op wrote into the document, not into the first op's value. */
    json_t *v = json_object_get(json_array_get(o, 0), "value");
    assert_int_equal(json_array_size(json_object_get(v, "k")), 1);
    json_t *k = json_object_get(json_object_get(d, "Description"), "k");
    assert_int_equal(json_array_size(k), 2);
    json_decref(o);
    json_decref(d);
}

/* ---- RFC 7396 ----------------------------------------------------------- */

/* Merges and compares; the inputs must come out unchanged. */
static void merge(const char *target, const char *patch, const char *want)
{
    json_t *t = J(target), *p = J(patch), *w = J(want);
    json_t *t0 = json_deep_copy(t), *p0 = json_deep_copy(p);
    json_t *got = patch_merge(t, p);
    assert_non_null(got);
    if (!json_equal(got, w))
        fail_unequal(patch, got, want);
    assert_true(json_equal(t, t0));
    assert_true(json_equal(p, p0));
    json_decref(got);
    json_decref(t);
    json_decref(p);
    json_decref(w);
    json_decref(t0);
    json_decref(p0);
}

static void test_rfc7396_appendix_a(void **state)
{
    (void)state;
    merge("{'a':'b'}", "{'a':'c'}", "{'a':'c'}");
    merge("{'a':'b'}", "{'b':'c'}", "{'a':'b','b':'c'}");
    merge("{'a':'b'}", "{'a':null}", "{}");
    merge("{'a':'b','b':'c'}", "{'a':null}", "{'b':'c'}");
    merge("{'a':['b']}", "{'a':'c'}", "{'a':'c'}");
    merge("{'a':'c'}", "{'a':['b']}", "{'a':['b']}");
    merge("{'a':{'b':'c'}}", "{'a':{'b':'d','c':null}}", "{'a':{'b':'d'}}");
    merge("{'a':[{'b':'c'}]}", "{'a':[1]}", "{'a':[1]}");
    merge("['a','b']", "['c','d']", "['c','d']");
    merge("{'a':'b'}", "['c']", "['c']");
    merge("{'a':'foo'}", "null", "null");
    merge("{'a':'foo'}", "'bar'", "'bar'");
    merge("{'e':null}", "{'a':1}", "{'e':null,'a':1}");
    merge("[1,2]", "{'a':'b','c':null}", "{'a':'b'}");
    merge("{}", "{'a':{'bb':{'ccc':null}}}", "{'a':{'bb':{}}}");
}

static void test_merge_case_insensitive(void **state)
{
    (void)state;
    merge(CARRIER, "{'description':'x','EXTRAINFO':null,'createdBy':{'name':'bob','Id':1}}",
          "{'BlobId':7,'Description':'x','CreatedBy':{'Name':'bob','Id':1}}");
    merge("{'a':1,'A':2}", "{'a':null}", "{}"); /* every spelling goes */
    merge("{'Ab':1}", "{'aB':{'c':null,'d':1}}", "{'Ab':{'d':1}}");
    /* An absent target is treated as no object. */
    json_t *p = J("{'a':{'b':null,'c':1}}"), *w = J("{'a':{'c':1}}");
    json_t *got = patch_merge(NULL, p);
    assert_true(json_equal(got, w));
    json_decref(got);
    json_decref(p);
    json_decref(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6902_appendix_a),
        cmocka_unit_test(test_patch_case_insensitive_paths),
        cmocka_unit_test(test_patch_add_new_member),
        cmocka_unit_test(test_patch_replace_and_remove),
        cmocka_unit_test(test_patch_arrays),
        cmocka_unit_test(test_patch_test_op),
        cmocka_unit_test(test_patch_unsupported_ops),
        cmocka_unit_test(test_patch_malformed),
        cmocka_unit_test(test_patch_atomic),
        cmocka_unit_test(test_patch_nested_and_escapes),
        cmocka_unit_test(test_patch_whole_document),
        cmocka_unit_test(test_patch_spelling_and_copies),
        cmocka_unit_test(test_rfc7396_appendix_a),
        cmocka_unit_test(test_merge_case_insensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
