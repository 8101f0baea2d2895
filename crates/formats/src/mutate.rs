//! Deterministic byte mutations for the readers' robustness tests: a seeded xorshift, so
//! that a failing case reproduces exactly. Not part of the readers' API.

/// Copies of `base` with one to four bytes overwritten, `count` of them, from `seed`.
pub fn mutations(base: &[u8], seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let mut data = base.to_vec();
        let flips = (next() & 3).saturating_add(1);
        for _ in 0..flips {
            let r = next();
            let len = data.len() as u64;
            if let Some(slot) = usize::try_from(r.checked_rem(len).unwrap_or(0))
                .ok()
                .and_then(|i| data.get_mut(i))
            {
                *slot = r.to_le_bytes()[7];
            }
        }
        data
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_reproducible_and_change_at_most_four_bytes() {
        let base = [0u8; 64];
        let a: Vec<_> = mutations(&base, 7, 50).collect();
        let b: Vec<_> = mutations(&base, 7, 50).collect();
        assert_eq!(a, b);
        assert!(a
            .iter()
            .all(|m| m.len() == 64 && m.iter().filter(|&&x| x != 0).count() <= 4));
        assert!(a.iter().any(|m| m != &base));
        assert_eq!(mutations(&[], 1, 3).count(), 3);
    }
}
