#!/usr/bin/env python3
"""Writes examples/quarantine: a small model directory as a third party might ship it,
with one clean weights file and one booby-trapped one. Uses only the standard library;
the hostile pickle is written opcode by opcode and never loaded.

    python3 examples/make_quarantine.py
"""
import json
import pathlib
import struct

out = pathlib.Path(__file__).resolve().parent / "quarantine"
out.mkdir(exist_ok=True)

# model.safetensors: two float32 tensors, written per the safetensors format spec.
w = struct.pack("<6f", 0.1, -0.2, 0.3, 0.4, -0.5, 0.6)
b = struct.pack("<2f", 0.01, -0.01)
header = {
    "__metadata__": {"format": "pt"},
    "fc.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, len(w)]},
    "fc.bias": {"dtype": "F32", "shape": [2], "data_offsets": [len(w), len(w) + len(b)]},
}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
(out / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + w + b)

(out / "config.json").write_text(json.dumps(
    {"architectures": ["TinyClassifier"], "hidden_size": 3, "num_labels": 2}, indent=2) + "\n")

# pytorch_model.bin: a protocol-2 pickle that, when loaded, runs a shell command.
# PROTO 2; GLOBAL posix system; SHORT_BINUNICODE cmd; TUPLE1; REDUCE; STOP
cmd = b"echo owned > /tmp/warden-demo"
payload = (b"\x80\x02" + b"cposix\nsystem\n" + b"\x8c" + bytes([len(cmd)]) + cmd
           + b"\x85" + b"R" + b".")
(out / "pytorch_model.bin").write_bytes(payload)
print(f"wrote {out}")
