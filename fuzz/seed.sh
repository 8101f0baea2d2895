#!/usr/bin/env bash
# Seeds every fuzz target with the test corpus (real and hostile model files made by
# tests/corpus/generate.py), then runs each target for SECONDS (default 60).
#
#   fuzz/seed.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
scripts/setup-test-env
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
.venv/bin/python tests/corpus/generate.py "$seeds/corpus" >/dev/null
mkdir -p "$seeds/flat"
find "$seeds/corpus" -type f -size -300k ! -name manifest.json \
  -exec sh -c 'cp "$1" "$2/$(sha1sum "$1" | cut -c1-16)"' _ {} "$seeds/flat" \;
cd fuzz
for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^warden-fuzz$'); do
  mkdir -p "corpus/$target"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "$seeds/flat" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10
done
