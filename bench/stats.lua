-- bench/stats.lua — wrk script shared by every row of bench/run.sh.
--
-- Alone (wrk -s bench/stats.lua), wrk sends its one static request (method
-- from BENCH_METHOD, default GET; headers from -H): wrk's fastest path. The
-- PUT scripts load it with dofile() for its done().
--
-- done() prints one machine-readable line after wrk's own --latency report:
--   BENCH requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N
--         mean_us=F bytes=N connect=N read=N write=N status=N timeout=N
-- status is wrk's "Non-2xx or 3xx responses"; connect/read/write/timeout its
-- socket errors. Latencies are microseconds.
local method = os.getenv("BENCH_METHOD")
if method ~= nil and method ~= "" then
    wrk.method = method
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
        .. "mean_us=%.1f bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.duration, secs > 0 and summary.requests / secs or 0,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
