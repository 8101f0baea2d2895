//! The ledger writer. Appenders hash their entries, queue them and wait; one thread, the
//! committer, owns the journal: it takes everything queued, appends it as one frame, calls
//! `fdatasync`, and wakes every appender of that group commit at once through one condition
//! variable. Everything queued while a sync is in flight goes into the next group commit,
//! so throughput grows with the number of writers while each append still waits for its
//! own data to be durable. A second thread, the publisher, writes the tiles that filled and
//! publishes the partial tiles and the checkpoint, so the committer's next sync does not
//! wait for them.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::checkpoint::{self, LogKey, SignedCheckpoint};
use crate::error::{Error, Result};
use crate::fsio;
use crate::hash::{leaf_hash, Hash};
use crate::journal::{self, Base, Commit, Frame, Tail};
use crate::layout;
use crate::tiles::{self, TileId, TileKind, MAX_ENTRY_LEN, TILE_WIDTH};
use crate::tree::{FullTile, TreeState};

/// Tuning of the writer. The defaults suit a gateway; tests shrink them.
#[derive(Clone, Debug)]
pub struct Options {
    /// Appends (calls) that may wait in the queue; beyond it `append` blocks and
    /// `try_append` returns [`Error::Busy`] (back-pressure).
    pub queue: usize,
    /// Most entries in one group commit.
    pub max_batch: usize,
    /// Rewrite the journal, small, once it grows past this many bytes.
    pub rotate_bytes: u64,
    /// Publish the partial tiles and the checkpoint at most this often (and on close).
    /// Every publication replaces files, and on ext4 each file deleted makes the next
    /// files created (the full tiles) slower for a while: at 100 ms, a gateway serving
    /// 25,000 requests a second spent 5% of its CPU creating tile files.
    pub publish_interval: Duration,
    /// Zero-filled bytes kept ahead of the journal's end, written and synced once (at most
    /// `max(rotate_bytes, 1 MiB)`; 0 turns it off). A commit then overwrites blocks the file
    /// already has, and its `fdatasync` writes only data, not the file's new size and
    /// block map.
    pub reserve_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue: 65_536,
            max_batch: 8_192,
            rotate_bytes: 64 << 20,
            publish_interval: Duration::from_secs(1),
            reserve_bytes: 4 << 20,
        }
    }
}

/// Proof of a durable append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's index (0-based).
    pub index: u64,
    /// RFC 6962 leaf hash of the entry.
    pub leaf_hash: Hash,
    /// Size of the first signed checkpoint that includes it.
    pub tree_size: u64,
}

/// Most entries one [`Ledger::append_all`] call takes.
pub const MAX_BATCH_CALL: usize = 65_536;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What became of the entries with tickets `start..end` (one group commit, or the entries
/// failed when the writer stopped). A ticket numbers an entry in the order it was queued.
struct Outcome {
    start: u64,
    end: u64,
    /// Index of the entry with ticket `start`.
    first_index: u64,
    tree_size: u64,
    error: Option<String>,
    /// Calls that have not yet collected their receipts.
    waiting: usize,
}

/// The queue between appenders and the committer, and the outcomes of the commits.
#[derive(Default)]
struct Queue {
    /// Queued entries and their leaf hashes (computed by the appenders).
    entries: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
    /// The end ticket of each queued call.
    calls: VecDeque<u64>,
    /// Ticket of the next entry queued.
    next_ticket: u64,
    /// Every ticket below this has an outcome.
    decided: u64,
    /// Group commits taken by the committer, and the end ticket of the last one.
    taken: u64,
    taken_end: u64,
    outcomes: VecDeque<Outcome>,
    publish_waiters: Vec<SyncSender<Result<()>>>,
    /// Whether the committer sleeps on `work`, and how many appenders on `room`.
    committer_idle: bool,
    room_waiters: usize,
    closing: bool,
    /// Why the writer stopped (it takes no more appends).
    stopped: Option<String>,
    /// Why the publisher failed; the committer stops on it.
    publisher_failed: Option<String>,
}

impl Queue {
    /// Records an outcome for the tickets up to `end` and wakes their appenders.
    fn decide(
        &mut self,
        end: u64,
        calls: usize,
        first_index: u64,
        tree_size: u64,
        error: Option<String>,
    ) {
        self.outcomes.push_back(Outcome {
            start: self.decided,
            end,
            first_index,
            tree_size,
            error,
            waiting: calls,
        });
        self.decided = end;
    }

    /// The receipts (or the error) of the call with tickets `start..start+leaves.len()`.
    fn collect(&mut self, start: u64, leaves: &[Hash]) -> Result<Vec<Receipt>> {
        let at = self.outcomes.partition_point(|o| o.end <= start);
        let Some(outcome) = self.outcomes.get_mut(at) else {
            return Err(Error::Stopped("no outcome for an append".into()));
        };
        outcome.waiting = outcome.waiting.saturating_sub(1);
        let result = match &outcome.error {
            Some(e) => Err(Error::Stopped(e.clone())),
            None => {
                let first = outcome.first_index + (start - outcome.start);
                Ok(leaves
                    .iter()
                    .zip(first..)
                    .map(|(&leaf_hash, index)| Receipt {
                        index,
                        leaf_hash,
                        tree_size: outcome.tree_size,
                    })
                    .collect())
            }
        };
        while self.outcomes.front().is_some_and(|o| o.waiting == 0) {
            self.outcomes.pop_front();
        }
        result
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// The committer waits here for work.
    work: Condvar,
    /// Appenders wait here for their commit: on `done[n % 2]` for group commit number `n`,
    /// so that waking one commit's appenders leaves the next one's asleep.
    done: [Condvar; 2],
    /// Appenders wait here for room in the queue.
    room: Condvar,
    checkpoint: Mutex<SignedCheckpoint>,
}

/// An open ledger with its writer threads.
pub struct Ledger {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    queue_limit: usize,
    dir: PathBuf,
}

impl Ledger {
    /// Creates an empty ledger in `dir`, signed by the key `skey` whose verifier key is
    /// `vkey`.
    pub fn create(dir: &Path, skey: &str, vkey: &str) -> Result<()> {
        if dir.join(layout::JOURNAL).exists() {
            return Err(Error::AlreadyExists(dir.to_path_buf()));
        }
        let key = LogKey::new(skey, vkey)?;
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        fsio::write_atomic(
            &dir.join(layout::VKEY),
            format!("{vkey}\n").as_bytes(),
            true,
        )?;
        let state = TreeState::new();
        let cp = key.sign(0, &state.root())?;
        let base = Frame::Base(Base {
            size: 0,
            levels: Vec::new(),
            entries: Vec::new(),
            checkpoint: cp.note.clone(),
        });
        fsio::write_atomic(&dir.join(layout::JOURNAL), &journal::encode(&base), true)?;
        fsio::write_atomic(&dir.join(layout::CHECKPOINT), &cp.note, true)
    }

    /// Opens the ledger in `dir` for writing: takes its lock, recovers from the journal
    /// (dropping a commit cut off by a crash, which was never acknowledged), republishes
    /// the tiles, and starts the writer.
    pub fn open(dir: &Path, skey: &str, options: Options) -> Result<Ledger> {
        let (writer, publisher) = Writer::recover(dir, skey, options.clone())?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: [Condvar::new(), Condvar::new()],
            room: Condvar::new(),
            checkpoint: Mutex::new(writer.checkpoint.clone()),
        });
        let thread_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(publisher, &thread_shared))
            .map_err(Error::io(dir))?;
        Ok(Ledger {
            shared,
            worker: Some(worker),
            queue_limit: options.queue.max(1),
            dir: dir.to_path_buf(),
        })
    }

    /// The ledger directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one entry and returns once it is durable. Blocks while the queue is full.
    pub fn append(&self, entry: Vec<u8>) -> Result<Receipt> {
        one(self.submit(vec![entry], false)?)
    }

    /// Appends a record (in its canonical form) and returns once it is durable.
    pub fn append_record(&self, record: &crate::record::Record) -> Result<Receipt> {
        self.append(record.encode()?)
    }

    /// Like [`Ledger::append`], but returns [`Error::Busy`] instead of waiting for room in
    /// the queue.
    pub fn try_append(&self, entry: Vec<u8>) -> Result<Receipt> {
        one(self.submit(vec![entry], true)?)
    }

    /// Appends several entries in order, in one commit, and returns their receipts once
    /// they are durable (for imports; at most [`MAX_BATCH_CALL`] entries a call).
    pub fn append_all(&self, entries: Vec<Vec<u8>>) -> Result<Vec<Receipt>> {
        if entries.len() > MAX_BATCH_CALL {
            return Err(Error::Record(format!(
                "{} entries in one call; at most {MAX_BATCH_CALL}",
                entries.len()
            )));
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(entries, false)
    }

    fn submit(&self, entries: Vec<Vec<u8>>, no_wait: bool) -> Result<Vec<Receipt>> {
        if let Some(big) = entries.iter().find(|e| e.len() > MAX_ENTRY_LEN) {
            return Err(Error::EntryTooLarge(big.len()));
        }
        // Hashing here spreads it over the appenders' threads.
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let shared = &*self.shared;
        let mut q = lock(&shared.queue);
        loop {
            if let Some(reason) = &q.stopped {
                return Err(Error::Stopped(reason.clone()));
            }
            if q.closing {
                return Err(Error::Stopped("closed".into()));
            }
            if q.calls.len() < self.queue_limit {
                break;
            }
            if no_wait {
                return Err(Error::Busy);
            }
            q.room_waiters += 1;
            q = shared.room.wait(q).unwrap_or_else(PoisonError::into_inner);
            q.room_waiters -= 1;
        }
        let start = q.next_ticket;
        let end = start + entries.len() as u64;
        q.entries.extend(entries);
        q.leaves.extend_from_slice(&leaves);
        q.next_ticket = end;
        q.calls.push_back(end);
        if q.committer_idle {
            q.committer_idle = false;
            shared.work.notify_one();
        }
        while q.decided < end {
            // The commit taken last, if it holds these entries, or else the next one.
            let commit = if end <= q.taken_end {
                q.taken
            } else {
                q.taken + 1
            };
            q = shared.done[(commit % 2) as usize]
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
        q.collect(start, &leaves)
    }

    /// Publishes the partial tiles and checkpoint now.
    pub fn publish(&self) -> Result<()> {
        let (reply, wait) = mpsc::sync_channel(1);
        {
            let mut q = lock(&self.shared.queue);
            if let Some(reason) = &q.stopped {
                return Err(Error::Stopped(reason.clone()));
            }
            q.publish_waiters.push(reply);
            if q.committer_idle {
                q.committer_idle = false;
                self.shared.work.notify_one();
            }
        }
        wait.recv().map_err(|_| self.stopped())?
    }

    /// The latest signed checkpoint (every acknowledged entry is under it).
    pub fn checkpoint(&self) -> SignedCheckpoint {
        lock(&self.shared.checkpoint).clone()
    }

    fn stopped(&self) -> Error {
        let reason = lock(&self.shared.queue).stopped.clone();
        Error::Stopped(reason.unwrap_or_else(|| "closed".into()))
    }

    /// Publishes everything and stops the writer.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        {
            let mut q = lock(&self.shared.queue);
            q.closing = true;
            self.shared.work.notify_one();
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        match lock(&self.shared.queue).stopped.clone() {
            Some(reason) => Err(Error::Stopped(reason)),
            None => Ok(()),
        }
    }
}

fn one(mut receipts: Vec<Receipt>) -> Result<Receipt> {
    receipts
        .pop()
        .ok_or_else(|| Error::Stopped("no receipt".into()))
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The committer's state: the journal and the tree.
struct Writer {
    dir: PathBuf,
    key: LogKey,
    options: Options,
    journal: File,
    /// End of the last frame.
    journal_len: u64,
    /// Length of the file: the frames, then zeros reserved for the next ones.
    reserved_to: u64,
    /// No reserving again before the journal reaches this length (after a failure).
    reserve_after: u64,
    state: TreeState,
    /// Entries of the partial entry bundle.
    tail: Vec<Vec<u8>>,
    checkpoint: SignedCheckpoint,
    published_size: Option<u64>,
    last_publish: Instant,
    _lock: File,
}

/// Tiles that became full during a commit, to be written after the sync.
#[derive(Default)]
struct NewTiles {
    hashes: Vec<FullTile>,
    bundles: Vec<(u64, Vec<Vec<u8>>)>,
}

impl NewTiles {
    fn is_empty(&self) -> bool {
        self.hashes.is_empty() && self.bundles.is_empty()
    }
}

/// What a publication writes: the partial tiles of one tree size, then its checkpoint.
struct Snapshot {
    partials: Vec<(PathBuf, Vec<u8>)>,
    checkpoint: Vec<u8>,
}

/// Work for the publisher thread, done in order.
enum Job {
    Tiles(NewTiles),
    Publish(Snapshot, Vec<SyncSender<Result<()>>>),
    /// Make every tile written so far durable, then reply.
    Sync(SyncSender<Result<()>>),
}

/// A group commit taken from the queue.
struct Batch {
    /// Its number: the committer's `n`th.
    commit: u64,
    /// Tickets `start..end`, in `calls` calls.
    start: u64,
    end: u64,
    calls: usize,
    entries: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
}

impl Writer {
    fn recover(dir: &Path, skey: &str, options: Options) -> Result<(Writer, Publisher)> {
        let journal_path = dir.join(layout::JOURNAL);
        if !journal_path.exists() {
            return Err(Error::NotFound(dir.to_path_buf()));
        }
        let lock_path = dir.join(layout::LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(Error::Locked(dir.to_path_buf()));
        }
        let vkey_bytes = fsio::read_limited(&dir.join(layout::VKEY), 4096)?;
        let vkey = String::from_utf8_lossy(&vkey_bytes).trim().to_string();
        let key = LogKey::new(skey, &vkey)?;

        let data = fsio::read_limited(&journal_path, (options.rotate_bytes.max(1 << 20)) * 4)?;
        let parsed = journal::parse(&data)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", journal_path.display())))?;
        let mut frames = parsed.frames.into_iter();
        let Some((_, Frame::Base(base))) = frames.next() else {
            return Err(Error::Corrupt(format!(
                "{} does not start with a base frame",
                journal_path.display()
            )));
        };
        let (mut state, tail) = Self::check_base(&base, &vkey)?;
        // The published checkpoint is derived from the journal: it may lag it, but must
        // agree with it. One that does not is tampering, reported rather than replaced.
        let published = match fsio::read_optional(&dir.join(layout::CHECKPOINT), 64 * 1024)? {
            Some(note) if !note.is_empty() => Some(
                checkpoint::verify(&note, &vkey)
                    .map_err(|e| Error::Corrupt(format!("the published checkpoint: {e}")))?,
            ),
            _ => None,
        };
        let mut published_root = None;
        let mut note_root = |state: &TreeState| {
            if published.as_ref().is_some_and(|p| p.size == state.size()) {
                published_root = Some(state.root());
            }
        };
        note_root(&state);
        let mut writer_tail = tail;
        let mut new_tiles = NewTiles::default();
        let mut last_cp = base.checkpoint.clone();
        for (offset, frame) in frames {
            let Frame::Commit(commit) = frame else {
                return Err(Error::Corrupt(format!(
                    "journal frame at offset {offset} is a second base frame"
                )));
            };
            if commit.first != state.size() {
                return Err(Error::Corrupt(format!(
                    "journal frame at offset {offset} starts at entry {} but the tree has {}",
                    commit.first,
                    state.size()
                )));
            }
            for entry in commit.entries {
                add_entry(&mut state, &mut writer_tail, entry, &mut new_tiles)?;
                note_root(&state);
            }
            last_cp = commit.checkpoint;
        }
        let cp = checkpoint::verify(&last_cp, &vkey)
            .map_err(|e| Error::Corrupt(format!("journal's last checkpoint: {e}")))?;
        if cp.size != state.size() || cp.root != state.root() {
            return Err(Error::Corrupt(format!(
                "journal entries give a tree of {} entries that does not match its last signed checkpoint ({} entries)",
                state.size(),
                cp.size
            )));
        }

        let journal = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&journal_path)
            .map_err(Error::io(&journal_path))?;
        let mut journal_len = data.len() as u64;
        if let Tail::Torn(at) = parsed.tail {
            // A commit cut off by a crash: it was never acknowledged.
            journal.set_len(at).map_err(Error::io(&journal_path))?;
            journal.sync_all().map_err(Error::io(&journal_path))?;
            journal_len = at;
        }

        if let Some(p) = &published {
            if p.size > cp.size {
                return Err(Error::Corrupt(format!(
                    "the published checkpoint has {} entries but the journal only {}: acknowledged entries are missing from the journal",
                    p.size, cp.size
                )));
            }
            if published_root.is_some_and(|root| root != p.root) {
                return Err(Error::Corrupt(format!(
                    "the published checkpoint of {} entries has another root than the journal's tree of that size: a fork",
                    p.size
                )));
            }
            if p.size == cp.size {
                check_published_partials(dir, &state, &writer_tail)?;
            }
        }

        let mut writer = Writer {
            dir: dir.to_path_buf(),
            key,
            options,
            journal,
            journal_len,
            reserved_to: journal_len,
            reserve_after: 0,
            state,
            tail: writer_tail,
            checkpoint: cp,
            published_size: None,
            last_publish: Instant::now(),
            _lock: lock,
        };
        let mut publisher = Publisher {
            dir: dir.to_path_buf(),
            published: Vec::new(),
            unsynced: false,
        };
        publisher.write_tiles(new_tiles, true)?;
        publisher.publish(writer.snapshot()?)?;
        writer.published_size = Some(writer.state.size());
        Ok((writer, publisher))
    }

    /// Checks a base frame against itself and its checkpoint.
    fn check_base(base: &Base, vkey: &str) -> Result<(TreeState, Vec<Vec<u8>>)> {
        let bad = |why: &str| Error::Corrupt(format!("journal base frame: {why}"));
        let state = TreeState::from_parts(base.size, base.levels.clone())
            .ok_or_else(|| bad("its partial tiles do not fit its size"))?;
        if base.entries.len() as u64 != base.size % TILE_WIDTH {
            return Err(bad("its pending entries do not fit its size"));
        }
        let leaves: Vec<Hash> = base.entries.iter().map(|e| leaf_hash(e)).collect();
        if state.levels().first().map_or(&[][..], Vec::as_slice) != leaves.as_slice() {
            return Err(bad("its pending entries do not match its leaf hashes"));
        }
        let cp = checkpoint::verify(&base.checkpoint, vkey)
            .map_err(|e| bad(&format!("checkpoint: {e}")))?;
        if cp.size != state.size() || cp.root != state.root() {
            return Err(bad("its checkpoint does not match its tree"));
        }
        Ok((state, base.entries.clone()))
    }

    fn run(mut self, publisher: Publisher, shared: &Arc<Shared>) {
        /// Should this thread die, no appender is left waiting.
        struct Guard<'a>(&'a Shared);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    fail_all(self.0, "the ledger writer failed".into());
                }
            }
        }
        let _guard = Guard(shared);
        let (jobs, rx) = mpsc::channel();
        let publisher_shared = Arc::clone(shared);
        let publisher_thread = std::thread::Builder::new()
            .name("ledger-publisher".into())
            .spawn(move || publisher.run(&rx, &publisher_shared));
        let result = match &publisher_thread {
            Ok(_) => self.serve(&jobs, shared).and_then(|()| {
                // A clean close leaves no reserved zeros behind.
                let _ = self.journal.set_len(self.journal_len);
                self.publish_and_wait(&jobs)
            }),
            Err(e) => Err(Error::Stopped(format!("starting the publisher: {e}"))),
        };
        // The publisher ends once it has done every job sent.
        drop(jobs);
        if let Ok(handle) = publisher_thread {
            let _ = handle.join();
        }
        let publisher_failed = lock(&shared.queue).publisher_failed.clone();
        if let Some(reason) = result.err().map(|e| e.to_string()).or(publisher_failed) {
            fail_all(shared, reason);
        }
    }

    /// Takes the next group commit (and the publications asked for) from the queue,
    /// waiting for work; `None` once the ledger closes with nothing queued.
    #[allow(clippy::type_complexity)]
    fn next_batch(
        &mut self,
        shared: &Shared,
    ) -> Result<Option<(Option<Batch>, Vec<SyncSender<Result<()>>>)>> {
        let mut q = lock(&shared.queue);
        loop {
            if let Some(e) = &q.publisher_failed {
                return Err(Error::Stopped(e.clone()));
            }
            if !q.calls.is_empty() || !q.publish_waiters.is_empty() {
                break;
            }
            if q.closing {
                return Ok(None);
            }
            let unpublished = self.published_size != Some(self.state.size());
            let wait = if unpublished {
                let due = self.options.publish_interval;
                match due.checked_sub(self.last_publish.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(Some((None, Vec::new()))),
                }
            } else {
                self.options
                    .publish_interval
                    .max(Duration::from_millis(100))
            };
            q.committer_idle = true;
            q = shared
                .work
                .wait_timeout(q, wait)
                .map(|(q, _)| q)
                .unwrap_or_else(|p| p.into_inner().0);
            q.committer_idle = false;
        }
        let waiters = std::mem::take(&mut q.publish_waiters);
        if q.calls.is_empty() {
            return Ok(Some((None, waiters)));
        }
        // Whole calls, until the batch reaches `max_batch` entries.
        let start = q.next_ticket - q.entries.len() as u64;
        let limit = start.saturating_add(self.options.max_batch.max(1) as u64);
        let mut calls = 0;
        let mut end = start;
        while let Some(&call_end) = q.calls.front() {
            if calls > 0 && end >= limit {
                break;
            }
            end = call_end;
            calls += 1;
            q.calls.pop_front();
        }
        q.taken += 1;
        q.taken_end = end;
        let commit = q.taken;
        let n = (end - start) as usize;
        let (entries, leaves) = if n == q.entries.len() {
            (
                std::mem::take(&mut q.entries),
                std::mem::take(&mut q.leaves),
            )
        } else {
            (
                q.entries.drain(..n).collect(),
                q.leaves.drain(..n).collect(),
            )
        };
        if q.room_waiters > 0 {
            shared.room.notify_all();
        }
        Ok(Some((
            Some(Batch {
                commit,
                start,
                end,
                calls,
                entries,
                leaves,
            }),
            waiters,
        )))
    }

    fn serve(&mut self, jobs: &Sender<Job>, shared: &Shared) -> Result<()> {
        while let Some((batch, publish_waiters)) = self.next_batch(shared)? {
            if let Some(batch) = batch {
                self.commit(batch, jobs, shared)?;
            }
            let due = self.last_publish.elapsed() >= self.options.publish_interval;
            if !publish_waiters.is_empty()
                || (due && self.published_size != Some(self.state.size()))
            {
                self.send_publish(jobs, publish_waiters)?;
            }
            if self.journal_len >= self.options.rotate_bytes {
                self.rotate(jobs)?;
            }
            self.reserve_ahead();
        }
        Ok(())
    }

    /// One group commit: journal frame, sync, wake the appenders, then hand the tiles that
    /// filled to the publisher.
    fn commit(&mut self, batch: Batch, jobs: &Sender<Job>, shared: &Shared) -> Result<()> {
        // The tree moves first (to sign its new root); the pending bundle only once the
        // commit is durable, so a failed commit restores the tree alone.
        let saved_state = self.state.clone();
        let first = self.state.size();
        let mut new_tiles = NewTiles::default();
        for leaf in &batch.leaves {
            self.state.push(*leaf, |full| new_tiles.hashes.push(full));
        }
        let mut commit = Commit {
            first,
            entries: batch.entries,
            checkpoint: Vec::new(),
        };
        let outcome = self
            .key
            .sign(self.state.size(), &self.state.root())
            .and_then(|cp| {
                commit.checkpoint.clone_from(&cp.note);
                self.append_frame(&journal::encode_commit(&commit))?;
                Ok(cp)
            });
        let cp = match outcome {
            Ok(cp) => cp,
            Err(e) => {
                // Nothing of this batch was acknowledged; undo it in memory and on disk.
                self.state = saved_state;
                {
                    let mut q = lock(&shared.queue);
                    q.decide(batch.end, batch.calls, 0, 0, Some(e.to_string()));
                    shared.done[(batch.commit % 2) as usize].notify_all();
                }
                let path = self.dir.join(layout::JOURNAL);
                self.reserved_to = self.journal_len;
                self.reserve_after = self.journal_len + self.reserve_bytes();
                self.journal
                    .set_len(self.journal_len)
                    .map_err(Error::io(&path))?;
                return Ok(());
            }
        };
        let size = cp.size;
        *lock(&shared.checkpoint) = cp.clone();
        self.checkpoint = cp;
        {
            let mut q = lock(&shared.queue);
            debug_assert_eq!(q.decided, batch.start);
            q.decide(batch.end, batch.calls, first, size, None);
            shared.done[(batch.commit % 2) as usize].notify_all();
        }
        // Durable: the entries now join the pending bundle.
        for (i, entry) in commit.entries.into_iter().enumerate() {
            push_tail(first + i as u64, &mut self.tail, entry, &mut new_tiles)?;
        }
        if !new_tiles.is_empty() {
            jobs.send(Job::Tiles(new_tiles))
                .map_err(|_| Error::Stopped("the publisher stopped".into()))?;
        }
        Ok(())
    }

    fn append_frame(&mut self, frame: &[u8]) -> Result<()> {
        let path = self.dir.join(layout::JOURNAL);
        let end = self.journal_len + frame.len() as u64;
        if end > self.reserved_to {
            self.reserve(end);
        }
        self.journal
            .write_all_at(frame, self.journal_len)
            .map_err(Error::io(&path))?;
        self.journal.sync_data().map_err(Error::io(&path))?;
        self.journal_len = end;
        self.reserved_to = self.reserved_to.max(end);
        Ok(())
    }

    /// Bytes to keep reserved ahead of the journal's end.
    fn reserve_bytes(&self) -> u64 {
        self.options
            .reserve_bytes
            .min(self.options.rotate_bytes.max(1 << 20))
    }

    /// Reserves zeros ahead once fewer than a quarter of the reserve remain.
    fn reserve_ahead(&mut self) {
        let want = self.reserve_bytes();
        if want > 0 && self.reserved_to.saturating_sub(self.journal_len) < want / 4 {
            self.reserve(self.journal_len);
        }
    }

    /// Zero-fills the journal from its reserved end to `reserve_bytes` past `at_least`, and
    /// syncs that once: later commits overwrite these zeros (recovery reads zeros after
    /// the last frame as a torn tail). Best effort: if it fails (a full disk), the
    /// reservation is undone and commits extend the file as they go.
    fn reserve(&mut self, at_least: u64) {
        let want = self.reserve_bytes();
        if want == 0 || self.journal_len < self.reserve_after {
            return;
        }
        let target = at_least.max(self.journal_len) + want;
        let zeros = [0u8; 64 << 10];
        let mut at = self.reserved_to.max(self.journal_len);
        let mut filled = Ok(());
        while at < target && filled.is_ok() {
            let n = (target - at).min(zeros.len() as u64) as usize;
            filled = self.journal.write_all_at(&zeros[..n], at);
            at += n as u64;
        }
        match filled.and_then(|()| self.journal.sync_data()) {
            Ok(()) => self.reserved_to = target,
            Err(_) => {
                // Only zeros past the last frame are dropped.
                let _ = self.journal.set_len(self.journal_len);
                self.reserved_to = self.journal_len;
                self.reserve_after = self.journal_len + want;
            }
        }
    }

    /// The partial tiles and checkpoint of the current size.
    fn snapshot(&self) -> Result<Snapshot> {
        let mut partials = Vec::new();
        for (id, hashes) in self.state.partial_tiles() {
            partials.push((layout::tile(&self.dir, &id), tiles::encode_hashes(hashes)));
        }
        if !self.tail.is_empty() {
            let id = TileId::for_entry(self.state.size() - 1, self.state.size());
            let mut bundle = Vec::new();
            for entry in &self.tail {
                tiles::push_entry(&mut bundle, entry)?;
            }
            partials.push((layout::tile(&self.dir, &id), bundle));
        }
        Ok(Snapshot {
            partials,
            checkpoint: self.checkpoint.note.clone(),
        })
    }

    fn send_publish(
        &mut self,
        jobs: &Sender<Job>,
        waiters: Vec<SyncSender<Result<()>>>,
    ) -> Result<()> {
        self.last_publish = Instant::now();
        let snapshot = self.snapshot()?;
        self.published_size = Some(self.state.size());
        jobs.send(Job::Publish(snapshot, waiters))
            .map_err(|_| Error::Stopped("the publisher stopped".into()))
    }

    /// Publishes the current size and waits until it is done (on close).
    fn publish_and_wait(&mut self, jobs: &Sender<Job>) -> Result<()> {
        let (reply, wait) = mpsc::sync_channel(1);
        self.send_publish(jobs, vec![reply])?;
        wait.recv()
            .map_err(|_| Error::Stopped("the publisher stopped".into()))?
    }

    /// Makes the full tiles durable, then replaces the journal by a base frame holding the
    /// tree's right edge.
    fn rotate(&mut self, jobs: &Sender<Job>) -> Result<()> {
        // The publisher writes every tile handed to it so far, then one syncfs makes them
        // durable (and their directories), instead of one fsync per file.
        let (reply, wait) = mpsc::sync_channel(1);
        jobs.send(Job::Sync(reply))
            .map_err(|_| Error::Stopped("the publisher stopped".into()))?;
        wait.recv()
            .map_err(|_| Error::Stopped("the publisher stopped".into()))??;
        let base = Frame::Base(Base {
            size: self.state.size(),
            levels: self.state.levels().to_vec(),
            entries: self.tail.clone(),
            checkpoint: self.checkpoint.note.clone(),
        });
        let data = journal::encode(&base);
        let path = self.dir.join(layout::JOURNAL);
        fsio::write_atomic(&path, &data, true)?;
        let journal = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        self.journal = journal;
        self.journal_len = data.len() as u64;
        self.reserved_to = self.journal_len;
        self.reserve_after = 0;
        Ok(())
    }
}

/// Stops the ledger: fails everything still queued rather than leave callers waiting,
/// and refuses appends from now on.
fn fail_all(shared: &Shared, reason: String) {
    let mut q = lock(&shared.queue);
    let end = q.next_ticket;
    let calls = q.calls.len();
    if end > q.decided {
        q.decide(end, calls, 0, 0, Some(reason.clone()));
    }
    q.entries.clear();
    q.leaves.clear();
    q.calls.clear();
    for reply in q.publish_waiters.drain(..) {
        let _ = reply.send(Err(Error::Stopped(reason.clone())));
    }
    q.stopped.get_or_insert(reason);
    for done in &shared.done {
        done.notify_all();
    }
    shared.room.notify_all();
}

/// The publisher: writes the tiles that filled and publishes, in the order the committer
/// asks, off the committer's thread.
struct Publisher {
    dir: PathBuf,
    /// Partial tiles of the published checkpoint.
    published: Vec<PathBuf>,
    /// Whether full tiles were written since the last sync.
    unsynced: bool,
}

impl Publisher {
    fn run(mut self, jobs: &Receiver<Job>, shared: &Shared) {
        let mut failed: Option<String> = None;
        for job in jobs {
            if let Some(reason) = &failed {
                // Answer, but do nothing more: the committer stops.
                let refuse = || Err(Error::Stopped(reason.clone()));
                match job {
                    Job::Tiles(_) => {}
                    Job::Publish(_, waiters) => {
                        for w in waiters {
                            let _ = w.send(refuse());
                        }
                    }
                    Job::Sync(reply) => {
                        let _ = reply.send(refuse());
                    }
                }
                continue;
            }
            let result = match job {
                Job::Tiles(tiles) => self.write_tiles(tiles, false),
                Job::Publish(snapshot, waiters) => {
                    let result = self.publish(snapshot);
                    let message = result.as_ref().err().map(ToString::to_string);
                    for w in waiters {
                        let _ = w.send(match &message {
                            None => Ok(()),
                            Some(e) => Err(Error::Stopped(e.clone())),
                        });
                    }
                    result
                }
                Job::Sync(reply) => {
                    let result = self.sync();
                    let message = result.as_ref().err().map(ToString::to_string);
                    let _ = reply.send(match &message {
                        None => Ok(()),
                        Some(e) => Err(Error::Stopped(e.clone())),
                    });
                    result
                }
            };
            if let Err(e) = result {
                let reason = e.to_string();
                let mut q = lock(&shared.queue);
                q.publisher_failed = Some(reason.clone());
                shared.work.notify_one();
                failed = Some(reason);
            }
        }
    }

    /// Writes tiles that became full. During recovery an existing tile must be the same
    /// bytes (or a prefix of them, as a crash can leave it): anything else is tampering.
    fn write_tiles(&mut self, tiles: NewTiles, recovering: bool) -> Result<()> {
        let hash_tiles = tiles.hashes.into_iter().map(|t| {
            let id = TileId {
                kind: TileKind::Hash(t.level),
                index: t.index,
                width: TILE_WIDTH as u16,
            };
            Ok((id, tiles::encode_hashes(&t.hashes)))
        });
        let bundles = tiles.bundles.into_iter().map(|(index, entries)| {
            let id = TileId {
                kind: TileKind::Entries,
                index,
                width: TILE_WIDTH as u16,
            };
            // Sized once: grown from empty, a bundle of 256 records was copied a dozen times
            // over (two thirds of the publisher's own instructions under callgrind).
            let mut data = Vec::with_capacity(entries.iter().map(|e| 2 + e.len()).sum());
            for e in &entries {
                tiles::push_entry(&mut data, e)?;
            }
            Ok((id, data))
        });
        for tile in hash_tiles.chain(bundles) {
            let (id, data): (TileId, Vec<u8>) = tile?;
            let path = layout::tile(&self.dir, &id);
            if recovering {
                if let Some(existing) = fsio::read_optional(&path, 17 << 20)? {
                    if existing == data {
                        continue;
                    }
                    if !data.starts_with(&existing) {
                        return Err(Error::Corrupt(format!(
                            "{} differs from the journal; run `warden ledger verify`",
                            id.path()
                        )));
                    }
                }
            }
            fsio::write_atomic(&path, &data, false)?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Writes the partial tiles of a size, then the checkpoint, then removes the partial
    /// tiles that the new checkpoint superseded.
    fn publish(&mut self, snapshot: Snapshot) -> Result<()> {
        let mut written = Vec::with_capacity(snapshot.partials.len());
        for (path, data) in snapshot.partials {
            fsio::write_atomic(&path, &data, false)?;
            written.push(path);
        }
        fsio::write_atomic(
            &self.dir.join(layout::CHECKPOINT),
            &snapshot.checkpoint,
            false,
        )?;
        for old in std::mem::take(&mut self.published) {
            if !written.contains(&old) {
                let _ = fs::remove_file(&old);
                if let Some(parent) = old.parent() {
                    let _ = fs::remove_dir(parent); // only succeeds when empty
                }
            }
        }
        self.published = written;
        Ok(())
    }

    /// Makes every tile written so far durable: one syncfs instead of one fsync per file.
    fn sync(&mut self) -> Result<()> {
        if std::mem::take(&mut self.unsynced) {
            let dir = File::open(&self.dir).map_err(Error::io(&self.dir))?;
            rustix::fs::syncfs(&dir).map_err(|e| Error::io(&self.dir)(e.into()))?;
        }
        Ok(())
    }
}

/// The partial tiles published for the journal's own size must be what the journal says.
fn check_published_partials(dir: &Path, state: &TreeState, tail: &[Vec<u8>]) -> Result<()> {
    let mut expected: Vec<(TileId, Vec<u8>)> = state
        .partial_tiles()
        .map(|(id, hashes)| (id, tiles::encode_hashes(hashes)))
        .collect();
    if !tail.is_empty() {
        let mut bundle = Vec::new();
        for entry in tail {
            tiles::push_entry(&mut bundle, entry)?;
        }
        expected.push((TileId::for_entry(state.size() - 1, state.size()), bundle));
    }
    for (id, data) in expected {
        let path = layout::tile(dir, &id);
        if let Some(existing) = fsio::read_optional(&path, 17 << 20)? {
            if !existing.is_empty() && existing != data {
                return Err(Error::Corrupt(format!(
                    "{} differs from the journal; run `warden ledger verify`",
                    id.path()
                )));
            }
        }
    }
    Ok(())
}

/// Adds one entry to the tree and the pending bundle, collecting the tiles it fills.
fn add_entry(
    state: &mut TreeState,
    tail: &mut Vec<Vec<u8>>,
    entry: Vec<u8>,
    new_tiles: &mut NewTiles,
) -> Result<()> {
    if entry.len() > MAX_ENTRY_LEN {
        return Err(Error::EntryTooLarge(entry.len()));
    }
    state.push(leaf_hash(&entry), |full| new_tiles.hashes.push(full));
    push_tail(state.size() - 1, tail, entry, new_tiles)
}

/// Adds entry `index`, already in the tree, to the pending bundle; a bundle that fills is
/// collected for writing.
fn push_tail(
    index: u64,
    tail: &mut Vec<Vec<u8>>,
    entry: Vec<u8>,
    new_tiles: &mut NewTiles,
) -> Result<()> {
    tail.push(entry);
    if tail.len() as u64 == TILE_WIDTH {
        new_tiles
            .bundles
            .push((index / TILE_WIDTH, std::mem::take(tail)));
    }
    Ok(())
}
