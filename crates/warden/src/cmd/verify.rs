//! `warden verify`: check a model against a bundle, in key or certificate mode.

use std::io::{Read, Write};
use std::time::SystemTime;

use anyhow::Context;
use sign::bundle::MAX_BUNDLE_BYTES;
use sign::cert::Anchors;
use sign::manifest::HashOptions;
use sign::{Failure, PublicKey, Trust, Verdict, VerifyOptions};

use crate::cli::VerifyArgs;
use crate::cmd::signing;
use crate::exit::Code;
use crate::progress::ByteProgress;

pub fn run(args: VerifyArgs) -> anyhow::Result<Code> {
    let mut bundle = Vec::new();
    std::fs::File::open(&args.signature)
        .and_then(|f| f.take(MAX_BUNDLE_BYTES as u64 + 1).read_to_end(&mut bundle))
        .with_context(|| format!("reading the signature {}", args.signature.display()))?;
    let trust = match &args.key {
        Some(path) => {
            let pem = signing::read_small(path, "public key")?;
            Trust::Key(
                PublicKey::from_pem(&pem)
                    .with_context(|| format!("public key {}", path.display()))?,
            )
        }
        None => {
            let mut anchors = Anchors::default();
            for p in &args.cert_chain {
                let pem = signing::read_small(p, "certificate chain")?;
                anchors.extend(
                    Anchors::from_pem(pem.as_bytes())
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("certificate chain {}", p.display()))?,
                );
            }
            Trust::Certificates {
                anchors,
                at: SystemTime::now(),
            }
        }
    };
    let mut ignore = signing::model_relative(&args.model, &args.ignore_paths, true);
    ignore.extend(signing::model_relative(
        &args.model,
        std::slice::from_ref(&args.signature),
        false,
    ));
    let opts = VerifyOptions {
        ignore_paths: ignore,
        allow_symlinks: args.allow_symlinks,
        hashing: HashOptions {
            threads: args.threads,
        },
    };
    let bar = ByteProgress::new(!(args.json || args.quiet));
    let verdict = sign::verify(
        &args.model,
        &bundle,
        &trust,
        &opts,
        &|n| bar.set_total(n),
        &|n| bar.inc(n),
    );
    bar.finish();
    let verdict = verdict.with_context(|| format!("verifying {}", args.model.display()))?;

    let mut out = std::io::stdout().lock();
    match verdict {
        Verdict::Verified(v) => {
            let root = hex::encode(v.manifest.root_digest());
            if args.json {
                let j = serde_json::json!({
                    "type": "verification",
                    "verified": true,
                    "model": args.model.display().to_string(),
                    "signature": args.signature.display().to_string(),
                    "signer": v.signer,
                    "root_digest": root,
                    "files": v.manifest.files().len(),
                    "resources": v.manifest.items.len(),
                });
                writeln!(out, "{j}")?;
            } else if !args.quiet {
                writeln!(
                    out,
                    "verified {}: {} files match the signature by {}\nroot digest sha256:{root}",
                    args.model.display(),
                    v.manifest.files().len(),
                    v.signer
                )?;
            }
            Ok(Code::Ok)
        }
        Verdict::Failed(f) => {
            if args.json {
                let mut j = serde_json::json!({
                    "type": "verification",
                    "verified": false,
                    "model": args.model.display().to_string(),
                    "signature": args.signature.display().to_string(),
                    "reason": reason(&f),
                    "message": f.to_string(),
                });
                if let Failure::Mismatch(d) = &f {
                    j["modified"] = serde_json::json!(d.modified);
                    j["added"] = serde_json::json!(d.added);
                    j["removed"] = serde_json::json!(d.removed);
                }
                writeln!(out, "{j}")?;
            } else if !args.quiet {
                writeln!(out, "NOT VERIFIED {}", args.model.display())?;
                match &f {
                    Failure::Mismatch(d) => {
                        writeln!(out, "the model differs from the signed manifest:")?;
                        for (what, list) in [
                            ("modified", &d.modified),
                            ("added", &d.added),
                            ("removed", &d.removed),
                        ] {
                            for p in list {
                                writeln!(out, "  {what:<9} {p}")?;
                            }
                        }
                    }
                    other => writeln!(out, "{other}")?,
                }
            }
            Ok(Code::Denied)
        }
    }
}

/// A stable machine-readable reason.
fn reason(f: &Failure) -> &'static str {
    match f {
        Failure::Malformed(_) => "malformed_bundle",
        Failure::WrongKey { .. } => "wrong_key",
        Failure::BadSignature(_) => "bad_signature",
        Failure::Untrusted(_) => "untrusted_certificate",
        Failure::NotCertificateSigned => "not_certificate_signed",
        Failure::BadKey(_) => "bad_key",
        Failure::Mismatch(_) => "files_differ",
        _ => "other",
    }
}
