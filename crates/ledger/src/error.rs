//! Ledger errors. Each names the file or entry at fault and, where there is one, the next
//! step for the operator.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no ledger in {}: create one with `warden ledger init`", .0.display())]
    NotFound(PathBuf),
    #[error("a ledger already exists in {}", .0.display())]
    AlreadyExists(PathBuf),
    #[error("the ledger in {} is open in another process (lock {}); stop it or use its admin API", .0.display(), .0.join("lock").display())]
    Locked(PathBuf),
    #[error("entry of {0} bytes is larger than the ledger's limit of {max} bytes", max = crate::tiles::MAX_ENTRY_LEN)]
    EntryTooLarge(usize),
    #[error("ledger key: {0}")]
    Key(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("ledger damaged: {0}")]
    Corrupt(String),
    #[error("record: {0}")]
    Record(String),
    #[error("the ledger's append queue is full; retry later")]
    Busy,
    #[error("the ledger writer has stopped after an earlier failure ({0}); reopen the ledger")]
    Stopped(String),
    #[error("proof: {0}")]
    Proof(String),
    #[error("refused: {0}")]
    Refused(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
