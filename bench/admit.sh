#!/usr/bin/env bash
# Admission speed: `warden admit` of a signed model (scan, signature, seal while hashing,
# AI-BOM, record) against `warden sign` of the same model (hashing alone) and against
# copying it durably with `dd conv=fsync` (what writing its sealed copy to this disk costs
# at the least), side by side, warm cache; then admission's peak RSS.
# Usage: bench/admit.sh [MiB] (default 2048; one file)   RUNS (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2048}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
cargo build --release --locked -q -p warden
warden="$CARGO_TARGET_DIR/release/warden"
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-admit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/model"
head -c "$((mib << 20))" /dev/urandom > "$work/model/weights.bin"
"$warden" keygen --out "$work/pub.pem" >/dev/null
"$warden" sign "$work/model" --key "$work/pub.pem" --signature "$work/model.sig"
# A fresh data directory before every admission (not timed).
cat > "$work/prepare.sh" <<PREP
#!/usr/bin/env bash
set -euo pipefail
rm -rf "$work/data" "$work/copy.bin"
"$warden" --data-dir "$work/data" init > "$work/token" 2>/dev/null
cp "$work/pub.pem.pub" "$work/data/pub.pem"
printf '\n[[trust.signers]]\nname = "bench"\nkey = "pub.pem"\n' >> "$work/data/warden.toml"
PREP
chmod +x "$work/prepare.sh"
admit="$warden --data-dir $work/data --token-file $work/token admit $work/model --name bench --version 1 --signature $work/model.sig"
hyperfine --warmup 1 --runs "${RUNS:-5}" \
  --prepare true -n "warden sign (hashing alone)" "$warden sign $work/model --key $work/pub.pem --signature $work/again.sig" \
  -n "dd conv=fsync (durable copy)" --prepare "rm -rf $work/copy.bin $work/data" "dd if=$work/model/weights.bin of=$work/copy.bin bs=1M conv=fsync status=none" \
  -n "warden admit" --prepare "$work/prepare.sh" "$admit" \
  --export-json "$work/hyperfine.json" >&2
python3 - "$work/hyperfine.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
m = {x["command"]: x["median"] for x in r}
s, a = m["warden sign (hashing alone)"], m["warden admit"]
d = m["dd conv=fsync (durable copy)"]
print(f"median: sign {s:.3f} s, dd conv=fsync {d:.3f} s, admit {a:.3f} s; "
      f"admit/sign {a/s:.2f}x, admit/dd {a/d:.2f}x, dd/sign {d/s:.2f}x")
PY
"$work/prepare.sh"
/usr/bin/time -v $admit 2>&1 >/dev/null | grep -E "Maximum resident|Elapsed" >&2
