//! Admission: scan, verify the signature against the trust policy, hash while sealing,
//! check what was sealed against the signed manifest, write the AI-BOM, record the release.
//!
//! Each file is read once for sealing, and the bytes sealed are the bytes hashed
//! ([`super::digests::HashingReader`]), so the release holds exactly what the signature
//! covers, whatever happens to the source meanwhile. The scanner reads the files itself
//! (it memory-maps them); that they did not change between the scan and the seal is
//! checked by their size, inode and change time.
//!
//! Failure leaves nothing: an error before the release is recorded removes whatever was
//! sealed. A model that fails a check (signature, signer, manifest, scan) is recorded as
//! `rejected`, with its reasons, so its version cannot be reused.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context};
use ledger::record::Record;
use registry::aibom;
use registry::{FileRow, Principal, Release, ReleaseId, State, Step};
use sign::manifest::{self, Entry, Item, Method, Serialization, GIT_PATHS};
use sign::{HashAlgorithm, Trust};

use super::digests::HashingReader;
use super::{denied, now, Node};
use crate::config::{pattern_matches, Signer};

/// Largest signature bundle read.
const MAX_BUNDLE: u64 = 16 << 20;
/// Largest model card or threat model read.
const MAX_DOCUMENT: u64 = 1 << 20;

/// What to admit.
pub struct AdmitRequest {
    pub model: PathBuf,
    pub id: ReleaseId,
    pub signature: Option<PathBuf>,
    pub model_card: Option<PathBuf>,
    pub threat_model: Option<PathBuf>,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

/// What admission decided.
#[derive(Debug, serde::Serialize)]
pub struct Admission {
    pub release: String,
    pub state: State,
    pub manifest: String,
    pub signer: Option<String>,
    pub files: usize,
    pub bytes: u64,
    pub findings: u64,
    pub max_severity: Option<String>,
    pub reasons: Vec<String>,
    pub ledger_index: u64,
}

/// Progress callbacks: the total bytes to seal, then bytes as they are sealed.
pub struct Progress<'a> {
    pub total: &'a dyn Fn(u64),
    pub advance: &'a (dyn Fn(u64) + Sync),
}

/// A file's identity before the scan, to see that it did not change before sealing.
#[derive(PartialEq, Eq)]
struct Stamp(u64, u64, i64, i64, i64, i64);

fn stamp(path: &Path) -> anyhow::Result<Stamp> {
    let m =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Stamp(
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// An exclusive lock on one release's admission, so that two processes admitting the same
/// `name@version` cannot clean up each other's sealed files.
struct AdmissionLock {
    _file: std::fs::File,
}

fn lock_admission(node: &Node, id: &ReleaseId) -> anyhow::Result<AdmissionLock> {
    let dir = node.data_dir.join("vault").join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{id}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        return Err(denied(format!(
            "{id} is being admitted by another Warden process"
        )));
    }
    Ok(AdmissionLock { _file: file })
}

fn read_limited(path: &Path, limit: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mut out = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    if out.len() as u64 > limit {
        bail!("{what} {} is larger than {limit} bytes", path.display());
    }
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(HashAlgorithm::Sha256.digest(bytes))
}

/// The signers the trust policy allows for this model.
fn signers_for<'a>(node: &'a Node, model: &str) -> Vec<&'a Signer> {
    node.config
        .trust
        .signers
        .iter()
        .filter(|s| s.models.iter().any(|p| pattern_matches(p, model)))
        .collect()
}

fn trust_of(node: &Node, signer: &Signer) -> anyhow::Result<Trust> {
    if let Some(key) = &signer.key {
        let path = node.path(key);
        let pem = crate::cmd::signing::read_small(&path, "trusted public key")?;
        let key = sign::PublicKey::from_pem(&pem).with_context(|| {
            format!(
                "trusted key of signer {:?} ({})",
                signer.name,
                path.display()
            )
        })?;
        return Ok(Trust::Key(key));
    }
    let Some(roots) = &signer.roots else {
        bail!("signer {:?} has neither `key` nor `roots`", signer.name);
    };
    let path = node.path(roots);
    let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let anchors = sign::cert::Anchors::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("trust anchors of signer {:?}: {e}", signer.name))?;
    Ok(Trust::Certificates {
        anchors,
        at: SystemTime::now(),
    })
}

/// The default serialization for unsigned models: whole files, SHA-256, no links.
fn unsigned_serialization() -> Serialization {
    Serialization {
        method: Method::Files,
        hash: HashAlgorithm::Sha256,
        allow_symlinks: false,
        ignore_paths: GIT_PATHS.iter().map(|s| s.to_string()).collect(),
    }
}

fn serialization_json(ser: &Serialization) -> serde_json::Value {
    let (method, shard) = match ser.method {
        Method::Files => ("files", None),
        Method::Shards(n) => ("shards", Some(n)),
    };
    serde_json::json!({
        "method": method,
        "shard_size": shard,
        "hash": ser.hash.name(),
        "ignore_paths": ser.ignore_paths,
    })
}

/// Reads a release's serialization back from the registry.
pub fn serialization_from(v: &serde_json::Value) -> anyhow::Result<Serialization> {
    let hash = v["hash"]
        .as_str()
        .and_then(HashAlgorithm::from_name)
        .context("registry: release serialization has no known hash")?;
    let method = match (v["method"].as_str(), v["shard_size"].as_u64()) {
        (Some("files"), _) => Method::Files,
        (Some("shards"), Some(n)) if n > 0 => Method::Shards(n),
        _ => bail!("registry: release serialization has no known method"),
    };
    let ignore_paths = v["ignore_paths"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Serialization {
        method,
        hash,
        allow_symlinks: false,
        ignore_paths,
    })
}

/// What the checks found before anything is sealed.
struct Checked {
    ser: Serialization,
    /// The signed manifest, when signed.
    expected: Option<Vec<Item>>,
    signer: Option<String>,
    signature_sha256: Option<String>,
    reasons: Vec<String>,
}

fn check_signature(node: &Node, req: &AdmitRequest) -> anyhow::Result<Checked> {
    let name = &req.id.name;
    let Some(sig_path) = &req.signature else {
        if node
            .config
            .trust
            .unsigned_models
            .iter()
            .any(|p| pattern_matches(p, name))
        {
            return Ok(Checked {
                ser: unsigned_serialization(),
                expected: None,
                signer: None,
                signature_sha256: None,
                reasons: vec![],
            });
        }
        return Err(denied(format!(
            "{name} must be signed: give --signature BUNDLE (the trust policy lists no unsigned_models pattern matching {name:?})"
        )));
    };
    let candidates = signers_for(node, name);
    if candidates.is_empty() {
        return Err(denied(format!(
            "no trusted signer may sign {name:?}: add a [[trust.signers]] entry whose `models` matches it"
        )));
    }
    let bundle = read_limited(sig_path, MAX_BUNDLE, "signature bundle")?;
    let mut reasons = Vec::new();
    for signer in candidates {
        let trust = trust_of(node, signer)?;
        match sign::verify_signature(&bundle, &trust) {
            Ok(signed) => {
                let mut ser = signed.statement.serialization.clone();
                // The bundle itself, when it sits inside the model, is not part of it.
                let inside = crate::cmd::signing::model_relative(
                    &req.model,
                    std::slice::from_ref(sig_path),
                    false,
                );
                for p in inside {
                    if !ser.ignore_paths.contains(&p) {
                        ser.ignore_paths.push(p);
                    }
                }
                return Ok(Checked {
                    ser,
                    expected: Some(signed.statement.items),
                    signer: Some(format!("{} ({})", signer.name, signed.signer)),
                    signature_sha256: Some(sha256_hex(&bundle)),
                    reasons: vec![],
                });
            }
            Err(f) => reasons.push(format!("signer {}: {f}", signer.name)),
        }
    }
    Ok(Checked {
        ser: unsigned_serialization(),
        expected: None,
        signer: None,
        signature_sha256: Some(sha256_hex(&bundle)),
        reasons,
    })
}

/// Per-file results of the sealing pass.
struct SealedFile {
    row: FileRow,
    items: Vec<Item>,
}

fn seal_all(
    vault: &vault::Vault,
    id: &ReleaseId,
    manifest_digest: &str,
    entries: &[Entry],
    ser: &Serialization,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Vec<SealedFile>> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(entries.len()));
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let work = || loop {
        if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        let Some(e) = entries.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let result = (|| -> anyhow::Result<SealedFile> {
            let file = std::fs::File::open(&e.abs)
                .with_context(|| format!("opening {}", e.abs.display()))?;
            // No buffering: the sealer reads whole segments straight into its own buffers.
            let reader = ProgressReader {
                inner: file,
                progress,
            };
            let mut hashing = HashingReader::new(reader, ser);
            let ctx = vault::Context {
                release: id.to_string(),
                file: e.rel.clone(),
                manifest: manifest_digest.to_string(),
            };
            vault
                .seal_from(&ctx, &mut hashing, e.size)
                .with_context(|| format!("sealing {}", e.rel))?;
            let d = hashing.finish(&e.rel);
            Ok(SealedFile {
                row: FileRow {
                    path: e.rel.clone(),
                    size: e.size,
                    sha256: hex::encode(d.sha256),
                    digests: d
                        .items
                        .iter()
                        .map(|i| {
                            let (s, end) = i.range.unwrap_or((0, e.size));
                            (s, end, hex::encode(i.digest))
                        })
                        .collect(),
                },
                items: d.items,
            })
        })();
        match result {
            Ok(s) => {
                if let Ok(mut v) = out.lock() {
                    v.push(s);
                }
            }
            Err(err) => {
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert(err);
                }
            }
        }
    };
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, entries.len().max(1));
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    if let Some(err) = failed.into_inner().ok().flatten() {
        return Err(err);
    }
    let mut files = out
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a sealing thread failed"))?;
    files.sort_by(|a, b| manifest::compare_paths(&a.row.path, &b.row.path));
    Ok(files)
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

fn scan_summary(
    entries: &[Entry],
    threads: usize,
    reject_at: scan::Severity,
) -> (aibom::ScanSummary, Vec<String>) {
    let inputs: Vec<scan::engine::Input> = entries
        .iter()
        .map(|e| scan::engine::Input::File(e.abs.clone()))
        .collect();
    let opts = scan::engine::ScanOptions {
        threads,
        ..Default::default()
    };
    let reports = scan::engine::scan_paths(&inputs, &opts, |_| {});
    let mut summary = aibom::ScanSummary {
        files_scanned: reports.len() as u64,
        ..Default::default()
    };
    let mut reasons = Vec::new();
    for (report, entry) in reports.iter().zip(entries) {
        for f in &report.findings {
            summary.findings += 1;
            *summary
                .by_severity
                .entry(f.severity.to_string())
                .or_insert(0) += 1;
            if f.severity >= reject_at {
                reasons.push(format!(
                    "scan: {} {} in {}: {}",
                    f.severity, f.rule.id, entry.rel, f.evidence
                ));
            }
        }
        if let Some(max) = report.max_severity() {
            let worse = summary
                .max_severity
                .as_deref()
                .and_then(|s| s.parse::<scan::Severity>().ok())
                .is_none_or(|cur| max > cur);
            if worse {
                summary.max_severity = Some(max.to_string());
            }
        }
    }
    (summary, reasons)
}

/// Admits a model. Returns the admission (admitted or rejected); an `Err` means nothing
/// was recorded or kept.
pub fn admit(
    node: &mut Node,
    actor: &Principal,
    req: &AdmitRequest,
    progress: Progress,
) -> anyhow::Result<Admission> {
    let id = &req.id;
    let _lock = lock_admission(node, id)?;
    if node
        .registry
        .read(|tx| tx.exists(id).map_err(anyhow::Error::from))?
    {
        return Err(denied(format!(
            "{id} already exists; releases are immutable: admit a new version"
        )));
    }
    let vault = node.vault()?;
    // Left over from an admission that crashed before recording anything.
    vault.discard(&id.to_string())?;

    let checked = check_signature(node, req)?;
    let card = match &req.model_card {
        Some(p) => Some((p.clone(), read_limited(p, MAX_DOCUMENT, "model card")?)),
        None => None,
    };
    let threat = match &req.threat_model {
        Some(p) => Some((p.clone(), read_limited(p, MAX_DOCUMENT, "threat model")?)),
        None => None,
    };
    let mut ser = checked.ser.clone();
    ser.allow_symlinks = false; // never admitted, whatever the signer allowed
    let entries = manifest::walk(&req.model, &ser).map_err(|e| match e {
        sign::Error::Symlink { .. } | sign::Error::SpecialFile { .. } => {
            denied(format!("{e}: models are admitted as regular files only"))
        }
        other => {
            anyhow::Error::new(other).context(format!("reading the model {}", req.model.display()))
        }
    })?;
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if total > node.config.admission.max_model_bytes {
        return Err(denied(format!(
            "the model holds {total} bytes, more than [admission] max_model_bytes = {}",
            node.config.admission.max_model_bytes
        )));
    }
    let stamps: Vec<Stamp> = entries
        .iter()
        .map(|e| stamp(&e.abs))
        .collect::<anyhow::Result<_>>()?;

    let (scan, scan_reasons) =
        scan_summary(&entries, req.threads, node.config.admission.reject_at()?);
    let mut reasons = checked.reasons.clone();
    reasons.extend(scan_reasons);

    // The manifest digest is bound into every sealed segment: from the signature, or, for
    // an unsigned model, from a hashing pass first.
    let expected: Vec<Item> = match &checked.expected {
        Some(items) => items.clone(),
        None if reasons.is_empty() => {
            manifest::build(
                &req.model,
                &ser,
                sign::manifest::HashOptions {
                    threads: req.threads,
                },
                &|_| {},
                &|_| {},
            )?
            .items
        }
        None => Vec::new(),
    };
    let root = format!(
        "sha256:{}",
        hex::encode(manifest::root_digest(expected.iter().map(|i| &i.digest)))
    );

    let mut sealed = Vec::new();
    if reasons.is_empty() {
        (progress.total)(total);
        let result = seal_all(
            &vault,
            id,
            &root,
            &entries,
            &ser,
            req.threads,
            progress.advance,
        );
        sealed = match result {
            Ok(s) => s,
            Err(e) => {
                vault.discard(&id.to_string())?;
                return Err(e);
            }
        };
        let mut actual: Vec<Item> = sealed.iter().flat_map(|s| s.items.clone()).collect();
        actual.sort_by(Item::order);
        let diff = manifest::diff(&expected, &actual);
        if !diff.is_empty() {
            if checked.expected.is_none() {
                vault.discard(&id.to_string())?;
                bail!(
                    "the model changed while it was admitted; try again once nothing writes to it"
                );
            }
            let verdict = sign::Failure::Mismatch(diff);
            reasons.push(format!("signature: {verdict}"));
        }
        for (e, before) in entries.iter().zip(&stamps) {
            if stamp(&e.abs)? != *before {
                vault.discard(&id.to_string())?;
                bail!(
                    "{} changed while the model was admitted; try again once nothing writes to it",
                    e.rel
                );
            }
        }
        if !reasons.is_empty() {
            vault.discard(&id.to_string())?;
            sealed.clear();
        }
    }

    let state = if reasons.is_empty() {
        State::Admitted
    } else {
        State::Rejected
    };
    let time = now()?;
    let bom_input = aibom::BomInput {
        serial: aibom::new_serial().map_err(|e| anyhow::anyhow!("AI-BOM: {e}"))?,
        timestamp: time.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        name: id.name.clone(),
        version: id.version.clone(),
        manifest_digest: root.clone(),
        files: sealed
            .iter()
            .map(|s| aibom::BomFile {
                path: s.row.path.clone(),
                size: s.row.size,
                sha256: s.row.sha256.clone(),
            })
            .collect(),
        signature: checked.signer.clone().map(|signer| aibom::BomSignature {
            signer,
            bundle_sha256: checked.signature_sha256.clone().unwrap_or_default(),
            method: "oms".into(),
        }),
        scan: aibom::ScanSummary {
            accepted: false,
            ..scan.clone()
        },
        model_card: match &card {
            Some((path, bytes)) => Some(
                aibom::parse_model_card(bytes, &path.display().to_string())
                    .map_err(|e| anyhow::anyhow!("model card {}: {e}", path.display()))?,
            ),
            None => None,
        },
        threat_model: threat.as_ref().map(|(path, bytes)| aibom::BomDocument {
            path: path.display().to_string(),
            sha256: sha256_hex(bytes),
        }),
        admitted_by: actor.name.clone(),
    };
    let aibom = serde_json::to_string_pretty(&aibom::build(&bom_input))?;

    let release = Release {
        id: id.clone(),
        state,
        manifest: root.clone(),
        serialization: serialization_json(&ser),
        admitted_by: actor.name.clone(),
        admitted_at: time.clone(),
        signer: checked.signer.clone(),
        findings: scan.findings,
        max_severity: scan.max_severity.clone(),
        reasons: reasons.clone(),
        aibom: aibom.clone(),
    };
    let rows: Vec<FileRow> = sealed.iter().map(|s| s.row.clone()).collect();
    let ledger = node.ledger()?;
    let mut rec = Record::new(
        if state == State::Admitted {
            "release.admitted"
        } else {
            "release.rejected"
        },
        &actor.name,
    )
    .subject(&id.to_string())
    .digest("manifest", &root)
    .digest("aibom", &ledger::record::sha256_digest(aibom.as_bytes()))
    .attr("from", State::Quarantined.name())
    .attr("to", state.name())
    .attr("files", &entries.len().to_string())
    .attr("bytes", &total.to_string())
    .attr("findings", &scan.findings.to_string());
    if let Some(s) = &checked.signer {
        rec = rec.attr("signer", s);
    }
    if let Some(d) = &checked.signature_sha256 {
        rec = rec.digest("signature", &format!("sha256:{d}"));
    }
    if !reasons.is_empty() {
        rec = rec.attr("reasons", &truncate(&reasons.join("; "), 1000));
    }
    let result = node.registry.write(|tx| -> anyhow::Result<u64> {
        if tx.exists(id)? {
            return Err(denied(format!("{id} already exists")));
        }
        let index = super::record(&ledger, &rec)?;
        tx.insert_release(&release, &rows)?;
        tx.record_step(
            id,
            &Step {
                from: Some(State::Quarantined),
                to: state,
                actor: actor.name.clone(),
                time: time.clone(),
                ledger_index: Some(index),
                note: truncate(&reasons.join("; "), 4000),
            },
        )?;
        Ok(index)
    });
    let close = ledger.close();
    let index = match result {
        Ok(i) => i,
        Err(e) => {
            vault.discard(&id.to_string())?;
            return Err(e);
        }
    };
    close?;
    Ok(Admission {
        release: id.to_string(),
        state,
        manifest: root,
        signer: checked.signer,
        files: entries.len(),
        bytes: total,
        findings: scan.findings,
        max_severity: scan.max_severity,
        reasons,
        ledger_index: index,
    })
}

/// Cuts a text to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
