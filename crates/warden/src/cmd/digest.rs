//! `warden digest`: the root digest of a model (what a release record stores).

use std::io::Write;

use anyhow::Context;
use sign::manifest::{self, HashOptions};

use crate::cli::DigestArgs;
use crate::cmd::signing;
use crate::exit::Code;
use crate::progress::ByteProgress;

pub fn run(args: DigestArgs) -> anyhow::Result<Code> {
    let ser = signing::serialization(
        &args.model,
        args.hash,
        args.shard_size,
        &args.model_args,
        None,
    )?;
    let bar = ByteProgress::new(!args.json);
    let m = manifest::build(
        &args.model,
        &ser,
        HashOptions {
            threads: args.model_args.threads,
        },
        &|n| bar.set_total(n),
        &|n| bar.inc(n),
    );
    bar.finish();
    let m = m.with_context(|| format!("hashing {}", args.model.display()))?;
    let root = hex::encode(m.root_digest());
    let mut out = std::io::stdout().lock();
    if args.json {
        let resources: Vec<_> = m
            .items
            .iter()
            .map(|i| serde_json::json!({"name": i.name(), "digest": hex::encode(i.digest)}))
            .collect();
        let mut v = serde_json::json!({
            "type": "digest",
            "model": args.model.display().to_string(),
            "root_digest": root,
            "hash_type": ser.hash.name(),
            "algorithm": ser.resource_algorithm(),
            "files": m.files().len(),
            "resources": m.items.len(),
        });
        if args.verbose {
            v["resource_digests"] = serde_json::Value::Array(resources);
        }
        writeln!(out, "{v}")?;
    } else {
        if args.verbose {
            for i in &m.items {
                writeln!(out, "{}  {}", hex::encode(i.digest), i.name())?;
            }
        }
        writeln!(out, "sha256:{root}  {}", args.model.display())?;
    }
    Ok(Code::Ok)
}
