#!/usr/bin/env python3
"""Writes the scan test corpus: real benign model files made with the real libraries, and
hostile ones reproducing known attacks and scanner bypasses.

Each module gen_<area>.py in this directory has generate(out) -> list of entries:
    {"path": relative path (file or directory), "expect": "malicious" | "benign",
     "rules": [rule ids that must fire], "note": "what it is"}
This script runs them all and writes out/manifest.json. Nothing here ever loads or
unpickles a hostile sample.
"""
import importlib.util
import json
import pathlib
import sys


def main() -> int:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    here = pathlib.Path(__file__).resolve().parent
    entries = []
    for mod_path in sorted(here.glob("gen_*.py")):
        spec = importlib.util.spec_from_file_location(mod_path.stem, mod_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        produced = module.generate(out)
        for e in produced:
            e.setdefault("rules", [])
            e["generator"] = mod_path.stem
            if e["expect"] not in ("malicious", "benign"):
                raise SystemExit(f"{mod_path.name}: bad expect in {e}")
            if not (out / e["path"]).exists():
                raise SystemExit(f"{mod_path.name}: {e['path']} was not written")
        entries.extend(produced)
    paths = [e["path"] for e in entries]
    dupes = {p for p in paths if paths.count(p) > 1}
    if dupes:
        raise SystemExit(f"duplicate corpus paths: {sorted(dupes)}")
    (out / "manifest.json").write_text(json.dumps(entries, indent=1))
    mal = sum(e["expect"] == "malicious" for e in entries)
    print(f"corpus: {len(entries)} samples ({mal} malicious, {len(entries) - mal} benign) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
