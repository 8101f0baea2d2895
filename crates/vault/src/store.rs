//! The vault on disk: sealed blobs and their wrapped data keys, kept apart so that keys can
//! be destroyed without touching the ciphertext.
//!
//! ```text
//! <vault>/blobs/<release>/<id>.wv     sealed file (format.rs)
//! <vault>/keys/<release>/<id>.json    its data key, wrapped by the KEK
//! ```
//! `<id>` is the SHA-256 of the file's path in the release, so paths need no escaping.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::datakey::DataKey;
use crate::direct::DirectWriter;
use crate::error::{Error, Result};
use crate::format::{self, Context, Opened};
use crate::provider::{KeyProvider, WrappedKey};

/// A vault directory with its key provider.
pub struct Vault {
    dir: PathBuf,
    provider: Box<dyn KeyProvider>,
}

/// What sealing one file produced.
#[derive(Debug)]
pub struct Sealed {
    pub plaintext_size: u64,
    pub sealed_size: u64,
    pub blob: PathBuf,
}

/// What shredding a release destroyed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Shredded {
    /// Wrapped data keys destroyed (including copies in the backup key directories given).
    pub keys_destroyed: u64,
    /// Sealed blobs left in place: unreadable now.
    pub blobs_left: u64,
}

/// Checks a release name (`name@version`) before it becomes a directory name.
pub fn check_release(release: &str) -> Result<()> {
    let ok_part = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
    };
    match release.split_once('@') {
        Some((name, version)) if ok_part(name, b"") && ok_part(version, b"+") => Ok(()),
        _ => Err(Error::Format(format!(
            "release {release:?} is not name@version (letters, digits, '.', '_', '-'; '+' in versions)"
        ))),
    }
}

fn file_id(file: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, file.as_bytes());
    hex::encode(d.as_ref())
}

/// The associated data that ties a wrapped key to its artifact.
fn key_aad(ctx: &Context) -> Vec<u8> {
    let mut aad = b"warden vault data key\0".to_vec();
    for part in [&ctx.release, &ctx.file, &ctx.manifest] {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

fn write_durable(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(data).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(Error::io(parent))?;
    }
    Ok(())
}

impl Vault {
    pub fn new(dir: &Path, provider: Box<dyn KeyProvider>) -> Vault {
        Vault {
            dir: dir.to_path_buf(),
            provider,
        }
    }

    pub fn blob_path(&self, ctx: &Context) -> PathBuf {
        self.dir
            .join("blobs")
            .join(&ctx.release)
            .join(format!("{}.wv", file_id(&ctx.file)))
    }

    pub fn key_path(&self, ctx: &Context) -> PathBuf {
        self.dir
            .join("keys")
            .join(&ctx.release)
            .join(format!("{}.json", file_id(&ctx.file)))
    }

    /// Seals `source` under a fresh data key. The wrapped key and the blob are each written
    /// to a temporary name, synced, then renamed: a crash leaves either nothing usable or
    /// both. Refuses to replace a sealed file (releases are immutable).
    pub fn seal_file(&self, ctx: &Context, source: &Path) -> Result<Sealed> {
        let input = File::open(source).map_err(Error::io(source))?;
        let size = input.metadata().map_err(Error::io(source))?.len();
        self.seal_from(ctx, input, size)
    }

    /// Seals exactly `size` bytes read from `input` (see [`Vault::seal_file`]). Callers that
    /// must know what was sealed hash `input` as it is read: the bytes hashed are the bytes
    /// sealed, whatever happens to the source meanwhile.
    pub fn seal_from(
        &self,
        ctx: &Context,
        input: impl std::io::Read + Send,
        size: u64,
    ) -> Result<Sealed> {
        check_release(&ctx.release)?;
        let blob = self.blob_path(ctx);
        let key_path = self.key_path(ctx);
        if blob.exists() || key_path.exists() {
            return Err(Error::Format(format!(
                "{} {} is already sealed; releases are immutable",
                ctx.release, ctx.file
            )));
        }
        for dir in [blob.parent(), key_path.parent()].into_iter().flatten() {
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let key = DataKey::generate();
        let wrapped = self.provider.wrap(&key, &key_aad(ctx))?;
        let tmp = blob.with_extension("tmp");
        let result = (|| {
            let mut writer = DirectWriter::create(&tmp).map_err(Error::io(&tmp))?;
            format::seal(input, size, &mut writer, &key, ctx)?;
            let out = writer.finish().map_err(Error::io(&tmp))?;
            out.sync_all().map_err(Error::io(&tmp))?;
            let json =
                serde_json::to_vec_pretty(&wrapped).map_err(|e| Error::Format(e.to_string()))?;
            write_durable(&key_path, &json)?;
            fs::rename(&tmp, &blob).map_err(Error::io(&blob))?;
            sync_parent(&blob)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&key_path);
        }
        result?;
        let sealed_size = fs::metadata(&blob).map_err(Error::io(&blob))?.len();
        Ok(Sealed {
            plaintext_size: size,
            sealed_size,
            blob,
        })
    }

    fn data_key(&self, ctx: &Context) -> Result<DataKey> {
        let path = self.key_path(ctx);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoKey(format!("{} {}", ctx.release, ctx.file)))
            }
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let wrapped: WrappedKey = serde_json::from_slice(&text)
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
        self.provider.unwrap_key(&wrapped, &key_aad(ctx))
    }

    /// Opens a sealed file for random access, checking its header and exact length.
    pub fn open(&self, ctx: &Context) -> Result<(Opened, File)> {
        let key = self.data_key(ctx)?;
        let blob = self.blob_path(ctx);
        let file = File::open(&blob).map_err(Error::io(&blob))?;
        let opened = Opened::new(BufReader::new(&file), &key, ctx)?;
        let len = file.metadata().map_err(Error::io(&blob))?.len();
        if len != opened.sealed_len() {
            return Err(Error::Format(format!(
                "{} has {len} bytes, not the {} its header implies (truncated or extended)",
                blob.display(),
                opened.sealed_len()
            )));
        }
        Ok((opened, file))
    }

    /// Decrypts a sealed file into `out`, authenticating every segment, on every core. On
    /// error, discard what was written.
    pub fn decrypt_to(&self, ctx: &Context, out: impl Write) -> Result<u64> {
        let key = self.data_key(ctx)?;
        let blob = self.blob_path(ctx);
        let file = File::open(&blob).map_err(Error::io(&blob))?;
        let opened = Opened::new(BufReader::new(&file), &key, ctx)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        opened.decrypt_file_to(&file, out, threads)
    }

    /// Removes everything stored for `release` (blobs and wrapped keys): the clean-up of
    /// an admission that failed before the release was recorded. Never used on a recorded
    /// release, whose blobs are kept and whose keys only [`Vault::shred`] destroys.
    pub fn discard(&self, release: &str) -> Result<()> {
        check_release(release)?;
        for dir in [
            self.dir.join("keys").join(release),
            self.dir.join("blobs").join(release),
        ] {
            match fs::remove_dir_all(&dir) {
                Ok(()) => sync_parent(&dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&dir)(e)),
            }
        }
        Ok(())
    }

    /// Crypto-shredding: destroys every wrapped data key of `release`, here and in the
    /// backup key directories given (each laid out like `<vault>/keys`). The sealed blobs
    /// stay where they are and can no longer be opened by anyone, KEK or not.
    pub fn shred(&self, release: &str, backup_key_dirs: &[PathBuf]) -> Result<Shredded> {
        check_release(release)?;
        let mut report = Shredded::default();
        let dirs = std::iter::once(self.dir.join("keys")).chain(backup_key_dirs.iter().cloned());
        for keys in dirs {
            let dir = keys.join(release);
            if !dir.exists() {
                continue;
            }
            for item in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let path = item.map_err(Error::io(&dir))?.path();
                destroy(&path)?;
                report.keys_destroyed += 1;
            }
            fs::remove_dir(&dir).map_err(Error::io(&dir))?;
            sync_parent(&dir)?;
        }
        let blobs = self.dir.join("blobs").join(release);
        if blobs.exists() {
            report.blobs_left = fs::read_dir(&blobs).map_err(Error::io(&blobs))?.count() as u64;
        }
        Ok(report)
    }
}

/// Overwrites a key file with zeros, syncs, and removes it. (On copy-on-write or
/// wear-levelled storage the old blocks may survive; the wrapped key is useless without
/// the KEK, which is why the KEK belongs in an HSM.)
fn destroy(path: &Path) -> Result<()> {
    let len = fs::metadata(path).map_err(Error::io(path))?.len();
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    f.write_all(&vec![0u8; len as usize])
        .map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))?;
    drop(f);
    fs::remove_file(path).map_err(Error::io(path))?;
    sync_parent(path)
}
