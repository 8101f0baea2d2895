//! `warden keygen`: an ECDSA key pair as PKCS#8 PEM; the private key is created with mode
//! 0600 and never printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sign::{Curve, SigningKey};

use crate::cli::{CurveArg, KeygenArgs};
use crate::cmd::signing;
use crate::exit::Code;

pub fn run(args: KeygenArgs) -> anyhow::Result<Code> {
    let curve = match args.curve {
        CurveArg::P256 => Curve::P256,
        CurveArg::P384 => Curve::P384,
        CurveArg::P521 => Curve::P521,
    };
    let pub_out = args.pub_out.clone().unwrap_or_else(|| {
        let mut s = args.out.clone().into_os_string();
        s.push(".pub");
        PathBuf::from(s)
    });
    if pub_out == args.out {
        bail!("--pub-out must differ from --out");
    }
    for p in [&args.out, &pub_out] {
        if !args.force && p.exists() {
            bail!("{} exists; pass --force to overwrite it", p.display());
        }
    }
    let passphrase = match signing::passphrase_from_args(&args.passphrase)? {
        Some(p) => Some(p),
        None if args.encrypt => {
            let Some(a) = signing::prompt("New passphrase: ")? else {
                bail!("--encrypt needs a terminal; otherwise use --passphrase-env VAR or --passphrase-file FILE");
            };
            let b = signing::prompt("Repeat the passphrase: ")?.unwrap_or_default();
            if *a != *b {
                bail!("the passphrases differ");
            }
            Some(a)
        }
        None => None,
    };
    if passphrase.as_ref().is_some_and(|p| p.is_empty()) {
        bail!("the passphrase is empty");
    }
    let key = SigningKey::generate(curve);
    let pem = key.to_pkcs8_pem(passphrase.as_ref().map(|p| p.as_bytes()))?;
    let public = key.public_key();
    write_private(&args.out, pem.as_bytes(), args.force)?;
    std::fs::write(&pub_out, public.to_pem()?)
        .with_context(|| format!("writing {}", pub_out.display()))?;
    let hint = public.hint()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "type": "keygen",
            "curve": curve.name(),
            "private_key": args.out.display().to_string(),
            "public_key": pub_out.display().to_string(),
            "encrypted": passphrase.is_some(),
            "hint": hint,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{} key pair: private {} (mode 0600{}), public {}\nkey hint (SHA-256 of the public key PEM): {hint}",
            curve.name(),
            args.out.display(),
            if passphrase.is_some() { ", encrypted" } else { "" },
            pub_out.display()
        )?;
    }
    Ok(Code::Ok)
}

/// Creates the private key file with mode 0600 from the start (never world-readable, not
/// even for an instant).
fn write_private(path: &Path, data: &[u8], force: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        // An existing file (with --force) keeps its mode: narrow it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let mut f = opts
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    Ok(())
}
