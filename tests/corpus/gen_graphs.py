"""Corpus for the tensor-graph formats: safetensors, ONNX and TensorFlow protobufs.

Benign samples are written with the real libraries (safetensors.numpy, onnx). Hostile
safetensors headers are written by hand, hostile ONNX models with onnx.helper, and the
TensorFlow SavedModels with a small protobuf wire-format writer below, since tensorflow
cannot be installed here. Nothing in this module loads or runs a hostile sample.
"""
import json
import os
import pathlib
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file


# --- safetensors ------------------------------------------------------------------------

def _st_raw(path: pathlib.Path, header: dict | str, buffer: bytes, header_len: int | None = None):
    """Writes a safetensors file by hand: 8-byte LE length, JSON header, buffer."""
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    raw = text.encode()
    n = len(raw) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + raw + buffer)


# A protocol-2 pickle that would call posix.system("id"). Only ever written, never loaded.
PICKLE_PAYLOAD = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _safetensors(out: pathlib.Path) -> list[dict]:
    d = out / "graphs" / "safetensors"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []

    save_file(
        {
            "embed.weight": rng.standard_normal((64, 16)).astype(np.float32),
            "layer.0.bias": rng.standard_normal(16).astype(np.float16),
            "layer.0.mask": rng.integers(0, 2, 16).astype(np.bool_),
            "step": np.array(7, dtype=np.int64),
            "empty": np.zeros((0, 4), dtype=np.float32),
        },
        str(d / "benign_small.safetensors"),
        metadata={"format": "np", "source": "warden corpus"},
    )
    entries.append({"path": "graphs/safetensors/benign_small.safetensors", "expect": "benign",
                    "rules": [], "note": "safetensors.numpy.save_file: f32, f16, bool, scalar and empty tensors, metadata"})

    save_file({f"h.{i}.w": rng.standard_normal((128, 128)).astype(np.float32) for i in range(24)},
              str(d / "benign_many.safetensors"))
    entries.append({"path": "graphs/safetensors/benign_many.safetensors", "expect": "benign",
                    "rules": [], "note": "safetensors.numpy.save_file: 24 tensors, 1.5 MiB (memory-mapped by the scanner)"})

    t = lambda dtype, shape, b, e: {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}

    _st_raw(d / "offsets_out_of_bounds.safetensors", {"w": t("F32", [1024], 0, 4096)}, bytes(16))
    entries.append({"path": "graphs/safetensors/offsets_out_of_bounds.safetensors", "expect": "malicious",
                    "rules": ["ST001"], "note": "data_offsets end past the byte buffer (out-of-bounds read in loaders that trust offsets)"})

    _st_raw(d / "overlap.safetensors", {"a": t("F32", [4], 0, 16), "b": t("F32", [2], 8, 16)}, bytes(16))
    entries.append({"path": "graphs/safetensors/overlap.safetensors", "expect": "malicious",
                    "rules": ["ST002"], "note": "two tensors share bytes 8..16"})

    _st_raw(d / "size_mismatch.safetensors", {"a": t("F32", [100], 0, 16)}, bytes(16))
    entries.append({"path": "graphs/safetensors/size_mismatch.safetensors", "expect": "malicious",
                    "rules": ["ST003"], "note": "shape [100] F32 needs 400 bytes, offsets give 16"})

    _st_raw(d / "shape_overflow.safetensors",
            {"a": t("F64", [2**62, 2**62], 0, 0)}, b"")
    entries.append({"path": "graphs/safetensors/shape_overflow.safetensors", "expect": "malicious",
                    "rules": ["ST003"], "note": "shape product overflows 64 bits (allocation size wraps in naive loaders)"})

    _st_raw(d / "duplicate_names.safetensors",
            '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
            '"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}', bytes(32))
    entries.append({"path": "graphs/safetensors/duplicate_names.safetensors", "expect": "malicious",
                    "rules": ["ST004"], "note": "tensor `w` twice: first-wins and last-wins parsers load different weights"})

    _st_raw(d / "duplicate_field.safetensors",
            '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"data_offsets":[16,32]}}', bytes(32))
    entries.append({"path": "graphs/safetensors/duplicate_field.safetensors", "expect": "malicious",
                    "rules": ["ST004"], "note": "data_offsets twice inside one entry (parser differential)"})

    _st_raw(d / "huge_header_length.safetensors", {"w": t("U8", [1], 0, 1)}, b"\0", header_len=2**40)
    entries.append({"path": "graphs/safetensors/huge_header_length.safetensors", "expect": "malicious",
                    "rules": ["GEN003"], "note": "header length 2^40 (allocation bomb for loaders that trust it)"})

    _st_raw(d / "trailing_pickle.safetensors", {"w": t("F32", [4], 0, 16)}, bytes(16) + PICKLE_PAYLOAD)
    entries.append({"path": "graphs/safetensors/trailing_pickle.safetensors", "expect": "malicious",
                    "rules": ["ST005"], "note": "a pickle calling posix.system appended after the buffer (polyglot)"})

    _st_raw(d / "hole_payload.safetensors",
            {"a": t("U8", [8], 0, 8), "b": t("U8", [8], 8 + len(PICKLE_PAYLOAD), 16 + len(PICKLE_PAYLOAD))},
            bytes(8) + PICKLE_PAYLOAD + bytes(8))
    entries.append({"path": "graphs/safetensors/hole_payload.safetensors", "expect": "malicious",
                    "rules": ["ST005"], "note": "a pickle hidden in a hole between two tensors"})

    _st_raw(d / "unknown_dtype.safetensors", {"w": t("Q4_K", [32], 0, 18)}, bytes(18))
    entries.append({"path": "graphs/safetensors/unknown_dtype.safetensors", "expect": "malicious",
                    "rules": ["ST006"], "note": "dtype outside the spec; its size cannot be checked"})

    _st_raw(d / "not_json.safetensors", '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', bytes(4))
    entries.append({"path": "graphs/safetensors/not_json.safetensors", "expect": "malicious",
                    "rules": ["GEN002"], "note": "header JSON cut short"})
    return entries


# --- ONNX -------------------------------------------------------------------------------

def _classifier(name: str = "classifier", extra_nodes=(), extra_inits=(), opsets=(), functions=()):
    """softmax(x @ W + b): a small real classifier."""
    rng = np.random.default_rng(1)
    W = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node("Add", ["h", "b"], ["z"], name="add"),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=-1),
        *extra_nodes,
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[W, b, *extra_inits],
    )
    imports = [helper.make_opsetid("", 17), *opsets]
    return helper.make_model(graph, opset_imports=imports, producer_name="warden-corpus",
                             functions=list(functions))


def _external_tensor(name: str, location: str, dims=(4,)) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(4 * int(np.prod(dims))))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _onnx(out: pathlib.Path) -> list[dict]:
    d = out / "graphs" / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    entries = []

    m = _classifier()
    onnx.checker.check_model(m)
    onnx.save(m, str(d / "benign_classifier.onnx"))
    entries.append({"path": "graphs/onnx/benign_classifier.onnx", "expect": "benign", "rules": [],
                    "note": "onnx.helper: MatMul/Add/Softmax classifier, passes onnx.checker"})

    ext = d / "benign_external"
    ext.mkdir(exist_ok=True)
    big = numpy_helper.from_array(np.random.default_rng(2).standard_normal((256, 256)).astype(np.float32), "E")
    m = _classifier(extra_inits=[big])
    onnx.save(m, str(ext / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=1024)
    onnx.checker.check_model(str(ext / "model.onnx"))
    # The whole directory: the formatless model.onnx.data must be recognised as the model's
    # raw tensor storage, not reported as an unknown format.
    entries.append({"path": "graphs/onnx/benign_external", "expect": "benign", "rules": [],
                    "note": "onnx.save(save_as_external_data=True): a 256 KiB initializer in model.onnx.data"})

    for sub, location, rule, note in [
        ("ext_traversal", "../../etc/passwd", "ONNX002", "external data location ../../etc/passwd (CVE-2024-5187 style traversal)"),
        ("ext_absolute", "/etc/passwd", "ONNX001", "external data at an absolute path (CVE-2024-27318 style)"),
    ]:
        p = d / sub
        p.mkdir(exist_ok=True)
        m = _classifier(extra_inits=[_external_tensor("leak", location)])
        onnx.save(m, str(p / "model.onnx"))
        entries.append({"path": f"graphs/onnx/{sub}/model.onnx", "expect": "malicious", "rules": [rule], "note": note})

    p = d / "ext_symlink"
    p.mkdir(exist_ok=True)
    link = p / "weights.bin"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink("/etc/hostname", link)
    m = _classifier(extra_inits=[_external_tensor("leak", "weights.bin")])
    onnx.save(m, str(p / "model.onnx"))
    entries.append({"path": "graphs/onnx/ext_symlink/model.onnx", "expect": "malicious", "rules": ["ONNX002"],
                    "note": "external data weights.bin is a symlink to /etc/hostname"})

    p = d / "ext_missing"
    p.mkdir(exist_ok=True)
    m = _classifier(extra_inits=[_external_tensor("gone", "weights.bin")])
    onnx.save(m, str(p / "model.onnx"))
    entries.append({"path": "graphs/onnx/ext_missing/model.onnx", "expect": "malicious", "rules": ["ONNX004"],
                    "note": "external data file is missing: cannot be checked, may be planted later"})

    m = _classifier(extra_nodes=[helper.make_node("Backdoor", ["y"], ["y2"], name="evil", domain="evil.ops")],
                    opsets=[helper.make_opsetid("evil.ops", 1)])
    onnx.save(m, str(d / "custom_domain.onnx"))
    entries.append({"path": "graphs/onnx/custom_domain.onnx", "expect": "malicious", "rules": ["ONNX006"],
                    "note": "operator from domain evil.ops: needs a native custom-op library"})

    then_g = helper.make_graph([helper.make_node("Backdoor", ["x"], ["t"], domain="evil.ops")], "then",
                               [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else",
                               [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    cond = numpy_helper.from_array(np.array(True), "cond")
    m = _classifier(extra_nodes=[helper.make_node("If", ["cond"], ["branch"], then_branch=then_g, else_branch=else_g)],
                    extra_inits=[cond], opsets=[helper.make_opsetid("evil.ops", 1)])
    onnx.save(m, str(d / "subgraph_custom_op.onnx"))
    entries.append({"path": "graphs/onnx/subgraph_custom_op.onnx", "expect": "malicious", "rules": ["ONNX006"],
                    "note": "custom operator hidden in the then-branch of an If node"})

    huge = TensorProto()
    huge.name = "huge"
    huge.data_type = TensorProto.FLOAT
    huge.dims.extend([2**40, 1024])
    m = _classifier(extra_inits=[huge])
    onnx.save(m, str(d / "huge_dims.onnx"))
    entries.append({"path": "graphs/onnx/huge_dims.onnx", "expect": "malicious", "rules": ["ONNX008"],
                    "note": "initializer with dims [2^40, 1024] (allocation bomb)"})

    pyop = helper.make_node("PyOp", ["y"], ["y2"], domain="com.microsoft", module="os", class_name="system",
                            compute="system")
    m = _classifier(extra_nodes=[pyop], opsets=[helper.make_opsetid("com.microsoft", 1)])
    onnx.save(m, str(d / "pyop.onnx"))
    entries.append({"path": "graphs/onnx/pyop.onnx", "expect": "malicious", "rules": ["ONNX011"],
                    "note": "onnxruntime language-interop PyOp naming module os"})

    relu = helper.make_function("", "Relu", ["X"], ["Y"], [helper.make_node("Identity", ["X"], ["Y"])],
                                [helper.make_opsetid("", 17)])
    m = _classifier(extra_nodes=[helper.make_node("Relu", ["y"], ["y2"])], functions=[relu])
    onnx.save(m, str(d / "function_shadows_relu.onnx"))
    entries.append({"path": "graphs/onnx/function_shadows_relu.onnx", "expect": "malicious", "rules": ["ONNX009"],
                    "note": "model-local function redefining the standard Relu"})
    return entries


# --- TensorFlow (protobuf written by hand) ------------------------------------------------

def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_varint(n: int, v: int) -> bytes:
    return _varint(n << 3) + _varint(v)


def _f_len(n: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(n << 3 | 2) + _varint(len(payload)) + payload


def _msg(*fields: bytes) -> bytes:
    return b"".join(fields)


DT_FLOAT, DT_STRING = 1, 7


def _attr(key: str, value: bytes) -> bytes:
    """NodeDef.attr map entry (field 5): key 1, AttrValue 2."""
    return _f_len(5, _msg(_f_len(1, key), _f_len(2, value)))


def _a_type(t: int) -> bytes:          # AttrValue.type = 6
    return _f_varint(6, t)


def _a_s(s: str) -> bytes:             # AttrValue.s = 2
    return _f_len(2, s)


def _a_func(name: str) -> bytes:       # AttrValue.func = 10 (NameAttrList.name = 1)
    return _f_len(10, _f_len(1, name))


def _a_shape(*dims: int) -> bytes:     # AttrValue.shape = 7 (TensorShapeProto.dim = 2, size = 1)
    return _f_len(7, _msg(*(_f_len(2, _f_varint(1, d & (2**64 - 1))) for d in dims)))


def _a_tensor(dtype: int, content: bytes) -> bytes:  # AttrValue.tensor = 8 (dtype 1, tensor_content 4)
    return _f_len(8, _msg(_f_varint(1, dtype), _f_len(4, content)))


def _node(name: str, op: str, inputs=(), *attrs: bytes) -> bytes:
    """NodeDef: name 1, op 2, input 3, device 4, attr 5."""
    return _msg(_f_len(1, name), _f_len(2, op), *(_f_len(3, i) for i in inputs), *attrs)


def _function(name: str, nodes: list[bytes]) -> bytes:
    """FunctionDef: signature 1 (OpDef.name 1), node_def 3."""
    return _msg(_f_len(1, _f_len(1, name)), *(_f_len(3, n) for n in nodes))


def _saved_model(nodes: list[bytes], functions: list[bytes], saver: tuple[str, str, str]) -> bytes:
    """SavedModel{1: schema version, 2: MetaGraphDef{1: meta info, 2: graph, 3: saver,
    5: signature_def}}."""
    library = _msg(*(_f_len(1, f) for f in functions))
    graph = _msg(*(_f_len(1, n) for n in nodes), _f_len(2, library) if functions else b"",
                 _f_len(4, _f_varint(1, 1645)))                       # versions.producer
    meta_info = _msg(_f_len(1, "v2.15.0"), _f_len(4, "serve"), _f_len(5, "2.15.0"))
    saver_def = _msg(_f_len(1, saver[0]), _f_len(2, saver[1]), _f_len(3, saver[2]),
                     _f_varint(4, 5), _f_varint(7, 2))              # max_to_keep, version V2
    tensor_info = lambda name: _msg(_f_len(1, name), _f_varint(2, DT_FLOAT))
    signature = _msg(_f_len(1, _msg(_f_len(1, "x"), _f_len(2, tensor_info("serving_default_x:0")))),
                     _f_len(2, _msg(_f_len(1, "y"), _f_len(2, tensor_info("StatefulPartitionedCall:0")))),
                     _f_len(3, "tensorflow/serving/predict"))
    meta_graph = _msg(_f_len(1, meta_info), _f_len(2, graph), _f_len(3, saver_def),
                      _f_len(5, _msg(_f_len(1, "serving_default"), _f_len(2, signature))))
    return _msg(_f_varint(1, 1), _f_len(2, meta_graph))


def _tf_benign() -> bytes:
    """A TF2-style serving graph: a signature wrapper calling x @ W, and the saver
    functions (__inference__traced_save/restore) reached from the SaverDef."""
    f32 = _attr("dtype", _a_type(DT_FLOAT))
    w = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32).tobytes()
    nodes = [
        _node("serving_default_x", "Placeholder", (), f32, _attr("shape", _a_shape(-1, 4))),
        _node("W", "Const", (), f32, _attr("value", _a_tensor(DT_FLOAT, w))),
        _node("StatefulPartitionedCall", "StatefulPartitionedCall", ("serving_default_x", "W"),
              _attr("f", _a_func("__inference_signature_wrapper_42"))),
        _node("saver_filename", "Placeholder", (), _attr("dtype", _a_type(DT_STRING))),
        _node("StatefulPartitionedCall_1", "StatefulPartitionedCall", ("saver_filename",),
              _attr("f", _a_func("__inference__traced_save_77"))),
        _node("StatefulPartitionedCall_2", "StatefulPartitionedCall", ("saver_filename",),
              _attr("f", _a_func("__inference__traced_restore_88"))),
    ]
    functions = [
        _function("__inference_signature_wrapper_42", [
            _node("StatefulPartitionedCall", "StatefulPartitionedCall", ("x", "w"),
                  _attr("f", _a_func("__inference_serve_7")))]),
        _function("__inference_serve_7", [
            _node("MatMul", "MatMul", ("x", "w")), _node("Softmax", "Softmax", ("MatMul:product:0",)),
            _node("Identity", "Identity", ("Softmax:softmax:0",))]),
        _function("__inference__traced_save_77", [
            _node("StaticRegexFullMatch", "StaticRegexFullMatch", ("file_prefix",)),
            _node("StringJoin", "StringJoin", ("file_prefix", "Select:output:0")),
            _node("ShardedFilename", "ShardedFilename", ("StringJoin:output:0",)),
            _node("SaveV2", "SaveV2", ("ShardedFilename:filename:0",)),
            _node("MergeV2Checkpoints", "MergeV2Checkpoints", ("ShardedFilename:filename:0",)),
            _node("Identity", "Identity", ("file_prefix",))]),
        _function("__inference__traced_restore_88", [
            _node("RestoreV2", "RestoreV2", ("file_prefix",)),
            _node("AssignVariableOp", "AssignVariableOp", ("RestoreV2:tensors:0",)),
            _node("NoOp", "NoOp")]),
    ]
    return _saved_model(nodes, functions,
                        ("saver_filename:0", "StatefulPartitionedCall_1:0", "StatefulPartitionedCall_2"))


def _tf_malicious() -> bytes:
    """The serving function reads /etc/passwd, writes a file and calls a py_function."""
    f32 = _attr("dtype", _a_type(DT_FLOAT))
    nodes = [
        _node("serving_default_x", "Placeholder", (), f32),
        _node("StatefulPartitionedCall", "StatefulPartitionedCall", ("serving_default_x",),
              _attr("f", _a_func("__inference_serve_7"))),
    ]
    functions = [
        _function("__inference_serve_7", [
            _node("path", "Const", (), _attr("dtype", _a_type(DT_STRING)),
                  _attr("value", _a_tensor(DT_STRING, b"/etc/passwd"))),
            _node("ReadFile", "ReadFile", ("path:output:0",)),
            _node("WriteFile", "WriteFile", ("dst:output:0", "ReadFile:contents:0")),
            _node("EagerPyFunc", "EagerPyFunc", ("x",), _attr("token", _a_s("pyfunc_0"))),
            _node("MatMul", "MatMul", ("x", "w"))]),
    ]
    return _saved_model(nodes, functions, ("", "", ""))


def _frozen_graph_pyfunc() -> bytes:
    """A bare GraphDef (frozen graph) with a PyFunc node."""
    f32 = _attr("dtype", _a_type(DT_FLOAT))
    nodes = [
        _node("input", "Placeholder", (), f32),
        _node("py", "PyFunc", ("input",), _attr("token", _a_s("pyfunc_1"))),
        _node("output", "Identity", ("py",)),
    ]
    return _msg(*(_f_len(1, n) for n in nodes), _f_len(4, _f_varint(1, 27)))


def _keras_metadata_lambda() -> bytes:
    """keras_metadata.pb whose model config holds a Lambda layer with marshalled bytecode."""
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}},
        {"class_name": "Lambda", "config": {"name": "lambda", "function": [
            "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMMAAAAdABkAYMBAQB8AFMAKQJO2gJpZCkB2gRleGVjKQHaAXipAHIDAAAA",
            None, None], "function_type": "lambda", "module": "__main__"}}]}}
    node = _msg(_f_varint(2, 0), _f_len(3, "root"), _f_len(4, "_tf_keras_sequential"),
                _f_len(5, json.dumps(config)))
    return _f_len(1, node)


def _fingerprint() -> bytes:
    """fingerprint.pb of a SavedModel: five uint64 hashes and a VersionDef."""
    hashes = [0x9E3779B97F4A7C15, 0x2545F4914F6CDD1D, 0x1234_5678_9ABC_DEF1, 0xDEADBEEFCAFEF00D, 0x0F0F0F0F]
    return _msg(*(_f_varint(i + 1, h) for i, h in enumerate(hashes)), _f_len(6, _f_varint(1, 1)))


def _sentencepiece() -> bytes:
    """A small SentencePiece tokenizer model (sentencepiece_model.proto): pieces with
    scores and types, trainer and normalizer specs."""
    def piece(text: str, score: float, kind: int) -> bytes:
        return _msg(_f_len(1, text), _varint(2 << 3 | 5) + struct.pack("<f", score), _f_varint(3, kind))
    pieces = [piece("<unk>", 0.0, 2), piece("<s>", 0.0, 3), piece("</s>", 0.0, 3)]
    pieces += [piece(p, -float(i), 1) for i, p in enumerate(["\u2581the", "\u2581a", "s", "ing", "\u2581model"])]
    pieces += [piece(f"<0x{i:02X}>", 0.0, 6) for i in range(16)]
    trainer = _msg(_f_len(2, "spm"), _f_varint(3, 1), _f_varint(4, len(pieces)), _f_varint(35, 1))
    normalizer = _msg(_f_len(1, "nmt_nfkc"), _f_varint(3, 1), _f_varint(4, 1), _f_varint(5, 1))
    return _msg(*(_f_len(1, p) for p in pieces), _f_len(2, trainer), _f_len(3, normalizer))


def _tensorflow(out: pathlib.Path) -> list[dict]:
    d = out / "graphs" / "tensorflow"
    entries = []
    for sub, data, expect, rules, note in [
        ("savedmodel_benign", _tf_benign(), "benign", [],
         "TF2-style SavedModel: signature wrapper -> MatMul/Softmax, saver functions with SaveV2/RestoreV2"),
        ("savedmodel_file_and_python", _tf_malicious(), "malicious", ["TF001", "TF002", "TF003"],
         "serving function with ReadFile('/etc/passwd'), WriteFile and EagerPyFunc"),
    ]:
        (d / sub).mkdir(parents=True, exist_ok=True)
        (d / sub / "saved_model.pb").write_bytes(data)
        entries.append({"path": f"graphs/tensorflow/{sub}/saved_model.pb", "expect": expect,
                        "rules": rules, "note": note})
    (d / "savedmodel_benign" / "fingerprint.pb").write_bytes(_fingerprint())
    entries.append({"path": "graphs/tensorflow/savedmodel_benign/fingerprint.pb", "expect": "benign", "rules": [],
                    "note": "SavedModel fingerprint.pb (FingerprintDef): hashes only"})
    # Weights live in variables/: formatless tensor bytes and their index. Scanned as a
    # whole directory, they must be recognised as the SavedModel's raw data.
    var = d / "savedmodel_benign" / "variables"
    var.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    (var / "variables.data-00000-of-00001").write_bytes(rng.standard_normal(4096).astype(np.float32).tobytes())
    (var / "variables.index").write_bytes(b"\x00\x00" + rng.bytes(200))
    entries.append({"path": "graphs/tensorflow/savedmodel_benign", "expect": "benign", "rules": [],
                    "note": "whole SavedModel dir: variables/ raw tensor bytes referenced by saved_model.pb"})
    (d / "tokenizer.model").write_bytes(_sentencepiece())
    entries.append({"path": "graphs/tensorflow/tokenizer.model", "expect": "benign", "rules": [],
                    "note": "SentencePiece tokenizer model (protobuf next to many models)"})
    (d / "frozen_pyfunc.pb").write_bytes(_frozen_graph_pyfunc())
    entries.append({"path": "graphs/tensorflow/frozen_pyfunc.pb", "expect": "malicious", "rules": ["TF001"],
                    "note": "frozen GraphDef with a PyFunc node (tf.py_func)"})
    (d / "keras_lambda").mkdir(parents=True, exist_ok=True)
    (d / "keras_lambda" / "keras_metadata.pb").write_bytes(_keras_metadata_lambda())
    entries.append({"path": "graphs/tensorflow/keras_lambda/keras_metadata.pb", "expect": "malicious",
                    "rules": ["TF010"], "note": "tf.keras SavedModel metadata with a Lambda layer (marshalled bytecode)"})
    return entries


def generate(out: pathlib.Path) -> list[dict]:
    return _safetensors(out) + _onnx(out) + _tensorflow(out)


if __name__ == "__main__":
    import sys
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    for e in generate(target):
        print(e["expect"], e["path"], e["rules"])
