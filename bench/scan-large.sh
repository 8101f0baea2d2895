#!/usr/bin/env bash
# Header-only formats cost their header, not their size: `warden scan` of a 10 GiB
# safetensors file, wall time (hyperfine, median) and peak RSS (/usr/bin/time -v),
# side by side with modelaudit on the same file. The file is sparse, so it needs no disk;
# its data pages read as zeros, which is all a header-only scan must never touch.
#
#   bench/scan-large.sh [SIZE_GIB]      # default 10; writes bench/out/scan-large.md
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gib="${1:-10}"
out="$root/bench/out"
peers="$root/bench/.venv-peers"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
mkdir -p "$out"
cargo build --release --locked -p warden
warden="$CARGO_TARGET_DIR/release/warden"
big="$out/big.safetensors"

# One F32 tensor of gib GiB: shape [gib * 2^28], offsets [0, gib * 2^30].
python3 - "$big" "$gib" <<'PY'
import json, os, struct, sys
path, gib = sys.argv[1], int(sys.argv[2])
n = gib << 28
header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
header += b" " * (-len(header) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    f.truncate(8 + len(header) + n * 4)
print(f"{path}: {os.path.getsize(path) / 2**30:.1f} GiB (sparse)")
PY

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
{
  echo "| tool | median wall (hyperfine) | peak RSS (KiB, /usr/bin/time -v) |"
  echo "|---|---|---|"
  hyperfine --warmup 2 --runs 10 --ignore-failure --export-json "$out/large.json" \
    -n warden "$warden scan --quiet $big" \
    ${PEERS:+-n modelaudit "$peers/modelaudit/bin/modelaudit scan --no-cache $big"} >/dev/null
  python3 - "$out/large.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], f"{r['median'] * 1000:.1f} ms")
PY
} > "$out/scan-large.raw"
echo "warden RSS KiB: $(rss "$warden" scan --quiet "$big")" >> "$out/scan-large.raw"
if [ -n "${PEERS:-}" ]; then
  echo "modelaudit RSS KiB: $(rss "$peers/modelaudit/bin/modelaudit" scan --no-cache "$big")" >> "$out/scan-large.raw"
fi
cat "$out/scan-large.raw"
rm -f "$big"
