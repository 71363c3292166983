"""The BLOB agent driven by the official npm client `@superoffice/webapi`.

tests/client/blob_agent.js (plain Node) calls every BLOBAgent method crmblob
implements through `new BLOBAgent(...)` and checks the bytes and carriers that
come back, also against REST (GET Image / ImageInfo, PUT Image). It prints one
line per check, `ok <name>` or `FAIL <name>: <detail>`, then a JSON summary.
This module creates the entities through REST, runs the script once against
the module server, and turns each expected check into a test of its own, so a
check that silently did not run fails too.

Needs `node` (18 or later) and tests/client/node_modules (bash
scripts/client-deps.sh). Without them the module is skipped, unless
CRMBLOB_REQUIRE_CLIENT is set (non-empty): then it fails.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import DATA, DEFAULT_USERS, IMGDIR, REPO

CLIENT_DIR = REPO / "tests" / "client"
SCRIPT = CLIENT_DIR / "blob_agent.js"
PACKAGE = CLIENT_DIR / "node_modules" / "@superoffice" / "webapi"
RUN_TIMEOUT = 600
KINDS = ["Person", "Contact", "Product", "Project"]
SIZED_KINDS = ["Person", "Contact", "Project"]

USER = "alice"      # an editor
VIEWER = "victor"   # a viewer

FILES = {
    "CRMBLOB_JPEG": IMGDIR / "photo_320x240.jpg",     # 320x240, > 200 px: scaled, thumbnails
    "CRMBLOB_JPEG_SMALL": DATA / "small.jpg",         # 32x24
    "CRMBLOB_PNG": DATA / "small.png",                # 16x12
    "CRMBLOB_PNG_ALPHA": IMGDIR / "alpha_48x32.png",  # 48x32 RGBA: the contact's scaled PNG
}


def expected_checks():
    """Every check blob_agent.js must report as `ok` (its run order)."""
    n = [
        "connect",
        "createDefaultBlobEntity",
        "saveBlobEntity.new",
        "saveBlobEntity.defaultConceptualType",
        "saveBlobEntity.update",
        "saveBlobEntity.missing",
        "getBlobEntity.existing",
        "getBlobEntity.missing",
        "setBlobStream",
        "getBlobStream.arraybuffer",
        "getBlobStream.base64",
        "setBlobStream.replace",
        "setBlobStream.notImage",
        "setBlobStream.missingRecord",
        "saveImageStream.person",
        "saveImageStream.project",
        "saveProjectImage",
        "saveProjectImage.request",
        "saveProjectImage.notImage",
        "outOfScope.null",
        "getProductThumbnail.none",
    ]
    for k in KINDS:
        n += [
            f"getBlobEntityOn{k}.noImage",
            f"get{k}Image.noImage",
            f"set{k}Image",
            f"get{k}Image.arraybuffer",
            f"get{k}Image.base64",
            f"getBlobEntityOn{k}",
            f"rest.{k}.seesAgentImage",
            f"set{k}Image.replace",
        ]
        if k in SIZED_KINDS:
            n += [f"get{k}ImageWithSize.fit", f"get{k}ImageWithSize.oneSide",
                  f"get{k}ImageWithSize.noEnlarge", f"get{k}ImageWithSize.base64"]
        n += [
            f"change{k}Image.saved",
            f"rest.{k}.seesChangedImage",
            f"change{k}Image.zero",
            f"agent.{k}.seesRestImage",
            f"getBlobEntityOn{k}.missing",
            f"get{k}Image.missingEntity",
            f"set{k}Image.missingEntity",
        ]
    n += [
        "getProductThumbnail.derived",
        "setProductThumbnail",
        "getProductThumbnail.explicit",
        "getProductThumbnail.base64",
        "setProductThumbnail.missingEntity",
        "changeImage.conflict",
        "setBlobStream.linked",
        "deleteBlobEntity.linked",
        "deleteBlobEntity.unlinked",
        "deleteBlobEntity.missing",
        "auth.badPassword",
        "viewer.get",
        "viewer.saveBlobEntity",
        "viewer.setPersonImage",
        "viewer.changePersonImage",
        "viewer.deleteBlobEntity",
    ]
    return n


CHECKS = expected_checks()


def _node_major(node):
    try:
        p = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"v(\d+)\.", p.stdout.strip())
    return int(m.group(1)) if m else None


def _client_missing():
    """Why the client cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not installed (bash scripts/client-deps.sh)"
    major = _node_major(node)
    if major is None or major < 18:
        return f"`node --version` is not 18 or later (got major {major})"
    if not (PACKAGE / "package.json").is_file():
        return (f"{PACKAGE.relative_to(REPO)} is absent (bash scripts/client-deps.sh, "
                f"or `npm ci` in tests/client)")
    return None


REQUIRED = bool(os.environ.get("CRMBLOB_REQUIRE_CLIENT"))
MISSING = _client_missing()
if MISSING and not REQUIRED:
    pytestmark = pytest.mark.skip(reason=f"official client not available: {MISSING}")


@pytest.fixture(scope="module")
def agent_run(srv, alice):
    """Runs blob_agent.js once; returns {name: (status, detail)}, the output,
    the return code and the summary."""
    if MISSING:
        pytest.fail(f"CRMBLOB_REQUIRE_CLIENT is set but the official client cannot run: {MISSING}",
                    pytrace=False)
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("CRMBLOB_") and k not in ("CRMBLOB_REQUIRE_CLIENT",)]:
        del env[k]
    env.update({
        "CRMBLOB_URL": srv.base,
        "CRMBLOB_USER": USER,
        "CRMBLOB_PASSWORD": DEFAULT_USERS[USER][1],
        "CRMBLOB_VIEWER_USER": VIEWER,
        "CRMBLOB_VIEWER_PASSWORD": DEFAULT_USERS[VIEWER][1],
        "CRMBLOB_TIMEOUT_MS": "60000",
    })
    for k in KINDS:
        env[f"CRMBLOB_{k.upper()}_ID"] = str(alice.create(k))
    for var, path in FILES.items():
        assert path.is_file(), f"test picture {path} is missing"
        env[var] = str(path)
    try:
        p = subprocess.run(["node", str(SCRIPT)], cwd=str(REPO), env=env, capture_output=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        pytest.fail(f"blob_agent.js did not finish within {RUN_TIMEOUT}s; output so far:\n"
                    f"{out[-4000:]}\nserver log:\n{srv.log()[-2000:]}", pytrace=False)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    lines = {}
    summary = None
    for line in out.splitlines():
        m = re.match(r"^(ok|FAIL|skip) ([^\s:]+)(?::\s*(.*))?$", line)
        if m:
            lines.setdefault(m.group(2), (m.group(1), m.group(3) or ""))
        elif line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                pass
    return {"checks": lines, "out": out, "err": err, "rc": p.returncode, "summary": summary,
            "srv": srv}


def test_client_run(agent_run):
    """The script ran to its end: exit code 0, a summary with no failure, and
    no check beyond the expected ones failed or was skipped."""
    r = agent_run
    bad = [f"{st} {name}: {d}" for name, (st, d) in r["checks"].items() if st != "ok"]
    assert r["summary"] is not None, (
        f"no JSON summary line (rc {r['rc']})\nstdout:\n{r['out'][-3000:]}\nstderr:\n{r['err'][-3000:]}")
    assert r["rc"] == 0 and r["summary"].get("failed") == 0 and not bad, (
        f"blob_agent.js exit code {r['rc']}, summary {r['summary']}:\n" + "\n".join(bad[:40])
        + f"\nstderr:\n{r['err'][-2000:]}\nserver log:\n{r['srv'].log()[-2000:]}")
    assert r["summary"].get("passed", 0) >= len(CHECKS), r["summary"]


@pytest.mark.parametrize("name", CHECKS)
def test_client_check(agent_run, name):
    got = agent_run["checks"].get(name)
    assert got is not None, (
        f"check {name} did not report (rc {agent_run['rc']})\nstdout tail:\n{agent_run['out'][-1500:]}"
        f"\nstderr:\n{agent_run['err'][-1500:]}")
    status, detail = got
    assert status == "ok", f"{status} {name}: {detail}"


def test_check_list_matches_script():
    """blob_agent.js --list names exactly the checks this module expects, so the
    two lists cannot drift apart silently."""
    if MISSING:
        pytest.fail(f"CRMBLOB_REQUIRE_CLIENT is set but the official client cannot run: {MISSING}",
                    pytrace=False)
    p = subprocess.run(["node", str(SCRIPT), "--list"], capture_output=True, text=True,
                       timeout=60, cwd=str(REPO))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == CHECKS
