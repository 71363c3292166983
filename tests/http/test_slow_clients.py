"""Slow clients and many connections (SPEC §10), each while a bystander
(another user's GET ImageInfo and small PUT Image, from 127.0.0.1) is
served:

- a request head trickled one byte a second is closed at --head-timeout
  (a 408 when the request line had come, else just closed), where
  libmicrohttpd's idle timeout, reset by every byte, never fired;
- a body trickled below --min-body-rate is cut at the end of its window
  (408), while an upload that is slow but above the rate goes through;
- slow connections from a few addresses (bound to 127.0.0.2...) are held
  to --max-conns-per-ip each and cannot fill --max-conns.
"""
import json
import socket
import threading
import time

import pytest

from conftest import NO_LIMITER, Bystander, basic, png_of_size, start_arg_server, stop_arg_server

HEAD_TIMEOUT = 2
SLACK = 1.5


@pytest.fixture
def slow_srv(tmp_path):
    made = []

    def make(*args):
        s = start_arg_server(tmp_path / f"slow{len(made)}", [*NO_LIMITER, *args])
        made.append(s)
        return s

    yield make
    for s in made:
        stop_arg_server(s)


def connect(srv, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    return s


class Trickle:
    """Sends `first` at once, then `rest` one byte a second, on its own
    thread; records when the server closed the connection and what it
    sent (a 408 is allowed)."""

    def __init__(self, sock, first, rest, pause=1.0):
        self.sock, self.first, self.rest, self.pause = sock, first, rest, pause
        self.t0 = None
        self.closed_after = None
        self.got = b""
        self.sent = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._r = threading.Thread(target=self._read, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self.sock.sendall(self.first)
        self._r.start()
        self._t.start()
        return self

    def _run(self):
        for b in self.rest:
            if self._stop.wait(self.pause):
                return
            try:
                self.sock.send(bytes([b]))
                self.sent += 1
            except OSError:
                return

    def _read(self):
        self.sock.settimeout(None)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.got += chunk
        except OSError:
            pass
        self.closed_after = time.monotonic() - self.t0
        self._stop.set()

    def wait(self, limit):
        self._r.join(max(0.0, limit - (time.monotonic() - self.t0)))

    def stop(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass


def assert_408_or_nothing(got, want_408):
    if not got:
        assert not want_408, "closed without the 408"
        return
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), f"a slow client got {got[:300]!r}"
    carrier = json.loads(body)
    assert carrier["Error"] is True and carrier["ErrorSource"] == "crmblob", carrier
    assert b"connection: close" in head.lower(), head


def test_head_trickled_one_byte_a_second_is_closed_at_the_deadline(slow_srv):
    srv = slow_srv("--head-timeout", str(HEAD_TIMEOUT), "--timeout", "30")
    auth = basic("alice", srv.users["alice"][1])
    with Bystander(srv, "bob") as by:
        lines = [Trickle(connect(srv), b"GET /api/v1/TimeZone/base HTTP/1.1\r\nHost: x\r\n",
                         b"X-Slow: " + b"a" * 60).start() for _ in range(10)]
        starts = [Trickle(connect(srv), b"", b"GET /api/v1/TimeZone/base HTTP/1.1\r\n").start()
                  for _ in range(5)]
        idle = [Trickle(connect(srv), b"", b"").start() for _ in range(5)]
        # a head that is slow but complete within the deadline is served
        ok = connect(srv)
        for part in (b"GET /api/v1/TimeZone/base HTTP/1.1\r\n", b"Host: x\r\n",
                     f"Authorization: {auth}\r\n\r\n".encode()):
            ok.sendall(part)
            time.sleep(0.5)
        ok_answer = ok.recv(65536)
        ok.close()
        for t in lines + starts + idle:
            t.wait(HEAD_TIMEOUT + SLACK)
    try:
        assert ok_answer.startswith(b"HTTP/1.1 200 "), ok_answer[:200]
        for t in lines + starts + idle:
            assert t.closed_after is not None, \
                f"a head trickled for {HEAD_TIMEOUT + SLACK}s ({t.sent} bytes) is still open"
            assert t.closed_after >= HEAD_TIMEOUT - 0.3, f"closed early: {t.closed_after:.2f}s"
        for t in lines:  # the request line had come: the server can say why
            assert_408_or_nothing(t.got, want_408=True)
        for t in starts + idle:  # nothing to answer yet (a partial request line)
            assert_408_or_nothing(t.got, want_408=False)
    finally:
        for t in lines + starts + idle:
            t.stop()
    by.check(max_latency=2.0)
    assert srv.alive()


def put_image_head(srv, user, eid, length):
    return (f"PUT /api/v1/Contact/{eid}/Image HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {basic(user, srv.users[user][1])}\r\n"
            f"Content-Type: image/png\r\nContent-Length: {length}\r\n\r\n").encode()


def paced_upload(srv, eid, body, rate, result):
    """Sends an upload at `rate` bytes/s; result gets (status, seconds)."""
    s = connect(srv)
    s.settimeout(30)
    t0 = time.monotonic()
    try:
        s.sendall(put_image_head(srv, "alice", eid, len(body)))
        step = rate // 10
        for i in range(0, len(body), step):
            s.sendall(body[i:i + step])
            time.sleep(0.1)
        answer = s.recv(65536)
        result.append((int(answer.split()[1]) if answer else None, time.monotonic() - t0))
    except OSError as e:
        result.append((repr(e), time.monotonic() - t0))
    finally:
        s.close()


def test_body_below_the_minimum_rate_is_cut(slow_srv):
    """Default --min-body-rate (1024 bytes/s over each 10 s): a body sent
    at a byte a second is cut when its first window ends; one at 3 KiB/s
    for 12 s (a phone on a poor link) is not."""
    srv = slow_srv()
    adm = srv.client("admin")
    slow_eid = adm.create("Contact", Name="Slow")
    fine_eid = adm.create("Contact", Name="Fine")
    png = png_of_size(36 * 1024)
    with Bystander(srv, "bob") as by:
        fine = []
        ft = threading.Thread(target=paced_upload, args=(srv, fine_eid, png, 3 * 1024, fine))
        ft.start()
        # its first 100 bytes at once, then a byte a second
        cut = Trickle(connect(srv), put_image_head(srv, "alice", slow_eid, len(png)) + png[:100],
                      png[100:200]).start()
        cut.wait(10 + SLACK + 0.5)
        ft.join(40)
    try:
        assert cut.closed_after is not None, "a body at ~1 byte/s is still open after its window"
        assert 10 - 0.3 <= cut.closed_after <= 10 + SLACK + 0.5, cut.closed_after
        assert_408_or_nothing(cut.got, want_408=True)
        assert fine and fine[0][0] == 200, f"an upload at 3 KiB/s was refused: {fine}"
        assert fine[0][1] > 10, f"the paced upload was not slow: {fine}"
    finally:
        cut.stop()
    by.check(max_latency=2.0)
    assert adm.get(f"/api/v1/Contact/{slow_eid}/ImageInfo").json()["BlobId"] == 0
    assert " 408 " in srv.log(), "the cut body is not in the access log as 408"


ATTACKERS = [f"127.0.0.{i}" for i in range(2, 8)]  # six addresses
PER_IP = 25
TOTAL = 200


def test_slow_connections_from_a_few_addresses_cannot_fill_the_server(slow_srv):
    """Six addresses open 60 slow connections each (360, above --max-conns
    200): each holds at most --max-conns-per-ip 25 (150 in all), so the
    bystander on 127.0.0.1 and new clients keep being served."""
    srv = slow_srv("--max-conns", str(TOTAL), "--max-conns-per-ip", str(PER_IP))
    auth = basic("alice", srv.users["alice"][1])
    socks = {a: [] for a in ATTACKERS}
    with Bystander(srv, "bob") as by:
        for _ in range(60):
            for a in ATTACKERS:
                try:
                    s = connect(srv, a)
                    s.sendall(b"GET /api/v1/TimeZone/base HTTP/1.1\r\nHost: x\r\nX-Slow: a")
                    socks[a].append(s)
                except OSError:
                    pass
        time.sleep(1.0)
        held = {a: 0 for a in ATTACKERS}
        for a, ss in socks.items():
            for s in ss:
                s.settimeout(0.01)
                try:
                    if s.recv(1) == b"":
                        continue  # refused: closed at once
                except socket.timeout:
                    held[a] += 1
                except OSError:
                    continue
        # a new client on another address is served at once, repeatedly
        for _ in range(10):
            c = connect(srv, "127.0.0.1")
            c.sendall(f"GET /api/v1/TimeZone/base HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: {auth}\r\nConnection: close\r\n\r\n".encode())
            assert c.recv(65536).startswith(b"HTTP/1.1 200 ")
            c.close()
        # the attackers' own address is at its cap
        extra = connect(srv, ATTACKERS[0])
        extra.sendall(b"GET /api/v1/TimeZone/base HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            refused = extra.recv(65536) == b""
        except OSError:
            refused = True
        extra.close()
        time.sleep(0.5)
    for ss in socks.values():
        for s in ss:
            s.close()
    assert all(n <= PER_IP for n in held.values()), held
    assert sum(held.values()) == PER_IP * len(ATTACKERS), held
    assert refused, "a connection over the per-address cap was served"
    by.check(max_latency=2.0)


def _has_trusted_proxy_option():
    import subprocess
    from conftest import BIN
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True).stdout
    return "--trusted-proxy" in out


@pytest.mark.skipif(not _has_trusted_proxy_option(),
                    reason="--trusted-proxy comes with the trusted-proxy change (issue 17, defect 2)")
def test_trusted_proxy_is_not_capped(slow_srv):
    """A reverse proxy carries everybody: its connections are not counted
    against --max-conns-per-ip; another address still is."""
    proxy, other = "127.0.0.9", "127.0.0.10"
    srv = slow_srv("--max-conns-per-ip", "5", "--trusted-proxy", proxy)
    held = {}
    with Bystander(srv, "bob") as by:
        for a in (proxy, other):
            socks = []
            for _ in range(30):
                try:
                    s = connect(srv, a)
                    s.sendall(b"GET /api/v1/TimeZone/base HTTP/1.1\r\nHost: x\r\nX-Slow: a")
                    socks.append(s)
                except OSError:
                    pass
            time.sleep(0.5)
            held[a] = 0
            for s in socks:
                s.settimeout(0.01)
                try:
                    s.recv(1)  # end of file, or an answer: not held
                except socket.timeout:
                    held[a] += 1
                except OSError:
                    pass
                s.close()
    assert held[proxy] == 30, held
    assert held[other] == 5, held
    by.check(max_latency=2.0)
