#!/usr/bin/env bash
# Ledger speed and memory beside SQLite, in one run (crates/ledger/examples/ledger_bench.rs):
# durable appends with 1, 8, 64 and 256 writer threads against SQLite (WAL,
# synchronous=FULL, one transaction per row); single-append latency; full verification of
# ledgers of 100,000 and 1,000,000 entries (time and peak RSS of the verifying process,
# beside SQLite's integrity_check); inclusion proofs. Every measurement runs RUNS times
# (default 5), interleaving the ledger and SQLite; medians and ratios are printed, and
# written to bench/out/ledger.md (the tables for docs/PERFORMANCE.md) and
# bench/out/ledger.json.
#
#   RUNS=5 bench/ledger.sh [DIR] [COMMAND [OPTIONS]]
#
# DIR (default bench/out/ledger) is where the stores are made: it must be on the disk to
# measure, not a tmpfs. COMMAND is all (default), append, latency, verify or proof; see
# `bench/out/ledger_bench COMMAND --help` for its options.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir="${1:-$root/bench/out/ledger}"
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
mkdir -p "$dir" "$root/bench/out"

fs=$(df --output=fstype "$dir" | tail -n 1 | tr -d ' ')
case "$fs" in
  tmpfs|ramfs) echo "$dir is on $fs: syncs cost nothing there; give a directory on a disk" >&2; exit 1 ;;
esac

cargo build --release --locked -p ledger --example ledger_bench
# A private copy of the binary: a rebuild during the run must not change what is measured.
cp "$CARGO_TARGET_DIR/release/examples/ledger_bench" "$root/bench/out/ledger_bench"

echo "ledger benchmark: $(df --output=source,fstype "$dir" | tail -n 1) ($dir), $(nproc) CPUs, RUNS=${RUNS:-5}" >&2
"$root/bench/out/ledger_bench" --dir "$dir" --runs "${RUNS:-5}" \
  --tables "$root/bench/out/ledger.md" --json "${@:-all}" > "$root/bench/out/ledger.json"
echo "tables: bench/out/ledger.md; figures: bench/out/ledger.json" >&2
