//! The emulated unpickler: CPython's `_Unpickler` (`Lib/pickle.py`) with every call
//! recorded instead of made.
//!
//! The machine follows Python's stack discipline exactly (MARK starts a new stack whose
//! bottom is a fence; POP below the fence pops the mark; GET shares objects), so that what
//! it records is what `pickle.load` would do. Python executes each call as it reads it, so
//! a stream that breaks after a `REDUCE` still ran it: on an error the machine stops where
//! Python would, keeping everything recorded so far.
//!
//! Two reading modes:
//! - [`Mode::Plain`] reads like the C unpickler behind `pickle.load`: `FRAME` is only a
//!   length hint, opcodes are read linearly.
//! - [`Mode::Joblib`] reads like `joblib.load` (a subclass of the pure-Python `_Unpickler`):
//!   frames are buffered as `_Unframer` does, and after each `NumpyArrayWrapper` is built,
//!   the raw array bytes (or, for object arrays, a nested pickle) are read from the
//!   underlying file, as `NumpyArrayWrapper.read_array` does.

use crate::error::{ParseError, Result};
use crate::limits::Limits;

use super::compat::fix_imports;
use super::joblib;
use super::memo::Memo;
use super::opcodes::Op;
use super::render::name_literal;
use super::text;
use super::trace::{
    Anomaly, Build, Call, CallKind, Extension, Global, JoblibArray, PersistentId, Trace,
};
use super::value::{Obj, Value};

/// How the bytes are read; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Joblib,
}

/// Python's `_Unframer` state: the current frame's end, and where the underlying file
/// stands (past the whole frame, which was read at once).
#[derive(Debug, Clone, Copy)]
struct Frame {
    end: usize,
    file_pos: usize,
}

enum Flow {
    Continue,
    Stop,
}

pub struct Machine<'a, 'b> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    mode: Mode,
    limits: &'b Limits,
    ops_left: &'b mut u64,
    /// Protocol in force for `find_class` (the last `PROTO`).
    proto: u8,
    stack: Vec<Value<'a>>,
    marks: Vec<usize>,
    memo: Memo<'a>,
    t: Trace<'a>,
    saw_joblib_wrapper: bool,
    /// Treat anomalies (input Python would refuse, read leniently here) as errors.
    strict: bool,
}

/// Longest text argument line (module names, protocol-0 strings).
fn max_line(limits: &Limits) -> usize {
    usize::try_from(limits.max_string_bytes).unwrap_or(usize::MAX)
}

impl<'a, 'b> Machine<'a, 'b> {
    pub fn new(
        data: &'a [u8],
        start: usize,
        mode: Mode,
        limits: &'b Limits,
        ops_left: &'b mut u64,
    ) -> Self {
        let t = Trace {
            start: start as u64,
            end: start as u64,
            ..Trace::default()
        };
        Self {
            data,
            pos: start,
            frame: None,
            mode,
            limits,
            ops_left,
            proto: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            t,
            saw_joblib_wrapper: false,
            strict: false,
        }
    }

    /// Stops at the first anomaly instead of reading on (for sniffing: text that happens
    /// to start with an opcode must not be read generously).
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Runs to `STOP` or the first error. Returns the trace, and whether a joblib
    /// `NumpyArrayWrapper` was built (in plain mode, a hint to read again as joblib).
    pub fn run(mut self) -> (Trace<'a>, bool) {
        if let Err(e) = self.exec() {
            self.t.error = Some(e);
        }
        self.t.end = self.file_pos() as u64;
        (self.t, self.saw_joblib_wrapper)
    }

    fn exec(&mut self) -> Result<()> {
        loop {
            let (offset, byte) = self.next_opcode()?;
            if *self.ops_left == 0 {
                return Err(ParseError::limit(
                    offset,
                    "pickle opcodes",
                    self.limits.max_pickle_ops.saturating_add(1),
                    self.limits.max_pickle_ops,
                ));
            }
            *self.ops_left = self.ops_left.saturating_sub(1);
            self.t.ops = self.t.ops.saturating_add(1);
            let op = Op::from_byte(byte).ok_or_else(|| {
                ParseError::malformed(offset, format!("unknown opcode 0x{byte:02x}"))
            })?;
            let flow = self.step(op, offset)?;
            if self.strict {
                if let Some(a) = self.t.anomalies.first() {
                    return Err(ParseError::malformed(a.offset, a.message.clone()));
                }
            }
            if let Flow::Stop = flow {
                return Ok(());
            }
            let live = (self.stack.len() as u64)
                .saturating_add(self.memo.cells())
                .saturating_add(self.t.heap.cells());
            if live > self.limits.max_pickle_values {
                return Err(ParseError::limit(
                    offset,
                    "pickle values",
                    live,
                    self.limits.max_pickle_values,
                ));
            }
        }
    }

    // ---- reading -------------------------------------------------------------------

    /// Where the underlying file stands (differs from `pos` inside a Python-mode frame).
    fn file_pos(&self) -> usize {
        match self.frame {
            Some(f) if self.pos < f.end => f.file_pos,
            Some(f) => f.file_pos.max(self.pos),
            None => self.pos,
        }
    }

    /// `_Unframer`: an exhausted frame hands reading back to the file.
    fn leave_spent_frame(&mut self, n: usize) {
        if let Some(f) = self.frame {
            if self.pos >= f.end && n != 0 {
                self.pos = f.file_pos;
                self.frame = None;
            }
        }
    }

    fn next_opcode(&mut self) -> Result<(u64, u8)> {
        self.leave_spent_frame(1);
        let offset = self.pos as u64;
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos = self.pos.saturating_add(1);
                Ok((offset, b))
            }
            None => Err(ParseError::truncated(offset, "pickle opcode (no STOP)", 1)),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.leave_spent_frame(n);
        let end = self.pos.checked_add(n);
        if let (Some(f), Some(end)) = (self.frame, end) {
            if end > f.end {
                return Err(ParseError::malformed(
                    self.pos as u64,
                    format!("{what} runs past the end of its frame (pickle exhausted before end of frame)"),
                ));
            }
        }
        match end.and_then(|e| self.data.get(self.pos..e)) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(ParseError::truncated(
                self.pos as u64,
                what,
                (n as u64).saturating_sub(self.data.len().saturating_sub(self.pos) as u64),
            )),
        }
    }

    fn take_u64(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        match usize::try_from(n) {
            Ok(n) => self.take(n, what),
            Err(_) => Err(ParseError::truncated(self.pos as u64, what, n)),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        let s = self.take(1, what)?;
        s.first()
            .copied()
            .ok_or_else(|| ParseError::truncated(self.pos as u64, what, 1))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// A newline-terminated argument, without the newline.
    fn line(&mut self, what: &'static str) -> Result<&'a [u8]> {
        self.leave_spent_frame(1);
        let limit = self
            .frame
            .map_or(self.data.len(), |f| f.end.min(self.data.len()));
        let max = max_line(self.limits);
        let rest = self.data.get(self.pos..limit).unwrap_or_default();
        let window = rest.get(..max.min(rest.len())).unwrap_or(rest);
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = window.get(..i).unwrap_or_default();
                self.pos = self.pos.saturating_add(i).saturating_add(1);
                Ok(line)
            }
            None if window.len() >= max => Err(ParseError::limit(
                self.pos as u64,
                "pickle text argument length",
                window.len() as u64,
                max as u64,
            )),
            None if self.frame.is_some() => Err(ParseError::malformed(
                self.pos as u64,
                format!(
                    "{what} runs past the end of its frame (pickle exhausted before end of frame)"
                ),
            )),
            None => Err(ParseError::truncated(self.pos as u64, what, 1)),
        }
    }

    /// Reads raw bytes from the underlying file, as joblib's `file_handle.read` does.
    fn take_raw(&mut self, n: u64, what: &'static str) -> Result<(u64, &'a [u8])> {
        let start = self.file_pos();
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .and_then(|end| self.data.get(start..end));
        let Some(slice) = slice else {
            return Err(ParseError::truncated(
                start as u64,
                what,
                n.saturating_sub(self.data.len().saturating_sub(start) as u64),
            ));
        };
        self.set_file_pos(start.saturating_add(slice.len()));
        Ok((start as u64, slice))
    }

    fn set_file_pos(&mut self, to: usize) {
        match &mut self.frame {
            Some(f) if self.pos < f.end => f.file_pos = to,
            _ => {
                self.frame = None;
                self.pos = to;
            }
        }
    }

    // ---- stack ---------------------------------------------------------------------

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn underflow(offset: u64, op: Op) -> ParseError {
        ParseError::malformed(
            offset,
            format!("{} on an empty stack (stack underflow)", op.name()),
        )
    }

    fn pop(&mut self, offset: u64, op: Op) -> Result<Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(Self::underflow(offset, op));
        }
        self.stack.pop().ok_or_else(|| Self::underflow(offset, op))
    }

    fn top(&self, offset: u64, op: Op) -> Result<Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(Self::underflow(offset, op));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| Self::underflow(offset, op))
    }

    fn set_top(&mut self, v: Value<'a>) {
        if let Some(top) = self.stack.last_mut() {
            *top = v;
        }
    }

    fn pop_mark(&mut self, offset: u64, op: Op) -> Result<Vec<Value<'a>>> {
        let mark = self.marks.pop().ok_or_else(|| {
            ParseError::malformed(offset, format!("{} without a MARK", op.name()))
        })?;
        if mark > self.stack.len() {
            return Err(ParseError::malformed(offset, "MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn alloc(&mut self, obj: Obj<'a>, offset: u64) -> Result<Value<'a>> {
        let (v, depth) = self.t.heap.alloc(obj);
        self.check_depth(depth, offset)?;
        Ok(v)
    }

    fn check_depth(&self, depth: u32, offset: u64) -> Result<()> {
        if depth > self.limits.max_pickle_depth {
            return Err(ParseError::limit(
                offset,
                "pickle nesting depth",
                u64::from(depth),
                u64::from(self.limits.max_pickle_depth),
            ));
        }
        Ok(())
    }

    fn anomaly(&mut self, offset: u64, message: impl Into<String>) {
        if self.t.anomalies.len() < 100 {
            self.t.anomalies.push(Anomaly {
                offset,
                message: message.into(),
            });
        }
    }

    // ---- globals and calls -----------------------------------------------------------

    /// `find_class(module, name)`: records the import and returns the global.
    fn import(
        &mut self,
        offset: u64,
        opcode: &'static str,
        module: &[u8],
        name: &[u8],
    ) -> Result<Value<'a>> {
        // No real module or attribute name is this long; keeping a bounded prefix stops a
        // memoized giant string from being copied into every STACK_GLOBAL. The cut name
        // stays visibly malformed.
        let m = cut_name(module);
        let n = cut_name(name);
        let (module, name, written) = match fix_imports(&m, &n, self.proto) {
            Some((fm, fname)) => (fm.to_string(), fname, Some((m, n))),
            None => (m, n, None),
        };
        self.push_global(
            Global {
                offset,
                opcode,
                module,
                name,
                written,
                dynamic: false,
                uses: Default::default(),
            },
            offset,
        )
    }

    fn push_global(&mut self, g: Global, offset: u64) -> Result<Value<'a>> {
        let idx = self.t.globals.len();
        self.t.globals.push(g);
        self.alloc(Obj::Global(idx), offset)
    }

    /// Records a call; returns its index.
    fn record_call(
        &mut self,
        offset: u64,
        kind: CallKind,
        callee: Value<'a>,
        args: Vec<Value<'a>>,
        args_opaque: bool,
        kwargs: Option<Value<'a>>,
    ) -> usize {
        if let Some(g) = self.t.global_index(callee) {
            let no_args = args.is_empty() && !args_opaque;
            if let Some(global) = self.t.globals.get_mut(g) {
                match kind {
                    CallKind::Reduce => global.uses.called = true,
                    CallKind::Inst | CallKind::Obj if no_args => global.uses.instantiated = true,
                    CallKind::Inst | CallKind::Obj => global.uses.called = true,
                    CallKind::NewObj | CallKind::NewObjEx => global.uses.instantiated = true,
                    CallKind::Method(_) => global.uses.mutated = true,
                }
            }
        }
        // Arguments are copied out of their tuple: charge them, so that one big memoized
        // tuple passed to many calls counts against the values limit.
        self.t.heap.charge(args.len().saturating_add(1));
        let idx = self.t.calls.len();
        self.t.calls.push(Call {
            offset,
            kind,
            callee,
            args,
            args_opaque,
            kwargs,
            state: None,
        });
        idx
    }

    /// Records a call and returns its result object.
    fn call(
        &mut self,
        offset: u64,
        kind: CallKind,
        callee: Value<'a>,
        args: Vec<Value<'a>>,
        args_opaque: bool,
        kwargs: Option<Value<'a>>,
    ) -> Result<Value<'a>> {
        let depth = args
            .iter()
            .chain(kwargs.iter())
            .map(|v| self.t.heap.depth_of(v))
            .max()
            .unwrap_or(0);
        self.check_depth(depth.saturating_add(1), offset)?;
        let idx = self.record_call(offset, kind, callee, args, args_opaque, kwargs);
        self.alloc(Obj::Instance(idx), offset)
    }

    /// The positional arguments a `REDUCE`/`NEWOBJ` passes: a tuple's items.
    fn spread(&self, args: Value<'a>) -> (Vec<Value<'a>>, bool) {
        match self.t.obj(args) {
            Some(Obj::Tuple(items)) | Some(Obj::List(items)) => (items.clone(), false),
            _ => (vec![args], true),
        }
    }

    // ---- the opcodes -----------------------------------------------------------------

    fn step(&mut self, op: Op, offset: u64) -> Result<Flow> {
        match op {
            Op::Proto => {
                let p = self.u8("PROTO argument")?;
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
                let len = u64::from_le_bytes(self.array("FRAME length")?);
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
                self.pop_mark(offset, op)?;
            }
            Op::Dup => {
                let v = self.top(offset, op)?;
                self.stack.push(v);
            }
            Op::None => self.stack.push(Value::None),
            Op::NewTrue => self.stack.push(Value::Bool(true)),
            Op::NewFalse => self.stack.push(Value::Bool(false)),
            Op::Int => {
                let line = self.line("INT argument")?;
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
                let v = i32::from_le_bytes(self.array("BININT argument")?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::BinInt1 => {
                let v = self.u8("BININT1 argument")?;
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::BinInt2 => {
                let v = u16::from_le_bytes(self.array("BININT2 argument")?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            Op::Long => {
                let line = self.line("LONG argument")?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let v = match text::parse_int(digits) {
                    Some(i) => Value::Int(i),
                    None => Value::LongText(digits),
                };
                self.stack.push(v);
            }
            Op::Long1 => {
                let n = self.u8("LONG1 length")?;
                let bytes = self.take(usize::from(n), "LONG1 payload")?;
                self.stack.push(long_value(bytes));
            }
            Op::Long4 => {
                let n = i32::from_le_bytes(self.array("LONG4 length")?);
                let n = u64::try_from(n).map_err(|_| {
                    ParseError::malformed(offset, "LONG4 has a negative byte count")
                })?;
                let bytes = self.take_u64(n, "LONG4 payload")?;
                self.stack.push(long_value(bytes));
            }
            Op::Float => {
                let line = self.line("FLOAT argument")?;
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
                let v = f64::from_be_bytes(self.array("BINFLOAT argument")?);
                self.stack.push(Value::Float(v));
            }
            Op::String => {
                let line = self.line("STRING argument")?;
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
                let n = i32::from_le_bytes(self.array("BINSTRING length")?);
                let n = u64::try_from(n).map_err(|_| {
                    ParseError::malformed(offset, "BINSTRING has a negative byte count")
                })?;
                let s = self.take_u64(n, "BINSTRING payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::ShortBinString => {
                let n = self.u8("SHORT_BINSTRING length")?;
                let s = self.take(usize::from(n), "SHORT_BINSTRING payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::Unicode => {
                let line = self.line("UNICODE argument")?;
                let v = if line.iter().any(|&b| b == b'\\' || b >= 0x80) {
                    let decoded = text::raw_unicode_escape(line);
                    self.alloc(Obj::Text(decoded.into_boxed_slice()), offset)?
                } else {
                    Value::Str(line)
                };
                self.stack.push(v);
            }
            Op::BinUnicode => {
                let n = u32::from_le_bytes(self.array("BINUNICODE length")?);
                let s = self.take_u64(u64::from(n), "BINUNICODE payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::ShortBinUnicode => {
                let n = self.u8("SHORT_BINUNICODE length")?;
                let s = self.take(usize::from(n), "SHORT_BINUNICODE payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::BinUnicode8 => {
                let n = u64::from_le_bytes(self.array("BINUNICODE8 length")?);
                let s = self.take_u64(n, "BINUNICODE8 payload")?;
                self.stack.push(Value::Str(s));
            }
            Op::BinBytes => {
                let n = u32::from_le_bytes(self.array("BINBYTES length")?);
                let s = self.take_u64(u64::from(n), "BINBYTES payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::ShortBinBytes => {
                let n = self.u8("SHORT_BINBYTES length")?;
                let s = self.take(usize::from(n), "SHORT_BINBYTES payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::BinBytes8 => {
                let n = u64::from_le_bytes(self.array("BINBYTES8 length")?);
                let s = self.take_u64(n, "BINBYTES8 payload")?;
                self.stack.push(Value::Bytes(s));
            }
            Op::ByteArray8 => {
                let n = u64::from_le_bytes(self.array("BYTEARRAY8 length")?);
                let s = self.take_u64(n, "BYTEARRAY8 payload")?;
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
                let v = self.alloc(Obj::Tuple(Vec::new()), offset)?;
                self.stack.push(v);
            }
            Op::Tuple => {
                let items = self.pop_mark(offset, op)?;
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
                let items = self.stack.split_off(self.stack.len().saturating_sub(n));
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
                let items = self.pop_mark(offset, op)?;
                let v = self.alloc(Obj::FrozenSet(items), offset)?;
                self.stack.push(v);
            }
            Op::Append => self.extend_top(offset, op, 1, Container::List)?,
            Op::SetItem => self.extend_top(offset, op, 2, Container::Dict)?,
            Op::Appends => self.extend_marked(offset, op, Container::List)?,
            Op::SetItems => self.extend_marked(offset, op, Container::Dict)?,
            Op::AddItems => self.extend_marked(offset, op, Container::Set)?,
            Op::Get => {
                let line = self.line("GET argument")?;
                let key = memo_key(line, offset, "GET")?;
                self.get(key, offset)?;
            }
            Op::BinGet => {
                let key = self.u8("BINGET argument")?;
                self.get(u64::from(key), offset)?;
            }
            Op::LongBinGet => {
                let key = u32::from_le_bytes(self.array("LONG_BINGET argument")?);
                self.get(u64::from(key), offset)?;
            }
            Op::Put => {
                let line = self.line("PUT argument")?;
                let key = memo_key(line, offset, "PUT")?;
                self.put(key, offset, op)?;
            }
            Op::BinPut => {
                let key = self.u8("BINPUT argument")?;
                self.put(u64::from(key), offset, op)?;
            }
            Op::LongBinPut => {
                let key = u32::from_le_bytes(self.array("LONG_BINPUT argument")?);
                self.put(u64::from(key), offset, op)?;
            }
            Op::Memoize => {
                let key = self.memo.len() as u64;
                self.put(key, offset, op)?;
            }
            Op::Global => {
                let module = self.line("GLOBAL module")?;
                let name = self.line("GLOBAL name")?;
                let v = self.import(offset, "GLOBAL", module, name)?;
                self.stack.push(v);
            }
            Op::StackGlobal => {
                let name = self.pop(offset, op)?;
                let module = self.pop(offset, op)?;
                let v = self.stack_global(offset, module, name)?;
                self.stack.push(v);
            }
            Op::Inst => {
                let module = self.line("INST module")?;
                let name = self.line("INST name")?;
                let class = self.import(offset, "INST", module, name)?;
                let args = self.pop_mark(offset, op)?;
                let v = self.call(offset, CallKind::Inst, class, args, false, None)?;
                self.stack.push(v);
            }
            Op::Obj => {
                let mut args = self.pop_mark(offset, op)?;
                if args.is_empty() {
                    return Err(ParseError::malformed(offset, "OBJ without a class"));
                }
                let class = args.remove(0);
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
                let line = self.line("PERSID argument")?;
                self.persistent(offset, Value::Str(line))?;
            }
            Op::BinPersId => {
                let pid = self.pop(offset, op)?;
                self.persistent(offset, pid)?;
            }
            Op::Ext1 => {
                let code = self.u8("EXT1 code")?;
                self.extension(offset, i64::from(code))?;
            }
            Op::Ext2 => {
                let code = u16::from_le_bytes(self.array("EXT2 code")?);
                self.extension(offset, i64::from(code))?;
            }
            Op::Ext4 => {
                let code = i32::from_le_bytes(self.array("EXT4 code")?);
                self.extension(offset, i64::from(code))?;
            }
        }
        Ok(Flow::Continue)
    }

    fn frame_op(&mut self, offset: u64, len: u64) -> Result<()> {
        match self.mode {
            Mode::Plain => {
                // The C unpickler treats FRAME as a prefetch hint; nothing depends on it.
                let left = self.data.len().saturating_sub(self.pos) as u64;
                if len > left {
                    self.anomaly(
                        offset,
                        format!("FRAME of {len} bytes but only {left} bytes remain"),
                    );
                }
            }
            Mode::Joblib => {
                if let Some(f) = self.frame {
                    if self.pos < f.end {
                        return Err(ParseError::malformed(
                            offset,
                            "beginning of a new frame before end of current frame",
                        ));
                    }
                }
                let start = self.file_pos();
                let left = self.data.len().saturating_sub(start);
                let size = usize::try_from(len).unwrap_or(usize::MAX).min(left);
                if (size as u64) < len {
                    self.anomaly(
                        offset,
                        format!("FRAME of {len} bytes but only {left} bytes remain"),
                    );
                }
                let end = start.saturating_add(size);
                self.frame = Some(Frame { end, file_pos: end });
                self.pos = start;
            }
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
        let m = self.t.str_bytes(module).map(|s| bounded_name(s).to_vec());
        let n = self.t.str_bytes(name).map(|s| bounded_name(s).to_vec());
        if let (Some(m), Some(n)) = (&m, &n) {
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
            module: self.t.render(module),
            name: self.t.render(name),
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
                let items = self.stack.split_off(start);
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
            .and_then(|call| self.t.global_of(call.callee))
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
            let start = self.file_pos();
            let (nested, _) =
                Machine::new(self.data, start, Mode::Plain, self.limits, self.ops_left).run();
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
            self.set_file_pos(end);
        } else {
            if spec.aligned {
                let (_, pad) = self.take_raw(1, "joblib alignment padding length")?;
                let pad_len = pad.first().copied().unwrap_or(0);
                let (pad_at, padding) =
                    self.take_raw(u64::from(pad_len), "joblib alignment padding")?;
                if padding.iter().any(|&b| b != 0xff) {
                    self.anomaly(pad_at, "joblib alignment padding is not 0xff bytes");
                }
            }
            let (at, _) = self.take_raw(spec.bytes, "joblib array data")?;
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    List,
    Dict,
    Set,
}

fn pairs(items: Vec<Value<'_>>) -> Vec<(Value<'_>, Value<'_>)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Longest module or attribute name kept (bytes); longer ones are cut with a marker.
const MAX_NAME: usize = 4096;

fn bounded_name(s: &[u8]) -> &[u8] {
    s.get(..MAX_NAME.saturating_add(1)).unwrap_or(s)
}

/// A name as text, cut at [`MAX_NAME`] bytes with a `…` that no identifier contains.
fn cut_name(s: &[u8]) -> String {
    match s.get(..MAX_NAME) {
        Some(head) if s.len() > MAX_NAME => format!("{}…", name_literal(head)),
        _ => name_literal(s),
    }
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
