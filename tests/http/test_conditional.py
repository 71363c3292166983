"""Conditional requests (SPEC §6, §8): ETag, Last-Modified, If-None-Match, If-Modified-Since,
If-Match, If-Unmodified-Since on ImageInfo, entities and images."""
import datetime as dt
import email.utils
import re

import pytest

from conftest import KIND_NAMES, assert_error, assert_xml_error, data, png_with_text

STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e]+"$')
HTTP_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                       r"Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")
DAY = dt.timedelta(days=1)


def etag_of(r):
    tag = r.headers.get("ETag")
    assert tag, f"no ETag on {r.request.method} {r.url}: {dict(r.headers)}"
    assert STRONG_ETAG.match(tag), f"not a strong quoted ETag: {tag!r}"
    return tag


def last_modified_of(r):
    lm = r.headers.get("Last-Modified")
    assert lm, f"no Last-Modified on {r.request.method} {r.url}: {dict(r.headers)}"
    assert HTTP_DATE.match(lm), f"not an IMF-fixdate: {lm!r}"
    d = email.utils.parsedate_to_datetime(lm)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - d).total_seconds()) < 600, f"Last-Modified {lm} is not recent (not GMT?)"
    return lm


def http_date(d):
    return email.utils.format_datetime(d.astimezone(dt.timezone.utc), usegmt=True)


def minus_day(lm):
    return http_date(email.utils.parsedate_to_datetime(lm) - DAY)


def _ok(r, *codes):
    assert r.status_code in codes, f"{r.request.method} {r.url}: {r.status_code} {r.text[:300]!r}"
    return r


# --------------------------------------------------------------------------
# the three kinds of resource


class InfoTarget:
    name = "ImageInfo"

    def __init__(self, c, kind="Person", with_image=True):
        self.c = c
        self.kind = kind
        self.eid = c.create(kind)
        if with_image:
            c.put_image(kind, self.eid, data("small.png"))
            _ok(c.put_info(kind, self.eid, {"Description": "v0"}), 200)
        self.url = f"/api/v1/{kind}/{self.eid}/ImageInfo"
        self.n = 0

    def get(self, **kw):
        return self.c.get(self.url, **kw)

    def change(self):
        self.n += 1
        return _ok(self.c.put_info(self.kind, self.eid, {"Description": f"v{self.n}"}), 200)

    def write(self, headers):
        return self.c.put(self.url, json={"Description": "conditional"}, headers=headers)

    def snapshot(self):
        return _ok(self.get(), 200).json()


class EntityTarget:
    name = "entity"

    def __init__(self, c, kind="Contact"):
        self.c = c
        self.kind = kind
        self.eid = c.create(kind)
        self.url = f"/api/v1/{kind}/{self.eid}"
        self.n = 0

    def get(self, **kw):
        return self.c.get(self.url, **kw)

    def change(self):
        self.n += 1
        return _ok(self.c.put(self.url, json={"Name": f"n{self.n}"}), 200)

    def write(self, headers):
        return self.c.put(self.url, json={"Name": "conditional"}, headers=headers)

    def snapshot(self):
        r = self.get()
        return r.status_code, r.content


class EntityDeleteTarget(EntityTarget):
    name = "entity DELETE"

    def write(self, headers):
        return self.c.delete(self.url, headers=headers)


class ImageTarget:
    name = "Image"

    def __init__(self, c, kind="Product"):
        self.c = c
        self.kind = kind
        self.eid = c.create(kind)
        c.put_image(kind, self.eid, png_with_text(b"v0"))
        self.url = f"/api/v1/{kind}/{self.eid}/Image"
        self.n = 0

    def get(self, **kw):
        return self.c.get(self.url, **kw)

    def change(self):
        self.n += 1
        self.c.put_image(self.kind, self.eid, png_with_text(f"v{self.n}".encode()))

    def write(self, headers):
        return self.c.put(self.url, data=data("small.gif"),
                          headers={"Content-Type": "image/gif", **headers})

    def snapshot(self):
        r = self.get()
        return r.status_code, r.content, self.c.info(self.kind, self.eid)


class ImageDeleteTarget(ImageTarget):
    name = "Image DELETE"

    def write(self, headers):
        return self.c.delete(self.url, headers=headers)


TARGETS = {
    "ImageInfo PUT": InfoTarget,
    "entity PUT": EntityTarget,
    "entity DELETE": EntityDeleteTarget,
    "Image PUT": ImageTarget,
    "Image DELETE": ImageDeleteTarget,
}
READ_TARGETS = {"ImageInfo": InfoTarget, "entity": EntityTarget, "Image": ImageTarget}


# --------------------------------------------------------------------------
# validators on GET


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_imageinfo_validators(admin, kind):
    t = InfoTarget(admin, kind, with_image=False)
    r = _ok(t.get(), 200)
    etag_of(r)
    assert "Last-Modified" not in r.headers, \
        f"Last-Modified on an ImageInfo with no record: {r.headers['Last-Modified']}"
    admin.put_image(kind, t.eid, data("small.png"))
    r = _ok(t.get(), 200)
    etag_of(r)
    last_modified_of(r)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_entity_validators(admin, kind):
    eid = admin.create(kind)
    r = _ok(admin.get(f"/api/v1/{kind}/{eid}"), 200)
    etag_of(r)
    last_modified_of(r)


def test_image_validators(admin):
    t = ImageTarget(admin)
    r = _ok(t.get(), 200)
    etag_of(r)
    last_modified_of(r)


@pytest.mark.parametrize("name", list(READ_TARGETS))
def test_if_none_match(admin, name):
    t = READ_TARGETS[name](admin)
    r = _ok(t.get(), 200)
    tag = etag_of(r)
    for inm in (tag, "W/" + tag, f'"other", {tag}', "*"):
        r = t.get(headers={"If-None-Match": inm})
        assert r.status_code == 304, f"If-None-Match {inm}: {r.status_code} {r.text[:200]!r}"
        assert r.content == b"", r.content[:200]
        assert r.headers.get("ETag") == tag, r.headers
    r = t.get(headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200 and r.content
    assert etag_of(r) == tag


def test_if_none_match_empty_carrier(admin):
    t = InfoTarget(admin, with_image=False)
    tag = etag_of(_ok(t.get(), 200))
    r = t.get(headers={"If-None-Match": tag})
    assert r.status_code == 304 and r.content == b""


@pytest.mark.parametrize("name", list(READ_TARGETS))
def test_if_modified_since(admin, name):
    t = READ_TARGETS[name](admin)
    r = _ok(t.get(), 200)
    lm = last_modified_of(r)
    tag = etag_of(r)
    r = t.get(headers={"If-Modified-Since": lm})
    assert r.status_code == 304, f"{r.status_code} {r.text[:200]!r}"
    assert r.content == b""
    r = t.get(headers={"If-Modified-Since": minus_day(lm)})
    assert r.status_code == 200 and r.content
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    r = t.get(headers={"If-Modified-Since": lm, "If-None-Match": '"something-else"'})
    assert r.status_code == 200 and r.content
    r = t.get(headers={"If-Modified-Since": minus_day(lm), "If-None-Match": tag})
    assert r.status_code == 304


@pytest.mark.parametrize("name", list(READ_TARGETS))
def test_etag_changes_on_each_write(admin, name):
    t = READ_TARGETS[name](admin)
    tags = [etag_of(_ok(t.get(), 200))]
    for _ in range(3):
        t.change()
        tags.append(etag_of(_ok(t.get(), 200)))
    assert len(set(tags)) == len(tags), tags
    # the old tag no longer matches
    r = t.get(headers={"If-None-Match": tags[0]})
    assert r.status_code == 200


def test_imageinfo_etag_changes_on_image_put(admin):
    t = InfoTarget(admin)
    before = etag_of(_ok(t.get(), 200))
    admin.put_image(t.kind, t.eid, data("small.jpg"))
    assert etag_of(_ok(t.get(), 200)) != before


@pytest.mark.parametrize("name", ["ImageInfo", "entity"])
def test_etag_same_in_json_and_xml(admin, name):
    t = READ_TARGETS[name](admin)
    j = _ok(t.get(headers={"Accept": "application/json"}), 200)
    x = _ok(t.get(headers={"Accept": "application/xml"}), 200)
    assert x.headers.get("Content-Type", "").startswith("application/xml")
    assert etag_of(j) == etag_of(x)
    r = t.get(headers={"Accept": "application/xml", "If-None-Match": etag_of(j)})
    assert r.status_code == 304


# --------------------------------------------------------------------------
# preconditions on writes


def _validators(t):
    r = _ok(t.get(), 200)
    return etag_of(r), last_modified_of(r)


@pytest.mark.parametrize("name", list(TARGETS))
def test_if_match_stale_412(admin, name):
    t = TARGETS[name](admin)
    stale, _ = _validators(t)
    t.change()
    before = t.snapshot()
    for tag in (stale, '"bogus"', f'"bogus", {stale}', "W/" + _validators(t)[0]):
        r = t.write({"If-Match": tag})
        assert_error(r, 412, "SoPreconditionFailedException")
        assert t.snapshot() == before, f"If-Match {tag}: something changed"


@pytest.mark.parametrize("how", ["current", "star", "list"])
@pytest.mark.parametrize("name", list(TARGETS))
def test_if_match_current_ok(admin, name, how):
    t = TARGETS[name](admin)
    t.change()
    tag, _ = _validators(t)
    hdr = {"current": tag, "star": "*", "list": f'"bogus", {tag}'}[how]
    r = t.write({"If-Match": hdr})
    assert r.status_code in (200, 204), f"If-Match {hdr}: {r.status_code} {r.text[:300]!r}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_if_unmodified_since(admin, name):
    t = TARGETS[name](admin)
    t.change()
    tag, lm = _validators(t)
    before = t.snapshot()
    r = t.write({"If-Unmodified-Since": minus_day(lm)})
    assert_error(r, 412, "SoPreconditionFailedException")
    assert t.snapshot() == before
    # If-Match present: If-Unmodified-Since is not evaluated (RFC 9110 13.2.2)
    r = t.write({"If-Match": tag, "If-Unmodified-Since": minus_day(lm)})
    assert r.status_code in (200, 204), f"{r.status_code} {r.text[:300]!r}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_if_unmodified_since_equal_or_later_ok(admin, name):
    t = TARGETS[name](admin)
    t.change()
    _, lm = _validators(t)
    r = t.write({"If-Unmodified-Since": lm})
    assert r.status_code in (200, 204), f"{r.status_code} {r.text[:300]!r}"


def test_chain_of_writes_with_if_match(admin):
    """A client that always sends the tag it last saw: each write succeeds once."""
    t = InfoTarget(admin)
    tag, _ = _validators(t)
    for i in range(3):
        r = admin.put(t.url, json={"ExtraInfo": f"step {i}"}, headers={"If-Match": tag})
        assert r.status_code == 200, r.text
        r2 = admin.put(t.url, json={"ExtraInfo": "late"}, headers={"If-Match": tag})
        assert_error(r2, 412, "SoPreconditionFailedException")
        new, _ = _validators(t)
        assert new != tag
        tag = new
    assert admin.info(t.kind, t.eid)["ExtraInfo"] == "step 2"


def test_precondition_failed_xml(admin):
    t = InfoTarget(admin)
    r = admin.put(t.url, json={"Description": "x"},
                  headers={"If-Match": '"bogus"', "Accept": "application/xml"})
    assert_xml_error(r, 412, "SoPreconditionFailedException")


def test_invalid_dates_ignored(admin):
    for t in (InfoTarget(admin), EntityTarget(admin), ImageTarget(admin)):
        for bad in ("yesterday", "Mon, 99 Foo 2026 00:00:00 GMT", ""):
            r = t.get(headers={"If-Modified-Since": bad})
            assert r.status_code == 200 and r.content, (t.name, bad, r.status_code)
    t = InfoTarget(admin)
    r = t.write({"If-Unmodified-Since": "not a date"})
    assert r.status_code == 200, (r.status_code, r.text[:300])


def test_head_image_304(admin):
    t = ImageTarget(admin)
    tag = etag_of(_ok(t.get(), 200))
    r = admin.head(t.url, headers={"If-None-Match": tag})
    assert r.status_code == 304
    r = admin.head(t.url, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200


def test_if_match_star_without_image_412(admin):
    """No current image: If-Match: * is false (RFC 9110 13.1.1)."""
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/Image", data=data("small.png"),
                  headers={"Content-Type": "image/png", "If-Match": "*"})
    assert_error(r, 412, "SoPreconditionFailedException")
    assert admin.get_image("Person", pid).status_code == 404
    assert admin.info("Person", pid)["BlobId"] == 0
