//! Hashing a file while it is read for sealing: the whole-file SHA-256 (for the registry
//! and the AI-BOM) and the manifest's resources (whole file or shards, SHA-256 or BLAKE3)
//! from one read, so that what is checked against the signed manifest is exactly what was
//! sealed.

use std::io::{Read, Write};

use sign::hash::{Digest, HashAlgorithm, Hasher};
use sign::manifest::{Item, Method, Serialization};

/// Hashes a file's bytes as they stream past: the whole file and the manifest resources.
pub struct Digester {
    whole: Hasher,
    /// `None` when the manifest's resource is the whole file's SHA-256 itself.
    resource: Option<Hasher>,
    method: Method,
    alg: HashAlgorithm,
    pos: u64,
    shard_start: u64,
    shards: Vec<(u64, u64, Digest)>,
}

/// What one file hashed to.
pub struct FileDigests {
    pub sha256: Digest,
    /// The manifest's resources for the file, in order.
    pub items: Vec<Item>,
}

impl Digester {
    pub fn new(ser: &Serialization) -> Self {
        let resource = match (ser.method, ser.hash) {
            (Method::Files, HashAlgorithm::Sha256) => None,
            _ => Some(Hasher::new(ser.hash)),
        };
        Digester {
            whole: Hasher::new(HashAlgorithm::Sha256),
            resource,
            method: ser.method,
            alg: ser.hash,
            pos: 0,
            shard_start: 0,
            shards: Vec::new(),
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        self.whole.update(data);
        let Method::Shards(size) = self.method else {
            if let Some(h) = &mut self.resource {
                h.update(data);
            }
            self.pos += data.len() as u64;
            return;
        };
        while !data.is_empty() {
            let room = (self.shard_start + size - self.pos).min(data.len() as u64) as usize;
            let (now, later) = data.split_at(room);
            if let Some(h) = &mut self.resource {
                h.update(now);
            }
            self.pos += now.len() as u64;
            data = later;
            if self.pos == self.shard_start + size {
                self.close_shard();
            }
        }
    }

    fn close_shard(&mut self) {
        if self.pos > self.shard_start {
            let done = self.resource.replace(Hasher::new(self.alg));
            if let Some(h) = done {
                self.shards.push((self.shard_start, self.pos, h.finish()));
            }
        }
        self.shard_start = self.pos;
    }

    /// The digests of everything read, as resources of the file named `path`.
    pub fn finish(mut self, path: &str) -> FileDigests {
        let sha256 =
            std::mem::replace(&mut self.whole, Hasher::new(HashAlgorithm::Sha256)).finish();
        let items = match self.method {
            Method::Files => {
                let digest = match self.resource.take() {
                    Some(h) => h.finish(),
                    None => sha256,
                };
                vec![Item {
                    path: path.to_string(),
                    range: None,
                    digest,
                }]
            }
            Method::Shards(_) => {
                self.close_shard();
                self.shards
                    .iter()
                    .map(|&(s, e, digest)| Item {
                        path: path.to_string(),
                        range: Some((s, e)),
                        digest,
                    })
                    .collect()
            }
        };
        FileDigests { sha256, items }
    }
}

/// A reader that hashes what passes through it (sealing).
pub struct HashingReader<R> {
    inner: R,
    pub digester: Digester,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, ser: &Serialization) -> Self {
        HashingReader {
            inner,
            digester: Digester::new(ser),
        }
    }

    pub fn finish(self, path: &str) -> FileDigests {
        self.digester.finish(path)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.feed(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A writer that hashes what passes through it (unsealing).
pub struct HashingWriter<W> {
    inner: W,
    pub digester: Digester,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, ser: &Serialization) -> Self {
        HashingWriter {
            inner,
            digester: Digester::new(ser),
        }
    }

    pub fn into_parts(self) -> (W, Digester) {
        (self.inner, self.digester)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.feed(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ser(method: Method, hash: HashAlgorithm) -> Serialization {
        Serialization {
            method,
            hash,
            allow_symlinks: false,
            ignore_paths: vec![],
        }
    }

    /// The reader's resources equal what `sign` computes for the same file, for every
    /// method, with reads of awkward sizes.
    #[test]
    fn agrees_with_the_manifest_builder() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("w.bin"), &data).unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        for s in [
            ser(Method::Files, HashAlgorithm::Sha256),
            ser(Method::Files, HashAlgorithm::Blake3),
            ser(Method::Shards(4096), HashAlgorithm::Sha256),
            ser(Method::Shards(1), HashAlgorithm::Blake3),
            ser(Method::Shards(1 << 20), HashAlgorithm::Sha256),
        ] {
            let want = sign::manifest::build(dir.path(), &s, Default::default(), &|_| {}, &|_| {})
                .unwrap();
            let mut got = Vec::new();
            for name in ["empty", "w.bin"] {
                let bytes = std::fs::read(dir.path().join(name)).unwrap();
                let mut r = HashingReader::new(&bytes[..], &s);
                let mut buf = [0u8; 777];
                while r.read(&mut buf).unwrap() > 0 {}
                let d = r.finish(name);
                assert_eq!(d.sha256, HashAlgorithm::Sha256.digest(&bytes));
                got.extend(d.items);
            }
            got.sort_by(Item::order);
            assert_eq!(got, want.items, "{s:?}");
        }
    }
}
