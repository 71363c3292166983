"""--trusted-proxy (issue 17, defect 2): behind a reverse proxy every request
comes from the proxy's address, so the failure limiter locked everybody out
at once and the log named only the proxy.

From the peers --trusted-proxy names, and from those only, the client's
address comes from X-Forwarded-For (else Forwarded: for=) — the right-most
address that is not itself a trusted proxy — and its scheme from
X-Forwarded-Proto (else Forwarded: proto=). The address is what the failure
limiter counts and what the log shows (access lines' from=, diagnostics);
https gives the session cookies the Secure flag. From any other peer the
headers are ignored.
"""
import http.client
import json
import re
import ssl
import subprocess
import time

import pytest
import requests

from conftest import (HTTP_TIMEOUT, Bystander, Haproxy, basic, free_port, need_haproxy,
                      start_arg_server, stop_arg_server)

# a Bystander's latency is bounded: alone (conftest: serial)
pytestmark = pytest.mark.serial

TRUST_LOCAL = ["--trusted-proxy", "127.0.0.1/32"]
# an address's failure burst of ten (default 30), so that ten bad tokens
# put it past its rate
ADDR_LIMIT_10 = ["--auth-address-limit", "10"]
A, B = "203.0.113.10", "203.0.113.20"


def get(s, path, auth=None, **headers):
    if auth is not None:
        headers["Authorization"] = auth
    return requests.get(s.base + path, headers=headers, timeout=HTTP_TIMEOUT)


def access_from(s, marker):
    """The from= of the access line whose path ends with marker."""
    time.sleep(0.2)  # access lines go out in batches within 50 ms
    for line in reversed(s.log().splitlines()):
        if " access " in line and f"{marker} " in line:
            m = re.search(r" from=(\S+)$", line)
            return m.group(1) if m else None
    raise AssertionError(f"no access line for {marker}:\n{s.log()[-2000:]}")


def test_forwarded_address_in_the_log(tmp_path):
    s = start_arg_server(tmp_path / "srv", [*TRUST_LOCAL, "--trusted-proxy", "10.0.0.0/8,::1"])
    try:
        cases = [
            ({"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
            ({"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.1.1.1"}, "203.0.113.7"),
            ({"Forwarded": 'for="[2001:DB8::7]:4711";proto=https'}, "2001:db8::7"),
            ({"X-Forwarded-For": "garbage"}, "127.0.0.1"),  # malformed: the peer stands
            ({"X-Forwarded-For": "203.0.113.7, unknown"}, "127.0.0.1"),
            ({"Forwarded": "for=_hidden"}, "127.0.0.1"),
            ({}, "127.0.0.1"),
        ]
        for i, (headers, want) in enumerate(cases):
            get(s, f"/api/v1/Person/{9000 + i}/ImageInfo", basic("alice", "alice-pw-1"), **headers)
            assert access_from(s, f"/api/v1/Person/{9000 + i}/ImageInfo") == want, headers
        # a diagnostic naming the client names the forwarded one
        get(s, "/api/v1/Person/1/ImageInfo", **{"X-Forwarded-For": "192.0.2.99"})
        time.sleep(0.2)
        assert re.search(r" info refused GET /api/v1/Person/1/ImageInfo from 192\.0\.2\.99: ",
                         s.log()), s.log()[-2000:]
    finally:
        stop_arg_server(s)


def test_spoofed_headers_from_an_untrusted_peer_are_ignored(tmp_path):
    s = start_arg_server(tmp_path / "srv", ["--trusted-proxy", "10.0.0.0/8"])
    try:
        with Bystander(s) as by:
            get(s, "/api/v1/Person/9100/ImageInfo", basic("alice", "alice-pw-1"),
                **{"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.8"})
            assert access_from(s, "/api/v1/Person/9100/ImageInfo") == "127.0.0.1"
            r = requests.post(s.base + "/api/v1/login", json={"username": "alice",
                              "password": "alice-pw-1"},
                              headers={"X-Forwarded-Proto": "https"}, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200
            assert not any("secure" in c.lower() for c in set_cookies(r)), set_cookies(r)
        by.check(max_latency=2.0)
    finally:
        stop_arg_server(s)


def lock_out(s, addr, n=10):
    """n failed attempts (a bad access token: no password hash) from addr."""
    for _ in range(n):
        r = get(s, "/api/v1/Person/1/ImageInfo", "Bearer 8A:bad", **{"X-Forwarded-For": addr})
        assert r.status_code == 401, r.status_code


def test_throttle_is_per_forwarded_address(tmp_path):
    """Ten failures put an address past its rate (--auth-address-limit 10): with the proxy
    trusted, forwarded address A locked leaves B and the proxy's other
    clients alone; without it, the headers count for nothing and the proxy's
    address, everybody's, is locked."""
    s = start_arg_server(tmp_path / "trusted", [*TRUST_LOCAL, *ADDR_LIMIT_10])
    try:
        with Bystander(s) as by:
            lock_out(s, A)
            r = get(s, "/api/v1/Person/1/ImageInfo", "Bearer 8A:bad", **{"X-Forwarded-For": A})
            assert r.status_code == 429, r.status_code
            r = get(s, "/api/v1/Person/1/ImageInfo", "Bearer 8A:bad", **{"X-Forwarded-For": B})
            assert r.status_code == 401, r.status_code
            r = get(s, "/api/v1/Person/1/ImageInfo", basic("alice", "alice-pw-1"),
                    **{"X-Forwarded-For": B})
            assert r.status_code in (200, 404), r.status_code
        by.check(max_latency=2.0)
    finally:
        stop_arg_server(s)
    u = start_arg_server(tmp_path / "untrusted", ADDR_LIMIT_10)
    try:
        lock_out(u, A)
        r = get(u, "/api/v1/Person/1/ImageInfo", "Bearer 8A:bad", **{"X-Forwarded-For": B})
        assert r.status_code == 429, r.status_code  # B is 127.0.0.1 too
    finally:
        stop_arg_server(u)


def set_cookies(r):
    return [v for k, v in r.raw.headers.items() if k.lower() == "set-cookie"]


def login(s, **headers):
    r = requests.post(s.base + "/api/v1/login",
                      json={"username": "alice", "password": "alice-pw-1"},
                      headers=headers, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    cookies = set_cookies(r)
    assert len(cookies) == 2, cookies
    return cookies


def test_secure_cookies_when_the_proxy_says_https(tmp_path):
    s = start_arg_server(tmp_path / "srv", TRUST_LOCAL)
    try:
        for headers, secure in (({"X-Forwarded-Proto": "https"}, True),
                                ({"X-Forwarded-Proto": "http"}, False),
                                ({"Forwarded": "for=192.0.2.1;proto=https"}, True),
                                ({}, False)):
            cookies = login(s, **headers)
            assert all(c.endswith("; Secure") == secure for c in cookies), (headers, cookies)
            assert {c.split("=")[0] for c in cookies} == {"crmblob_session", "XSRF-TOKEN"}
    finally:
        stop_arg_server(s)


# --------------------------------------------------------------------------
# through a real haproxy (option forwardfor, TLS ended at the proxy)

PROXY_ADDR = "127.0.0.2"  # haproxy connects to crmblob from here: the one trusted peer


def haproxy_config(plain, tls, pem, backend):
    return f"""global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:{plain}
    bind 127.0.0.1:{tls} ssl crt {pem}
    option forwardfor
    http-request del-header Forwarded
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    default_backend crmblob
backend crmblob
    server s1 127.0.0.1:{backend} source {PROXY_ADDR}
"""


@pytest.fixture
def haproxy(tmp_path):
    """crmblob trusting only PROXY_ADDR, behind a haproxy on loopback:
    (server, plain port, TLS port)."""
    need_haproxy()
    s = start_arg_server(tmp_path / "srv", ["--trusted-proxy", PROXY_ADDR, *ADDR_LIMIT_10])
    pem = tmp_path / "proxy.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "c.pem")], check=True, capture_output=True)
    pem.write_bytes((tmp_path / "c.pem").read_bytes() + (tmp_path / "k.pem").read_bytes())
    cfg = tmp_path / "haproxy.cfg"

    def pick():
        plain, tls = free_port(), free_port()
        cfg.write_text(haproxy_config(plain, tls, pem, s.port))
        return {}, [plain, tls]

    proxy = None
    try:
        proxy = Haproxy(tmp_path / "haproxy", cfg, pick)
        yield (s, *proxy.ports)
    finally:
        if proxy is not None:
            proxy.stop()
        stop_arg_server(s)


def via(port, source, method, path, headers=None, body=None, tls=False):
    """One request to the proxy from the loopback address `source`:
    (status, [Set-Cookie values])."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT,
                                        source_address=(source, 0), context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT,
                                       source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    finally:
        c.close()


def test_through_haproxy(haproxy):
    s, plain, tls = haproxy
    good = {"Authorization": basic("alice", "alice-pw-1")}
    bad = {"Authorization": "Bearer 8A:bad"}
    with Bystander(s, base=f"http://127.0.0.1:{plain}") as by:
        # the client's address is the one haproxy saw, whatever the client claims
        st, _ = via(plain, "127.0.0.3", "GET", "/api/v1/Person/9300/ImageInfo",
                    {**good, "X-Forwarded-For": "6.6.6.6"})
        assert st == 404
        assert access_from(s, "/api/v1/Person/9300/ImageInfo") == "127.0.0.3"
        # ten failures put 127.0.0.3 past its rate, not 127.0.0.4 nor the bystander
        for _ in range(10):
            assert via(plain, "127.0.0.3", "GET", "/api/v1/Person/1/ImageInfo", bad)[0] == 401
        assert via(plain, "127.0.0.3", "GET", "/api/v1/Person/1/ImageInfo", bad)[0] == 429
        assert via(plain, "127.0.0.4", "GET", "/api/v1/Person/1/ImageInfo", bad)[0] == 401
        assert via(plain, "127.0.0.4", "GET", "/api/v1/Person/9301/ImageInfo", good)[0] == 404
        # TLS ends at haproxy: Secure cookies over https only
        login = json.dumps({"username": "bob", "password": "bob-pw-1"})
        ctype = {"Content-Type": "application/json"}
        st, cookies = via(tls, "127.0.0.5", "POST", "/api/v1/login", ctype, login, tls=True)
        assert st == 200 and len(cookies) == 2 and all(c.endswith("; Secure") for c in cookies)
        st, cookies = via(plain, "127.0.0.5", "POST", "/api/v1/login", ctype, login)
        assert st == 200 and len(cookies) == 2 and not any("Secure" in c for c in cookies)
    by.check(max_latency=2.0)
    # straight to crmblob, the same headers count for nothing
    st, cookies = via(s.port, "127.0.0.6", "POST", "/api/v1/login",
                      {"Content-Type": "application/json", "X-Forwarded-Proto": "https",
                       "X-Forwarded-For": "198.51.100.9"}, json.dumps({"username": "bob",
                                                                        "password": "bob-pw-1"}))
    assert st == 200 and not any("Secure" in c for c in cookies)
    assert access_from(s, "/api/v1/login") == "127.0.0.6"


def test_malformed_options_are_refused(tmp_path):
    from conftest import ArgServer
    for args in (["--trusted-proxy", "10.0.0.0/33"], ["--trusted-proxy", "proxy.example"],
                 ["--trusted-proxy", ""], ["--log-limit", "-1"], ["--log-limit", "x"]):
        s = ArgServer(tmp_path / "srv", serve_args=args)
        assert s.try_start() == 2, (args, s.refusal[-500:])
