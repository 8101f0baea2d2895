//! Opening a release: every segment authenticated by the AEAD, and the plaintext hashed and
//! compared with the digests recorded at admission and with the manifest digest bound into
//! every sealed header. Any mismatch refuses the load, names the file, and records an
//! integrity alert in the ledger.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ledger::record::Record;
use ledger::Ledger;
use registry::{FileRow, Release};
use sign::manifest::{self, Item};
use zeroize::Zeroizing;

use super::admit::serialization_from;
use super::digests::HashingWriter;
use super::{denied, Node};

/// Where the plaintext goes.
pub enum Sink<'a> {
    /// Nowhere: a check (deploy, `warden check`).
    Discard,
    /// Files under this new directory (export).
    Dir(&'a Path),
    /// The plaintext of one file, into memory (the runtime); every file is still checked.
    /// The buffer is reserved at the recorded size first, so it never moves (a move would
    /// leave a copy of the plaintext behind that is not zeroized).
    Memory {
        file: &'a str,
        out: &'a RefCell<Zeroizing<Vec<u8>>>,
    },
}

/// Appends to a reserved buffer; refuses to grow it past its capacity.
struct MemoryWriter<'a>(&'a RefCell<Zeroizing<Vec<u8>>>);

impl Write for MemoryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = self.0.borrow_mut();
        if out.len() + buf.len() > out.capacity() {
            return Err(std::io::Error::other(
                "the file is larger than its recorded size",
            ));
        }
        out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A checked release.
#[derive(Debug, serde::Serialize)]
pub struct Checked {
    pub files: usize,
    pub bytes: u64,
}

/// Checks (and optionally writes out) every file of `release`. On an integrity failure,
/// appends an `alert.integrity` record and fails with the file named.
pub fn open_release(
    vault: &vault::Vault,
    ledger: &Ledger,
    actor: &str,
    release: &Release,
    files: &[FileRow],
    sink: Sink,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Checked> {
    match check(vault, release, files, &sink, progress) {
        Ok(c) => Ok(c),
        Err(Failure::Integrity { file, problem }) => {
            let rec = Record::new("alert.integrity", actor)
                .subject(&release.id.to_string())
                .digest("manifest", &release.manifest)
                .attr("file", &super::admit::truncate(&file, 512))
                .attr("problem", &super::admit::truncate(&problem, 900));
            let logged = super::record(ledger, &rec);
            let msg = format!(
                "integrity check failed for {} file {file}: {problem}; the release was not loaded",
                release.id
            );
            match logged {
                Ok(i) => Err(denied(format!("{msg} (ledger entry {i})"))),
                Err(e) => Err(denied(format!(
                    "{msg}; recording it in the ledger also failed: {e:#}"
                ))),
            }
        }
        Err(Failure::Other(e)) => Err(e),
    }
}

/// Reads the release's files from the registry, then opens it as [`open_release`] does.
pub fn open_stored(
    node: &mut Node,
    ledger: &Ledger,
    actor: &str,
    release: &Release,
    sink: Sink,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Checked> {
    let files = node
        .registry
        .read(|tx| tx.files(&release.id).map_err(anyhow::Error::from))?;
    let vault = node.vault()?;
    open_release(&vault, ledger, actor, release, &files, sink, progress)
}

enum Failure {
    Integrity { file: String, problem: String },
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn integrity(file: &str, problem: impl std::fmt::Display) -> Failure {
    Failure::Integrity {
        file: file.to_string(),
        problem: problem.to_string(),
    }
}

/// A writer that counts and reports progress.
struct Counting<'a, W> {
    inner: W,
    progress: &'a dyn Fn(u64),
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn check(
    vault: &vault::Vault,
    release: &Release,
    files: &[FileRow],
    sink: &Sink,
    progress: &dyn Fn(u64),
) -> Result<Checked, Failure> {
    let ser = serialization_from(&release.serialization)?;
    let staging: Option<PathBuf> = match sink {
        Sink::Discard | Sink::Memory { .. } => None,
        Sink::Dir(dest) => {
            if dest.exists() {
                return Err(Failure::Other(anyhow::anyhow!(
                    "{} already exists; name a new directory",
                    dest.display()
                )));
            }
            let tmp = dest.with_file_name(format!(
                ".{}.partial-{}",
                dest.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            Some(tmp)
        }
    };
    let result = (|| -> Result<Checked, Failure> {
        let mut items: Vec<Item> = Vec::new();
        let mut bytes = 0u64;
        for f in files {
            let ctx = vault::Context {
                release: release.id.to_string(),
                file: f.path.clone(),
                manifest: release.manifest.clone(),
            };
            let out: Box<dyn Write> = match (&staging, sink) {
                (None, Sink::Memory { file, out }) if *file == f.path => {
                    let mut buf = out.borrow_mut();
                    buf.clear();
                    let size = usize::try_from(f.size).unwrap_or(usize::MAX);
                    buf.try_reserve_exact(size).map_err(|_| {
                        Failure::Other(anyhow::anyhow!(
                            "{} ({} bytes) does not fit in memory",
                            f.path,
                            f.size
                        ))
                    })?;
                    Box::new(MemoryWriter(out))
                }
                (None, _) => Box::new(std::io::sink()),
                (Some(dir), _) => {
                    let path = safe_join(dir, &f.path)?;
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    let file = File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    Box::new(BufWriter::with_capacity(1 << 20, file))
                }
            };
            let mut w = HashingWriter::new(
                Counting {
                    inner: out,
                    progress,
                    n: 0,
                },
                &ser,
            );
            match vault.decrypt_to(&ctx, &mut w) {
                Ok(_) => {}
                Err(
                    e @ (vault::Error::Tampered { .. }
                    | vault::Error::Format(_)
                    | vault::Error::WrongContext { .. }
                    | vault::Error::Unwrap),
                ) => return Err(integrity(&f.path, e)),
                Err(e) => {
                    return Err(Failure::Other(
                        anyhow::Error::new(e).context(format!("unsealing {}", f.path)),
                    ))
                }
            }
            w.flush().with_context(|| format!("writing {}", f.path))?;
            let (counting, digester) = w.into_parts();
            bytes += counting.n;
            let d = digester.finish(&f.path);
            if counting.n != f.size {
                return Err(integrity(
                    &f.path,
                    format!("{} bytes, {} recorded", counting.n, f.size),
                ));
            }
            if hex::encode(d.sha256) != f.sha256 {
                return Err(integrity(
                    &f.path,
                    "its SHA-256 differs from the one recorded at admission",
                ));
            }
            items.extend(d.items);
        }
        items.sort_by(Item::order);
        let root = format!(
            "sha256:{}",
            hex::encode(manifest::root_digest(items.iter().map(|i| &i.digest)))
        );
        if root != release.manifest {
            return Err(integrity(
                "(manifest)",
                format!(
                    "the files hash to {root}, not to the admitted manifest {}",
                    release.manifest
                ),
            ));
        }
        Ok(Checked {
            files: files.len(),
            bytes,
        })
    })();
    match (&staging, sink, &result) {
        (Some(tmp), Sink::Dir(dest), Ok(_)) => {
            std::fs::rename(tmp, dest)
                .with_context(|| format!("moving the export into {}", dest.display()))?;
        }
        (Some(tmp), _, _) => {
            let _ = std::fs::remove_dir_all(tmp);
        }
        _ => {}
    }
    result
}

/// Joins a release path under `dir`, refusing anything that could leave it.
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf, Failure> {
    if rel == "." {
        return Ok(dir.join("model"));
    }
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        return Err(integrity(
            rel,
            "the recorded path is not a plain relative path",
        ));
    }
    Ok(dir.join(rel))
}
