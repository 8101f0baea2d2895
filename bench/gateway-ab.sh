#!/usr/bin/env bash
# Two builds of `warden serve` side by side: requests per second, CPU time per request and
# how evenly the event loops share the work, alternating, for a change whose effect is
# smaller than the spread of bench/gateway.sh's full runs (docs/PERFORMANCE.md).
#
#   bench/gateway-ab.sh BIN_A BIN_B
#   ROUNDS=6 SECS=6 WARMUP=2 CONNS=64   runs per binary, seconds measured per run, seconds
#                                       of load before each, wrk's connections
#
# One node, made as bench/gateway.sh makes Warden's (bench/lib/gateway-node.sh: TLS, the
# API key, the policy, checks, limits and ledger of bench/gateway/warden.toml), in front of
# bench/gateway.sh's upstream nginx. Each round runs both binaries, the order swapped every
# other round; each run starts its binary afresh on that node, gives it WARMUP seconds of
# `wrk -t2 -cCONNS` (not counted), then SECS seconds more, measured: wrk's requests, and
# the CPU time (user + system) of each of Warden's threads from /proc/PID/task/*/stat.
#
# Output: a line per run: the binary (A or B), req/s, Warden's CPU µs per request (all its
# threads), and the busiest event loop's share of the loops' CPU (50% is an even split
# over two loops); then each binary's medians. Any answer of 400 or more or socket error
# stops the script.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
[ "$#" -eq 2 ] || { echo "usage: bench/gateway-ab.sh BIN_A BIN_B" >&2; exit 2; }
rounds=${ROUNDS:-6} secs=${SECS:-6} warmup=${WARMUP:-2} conns=${CONNS:-64}
for n in "$rounds" "$secs" "$warmup" "$conns"; do
  [[ "$n" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "ROUNDS, SECS, WARMUP and CONNS must be positive integers" >&2; exit 2; }
done
bins=("$1" "$2")
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "no binary at $b" >&2; exit 1; }; done

. bench/lib/packages.sh
. bench/lib/procs.sh
. bench/lib/gateway-node.sh
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v openssl >/dev/null || need_apt+=(openssl)
nginx_bin=$(find_nginx)
[ -n "$nginx_bin" ] || need_apt+=(nginx)
install_packages "${need_apt[@]}"
[ -n "$nginx_bin" ] || nginx_bin=$(find_nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-ab.XXXXXX")
upstream_pid= serve_pid=
cleanup() {
  stop "$serve_pid"
  stop "$upstream_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ulimit -n 20000 2>/dev/null || true

read -r upstream_port warden_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
start_upstream "$work/upstream" "$upstream_port" "$nginx_bin"
make_node "${bins[0]}" "$work/run" "$upstream_port"
node=$work/run/node
export BENCH_API_KEY
BENCH_API_KEY=$(cat "$work/run/key")
export BENCH_BODY='{"model":"bench","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}'
url="https://127.0.0.1:$warden_port/v1/chat/completions"

# LABEL BIN: one run; prints "LABEL req/s cpu_us_per_req busiest_loop_share", and adds it
# to $work/runs.
run() {
  local label=$1 bin=$2
  setsid "$bin" serve --data-dir "$node" --listen "127.0.0.1:$warden_port" --admin-listen off \
    >"$work/serve.out" 2>"$work/serve.err" &
  serve_pid=$!
  for _ in $(seq 100); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    alive "$serve_pid" || { echo "warden serve exited:" >&2; tail -n 20 "$work/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^listening on ' "$work/serve.out" || { echo "warden serve was not listening within 10 s" >&2; exit 1; }
  wrk -t2 -c"$conns" -d"${warmup}s" -s bench/gateway/chat.lua "$url" >/dev/null
  python3 - "$label" "$serve_pid" "$secs" "$conns" "$url" "$work/runs" <<'EOF'
import json, os, subprocess, sys
label, pid, secs, conns, url, runs = sys.argv[1:7]
def threads():
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            st = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = st[st.index("(") + 1 : st.rindex(")")]
        f = st[st.rindex(")") + 2 :].split()
        out[t] = (name, int(f[11]) + int(f[12]))
    return out
before = threads()
wrk = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "-s", "bench/gateway/chat.lua", url],
                     capture_output=True, text=True, check=True).stdout
after = threads()
result = json.loads(wrk[wrk.index("RESULT ") + 7 :].splitlines()[0])
if result["status_errors"] or result["socket_errors"]:
    sys.exit(f"{label}: {result['status_errors']} answers of 400 or more, {result['socket_errors']} socket errors")
n = result["requests"]
ticks = {t: after[t][1] - before.get(t, (None, 0))[1] for t in after}
total = sum(ticks.values())
loops = [v for t, v in ticks.items() if after[t][0].startswith("serve-") and after[t][0][6:].isdigit()]
share = max(loops) / sum(loops) if sum(loops) else 0
hz = os.sysconf("SC_CLK_TCK")
line = f"{label} {n / (result['duration_us'] / 1e6):.0f} {total / hz * 1e6 / n:.1f} {100 * share:.0f}"
print(line, flush=True)
with open(runs, "a") as f:
    print(line, file=f)
EOF
  stop "$serve_pid"
  serve_pid=
}

echo "machine: $(nproc) cores; wrk -t2 -c$conns, ${warmup} s of warm-up then ${secs} s per run, $rounds rounds"
echo "A: ${bins[0]}"
echo "B: ${bins[1]}"
echo "run  req/s  CPU µs/req  busiest loop's share %"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order=(A B); else order=(B A); fi
  for l in "${order[@]}"; do
    if [ "$l" = A ]; then run A "${bins[0]}"; else run B "${bins[1]}"; fi
  done
done
python3 - "$work/runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for label in "AB":
    mine = [r for r in rows if r[0] == label]
    med = [statistics.median(float(r[i]) for r in mine) for i in (1, 2, 3)]
    print(f"{label} median: {med[0]:.0f} req/s, {med[1]:.1f} CPU µs/req, busiest loop {med[2]:.0f}%")
a = statistics.median(float(r[1]) for r in rows if r[0] == "A")
b = statistics.median(float(r[1]) for r in rows if r[0] == "B")
print(f"B over A: {b / a:.3f}x req/s")
EOF
