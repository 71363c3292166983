#!/usr/bin/env python3
"""bench/report.py — turns the measurements of bench/run.sh into BENCHMARKS.md.

run.sh calls it with its temporary directory, which holds
  results.txt   one line per wrk run: name|requests|rps|p50_us|p90_us|p99_us|max_us|
                status|connect|read|write|timeout|cpu_pct|cpu_s|other_pct|wrk_pct
  extras.txt    key=value lines (RSS figures, uploads, auth mode, skipped rows, ...)
  machine.txt   key=value lines describing the machine and the versions
  commands.txt  the exact commands, one per line
  failures.txt  what went wrong (non-2xx answers, socket errors, failed uploads)
and writes the Markdown report (--out), the chart's data file (--dat) and
prints the tables on stdout. The chart itself is drawn by bench/chart.gp.
Only the Python standard library is used.
"""
import argparse
import os
import sys
from pathlib import Path

# row id, label, crmblob measurement, reference measurement, reference name,
# rps target (ours/ref >=), p99 target (ours/ref <=) or None, chart label
ROWS = [
    ("get_image", "GET Image 25 KB, Basic", "cb_get_image", "ng_get_jpeg",
     "nginx static file (sendfile, no auth)", 1.0, 1.5, "GET Image 25KB"),
    ("get_info", "GET ImageInfo", "cb_get_info", "ng_get_json",
     "nginx static JSON file", 0.6, None, "GET ImageInfo"),
    ("put_info_durable", "PUT ImageInfo, durable", "cbd_put_info", "ng_get_json",
     "nginx static JSON file (GET)", 0.3, None, "PUT ImageInfo dur."),
    ("put_jpeg_durable", "PUT 200 KB JPEG, durable", "cbd_put_jpeg", "ng_dav_put",
     "nginx WebDAV PUT to files", 0.8, None, "PUT JPEG 200KB dur."),
    ("put_info_json_server", "PUT ImageInfo vs json-server", "cb_put_info", "js_patch",
     "json-server 0.17 PATCH of an equivalent record", 20.0, None, "PUT ImageInfo/json-srv"),
]

# issue 18: the setups and rows of the PostgreSQL / two-server table
SETUPS18 = [("sq1", "SQLite, 1 server"), ("sq2", "SQLite, 2 servers + haproxy"),
            ("pg1", "PostgreSQL, 1 server"), ("pg2", "PostgreSQL, 2 servers + haproxy")]
ROWS18 = [("get_image", "GET Image 25 KB"), ("get_info", "GET ImageInfo"),
          ("put_info", "PUT ImageInfo"), ("put_jpeg", "PUT 200 KB JPEG")]
SQ1_NAMES = {"get_image": "cb_get_image", "get_info": "cb_get_info",
             "put_info": "cbd_put_info", "put_jpeg": "cbd_put_jpeg"}
PG_CPU_LIMIT = 1.5      # crmblob's CPU per request on PostgreSQL <= 1.5x on SQLite
PG_PUT_INFO_MIN = 0.5   # PUT ImageInfo on PostgreSQL >= 0.5x the SQLite durable figure
COMMITTED_MIN = 0.95    # the SQLite rows no slower than the committed figures, within 5 %

MIB = 1024.0
WRK_LIMIT = 90.0     # % of its core used by wrk: the load tool, not the server, set the pace
OTHER_LIMIT = 10.0   # % of a core used by other processes during a run: the figures are disturbed


def read_kv(path):
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def read_results(path):
    fields = ["name", "requests", "rps", "p50_us", "p90_us", "p99_us", "max_us", "status",
              "connect", "read", "write", "timeout", "cpu_pct", "cpu_s", "other_pct", "wrk_pct"]
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("|")
            if len(parts) != len(fields):
                continue
            rec = dict(zip(fields, parts))
            for k in fields[1:]:
                rec[k] = float(rec[k])
            out[rec["name"]] = rec
    return out


def fmt_rps(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000.0
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}×"


def fmt_cpu(v):
    return "-" if v is None else f"{v:.0f} %"


def verdict(ok):
    return "-" if ok is None else ("pass" if ok else "**MISS**")


def floor_verdict(rate_ratio, cpu_ratio):
    """What the libmicrohttpd floor says of the GET Image target (1.0x nginx's rate)."""
    if rate_ratio is None or cpu_ratio is None:
        return ""
    if rate_ratio < 1.0 and cpu_ratio > 1.0:
        return ("By both measures the GET Image target (1.0× nginx) lies above what libmicrohttpd "
                "alone reaches on this machine.")
    if rate_ratio >= 1.0 and cpu_ratio <= 1.0:
        return "libmicrohttpd alone would meet the GET Image target here."
    return "The two measures disagree in this run: the machine or the load tool disturbed it."


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def read_parts(path):
    """parts.txt: name|part|seconds -> {name: {part: seconds}}"""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("|")
            if len(parts) == 3:
                out.setdefault(parts[0], {})[parts[1]] = float(parts[2])
    return out


def read_committed(path):
    """The committed BENCHMARKS.md: ({wrk run: (req/s, server CPU µs/req)}, its date,
    connections, seconds)."""
    rps, date, conns, secs = {}, "?", None, None
    if not path.exists():
        return rps, date, conns, secs
    text = path.read_text()
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            try:
                rps[cells[0].strip("`")] = (float(cells[2].replace(",", "")),
                                            float(cells[10]) if cells[10] != "-" else None)
            except (IndexError, ValueError):
                pass
        elif line.startswith("Written by `bench/run.sh` on "):
            date = line.split(" on ", 1)[1].split(" ", 1)[0]
            words = line.split()
            for i, w in enumerate(words):
                if w == "keep-alive" and i > 0:
                    conns = words[i - 1]
                if w == "s" and i > 0 and words[i + 1:i + 3] == ["per", "run"]:
                    secs = words[i - 1]
    return rps, date, conns, secs


def table18(res, parts, ex):
    """The PostgreSQL / two-server rows: (rows, summary entries)."""
    rows, summary = [], []

    def name(setup, row):
        return SQ1_NAMES[row] if setup == "sq1" else f"{setup}_{row}"

    def per_req(n, part):
        r = res.get(n)
        if r is None or not r["requests"]:
            return None
        secs = parts.get(n, {}).get(part)
        if secs is None and part == "crmblob" and n in SQ1_NAMES.values():
            secs = r["cpu_s"]   # the issue-7 runs measure crmblob alone
        return None if secs is None else secs * 1e6 / r["requests"]

    def us(v):
        return "-" if v is None else f"{v:.0f}"

    for setup, slabel in SETUPS18:
        skipped = ex.get(f"skip18_{setup}")
        for row, rlabel in ROWS18:
            n = name(setup, row)
            r = res.get(n)
            label = f"{slabel}: {rlabel}"
            if r is None:
                why = f"not run: {skipped}" if skipped else "not run"
                if not skipped and setup == "sq1":
                    why = "not run (BENCH_ROWS has neither issue7 nor sqlite1)"
                elif not skipped and ex.get("smoke") == "1" and setup.startswith("pg"):
                    why = "not run: a smoke run measures one PostgreSQL row"
                elif not skipped:
                    why = "not run (not in BENCH_ROWS)"
                rows.append([label, "-", "-", "-", "-", "-", "-", "-", why])
                continue
            cb = per_req(n, "crmblob")
            pg = per_req(n, "postgres")
            hp = per_req(n, "haproxy")
            checks, texts = [], []
            if setup.startswith("pg"):
                base_setup = "sq1" if setup == "pg1" else "sq2"
                base = per_req(name(base_setup, row), "crmblob")
                ratio = cb / base if (cb is not None and base) else None
                texts.append(f"crmblob CPU {fmt_ratio(ratio)} {base_setup}'s (≤ {PG_CPU_LIMIT:g}×)" if ratio
                             else f"crmblob CPU: no {base_setup} figure in this run")
                checks.append(None if ratio is None else ratio <= PG_CPU_LIMIT)
                if row == "put_info":
                    sq = res.get(name(base_setup, "put_info"))
                    rr = r["rps"] / sq["rps"] if (sq and sq["rps"]) else None
                    texts.append(f"req/s {fmt_ratio(rr)} {base_setup}'s durable (≥ {PG_PUT_INFO_MIN:g}×)" if rr
                                 else f"req/s: no {base_setup} durable figure in this run")
                    checks.append(None if rr is None else rr >= PG_PUT_INFO_MIN)
            ok = None if not checks or None in checks else all(checks)
            for c, t in zip(checks, texts):
                summary.append((f"{label}, {t}", c, None))
            rows.append([label, fmt_rps(r["rps"]), fmt_ms(r["p99_us"]), us(cb), us(pg), us(hp),
                         fmt_cpu(r["cpu_pct"]), "; ".join(texts) or "-", verdict(ok)])
    return rows, summary


# issue 19: GET Image over TLS against nginx over TLS, with the targets of
# the plain GET Image row (ROWS[0])
TLS_RPS_MIN, TLS_P99_MAX = ROWS[0][5], ROWS[0][6]


def table_tls(res):
    """GET Image 25 KB over TLS, crmblob against nginx: (rows, summary entries)."""
    cb, ng = res.get("tls_cb_get_image"), res.get("tls_ng_get_jpeg")
    if cb is None or ng is None:
        return [["GET Image 25 KB over TLS"] + ["-"] * 9 + ["not run (BENCH_ROWS has no tls)"]], []

    def per_req(r):
        return "-" if not r["requests"] else f"{r['cpu_s'] * 1e6 / r['requests']:.0f}"

    rps = cb["rps"] / ng["rps"] if ng["rps"] else None
    p99 = cb["p99_us"] / ng["p99_us"] if ng["p99_us"] else None
    ok = None if rps is None or p99 is None else (rps >= TLS_RPS_MIN and p99 <= TLS_P99_MAX)
    row = ["GET Image 25 KB over TLS, Basic (`tls_cb_get_image` / `tls_ng_get_jpeg`)",
           fmt_rps(cb["rps"]), fmt_rps(ng["rps"]), fmt_ratio(rps), fmt_ms(cb["p99_us"]),
           fmt_ms(ng["p99_us"]), fmt_ratio(p99), per_req(cb), per_req(ng),
           f"req/s ≥ {TLS_RPS_MIN:g}×, p99 ≤ {TLS_P99_MAX:g}×", verdict(ok)]
    return [row], [("GET Image over TLS vs nginx over TLS", ok, None)]


# issue 19: `crmblob import` against a curl loop making the same uploads
IMPORT_MIN = 1.0  # pictures/s, import ÷ curl loop


def table_import(ex):
    """crmblob import against a curl loop of PUT Image: (rows, summary entries)."""
    n, secs, csecs = ex.get("imp_n"), ex.get("imp_secs"), ex.get("curl_secs")
    if n is None:
        return [["import"] + ["-"] * 5 + ["not run (BENCH_ROWS has no import)"]], []
    n, p = int(n), ex.get("imp_threads", "?")
    ips = n / float(secs) if secs else None
    cps = n / float(csecs) if csecs else None
    ratio = ips / cps if (ips and cps) else None
    ok = None if ratio is None else ratio >= IMPORT_MIN
    row = [f"{n} JPEGs of 25 KB, {p} at a time", "-" if ips is None else f"{ips:.0f}",
           "-" if cps is None else f"{cps:.0f}", fmt_ratio(ratio), f"≥ {IMPORT_MIN:g}×",
           f"{secs or '-'} s / {csecs or '-'} s", verdict(ok)]
    return [row], [("import vs curl loop", ok, None)]


def table_committed(res, ex, committed):
    """The SQLite rows against the committed BENCHMARKS.md: (rows, summary entries, note)."""
    c_rps, c_date, c_conns, c_secs = committed
    rows, summary = [], []
    same = c_conns == ex.get("conns") and c_secs == ex.get("duration")
    note = (f"committed BENCHMARKS.md of {c_date} ({c_conns} connections, {c_secs} s per run); this run: "
            f"{ex.get('conns', '?')} connections, {ex.get('duration', '?')} s per run")
    if not c_rps:
        return rows, summary, "no committed BENCHMARKS.md to compare with"
    for row, rlabel in ROWS18:
        n = SQ1_NAMES[row]
        r = res.get(n)
        now = r["rps"] if r else None
        now_us = r["cpu_s"] * 1e6 / r["requests"] if (r and r["requests"]) else None
        then, then_us = c_rps.get(n, (None, None))
        ratio = now / then if (now is not None and then) else None
        if ratio is None:
            res_txt = "-"
        elif not same:
            res_txt = "not compared (the runs differ)"
        else:
            ok = ratio >= COMMITTED_MIN
            res_txt = verdict(ok)
            summary.append((f"SQLite {rlabel} vs committed", ok, None))
        rows.append([f"`{n}` ({rlabel})", fmt_rps(now), fmt_rps(then), fmt_ratio(ratio if same else None),
                     f"≥ {COMMITTED_MIN:g}×", res_txt,
                     "-" if now_us is None else f"{now_us:.0f}", "-" if then_us is None else f"{then_us:.0f}"])
    return rows, summary, note


KEPT_BEGIN = "<!-- measured elsewhere: kept by make bench -->"
KEPT_END = "<!-- end of what make bench keeps -->"


def read_kept(path):
    """The sections of the committed BENCHMARKS.md that other tools measure
    (between KEPT_BEGIN and KEPT_END, markers included, e.g. the page's list
    view from `make browser`): a run of the benchmark carries them over."""
    if not path.exists():
        return []
    lines, out, on = path.read_text().splitlines(), [], False
    for line in lines:
        if line.strip() == KEPT_BEGIN:
            on = True
        if on:
            out.append(line)
        if line.strip() == KEPT_END:
            on = False
            out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="run.sh's temporary directory")
    ap.add_argument("--out", required=True, help="the Markdown report to write")
    ap.add_argument("--dat", required=True, help="the chart's data file to write")
    ap.add_argument("--chart", required=True, help="the PNG chart (linked from the report)")
    a = ap.parse_args()

    d = Path(a.dir)
    res = read_results(d / "results.txt")
    ex = read_kv(d / "extras.txt")
    mach = read_kv(d / "machine.txt")
    commands = (d / "commands.txt").read_text().splitlines() if (d / "commands.txt").exists() else []
    failures = (d / "failures.txt").read_text().splitlines() if (d / "failures.txt").exists() else []
    smoke = ex.get("smoke") == "1"
    parts = read_parts(d / "parts.txt")
    committed = read_committed(d / "committed.md")

    def get(name, key):
        r = res.get(name)
        if r is None:
            return None
        if key == "cpu_us_per_req":   # server CPU time per answered request
            return r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else None
        return r[key]

    # ------------------------------------------------------------ main rows
    main_rows = []
    dat_lines = ['# "label (req/s ratio)" crmblob_rps reference_rps crmblob_p99_ms reference_p99_ms '
                 '"reference" "label (p99 ratio)"']
    summary = []   # (label, ok) for the stdout verdict
    for rid, label, ours, ref, refname, rps_t, p99_t, short in ROWS:
        skipped = ex.get(f"skip_{rid}")
        o_rps, r_rps = get(ours, "rps"), get(ref, "rps")
        o_p99, r_p99 = get(ours, "p99_us"), get(ref, "p99_us")
        ratio = o_rps / r_rps if (o_rps is not None and r_rps) else None
        p99r = o_p99 / r_p99 if (o_p99 is not None and r_p99) else None
        ok = None
        if ratio is not None:
            ok = ratio >= rps_t
            if p99_t is not None and p99r is not None:
                ok = ok and p99r <= p99_t
        target = f"≥ {rps_t:g}× req/s" + (f", p99 ≤ {p99_t:g}×" if p99_t is not None else "")
        res_txt = verdict(ok) if not skipped else f"skipped ({skipped})"
        main_rows.append([label, refname, fmt_rps(o_rps), fmt_rps(r_rps), fmt_ratio(ratio),
                          fmt_ms(o_p99), fmt_ms(r_p99), fmt_ratio(p99r),
                          fmt_cpu(get(ours, "cpu_pct")), fmt_cpu(get(ref, "cpu_pct")),
                          target, res_txt])
        summary.append((label, ok, skipped))

        def dv(v, scale=1.0):
            return "-" if v is None else f"{v / scale:.3f}"
        lab_rps = short + ("" if ratio is None else f"\\n({ratio:.2f}×)")
        lab_p99 = short + ("" if p99r is None else f"\\n({p99r:.2f}×)")
        dat_lines.append(f'"{lab_rps}" {dv(o_rps)} {dv(r_rps)} {dv(o_p99, 1000)} {dv(r_p99, 1000)} '
                         f'"{refname}" "{lab_p99}"')

    # auth pair as a chart cluster too (reference = the unauthenticated request)
    a_rps, u_rps = get("cb_auth", "rps"), get("cb_noauth", "rps")
    if a_rps is not None or u_rps is not None:
        def dv(v, scale=1.0):
            return "-" if v is None else f"{v / scale:.3f}"
        dat_lines.append(f'"auth vs no auth" {dv(a_rps)} {dv(u_rps)} {dv(get("cb_auth", "p99_us"), 1000)} '
                         f'{dv(get("cb_noauth", "p99_us"), 1000)} "crmblob unauthenticated" "auth vs no auth"')

    # ------------------------------------------------------------ extra rows
    extra_rows = []

    def kib(key):
        v = ex.get(key)
        return None if v in (None, "") else float(v)

    idle = kib("idle_rss_kb")
    ok = None if idle is None else idle < 16 * MIB
    extra_rows.append(["idle RSS", "-" if idle is None else f"{idle / MIB:.1f} MiB",
                       "< 16 MiB", verdict(ok),
                       f"VmRSS of the default-mode server after start, setup of {ex.get('entities', '?')} "
                       f"persons with pictures and a few reads, 1 s idle"])
    summary.append(("idle RSS", ok, None))

    n_up, ok_up = ex.get("uploads_total", "?"), ex.get("uploads_ok", "?")
    up_mb = ex.get("upload_mb", "?")
    hwm = kib("upload_hwm_kb")
    ok = None if hwm is None else (hwm < 64 * MIB and ok_up == n_up)
    label = f"peak RSS, {n_up} uploads of {up_mb} MB"
    detail = (f"VmHWM of a fresh default-mode server over {n_up} concurrent PUT Image of one "
              f"{ex.get('upload_bytes', '?')}-byte {ex.get('upload_dims', '')} JPEG (high-water mark "
              f"{'reset' if ex.get('hwm_reset') == '1' else 'NOT reset (clear_refs refused)'} just before; "
              f"HWM before: {float(ex.get('hwm_before_kb', 0)) / MIB:.1f} MiB); {ok_up}/{n_up} answered 200 "
              f"in {ex.get('upload_secs', '?')} s ({ex.get('upload_retries', '0')} sent again after a 503 "
              f"with Retry-After — the image checks' queue or the upload spools full — or a connection "
              f"closed before the answer could be read; {ex.get('upload_closed_early', '0')} met the "
              f"refusal as a broken pipe while still sending); answers: {ex.get('upload_statuses', '?')}; "
              f"largest sampled VmRSS {float(ex.get('upload_max_rss_kb', 0)) / MIB:.1f} MiB")
    extra_rows.append([label, "-" if hwm is None else f"{hwm / MIB:.1f} MiB", f"< 64 MiB, all 200",
                       verdict(ok), detail])
    summary.append((label, ok, None))

    # auth cost: the server's CPU time per request, authenticated over unauthenticated
    a_cpu, u_cpu = get("cb_auth", "cpu_us_per_req"), get("cb_noauth", "cpu_us_per_req")
    cost = a_cpu / u_cpu if (a_cpu and u_cpu) else None
    tput = u_rps / a_rps if (a_rps and u_rps) else None
    ok = None if cost is None else cost <= 1.10

    def us(v):
        return "-" if v is None else f"{v:.0f} µs"
    detail = (f"server CPU per request: authenticated `GET /api/v1/Person/1/ImageInfo` with Basic and "
              f"`If-None-Match` of its ETag, answered 304, {us(a_cpu)} ({fmt_rps(a_rps)} req/s, p99 "
              f"{fmt_ms(get('cb_auth', 'p99_us'))} ms, server CPU {fmt_cpu(get('cb_auth', 'cpu_pct'))}); "
              f"unauthenticated CORS preflight `OPTIONS` of the same path, answered 204, {us(u_cpu)} "
              f"({fmt_rps(u_rps)} req/s, p99 {fmt_ms(get('cb_noauth', 'p99_us'))} ms, server CPU "
              f"{fmt_cpu(get('cb_noauth', 'cpu_pct'))}); by throughput the authenticated request takes "
              f"{fmt_ratio(tput)} the time. Both on keep-alive connections. For comparison, an authenticated "
              f"`GET /api/v1/TimeZone/base` (a {ex.get('tz_bytes', '?')}-byte carrier built with jansson): "
              f"{us(get('cb_auth_tz', 'cpu_us_per_req'))}, {fmt_rps(get('cb_auth_tz', 'rps'))} req/s.")
    extra_rows.append(["auth cost", "-" if cost is None else f"{cost:.2f}× the CPU of an unauthenticated request",
                       "≤ 1.10×", verdict(ok), detail])
    summary.append(("auth cost", ok, None))

    d_rps, n_rps = get("cbd_put_info", "rps"), get("cb_put_info", "rps")
    dr = d_rps / n_rps if (d_rps and n_rps) else None
    ok = None if dr is None else dr >= 0.7
    extra_rows.append(["durable / default PUT ImageInfo", fmt_ratio(dr), "≥ 0.7×", verdict(ok),
                       f"--durable {fmt_rps(d_rps)} req/s vs default {fmt_rps(n_rps)} req/s, "
                       f"{ex.get('conns', '?')} connections"])
    summary.append(("durable / default PUT ImageInfo", ok, None))

    # ------------------------------------------------------------ libmicrohttpd floor
    floor_rows, floor_text = [], None
    f_rps, n_rps_img, c_rps_img = get("mhd_get_jpeg", "rps"), get("ng_get_jpeg", "rps"), get("cb_get_image", "rps")
    if f_rps is not None:
        for label, name in [("nginx static file (sendfile)", "ng_get_jpeg"),
                            ("libmicrohttpd floor (`bench/mhd_floor.c`)", "mhd_get_jpeg"),
                            ("crmblob GET Image, Basic", "cb_get_image")]:
            rps = get(name, "rps")
            cpu = get(name, "cpu_us_per_req")
            floor_rows.append([label, fmt_rps(rps), fmt_ratio(rps / n_rps_img if (rps and n_rps_img) else None),
                               fmt_ms(get(name, "p99_us")), "-" if cpu is None else f"{cpu:.1f}"])
        fr = f_rps / n_rps_img if n_rps_img else None
        cr = c_rps_img / f_rps if c_rps_img else None
        f_cpu, n_cpu = get("mhd_get_jpeg", "cpu_us_per_req"), get("ng_get_jpeg", "cpu_us_per_req")
        fc = f_cpu / n_cpu if (f_cpu and n_cpu) else None
        floor_text = (f"A libmicrohttpd {mach.get('libmicrohttpd', '')} server that does nothing but answer "
                      "the same bytes from one response made at start (one epoll thread, no routing, "
                      "authentication, store or log) reaches "
                      f"{fmt_ratio(fr)} of nginx's rate, using {fmt_ratio(fc)} nginx's server CPU per "
                      "request (the fairer figure when wrk is near its limit); crmblob reaches "
                      f"{fmt_ratio(cr)} of that floor. "
                      + floor_verdict(fr, fc))

    # ------------------------------------------------------------ all wrk runs
    run_rows = []
    for name, r in res.items():
        errs = int(r["connect"] + r["read"] + r["write"] + r["timeout"])
        run_rows.append([f"`{name}`", f"{r['requests']:,.0f}", fmt_rps(r["rps"]), fmt_ms(r["p50_us"]),
                         fmt_ms(r["p90_us"]), fmt_ms(r["p99_us"]), fmt_ms(r["max_us"]),
                         int(r["status"]), errs, fmt_cpu(r["cpu_pct"]),
                         "-" if not r["requests"] else f"{r['cpu_s'] * 1e6 / r['requests']:.0f}",
                         fmt_cpu(r["wrk_pct"]), fmt_cpu(r["other_pct"])])

    # ------------------------------------------------------------ issue 18
    rows18, sum18 = table18(res, parts, ex)
    summary.extend(sum18)
    rows_tls, sum_tls = table_tls(res)
    summary.extend(sum_tls)
    hdr_tls = ["row", "crmblob req/s", "nginx req/s", "ratio", "crmblob p99 ms", "nginx p99 ms",
               "p99 ratio", "crmblob CPU µs/req", "nginx CPU µs/req", "target", "result"]
    rows_imp, sum_imp = table_import(ex)
    summary.extend(sum_imp)
    hdr_imp = ["row", "import pictures/s", "curl loop pictures/s", "ratio", "target", "times",
               "result"]
    rows_c, sum_c, note_c = table_committed(res, ex, committed)
    summary.extend(sum_c)
    hdr18 = ["setup: row", "req/s", "p99 ms", "crmblob CPU µs/req", "PostgreSQL CPU µs/req",
             "haproxy CPU µs/req", "all server CPU", "against SQLite", "result"]
    hdr_c = ["SQLite row (wrk run)", "req/s now", "req/s committed", "ratio", "target", "result",
             "crmblob CPU µs/req now", "committed"]

    # ------------------------------------------------------------ write
    chart_rel = os.path.relpath(a.chart, start=os.path.dirname(os.path.abspath(a.out)))
    main_hdr = ["row", "reference", "crmblob req/s", "ref req/s", "ratio", "crmblob p99 ms",
                "ref p99 ms", "p99 ratio", "crmblob CPU", "ref CPU", "target", "result"]
    extra_hdr = ["measure", "value", "target", "result", "how"]
    run_hdr = ["wrk run", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-2xx",
               "socket errors", "server CPU", "server CPU µs/req", "wrk CPU", "other CPU"]

    md = []
    md.append("# crmblob benchmarks" + (" (SMOKE RUN: figures meaningless)" if smoke else ""))
    md.append("")
    md.append(f"Written by `bench/run.sh` on {mach.get('date', '?')} (issue #7). Every figure is a ratio "
              "to a reference measured in the same run on the same machine: the load tool (`wrk`, one "
              f"thread, {ex.get('conns', '?')} keep-alive connections, {ex.get('duration', '?')} s per run after a "
              f"{ex.get('warmup', '?')} s warm-up) pinned to CPU {ex.get('load_cpu', '?')}, the server under test "
              f"(crmblob, nginx or json-server) pinned to CPU {ex.get('server_cpu', '?')} with `taskset`, over loopback. "
              "Regenerate with `make bench` (or `bash bench/run.sh`; `BENCH_SECONDS`, `BENCH_CONNS` change the run).")
    md.append("")
    if failures:
        md.append("**The run had errors** (the figures of these runs are not valid):")
        md.append("")
        md.extend(f"- {f}" for f in failures)
        md.append("")
    busy = [f"`{n}` ({r['other_pct']:.0f} %)" for n, r in res.items() if r["other_pct"] > OTHER_LIMIT]
    if busy:
        md.append(f"**The machine was busy**: other processes used more than {OTHER_LIMIT:.0f} % of a core "
                  f"during {', '.join(busy)}; those figures are disturbed (\"other CPU\" below).")
        md.append("")
    bound = [f"`{n}` ({r['wrk_pct']:.0f} %)" for n, r in res.items() if r["wrk_pct"] > WRK_LIMIT]
    if bound:
        md.append(f"**The load tool was the limit** (wrk above {WRK_LIMIT:.0f} % of its core) in "
                  f"{', '.join(bound)}: the server could answer more than measured there.")
        md.append("")
    md.append("## Rows of the issue")
    md.append("")
    md.append(md_table(main_hdr, main_rows))
    md.append("")
    md.append("Ratio = crmblob ÷ reference (requests/s: higher is better; p99: lower is better). "
              "CPU = CPU time of the server process (all threads, nginx master + worker) over the run, "
              "in % of one core: 100 % means the server's core was saturated. Other CPU (table of wrk runs) = "
              "CPU the whole machine used during the run minus the server's and wrk's: other processes. "
              "wrk CPU near 100 % means the load tool, not the server, set the pace: that figure is a lower bound.")
    md.append("")
    md.append(f"![throughput and p99 per row]({chart_rel})")
    md.append("")
    if floor_rows:
        md.append("## How far libmicrohttpd itself goes (GET Image)")
        md.append("")
        md.append(md_table(["server", "req/s", "ratio to nginx", "p99 ms", "server CPU µs/req"], floor_rows))
        md.append("")
        md.append(floor_text)
        md.append("")
    md.append("## Memory, authentication, durability")
    md.append("")
    md.append(md_table(extra_hdr, extra_rows))
    md.append("")
    md.append("## TLS (issue 19)")
    md.append("")
    md.append(md_table(hdr_tls, rows_tls))
    md.append("")
    md.append("crmblob with `--tls-cert`/`--tls-key` (GnuTLS through libmicrohttpd) against nginx over TLS "
              "(bench/nginx-tls.conf.in: OpenSSL, the same static file), one self-signed P-256 certificate "
              "made in the run for both, TLS 1.2 and 1.3 allowed (wrk negotiates 1.3), keep-alive connections. "
              "Neither can sendfile over TLS. CPU µs/req = the server's CPU time over the run ÷ requests.")
    md.append("")
    md.append("## Import (issue 19)")
    md.append("")
    md.append(md_table(hdr_imp, rows_imp))
    md.append("")
    md.append("`crmblob import DIR --entity person --threads N` of distinct 25 KB JPEGs into a fresh "
              "SQLite database (its time includes creating the persons) against the same uploads made "
              "by a curl loop (PUT Image, one curl process a file, N at a time with `xargs -P`) to "
              "`crmblob serve` on a fresh SQLite database whose persons were made before its clock "
              "started. Both store through the same path: the image worker's validation, then the "
              "store. Neither side is pinned to a core.")
    md.append("")
    md.append("## PostgreSQL and two servers behind haproxy (issue 18)")
    md.append("")
    md.append(md_table(hdr18, rows18))
    md.append("")
    md.append(
        "CPU µs/req = CPU time (utime + stime) of that part over the run ÷ requests answered: crmblob "
        "(every crmblob server of the setup, with its image worker), PostgreSQL (the postmaster and its "
        "backends) and haproxy apart; all server CPU = the sum of the parts in % of one core. Targets: "
        f"crmblob's CPU per request on PostgreSQL ≤ {PG_CPU_LIMIT:g}× on SQLite (one server against "
        "one, two against two) for every row; PUT ImageInfo on PostgreSQL ≥ "
        f"{PG_PUT_INFO_MIN:g}× the SQLite durable figure (req/s). The SQLite servers run `--durable`; "
        "PostgreSQL is a throwaway cluster of `scripts/pg-cluster.sh` without `--fast` (fsync and "
        "synchronous_commit on: every commit is durable). The two-server setups run "
        "`dist/haproxy/crmblob.cfg` as committed (round robin, a log line per request to stderr, "
        "health checks on /ready), every crmblob with `--trusted-proxy 127.0.0.1`. "
        f"Pinning: wrk on CPU {ex.get('load_cpu', '?')}; the crmblob servers, haproxy (CPU "
        f"{ex.get('proxy_cpu', '?')}) and PostgreSQL (CPU {ex.get('pg_cpu', '?')}) on the servers' core: "
        "every setup has one core, so two servers show what the proxy and the sharing cost, not the "
        "gain of a core per server. A setup whose server refuses to start is \"not run\", with the "
        "server's first error line.")
    md.append("")
    if ex.get("pg_dir_note"):
        md.append(f"Note: {ex['pg_dir_note']}.")
        md.append("")
    md.append("### The SQLite rows against the committed figures")
    md.append("")
    if rows_c:
        md.append(md_table(hdr_c, rows_c))
        md.append("")
    md.append(f"Compared with the {note_c} (only when both use the same connections and seconds; "
              "reported, never a failure). req/s is what the target names; on a busy machine (other CPU "
              "in the table of wrk runs) it falls with the load, while crmblob's CPU per request, shown "
              "beside it, moves much less.")
    md.append("")
    md.extend(read_kept(d / "committed.md"))
    md.append("## Every wrk run")
    md.append("")
    md.append(md_table(run_hdr, run_rows))
    md.append("")
    md.append("## What each row does")
    md.append("")
    ent = ex.get("entities", "?")
    md.extend([
        f"- **GET Image 25 KB, Basic**: `GET /api/v1/Person/1/Image` with `Authorization: Basic` (an editor), "
        f"the stored {ex.get('small_jpeg_bytes', '?')}-byte JPEG (`{ex.get('small_jpeg', '?')}`); nginx serves "
        "the same bytes from `/static/p.jpg` (sendfile, no auth).",
        "- **GET ImageInfo**: `GET /api/v1/Person/1/ImageInfo` (the BlobEntity carrier, "
        f"{ex.get('info_bytes', '?')} bytes of JSON); nginx serves that very answer as `/static/imageinfo.json`.",
        f"- **PUT ImageInfo**: `PUT /api/v1/Person/{{id}}/ImageInfo` with `{{\"Description\":\"bench ...\"}}`, "
        f"a different text every request, ids 1..{ent} in turn (`bench/put_json.lua`); on the `--durable` "
        "server for the durable row, on the default server for the json-server row and the durable/default "
        "ratio. The durable row's reference is the GET of the static JSON (the issue's choice).",
        f"- **json-server**: `json-server --quiet db.json` (0.17.4, Node {mach.get('node', '?')}) holding {ent} "
        "records equal to crmblob's ImageInfo carrier plus `id`; `PATCH /imageinfo/{id}` with the same body: "
        "like crmblob's PUT it changes the fields present and keeps the rest (json-server's PUT would "
        "replace the record); json-server writes its whole db.json after each change (no fsync).",
        f"- **PUT 200 KB JPEG, durable**: `PUT /api/v1/Person/{{id}}/Image` of `{ex.get('mid_jpeg', '?')}` "
        f"({ex.get('mid_jpeg_bytes', '?')} bytes) to ids 1..{ent} in turn (`bench/put_file.lua`) on the "
        "`--durable` server (every upload is decoded, stored and fsynced); nginx's WebDAV module takes the "
        f"same bytes by `PUT /dav/p{{id}}.jpg` (temp file + rename, no fsync).",
        "- **auth cost**: every `/api/` route of crmblob needs credentials, so no route answers the same "
        "thing with and without them. The measure compares two requests for the same path that both end in "
        "a bodiless answer: a client's revalidation of `/api/v1/Person/1/ImageInfo` (Basic auth, "
        "`If-None-Match` of the current ETag: the user is authenticated, the record looked up, 304) against "
        "the CORS preflight of that path (answered from the configuration without credentials, 204; the "
        "server runs with `--cors-origin http://bench.example`). The cost is the server's CPU time per "
        "request (utime + stime of the process over the run ÷ requests answered), authenticated ÷ "
        "unauthenticated; the throughput ratio is shown too. It overstates the cost of authentication a "
        "little: the authenticated request also finds the record and compares its ETag. (Until 791fdd1 the "
        "pair was `GET /api/v1/TimeZone/base` against its preflight; once authentication was cheap, that "
        "measured mostly jansson building the TimeZone carrier: its figure is given for comparison.)",
        "- **RSS**: VmRSS / VmHWM from `/proc/PID/status` of the crmblob process (all threads).",
    ])
    md.append("")
    md.append("Notes:")
    md.append("")
    md.extend([
        ("- crmblob runs with its defaults (worker threads: the CPUs it may run on + 1, so 2 under "
         "`taskset -c 1`)" if not ex.get("serve_args") else
         f"- crmblob runs with `{ex.get('serve_args')}` added to its defaults")
        + " and writes an access log line per request to a file (in batches); nginx has "
        "`access_log off` (bench/nginx.conf.in).",
        f"- The databases and nginx's files live in `{mach.get('tmp_fs', '?')}` "
        f"({mach.get('tmp_dir', '?')}): fsync there is a real flush only on a disk-backed file system "
        "(not tmpfs).",
        "- A row's result is **MISS** when the ratio misses the issue's target; the run fails (non-zero exit) "
        "only when something did not work: a non-2xx answer or socket error in any wrk run, a failed upload, "
        "a server that did not start.",
    ])
    md.append("")
    md.append("## Machine")
    md.append("")
    for k in ["cpu", "cores", "ram", "kernel", "os", "virt", "tmp_fs", "nginx", "wrk", "node", "json_server",
              "libmicrohttpd", "sqlite", "postgresql", "pg_dir", "pg_settings", "libvips", "crmblob_commit", "crmblob_binary", "crmblob_sha256"]:
        if k in mach:
            md.append(f"- {k.replace('_', ' ')}: {mach[k]}")
    md.append("")
    md.append("## Exact commands")
    md.append("")
    md.append("```sh")
    md.extend(commands)
    md.append("```")
    md.append("")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md))
    Path(a.dat).write_text("\n".join(dat_lines) + "\n")

    # ------------------------------------------------------------ stdout
    print()
    print(md_table(main_hdr, main_rows))
    print()
    print(md_table(extra_hdr[:4], [r[:4] for r in extra_rows]))
    print()
    print(md_table(hdr18, rows18))
    print()
    print(md_table(hdr_tls, rows_tls))
    print()
    if rows_c:
        print(md_table(hdr_c, rows_c))
        print()
    if floor_text:
        print(floor_text)
    misses = [lbl for lbl, ok, sk in summary if ok is False]
    print(f"targets met: {sum(1 for _, ok, _ in summary if ok)}/{len(summary)}"
          + (f"; missed: {', '.join(misses)}" if misses else ""))
    if busy:
        print(f"WARNING: the machine was busy (other processes > {OTHER_LIMIT:.0f} % of a core) during: "
              + ", ".join(busy))
    if bound:
        print(f"note: wrk was the limit (> {WRK_LIMIT:.0f} % of its core) in: " + ", ".join(bound))
    if failures:
        print("ERRORS:")
        for f in failures:
            print(f"  {f}")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
