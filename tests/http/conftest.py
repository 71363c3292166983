"""Black-box HTTP test harness for crmblob.

The binary is taken from $CRMBLOB_BIN (default <repo>/build/crmblob). Each test
module gets its own temporary directory, database and server process (fixture
``srv``); tests that kill or restart the server build their own with
``make_server``. Users are created with the CLI before the server starts.

Only the Python standard library, pytest and requests are used here.
"""
import base64
import glob
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
BIN = Path(os.environ.get("CRMBLOB_BIN", str(REPO / "build" / "crmblob")))
# Flags every `serve` of the suites gets (e.g. "--durable": the suites run
# again in durable mode).
SERVE_ARGS = os.environ.get("CRMBLOB_SERVE_ARGS", "").split()
# CRMBLOB_TEST_DB=pg: every Server's --db is a fresh schema of this
# process's PostgreSQL cluster (pg_cluster below) instead of a SQLite file,
# and it spools in its own directory; any other value (or none): SQLite.
TEST_DB = os.environ.get("CRMBLOB_TEST_DB", "sqlite")


def sqlite_only(reason):
    """Marks a test whose subject is SQLite itself (its files, their modes,
    <db>-changes, the WAL and its fdatasync, --durable's group commit):
    skipped in the PostgreSQL run, saying why."""
    return pytest.mark.skipif(TEST_DB == "pg", reason=f"SQLite only: {reason}")


# Modules that choose their databases themselves (SQLite and PostgreSQL
# both, whatever CRMBLOB_TEST_DB says): the PostgreSQL run would repeat the
# SQLite run's, so it skips them.
OWN_BACKENDS = {"test_migrate", "test_pg_cluster", "test_pg_serve", "test_scaleout",
                "test_scaleout_pg", "test_bench_smoke"}

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 30.0

MIB = 1024 * 1024
MAX_IMAGE = 10 * MIB  # 10485760

# The users every module server starts with:
# name -> (role, password, full name)
DEFAULT_USERS = {
    "admin": ("admin", "admin-pw-1", "Ada Admin"),
    "alice": ("editor", "alice-pw-1", "Alice Editor"),
    "bob": ("editor", "bob-pw-1", "Bob Builder"),
    "victor": ("viewer", "victor-pw-1", "Victor Viewer"),
    # for tests that change their user (passwd / disable)
    "carol": ("editor", "carol-pw-1", "Carol Changer"),
    "dave": ("editor", "dave-pw-1", "Dave Disabled"),
}

# entity kind -> (id field, a minimal carrier without id)
KINDS = {
    "Person": ("PersonId", {"Firstname": "Ann", "Lastname": "Lee", "ContactId": 0}),
    "Contact": ("ContactId", {"Name": "Acme AS"}),
    "Product": ("ProductId", {"Name": "Widget", "ERPProductKey": "W-100"}),
    "Project": ("ProjectId", {"Name": "Apollo", "ProjectNumber": "P-42"}),
}
KIND_NAMES = list(KINDS)

BLOB_KEYS = {
    "BlobId", "BlobSize", "Description", "ExtraInfo", "IsEncrypted", "IsZipped",
    "MimeType", "OriginalSize", "CreatedDate", "UpdatedDate", "CreatedBy",
    "UpdatedBy", "ConceptualType", "TableRight", "FieldProperties",
}
FIELD_NAMES = [
    "BlobId", "BlobSize", "Description", "ExtraInfo", "IsEncrypted", "IsZipped",
    "MimeType", "OriginalSize", "CreatedDate", "UpdatedDate", "CreatedBy",
    "UpdatedBy", "ConceptualType",
]
EMPTY_DATE = "0001-01-01T00:00:00Z"
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

ERROR_TYPES = {
    400: "SoBadRequestException",
    401: "SoUnauthorizedException",
    403: "SoAccessDeniedException",
    404: "SoNotFoundException",
    409: "SoConflictException",
    413: "SoTooLargeException",
    415: "SoUnsupportedMediaTypeException",
}


# --------------------------------------------------------------------------
# test data


def data(name):
    return (DATA / name).read_bytes()


IMAGES = {
    # name -> (file, sniffed mime type)
    "png": ("small.png", "image/png"),
    "jpg": ("small.jpg", "image/jpeg"),
    "gif": ("small.gif", "image/gif"),
    "tif_le": ("small_le.tif", "image/tiff"),
    "tif_be": ("small_be.tif", "image/tiff"),
}


def image(name):
    f, mime = IMAGES[name]
    return data(f), mime


def png_chunk(ctype, payload):
    return (struct.pack(">I", len(payload)) + ctype + payload
            + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF))


def png_with_text(text):
    """small.png with a tEXt chunk inserted after IHDR: a valid, distinct PNG."""
    b = data("small.png")
    ihdr_end = 8 + 8 + 13 + 4
    if isinstance(text, str):
        text = text.encode("latin-1")
    return b[:ihdr_end] + png_chunk(b"tEXt", b"Comment\0" + text) + b[ihdr_end:]


def png_of_size(total):
    """A valid PNG of exactly `total` bytes (padding in a tEXt chunk)."""
    base = len(png_with_text(b""))
    assert total >= base
    return png_with_text(b"x" * (total - base))


def picture_of_size(n, size):
    """A valid picture of exactly `size` bytes, distinct for every n: a PNG
    (n % 3 == 0, padded in a tEXt chunk), a JPEG (1, in a COM segment) or a
    GIF (2, bytes after its trailer, which decoders ignore)."""
    tag = f"picture {n} ".encode()
    if n % 3 == 0:
        base = len(png_with_text(tag))
        assert size >= base, (n, size)
        return png_with_text(tag + b"x" * (size - base))
    if n % 3 == 1:
        jpg = data("small.jpg")
        pad = size - len(jpg) - 4
        assert len(tag) <= pad <= 65533, (n, size)
        com = tag + b"x" * (pad - len(tag))
        return jpg[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + jpg[2:]
    gif = data("small.gif")
    assert size >= len(gif) + len(tag), (n, size)
    return gif + tag + b"x" * (size - len(gif) - len(tag))


def png_size(b):
    """(width, height) from a PNG's IHDR."""
    assert b[:8] == b"\x89PNG\r\n\x1a\n", b[:16]
    assert b[12:16] == b"IHDR", b[:32]
    return struct.unpack(">II", b[16:24])


def sniff(b):
    """What the server is expected to answer as MimeType for these bytes."""
    if b.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if b.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if b.startswith(b"GIF87a") or b.startswith(b"GIF89a"):
        return "image/gif"
    if b.startswith(b"II*\x00") or b.startswith(b"MM\x00*"):
        return "image/tiff"
    return None


# --------------------------------------------------------------------------
# assertions


def assert_error(resp, status, error_type=None):
    """Every status >= 400 carries the JSON error carrier."""
    assert resp.status_code == status, (
        f"expected {status}, got {resp.status_code}: {resp.text[:500]!r}")
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", (
        f"error Content-Type is {ctype!r}, body {resp.text[:300]!r}")
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:300]!r}")
    assert isinstance(body, dict), body
    assert body.get("Error") is True, body
    if error_type is None:
        error_type = ERROR_TYPES.get(status)
    if error_type is not None:
        assert body.get("ErrorType") == error_type, body
    else:
        assert isinstance(body.get("ErrorType"), str) and body["ErrorType"], body
    msg = body.get("ErrorMessage")
    assert isinstance(msg, str) and msg.strip(), body
    assert body.get("ErrorSource") == "crmblob", body
    return body


def assert_json_ctype(resp):
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", ctype


def blob_id_of(resp):
    """The answer of PUT/POST Image: a bare JSON integer."""
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:500]!r}"
    assert_json_ctype(resp)
    text = resp.text.strip()
    assert re.fullmatch(r"\d+", text), f"not a bare integer: {resp.text[:200]!r}"
    val = json.loads(text)
    assert isinstance(val, int) and val > 0, val
    return val


def path_of(location):
    return urlsplit(location).path


# --------------------------------------------------------------------------
# client


class Client:
    """requests.Session bound to the server's base URL and one user."""

    def __init__(self, base, user=None, password=None):
        self.base = base
        self.user = user
        self.s = requests.Session()
        if user is not None:
            self.s.auth = (user, password)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.s.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    # -- helpers ---------------------------------------------------------

    def create(self, kind, **fields):
        """POST a new entity; returns its id."""
        idf, defaults = KINDS[kind]
        body = dict(defaults)
        body.update(fields)
        r = self.post(f"/api/v1/{kind}", json=body)
        assert r.status_code == 201, f"create {kind}: {r.status_code} {r.text[:300]!r}"
        return r.json()[idf]

    def put_image(self, kind, eid, body, ctype="application/octet-stream", method="PUT"):
        headers = {"Content-Type": ctype} if ctype else {}
        r = self.request(method, f"/api/v1/{kind}/{eid}/Image", data=body, headers=headers)
        return blob_id_of(r)

    def get_image(self, kind, eid, **kw):
        return self.get(f"/api/v1/{kind}/{eid}/Image", **kw)

    def info(self, kind, eid):
        r = self.get(f"/api/v1/{kind}/{eid}/ImageInfo")
        assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
        assert_json_ctype(r)
        return r.json()

    def put_info(self, kind, eid, body, **kw):
        return self.put(f"/api/v1/{kind}/{eid}/ImageInfo", json=body, **kw)

    def close(self):
        self.s.close()


# --------------------------------------------------------------------------
# server


def free_port():
    """A port free a moment ago. Another process (a test running in parallel,
    pytest-xdist) may take it before the server binds it: Server.start then
    tries another one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


START_ATTEMPTS = 5


class Server:
    # "https" for a server given --tls-cert/--tls-key (test_tls.py)
    scheme = "http"

    def __init__(self, workdir, users=None, env=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # --db: a file, or with CRMBLOB_TEST_DB=pg a schema of its own
        self.pg_schema = pg_servers_cluster().new_schema() if TEST_DB == "pg" else None
        self.db = self.pg_schema.conninfo if self.pg_schema else self.dir / "crmblob.db"
        self.log_path = self.dir / "server.log"
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.env = env or {}
        self.proc = None
        self.port = None
        self._logf = None
        self._clients = []
        if not BIN.exists():
            pytest.fail(f"crmblob binary not found at {BIN} (build it with `make`, "
                        f"or set CRMBLOB_BIN)", pytrace=False)

    # -- CLI -----------------------------------------------------------------

    def cli(self, *args, stdin=None, check=False, timeout=60, env=None):
        e = dict(os.environ)
        e.update(self.env)
        if env:
            e.update(env)
        p = subprocess.run([str(BIN), *args], input=stdin, capture_output=True,
                           text=True, timeout=timeout, env=e)
        if check:
            assert p.returncode == 0, (
                f"crmblob {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\n"
                f"stderr: {p.stderr}")
        return p

    def init_db(self):
        """`crmblob init`: the administration commands refuse to make a
        database, so one is made before the first user is added."""
        if not getattr(self, "_db_made", False):
            self.cli("init", "--db", str(self.db), check=True)
            self._db_made = True

    def add_user(self, name, role, password, full_name=None, check=True):
        self.init_db()
        args = ["user", "add", name, "--role", role]
        if full_name is not None:
            args += ["--full-name", full_name]
        args += ["--password-stdin", "--db", str(self.db)]
        p = self.cli(*args, stdin=password + "\n", check=check)
        if p.returncode == 0:
            self.users[name] = (role, password, full_name)
        return p

    def passwd(self, name, password, check=True):
        p = self.cli("user", "passwd", name, "--password-stdin", "--db", str(self.db),
                     stdin=password + "\n", check=check)
        if p.returncode == 0 and name in self.users:
            role, _, fn = self.users[name]
            self.users[name] = (role, password, fn)
        return p

    def user_list(self):
        """Rows of `user list` (header skipped) as dicts."""
        p = self.cli("user", "list", "--db", str(self.db), check=True)
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        assert lines, "user list printed nothing"
        rows = {}
        for line in lines[1:]:
            cols = line.split("\t")
            assert len(cols) >= 4, f"bad user list row: {line!r}"
            rows[cols[1]] = {
                "id": cols[0], "name": cols[1], "role": cols[2], "status": cols[3],
                "full_name": cols[4] if len(cols) > 4 else "",
            }
        return rows

    def create_users(self):
        for name, (role, pw, fn) in list(self.users.items()):
            self.add_user(name, role, pw, fn)

    # -- process ----------------------------------------------------------

    @property
    def base(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def serve_argv(self):
        # the suites make many deliberate failed logins from 127.0.0.1; the
        # failure limits have tests of their own (test_auth_schemes,
        # test_auth_throttle)
        return [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--db", str(self.db),
                *self.spool_args(), *NO_LIMITER, *SERVE_ARGS]

    def spool_args(self):
        """On PostgreSQL the upload spools go to the server's directory, as
        they go beside a SQLite file (tests look for them there)."""
        return ["--spool-dir", str(self.dir)] if self.pg_schema else []

    def start(self, env=None, port=None):
        """Starts `serve` on a free port; another port when the one picked was
        taken meanwhile ("cannot listen"). Up once its log says it listens on
        that port (a connection alone could reach another test's server).
        With `port`, on that one (a proxy in front names it), tried again a
        moment later while it is still taken."""
        assert self.proc is None or self.proc.poll() is not None
        e = dict(os.environ)
        e.update(self.env)
        if env:
            e.update(env)
        e = {k: v for k, v in e.items() if v is not None}
        for attempt in range(START_ATTEMPTS):
            self.port = port or free_port()
            if self._start_once(e, last=attempt == START_ATTEMPTS - 1):
                return self
            if port:
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _start_once(self, env, last):
        """One start on self.port: True when up, False when the port was
        taken (and not last), else raises."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.serve_argv(), stdout=self._logf, stderr=self._logf,
                                     stdin=subprocess.DEVNULL, env=env)
        ready = f"listening on {self.scheme}://127.0.0.1:{self.port} "
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            new = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if ready in new:
                return True
            if self.proc.poll() is not None:
                self._logf.close()
                if "cannot listen on" in new and not last:
                    return False
                raise AssertionError(
                    f"crmblob serve {' '.join(self.serve_argv()[2:])} exited with "
                    f"{self.proc.returncode} at start:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(
                    f"crmblob serve did not listen within {START_TIMEOUT}s:\n"
                    f"{self.log()[-3000:]}")
            time.sleep(0.02)

    def _close_clients(self):
        for c in self._clients:
            c.close()

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send sig and wait; returns the exit code (None if it did not exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self._close_clients()
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self._logf.close()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self._logf.close()

    def restart(self, env=None):
        """SIGTERM (must exit 0) then start again on the same db."""
        rc = self.stop()
        assert rc == 0, f"server exit code on SIGTERM: {rc}\n{self.log()[-2000:]}"
        return self.start(env=env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # Clients whose connections stay open; older ones have theirs closed
    # (a closed requests.Session opens new ones when used again), so that a
    # module making a client per request stays far below the server's
    # per-address connection cap (--max-conns-per-ip).
    OPEN_CLIENTS = 16

    def client(self, user=None, password=None):
        if user is not None and password is None:
            password = self.users[user][1]
        c = Client(self.base, user, password)
        self._clients.append(c)
        if len(self._clients) > self.OPEN_CLIENTS:
            self._clients[-self.OPEN_CLIENTS - 1].close()
        return c

    def anon(self):
        return self.client(None)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "serial: the module times the server under load (a Bystander's latency, a benchmark, "
        "races between connections): `make http` runs such modules alone, after the others "
        "have run in parallel (pytest-xdist). Mark a module with `pytestmark = "
        "pytest.mark.serial`; a module that starts a Bystander is serial without it.")


def pytest_collection_modifyitems(config, items):
    """A module that starts a Bystander times it under an attack: serial.
    In the PostgreSQL run, the OWN_BACKENDS modules are skipped."""
    uses = {}
    own = pytest.mark.skip(reason="chooses its databases itself (SQLite and PostgreSQL): "
                                  "run once, by the SQLite run")
    for item in items:
        mod = item.module
        if TEST_DB == "pg" and mod.__name__ in OWN_BACKENDS:
            item.add_marker(own)
        if mod not in uses:
            try:
                uses[mod] = "Bystander(" in inspect.getsource(mod)
            except (OSError, TypeError):
                uses[mod] = False
        if uses[mod]:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def bin_path():
    return BIN


def _module_server(tmp_path_factory, request):
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.module.__name__)[-40:]
    s = Server(tmp_path_factory.mktemp(name))
    s.create_users()
    s.start()
    return s


@pytest.fixture(scope="module")
def srv(tmp_path_factory, request):
    """One running server per test module, with DEFAULT_USERS."""
    s = _module_server(tmp_path_factory, request)
    yield s
    if s.alive():
        rc = s.stop()
        assert rc == 0, f"server did not exit 0 on SIGTERM (rc={rc})\n{s.log()[-2000:]}"


@pytest.fixture
def make_server(tmp_path):
    """Factory for a private server (for tests that kill/restart it)."""
    made = []

    def make(users=None, start=True, env=None):
        s = Server(tmp_path / f"srv{len(made)}", users=users, env=env)
        made.append(s)
        s.create_users()
        if start:
            s.start()
        return s

    yield make
    for s in made:
        if s.alive():
            rc = s.stop()
            assert rc == 0, f"server did not exit 0 on SIGTERM (rc={rc})\n{s.log()[-2000:]}"


@pytest.fixture
def fresh(make_server):
    """A private running server with DEFAULT_USERS."""
    return make_server()


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client("admin")


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client("alice")


@pytest.fixture(scope="module")
def bob(srv):
    return srv.client("bob")


@pytest.fixture(scope="module")
def viewer(srv):
    return srv.client("victor")


# --------------------------------------------------------------------------
# raw HTTP over a socket (for partial bodies, early answers, disconnects)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RawConn:
    def __init__(self, port, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, b):
        self.sock.sendall(b)

    def send_head(self, method, path, headers):
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def readable(self, timeout=0.0):
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def read_response(self, timeout=15.0):
        """Read one HTTP/1.1 response: (status, headers(lowercase), body)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._recv(deadline)
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.buf = rest
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._recv(deadline)
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._recv(deadline)
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._recv(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response; got {self.buf[:300]!r}")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {self.buf[:300]!r}")
        self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def error_body(body):
    b = json.loads(body)
    assert b.get("Error") is True and b.get("ErrorSource") == "crmblob", b
    return b


# --------------------------------------------------------------------------
# representations: XML answers, media types, request bodies in every type
# (used by test_repr_*, test_i18n, test_conditional, test_timezone, test_select)

import xml.etree.ElementTree as ET  # noqa: E402
from urllib.parse import urlencode  # noqa: E402
from xml.sax.saxutils import escape as _xml_escape  # noqa: E402

XSI = "http://www.w3.org/2001/XMLSchema-instance"
DC_NS = "http://schemas.datacontract.org/2004/07/SuperOffice"

# BlobEntity fields in the order of SPEC §4 / the reference, and their JSON types
BLOB_ORDER = [
    "BlobId", "BlobSize", "Description", "ExtraInfo", "IsEncrypted", "IsZipped", "MimeType",
    "OriginalSize", "CreatedDate", "UpdatedDate", "CreatedBy", "UpdatedBy", "ConceptualType",
    "TableRight", "FieldProperties",
]
BLOB_INTS = {"BlobId", "BlobSize", "OriginalSize"}
BLOB_BOOLS = {"IsEncrypted", "IsZipped"}
BLOB_STRINGS = {"Description", "ExtraInfo", "MimeType", "ConceptualType", "CreatedDate",
                "UpdatedDate"}
ASSOCIATE_ORDER = ["AssociateId", "Name", "PersonId", "Rank", "Tooltip", "Type", "GroupIdx",
                   "FullName", "FormalName", "Deleted", "EjUserId", "UserName"]
ASSOCIATE_INTS = {"AssociateId", "PersonId", "Rank", "GroupIdx", "EjUserId"}
CLIENT_BLOB_FIELDS = ["Description", "ExtraInfo", "ConceptualType"]

# entity kind -> (field order, int fields)
ENTITY_FIELDS = {
    "Person": (["PersonId", "Firstname", "Lastname", "ContactId"], {"PersonId", "ContactId"}),
    "Contact": (["ContactId", "Name"], {"ContactId"}),
    "Product": (["ProductId", "Name", "ERPProductKey"], {"ProductId"}),
    "Project": (["ProjectId", "Name", "ProjectNumber"], {"ProjectId"}),
}

# every request media type a carrier may be sent in (SPEC §4)
REQUEST_TYPES = [
    "application/json", "text/json", "application/xml", "text/xml",
    "application/x-www-form-urlencoded", "application/json-patch+json",
    "application/merge-patch+json",
]


def media_type(resp):
    """(type/subtype lower-case, {param: value}) of the answer's Content-Type."""
    ctype = resp.headers.get("Content-Type", "")
    parts = [p.strip() for p in ctype.split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def xml_local(tag):
    return tag.rsplit("}", 1)[-1]


def xml_children(el):
    return [xml_local(c.tag) for c in el]


def xml_child(el, name):
    found = [c for c in el if xml_local(c.tag) == name]
    assert len(found) == 1, f"<{xml_local(el.tag)}> has {len(found)} <{name}> children: " \
        f"{xml_children(el)}"
    return found[0]


def xml_is_nil(el):
    return el.get(f"{{{XSI}}}nil") == "true"


def xml_text(el):
    return el.text or ""


def parse_xml_answer(resp, ctype=None):
    """The answer parsed as XML (root element); checks the Content-Type is XML."""
    mt, params = media_type(resp)
    if ctype is None:
        assert mt in ("application/xml", "text/xml"), \
            f"expected an XML answer, got Content-Type {resp.headers.get('Content-Type')!r}: " \
            f"{resp.text[:300]!r}"
    else:
        assert mt == ctype, f"expected {ctype}, got {resp.headers.get('Content-Type')!r}"
    try:
        return ET.fromstring(resp.content)
    except ET.ParseError as e:
        raise AssertionError(f"answer is not well-formed XML ({e}): {resp.text[:500]!r}")


def _xml_int(el, where):
    t = xml_text(el).strip()
    assert re.fullmatch(r"-?\d+", t), f"{where}: not an integer: {t!r}"
    return int(t)


def _xml_bool(el, where):
    t = xml_text(el)
    assert t in ("true", "false"), f"{where}: not a boolean true/false: {t!r}"
    return t == "true"


def xml_associate_to_json(el, where="Associate"):
    if xml_is_nil(el):
        assert len(el) == 0 and not (el.text or "").strip(), f"{where}: nil with content"
        return None
    names = xml_children(el)
    assert sorted(names) == sorted(ASSOCIATE_ORDER), f"{where} children: {names}"
    out = {}
    for c in el:
        n = xml_local(c.tag)
        if n in ASSOCIATE_INTS:
            out[n] = _xml_int(c, f"{where}.{n}")
        elif n == "Deleted":
            out[n] = _xml_bool(c, f"{where}.{n}")
        else:
            out[n] = xml_text(c)
    return out


def xml_right_to_json(el, where):
    names = xml_children(el)
    assert sorted(names) == ["Mask", "Reason"], f"{where} children: {names}"
    return {"Mask": xml_text(xml_child(el, "Mask")), "Reason": xml_text(xml_child(el, "Reason"))}


def xml_blob_to_json(root):
    """A <BlobEntity> element converted to the JSON carrier (JSON types)."""
    out = {}
    for c in root:
        n = xml_local(c.tag)
        assert n not in out, f"<{n}> twice"
        if n in BLOB_INTS:
            out[n] = _xml_int(c, n)
        elif n in BLOB_BOOLS:
            out[n] = _xml_bool(c, n)
        elif n in ("CreatedBy", "UpdatedBy"):
            out[n] = xml_associate_to_json(c, n)
        elif n == "TableRight":
            out[n] = None if xml_is_nil(c) else xml_right_to_json(c, n)
        elif n == "FieldProperties":
            fp = {}
            for f in c:
                fn = xml_local(f.tag)
                names = xml_children(f)
                assert sorted(names) == ["FieldLength", "FieldRight", "FieldType"], \
                    f"FieldProperties.{fn} children: {names}"
                fp[fn] = {
                    "FieldRight": xml_right_to_json(xml_child(f, "FieldRight"),
                                                    f"FieldProperties.{fn}.FieldRight"),
                    "FieldType": xml_text(xml_child(f, "FieldType")),
                    "FieldLength": _xml_int(xml_child(f, "FieldLength"),
                                            f"FieldProperties.{fn}.FieldLength"),
                }
            out[n] = fp
        else:
            out[n] = xml_text(c)
    return out


def xml_entity_to_json(kind, root):
    order, ints = ENTITY_FIELDS[kind]
    out = {}
    for c in root:
        n = xml_local(c.tag)
        out[n] = _xml_int(c, n) if n in ints else xml_text(c)
    return out


def assert_xml_error(resp, status, error_type=None, ctype=None):
    """An error answered as XML: <Error><Error>true</Error><ErrorType/>...</Error>."""
    assert resp.status_code == status, (
        f"expected {status}, got {resp.status_code}: {resp.text[:500]!r}")
    root = parse_xml_answer(resp, ctype)
    assert xml_local(root.tag) == "Error", f"root is <{root.tag}>: {resp.text[:300]!r}"
    names = xml_children(root)
    assert sorted(names) == sorted(["Error", "ErrorType", "ErrorMessage", "ErrorSource"]), names
    body = {n: xml_text(xml_child(root, n)) for n in names}
    assert body["Error"] == "true", body
    if error_type is None:
        error_type = ERROR_TYPES.get(status)
    if error_type is not None:
        assert body["ErrorType"] == error_type, body
    assert body["ErrorMessage"].strip(), body
    assert body["ErrorSource"] == "crmblob", body
    return body


def xml_escape(s):
    return _xml_escape(s, {'"': "&quot;", "'": "&apos;"})


def xml_body(fields, root="BlobEntity", ns=True):
    """An XML request carrier with the given (already JSON-typed) fields."""
    attrs = f' xmlns="{DC_NS}" xmlns:i="{XSI}"' if ns else ""
    parts = [f'<?xml version="1.0" encoding="utf-8"?><{root}{attrs}>']
    for k, v in fields.items():
        if v is None:
            parts.append(f'<{k} i:nil="true"/>' if ns else f"<{k}/>")
        elif isinstance(v, bool):
            parts.append(f"<{k}>{'true' if v else 'false'}</{k}>")
        else:
            parts.append(f"<{k}>{xml_escape(str(v))}</{k}>")
    parts.append(f"</{root}>")
    return "".join(parts).encode("utf-8")


def body_as(ctype, fields, root="BlobEntity"):
    """The same change (a dict of client fields) in the request type `ctype`."""
    base = ctype.split(";")[0].strip().lower()
    if base in ("application/json", "text/json", "application/merge-patch+json"):
        return json.dumps(fields).encode("utf-8")
    if base in ("application/xml", "text/xml"):
        return xml_body(fields, root=root)
    if base == "application/x-www-form-urlencoded":
        return urlencode({k: str(v) for k, v in fields.items()}, encoding="utf-8").encode()
    if base == "application/json-patch+json":
        return json.dumps([{"op": "replace", "path": "/" + k, "value": v}
                           for k, v in fields.items()]).encode("utf-8")
    raise ValueError(ctype)


# --------------------------------------------------------------------------
# servers started with extra `serve` flags, and the CLI-issued credentials
# (used by test_auth_schemes, test_sessions, test_apptoken, test_cors,
# test_hostile, test_rights_matrix)

# Lets the many deliberate failures of a module not throttle 127.0.0.1.
NO_LIMITER = ["--auth-address-limit", "0", "--auth-account-limit", "0"]


class ArgServer(Server):
    """A Server whose `serve` command line carries extra flags."""

    def __init__(self, workdir, users=None, env=None, serve_args=()):
        super().__init__(workdir, users=users, env=env)
        self.serve_args = [str(a) for a in serve_args]

    def serve_argv(self):
        # the test's own flags last: its --spool-dir wins over ours
        return [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--db", str(self.db),
                *self.spool_args(), *SERVE_ARGS, *self.serve_args]

    def try_start(self, timeout=3.0):
        """Runs `serve` expecting it to refuse its flags: returns the exit code,
        or None if it was still running after `timeout` (then it is stopped)."""
        for _ in range(START_ATTEMPTS):
            rc = self._try_start_once(timeout)
            if rc is None or "cannot listen on" not in self.refusal:
                return rc
        return rc

    def _try_start_once(self, timeout):
        self.port = free_port()
        self.refusal = ""
        proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--db", str(self.db),
             *self.spool_args(), *self.serve_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=timeout)
            self.refusal = out.decode(errors="replace")
            return proc.returncode
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            return None

    # -- credentials from the CLI (work while the server runs) ----------------

    def _one_line(self, *args):
        p = self.cli(*args, "--db", str(self.db), check=True)
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        assert len(lines) == 1, f"crmblob {' '.join(args)} printed {p.stdout!r}"
        return lines[0].strip()

    def ticket(self, user, ttl=None):
        args = ["ticket", "issue", user] + (["--ttl", ttl] if ttl else [])
        t = self._one_line(*args)
        assert t.startswith("7T:"), t
        return t

    def token(self, user, expires=None, label=None):
        args = ["token", "issue", user]
        if expires:
            args += ["--expires", expires]
        if label is not None:
            args += ["--label", label]
        t = self._one_line(*args)
        assert t.startswith("8A:"), t
        return t

    def apptoken(self, name):
        return self._one_line("apptoken", "add", name)

    def login(self, user, password=None):
        """POST /api/v1/login; returns the JSON answer (Ticket, XsrfToken, ...)
        plus "_session": the crmblob_session cookie value."""
        if password is None:
            password = self.users[user][1]
        r = requests.post(self.base + "/api/v1/login",
                          json={"username": user, "password": password}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"login {user}: {r.status_code} {r.text[:300]!r}"
        body = r.json()
        sess = r.cookies.get("crmblob_session")
        assert sess, f"no crmblob_session cookie: {r.headers}"
        body["_session"] = sess
        return body


def session_headers(login_answer, xsrf=True):
    """Headers authenticating with the browser session of a login answer."""
    x = login_answer["XsrfToken"]
    h = {"Cookie": f"crmblob_session={login_answer['_session']}; XSRF-TOKEN={x}"}
    if xsrf:
        h["X-XSRF-TOKEN"] = x
    return h


def start_arg_server(workdir, serve_args=(), users=None, start=True):
    s = ArgServer(workdir, users=users, serve_args=serve_args)
    s.create_users()
    if start:
        s.start()
    return s


def stop_arg_server(s):
    if s.alive():
        rc = s.stop()
        assert rc == 0, f"server did not exit 0 on SIGTERM (rc={rc})\n{s.log()[-2000:]}"


@pytest.fixture
def make_arg_server(tmp_path):
    """Factory for a private server with extra `serve` flags:
    make_arg_server(["--auth", "basic"], users=None, start=True)."""
    made = []

    def make(serve_args=(), users=None, start=True):
        s = start_arg_server(tmp_path / f"asrv{len(made)}", serve_args, users, start)
        made.append(s)
        return s

    yield make
    for s in made:
        stop_arg_server(s)


# --------------------------------------------------------------------------
# image pipeline (used by test_pipeline_*): committed images in
# tests/data/images (see make.sh there), hand-made images, answer checks

IMGDIR = DATA / "images"
STRONG_ETAG_RE = re.compile(r'^"[\x21\x23-\x7e]+"$')


def img(name):
    """A committed test image from tests/data/images."""
    return (IMGDIR / name).read_bytes()


def make_png(w, h, rgb=(40, 90, 200), alpha=None):
    """A valid 8-bit PNG of one colour (RGB, or RGBA when alpha is given)."""
    px = bytes(rgb) if alpha is None else bytes(rgb) + bytes([alpha])
    row = b"\0" + px * w
    ctype = 2 if alpha is None else 6
    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(row * h, 9)) + png_chunk(b"IEND", b""))


def image_mime(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower()


def assert_image_answer(resp, mime=None, status=200):
    """An image answer: status, Content-Type that the magic bytes agree with,
    Content-Length, strong ETag, Last-Modified. Returns the body."""
    import imgmeta
    assert resp.status_code == status, (
        f"expected {status}, got {resp.status_code}: {resp.text[:300]!r}")
    got = image_mime(resp)
    if mime is not None:
        assert got == mime, f"Content-Type {got!r}, want {mime!r}"
    sniffed = imgmeta.mime(resp.content)
    assert sniffed == got, (f"Content-Type says {got!r} but the bytes are {sniffed!r}: "
                            f"{resp.content[:16]!r}")
    if resp.request.method != "HEAD":
        assert resp.headers.get("Content-Length") == str(len(resp.content)), resp.headers
    etag = resp.headers.get("ETag", "")
    assert STRONG_ETAG_RE.match(etag), f"not a strong ETag: {etag!r}"
    lm = resp.headers.get("Last-Modified", "")
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", lm), f"Last-Modified {lm!r}"
    return resp.content


def fit_dims(w, h, bw=None, bh=None):
    """What `fit inside bw x bh, keep aspect, never enlarge` gives for w x h."""
    s = 1.0
    if bw:
        s = min(s, bw / w)
    if bh:
        s = min(s, bh / h)
    return max(1, round(w * s)), max(1, round(h * s))


def assert_fits(got, w, h, bw=None, bh=None):
    """got (width, height) is w x h scaled to fit inside bw x bh: within one
    pixel of the exact scale, never larger than the box or the original."""
    want = fit_dims(w, h, bw, bh)
    gw, gh = got
    assert gw >= 1 and gh >= 1, f"{got}: a side is 0"
    assert abs(gw - want[0]) <= 1 and abs(gh - want[1]) <= 1, (
        f"{w}x{h} fit into {bw}x{bh}: got {gw}x{gh}, want about {want[0]}x{want[1]}")
    if bw:
        assert gw <= bw, f"{got} wider than {bw}"
    if bh:
        assert gh <= bh, f"{got} taller than {bh}"
    assert gw <= w and gh <= h, f"{got} is larger than the original {w}x{h}"


# --------------------------------------------------------------------------
# the bystander: an unrelated client served while an attack runs


class Bystander:
    """Another user's ordinary work, in a loop on a thread of its own, while a
    test mounts an attack: GET ImageInfo and a small PUT Image of its own
    entity, each with a fresh connection every `reconnect` requests (as a
    browser or integration would open new ones). Every answer's status and
    latency is kept; `check` fails the test on any failure or on a latency
    above `max_latency` seconds.

        with Bystander(srv, "bob") as by:
            ... mount the attack ...
        by.check(max_latency=2.0)
    """

    def __init__(self, srv, user="bob", kind="Contact", base=None, reconnect=5, pause=0.02):
        import threading
        self.base = base or srv.base
        self.auth = (user, srv.users[user][1])
        self.results = []  # (op, status or exception text, seconds)
        self.reconnect = reconnect
        self.pause = pause
        self.png = png_with_text(b"bystander")
        c = Client(self.base, user, srv.users[user][1])
        self.eid = c.create(kind, **KINDS[kind][1])
        c.close()
        self.info = f"{self.base}/api/v1/{kind}/{self.eid}/ImageInfo"
        self.image = f"{self.base}/api/v1/{kind}/{self.eid}/Image"
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _one(self, s, op):
        t0 = time.monotonic()
        try:
            if op == "GET ImageInfo":
                r = s.get(self.info, timeout=HTTP_TIMEOUT)
            else:
                r = s.put(self.image, data=self.png, headers={"Content-Type": "image/png"},
                          timeout=HTTP_TIMEOUT)
            self.results.append((op, r.status_code, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            self.results.append((op, repr(e), time.monotonic() - t0))

    def _run(self):
        n = 0
        s = None
        while not self._stop.is_set():
            if s is None or n % self.reconnect == 0:
                if s is not None:
                    s.close()
                s = requests.Session()
                s.auth = self.auth
            self._one(s, "GET ImageInfo" if n % 2 == 0 else "PUT Image")
            n += 1
            self._stop.wait(self.pause)
        if s is not None:
            s.close()

    def start(self):
        self._t.start()
        time.sleep(0.2)
        return self

    def stop(self, min_requests=4):
        """Stops once at least min_requests were answered (an attack refused
        at once still leaves a sample to check), or after HTTP_TIMEOUT."""
        deadline = time.monotonic() + HTTP_TIMEOUT
        while (len(self.results) < min_requests and self._t.is_alive()
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self._stop.set()
        self._t.join(timeout=HTTP_TIMEOUT + 5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def failures(self):
        return [r for r in self.results if r[1] != 200]

    def worst(self):
        return max((r[2] for r in self.results), default=0.0)

    def check(self, max_latency=2.0, min_requests=4):
        """Every request answered 200 within max_latency; both kinds made."""
        bad = self.failures()
        assert not bad, f"bystander failed {len(bad)} of {len(self.results)}: {bad[:5]}"
        ops = {r[0] for r in self.results}
        assert ops == {"GET ImageInfo", "PUT Image"}, ops
        assert len(self.results) >= min_requests, self.results
        slow = [r for r in self.results if r[2] > max_latency]
        assert not slow, (f"bystander waited over {max_latency}s {len(slow)} times of "
                          f"{len(self.results)}: {slow[:5]}")
        return self


# --------------------------------------------------------------------------
# the server's processes and open files, seen through /proc


def child_pids(parent, name=None):
    """Processes whose parent is `parent` (the server's image workers);
    with `name`, only those whose command line holds it."""
    kids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            cmd = b""
            if name is not None:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and (name is None or name.encode() in cmd):
            kids.append(int(pid))
    return kids


def unlinked_files(pid):
    """[(/proc/PID/fd/N, target)] of the files process pid holds open that
    have no name any more (upload spools are unnamed files)."""
    out = []
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except OSError:
            continue
        if "(deleted)" in target:
            out.append((f"{fds}/{fd}", target))
    return out


def start_with_failing_disk(make_arg_server, tmp_path, serve_args):
    """A server whose fdatasync fails once the returned file exists (the
    shim tests/http/failsync.c, LD_PRELOADed; built by make http)."""
    shim = os.environ.get("CRMBLOB_FAILSYNC")
    if not shim:
        pytest.skip("CRMBLOB_FAILSYNC (the test shim, built by make http) is not set")
    trigger = tmp_path / "disk-fails"
    s = make_arg_server(serve_args, start=False)
    asan = os.environ.get("ASAN_OPTIONS", "")
    s.start(env={"LD_PRELOAD": shim, "CRMBLOB_FAILSYNC_WHEN": str(trigger),
                 "ASAN_OPTIONS": f"{asan}:verify_asan_link_order=0".lstrip(":")})
    return s, trigger


# --------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster (scripts/pg-cluster.sh) and a fresh schema
# per test.
#
# One cluster per pytest process, so per xdist worker: a worker's cluster
# starts in about 0.6 s the first time a test asks for it (never for a
# module that does not), nothing has to count the workers that still use a
# shared one before it may stop, and a test that pauses or restarts its
# server (an unavailable database) cannot fail another worker's tests. When
# PG_CLUSTER_DIR names a running cluster (`pg-cluster.sh with DIR make
# ...`), every process uses that one and leaves it running.

PG_SCRIPT = REPO / "scripts" / "pg-cluster.sh"


class PgCluster:
    """A cluster reached through the Unix socket in `dir`; `env` holds its
    PGHOST/PGPORT/PGUSER/PGDATABASE."""

    def __init__(self, dir, owned):
        self.dir = str(dir)
        self.owned = owned
        self.env = {}
        self._n = 0

    def _script(self, *args):
        out = subprocess.run(["bash", str(PG_SCRIPT), *args], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        for word in out.split():
            if word.startswith("PG") and "=" in word:
                k, v = word.split("=", 1)
                self.env[k] = v
        return out

    def start(self):
        self._script("start", "--fast", self.dir)

    def pause(self, mode="fast"):
        """Stops the server, keeping its data (mode "immediate": as a crash,
        recovered at the next start). A test that pauses it starts it again
        before it ends (try/finally): later tests share it."""
        self._script("pause", self.dir, mode)

    def restart(self, mode):
        """pg_ctl restart -m mode (fast, immediate), waiting until it is up."""
        self._script("restart", self.dir, mode)

    def stop(self):
        self._script("stop", self.dir)

    def conninfo(self, schema=None, **extra):
        """A libpq key=value string for the cluster; with `schema`, the
        search path is that schema alone."""
        e = self.env
        kv = {"host": e["PGHOST"], "port": e["PGPORT"], "user": e["PGUSER"],
              "dbname": e["PGDATABASE"], **extra}
        if schema is not None:
            kv["options"] = f"-csearch_path={schema}"
        quote = lambda v: "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"
        return " ".join(f"{k}={quote(v)}" for k, v in kv.items())

    def psql(self, sql, schema=None):
        """Runs sql with psql; its unaligned output, stripped."""
        env = {**os.environ, **self.env}
        if schema is not None:
            env["PGOPTIONS"] = f"-csearch_path={schema}"
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
                           env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    def new_schema(self):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self._n += 1
        name = re.sub(r"[^a-z0-9_]", "_", f"t_{worker}_{os.getpid()}_{self._n}".lower())
        self.psql(f"CREATE SCHEMA {name}")
        return PgSchema(self, name)


class PgSchema:
    """A schema of its own in a PgCluster; `conninfo` is what a server's
    --db gets."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.conninfo = cluster.conninfo(schema=name)

    def sql(self, query):
        return self.cluster.psql(query, schema=self.name)

    def drop(self):
        self.cluster.psql(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


_PROCESS_CLUSTER = None


def process_cluster():
    """This process's cluster, started the first time it is asked for and
    stopped when the process ends (pytest_unconfigure); the shared one of
    PG_CLUSTER_DIR when set (left running). None without PostgreSQL's
    server programs."""
    global _PROCESS_CLUSTER
    if _PROCESS_CLUSTER is not None:
        return _PROCESS_CLUSTER
    shared = os.environ.get("PG_CLUSTER_DIR")
    if shared:
        c = PgCluster(shared, owned=False)
        c._script("env", shared)
    elif not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return None
    else:
        # under /tmp, which the postgres user can reach when we are root
        d = tempfile.mkdtemp(prefix="crmblob-pg-")
        os.rmdir(d)  # pg-cluster.sh makes it, marked as its own
        c = PgCluster(d, owned=True)
        c.start()
    _PROCESS_CLUSTER = c
    return c


def pytest_unconfigure(config):
    if _PROCESS_CLUSTER is not None and _PROCESS_CLUSTER.owned:
        _PROCESS_CLUSTER.stop()


def pg_servers_cluster():
    """The cluster every Server uses with CRMBLOB_TEST_DB=pg; a run that
    asks for PostgreSQL without it fails rather than testing SQLite."""
    c = process_cluster()
    if c is None:
        pytest.fail("CRMBLOB_TEST_DB=pg, but no PostgreSQL server programs (Debian package "
                    "postgresql)", pytrace=False)
    return c


@pytest.fixture(scope="session")
def pg_cluster():
    """This process's PostgreSQL cluster (see above); skipped without
    PostgreSQL's server programs (the package postgresql, make deps)."""
    c = process_cluster()
    if c is None:
        pytest.skip("no PostgreSQL server programs (Debian package postgresql)")
    return c


@pytest.fixture
def pg_db(pg_cluster):
    """A fresh, empty schema for one test, dropped afterwards."""
    s = pg_cluster.new_schema()
    yield s
    s.drop()


# --------------------------------------------------------------------------
# haproxy (Debian's) in front of crmblob, started by the tests
# (test_trusted_proxy, test_scaleout)

HAPROXY = shutil.which("haproxy")


def need_haproxy():
    if HAPROXY is None:
        pytest.skip("haproxy not installed (bash scripts/deps.sh)")


def wait_listening(proc, port, timeout=10.0):
    """True once something accepts connections on 127.0.0.1:port while proc
    runs; False when proc exits first or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_proc(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Haproxy:
    """A haproxy in the foreground (-db) on configuration file `cfg`, its
    output in `log_path`. `pick()` chooses its ports before each attempt
    (writing the configuration, or answering the environment the
    configuration reads): (env, [ports it must listen on]). A port taken
    meanwhile by a parallel test: other ports, up to 5 times."""

    def __init__(self, workdir, cfg, pick):
        need_haproxy()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = Path(cfg)
        self.log_path = self.dir / "haproxy.log"
        self.proc = None
        for _ in range(5):
            self.env, self.ports = pick()
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.cfg)],
                                             stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                             env={**os.environ, **self.env})
            if all(wait_listening(self.proc, p) for p in self.ports):
                return
            stop_proc(self.proc)
        raise AssertionError(f"haproxy did not start:\n{self.log()[-3000:]}")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            stop_proc(self.proc)


# --------------------------------------------------------------------------
# scale-out (issue 18): two servers on one data set behind haproxy
# (test_scaleout). The data set comes from `scaleout_backend`: which --db
# the servers share and how a fresh one is made. SQLite: one file, which
# each `serve` holds shared (<db>.lock) and whose caches the servers keep
# truthful through <db>-changes. Another backend is one more entry in
# SCALEOUT_BACKENDS.

HAPROXY_CFG = REPO / "dist" / "haproxy" / "crmblob.cfg"


class SqliteDataSet:
    """A fresh SQLite database file in workdir (made by the first command)."""

    name = "sqlite"

    def __init__(self, request, workdir):
        self.workdir = Path(workdir)
        self.made = 0

    def fresh(self):
        """The --db of a new, empty data set."""
        self.made += 1
        d = self.workdir / f"data{self.made}"
        d.mkdir(parents=True, exist_ok=True)
        return str(d / "crmblob.db")

    def close(self):
        pass


class PgDataSet:
    """A fresh schema of this process's PostgreSQL cluster (pg_cluster) for
    each fresh(); the servers reach it by its conninfo and make its tables
    themselves (the first command's migration). Dropped at close()."""

    name = "postgresql"

    def __init__(self, request, workdir):
        self.pg = request.getfixturevalue("pg_cluster")
        self.schemas = []

    def fresh(self):
        s = self.pg.new_schema()
        self.schemas.append(s)
        return s.conninfo

    def close(self):
        for s in self.schemas:
            s.drop()


# name -> class(request, workdir) with .name, .fresh() -> --db, .close()
SCALEOUT_BACKENDS = {"sqlite": SqliteDataSet, "postgresql": PgDataSet}


@pytest.fixture(params=list(SCALEOUT_BACKENDS))
def scaleout_backend(request, tmp_path):
    ds = SCALEOUT_BACKENDS[request.param](request, tmp_path / "dataset")
    yield ds
    ds.close()


class SharedServer(ArgServer):
    """A server of a cluster: its own directory (log), the cluster's --db.
    It keeps its first port across restarts: haproxy's configuration names
    it."""

    def __init__(self, workdir, db, serve_args=(), env=None):
        # uploads spool in its own directory: nothing says the data set has one
        super().__init__(workdir, env=env,
                         serve_args=[*serve_args, "--spool-dir", str(Path(workdir))])
        self.db = db
        self.fixed_port = None

    def start(self, env=None, port=None):
        super().start(env=env, port=port or self.fixed_port)
        self.fixed_port = self.port
        return self


class ProxyAdmin:
    """haproxy's admin socket (the configuration's `stats socket`)."""

    def __init__(self, path):
        self.path = str(path)

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(HTTP_TIMEOUT)
            s.connect(self.path)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode(errors="replace")

    def stat(self, backend, server):
        """That server's row of `show stat` (status UP/DOWN/..., wretr,
        wredis, stot, ...) as a dict."""
        lines = self.command("show stat").splitlines()
        assert lines and lines[0].startswith("# "), lines[:3]
        head = lines[0][2:].split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise AssertionError(f"no {backend}/{server} in show stat: {lines}")

    def wait_status(self, backend, server, want, timeout=15.0):
        """Seconds until the server's status begins with `want` (UP, DOWN)."""
        t0 = time.monotonic()
        while True:
            try:
                st = self.stat(backend, server)["status"]
            except (FileNotFoundError, ConnectionRefusedError):
                # haproxy may answer on its port a moment before its stats
                # socket exists: wait for it like for the status
                st = "no admin socket yet"
            if st.startswith(want):
                return time.monotonic() - t0
            assert time.monotonic() - t0 < timeout, f"{server} still {st} after {timeout}s"
            time.sleep(0.02)


class Cluster:
    """Two crmblob servers on one data set (`db`) and haproxy in front with
    dist/haproxy/crmblob.cfg, its addresses given through its environment.
    servers[i] is haproxy's s{i+1}, run with the environment envs[i]
    added; `base` is haproxy's URL."""

    BACKEND = "crmblob"

    def __init__(self, workdir, db, serve_args=(), envs=({}, {})):
        self.dir = Path(workdir)
        self.db = db
        # haproxy connects from 127.0.0.1: the trusted proxy
        args = [*NO_LIMITER, "--trusted-proxy", "127.0.0.1", *serve_args]
        self.servers = [SharedServer(self.dir / f"s{i + 1}", db, args, envs[i]) for i in range(2)]
        self.servers[0].create_users()  # on the shared data set, for both
        for s in self.servers[1:]:
            s.users = dict(self.servers[0].users)
        self.proxy = None
        try:
            for s in self.servers:
                s.start()
            self.admin = ProxyAdmin(self.dir / "haproxy.sock")
            self.proxy = Haproxy(self.dir / "haproxy", HAPROXY_CFG, self._pick)
            for i in range(len(self.servers)):
                self.admin.wait_status(self.BACKEND, f"s{i + 1}", "UP")
        except BaseException:
            self.stop()
            raise

    def _pick(self):
        port = free_port()
        return {"CRMBLOB_BIND": f"127.0.0.1:{port}", "CRMBLOB_LOG": "stderr",
                "CRMBLOB_ADMIN": str(self.admin.path),
                **{f"CRMBLOB_S{i + 1}": f"127.0.0.1:{s.port}"
                   for i, s in enumerate(self.servers)}}, [port]

    @property
    def base(self):
        return f"http://127.0.0.1:{self.proxy.ports[0]}"

    @property
    def users(self):
        return self.servers[0].users

    def client(self, user, server=None):
        """A client of haproxy, or of servers[server] directly."""
        base = self.base if server is None else self.servers[server].base
        return Client(base, user, self.users[user][1])

    def stat(self, i):
        return self.admin.stat(self.BACKEND, f"s{i + 1}")

    def wait_status(self, i, want, timeout=15.0):
        return self.admin.wait_status(self.BACKEND, f"s{i + 1}", want, timeout)

    def stop(self):
        """haproxy, then each server still running (each must exit 0)."""
        if self.proxy is not None:
            self.proxy.stop()
        bad = []
        for s in self.servers:
            if s.alive():
                rc = s.stop()
                if rc != 0:
                    bad.append(f"{s.dir.name} exit {rc}:\n{s.log()[-2000:]}")
        assert not bad, "\n".join(bad)


@pytest.fixture
def make_cluster(scaleout_backend, tmp_path):
    """make_cluster(serve_args=(), envs=({}, {})): a Cluster on a fresh data
    set of the backend under test, stopped at the end of the test."""
    made = []

    def make(serve_args=(), envs=({}, {})):
        c = Cluster(tmp_path / f"cluster{len(made)}", scaleout_backend.fresh(), serve_args, envs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def post_person_under_load(call, base, first, last, lock, created):
    """A POST Person among the writes of a load (the scale-out tests): call
    is that load's caller bound to one client, call(what, method, url,
    want=, json=) -> the answer, or None when it failed (the load records
    why). The new PersonId is appended to created, under lock, once
    acknowledged (201), so that the test can check the ids are unique and
    every one of them is there."""
    r = call("POST Person", "POST", f"{base}/api/v1/Person", want=201,
             json={"Firstname": first, "Lastname": last})
    if r is not None:
        with lock:
            created.append(r.json()["PersonId"])
