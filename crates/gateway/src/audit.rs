//! The ledger record of every request, written off the async runtime: requests hand their
//! record to a bounded queue, and one thread drains it into the ledger in group commits.
//! A whole answer waits for its record to be queued (for room, when the queue is full:
//! back-pressure, never a dropped record), or, with `durable_before_answer`, for it to be
//! durable. Once the ledger has failed, every request is answered 503 (fail closed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use ledger::record::Record;
use ledger::Ledger;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

/// Most records the queue holds before requests are refused.
pub const QUEUE: usize = 65_536;
/// Most records in one ledger commit.
const BATCH: usize = 4_096;
/// How long records may gather before a commit when no request waits for it: fewer,
/// larger commits, each one fsync and one checkpoint signature (at 10,000 requests a
/// second these were a third of the gateway's CPU when every few records made a commit).
/// It bounds what a crash can lose of records not waited on, with the commit's fsync. The
/// default of `[serve] ledger_commit_ms`: at 10 ms, each commit's fsync held up about one
/// request by a millisecond, a hundred a second, which was the p99 at one connection
/// (docs/PERFORMANCE.md, "Group commits every 50 ms").
pub const LINGER: Duration = Duration::from_millis(50);

/// Keyed digests (`hmac-sha256:<hex>`) of request and response bodies: whoever holds the
/// key can prove which payload a record names, nobody else can guess it. The same digests
/// as [`ledger::record::DigestKey`] gives, kept on the stack (two per request).
pub struct Digests {
    key: ring::hmac::Key,
    empty: DigestText,
}

impl Digests {
    pub fn new(secret: &[u8; 32]) -> Digests {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let empty = DigestText::of(ring::hmac::sign(&key, b"").as_ref());
        Digests { key, empty }
    }

    /// The digest of a whole body.
    pub fn digest(&self, body: &[u8]) -> DigestText {
        if body.is_empty() {
            return self.empty;
        }
        DigestText::of(ring::hmac::sign(&self.key, body).as_ref())
    }

    /// An incremental digest, for bodies streamed through (equal to [`Digests::digest`] of
    /// the concatenated chunks).
    pub fn stream(&self) -> StreamDigest {
        StreamDigest(ring::hmac::Context::with_key(&self.key))
    }
}

const DIGEST_PREFIX: &str = "hmac-sha256:";
const DIGEST_LEN: usize = DIGEST_PREFIX.len() + 64;

/// `hmac-sha256:<64 hex digits>`, without a heap allocation.
#[derive(Clone, Copy)]
pub struct DigestText([u8; DIGEST_LEN]);

impl DigestText {
    fn of(tag: &[u8]) -> DigestText {
        let mut text = [0u8; DIGEST_LEN];
        text[..DIGEST_PREFIX.len()].copy_from_slice(DIGEST_PREFIX.as_bytes());
        // A SHA-256 tag is 32 bytes: its hex fills the rest exactly.
        let _ = hex::encode_to_slice(tag, &mut text[DIGEST_PREFIX.len()..]);
        DigestText(text)
    }

    pub fn as_str(&self) -> &str {
        // ASCII by construction.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

pub struct StreamDigest(ring::hmac::Context);

impl StreamDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> DigestText {
        DigestText::of(self.0.sign().as_ref())
    }
}

/// What the recorder writes: a record, or a draft of one (`ledger::Draft`).
pub trait Entry {
    fn encoded(&self) -> ledger::Result<Vec<u8>>;
}

impl Entry for Record {
    fn encoded(&self) -> ledger::Result<Vec<u8>> {
        self.encode()
    }
}

impl Entry for ledger::Draft<'_> {
    fn encoded(&self) -> ledger::Result<Vec<u8>> {
        self.encode()
    }
}

struct Job {
    entry: Vec<u8>,
    done: Option<oneshot::Sender<bool>>,
}

/// The queue into the ledger.
pub struct Recorder {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    healthy: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, woken by a request that waits for durability while records
    /// gather.
    writer: Thread,
}

impl Recorder {
    /// Starts the writer thread over an open ledger: records gather for up to `linger`
    /// ([`LINGER`]) before a commit, unless a request waits for one.
    pub fn start(ledger: Arc<Ledger>, queue: usize, linger: Duration) -> anyhow::Result<Recorder> {
        let (tx, mut rx) = mpsc::channel::<Job>(queue.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&healthy);
        let worker = std::thread::Builder::new()
            .name("serve-ledger".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let started = Instant::now();
                    let mut jobs = vec![first];
                    loop {
                        let mut closed = false;
                        while jobs.len() < BATCH {
                            match rx.try_recv() {
                                Ok(j) => jobs.push(j),
                                Err(e) => {
                                    closed = e == TryRecvError::Disconnected;
                                    break;
                                }
                            }
                        }
                        // A request waiting for durability is not kept waiting longer,
                        // nor is `stop`.
                        let waited_on = jobs.iter().any(|j| j.done.is_some());
                        let left = linger.saturating_sub(started.elapsed());
                        if jobs.len() >= BATCH || waited_on || closed || left.is_zero() {
                            break;
                        }
                        // One sleep, not a poll: every wake-up on a busy machine takes a
                        // core from a request. `record` unparks it.
                        std::thread::park_timeout(left);
                    }
                    let entries = jobs.iter_mut().map(|j| std::mem::take(&mut j.entry)).collect();
                    let ok = match ledger.append_all(entries) {
                        Ok(_) => true,
                        Err(e) => {
                            if flag.swap(false, Ordering::SeqCst) {
                                eprintln!("warden serve: the ledger cannot record ({e}); refusing inference (fail closed)");
                            }
                            false
                        }
                    };
                    for j in jobs {
                        if let Some(done) = j.done {
                            let _ = done.send(ok);
                        }
                    }
                }
            })?;
        Ok(Recorder {
            tx: Mutex::new(Some(tx)),
            healthy,
            writer: worker.thread().clone(),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Whether records are still being made durable.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        match self.tx.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The record encoded and the queue to put it in; `None` when it cannot be recorded
    /// (invalid, the ledger failed, or the recorder stopped).
    fn prepare(&self, record: &impl Entry) -> Option<(Vec<u8>, mpsc::Sender<Job>)> {
        let entry = match record.encoded() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warden serve: a request record is invalid ({e})");
                return None;
            }
        };
        let tx = self.sender()?;
        self.healthy().then_some((entry, tx))
    }

    /// Records and waits until the record is durable (waiting for room in the queue
    /// first, when it is full); false if it cannot be.
    pub async fn record(&self, record: &impl Entry) -> bool {
        let Some((entry, tx)) = self.prepare(record) else {
            return false;
        };
        let (done, wait) = oneshot::channel();
        if tx
            .send(Job {
                entry,
                done: Some(done),
            })
            .await
            .is_err()
        {
            return false;
        }
        self.writer.unpark();
        wait.await.unwrap_or(false)
    }

    /// Queues a record, waiting for room when the queue is full (back-pressure on the
    /// requests, never a lost record); false when the ledger has failed or is closed.
    /// The record becomes durable in the writer's next group commit.
    pub async fn queue(&self, record: &impl Entry) -> bool {
        match self.prepare(record) {
            Some((entry, tx)) => tx.send(Job { entry, done: None }).await.is_ok(),
            None => false,
        }
    }

    /// Records without waiting (the end of a stream, whose response is already out). A
    /// record that cannot be queued stops the gateway taking requests.
    pub fn record_later(&self, record: &impl Entry) {
        let queued = self
            .prepare(record)
            .is_some_and(|(entry, tx)| tx.try_send(Job { entry, done: None }).is_ok());
        if !queued && self.healthy.swap(false, Ordering::SeqCst) {
            eprintln!("warden serve: the ledger's queue is full or closed; refusing inference (fail closed)");
        }
    }

    /// Stops taking records, writes those queued, and stops the thread.
    pub fn stop(&self) {
        match self.tx.lock() {
            Ok(mut g) => drop(g.take()),
            Err(p) => drop(p.into_inner().take()),
        }
        self.writer.unpark();
        let worker = match self.worker.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(w) = worker {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_streamed_digest_equals_the_whole_body_digest() {
        let d = Digests::new(&[7u8; 32]);
        let mut s = d.stream();
        s.update(b"data: {\"a\":1}\n\n");
        s.update(b"data: [DONE]\n\n");
        assert_eq!(
            s.finish().as_str(),
            d.digest(b"data: {\"a\":1}\n\ndata: [DONE]\n\n").as_str()
        );
    }

    /// The same digests as the ledger's keyed digests, the empty body's included.
    #[test]
    fn digests_match_the_ledger_digest_key() {
        let secret = [9u8; 32];
        let d = Digests::new(&secret);
        let key = ledger::record::DigestKey::new(&secret);
        for body in [&b""[..], b"x", b"{\"model\":\"m\"}", &[0xffu8; 300]] {
            assert_eq!(d.digest(body).as_str(), key.digest(body));
        }
        assert_eq!(d.stream().finish().as_str(), key.digest(b""));
        assert_ne!(
            d.digest(b"x").as_str(),
            Digests::new(&[8u8; 32]).digest(b"x").as_str()
        );
    }

    fn new_ledger(dir: &std::path::Path) -> Arc<Ledger> {
        let (skey, vkey) = ledger::generate_key("test.example/audit").unwrap();
        Ledger::create(dir, &skey, &vkey).unwrap();
        Arc::new(Ledger::open(dir, &skey, ledger::Options::default()).unwrap())
    }

    /// Records gather for an hour, but a request that waits for durability wakes the
    /// writer: its record, and those queued before it, are committed at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_waiting_for_durability_does_not_wait_out_the_linger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = new_ledger(dir.path());
        let hour = Duration::from_secs(3600);
        let recorder = Recorder::start(Arc::clone(&ledger), 16, hour).unwrap();
        assert!(recorder.queue(&Record::new("inference.request", "a")).await);
        // Let the writer take the first record and begin to linger.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(ledger.checkpoint().size, 0, "still gathering");
        let b = Record::new("inference.request", "b");
        let waited = recorder.record(&b);
        let durable = tokio::time::timeout(Duration::from_secs(60), waited).await;
        assert_eq!(durable, Ok(true), "committed long before the linger ends");
        assert_eq!(ledger.checkpoint().size, 2);
        recorder.stop();
    }

    /// Stopping while records gather for an hour commits them at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_commits_the_gathered_records_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = new_ledger(dir.path());
        let recorder =
            Arc::new(Recorder::start(Arc::clone(&ledger), 16, Duration::from_secs(3600)).unwrap());
        for actor in ["a", "b", "c"] {
            assert!(
                recorder
                    .queue(&Record::new("inference.request", actor))
                    .await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // On a thread of its own: a regression leaves it behind, not the test hanging.
        let (done, stopped) = std::sync::mpsc::channel();
        let stopping = Arc::clone(&recorder);
        std::thread::spawn(move || {
            stopping.stop();
            let _ = done.send(());
        });
        stopped
            .recv_timeout(Duration::from_secs(60))
            .expect("stopped long before the linger ends");
        assert_eq!(ledger.checkpoint().size, 3);
    }

    /// A queue of one, and 200 requests queueing at once: each waits for room, none is
    /// dropped, and every record is in the ledger once the recorder stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_holds_requests_back_and_loses_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = new_ledger(dir.path());
        let recorder = Arc::new(Recorder::start(Arc::clone(&ledger), 1, LINGER).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    let r = Record::new("inference.request", "app").attr("n", &i.to_string());
                    recorder.queue(&r).await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap(), "queued");
        }
        recorder.stop();
        assert!(recorder.healthy());
        assert_eq!(ledger.checkpoint().size, 200);
        // Once stopped, nothing more is taken.
        assert!(
            !recorder
                .queue(&Record::new("inference.request", "app"))
                .await
        );
    }
}
