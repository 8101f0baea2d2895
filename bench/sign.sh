#!/usr/bin/env bash
# Signing speed and memory, side by side in one run: `openssl dgst -sha256`, `b3sum` (if
# installed), `warden digest|sign|verify` and `model_signing sign|verify key` 1.1.1 on the
# same files, warm page cache. Writes bench/out/sign.md (the table for docs/PERFORMANCE.md).
#
#   bench/sign.sh [SIZE_MIB]     # default 2048: one file of SIZE, and 4 files of SIZE/4
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mib="${1:-2048}"
out="$root/bench/out/sign"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }
mkdir -p "$out/one" "$out/four"
scripts/setup-sign-env
cargo build --release --locked -p warden
# A private copy: the shared target directory may be rebuilt by someone else mid-run.
cp "$CARGO_TARGET_DIR/release/warden" "$out/warden"
W="$out/warden"
MS="$root/.venv-sign/bin/model_signing"

make() { # path size_mib
  if [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" != "$(( $2 * 1048576 ))" ]; then
    head -c "$(( $2 * 1048576 ))" /dev/urandom > "$1"
  fi
}
make "$out/one/model.safetensors" "$mib"
for i in 0 1 2 3; do make "$out/four/model-0000$i.safetensors" $(( mib / 4 )); done
[ -s "$out/key.pem" ] || "$W" keygen --out "$out/key.pem" --force >/dev/null
cat "$out"/one/* "$out"/four/* > /dev/null   # warm the page cache

"$W" sign "$out/one" --key "$out/key.pem" --signature "$out/one.sig" --quiet
"$W" sign "$out/four" --key "$out/key.pem" --signature "$out/four.sig" --quiet
"$MS" sign key "$out/one" --private_key "$out/key.pem" --signature "$out/ms-one.sig" >/dev/null
"$MS" sign key "$out/four" --private_key "$out/key.pem" --signature "$out/ms-four.sig" >/dev/null

b3=()
if command -v b3sum >/dev/null; then
  b3=(-n "b3sum --num-threads 1 (1 file)" "b3sum --num-threads 1 $out/one/model.safetensors")
fi
hyperfine --warmup 1 --runs "${RUNS:-5}" --export-json "$out/hyperfine.json" --style basic \
  -n "openssl dgst -sha256 (1 file)" "openssl dgst -sha256 $out/one/model.safetensors" \
  "${b3[@]}" \
  -n "warden digest sha256 (1 file)" "$W digest $out/one" \
  -n "warden digest blake3 --threads 1 (1 file)" "$W digest --hash blake3 --threads 1 $out/one" \
  -n "warden sign (1 file)" "$W sign $out/one --key $out/key.pem --signature $out/one.sig --quiet" \
  -n "warden verify (1 file)" "$W verify $out/one --key $out/key.pem.pub --signature $out/one.sig --quiet" \
  -n "model_signing sign key (1 file)" "$MS sign key $out/one --private_key $out/key.pem --signature $out/ms-one.sig" \
  -n "model_signing verify key (1 file)" "$MS verify key $out/one --public_key $out/key.pem.pub --signature $out/ms-one.sig" \
  -n "openssl dgst -sha256 (4 files)" "openssl dgst -sha256 $out/four/model-00000.safetensors $out/four/model-00001.safetensors $out/four/model-00002.safetensors $out/four/model-00003.safetensors" \
  -n "warden sign --threads 1 (4 files)" "$W sign $out/four --key $out/key.pem --signature $out/four.sig --quiet --threads 1" \
  -n "warden sign (4 files)" "$W sign $out/four --key $out/key.pem --signature $out/four.sig --quiet" \
  -n "warden verify (4 files)" "$W verify $out/four --key $out/key.pem.pub --signature $out/four.sig --quiet" \
  -n "model_signing sign key (4 files)" "$MS sign key $out/four --private_key $out/key.pem --signature $out/ms-four.sig" \
  >/dev/null

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
{
  echo "rss warden sign (1 file)|$(rss "$W" sign "$out/one" --key "$out/key.pem" --signature "$out/one.sig" --quiet)"
  echo "rss warden sign (4 files)|$(rss "$W" sign "$out/four" --key "$out/key.pem" --signature "$out/four.sig" --quiet)"
  echo "rss warden verify (4 files)|$(rss "$W" verify "$out/four" --key "$out/key.pem.pub" --signature "$out/four.sig" --quiet)"
  echo "rss model_signing sign key (1 file)|$(rss "$MS" sign key "$out/one" --private_key "$out/key.pem" --signature "$out/ms-one.sig")"
  echo "rss model_signing sign key (4 files)|$(rss "$MS" sign key "$out/four" --private_key "$out/key.pem" --signature "$out/ms-four.sig")"
} > "$out/rss.txt"

python3 - "$out" "$mib" <<'PY' | tee "$root/bench/out/sign.md"
import json, sys
out, mib = sys.argv[1], int(sys.argv[2])
res = {r["command"]: r for r in json.load(open(f"{out}/hyperfine.json"))["results"]}
rss = dict(l.strip().split("|") for l in open(f"{out}/rss.txt") if "|" in l)
gib = mib / 1024
med = lambda n: res[n]["median"]
rate = lambda n: gib / med(n)
print(f"Files: one of {mib} MiB; four of {mib // 4} MiB (random bytes, warm page cache).\n")
print("| command | median s | GiB/s | peak RSS KiB |")
print("|---|---:|---:|---:|")
for n, r in res.items():
    print(f"| {n} | {r['median']:.3f} | {rate(n):.2f} | {rss.get('rss ' + n, '')} |")
print()
ratios = [
    ("warden digest sha256 / openssl dgst, 1 file (single-threaded SHA-256)", rate("warden digest sha256 (1 file)") / rate("openssl dgst -sha256 (1 file)"), ">= 1.0 (about)"),
    ("warden digest blake3 --threads 1 / warden digest sha256, 1 file", rate("warden digest blake3 --threads 1 (1 file)") / rate("warden digest sha256 (1 file)"), ">= 2"),
    ("warden sign / openssl dgst, 1 file (throughput)", rate("warden sign (1 file)") / rate("openssl dgst -sha256 (1 file)"), ">= 0.95"),
    ("warden verify / openssl dgst, 1 file (throughput)", rate("warden verify (1 file)") / rate("openssl dgst -sha256 (1 file)"), ">= 0.95"),
    ("warden sign, 4 files / 1 file (throughput)", rate("warden sign (4 files)") / rate("warden sign (1 file)"), ">= 1.7"),
    ("model_signing sign / warden sign, 1 file (time)", med("model_signing sign key (1 file)") / med("warden sign (1 file)"), ">= 1.5"),
    ("model_signing sign / warden sign, 4 files (time)", med("model_signing sign key (4 files)") / med("warden sign (4 files)"), ">= 1.5"),
]
print("| ratio | measured | target |")
print("|---|---:|---|")
for name, v, target in ratios:
    print(f"| {name} | {v:.2f} | {target} |")
PY
