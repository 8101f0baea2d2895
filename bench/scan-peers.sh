#!/usr/bin/env bash
# Detection and speed of `warden scan` against the Python model scanners, on one corpus,
# in one run. Writes bench/out/scan-detection.md and bench/out/scan-speed.md.
#
#   bench/scan-peers.sh            # needs python3, npm (for the test env), hyperfine
#   ROUNDS=30 WARDEN_BASE=/path/to/older/warden bench/scan-peers.sh
#   DETECTION=0 bench/scan-peers.sh    # speed only (installs only the timed peers)
#
# The corpus is the test suite's (tests/corpus/generate.py): real benign files made with
# the real libraries, and hostile samples of every attack class Warden covers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="$root/bench/out"
peers="$root/bench/.venv-peers"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
mkdir -p "$out" "$peers"

command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }
scripts/setup-test-env
timed="picklescan modelscan"
[ -n "${SLOW_PEERS:-}" ] && timed="$timed modelaudit fickling"
grep -v '^#' bench/peers.txt | while read -r name reqs; do
  [ -n "$name" ] || continue
  if [ "${DETECTION:-1}" = 0 ] && ! [[ " $timed " == *" $name "* ]]; then continue; fi
  if [ ! -x "$peers/$name/bin/python" ]; then
    python3 -m venv "$peers/$name"
    # shellcheck disable=SC2086
    "$peers/$name/bin/pip" install --quiet --disable-pip-version-check $reqs
  fi
done

cargo build --release --locked -p warden
warden="$CARGO_TARGET_DIR/release/warden"
rm -rf "$out/corpus"
.venv/bin/python tests/corpus/generate.py "$out/corpus" >/dev/null

if [ "${DETECTION:-1}" != 0 ]; then
  .venv/bin/python bench/detection.py --corpus "$out/corpus" --warden "$warden" \
    --peers "$peers" > "$out/scan-detection.md"
  cat "$out/scan-detection.md"
fi

# Whole-process wall time over the whole corpus, side by side with the two fastest peers
# (and WARDEN_BASE, an older warden binary, when set). Each round runs every command once
# (hyperfine -N --runs 1) and the rounds interleave the commands, so that load from other
# work on the machine hits all of them alike; the table gives medians over ROUNDS rounds
# (default 30, after 3 discarded). modelaudit and fickling take seconds per sample; set
# SLOW_PEERS=1 to time them too (minutes per round).
cmds=()
[ -n "${WARDEN_BASE:-}" ] && cmds+=(-n "warden (base)" "$WARDEN_BASE scan --quiet $out/corpus")
cmds+=(-n warden "$warden scan --quiet $out/corpus"
       -n picklescan "$peers/picklescan/bin/picklescan --path $out/corpus"
       -n modelscan "$peers/modelscan/bin/modelscan -p $out/corpus")
if [ -n "${SLOW_PEERS:-}" ]; then
  files="$out/corpus-files.txt"
  find "$out/corpus" -type f ! -name manifest.json | sort > "$files"
  cmds+=(-n modelaudit "$peers/modelaudit/bin/modelaudit scan --no-cache $out/corpus"
         -n fickling "xargs -a $files -n 1 $peers/fickling/bin/fickling --check-safety")
fi
rounds="$out/scan-rounds"
rm -rf "$rounds" && mkdir -p "$rounds"
cd "$out"  # fickling writes safety_results.json into its working directory
for r in $(seq -2 "${ROUNDS:-30}"); do
  hyperfine -N --runs 1 --ignore-failure --style none --export-json "$rounds/$r.json" \
    "${cmds[@]}" >/dev/null 2>&1
done
rm -f "$rounds"/-*.json "$rounds"/0.json
python3 - "$rounds" <<'PY' | tee "$out/scan-speed.md"
import glob, json, statistics, sys
wall, cpu = {}, {}
for f in glob.glob(f"{sys.argv[1]}/*.json"):
    for r in json.load(open(f))["results"]:
        wall.setdefault(r["command"], []).append(r["times"][0] * 1e3)
        cpu.setdefault(r["command"], []).append((r["user"] + r["system"]) * 1e3)
med = lambda d, n: statistics.median(d[n])
print(f"{len(wall['warden'])} interleaved rounds, medians.\n")
print("| command | wall ms | CPU ms (user+sys) | wall / warden's |")
print("|---|---:|---:|---:|")
for n in wall:
    print(f"| {n} | {med(wall, n):.1f} | {med(cpu, n):.1f} | {med(wall, n) / med(wall, 'warden'):.1f}x |")
PY
