//! What each opcode does: CPython's `_Unpickler.load_*` methods, recording calls instead
//! of making them.

use std::borrow::Cow;

use crate::error::{ParseError, Result};

use super::joblib;
use super::machine::{bounded_name, Container, Flow, Machine, Mode};
use super::opcodes::Op;
use super::text;
use super::trace::{Build, CallKind, Extension, Global, JoblibArray, PersistentId, Trace};
use super::value::{Items, Obj, Value};

impl<'a> Machine<'a, '_> {
    pub(super) fn step(&mut self, op: Op, offset: u64) -> Result<Flow> {
        match op {
            Op::Proto => {
                let p = self.input.u8("PROTO argument")?;
                if p > 5 {
                    return Err(ParseError::unsupported(
                        offset,
                        format!("pickle protocol {p}"),
                    ));
                }
                self.proto = p;
                self.t.protocol = self.t.protocol.max(p);
            }
            Op::Frame => {
                let len = u64::from_le_bytes(self.input.array("FRAME length")?);
                self.frame_op(offset, len)?;
            }
            Op::Stop => {
                let v = self.pop(offset, op)?;
                self.t.result = Some(v);
                return Ok(Flow::Stop);
            }
            Op::Mark => self.marks.push(self.stack.len()),
            Op::Pop => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else if self.marks.pop().is_none() {
                    return Err(Self::underflow(offset, op));
                }
            }
            Op::PopMark => {
                let mark = self.pop_mark_index(offset, op)?;
                self.stack.truncate(mark);
            }
            Op::Dup => {
                let v = self.top(offset, op)?;
                self.stack.push(v);
            }
            Op::None => self.stack.push(Value::None),
            Op::NewTrue => self.stack.push(Value::Bool(true)),
            Op::NewFalse => self.stack.push(Value::Bool(false)),
            Op::Int => {
                let line = self.input.line("INT argument")?;
                let v = match line {
                    b"00" => Value::Bool(false),
                    b"01" => Value::Bool(true),
                    _ => match text::parse_int(line) {
                        Some(i) => Value::Int(i),
                        None => Value::LongText(line),
                    },
                };
                self.stack.push(v);
            }
            Op::BinInt => {
                let v = i32::from_le_bytes(self.input.array("BININT argument")?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::BinInt1 => {
                let v = self.input.u8("BININT1 argument")?;
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::BinInt2 => {
                let v = u16::from_le_bytes(self.input.array("BININT2 argument")?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::Long => {
                let line = self.input.line("LONG argument")?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let v = match text::parse_int(digits) {
                    Some(i) => Value::Int(i),
                    None => Value::LongText(digits),
                };
                self.stack.push(v);
            }
            Op::Long1 => {
                let n = self.input.u8("LONG1 length")?;
                let bytes = self.input.take(usize::from(n), "LONG1 payload")?;
                self.stack.push(long_value(bytes));
            }
            Op::Long4 => {
                let n = i32::from_le_bytes(self.input.array("LONG4 length")?);
                let n = u64::try_from(n).map_err(|_| {
                    ParseError::malformed(offset, "LONG4 has a negative byte count")
                })?;
                let bytes = self.input.take_u64(n, "LONG4 payload")?;
                self.stack.push(long_value(bytes));
            }
            Op::Float => {
                let line = self.input.line("FLOAT argument")?;
                let v = match text::parse_float(line) {
                    Some(f) => f,
                    None => {
                        self.anomaly(
                            offset,
                            "FLOAT argument is not a number (Python would stop here)",
                        );
                        f64::NAN
                    }
                };
                self.stack.push(Value::Float(v));
            }
            Op::BinFloat => {
                let v = f64::from_be_bytes(self.input.array("BINFLOAT argument")?);
                self.stack.push(Value::Float(v));
            }
            Op::String => {
                let line = self.input.line("STRING argument")?;
                let quoted = line.len() >= 2
                    && line.first() == line.last()
                    && matches!(line.first(), Some(b'\'' | b'"'));
                let inner = match line.get(1..line.len().saturating_sub(1)) {
                    Some(inner) if quoted => inner,
                    _ => {
                        return Err(ParseError::malformed(
                            offset,
                            "the STRING opcode argument must be quoted",
                        ))
                    }
                };
                let v = if inner.contains(&b'\\') {
                    let decoded = text::escape_decode(inner);
                    self.alloc(Obj::Text(decoded.into_boxed_slice()), offset)?
                } else {
                    Value::Str(inner)
                };
                self.stack.push(v);
            }
            Op::BinString => {
                let n = i32::from_le_bytes(self.input.array("BINSTRING length")?);
                let n = u64::try_from(n).map_err(|_| {
                    ParseError::malformed(offset, "BINSTRING has a negative byte count")
                })?;
                let s = self.input.take_u64(n, "BINSTRING payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::ShortBinString => {
                let n = self.input.u8("SHORT_BINSTRING length")?;
                let s = self.input.take(usize::from(n), "SHORT_BINSTRING payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::Unicode => {
                let line = self.input.line("UNICODE argument")?;
                let v = if line.iter().any(|&b| b == b'\\' || b >= 0x80) {
                    let decoded = text::raw_unicode_escape(line);
                    self.alloc(Obj::Text(decoded.into_boxed_slice()), offset)?
                } else {
                    Value::Str(line)
                };
                self.stack.push(v);
            }
            Op::BinUnicode => {
                let n = u32::from_le_bytes(self.input.array("BINUNICODE length")?);
                let s = self.input.take_u64(u64::from(n), "BINUNICODE payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::ShortBinUnicode => {
                let n = self.input.u8("SHORT_BINUNICODE length")?;
                let s = self
                    .input
                    .take(usize::from(n), "SHORT_BINUNICODE payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::BinUnicode8 => {
                let n = u64::from_le_bytes(self.input.array("BINUNICODE8 length")?);
                let s = self.input.take_u64(n, "BINUNICODE8 payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::BinBytes => {
                let n = u32::from_le_bytes(self.input.array("BINBYTES length")?);
                let s = self.input.take_u64(u64::from(n), "BINBYTES payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::ShortBinBytes => {
                let n = self.input.u8("SHORT_BINBYTES length")?;
                let s = self.input.take(usize::from(n), "SHORT_BINBYTES payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::BinBytes8 => {
                let n = u64::from_le_bytes(self.input.array("BINBYTES8 length")?);
                let s = self.input.take_u64(n, "BINBYTES8 payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::ByteArray8 => {
                let n = u64::from_le_bytes(self.input.array("BYTEARRAY8 length")?);
                let s = self.input.take_u64(n, "BYTEARRAY8 payload")?;
                let v = self.alloc(Obj::ByteArray(s), offset)?;
                self.stack.push(v);
            }
            Op::NextBuffer => {
                self.anomaly(
                    offset,
                    "NEXT_BUFFER: the stream refers to an out-of-band buffer the loader must supply",
                );
                let v = self.alloc(Obj::Buffer, offset)?;
                self.stack.push(v);
            }
            Op::ReadOnlyBuffer => {
                let v = self.top(offset, op)?;
                let buffer_like = matches!(v, Value::Bytes(_))
                    || matches!(
                        self.t.obj(v),
                        Some(Obj::ByteArray(_) | Obj::Buffer | Obj::Instance(_))
                    );
                if !buffer_like {
                    self.anomaly(
                        offset,
                        "READONLY_BUFFER applied to a value that is not a buffer",
                    );
                }
            }
            Op::EmptyTuple => {
                let v = self.alloc(Obj::Tuple(Items::default()), offset)?;
                self.stack.push(v);
            }
            Op::Tuple => {
                let items = self.pop_mark_items(offset, op)?;
                let v = self.alloc(Obj::Tuple(items), offset)?;
                self.stack.push(v);
            }
            Op::Tuple1 | Op::Tuple2 | Op::Tuple3 => {
                let n = match op {
                    Op::Tuple1 => 1,
                    Op::Tuple2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence().saturating_add(n) {
                    return Err(Self::underflow(offset, op));
                }
                let start = self.stack.len().saturating_sub(n);
                let items = self.t.heap.store(self.stack.drain(start..));
                let v = self.alloc(Obj::Tuple(items), offset)?;
                self.stack.push(v);
            }
            Op::EmptyList => {
                let v = self.alloc(Obj::List(Vec::new()), offset)?;
                self.stack.push(v);
            }
            Op::List => {
                let items = self.pop_mark(offset, op)?;
                let v = self.alloc(Obj::List(items), offset)?;
                self.stack.push(v);
            }
            Op::EmptyDict => {
                let v = self.alloc(Obj::Dict(Vec::new()), offset)?;
                self.stack.push(v);
            }
            Op::Dict => {
                let items = self.pop_mark(offset, op)?;
                if items.len() % 2 != 0 {
                    return Err(ParseError::malformed(
                        offset,
                        "odd number of items for DICT",
                    ));
                }
                let pairs = pairs(items);
                let v = self.alloc(Obj::Dict(pairs), offset)?;
                self.stack.push(v);
            }
            Op::EmptySet => {
                let v = self.alloc(Obj::Set(Vec::new()), offset)?;
                self.stack.push(v);
            }
            Op::FrozenSet => {
                let items = self.pop_mark_items(offset, op)?;
                let v = self.alloc(Obj::FrozenSet(items), offset)?;
                self.stack.push(v);
            }
            Op::Append => self.extend_top(offset, op, 1, Container::List)?,
            Op::SetItem => self.extend_top(offset, op, 2, Container::Dict)?,
            Op::Appends => self.extend_marked(offset, op, Container::List)?,
            Op::SetItems => self.extend_marked(offset, op, Container::Dict)?,
            Op::AddItems => self.extend_marked(offset, op, Container::Set)?,
            Op::Get => {
                let line = self.input.line("GET argument")?;
                let key = memo_key(line, offset, "GET")?;
                self.get(key, offset)?;
            }
            Op::BinGet => {
                let key = self.input.u8("BINGET argument")?;
                self.get(u64::from(key), offset)?;
            }
            Op::LongBinGet => {
                let key = u32::from_le_bytes(self.input.array("LONG_BINGET argument")?);
                self.get(u64::from(key), offset)?;
            }
            Op::Put => {
                let line = self.input.line("PUT argument")?;
                let key = memo_key(line, offset, "PUT")?;
                self.put(key, offset, op)?;
            }
            Op::BinPut => {
                let key = self.input.u8("BINPUT argument")?;
                self.put(u64::from(key), offset, op)?;
            }
            Op::LongBinPut => {
                let key = u32::from_le_bytes(self.input.array("LONG_BINPUT argument")?);
                self.put(u64::from(key), offset, op)?;
            }
            Op::Memoize => {
                let key = self.memo.len() as u64;
                self.put(key, offset, op)?;
            }
            Op::Global => {
                let module = self.input.line("GLOBAL module")?;
                let name = self.input.line("GLOBAL name")?;
                let v =
                    self.import(offset, "GLOBAL", Cow::Borrowed(module), Cow::Borrowed(name))?;
                self.stack.push(v);
            }
            Op::StackGlobal => {
                let name = self.pop(offset, op)?;
                let module = self.pop(offset, op)?;
                let v = self.stack_global(offset, module, name)?;
                self.stack.push(v);
            }
            Op::Inst => {
                let module = self.input.line("INST module")?;
                let name = self.input.line("INST name")?;
                let class =
                    self.import(offset, "INST", Cow::Borrowed(module), Cow::Borrowed(name))?;
                let args = self.pop_mark_items(offset, op)?;
                let v = self.call(offset, CallKind::Inst, class, args, false, None)?;
                self.stack.push(v);
            }
            Op::Obj => {
                let mut args = self.pop_mark_items(offset, op)?;
                let Some(&class) = self.t.heap.items(args).first() else {
                    return Err(ParseError::malformed(offset, "OBJ without a class"));
                };
                args = args.after_first();
                let v = self.call(offset, CallKind::Obj, class, args, false, None)?;
                self.stack.push(v);
            }
            Op::Reduce => {
                let args = self.pop(offset, op)?;
                let callee = self.top(offset, op)?;
                let (args, opaque) = self.spread(args);
                let v = self.call(offset, CallKind::Reduce, callee, args, opaque, None)?;
                self.set_top(v);
            }
            Op::NewObj => {
                let args = self.pop(offset, op)?;
                let class = self.pop(offset, op)?;
                let (args, opaque) = self.spread(args);
                let v = self.call(offset, CallKind::NewObj, class, args, opaque, None)?;
                self.stack.push(v);
            }
            Op::NewObjEx => {
                let kwargs = self.pop(offset, op)?;
                let args = self.pop(offset, op)?;
                let class = self.pop(offset, op)?;
                let (args, opaque) = self.spread(args);
                let v = self.call(
                    offset,
                    CallKind::NewObjEx,
                    class,
                    args,
                    opaque,
                    Some(kwargs),
                )?;
                self.stack.push(v);
            }
            Op::Build => {
                let state = self.pop(offset, op)?;
                let target = self.top(offset, op)?;
                self.build(offset, target, state)?;
            }
            Op::PersId => {
                let line = self.input.line("PERSID argument")?;
                self.persistent(offset, Value::Str(line))?;
            }
            Op::BinPersId => {
                let pid = self.pop(offset, op)?;
                self.persistent(offset, pid)?;
            }
            Op::Ext1 => {
                let code = self.input.u8("EXT1 code")?;
                self.extension(offset, i64::from(code))?;
            }
            Op::Ext2 => {
                let code = u16::from_le_bytes(self.input.array("EXT2 code")?);
                self.extension(offset, i64::from(code))?;
            }
            Op::Ext4 => {
                let code = i32::from_le_bytes(self.input.array("EXT4 code")?);
                self.extension(offset, i64::from(code))?;
            }
        }
        Ok(Flow::Continue)
    }

    fn frame_op(&mut self, offset: u64, len: u64) -> Result<()> {
        let available = match self.mode {
            // The C unpickler treats FRAME as a prefetch hint; nothing depends on it.
            Mode::Plain => self.input.remaining(),
            Mode::Joblib => self.input.load_frame(offset, len)?,
        };
        if (available as u64) < len {
            self.anomaly(
                offset,
                format!("FRAME of {len} bytes but only {available} bytes remain"),
            );
        }
        Ok(())
    }

    fn get(&mut self, key: u64, offset: u64) -> Result<()> {
        match self.memo.get(key) {
            Some(v) => {
                self.stack.push(v);
                Ok(())
            }
            None => Err(ParseError::malformed(
                offset,
                format!("memo value not found at index {key}"),
            )),
        }
    }

    fn put(&mut self, key: u64, offset: u64, op: Op) -> Result<()> {
        let v = self.top(offset, op)?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn stack_global(
        &mut self,
        offset: u64,
        module: Value<'a>,
        name: Value<'a>,
    ) -> Result<Value<'a>> {
        // Names read from the stream are borrowed; only unescaped protocol-0 text (held by
        // the trace, which `import` changes) is copied.
        let name_of = |v: Value<'a>, t: &Trace<'a>| match v {
            Value::Str(s) => Some(Cow::Borrowed(bounded_name(s))),
            _ => t.str_bytes(v).map(|s| Cow::Owned(bounded_name(s).to_vec())),
        };
        if let (Some(m), Some(n)) = (name_of(module, &self.t), name_of(name, &self.t)) {
            return self.import(offset, "STACK_GLOBAL", m, n);
        }
        // Python accepts any `str`, including one a call returned: the name is then
        // decided at load time and cannot be read here.
        let dynamic = |v: Value<'a>, t: &Trace<'a>| {
            t.str_bytes(v).is_some()
                || matches!(
                    t.obj(v),
                    Some(Obj::Instance(_) | Obj::Persistent(_) | Obj::Extension(_))
                )
        };
        if !dynamic(module, &self.t) || !dynamic(name, &self.t) {
            return Err(ParseError::malformed(
                offset,
                "STACK_GLOBAL requires str module and name",
            ));
        }
        let g = Global {
            offset,
            opcode: "STACK_GLOBAL",
            module: Cow::Owned(self.t.render(module)),
            name: Cow::Owned(self.t.render(name)),
            written: None,
            dynamic: true,
            uses: Default::default(),
        };
        self.push_global(g, offset)
    }

    /// `APPEND`/`SETITEM`: the top `n` values go into the value below them.
    fn extend_top(&mut self, offset: u64, op: Op, n: usize, kind: Container) -> Result<()> {
        if self.stack.len() < self.fence().saturating_add(n).saturating_add(1) {
            return Err(Self::underflow(offset, op));
        }
        let start = self.stack.len().saturating_sub(n);
        self.extend(offset, op, start, kind)
    }

    /// `APPENDS`/`SETITEMS`/`ADDITEMS`: the values above the last MARK go into the value
    /// below the mark.
    fn extend_marked(&mut self, offset: u64, op: Op, kind: Container) -> Result<()> {
        let mark = self.marks.pop().ok_or_else(|| {
            ParseError::malformed(offset, format!("{} without a MARK", op.name()))
        })?;
        if mark > self.stack.len() {
            return Err(ParseError::malformed(offset, "MARK above the stack"));
        }
        self.extend(offset, op, mark, kind)
    }

    /// Adds `stack[start..]` to the object at `stack[start - 1]`, as Python's list, dict and
    /// set do, or records the method call Python makes on any other object.
    fn extend(&mut self, offset: u64, op: Op, start: usize, kind: Container) -> Result<()> {
        let target = match start.checked_sub(1) {
            Some(i) if start > self.fence() => self.stack.get(i).copied(),
            _ => None,
        }
        .ok_or_else(|| Self::underflow(offset, op))?;
        let items = self.stack.get(start..).unwrap_or_default();
        let n = items.len();
        let child_depth = items
            .iter()
            .map(|v| self.t.heap.depth_of(v))
            .max()
            .unwrap_or(0);
        let id = match target {
            Value::Obj(id) => Some(id),
            _ => None,
        };
        let native = match (id.and_then(|id| self.t.heap.get_mut(id)), kind) {
            (Some(Obj::List(v)), Container::List) | (Some(Obj::Set(v)), Container::Set) => {
                v.extend_from_slice(items);
                true
            }
            (Some(Obj::Dict(p)), Container::Dict) => {
                p.extend(items.chunks_exact(2).filter_map(|kv| match kv {
                    [k, v] => Some((*k, *v)),
                    _ => None,
                }));
                true
            }
            _ => false,
        };
        match (native, id) {
            (true, Some(id)) => {
                self.stack.truncate(start);
                let depth = self.t.heap.grew(id, n, child_depth);
                self.check_depth(depth, offset)?;
            }
            _ => {
                // Not a plain list/dict/set: Python calls the object's own method.
                let method = match kind {
                    Container::List if op == Op::Append => "append",
                    Container::List => "extend",
                    Container::Dict => "__setitem__",
                    Container::Set => "add",
                };
                let items = self.t.heap.store(self.stack.drain(start..));
                self.record_call(offset, CallKind::Method(method), target, items, false, None);
            }
        }
        if kind == Container::Dict && n % 2 != 0 {
            return Err(ParseError::malformed(
                offset,
                format!("odd number of items for {}", op.name()),
            ));
        }
        Ok(())
    }

    fn build(&mut self, offset: u64, target: Value<'a>, state: Value<'a>) -> Result<()> {
        self.t.builds.push(Build {
            offset,
            target,
            state,
        });
        if let Some(g) = self.t.global_index(target) {
            if let Some(global) = self.t.globals.get_mut(g) {
                global.uses.built = true;
            }
            return Ok(());
        }
        let Some(c) = self.t.call_index(target) else {
            return Ok(());
        };
        if let Some(call) = self.t.calls.get_mut(c) {
            call.state = Some(state);
        }
        let is_wrapper = self
            .t
            .calls
            .get(c)
            .and_then(|call| self.t.class_of_instance(call))
            .is_some_and(|g| joblib::is_array_wrapper(&g.module, &g.name));
        if !is_wrapper {
            return Ok(());
        }
        match self.mode {
            Mode::Plain => {
                self.saw_joblib_wrapper = true;
                Ok(())
            }
            Mode::Joblib => self.joblib_array(offset, state),
        }
    }

    /// What `NumpyArrayWrapper.read_array` reads after the wrapper is built.
    fn joblib_array(&mut self, offset: u64, state: Value<'a>) -> Result<()> {
        let spec = joblib::array_spec(&self.t, state)
            .map_err(|msg| ParseError::unsupported(offset, format!("joblib array: {msg}")))?;
        let idx = self.t.joblib_arrays.len();
        if spec.object {
            // `pickle.load(file_handle)`: a whole pickle, read by a plain unpickler.
            let start = self.input.file_pos();
            let (nested, _) = Machine::new(
                self.input.data(),
                start,
                Mode::Plain,
                self.limits,
                self.ops_left,
            )
            .run();
            let end = usize::try_from(nested.end).unwrap_or(usize::MAX);
            let error = nested.error.clone();
            self.t.joblib_arrays.push(JoblibArray {
                offset,
                data_offset: start as u64,
                data_len: end.saturating_sub(start) as u64,
                dtype: spec.dtype,
                shape: spec.shape,
                object: true,
            });
            self.t.nested.push(nested);
            if let Some(e) = error {
                return Err(e);
            }
            self.input.set_file_pos(end);
        } else {
            if spec.aligned {
                let (_, pad) = self.input.take_raw(1, "joblib alignment padding length")?;
                let pad_len = pad.first().copied().unwrap_or(0);
                let (pad_at, padding) = self
                    .input
                    .take_raw(u64::from(pad_len), "joblib alignment padding")?;
                if padding.iter().any(|&b| b != 0xff) {
                    self.anomaly(pad_at, "joblib alignment padding is not 0xff bytes");
                }
            }
            let (at, _) = self.input.take_raw(spec.bytes, "joblib array data")?;
            self.t.joblib_arrays.push(JoblibArray {
                offset,
                data_offset: at,
                data_len: spec.bytes,
                dtype: spec.dtype,
                shape: spec.shape,
                object: false,
            });
        }
        let v = self.alloc(Obj::JoblibArray(idx), offset)?;
        self.set_top(v);
        Ok(())
    }

    fn persistent(&mut self, offset: u64, pid: Value<'a>) -> Result<()> {
        let idx = self.t.persistent_ids.len();
        self.t.persistent_ids.push(PersistentId { offset, pid });
        let v = self.alloc(Obj::Persistent(idx), offset)?;
        self.stack.push(v);
        Ok(())
    }

    fn extension(&mut self, offset: u64, code: i64) -> Result<()> {
        let idx = self.t.extensions.len();
        self.t.extensions.push(Extension { offset, code });
        let v = self.alloc(Obj::Extension(idx), offset)?;
        self.stack.push(v);
        Ok(())
    }
}

fn pairs(items: Vec<Value<'_>>) -> Vec<(Value<'_>, Value<'_>)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn long_value(bytes: &[u8]) -> Value<'_> {
    match super::render::decode_long(bytes).and_then(|v| i64::try_from(v).ok()) {
        Some(i) => Value::Int(i),
        None => Value::Long(bytes),
    }
}

fn memo_key(line: &[u8], offset: u64, op: &str) -> Result<u64> {
    let key = text::parse_int(line)
        .ok_or_else(|| ParseError::malformed(offset, format!("{op} argument is not an integer")))?;
    u64::try_from(key).map_err(|_| ParseError::malformed(offset, format!("negative {op} argument")))
}
