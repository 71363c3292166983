"""Hostile sign-ins (issue 17, defects 2 and 7), each mounted while another
user's ordinary work (`Bystander`) is served:

- guessing from one address (bad Bearer tokens, wrong passwords) is
  throttled by what the attacker controls -- the account tried from that
  address, and the address's rate of failures -- and never refuses a valid
  ticket, token or remembered password sent from the same address (behind a
  reverse proxy that is every user);
- password checks run on threads of their own with a bounded queue, so 32
  clients guessing at once cannot slow another user's uploads; past the
  queue a guess is answered 503 with Retry-After, hashing nothing.
"""
import base64
import http.client
import selectors
import socket
import statistics
import threading
import time

import requests

from conftest import HTTP_TIMEOUT, Bystander, assert_error, basic

GUESSES = 60  # bad Bearer tokens, besides the wrong passwords


def get_info(s, pid, authorization):
    return requests.get(f"{s.base}/api/v1/Person/{pid}/ImageInfo",
                        headers={"Authorization": authorization}, timeout=HTTP_TIMEOUT)


def test_guessing_never_refuses_valid_credentials(make_arg_server):
    """Defaults: 60 bad tokens and 6 wrong passwords for admin from 127.0.0.1.
    Before: the tenth failure locked 127.0.0.1 out for 60 s, every valid
    ticket, token and password included. Now the guesses get 401, then 429
    with Retry-After; admin's password is locked for this address only; a
    ticket, a token and a remembered password of other users from the same
    address are answered 200 throughout, and so is the bystander."""
    s = make_arg_server([])
    pid = s.client("admin").create("Person")
    ticket = "SOTicket " + s.ticket("carol")
    token = "Bearer " + s.token("victor")
    alice = basic("alice", s.users["alice"][1])
    for good in (ticket, token, alice):  # alice's password verified once: remembered
        assert get_info(s, pid, good).status_code == 200
    valid = []   # (credential, status) of the valid clients during the attack
    guesses = []  # (kind, response) of the attacker's
    with Bystander(s, "bob") as by:
        for i in range(6):
            guesses.append(("password", get_info(s, pid, basic("admin", f"guess-{i}"))))
            for good in (ticket, token, alice):
                valid.append((good[:12], get_info(s, pid, good).status_code))
        for i in range(GUESSES):
            guesses.append(("token", get_info(s, pid, f"Bearer 8A:guess{i}")))
            for good in (ticket, token, alice):
                valid.append((good[:12], get_info(s, pid, good).status_code))
    by.check(max_latency=2.0)
    bad = [v for v in valid if v[1] != 200]
    assert not bad, f"{len(bad)} of {len(valid)} valid requests refused: {bad[:5]}"
    statuses = [r.status_code for _, r in guesses]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[:5] == [401] * 5, statuses  # the first guesses are plain refusals
    throttled = [r for _, r in guesses if r.status_code == 429]
    assert len(throttled) >= GUESSES - 30, f"only {len(throttled)} guesses throttled"
    for r in throttled:
        assert_error(r, 429, "SoUnauthorizedException")
        assert int(r.headers["Retry-After"]) >= 1, r.headers
    # the account guessed at is locked from this address, its right password too
    r = get_info(s, pid, basic("admin", s.users["admin"][1]))
    assert_error(r, 429)
    assert "this user" in r.json()["ErrorMessage"], r.json()
    # ... and nothing else is
    assert get_info(s, pid, alice).status_code == 200
    assert get_info(s, pid, "Bearer " + s.token("admin")).status_code == 200


def get_info_from(s, pid, authorization, source):
    """get_info from another loopback address (the kernel routes 127/8)."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=HTTP_TIMEOUT,
                                   source_address=(source, 0))
    try:
        c.request("GET", f"/api/v1/Person/{pid}/ImageInfo",
                  headers={"Authorization": authorization})
        return c.getresponse().status
    finally:
        c.close()


def test_limits_are_per_address(make_arg_server):
    """Wrong passwords for alice, and a burst of bad tokens, from 127.0.0.1
    lock nothing for 127.0.0.2."""
    s = make_arg_server(["--auth-account-limit", "2", "--auth-address-limit", "3"])
    pid = s.client("admin").create("Person")
    for i in range(2):
        assert_error(get_info(s, pid, basic("alice", f"nope{i}")), 401)
    assert_error(get_info(s, pid, basic("alice", s.users["alice"][1])), 429)
    assert_error(get_info(s, pid, "Bearer 8A:bad"), 401)
    assert_error(get_info(s, pid, "Bearer 8A:bad"), 429)
    assert get_info_from(s, pid, basic("alice", s.users["alice"][1]), "127.0.0.2") == 200
    assert get_info_from(s, pid, "Bearer 8A:bad", "127.0.0.2") == 401


def test_failure_limits_can_be_turned_off(make_arg_server):
    s = make_arg_server(["--auth-address-limit", "0", "--auth-account-limit", "0"])
    pid = s.client("admin").create("Person")
    for i in range(GUESSES):
        assert_error(get_info(s, pid, f"Bearer 8A:guess{i}"), 401)
    for i in range(8):
        assert_error(get_info(s, pid, basic("admin", f"guess-{i}")), 401)
    assert get_info(s, pid, basic("admin", s.users["admin"][1])).status_code == 200


# --------------------------------------------------------------------------
# defect 7: password checks cannot starve uploads

ATTACKERS = 32
ATTACK_S = 8.0
# the address limit off, so that the password threads are what is measured
NO_ADDRESS_LIMIT = ["--auth-address-limit", "0"]


def _guesser(base, n, stop, out):
    """Wrong passwords for ever-new user names (no account lock can cut them
    short), as Basic values and as logins, on a connection of its own."""
    s = requests.Session()
    i = 0
    while not stop.is_set():
        name = f"guess{n}x{i}"
        try:
            if i % 2:
                r = s.post(base + "/api/v1/login", json={"username": name, "password": "pw"},
                           timeout=HTTP_TIMEOUT)
            else:
                auth = base64.b64encode(f"{name}:pw".encode()).decode()
                r = s.get(base + "/api/v1/Person/1/ImageInfo",
                          headers={"Authorization": "Basic " + auth}, timeout=HTTP_TIMEOUT)
            out.append((r.status_code, r.headers.get("Retry-After"),
                        r.headers.get("Content-Type", "")))
        except requests.RequestException as e:
            out.append((repr(e), None, ""))
        i += 1
    s.close()


def run_guessers(base, seconds):
    stop = threading.Event()
    out = []
    ts = [threading.Thread(target=_guesser, args=(base, n, stop, out), daemon=True)
          for n in range(ATTACKERS)]
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join(timeout=HTTP_TIMEOUT + 5)
    return out


FLOOD_CONNS = 100  # more than the password lane's threads and queue (2 + 64)


def flood(port, seconds, conns=FLOOD_CONNS, source="127.0.0.1"):
    """`conns` keep-alive connections, each sending wrong Basic passwords for
    ever-new user names one after another for `seconds`, driven by one
    selector (threads would not keep 100 requests in flight): the answers
    as (status, Retry-After, Content-Type)."""
    sel, out, n = selectors.DefaultSelector(), [], [0]

    def send(sock):
        n[0] += 1
        auth = base64.b64encode(f"flood{n[0]}:pw".encode()).decode()
        sock.sendall((f"GET /api/v1/Person/1/ImageInfo HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Basic {auth}\r\n\r\n").encode())

    for _ in range(conns):
        sock = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT,
                                        source_address=(source, 0))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, bytearray())
        send(sock)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and sel.get_map():
        for key, _ in sel.select(timeout=0.5):
            buf = key.data
            chunk = key.fileobj.recv(65536)
            if not chunk:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                hdr = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                       for l in lines[1:] if ":" in l}
                size = int(hdr.get("content-length", "0"))
                if len(rest) < size:
                    break
                del buf[:len(head) + 4 + size]
                out.append((int(lines[0].split()[1]), hdr.get("retry-after"),
                            hdr.get("content-type", "")))
                if time.monotonic() < deadline:
                    send(key.fileobj)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return out


def test_password_guessing_does_not_slow_uploads(make_arg_server):
    """32 clients guessing passwords at once while bob uploads. Before, the
    checks held the four offload threads that uploads need: bob's upload
    median went from 1 ms to 513-641 ms (worst 0.7-1.2 s). Now they have two
    threads and a queue of 64 of their own: bob's uploads keep a median
    under 100 ms (13-18 ms measured, most of it the attack's own 32 client
    threads sharing this process and the CPUs) and no request over 1.5 s,
    and every guess is answered 401 (the queue, 64, is not reached by 32:
    test_guess_flood_past_the_queue floods it)."""
    s = make_arg_server(NO_ADDRESS_LIMIT)
    s.client("admin").create("Person")
    with Bystander(s, "bob", pause=0.01) as by:
        time.sleep(1.0)
        quiet = len(by.results)
        answers = run_guessers(s.base, ATTACK_S)
    during = by.results[quiet:]
    puts = [r[2] for r in during if r[0] == "PUT Image"]
    assert len(puts) >= 10, f"only {len(puts)} uploads during the attack"
    median, worst = statistics.median(puts), max(r[2] for r in during)
    print(f"\nbystander during the attack: {len(puts)} uploads, median "
          f"{median * 1000:.0f} ms, worst request {worst * 1000:.0f} ms; "
          f"{len(answers)} guesses answered")
    by.check(max_latency=1.5)
    assert median < 0.1, f"upload median {median * 1000:.0f} ms during the attack"
    statuses = {a[0] for a in answers}
    assert statuses <= {401, 503}, statuses


def test_guess_flood_past_the_queue(make_arg_server):
    """100 connections guessing at once: the checks past the lane's queue are
    answered 503 with Retry-After at once, hashing nothing, while bob's
    uploads and reads go on."""
    s = make_arg_server(NO_ADDRESS_LIMIT)
    s.client("admin").create("Person")
    with Bystander(s, "bob") as by:
        answers = flood(s.port, 4.0)
    statuses = {a[0] for a in answers}
    assert statuses <= {401, 503}, statuses
    busy = [a for a in answers if a[0] == 503]
    assert busy, "the queue of password checks never filled"
    for _, retry, ctype in busy:
        assert retry == "1" and ctype.startswith("application/json"), (retry, ctype)
    by.check(max_latency=1.5)


def test_one_address_cannot_keep_others_from_signing_in(make_arg_server):
    """100 connections from 127.0.0.2 guessing passwords for random names
    (never locked, never remembered): once the lane is half full that
    address may hold only a few of its places, so correct passwords never
    checked before, sent from 127.0.0.1 meanwhile, are all accepted."""
    s = make_arg_server(NO_ADDRESS_LIMIT)
    out = []
    flooding = threading.Thread(target=lambda: out.extend(flood(s.port, 5.0, source="127.0.0.2")),
                                daemon=True)
    flooding.start()
    time.sleep(1.0)
    try:
        answers = []
        for name in ("alice", "bob", "carol", "dave", "victor", "admin"):
            t0 = time.monotonic()
            r = requests.post(s.base + "/api/v1/login",
                              json={"username": name, "password": s.users[name][1]},
                              timeout=HTTP_TIMEOUT)
            answers.append((name, r.status_code, time.monotonic() - t0))
    finally:
        flooding.join(timeout=HTTP_TIMEOUT + 5)
    print(f"\nsign-ins during the flood: {answers}; flood answers "
          f"{sorted(set(a[0] for a in out))}, {sum(a[0] == 503 for a in out)} x 503")
    assert all(a[1] == 200 for a in answers), answers
    assert max(a[2] for a in answers) < 5.0, answers
    assert any(a[0] == 503 for a in out), "the flood was never refused a place"


def test_busy_answer_is_the_error_carrier(make_arg_server):
    """A guess refused for the queue is the JSON error carrier, localised."""
    s = make_arg_server(NO_ADDRESS_LIMIT)
    r = None
    flooding = threading.Thread(target=flood, args=(s.port, 6.0), daemon=True)
    flooding.start()
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            r = requests.post(s.base + "/api/v1/login", json={"username": "x", "password": "y"},
                              headers={"Accept-Language": "de"}, timeout=HTTP_TIMEOUT)
            if r.status_code == 503:
                break
    finally:
        flooding.join(timeout=HTTP_TIMEOUT + 5)
    assert r is not None and r.status_code == 503, r.status_code if r is not None else None
    assert_error(r, 503, "SoInternalException")
    assert r.headers["Retry-After"] == "1"
    assert "Passw" in r.json()["ErrorMessage"], r.json()
    # once the guessing stops and the checks queued meanwhile are done,
    # sign-in works (a client honouring Retry-After gets in)
    deadline = time.monotonic() + 15
    while True:
        r = requests.post(s.base + "/api/v1/login",
                          json={"username": "alice", "password": s.users["alice"][1]},
                          timeout=HTTP_TIMEOUT)
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(int(r.headers["Retry-After"]))
    assert r.status_code == 200, r.text
