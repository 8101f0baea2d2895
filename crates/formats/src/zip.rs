//! ZIP archives, read both ways: through the central directory (as Python's `zipfile` and
//! PyTorch do) and by walking local headers (as streaming readers do), so that no member
//! can hide from one reader and load through the other.
//! Spec: PKWARE APPNOTE.TXT 6.3.10.

/// True when an end-of-central-directory record sits within the last 64 KiB + 22 bytes.
pub fn has_end_of_central_directory(data: &[u8]) -> bool {
    let start = data.len().saturating_sub(65_535 + 22);
    data.get(start..)
        .is_some_and(|tail| tail.windows(4).any(|w| w == b"PK\x05\x06"))
}
