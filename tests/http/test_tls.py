"""TLS built in (--tls-cert, --tls-key) and the reload on SIGHUP.

- Only TLS 1.2 and 1.3 are spoken: a client offering only 1.0 or 1.1 is
  refused (the same client is first shown to get through to an
  `openssl s_server` that allows them, so the refusal is crmblob's).
- Session cookies carry Secure over TLS.
- A bad file (missing, unreadable, not PEM, a key that is not the
  certificate's, one option without the other) stops the start with one
  line naming the option and the file, before any database is created.
- SIGHUP reloads the certificate without dropping a connection: a
  keep-alive connection opened before keeps working, a new handshake gets
  the new certificate; a bad new file keeps the old one and says why; a
  plain-http server lives through SIGHUP too.

Certificates are made here with `openssl req` (P-256: quick).
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import requests

from conftest import START_TIMEOUT, ArgServer, free_port, make_png, session_headers

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command is needed (scripts/deps.sh)")


def make_cert(dirpath, name, cn=None):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    cert, key = dirpath / f"{name}.crt", dirpath / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={cn or name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def der_of(cert_path):
    return ssl.PEM_cert_to_DER_cert(cert_path.read_text())


class TlsServer(ArgServer):
    scheme = "https"


def client_ctx(version=None, legacy=False):
    """A client context accepting any certificate (the tests compare it
    themselves), limited to one protocol version when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if legacy:  # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    return ctx


def handshake(port, ctx):
    """Connects and shakes hands: (negotiated version, server certificate DER)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as t:
            return t.version(), t.getpeercert(binary_form=True)


def get_on(sock, path="/health"):
    """One keep-alive GET on an open TLS socket: its status."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    r = http.client.HTTPResponse(sock)
    r.begin()
    r.read()
    assert not r.will_close, r.getheaders()
    return r.status


def wait_log(srv, text, after=0, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.log()[after:]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not logged:\n{srv.log()[after:][-2000:]}")


def hup_and_wait(srv):
    """SIGHUP, and back once the reload is done: the log from it."""
    mark = len(srv.log())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "reload: done", after=mark)
    assert srv.alive()
    return srv.log()[mark:]


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    return d


@pytest.fixture
def tls_server(tmp_path, certs):
    """A server on certs/live.{crt,key} (a copy of "one"); the test may
    overwrite them and send SIGHUP."""
    one = make_cert(certs, "one")
    live = (certs / "live.crt", certs / "live.key")
    shutil.copy(one[0], live[0])
    shutil.copy(one[1], live[1])
    s = TlsServer(tmp_path / "srv", serve_args=["--tls-cert", live[0], "--tls-key", live[1]])
    s.create_users()
    s.start()
    s.certs = {"one": one, "live": live}
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


# ---- protocol versions ----

def test_tls12_and_tls13_accepted(tls_server):
    for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        got, der = handshake(tls_server.port, client_ctx(v))
        assert got == name
        assert der == der_of(tls_server.certs["one"][0])


def start_legacy(cert, key):
    """`openssl s_server` on a free port: (process, port), or None when the
    port was taken meanwhile (another test running in parallel)."""
    port = free_port()
    p = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
                          "-key", str(key), "-cipher", "DEFAULT:@SECLEVEL=0", "-no_tls1_3",
                          "-no_tls1_2", "-www"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                return None
            assert time.monotonic() < deadline, "openssl s_server did not start"
            time.sleep(0.05)


@pytest.fixture
def legacy_server(certs):
    """`openssl s_server` allowing TLS 1.0 and 1.1: proves the client can speak them."""
    cert, key = make_cert(certs, "legacy")
    for _ in range(5):
        started = start_legacy(cert, key)
        if started is not None:
            break
    assert started is not None, "openssl s_server did not start"
    p, port = started
    yield port
    p.terminate()
    p.wait()


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls10_and_tls11_refused(tls_server, legacy_server, version):
    v = getattr(ssl.TLSVersion, version)
    # the client does speak it (to a server that allows it) ...
    got, _ = handshake(legacy_server, client_ctx(v, legacy=True))
    assert got == {"TLSv1": "TLSv1", "TLSv1_1": "TLSv1.1"}[version]
    # ... and crmblob refuses it
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(tls_server.port, client_ctx(v, legacy=True))
    assert tls_server.alive()


def test_plain_http_on_the_tls_port_gets_no_answer(tls_server):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5)
    assert tls_server.alive()


# ---- over TLS ----

def test_session_cookies_secure_over_tls(tls_server):
    ca = str(tls_server.certs["one"][0])
    name, (role, pw, _) = next(iter(tls_server.users.items()))
    r = requests.post(tls_server.base + "/api/v1/login", json={"username": name, "password": pw},
                      verify=ca, timeout=10)
    assert r.status_code == 200, r.text
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 2 and all(c.endswith("; Secure") for c in cookies), cookies
    # the session works over the same https
    body = dict(r.json(), _session=r.cookies["crmblob_session"])
    rr = requests.get(tls_server.base + "/api/v1/Person/1/ImageInfo", verify=ca, timeout=10,
                      headers=session_headers(body))
    assert rr.status_code in (200, 404), rr.text


def test_requests_over_tls(tls_server):
    """An upload and its download through TLS (a body read from a file
    descriptor goes through GnuTLS, not sendfile)."""
    c = tls_server.client("admin")
    c.s.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, overrides verify
    c.s.verify = str(tls_server.certs["one"][0])
    pid = c.create("Person")
    png = make_png(300, 200)
    c.put_image("Person", pid, png, ctype="image/png")
    r = c.get_image("Person", pid)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


# ---- bad files at start ----

def refused(tmp_path, name, args):
    s = TlsServer(tmp_path / name, serve_args=args)
    rc = s.try_start(timeout=START_TIMEOUT)
    lines = [l for l in s.refusal.splitlines() if l.strip()]
    return s, rc, lines


def assert_one_line(s, rc, lines, option, path, why, code=1):
    assert rc == code, s.refusal
    assert len(lines) == 1, s.refusal
    assert option in lines[0] and str(path) in lines[0] and why in lines[0], lines[0]
    assert not os.path.exists(s.db), "a database was created"


def test_missing_cert(tmp_path, certs):
    _, key = make_cert(certs, "k")
    missing = certs / "nope.crt"
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", missing, "--tls-key", key]),
                    "--tls-cert", missing, "No such file")


def test_missing_key(tmp_path, certs):
    cert, _ = make_cert(certs, "k")
    missing = certs / "nope.key"
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", cert, "--tls-key", missing]),
                    "--tls-key", missing, "No such file")


def test_unreadable_key(tmp_path):
    # root reads any file: the server then runs as nobody (the TLS check
    # comes before anything else, so it needs nothing more), its files in
    # a directory nobody can enter (pytest's are the owner's only)
    as_nobody = os.geteuid() == 0
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    with tempfile.TemporaryDirectory(prefix="crmblob-tls-") as d:
        d = Path(d)
        d.chmod(0o755)
        cert, key = make_cert(d, "k")
        cert.chmod(0o644)
        key.chmod(0)
        s = TlsServer(tmp_path / "a", serve_args=["--tls-cert", cert, "--tls-key", key])
        s.port = free_port()  # serve binds its port before it reads the TLS files
        argv = [str(a) for a in s.serve_argv()]
        if as_nobody:
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT)
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1, (p.returncode, lines)
    assert "--tls-key" in lines[0] and str(key) in lines[0] and "Permission denied" in lines[0]


def test_cert_not_pem(tmp_path, certs):
    _, key = make_cert(certs, "k")
    bad = certs / "bad.crt"
    bad.write_text("this is not a certificate\n")
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", bad, "--tls-key", key]),
                    "--tls-cert", bad, "not a PEM certificate")


def test_cert_not_a_regular_file(tmp_path, certs):
    _, key = make_cert(certs, "k")
    fifo = certs / "fifo.crt"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", fifo, "--tls-key", key]),
                    "--tls-cert", fifo, "not a regular file")


def test_key_not_pem(tmp_path, certs):
    cert, _ = make_cert(certs, "k")
    # a certificate where the key should be: PEM, but not a key
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", cert, "--tls-key", cert]),
                    "--tls-key", cert, "not a PEM private key")


def test_key_not_the_certificates(tmp_path, certs):
    cert, _ = make_cert(certs, "k")
    _, other_key = make_cert(certs, "other")
    assert_one_line(*refused(tmp_path, "a", ["--tls-cert", cert, "--tls-key", other_key]),
                    "--tls-key", other_key, "not the private key of the certificate")


def test_one_option_without_the_other(tmp_path, certs):
    cert, key = make_cert(certs, "k")
    s, rc, lines = refused(tmp_path, "a", ["--tls-cert", cert])
    assert rc == 2 and len(lines) == 1 and "--tls-cert needs --tls-key" in lines[0], s.refusal
    s, rc, lines = refused(tmp_path, "b", ["--tls-key", key])
    assert rc == 2 and len(lines) == 1 and "--tls-key needs --tls-cert" in lines[0], s.refusal


# ---- reload on SIGHUP ----

def test_reload_keeps_connections_and_serves_the_new_certificate(tls_server, certs):
    port = tls_server.port
    old = der_of(tls_server.certs["one"][0])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    kept = client_ctx().wrap_socket(raw)
    try:
        assert get_on(kept) == 200
        assert kept.getpeercert(binary_form=True) == old
        two = make_cert(certs, "two")
        shutil.copy(two[0], tls_server.certs["live"][0])
        shutil.copy(two[1], tls_server.certs["live"][1])
        log = hup_and_wait(tls_server)
        assert "reload: TLS certificate reloaded: CN=two" in log, log
        # the connection opened before the reload goes on
        assert get_on(kept) == 200
        assert get_on(kept) == 200
        # a new handshake gets the new certificate, and works
        _, der = handshake(port, client_ctx())
        assert der == der_of(two[0])
        r = requests.get(tls_server.base + "/health", verify=str(two[0]), timeout=10)
        assert r.status_code == 200
    finally:
        kept.close()
    # the same files again: nothing changes
    log = hup_and_wait(tls_server)
    assert "reload: TLS certificate unchanged: CN=two" in log, log


@pytest.mark.parametrize("bad", ["not_pem", "key_mismatch", "missing"])
def test_bad_reload_keeps_the_old_certificate(tls_server, certs, bad):
    live_cert, live_key = tls_server.certs["live"]
    old = der_of(tls_server.certs["one"][0])
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    kept = client_ctx().wrap_socket(raw)
    try:
        assert get_on(kept) == 200
        if bad == "not_pem":
            live_cert.write_text("garbage\n")
            why, where = "not a PEM certificate", f"--tls-cert {live_cert}"
        elif bad == "key_mismatch":  # a new certificate, its key not (yet) in place
            shutil.copy(make_cert(certs, "three")[0], live_cert)
            why, where = "not the private key of the certificate", f"--tls-key {live_key}"
        else:
            live_key.unlink()
            why, where = "No such file", f"--tls-key {live_key}"
        log = hup_and_wait(tls_server)
        line = [l for l in log.splitlines() if "reload: TLS certificate" in l]
        assert len(line) == 1 and "not reloaded" in line[0], log
        assert where in line[0] and why in line[0], line[0]
        assert get_on(kept) == 200
        _, der = handshake(tls_server.port, client_ctx())
        assert der == old
    finally:
        kept.close()


def test_sighup_does_not_stop_a_plain_http_server(tmp_path):
    s = ArgServer(tmp_path / "plain")
    s.create_users()
    s.start()
    try:
        for _ in range(3):
            log = hup_and_wait(s)
            assert "reload: SIGHUP received" in log
        assert requests.get(s.base + "/health", timeout=10).status_code == 200
    finally:
        assert s.stop() == 0, s.log()[-2000:]
