//! Format detection by content. A file's name is never trusted: an attacker chooses it.
//!
//! Detection looks at magic numbers first. Formats without one (pickle protocols 0 and 1,
//! protobuf-based ONNX and TensorFlow files) are recognised by a cheap structural check
//! here, and confirmed or refused by their reader later.

/// What a byte string appears to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// A pickle stream (PyTorch legacy, joblib, scikit-learn, raw `pickle.dump`).
    Pickle,
    /// A ZIP archive (PyTorch checkpoints, Keras `.keras`, NumPy `.npz`, plain zips).
    Zip,
    /// A POSIX/GNU tar archive (PyTorch legacy tar checkpoints, model bundles).
    Tar,
    /// A gzip stream.
    Gzip,
    /// A zlib stream (joblib's `compress=` output).
    Zlib,
    /// bzip2, xz/lzma, zstd, 7-Zip, rar: compressed data Warden cannot look inside.
    OpaqueCompressed(&'static str),
    /// A NumPy `.npy` array.
    Npy,
    /// A safetensors file.
    Safetensors,
    /// A GGUF file (llama.cpp and friends).
    Gguf,
    /// An HDF5 file (legacy Keras `.h5`).
    Hdf5,
    /// A protobuf message: ONNX `ModelProto`, TensorFlow `SavedModel` or `GraphDef`.
    /// Which one is decided by trying their readers.
    Protobuf,
    /// JSON text (configs, tokenizers, Keras `config.json`).
    Json,
    /// Other UTF-8 text.
    Text,
    /// Nothing Warden recognises.
    Unknown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pickle => "pickle",
            Self::Zip => "zip",
            Self::Tar => "tar",
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
            Self::OpaqueCompressed(name) => name,
            Self::Npy => "numpy",
            Self::Safetensors => "safetensors",
            Self::Gguf => "gguf",
            Self::Hdf5 => "hdf5",
            Self::Protobuf => "protobuf",
            Self::Json => "json",
            Self::Text => "text",
            Self::Unknown => "unknown",
        }
    }
}

const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Detects the format of `data` from its content alone.
pub fn detect(data: &[u8]) -> Format {
    if let Some(f) = by_magic(data) {
        return f;
    }
    if is_tar(data) {
        return Format::Tar;
    }
    if crate::safetensors::looks_like(data) {
        return Format::Safetensors;
    }
    if crate::pickle::looks_like(data) {
        return Format::Pickle;
    }
    if crate::zip::has_end_of_central_directory(data) {
        // A zip with data prepended (self-extracting, or a polyglot): Python's zipfile
        // opens these, so they are zips.
        return Format::Zip;
    }
    // Text before protobuf: protobuf's first byte can be a printable character, but real
    // protobuf messages carry length and varint bytes that are control characters.
    if let Some(f) = text_kind(data) {
        return f;
    }
    if looks_like_protobuf(data) {
        return Format::Protobuf;
    }
    Format::Unknown
}

fn by_magic(data: &[u8]) -> Option<Format> {
    let starts = |m: &[u8]| data.starts_with(m);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        return Some(Format::Zip);
    }
    if starts(b"\x1f\x8b") {
        return Some(Format::Gzip);
    }
    if starts(b"\x93NUMPY") {
        return Some(Format::Npy);
    }
    if starts(b"GGUF") {
        return Some(Format::Gguf);
    }
    // HDF5 allows a user block: the superblock may sit at 0, 512, 1024, 2048 ...
    if starts(HDF5_MAGIC)
        || [512usize, 1024, 2048, 4096]
            .iter()
            .any(|&o| data.get(o..o.saturating_add(HDF5_MAGIC.len())) == Some(HDF5_MAGIC))
    {
        return Some(Format::Hdf5);
    }
    if starts(b"BZh") && data.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return Some(Format::OpaqueCompressed("bzip2"));
    }
    if starts(b"\xfd7zXZ\x00") {
        return Some(Format::OpaqueCompressed("xz"));
    }
    if starts(b"\x5d\x00\x00") {
        return Some(Format::OpaqueCompressed("lzma"));
    }
    if starts(b"\x28\xb5\x2f\xfd") {
        return Some(Format::OpaqueCompressed("zstd"));
    }
    if starts(b"7z\xbc\xaf\x27\x1c") {
        return Some(Format::OpaqueCompressed("7z"));
    }
    if starts(b"Rar!\x1a\x07") {
        return Some(Format::OpaqueCompressed("rar"));
    }
    if is_zlib(data) {
        return Some(Format::Zlib);
    }
    None
}

/// A zlib header: CMF says deflate with a window of at most 32 KiB, and the check bits hold.
fn is_zlib(data: &[u8]) -> bool {
    match (data.first(), data.get(1)) {
        (Some(&cmf), Some(&flg)) => {
            cmf == 0x78 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0 && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// A ustar/GNU header at offset 0 with a valid checksum.
fn is_tar(data: &[u8]) -> bool {
    let Some(header) = data.get(..512) else {
        return false;
    };
    let magic = header.get(257..263);
    let has_magic = magic == Some(b"ustar\0") || magic == Some(b"ustar ");
    has_magic && crate::tar::header_checksum_ok(header)
}

/// A cheap structural check: the first byte is a protobuf tag for a low field number with a
/// varint or length-delimited wire type. Readers confirm.
fn looks_like_protobuf(data: &[u8]) -> bool {
    match data.first() {
        Some(&tag) => {
            let field = tag >> 3;
            let wire = tag & 7;
            (1..=15).contains(&field) && (wire == 0 || wire == 2) && data.len() >= 4
        }
        None => false,
    }
}

/// JSON or text: valid UTF-8 in the first 64 KiB with no NUL and few control characters.
fn text_kind(data: &[u8]) -> Option<Format> {
    if data.is_empty() {
        return Some(Format::Text);
    }
    let head = data.get(..data.len().min(64 * 1024)).unwrap_or(data);
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The 64 KiB window may cut a multi-byte character in half.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(head.get(..e.valid_up_to())?).ok()?
        }
        Err(_) => return None,
    };
    if has_control(text) {
        return None;
    }
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\n', '\r', '\t']);
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        Some(Format::Json)
    } else {
        Some(Format::Text)
    }
}

/// Whether `text` holds a control character (`char::is_control`: U+0000–U+001F, U+007F,
/// U+0080–U+009F) other than newline, carriage return, tab and form feed. Byte by byte:
/// in UTF-8, U+0080–U+009F are exactly the pairs `C2 80`..`C2 9F`, and `C2` is never a
/// continuation byte.
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    let control_at = |i: usize, b: u8| match b {
        b'\n' | b'\r' | b'\t' | 0x0c => false,
        0x00..=0x1f | 0x7f => true,
        0xc2 => bytes
            .get(i.saturating_add(1))
            .is_some_and(|n| (0x80..=0x9f).contains(n)),
        _ => false,
    };
    // Blocks are screened with a branch-free test (which the compiler vectorises); only a
    // block holding a candidate byte is looked at byte by byte.
    let mut at = 0usize;
    bytes.chunks(64).any(|block| {
        let start = at;
        at = at.saturating_add(block.len());
        let candidate = block.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\n') & (b != b'\r') & (b != b'\t') & (b != 0x0c))
                | (b == 0x7f)
                | (b == 0xc2)
        });
        candidate
            && block
                .iter()
                .enumerate()
                .any(|(i, &b)| control_at(start.saturating_add(i), b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(detect(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(detect(b"\x93NUMPY\x01\x00"), Format::Npy);
        assert_eq!(detect(b"GGUF\x03\x00\x00\x00"), Format::Gguf);
        assert_eq!(detect(b"\x89HDF\r\n\x1a\n...."), Format::Hdf5);
        assert_eq!(detect(b"\x1f\x8b\x08\x00"), Format::Gzip);
        assert_eq!(detect(b"\x78\x9c\x01\x02"), Format::Zlib);
        assert_eq!(detect(b"\xfd7zXZ\x00\x00"), Format::OpaqueCompressed("xz"));
    }

    #[test]
    fn text_and_json() {
        assert_eq!(detect(b"  {\"a\": 1}"), Format::Json);
        assert_eq!(detect(b"# Model card\nhello"), Format::Text);
        assert_eq!(detect(b""), Format::Text);
    }

    #[test]
    fn control_characters_are_found_like_char_is_control() {
        for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}'] {
            assert!(has_control(&format!("ab{c}cd")), "{c:?}");
        }
        for c in [
            '\n', '\r', '\t', '\x0c', '\u{a0}', '\u{c2}', '\u{100}', '\u{2028}', 'é',
        ] {
            assert!(!has_control(&format!("ab{c}cd")), "{c:?}");
        }
        for cp in 0..0x800u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let s = format!("x{c}y");
            let want = c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c');
            assert_eq!(has_control(&s), want, "{cp:#x}");
        }
    }

    #[test]
    fn binary_garbage_is_unknown() {
        assert_eq!(
            detect(&[0xff, 0x00, 0x13, 0x37, 0x00, 0x01]),
            Format::Unknown
        );
    }
}
