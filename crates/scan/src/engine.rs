//! Walking paths and scanning files in parallel.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use formats::Limits;

use crate::analyze::{self, generic};
use crate::context::{Cx, Target};
use crate::finding::Finding;
use crate::location::Location;
use crate::policy::Policy;
use crate::severity::Severity;

/// Files below this size are read into memory; larger ones are memory-mapped so that
/// header-only formats (safetensors, GGUF, a zip's directory) cost their header, not their
/// size, and so that no fresh heap pages are faulted in and copied into for them.
const MMAP_THRESHOLD: u64 = 64 << 10;

#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub limits: Limits,
    pub policy: Policy,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

/// What a scan of one file found.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub size: u64,
    /// Formats seen in the file and everything nested in it, e.g. `["pickle", "zip"]`.
    pub formats: Vec<&'static str>,
    pub findings: Vec<Finding>,
    pub elapsed: Duration,
    /// Files on disk this file references as raw data (see [`Cx::claim_data_file`]).
    pub claims: Vec<PathBuf>,
}

impl FileReport {
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "file",
            "path": self.path.display().to_string(),
            "size": self.size,
            "formats": self.formats,
            "findings": self.findings.len(),
            "max_severity": self.max_severity(),
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}

/// One thing found while walking the command line's paths.
#[derive(Debug, Clone)]
pub enum Input {
    /// A regular file.
    File(PathBuf),
    /// A symbolic link met inside a directory. It is reported, and its target is scanned
    /// under the link's name when the target is a regular file.
    Symlink { path: PathBuf, target: PathBuf },
    /// A FIFO, socket or device: reported, never opened (opening a FIFO can block forever).
    Special { path: PathBuf, kind: &'static str },
    /// A directory entry that could not be read.
    Unreadable { path: PathBuf, error: String },
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Self::File(p) => p,
            Self::Symlink { path, .. }
            | Self::Special { path, .. }
            | Self::Unreadable { path, .. } => path,
        }
    }
}

/// A path named on the command line that does not exist or cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct PathError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Expands files and directories (recursively, without following links inside them) into
/// the list of inputs to scan, in a stable order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<Input>, PathError> {
    let mut out = Vec::new();
    for root in paths {
        // A path the user names is followed if it is a link; links found inside are not.
        let meta = fs::metadata(root).map_err(|source| PathError {
            path: root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            out.push(classify(root.clone(), meta.file_type()));
            continue;
        }
        walk(root, &mut out);
    }
    Ok(out)
}

/// One directory's entries, sorted by name, as [`walk`] visits them.
type Listing = std::vec::IntoIter<Result<(PathBuf, fs::FileType), Input>>;

/// Appends everything under the directory `root` to `out`, depth first, each directory's
/// entries in file-name order, without following links; a directory's contents come right
/// after it. Entries are classified by the listing's file type (no stat per file). The
/// order and the error texts are those of `walkdir` (`sort_by_file_name`), which this
/// replaces: its per-entry path parsing cost more than the listing itself.
fn walk(root: &Path, out: &mut Vec<Input>) {
    let mut stack = vec![list_dir(root, root)];
    while let Some(listing) = stack.last_mut() {
        let Some(next) = listing.next() else {
            stack.pop();
            continue;
        };
        match next {
            Ok((path, ft)) if ft.is_dir() => stack.push(list_dir(&path, root)),
            Ok((path, ft)) => out.push(classify(path, ft)),
            Err(unreadable) => out.push(unreadable),
        }
    }
}

/// The entries of `dir`, sorted by name; what could not be read comes first, as errors.
fn list_dir(dir: &Path, root: &Path) -> Listing {
    let io_error = |path: &Path, err: std::io::Error| Input::Unreadable {
        path: path.to_path_buf(),
        error: format!("IO error for operation on {}: {err}", path.display()),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return vec![Err(io_error(dir, err))].into_iter(),
    };
    let mut errors = Vec::new();
    let mut named = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => match e.file_type() {
                Ok(ft) => named.push((e.file_name(), ft)),
                Err(err) => errors.push(Err(io_error(&e.path(), err))),
            },
            // An error reading the listing itself names no entry.
            Err(err) => errors.push(Err(Input::Unreadable {
                path: root.to_path_buf(),
                error: err.to_string(),
            })),
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    errors.extend(named.into_iter().map(|(name, ft)| Ok((dir.join(name), ft))));
    errors.into_iter()
}

fn classify(path: PathBuf, ft: fs::FileType) -> Input {
    if ft.is_file() {
        return Input::File(path);
    }
    if ft.is_symlink() {
        let target = fs::read_link(&path).unwrap_or_default();
        return Input::Symlink { path, target };
    }
    Input::Special {
        path,
        kind: special_kind(&ft),
    }
}

/// What kind of non-regular file this is, in words.
#[cfg(unix)]
pub(crate) fn special_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
pub(crate) fn special_kind(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Scans every input in parallel, calling `on_done` as each file finishes (for progress),
/// and returns the reports in input order.
///
/// The calling thread scans too, beside `threads - 1` helpers; each takes the next
/// unscanned input in turn, so one large file cannot leave the others idle behind a fixed
/// split.
pub fn scan_paths<F>(inputs: &[Input], opts: &ScanOptions, on_done: F) -> Vec<FileReport>
where
    F: Fn(&FileReport) + Sync,
{
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        n => n,
    }
    .clamp(1, inputs.len().max(1));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(input) = inputs.get(i) else {
                return done;
            };
            let report = scan_input(input, opts);
            on_done(&report);
            done.push((i, report));
        }
    };
    let mut done = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for helper in helpers {
            match helper.join() {
                Ok(mut theirs) => done.append(&mut theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut reports: Vec<FileReport> = done.into_iter().map(|(_, r)| r).collect();
    settle_claims(&mut reports);
    reports
}

/// Files that another file of the scan declares as its raw data, and in which nothing but
/// "unknown format" was found, get a note naming the referencing file instead.
fn settle_claims(reports: &mut [FileReport]) {
    let mut claimed: HashMap<PathBuf, PathBuf> = HashMap::new();
    for r in reports.iter() {
        for c in &r.claims {
            if let Ok(real) = fs::canonicalize(c) {
                claimed.entry(real).or_insert_with(|| r.path.clone());
            }
        }
    }
    if claimed.is_empty() {
        return;
    }
    for r in reports.iter_mut() {
        let only_unknown = !r.findings.is_empty()
            && r.findings
                .iter()
                .all(|f| f.rule.id == generic::UNKNOWN_FORMAT.id);
        if !only_unknown {
            continue;
        }
        let Some(by) = fs::canonicalize(&r.path).ok().and_then(|p| claimed.get(&p)) else {
            continue;
        };
        r.findings = vec![Finding {
            rule: &generic::REFERENCED_DATA,
            severity: generic::REFERENCED_DATA.severity,
            location: Location::file(&r.path),
            evidence: format!("{} bytes referenced by {}", r.size, by.display()),
        }];
    }
}

fn scan_input(input: &Input, opts: &ScanOptions) -> FileReport {
    match input {
        Input::File(path) => scan_file(path, opts),
        Input::Symlink { path, target } => {
            let mut report = match fs::metadata(path) {
                Ok(meta) if meta.is_file() => scan_file(path, opts),
                _ => empty_report(path),
            };
            report.findings.insert(
                0,
                Finding {
                    rule: &generic::SPECIAL_FILE,
                    severity: generic::SPECIAL_FILE.severity,
                    location: Location::file(path),
                    evidence: format!("symbolic link to {}", target.display()),
                },
            );
            report
        }
        Input::Special { path, kind } => {
            let mut report = empty_report(path);
            report.findings.push(Finding {
                rule: &generic::SPECIAL_FILE,
                severity: generic::SPECIAL_FILE.severity,
                location: Location::file(path),
                evidence: format!("{kind}; not opened"),
            });
            report
        }
        Input::Unreadable { path, error } => unreadable(path, error, Duration::ZERO),
    }
}

fn empty_report(path: &Path) -> FileReport {
    FileReport {
        path: path.to_path_buf(),
        size: 0,
        formats: Vec::new(),
        findings: Vec::new(),
        elapsed: Duration::ZERO,
        claims: Vec::new(),
    }
}

fn unreadable(path: &Path, error: &str, elapsed: Duration) -> FileReport {
    let mut report = empty_report(path);
    report.elapsed = elapsed;
    report.findings.push(Finding {
        rule: &generic::UNREADABLE,
        severity: generic::UNREADABLE.severity,
        location: Location::file(path),
        evidence: error.to_string(),
    });
    report
}

/// Scans one regular file.
pub fn scan_file(path: &Path, opts: &ScanOptions) -> FileReport {
    let start = Instant::now();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return unreadable(path, &e.to_string(), start.elapsed()),
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return unreadable(path, "not a regular file", start.elapsed()),
        Err(e) => return unreadable(path, &e.to_string(), start.elapsed()),
    };
    let data = match FileBytes::load(file, size) {
        Ok(d) => d,
        Err(e) => return unreadable(path, &e.to_string(), start.elapsed()),
    };
    let base_dir = path.parent();
    let mut report = scan_with(data.as_slice(), Location::file(path), base_dir, opts);
    report.path = path.to_path_buf();
    report.elapsed = start.elapsed();
    report
}

/// Scans bytes that are not a file on disk (a test vector, a buffer received over the
/// network). `name` is used in locations only.
pub fn scan_bytes(data: &[u8], name: &str, opts: &ScanOptions) -> FileReport {
    let start = Instant::now();
    let mut report = scan_with(data, Location::file(name), None, opts);
    report.elapsed = start.elapsed();
    report
}

fn scan_with(
    data: &[u8],
    loc: Location,
    base_dir: Option<&Path>,
    opts: &ScanOptions,
) -> FileReport {
    let mut cx = Cx::new(&opts.limits, &opts.policy, base_dir);
    analyze::dispatch(
        &mut cx,
        Target {
            data,
            loc: &loc,
            depth: 0,
        },
    );
    let (mut findings, formats, claims) = cx.into_parts();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.members.cmp(&b.location.members))
    });
    FileReport {
        path: loc.path.to_path_buf(),
        size: data.len() as u64,
        formats: formats.into_iter().collect(),
        findings,
        elapsed: Duration::ZERO,
        claims,
    }
}

/// A file's bytes, read into memory or mapped.
enum FileBytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl FileBytes {
    fn load(mut file: File, size: u64) -> std::io::Result<Self> {
        if size >= MMAP_THRESHOLD {
            if let Ok(map) = crate::mmap::map(&file) {
                return Ok(Self::Mapped(map));
            }
        }
        // Small files, and files that cannot be mapped (some virtual file systems). The
        // read is bounded by the size seen at open time plus one byte, so a file that grows
        // while we read it cannot make us read forever.
        let mut buf = Vec::with_capacity(usize::try_from(size.min(MMAP_THRESHOLD)).unwrap_or(0));
        (&mut file)
            .take(size.saturating_add(1))
            .read_to_end(&mut buf)?;
        Ok(Self::Owned(buf))
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Mapped(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `walkdir` (sorted by file name, links not followed) yields, as `collect` used to
    /// turn it into inputs.
    fn walkdir_inputs(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) => {
                    let ft = e.file_type();
                    out.push(describe(&classify(e.into_path(), ft)));
                }
                Err(err) => out.push(format!(
                    "unreadable {} {err}",
                    err.path().unwrap_or(root).display()
                )),
            }
        }
        out
    }

    fn describe(input: &Input) -> String {
        match input {
            Input::File(p) => format!("file {}", p.display()),
            Input::Symlink { path, target } => {
                format!("link {} -> {}", path.display(), target.display())
            }
            Input::Special { path, kind } => format!("{kind} {}", path.display()),
            Input::Unreadable { path, error } => format!("unreadable {} {error}", path.display()),
        }
    }

    #[test]
    fn the_walk_matches_walkdir_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["b", "a/z", "a/B", "c.d/e", "_", "A"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "b/1",
            "a/z/x.pkl",
            "a/B/y",
            "a/a",
            "a/Z",
            "c.d/e/f",
            "c",
            "C",
            "_/-",
            "é",
        ] {
            fs::write(root.join(f), b"x").unwrap();
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("a", root.join("link-to-dir")).unwrap();
            std::os::unix::fs::symlink("missing", root.join("a/dangling")).unwrap();
        }
        let ours: Vec<String> = collect(&[root.to_path_buf()])
            .unwrap()
            .iter()
            .map(describe)
            .collect();
        assert_eq!(ours, walkdir_inputs(root));
        assert_eq!(ours.len(), 12);
    }
}
