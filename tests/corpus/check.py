#!/usr/bin/env python3
"""Scans the generated corpus with the warden binary and checks every verdict:

- every malicious sample has a finding at medium or above, including each expected rule;
- every benign sample has nothing at medium or above;
- `warden scan` exits 3 on each malicious sample and 0 on each benign one;
- the SARIF report is valid against the SARIF 2.1.0 JSON schema and holds every finding;
- the JSON lines follow the documented shape (docs/scan-output.md).
"""
import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile

import jsonschema

GATE = ["medium", "high", "critical"]
FINDING_KEYS = {"type", "rule", "name", "severity", "path", "members", "offset", "object",
                "evidence", "title", "why", "fix"}
FILE_KEYS = {"type", "path", "size", "formats", "findings", "max_severity", "elapsed_ms"}
SUMMARY_KEYS = {"type", "files", "bytes", "findings", "by_severity", "fail_on", "failing",
                "passed", "elapsed_ms"}


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", required=True)
    ap.add_argument("--corpus", required=True, type=pathlib.Path)
    ap.add_argument("--sarif-schema", required=True, type=pathlib.Path)
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    manifest = json.loads((corpus / "manifest.json").read_text())
    problems = []

    with tempfile.TemporaryDirectory() as tmp:
        sarif_path = pathlib.Path(tmp) / "corpus.sarif"
        proc = run([args.warden, "scan", "--json", "--sarif", str(sarif_path), str(corpus)])
        if proc.returncode != 3:
            problems.append(f"whole-corpus scan exited {proc.returncode}, expected 3: {proc.stderr[-500:]}")
        lines = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
        findings = [l for l in lines if l["type"] == "finding"]
        files = [l for l in lines if l["type"] == "file"]
        summary = [l for l in lines if l["type"] == "summary"]
        for l in findings:
            if set(l) != FINDING_KEYS:
                problems.append(f"finding keys {sorted(set(l) ^ FINDING_KEYS)} differ from the documented set")
                break
        for l in files:
            if set(l) != FILE_KEYS:
                problems.append(f"file keys {sorted(set(l) ^ FILE_KEYS)} differ from the documented set")
                break
        if len(summary) != 1 or set(summary[0]) != SUMMARY_KEYS or lines[-1]["type"] != "summary":
            problems.append("expected exactly one summary line, last, with the documented keys")
        elif summary[0]["findings"] != len(findings) or summary[0]["files"] != len(files):
            problems.append("summary totals do not match the finding and file lines")

        sarif = json.loads(sarif_path.read_text())
        schema = json.loads(args.sarif_schema.read_text())
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(sarif), key=str)
        for e in errors[:5]:
            problems.append(f"SARIF schema: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
        results = sarif["runs"][0]["results"]
        if len(results) != len(findings):
            problems.append(f"SARIF has {len(results)} results but JSON has {len(findings)} findings")

    by_file = collections.defaultdict(list)
    for f in findings:
        by_file[pathlib.Path(f["path"]).resolve()].append(f)

    def findings_under(rel):
        target = (corpus / rel).resolve()
        if target.is_dir():
            return [f for p, fs in by_file.items() if target in p.parents for f in fs]
        return by_file.get(target, [])

    rows = []
    for e in manifest:
        got = findings_under(e["path"])
        gating = [f for f in got if f["severity"] in GATE]
        ids = {f["rule"] for f in gating}
        if e["expect"] == "malicious":
            ok = bool(gating) and set(e["rules"]) <= ids
            if not ok:
                problems.append(f"MISSED {e['path']} ({e['note']}): wanted {e['rules']}, got "
                                f"{sorted((f['rule'], f['severity']) for f in got)}")
        else:
            ok = not gating
            if not ok:
                problems.append(f"FALSE POSITIVE {e['path']} ({e['note']}): "
                                f"{[(f['rule'], f['severity'], f['evidence'][:120]) for f in gating]}")
        want_exit = 3 if e["expect"] == "malicious" else 0
        code = run([args.warden, "scan", "--quiet", str(corpus / e["path"])]).returncode
        if code != want_exit:
            problems.append(f"EXIT {e['path']}: exited {code}, expected {want_exit}")
        rows.append((e["generator"], e["expect"], ok))

    tally = collections.Counter((g, x, ok) for g, x, ok in rows)
    print(f"{'generator':<16} {'expect':<10} {'right':>6} {'wrong':>6}")
    for g, x in sorted({(g, x) for g, x, _ in rows}):
        print(f"{g:<16} {x:<10} {tally[(g, x, True)]:>6} {tally[(g, x, False)]:>6}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"\ncorpus check passed: {len(manifest)} samples, {len(findings)} findings, SARIF valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
