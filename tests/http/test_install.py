"""`make install PREFIX=... DESTDIR=...` and the installed layout.

The tree is staged in a temporary DESTDIR from the build the suite runs
(the directory of $CRMBLOB_BIN, not rebuilt: `-o all`). The installed
server must run from there by its BINDIR link: start, answer /health,
take a picture through the installed image worker (not one from the
build directory or $CRMBLOB_IMG_WORKER) and load the installed
PostgreSQL module for a PostgreSQL --db. The man page must render
without warnings and name every option of `crmblob --help`.
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import BIN, DATA, HTTP_TIMEOUT, REPO, free_port

PREFIX = "/usr/local"


def make_install(destdir, *extra):
    p = subprocess.run(["make", "-s", "-C", str(REPO), "-o", "all", f"BUILD={BIN.parent}",
                        f"DESTDIR={destdir}", f"PREFIX={PREFIX}", *extra],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    make_install(d, "install")
    return d


def clean_env():
    """The environment without the harness's pointers to build files."""
    return {k: v for k, v in os.environ.items()
            if k not in ("CRMBLOB_IMG_WORKER", "CRMBLOB_PG_MODULE")}


def test_layout(root):
    usr = root / PREFIX.lstrip("/")
    link = usr / "bin/crmblob"
    assert link.is_symlink() and os.readlink(link) == "../lib/crmblob/crmblob"
    for name, mode in (("crmblob", 0o755), ("crmblob-img", 0o755), ("crmblob-pg.so", 0o644)):
        f = usr / "lib/crmblob" / name
        assert f.stat().st_mode & 0o7777 == mode, name
        assert f.read_bytes() == (BIN.parent / name).read_bytes(), name
    assert (usr / "share/man/man1/crmblob.1").read_bytes() == (REPO / "doc/crmblob.1").read_bytes()
    unit = (usr / "lib/systemd/system/crmblob.service").read_text()
    assert f"ExecStart={PREFIX}/bin/crmblob serve" in unit and "@BINDIR@" not in unit


def test_installed_binary_answers(root):
    exe = root / PREFIX.lstrip("/") / "bin/crmblob"
    p = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=clean_env())
    if p.returncode == 0:
        assert p.stdout.startswith("crmblob "), p.stdout
    else:  # no --version on this build: its help
        p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=clean_env())
        assert p.returncode == 0 and "crmblob serve" in p.stdout, p.stdout + p.stderr


def start_installed(exe, args, tmp_path, env=None):
    e = clean_env()
    e.update(env or {})
    for _ in range(5):
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen([str(exe), "serve", "--listen", f"127.0.0.1:{port}", *args],
                                    stdout=f, stderr=f, stdin=subprocess.DEVNULL, env=e)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if f"listening on http://127.0.0.1:{port} " in text:
                return proc, port, log
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if "cannot listen" not in log.read_text(errors="replace"):
            raise AssertionError(log.read_text(errors="replace"))
    raise AssertionError("no free port")


def children_exes(pid):
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                out.append(os.readlink(f"/proc/{child}/exe"))
            except OSError:
                pass
    return out


def test_installed_server_serves_pictures(root, tmp_path):
    usr = root / PREFIX.lstrip("/")
    proc, port, log = start_installed(usr / "bin/crmblob", ["--db", str(tmp_path / "x.db")],
                                      tmp_path, {"CRMBLOB_ADMIN_PASSWORD": "installed-pw-1"})
    try:
        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/health", timeout=HTTP_TIMEOUT).status_code == 200
        auth = ("admin", "installed-pw-1")
        r = requests.post(base + "/api/v1/Person", json={"Firstname": "In", "Lastname": "Stalled"},
                          auth=auth, timeout=HTTP_TIMEOUT)
        assert r.status_code in (200, 201), r.text
        pid = r.json()["PersonId"]
        jpeg = (DATA / "images/photo_320x240.jpg").read_bytes()
        r = requests.put(f"{base}/api/v1/Person/{pid}/Image", data=jpeg, auth=auth,
                         headers={"Content-Type": "image/jpeg"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        assert str(usr / "lib/crmblob/crmblob-img") in children_exes(proc.pid)
        r = requests.get(f"{base}/api/v1/Person/{pid}/Image", auth=auth, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_installed_server_loads_the_installed_pg_module(root, tmp_path):
    """A PostgreSQL --db that cannot be reached yet: the module is loaded
    before the first connection, and --db-wait keeps the server there."""
    usr = root / PREFIX.lstrip("/")
    e = clean_env()
    proc = subprocess.Popen([str(usr / "bin/crmblob"), "serve", "--listen", "127.0.0.1:0",
                             "--db", f"host={tmp_path} port=1 dbname=none", "--db-wait", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e)
    try:
        want = str(usr / "lib/crmblob/crmblob-pg.so")
        deadline = time.monotonic() + 10
        while True:
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            if want in maps:
                break
            assert proc.poll() is None and time.monotonic() < deadline, maps
            time.sleep(0.05)
        assert str(BIN.parent / "crmblob-pg.so") not in maps
    finally:
        proc.kill()
        proc.wait()


def test_man_page_renders_and_names_every_option(tmp_path):
    page = REPO / "doc/crmblob.1"
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", MANPAGER="cat", PAGER="cat")
    p = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    text = p.stdout
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "SIGNALS", "ENVIRONMENT", "EXIT STATUS"):
        assert re.search(rf"^{section}$", text, re.M), section
    # man renders hyphens as U+2010 where it breaks words: compare plain
    rendered = text.replace("\u2010", "-").replace("\u2212", "-")
    rendered = re.sub(r"-\n\s+", "-", rendered)
    overview = subprocess.run([str(BIN), "--help"], capture_output=True, text=True).stdout
    helptext = overview
    for cmd in sorted(set(re.findall(r"^\s+crmblob ([a-z]+)", overview, re.M))):
        helptext += subprocess.run([str(BIN), "help", cmd], capture_output=True, text=True).stdout
    options = set(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", helptext)) - {"--no"}
    assert len(options) > 50, helptext
    missing = sorted(o for o in options
                     if not re.search(re.escape(o) + r"(?![a-z0-9-])", rendered))
    assert not missing, f"options of --help the man page does not name: {missing}"


def test_uninstall(tmp_path):
    make_install(tmp_path, "install")
    make_install(tmp_path, "uninstall")
    left = [p for p in tmp_path.rglob("*") if not p.is_dir()]
    assert left == [], left
