/*
 * test_store_entity.c — the entity and BLOB-record primitives of the
 * backend interface (store_backend.h) on SQLite, plain and durable, and
 * the outcomes of the recipes that rest on them (store_entity.c): a
 * conditional write that matches no row answers STORE_NOMATCH and leaves
 * the row as it was, and the recipe tells STORE_ABSENT from
 * STORE_PRECONDITION; what a write returns (RETURNING) is what the row
 * holds; a delete returns the links of the very row it deleted.
 *
 * Each primitive runs in a transaction opened here (begin/end), so the
 * test sees what one statement does; the rows are checked through store.h
 * and tmpdb's white-box reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h"
#include "tmpdb.h"

typedef tmpdb_store fixture;

/* ---- helpers ------------------------------------------------------------ */

static const struct store_be_ops *ops(fixture *f)
{
    return f->s->be->ops;
}

static store_tx *begin(fixture *f, store_tx_mode m)
{
    store_tx *tx = NULL;
    assert_int_equal(ops(f)->begin(f->s->be, NULL, m, &tx), STORE_OK);
    return tx;
}

static void end(fixture *f, store_tx *tx, store_err rc)
{
    assert_int_equal(ops(f)->end(tx, rc), rc);
}

/* A contact named `name` (id 0: the next free one), through store.h. */
static model_entity_t contact(fixture *f, int32_t id, const char *name)
{
    model_entity_t e = {.kind = MODEL_CONTACT, .id = id};
    e.v[0].s = name;
    assert_int_equal(store_entity_create(f->s, &e), STORE_OK);
    return e;
}

static int64_t version_of(fixture *f, model_kind k, int32_t id)
{
    model_entity_t e;
    assert_int_equal(store_entity_get(f->s, f->a, k, id, &e), STORE_OK);
    return e.version;
}

/* ---- entities ------------------------------------------------------------ */

/* ent_insert returns what the row got; ent_next_id is max + 1 under the
 * kind's id lock, and ABSENT is not its answer while ids are left. */
static void test_insert_returning(void **state)
{
    fixture *f = *state;
    contact(f, 7, "seven");
    store_tx *tx = begin(f, STORE_TX_WRITE);
    int32_t id = 0;
    int64_t version = 0, updated = 0;
    assert_int_equal(ops(f)->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(ops(f)->ent_next_id(tx, MODEL_CONTACT, &id), STORE_OK);
    assert_int_equal(id, 8);
    model_entity_t e = {.kind = MODEL_CONTACT, .id = id};
    e.v[0].s = "eight";
    assert_int_equal(ops(f)->ent_insert(tx, &e, 12345, &version, &updated), STORE_OK);
    assert_int_equal(version, 1);
    assert_int_equal(updated, 12345);
    end(f, tx, STORE_OK);
    tx = begin(f, STORE_TX_WRITE); /* a failed primitive ends its transaction (PG) */
    assert_int_equal(ops(f)->ent_insert(tx, &e, 1, &version, &updated), STORE_CONFLICT);
    end(f, tx, STORE_CONFLICT);
    model_entity_t got;
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_CONTACT, 8, &got), STORE_OK);
    assert_string_equal(got.v[0].s, "eight");
    assert_int_equal(got.updated_ms, 12345);
}

/* ent_update is conditional: another version or no row is NOMATCH and
 * changes nothing; a match returns the row's new version and time. */
static void test_update_conditional(void **state)
{
    fixture *f = *state;
    model_entity_t e = contact(f, 0, "a");
    int64_t version = 0, updated = 0;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    e.v[0].s = "b";
    assert_int_equal(ops(f)->ent_update(tx, &e, 5, 777, &version, &updated), STORE_NOMATCH);
    model_entity_t none = e;
    none.id = e.id + 100;
    assert_int_equal(ops(f)->ent_update(tx, &none, STORE_ANY, 777, &version, &updated),
                     STORE_NOMATCH);
    assert_int_equal(ops(f)->ent_update(tx, &e, 1, 777, &version, &updated), STORE_OK);
    assert_int_equal(version, 2);
    assert_int_equal(updated, 777);
    assert_int_equal(ops(f)->ent_update(tx, &e, STORE_ANY, 778, &version, &updated), STORE_OK);
    assert_int_equal(version, 3);
    store_ent_row row;
    assert_int_equal(ops(f)->ent_read(tx, NULL, MODEL_CONTACT, e.id, STORE_ROW_UPDATE, &row),
                     STORE_OK);
    assert_int_equal(row.e.version, 3);
    assert_int_equal(row.e.updated_ms, 778);
    end(f, tx, STORE_OK);

    /* the recipe: NOMATCH is PRECONDITION for a row at another version,
     * ABSENT for no row; the answer is the row's */
    e.v[0].s = "c";
    assert_int_equal(store_entity_update(f->s, &e, 2), STORE_PRECONDITION);
    assert_int_equal(version_of(f, MODEL_CONTACT, e.id), 3);
    assert_int_equal(store_entity_update(f->s, &none, 3), STORE_ABSENT);
    assert_int_equal(store_entity_update(f->s, &e, 3), STORE_OK);
    assert_int_equal(e.version, 4);
    assert_int_equal(version_of(f, MODEL_CONTACT, e.id), 4);
}

/* ent_delete is conditional too, and returns the deleted row's links. */
static void test_delete_returning(void **state)
{
    fixture *f = *state;
    int32_t pid = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PRODUCT, &pid), STORE_OK);
    model_blob img, thumb;
    store_content c = tmpdb_content(f->dir, 1, 100, "image/png");
    assert_int_equal(store_image_put(f->s, f->a, MODEL_PRODUCT, pid, &c, 0, STORE_ANY, &img),
                     STORE_OK);
    close(c.fd);
    c = tmpdb_content(f->dir, 2, 50, "image/png");
    assert_int_equal(store_thumbnail_put(f->s, f->a, pid, &c, 0, &thumb), STORE_OK);
    close(c.fd);

    store_tx *tx = begin(f, STORE_TX_WRITE);
    store_ent_row gone = {0};
    assert_int_equal(ops(f)->ent_delete(tx, MODEL_PRODUCT, pid, 9, &gone), STORE_NOMATCH);
    assert_int_equal(ops(f)->ent_delete(tx, MODEL_PRODUCT, pid + 1, STORE_ANY, &gone),
                     STORE_NOMATCH);
    assert_int_equal(ops(f)->ent_delete(tx, MODEL_PRODUCT, pid, 1, &gone), STORE_OK);
    assert_int_equal(gone.image_blob_id, img.blob_id);
    assert_int_equal(gone.thumb_blob_id, thumb.blob_id);
    assert_int_equal(ops(f)->ent_read(tx, NULL, MODEL_PRODUCT, pid, STORE_ROW_PLAIN, &gone),
                     STORE_ABSENT);
    end(f, tx, STORE_PRECONDITION); /* rolled back: the product is there again */

    assert_int_equal(store_entity_delete(f->s, MODEL_PRODUCT, pid, 2), STORE_PRECONDITION);
    assert_int_equal(store_entity_delete(f->s, MODEL_PRODUCT, pid + 1, 1), STORE_ABSENT);
    assert_int_equal(store_entity_delete(f->s, MODEL_PRODUCT, pid, 1), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "blob"), 0); /* its image and its thumbnail */
    assert_int_equal(store_entity_exists(f->s, MODEL_PRODUCT, pid), STORE_ABSENT);
}

/* ent_read without an arena reads the links and version only. */
static void test_read_links(void **state)
{
    fixture *f = *state;
    model_entity_t e = contact(f, 0, "x");
    store_tx *tx = begin(f, STORE_TX_READ);
    store_ent_row row;
    assert_int_equal(ops(f)->ent_read(tx, NULL, MODEL_CONTACT, e.id, STORE_ROW_SHARE, &row),
                     STORE_OK);
    assert_int_equal(row.e.id, e.id);
    assert_null(row.e.v[0].s);
    assert_int_equal(row.image_blob_id, 0);
    assert_int_equal(row.thumb_blob_id, 0);
    assert_int_equal(ops(f)->ent_read(tx, f->a, MODEL_CONTACT, e.id, STORE_ROW_PLAIN, &row),
                     STORE_OK);
    assert_string_equal(row.e.v[0].s, "x");
    assert_int_equal(row.e.version, 1);
    end(f, tx, STORE_OK);
}

/* ---- BLOB records and links ---------------------------------------------- */

/* A record made through the agent (unlinked since now), of `size` bytes. */
static int32_t agent_record(fixture *f, int seed, size_t size)
{
    model_blob b;
    store_content c = tmpdb_content(f->dir, seed, size, "image/png");
    assert_int_equal(store_blob_create(f->s, f->a, NULL, &c, 0, &b), STORE_OK);
    close(c.fd);
    return b.blob_id;
}

/* blob_claim is the test-and-set of linking: an unlinked record once,
 * then NOMATCH, as for a record that does not exist. image_link tells the
 * two apart: INVALID for none, CONFLICT for a linked one. */
static void test_claim(void **state)
{
    fixture *f = *state;
    int32_t blob = agent_record(f, 1, 10), pid = 0, cid = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &pid), STORE_OK);
    assert_int_equal(tmpdb_entity(f->s, MODEL_CONTACT, &cid), STORE_OK);

    store_tx *tx = begin(f, STORE_TX_WRITE);
    store_blob_row row;
    assert_int_equal(ops(f)->blob_read(tx, NULL, blob, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_true(row.unlinked_ms != INT64_MIN);
    assert_int_equal(ops(f)->blob_claim(tx, blob), STORE_OK);
    assert_int_equal(ops(f)->blob_claim(tx, blob), STORE_NOMATCH);
    assert_int_equal(ops(f)->blob_claim(tx, blob + 1000), STORE_NOMATCH);
    assert_int_equal(ops(f)->blob_read(tx, NULL, blob, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_true(row.unlinked_ms == INT64_MIN);
    end(f, tx, STORE_CONFLICT); /* rolled back: unlinked again */

    assert_int_equal(store_image_link(f->s, MODEL_PERSON, pid, blob + 1000, 0), STORE_INVALID);
    assert_int_equal(store_image_link(f->s, MODEL_PERSON, pid + 1000, blob, 0), STORE_ABSENT);
    assert_int_equal(store_image_link(f->s, MODEL_PERSON, pid, blob, 0), STORE_OK);
    /* linked, to an entity of another kind: CONFLICT, nothing changed */
    assert_int_equal(store_image_link(f->s, MODEL_CONTACT, cid, blob, 0), STORE_CONFLICT);
    model_blob b;
    assert_int_equal(store_image_info(f->s, f->a, MODEL_CONTACT, cid, &b), STORE_OK);
    assert_int_equal(b.blob_id, 0);
    assert_int_equal(tmpdb_int(f->path, "SELECT count(*) FROM blob WHERE unlinked_ms IS NULL", 0),
                     1);

    /* unlinking writes unlinked_ms: the sweep takes it after the grace */
    assert_int_equal(store_image_link(f->s, MODEL_PERSON, pid, 0, 0), STORE_OK);
    int64_t n = -1;
    assert_int_equal(store_blob_sweep(f->s, INT64_MAX, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tmpdb_count(f->path, "blob"), 0);
}

/* blob_set_info carries the expect (info_version) as its condition and
 * returns the row; the recipe tells PRECONDITION from ABSENT. */
static void test_set_info_conditional(void **state)
{
    fixture *f = *state;
    int32_t pid = 0;
    model_blob b;
    model_blob_edit ed = {.description = "one"};
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &pid), STORE_OK);
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, pid, &ed, 0, 0, &b), STORE_OK);
    assert_int_equal(b.info_version, 1);
    assert_int_equal(b.version, 0);

    store_tx *tx = begin(f, STORE_TX_WRITE);
    store_blob_row row;
    ed.description = "two";
    assert_int_equal(ops(f)->blob_set_info(tx, f->a, b.blob_id, &ed, 0, 5, 7, &row), STORE_NOMATCH);
    assert_int_equal(ops(f)->blob_set_info(tx, f->a, b.blob_id + 9, &ed, 0, 5, STORE_ANY, &row),
                     STORE_NOMATCH);
    assert_int_equal(ops(f)->blob_set_info(tx, f->a, b.blob_id, &ed, 0, 5, 1, &row), STORE_OK);
    assert_int_equal(row.b.info_version, 2);
    assert_int_equal(row.b.updated_ms, 5);
    assert_string_equal(row.b.description, "two");
    store_pic_meta m = {.mime = "image/png", .size = 0};
    assert_int_equal(ops(f)->blob_set_content(tx, f->a, b.blob_id, &m, 0, 6, 3, &row),
                     STORE_NOMATCH);
    assert_int_equal(ops(f)->blob_set_content(tx, f->a, b.blob_id, &m, 0, 6, 0, &row), STORE_OK);
    assert_int_equal(row.b.version, 1);
    assert_int_equal(row.b.info_version, 3);
    end(f, tx, STORE_PRECONDITION); /* rolled back */

    ed.description = "three";
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, pid, &ed, 0, 0, &b),
                     STORE_PRECONDITION);
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, pid + 50, &ed, 0, 1, &b),
                     STORE_ABSENT);
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, pid, &ed, 0, 1, &b), STORE_OK);
    assert_int_equal(b.info_version, 2);
    assert_string_equal(b.description, "three");
    assert_int_equal(store_blob_info_put(f->s, f->a, b.blob_id + 50, &ed, 0, &b), STORE_ABSENT);
}

/* The user a record names: the server itself for 0, the user for its id
 * (pw_hash blanked), NULL once that user is gone. */
static void test_user_references(void **state)
{
    fixture *f = *state;
    model_user u = {.name = "ann", .full_name = "Ann", .role = MODEL_ROLE_EDITOR, .pw_hash = "$x"};
    assert_int_equal(store_user_add(f->s, &u), STORE_OK);
    model_blob b, got;
    model_blob_edit ed = {.description = "d"};
    assert_int_equal(store_blob_create(f->s, f->a, &ed, NULL, 0, &b), STORE_OK);
    assert_string_equal(b.created_by->name, "crmblob");
    assert_int_equal(b.created_by->role, MODEL_ROLE_ADMIN);
    assert_int_equal(store_blob_info_put(f->s, f->a, b.blob_id, &ed, u.id, &b), STORE_OK);
    assert_string_equal(b.updated_by->name, "ann");
    assert_string_equal(b.updated_by->pw_hash, "");
    for (int i = 0; i < 2; i++) { /* the second from the memory */
        assert_int_equal(store_blob_get(f->s, f->a, b.blob_id, &got), STORE_OK);
        assert_string_equal(got.updated_by->full_name, "Ann");
        assert_string_equal(got.created_by->name, "crmblob");
    }
    tmpdb_exec(f->path, "UPDATE blob SET updated_by = 999");
    assert_int_equal(store_blob_get(f->s, f->a, b.blob_id, &got), STORE_OK);
    assert_null(got.updated_by);
}

/* ---- lists ---------------------------------------------------------------- */

static int32_t person(fixture *f, const char *first, const char *last, int32_t contact_id)
{
    model_entity_t e = {.kind = MODEL_PERSON};
    e.v[0].s = first, e.v[1].s = last, e.v[2].i = contact_id;
    assert_int_equal(store_entity_create(f->s, &e), STORE_OK);
    return e.id;
}

/* The ids of the page q asks for, as "1,2,3", and whether rows follow. */
static const char *page(fixture *f, const store_list_query *q, bool *more)
{
    store_list_item *it;
    int n;
    const char *ids = "";
    assert_int_equal(store_entity_list(f->s, f->a, q, &it, &n, more), STORE_OK);
    assert_true(n <= q->top);
    for (int i = 0; i < n; i++) {
        assert_int_equal(it[i].e.kind, q->kind);
        ids = arena_printf(f->a, "%s%s%d", ids, i ? "," : "", it[i].e.id);
    }
    return ids;
}

/* store_entity_list orders (strings case-insensitively, a reference of
 * none as 0, ties by id in the last key's direction), filters on a
 * prefix of the name fields, pages with skip/top and says when rows
 * follow; out-of-bounds queries are INVALID. */
static void test_list_order_filter_page(void **state)
{
    fixture *f = *state;
    int32_t c = contact(f, 0, "Acme").id;
    int32_t p1 = person(f, "ann", "Berg", c), p2 = person(f, "Bob", "aal", 0),
            p3 = person(f, "Carl", "Anders", c), p4 = person(f, "Dan", "berg", 0);
    (void)p2, (void)p3, (void)p4;
    bool more;
    store_list_query q = {.kind = MODEL_PERSON, .top = 10};
    assert_string_equal(page(f, &q, &more), "1,2,3,4");
    assert_false(more);
    q.top = 3;
    assert_string_equal(page(f, &q, &more), "1,2,3");
    assert_true(more);
    q.skip = 3;
    assert_string_equal(page(f, &q, &more), "4");
    assert_false(more);
    q = (store_list_query){.kind = MODEL_PERSON, .top = 10, .nkeys = 1, .keys = {{1, false}}};
    assert_string_equal(page(f, &q, &more), "2,3,1,4"); /* aal Anders Berg berg */
    q.keys[0].desc = true;
    assert_string_equal(page(f, &q, &more), "4,1,3,2");
    q.nkeys = 2, q.keys[0].desc = false, q.keys[1] = (store_list_key){-1, true};
    assert_string_equal(page(f, &q, &more), "2,3,4,1");
    q.nkeys = 1, q.keys[0] = (store_list_key){2, false}; /* ContactId: none first */
    assert_string_equal(page(f, &q, &more), "2,4,1,3");
    q.keys[0].desc = true;
    assert_string_equal(page(f, &q, &more), "3,1,4,2");
    q = (store_list_query){.kind = MODEL_PERSON, .top = 10, .prefix = "AN"};
    assert_string_equal(page(f, &q, &more), "1,3"); /* ann; Anders */
    q.prefix = "berG";
    assert_string_equal(page(f, &q, &more), "1,4");
    q.prefix = "zz";
    assert_string_equal(page(f, &q, &more), "");
    q = (store_list_query){.kind = MODEL_CONTACT, .top = 1, .prefix = "acm"};
    assert_string_equal(page(f, &q, &more), arena_printf(f->a, "%d", c));
    assert_int_equal(p1, 1);

    store_list_item *it;
    int n;
    store_list_query bad[] = {
        {.kind = MODEL_PERSON, .top = 0},
        {.kind = MODEL_PERSON, .top = STORE_LIST_MAX + 1},
        {.kind = MODEL_PERSON, .top = 1, .skip = -1},
        {.kind = MODEL_PERSON, .top = 1, .nkeys = STORE_LIST_KEYS + 1},
        {.kind = MODEL_CONTACT, .top = 1, .nkeys = 1, .keys = {{1, false}}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_entity_list(f->s, f->a, &bad[i], &it, &n, &more), STORE_INVALID);
}

/* The primitive: keys as given, at most limit rows, each with its image
 * record's bytes version (0 while none are stored). */
static void test_list_primitive_limit_and_image(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 5; i++)
        contact(f, 0, "c");
    model_blob b;
    assert_int_equal(store_blob_create(f->s, f->a, &(model_blob_edit){0}, NULL, 0, &b), STORE_OK);
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->ent_set_image(tx, MODEL_CONTACT, 2, b.blob_id), STORE_OK);
    assert_int_equal(ops(f)->blob_claim(tx, b.blob_id), STORE_OK);
    end(f, tx, STORE_OK);
    tmpdb_exec(f->path, "UPDATE blob SET version = 3");
    store_list_query q = {.kind = MODEL_CONTACT, .nkeys = 1, .keys = {{-1, true}}, .skip = 2};
    store_list_item rows[3];
    int n = 0;
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(ops(f)->ent_list(tx, f->a, &q, NULL, 3, rows, &n), STORE_OK);
    end(f, tx, STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].e.id, 3);
    assert_int_equal(rows[1].e.id, 2);
    assert_int_equal(rows[1].image_blob_id, b.blob_id);
    assert_int_equal(rows[1].image_version, 3);
    assert_string_equal(rows[1].e.v[0].s, "c");
    assert_int_equal(rows[1].e.version, 1);
    assert_int_equal(rows[2].image_blob_id, 0);
    assert_int_equal(rows[2].image_version, 0);
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_setup_teardown(t, tmpdb_setup_plain, tmpdb_teardown),                         \
        cmocka_unit_test_setup_teardown(t, tmpdb_setup_durable, tmpdb_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_insert_returning),
        BOTH(test_update_conditional),
        BOTH(test_delete_returning),
        BOTH(test_read_links),
        BOTH(test_claim),
        BOTH(test_set_info_conditional),
        BOTH(test_user_references),
        BOTH(test_list_order_filter_page),
        BOTH(test_list_primitive_limit_and_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
