-- wrk script of bench/gateway.sh: every request is one small OpenAI chat completion, the
-- JSON body from BENCH_BODY, with BENCH_API_KEY as a bearer token (bench/gateway.sh sets
-- both; the key is never printed). At the end it prints one line, "RESULT {json}", that
-- bench/gateway.sh reads: completed requests, run time, errors (statuses of 400 and up;
-- connect, read, write and timeout errors) and latency percentiles, in microseconds.
wrk.method = "POST"
wrk.body = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_API_KEY"), "BENCH_API_KEY is not set")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
