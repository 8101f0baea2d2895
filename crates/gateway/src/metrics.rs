//! Counters of the inference plane in the Prometheus text format (version 0.0.4), served on
//! the metrics listener (`[serve] metrics_listen`, off by default). Labels are the route,
//! the status, the decision code and the event loop's number: all from fixed sets, so the
//! number of series is bounded. Principals and models are not labels: they would let
//! anyone who can read the metrics enumerate the callers, and grow without bound.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::sharded::Sharded;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The request counters of one gateway, per thread ([`Sharded`]): every request counts,
/// from every event loop; reading the metrics sums the shards.
#[derive(Default)]
pub struct Metrics {
    shards: Sharded<Shard>,
}

/// One thread's counters.
#[derive(Default)]
struct Shard {
    /// (route, status, decision) → requests. Each part comes from a fixed set.
    requests: Mutex<BTreeMap<(&'static str, u16, &'static str), u64>>,
    /// Counts per bucket of [`BUCKETS`], then +Inf.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
}

/// What the gateway knows of its state when the metrics are read.
pub struct Gauges {
    pub in_flight: usize,
    pub lockdown: bool,
    pub ledger_healthy: bool,
    pub registry_readable: bool,
    pub runtime_models: usize,
    /// Inference connections open, per event loop.
    pub open_connections: Vec<usize>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(
        &self,
        route: &'static str,
        status: u16,
        decision: &'static str,
        took: Duration,
    ) {
        let shard = self.shards.local();
        {
            let mut map = shard.requests.lock().unwrap_or_else(|p| p.into_inner());
            *map.entry((route, status, decision)).or_insert(0) += 1;
        }
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        shard.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        shard.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP warden_requests_total Inference requests answered, by route, status and decision.\n\
             # TYPE warden_requests_total counter"
        );
        let mut map = BTreeMap::new();
        for shard in self.shards.iter() {
            for (series, n) in shard
                .requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                *map.entry(*series).or_insert(0u64) += n;
            }
        }
        for ((route, status, decision), n) in &map {
            let _ = writeln!(
                out,
                "warden_requests_total{{route=\"{route}\",status=\"{status}\",decision=\"{decision}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_request_duration_seconds Time from a request's headers to its answer.\n\
             # TYPE warden_request_duration_seconds histogram"
        );
        let bucket = |i: usize| -> u64 {
            self.shards
                .iter()
                .map(|s| s.latency[i].load(Ordering::Relaxed))
                .sum()
        };
        let mut cumulative = 0u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += bucket(i);
            let _ = writeln!(
                out,
                "warden_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += bucket(BUCKETS.len());
        let sum_us: u64 = self
            .shards
            .iter()
            .map(|s| s.latency_sum_us.load(Ordering::Relaxed))
            .sum();
        let sum = sum_us as f64 / 1e6;
        let _ = writeln!(
            out,
            "warden_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n\
             warden_request_duration_seconds_sum {sum}\n\
             warden_request_duration_seconds_count {cumulative}"
        );
        for (name, help, value) in [
            (
                "warden_requests_in_flight",
                "Requests being answered now.",
                gauges.in_flight as u64,
            ),
            (
                "warden_lockdown",
                "1 while the lockdown is on.",
                u64::from(gauges.lockdown),
            ),
            (
                "warden_ledger_healthy",
                "1 while requests can be recorded (0: the gateway refuses them).",
                u64::from(gauges.ledger_healthy),
            ),
            (
                "warden_registry_readable",
                "1 while the registry can be read (0: the gateway refuses requests).",
                u64::from(gauges.registry_readable),
            ),
            (
                "warden_runtime_models",
                "Models served by the sandboxed runtime.",
                gauges.runtime_models as u64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_connections_open Inference connections open, by event loop.\n\
             # TYPE warden_connections_open gauge"
        );
        for (i, n) in gauges.open_connections.iter().enumerate() {
            let _ = writeln!(out, "warden_connections_open{{loop=\"{i}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            in_flight: 3,
            lockdown: false,
            ledger_healthy: true,
            registry_readable: true,
            runtime_models: 1,
            open_connections: vec![4, 5],
        }
    }

    #[test]
    fn counts_and_latencies_are_rendered_in_the_text_format() {
        let m = Metrics::default();
        m.observe("openai.chat", 200, "allowed", Duration::from_micros(300));
        m.observe("openai.chat", 200, "allowed", Duration::from_millis(3));
        m.observe("kserve.infer", 429, "rate_limited", Duration::from_secs(10));
        let text = m.render(&gauges());
        assert!(text.contains(
            "warden_requests_total{route=\"openai.chat\",status=\"200\",decision=\"allowed\"} 2\n"
        ));
        assert!(text.contains(
            "warden_requests_total{route=\"kserve.infer\",status=\"429\",decision=\"rate_limited\"} 1\n"
        ));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("warden_request_duration_seconds_count 3\n"));
        assert!(text.contains("warden_request_duration_seconds_sum 10.0033\n"));
        assert!(text.contains("warden_requests_in_flight 3\n"));
        assert!(text.contains("warden_lockdown 0\n"));
        assert!(text.contains(
            "warden_connections_open{loop=\"0\"} 4\nwarden_connections_open{loop=\"1\"} 5\n"
        ));
        // Every sample line follows a TYPE line of its family, and every line parses as
        // `name{labels} value` or a comment.
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("warden_"), "{line}");
        }
    }

    #[test]
    fn counts_from_many_threads_are_summed_across_the_shards() {
        let m = std::sync::Arc::new(Metrics::default());
        // More threads than shards: some share one.
        let threads: Vec<_> = (0..crate::sharded::SHARDS + 5)
            .map(|_| {
                let m = std::sync::Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        m.observe("openai.chat", 200, "allowed", Duration::from_millis(2));
                    }
                    m.observe("openai.chat", 429, "rate_limited", Duration::from_secs(6));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = crate::sharded::SHARDS + 5;
        let text = m.render(&gauges());
        assert!(text.contains(&format!(
            "warden_requests_total{{route=\"openai.chat\",status=\"200\",decision=\"allowed\"}} {}\n",
            10 * n
        )));
        assert!(text.contains(&format!(
            "warden_requests_total{{route=\"openai.chat\",status=\"429\",decision=\"rate_limited\"}} {n}\n"
        )));
        assert!(text.contains(&format!(
            "warden_request_duration_seconds_bucket{{le=\"0.0025\"}} {}\n",
            10 * n
        )));
        assert!(text.contains(&format!(
            "warden_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            11 * n
        )));
        assert!(text.contains(&format!(
            "warden_request_duration_seconds_sum {}\n",
            (n as u64 * 6_020_000) as f64 / 1e6
        )));
    }
}
