"""The page at / in a real browser (issue 20): Debian's headless chromium
driven by playwright-core (tests/browser/page.mjs, its steps listed there).

One server, seeded with PERF_COUNT persons with pictures; page.mjs then:
signs in with a wrong password (the server's message is shown) and the
right one (session cookie HttpOnly, SameSite=Strict); measures the list
view — all thumbnails shown — with the browser's performance timeline
(list-start → list-complete marks) and the bytes of its picture requests,
with a cold browser cache and again on a reload (every picture answered
304: no picture bytes sent again); creates a person, uploads a picture
through the file picker (with upload progress events) and replaces it by a
drag-and-drop event; pages to the second page (51 persons now) and back;
finds its thumbnail in the list by name; edits the
Description and reloads; deletes picture and person; checks that a
request without X-XSRF-TOKEN is refused; switches the language; signs
out; signs in as a viewer in a Swedish browser with the keyboard alone
(Swedish labels, Tab to a row and Enter opens it, focus on its heading; no
write control, a forced upload refused 403); shows the list on a phone-sized
screen without sideways scrolling; and, where Swagger UI is served
(/api/docs), runs its "Try it out" on GET ImageInfo (200). No
Content-Security-Policy violation and no script error may happen.

Screenshots (login, list, detail, viewer, phone[, swagger]) and the figures
(perf.json) are kept in CRMBLOB_PAGE_OUT, else in the module's temporary
directory (printed). The list view must be complete within LIST_MS.

Run once, by `make browser` (CRMBLOB_BROWSER=1; part of `make test`), not
in every build mode of the black-box suites: elsewhere it is skipped.
Needs chromium and tests/browser/node_modules (bash scripts/page-deps.sh);
without them it is skipped, unless CRMBLOB_REQUIRE_BROWSER is set: then it
fails.
"""
import colorsys
import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest
import requests

from conftest import DATA, DEFAULT_USERS, HTTP_TIMEOUT, REPO

PERF_COUNT = 50
LIST_MS = 300
EDITOR, VIEWER = "alice", "victor"
NODE_DIR = REPO / "tests" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _missing():
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.exists(CHROMIUM):
        return "chromium is not installed (scripts/deps.sh)"
    if not (NODE_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        return "tests/browser/node_modules lacks playwright-core (scripts/page-deps.sh)"
    return None


REQUIRED = bool(os.environ.get("CRMBLOB_REQUIRE_BROWSER"))
MISSING = _missing()
if not os.environ.get("CRMBLOB_BROWSER"):
    pytestmark = pytest.mark.skip(reason="browser tests run once, by `make browser` (CRMBLOB_BROWSER=1)")
elif MISSING and not REQUIRED:
    pytestmark = pytest.mark.skip(reason=f"no browser to drive: {MISSING}")


def _png(w, h, rows):
    raw = b"".join(b"\0" + r for r in rows)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def avatar(n, size=400):
    """A distinct portrait-like PNG for person n: a head and shoulders in a
    lighter shade on a background of its own hue."""
    hue = (n * 0.137) % 1.0
    bg = bytes(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.45, 0.75))
    fg = bytes(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.2, 0.97))
    cx, rows = size // 2, []
    for y in range(size):
        half = 0
        dy = y - size * 0.38
        if abs(dy) < size * 0.2:
            half = int((size * size * 0.04 - dy * dy) ** 0.5)
        dy2 = (y - size) / (size * 0.33)
        if abs(dy2) < 1:
            half = max(half, int(size * 0.38 * (1 - dy2 * dy2) ** 0.5))
        rows.append(bg * (cx - half) + fg * (2 * half) + bg * (size - cx - half))
    return _png(size, size, rows)


FIRST = ["Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grete", "Hedy", "Ivan"]
LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen", "Hermann",
        "Lamarr", "Sutherland"]


@pytest.fixture(scope="module")
def seeded(srv):
    s = requests.Session()
    s.auth = (EDITOR, DEFAULT_USERS[EDITOR][1])
    ids = []
    for n in range(PERF_COUNT):
        r = s.post(srv.base + "/api/v1/Person", timeout=HTTP_TIMEOUT,
                   json={"Firstname": FIRST[n % 10], "Lastname": f"{LAST[(n // 10) % 10]} {n + 1}"})
        assert r.status_code == 201, r.text
        pid = r.json()["PersonId"]
        r = s.put(f"{srv.base}/api/v1/Person/{pid}/Image", data=avatar(n), timeout=HTTP_TIMEOUT,
                  headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        ids.append(pid)
    return ids


def test_page_in_chromium(srv, seeded, tmp_path_factory):
    if MISSING:
        pytest.fail(f"CRMBLOB_REQUIRE_BROWSER is set but no browser can run: {MISSING}", pytrace=False)
    out = os.environ.get("CRMBLOB_PAGE_OUT") or str(tmp_path_factory.mktemp("page"))
    png = os.path.join(out, "dropped.png")
    os.makedirs(out, exist_ok=True)
    with open(png, "wb") as f:
        f.write(avatar(99, 300))
    wrong = requests.post(srv.base + "/api/v1/login", timeout=HTTP_TIMEOUT,
                          json={"UserName": EDITOR, "Password": "not-the-password"},
                          headers={"SO-Language": "en"}).json()["ErrorMessage"]
    docs = "/api/docs/" if requests.get(srv.base + "/api/docs/", timeout=HTTP_TIMEOUT).ok else None
    cfg = {"base": srv.base, "out": out, "chromium": CHROMIUM,
           "editor": [EDITOR, DEFAULT_USERS[EDITOR][1]], "viewer": [VIEWER, DEFAULT_USERS[VIEWER][1]],
           "wrongMessage": wrong, "jpeg": str(DATA / "medium.jpg"), "png": png,
           "perfCount": PERF_COUNT, "docs": docs, "docsId": seeded[0]}
    p = subprocess.run(["node", str(NODE_DIR / "page.mjs"), json.dumps(cfg)], cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=240)
    lines = p.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    with open(os.path.join(out, "perf.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"screenshots and perf.json in {out}")
    assert p.returncode == 0, f"{p.stderr[-3000:]}\nsteps passed: {result.get('steps')}"
    perf = result["perf"]
    # the list view with all 50 thumbnails, the variants already made by the
    # server and an empty browser cache
    assert perf["coldBrowser"]["shown"] == PERF_COUNT
    assert perf["coldBrowser"]["ms"] < LIST_MS, perf["coldBrowser"]
    assert perf["reload"]["ms"] < LIST_MS, perf["reload"]
    assert perf["reloadStatuses"] == [304]
    if docs is None:
        print("Swagger UI is not served by this build (/api/docs): its case was not run")
