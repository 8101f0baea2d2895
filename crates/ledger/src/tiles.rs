//! The C2SP tlog-tiles layout: tile paths and entry bundles.
//!
//! Tiles have height 8: a hash tile at level L holds up to 256 hashes of tree level 8·L; an
//! entry bundle holds up to 256 entries, each prefixed by its length as a big-endian u16.
//! Paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, with N written in groups of
//! three digits, all but the last prefixed by `x` (`x001/x234/067`).

use std::fmt::Write as _;

use crate::error::Error;
use crate::hash::Hash;

/// Hashes or entries per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;
/// The largest entry an entry bundle can hold (its length prefix is a u16).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Which kind of tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// A hash tile at this tile level.
    Hash(u8),
    /// An entry bundle.
    Entries,
}

/// One tile: kind, index within its level, and width (256 for a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileId {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

impl TileId {
    /// The tile's path relative to the ledger directory.
    pub fn path(&self) -> String {
        let mut path = String::from("tile/");
        match self.kind {
            TileKind::Hash(level) => {
                let _ = write!(path, "{level}/");
            }
            TileKind::Entries => path.push_str("entries/"),
        }
        path.push_str(&index_path(self.index));
        if u64::from(self.width) != TILE_WIDTH {
            let _ = write!(path, ".p/{}", self.width);
        }
        path
    }

    /// The tile that holds hash `n` of tile level `level` in a tree whose level has `count`
    /// hashes in all (so the right-most tile may be partial).
    pub fn for_hash(level: u8, n: u64, count: u64) -> TileId {
        let index = n / TILE_WIDTH;
        TileId {
            kind: TileKind::Hash(level),
            index,
            width: width_at(index, count),
        }
    }

    /// The entry bundle that holds entry `n` in a tree of `size` entries.
    pub fn for_entry(n: u64, size: u64) -> TileId {
        let index = n / TILE_WIDTH;
        TileId {
            kind: TileKind::Entries,
            index,
            width: width_at(index, size),
        }
    }
}

/// Width of tile `index` when its level holds `count` items.
fn width_at(index: u64, count: u64) -> u16 {
    let start = index.saturating_mul(TILE_WIDTH);
    let width = count.saturating_sub(start).min(TILE_WIDTH);
    u16::try_from(width).unwrap_or(256)
}

/// `1234067` → `x001/x234/067`.
fn index_path(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    while n >= 1000 {
        n /= 1000;
        groups.push(format!("x{:03}", n % 1000));
    }
    groups.reverse();
    groups.join("/")
}

/// Appends one entry, length-prefixed, to a bundle.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(entry.len()).map_err(|_| Error::EntryTooLarge(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits an entry bundle into its entries. A bundle that ends inside an entry or carries
/// trailing bytes is malformed.
pub fn split_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(format!(
                "a length prefix is cut off after entry {}",
                entries.len()
            ));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(format!(
                "entry {} claims {len} bytes but only {} remain",
                entries.len(),
                tail.len()
            ));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    Ok(entries)
}

/// Encodes hashes as a hash tile.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Decodes a hash tile; its length must be a multiple of 32.
pub fn decode_hashes(data: &[u8]) -> Result<Vec<Hash>, String> {
    let (chunks, rest) = data.as_chunks::<32>();
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes is not a whole number of 32-byte hashes",
            data.len()
        ));
    }
    Ok(chunks.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        let full = TileId {
            kind: TileKind::Hash(0),
            index: 1_234_067,
            width: 256,
        };
        assert_eq!(full.path(), "tile/0/x001/x234/067");
        let partial = TileId {
            kind: TileKind::Entries,
            index: 5,
            width: 17,
        };
        assert_eq!(partial.path(), "tile/entries/005.p/17");
        let level2 = TileId {
            kind: TileKind::Hash(2),
            index: 1000,
            width: 256,
        };
        assert_eq!(level2.path(), "tile/2/x001/000");
    }

    #[test]
    fn paths_match_the_go_port_apart_from_its_height_segment() {
        for (level, index, width) in [(0u8, 0u64, 256u16), (1, 999, 3), (2, 1_000_001, 255)] {
            let ours = TileId {
                kind: TileKind::Hash(level),
                index,
                width,
            }
            .path();
            let go = tlog_tiles::Tile::new(8, level, index, u32::from(width), false).path();
            assert_eq!(go.replacen("tile/8/", "tile/", 1), ours);
        }
    }

    #[test]
    fn widths_of_the_right_edge() {
        assert_eq!(TileId::for_entry(0, 1).width, 1);
        assert_eq!(TileId::for_entry(255, 256).width, 256);
        assert_eq!(TileId::for_entry(256, 300).width, 44);
        assert_eq!(TileId::for_hash(1, 3, 4).width, 4);
    }

    #[test]
    fn bundles_round_trip_and_reject_damage() {
        let mut bundle = Vec::new();
        for e in [&b"one"[..], b"", b"three"] {
            push_entry(&mut bundle, e).unwrap();
        }
        assert_eq!(
            split_bundle(&bundle).unwrap(),
            vec![&b"one"[..], b"", b"three"]
        );
        assert!(split_bundle(&bundle[..bundle.len() - 1]).is_err());
        let mut extra = bundle.clone();
        extra.push(0);
        assert!(split_bundle(&extra).is_err());
        assert!(push_entry(&mut bundle, &vec![0; MAX_ENTRY_LEN + 1]).is_err());
    }

    #[test]
    fn hash_tiles_must_be_whole() {
        assert_eq!(decode_hashes(&[7; 64]).unwrap().len(), 2);
        assert!(decode_hashes(&[7; 65]).is_err());
    }
}
