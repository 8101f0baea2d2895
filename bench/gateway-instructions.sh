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
dir=bench/gateway

. bench/lib/packages.sh
. bench/lib/procs.sh
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

# The upstream: bench/gateway.sh's, one worker.
mkdir -p "$work/upstream"
chmod 0755 "$work" "$work/upstream"
nginx_user=
[ "$(id -u)" -ne 0 ] || nginx_user="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
sed -e "s|@DIR@|$work/upstream|g" -e "s|@USER@|$nginx_user|g" -e "s|@NOFILE@|1024|g" \
  -e "s|@WORKER_CONNECTIONS@|512|g" -e "s|@PORT@|$upstream_port|g" \
  "$dir/upstream.conf" >"$work/upstream/nginx.conf"
setsid "$nginx_bin" -p "$work/upstream" -e "$work/upstream/error.log" -c "$work/upstream/nginx.conf" \
  >/dev/null 2>&1 &
upstream_pid=$!
up=0
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$upstream_port/v1/models" && { up=1; break; }
  sleep 0.1
done
[ "$up" = 1 ] || { echo "the upstream (nginx) did not answer within 10 s:" >&2; tail -n 20 "$work/upstream/error.log" >&2; exit 1; }

# BIN COUNT: the event loops' instructions for start-up, COUNT requests and shutdown.
loops_instructions() {
  local bin=$1 count=$2 run node serve_pid key
  run=$(mktemp -d "$work/run.XXXXXX")
  node="$run/node"
  WARDEN_DATA="$node" "$bin" init --json >"$run/init.json"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$run/init.json" \
    >"$run/admin.token"
  mkdir -p "$node/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$node/tls/key.pem" -out "$node/tls/cert.pem" >/dev/null 2>&1
  chmod 0600 "$node/tls/key.pem"
  sed -e "s|@UPSTREAM_PORT@|$upstream_port|g" "$dir/warden.toml" >>"$node/warden.toml"
  WARDEN_DATA="$node" WARDEN_TOKEN_FILE="$run/admin.token" "$bin" apikey create \
    --principal bench --models bench --json >"$run/apikey.json"
  key=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["key"])' "$run/apikey.json")
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
