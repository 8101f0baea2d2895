//! What one authorisation decision costs on the request path, with the decisions cache
//! cold (every request new) and warm (the same caller, model and source again), for a
//! handful of policies. Run with:
//!
//!     cargo run --release -p gateway --example policy_bench
//!
//! Prints the median of 7 runs of 20,000 decisions each, in µs per decision.

use std::time::{Instant, SystemTime};

use gateway::policy::{Action, AuthzRequest, Backend, Credential, Policies, DEFAULT_POLICY};

const POLICIES: &str = r#"
@id("ops") permit (principal, action == Warden::Action::"infer", resource)
when { principal.groups.contains("ops") && resource.name like "llama*" };
@id("no-internal") forbid (principal, action, resource)
when { context.source_ip.isInRange(ip("10.0.0.0/8")) };
@id("office-hours") forbid (principal, action, resource)
unless { context.weekday_utc <= 6 && context.hour_utc >= 0 };
@id("upstream-tls") forbid (principal, action, resource)
when { resource.backend == "upstream" && !context.tls };
"#;

const N: usize = 20_000;

fn request<'a>(model: &'a str, groups: &'a [String]) -> AuthzRequest<'a> {
    AuthzRequest {
        principal: "service-account-7",
        credential: Credential::Jwt,
        groups,
        action: Action::Infer,
        model,
        version: None,
        backend: Backend::Upstream,
        route: "openai.chat",
        protocol: "openai",
        source: std::net::IpAddr::from([192, 0, 2, 10]),
        tls: true,
        in_key_scope: true,
        now: SystemTime::now(),
    }
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let text = format!("{DEFAULT_POLICY}{POLICIES}");
    let policies = Policies::parse(&text, "bench.cedar")?;
    let groups = vec!["ops".to_string(), "ml".to_string()];
    let models: Vec<String> = (0..N).map(|i| format!("llama-{i}")).collect();
    if !policies.authorize(&request("llama-0", &groups)).allowed {
        anyhow::bail!("the bench's request should be allowed");
    }
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..7 {
        // A fresh copy of the policies: an empty cache, and every model new to it.
        let fresh = Policies::parse(&text, "bench.cedar")?;
        let t = Instant::now();
        for m in &models {
            std::hint::black_box(fresh.authorize(&request(m, &groups)));
        }
        cold.push(t.elapsed().as_secs_f64() * 1e6 / N as f64);
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(fresh.authorize(&request("llama-1", &groups)));
        }
        warm.push(t.elapsed().as_secs_f64() * 1e6 / N as f64);
    }
    let (cold, warm) = (median(cold), median(warm));
    println!("policies: {}", policies.ids().join(", "));
    println!("decision, cache cold: {cold:.2} µs");
    println!("decision, cache warm: {warm:.2} µs");
    println!("cold / warm: {:.1}x", cold / warm);
    Ok(())
}
