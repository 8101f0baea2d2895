//! What the emulated unpickler holds on its stack and in its memo.
//!
//! Scalars and strings are [`Value`]s that borrow the input: a 1 GiB `BINBYTES` costs a
//! slice, not a copy. Everything with identity (tuples, lists, dicts, the classes a
//! `GLOBAL` imported, the objects a `REDUCE` made) lives in a [`Heap`] and is referred to by
//! index, so that `GET` shares an object exactly as Python's memo does, `APPEND` mutates the
//! list every holder sees, and cycles cost nothing.

/// Index of an object in the [`Heap`].
pub type ObjId = u32;

/// One value on the unpickler's stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// `LONG1`/`LONG4` payload too wide for `i64`: little-endian two's complement.
    Long(&'a [u8]),
    /// `INT`/`LONG` text too wide (or too odd) for `i64`, as written.
    LongText(&'a [u8]),
    Float(f64),
    /// A `str` as its UTF-8 bytes in the stream (not validated: Python's `surrogatepass`
    /// accepts more than Rust's UTF-8). Protocol-2 `BINSTRING`s decode to `str` too.
    Str(&'a [u8]),
    Bytes(&'a [u8]),
    /// An object in the heap.
    Obj(ObjId),
}

/// Values that never change once stored (a tuple's or frozenset's elements, a call's
/// arguments), kept in the [`Heap`]'s shared store rather than one allocation each: read
/// them with [`Heap::items`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Items {
    start: usize,
    len: usize,
}

impl Items {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All but the first value (none when there are none).
    pub(crate) fn after_first(self) -> Self {
        Self {
            start: self.start.saturating_add(usize::from(self.len > 0)),
            len: self.len.saturating_sub(1),
        }
    }
}

/// An object with identity.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj<'a> {
    Tuple(Items),
    List(Vec<Value<'a>>),
    Dict(Vec<(Value<'a>, Value<'a>)>),
    Set(Vec<Value<'a>>),
    FrozenSet(Items),
    /// A protocol-0 `STRING`/`UNICODE` that needed unescaping, as UTF-8.
    Text(Box<[u8]>),
    ByteArray(&'a [u8]),
    /// The class or function imported by `trace.globals[i]`.
    Global(usize),
    /// The object returned by `trace.calls[i]`.
    Instance(usize),
    /// What `persistent_load(trace.persistent_ids[i])` returned.
    Persistent(usize),
    /// What the extension registry returned for `trace.extensions[i]`.
    Extension(usize),
    /// An out-of-band buffer (`NEXT_BUFFER`), supplied by the loader.
    Buffer,
    /// A NumPy array joblib read from raw bytes after a `NumpyArrayWrapper`:
    /// `trace.joblib_arrays[i]`.
    JoblibArray(usize),
}

/// The objects of one pickle, with the nesting depth of each.
#[derive(Debug, Default, Clone)]
pub struct Heap<'a> {
    /// Each object with its nesting depth.
    objs: Vec<(Obj<'a>, u32)>,
    /// The store behind every [`Items`].
    items: Vec<Value<'a>>,
    /// Objects plus the elements they hold: what the values limit counts.
    cells: u64,
}

impl<'a> Heap<'a> {
    pub fn get(&self, id: ObjId) -> Option<&Obj<'a>> {
        self.objs.get(usize::try_from(id).ok()?).map(|(o, _)| o)
    }

    pub(crate) fn get_mut(&mut self, id: ObjId) -> Option<&mut Obj<'a>> {
        self.objs.get_mut(usize::try_from(id).ok()?).map(|(o, _)| o)
    }

    /// The values of `items`.
    pub fn items(&self, items: Items) -> &[Value<'a>] {
        self.items
            .get(items.start..items.start.saturating_add(items.len))
            .unwrap_or_default()
    }

    /// The elements of a tuple, list, set or frozenset.
    pub fn elements<'h>(&'h self, obj: &'h Obj<'a>) -> Option<&'h [Value<'a>]> {
        match obj {
            Obj::Tuple(items) | Obj::FrozenSet(items) => Some(self.items(*items)),
            Obj::List(v) | Obj::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Makes room for `objs` objects and `items` stored values.
    pub(crate) fn reserve(&mut self, objs: usize, items: usize) {
        self.objs.reserve(objs);
        self.items.reserve(items);
    }

    /// Stores values for good; returns their handle.
    pub(crate) fn store(&mut self, values: impl IntoIterator<Item = Value<'a>>) -> Items {
        let start = self.items.len();
        self.items.extend(values);
        Items {
            start,
            len: self.items.len().saturating_sub(start),
        }
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Objects plus their elements.
    pub fn cells(&self) -> u64 {
        self.cells
    }

    /// Nesting depth of a value: 0 for scalars, 1 for a flat tuple, ...
    pub fn depth_of(&self, v: &Value<'a>) -> u32 {
        match v {
            Value::Obj(id) => usize::try_from(*id)
                .ok()
                .and_then(|i| self.objs.get(i))
                .map(|(_, d)| d)
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Adds an object whose elements are `children`; returns its value and depth.
    pub(crate) fn alloc(&mut self, obj: Obj<'a>) -> (Value<'a>, u32) {
        let depth = match &obj {
            Obj::Dict(pairs) => self.max_depth(pairs.iter().flat_map(|(k, v)| [k, v])),
            _ => self.elements(&obj).map_or(0, |v| self.max_depth(v.iter())),
        }
        .saturating_add(1);
        let elements = match &obj {
            Obj::Dict(p) => p.len().saturating_mul(2),
            _ => self.elements(&obj).map_or(0, <[Value<'a>]>::len),
        };
        self.cells = self.cells.saturating_add(1).saturating_add(elements as u64);
        let id = ObjId::try_from(self.objs.len()).unwrap_or(ObjId::MAX);
        self.objs.push((obj, depth));
        (Value::Obj(id), depth)
    }

    fn max_depth<'v>(&self, vals: impl Iterator<Item = &'v Value<'a>>) -> u32
    where
        'a: 'v,
    {
        vals.map(|v| self.depth_of(v)).max().unwrap_or(0)
    }

    /// Counts `n` values held outside the heap (call arguments copied out of a tuple).
    pub(crate) fn charge(&mut self, n: usize) {
        self.cells = self.cells.saturating_add(n as u64);
    }

    /// Records that `n` elements, the deepest `child_depth` deep, were added to object `id`.
    /// Returns the object's new depth.
    pub(crate) fn grew(&mut self, id: ObjId, n: usize, child_depth: u32) -> u32 {
        self.cells = self.cells.saturating_add(n as u64);
        match usize::try_from(id).ok().and_then(|i| self.objs.get_mut(i)) {
            Some((_, d)) => {
                *d = (*d).max(child_depth.saturating_add(1));
                *d
            }
            None => 0,
        }
    }
}
