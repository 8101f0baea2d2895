//! The manifest of a model: every file (or file shard) paired with its digest.
//!
//! Serialisation follows `model_signing` 1.1.1 (OpenSSF Model Signing v1.0 predicate):
//!
//! - The model is a directory walked recursively, or a single file (named `.`).
//! - `ignore_paths` are relative to the model root; a path is ignored when it equals an
//!   ignored path or lies under it (component-wise). By default `.git`, `.gitattributes`,
//!   `.github`, `.gitignore` and the signature file are ignored.
//! - Symbolic links are refused unless allowed; when allowed, a link to a file is hashed as
//!   that file's content under the link's name, and a link to a directory is not descended
//!   (Python's `Path.glob("**/*")` does not follow it either).
//! - Method `files`: one resource per regular file, named by its POSIX path, algorithm
//!   `sha256` or `blake3`. Method `shards`: files cut into `shard_size` pieces, resources
//!   named `path:start:end`, algorithm `sha256-sharded-<shard_size>`; empty files have no
//!   shard.
//! - Resources are sorted by path *component-wise* (Python's `PurePosixPath` order, so `a/c`
//!   sorts before `a-b`), then by start offset. The spec says "alphabetical"; we follow the
//!   tool. The root digest is SHA-256 over the concatenated raw digests in that order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use rayon::prelude::*;

use crate::error::Error;
use crate::hash::{self, Digest, HashAlgorithm};

/// What `model_signing` ignores unless told otherwise (`--ignore-git-paths`, default on).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// How a model is cut into resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file.
    Files,
    /// Files cut into shards of this many bytes.
    Shards(u64),
}

/// The `serialization` section of the predicate: everything needed to hash the model again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    pub method: Method,
    pub hash: HashAlgorithm,
    pub allow_symlinks: bool,
    /// Paths relative to the model root, POSIX separators, normalised.
    pub ignore_paths: Vec<String>,
}

impl Serialization {
    /// The `algorithm` every resource carries.
    pub fn resource_algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash.name().to_string(),
            Method::Shards(size) => format!("{}-sharded-{size}", self.hash.name()),
        }
    }
}

/// One file, or one shard `[start, end)` of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// POSIX path relative to the model root (`.` for a single-file model).
    pub path: String,
    pub range: Option<(u64, u64)>,
    pub digest: Digest,
}

impl Item {
    /// The resource name: `path` or `path:start:end`.
    pub fn name(&self) -> String {
        match self.range {
            None => self.path.clone(),
            Some((s, e)) => format!("{}:{s}:{e}", self.path),
        }
    }

    /// `model_signing`'s order: path component-wise, then start, then end.
    pub fn order(&self, other: &Item) -> Ordering {
        compare_paths(&self.path, &other.path).then(self.range.cmp(&other.range))
    }
}

/// Compares POSIX paths the way Python's `PurePosixPath` does: by their lists of
/// components (`.` has none).
pub fn compare_paths(a: &str, b: &str) -> Ordering {
    fn parts(p: &str) -> impl Iterator<Item = &str> {
        p.split('/').filter(|c| !c.is_empty() && *c != ".")
    }
    parts(a).cmp(parts(b))
}

/// A hashed model.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The last component of the model path; informative only.
    pub model_name: String,
    pub serialization: Serialization,
    /// Sorted by [`Item::order`].
    pub items: Vec<Item>,
}

impl Manifest {
    /// SHA-256 over the raw digests in manifest order: the in-toto subject digest.
    pub fn root_digest(&self) -> Digest {
        root_digest(self.items.iter().map(|i| &i.digest))
    }

    /// The files covered.
    pub fn files(&self) -> BTreeSet<&str> {
        self.items.iter().map(|i| i.path.as_str()).collect()
    }
}

/// SHA-256 over digests in the given order.
pub fn root_digest<'a>(digests: impl Iterator<Item = &'a Digest>) -> Digest {
    let mut h = hash::Hasher::new(HashAlgorithm::Sha256);
    for d in digests {
        h.update(d);
    }
    h.finish()
}

/// Normalises an ignore path: POSIX separators, no `.` components, no trailing slash.
/// Returns `None` for paths that cannot be under the root (absolute or with `..`).
pub fn normalize_ignore(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    if path.starts_with('/') || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

fn is_ignored(rel: &str, ignore: &[Vec<&str>]) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    ignore.iter().any(|ig| parts.starts_with(ig))
}

/// A file to hash, found by the walk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub abs: PathBuf,
    pub rel: String,
    pub size: u64,
}

/// Lists the files of a model with the ignore rules and symlink policy applied.
pub fn walk(model: &Path, ser: &Serialization) -> Result<Vec<Entry>, Error> {
    let io = |path: &Path, source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(model).map_err(|e| io(model, e))?;
    if meta.file_type().is_symlink() && !ser.allow_symlinks {
        return Err(Error::Symlink {
            path: model.to_path_buf(),
        });
    }
    let meta = std::fs::metadata(model).map_err(|e| io(model, e))?;
    if meta.is_file() {
        return Ok(vec![Entry {
            abs: model.to_path_buf(),
            rel: ".".to_string(),
            size: meta.len(),
        }]);
    }
    if !meta.is_dir() {
        return Err(Error::SpecialFile {
            path: model.to_path_buf(),
        });
    }
    let ignore: Vec<Vec<&str>> = ser
        .ignore_paths
        .iter()
        .map(|p| p.split('/').collect())
        .collect();
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(model)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| match rel_path(model, e.path()) {
            Ok(rel) => !is_ignored(&rel, &ignore),
            Err(_) => true, // reported below
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(model).to_path_buf();
            match e.into_io_error() {
                Some(source) => Error::Io { path, source },
                None => Error::SpecialFile { path },
            }
        })?;
        let path = entry.path();
        let rel = rel_path(model, path)?;
        let ft = entry.file_type();
        let meta = if ft.is_symlink() {
            if !ser.allow_symlinks {
                return Err(Error::Symlink {
                    path: path.to_path_buf(),
                });
            }
            match std::fs::metadata(path) {
                Ok(m) => m,
                Err(_) => {
                    return Err(Error::SpecialFile {
                        path: path.to_path_buf(),
                    })
                }
            }
        } else {
            entry.metadata().map_err(|e| {
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("metadata"));
                io(path, source)
            })?
        };
        if meta.is_dir() {
            continue; // a real directory is walked; a linked one is not descended
        }
        if !meta.is_file() {
            return Err(Error::SpecialFile {
                path: path.to_path_buf(),
            });
        }
        out.push(Entry {
            abs: path.to_path_buf(),
            rel,
            size: meta.len(),
        });
    }
    Ok(out)
}

fn rel_path(root: &Path, path: &Path) -> Result<String, Error> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut parts = Vec::new();
    for c in rel.components() {
        match c.as_os_str().to_str() {
            Some(s) => parts.push(s),
            None => {
                return Err(Error::NonUtf8Path {
                    path: path.to_path_buf(),
                })
            }
        }
    }
    Ok(parts.join("/"))
}

/// Hashing options that do not change the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

/// Walks and hashes a model. `progress` receives byte counts as they are hashed (from
/// several threads); `total` is called once with the number of bytes to hash.
pub fn build(
    model: &Path,
    ser: &Serialization,
    opts: HashOptions,
    total: &dyn Fn(u64),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest, Error> {
    if let Method::Shards(0) = ser.method {
        return Err(Error::Options(
            "the shard size must be at least 1 byte".into(),
        ));
    }
    let entries = walk(model, ser)?;
    total(entries.iter().map(|e| e.size).sum());

    // Work items: whole files, or shards. Largest first so both cores finish together.
    // (entry index, shard range, bytes)
    type Task = (usize, Option<(u64, u64)>, u64);
    let mut tasks: Vec<Task> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match ser.method {
            Method::Files => tasks.push((i, None, e.size)),
            Method::Shards(size) => {
                let mut start = 0u64;
                while start < e.size {
                    let end = start.saturating_add(size).min(e.size);
                    tasks.push((i, Some((start, end)), end.saturating_sub(start)));
                    start = end;
                }
            }
        }
    }
    tasks.sort_by_key(|t| std::cmp::Reverse(t.2));

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Options(format!("cannot start worker threads: {e}")))?;
    // Fewer work items than threads: the idle cores read ahead for the hashing ones.
    let spare_cores = pool.current_num_threads() > tasks.len();
    let done = AtomicU64::new(0);
    let report = |n: u64| {
        done.fetch_add(n, AtomicOrdering::Relaxed);
        progress(n);
    };
    let hashed: Result<Vec<Item>, Error> = pool.install(|| {
        tasks
            .par_iter()
            .map_init(
                || vec![0u8; hash::READ_BUFFER],
                |buf, &(i, range, len)| {
                    let e = entries
                        .get(i)
                        .ok_or_else(|| Error::Options("internal".into()))?;
                    let start = range.map_or(0, |r| r.0);
                    let digest = if spare_cores && len >= hash::READ_AHEAD_MIN {
                        hash::hash_range_ahead(&e.abs, start, len, ser.hash, &report)?
                    } else {
                        hash::hash_range(&e.abs, start, len, ser.hash, buf, &report)?
                    };
                    // A file that grew while hashed would be signed short: check its size.
                    if range.is_none() || range.is_some_and(|r| r.1 == e.size) {
                        let now = std::fs::metadata(&e.abs)
                            .map_err(|source| Error::Io {
                                path: e.abs.clone(),
                                source,
                            })?
                            .len();
                        if now != e.size {
                            return Err(Error::Changed {
                                path: e.abs.clone(),
                            });
                        }
                    }
                    Ok(Item {
                        path: e.rel.clone(),
                        range,
                        digest,
                    })
                },
            )
            .collect()
    });
    let mut items = hashed?;
    items.sort_by(Item::order);
    Ok(Manifest {
        model_name: model_name(model),
        serialization: ser.clone(),
        items,
    })
}

/// The last component of the model path (resolved when it is `.` or `..`).
pub fn model_name(model: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name(model) {
        Some(n) if n != ".." => n,
        _ => std::fs::canonicalize(model)
            .ok()
            .and_then(|p| name(&p))
            .unwrap_or_default(),
    }
}

/// How a model on disk differs from a signed manifest, file by file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// In both, with different content (or different size, for shards).
    pub modified: Vec<String>,
    /// On disk, not in the signature.
    pub added: Vec<String>,
    /// In the signature, not on disk.
    pub removed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

type Shards<'a> = BTreeMap<Option<(u64, u64)>, &'a Digest>;

fn group(items: &[Item]) -> BTreeMap<&str, Shards<'_>> {
    let mut m: BTreeMap<&str, Shards<'_>> = BTreeMap::new();
    for i in items {
        m.entry(i.path.as_str())
            .or_default()
            .insert(i.range, &i.digest);
    }
    m
}

/// Compares the signed resources with the ones computed from disk, per file.
pub fn diff(signed: &[Item], actual: &[Item]) -> Diff {
    let s = group(signed);
    let a = group(actual);
    let mut d = Diff::default();
    for (path, shards) in &s {
        match a.get(path) {
            None => d.removed.push((*path).to_string()),
            Some(other) if other != shards => d.modified.push((*path).to_string()),
            Some(_) => {}
        }
    }
    for path in a.keys() {
        if !s.contains_key(path) {
            d.added.push((*path).to_string());
        }
    }
    let sort = |v: &mut Vec<String>| v.sort_by(|x, y| compare_paths(x, y));
    sort(&mut d.modified);
    sort(&mut d.added);
    sort(&mut d.removed);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(method: Method) -> Serialization {
        Serialization {
            method,
            hash: HashAlgorithm::Sha256,
            allow_symlinks: false,
            ignore_paths: GIT_PATHS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("a")).unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::create_dir_all(p.join("sub/.git")).unwrap();
        std::fs::write(p.join("a/c"), "y\n").unwrap();
        std::fs::write(p.join("a-b"), "z\n").unwrap();
        std::fs::write(p.join("a.b"), "q\n").unwrap();
        std::fs::write(p.join("a.txt"), "hello world long\n").unwrap();
        std::fs::write(p.join(".git/HEAD"), "x").unwrap();
        std::fs::write(p.join("sub/.git/HEAD"), "x").unwrap();
        std::fs::write(p.join("empty"), "").unwrap();
        dir
    }

    fn build0(p: &Path, s: &Serialization) -> Result<Manifest, Error> {
        build(p, s, HashOptions::default(), &|_| {}, &|_| {})
    }

    #[test]
    fn component_order_and_git_paths() {
        let dir = model();
        let m = build0(dir.path(), &ser(Method::Files)).unwrap();
        let names: Vec<String> = m.items.iter().map(Item::name).collect();
        // `a/c` before `a-b` (component-wise, as model_signing); nested `.git` kept.
        assert_eq!(
            names,
            ["a/c", "a-b", "a.b", "a.txt", "empty", "sub/.git/HEAD"]
        );
        assert_eq!(
            hex::encode(m.items[0].digest),
            "3bb2abb69ebb27fbfe63c7639624c6ec5e331b841a5bc8c3ebc10b9285e90877"
        );
    }

    #[test]
    fn shards_cut_and_skip_empty_files() {
        let dir = model();
        let m = build0(dir.path(), &ser(Method::Shards(3))).unwrap();
        let names: Vec<String> = m.items.iter().map(Item::name).collect();
        assert!(names.contains(&"a.txt:15:17".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("empty")));
        // Numeric, not textual, order of offsets.
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("a.txt:9:12") < pos("a.txt:12:15"));
        assert_eq!(
            hex::encode(
                m.items
                    .iter()
                    .find(|i| i.name() == "a.txt:0:3")
                    .unwrap()
                    .digest
            ),
            "d6a81f224bbf2f7c22baddbd5d40730eb20cfb0b3d74e10cab61788214caceb1"
        );
    }

    #[test]
    fn ignore_paths_are_root_relative_prefixes() {
        let dir = model();
        let mut s = ser(Method::Files);
        s.ignore_paths.push("a".into());
        let m = build0(dir.path(), &s).unwrap();
        let names: Vec<String> = m.items.iter().map(Item::name).collect();
        assert_eq!(names, ["a-b", "a.b", "a.txt", "empty", "sub/.git/HEAD"]);
    }

    #[test]
    fn single_file_is_dot() {
        let dir = model();
        let m = build0(&dir.path().join("a.txt"), &ser(Method::Files)).unwrap();
        assert_eq!(m.items.len(), 1);
        assert_eq!(m.items[0].path, ".");
        assert_eq!(m.model_name, "a.txt");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_refused_unless_allowed() {
        let dir = model();
        std::os::unix::fs::symlink("a.txt", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("dirlink")).unwrap();
        let err = build0(dir.path(), &ser(Method::Files)).unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }), "{err}");
        let mut s = ser(Method::Files);
        s.allow_symlinks = true;
        let m = build0(dir.path(), &s).unwrap();
        let names: Vec<String> = m.items.iter().map(Item::name).collect();
        assert!(names.contains(&"link".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("dirlink")), "{names:?}");
    }

    #[test]
    fn diff_names_files() {
        let dir = model();
        let s = ser(Method::Shards(4));
        let before = build0(dir.path(), &s).unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello world long!!\n").unwrap();
        std::fs::write(dir.path().join("new"), "n").unwrap();
        std::fs::remove_file(dir.path().join("a.b")).unwrap();
        let after = build0(dir.path(), &s).unwrap();
        let d = diff(&before.items, &after.items);
        assert_eq!(d.modified, ["a.txt"]);
        assert_eq!(d.added, ["new"]);
        assert_eq!(d.removed, ["a.b"]);
    }

    #[test]
    fn normalizes_ignore_paths() {
        assert_eq!(normalize_ignore("./a/b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_ignore("../x"), None);
        assert_eq!(normalize_ignore("/etc"), None);
        assert_eq!(normalize_ignore("."), None);
    }
}
