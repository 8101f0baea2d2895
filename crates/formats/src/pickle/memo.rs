//! The unpickler's memo: a dict from integer keys to values (`PUT`/`GET`/`MEMOIZE`).
//!
//! Picklers number memo entries 0, 1, 2 ..., so keys are kept in a dense vector and only
//! far-off keys (a hostile `LONG_BINPUT 4000000000`) go to a hash map. Python's `len(memo)`
//! (which `MEMOIZE` uses as its key) counts distinct keys.

use std::collections::HashMap;

use super::value::Value;

/// How far past the dense vector's end a key may land and still be stored densely.
const DENSE_SLACK: u64 = 4096;

#[derive(Debug, Default)]
pub struct Memo<'a> {
    dense: Vec<Option<Value<'a>>>,
    sparse: HashMap<u64, Value<'a>>,
    len: usize,
}

impl<'a> Memo<'a> {
    /// Distinct keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Slots held, including gaps in the dense vector: what the values limit counts, so
    /// that sparse keys cannot make the memo large.
    pub fn cells(&self) -> u64 {
        (self.dense.len() as u64).saturating_add(self.sparse.len() as u64)
    }

    /// Makes room for `n` keys in sequence.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.dense.reserve(n);
    }

    pub fn get(&self, key: u64) -> Option<Value<'a>> {
        match usize::try_from(key).ok().and_then(|k| self.dense.get(k)) {
            Some(slot) => *slot,
            None => self.sparse.get(&key).copied(),
        }
    }

    pub fn insert(&mut self, key: u64, v: Value<'a>) {
        let dense_len = self.dense.len() as u64;
        // The usual case: the next key in sequence.
        if key == dense_len {
            self.dense.push(Some(v));
            self.len = self.len.saturating_add(1);
            return;
        }
        let slot = if key < dense_len.saturating_add(DENSE_SLACK) {
            usize::try_from(key).ok()
        } else {
            None
        };
        match slot {
            Some(k) => {
                if k >= self.dense.len() {
                    self.dense.resize(k.saturating_add(1), None);
                }
                if let Some(cell) = self.dense.get_mut(k) {
                    if cell.replace(v).is_none() {
                        self.len = self.len.saturating_add(1);
                    }
                }
            }
            None => {
                if self.sparse.insert(key, v).is_none() {
                    self.len = self.len.saturating_add(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_keys_count_like_a_dict() {
        let mut m = Memo::default();
        m.insert(0, Value::Int(0));
        m.insert(2, Value::Int(2));
        m.insert(2, Value::Int(3));
        m.insert(4_000_000_000, Value::Int(4));
        assert_eq!(m.len(), 3);
        assert_eq!(m.cells(), 4);
        assert_eq!(m.get(2), Some(Value::Int(3)));
        assert_eq!(m.get(1), None);
        assert_eq!(m.get(4_000_000_000), Some(Value::Int(4)));
        assert_eq!(m.get(u64::MAX), None);
    }
}
