//! The generic cell rate algorithm on one number, a bucket's "theoretical arrival time"
//! (TAT, in nanoseconds since the limits' epoch), and a bounded map of such buckets.
//!
//! A TAT at or before now holds nothing: it behaves as an absent bucket, so a bucket that
//! has drained may be forgotten.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{Rate, RetryAfter};

/// Takes `cost` units if they fit within the burst; a refusal changes nothing.
pub(super) fn take(tat: &mut u64, rate: Rate, cost: u64, now: u64) -> Result<(), RetryAfter> {
    let new_tat = (*tat)
        .max(now)
        .saturating_add(rate.emission_ns().saturating_mul(cost));
    wait_until(new_tat.saturating_sub(rate.tolerance_ns()), now)?;
    *tat = new_tat;
    Ok(())
}

/// Whether one more unit would fit, without taking it.
pub(super) fn peek(tat: u64, rate: Rate, now: u64) -> Result<(), RetryAfter> {
    let allowed_at = tat
        .max(now)
        .saturating_add(rate.emission_ns())
        .saturating_sub(rate.tolerance_ns());
    wait_until(allowed_at, now)
}

/// Whether the bucket is not in debt (a quota charged after the fact).
pub(super) fn solvent(tat: u64, rate: Rate, now: u64) -> Result<(), RetryAfter> {
    wait_until(tat.saturating_sub(rate.tolerance_ns()), now)
}

/// Charges `cost` units whether or not they fit (the bucket may go into debt).
pub(super) fn charge(tat: &mut u64, rate: Rate, cost: u64, now: u64) {
    *tat = (*tat)
        .max(now)
        .saturating_add(rate.emission_ns().saturating_mul(cost));
}

fn wait_until(allowed_at: u64, now: u64) -> Result<(), RetryAfter> {
    if allowed_at > now {
        return Err(RetryAfter(Duration::from_nanos(allowed_at - now)));
    }
    Ok(())
}

/// One bucket per key, at most `max_keys` of them: drained buckets are swept when the
/// map is full, and a new key that still finds no room is refused.
pub(super) struct Buckets<K> {
    tat: Mutex<HashMap<K, u64>>,
    max_keys: usize,
}

// Keys are looked up borrowed (`&str` for `String` keys): a key is copied only when it
// first enters the map.
impl<K: std::hash::Hash + Eq> Buckets<K> {
    pub(super) fn new(max_keys: usize) -> Buckets<K> {
        Buckets {
            tat: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, u64>> {
        self.tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `cost` units from `key`'s bucket if they fit.
    pub(super) fn take<Q>(&self, key: &Q, rate: Rate, cost: u64, now: u64) -> Result<(), RetryAfter>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.map();
        if let Some(tat) = map.get_mut(key) {
            return take(tat, rate, cost, now);
        }
        if map.len() >= self.max_keys {
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.max_keys {
                return Err(RetryAfter(Duration::from_secs(1)));
            }
        }
        let mut tat = now;
        take(&mut tat, rate, cost, now)?;
        map.insert(key.to_owned(), tat);
        Ok(())
    }

    /// Whether one more unit would fit in `key`'s bucket, without taking it.
    pub(super) fn peek<Q>(&self, key: &Q, rate: Rate, now: u64) -> Result<(), RetryAfter>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        peek(self.map().get(key).copied().unwrap_or(now), rate, now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_then_one_per_interval() {
        let b = Buckets::new(16);
        let rate = Rate::new(60, 3).unwrap(); // one per second, three at once
        let k = "alice".to_string();
        for _ in 0..3 {
            b.take(&k, rate, 1, 10 * SEC).unwrap();
        }
        let RetryAfter(wait) = b.take(&k, rate, 1, 10 * SEC).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Half a second later: half a second more to wait.
        assert_eq!(
            b.take(&k, rate, 1, 10 * SEC + SEC / 2).unwrap_err().0,
            Duration::from_millis(500)
        );
        b.take(&k, rate, 1, 11 * SEC).unwrap();
        assert!(b.take(&k, rate, 1, 11 * SEC).is_err());
        assert!(b.peek(&k, rate, 11 * SEC).is_err());
        // After a long pause the whole burst is back, not more.
        b.peek(&k, rate, 100 * SEC).unwrap();
        for _ in 0..3 {
            b.take(&k, rate, 1, 100 * SEC).unwrap();
        }
        assert!(b.take(&k, rate, 1, 100 * SEC).is_err());
        // Another key has its own bucket.
        b.take(&"bob".to_string(), rate, 1, 100 * SEC).unwrap();
    }

    #[test]
    fn a_refused_take_costs_nothing() {
        let b = Buckets::new(16);
        let rate = Rate::new(60, 1).unwrap();
        let k = 1u8;
        b.take(&k, rate, 1, 0).unwrap();
        for _ in 0..100 {
            assert!(b.take(&k, rate, 1, SEC / 2).is_err());
        }
        b.take(&k, rate, 1, SEC).unwrap();
        // A cost larger than the burst never fits, and leaves no trace.
        let mut tat = 0;
        assert!(take(&mut tat, rate, 2, 0).is_err());
        assert_eq!(tat, 0);
    }

    #[test]
    fn a_quota_goes_into_debt_then_refuses_until_paid() {
        // 600 tokens a minute (10 a second), 100 at once.
        let rate = Rate::new(600, 100).unwrap();
        let mut tat = 0;
        solvent(tat, rate, 0).unwrap();
        charge(&mut tat, rate, 400, 0); // 300 over the burst: 30 s of debt
        let RetryAfter(wait) = solvent(tat, rate, 0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(solvent(tat, rate, 29 * SEC).is_err());
        solvent(tat, rate, 30 * SEC).unwrap();
        // A charge after a pause starts from now, not from the old TAT.
        charge(&mut tat, rate, 10, 100 * SEC);
        assert_eq!(tat, 101 * SEC);
    }

    #[test]
    fn a_full_map_sweeps_passed_entries_and_refuses_when_none_passed() {
        let b = Buckets::new(2);
        let rate = Rate::new(60, 1).unwrap();
        b.take(&1u32, rate, 1, 0).unwrap();
        b.take(&2u32, rate, 1, 0).unwrap();
        // Both still hold a second of TAT: no room for a third key.
        assert!(b.take(&3u32, rate, 1, SEC / 2).is_err());
        // Keys already there are unaffected.
        b.take(&1u32, rate, 1, SEC).unwrap();
        // Once key 2 has passed, it is swept and 3 fits.
        b.take(&3u32, rate, 1, 3 * SEC).unwrap();
        assert!(b.map().len() <= 2);
    }
}
