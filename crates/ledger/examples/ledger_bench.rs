//! The ledger's speed and memory, each figure measured beside a peer in the same run:
//!
//! - `append`: durable appends per second with 1, 8, 64 and 256 writer threads, against
//!   SQLite in WAL mode with `synchronous=FULL` (one row and one transaction per record,
//!   one connection per thread) on the same records and the same disk, with the CPU time
//!   per append and the latency of single appends under that load;
//! - `latency`: one writer appending sequentially, p50/p99/max of each append, both stores;
//! - `verify`: full verification of ledgers of 100,000 and 1,000,000 entries, each in a
//!   child process that reports its own peak RSS (VmHWM), with a warm page cache and with
//!   the files evicted from it, beside SQLite's `PRAGMA integrity_check` on a database of
//!   the same records;
//! - `proof`: inclusion proofs, generated and checked, at random indexes, beside SQLite
//!   reading the same rows by primary key.
//!
//! Every trial gets a fresh store in a scratch directory under `--dir`, which must be on
//! the disk to measure (not a tmpfs). Tables go to stdout, or to stderr with `--json`, which
//! prints the figures as JSON on stdout. `bench/ledger.sh` builds and runs it.
//!
//! ```text
//! cargo run --release -p ledger --example ledger_bench -- --runs 5 all
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ledger::reader::check_inclusion;
use ledger::{Ledger, Options, Published, Record};
use rusqlite::Connection;
use serde::Serialize;

const ORIGIN: &str = "bench.example/ledger";
/// Entries per `append_all` call when building the ledgers to verify.
const BUILD_CHUNK: usize = 65_536;

#[derive(Parser)]
#[command(about = "Ledger benchmark: appends, latency, verification and proofs beside SQLite")]
struct Cli {
    /// Directory on the disk to measure; a scratch directory is made (and removed) in it.
    #[arg(long, global = true, default_value = ".")]
    dir: PathBuf,
    /// Print the figures as JSON on stdout (the tables then go to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Also write the tables (Markdown) to this file.
    #[arg(long, global = true)]
    tables: Option<PathBuf>,
    /// Repetitions of every measurement; medians are reported.
    #[arg(long, global = true, default_value_t = 5)]
    runs: usize,
    /// The ledger's `Options::reserve_bytes` (zeros kept ahead of the journal's end), to
    /// compare with it turned off (0).
    #[arg(long, global = true)]
    reserve_bytes: Option<u64>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable appends per second with concurrent writers, ledger and SQLite.
    Append(AppendArgs),
    /// Latency of single sequential appends, ledger and SQLite.
    Latency(LatencyArgs),
    /// Full verification time and peak RSS, ledger and SQLite integrity_check.
    Verify(VerifyArgs),
    /// Inclusion proof generation and checking, and SQLite reads by id.
    Proof(ProofArgs),
    /// Everything above, with the defaults (the default when no command is given).
    All,
    /// Verifies one store and prints time and peak RSS as JSON (run by `verify`).
    #[command(hide = true)]
    VerifyChild {
        #[arg(long)]
        kind: ChildKind,
        #[arg(long)]
        path: PathBuf,
    },
}

#[derive(clap::Args, Clone)]
struct AppendArgs {
    /// Writer thread counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64, 256])]
    threads: Vec<usize>,
    /// Records per trial with more than one writer.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Records per trial with one writer (sequential durable appends are slow for both).
    #[arg(long, default_value_t = 10_000)]
    count_single: u64,
    /// Records per SQLite trial with more than one writer (at most --count): SQLite
    /// commits one row per sync, so a trial of --count rows would take minutes; its rate is
    /// steady well before this count.
    #[arg(long, default_value_t = 20_000)]
    peer_count: u64,
    /// Measure the ledger alone.
    #[arg(long)]
    no_peer: bool,
}

#[derive(clap::Args, Clone)]
struct LatencyArgs {
    /// Sequential appends per trial.
    #[arg(long, default_value_t = 5_000)]
    count: u64,
    /// Measure the ledger alone.
    #[arg(long)]
    no_peer: bool,
}

#[derive(clap::Args, Clone)]
struct VerifyArgs {
    /// Ledger sizes to verify.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 1_000_000])]
    sizes: Vec<u64>,
    /// Skip the runs with the files evicted from the page cache.
    #[arg(long)]
    warm_only: bool,
}

#[derive(clap::Args, Clone)]
struct ProofArgs {
    /// Entries in the ledger proved against.
    #[arg(long, default_value_t = 1_000_000)]
    size: u64,
    /// Random indexes per run.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
}

#[derive(Clone, Copy, ValueEnum, Serialize, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum ChildKind {
    /// `ledger::verify::verify` accepting any entry.
    Ledger,
    /// `ledger::verify::verify` also decoding every entry as a canonical record, as
    /// `warden ledger verify` does.
    LedgerRecords,
    /// SQLite `PRAGMA integrity_check`.
    Sqlite,
}

// ---------------------------------------------------------------------------------------
// Figures

#[derive(Serialize, Default)]
struct Report {
    machine: Machine,
    runs: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    append: Vec<AppendRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    latency: Vec<LatencyRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verify: Vec<VerifyRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<ProofRow>,
}

#[derive(Serialize, Default)]
struct Machine {
    dir: String,
    filesystem: String,
    device: String,
    cpu: String,
    cpus: usize,
    /// /proc/loadavg at the start and at the end of the run (other work on the machine).
    load_start: String,
    load_end: String,
    record_bytes: usize,
    sqlite: String,
}

#[derive(Serialize)]
struct AppendRow {
    threads: usize,
    count: u64,
    sqlite_count: u64,
    ledger_per_s: Vec<f64>,
    sqlite_per_s: Vec<f64>,
    /// Ledger entries per group commit (count / distinct checkpoint sizes in the receipts).
    ledger_entries_per_commit: Vec<f64>,
    /// CPU time (user + system, all threads) per append, microseconds.
    ledger_cpu_us: Vec<f64>,
    sqlite_cpu_us: Vec<f64>,
    /// Latency of single appends under this load, per run, milliseconds.
    ledger_p99_ms: Vec<f64>,
    ledger_max_ms: Vec<f64>,
    sqlite_p99_ms: Vec<f64>,
    sqlite_max_ms: Vec<f64>,
    ledger_median_per_s: f64,
    sqlite_median_per_s: f64,
    /// Median over runs of the ledger/SQLite ratio within each run.
    ratio_median: f64,
}

#[derive(Serialize)]
struct LatencyRow {
    store: &'static str,
    count: u64,
    /// Per run: p50, p99, max in microseconds.
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    max_us: Vec<f64>,
    median_p50_us: f64,
    median_p99_us: f64,
    median_max_us: f64,
}

#[derive(Serialize)]
struct VerifyRow {
    size: u64,
    ledger_build_s: f64,
    ledger_bytes: u64,
    sqlite_bytes: u64,
    ledger_s: Vec<f64>,
    ledger_records_s: Vec<f64>,
    sqlite_s: Vec<f64>,
    ledger_hwm_kib: Vec<u64>,
    ledger_records_hwm_kib: Vec<u64>,
    sqlite_hwm_kib: Vec<u64>,
    /// The same with the store's files evicted from the page cache first (empty with
    /// --warm-only).
    ledger_cold_s: Vec<f64>,
    sqlite_cold_s: Vec<f64>,
    /// VmHWM of the child before it starts verifying.
    child_start_hwm_kib: u64,
    median_ledger_s: f64,
    median_ledger_records_s: f64,
    median_sqlite_s: f64,
    median_ledger_cold_s: f64,
    median_sqlite_cold_s: f64,
    max_ledger_hwm_kib: u64,
    max_ledger_records_hwm_kib: u64,
    max_sqlite_hwm_kib: u64,
}

#[derive(Serialize)]
struct ProofRow {
    size: u64,
    samples: usize,
    proof_len: usize,
    /// Per run: median microseconds.
    generate_us: Vec<f64>,
    check_us: Vec<f64>,
    sqlite_read_us: Vec<f64>,
    generate_p99_us: Vec<f64>,
    median_generate_us: f64,
    median_generate_p99_us: f64,
    median_check_us: f64,
    median_sqlite_read_us: f64,
}

#[derive(Serialize, serde::Deserialize)]
struct ChildResult {
    seconds: f64,
    start_hwm_kib: u64,
    hwm_kib: u64,
    ok: bool,
    detail: String,
}

// ---------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::VerifyChild { kind, path }) = &cli.command {
        return verify_child(*kind, path);
    }
    if cli.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(reserve_bytes) = cli.reserve_bytes {
        let _ = OPTIONS.set(Options {
            reserve_bytes,
            ..Options::default()
        });
    }
    std::fs::create_dir_all(&cli.dir).with_context(|| format!("{}", cli.dir.display()))?;
    let dir = cli
        .dir
        .canonicalize()
        .with_context(|| format!("{}", cli.dir.display()))?;
    let machine = machine(&dir)?;
    if machine.filesystem == "tmpfs" || machine.filesystem == "ramfs" {
        eprintln!(
            "warning: {} is on {}: syncs cost nothing there; pass --dir on a real disk",
            dir.display(),
            machine.filesystem
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("ledger-bench-")
        .tempdir_in(&dir)
        .with_context(|| format!("scratch directory in {}", dir.display()))?;
    let mut bench = Bench {
        scratch: scratch.path().to_path_buf(),
        runs: cli.runs,
        report: Report {
            machine,
            runs: cli.runs,
            ..Report::default()
        },
        built: Vec::new(),
    };
    eprintln!(
        "ledger_bench: {} runs in {} ({} on {}), records of {} bytes",
        cli.runs,
        scratch.path().display(),
        bench.report.machine.filesystem,
        bench.report.machine.device,
        bench.report.machine.record_bytes
    );
    match cli.command.unwrap_or(Cmd::All) {
        Cmd::Append(a) => bench.append(&a)?,
        Cmd::Latency(a) => bench.latency(&a)?,
        Cmd::Verify(a) => bench.verify(&a)?,
        Cmd::Proof(a) => bench.proof(&a)?,
        Cmd::All => {
            bench.append(&defaults()?)?;
            bench.latency(&defaults()?)?;
            bench.verify(&defaults()?)?;
            bench.proof(&defaults()?)?;
        }
        Cmd::VerifyChild { .. } => {}
    }
    bench.report.machine.load_end = load_average();
    let tables = tables(&bench.report);
    if let Some(path) = &cli.tables {
        std::fs::write(path, &tables).with_context(|| format!("{}", path.display()))?;
    }
    if cli.json {
        eprint!("{tables}");
        println!("{}", serde_json::to_string_pretty(&bench.report)?);
    } else {
        print!("{tables}");
    }
    scratch.close().context("removing the scratch directory")?;
    Ok(())
}

/// A command's arguments at their defaults.
fn defaults<A: clap::Args + clap::FromArgMatches>() -> Result<A> {
    let matches =
        A::augment_args(clap::Command::new("defaults")).try_get_matches_from(["defaults"])?;
    Ok(A::from_arg_matches(&matches)?)
}

/// A ledger and a SQLite database of the same records, built once and reused.
struct Built {
    size: u64,
    ledger: PathBuf,
    sqlite: PathBuf,
    build_s: f64,
}

struct Bench {
    scratch: PathBuf,
    runs: usize,
    report: Report,
    built: Vec<Built>,
}

// ---------------------------------------------------------------------------------------
// Records

/// A small deterministic generator (SplitMix64): the records and the sampled indexes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(bytes * 2);
        s
    }
}

const MODELS: &[&str] = &[
    "llama-3.1-8b@1.4.0",
    "mistral-7b@0.3.1",
    "qwen2.5-14b@2.0.0",
];
const ACTORS: &[&str] = &["gateway", "batch", "chat"];

/// One realistic inference record (about 260 bytes of canonical JSON): what a gateway
/// writes per request, with a keyed digest of the prompt and no payload.
fn record(rng: &mut Rng) -> Result<Vec<u8>> {
    let pick = |list: &[&'static str], n: u64| -> &'static str {
        list.get((n % list.len() as u64) as usize)
            .copied()
            .unwrap_or("x")
    };
    let tokens_in = 20 + rng.below(4000);
    Ok(Record::new("inference.request", pick(ACTORS, rng.next()))
        .subject(pick(MODELS, rng.next()))
        .digest("prompt", &format!("hmac-sha256:{}", rng.hex(32)))
        .attr("tokens_in", &tokens_in.to_string())
        .attr("tokens_out", &rng.below(2000).to_string())
        .encode()?)
}

fn records(count: u64, seed: u64) -> Result<Vec<Vec<u8>>> {
    let mut rng = Rng(seed);
    (0..count).map(|_| record(&mut rng)).collect()
}

/// Deals records to `threads` writers, round robin.
fn deal(records: &[Vec<u8>], threads: usize) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, r) in records.iter().enumerate() {
        if let Some(slot) = out.get_mut(i % threads) {
            slot.push(r.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Stores

/// The ledger's options (`--reserve-bytes`).
static OPTIONS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

fn new_ledger(dir: &Path) -> Result<Ledger> {
    let (skey, vkey) = ledger::generate_key(ORIGIN)?;
    Ledger::create(dir, &skey, &vkey)?;
    let options = OPTIONS.get().cloned().unwrap_or_default();
    Ok(Ledger::open(dir, &skey, options)?)
}

fn sqlite_create(path: &Path) -> Result<()> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("SQLite refused WAL mode ({mode})");
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE log(id INTEGER PRIMARY KEY, entry BLOB NOT NULL);",
    )?;
    Ok(())
}

/// A writer's connection: WAL (set on the database), `synchronous=FULL`, a busy timeout.
fn sqlite_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(600))?;
    conn.execute_batch("PRAGMA synchronous=FULL;")?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    if sync != 2 {
        bail!("SQLite synchronous is {sync}, not FULL (2)");
    }
    Ok(conn)
}

/// One durable append to SQLite: an autocommit INSERT, its own transaction.
fn sqlite_append(conn: &Connection, entry: &[u8]) -> Result<i64> {
    let mut stmt = conn.prepare_cached("INSERT INTO log(entry) VALUES (?1)")?;
    stmt.execute([entry])?;
    Ok(conn.last_insert_rowid())
}

fn join<T>(handles: Vec<JoinHandle<Result<T>>>) -> Result<Vec<T>> {
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| anyhow!("a writer thread panicked"))?)
        .collect()
}

/// CPU time (user + system) of this process so far, in seconds.
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("unreadable /proc/self/stat"))
    };
    // The kernel reports in USER_HZ, 100 on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// One throughput trial: appends per second, CPU microseconds per append, entries per
/// commit.
struct Trial {
    per_s: f64,
    cpu_us: f64,
    per_commit: f64,
    /// Latency of each append under this load: p50, p99, max in microseconds.
    latency: (f64, f64, f64),
}

/// Wall and CPU seconds of a timed phase.
struct Timed {
    wall: f64,
    cpu: f64,
}

/// Starts `work` on one thread per share, all released together; returns the wall and CPU
/// time from the release to the last thread's end, and what each returned.
fn run_writers<S, T>(
    shares: Vec<Vec<Vec<u8>>>,
    setup: impl Fn() -> Result<S>,
    work: impl Fn(&S, Vec<Vec<u8>>) -> Result<T> + Send + Sync + 'static,
) -> Result<(Timed, Vec<T>)>
where
    S: Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(shares.len() + 1));
    let work = Arc::new(work);
    let mut handles = Vec::with_capacity(shares.len());
    for share in shares {
        let state = setup()?;
        let barrier = Arc::clone(&barrier);
        let work = Arc::clone(&work);
        let handle = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                barrier.wait();
                work(&state, share)
            })
            .context("spawning a writer thread")?;
        handles.push(handle);
    }
    barrier.wait();
    let start = Instant::now();
    let cpu = cpu_seconds()?;
    let results = join(handles)?;
    let timed = Timed {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds()? - cpu,
    };
    Ok((timed, results))
}

// ---------------------------------------------------------------------------------------
// append

impl Bench {
    fn trial_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.scratch.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Appends every record with `threads` writers.
    fn ledger_throughput(&self, records: &[Vec<u8>], threads: usize) -> Result<Trial> {
        let dir = self.trial_dir("ledger-append")?;
        let ledger = Arc::new(new_ledger(&dir)?);
        let shared = Arc::clone(&ledger);
        let (timed, sizes) = run_writers(
            deal(records, threads),
            || Ok(Arc::clone(&shared)),
            |ledger: &Arc<Ledger>, share| {
                let mut sizes = Vec::with_capacity(share.len());
                let mut times = Vec::with_capacity(share.len());
                for entry in share {
                    let t = Instant::now();
                    sizes.push(ledger.append(entry)?.tree_size);
                    times.push(t.elapsed());
                }
                Ok((sizes, times))
            },
        )?;
        drop(shared);
        let size = ledger.checkpoint().size;
        if size != records.len() as u64 {
            bail!("the ledger holds {size} entries, not {}", records.len());
        }
        let (sizes, times): (Vec<_>, Vec<_>) = sizes.into_iter().unzip();
        let commits: HashSet<u64> = sizes.into_iter().flatten().collect();
        let mut times: Vec<Duration> = times.into_iter().flatten().collect();
        Arc::try_unwrap(ledger)
            .map_err(|_| anyhow!("the ledger is still shared"))?
            .close()?;
        std::fs::remove_dir_all(&dir)?;
        let n = records.len() as f64;
        Ok(Trial {
            per_s: n / timed.wall,
            cpu_us: timed.cpu * 1e6 / n,
            per_commit: n / commits.len().max(1) as f64,
            latency: percentiles(&mut times),
        })
    }

    fn sqlite_throughput(&self, records: &[Vec<u8>], threads: usize) -> Result<Trial> {
        let dir = self.trial_dir("sqlite-append")?;
        let path = dir.join("log.db");
        sqlite_create(&path)?;
        let (timed, times) = run_writers(
            deal(records, threads),
            || sqlite_writer(&path),
            |conn: &Connection, share| {
                let mut times = Vec::with_capacity(share.len());
                for entry in share {
                    let t = Instant::now();
                    sqlite_append(conn, &entry)?;
                    times.push(t.elapsed());
                }
                Ok(times)
            },
        )?;
        let mut times: Vec<Duration> = times.into_iter().flatten().collect();
        let conn = Connection::open(&path)?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
        drop(conn);
        if rows != records.len() as i64 {
            bail!("SQLite holds {rows} rows, not {}", records.len());
        }
        std::fs::remove_dir_all(&dir)?;
        let n = records.len() as f64;
        Ok(Trial {
            per_s: n / timed.wall,
            cpu_us: timed.cpu * 1e6 / n,
            per_commit: 1.0,
            latency: percentiles(&mut times),
        })
    }

    fn append(&mut self, args: &AppendArgs) -> Result<()> {
        let mut rows: Vec<AppendRow> = args
            .threads
            .iter()
            .map(|&threads| AppendRow {
                threads,
                count: if threads > 1 {
                    args.count
                } else {
                    args.count_single
                },
                sqlite_count: if threads > 1 {
                    args.peer_count.min(args.count)
                } else {
                    args.count_single
                },
                ledger_per_s: Vec::new(),
                sqlite_per_s: Vec::new(),
                ledger_entries_per_commit: Vec::new(),
                ledger_cpu_us: Vec::new(),
                sqlite_cpu_us: Vec::new(),
                ledger_p99_ms: Vec::new(),
                ledger_max_ms: Vec::new(),
                sqlite_p99_ms: Vec::new(),
                sqlite_max_ms: Vec::new(),
                ledger_median_per_s: 0.0,
                sqlite_median_per_s: 0.0,
                ratio_median: 0.0,
            })
            .collect();
        if rows.iter().any(|r| r.threads == 0) {
            bail!("--threads: at least one writer");
        }
        let all = records(args.count.max(args.count_single), 1)?;
        // Runs interleave the stores and thread counts, so that load from other work on the
        // machine falls on both alike.
        for run in 1..=self.runs {
            for row in &mut rows {
                let recs = all.get(..row.count as usize).unwrap_or(&all);
                let l = self.ledger_throughput(recs, row.threads)?;
                let s = if args.no_peer {
                    Trial {
                        per_s: f64::NAN,
                        cpu_us: f64::NAN,
                        per_commit: f64::NAN,
                        latency: (f64::NAN, f64::NAN, f64::NAN),
                    }
                } else {
                    let recs = all.get(..row.sqlite_count as usize).unwrap_or(&all);
                    self.sqlite_throughput(recs, row.threads)?
                };
                eprintln!(
                    "append run {run}: {:>3} writers: ledger {:>7.0}/s ({:.1} per commit, {:.1} CPU-us each, p99 {:.1} ms, max {:.1} ms), SQLite {:>6.0}/s ({:.1} CPU-us each, p99 {:.1} ms, max {:.1} ms), {:.1}x",
                    row.threads,
                    l.per_s,
                    l.per_commit,
                    l.cpu_us,
                    l.latency.1 / 1e3,
                    l.latency.2 / 1e3,
                    s.per_s,
                    s.cpu_us,
                    s.latency.1 / 1e3,
                    s.latency.2 / 1e3,
                    l.per_s / s.per_s
                );
                row.ledger_p99_ms.push(l.latency.1 / 1e3);
                row.ledger_max_ms.push(l.latency.2 / 1e3);
                row.sqlite_p99_ms.push(s.latency.1 / 1e3);
                row.sqlite_max_ms.push(s.latency.2 / 1e3);
                row.ledger_per_s.push(l.per_s);
                row.sqlite_per_s.push(s.per_s);
                row.ledger_entries_per_commit.push(l.per_commit);
                row.ledger_cpu_us.push(l.cpu_us);
                row.sqlite_cpu_us.push(s.cpu_us);
            }
        }
        for row in &mut rows {
            row.ledger_median_per_s = median(&row.ledger_per_s);
            row.sqlite_median_per_s = median(&row.sqlite_per_s);
            let ratios: Vec<f64> = row
                .ledger_per_s
                .iter()
                .zip(&row.sqlite_per_s)
                .map(|(l, s)| l / s)
                .collect();
            row.ratio_median = median(&ratios);
        }
        self.report.append = rows;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // latency

    fn latency(&mut self, args: &LatencyArgs) -> Result<()> {
        let recs = records(args.count, 2)?;
        let mut ledger_runs = Vec::new();
        let mut sqlite_runs = Vec::new();
        for run in 1..=self.runs {
            let dir = self.trial_dir("ledger-latency")?;
            let ledger = new_ledger(&dir)?;
            let mut times = Vec::with_capacity(recs.len());
            for entry in &recs {
                let t = Instant::now();
                ledger.append(entry.clone())?;
                times.push(t.elapsed());
            }
            ledger.close()?;
            std::fs::remove_dir_all(&dir)?;
            let slowest = slowest(&times);
            let l = percentiles(&mut times);

            let s = if args.no_peer {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                let dir = self.trial_dir("sqlite-latency")?;
                let path = dir.join("log.db");
                sqlite_create(&path)?;
                let conn = sqlite_writer(&path)?;
                let mut times = Vec::with_capacity(recs.len());
                for entry in &recs {
                    let t = Instant::now();
                    sqlite_append(&conn, entry)?;
                    times.push(t.elapsed());
                }
                drop(conn);
                std::fs::remove_dir_all(&dir)?;
                percentiles(&mut times)
            };
            eprintln!(
                "latency run {run}: ledger p50 {:.0} us p99 {:.0} us max {:.0} us (append {slowest}); SQLite p50 {:.0} us p99 {:.0} us max {:.0} us",
                l.0, l.1, l.2, s.0, s.1, s.2
            );
            ledger_runs.push(l);
            sqlite_runs.push(s);
        }
        self.report.latency = vec![
            latency_row("ledger", args.count, &ledger_runs),
            latency_row("sqlite", args.count, &sqlite_runs),
        ];
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // verify

    /// A ledger and a SQLite database of `size` records (built once per invocation).
    fn built(&mut self, size: u64) -> Result<&Built> {
        if let Some(i) = self.built.iter().position(|b| b.size == size) {
            return self
                .built
                .get(i)
                .ok_or_else(|| anyhow!("lost a built ledger"));
        }
        eprintln!("building a ledger and a SQLite database of {size} entries");
        let ledger_dir = self.scratch.join(format!("ledger-{size}"));
        let sqlite = self.scratch.join(format!("sqlite-{size}.db"));
        let ledger = new_ledger(&ledger_dir)?;
        sqlite_create(&sqlite)?;
        let mut conn = sqlite_writer(&sqlite)?;
        let mut rng = Rng(3);
        let mut done = 0u64;
        let mut build = Duration::ZERO;
        while done < size {
            let n = (size - done).min(BUILD_CHUNK as u64);
            let chunk: Vec<Vec<u8>> = (done..done + n)
                .map(|_| record(&mut rng))
                .collect::<Result<_>>()?;
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO log(entry) VALUES (?1)")?;
                for entry in &chunk {
                    stmt.execute([entry])?;
                }
            }
            tx.commit()?;
            let t = Instant::now();
            ledger.append_all(chunk)?;
            build += t.elapsed();
            done += n;
        }
        ledger.close()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        drop(conn);
        self.built.push(Built {
            size,
            ledger: ledger_dir,
            sqlite,
            build_s: build.as_secs_f64(),
        });
        self.built
            .last()
            .ok_or_else(|| anyhow!("lost a built ledger"))
    }

    fn verify(&mut self, args: &VerifyArgs) -> Result<()> {
        let mut rows = Vec::new();
        for &size in &args.sizes {
            let b = self.built(size)?;
            rows.push(VerifyRow {
                size,
                ledger_build_s: b.build_s,
                ledger_bytes: dir_bytes(&b.ledger)?,
                sqlite_bytes: dir_bytes(&b.sqlite)?,
                ledger_s: Vec::new(),
                ledger_records_s: Vec::new(),
                sqlite_s: Vec::new(),
                ledger_hwm_kib: Vec::new(),
                ledger_records_hwm_kib: Vec::new(),
                sqlite_hwm_kib: Vec::new(),
                ledger_cold_s: Vec::new(),
                sqlite_cold_s: Vec::new(),
                child_start_hwm_kib: 0,
                median_ledger_s: 0.0,
                median_ledger_records_s: 0.0,
                median_sqlite_s: 0.0,
                median_ledger_cold_s: f64::NAN,
                median_sqlite_cold_s: f64::NAN,
                max_ledger_hwm_kib: 0,
                max_ledger_records_hwm_kib: 0,
                max_sqlite_hwm_kib: 0,
            });
        }
        for run in 1..=self.runs {
            for row in &mut rows {
                let b = self
                    .built
                    .iter()
                    .find(|b| b.size == row.size)
                    .ok_or_else(|| anyhow!("no ledger of {}", row.size))?;
                let l = child(ChildKind::Ledger, &b.ledger)?;
                let r = child(ChildKind::LedgerRecords, &b.ledger)?;
                let s = child(ChildKind::Sqlite, &b.sqlite)?;
                eprintln!(
                    "verify run {run}: {} entries: ledger {:.3} s ({} KiB), with record checks {:.3} s ({} KiB); SQLite integrity_check {:.3} s ({} KiB)",
                    row.size, l.seconds, l.hwm_kib, r.seconds, r.hwm_kib, s.seconds, s.hwm_kib
                );
                row.child_start_hwm_kib = row.child_start_hwm_kib.max(l.start_hwm_kib);
                row.ledger_s.push(l.seconds);
                row.ledger_records_s.push(r.seconds);
                row.sqlite_s.push(s.seconds);
                row.ledger_hwm_kib.push(l.hwm_kib);
                row.ledger_records_hwm_kib.push(r.hwm_kib);
                row.sqlite_hwm_kib.push(s.hwm_kib);
                if !args.warm_only {
                    evict(&b.ledger)?;
                    let l = child(ChildKind::Ledger, &b.ledger)?;
                    evict(&b.sqlite)?;
                    let s = child(ChildKind::Sqlite, &b.sqlite)?;
                    eprintln!(
                        "verify run {run}: {} entries, cold page cache: ledger {:.3} s ({} KiB); SQLite integrity_check {:.3} s ({} KiB)",
                        row.size, l.seconds, l.hwm_kib, s.seconds, s.hwm_kib
                    );
                    row.ledger_cold_s.push(l.seconds);
                    row.sqlite_cold_s.push(s.seconds);
                    row.ledger_hwm_kib.push(l.hwm_kib);
                    row.sqlite_hwm_kib.push(s.hwm_kib);
                }
            }
        }
        for row in &mut rows {
            row.median_ledger_s = median(&row.ledger_s);
            row.median_ledger_records_s = median(&row.ledger_records_s);
            row.median_sqlite_s = median(&row.sqlite_s);
            row.median_ledger_cold_s = median(&row.ledger_cold_s);
            row.median_sqlite_cold_s = median(&row.sqlite_cold_s);
            row.max_ledger_hwm_kib = row.ledger_hwm_kib.iter().copied().max().unwrap_or(0);
            row.max_ledger_records_hwm_kib = row
                .ledger_records_hwm_kib
                .iter()
                .copied()
                .max()
                .unwrap_or(0);
            row.max_sqlite_hwm_kib = row.sqlite_hwm_kib.iter().copied().max().unwrap_or(0);
        }
        self.report.verify = rows;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // proof

    fn proof(&mut self, args: &ProofArgs) -> Result<()> {
        let runs = self.runs;
        let b = self.built(args.size)?;
        let published = Published::open(&b.ledger, None)?;
        let size = published.size();
        let root = published.checkpoint().root;
        let conn = Connection::open(&b.sqlite)?;
        let mut row = ProofRow {
            size,
            samples: args.samples,
            proof_len: 0,
            generate_us: Vec::new(),
            check_us: Vec::new(),
            sqlite_read_us: Vec::new(),
            generate_p99_us: Vec::new(),
            median_generate_us: 0.0,
            median_generate_p99_us: 0.0,
            median_check_us: 0.0,
            median_sqlite_read_us: 0.0,
        };
        for run in 1..=runs {
            let mut rng = Rng(100 + run as u64);
            let mut generate = Vec::with_capacity(args.samples);
            let mut check = Vec::with_capacity(args.samples);
            let mut read = Vec::with_capacity(args.samples);
            let mut stmt = conn.prepare_cached("SELECT entry FROM log WHERE id = ?1")?;
            for _ in 0..args.samples {
                let index = rng.below(size);
                let t = Instant::now();
                let (leaf, proof) = published.inclusion_proof(index)?;
                let t1 = Instant::now();
                check_inclusion(&proof, size, &root, index, &leaf)?;
                let t2 = Instant::now();
                generate.push(t1 - t);
                check.push(t2 - t1);
                row.proof_len = row.proof_len.max(proof.len());

                // SQLite rowids start at 1.
                let t = Instant::now();
                let entry: Vec<u8> = stmt.query_row([index as i64 + 1], |r| r.get(0))?;
                read.push(t.elapsed());
                if entry.is_empty() {
                    bail!("SQLite row {} is empty", index + 1);
                }
            }
            let (g50, g99, _) = percentiles(&mut generate);
            let (c50, _, _) = percentiles(&mut check);
            let (r50, _, _) = percentiles(&mut read);
            eprintln!(
                "proof run {run}: generate {g50:.1} us (p99 {g99:.1}), check {c50:.1} us; SQLite read by id {r50:.1} us"
            );
            row.generate_us.push(g50);
            row.generate_p99_us.push(g99);
            row.check_us.push(c50);
            row.sqlite_read_us.push(r50);
        }
        row.median_generate_us = median(&row.generate_us);
        row.median_generate_p99_us = median(&row.generate_p99_us);
        row.median_check_us = median(&row.check_us);
        row.median_sqlite_read_us = median(&row.sqlite_read_us);
        self.report.proof = Some(row);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The verifying child

fn child(kind: ChildKind, path: &Path) -> Result<ChildResult> {
    let exe = std::env::current_exe()?;
    let arg = match kind {
        ChildKind::Ledger => "ledger",
        ChildKind::LedgerRecords => "ledger-records",
        ChildKind::Sqlite => "sqlite",
    };
    let out = Command::new(exe)
        .args(["verify-child", "--kind", arg, "--path"])
        .arg(path)
        .output()
        .context("running the verifying child")?;
    if !out.status.success() {
        bail!(
            "the verifying child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let result: ChildResult =
        serde_json::from_slice(&out.stdout).context("reading the verifying child's result")?;
    if !result.ok {
        bail!(
            "{:?} verification of {} failed: {}",
            kind,
            path.display(),
            result.detail
        );
    }
    Ok(result)
}

fn verify_child(kind: ChildKind, path: &Path) -> Result<()> {
    let start_hwm_kib = vm_hwm_kib()?;
    let t = Instant::now();
    let (ok, detail) = match kind {
        ChildKind::Ledger => {
            let report = ledger::verify::verify(path, None, None, |_| Ok(()))?;
            (
                report.ok(),
                format!("{} entries, {:?}", report.size, report.problems),
            )
        }
        ChildKind::LedgerRecords => {
            let report = ledger::verify::verify(path, None, None, |e| {
                Record::check(e).map_err(|e| e.to_string())
            })?;
            (
                report.ok(),
                format!("{} entries, {:?}", report.size, report.problems),
            )
        }
        ChildKind::Sqlite => {
            let conn = Connection::open(path)?;
            let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            (result == "ok", result)
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    let result = ChildResult {
        seconds,
        start_hwm_kib,
        hwm_kib: vm_hwm_kib()?,
        ok,
        detail,
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Drops a store's files from the page cache (after syncing them: dirty pages stay), so
/// that the next reads come from the disk.
fn evict(path: &Path) -> Result<()> {
    if std::fs::metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            evict(&entry?.path())?;
        }
        return Ok(());
    }
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
        .with_context(|| format!("evicting {} from the page cache", path.display()))?;
    Ok(())
}

/// Peak resident set size of this process so far.
fn vm_hwm_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/self/status"))
}

// ---------------------------------------------------------------------------------------
// Helpers

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let hi = v.get(n / 2).copied().unwrap_or(f64::NAN);
    if n % 2 == 1 {
        hi
    } else {
        (v.get(n / 2 - 1).copied().unwrap_or(f64::NAN) + hi) / 2.0
    }
}

/// The position of the slowest time.
fn slowest(times: &[Duration]) -> usize {
    times
        .iter()
        .enumerate()
        .max_by_key(|(_, t)| **t)
        .map_or(0, |(i, _)| i)
}

/// p50, p99 and max in microseconds.
fn percentiles(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len().saturating_sub(1)) as f64 * p).round() as usize;
        times.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.50), at(0.99), at(1.0))
}

fn latency_row(store: &'static str, count: u64, runs: &[(f64, f64, f64)]) -> LatencyRow {
    let p50: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let p99: Vec<f64> = runs.iter().map(|r| r.1).collect();
    let max: Vec<f64> = runs.iter().map(|r| r.2).collect();
    LatencyRow {
        store,
        count,
        median_p50_us: median(&p50),
        median_p99_us: median(&p99),
        median_max_us: median(&max),
        p50_us: p50,
        p99_us: p99,
        max_us: max,
    }
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn dir_bytes(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += dir_bytes(&entry?.path())?;
    }
    Ok(total)
}

/// The file system and device that hold `dir` (the longest matching mount point).
fn machine(dir: &Path) -> Result<Machine> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(point), Some(fs)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|b| point.len() > b.0) {
            best = Some((point.len(), fs.to_string(), device.to_string()));
        }
    }
    let (_, filesystem, device) = best.unwrap_or((0, "unknown".into(), "unknown".into()));
    let mut rng = Rng(1);
    Ok(Machine {
        dir: dir.display().to_string(),
        filesystem,
        device,
        cpu: std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_start: load_average(),
        load_end: String::new(),
        record_bytes: record(&mut rng)?.len(),
        sqlite: rusqlite::version().to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// Tables (Markdown, as in docs/PERFORMANCE.md)

fn tables(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "\nStore: {} ({} on {}); {}, {} CPUs; load average {} at the start, {} at the end; records of {} bytes; SQLite {}; medians of {} runs.\n",
        m.dir,
        m.filesystem,
        m.device,
        m.cpu,
        m.cpus,
        m.load_start,
        m.load_end,
        m.record_bytes,
        m.sqlite,
        r.runs
    );
    if !r.append.is_empty() {
        s.push_str("| writers | appends (ledger / SQLite) | ledger appends/s | SQLite appends/s | ledger / SQLite | ledger entries per commit | CPU µs per append (ledger / SQLite) | p99 ms (ledger / SQLite) | max ms (ledger / SQLite) |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &r.append {
            let _ = writeln!(
                s,
                "| {} | {} / {} | {:.0} | {:.0} | {:.1}× | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
                row.threads,
                row.count,
                row.sqlite_count,
                row.ledger_median_per_s,
                row.sqlite_median_per_s,
                row.ratio_median,
                median(&row.ledger_entries_per_commit),
                median(&row.ledger_cpu_us),
                median(&row.sqlite_cpu_us),
                median(&row.ledger_p99_ms),
                median(&row.sqlite_p99_ms),
                median(&row.ledger_max_ms),
                median(&row.sqlite_max_ms)
            );
        }
        s.push('\n');
    }
    if !r.latency.is_empty() {
        s.push_str(
            "| one writer, sequential durable appends | count | p50 µs | p99 µs | max µs |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|\n");
        for row in &r.latency {
            let name = if row.store == "ledger" {
                "ledger `append`"
            } else {
                "SQLite INSERT (autocommit)"
            };
            let _ = writeln!(
                s,
                "| {name} | {} | {:.0} | {:.0} | {:.0} |",
                row.count, row.median_p50_us, row.median_p99_us, row.median_max_us
            );
        }
        s.push('\n');
    }
    if !r.verify.is_empty() {
        s.push_str("| entries | ledger MiB | full verification s | with record checks s | cold cache s | peak RSS KiB | SQLite MiB | SQLite integrity_check s | cold cache s | peak RSS KiB |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &r.verify {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} / {} | {:.0} | {:.2} | {:.2} | {} |",
                row.size,
                row.ledger_bytes as f64 / 1048576.0,
                row.median_ledger_s,
                row.median_ledger_records_s,
                row.median_ledger_cold_s,
                row.max_ledger_hwm_kib,
                row.max_ledger_records_hwm_kib,
                row.sqlite_bytes as f64 / 1048576.0,
                row.median_sqlite_s,
                row.median_sqlite_cold_s,
                row.max_sqlite_hwm_kib
            );
        }
        let _ = writeln!(
            s,
            "\n(peak RSS: largest VmHWM of the verifying process over the runs, without / with record checks; the process starts at {} KiB)\n",
            r.verify.iter().map(|v| v.child_start_hwm_kib).max().unwrap_or(0)
        );
    }
    if let Some(p) = &r.proof {
        s.push_str("| entries | proof hashes | generate inclusion proof µs (p99) | check µs | SQLite read by id µs |\n");
        s.push_str("|---:|---:|---:|---:|---:|\n");
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} ({:.1}) | {:.1} | {:.1} |\n",
            p.size,
            p.proof_len,
            p.median_generate_us,
            p.median_generate_p99_us,
            p.median_check_us,
            p.median_sqlite_read_us
        );
    }
    s.push_str(&targets(r));
    s
}

fn targets(r: &Report) -> String {
    let mut s = String::from("| target | measured | met |\n|---|---:|---|\n");
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    for row in r.append.iter().filter(|row| row.threads > 1) {
        let _ = writeln!(
            s,
            "| >= 50,000 appends/s with {} writers | {:.0}/s | {} |",
            row.threads,
            row.ledger_median_per_s,
            met(row.ledger_median_per_s >= 50_000.0)
        );
        let _ = writeln!(
            s,
            "| >= 3× SQLite with {} writers | {:.1}× | {} |",
            row.threads,
            row.ratio_median,
            met(row.ratio_median >= 3.0)
        );
    }
    if let Some(v) = r.verify.iter().find(|v| v.size == 1_000_000) {
        let _ = writeln!(
            s,
            "| full verification of 1,000,000 entries < 3 s | {:.2} s | {} |",
            v.median_ledger_s,
            met(v.median_ledger_s < 3.0)
        );
        let _ = writeln!(
            s,
            "| the same, with record checks (`warden ledger verify`) | {:.2} s | {} |",
            v.median_ledger_records_s,
            met(v.median_ledger_records_s < 3.0)
        );
        if v.median_ledger_cold_s.is_finite() {
            let _ = writeln!(
                s,
                "| the same, cold page cache | {:.2} s | {} |",
                v.median_ledger_cold_s,
                met(v.median_ledger_cold_s < 3.0)
            );
        }
    }
    if let (Some(small), Some(big)) = (r.verify.first(), r.verify.last()) {
        if big.size > small.size {
            let growth = big.max_ledger_hwm_kib as f64 / small.max_ledger_hwm_kib.max(1) as f64;
            let _ = writeln!(
                s,
                "| verification memory flat in size ({} → {} entries) | {} → {} KiB ({:.2}×) | {} |",
                small.size,
                big.size,
                small.max_ledger_hwm_kib,
                big.max_ledger_hwm_kib,
                growth,
                met(growth < 1.25)
            );
        }
    }
    if let Some(p) = &r.proof {
        let _ = writeln!(
            s,
            "| inclusion proofs in microseconds | {:.1} µs + {:.1} µs | {} |",
            p.median_generate_us,
            p.median_check_us,
            met(p.median_generate_us < 1000.0 && p.median_check_us < 1000.0)
        );
    }
    s
}
