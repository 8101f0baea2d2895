//! Pickle streams, protocols 0 to 5, read by emulating the unpickling machine.
//!
//! Spec: CPython [`Lib/pickle.py`](https://github.com/python/cpython/blob/3.11/Lib/pickle.py)
//! (`_Unpickler`), [`Lib/pickletools.py`](https://github.com/python/cpython/blob/3.11/Lib/pickletools.py)
//! (the opcode reference) and PEP 307/3154/574 (protocols 2, 4, 5).
//!
//! A pickle is a program. Loading one runs it: `GLOBAL`/`STACK_GLOBAL` import any name from
//! any module, `REDUCE`/`NEWOBJ`/`INST`/`OBJ`/`BUILD` call what was imported. This reader
//! runs the program on an emulated machine that performs no call and records each one
//! instead, giving a [`Trace`]: every global imported and how it was used, every call with
//! its arguments, persistent ids, extension codes and anomalies. It does not judge them.
//!
//! Files may hold several pickles back to back (PyTorch's legacy format writes five, then
//! raw storage bytes; joblib writes array bytes between opcodes): see [`parse_stream`].

mod compat;
mod input;
pub mod joblib;
mod machine;
mod memo;
pub mod opcodes;
pub mod render;
mod sniff;
mod step;
pub mod text;
pub mod trace;
pub mod value;

#[cfg(test)]
mod tests;

use crate::error::ParseError;
use crate::limits::Limits;

use machine::{Machine, Mode};

pub use compat::fix_imports;
pub use sniff::{identifier_path, looks_like};
pub use trace::{
    Anomaly, Build, Call, CallKind, Extension, Global, JoblibArray, PersistentId, Trace, Uses,
};
pub use value::{Heap, Items, Obj, ObjId, Value};

/// Most pickles read back to back from one input.
pub const MAX_PICKLES: usize = 1024;

/// The pickles of one input, in order.
#[derive(Debug, Clone, Default)]
pub struct Stream<'a> {
    pub pickles: Vec<Trace<'a>>,
    /// Bytes after the last `STOP` that do not start another pickle (PyTorch legacy
    /// storage data, or something appended).
    pub trailing: Option<Trailing>,
    /// The input held more than [`MAX_PICKLES`] pickles; the rest was not read.
    pub error: Option<ParseError>,
}

/// Bytes left after the last pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailing {
    pub offset: u64,
    pub len: u64,
}

impl<'a> Stream<'a> {
    /// Every trace: each pickle and the pickles nested in it (not the `pickle.load` views
    /// of joblib streams, see [`Trace::pickle_load_view`]).
    pub fn traces(&self) -> impl Iterator<Item = &Trace<'a>> {
        self.pickles.iter().flat_map(|t| t.all())
    }

    /// The first error that stopped a pickle, if any.
    pub fn first_error(&self) -> Option<&ParseError> {
        self.pickles
            .iter()
            .find_map(|t| t.error.as_ref())
            .or(self.error.as_ref())
    }
}

/// Reads the one pickle at the start of `data` (as `pickle.load` / `joblib.load` would).
pub fn parse<'a>(data: &'a [u8], limits: &Limits) -> Trace<'a> {
    let mut ops = limits.max_pickle_ops;
    parse_one(data, 0, limits, &mut ops)
}

/// Reads consecutive pickles from `data` until one fails, the data ends, or what remains
/// does not start with a pickle. The opcode limit applies to the whole input.
pub fn parse_stream<'a>(data: &'a [u8], limits: &Limits) -> Stream<'a> {
    let mut ops = limits.max_pickle_ops;
    let mut stream = Stream::default();
    let mut pos = 0usize;
    loop {
        let trace = parse_one(data, pos, limits, &mut ops);
        let failed = trace.error.is_some();
        let end = usize::try_from(trace.end).unwrap_or(usize::MAX).max(pos);
        stream.pickles.push(trace);
        if failed || end >= data.len() {
            break;
        }
        pos = end;
        let rest = data.get(pos..).unwrap_or_default();
        if !looks_like(rest) {
            stream.trailing = Some(Trailing {
                offset: pos as u64,
                len: rest.len() as u64,
            });
            break;
        }
        if stream.pickles.len() >= MAX_PICKLES {
            stream.error = Some(ParseError::limit(
                pos as u64,
                "pickles in one file",
                stream.pickles.len().saturating_add(1) as u64,
                MAX_PICKLES as u64,
            ));
            break;
        }
    }
    stream
}

/// One pickle at `start`. A stream that builds a joblib `NumpyArrayWrapper` is read again
/// the way `joblib.load` reads it; the `pickle.load` reading is kept alongside.
fn parse_one<'a>(data: &'a [u8], start: usize, limits: &Limits, ops: &mut u64) -> Trace<'a> {
    let mut plain_ops = *ops;
    let (plain, joblib) = Machine::new(data, start, Mode::Plain, limits, &mut plain_ops).run();
    if !joblib {
        *ops = plain_ops;
        return plain;
    }
    let mut joblib_ops = *ops;
    let (mut trace, _) = Machine::new(data, start, Mode::Joblib, limits, &mut joblib_ops).run();
    *ops = plain_ops.min(joblib_ops);
    trace.pickle_load_view = Some(Box::new(plain));
    trace
}
