//! Digests of files and file shards, streamed through one fixed buffer per thread.
//!
//! SHA-256 comes from ring (OpenSSL's SHA-NI/AVX2 assembly), BLAKE3 from the `blake3`
//! crate. Both digests are 32 bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::Error;

/// Bytes read per `read` call: fits in L2 so the hash reads what the copy just wrote.
pub const READ_BUFFER: usize = 256 * 1024;

/// A 32-byte digest (SHA-256 or BLAKE3).
pub type Digest = [u8; 32];

/// The hash of every file or shard; `model_signing` calls it `hash_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Blake3,
}

impl HashAlgorithm {
    /// The name in the predicate (`hash_type`, and `algorithm` of whole-file resources).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    /// Parses a `hash_type`; `blake2` exists in `model_signing` but not here.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(HashAlgorithm::Sha256),
            "blake3" => Some(HashAlgorithm::Blake3),
            _ => None,
        }
    }

    /// Digest of a byte string held in memory.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }
}

/// One streaming hash.
pub enum Hasher {
    Sha256(Box<ring::digest::Context>),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    pub fn new(alg: HashAlgorithm) -> Self {
        match alg {
            HashAlgorithm::Sha256 => {
                Hasher::Sha256(Box::new(ring::digest::Context::new(&ring::digest::SHA256)))
            }
            HashAlgorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(c) => c.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(c) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(c.finish().as_ref());
                out
            }
            Hasher::Blake3(h) => *h.finalize().as_bytes(),
        }
    }
}

/// Hashes `len` bytes of `path` from `start` (the whole file when `start` is 0 and `len`
/// its size), reporting progress in bytes. A file that ends early is an error: it changed
/// under us.
pub fn hash_range(
    path: &Path,
    start: u64,
    len: u64,
    alg: HashAlgorithm,
    buf: &mut [u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Digest, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(io)?;
    }
    let mut hasher = Hasher::new(alg);
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = match file.read(chunk) {
            Ok(0) => {
                return Err(Error::Changed {
                    path: path.to_path_buf(),
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(chunk.get(..n).unwrap_or_default());
        left = left.saturating_sub(n as u64);
        progress(n as u64);
    }
    Ok(hasher.finish())
}

/// Ranges at least this long are worth a reader thread when a core is idle.
pub const READ_AHEAD_MIN: u64 = 32 << 20;
/// Buffers in flight between the reader and the hasher.
const READ_AHEAD_DEPTH: usize = 4;

/// [`hash_range`] with the reading on a second thread: the copy out of the page cache then
/// runs on another core beside the hash instead of before it, so one large file hashes at
/// about the speed of the hash alone. For when a core would otherwise sit idle (one file,
/// two cores).
pub fn hash_range_ahead(
    path: &Path,
    start: u64,
    len: u64,
    alg: HashAlgorithm,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Digest, Error> {
    use std::sync::mpsc;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(io)?;
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(READ_AHEAD_DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut left = len;
            while left > 0 {
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; READ_BUFFER]);
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_BUFFER);
                buf.resize(want, 0);
                let read = loop {
                    match file.read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                let n = match read {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                };
                buf.truncate(n);
                left = left.saturating_sub(n as u64);
                // An empty buffer tells the hasher the file ended early.
                if full_tx.send(Ok(buf)).is_err() || n == 0 {
                    return;
                }
            }
        });
        let mut hasher = Hasher::new(alg);
        let mut got = 0u64;
        for item in full_rx.iter() {
            let buf = item.map_err(io)?;
            if buf.is_empty() {
                break;
            }
            hasher.update(&buf);
            got += buf.len() as u64;
            progress(buf.len() as u64);
            let _ = empty_tx.send(buf);
        }
        if got != len {
            return Err(Error::Changed {
                path: path.to_path_buf(),
            });
        }
        Ok(hasher.finish())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(HashAlgorithm::Sha256.digest(b"abcd")),
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
        assert_eq!(
            hex::encode(HashAlgorithm::Blake3.digest(b"")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn ranges_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123abcd").unwrap();
        let mut buf = vec![0u8; 3];
        let d = hash_range(&p, 4, 4, HashAlgorithm::Sha256, &mut buf, &|_| {}).unwrap();
        assert_eq!(
            hash_range_ahead(&p, 4, 4, HashAlgorithm::Sha256, &|_| {}).unwrap(),
            d
        );
        assert!(matches!(
            hash_range_ahead(&p, 4, 5, HashAlgorithm::Sha256, &|_| {}),
            Err(Error::Changed { .. })
        ));
        assert_eq!(d, HashAlgorithm::Sha256.digest(b"abcd"));
        let err = hash_range(&p, 4, 5, HashAlgorithm::Sha256, &mut buf, &|_| {}).unwrap_err();
        assert!(matches!(err, Error::Changed { .. }), "{err}");
    }
}
