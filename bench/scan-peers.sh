#!/usr/bin/env bash
# Detection and speed of `warden scan` against the Python model scanners, on one corpus,
# in one run. Writes bench/out/scan-detection.md and bench/out/scan-speed.md.
#
#   bench/scan-peers.sh            # needs python3, npm (for the test env), hyperfine
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
grep -v '^#' bench/peers.txt | while read -r name reqs; do
  [ -n "$name" ] || continue
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

.venv/bin/python bench/detection.py --corpus "$out/corpus" --warden "$warden" \
  --peers "$peers" > "$out/scan-detection.md"
cat "$out/scan-detection.md"

# Whole-process wall time over the whole corpus, side by side with the two fastest peers.
# modelaudit and fickling take seconds per sample; set SLOW_PEERS=1 to time them too
# (minutes per run).
slow=()
if [ -n "${SLOW_PEERS:-}" ]; then
  files="$out/corpus-files.txt"
  find "$out/corpus" -type f ! -name manifest.json | sort > "$files"
  slow=(-n modelaudit "$peers/modelaudit/bin/modelaudit scan --no-cache $out/corpus"
        -n fickling "xargs -a $files -n 1 $peers/fickling/bin/fickling --check-safety")
fi
cd "$out"  # fickling writes safety_results.json into its working directory
hyperfine -N --warmup 3 --runs 20 --ignore-failure --export-markdown "$out/scan-speed.md" \
  -n warden "$warden scan --quiet $out/corpus" \
  -n picklescan "$peers/picklescan/bin/picklescan --path $out/corpus" \
  -n modelscan "$peers/modelscan/bin/modelscan -p $out/corpus" \
  "${slow[@]}"
