//! `warden sign`: hash a model and write an OpenSSF Model Signing bundle.

use std::cell::Cell;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use sign::manifest::{HashOptions, Method};
use sign::SignOptions;

use crate::cli::SignArgs;
use crate::cmd::signing;
use crate::exit::Code;
use crate::progress::ByteProgress;

pub fn run(args: SignArgs) -> anyhow::Result<Code> {
    let start = Instant::now();
    let key = signing::load_private_key(&args.key, &args.passphrase)?;
    let ser = signing::serialization(
        &args.model,
        args.hash,
        args.shard_size,
        &args.model_args,
        Some(&args.signature),
    )?;
    let chain = match &args.signing_cert {
        None => None,
        Some(leaf) => {
            let mut ders = Vec::new();
            for p in std::iter::once(leaf).chain(&args.cert_chain) {
                let pem = signing::read_small(p, "certificate")?;
                ders.extend(
                    sign::cert::pem_certificates(&pem)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("certificate file {}", p.display()))?,
                );
            }
            Some(ders)
        }
    };
    let opts = SignOptions {
        serialization: ser,
        hashing: HashOptions {
            threads: args.model_args.threads,
        },
        chain,
    };
    let bar = ByteProgress::new(!(args.json || args.quiet));
    let total = Cell::new(0u64);
    let signed = sign::sign(
        &args.model,
        &key,
        &opts,
        &|n| {
            total.set(n);
            bar.set_total(n);
        },
        &|n| bar.inc(n),
    );
    bar.finish();
    let signed = signed.with_context(|| format!("signing {}", args.model.display()))?;
    signing::write_atomically(&args.signature, signed.bundle_json.as_bytes())?;

    let m = &signed.manifest;
    let root = hex::encode(m.root_digest());
    let files = m.files().len();
    let secs = start.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "type": "signed",
            "model": args.model.display().to_string(),
            "signature": args.signature.display().to_string(),
            "root_digest": root,
            "method": match m.serialization.method { Method::Files => "files", Method::Shards(_) => "shards" },
            "hash_type": m.serialization.hash.name(),
            "files": files,
            "resources": m.items.len(),
            "bytes": total.get(),
            "ignore_paths": m.serialization.ignore_paths,
            "curve": key.curve().name(),
            "seconds": secs,
        });
        writeln!(out, "{v}")?;
    } else if !args.quiet {
        writeln!(
            out,
            "signed {}: {files} files, {} in {secs:.2} s; root digest sha256:{root}\nbundle written to {}",
            args.model.display(),
            signing::bytes(total.get()),
            args.signature.display()
        )?;
    }
    Ok(Code::Ok)
}
