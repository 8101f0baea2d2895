#!/usr/bin/env python3
"""Renders `warden scan --list-rules --json` (on stdin) as the markdown rule tables of
docs/scanning.md:  warden scan --list-rules --json | python3 scripts/rules-table.py"""
import collections
import json
import re
import sys

AREAS = {
    "GEN": "Generic (fail closed)",
    "PKL": "Pickle (PyTorch, joblib, scikit-learn, raw pickle)",
    "ZIP": "ZIP archives (PyTorch checkpoints, .keras, .npz)",
    "TAR": "Tar archives (legacy PyTorch, bundles)",
    "CMP": "gzip and zlib streams",
    "NPY": "NumPy .npy/.npz",
    "ST": "safetensors",
    "GGUF": "GGUF",
    "TPL": "Chat templates (GGUF metadata, tokenizer_config.json, .jinja)",
    "ONNX": "ONNX",
    "TF": "TensorFlow SavedModel, GraphDef, Keras metadata",
    "KERAS": "Keras configurations (.keras config.json, HDF5 model_config)",
    "HDF": "HDF5 (legacy Keras .h5)",
    "TXT": "Text, JSON and source files",
}


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    groups = collections.OrderedDict()
    for line in sys.stdin:
        rule = json.loads(line)
        area = re.match(r"[A-Z]+", rule["rule"]).group()
        groups.setdefault(area, []).append(rule)
    for area, rules in groups.items():
        print(f"\n### {AREAS.get(area, area)}\n")
        print("| id | name | default | what | why it matters |")
        print("|---|---|---|---|---|")
        for r in rules:
            print(f"| {r['rule']} | `{r['name']}` | {r['severity']} | {cell(r['title'])} | {cell(r['why'])} |")


if __name__ == "__main__":
    main()
