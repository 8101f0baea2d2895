//! `warden ledger …`, `warden backup`, `warden restore`.
//!
//! The ledger lives in `<data-dir>/ledger`; its private key in `<data-dir>/keys/ledger.key`
//! (mode 0600). Read-only commands first let an idle ledger recover from its journal (when
//! no other process holds it and the key is readable), then read the published files.

mod backup;
mod proofs;
mod read;
pub mod write;

use std::path::{Path, PathBuf};

use anyhow::Context;
use ledger::{Ledger, Options};

use crate::cli::ledger::{LedgerArgs, LedgerCommand};
use crate::exit::Code;

pub use backup::{run_backup, run_restore};

pub fn run(data_dir: &Path, args: LedgerArgs) -> anyhow::Result<Code> {
    let paths = Paths::new(data_dir);
    match args.command {
        LedgerCommand::Init(a) => write::init(&paths, a),
        LedgerCommand::Append(a) => write::append(&paths, a),
        LedgerCommand::Verify(a) => proofs::verify(&paths, a),
        LedgerCommand::Checkpoint(a) => read::checkpoint(&paths, a),
        LedgerCommand::Vkey => read::vkey(&paths),
        LedgerCommand::Proof(a) => proofs::proof(&paths, a),
        LedgerCommand::Consistency(a) => proofs::consistency(&paths, a),
        LedgerCommand::CheckProof(a) => proofs::check_proof(a),
        LedgerCommand::Show(a) => read::show(&paths, a),
        LedgerCommand::Tail(a) => read::tail(&paths, a),
        LedgerCommand::Export(a) => read::export(&paths, a),
    }
}

/// Where the ledger's files are in a data directory.
pub struct Paths {
    pub ledger: PathBuf,
    pub key: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &Path) -> Paths {
        Paths {
            ledger: data_dir.join("ledger"),
            key: data_dir.join("keys").join("ledger.key"),
        }
    }

    pub fn read_key(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.key).with_context(|| {
            format!(
                "reading the ledger key {} (create the ledger with `warden ledger init`)",
                self.key.display()
            )
        })?;
        Ok(text.trim().to_string())
    }

    /// Opens the ledger for writing.
    pub fn open(&self) -> anyhow::Result<Ledger> {
        let key = self.read_key()?;
        Ok(Ledger::open(&self.ledger, &key, Options::default())?)
    }

    /// Lets an idle ledger replay its journal and publish, so that readers see every
    /// acknowledged entry. A ledger held by a running server is read as published.
    pub fn settle(&self) -> anyhow::Result<()> {
        if !self.ledger.join(ledger::layout::JOURNAL).exists() {
            return Err(ledger::Error::NotFound(self.ledger.clone()).into());
        }
        let Ok(key) = self.read_key() else {
            return Ok(());
        };
        match Ledger::open(&self.ledger, &key, Options::default()) {
            Ok(l) => Ok(l.close()?),
            Err(ledger::Error::Locked(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Entries must be canonical records.
pub fn check_record(entry: &[u8]) -> Result<(), String> {
    ledger::Record::check(entry).map_err(|e| e.to_string())
}

/// A verifier key given as a file.
pub fn read_vkey_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the verifier key {}", path.display()))?;
    Ok(text.trim().to_string())
}
