#!/usr/bin/env bash
# Instructions per request on the event loops of `warden serve`, counted by valgrind
# (callgrind): a figure that does not move with the machine's load, for comparing builds
# side by side where CPU time per request is too noisy to tell a few per cent apart
# (docs/PERFORMANCE.md). It counts user-space instructions on the event-loop threads only:
# not the kernel's work (TCP, the system calls), not the ledger's threads (with one
# sequential client every ledger commit holds a single record, unlike a loaded server's),
# and an instruction is not a cycle (valgrind's CPU has no SHA extensions, so SHA-256 counts
# several times what it costs on a CPU that has them).
#
#   bench/gateway-instructions.sh [BIN...]   the binaries to measure, one after the other
#                                            (default: the build of PROFILE, built here)
#   PROFILE=release                          the cargo profile of that build (or production)
#   REQUESTS=1000 WARM=200                   requests counted, and those before them
#
# For each binary, two runs: WARM requests, then WARM + REQUESTS requests, each against a
# fresh node made as bench/gateway.sh makes it (`warden init`, a P-256 certificate, the API
# key, bench/gateway/warden.toml: TLS, the policy, the checks and guards, the limits, the
# ledger) in front of the same nginx upstream, over one keep-alive TLS connection, each
# request bench/gateway.sh's chat completion. The loops' instructions in the second run
# minus the first, divided by REQUESTS: start-up, the TLS handshake and shutdown cancel out.
# Every answer must be a 200, or the script stops.
set -euo pipefail
# A failure inside $(...) (a run, its client) stops the script, not only the substitution.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
requests=${REQUESTS:-1000}
warm=${WARM:-200}
for n in "$requests" "$warm"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "REQUESTS and WARM must be positive integers" >&2; exit 2; }
done

. bench/lib/packages.sh
. bench/lib/procs.sh
. bench/lib/gateway-node.sh
need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
nginx_bin=$(find_nginx)
[ -n "$nginx_bin" ] || need_apt+=(nginx)
install_packages "${need_apt[@]}"
[ -n "$nginx_bin" ] || nginx_bin=$(find_nginx)
[ -x "$nginx_bin" ] || { echo "no nginx binary after installing it" >&2; exit 1; }

bins=("$@")
if [ "${#bins[@]}" -eq 0 ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
  profile=${PROFILE:-release}
  [[ $profile =~ ^[a-z][a-z0-9-]*$ ]] || { echo "PROFILE must be a cargo profile name" >&2; exit 2; }
  cargo build --profile "$profile" --locked -q -p warden
  # Cargo writes the dev profile's build to debug/.
  out=$profile
  [ "$profile" != dev ] || out=debug
  bins=("$CARGO_TARGET_DIR/$out/warden")
fi
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "no binary at $b" >&2; exit 1; }; done

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-instructions.XXXXXX")
upstream_pid=
cleanup() {
  stop "$upstream_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r upstream_port warden_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

start_upstream "$work/upstream" "$upstream_port" "$nginx_bin"

# BIN COUNT: the event loops' instructions for start-up, COUNT requests and shutdown.
loops_instructions() {
  local bin=$1 count=$2 run node serve_pid key
  run=$(mktemp -d "$work/run.XXXXXX")
  node="$run/node"
  make_node "$bin" "$run" "$upstream_port"
  key=$(cat "$run/key")
  setsid valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$run/cg.%p" \
    "$bin" serve --data-dir "$node" --listen "127.0.0.1:$warden_port" --admin-listen off \
    >"$run/serve.out" 2>"$run/serve.err" &
  serve_pid=$!
  for _ in $(seq 600); do
    grep -q '^listening on ' "$run/serve.out" 2>/dev/null && break
    alive "$serve_pid" || { echo "warden serve exited:" >&2; tail -n 20 "$run/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^listening on ' "$run/serve.out" ||
    { echo "warden serve (under valgrind) was not listening within 60 s" >&2; exit 1; }
  BENCH_API_KEY=$key python3 - "$warden_port" "$count" <<'EOF'
import http.client, json, os, ssl, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16})
headers = {"Authorization": "Bearer " + os.environ["BENCH_API_KEY"], "Content-Type": "application/json"}
for _ in range(count):
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"an answer was {r.status}, not 200")
EOF
  stop "$serve_pid"
  # Each thread's profile; the event loops are the threads that ran the accept loop.
  local total=0 f s
  for f in "$run"/cg.*; do
    grep -aq 'gateway::server::accept_loop' "$f" || continue
    s=$(grep -a '^summary:' "$f" | awk '{print $2}')
    total=$((total + s))
  done
  [ "$total" -gt 0 ] || { echo "no event-loop profile in $run" >&2; exit 1; }
  rm -rf "$run"
  echo "$total"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(valgrind --version)"
echo "requests counted: $requests (after $warm)"
for b in "${bins[@]}"; do
  base=$(loops_instructions "$b" "$warm")
  more=$(loops_instructions "$b" $((warm + requests)))
  echo "$b: $(((more - base) / requests)) instructions per request on the event loops"
done
