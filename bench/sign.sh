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
# A private copy of the binary: a rebuild during the run must not change what is measured.
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

# The machine is shared (two cores, other builds running): each command runs once per
# round, rounds interleave all commands so that load changes hit every command alike, and
# medians are taken over rounds. Wall time and CPU time (user+sys) are both reported.
cmds=(
  "openssl dgst -sha256 (1 file)|openssl dgst -sha256 $out/one/model.safetensors"
  "warden digest sha256 (1 file)|$W digest $out/one"
  "warden digest blake3 --threads 1 (1 file)|$W digest --hash blake3 --threads 1 $out/one"
  "warden sign (1 file)|$W sign $out/one --key $out/key.pem --signature $out/one.sig --quiet"
  "warden verify (1 file)|$W verify $out/one --key $out/key.pem.pub --signature $out/one.sig --quiet"
  "warden sign --shard-size 1073741824 (1 file)|$W sign $out/one --key $out/key.pem --signature $out/one-sharded.sig --quiet --shard-size 1073741824"
  "model_signing sign key (1 file)|$MS sign key $out/one --private_key $out/key.pem --signature $out/ms-one.sig"
  "model_signing verify key (1 file)|$MS verify key $out/one --public_key $out/key.pem.pub --signature $out/ms-one.sig"
  "openssl dgst -sha256 (4 files)|openssl dgst -sha256 $out/four/model-00000.safetensors $out/four/model-00001.safetensors $out/four/model-00002.safetensors $out/four/model-00003.safetensors"
  "warden sign --threads 1 (4 files)|$W sign $out/four --key $out/key.pem --signature $out/four.sig --quiet --threads 1"
  "warden sign (4 files)|$W sign $out/four --key $out/key.pem --signature $out/four.sig --quiet"
  "warden verify (4 files)|$W verify $out/four --key $out/key.pem.pub --signature $out/four.sig --quiet"
  "model_signing sign key (4 files)|$MS sign key $out/four --private_key $out/key.pem --signature $out/ms-four.sig"
)
if command -v b3sum >/dev/null; then
  cmds+=("b3sum --num-threads 1 (1 file)|b3sum --num-threads 1 $out/one/model.safetensors")
fi
rm -f "$out"/round-*.json
for r in $(seq 1 "${RUNS:-5}"); do
  args=()
  for c in "${cmds[@]}"; do args+=(-n "${c%%|*}" "${c#*|}"); done
  hyperfine -N --runs 1 --export-json "$out/round-$r.json" --style none "${args[@]}" >/dev/null 2>&1
done

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
{
  echo "rss warden sign (1 file)|$(rss "$W" sign "$out/one" --key "$out/key.pem" --signature "$out/one.sig" --quiet)"
  echo "rss warden sign (4 files)|$(rss "$W" sign "$out/four" --key "$out/key.pem" --signature "$out/four.sig" --quiet)"
  echo "rss warden verify (4 files)|$(rss "$W" verify "$out/four" --key "$out/key.pem.pub" --signature "$out/four.sig" --quiet)"
  echo "rss model_signing sign key (1 file)|$(rss "$MS" sign key "$out/one" --private_key "$out/key.pem" --signature "$out/ms-one.sig")"
  echo "rss model_signing sign key (4 files)|$(rss "$MS" sign key "$out/four" --private_key "$out/key.pem" --signature "$out/ms-four.sig")"
} > "$out/rss.txt"

python3 - "$out" "$mib" <<'PY' | tee "$root/bench/out/sign.md"
import glob, json, statistics, sys
out, mib = sys.argv[1], int(sys.argv[2])
wall, cpu = {}, {}
for f in sorted(glob.glob(f"{out}/round-*.json")):
    for r in json.load(open(f))["results"]:
        wall.setdefault(r["command"], []).append(r["times"][0])
        cpu.setdefault(r["command"], []).append(r["user"] + r["system"])
rss = dict(l.strip().split("|") for l in open(f"{out}/rss.txt") if "|" in l)
gib = mib / 1024
med = lambda d, n: statistics.median(d[n])
rate = lambda n: gib / med(wall, n)
crate = lambda n: gib / med(cpu, n)
rounds = len(next(iter(wall.values())))
print(f"Files: one of {mib} MiB; four of {mib // 4} MiB (random bytes, warm page cache); "
      f"{rounds} interleaved rounds, medians.\n")
print("| command | wall s | GiB/s (wall) | CPU s (user+sys) | GiB per CPU-s | peak RSS KiB |")
print("|---|---:|---:|---:|---:|---:|")
for n in wall:
    print(f"| {n} | {med(wall, n):.3f} | {rate(n):.2f} | {med(cpu, n):.3f} | {crate(n):.2f} | {rss.get('rss ' + n, '')} |")
print()
o1, o4 = "openssl dgst -sha256 (1 file)", "openssl dgst -sha256 (4 files)"
ratios = [
    ("single-threaded SHA-256: warden digest / openssl dgst, 1 file", rate("warden digest sha256 (1 file)") / rate(o1), crate("warden digest sha256 (1 file)") / crate(o1), "about 1"),
    ("BLAKE3 / SHA-256, one thread, 1 file (warden digest)", rate("warden digest blake3 --threads 1 (1 file)") / rate("warden digest sha256 (1 file)"), crate("warden digest blake3 --threads 1 (1 file)") / crate("warden digest sha256 (1 file)"), ">= 2"),
    ("warden sign / openssl dgst, 1 file (throughput)", rate("warden sign (1 file)") / rate(o1), crate("warden sign (1 file)") / crate(o1), ">= 0.95"),
    ("warden verify / openssl dgst, 1 file (throughput)", rate("warden verify (1 file)") / rate(o1), crate("warden verify (1 file)") / crate(o1), ">= 0.95"),
    ("warden sign, 4 files / 1 file (throughput)", rate("warden sign (4 files)") / rate("warden sign (1 file)"), float("nan"), ">= 1.7"),
    ("model_signing sign / warden sign, 1 file (time)", med(wall, "model_signing sign key (1 file)") / med(wall, "warden sign (1 file)"), med(cpu, "model_signing sign key (1 file)") / med(cpu, "warden sign (1 file)"), ">= 1.5"),
    ("model_signing sign / warden sign, 4 files (time)", med(wall, "model_signing sign key (4 files)") / med(wall, "warden sign (4 files)"), med(cpu, "model_signing sign key (4 files)") / med(cpu, "warden sign (4 files)"), ">= 1.5"),
    ("model_signing verify / warden verify, 1 file (time)", med(wall, "model_signing verify key (1 file)") / med(wall, "warden verify (1 file)"), med(cpu, "model_signing verify key (1 file)") / med(cpu, "warden verify (1 file)"), ""),
]
print("| ratio | by wall time | by CPU time | target |")
print("|---|---:|---:|---|")
for name, v, c, target in ratios:
    print(f"| {name} | {v:.2f} | {c:.2f} | {target} |")
PY
