//! Sealing and unsealing speed, for `bench/vault.sh`.
//!
//! ```text
//! vault_bench seal   DIR FILE   seal FILE into the vault in DIR (a file KEK in DIR/kek)
//! vault_bench unseal DIR FILE   decrypt and authenticate FILE's sealed copy, discarding it
//! vault_bench memory MIB        seal and open MIB MiB in memory; prints GB/s for each
//! ```

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use vault::format::{self, Opened};
use vault::provider::file::FileKek;
use vault::{Context, DataKey, Vault};

fn vault_in(dir: &Path) -> Result<Vault, Box<dyn std::error::Error>> {
    let kek_path = dir.join("kek");
    let kek = if kek_path.exists() {
        FileKek::load(&kek_path)?
    } else {
        FileKek::create(&kek_path)?
    };
    Ok(Vault::new(&dir.join("vault"), Box::new(kek)))
}

fn context(file: &str) -> Context {
    Context {
        release: "bench@1".into(),
        file: file.into(),
        manifest: "sha256:00".into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seal") if args.len() == 4 => {
            let v = vault_in(Path::new(&args[2]))?;
            v.seal_file(&context(&args[3]), &PathBuf::from(&args[3]))?;
        }
        Some("unseal") if args.len() == 4 => {
            let v = vault_in(Path::new(&args[2]))?;
            v.decrypt_to(&context(&args[3]), std::io::sink())?;
        }
        Some("memory") if args.len() == 3 => {
            let mib: usize = args[2].parse()?;
            let data = vec![0x5au8; mib << 20];
            let key = DataKey::generate();
            let ctx = context("memory");
            // Touch the output's pages first: first-touch page faults are not sealing.
            let mut sealed = vec![1u8; data.len() + (data.len() >> 10) + 4096];
            sealed.clear();
            let t = Instant::now();
            format::seal(&data[..], data.len() as u64, &mut sealed, &key, &ctx)?;
            let seal = t.elapsed();
            let t = Instant::now();
            let mut input = Cursor::new(&sealed);
            let opened = Opened::new(&mut input, &key, &ctx)?;
            let n = opened.decrypt_to(&mut input, std::io::sink())?;
            let open = t.elapsed();
            assert_eq!(n as usize, data.len());
            let gbs = |d: std::time::Duration| data.len() as f64 / d.as_secs_f64() / 1e9;
            writeln!(
                std::io::stdout(),
                "seal {:.2} GB/s  open {:.2} GB/s  ({mib} MiB, one core)",
                gbs(seal),
                gbs(open)
            )?;
        }
        _ => return Err("usage: vault_bench seal DIR FILE | unseal DIR FILE | memory MIB".into()),
    }
    Ok(())
}
