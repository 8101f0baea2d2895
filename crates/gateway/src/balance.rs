//! Spreads connections over the event loops by how many each one holds.
//!
//! Every loop accepts from the same socket, and whichever is awake first takes what is
//! waiting: a burst of new connections can land mostly on one loop, and a keep-alive
//! connection stays where it landed. One loop then holds most of the work while the other
//! idles, and on a machine whose cores are shared with other processes the busy loop's
//! thread is what limits the whole server. So a loop that accepts a connection while it
//! holds more than its share hands it to the loop holding fewest, before the TLS
//! handshake; a connection moves once in its life, never a request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// How many connections more than the least-loaded loop a loop may come to hold by keeping
/// one it accepted; past that it hands the connection over.
const SLACK: usize = 1;

/// How many connections each event loop holds now (also read by the metrics).
pub type OpenConnections = Arc<[AtomicUsize]>;

/// Counts of zero for `loops` event loops.
pub fn open_connections(loops: usize) -> OpenConnections {
    (0..loops).map(|_| AtomicUsize::new(0)).collect()
}

/// The live connection count of every loop, and the way into each loop's queue of
/// connections handed to it.
pub struct Lanes<T> {
    live: OpenConnections,
    queues: Box<[mpsc::UnboundedSender<T>]>,
}

impl<T> Lanes<T> {
    /// Lanes over the loops `live` counts, and each loop's end of its queue.
    pub fn new(live: OpenConnections) -> (Arc<Lanes<T>>, Vec<mpsc::UnboundedReceiver<T>>) {
        let (queues, receivers): (Vec<_>, Vec<_>) =
            live.iter().map(|_| mpsc::unbounded_channel()).unzip();
        let lanes = Lanes {
            live,
            queues: queues.into_boxed_slice(),
        };
        (Arc::new(lanes), receivers)
    }

    /// The loop that takes a connection `own` just accepted: `own` unless keeping it would
    /// put `own` more than `SLACK` connections over the least-loaded loop, which then
    /// takes it. The connection is counted there at once, so that loops deciding at the
    /// same moment see each other's choices; the [`Live`] guard uncounts it.
    pub fn assign(self: &Arc<Self>, own: usize) -> Live<T> {
        let mine = self.live[own].load(Ordering::Relaxed);
        let (least, fewest) = self
            .live
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|&(_, n)| n)
            .unwrap_or((own, mine));
        let lane = if mine + 1 > fewest + SLACK {
            least
        } else {
            own
        };
        self.live[lane].fetch_add(1, Ordering::Relaxed);
        Live {
            lanes: Arc::clone(self),
            lane,
        }
    }

    /// Puts `item` in `lane`'s queue; gives it back when that loop has stopped.
    pub fn hand_over(&self, lane: usize, item: T) -> Result<(), T> {
        self.queues[lane].send(item).map_err(|e| e.0)
    }

    /// How many connections `lane` holds now.
    #[cfg(test)]
    fn live(&self, lane: usize) -> usize {
        self.live[lane].load(Ordering::Relaxed)
    }
}

/// A connection counted on a loop, uncounted when dropped.
pub struct Live<T> {
    lanes: Arc<Lanes<T>>,
    lane: usize,
}

impl<T> Live<T> {
    /// The loop the connection belongs to.
    pub fn lane(&self) -> usize {
        self.lane
    }
}

impl<T> Drop for Live<T> {
    fn drop(&mut self) {
        self.lanes.live[self.lane].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_on_one_loop_is_spread_evenly() {
        let (lanes, _rx) = Lanes::<()>::new(open_connections(2));
        let held: Vec<_> = (0..64).map(|_| lanes.assign(0)).collect();
        assert_eq!(lanes.live(0) + lanes.live(1), 64);
        assert_eq!((lanes.live(0), lanes.live(1)), (32, 32));
        let moved = held.iter().filter(|l| l.lane() == 1).count();
        assert_eq!(moved, lanes.live(1));
    }

    #[test]
    fn a_loop_within_the_slack_keeps_its_connection() {
        let (lanes, _rx) = Lanes::<()>::new(open_connections(3));
        let first = lanes.assign(2);
        assert_eq!(first.lane(), 2, "one over the others is within the slack");
        let second = lanes.assign(2);
        assert_ne!(second.lane(), 2, "two over is not");
        assert_eq!(
            lanes.assign(1).lane(),
            1,
            "a loop at the least keeps its own"
        );
        assert_eq!(lanes.live(2), 1);
    }

    #[test]
    fn closed_connections_are_uncounted() {
        let (lanes, _rx) = Lanes::<()>::new(open_connections(2));
        let held: Vec<_> = (0..10).map(|_| lanes.assign(1)).collect();
        drop(held);
        assert_eq!((lanes.live(0), lanes.live(1)), (0, 0));
        // With both empty again, a loop keeps what it accepts.
        assert_eq!(lanes.assign(1).lane(), 1);
    }

    #[test]
    fn a_stopped_loop_gives_the_connection_back() {
        let (lanes, mut rx) = Lanes::new(open_connections(2));
        assert_eq!(lanes.hand_over(1, 7), Ok(()));
        assert_eq!(rx[1].try_recv().ok(), Some(7));
        drop(rx);
        assert_eq!(lanes.hand_over(1, 8), Err(8));
    }
}
