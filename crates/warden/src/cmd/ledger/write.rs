//! `warden ledger init` and `warden ledger append`.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use ledger::{Ledger, Receipt, Record};
use serde::Deserialize;

use super::Paths;
use crate::cli::ledger::{AppendArgs, InitArgs};
use crate::exit::Code;

pub fn init(paths: &Paths, args: InitArgs) -> anyhow::Result<Code> {
    let (origin, vkey) = create(paths, args.origin)?;
    let mut out = std::io::stdout().lock();
    if args.json.json {
        let v = serde_json::json!({
            "type": "ledger_init",
            "origin": origin,
            "vkey": vkey,
            "ledger": paths.ledger.display().to_string(),
            "key": paths.key.display().to_string(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{vkey}")?;
        eprintln!(
            "created the ledger in {}; its signing key is {} (mode 0600, keep it secret).\nThe line above is the verifier key: keep a copy off this host to check the ledger with.",
            paths.ledger.display(),
            paths.key.display()
        );
    }
    Ok(Code::Ok)
}

/// Creates the ledger and its key; returns the origin and the verifier key.
pub fn create(paths: &Paths, origin: Option<String>) -> anyhow::Result<(String, String)> {
    if paths.ledger.join(ledger::layout::JOURNAL).exists() {
        bail!("a ledger already exists in {}", paths.ledger.display());
    }
    if paths.key.exists() {
        bail!(
            "{} exists but there is no ledger next to it; move the key aside first",
            paths.key.display()
        );
    }
    let origin = match origin {
        Some(o) => o,
        None => default_origin()?,
    };
    let (skey, vkey) = ledger::generate_key(&origin)?;
    write_private(&paths.key, &skey)?;
    Ledger::create(&paths.ledger, &skey, &vkey)?;
    Ok((origin, vkey))
}

/// `<hostname>/warden-ledger/<8 random hex digits>`: unique, and in the schema-less URL
/// form origins conventionally take.
fn default_origin() -> anyhow::Result<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    let mut random = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
    Ok(format!("{host}/warden-ledger/{}", hex::encode(random)))
}

pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::files::create_private(path, format!("{text}\n").as_bytes())?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("restricting {}", parent.display()))?;
    }
    Ok(())
}

/// One line of `--from-jsonl`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kind: String,
    actor: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    attrs: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    digests: std::collections::BTreeMap<String, String>,
}

impl Line {
    fn record(self) -> Record {
        let mut r = Record::new(&self.kind, &self.actor);
        r.subject = self.subject;
        r.attrs = self.attrs;
        r.digests = self.digests;
        r
    }
}

/// Lines read and committed at a time from `--from-jsonl`.
const IMPORT_CHUNK: usize = 8192;

pub fn append(paths: &Paths, args: AppendArgs) -> anyhow::Result<Code> {
    let ledger = paths.open()?;
    let mut out = std::io::stdout().lock();
    let json = args.json.json;
    if let Some(file) = &args.from_jsonl {
        let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
            ))
        };
        let mut chunk = Vec::new();
        let mut total = 0u64;
        for (n, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .with_context(|| format!("{} line {}: not a record line", file.display(), n + 1))?;
            let bytes = parsed
                .record()
                .encode()
                .with_context(|| format!("{} line {}", file.display(), n + 1))?;
            chunk.push(bytes);
            if chunk.len() == IMPORT_CHUNK {
                total += commit(&ledger, std::mem::take(&mut chunk), json, &mut out)?;
            }
        }
        total += commit(&ledger, chunk, json, &mut out)?;
        ledger.close()?;
        if !json {
            writeln!(out, "appended {total} records")?;
        }
        return Ok(Code::Ok);
    }
    let (Some(kind), Some(actor)) = (&args.kind, &args.actor) else {
        bail!("--kind and --actor are required (or --from-jsonl)");
    };
    let mut record = Record::new(kind, actor);
    record.subject = args.subject.clone();
    record.attrs = args.attr.iter().cloned().collect();
    record.digests = args.digest.iter().cloned().collect();
    let receipt = ledger.append(record.encode()?)?;
    ledger.close()?;
    print_receipt(&receipt, json, &mut out)?;
    Ok(Code::Ok)
}

fn commit(
    ledger: &Ledger,
    chunk: Vec<Vec<u8>>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let receipts = ledger.append_all(chunk)?;
    if json {
        for r in &receipts {
            print_receipt(r, true, out)?;
        }
    }
    Ok(receipts.len() as u64)
}

fn print_receipt(r: &Receipt, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let leaf = B64.encode(r.leaf_hash);
    if json {
        let v = serde_json::json!({"index": r.index, "leaf_hash": leaf, "tree_size": r.tree_size});
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "entry {} (leaf {leaf}), durable in the tree of {}",
            r.index, r.tree_size
        )?;
    }
    Ok(())
}
