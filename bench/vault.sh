#!/usr/bin/env bash
# Vault speed: AES-256-GCM sealing and opening on one core (in memory), and unsealing a
# file against reading its plaintext (`cat FILE > /dev/null`), side by side, warm cache.
# Usage: bench/vault.sh [MiB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
cargo build --release --locked -q -p vault --example vault_bench
bin="$CARGO_TARGET_DIR/release/examples/vault_bench"
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-vault-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" memory "$mib"
head -c "$((mib << 20))" /dev/urandom > "$work/plain.bin"
"$bin" seal "$work" "$work/plain.bin"
hyperfine -N --warmup 2 --runs "${RUNS:-10}" \
  -n "read plaintext (cat)" "cat $work/plain.bin" \
  -n "unseal (decrypt + authenticate)" "$bin unseal $work $work/plain.bin" \
  --export-json "$work/hyperfine.json" >&2
python3 - "$work/hyperfine.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
m = {x["command"]: x["median"] for x in r}
read, unseal = m["read plaintext (cat)"], m["unseal (decrypt + authenticate)"]
print(f"median: read {read*1e3:.1f} ms, unseal {unseal*1e3:.1f} ms, ratio {unseal/read:.2f}x")
PY
