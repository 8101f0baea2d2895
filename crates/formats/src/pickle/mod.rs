//! Pickle streams, protocols 0 to 5, read by emulating the unpickling machine.
//! Spec: CPython `Lib/pickle.py` and `Lib/pickletools.py`.

/// Cheap check: a PROTO opcode with a known protocol.
pub fn looks_like(data: &[u8]) -> bool {
    data.first() == Some(&0x80) && data.get(1).is_some_and(|&p| p <= 5)
}
