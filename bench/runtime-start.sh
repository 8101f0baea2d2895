#!/usr/bin/env bash
# Worker start as `warden serve` does it for a live release: open the release from the
# vault (every segment authenticated, every digest checked), hand the model to a new
# worker in a sealed memfd, lock the worker down, load the model, wait for Ready. Read
# from the `start_ms` of each `runtime.worker-start` ledger record, over RUNS starts of
# `warden serve` on one quickstart node (the demo model, 563 bytes); the median and the
# slowest are printed. The baseline without the vault (spawn, lock down, load) is
# `cargo run --release -p runtime --example runtime_bench`.
# Usage: bench/runtime-start.sh   RUNS (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
cargo build --release --locked -q -p warden
warden="$CARGO_TARGET_DIR/release/warden"
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-start-bench.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# Starts `warden ARGS...` in the background and waits for its first line on stdout.
start() {
  "$warden" "$@" > "$work/out" 2> "$work/err" &
  pid=$!
  for _ in $(seq 600); do
    [ -s "$work/out" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
    sleep 0.1
  done
  echo "warden $1 did not start" >&2
  exit 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}

start quickstart --data-dir "$work/node" --listen 127.0.0.1:0 --admin-listen off --json
stop
for _ in $(seq "$runs"); do
  start serve --data-dir "$work/node" --listen 127.0.0.1:0 --admin-listen off
  stop
done
"$warden" ledger --data-dir "$work/node" export | python3 -c '
import json, statistics, sys
ms = [float(json.loads(l)["record"]["attrs"]["start_ms"]) for l in sys.stdin
      if json.loads(l)["record"]["kind"] == "runtime.worker-start"]
ms = ms[1:]  # the first start is the quickstart run
print(f"{len(ms)} worker starts (unseal + lock down + load): median {statistics.median(ms):.1f} ms, "
      f"slowest {max(ms):.1f} ms")
'
