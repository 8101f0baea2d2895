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

use std::borrow::Cow;

use crate::error::{ParseError, Result};
use crate::limits::Limits;

use super::compat::fix_imports;
use super::input::Input;
use super::memo::Memo;
use super::opcodes::Op;
use super::render::name_literal;
use super::trace::{Anomaly, Call, CallKind, Global, Trace};
use super::value::{Items, Obj, Value};

/// How the bytes are read; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Joblib,
}

/// Whether the machine goes on after an opcode.
pub(super) enum Flow {
    Continue,
    Stop,
}

/// The emulated unpickler's state. The opcodes themselves are in `step.rs`.
pub struct Machine<'a, 'b> {
    pub(super) input: Input<'a>,
    pub(super) mode: Mode,
    pub(super) limits: &'b Limits,
    pub(super) ops_left: &'b mut u64,
    /// Protocol in force for `find_class` (the last `PROTO`).
    pub(super) proto: u8,
    pub(super) stack: Vec<Value<'a>>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: Memo<'a>,
    pub(super) t: Trace<'a>,
    pub(super) saw_joblib_wrapper: bool,
    /// Treat anomalies (input Python would refuse, read leniently here) as errors.
    pub(super) strict: bool,
    /// Stop after the first opcode at which this holds (see [`Machine::stop_when`]).
    stop_when: Option<fn(&Trace<'a>) -> bool>,
    /// `stop_when` held, and the machine stopped there.
    stopped_early: bool,
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
        let max_line = usize::try_from(limits.max_string_bytes).unwrap_or(usize::MAX);
        Self {
            input: Input::new(data, start, max_line),
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
            stop_when: None,
            stopped_early: false,
        }
    }

    /// Stops at the first anomaly instead of reading on (for sniffing: text that happens
    /// to start with an opcode must not be read generously).
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Stops as soon as `done` holds after an opcode, even before `STOP` (for sniffing,
    /// which needs a verdict, not the whole trace). See [`Machine::run_until_decided`].
    pub fn stop_when(mut self, done: fn(&Trace<'a>) -> bool) -> Self {
        self.stop_when = Some(done);
        self
    }

    /// Runs to `STOP` or the first error. Returns the trace, and whether a joblib
    /// `NumpyArrayWrapper` was built (in plain mode, a hint to read again as joblib).
    pub fn run(self) -> (Trace<'a>, bool) {
        let (t, joblib, _) = self.run_all();
        (t, joblib)
    }

    /// Runs to `STOP`, the first error, or the first opcode after which the
    /// [`Machine::stop_when`] condition holds. Returns the trace so far, and whether it
    /// stopped for that condition.
    pub fn run_until_decided(self) -> (Trace<'a>, bool) {
        let (t, _, early) = self.run_all();
        (t, early)
    }

    fn run_all(mut self) -> (Trace<'a>, bool, bool) {
        if self.stop_when.is_none() {
            // A pickle read whole usually grows these well past their first sizes: start
            // them at a few dozen entries (under 1 KiB each) instead of growing from 4.
            self.stack.reserve(32);
            self.memo.reserve(32);
            self.t.heap.reserve(24, 32);
        }
        if let Err(e) = self.exec() {
            self.t.error = Some(e);
        }
        self.t.end = self.input.file_pos() as u64;
        (self.t, self.saw_joblib_wrapper, self.stopped_early)
    }

    fn exec(&mut self) -> Result<()> {
        loop {
            let (offset, byte) = self.input.next_opcode()?;
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
            if self.stop_when.is_some_and(|done| done(&self.t)) {
                self.stopped_early = true;
                return Ok(());
            }
        }
    }

    // ---- stack ---------------------------------------------------------------------

    pub(super) fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn underflow(offset: u64, op: Op) -> ParseError {
        ParseError::malformed(
            offset,
            format!("{} on an empty stack (stack underflow)", op.name()),
        )
    }

    pub(super) fn pop(&mut self, offset: u64, op: Op) -> Result<Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(Self::underflow(offset, op));
        }
        self.stack.pop().ok_or_else(|| Self::underflow(offset, op))
    }

    pub(super) fn top(&self, offset: u64, op: Op) -> Result<Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(Self::underflow(offset, op));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| Self::underflow(offset, op))
    }

    pub(super) fn set_top(&mut self, v: Value<'a>) {
        if let Some(top) = self.stack.last_mut() {
            *top = v;
        }
    }

    /// Pops the last MARK; returns the stack length it marked.
    pub(super) fn pop_mark_index(&mut self, offset: u64, op: Op) -> Result<usize> {
        let mark = self.marks.pop().ok_or_else(|| {
            ParseError::malformed(offset, format!("{} without a MARK", op.name()))
        })?;
        if mark > self.stack.len() {
            return Err(ParseError::malformed(offset, "MARK above the stack"));
        }
        Ok(mark)
    }

    pub(super) fn pop_mark(&mut self, offset: u64, op: Op) -> Result<Vec<Value<'a>>> {
        let mark = self.pop_mark_index(offset, op)?;
        Ok(self.stack.split_off(mark))
    }

    /// The values above the last MARK, moved into the heap's store (for a tuple, a
    /// frozenset or call arguments, which never change).
    pub(super) fn pop_mark_items(&mut self, offset: u64, op: Op) -> Result<Items> {
        let mark = self.pop_mark_index(offset, op)?;
        Ok(self.t.heap.store(self.stack.drain(mark..)))
    }

    pub(super) fn alloc(&mut self, obj: Obj<'a>, offset: u64) -> Result<Value<'a>> {
        let (v, depth) = self.t.heap.alloc(obj);
        self.check_depth(depth, offset)?;
        Ok(v)
    }

    pub(super) fn check_depth(&self, depth: u32, offset: u64) -> Result<()> {
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

    pub(super) fn anomaly(&mut self, offset: u64, message: impl Into<String>) {
        if self.t.anomalies.len() < 100 {
            self.t.anomalies.push(Anomaly {
                offset,
                message: message.into(),
            });
        }
    }

    // ---- globals and calls -----------------------------------------------------------

    /// `find_class(module, name)`: records the import and returns the global.
    pub(super) fn import(
        &mut self,
        offset: u64,
        opcode: &'static str,
        module: Cow<'a, [u8]>,
        name: Cow<'a, [u8]>,
    ) -> Result<Value<'a>> {
        // No real module or attribute name is this long; keeping a bounded prefix stops a
        // memoized giant string from being copied into every STACK_GLOBAL. The cut name
        // stays visibly malformed.
        let m = cut_name(module);
        let n = cut_name(name);
        let (module, name, written) = match fix_imports(&m, &n, self.proto) {
            Some((fm, fname)) => (
                Cow::Borrowed(fm),
                Cow::Owned(fname),
                Some((m.into_owned(), n.into_owned())),
            ),
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

    pub(super) fn push_global(&mut self, g: Global<'a>, offset: u64) -> Result<Value<'a>> {
        let idx = self.t.globals.len();
        self.t.globals.push(g);
        self.alloc(Obj::Global(idx), offset)
    }

    /// Records a call; returns its index.
    pub(super) fn record_call(
        &mut self,
        offset: u64,
        kind: CallKind,
        callee: Value<'a>,
        args: Items,
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
        // Arguments count as copied out of their tuple: charge them, so that one big
        // memoized tuple passed to many calls counts against the values limit.
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
    pub(super) fn call(
        &mut self,
        offset: u64,
        kind: CallKind,
        callee: Value<'a>,
        args: Items,
        args_opaque: bool,
        kwargs: Option<Value<'a>>,
    ) -> Result<Value<'a>> {
        let depth = self
            .t
            .heap
            .items(args)
            .iter()
            .chain(kwargs.iter())
            .map(|v| self.t.heap.depth_of(v))
            .max()
            .unwrap_or(0);
        self.check_depth(depth.saturating_add(1), offset)?;
        let idx = self.record_call(offset, kind, callee, args, args_opaque, kwargs);
        self.alloc(Obj::Instance(idx), offset)
    }

    /// The positional arguments a `REDUCE`/`NEWOBJ` passes: a tuple's items (shared: a
    /// tuple never changes), or a list's as they are now.
    pub(super) fn spread(&mut self, args: Value<'a>) -> (Items, bool) {
        match self.t.obj(args) {
            Some(Obj::Tuple(items)) => (*items, false),
            Some(Obj::List(items)) => {
                let items = items.clone();
                (self.t.heap.store(items), false)
            }
            _ => (self.t.heap.store([args]), true),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    List,
    Dict,
    Set,
}

/// Longest module or attribute name kept (bytes); longer ones are cut with a marker.
const MAX_NAME: usize = 4096;

pub(super) fn bounded_name(s: &[u8]) -> &[u8] {
    s.get(..MAX_NAME.saturating_add(1)).unwrap_or(s)
}

/// A name as text, cut at [`MAX_NAME`] bytes with a `…` that no identifier contains.
/// A name of printable ASCII from the stream is borrowed as it is.
pub(super) fn cut_name(s: Cow<'_, [u8]>) -> Cow<'_, str> {
    if let Cow::Borrowed(b) = s {
        if b.len() <= MAX_NAME && b.iter().all(|c| (0x20..0x7f).contains(c)) {
            if let Ok(text) = std::str::from_utf8(b) {
                return Cow::Borrowed(text);
            }
        }
    }
    Cow::Owned(match s.get(..MAX_NAME) {
        Some(head) if s.len() > MAX_NAME => format!("{}…", name_literal(head)),
        _ => name_literal(&s),
    })
}
