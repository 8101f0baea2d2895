#!/usr/bin/env bash
# Admits a small model with a Hugging Face model card through a real `warden` and writes
# the release's AI-BOM to OUT, for validate.py to check against the CycloneDX 1.6 schema.
# Usage: tests/aibom/admitted.sh WARDEN OUT.json
set -euo pipefail
warden=$1 out=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-admitted.XXXXXX")
trap 'rm -rf "$work"' EXIT
export WARDEN_DATA="$work/data"
token=$("$warden" init 2>/dev/null)
printf '\n[trust]\nunsigned_models = ["bom-*"]\n' >> "$WARDEN_DATA/warden.toml"
mkdir -p "$work/model"
printf 'weights' > "$work/model/weights.bin.txt"
printf '{"hidden": 4}' > "$work/model/config.json"
cat > "$work/README.md" <<'CARD'
---
license: apache-2.0
datasets:
- iris
pipeline_tag: tabular-classification
---
# A tiny model
CARD
printf '# Threats\nNone known.\n' > "$work/threats.md"
WARDEN_TOKEN=$token "$warden" admit "$work/model" --name bom-demo --version 1 \
  --model-card "$work/README.md" --threat-model "$work/threats.md" --json >/dev/null
"$warden" show bom-demo@1 --aibom > "$out"
