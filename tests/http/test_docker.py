"""The Dockerfile: its HEALTHCHECK probe, and the image built and started.

The probe (bash alone: the image has no curl) is run here against a real
server, a port nobody listens on and a server answering 503: healthy only
for the first. The image itself is built and started when a Docker engine
answers (`docker info`); else that test is skipped, saying why. Started,
it must become healthy by its own HEALTHCHECK, answer /health from the
host, run as a user that is not root, keep its database in the /data
volume, and exit 0 on `docker stop`.
"""
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import HTTP_TIMEOUT, REPO, free_port

DOCKERFILE = REPO / "Dockerfile"


def instructions():
    """(instruction, arguments) of the Dockerfile, continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def probe_argv(port):
    (args,) = [a for w, a in instructions() if w == "HEALTHCHECK"]
    cmd = json.loads(args[args.index("CMD ") + 4:])
    assert cmd[0] == "bash", cmd
    assert "/dev/tcp/127.0.0.1/8080" in cmd[-1], cmd
    return [*cmd[:-1], cmd[-1].replace("/dev/tcp/127.0.0.1/8080", f"/dev/tcp/127.0.0.1/{port}")]


def probe(port):
    return subprocess.run(probe_argv(port), capture_output=True, timeout=10).returncode


def test_probe_is_healthy_on_a_running_server(srv):
    assert probe(srv.port) == 0


def test_probe_fails_with_nobody_listening():
    assert probe(free_port()) != 0


def test_probe_fails_on_an_answer_other_than_200():
    class Unready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Unready)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        assert probe(httpd.server_address[1]) != 0
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_image_is_small_and_not_root():
    """What the run stage is made of, read from the Dockerfile."""
    ins = instructions()
    froms = [a for w, a in ins if w == "FROM"]
    assert froms == ["debian:12-slim AS build", "debian:12-slim"], froms
    run_stage = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][1]:]
    runs = " ".join(a for w, a in run_stage if w == "RUN")
    assert "deps.sh runtime" in runs and "deps.sh build" not in runs
    (user,) = [a for w, a in run_stage if w == "USER"]
    assert user not in ("root", "0")
    assert [a for w, a in run_stage if w == "VOLUME"] == ["/data"]
    assert [a for w, a in run_stage if w == "EXPOSE"] == ["8080"]


def docker():
    exe = shutil.which("docker")
    if exe is None:
        pytest.skip("no docker command")
    p = subprocess.run([exe, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        reason = (p.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"no working Docker engine: {reason}")
    return exe


def test_image_builds_and_serves():
    exe = docker()
    tag = f"crmblob-test:{uuid.uuid4().hex[:12]}"
    name = tag.replace(":", "-")
    vol = f"{name}-data"
    b = subprocess.run([exe, "build", "-t", tag, str(REPO)], capture_output=True, text=True,
                       timeout=1800)
    assert b.returncode == 0, b.stdout[-3000:] + b.stderr[-3000:]
    try:
        subprocess.run([exe, "run", "-d", "--name", name, "-p", "127.0.0.1::8080",
                        "-v", f"{vol}:/data", "--health-interval", "1s",
                        "--health-start-period", "5s",
                        "-e", "CRMBLOB_ADMIN_PASSWORD=docker-pw-1", tag],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            st = subprocess.run([exe, "inspect", "-f", "{{.State.Health.Status}}", name],
                                capture_output=True, text=True).stdout.strip()
            if st == "healthy":
                break
            assert st in ("starting", "") and time.monotonic() < deadline, \
                st + subprocess.run([exe, "logs", name], capture_output=True, text=True).stderr
            time.sleep(0.5)
        port = subprocess.run([exe, "port", name, "8080/tcp"], capture_output=True, text=True,
                              check=True).stdout.split(":")[-1].strip()
        r = requests.get(f"http://127.0.0.1:{port}/health", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200
        r = requests.post(f"http://127.0.0.1:{port}/api/v1/Person", json={"Firstname": "D"},
                          auth=("admin", "docker-pw-1"), timeout=HTTP_TIMEOUT)
        assert r.status_code in (200, 201), r.text
        uid = subprocess.run([exe, "exec", name, "id", "-u"], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert uid != "0"
        ls = subprocess.run([exe, "exec", name, "ls", "/data"], capture_output=True, text=True,
                            check=True).stdout.split()
        assert "crmblob.db" in ls, ls
        subprocess.run([exe, "stop", "-t", "40", name], check=True, capture_output=True,
                       timeout=60)
        code = subprocess.run([exe, "inspect", "-f", "{{.State.ExitCode}}", name],
                              capture_output=True, text=True).stdout.strip()
        assert code == "0", code
    finally:
        subprocess.run([exe, "rm", "-f", name], capture_output=True)
        subprocess.run([exe, "volume", "rm", "-f", vol], capture_output=True)
        subprocess.run([exe, "rmi", "-f", tag], capture_output=True)
