#!/usr/bin/env bash
# Gateway speed: `warden serve` as an OpenAI-compatible reverse proxy, against nginx as a
# plain reverse proxy and against the LiteLLM proxy, side by side in one run, all in front
# of the same fast upstream on this machine.
#
#   bench/gateway.sh [SECONDS]          seconds per measured run (default 10)
#   CONNS=64 ROUNDS=3 WARMUP=3          connections of the throughput runs, rounds, warm-up
#                                       seconds per server
#   BIG_CONNS=1000                      connections of the memory run (0: no memory run)
#   NGINX_WORKERS=auto                  worker_processes of the nginx proxy
#   EVENT_LOOPS=0                       Warden's [serve] event_loops (0: one per core); with
#                                       NGINX_WORKERS, compares one loop or worker with one
#                                       per core (docs/PERFORMANCE.md)
#   LITELLM_WORKERS=$(nproc)            LiteLLM's --num_workers; LITELLM=0 leaves LiteLLM out
#   PROFILE=release                     the cargo profile Warden and the bare stack are built
#                                       with (production: the one to deploy, Cargo.toml)
#   WARDEN_BIN=/path/to/warden          use that binary instead of building one
#   DURABLE=1                           every answer waits for its ledger record's fsync
#   BARE=0                              leaves out the bare-stack proxy (below)
#   SETTLE_SECS=390                     on ext2/ext4 without a journal, how long after the
#                                       last run's cleanup to wait before starting (below)
#
# The servers, each started here on a free loopback port, under a temporary directory:
# - upstream: an nginx (one worker process) that answers POST /v1/chat/completions with a
#   fixed chat completion (with a usage object) and GET /v1/models
#   (bench/gateway/upstream.conf). Every other server proxies to it.
# - warden: `warden serve` on a node made with `warden init`, with the upstream as an
#   OpenAI backend serving model "bench" and everything on (bench/gateway/warden.toml):
#   TLS 1.3 with a self-signed P-256 certificate, an API key for every request, the default
#   Cedar policy, the input checks and guards, answer shaping, rate limits, a token quota and
#   concurrency limits set so high that they never refuse but checked on every request, and
#   a ledger record of every request, queued before its answer and committed in groups
#   (the default; DURABLE=1 sets durable_before_answer, each answer waiting for its fsync).
#   It serves with one event loop per core.
# - nginx-tls, nginx-plain: one nginx (worker_processes NGINX_WORKERS, default auto: one per
#   core, like Warden) as a plain reverse proxy with a pool of keep-alive connections to the
#   upstream, terminating TLS 1.3 with Warden's certificate (nginx-tls), and on plain HTTP
#   for reference (nginx-plain); no authentication, no log (bench/gateway/nginx-proxy.conf).
# - bare: the floor under Warden's speed, Warden's own stack (tokio with one event loop per
#   core, rustls, hyper) as a reverse proxy with none of its layers (crates/gateway/examples/bare_proxy.rs), with
#   Warden's certificate: what the stack costs, told apart from what the layers cost.
# - litellm: the LiteLLM proxy (bench/gateway/requirements.txt pins it; its own venv,
#   bench/.venv-litellm) with a master key, no database, LITELLM_WORKERS uvicorn workers,
#   logging at ERROR, on plain HTTP (in its favour) (bench/gateway/litellm.yaml).
#
# Every request is one small chat completion for model "bench", a POST with a JSON body
# and an `Authorization: Bearer` header (bench/gateway/chat.lua): Warden's API key, or
# LiteLLM's master key for LiteLLM; the nginx servers ignore it. Neither key is printed.
#
# How it runs: each server first answers one request (HTTP 200 and an answer with
# `choices`); then gets WARMUP seconds of load (not counted); then ROUNDS rounds. Each
# round runs, one server after the other: the throughput runs (wrk -t2 -cCONNS against
# warden, bare, nginx-tls, nginx-plain, litellm and the upstream itself), then the latency runs
# (wrk -t1 -c1 against the upstream itself, warden and nginx-tls); the order is reversed
# every other round, so that whatever else the machine is doing falls on all alike. wrk
# shares the cores with the servers. Last, the memory run: wrk -t2 -cBIG_CONNS against
# warden for SECONDS, with Warden's peak RSS reset just before (/proc/PID/clear_refs), its
# RSS, open descriptors and established connections sampled every 0.25 s, then VmHWM read
# from /proc/PID/status. `ulimit -n` is raised for everything started here.
#
# How to read the output: one line per measured run on stderr as it goes; then on stdout
# the machine, versions and settings, a table per kind of run with each server's median
# req/s, p50 and p99 latency over the rounds (and the server's CPU time per request, all
# its processes, from /proc), then the four targets with the figures they are judged on
# and met / NOT MET:
#   1. warden req/s >= 0.8x nginx-tls req/s (medians of the throughput runs); the ratio
#      of each round's two runs, back to back, is shown beside it;
#   2. added latency (warden minus upstream, wrk -t1 -c1, the median of the per-round
#      differences): p50 <= 0.3 ms, p99 <= 1 ms; both raw figures are shown;
#   3. warden req/s >= 50x litellm req/s;
#   4. warden's VmHWM during the memory run < 150 MiB, with every connection accepted.
# A run that got any response with a status of 400 or more (wrk counts those; none of
# these servers redirects, and the check request must be a 200) or any socket error
# (connect, read, write, timeout) is shown as ERRORS with the counts, is left out of the
# medians, and makes the script exit 1; so does a memory run in which Warden did not
# accept every connection (its stderr's accept errors, such as EMFILE, are shown).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${CONNS:-64}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-3}
big_conns=${BIG_CONNS:-1000}
nginx_workers=${NGINX_WORKERS:-auto}
event_loops=${EVENT_LOOPS:-0}
litellm_workers=${LITELLM_WORKERS:-$(nproc)}
with_litellm=${LITELLM:-1}
with_bare=${BARE:-1}
profile=${PROFILE:-release}
for n in "$secs" "$conns" "$rounds" "$litellm_workers"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS, CONNS, ROUNDS and LITELLM_WORKERS must be positive integers" >&2; exit 1; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "WARMUP must be a whole number of seconds" >&2; exit 1; }
[[ $big_conns =~ ^[0-9]+$ ]] || { echo "BIG_CONNS must be a whole number" >&2; exit 1; }
[[ $nginx_workers =~ ^(auto|[1-9][0-9]*)$ ]] || { echo "NGINX_WORKERS must be auto or a positive integer" >&2; exit 1; }
[[ $event_loops =~ ^[0-9]{1,3}$ ]] || { echo "EVENT_LOOPS must be a whole number (0: one per core)" >&2; exit 1; }
[[ $with_litellm =~ ^[01]$ ]] || { echo "LITELLM must be 0 or 1" >&2; exit 1; }
[[ $with_bare =~ ^[01]$ ]] || { echo "BARE must be 0 or 1" >&2; exit 1; }
[[ $profile =~ ^[a-z][a-z0-9-]*$ ]] || { echo "PROFILE must be a cargo profile name" >&2; exit 1; }
# Cargo writes the dev profile's build to debug/, every other one to a folder of its name.
profile_dir=$profile
[ "$profile" != dev ] || profile_dir=debug
# What the output says Warden is: the profile built here, or the binary given.
build="profile $profile"
[ -z "${WARDEN_BIN:-}" ] || build="WARDEN_BIN $WARDEN_BIN"
[ "$conns" -ge 2 ] || { echo "CONNS must be at least 2 (one per wrk thread)" >&2; exit 1; }
[ "$big_conns" -eq 0 ] || [ "$big_conns" -ge 2 ] || { echo "BIG_CONNS must be 0 or at least 2" >&2; exit 1; }

dir=bench/gateway
venv=bench/.venv-litellm
model=bench
# The request of every run and of the checks.
export BENCH_BODY='{"model":"bench","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}'

for tool in python3 curl openssl ps setsid ss sed; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
. bench/lib/packages.sh
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
nginx_bin=$(find_nginx)
[ -n "$nginx_bin" ] || need_apt+=(nginx)
install_packages "${need_apt[@]}"
[ -n "$nginx_bin" ] || nginx_bin=$(find_nginx)
[ -x "$nginx_bin" ] || { echo "no nginx binary after installing it" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 1; }

# LiteLLM's own venv, made again whenever requirements.txt changes; its .gitignore keeps it
# out of git.
if [ "$with_litellm" = 1 ] && ! cmp -s "$dir/requirements.txt" "$venv/requirements.txt"; then
  echo "installing LiteLLM into $venv (pip)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  echo '*' >"$venv/.gitignore"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
  cp "$dir/requirements.txt" "$venv/requirements.txt"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
if [ -n "${WARDEN_BIN:-}" ]; then
  warden=$WARDEN_BIN
else
  cargo build --profile "$profile" --locked -q -p warden
  warden="$CARGO_TARGET_DIR/$profile_dir/warden"
fi
[ -x "$warden" ] || { echo "no warden binary at $warden" >&2; exit 1; }
if [ "$with_bare" = 1 ]; then
  cargo build --profile "$profile" --locked -q -p gateway --example bare_proxy
  bare="$CARGO_TARGET_DIR/$profile_dir/examples/bare_proxy"
  [ -x "$bare" ] || { echo "no bare_proxy binary at $bare" >&2; exit 1; }
fi

# Descriptors: the memory run needs BIG_CONNS in Warden (and as many upstream connections
# at worst) and BIG_CONNS in wrk. Raise the soft limit as far as the hard one allows; a
# limit still too low is reported with the memory run, not worked around.
want_nofile=$((2 * big_conns + 1024))
hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" = unlimited ] || [ "$hard_nofile" -ge 65536 ]; then
  nofile=65536
else
  nofile=$hard_nofile
fi
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$nofile" ]; then ulimit -n "$nofile"; fi
nofile=$(ulimit -Sn)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$want_nofile" ]; then
  echo "warning: open files limited to $nofile (hard limit $hard_nofile); the memory run with" \
    "$big_conns connections wants about $want_nofile" >&2
fi
[ "$nofile" = unlimited ] && nofile=65536

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-gateway-bench.XXXXXX")
# Warden's ledger syncs its records (before the answer with DURABLE=1): on tmpfs that
# costs nothing, which would flatter it. Said in the output; TMPDIR chooses the place.
work_fs=$(stat -f -c %T "$work")
# ext2, ext3 and ext4 share one magic number; /proc/fs/jbd2 lists the devices that have a
# journal. Without one, ext4 skips inodes freed in the last few minutes on every file it
# creates, which the ledger's tile files pay for.
if [ "$work_fs" = ext2/ext3 ]; then
  work_dev=$(df --output=source "$work" | tail -n 1)
  if [ -e "/proc/fs/jbd2/${work_dev#/dev/}-8" ]; then
    work_fs="ext3/ext4 with a journal"
  else
    work_fs="ext2/ext4 without a journal"
  fi
fi
# The last run's cleanup freed the tens of thousands of inodes of its ledger's tiles. On a
# filesystem without a journal, ext4 passes over every inode freed in the last minute (six
# minutes while the inode's table block is dirty again, as the next files' creation makes
# it) each time it creates a file: Warden's tile files would pay for the previous run.
# Wait that out (SETTLE_SECS, default 390; 0 does not wait).
settle_mark="${XDG_CACHE_HOME:-$HOME/.cache}/warden-bench/last-cleanup"
settle_secs=${SETTLE_SECS:-390}
[[ $settle_secs =~ ^[0-9]{1,5}$ ]] || { echo "SETTLE_SECS must be a number of seconds" >&2; exit 2; }
settled=0
last_cleanup=$(cat "$settle_mark" 2>/dev/null || true)
if [ "$work_fs" = "ext2/ext4 without a journal" ] && [[ $last_cleanup =~ ^[0-9]{1,12}$ ]]; then
  since=$(($(date +%s) - last_cleanup))
  if [ "$since" -ge 0 ] && [ "$since" -lt "$settle_secs" ]; then
    settled=$((settle_secs - since))
    echo "waiting ${settled} s: the last run's cleanup freed its ledger's inodes ${since} s ago on a filesystem without a journal (SETTLE_SECS=0 does not wait)" >&2
    sleep "$settled"
  fi
fi
# mimalloc leaves its memory in small pages; the rest of the process follows this setting.
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
[ "$work_fs" != tmpfs ] || echo "warning: $work is on tmpfs: Warden's ledger syncs cost nothing there" >&2
declare -A pid=()
# Every server runs under setsid, in a process group of its own (nginx's and uvicorn's
# workers are its children): stop() ends the whole group, gracefully first.
. bench/lib/procs.sh
sampler_pid=
cleanup() {
  [ -z "$sampler_pid" ] || { kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; }
  for name in litellm nginx-proxy bare warden upstream; do
    stop "${pid[$name]:-}"
  done
  rm -rf "$work"
  # The next run waits for ext4 to forget these inodes (above).
  if [ "$work_fs" = "ext2/ext4 without a journal" ]; then
    sync -f "$(dirname "$work")" 2>/dev/null || true
    mkdir -p "$(dirname "$settle_mark")" && date +%s >"$settle_mark"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six distinct free loopback ports, chosen now: each bound at once, then released.
if ! read -r upstream_port warden_port tls_port plain_port litellm_port bare_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))') || [ -z "${bare_port:-}" ]; then
  echo "could not find six free ports" >&2
  exit 1
fi

wait_for() { # NAME SECONDS LOG command...: until the command succeeds
  local name=$1 limit=$2 log=$3 deadline
  shift 3
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ! alive "${pid[$name]}" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name exited, or was not ready within $limit s; its log:" >&2
      tail -n 40 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# nginx runs its workers as an unprivileged user when started as root.
nginx_user=
if [ "$(id -u)" -eq 0 ]; then
  nginx_user="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
  chmod 0711 "$work"
fi
# Each nginx worker: the memory run's connections twice over (client and upstream sides),
# and room to spare, within the descriptor limit.
worker_connections=$((2 * big_conns + 4096))
[ "$worker_connections" -le "$nofile" ] || worker_connections=$nofile
render() { # TEMPLATE OUT KEY=VALUE...
  local template=$1 out=$2 kv
  shift 2
  local args=()
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$template" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    echo "internal: $out has placeholders left: $(grep -o '@[A-Z_]*@' "$out" | sort -u | tr '\n' ' ')" >&2
    exit 1
  fi
}
start_nginx() { # NAME TEMPLATE KEY=VALUE...
  local name=$1 template=$2 d="$work/$1"
  shift 2
  mkdir -p "$d"
  chmod 0755 "$d"
  render "$template" "$d/nginx.conf" "DIR=$d" "USER=$nginx_user" "NOFILE=$nofile" \
    "WORKER_CONNECTIONS=$worker_connections" "$@"
  "$nginx_bin" -t -q -p "$d" -e "$d/error.log" -c "$d/nginx.conf" 2>"$d/test.log" || {
    echo "$name: nginx refuses its configuration:" >&2
    cat "$d/test.log" >&2
    exit 1
  }
  setsid "$nginx_bin" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
  pid[$name]=$!
}

echo "starting the upstream (nginx, 1 worker) on port $upstream_port" >&2
start_nginx upstream "$dir/upstream.conf" "PORT=$upstream_port"
wait_for upstream 30 "$work/upstream/error.log" curl -sf -o /dev/null "http://127.0.0.1:$upstream_port/v1/models"

# Warden's node: `warden init`, a certificate (nginx-tls serves the same one), the
# upstream, an API key for principal "bench" scoped to the model.
echo "starting warden on port $warden_port" >&2
node="$work/node"
mkdir -m 0700 "$work/secret"
WARDEN_DATA="$node" "$warden" init --json >"$work/secret/init.json" 2>"$work/init.err" || {
  echo "warden init failed:" >&2
  cat "$work/init.err" >&2
  exit 1
}
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$work/secret/init.json" \
  >"$work/secret/admin.token" || { echo "warden init printed no admin token" >&2; exit 1; }
mkdir -p "$node/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$node/tls/key.pem" -out "$node/tls/cert.pem" >/dev/null 2>"$work/openssl.err" || {
  echo "openssl could not make the certificate:" >&2
  cat "$work/openssl.err" >&2
  exit 1
}
chmod 0600 "$node/tls/key.pem"
ca_cert="$node/tls/cert.pem"
render "$dir/warden.toml" "$work/warden-serve.toml" "UPSTREAM_PORT=$upstream_port"
cat "$work/warden-serve.toml" >>"$node/warden.toml"
# `warden init` writes no [serve] table: this one is the only one.
printf '\n[serve]\nevent_loops = %s\n' "$event_loops" >>"$node/warden.toml"
[ "${DURABLE:-0}" != 1 ] || printf 'durable_before_answer = true\n' >>"$node/warden.toml"
WARDEN_DATA="$node" WARDEN_TOKEN_FILE="$work/secret/admin.token" "$warden" apikey create \
  --principal bench --models "$model" --json >"$work/secret/apikey.json" 2>"$work/apikey.err" || {
  echo "warden apikey create failed:" >&2
  cat "$work/apikey.err" >&2
  exit 1
}
api_key=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["key"])' "$work/secret/apikey.json") ||
  { echo "warden apikey create printed no key" >&2; exit 1; }
setsid "$warden" serve --data-dir "$node" --listen "127.0.0.1:$warden_port" --admin-listen off \
  >"$work/warden.out" 2>"$work/warden.err" &
pid[warden]=$!
wait_for warden 60 "$work/warden.err" grep -q '^listening on ' "$work/warden.out"
[ "$(cat "/proc/${pid[warden]}/comm" 2>/dev/null)" = warden ] ||
  { echo "internal: process ${pid[warden]} is not warden" >&2; exit 1; }

echo "starting nginx as a proxy (worker_processes $nginx_workers) on ports $tls_port (TLS) and $plain_port" >&2
start_nginx nginx-proxy "$dir/nginx-proxy.conf" "WORKERS=$nginx_workers" \
  "UPSTREAM_PORT=$upstream_port" "TLS_PORT=$tls_port" "PLAIN_PORT=$plain_port" \
  "CERT=$node/tls/cert.pem" "KEY=$node/tls/key.pem"
wait_for nginx-proxy 30 "$work/nginx-proxy/error.log" \
  curl -sf -o /dev/null "http://127.0.0.1:$plain_port/v1/models"

if [ "$with_bare" = 1 ]; then
  echo "starting the bare-stack proxy on port $bare_port" >&2
  setsid "$bare" "$node/tls/cert.pem" "$node/tls/key.pem" "127.0.0.1:$bare_port" \
    "http://127.0.0.1:$upstream_port" >"$work/bare.out" 2>"$work/bare.err" &
  pid[bare]=$!
  wait_for bare 30 "$work/bare.err" grep -q '^listening on ' "$work/bare.out"
fi

declare -A url key
url[upstream]="http://127.0.0.1:$upstream_port/v1/chat/completions"
url[warden]="https://127.0.0.1:$warden_port/v1/chat/completions"
url[nginx-tls]="https://127.0.0.1:$tls_port/v1/chat/completions"
url[nginx-plain]="http://127.0.0.1:$plain_port/v1/chat/completions"
url[bare]="https://127.0.0.1:$bare_port/v1/chat/completions"
for name in upstream warden bare nginx-tls nginx-plain; do key[$name]=$api_key; done
# The servers whose CPU time a run is charged with.
declare -A server=([upstream]=upstream [warden]=warden [bare]=bare [nginx-tls]=nginx-proxy [nginx-plain]=nginx-proxy [litellm]=litellm)
tp_names=(warden)
[ "$with_bare" = 1 ] && tp_names+=(bare)
tp_names+=(nginx-tls nginx-plain)

if [ "$with_litellm" = 1 ]; then
  echo "starting litellm ($litellm_workers workers) on port $litellm_port" >&2
  key[litellm]="sk-$(openssl rand -hex 24)"
  render "$dir/litellm.yaml" "$work/litellm.yaml" "UPSTREAM_PORT=$upstream_port"
  LITELLM_MASTER_KEY=${key[litellm]} LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True \
    setsid "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$litellm_port" \
    --num_workers "$litellm_workers" >"$work/litellm.log" 2>&1 &
  pid[litellm]=$!
  wait_for litellm 180 "$work/litellm.log" curl -sf -o /dev/null "http://127.0.0.1:$litellm_port/health/liveliness"
  url[litellm]="http://127.0.0.1:$litellm_port/v1/chat/completions"
  tp_names+=(litellm)
fi
tp_names+=(upstream)
lat_names=(upstream warden nginx-tls)

# One request each before any load: HTTP 200 and an answer with choices.
check() { # NAME
  local name=$1 code
  code=$(curl -sS --max-time 30 --cacert "$ca_cert" -o "$work/$name.check.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' -H @<(printf 'Authorization: Bearer %s\n' "${key[$name]}") \
    --data-binary "$BENCH_BODY" "${url[$name]}") || { echo "$name: the check request failed" >&2; exit 1; }
  if [ "$code" != 200 ]; then
    echo "$name answered the check request with HTTP $code:" >&2
    head -c 2000 "$work/$name.check.json" >&2
    echo >&2
    exit 1
  fi
  python3 - "$work/$name.check.json" "$name" <<'PY'
import json, sys
answer, name = sys.argv[1:]
try:
    r = json.load(open(answer))
    ok = (isinstance(r["choices"], list) and r["choices"]
          and isinstance(r["choices"][0]["message"]["content"], str))
except (ValueError, KeyError, TypeError, IndexError):
    ok = False
if not ok:
    sys.exit(f"{name}: the answer to the check request has no choices:\n" + open(answer).read()[:2000])
print(f"{name}: check request answered 200 with choices", file=sys.stderr)
PY
}
for name in "${tp_names[@]}"; do check "$name"; done
models_code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$upstream_port/v1/models")
[ "$models_code" = 200 ] || { echo "the upstream answered GET /v1/models with HTTP $models_code" >&2; exit 1; }

# CPU time (clock ticks, user + system) of every process in a server's session.
cpu_ticks() {
  local s=${pid[$1]} total=0 p t
  for p in $(ps -s "$s" -o pid= 2>/dev/null); do
    # utime and stime: the 14th and 15th fields, the 12th and 13th after "PID (COMM) ".
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

load() { # NAME MODE SECONDS OUTFILE; MODE is tp (-t2 -cCONNS), lat (-t1 -c1) or big (-t2 -cBIG_CONNS)
  local name=$1 mode=$2 t=$3 out=$4 threads c before after
  case $mode in
    tp) threads=2 c=$conns ;;
    lat) threads=1 c=1 ;;
    big) threads=2 c=$big_conns ;;
  esac
  before=$(cpu_ticks "${server[$name]}")
  if ! BENCH_API_KEY=${key[$name]} wrk -t"$threads" -c"$c" -d"${t}s" --timeout 10s --latency \
    -s "$dir/chat.lua" "${url[$name]}" >"$out" 2>&1; then
    echo "wrk failed against $name:" >&2
    cat "$out" >&2
    exit 1
  fi
  after=$(cpu_ticks "${server[$name]}")
  echo "CPU_TICKS $((after - before))" >>"$out"
  grep -q '^RESULT ' "$out" || { echo "wrk printed no result line against $name:" >&2; cat "$out" >&2; exit 1; }
}
summary_line() { # FILE
  echo "$(grep -E '^Requests/sec' "$1" | tr -s ' ')" \
    "$(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$1" | tr -s ' ' | tr '\n' ' ' || true)"
}

rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
idle_rss=$(rss_kib "${pid[warden]}" VmRSS)

if [ "$warmup" -gt 0 ]; then
  for name in "${tp_names[@]}"; do
    echo "warm-up: $name, ${warmup} s" >&2
    load "$name" tp "$warmup" "$work/warmup-$name.txt"
    if grep -qE '^ *(Non-2xx or 3xx responses|Socket errors):' "$work/warmup-$name.txt"; then
      echo "warm-up: $name had errors: $(summary_line "$work/warmup-$name.txt")" >&2
    fi
  done
fi

reverse() { local -n a=$1; local i out=(); for ((i = ${#a[@]} - 1; i >= 0; i--)); do out+=("${a[i]}"); done; a=("${out[@]}"); }
for ((r = 1; r <= rounds; r++)); do
  tp_order=("${tp_names[@]}")
  lat_order=("${lat_names[@]}")
  if ((r % 2 == 0)); then reverse tp_order; reverse lat_order; fi
  for name in "${tp_order[@]}"; do
    load "$name" tp "$secs" "$work/run-$r-tp-$name.txt"
    echo "round $r, throughput, $name: $(summary_line "$work/run-$r-tp-$name.txt")" >&2
  done
  for name in "${lat_order[@]}"; do
    load "$name" lat "$secs" "$work/run-$r-lat-$name.txt"
    echo "round $r, latency, $name: $(summary_line "$work/run-$r-lat-$name.txt")" >&2
  done
done
rounds_hwm=$(rss_kib "${pid[warden]}" VmHWM)
for name in "${!pid[@]}"; do
  alive "${pid[$name]}" || { echo "$name is no longer running after the rounds" >&2; exit 1; }
done

# The memory run: Warden's peak RSS reset, then BIG_CONNS connections for SECONDS.
big_json='{}'
if [ "$big_conns" -gt 0 ]; then
  wp=${pid[warden]}
  reset=no
  if echo 5 2>/dev/null >"/proc/$wp/clear_refs"; then reset=yes; fi
  errs_before=$(grep -c 'accepting a connection' "$work/warden.err" || true)
  : >"$work/samples"
  (
    while :; do
      printf '%s %s %s\n' "$(rss_kib "$wp" VmRSS)" "$(find "/proc/$wp/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
        "$(ss -Htn state established "( sport = :$warden_port )" 2>/dev/null | wc -l)" >>"$work/samples"
      sleep 0.25
    done
  ) &
  sampler_pid=$!
  echo "memory run: warden, $big_conns connections, $secs s" >&2
  load warden big "$secs" "$work/big-warden.txt"
  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=
  echo "memory run: $(summary_line "$work/big-warden.txt")" >&2
  grep 'accepting a connection' "$work/warden.err" | tail -n +"$((errs_before + 1))" >"$work/accept-errors.txt" || true
  big_json=$(python3 - "$work/samples" "$(rss_kib "$wp" VmHWM)" "$(rss_kib "$wp" VmRSS)" "$reset" \
    "$(awk '/^Max open files/ { print $4 }' "/proc/$wp/limits")" "$work/accept-errors.txt" <<'PY'
import json, sys
samples, hwm, rss, reset, nofile, errors = sys.argv[1:]
rows = [list(map(int, l.split())) for l in open(samples) if len(l.split()) == 3]
lines = open(errors).read().splitlines()
print(json.dumps({"hwm_kib": int(hwm), "rss_after_kib": int(rss), "reset": reset == "yes",
                  "max_rss_kib": max((r[0] for r in rows), default=0),
                  "max_fds": max((r[1] for r in rows), default=0),
                  "max_established": max((r[2] for r in rows), default=0),
                  "samples": len(rows), "nofile": nofile,
                  "accept_errors": len(lines), "accept_error_first": lines[0] if lines else ""}))
PY
  )
fi

if [ -s "$work/warden.err" ]; then
  echo "warden's stderr ($(wc -l <"$work/warden.err") lines), the last ones:" >&2
  tail -n 5 "$work/warden.err" >&2
fi
echo "command: CONNS=$conns ROUNDS=$rounds WARMUP=$warmup BIG_CONNS=$big_conns NGINX_WORKERS=$nginx_workers EVENT_LOOPS=$event_loops DURABLE=${DURABLE:-0}" \
  "BARE=$with_bare LITELLM=$with_litellm LITELLM_WORKERS=$litellm_workers bench/gateway.sh $secs"
echo "machine: $(nproc) cores; transparent huge pages ${thp:-?}; load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
big_desc="memory run -t2 -c$big_conns"
[ "$big_conns" -gt 0 ] || big_desc="no memory run"
echo "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'): throughput runs -t2 -c$conns, latency runs -t1 -c1," \
  "$big_desc; $secs s per run, $rounds rounds, ${warmup} s warm-up; ulimit -n $nofile"
echo "warden: $("$warden" --version 2>/dev/null || echo '?') ($build), $(grep -lxE 'serve-[0-9]+' /proc/"${pid[warden]}"/task/*/comm | wc -l)" \
  "event loops ($([ "$event_loops" = 0 ] && echo one per core || echo "EVENT_LOOPS=$event_loops")) and its ledger threads, data directory on $work_fs$([ "$settled" = 0 ] || echo " (waited $settled s for the last run's freed inodes)");" \
  "TLS $(openssl s_client -connect "127.0.0.1:$warden_port" </dev/null 2>/dev/null | grep -m1 -o 'TLSv1.3, Cipher is [A-Z0-9_]*' || echo '?')"
echo "nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), proxy worker_processes $nginx_workers" \
  "($(($(ps --ppid "${pid[nginx-proxy]}" -o pid= | wc -l))) workers), upstream worker_processes 1;" \
  "TLS $(openssl s_client -connect "127.0.0.1:$tls_port" </dev/null 2>/dev/null | grep -m1 -o 'TLSv1.3, Cipher is [A-Z0-9_]*' || echo '?')"
[ "$with_litellm" = 1 ] && echo "litellm: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))'), $litellm_workers uvicorn workers, plain HTTP"
echo
python3 - "$work" "$rounds" "$idle_rss" "$rounds_hwm" "$big_conns" "$big_json" "$(getconf CLK_TCK)" \
  "${tp_names[*]}" "${lat_names[*]}" <<'PY'
import json, re, statistics, sys
work, rounds, idle, rounds_hwm, big_conns, big, hz, tp_names, lat_names = sys.argv[1:]
rounds, big_conns, hz = int(rounds), int(big_conns), int(hz)
big = json.loads(big)
tp_names, lat_names = tp_names.split(), lat_names.split()

def parse(path):
    text = open(path).read()
    res = json.loads(re.search(r"^RESULT (\{.*\})$", text, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    status = max(res["status_errors"], int(non2xx.group(1)) if non2xx else 0)
    socket = max(res["socket_errors"], sum(map(int, sock.groups())) if sock else 0)
    ticks = int(re.search(r"^CPU_TICKS (\d+)$", text, re.M).group(1))
    n = res["requests"]
    return {"rps": n / (res["duration_us"] / 1e6), "p50": res["p50_us"] / 1e3, "p99": res["p99_us"] / 1e3,
            "max": res["max_us"] / 1e3,
            "cpu_us": ticks / hz * 1e6 / n if n else 0.0, "errors": status + socket,
            "status": status, "socket": socket, "res": res}

runs = {(m, n): [parse(f"{work}/run-{r}-{m}-{n}.txt") for r in range(1, rounds + 1)]
        for m, names in (("tp", tp_names), ("lat", lat_names)) for n in names}

def median(xs):
    clean = [x for x in xs if not x["errors"]]
    if not clean:
        return None
    return {k: statistics.median(x[k] for x in clean) for k in ("rps", "p50", "p99", "max", "cpu_us")}

def cells(x):
    if x is None:
        return f"{'(no clean run)':>12}"
    return f"{x['rps']:>12,.0f} {x['p50']:>8.3f} {x['p99']:>8.3f} {x['max']:>8.1f} {x['cpu_us']:>10.0f}"

def errs(x):
    return f"ERRORS: {x['status']} statuses >= 400, {x['socket']} socket errors" if x["errors"] else ""

med = {}
for mode, names, title in (("tp", tp_names, "throughput (wrk -t2 -c{})"), ("lat", lat_names, "latency (wrk -t1 -c1)")):
    conns = re.search(r"(\d+) threads and (\d+) connections",
                      open(f"{work}/run-1-{mode}-{names[0]}.txt").read()).group(2)
    print(title.format(conns) + ": per round, then the median of the rounds without errors")
    print(f"{'server':<13}{'round':>6}{'req/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU µs/req':>10}")
    for n in names:
        for r, x in enumerate(runs[(mode, n)], 1):
            print(f"{n:<13}{r:>6} " + cells(x) + (f"  {errs(x)}" if x["errors"] else ""))
        med[(mode, n)] = median(runs[(mode, n)])
        print(f"{n:<13}{'median':>6} " + cells(med[(mode, n)]))
    print()
print("CPU µs/req: CPU time of all the server's processes during the run over the requests"
      " it answered; 1e6/(req/s) µs of one core is what the run had.\n")

verdicts = []
def verdict(ok):
    return "met" if ok else "NOT MET"

w, ng, ll = med[("tp", "warden")], med[("tp", "nginx-tls")], med.get(("tp", "litellm"))
if w and ng:
    ratio = w["rps"] / ng["rps"]
    verdicts.append(f"1. throughput: warden {w['rps']:,.0f} req/s, nginx-tls {ng['rps']:,.0f} req/s:"
                    f" {ratio:.2f}x (target >= 0.8x): {verdict(ratio >= 0.8)}")
    # The same round's runs, back to back, see the same machine: their ratios show how
    # much of the verdict is the machine's load drifting between rounds.
    paired = [x["rps"] / y["rps"] for x, y in zip(runs[("tp", "warden")], runs[("tp", "nginx-tls")])
              if not x["errors"] and not y["errors"]]
    if paired:
        verdicts.append("   per round, warden over nginx-tls in the same round: "
                        + ", ".join(f"{r:.2f}x" for r in paired)
                        + f" (median {statistics.median(paired):.2f}x)")
else:
    verdicts.append("1. throughput against nginx-tls: not judged, no clean throughput run of both")
bare = med.get(("tp", "bare"))
if w and ng and bare:
    verdicts.append(f"   for reference, the bare stack (no layers): {bare['rps']:,.0f} req/s,"
                    f" {bare['rps'] / ng['rps']:.2f}x nginx-tls; warden is {w['rps'] / bare['rps']:.2f}x"
                    f" the bare stack, at {w['cpu_us']:.0f} against {bare['cpu_us']:.0f} CPU µs/req")
pairs = [(u, x) for u, x in zip(runs[("lat", "upstream")], runs[("lat", "warden")])
         if not u["errors"] and not x["errors"]]
if pairs:
    a50 = statistics.median(x["p50"] - u["p50"] for u, x in pairs)
    a99 = statistics.median(x["p99"] - u["p99"] for u, x in pairs)
    wu, wl = med[("lat", "upstream")], med[("lat", "warden")]
    verdicts.append(f"2. added latency, one connection: p50 {a50:.3f} ms (warden {wl['p50']:.3f} ms,"
                    f" upstream {wu['p50']:.3f} ms; target <= 0.3 ms): {verdict(a50 <= 0.3)};"
                    f" p99 {a99:.3f} ms (warden {wl['p99']:.3f} ms, upstream {wu['p99']:.3f} ms;"
                    f" target <= 1 ms): {verdict(a99 <= 1.0)}")
else:
    verdicts.append("2. added latency: not judged, no round with clean latency runs of both warden and upstream")
if w and ll:
    ratio = w["rps"] / ll["rps"]
    verdicts.append(f"3. against LiteLLM: warden {w['rps']:,.0f} req/s, litellm {ll['rps']:,.0f} req/s:"
                    f" {ratio:.1f}x (target >= 50x): {verdict(ratio >= 50)}")
elif "litellm" in tp_names:
    verdicts.append("3. against LiteLLM: not judged, no clean throughput run of both")
else:
    verdicts.append("3. against LiteLLM: not measured (LITELLM=0)")
bad = sum(x["errors"] > 0 for xs in runs.values() for x in xs)
if big_conns:
    b = parse(f"{work}/big-warden.txt")
    mib = big["hwm_kib"] / 1024
    accepted = big["max_established"] >= big_conns and not b["res"]["connect_errors"] and not big["accept_errors"]
    print(f"memory run (wrk -t2 -c{big_conns}): {b['rps']:,.0f} req/s, p50 {b['p50']:.2f} ms,"
          f" p99 {b['p99']:.2f} ms{', ' + errs(b) if b['errors'] else ''}")
    print(f"  warden RSS: idle at start {int(idle) / 1024:.1f} MiB; peak over the rounds (VmHWM)"
          f" {int(rounds_hwm) / 1024:.1f} MiB; peak in this run"
          f" ({'VmHWM after a reset' if big['reset'] else 'VmHWM, not reset: the peak since start'})"
          f" {mib:.1f} MiB, sampled VmRSS at most {big['max_rss_kib'] / 1024:.1f} MiB,"
          f" {big['rss_after_kib'] / 1024:.1f} MiB after")
    print(f"  connections: at most {big['max_established']} established on warden's port,"
          f" {big['max_fds']} open descriptors in warden (its limit {big['nofile']}), {big['samples']} samples;"
          f" wrk connect errors {b['res']['connect_errors']}, read {b['res']['read_errors']},"
          f" write {b['res']['write_errors']}, timeouts {b['res']['timeouts']}")
    if big["accept_errors"]:
        print(f"  warden's accept errors: {big['accept_errors']}, the first: {big['accept_error_first']}")
    print()
    verdicts.append(f"4. memory with {big_conns} connections: warden VmHWM {mib:.1f} MiB (target < 150 MiB):"
                    f" {verdict(mib < 150)}; every connection accepted: {'yes' if accepted else 'NO'}")
    if b["errors"] or not accepted:
        bad += 1
else:
    verdicts.append("4. memory: not measured (BIG_CONNS=0)")
print("targets:")
for v in verdicts:
    print("  " + v)
if bad:
    sys.exit(f"\n{bad} run(s) had errors (statuses >= 400, socket errors, or connections Warden did not"
             " accept): they are left out of the medians; the result does not stand as is")
PY
