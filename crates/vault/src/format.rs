//! The sealed-file format (WVAULT1): a streaming AEAD over fixed-size segments.
//!
//! ```text
//! magic       8 bytes   "WVAULT1\n"
//! header_len  u32 LE    at most 16 KiB
//! header      JSON      {"v":1,"alg":"aes-256-gcm","segment_size":S,"nonce_prefix":"<14 hex>",
//!                        "plaintext_size":N,"release":"…","file":"…","manifest":"…"}
//! segments    ceil(N/S) of them (one, empty, when N = 0): ciphertext ‖ 16-byte tag
//! ```
//!
//! Segment i is AES-256-GCM under the artifact's data key with
//! nonce = nonce_prefix (7 bytes) ‖ i (u32, big-endian) ‖ last (1 byte: 1 on the final
//! segment, else 0), and associated data = SHA-256(magic ‖ header_len ‖ header).
//! So a flipped bit, a reordered or dropped segment, a truncated or extended file, and a
//! segment spliced from another file or release each fail authentication; the header (what
//! release and file this is, and the manifest it belongs to) is bound to every segment.
//! Segments have fixed offsets, so any one can be read and checked alone.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};

use crate::datakey::{random, DataKey};
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"WVAULT1\n";
/// Plaintext bytes per segment.
pub const SEGMENT_SIZE: u32 = 64 * 1024;
const TAG: u64 = 16;
const MAX_HEADER: usize = 16 * 1024;
const MAX_SEGMENT: u32 = 16 << 20;
const ALG: &str = "aes-256-gcm";

/// What a sealed file is: bound to every segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The release, `name@version`.
    pub release: String,
    /// The file's path within the release.
    pub file: String,
    /// The release manifest's digest (e.g. `sha256:<hex>` of the OMS root digest).
    pub manifest: String,
}

/// The header of a sealed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub v: u32,
    pub alg: String,
    pub segment_size: u32,
    pub nonce_prefix: String,
    pub plaintext_size: u64,
    pub release: String,
    pub file: String,
    pub manifest: String,
}

impl Header {
    pub fn context(&self) -> Context {
        Context {
            release: self.release.clone(),
            file: self.file.clone(),
            manifest: self.manifest.clone(),
        }
    }

    /// Number of segments (at least one).
    pub fn segments(&self) -> u64 {
        self.plaintext_size
            .div_ceil(u64::from(self.segment_size))
            .max(1)
    }
}

fn aead_key(key: &DataKey) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key.expose())
        .map(LessSafeKey::new)
        .map_err(|_| Error::Key("unusable data key".into()))
}

fn nonce(prefix: &[u8; 7], index: u64, last: bool) -> Result<Nonce> {
    let index = u32::try_from(index).map_err(|_| Error::Format("too many segments".into()))?;
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Ok(Nonce::assume_unique_for_key(n))
}

fn encode_header(header: &Header) -> Result<(Vec<u8>, [u8; 32])> {
    let json = serde_json::to_vec(header).map_err(|e| Error::Format(e.to_string()))?;
    let mut bytes = Vec::with_capacity(12 + json.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let mut d = [0u8; 32];
    d.copy_from_slice(digest.as_ref());
    Ok((bytes, d))
}

/// Encrypts exactly `size` bytes from `input` into `out`. Fails, and the output must be
/// discarded, if `input` holds more or fewer bytes than `size`.
pub fn seal(
    input: impl Read + Send,
    size: u64,
    mut out: impl Write,
    key: &DataKey,
    context: &Context,
) -> Result<Header> {
    let prefix: [u8; 7] = random();
    let header = Header {
        v: 1,
        alg: ALG.into(),
        segment_size: SEGMENT_SIZE,
        nonce_prefix: hex::encode(prefix),
        plaintext_size: size,
        release: context.release.clone(),
        file: context.file.clone(),
        manifest: context.manifest.clone(),
    };
    let (bytes, digest) = encode_header(&header)?;
    out.write_all(&bytes)?;
    let aead = aead_key(key)?;
    let count = header.segments();
    let sizes: Vec<usize> = (0..count)
        .map(|i| {
            size.saturating_sub(i * u64::from(SEGMENT_SIZE))
                .min(u64::from(SEGMENT_SIZE)) as usize
        })
        .collect();
    let mut input = crate::pipeline::read_ahead(input, sizes.clone(), |index, buf| {
        let want = sizes.get(index as usize).copied().unwrap_or(0);
        if buf.len() != want {
            let left = size - index * u64::from(SEGMENT_SIZE) - buf.len() as u64;
            return Err(Error::Format(format!(
                "the input ended {left} bytes early (changed while sealing?)"
            )));
        }
        let last = index + 1 == count;
        let tag = aead
            .seal_in_place_separate_tag(nonce(&prefix, index, last)?, Aad::from(digest), buf)
            .map_err(|_| Error::Format("encryption failed".into()))?;
        out.write_all(buf)?;
        out.write_all(tag.as_ref())?;
        Ok(())
    })?;
    let mut probe = [0u8; 1];
    if input.read(&mut probe)? != 0 {
        return Err(Error::Format(
            "the input is longer than its stated size (changed while sealing?)".into(),
        ));
    }
    out.flush()?;
    Ok(header)
}

/// Reads a sealed file's header without any key (to know what it claims to be). Nothing
/// in it is trusted until a segment authenticates.
pub fn read_header(mut input: impl Read) -> Result<(Header, Vec<u8>)> {
    let mut fixed = [0u8; 12];
    input
        .read_exact(&mut fixed)
        .map_err(|_| Error::Format("shorter than a header".into()))?;
    if &fixed[..8] != MAGIC {
        return Err(Error::Format("not a sealed file (bad magic)".into()));
    }
    let len = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]) as usize;
    if len > MAX_HEADER {
        return Err(Error::Format(format!(
            "header of {len} bytes exceeds {MAX_HEADER}"
        )));
    }
    let mut json = vec![0u8; len];
    input
        .read_exact(&mut json)
        .map_err(|_| Error::Format("the header is cut short".into()))?;
    let header: Header =
        serde_json::from_slice(&json).map_err(|e| Error::Format(format!("bad header: {e}")))?;
    if header.v != 1 || header.alg != ALG {
        return Err(Error::Format(format!(
            "unsupported version {} / algorithm {}",
            header.v, header.alg
        )));
    }
    if header.segment_size == 0 || header.segment_size > MAX_SEGMENT {
        return Err(Error::Format(format!(
            "segment size {} out of range",
            header.segment_size
        )));
    }
    let mut raw = fixed.to_vec();
    raw.extend_from_slice(&json);
    Ok((header, raw))
}

/// An opened sealed file: header checked against the expected context, key ready.
pub struct Opened {
    header: Header,
    digest: [u8; 32],
    prefix: [u8; 7],
    data_start: u64,
    aead: LessSafeKey,
}

impl Opened {
    /// Reads the header from `input` and checks that it is the file expected.
    pub fn new(input: impl Read, key: &DataKey, expected: &Context) -> Result<Opened> {
        let (header, raw) = read_header(input)?;
        let found = header.context();
        if &found != expected {
            return Err(Error::WrongContext {
                expected: format!(
                    "{} {} ({})",
                    expected.release, expected.file, expected.manifest
                ),
                found: format!("{} {} ({})", found.release, found.file, found.manifest),
            });
        }
        let prefix: [u8; 7] = hex::decode(&header.nonce_prefix)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Format("bad nonce prefix".into()))?;
        let (check, digest) = encode_header(&header)?;
        if check != raw {
            return Err(Error::Format("the header is not in canonical form".into()));
        }
        Ok(Opened {
            data_start: raw.len() as u64,
            header,
            digest,
            prefix,
            aead: aead_key(key)?,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The exact length the sealed file must have.
    pub fn sealed_len(&self) -> u64 {
        self.data_start + self.header.plaintext_size + self.header.segments() * TAG
    }

    fn segment_plain_len(&self, index: u64) -> u64 {
        let s = u64::from(self.header.segment_size);
        let start = index * s;
        self.header.plaintext_size.saturating_sub(start).min(s)
    }

    /// Authenticates and decrypts one segment (ciphertext ‖ tag) in place.
    fn decrypt(&self, index: u64, buf: &mut Vec<u8>) -> Result<()> {
        let plain_len = self.decrypt_slice(index, buf)?;
        buf.truncate(plain_len);
        Ok(())
    }

    /// Authenticates and decrypts one segment (ciphertext ‖ tag) in place; returns the
    /// length of its plaintext, at the start of `buf`.
    fn decrypt_slice(&self, index: u64, buf: &mut [u8]) -> Result<usize> {
        let last = index + 1 == self.header.segments();
        Ok(self
            .aead
            .open_in_place(
                nonce(&self.prefix, index, last)?,
                Aad::from(self.digest),
                buf,
            )
            .map_err(|_| Error::Tampered { segment: index })?
            .len())
    }

    /// Decrypts the whole file from `input` (positioned after the header) into `out`.
    /// Each segment is written only after it authenticated, but an error part-way leaves
    /// earlier segments written: discard `out` on error.
    pub fn decrypt_to(&self, input: impl Read + Send, mut out: impl Write) -> Result<u64> {
        let sizes: Vec<usize> = (0..self.header.segments())
            .map(|i| (self.segment_plain_len(i) + TAG) as usize)
            .collect();
        let mut input = crate::pipeline::read_ahead(input, sizes.clone(), |index, buf| {
            if buf.len() != sizes.get(index as usize).copied().unwrap_or(0) {
                return Err(Error::Tampered { segment: index });
            }
            self.decrypt(index, buf)?;
            out.write_all(buf)?;
            Ok(())
        })?;
        let mut probe = [0u8; 1];
        if input.read(&mut probe)? != 0 {
            return Err(Error::Format("bytes after the last segment".into()));
        }
        out.flush()?;
        Ok(self.header.plaintext_size)
    }

    /// Decrypts the whole sealed `file` into `out` on `threads` threads, reading each
    /// segment where it lies (`pread`) and writing the plaintext in order. A file longer
    /// than its header implies is refused before anything is written; a shorter one fails
    /// at its first missing segment. On error, discard `out`.
    pub fn decrypt_file_to(&self, file: &File, mut out: impl Write, threads: usize) -> Result<u64> {
        let len = file.metadata()?.len();
        if len > self.sealed_len() {
            return Err(Error::Format("bytes after the last segment".into()));
        }
        crate::parallel::decrypt_file(self, file, &mut out, threads)?;
        out.flush()?;
        Ok(self.header.plaintext_size)
    }

    /// Reads, authenticates and decrypts segment `index` of a sealed file (random access).
    pub fn read_segment(&self, file: &File, index: u64) -> Result<Vec<u8>> {
        if index >= self.header.segments() {
            return Err(Error::Format(format!("no segment {index}")));
        }
        let s = u64::from(self.header.segment_size) + TAG;
        let mut buf = vec![0u8; (self.segment_plain_len(index) + TAG) as usize];
        file.read_exact_at(&mut buf, self.data_start + index * s)
            .map_err(|_| Error::Tampered { segment: index })?;
        self.decrypt(index, &mut buf)?;
        Ok(buf)
    }
}

impl crate::parallel::Segments for Opened {
    fn count(&self) -> u64 {
        self.header.segments()
    }

    fn stride(&self) -> u64 {
        u64::from(self.header.segment_size) + TAG
    }

    fn start(&self) -> u64 {
        self.data_start
    }

    fn segment_len(&self, index: u64) -> usize {
        (self.segment_plain_len(index) + TAG) as usize
    }

    fn open(&self, index: u64, buf: &mut [u8]) -> Result<usize> {
        self.decrypt_slice(index, buf)
    }
}
