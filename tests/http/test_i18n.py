"""Languages and cultures of ErrorMessage (SPEC §6): Accept-Language, SO-Language, SO-Culture."""
import re

import pytest

from conftest import (MAX_IMAGE, RawConn, assert_error, assert_xml_error, basic, data,
                      error_body)

LANGS = ["en", "no", "sv", "da", "de", "nl"]
MISSING_ID = 12345

# the limit of PUT Image, as each culture writes it
GROUPED = {
    "en": "10,485,760",
    "no": "10 485 760",
    "sv": "10 485 760",
    "da": "10.485.760",
    "de": "10.485.760",
    "nl": "10.485.760",
}
SPACE_GROUPED = re.compile(r"10[ \u00a0\u202f]485[ \u00a0\u202f]760")


def _has_number(msg, lang):
    if lang in ("no", "sv"):
        return bool(SPACE_GROUPED.search(msg))
    return GROUPED[lang] in msg


@pytest.fixture(scope="module")
def person(admin):
    pid = admin.create("Person")
    assert pid != MISSING_ID
    admin.put_image("Person", pid, data("small.png"))
    return pid


# --------------------------------------------------------------------------
# the errors, each asked for with arbitrary headers


def err_404(srv, headers):
    r = srv.client("admin").get(f"/api/v1/Person/{MISSING_ID}", headers=headers)
    return assert_error(r, 404, "SoNotFoundException")["ErrorMessage"]


def err_400(srv, headers):
    r = srv.client("admin").get("/api/v1/Person/abc/ImageInfo", headers=headers)
    return assert_error(r, 400, "SoBadRequestException")["ErrorMessage"]


def err_401(srv, headers):
    r = srv.anon().get("/api/v1/Person/1/ImageInfo", headers=headers)
    return assert_error(r, 401, "SoUnauthorizedException")["ErrorMessage"]


def err_413(srv, headers):
    """PUT Image announcing one byte over the limit; the server answers 413 early."""
    pid = srv.client("admin").create("Person")
    conn = RawConn(srv.port)
    try:
        h = {"Authorization": basic("admin", srv.users["admin"][1]),
             "Content-Type": "image/png", "Content-Length": str(MAX_IMAGE + 1)}
        h.update(headers)
        conn.send_head("PUT", f"/api/v1/Person/{pid}/Image", h)
        conn.send(data("small.png"))
        status, hdrs, body = conn.read_response(timeout=10)
    finally:
        conn.close()
    assert status == 413, (status, body[:300])
    b = error_body(body)
    assert b["ErrorType"] == "SoTooLargeException", b
    return b["ErrorMessage"]


ERRORS = {"404": err_404, "400": err_400, "401": err_401, "413": err_413}


@pytest.mark.parametrize("which", list(ERRORS))
def test_every_language(srv, person, which):
    get = ERRORS[which]
    by_al = {lang: get(srv, {"Accept-Language": lang}) for lang in LANGS}
    by_so = {lang: get(srv, {"SO-Language": lang}) for lang in LANGS}
    default = get(srv, {})
    for lang in LANGS:
        assert by_al[lang].strip(), (lang, by_al)
        assert by_al[lang] == by_so[lang], \
            f"{lang}: Accept-Language gives {by_al[lang]!r}, SO-Language {by_so[lang]!r}"
    assert default == by_al["en"], (default, by_al["en"])
    for lang in LANGS[1:]:
        assert by_al[lang] != by_al["en"], f"{lang} is not translated: {by_al[lang]!r}"


@pytest.mark.parametrize("which", ["404", "400", "413"])
@pytest.mark.parametrize("headers,lang", [
    ({"Accept-Language": "fr;q=1, de;q=0.8"}, "de"),
    ({"Accept-Language": "de;q=0.5, sv;q=0.9"}, "sv"),
    ({"Accept-Language": "nl, en;q=0.5"}, "nl"),
    ({"Accept-Language": "en;q=0.1, da"}, "da"),
    ({"Accept-Language": "de-DE"}, "de"),
    ({"Accept-Language": "sv-SE, en;q=0.8"}, "sv"),
    ({"Accept-Language": "DE"}, "de"),
    ({"Accept-Language": "de;q=0, nl;q=0.2"}, "nl"),
    ({"Accept-Language": "fr"}, "en"),
    ({"Accept-Language": "xx-YY, ja;q=0.9"}, "en"),
    ({"Accept-Language": "*"}, "en"),
    ({"Accept-Language": "de", "SO-Language": "sv"}, "sv"),
    ({"Accept-Language": "de", "SO-Language": "no"}, "no"),
    ({"Accept-Language": "nl", "SO-Language": "fr"}, "en"),
    ({"SO-Language": "xx"}, "en"),
], ids=lambda v: v if isinstance(v, str) else "|".join(f"{k}={x}" for k, x in v.items()))
def test_language_selection(srv, person, which, headers, lang):
    get = ERRORS[which]
    want = get(srv, {"SO-Language": lang})
    assert get(srv, headers) == want


@pytest.mark.parametrize("off", ["*", "x", "-"])
def test_translation_off(srv, person, off):
    en = err_404(srv, {"Accept-Language": "en"})
    for al in ("de", "sv", "nl;q=0.9, da"):
        assert err_404(srv, {"Accept-Language": al, "SO-Language": off}) == en
    msg = err_413(srv, {"Accept-Language": "de", "SO-Language": off})
    assert "10485760" in msg, msg
    assert msg == err_413(srv, {"SO-Language": off})
    # English words: the same message as en with the number ungrouped
    assert msg == err_413(srv, {"Accept-Language": "en"}).replace("10,485,760", "10485760")


@pytest.mark.parametrize("lang", LANGS)
def test_number_grouping_by_language(srv, person, lang):
    msg = err_413(srv, {"Accept-Language": lang})
    assert _has_number(msg, lang), f"{lang}: {msg!r}"
    msg = err_413(srv, {"SO-Language": lang})
    assert _has_number(msg, lang), f"{lang}: {msg!r}"


@pytest.mark.parametrize("headers,culture", [
    ({"Accept-Language": "en", "SO-Culture": "de"}, "de"),
    ({"Accept-Language": "en", "SO-Culture": "sv"}, "sv"),
    ({"SO-Language": "de", "SO-Culture": "en"}, "en"),
    ({"SO-Language": "nl", "SO-Culture": "no"}, "no"),
    ({"Accept-Language": "da", "SO-Culture": "nl"}, "nl"),
], ids=lambda v: v if isinstance(v, str) else "|".join(f"{k}={x}" for k, x in v.items()))
def test_culture_overrides_numbers(srv, person, headers, culture):
    msg = err_413(srv, headers)
    assert _has_number(msg, culture), f"{headers}: {msg!r}"
    # the words stay in the language
    lang = headers.get("SO-Language") or headers.get("Accept-Language")
    words = err_413(srv, {"SO-Language": lang})
    strip = re.compile(r"10\D{0,3}485\D{0,3}760")
    assert strip.sub("N", msg) == strip.sub("N", words), (msg, words)


@pytest.mark.parametrize("lang", LANGS)
def test_ids_never_grouped(srv, person, lang):
    for h in ({"Accept-Language": lang}, {"SO-Language": lang, "SO-Culture": lang}):
        msg = err_404(srv, h)
        assert str(MISSING_ID) in msg, msg
    admin = srv.client("admin")
    for path in (f"/api/v1/Person/{MISSING_ID}/ImageInfo", f"/api/v1/Contact/{MISSING_ID}"):
        r = admin.get(path, headers={"Accept-Language": lang})
        assert str(MISSING_ID) in assert_error(r, 404)["ErrorMessage"]
    r = admin.put(f"/api/v1/Person/{MISSING_ID}", json={"Firstname": "x"},
                  headers={"Accept-Language": lang})
    assert str(MISSING_ID) in assert_error(r, 404)["ErrorMessage"]


def test_english_texts(srv, person):
    assert err_404(srv, {"Accept-Language": "en"}) == f"Person id {MISSING_ID} not found"
    assert "10,485,760" in err_413(srv, {"Accept-Language": "en"})


def test_xml_error_is_translated(srv, person):
    r = srv.client("admin").get(f"/api/v1/Person/{MISSING_ID}",
                                headers={"Accept": "application/xml", "SO-Language": "de"})
    body = assert_xml_error(r, 404, "SoNotFoundException")
    assert body["ErrorMessage"] == err_404(srv, {"SO-Language": "de"})


def test_long_message_cut_between_characters(srv):
    """A message is cut at 4096 bytes between characters: a method name that
    brings the cut onto the "å" of Danish "på" still gets its 405, not a 500
    (an ErrorMessage that is not UTF-8 cannot be written)."""
    c = srv.client("admin")
    for n in (4068, 4069, 4070):  # "Metoden " + n + " er ikke tilladt p" + "å"...
        r = c.request("M" * n, "/api/v1/Person/1/ImageInfo", headers={"Accept-Language": "da"})
        body = assert_error(r, 405)
        assert body["ErrorMessage"].startswith("Metoden MMM")
        assert len(body["ErrorMessage"].encode()) <= 4096
