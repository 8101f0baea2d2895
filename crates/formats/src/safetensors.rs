//! safetensors: an 8-byte little-endian header length, a JSON header, then tensor data.
//! Spec: <https://github.com/huggingface/safetensors#format>

/// Cheap check: the declared header length fits in the file and the header opens a JSON
/// object.
pub fn looks_like(data: &[u8]) -> bool {
    let Some(len) = data.get(..8) else {
        return false;
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len);
    let n = u64::from_le_bytes(n);
    n >= 2 && n <= (data.len() as u64).saturating_sub(8) && data.get(8) == Some(&b'{')
}
