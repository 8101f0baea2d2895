//! The right edge of the tree: everything needed to append and to compute the root, in
//! memory bounded by the tree's height (at most 255 hashes per tile level), never by its
//! size.

use crate::hash::{self, Hash};
use crate::tiles::{TileId, TileKind, TILE_WIDTH};

/// A tile that became full while appending.
pub struct FullTile {
    pub level: u8,
    pub index: u64,
    pub hashes: Vec<Hash>,
}

/// The partial (right-most) hash tile of every tile level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeState {
    size: u64,
    /// `levels[L]`: the hashes of tree level 8·L in the right-most, not yet full tile.
    levels: Vec<Vec<Hash>>,
    /// The roots of the perfect subtrees the tree decomposes into, largest first (its
    /// compact range): the root is their fold, and each append updates them with one node
    /// hash on average.
    frontier: Vec<Hash>,
}

impl TreeState {
    /// The empty tree.
    pub fn new() -> TreeState {
        TreeState::default()
    }

    /// Rebuilds a state from its partial tiles, checking that they fit `size`.
    pub fn from_parts(size: u64, levels: Vec<Vec<Hash>>) -> Option<TreeState> {
        let mut frontier = Vec::new();
        for row in levels.iter().rev() {
            hash::perfect_subtree_roots(row, &mut frontier);
        }
        let state = TreeState {
            size,
            levels,
            frontier,
        };
        let mut count = size;
        let mut level = 0;
        while count > 0 {
            let width = (count % TILE_WIDTH) as usize;
            if state.levels.get(level).map_or(0, Vec::len) != width {
                return None;
            }
            count /= TILE_WIDTH;
            level += 1;
        }
        if state.levels.iter().skip(level).any(|l| !l.is_empty()) {
            return None;
        }
        Some(state)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The partial tile of every level, bottom up (empty where a level has none).
    pub fn levels(&self) -> &[Vec<Hash>] {
        &self.levels
    }

    /// Appends one leaf hash; every tile that this fills is handed to `on_full`.
    pub fn push(&mut self, leaf: Hash, mut on_full: impl FnMut(FullTile)) {
        // Merge the new leaf into the frontier, noting the roots of the 2^8, 2^16, …
        // leaf subtrees it completes: those are the hashes the next tile level receives.
        let mut node = leaf;
        let mut size = self.size;
        let mut merges = 0u32;
        let mut completed = [hash::EMPTY_ROOT; 8];
        while size & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            node = hash::node_hash(&left, &node);
            size >>= 1;
            merges += 1;
            if merges.is_multiple_of(8) {
                if let Some(slot) = completed.get_mut((merges / 8 - 1) as usize) {
                    *slot = node;
                }
            }
        }
        self.frontier.push(node);

        let mut carry = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(TILE_WIDTH as usize));
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(carry);
            if row.len() < TILE_WIDTH as usize {
                break;
            }
            let hashes = std::mem::take(row);
            carry = completed.get(level).copied().unwrap_or(hash::EMPTY_ROOT);
            let level_u8 = u8::try_from(level).unwrap_or(u8::MAX);
            let count_at_level = (self.size + 1) >> (8 * level as u32);
            on_full(FullTile {
                level: level_u8,
                index: count_at_level / TILE_WIDTH - 1,
                hashes,
            });
            level += 1;
        }
        self.size += 1;
    }

    /// The Merkle tree hash of the whole tree (RFC 6962 MTH).
    pub fn root(&self) -> Hash {
        hash::fold_compact_range(&self.frontier)
    }

    /// The partial hash tiles a checkpoint at this size needs, with their contents.
    pub fn partial_tiles(&self) -> impl Iterator<Item = (TileId, &[Hash])> {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, row)| !row.is_empty())
            .map(|(level, row)| {
                let count = self.size >> (8 * level as u32);
                let id = TileId::for_hash(
                    u8::try_from(level).unwrap_or(u8::MAX),
                    count.saturating_sub(1),
                    count,
                );
                debug_assert_eq!(usize::from(id.width), row.len());
                debug_assert!(matches!(id.kind, TileKind::Hash(_)));
                (id, row.as_slice())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{leaf_hash, root_of};

    #[test]
    fn root_matches_the_definition_at_every_size() {
        let leaves: Vec<Hash> = (0u32..600).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut state = TreeState::new();
        let mut full = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            assert_eq!(state.root(), root_of(&leaves[..i]), "size {i}");
            state.push(*leaf, |t| full.push((t.level, t.index, t.hashes.len())));
        }
        assert_eq!(full, vec![(0, 0, 256), (0, 1, 256)]);
        let partial: Vec<_> = state.partial_tiles().map(|(id, h)| (id, h.len())).collect();
        assert_eq!(partial.len(), 2);
        assert_eq!(partial[0].0.path(), "tile/0/002.p/88");
        assert_eq!(partial[1].0.path(), "tile/1/000.p/2");
    }

    #[test]
    fn second_level_tiles_fill_at_65536() {
        let mut state = TreeState::new();
        let mut level1 = Vec::new();
        for i in 0u32..65_536 {
            state.push(leaf_hash(&i.to_le_bytes()), |t| {
                if t.level == 1 {
                    level1.push(t.index)
                }
            });
        }
        assert_eq!(level1, vec![0]);
        assert_eq!(state.levels()[2].len(), 1);
        assert!(state.levels()[0].is_empty() && state.levels()[1].is_empty());
    }

    #[test]
    fn from_parts_checks_widths() {
        let mut state = TreeState::new();
        for i in 0u32..300 {
            state.push(leaf_hash(&i.to_le_bytes()), |_| {});
        }
        let rebuilt = TreeState::from_parts(300, state.levels().to_vec()).unwrap();
        assert_eq!(rebuilt.root(), state.root());
        assert!(TreeState::from_parts(301, state.levels().to_vec()).is_none());
    }
}
