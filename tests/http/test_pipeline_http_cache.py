"""Image pipeline: HTTP caching and ranges on every image answer (SPEC §6, §8).

Originals, scaled/converted variants and placeholders all carry a strong ETag,
Last-Modified and Cache-Control; If-None-Match / If-Modified-Since give 304;
Range gives 206 (one range), 416 beyond the end; HEAD gives the same headers.
"""
import datetime as dt
import email.utils
import re

import pytest

from conftest import KIND_NAMES, STRONG_ETAG_RE, assert_error, assert_image_answer, img

# target name -> (has image, query)
TARGETS = {
    "original": (True, {}),
    "variant": (True, {"w": 100, "h": 100}),
    "converted": (True, {"type": "PNG"}),
    "scaled-gif": (True, {"w": 30, "type": "gif"}),
    "placeholder": (False, {"ifBlank": "SrNoPhoto"}),
    "placeholder-jpeg-64": (False, {"ifBlank": "GenericFileIcon", "w": 64, "type": "JPEG"}),
    "clear-pixel": (False, {"ifBlank": "ClearPixel"}),
}


class Target:
    def __init__(self, c, kind, eid, query):
        self.c, self.kind, self.eid, self.query = c, kind, eid, query
        self.path = f"/api/v1/{kind}/{eid}/Image"

    def get(self, headers=None):
        return self.c.get(self.path, params=self.query, headers=headers or {})

    def head(self, headers=None):
        return self.c.head(self.path, params=self.query, headers=headers or {})


@pytest.fixture(scope="module")
def entities(admin):
    with_img = admin.create("Person")
    admin.put_image("Person", with_img, img("photo_320x240.jpg"))
    without = admin.create("Contact")
    return {True: ("Person", with_img), False: ("Contact", without)}


@pytest.fixture(params=list(TARGETS))
def target(request, admin, entities):
    has, query = TARGETS[request.param]
    kind, eid = entities[has]
    return Target(admin, kind, eid, query)


def full(t):
    r = t.get()
    assert_image_answer(r)
    return r


def http_date(d):
    return email.utils.format_datetime(d.astimezone(dt.timezone.utc), usegmt=True)


def lm_of(r):
    return email.utils.parsedate_to_datetime(r.headers["Last-Modified"])


def assert_304(r, etag):
    assert r.status_code == 304, f"expected 304, got {r.status_code}: {r.content[:200]!r}"
    assert r.content == b""
    assert r.headers.get("ETag") == etag, r.headers


# --------------------------------------------------------------------------
# validators


def test_validators_present(target):
    r = full(target)
    assert STRONG_ETAG_RE.match(r.headers["ETag"]), r.headers["ETag"]
    assert not r.headers["ETag"].startswith("W/")
    assert r.headers.get("Cache-Control", "").strip(), f"no Cache-Control: {r.headers}"
    lm = lm_of(r)
    now = dt.datetime.now(dt.timezone.utc)
    assert lm <= now + dt.timedelta(seconds=5), (lm, now)


def test_validators_stable(target):
    a, b = full(target), full(target)
    assert a.headers["ETag"] == b.headers["ETag"]
    assert a.headers["Last-Modified"] == b.headers["Last-Modified"]
    assert a.content == b.content


def test_if_none_match_304(target):
    r = full(target)
    etag = r.headers["ETag"]
    assert_304(target.get({"If-None-Match": etag}), etag)
    assert_304(target.get({"If-None-Match": f'"nope-1", {etag}, "nope-2"'}), etag)
    # If-None-Match compares weakly (RFC 9110 §13.1.2)
    assert_304(target.get({"If-None-Match": "W/" + etag}), etag)


def test_if_none_match_star_304(target):
    r = full(target)
    assert_304(target.get({"If-None-Match": "*"}), r.headers["ETag"])


def test_304_keeps_cache_headers(target):
    r = full(target)
    n = target.get({"If-None-Match": r.headers["ETag"]})
    assert n.status_code == 304
    assert n.headers.get("Cache-Control") == r.headers.get("Cache-Control"), n.headers


def test_if_none_match_other_200(target):
    r = full(target)
    o = target.get({"If-None-Match": '"something-else"'})
    assert o.status_code == 200 and o.content == r.content


def test_if_modified_since_304(target):
    r = full(target)
    lm = lm_of(r)
    etag = r.headers["ETag"]
    assert_304(target.get({"If-Modified-Since": r.headers["Last-Modified"]}), etag)
    assert_304(target.get({"If-Modified-Since": http_date(lm + dt.timedelta(days=1))}), etag)
    older = target.get({"If-Modified-Since": http_date(lm - dt.timedelta(days=1))})
    assert older.status_code == 200 and older.content == r.content


def test_if_none_match_wins_over_if_modified_since(target):
    r = full(target)
    o = target.get({"If-None-Match": '"stale"', "If-Modified-Since": r.headers["Last-Modified"]})
    assert o.status_code == 200 and o.content == r.content


def test_bad_if_modified_since_ignored(target):
    r = full(target)
    o = target.get({"If-Modified-Since": "not a date"})
    assert o.status_code == 200 and o.content == r.content


# --------------------------------------------------------------------------
# ranges


def test_range_first_ten(target):
    r = full(target)
    body = r.content
    n = len(body)
    assert n > 10
    p = target.get({"Range": "bytes=0-9"})
    assert p.status_code == 206, f"{p.status_code} {p.headers}"
    assert p.headers.get("Content-Range") == f"bytes 0-9/{n}", p.headers
    assert p.content == body[:10]
    assert p.headers.get("Content-Length") == "10"
    assert p.headers.get("ETag") == r.headers["ETag"]
    assert p.headers.get("Content-Type") == r.headers["Content-Type"]


def test_range_middle_and_open(target):
    body = full(target).content
    n = len(body)
    p = target.get({"Range": "bytes=3-7"})
    assert p.status_code == 206 and p.content == body[3:8]
    assert p.headers.get("Content-Range") == f"bytes 3-7/{n}"
    p = target.get({"Range": "bytes=5-"})
    assert p.status_code == 206 and p.content == body[5:]
    assert p.headers.get("Content-Range") == f"bytes 5-{n - 1}/{n}"
    p = target.get({"Range": f"bytes=0-{n + 1000}"})
    assert p.status_code == 206 and p.content == body
    assert p.headers.get("Content-Range") == f"bytes 0-{n - 1}/{n}"


def test_range_suffix(target):
    body = full(target).content
    n = len(body)
    p = target.get({"Range": "bytes=-5"})
    assert p.status_code == 206, p.status_code
    assert p.content == body[-5:]
    assert p.headers.get("Content-Range") == f"bytes {n - 5}-{n - 1}/{n}"
    p = target.get({"Range": f"bytes=-{n + 50}"})
    assert p.status_code == 206 and p.content == body
    assert p.headers.get("Content-Range") == f"bytes 0-{n - 1}/{n}"


def test_range_beyond_end_416(target):
    n = len(full(target).content)
    p = target.get({"Range": f"bytes={n}-"})
    assert p.status_code == 416, f"{p.status_code}: {p.content[:100]!r}"
    assert p.headers.get("Content-Range") == f"bytes */{n}", p.headers
    p = target.get({"Range": f"bytes={n + 100}-{n + 200}"})
    assert p.status_code == 416
    assert p.headers.get("Content-Range") == f"bytes */{n}", p.headers


def test_range_416_has_error_carrier(target):
    n = len(full(target).content)
    assert_error(target.get({"Range": f"bytes={n}-"}), 416)


def test_range_multiple(target):
    body = full(target).content
    p = target.get({"Range": "bytes=0-1,4-5"})
    assert p.status_code in (200, 206), p.status_code
    if p.status_code == 200:
        assert p.content == body
        return
    ctype = p.headers.get("Content-Type", "")
    m = re.match(r'multipart/byteranges;\s*boundary="?([^";]+)"?', ctype)
    assert m, ctype
    parts = p.content.split(b"--" + m.group(1).encode())
    got = []
    for part in parts[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        got.append((re.search(rb"Content-Range: bytes (\d+)-(\d+)/\d+", head, re.I).groups(),
                    data[:-2] if data.endswith(b"\r\n") else data))
    assert [(int(a), int(b)) for (a, b), _ in got] == [(0, 1), (4, 5)]
    assert [d for _, d in got] == [body[0:2], body[4:6]]


@pytest.mark.parametrize("value", ["bytes=9-3", "items=0-5", "bytes=abc", "bytes="])
def test_range_invalid_ignored_or_416(target, value):
    body = full(target).content
    p = target.get({"Range": value})
    assert p.status_code in (200, 416), (value, p.status_code)
    if p.status_code == 200:
        assert p.content == body


def test_if_range(target):
    r = full(target)
    body, etag = r.content, r.headers["ETag"]
    p = target.get({"Range": "bytes=0-3", "If-Range": etag})
    assert p.status_code == 206 and p.content == body[:4]
    p = target.get({"Range": "bytes=0-3", "If-Range": '"stale-etag"'})
    assert p.status_code == 200 and p.content == body


def test_range_with_if_none_match_304(target):
    r = full(target)
    p = target.get({"Range": "bytes=0-3", "If-None-Match": r.headers["ETag"]})
    assert_304(p, r.headers["ETag"])


# --------------------------------------------------------------------------
# HEAD


def test_head_same_headers(target):
    g = full(target)
    h = target.head()
    assert h.status_code == 200, h.status_code
    assert h.content == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control"):
        assert h.headers.get(k) == g.headers.get(k), (k, h.headers.get(k), g.headers.get(k))


def test_head_conditional_304(target):
    g = full(target)
    h = target.head({"If-None-Match": g.headers["ETag"]})
    assert h.status_code == 304 and h.content == b""


# --------------------------------------------------------------------------
# ETags across representations and changes


def test_etags_differ_per_representation(admin, entities):
    kind, eid = entities[True]
    ekind, eeid = entities[False]
    answers = {}
    for name, (has, query) in TARGETS.items():
        k, i = (kind, eid) if has else (ekind, eeid)
        answers[name] = admin.get(f"/api/v1/{k}/{i}/Image", params=query)
    answers["placeholder-border"] = admin.get(f"/api/v1/{ekind}/{eeid}/Image",
                                              params={"ifBlank": "SrNoPhotoWithBorder"})
    answers["placeholder-64"] = admin.get(f"/api/v1/{ekind}/{eeid}/Image",
                                          params={"ifBlank": "SrNoPhoto", "w": 64})
    seen = {}
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.status_code)
        e = r.headers["ETag"]
        if e in seen:
            assert answers[seen[e]].content == r.content, \
                f"{name} and {seen[e]} share ETag {e} with different bytes"
        seen[e] = name
    assert len(seen) == len(answers), "every representation here has its own bytes and ETag"


@pytest.mark.parametrize("query", [{}, {"w": 50}, {"type": "GIF"}])
def test_etag_and_last_modified_change_on_replace(admin, query):
    pid = admin.create("Project")
    admin.put_image("Project", pid, img("photo_320x240.jpg"))
    path = f"/api/v1/Project/{pid}/Image"
    r1 = admin.get(path, params=query)
    admin.put_image("Project", pid, img("alpha_48x32.png"))
    r2 = admin.get(path, params=query)
    assert r2.headers["ETag"] != r1.headers["ETag"]
    assert lm_of(r2) >= lm_of(r1)
    again = admin.get(path, params=query, headers={"If-None-Match": r1.headers["ETag"]})
    assert again.status_code == 200 and again.content == r2.content


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_304_and_206(admin, kind):
    eid = admin.create(kind)
    admin.put_image(kind, eid, img("anim_40x30.gif"))
    path = f"/api/v1/{kind}/{eid}/Image"
    for query in ({}, {"w": 20}):
        r = admin.get(path, params=query)
        assert admin.get(path, params=query,
                         headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
        p = admin.get(path, params=query, headers={"Range": "bytes=0-5"})
        assert p.status_code == 206 and p.content == r.content[:6]
