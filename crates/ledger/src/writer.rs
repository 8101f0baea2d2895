//! The ledger writer: one thread owns the journal and the tiles; appenders queue entries
//! and wait for their receipt. Everything queued while a sync is in flight goes into the
//! next group commit, so throughput grows with the number of writers while each append
//! still waits for its own data to be durable.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
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
    /// Appends that may wait in the queue; beyond it `append` blocks and `try_append`
    /// returns [`Error::Busy`] (back-pressure).
    pub queue: usize,
    /// Most entries in one group commit.
    pub max_batch: usize,
    /// Rewrite the journal, small, once it grows past this many bytes.
    pub rotate_bytes: u64,
    /// Publish the partial tiles and the checkpoint at most this often (and on close).
    pub publish_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue: 65_536,
            max_batch: 8_192,
            rotate_bytes: 64 << 20,
            publish_interval: Duration::from_millis(100),
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

type Reply = SyncSender<Result<Vec<Receipt>>>;

enum Msg {
    Append(Vec<Vec<u8>>, Reply),
    Publish(SyncSender<Result<()>>),
}

/// Most entries one [`Ledger::append_all`] call takes.
pub const MAX_BATCH_CALL: usize = 65_536;

fn one(mut receipts: Vec<Receipt>) -> Result<Receipt> {
    receipts
        .pop()
        .ok_or_else(|| Error::Stopped("no receipt".into()))
}

struct Shared {
    checkpoint: Mutex<SignedCheckpoint>,
    stopped: Mutex<Option<String>>,
}

/// An open ledger with its writer thread.
pub struct Ledger {
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
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
        let writer = Writer::recover(dir, skey, options.clone())?;
        let shared = Arc::new(Shared {
            checkpoint: Mutex::new(writer.checkpoint.clone()),
            stopped: Mutex::new(None),
        });
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let thread_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx, &thread_shared))
            .map_err(Error::io(dir))?;
        Ok(Ledger {
            tx: Some(tx),
            worker: Some(worker),
            shared,
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
        let (reply, wait) = mpsc::sync_channel(1);
        let msg = Msg::Append(entries, reply);
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        if no_wait {
            match tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(Error::Busy),
                Err(TrySendError::Disconnected(_)) => return Err(self.stopped()),
            }
        } else if tx.send(msg).is_err() {
            return Err(self.stopped());
        }
        wait.recv().map_err(|_| self.stopped())?
    }

    /// Publishes the partial tiles and checkpoint now.
    pub fn publish(&self) -> Result<()> {
        let (reply, wait) = mpsc::sync_channel(1);
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        tx.send(Msg::Publish(reply)).map_err(|_| self.stopped())?;
        wait.recv().map_err(|_| self.stopped())?
    }

    /// The latest signed checkpoint (every acknowledged entry is under it).
    pub fn checkpoint(&self) -> SignedCheckpoint {
        match self.shared.checkpoint.lock() {
            Ok(cp) => cp.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn stopped(&self) -> Error {
        let reason = match self.shared.stopped.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Error::Stopped(reason.unwrap_or_else(|| "closed".into()))
    }

    /// Publishes everything and stops the writer.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let stopped = match self.shared.stopped.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match stopped {
            Some(reason) => Err(Error::Stopped(reason)),
            None => Ok(()),
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

struct Writer {
    dir: PathBuf,
    key: LogKey,
    options: Options,
    journal: File,
    journal_len: u64,
    state: TreeState,
    /// Entries of the partial entry bundle.
    tail: Vec<Vec<u8>>,
    checkpoint: SignedCheckpoint,
    /// Whether full tiles were written since the last rotation (synced when it rotates).
    unsynced: bool,
    /// Partial tiles of the published checkpoint.
    published: Vec<PathBuf>,
    published_size: Option<u64>,
    last_publish: Instant,
    _lock: File,
}

/// Tiles that became full during a commit, to be written after the sync.
#[derive(Default)]
struct NewTiles {
    hashes: Vec<FullTile>,
    bundles: Vec<(u64, Vec<u8>)>,
}

impl Writer {
    fn recover(dir: &Path, skey: &str, options: Options) -> Result<Writer> {
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

        let mut journal = OpenOptions::new()
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
        journal
            .seek(SeekFrom::Start(journal_len))
            .map_err(Error::io(&journal_path))?;

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
            state,
            tail: writer_tail,
            checkpoint: cp,
            unsynced: false,
            published: Vec::new(),
            published_size: None,
            last_publish: Instant::now(),
            _lock: lock,
        };
        writer.write_tiles(new_tiles, true)?;
        writer.publish()?;
        Ok(writer)
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

    fn run(mut self, rx: Receiver<Msg>, shared: &Shared) {
        let result = self.serve(&rx, shared);
        let result = result.and_then(|()| self.publish());
        if let Err(e) = result {
            if let Ok(mut s) = shared.stopped.lock() {
                *s = Some(e.to_string());
            }
            // Fail everything still queued rather than leave callers waiting.
            drop(rx);
        }
    }

    fn serve(&mut self, rx: &Receiver<Msg>, shared: &Shared) -> Result<()> {
        loop {
            let first = match rx.recv_timeout(self.options.publish_interval) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    if self.published_size != Some(self.state.size()) {
                        self.publish()?;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut batch = Vec::new();
            let mut entries = 0;
            let mut publish_waiters = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(list, reply) => {
                        entries += list.len();
                        batch.push((list, reply));
                    }
                    Msg::Publish(reply) => publish_waiters.push(reply),
                }
                if entries < self.options.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch, shared)?;
            }
            let due = self.last_publish.elapsed() >= self.options.publish_interval;
            if !publish_waiters.is_empty() || due {
                let result = self.publish();
                let failed = result.as_ref().err().map(ToString::to_string);
                for reply in publish_waiters {
                    let _ = reply.send(match &failed {
                        None => Ok(()),
                        Some(e) => Err(Error::Stopped(e.clone())),
                    });
                }
                result?;
            }
            if self.journal_len >= self.options.rotate_bytes {
                self.rotate()?;
            }
        }
    }

    /// One group commit: journal frame, sync, receipts, then the full tiles.
    fn commit(&mut self, batch: Vec<(Vec<Vec<u8>>, Reply)>, shared: &Shared) -> Result<()> {
        // The tree moves first (to sign its new root); the pending bundle only once the
        // commit is durable, so a failed commit restores the tree alone.
        let saved_state = self.state.clone();
        let first = self.state.size();
        let mut new_tiles = NewTiles::default();
        let mut receipts = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (list, reply) in batch {
            let mut mine = Vec::with_capacity(list.len());
            for entry in list {
                let index = self.state.size();
                let leaf = leaf_hash(&entry);
                self.state.push(leaf, |full| new_tiles.hashes.push(full));
                mine.push((index, leaf));
                entries.push(entry);
            }
            receipts.push(mine);
            replies.push(reply);
        }
        let mut commit = Frame::Commit(Commit {
            first,
            entries,
            checkpoint: Vec::new(),
        });
        let outcome = self
            .key
            .sign(self.state.size(), &self.state.root())
            .and_then(|cp| {
                if let Frame::Commit(c) = &mut commit {
                    c.checkpoint = cp.note.clone();
                }
                self.append_frame(&journal::encode(&commit))?;
                Ok(cp)
            });
        let cp = match outcome {
            Ok(cp) => cp,
            Err(e) => {
                // Nothing of this batch was acknowledged; undo it in memory and on disk.
                self.state = saved_state;
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Stopped(message.clone())));
                }
                let path = self.dir.join(layout::JOURNAL);
                self.journal
                    .set_len(self.journal_len)
                    .and_then(|()| {
                        self.journal
                            .seek(SeekFrom::Start(self.journal_len))
                            .map(drop)
                    })
                    .map_err(Error::io(&path))?;
                return Ok(());
            }
        };
        let size = cp.size;
        self.checkpoint = cp.clone();
        if let Ok(mut shared_cp) = shared.checkpoint.lock() {
            *shared_cp = cp;
        }
        for (mine, reply) in receipts.into_iter().zip(replies) {
            let list = mine
                .into_iter()
                .map(|(index, leaf_hash)| Receipt {
                    index,
                    leaf_hash,
                    tree_size: size,
                })
                .collect();
            let _ = reply.send(Ok(list));
        }
        // Durable: the entries now join the pending bundle.
        if let Frame::Commit(commit) = commit {
            for (i, entry) in commit.entries.into_iter().enumerate() {
                push_tail(first + i as u64, &mut self.tail, entry, &mut new_tiles)?;
            }
        }
        self.write_tiles(new_tiles, false)
    }

    fn append_frame(&mut self, frame: &[u8]) -> Result<()> {
        let path = self.dir.join(layout::JOURNAL);
        self.journal.write_all(frame).map_err(Error::io(&path))?;
        self.journal.sync_data().map_err(Error::io(&path))?;
        self.journal_len += frame.len() as u64;
        Ok(())
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
            (id, tiles::encode_hashes(&t.hashes))
        });
        let bundles = tiles.bundles.into_iter().map(|(index, data)| {
            let id = TileId {
                kind: TileKind::Entries,
                index,
                width: TILE_WIDTH as u16,
            };
            (id, data)
        });
        for (id, data) in hash_tiles.chain(bundles) {
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

    /// Writes the partial tiles of the current size, then the checkpoint, then removes the
    /// partial tiles that the new checkpoint superseded.
    fn publish(&mut self) -> Result<()> {
        self.last_publish = Instant::now();
        if self.published_size == Some(self.state.size()) {
            return Ok(());
        }
        let mut written = Vec::new();
        for (id, hashes) in self.state.partial_tiles() {
            let path = layout::tile(&self.dir, &id);
            fsio::write_atomic(&path, &tiles::encode_hashes(hashes), false)?;
            written.push(path);
        }
        if !self.tail.is_empty() {
            let id = TileId::for_entry(self.state.size() - 1, self.state.size());
            let mut bundle = Vec::new();
            for entry in &self.tail {
                tiles::push_entry(&mut bundle, entry)?;
            }
            let path = layout::tile(&self.dir, &id);
            fsio::write_atomic(&path, &bundle, false)?;
            written.push(path);
        }
        fsio::write_atomic(
            &self.dir.join(layout::CHECKPOINT),
            &self.checkpoint.note,
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
        self.published_size = Some(self.state.size());
        Ok(())
    }

    /// Makes the full tiles durable, then replaces the journal by a base frame holding the
    /// tree's right edge.
    fn rotate(&mut self) -> Result<()> {
        // One syncfs makes every tile written since the last rotation durable (and their
        // directories), instead of one fsync per file.
        if std::mem::take(&mut self.unsynced) {
            let dir = File::open(&self.dir).map_err(Error::io(&self.dir))?;
            rustix::fs::syncfs(&dir).map_err(|e| Error::io(&self.dir)(e.into()))?;
        }
        let base = Frame::Base(Base {
            size: self.state.size(),
            levels: self.state.levels().to_vec(),
            entries: self.tail.clone(),
            checkpoint: self.checkpoint.note.clone(),
        });
        let data = journal::encode(&base);
        let path = self.dir.join(layout::JOURNAL);
        fsio::write_atomic(&path, &data, true)?;
        let mut journal = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        journal.seek(SeekFrom::End(0)).map_err(Error::io(&path))?;
        self.journal = journal;
        self.journal_len = data.len() as u64;
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
        let mut bundle = Vec::new();
        for e in tail.drain(..) {
            tiles::push_entry(&mut bundle, &e)?;
        }
        new_tiles.bundles.push((index / TILE_WIDTH, bundle));
    }
    Ok(())
}
