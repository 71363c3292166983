"""A short run of the benchmark (bench/run.sh, issue #7), so that it cannot break silently.

`SMOKE=1 bash bench/run.sh` runs every row of the benchmark for one second
with 4 connections (and 8 uploads of 1 MB instead of 200 of 10 MB) against
the binary under test ($CRMBLOB_BIN), nginx and json-server, writes its
report and chart into a temporary directory and exits non-zero when something
failed to run: a server that does not start, any non-2xx answer or socket
error in a wrk run, a failed upload. Its figures mean nothing (1 s, possibly
an ASan build); a missed target is not a failure here. Issue 18's rows run
too: two crmblob on one SQLite file behind haproxy (all four rows) and one
PostgreSQL row (PUT ImageInfo, a throwaway cluster), which is reported as
"not run: <reason>" when PostgreSQL is not installed or crmblob refuses it.
Issue 19's TLS row runs too: GET Image over TLS against nginx over TLS.

Needs nginx, wrk, curl, vips, gnuplot, taskset and /usr/bin/time (bash
scripts/bench-deps.sh); without them the module is skipped, unless
CRMBLOB_REQUIRE_BENCH is set (non-empty): then it fails, and the json-server
row must have run too.
"""
import os
import shutil
import subprocess

import pytest

from conftest import BIN, REPO

SCRIPT = REPO / "bench" / "run.sh"
RUN_TIMEOUT = 300
TOOLS = ["nginx", "wrk", "curl", "vips", "gnuplot", "taskset", "python3"]
ROWS = [
    "GET Image 25 KB, Basic",
    "GET ImageInfo",
    "PUT ImageInfo, durable",
    "PUT 200 KB JPEG, durable",
    "PUT ImageInfo vs json-server",
    "idle RSS",
    "peak RSS, 8 uploads of 1 MB",
    "auth cost",
    "durable / default PUT ImageInfo",
]

REQUIRED = bool(os.environ.get("CRMBLOB_REQUIRE_BENCH"))
MISSING = [t for t in TOOLS if shutil.which(t) is None]
if not os.access("/usr/bin/time", os.X_OK):
    MISSING.append("/usr/bin/time")
# it measures the server: alone, after the parallel run (conftest: serial)
pytestmark = [pytest.mark.serial]
if MISSING and not REQUIRED:
    pytestmark.append(pytest.mark.skip(
        reason=f"benchmark tools missing: {', '.join(MISSING)} (bash scripts/bench-deps.sh)"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Runs the smoke benchmark once: (return code, stdout, stderr, output dir)."""
    if MISSING:
        pytest.fail(f"CRMBLOB_REQUIRE_BENCH is set but benchmark tools are missing: {', '.join(MISSING)} "
                    "(bash scripts/bench-deps.sh)", pytrace=False)
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update({
        "SMOKE": "1",
        "CRMBLOB_BIN": str(BIN),
        "BENCH_OUT": str(out / "BENCHMARKS.md"),
        "BENCH_TMPDIR": str(out),
    })
    env.pop("KEEP", None)
    try:
        p = subprocess.run(["bash", str(SCRIPT)], cwd=str(REPO), env=env, capture_output=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        so = (e.stdout or b"").decode("utf-8", "replace")
        se = (e.stderr or b"").decode("utf-8", "replace")
        pytest.fail(f"bench/run.sh did not finish within {RUN_TIMEOUT}s\nstdout:\n{so[-3000:]}\n"
                    f"stderr:\n{se[-3000:]}", pytrace=False)
    return (p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), out)


def test_runs_without_errors(smoke):
    rc, so, se, _ = smoke
    assert rc == 0, f"bench/run.sh exited {rc}\nstdout:\n{so[-4000:]}\nstderr:\n{se[-4000:]}"
    assert "ERROR" not in so, so[-4000:]


@pytest.mark.parametrize("row", ROWS)
def test_table_lists_row(smoke, row):
    _, so, se, _ = smoke
    lines = [ln for ln in so.splitlines() if ln.startswith(f"| {row} |")]
    assert lines, f"no table row {row!r} in the output:\n{so[-4000:]}\nstderr:\n{se[-2000:]}"
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    ours = cells[2] if len(cells) > 4 else cells[1]   # issue rows: crmblob req/s; others: the value
    assert ours not in ("", "-"), f"row {row!r} has no figure: {lines[0]}"
    if REQUIRED:
        assert "skipped" not in lines[0], f"CRMBLOB_REQUIRE_BENCH is set but a row was skipped: {lines[0]}"


def test_writes_report_and_chart(smoke):
    rc, so, _, out = smoke
    assert rc == 0
    report = (out / "BENCHMARKS.md").read_text()
    for row in ROWS:
        assert row in report, row
    assert "## Machine" in report and "## Exact commands" in report
    assert "](chart.png)" in report
    chart = (out / "chart.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n") and len(chart) > 5000, len(chart)
    dat = (out / "results.dat").read_text().splitlines()
    assert len([ln for ln in dat if ln.startswith('"')]) >= 5, dat


def test_reports_the_libmicrohttpd_floor(smoke):
    """The GET Image row is put beside a libmicrohttpd server that does nothing else."""
    rc, so, _, out = smoke
    assert rc == 0
    report = (out / "BENCHMARKS.md").read_text()
    assert "## How far libmicrohttpd itself goes (GET Image)" in report
    rows = [ln for ln in report.splitlines() if ln.startswith("| libmicrohttpd floor")]
    assert rows, report[-3000:]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] not in ("", "-") and cells[2].endswith("×"), rows[0]
    assert "nginx's server CPU per request" in so and "crmblob reaches" in so, so[-3000:]


ROWS18 = ["GET Image 25 KB", "GET ImageInfo", "PUT ImageInfo", "PUT 200 KB JPEG"]


def table18_row(so, label):
    """The cells of the issue-18 table's row `label`, e.g. "SQLite, 2 servers + haproxy: GET ImageInfo"."""
    lines = [ln for ln in so.splitlines() if ln.startswith(f"| {label} |")]
    assert lines, f"no table row {label!r} in the output:\n{so[-4000:]}"
    return [c.strip() for c in lines[0].strip("|").split("|")]


@pytest.mark.parametrize("row", ROWS18)
def test_two_sqlite_servers_behind_haproxy(smoke, row):
    """Two crmblob on one SQLite file behind haproxy: req/s, and crmblob's and
    haproxy's CPU per request apart."""
    rc, so, _, _ = smoke
    assert rc == 0
    cells = table18_row(so, f"SQLite, 2 servers + haproxy: {row}")
    if shutil.which("haproxy") is None and not REQUIRED:
        assert cells[-1] == "not run: haproxy is not installed", cells
        return
    rps, crmblob_us, pg_us, haproxy_us = cells[1], cells[3], cells[4], cells[5]
    assert rps not in ("", "-") and float(rps.replace(",", "")) > 0, cells
    assert crmblob_us != "-" and haproxy_us != "-", cells
    assert pg_us == "-", cells
    one = table18_row(so, f"SQLite, 1 server: {row}")
    assert one[1] != "-" and one[3] != "-" and one[5] == "-", one


def test_postgresql_row_runs_or_says_why(smoke):
    """One PostgreSQL row in a smoke run: measured (crmblob's and PostgreSQL's
    CPU apart, the targets checked), or "not run: <the reason>", never a figure
    made up."""
    rc, so, _, _ = smoke
    assert rc == 0
    cells = table18_row(so, "PostgreSQL, 1 server: PUT ImageInfo")
    if cells[1] == "-":
        assert cells[-1].startswith("not run: ") and len(cells[-1]) > len("not run: "), cells
        assert all(c == "-" for c in cells[1:-1]), cells
        return
    assert cells[3] != "-" and cells[4] != "-", cells   # crmblob and PostgreSQL CPU per request
    assert cells[-1] in ("pass", "**MISS**"), cells
    assert "sq1's" in cells[7] and "durable" in cells[7], cells
    for row in ["GET Image 25 KB", "GET ImageInfo", "PUT 200 KB JPEG"]:
        other = table18_row(so, f"PostgreSQL, 1 server: {row}")
        assert other[-1] == "not run: a smoke run measures one PostgreSQL row", other


def test_sqlite_rows_compared_with_committed_figures(smoke):
    rc, so, _, out = smoke
    assert rc == 0
    report = (out / "BENCHMARKS.md").read_text()
    assert "### The SQLite rows against the committed figures" in report
    for name in ["cb_get_image", "cb_get_info", "cbd_put_info", "cbd_put_jpeg"]:
        rows = [ln for ln in so.splitlines() if ln.startswith(f"| `{name}` (")]
        assert rows, so[-3000:]
        # a smoke run (4 connections, 1 s) is never held against a full run's figures
        assert "| not compared (the runs differ) |" in rows[0], rows[0]


def test_tls_row(smoke):
    """GET Image over TLS (--tls-cert) against nginx over TLS: both measured,
    the targets checked."""
    rc, so, _, _ = smoke
    assert rc == 0
    lines = [ln for ln in so.splitlines() if ln.startswith("| GET Image 25 KB over TLS")]
    assert lines, so[-3000:]
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    assert cells[1] != "-" and float(cells[1].replace(",", "")) > 0, cells   # crmblob req/s
    assert cells[2] != "-" and float(cells[2].replace(",", "")) > 0, cells   # nginx req/s
    assert cells[7] != "-" and cells[8] != "-", cells                        # CPU per request
    assert cells[-1] in ("pass", "**MISS**"), cells
