#!/usr/bin/env bash
# Serving speed: requests per second of Warden's demo (`warden quickstart`: the iris model
# behind the KServe v2 JSON API) against the usual alternative, a FastAPI app on uvicorn
# that runs the same model with onnxruntime (bench/runtime-peer/server.py, one worker per
# core, uvloop and httptools, no access log), on the same machine, under the same load:
# wrk with 2 threads and CONNS keep-alive connections, each request one inference of one
# row (bench/runtime-peer/post.lua).
#
#   bench/runtime.sh [SECONDS]       seconds per measured run (default 10)
#   CONNS=16 ROUNDS=3 WARMUP=3       connections, rounds, warm-up seconds per server
#   PEER_ONLY=1 bench/runtime.sh     the peer alone: no cargo build, no warden
#   WARDEN_BIN=/path/to/warden       use that binary instead of building one
#
# Not like for like, and in the peer's favour: Warden terminates TLS 1.3, checks an API
# key, runs the model in a sandboxed worker process and writes a ledger record for every
# request; the peer speaks plain HTTP, ignores the key (it gets the same header all the
# same), runs the model in process and records nothing. Each answers as it does by
# default: the peer with the three probabilities, Warden with the label and its rounded
# score.
#
# How it runs: each server first answers one request, checked against
# examples/models/iris/golden.json; then gets WARMUP seconds of load (not counted); then
# ROUNDS rounds, each running wrk against one server and then the other (the order flips
# every round), so that whatever else the machine is doing falls on both alike. wrk shares
# the cores with the server under test, the same for both.
#
# How to read the output: one row per round with each server's req/s and its p50 and p99
# latency (from wrk --latency); then the medians over the rounds and the ratio of the
# req/s medians, warden/peer. A run that got any non-2xx/3xx response or socket error
# (connect, read, write, timeout) is shown as ERRORS with the count, is left out of the
# medians, and makes the script exit 1. Per-run progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${CONNS:-16}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-3}
peer_only=${PEER_ONLY:-0}
peer_workers=${PEER_WORKERS:-$(nproc)}
for n in "$secs" "$conns" "$rounds" "$peer_workers"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS, CONNS, ROUNDS and PEER_WORKERS must be positive integers" >&2; exit 1; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "WARMUP must be a whole number of seconds" >&2; exit 1; }
[ "$conns" -ge 2 ] || { echo "CONNS must be at least 2 (one per wrk thread)" >&2; exit 1; }

peer_dir=bench/runtime-peer
venv=bench/.venv-runtime-peer
golden=examples/models/iris/golden.json
# The request of every run and of the checks: golden.json's first input row.
export BENCH_BODY='{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'

for tool in python3 curl ps setsid; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing wrk (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is required: install it as root (apt-get install -y wrk) and run again" >&2
    exit 1
  fi
fi

# The peer's own venv, made again whenever requirements.txt changes.
if ! cmp -s "$peer_dir/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$peer_dir/requirements.txt"
  cp "$peer_dir/requirements.txt" "$venv/requirements.txt"
fi

if [ "$peer_only" != 1 ]; then
  if [ -n "${WARDEN_BIN:-}" ]; then
    warden=$WARDEN_BIN
  else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
    cargo build --release --locked -q -p warden
    warden="$CARGO_TARGET_DIR/release/warden"
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-runtime-bench.XXXXXX")
warden_pid=
peer_pid=
# Both servers run under setsid, each in a process group of its own (uvicorn's workers
# are its children): stop() ends the whole group, gracefully first.
. bench/lib/procs.sh
cleanup() {
  stop "$warden_pid"
  stop "$peer_pid"
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
peer_port=${PEER_PORT:-$(free_port)}
warden_port=${WARDEN_PORT:-$(free_port)}
while [ "$warden_port" = "$peer_port" ]; do warden_port=$(free_port); done

declare -A url
names=()
if [ "$peer_only" != 1 ]; then
  # `warden quickstart --json` prints one JSON line on stdout once it serves (url, api_key,
  # ca_cert, model, ...; the first line that starts with "{" is taken) and serves until
  # SIGTERM.
  setsid "$warden" quickstart --data-dir "$work/node" --listen "127.0.0.1:$warden_port" --admin-listen off --json \
    >"$work/warden.out" 2>"$work/warden.err" &
  warden_pid=$!
  deadline=$((SECONDS + 120))
  until grep -q '^{.*}$' "$work/warden.out"; do
    if ! alive "$warden_pid" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "warden quickstart exited, or printed no JSON line within 120 s; its stderr:" >&2
      cat "$work/warden.err" >&2
      exit 1
    fi
    sleep 0.2
  done
  if ! fields=$(python3 -c '
import json, sys
try:
    d = json.loads(next(l for l in open(sys.argv[1]) if l.startswith("{")))
except ValueError:
    sys.exit("not JSON")
for k in ("url", "api_key", "ca_cert", "model"):
    v = d.get(k) if isinstance(d, dict) else None
    if not (isinstance(v, str) and v and "\n" not in v):
        sys.exit(f"no usable {k!r}")
    print(v)
' "$work/warden.out"); then
    echo "warden quickstart's JSON line lacks url, api_key, ca_cert or model:" >&2
    cat "$work/warden.out" >&2
    exit 1
  fi
  { read -r warden_url; read -r api_key; read -r ca_cert; read -r model; } <<<"$fields"
  # The quickstart's default limits (600 requests a minute per principal) would refuse a
  # load test: serve the same node again with limits too high to bite, still checked on
  # every request.
  stop "$warden_pid"
  cat >>"$work/node/warden.toml" <<'TOML'

[serve.limits]
requests_per_minute = 1000000000
burst = 1000000
concurrent_per_principal = 8192
concurrent = 8192
TOML
  : >"$work/warden.out"
  setsid "$warden" serve --data-dir "$work/node" --listen "127.0.0.1:$warden_port" --admin-listen off \
    >"$work/warden.out" 2>"$work/warden.err" &
  warden_pid=$!
  deadline=$((SECONDS + 60))
  until grep -q '^listening on ' "$work/warden.out"; do
    if ! alive "$warden_pid" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "warden serve exited, or did not listen within 60 s; its stderr:" >&2
      cat "$work/warden.err" >&2
      exit 1
    fi
    sleep 0.2
  done
  url[warden]="${warden_url%/}/v2/models/$model/infer"
  export BENCH_API_KEY=$api_key
  names+=(warden)
else
  export BENCH_API_KEY=${BENCH_API_KEY:-wdk_unused_by_the_peer}
fi

setsid "$venv/bin/uvicorn" server:app --app-dir "$peer_dir" --host 127.0.0.1 --port "$peer_port" \
  --workers "$peer_workers" --loop uvloop --http httptools --no-access-log --log-level warning \
  >"$work/peer.log" 2>&1 &
peer_pid=$!
deadline=$((SECONDS + 60))
until curl -sf -o /dev/null "http://127.0.0.1:$peer_port/v2/health/ready"; do
  if ! alive "$peer_pid" || [ "$SECONDS" -ge "$deadline" ]; then
    echo "the peer did not become ready within 60 s; its log:" >&2
    cat "$work/peer.log" >&2
    exit 1
  fi
  sleep 0.2
done
url[peer]="http://127.0.0.1:$peer_port/v2/models/iris/infer"
names+=(peer)

# One request each before any load: HTTP 200 and the golden answer.
check() { # NAME [curl options]
  local name=$1 code
  shift
  code=$(curl -sS --max-time 10 -o "$work/$name.check.json" -w '%{http_code}' "$@" \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $BENCH_API_KEY" \
    --data-binary "$BENCH_BODY" "${url[$name]}") || { echo "$name: the check request failed" >&2; exit 1; }
  if [ "$code" != 200 ]; then
    echo "$name answered the check request with HTTP $code:" >&2
    cat "$work/$name.check.json" >&2
    echo >&2
    exit 1
  fi
  python3 - "$golden" "$work/$name.check.json" "$name" "$BENCH_BODY" <<'PY'
import json, sys
golden, answer, name, body = sys.argv[1:]
g = json.load(open(golden))
sent = json.loads(body)["inputs"][0]["data"]
assert all(abs(a - b) < 1e-6 for a, b in zip(sent, g["inputs"]["data"][:4])), "body is not golden row 0"
want, tol = g["outputs"]["data"][:3], g["tolerance"]
# The full probabilities (the peer), or Warden's default minimal output: the most likely
# class and its score rounded to two decimals.
best = max(range(3), key=lambda i: want[i])
try:
    r = json.load(open(answer))
    outs = {o["name"]: o for o in r["outputs"]}
    if "probabilities" in outs:
        out = outs["probabilities"]
        ok = (out["shape"] == [1, 3] and out["datatype"] == "FP32"
              and all(abs(a - b) <= tol for a, b in zip(out["data"], want)) and len(out["data"]) == 3)
    else:
        ok = (outs["label"]["data"] == [g["classes"][best]]
              and abs(outs["score"]["data"][0] - want[best]) <= 0.005 + tol)
except (ValueError, KeyError, TypeError, IndexError):
    ok = False
if not ok:
    sys.exit(f"{name}: wrong answer to the check request (want probabilities [1,3] FP32 {want}"
             f" or label {g['classes'][best]!r} with its rounded score):\n" + open(answer).read())
print(f"{name}: answer checked against golden.json", file=sys.stderr)
PY
}
[ "$peer_only" = 1 ] || check warden --cacert "$ca_cert"
check peer

load() { # NAME SECONDS OUTFILE
  if ! wrk -t2 -c"$conns" -d"$2s" --latency -s "$peer_dir/post.lua" "${url[$1]}" >"$3" 2>&1; then
    echo "wrk failed against $1:" >&2
    cat "$3" >&2
    exit 1
  fi
  if ! grep -q '^RESULT ' "$3"; then
    echo "wrk printed no result line against $1:" >&2
    cat "$3" >&2
    exit 1
  fi
}

if [ "$warmup" -gt 0 ]; then
  for name in "${names[@]}"; do
    echo "warm-up: $name, ${warmup} s" >&2
    load "$name" "$warmup" "$work/warmup-$name.txt"
    if grep -qE '^ *(Non-2xx or 3xx responses|Socket errors):' "$work/warmup-$name.txt"; then
      echo "warm-up: $name had errors:" >&2
      grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$work/warmup-$name.txt" >&2
    fi
  done
fi

for ((r = 1; r <= rounds; r++)); do
  order=("${names[@]}")
  if ((r % 2 == 0)) && [ "${#names[@]}" -eq 2 ]; then order=("${names[1]}" "${names[0]}"); fi
  for name in "${order[@]}"; do
    load "$name" "$secs" "$work/run-$r-$name.txt"
    echo "round $r, $name: $(grep -E '^Requests/sec' "$work/run-$r-$name.txt")" \
      "$(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$work/run-$r-$name.txt" | tr -s ' ' || true)" >&2
  done
done

echo "machine: $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: 2 threads, $conns connections, $secs s per run, $rounds rounds, ${warmup} s warm-up"
[ "$peer_only" = 1 ] || echo "warden: $("$warden" --version 2>/dev/null || echo '?'), ${url[warden]}"
echo "peer: uvicorn --workers $peer_workers, $("$venv/bin/python" -c 'import fastapi, uvicorn, onnxruntime
print(f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, onnxruntime {onnxruntime.__version__}")'), ${url[peer]}"
echo
python3 - "$work" "$rounds" "${names[@]}" <<'PY'
import json, re, statistics, sys
work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def run(r, name):
    text = open(f"{work}/run-{r}-{name}.txt").read()
    res = json.loads(re.search(r"^RESULT (\{.*\})$", text, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (max(res["status_errors"], int(non2xx.group(1)) if non2xx else 0)
              + max(res["socket_errors"], sum(map(int, sock.groups())) if sock else 0))
    return {"rps": res["requests"] / (res["duration_us"] / 1e6), "p50": res["p50_us"] / 1e3,
            "p99": res["p99_us"] / 1e3, "errors": errors}

runs = {n: [run(r, n) for r in range(1, rounds + 1)] for n in names}
cols = "".join(f" | {n + ' req/s':>14} {'p50 ms':>7} {'p99 ms':>7}" for n in names)
print(f"{'round':<7}{cols}")

def cells(x):
    if x is None:
        return f" | {'n/a':>14} {'':>7} {'':>7}"
    if x["errors"]:
        return f" | {'ERRORS ' + str(x['errors']):>14} {'':>7} {'':>7}"
    return f" | {x['rps']:>14.0f} {x['p50']:>7.2f} {x['p99']:>7.2f}"

for r in range(rounds):
    print(f"{r + 1:<7}" + "".join(cells(runs[n][r]) for n in names))
med = {}
for n in names:
    clean = [x for x in runs[n] if not x["errors"]]
    med[n] = ({k: statistics.median(x[k] for x in clean) for k in ("rps", "p50", "p99")}
              | {"errors": 0}) if clean else None
print(f"{'median':<7}" + "".join(cells(med[n]) for n in names))
if "warden" in names and med["warden"] and med["peer"]:
    ratio = med["warden"]["rps"] / med["peer"]["rps"]
    print(f"\nwarden/peer req/s (medians): {ratio:.2f}x (target: at least 3x)")
bad = sum(x["errors"] > 0 for n in names for x in runs[n])
if bad:
    sys.exit(f"\n{bad} run(s) had errors (non-2xx/3xx responses or socket errors): "
             "they are left out of the medians; the result does not stand as is")
PY
