//! Full verification of a published ledger: every entry and every tile, recomputed and
//! compared with what is stored and with the signed checkpoint. One pass, one tile at a
//! time per level, so memory does not grow with the ledger.

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::{self, SignedCheckpoint};
use crate::error::{Error, Result};
use crate::hash::{leaf_hash, Hash};
use crate::reader::Published;
use crate::tiles::{self, TileId, TileKind, TILE_WIDTH};
use crate::tree::{FullTile, TreeState};

/// Problems reported in detail before the rest are only counted.
const MAX_PROBLEMS: usize = 100;

/// One thing found wrong.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The file, entry or checkpoint concerned (`tile/0/004`, `entry 1027`, `checkpoint`).
    pub place: String,
    /// What is wrong with it.
    pub what: String,
}

/// The outcome of a verification.
#[derive(Debug, Serialize)]
pub struct Report {
    pub origin: String,
    pub size: u64,
    #[serde(with = "b64")]
    pub root: Hash,
    /// Size of the saved checkpoint checked against, if one was given.
    pub since: Option<u64>,
    pub problems: Vec<Problem>,
    /// Problems beyond those listed.
    pub more_problems: u64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

mod b64 {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(h))
    }
}

struct Checker<'a> {
    ledger: &'a Published,
    problems: Vec<Problem>,
    more: u64,
}

impl Checker<'_> {
    fn problem(&mut self, place: impl Into<String>, what: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                place: place.into(),
                what: what.into(),
            });
        } else {
            self.more += 1;
        }
    }

    /// Compares hashes the tree computed with the stored tile `id`.
    fn compare_tile(&mut self, id: &TileId, computed: &[Hash]) {
        let stored = match self.ledger.read_tile(id) {
            Ok(data) => data,
            Err(e) => return self.problem(id.path(), e.to_string()),
        };
        let stored = match tiles::decode_hashes(&stored) {
            Ok(h) => h,
            Err(e) => return self.problem(id.path(), e),
        };
        let TileKind::Hash(level) = id.kind else {
            return;
        };
        for (i, (c, s)) in computed.iter().zip(&stored).enumerate() {
            if c != s {
                let n = id.index * TILE_WIDTH + i as u64;
                let what = if level == 0 {
                    format!("hash {i} differs from the leaf hash of entry {n}: the entry or this tile was altered")
                } else {
                    format!("hash {i} differs from the subtree it covers (level {level}, node {n})")
                };
                self.problem(id.path(), what);
            }
        }
    }
}

/// Verifies the ledger in `dir`. `vkey` pins the key (otherwise the stored one is used);
/// `since` is a checkpoint saved earlier, which the ledger must extend; `check_entry`
/// judges each entry's content (e.g. that it is a canonical record).
pub fn verify(
    dir: &Path,
    vkey: Option<&str>,
    since: Option<&[u8]>,
    check_entry: impl Fn(&[u8]) -> std::result::Result<(), String> + Sync,
) -> Result<Report> {
    let ledger = Published::open(dir, vkey)?;
    let cp = ledger.checkpoint().clone();
    let mut checker = Checker {
        ledger: &ledger,
        problems: Vec::new(),
        more: 0,
    };
    let saved = match since {
        Some(note) => match checkpoint::verify(note, ledger.vkey()) {
            Ok(saved) => Some(saved),
            Err(e) => {
                checker.problem("saved checkpoint", e.to_string());
                None
            }
        },
        None => None,
    };
    if let Some(saved) = &saved {
        if saved.size > cp.size {
            checker.problem(
                "checkpoint",
                format!(
                    "the ledger has {} entries but a checkpoint saved earlier has {}: entries were removed or an older copy was put back",
                    cp.size, saved.size
                ),
            );
        }
    }

    let mut state = TreeState::new();
    check_saved(&mut checker, &state, saved.as_ref());
    let mut index = 0;
    while index < cp.size {
        let bundle_id = TileId::for_entry(index, cp.size);
        let level0_id = TileId::for_hash(0, index, cp.size);
        let width = u64::from(bundle_id.width);
        // The bundle's entries are checked where they lie in the tile, without copies.
        let data = ledger.read_tile(&bundle_id);
        let entries = data
            .as_deref()
            .map_err(ToString::to_string)
            .and_then(|data| {
                let entries = tiles::split_bundle(data).map_err(|e| {
                    Error::Corrupt(format!("{}: {e}", bundle_id.path())).to_string()
                })?;
                if entries.len() as u64 != width {
                    return Err(Error::Corrupt(format!(
                        "{} holds {} entries, not {width}",
                        bundle_id.path(),
                        entries.len()
                    ))
                    .to_string());
                }
                Ok(entries)
            });
        let leaves: Vec<Hash> = match entries {
            Ok(entries) => {
                // Judging content and hashing dominate; a bundle's 256 entries go to
                // all cores, and problems are reported in entry order.
                let judged: Vec<(Hash, Option<String>)> = entries
                    .par_iter()
                    .map(|e| (leaf_hash(e), check_entry(e).err()))
                    .collect();
                let mut leaves = Vec::with_capacity(judged.len());
                for (i, (leaf, why)) in judged.into_iter().enumerate() {
                    if let Some(why) = why {
                        checker.problem(format!("entry {}", index + i as u64), why);
                    }
                    leaves.push(leaf);
                }
                leaves
            }
            Err(why) => {
                checker.problem(bundle_id.path(), why);
                // Go on with the stored hashes so that later tiles are still checked.
                match ledger
                    .read_tile(&level0_id)
                    .ok()
                    .and_then(|d| tiles::decode_hashes(&d).ok())
                {
                    Some(h) if h.len() as u64 == width => h,
                    _ => vec![[0; 32]; width as usize],
                }
            }
        };
        let mut full: Vec<FullTile> = Vec::new();
        for leaf in leaves {
            state.push(leaf, |t| full.push(t));
            check_saved(&mut checker, &state, saved.as_ref());
        }
        for tile in full {
            let id = TileId {
                kind: TileKind::Hash(tile.level),
                index: tile.index,
                width: TILE_WIDTH as u16,
            };
            checker.compare_tile(&id, &tile.hashes);
        }
        index += width;
    }
    for (id, hashes) in state.partial_tiles() {
        checker.compare_tile(&id, hashes);
    }
    if state.root() != cp.root {
        checker.problem(
            "checkpoint",
            format!(
                "the root of the {} stored entries differs from the signed checkpoint's root",
                cp.size
            ),
        );
    }
    Ok(Report {
        origin: cp.origin.clone(),
        size: cp.size,
        root: cp.root,
        since: saved.as_ref().map(|s| s.size),
        problems: checker.problems,
        more_problems: checker.more,
    })
}

/// When the tree reaches the saved checkpoint's size, their roots must agree.
fn check_saved(checker: &mut Checker<'_>, state: &TreeState, saved: Option<&SignedCheckpoint>) {
    if let Some(saved) = saved {
        if saved.size == state.size() && saved.root != state.root() {
            checker.problem(
                "checkpoint",
                format!(
                    "the first {} entries no longer give the root of the checkpoint saved at that size: history was rewritten",
                    saved.size
                ),
            );
        }
    }
}
