-- wrk script for bench/serve_bench.sh: POST one photo to /v1/identify and
-- print requests/s, p50/p95/p99 latency and every kind of error as one line.
local f = assert(io.open(os.getenv("PHOTO"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("RESULT requests=%d rps=%.2f p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f errors=%d status_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, errors, e.status))
end
