//! Where things live in a ledger directory.
//!
//! ```text
//! checkpoint            the latest signed checkpoint (C2SP tlog-checkpoint in a signed note)
//! vkey                  the verifier key: all anyone needs to check the ledger
//! tile/<L>/<N>[.p/<W>]  hash tiles (C2SP tlog-tiles)
//! tile/entries/<N>[.p/<W>]  entry bundles
//! journal               write-ahead journal: the commit point (see journal.rs)
//! lock                  held by the one process that writes
//! ```

use std::path::{Path, PathBuf};

use crate::tiles::TileId;

pub const CHECKPOINT: &str = "checkpoint";
pub const VKEY: &str = "vkey";
pub const JOURNAL: &str = "journal";
pub const LOCK: &str = "lock";

pub fn tile(dir: &Path, id: &TileId) -> PathBuf {
    dir.join(id.path())
}
