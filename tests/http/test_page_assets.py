"""The page's static files, compiled into the binary (issue 20; src/api/asset.c,
scripts/embed_assets.c, the Makefile's ASSET_MOUNTS).

- GET / answers web/index.html, byte for byte, without credentials (its
  route is public in the route table: routing decides before any
  credential is looked at, so a wrong password changes nothing); every
  file under web/ is served at its path with the Content-Type of its
  extension; HEAD answers the same headers without the body.
- Each answer has a strong ETag (a hash of the bytes: equal files, equal
  tags), Cache-Control: no-cache, and If-None-Match with that tag is 304
  with no body.
- The page's protections: a Content-Security-Policy without
  'unsafe-inline' (scripts and styles from the server's files only),
  frame-ancestors 'none', X-Content-Type-Options: nosniff.
- A 401 to a page's script (X-Requested-With: XMLHttpRequest) challenges
  for the cookie session only, so no browser opens a password dialog over
  the page; other clients still get the Basic challenge.
- A path that is no file is still 404 (with the error carrier), and the API
  around the page still asks for credentials.
"""
import hashlib
import os

import requests

from conftest import HTTP_TIMEOUT, REPO, assert_error

WEB = REPO / "web"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
         ".svg": "image/svg+xml", ".json": "application/json", ".png": "image/png"}


def web_files():
    for root, dirs, files in os.walk(WEB):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith("."):
                p = os.path.join(root, f)
                yield "/" + os.path.relpath(p, WEB), p


def get(srv, path, **kw):
    return requests.get(srv.base + path, timeout=HTTP_TIMEOUT, **kw)


def test_root_is_index_without_credentials(srv):
    r = get(srv, "/")
    assert r.status_code == 200, r.text
    assert r.content == (WEB / "index.html").read_bytes()
    assert r.headers["Content-Type"].startswith("text/html")
    # wrong credentials: the route is public, they are not even looked at
    r2 = get(srv, "/", auth=("nobody", "wrong"))
    assert r2.status_code == 200 and r2.content == r.content
    assert get(srv, "/index.html").content == r.content


def test_every_file_served_with_its_type(srv):
    n = 0
    for url, path in web_files():
        r = get(srv, url)
        assert r.status_code == 200, url
        assert r.content == open(path, "rb").read(), url
        ext = os.path.splitext(path)[1]
        assert r.headers["Content-Type"].startswith(TYPES[ext]), (url, r.headers["Content-Type"])
        n += 1
    assert n >= 1


def test_etag_and_304(srv):
    tags = {}
    for url, path in web_files():
        r = get(srv, url)
        tag = r.headers["ETag"]
        assert tag.startswith('"') and not tag.startswith("W/"), tag
        assert r.headers["Cache-Control"] == "no-cache"
        body = open(path, "rb").read()
        # a tag names the bytes: two files with the same bytes share it
        assert tags.setdefault(hashlib.sha256(body).hexdigest(), tag) == tag
        r304 = get(srv, url, headers={"If-None-Match": tag})
        assert r304.status_code == 304, url
        assert r304.content == b""
        assert r304.headers["ETag"] == tag
        assert r304.headers["Cache-Control"] == "no-cache"
        other = get(srv, url, headers={"If-None-Match": '"not-it"'})
        assert other.status_code == 200 and other.content == body
    assert len(set(tags.values())) == len(tags)


def test_head(srv):
    g = get(srv, "/")
    h = requests.head(srv.base + "/", timeout=HTTP_TIMEOUT)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["ETag"] == g.headers["ETag"]
    assert h.headers["Content-Length"] == str(len(g.content))


def test_protections(srv):
    for url, _ in web_files():
        h = get(srv, url).headers
        csp = h["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["script-src"] == ["'self'"], csp
        assert directives["style-src"] == ["'self'"], csp
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"


def test_unknown_paths_and_api_still_guarded(srv):
    assert_error(get(srv, "/no-such-file.js"), 404)
    assert_error(get(srv, "/index.html/x"), 404)
    # a page file's name is matched exactly
    assert_error(get(srv, "/INDEX.HTML"), 404)
    r = get(srv, "/api/v1/Person/1")
    assert r.status_code == 401
    r = requests.post(srv.base + "/", timeout=HTTP_TIMEOUT)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_script_401_has_no_basic_challenge(srv):
    r = get(srv, "/api/v1/Person/1", headers={"X-Requested-With": "XMLHttpRequest"})
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"] == 'Cookie realm="crmblob"'
    r = get(srv, "/api/v1/Person/1")
    assert "Basic" in r.headers["WWW-Authenticate"]
