"""The shipped unit's system-call sandbox, applied here without systemd.

dist/systemd/crmblob.service restricts the server with seccomp:
SystemCallFilter (an allow-list of groups, minus denied groups, other
calls failing with SystemCallErrorNumber), MemoryDenyWriteExecute (no
mapping both writable and executable, no mprotect adding execute) and
RestrictAddressFamilies. This module reads those lines from the unit,
expands the groups with `systemd-analyze syscall-filter` and loads the
same rules with libseccomp (Debian python3-seccomp) into a server
started here, before its exec: the server, the image workers it starts
(they inherit the filters) and the PostgreSQL module it loads must work
under them. A control process under the same filters shows they bite.
"""
import errno
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import BIN, DATA, HTTP_TIMEOUT, REPO, free_port

seccomp = pytest.importorskip("seccomp", reason="python3-seccomp is not installed")

UNIT = REPO / "dist" / "systemd" / "crmblob.service"
FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000


def unit_values(key):
    return [l.split("=", 1)[1].split() for l in UNIT.read_text().splitlines()
            if l.startswith(key + "=")]


def syscall_groups(sa):
    out = subprocess.run([sa, "syscall-filter"], capture_output=True, text=True,
                         check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return groups


def expand(names, groups):
    out = set()
    for n in names:
        out |= expand(groups[n], groups) if n.startswith("@") else {n}
    return out


@pytest.fixture(scope="module")
def sandbox():
    """A preexec_fn loading the unit's filters into the child."""
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    groups = syscall_groups(sa)
    allowed, denied = set(), set()
    for words in unit_values("SystemCallFilter"):
        if words[0].startswith("~"):
            denied |= expand([words[0][1:], *words[1:]], groups)
        else:
            allowed |= expand(words, groups)
    allowed = (allowed | expand(["@default"], groups)) - denied
    (errname,) = unit_values("SystemCallErrorNumber")[0]
    err = getattr(errno, errname)
    families = {FAMILIES[f] for f in unit_values("RestrictAddressFamilies")[0]}
    assert unit_values("MemoryDenyWriteExecute") == [["yes"]]

    def rules(default):
        return seccomp.SyscallFilter(defaction=default)

    def load():
        # systemd's order: the allow-list last (loading filters needs calls
        # it might not allow); the kernel applies the strictest answer
        wx = rules(seccomp.ALLOW)
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "mmap",
                    seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC,
                                PROT_WRITE | PROT_EXEC))
        for call in ("mprotect", "pkey_mprotect"):
            wx.add_rule(seccomp.ERRNO(errno.EPERM), call,
                        seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "shmat",
                    seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        wx.load()
        af = rules(seccomp.ALLOW)
        for fam in range(0, 64):
            if fam not in families:
                af.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket",
                            seccomp.Arg(0, seccomp.EQ, fam))
        af.load()
        allow = rules(seccomp.ERRNO(err))
        for call in sorted(allowed):
            try:
                allow.add_rule(seccomp.ALLOW, call)
            except (RuntimeError, ValueError):
                pass  # a name this libseccomp or architecture does not know
        allow.load()

    return load


CONTROL = r"""
import errno, mmap, os, socket
def refused(f, want):
    try:
        f()
    except OSError as e:
        assert e.errno == want, e
        return
    raise AssertionError(f"{f} was allowed")
refused(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC),
        errno.EPERM)
refused(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW), errno.EAFNOSUPPORT)
refused(lambda: os.chroot("/"), errno.EPERM)   # @privileged
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()
mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE).close()
print("ok")
"""


def test_the_filters_bite(sandbox):
    p = subprocess.run(["/usr/bin/python3", "-c", CONTROL], capture_output=True, text=True,
                       preexec_fn=sandbox, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr


def clean_env():
    e = {k: v for k, v in os.environ.items() if k not in ("CRMBLOB_IMG_WORKER",)}
    e["CRMBLOB_ADMIN_PASSWORD"] = "sandbox-pw-1"
    # an ASan build's leak check runs the process under ptrace at exit,
    # which the filter (rightly) refuses: the other sanitizer checks stay
    e["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                               "detect_leaks=0"]))
    return e


def test_server_and_image_workers_work_in_the_sandbox(tmp_path, sandbox):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--db",
                                 str(tmp_path / "x.db")], stdout=f, stderr=f,
                                stdin=subprocess.DEVNULL, env=clean_env(), preexec_fn=sandbox)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while f"listening on http://127.0.0.1:{port}" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        auth = ("admin", "sandbox-pw-1")
        assert requests.get(base + "/ready", timeout=HTTP_TIMEOUT).status_code == 200
        r = requests.post(base + "/api/v1/Product", json={"Name": "W", "ERPProductKey": "k"},
                          auth=auth, timeout=HTTP_TIMEOUT)
        assert r.status_code in (200, 201), r.text
        pid = r.json()["ProductId"]
        jpeg = (DATA / "images/photo_320x240.jpg").read_bytes()
        r = requests.put(f"{base}/api/v1/Product/{pid}/Image", data=jpeg, auth=auth,
                         headers={"Content-Type": "image/jpeg"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text + log.read_text()
        # a thumbnail: the worker resizes (libvips, its vector code)
        r = requests.get(f"{base}/api/v1/Product/{pid}/Image", params={"w": 200, "h": 200},
                         auth=auth, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", r.text
        png = (DATA / "images/alpha_48x32.png").read_bytes()
        r = requests.put(f"{base}/api/v1/Product/{pid}/Image", data=png, auth=auth,
                         headers={"Content-Type": "image/png"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        assert "Operation not permitted" not in log.read_text(errors="replace")
        # the filters are on the server and on the worker it started
        workers = [c for t in Path(f"/proc/{proc.pid}/task").iterdir()
                   for c in (t / "children").read_text().split()]
        assert workers
        for p in [proc.pid, *workers]:
            status = Path(f"/proc/{p}/status").read_text()
            assert re.search(r"^Seccomp:\s+2$", status, re.M), status
            assert re.search(r"^Seccomp_filters:\s+3$", status, re.M), status
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_postgresql_module_loads_in_the_sandbox(tmp_path, sandbox):
    """A PostgreSQL --db not reachable yet: the module is loaded first."""
    proc = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{free_port()}",
                             "--db", f"host={tmp_path} port=1 dbname=none", "--db-wait", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env(), preexec_fn=sandbox)
    try:
        deadline = time.monotonic() + 10
        while "crmblob-pg.so" not in Path(f"/proc/{proc.pid}/maps").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert "libpq.so" in Path(f"/proc/{proc.pid}/maps").read_text()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(r"^Seccomp_filters:\s+3$", status, re.M), status
    finally:
        proc.kill()
        proc.wait()
