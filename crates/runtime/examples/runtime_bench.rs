//! The sandbox boundary's cost: parent↔worker round trip against the model's own compute
//! time in-process, and worker start time (spawn, lock down, load).
//!
//! ```sh
//! cargo run --release -p runtime --example runtime_bench [-- ROUND_TRIPS STARTS]
//! ```
//!
//! The example is its own worker: started with `__runtime-worker` as its first argument it
//! runs `runtime::worker_main`, as `warden` will with a hidden subcommand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use runtime::{Engine, Tensor, Worker, WorkerConfig};

const WORKER_ARG: &str = "__runtime-worker";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == WORKER_ARG) {
        return runtime::worker_main(args.skip(1));
    }
    let numbers: Vec<usize> = args
        .filter_map(|a| a.to_str().and_then(|s| s.parse().ok()))
        .collect();
    let round_trips = numbers.first().copied().unwrap_or(20_000);
    let starts = numbers.get(1).copied().unwrap_or(50);
    match bench(round_trips, starts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runtime_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn summary(name: &str, mut samples: Vec<Duration>, fmt: fn(Duration) -> String) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    println!(
        "{name:<44} n={:<6} p50 {:>10}  p99 {:>10}  min {:>10}",
        samples.len(),
        fmt(p50),
        fmt(percentile(&samples, 0.99)),
        fmt(samples[0]),
    );
    p50
}

fn bench(round_trips: usize, starts: usize) -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..");
    let model = std::fs::read(root.join("examples/models/iris/model.onnx"))?;
    let mut cfg = WorkerConfig::new(std::env::current_exe()?);
    cfg.args = vec![WORKER_ARG.into()];

    let rows = |n: usize| -> Result<Tensor, Box<dyn std::error::Error>> {
        let sample = [5.9f32, 3.0, 5.1, 1.8];
        let data = (0..n).flat_map(|_| sample).collect();
        Ok(Tensor::new(vec![n, 4], data)?)
    };

    println!(
        "model: examples/models/iris/model.onnx ({} bytes)",
        model.len()
    );
    // Worker start: spawn + lock down + load, until the worker says it is ready.
    let mut start_times = Vec::with_capacity(starts);
    let mut report = None;
    for _ in 0..starts {
        let t = Instant::now();
        let w = Worker::spawn(&model, cfg.clone())?;
        start_times.push(t.elapsed());
        report = w.sandbox_report();
    }
    if let Some(r) = report {
        println!("sandbox: {r}");
    }
    let mut loads = Vec::with_capacity(starts);
    for _ in 0..starts {
        let t = Instant::now();
        let _engine = Engine::load(&model)?;
        loads.push(t.elapsed());
    }
    println!();
    summary(
        "worker start (spawn, lock down, load, ready)",
        start_times,
        ms,
    );
    summary("model load in-process (parse, optimise)", loads, ms);

    let engine = Engine::load(&model)?;
    let worker = Worker::spawn(&model, cfg)?;
    for batch in [1usize, 64] {
        let input = rows(batch)?;
        for _ in 0..1000 {
            worker.infer(std::slice::from_ref(&input))?;
            engine.run(vec![input.clone()])?;
        }
        let mut inproc = Vec::with_capacity(round_trips);
        let mut sandboxed = Vec::with_capacity(round_trips);
        // Interleaved, so both see the same machine.
        for _ in 0..round_trips {
            let t = Instant::now();
            let out = engine.run(vec![input.clone()])?;
            inproc.push(t.elapsed());
            std::hint::black_box(out);
            let t = Instant::now();
            let out = worker.infer(std::slice::from_ref(&input))?;
            sandboxed.push(t.elapsed());
            std::hint::black_box(out);
        }
        println!();
        let a = summary(&format!("in-process compute, batch {batch}"), inproc, us);
        let b = summary(
            &format!("sandboxed round trip, batch {batch}"),
            sandboxed,
            us,
        );
        println!(
            "{:<44} p50 {:>10}",
            format!("boundary cost, batch {batch}"),
            us(b.saturating_sub(a))
        );
    }
    Ok(())
}
