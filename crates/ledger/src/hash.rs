//! RFC 6962 / RFC 9162 Merkle tree hashing: SHA-256 with leaf and node domain separation.
//!
//! ring carries OpenSSL's SHA-NI assembly; verifying a million entries is two million of
//! these small hashes, so the implementation matters.

use ring::digest::{Context, SHA256};

/// A tree hash (leaf, interior node or root).
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

fn finish(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The leaf hash of one entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0]);
    ctx.update(entry);
    finish(ctx)
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[1]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

/// The root of a perfect subtree over `hashes` (its length must be a power of two).
fn perfect_root(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => EMPTY_ROOT,
        [one] => *one,
        _ => {
            let (left, right) = hashes.split_at(hashes.len() / 2);
            node_hash(&perfect_root(left), &perfect_root(right))
        }
    }
}

/// Splits a run of `hashes` at one level into the roots of its perfect subtrees, largest
/// first, appending them to `out`. Together with the runs of higher levels (which lie to the
/// left) these are the tree's compact range.
pub(crate) fn perfect_subtree_roots(hashes: &[Hash], out: &mut Vec<Hash>) {
    let mut rest = hashes;
    while !rest.is_empty() {
        let take = 1usize << rest.len().ilog2();
        let (head, tail) = rest.split_at(take);
        out.push(perfect_root(head));
        rest = tail;
    }
}

/// Folds a compact range (perfect subtree roots, left to right, sizes decreasing) into the
/// tree root, as RFC 6962's MTH does by splitting at the largest power of two.
pub(crate) fn fold_compact_range(roots: &[Hash]) -> Hash {
    let mut iter = roots.iter().rev();
    let Some(last) = iter.next() else {
        return EMPTY_ROOT;
    };
    iter.fold(*last, |acc, left| node_hash(left, &acc))
}

/// The Merkle tree hash of a list of leaf hashes (RFC 6962 MTH). Used by tests and by the
/// verifier of small trees; the ledger itself keeps a compact state instead.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut roots = Vec::new();
    perfect_subtree_roots(leaves, &mut roots);
    fold_compact_range(&roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 MTH written the way the RFC states it, recursively.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = 1usize << (n - 1).ilog2();
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let d = ring::digest::digest(&SHA256, b"");
        assert_eq!(d.as_ref(), EMPTY_ROOT);
    }

    #[test]
    fn compact_range_matches_the_recursive_definition() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..leaves.len() {
            assert_eq!(root_of(&leaves[..n]), mth(&leaves[..n]), "size {n}");
        }
    }

    #[test]
    fn agrees_with_the_go_port() {
        // tlog_tiles is a port of Go's sumdb/tlog; its hashing is the reference here.
        let entry = b"warden";
        assert_eq!(leaf_hash(entry), tlog_tiles::record_hash(entry).0);
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let go = tlog_tiles::node_hash(tlog_tiles::Hash(a), tlog_tiles::Hash(b));
        assert_eq!(node_hash(&a, &b), go.0);
    }
}
