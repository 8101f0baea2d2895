//! Which pickle globals are known safe (allow-list, exact names) and which are known
//! dangerous (deny-list, whole modules and dangerous attribute chains).
//!
//! A global is judged by its full dotted path after Python 2 names were mapped
//! (`__builtin__.eval` is `builtins.eval`). The allow-list says how a name may be used:
//! a class that is safe to instantiate for `BUILD` is not thereby safe to call.

use super::allowlist::{CALLABLES, CLASSES, VALUES};

/// How an allow-listed global may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Safe to call with any arguments.
    Call,
    /// Safe to instantiate without `__init__` (`NEWOBJ`, `copyreg._reconstructor`), to pass
    /// around and to `BUILD`; not to call.
    Class,
    /// Safe only as a value (a dtype, a storage type, a function kept as a parameter).
    Value,
}

/// The built-in allow-list entry for a path. The lists are sorted (a test checks it), so
/// each is searched in place: no table is built at start-up.
pub fn builtin_allow(path: &str) -> Option<Allow> {
    let found = |list: &[&str]| list.binary_search(&path).is_ok();
    if found(CALLABLES) {
        Some(Allow::Call)
    } else if found(CLASSES) {
        Some(Allow::Class)
    } else if found(VALUES) {
        Some(Allow::Value)
    } else {
        None
    }
}

/// Modules whose every name is dangerous to import from a pickle: they run commands,
/// evaluate code, load more pickles, touch files or the network, or reach the interpreter.
/// Matched as a prefix on dotted-path boundaries (`os` matches `os.system` and
/// `os.path.join`, not `osgeo`).
pub const DENY_MODULES: &[&str] = &[
    // Processes and the operating system.
    "os",
    "posix",
    "nt",
    "_posixsubprocess",
    "subprocess",
    "commands",
    "popen2",
    "pty",
    "shutil",
    "signal",
    "_signal",
    "resource",
    "platform",
    "_osx_support",
    "_aix_support",
    "mailcap",
    "multiprocessing",
    "_multiprocessing",
    "concurrent",
    "threading",
    "_thread",
    "asyncio",
    "atexit",
    "sched",
    // The interpreter, imports and code objects.
    "sys",
    "importlib",
    "imp",
    "zipimport",
    "pkgutil",
    "runpy",
    "site",
    "code",
    "codeop",
    "types",
    "inspect",
    "gc",
    "ctypes",
    "_ctypes",
    "cffi",
    "__builtins__",
    "__main__.__builtins__",
    // Debuggers, profilers, tracers, REPLs that execute strings.
    "pdb",
    "bdb",
    "trace",
    "timeit",
    "cProfile",
    "profile",
    "_lsprof",
    "doctest",
    "idlelib",
    "lib2to3",
    "pydoc",
    "rlcompleter",
    "readline",
    "webbrowser",
    "antigravity",
    "this",
    "turtle",
    "tkinter",
    // More pickles, marshalled code, dynamic loaders.
    "pickle",
    "_pickle",
    "cPickle",
    "pickletools",
    "copyreg.add_extension",
    "copyreg.remove_extension",
    "copyreg.clear_extension_cache",
    "copyreg.dispatch_table",
    "copyreg.pickle",
    "dill",
    "cloudpickle",
    "joblib.load",
    "joblib.numpy_pickle.load",
    "joblib.numpy_pickle_compat",
    "joblib.externals",
    "shelve",
    "marshal",
    "srsly",
    "jsonpickle",
    "yaml",
    "pandas.read_pickle",
    "pandas.io",
    // Files, archives, paths.
    "io.open",
    "io.open_code",
    "io.FileIO",
    "_io",
    "codecs.open",
    "fileinput",
    "filecmp",
    "linecache",
    "tempfile",
    "glob",
    "pathlib",
    "zipfile",
    "tarfile",
    "gzip",
    "bz2",
    "lzma",
    "dbm",
    "sqlite3",
    "mmap",
    "compileall",
    "py_compile",
    "zipapp",
    "logging.config",
    "logging.handlers",
    // Network.
    "socket",
    "_socket",
    "socketserver",
    "ssl",
    "select",
    "selectors",
    "http",
    "urllib",
    "urllib2",
    "urllib3",
    "httplib",
    "requests",
    "httpx",
    "aiohttp",
    "ftplib",
    "smtplib",
    "poplib",
    "imaplib",
    "nntplib",
    "telnetlib",
    "xmlrpc",
    "xmlrpclib",
    "wsgiref",
    // Packaging, environments, installers.
    "pip",
    "_pip",
    "setuptools",
    "distutils",
    "ensurepip",
    "venv",
    "virtualenv",
    "pkg_resources",
    // Calling-by-name gadgets.
    "builtins.eval",
    "builtins.exec",
    "builtins.execfile",
    "builtins.compile",
    "builtins.open",
    "builtins.__import__",
    "builtins.__loader__",
    "builtins.__spec__",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.breakpoint",
    "builtins.input",
    "builtins.raw_input",
    "builtins.memoryview",
    "builtins.help",
    "builtins.exit",
    "builtins.quit",
    "builtins.apply",
    "builtins.reload",
    "builtins.file",
    "builtins.reduce",
    "operator.attrgetter",
    "operator.methodcaller",
    "operator.itemgetter",
    "operator.call",
    "_operator.attrgetter",
    "_operator.methodcaller",
    "_operator.itemgetter",
    "_operator.call",
    "functools.partial",
    "functools.partialmethod",
    "functools.reduce",
    "functools.singledispatch",
    "_functools",
    "itertools.starmap",
    "contextlib",
    "weakref.finalize",
    "ast",
    "string.Formatter",
    "string.Template",
    "jinja2",
    // PyTorch, NumPy and friends: loaders, compilers, file access.
    "torch.hub",
    "torch.load",
    "torch.save",
    "torch.jit",
    "torch.package",
    "torch.utils.bottleneck",
    "torch.utils.cpp_extension",
    "torch.utils.data",
    "torch.utils.collect_env",
    "torch.serialization",
    "torch._inductor",
    "torch._dynamo",
    "torch.fx",
    "torch.export",
    "torch.distributed",
    "torch.multiprocessing",
    "torch.ops",
    "torch._ops",
    "torch.compile",
    "torch.cuda.memory",
    "torch.classes",
    "torch.library",
    "torch._C._jit",
    "numpy.load",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "numpy.tofile",
    "numpy.memmap",
    "numpy.core.memmap",
    "numpy._core.memmap",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "numpy.lib._npyio_impl",
    "numpy.lib.utils",
    "numpy.f2py",
    "numpy.testing",
    "numpy.distutils",
    "numpy.ctypeslib",
    "keras",
    "tensorflow",
    "tf_keras",
    "transformers.dynamic_module_utils",
    "huggingface_hub",
];

/// Attribute names that reach the interpreter from any object (`getattr.__self__` is the
/// `builtins` module, `f.__globals__` a module's namespace) or name a dangerous module
/// inside an innocent-looking one (`torch._utils.os.system`).
pub const DENY_COMPONENTS: &[&str] = &[
    "__builtins__",
    "__builtin__",
    "__globals__",
    "__self__",
    "__func__",
    "__code__",
    "__closure__",
    "__subclasses__",
    "__bases__",
    "__base__",
    "__mro__",
    "__class__",
    "__dict__",
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__delattr__",
    "__import__",
    "__loader__",
    "__spec__",
    "__reduce__",
    "__reduce_ex__",
    "__setstate__",
    "__call__",
    "__init_subclass__",
    "__module__",
    "__wrapped__",
    "os",
    "posix",
    "nt",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "shutil",
    "socket",
    "runpy",
    "pickle",
    "marshal",
    "ctypes",
    "system",
    "popen",
    "eval",
    "exec",
    "execfile",
    "compile",
    "spawnl",
    "spawnv",
    "execv",
    "execve",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
];

/// True when `path` is on the deny-list: inside a denied module, or reaching through a
/// dangerous attribute. An exact built-in allow-list entry inside a denied module
/// (`torch.serialization._get_layout`, which rebuilds tensor layouts) is not denied.
pub fn denied(path: &str) -> bool {
    if builtin_allow(path).is_some() {
        return false;
    }
    // Python 2 spellings seen in protocol 3+ streams (where they are not mapped) are judged
    // by what they name.
    for (py2, py3) in [("__builtin__.", "builtins."), ("copy_reg.", "copyreg.")] {
        if let Some(rest) = path.strip_prefix(py2) {
            return denied(&format!("{py3}{rest}"));
        }
    }
    let by_module = DENY_MODULES.iter().any(|m| {
        path.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    });
    // The first component is the top-level module: `os` there is a module import; later
    // components are attributes reached through it.
    by_module
        || path
            .split('.')
            .skip(1)
            .any(|part| DENY_COMPONENTS.contains(&part))
}

/// Base classes `copyreg._reconstructor` may call `__new__`/`__init__` of.
pub const SAFE_BASES: &[&str] = &[
    "builtins.object",
    "builtins.dict",
    "builtins.list",
    "builtins.set",
    "builtins.frozenset",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.complex",
    "builtins.str",
    "builtins.bytes",
    "builtins.bytearray",
    "builtins.bool",
];

/// Encodings `_codecs.encode` may be asked for: the ones Python's pickler uses for bytes.
pub const SAFE_ENCODINGS: &[&str] = &[
    "latin1",
    "latin-1",
    "latin_1",
    "iso-8859-1",
    "iso8859-1",
    "iso8859_1",
    "l1",
    "ascii",
    "utf-8",
    "utf8",
    "utf_8",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_matches_modules_and_chains() {
        for p in [
            "os.system",
            "posix.system",
            "nt.system",
            "os.path.join",
            "subprocess.Popen",
            "builtins.eval",
            "builtins.getattr",
            "asyncio.subprocess.create_subprocess_shell",
            "asyncio.unix_events._UnixSubprocessTransport",
            "pip.main",
            "pip._internal.main",
            "runpy._run_code",
            "torch.hub.load",
            "torch.load",
            "numpy.load",
            "numpy.f2py.crackfortran.myeval",
            "idlelib.pyshell.ModifiedInterpreter.runcode",
            "torch._utils.os.system",
            "builtins.getattr.__self__",
            "collections.OrderedDict.__init__.__globals__",
            "_io.FileIO",
            "functools.partial",
            "operator.methodcaller",
            "types.CodeType",
            "code.InteractiveInterpreter.runsource",
            "__builtin__.eval",
            "copy_reg.add_extension",
        ] {
            assert!(denied(p), "{p}");
        }
        for p in [
            "osgeo.gdal",
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2",
            "numpy.core.multiarray._reconstruct",
            "sklearn.tree._tree.Tree",
            "builtins.set",
            "torch.loader",
            "ossify.x",
            "__builtin__.set",
        ] {
            assert!(!denied(p), "{p}");
        }
    }

    #[test]
    fn allow_is_exact_and_typed() {
        assert_eq!(
            builtin_allow("torch._utils._rebuild_tensor_v2"),
            Some(Allow::Call)
        );
        assert_eq!(builtin_allow("collections.OrderedDict"), Some(Allow::Call));
        assert_eq!(
            builtin_allow("sklearn.linear_model._logistic.LogisticRegression"),
            Some(Allow::Class)
        );
        assert_eq!(builtin_allow("torch.float32"), Some(Allow::Value));
        assert_eq!(builtin_allow("torch.FloatStorage"), Some(Allow::Value));
        assert_eq!(builtin_allow("numpy.core.multiarray._reconstruct.os"), None);
        assert_eq!(builtin_allow("builtins.eval"), None);
        // An exact allow-list entry inside a denied module is not denied; its neighbours are.
        assert!(!denied("torch.serialization._get_layout"));
        assert!(denied("torch.serialization.load"));
        for name in CALLABLES.iter().chain(CLASSES).chain(VALUES) {
            assert!(!denied(name), "{name} is both allowed and denied");
        }
    }

    #[test]
    fn allow_lists_are_sorted_and_disjoint() {
        // `builtin_allow` binary-searches each list and relies on this order.
        for list in [CALLABLES, CLASSES, VALUES] {
            for pair in list.windows(2) {
                assert!(
                    pair[0] < pair[1],
                    "{:?} must sort before {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
        for name in CLASSES.iter().chain(VALUES) {
            assert!(
                CALLABLES.binary_search(name).is_err(),
                "{name} listed twice"
            );
        }
        for name in VALUES {
            assert!(CLASSES.binary_search(name).is_err(), "{name} listed twice");
        }
    }
}
