#!/usr/bin/env bash
# Header-only formats cost their header, not their size. `warden scan` of a 10 GiB
# safetensors file: wall time (hyperfine median of 10 runs) and peak RSS
# (/usr/bin/time -v), with the safetensors library's own header read (safe_open, which
# also reads only the header) as the peer. The file is sparse, so it needs no disk space.
#
#   bench/scan-large.sh [SIZE_GIB]      # default 10; prints a markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
gib="${1:-10}"
out="$PWD/bench/out"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
mkdir -p "$out"
scripts/setup-test-env
cargo build --release --locked -p warden
warden="$CARGO_TARGET_DIR/release/warden"
py="$PWD/.venv/bin/python"
big="$out/big.safetensors"
trap 'rm -f "$big"' EXIT

# One F32 tensor of SIZE_GIB GiB, written per the safetensors format, data left sparse.
"$py" - "$big" "$gib" <<'PY'
import json, struct, sys
path, gib = sys.argv[1], int(sys.argv[2])
n = gib << 28
header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
header += b" " * (-len(header) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    f.truncate(8 + len(header) + n * 4)
PY

peer="$py -c \"from safetensors import safe_open; safe_open('$big', 'np').keys()\""
hyperfine --warmup 2 --runs 10 --export-json "$out/scan-large.json" \
  -n "warden scan" "$warden scan --quiet $big" \
  -n "safetensors.safe_open (peer)" "$peer" >/dev/null
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
w_rss=$(rss "$warden" scan --quiet "$big")
p_rss=$(rss sh -c "$peer")
"$py" - "$out/scan-large.json" "$gib" "$w_rss" "$p_rss" <<'PY'
import json, sys
res, gib, w_rss, p_rss = json.load(open(sys.argv[1]))["results"], sys.argv[2], sys.argv[3], sys.argv[4]
print(f"| {gib} GiB safetensors | median wall | peak RSS |")
print("|---|---|---|")
for r, rss in zip(res, [w_rss, p_rss]):
    print(f"| {r['command']} | {r['median'] * 1e3:.1f} ms | {int(rss) / 1024:.1f} MiB |")
PY
