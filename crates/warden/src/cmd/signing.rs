//! What `keygen`, `sign`, `verify` and `digest` share: reading keys and passphrases,
//! turning `--ignore-paths` into model-relative paths, building the serialization.

use std::io::{IsTerminal, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use sign::manifest::{self, Method, Serialization, GIT_PATHS};
use sign::{HashAlgorithm, SigningKey};

use crate::cli::{HashArg, ModelArgs, PassphraseArgs};

/// Largest key, certificate or passphrase file read.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Reads a small text file (a key, a certificate) with a size limit.
pub fn read_small(path: &Path, what: &str) -> anyhow::Result<String> {
    let f =
        std::fs::File::open(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mut s = String::new();
    f.take(MAX_SMALL_FILE + 1)
        .read_to_string(&mut s)
        .with_context(|| format!("reading {what} {} (expected PEM text)", path.display()))?;
    if s.len() as u64 > MAX_SMALL_FILE {
        bail!(
            "{what} {} is larger than {MAX_SMALL_FILE} bytes",
            path.display()
        );
    }
    Ok(s)
}

/// A passphrase from `--passphrase-env` or `--passphrase-file`, if one was named.
pub fn passphrase_from_args(
    args: &PassphraseArgs,
) -> anyhow::Result<Option<sign::zeroize::Zeroizing<String>>> {
    if let Some(var) = &args.passphrase_env {
        let v = std::env::var(var)
            .with_context(|| format!("--passphrase-env: environment variable {var} is not set"))?;
        return Ok(Some(sign::zeroize::Zeroizing::new(v)));
    }
    if let Some(path) = &args.passphrase_file {
        let s = sign::zeroize::Zeroizing::new(read_small(path, "passphrase file")?);
        let line = s.lines().next().unwrap_or_default().to_string();
        return Ok(Some(sign::zeroize::Zeroizing::new(line)));
    }
    Ok(None)
}

/// Asks on the terminal; `None` when there is no terminal.
pub fn prompt(question: &str) -> anyhow::Result<Option<sign::zeroize::Zeroizing<String>>> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let p =
        rpassword::prompt_password(question).context("reading the passphrase from the terminal")?;
    Ok(Some(sign::zeroize::Zeroizing::new(p)))
}

/// Loads a private key, asking for its passphrase when it is encrypted and none was given.
pub fn load_private_key(path: &Path, pass: &PassphraseArgs) -> anyhow::Result<SigningKey> {
    let pem = sign::zeroize::Zeroizing::new(read_small(path, "private key")?);
    let given = passphrase_from_args(pass)?;
    let ctx = || format!("private key {}", path.display());
    match SigningKey::from_pem(&pem, given.as_ref().map(|p| p.as_bytes())) {
        Err(sign::KeyError::NeedPassphrase) => {
            let Some(p) = prompt(&format!("Passphrase for {}: ", path.display()))? else {
                bail!(
                    "private key {} is encrypted: give its passphrase with --passphrase-env VAR or --passphrase-file FILE",
                    path.display()
                );
            };
            SigningKey::from_pem(&pem, Some(p.as_bytes())).with_context(ctx)
        }
        other => other.with_context(ctx),
    }
}

/// Normalises a path lexically (no file system access): `.` and `..` resolved.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Absolute, with symbolic links resolved where the path exists (as Python's
/// `Path.resolve()`).
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Ok(c) = std::fs::canonicalize(&abs) {
        return c;
    }
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|c| c.join(name))
            .unwrap_or_else(|_| lexical(&abs)),
        _ => lexical(&abs),
    }
}

/// `model_signing`'s rule: paths given on the command line are relative to the current
/// directory; those inside the model become model-relative, the rest are dropped (with a
/// warning here).
pub fn model_relative(model: &Path, paths: &[PathBuf], warn: bool) -> Vec<String> {
    let root = resolve(model);
    let mut out = Vec::new();
    for p in paths {
        let r = resolve(p);
        let rel = r
            .strip_prefix(&root)
            .ok()
            .and_then(|rel| rel.to_str())
            .and_then(manifest::normalize_ignore);
        match rel {
            Some(rel) => out.push(rel),
            None if warn => eprintln!(
                "warning: {} is not inside the model {}; nothing to ignore there",
                p.display(),
                model.display()
            ),
            None => {}
        }
    }
    out
}

pub fn hash_of(h: HashArg) -> HashAlgorithm {
    match h {
        HashArg::Sha256 => HashAlgorithm::Sha256,
        HashArg::Blake3 => HashAlgorithm::Blake3,
    }
}

/// The serialization for signing or digesting a model.
pub fn serialization(
    model: &Path,
    hash: HashArg,
    shard_size: Option<u64>,
    args: &ModelArgs,
    signature: Option<&Path>,
) -> anyhow::Result<Serialization> {
    let hash = hash_of(hash);
    let method = match shard_size {
        None => Method::Files,
        Some(0) => bail!("--shard-size must be at least 1"),
        Some(_) if hash == HashAlgorithm::Blake3 => bail!(
            "--shard-size with --hash blake3: model_signing never shards BLAKE3 (it hashes whole files), so such a bundle would not verify there; drop one of them"
        ),
        Some(n) => Method::Shards(n),
    };
    let mut ignore: Vec<String> = Vec::new();
    if !args.no_ignore_git_paths {
        ignore.extend(GIT_PATHS.iter().map(|s| s.to_string()));
    }
    ignore.extend(model_relative(model, &args.ignore_paths, true));
    if let Some(sig) = signature {
        ignore.extend(model_relative(model, &[sig.to_path_buf()], false));
    }
    ignore.sort();
    ignore.dedup();
    Ok(Serialization {
        method,
        hash,
        allow_symlinks: args.allow_symlinks,
        ignore_paths: ignore,
    })
}

/// Writes `data` beside `path` and renames it into place, so no reader sees half a file.
pub fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("the path names no file")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        anyhow::Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(u).copied().unwrap_or("B"))
    }
}
