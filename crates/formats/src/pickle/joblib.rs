//! joblib's in-stream NumPy arrays (`joblib/numpy_pickle.py`, joblib 1.5).
//!
//! `NumpyPickler.save` pickles a `NumpyArrayWrapper` in place of each array, then writes
//! the array right after the wrapper's `BUILD`, outside the pickle opcodes:
//! - numeric dtypes: when the wrapper's state has `numpy_array_alignment_bytes` (joblib ≥
//!   1.2), one byte giving a padding length, that many `0xff` bytes, then
//!   `prod(shape) * itemsize` raw bytes;
//! - object dtypes (`dtype.hasobject`): `pickle.dump(array, file, protocol=5)`, a whole
//!   nested pickle read back by a plain `pickle.load`.
//!
//! The wrapper's state dict holds `subclass`, `shape`, `order`, `dtype` (a
//! `numpy.dtype('f8', False, True)` call, then `BUILD` with
//! `(3, '<', None, names, fields, elsize, alignment, flags)`) and `allow_mmap`.

use super::trace::Trace;
use super::value::Value;

/// NumPy's `NPY_ITEM_HASOBJECT` dtype flag.
const HASOBJECT: i64 = 0x01;

/// Classes whose `BUILD` makes joblib's unpickler read raw array bytes.
pub fn is_array_wrapper(module: &str, name: &str) -> bool {
    name == "NumpyArrayWrapper"
        && matches!(
            module,
            "joblib.numpy_pickle" | "sklearn.externals.joblib.numpy_pickle"
        )
}

/// What follows one wrapper in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySpec {
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Raw bytes after any padding (0 for object arrays).
    pub bytes: u64,
    /// A padding-length byte and padding precede the data.
    pub aligned: bool,
    /// An object array: a nested pickle follows instead of raw bytes.
    pub object: bool,
}

/// Reads the wrapper's state the way `read_array` does.
pub fn array_spec<'a>(t: &Trace<'a>, state: Value<'a>) -> Result<ArraySpec, String> {
    let shape_v = t
        .dict_get(state, "shape")
        .ok_or("wrapper state has no shape")?;
    let shape: Vec<u64> = match t.items(shape_v) {
        Some(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => u64::try_from(*i).map_err(|_| format!("negative dimension {i}")),
                _ => Err("shape holds a non-integer".to_string()),
            })
            .collect::<Result<_, _>>()?,
        None => return Err("shape is not a tuple".into()),
    };
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or("shape product overflows")?;
    let dtype_v = t
        .dict_get(state, "dtype")
        .ok_or("wrapper state has no dtype")?;
    let call = t
        .call_index(dtype_v)
        .and_then(|c| t.calls.get(c))
        .ok_or("dtype is not a numpy.dtype(...) call")?;
    let is_dtype = t.callee_global(call).is_some_and(|g| {
        g.name == "dtype"
            && matches!(
                &*g.module,
                "numpy" | "numpy.core.multiarray" | "numpy._core.multiarray"
            )
    });
    if !is_dtype {
        return Err("dtype is not a numpy.dtype(...) call".into());
    }
    let typestr = t
        .args(call)
        .first()
        .and_then(|v| t.str_bytes(*v))
        .and_then(|s| std::str::from_utf8(s).ok())
        .ok_or("dtype has no type string")?
        .to_string();
    let dstate: &[Value<'a>] = call.state.and_then(|s| t.items(s)).unwrap_or(&[]);
    let int_at = |i: usize| match dstate.get(i) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    };
    let flags = int_at(7).unwrap_or(0);
    let object = typestr.starts_with('O') || flags & HASOBJECT != 0;
    let itemsize = match int_at(5) {
        Some(elsize) if elsize >= 0 => u64::try_from(elsize).unwrap_or(0),
        _ => itemsize_of(&typestr).ok_or_else(|| format!("cannot size dtype {typestr:?}"))?,
    };
    let bytes = if object {
        0
    } else {
        count
            .checked_mul(itemsize)
            .ok_or("array byte size overflows")?
    };
    let aligned = matches!(
        t.dict_get(state, "numpy_array_alignment_bytes"),
        Some(v) if v != Value::None
    );
    Ok(ArraySpec {
        dtype: typestr,
        shape,
        bytes,
        aligned,
        object,
    })
}

/// Item size of a fixed-size dtype string as numpy pickles it: `f8`, `i4`, `b1`, `c16`,
/// `M8`, `O8` (kind letters, then the size in bytes).
fn itemsize_of(typestr: &str) -> Option<u64> {
    let body = typestr.trim_start_matches(['<', '>', '|', '=']);
    let digits: String = body
        .chars()
        .skip_while(|c| c.is_ascii_alphabetic())
        .collect();
    let digits = digits.split('[').next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itemsizes() {
        assert_eq!(itemsize_of("f8"), Some(8));
        assert_eq!(itemsize_of("<i4"), Some(4));
        assert_eq!(itemsize_of("c16"), Some(16));
        assert_eq!(itemsize_of("M8"), Some(8));
        assert_eq!(itemsize_of("M8[ns]"), Some(8));
        assert_eq!(itemsize_of("U"), None);
    }

    #[test]
    fn wrapper_names() {
        assert!(is_array_wrapper("joblib.numpy_pickle", "NumpyArrayWrapper"));
        assert!(!is_array_wrapper("joblib.numpy_pickle", "NDArrayWrapper"));
        assert!(!is_array_wrapper("evil", "NumpyArrayWrapper"));
    }
}
