//! What one pickle stream does when it is loaded: the globals it imports, the calls it makes
//! and the objects it builds, in the order the unpickler would perform them.

use std::borrow::Cow;

use crate::error::ParseError;

use super::value::{Heap, Items, Obj, ObjId, Value};

/// How an imported global was used by the stream itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uses {
    /// Called as a function: `REDUCE`, `INST`/`OBJ` with arguments.
    pub called: bool,
    /// Instantiated as a class: `NEWOBJ`, `NEWOBJ_EX`, `INST`/`OBJ` without arguments.
    pub instantiated: bool,
    /// `BUILD` applied to the global itself (sets attributes on a class or module object).
    pub built: bool,
    /// `APPEND`/`SETITEM`/`ADDITEMS` applied to the global itself (e.g. `os.environ[...] =`).
    pub mutated: bool,
}

impl Uses {
    /// True when the unpickler itself runs code of this global.
    pub fn invoked(&self) -> bool {
        self.called || self.instantiated || self.built || self.mutated
    }
}

/// One import performed by `GLOBAL`, `STACK_GLOBAL` or `INST` (`find_class(module, name)`).
/// Names are borrowed from the stream when they are printed as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global<'a> {
    /// Offset of the opcode.
    pub offset: u64,
    /// `GLOBAL`, `STACK_GLOBAL` or `INST`.
    pub opcode: &'static str,
    /// Module imported, after `fix_imports` (Python 2 names mapped to Python 3 for
    /// protocols below 3).
    pub module: Cow<'a, str>,
    /// Attribute looked up in the module; may be dotted (`Class.method`).
    pub name: Cow<'a, str>,
    /// The names as written, when `fix_imports` changed them.
    pub written: Option<(String, String)>,
    /// The names were computed by calls at load time (`STACK_GLOBAL` over call results),
    /// so `module` and `name` are renderings, not names.
    pub dynamic: bool,
    pub uses: Uses,
}

impl Global<'_> {
    /// `module.name`, the full dotted path judged by policies.
    pub fn path(&self) -> String {
        let mut path = String::with_capacity(
            self.module
                .len()
                .saturating_add(self.name.len())
                .saturating_add(1),
        );
        path.push_str(&self.module);
        path.push('.');
        path.push_str(&self.name);
        path
    }
}

/// How a call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `REDUCE`: `callee(*args)`.
    Reduce,
    /// `INST`: `klass(*args)` (or `klass.__new__(klass)` without arguments).
    Inst,
    /// `OBJ`: as `INST`, the class taken from the stack.
    Obj,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// A method the unpickler calls on an object that is not a plain list, dict or set:
    /// `append`, `extend`, `__setitem__` or `add` (from `APPEND(S)`, `SETITEM(S)`,
    /// `ADDITEMS`), or `__setstate__` is not listed: `BUILD` is recorded in `builds`.
    Method(&'static str),
}

/// One call the unpickler makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<'a> {
    pub offset: u64,
    pub kind: CallKind,
    /// What is called: usually a global, possibly the result of another call.
    pub callee: Value<'a>,
    /// Positional arguments (read them with [`Trace::args`]). When the stream passed
    /// something other than a tuple (`args_opaque`), this holds that one value.
    pub args: Items,
    pub args_opaque: bool,
    /// `NEWOBJ_EX` keyword arguments.
    pub kwargs: Option<Value<'a>>,
    /// The last `BUILD` state applied to the call's result.
    pub state: Option<Value<'a>>,
}

/// `BUILD`: `target.__setstate__(state)` or an update of `target.__dict__`.
#[derive(Debug, Clone, PartialEq)]
pub struct Build<'a> {
    pub offset: u64,
    pub target: Value<'a>,
    pub state: Value<'a>,
}

/// `PERSID`/`BINPERSID`: a reference the loader's `persistent_load` resolves (PyTorch
/// storages).
#[derive(Debug, Clone, PartialEq)]
pub struct PersistentId<'a> {
    pub offset: u64,
    pub pid: Value<'a>,
}

/// `EXT1`/`EXT2`/`EXT4`: an object looked up in `copyreg`'s extension registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    pub offset: u64,
    pub code: i64,
}

/// Raw array bytes joblib's `NumpyUnpickler` reads from the stream after a
/// `joblib.numpy_pickle.NumpyArrayWrapper` is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoblibArray {
    /// Offset of the BUILD that triggered the read.
    pub offset: u64,
    /// Where the array bytes (after any alignment padding) start, and how many.
    pub data_offset: u64,
    pub data_len: u64,
    /// dtype as pickled (`f8`, `U10`, `O8`).
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Object dtype: the "bytes" are a whole nested pickle (see `Trace::nested`).
    pub object: bool,
}

/// Something odd that did not stop the unpickler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub offset: u64,
    pub message: String,
}

/// Everything one pickle stream does, up to its `STOP` or the first error.
#[derive(Debug, Clone, Default)]
pub struct Trace<'a> {
    /// Where the stream starts and where reading stopped (after `STOP`, or at the error).
    pub start: u64,
    pub end: u64,
    /// Highest `PROTO` seen (0 when none: protocols 0 and 1 have no `PROTO`).
    pub protocol: u8,
    /// Opcodes executed.
    pub ops: u64,
    pub globals: Vec<Global<'a>>,
    pub calls: Vec<Call<'a>>,
    pub builds: Vec<Build<'a>>,
    pub persistent_ids: Vec<PersistentId<'a>>,
    pub extensions: Vec<Extension>,
    pub joblib_arrays: Vec<JoblibArray>,
    /// Pickles nested in this one and read by the same loader (joblib object arrays).
    pub nested: Vec<Trace<'a>>,
    pub anomalies: Vec<Anomaly>,
    /// The value `STOP` returned.
    pub result: Option<Value<'a>>,
    /// Why reading stopped before `STOP`. Everything above was done before it.
    pub error: Option<ParseError>,
    /// For a joblib stream (read above as `joblib.load` would): the same bytes read as
    /// plain `pickle.load` would, which interprets joblib's raw array bytes as opcodes.
    pub pickle_load_view: Option<Box<Trace<'a>>>,
    pub(crate) heap: Heap<'a>,
}

impl<'a> Trace<'a> {
    pub fn heap(&self) -> &Heap<'a> {
        &self.heap
    }

    pub fn obj(&self, v: Value<'a>) -> Option<&Obj<'a>> {
        match v {
            Value::Obj(id) => self.heap.get(id),
            _ => None,
        }
    }

    pub fn obj_by_id(&self, id: ObjId) -> Option<&Obj<'a>> {
        self.heap.get(id)
    }

    /// The global a value is, if it is one.
    pub fn global_index(&self, v: Value<'a>) -> Option<usize> {
        match self.obj(v)? {
            Obj::Global(i) => Some(*i),
            _ => None,
        }
    }

    pub fn global_of(&self, v: Value<'a>) -> Option<&Global<'a>> {
        self.globals.get(self.global_index(v)?)
    }

    /// The call whose result a value is, if it is one.
    pub fn call_index(&self, v: Value<'a>) -> Option<usize> {
        match self.obj(v)? {
            Obj::Instance(i) => Some(*i),
            _ => None,
        }
    }

    /// The global a call calls, when the callee is a global.
    pub fn callee_global(&self, call: &Call<'a>) -> Option<&Global<'a>> {
        self.global_of(call.callee)
    }

    /// The class a call instantiates: its callee for `NEWOBJ`/`REDUCE` of a class, or the
    /// first argument of `copyreg._reconstructor` / `copyreg.__newobj__` /
    /// `copyreg.__newobj_ex__` (how protocols 0 and 1 build instances).
    pub fn class_of_instance(&self, call: &Call<'a>) -> Option<&Global<'a>> {
        let callee = self.callee_global(call)?;
        let maker = callee.module == "copyreg"
            && matches!(
                &*callee.name,
                "_reconstructor" | "__newobj__" | "__newobj_ex__"
            );
        if maker {
            self.global_of(*self.args(call).first()?)
        } else {
            Some(callee)
        }
    }

    /// A `str` value's UTF-8 bytes.
    pub fn str_bytes(&self, v: Value<'a>) -> Option<&[u8]> {
        match v {
            Value::Str(s) => Some(s),
            Value::Obj(_) => match self.obj(v)? {
                Obj::Text(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// A `bytes`-like value's bytes (`bytes`, `bytearray`).
    pub fn bytes_of(&self, v: Value<'a>) -> Option<&'a [u8]> {
        match v {
            Value::Bytes(b) => Some(b),
            Value::Obj(_) => match self.obj(v)? {
                Obj::ByteArray(b) => Some(*b),
                _ => None,
            },
            _ => None,
        }
    }

    /// Elements of a tuple or list.
    pub fn items(&self, v: Value<'a>) -> Option<&[Value<'a>]> {
        match self.obj(v)? {
            Obj::Tuple(items) => Some(self.heap.items(*items)),
            Obj::List(items) => Some(items),
            _ => None,
        }
    }

    /// A call's positional arguments.
    pub fn args(&self, call: &Call<'a>) -> &[Value<'a>] {
        self.heap.items(call.args)
    }

    /// The value of key `key` (a `str`) in a dict.
    pub fn dict_get(&self, v: Value<'a>, key: &str) -> Option<Value<'a>> {
        match self.obj(v)? {
            Obj::Dict(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| self.str_bytes(*k) == Some(key.as_bytes()))
                .map(|(_, v)| *v),
            _ => None,
        }
    }

    /// This trace and every trace nested in it, outermost first.
    pub fn all(&self) -> Vec<&Trace<'a>> {
        let mut out = vec![self];
        let mut i = 0;
        while let Some(t) = out.get(i).copied() {
            out.extend(t.nested.iter());
            i = i.saturating_add(1);
        }
        out
    }
}
