#!/usr/bin/env python3
"""Runs Warden and each peer scanner on every corpus sample and prints a markdown table:
malicious samples caught, benign samples passed, and errors, per tool per generator.

A tool "flags" a sample when its exit code says it found an issue:
warden 3; picklescan 1; modelscan 1; modelaudit 1; fickling non-zero.
Exit codes that mean "error" (picklescan 2, modelscan 2+, modelaudit 2) count as not
flagged and are tallied as errors: a scanner that errors out has not protected anyone.
"""
import argparse
import collections
import json
import pathlib
import subprocess
import tempfile

# Tools run in a scratch directory: fickling writes safety_results.json into its cwd.
SCRATCH = tempfile.mkdtemp(prefix="warden-bench-")


def tools(warden, peers):
    return {
        "warden": ([warden, "scan", "--quiet"], {3: True, 0: False}),
        "picklescan": ([f"{peers}/picklescan/bin/picklescan", "--path"], {1: True, 0: False}),
        "modelscan": ([f"{peers}/modelscan/bin/modelscan", "-p"], {1: True, 0: False}),
        "modelaudit": ([f"{peers}/modelaudit/bin/modelaudit", "scan", "--no-cache"], {1: True, 0: False}),
        "fickling": ([f"{peers}/fickling/bin/fickling", "--check-safety"], None),
    }


def verdict(cmd, codes, path):
    target = pathlib.Path(path)
    paths = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    if codes is None:  # fickling: one file at a time, non-zero = unsafe
        flagged = False
        for p in paths:
            r = subprocess.run(cmd + [str(p)], capture_output=True, timeout=300, cwd=SCRATCH)
            flagged |= r.returncode != 0
        return flagged, False
    r = subprocess.run(cmd + [str(target)], capture_output=True, timeout=300, cwd=SCRATCH)
    if r.returncode in codes:
        return codes[r.returncode], False
    return False, True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=pathlib.Path, required=True)
    ap.add_argument("--warden", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--tools", help="comma-separated subset of tools to run (default: all)")
    a = ap.parse_args()
    manifest = json.loads((a.corpus / "manifest.json").read_text())
    ts = tools(a.warden, a.peers)
    if a.tools:
        ts = {k: v for k, v in ts.items() if k in a.tools.split(",")}
    caught = collections.Counter()
    fp = collections.Counter()
    errors = collections.Counter()
    totals = collections.Counter()
    missed = collections.defaultdict(list)
    for e in manifest:
        group = e["generator"].removeprefix("gen_")
        totals[(group, e["expect"])] += 1
        for name, (cmd, codes) in ts.items():
            flagged, err = verdict(cmd, codes, a.corpus / e["path"])
            errors[name] += err
            if e["expect"] == "malicious":
                caught[(name, group)] += flagged
                if not flagged:
                    missed[name].append(e["path"])
            else:
                fp[(name, group)] += flagged
    groups = sorted({g for g, _ in totals})
    names = list(ts)
    print("| samples | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for g in groups:
        m, b = totals[(g, "malicious")], totals[(g, "benign")]
        if m:
            print(f"| {g}: malicious caught (of {m}) | " + " | ".join(str(caught[(n, g)]) for n in names) + " |")
        if b:
            print(f"| {g}: benign wrongly flagged (of {b}) | " + " | ".join(str(fp[(n, g)]) for n in names) + " |")
    m_all = sum(v for (g, x), v in totals.items() if x == "malicious")
    b_all = sum(v for (g, x), v in totals.items() if x == "benign")
    print(f"| **all: malicious caught (of {m_all})** | " + " | ".join(str(sum(caught[(n, g)] for g in groups)) for n in names) + " |")
    print(f"| **all: benign wrongly flagged (of {b_all})** | " + " | ".join(str(sum(fp[(n, g)] for g in groups)) for n in names) + " |")
    print("| tool errors (exit code meaning 'error') | " + " | ".join(str(errors[n]) for n in names) + " |")
    print()
    for n in names:
        if missed[n]:
            print(f"- {n} missed: {', '.join(missed[n][:60])}{' …' if len(missed[n]) > 60 else ''}")


if __name__ == "__main__":
    main()
