//! Reading a published ledger: its checkpoint, authenticated entries, and proofs. Works
//! on the files alone (a copy, a backup, or a ledger another process is writing), and
//! trusts nothing it has not checked against the signed checkpoint.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use tlog_tiles::{HashReader, Tile, TileHashReader, TileReader};

use crate::checkpoint::{self, SignedCheckpoint};
use crate::error::{Error, Result};
use crate::fsio;
use crate::hash::{leaf_hash, Hash};
use crate::layout;
use crate::tiles::{self, TileId, TileKind, TILE_WIDTH};

/// The largest entry bundle: 256 entries of the largest size with their prefixes.
pub(crate) const MAX_BUNDLE: u64 = TILE_WIDTH * (2 + tiles::MAX_ENTRY_LEN as u64);

/// A ledger's published state at its latest checkpoint.
pub struct Published {
    dir: PathBuf,
    vkey: String,
    checkpoint: SignedCheckpoint,
    /// Why the last tile read failed (the tlog port's errors carry no detail).
    last_error: RefCell<Option<String>>,
}

/// Reads the verifier key stored with a ledger.
pub fn read_vkey(dir: &Path) -> Result<String> {
    let path = dir.join(layout::VKEY);
    if !path.exists() {
        return Err(Error::NotFound(dir.to_path_buf()));
    }
    let bytes = fsio::read_limited(&path, 4096)?;
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| Error::Key(format!("{} is not text", path.display())))
}

impl Published {
    /// Opens the ledger in `dir`, checking its checkpoint against `vkey` (or, when `None`,
    /// against the verifier key stored with it).
    pub fn open(dir: &Path, vkey: Option<&str>) -> Result<Published> {
        let vkey = match vkey {
            Some(v) => v.trim().to_string(),
            None => read_vkey(dir)?,
        };
        let path = dir.join(layout::CHECKPOINT);
        if !path.exists() {
            return Err(Error::NotFound(dir.to_path_buf()));
        }
        let note = fsio::read_limited(&path, checkpoint::MAX_NOTE_LEN as u64)?;
        let checkpoint = checkpoint::verify(&note, &vkey)?;
        Ok(Published {
            dir: dir.to_path_buf(),
            vkey,
            checkpoint,
            last_error: RefCell::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// Reads one tile, checking its length.
    pub fn read_tile(&self, id: &TileId) -> Result<Vec<u8>> {
        let path = layout::tile(&self.dir, id);
        let data = match fsio::read_optional(&path, MAX_BUNDLE)? {
            Some(d) => d,
            None => return Err(Error::Corrupt(format!("{} is missing", id.path()))),
        };
        if let TileKind::Hash(_) = id.kind {
            let want = usize::from(id.width) * 32;
            if data.len() != want {
                return Err(Error::Corrupt(format!(
                    "{} has {} bytes, not {want}",
                    id.path(),
                    data.len()
                )));
            }
        }
        Ok(data)
    }

    /// Reads the entry bundle that holds entry `index`, split into entries.
    pub fn read_bundle(&self, index: u64) -> Result<(TileId, Vec<Vec<u8>>)> {
        let id = TileId::for_entry(index, self.size());
        let data = self.read_tile(&id)?;
        let entries = tiles::split_bundle(&data)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", id.path())))?;
        if entries.len() != usize::from(id.width) {
            return Err(Error::Corrupt(format!(
                "{} holds {} entries, not {}",
                id.path(),
                entries.len(),
                id.width
            )));
        }
        Ok((id, entries.into_iter().map(<[u8]>::to_vec).collect()))
    }

    fn tlog_error(&self, e: tlog_tiles::Error) -> Error {
        match self.last_error.borrow_mut().take() {
            Some(detail) => Error::Corrupt(detail),
            None => Error::Corrupt(format!("tiles do not match the signed checkpoint ({e})")),
        }
    }

    /// Checks the leaf hashes of one whole entry bundle against the signed root with a
    /// single inclusion proof: the proof's steps inside the bundle are recomputed from
    /// the leaves themselves, so every leaf is covered, and only the steps above the bundle
    /// come from the stored tiles. (The tile reader of Go's sumdb/tlog, which tlog_tiles
    /// ports, leaves some tiles unauthenticated; nothing here relies on it.)
    fn authenticate_bundle(&self, first: u64, leaves: &[Hash]) -> Result<()> {
        let Some(leaf0) = leaves.first() else {
            return Ok(());
        };
        let size = self.size();
        let reader = TileHashReader::new(size, tlog_tiles::Hash(self.checkpoint.root), self);
        let proof =
            tlog_tiles::prove_record(size, first, &reader).map_err(|e| self.tlog_error(e))?;
        let mut path = Vec::new();
        leftmost_path(leaves, &mut path);
        let above = proof.get(path.len()..).ok_or_else(|| {
            Error::Corrupt(format!(
                "the tiles give a proof too short for entry {first}"
            ))
        })?;
        path.extend(above.iter().map(|h| h.0));
        check_inclusion(&path, size, &self.checkpoint.root, first, leaf0).map_err(|_| {
            Error::Corrupt(format!(
                "entries {first}..{} do not match the signed tree",
                first + leaves.len() as u64
            ))
        })
    }

    /// Calls `each(index, entry)` for entries `from..to` in order, each checked against
    /// the signed checkpoint. Reads one bundle at a time.
    pub fn for_each_entry(
        &self,
        from: u64,
        to: u64,
        mut each: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let to = to.min(self.size());
        let mut index = from;
        while index < to {
            let (id, entries) = self.read_bundle(index)?;
            let start = id.index * TILE_WIDTH;
            let end = (start + u64::from(id.width)).min(to);
            let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
            self.authenticate_bundle(start, &leaves)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", id.path())))?;
            for i in index..end {
                let entry = entries
                    .get((i - start) as usize)
                    .ok_or_else(|| Error::Corrupt(format!("{}: entry {i} missing", id.path())))?;
                each(i, entry)?;
            }
            index = end;
        }
        Ok(())
    }

    /// One entry, authenticated.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>> {
        if index >= self.size() {
            return Err(Error::Proof(format!(
                "entry {index} does not exist: the ledger has {} entries",
                self.size()
            )));
        }
        let mut out = Vec::new();
        self.for_each_entry(index, index + 1, |_, e| {
            out = e.to_vec();
            Ok(())
        })?;
        Ok(out)
    }

    /// An inclusion proof for entry `index` in the tree of the checkpoint, checked before it
    /// is returned.
    pub fn inclusion_proof(&self, index: u64) -> Result<(Hash, Vec<Hash>)> {
        let size = self.size();
        if index >= size {
            return Err(Error::Proof(format!(
                "entry {index} does not exist: the ledger has {size} entries"
            )));
        }
        let reader = TileHashReader::new(size, tlog_tiles::Hash(self.checkpoint.root), self);
        let proof =
            tlog_tiles::prove_record(size, index, &reader).map_err(|e| self.tlog_error(e))?;
        // The leaf hash from the level-0 tile is proved by the check below: a proof that
        // leads from it to the signed root authenticates it.
        let leaf = reader
            .read_hashes(&[tlog_tiles::stored_hash_index(0, index)])
            .map_err(|e| self.tlog_error(e))?;
        let leaf = leaf
            .first()
            .map(|h| h.0)
            .ok_or_else(|| Error::Proof("no leaf hash".into()))?;
        check_inclusion(
            &proof_hashes(&proof),
            size,
            &self.checkpoint.root,
            index,
            &leaf,
        )?;
        Ok((leaf, proof_hashes(&proof)))
    }

    /// A consistency proof from the tree of `old_size` entries to the checkpoint's tree,
    /// and the old root, both derived from authenticated tiles.
    pub fn consistency_proof(&self, old_size: u64) -> Result<(Hash, Vec<Hash>)> {
        let size = self.size();
        if old_size > size {
            return Err(Error::Proof(format!(
                "the older tree has {old_size} entries, more than the ledger's {size}: the ledger lost entries or is another log"
            )));
        }
        let reader = TileHashReader::new(size, tlog_tiles::Hash(self.checkpoint.root), self);
        let old_root = tlog_tiles::tree_hash(old_size, &reader).map_err(|e| self.tlog_error(e))?;
        if old_size == 0 || old_size == size {
            return Ok((old_root.0, Vec::new()));
        }
        let proof =
            tlog_tiles::prove_tree(size, old_size, &reader).map_err(|e| self.tlog_error(e))?;
        let proof = proof_hashes(&proof);
        // The old root came from stored tiles: trusted only once the proof ties it to the
        // signed root.
        check_consistency(&proof, size, &self.checkpoint.root, old_size, &old_root.0).map_err(
            |_| {
                Error::Corrupt(format!(
                    "the stored tiles do not give a consistent tree of {old_size} entries"
                ))
            },
        )?;
        Ok((old_root.0, proof))
    }
}

/// The inclusion path of the first of `leaves` within the subtree they form, bottom up
/// (RFC 6962: PATH(0, D[n]) = PATH(0, D[0:k]) ‖ MTH(D[k:n]), k the largest power of two
/// below n).
fn leftmost_path(leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = 1usize << (leaves.len() - 1).ilog2();
    let (left, right) = leaves.split_at(k);
    leftmost_path(left, out);
    out.push(crate::hash::root_of(right));
}

fn proof_hashes(proof: &[tlog_tiles::Hash]) -> Vec<Hash> {
    proof.iter().map(|h| h.0).collect()
}

fn to_tlog(proof: &[Hash]) -> Vec<tlog_tiles::Hash> {
    proof.iter().map(|h| tlog_tiles::Hash(*h)).collect()
}

/// Checks an inclusion proof: entry `index` with leaf hash `leaf` is in the tree of `size`
/// entries with root `root`.
pub fn check_inclusion(
    proof: &[Hash],
    size: u64,
    root: &Hash,
    index: u64,
    leaf: &Hash,
) -> Result<()> {
    if index >= size || proof.len() > 64 {
        return Err(Error::Proof(format!(
            "no entry {index} in a tree of {size}"
        )));
    }
    tlog_tiles::check_record(
        &to_tlog(proof),
        size,
        tlog_tiles::Hash(*root),
        index,
        tlog_tiles::Hash(*leaf),
    )
    .map_err(|_| {
        Error::Proof(format!(
            "the inclusion proof for entry {index} does not lead to the root of the tree of {size}"
        ))
    })
}

/// Checks a consistency proof: the tree of `old_size` with `old_root` is a prefix of the tree
/// of `size` with `root`.
pub fn check_consistency(
    proof: &[Hash],
    size: u64,
    root: &Hash,
    old_size: u64,
    old_root: &Hash,
) -> Result<()> {
    if old_size > size || proof.len() > 128 {
        return Err(Error::Proof(format!(
            "a tree of {old_size} cannot be a prefix of a tree of {size}"
        )));
    }
    if old_size == size {
        return if old_root == root {
            Ok(())
        } else {
            Err(Error::Proof(format!(
                "two different roots for the same size {size}: the log forked"
            )))
        };
    }
    tlog_tiles::check_tree(&to_tlog(proof), size, tlog_tiles::Hash(*root), old_size, tlog_tiles::Hash(*old_root))
        .map_err(|_| Error::Proof(format!("the tree of {old_size} entries is not a prefix of the tree of {size}: the log was rewritten or forked")))
}

impl TileReader for Published {
    fn height(&self) -> u8 {
        tiles::TILE_HEIGHT as u8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> std::result::Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let width = u16::try_from(t.width()).map_err(|_| tlog_tiles::Error::InvalidTile)?;
                if t.is_data() || t.height() != tiles::TILE_HEIGHT as u8 {
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                let id = TileId {
                    kind: TileKind::Hash(t.level()),
                    index: t.level_index(),
                    width,
                };
                self.read_tile(&id).map_err(|e| {
                    *self.last_error.borrow_mut() = Some(e.to_string());
                    tlog_tiles::Error::InvalidTile
                })
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}
