//! Per-thread shards of state that every request writes (counters, caches): each thread
//! works in its own shard, on cache lines of its own, so that event loops on different
//! cores do not pass the same lines back and forth on every request (two event loops cost
//! the gateway more CPU per request than one, where two nginx workers cost no more than
//! one: docs/PERFORMANCE.md). Readers of the whole go over every shard.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// More shards than event loops on most machines; threads past that share them, which is
/// still correct (each shard guards its own state) but contended again.
pub const SHARDS: usize = 16;

/// A value per shard.
pub struct Sharded<T> {
    shards: Box<[Padded<T>]>,
}

/// One shard, aligned to (a pair of) cache lines so that neighbours never share one.
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> Default for Sharded<T> {
    fn default() -> Sharded<T> {
        Sharded {
            shards: (0..SHARDS).map(|_| Padded(T::default())).collect(),
        }
    }
}

impl<T> Sharded<T> {
    /// The calling thread's shard.
    pub fn local(&self) -> &T {
        &self.shards[index()].0
    }

    /// Every shard.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|p| &p.0)
    }
}

/// The calling thread's shard number: threads are numbered in the order they first ask.
fn index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// A value replaced whole now and then (the policies, the registry's snapshot) and read by
/// every request. Each thread keeps a reference to the version it last read, and checks
/// only a counter of replacements that is written when the value is: a read takes neither
/// the shared lock nor the shared reference count. A thread keeps the version it last read
/// alive until it reads again.
pub struct Swapped<T> {
    current: RwLock<Arc<T>>,
    /// Counts the replacements (made under `current`'s write lock).
    generation: AtomicU64,
    seen: Sharded<Mutex<Option<Seen<T>>>>,
}

/// A version of the value and its generation.
type Seen<T> = (u64, Arc<T>);

impl<T> Swapped<T> {
    pub fn new(value: Arc<T>) -> Swapped<T> {
        Swapped {
            current: RwLock::new(value),
            generation: AtomicU64::new(0),
            seen: Sharded::default(),
        }
    }

    /// Puts `value` in place for the reads that start from now on.
    pub fn set(&self, value: Arc<T>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = value;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// A reference to the value now (for the few readers that keep it).
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the value now, from this thread's reference to it. `f` must not read
    /// this value again (the thread's shard is held while it runs).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        let mut seen = self.seen.local().lock().unwrap_or_else(|p| p.into_inner());
        match &*seen {
            Some((g, value)) if *g == generation => f(value),
            _ => {
                let (generation, value) = {
                    let current = self.current.read().unwrap_or_else(|p| p.into_inner());
                    // Read under the lock, which every replacement holds while it counts.
                    let generation = self.generation.load(Ordering::Acquire);
                    (generation, Arc::clone(&current))
                };
                let result = f(&value);
                *seen = Some((generation, value));
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    #[test]
    fn threads_get_shards_of_their_own_until_there_are_more_threads_than_shards() {
        let counts = Arc::new(Sharded::<AtomicU64>::default());
        let threads: Vec<_> = (0..SHARDS)
            .map(|_| {
                let counts = Arc::clone(&counts);
                std::thread::spawn(move || {
                    counts.local().fetch_add(1, Ordering::Relaxed);
                    // The same shard every time on one thread.
                    let first: *const AtomicU64 = counts.local();
                    assert!(std::ptr::eq(first, counts.local()));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, SHARDS as u64);
        // Threads are numbered in turn: SHARDS new threads in a row cover every shard
        // once, unless other tests' threads took numbers meanwhile.
        assert!(
            counts
                .iter()
                .filter(|c| c.load(Ordering::Relaxed) > 0)
                .count()
                > 1
        );
    }

    #[test]
    fn a_replaced_value_is_read_from_then_on_by_every_thread() {
        let v = Arc::new(Swapped::new(Arc::new(1)));
        assert_eq!(v.with(|n| *n), 1);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let v = Arc::clone(&v);
            std::thread::spawn(move || {
                // Read once, so that this thread holds the first version.
                let first = v.with(|n| *n);
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                (first, v.with(|n| *n))
            })
        };
        ready.recv().unwrap();
        v.set(Arc::new(2));
        assert_eq!(v.with(|n| *n), 2);
        assert_eq!(*v.get(), 2);
        go.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), (1, 2));
    }

    #[test]
    fn shards_do_not_share_cache_lines() {
        let s = Sharded::<u8>::default();
        let addresses: Vec<usize> = s.iter().map(|v| v as *const u8 as usize).collect();
        for pair in addresses.windows(2) {
            assert!(pair[1] - pair[0] >= 128);
        }
    }
}
