//! Rate limits, token quotas, concurrency limits and the slowing of failed sign-ins.
//!
//! Rates use the generic cell rate algorithm (GCRA): each key keeps one number, its
//! "theoretical arrival time" (TAT). A rate of `n` per minute with a burst of `b` lets `b`
//! requests through back to back, then one every `60/n` seconds; a refusal says exactly
//! when the next one will pass (`Retry-After`). Token quotas use the same bucket with a
//! variable cost charged after the answer, when the tokens are known: a request is let in
//! while the bucket is not in debt.
//!
//! Every map is bounded. Entries whose TAT has passed (and, for a principal, with nothing
//! in flight) hold nothing (an absent key behaves the same) and are swept when a map is
//! full; a key that still finds no room is refused (principals are few, so this only bites
//! under attack), except for failed sign-ins by source, where an untracked source is simply
//! not slowed. A principal's buckets and requests in flight, the models' buckets and the
//! count of all requests in flight are kept together under one lock (`gcra.rs` has the
//! arithmetic).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::FastMap;

mod gcra;

use gcra::Buckets;

/// Most keys one limiter tracks.
pub const MAX_KEYS: usize = 65_536;

/// A rate: `per_minute` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u64,
    pub burst: u64,
}

impl Rate {
    /// Checks a rate from the configuration.
    pub fn new(per_minute: u64, burst: u64) -> Result<Rate, String> {
        if per_minute == 0 {
            return Err("a rate must allow at least 1 per minute".into());
        }
        if burst == 0 {
            return Err("a burst must be at least 1".into());
        }
        Ok(Rate { per_minute, burst })
    }

    /// Nanoseconds one unit adds to the TAT.
    fn emission_ns(self) -> u64 {
        (60_000_000_000 / self.per_minute).max(1)
    }

    /// How far ahead of now the TAT may run.
    fn tolerance_ns(self) -> u64 {
        self.emission_ns().saturating_mul(self.burst)
    }
}

/// What the limits layer is configured with (`[serve.limits]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests per principal (None: unlimited).
    pub principal: Option<Rate>,
    /// Per-principal overrides of `principal` and `tokens`.
    pub principals: HashMap<String, PrincipalLimits>,
    /// Requests per model, all principals together.
    pub models: HashMap<String, Rate>,
    /// Tokens per model, all principals together.
    pub model_tokens: HashMap<String, Rate>,
    /// Tokens (prompt and completion, as the upstream reports them) per principal.
    pub tokens: Option<Rate>,
    /// Requests one principal may have in flight at once (0: unlimited).
    pub concurrent_per_principal: usize,
    /// Requests in flight at once, all principals together (0: unlimited).
    pub concurrent: usize,
    /// Failed sign-ins a source or principal may make (`per_minute`, `burst`) before it
    /// is slowed to that rate and an alert is recorded.
    pub failed_auth: Rate,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            principal: Some(Rate {
                per_minute: 600,
                burst: 60,
            }),
            principals: HashMap::new(),
            models: HashMap::new(),
            model_tokens: HashMap::new(),
            tokens: None,
            concurrent_per_principal: 32,
            concurrent: 1024,
            failed_auth: Rate {
                per_minute: 10,
                burst: 10,
            },
        }
    }
}

/// One principal's own limits (None: unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrincipalLimits {
    pub requests: Option<Rate>,
    pub tokens: Option<Rate>,
}

/// A refusal: wait this long before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header (at least 1).
    pub fn seconds(self) -> u64 {
        (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1)
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The principal's request rate.
    Principal(RetryAfter),
    /// The model's request rate.
    Model(RetryAfter),
    /// The principal's token quota.
    Tokens(RetryAfter),
    /// The model's token quota.
    ModelTokens(RetryAfter),
    /// The principal already has its most requests in flight.
    PrincipalBusy,
    /// The gateway already has its most requests in flight.
    Busy,
    /// Too many failed sign-ins from this source.
    FailedSignIns(RetryAfter),
}

impl Refusal {
    /// The answer the caller gets: 429 with `Retry-After`, or 503 when the whole gateway
    /// is busy.
    pub fn error(self) -> ApiError {
        use hyper::StatusCode;
        let limited = |code, message: &str, wait: RetryAfter| {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(wait.seconds())
        };
        match self {
            Refusal::Principal(w) => limited(
                "rate_limited",
                "this principal has reached its request rate; retry after the time in Retry-After",
                w,
            ),
            Refusal::Model(w) => limited(
                "model_rate_limited",
                "this model has reached its request rate; retry after the time in Retry-After",
                w,
            ),
            Refusal::Tokens(w) => limited(
                "token_quota_exceeded",
                "this principal has used its token quota; retry after the time in Retry-After",
                w,
            ),
            Refusal::ModelTokens(w) => limited(
                "model_token_quota_exceeded",
                "this model has used its token quota; retry after the time in Retry-After",
                w,
            ),
            Refusal::FailedSignIns(w) => limited(
                "too_many_failed_attempts",
                "too many failed sign-ins from this address; retry after the time in Retry-After",
                w,
            ),
            Refusal::PrincipalBusy => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_concurrent_requests",
                "this principal has too many requests in flight; wait for one to finish",
            )
            .retry_after(1),
            Refusal::Busy => ApiError::unavailable(
                "server_busy",
                "the gateway has too many requests in flight; try again shortly",
            )
            .retry_after(1),
        }
    }
}

/// A failed sign-in crossed the threshold: worth one alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    Source(IpAddr),
    Principal(String),
}

/// The limits of one gateway.
pub struct Limits {
    config: LimitsConfig,
    epoch: Instant,
    /// What the requests use, under one lock: a request takes it once to be admitted,
    /// once for its model, once to charge its tokens and once to leave.
    usage: Mutex<Usage>,
    /// Whether any model has a rate or a token quota (if none, `admit_model` takes no lock).
    model_limits: bool,
    failed_sources: Buckets<IpAddr>,
    failed_principals: Buckets<String>,
}

/// The buckets and counts the requests share.
struct Usage {
    /// Principals seen of late, at most [`MAX_KEYS`]: those idle are swept when it is full.
    principals: FastMap<Arc<str>, PrincipalUse>,
    /// The models with a rate or a token quota: all of them, from the configuration.
    models: FastMap<String, ModelUse>,
    /// Requests in flight, all principals together.
    in_flight: usize,
    /// Most principals tracked at once ([`MAX_KEYS`]).
    max_principals: usize,
}

/// One principal's buckets and requests in flight, with its rates resolved once.
struct PrincipalUse {
    /// The map's key, shared with the principal's [`InFlight`]s.
    key: Arc<str>,
    requests: Option<Rate>,
    tokens: Option<Rate>,
    requests_tat: u64,
    tokens_tat: u64,
    in_flight: usize,
}

impl PrincipalUse {
    /// Holds nothing: no request in flight, both buckets drained.
    fn idle(&self, now: u64) -> bool {
        self.in_flight == 0 && self.requests_tat <= now && self.tokens_tat <= now
    }
}

/// One model's buckets.
#[derive(Default)]
struct ModelUse {
    requests: Option<Rate>,
    tokens: Option<Rate>,
    requests_tat: u64,
    tokens_tat: u64,
}

impl Usage {
    /// `principal`'s entry, made if new (when there is room, after sweeping idle ones).
    fn principal(
        &mut self,
        principal: &str,
        config: &LimitsConfig,
        now: u64,
    ) -> Option<&mut PrincipalUse> {
        if !self.principals.contains_key(principal) {
            if self.principals.len() >= self.max_principals {
                self.principals.retain(|_, p| !p.idle(now));
                if self.principals.len() >= self.max_principals {
                    return None;
                }
            }
            let own = config.principals.get(principal);
            let key: Arc<str> = Arc::from(principal);
            self.principals.insert(
                Arc::clone(&key),
                PrincipalUse {
                    key,
                    requests: own.map_or(config.principal, |o| o.requests),
                    tokens: own.map_or(config.tokens, |o| o.tokens),
                    requests_tat: 0,
                    tokens_tat: 0,
                    in_flight: 0,
                },
            );
        }
        self.principals.get_mut(principal)
    }
}

/// A request in flight; dropping it frees its place.
pub struct InFlight {
    limits: Arc<Limits>,
    principal: Arc<str>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut usage = self.limits.usage();
        usage.in_flight = usage.in_flight.saturating_sub(1);
        // The entry stays while it has a request in flight: it cannot have been swept.
        if let Some(p) = usage.principals.get_mut(&*self.principal) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }
}

/// IPv6 sources are counted by /64: one host usually holds a whole /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Arc<Limits> {
        let mut models: FastMap<String, ModelUse> = FastMap::default();
        for (m, rate) in &config.models {
            models.entry(m.clone()).or_default().requests = Some(*rate);
        }
        for (m, rate) in &config.model_tokens {
            models.entry(m.clone()).or_default().tokens = Some(*rate);
        }
        Arc::new(Limits {
            model_limits: !models.is_empty(),
            usage: Mutex::new(Usage {
                principals: FastMap::default(),
                models,
                in_flight: 0,
                max_principals: MAX_KEYS,
            }),
            config,
            epoch: Instant::now(),
            failed_sources: Buckets::new(MAX_KEYS),
            failed_principals: Buckets::new(MAX_KEYS),
        })
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before credentials are checked: is this source slowed for failed sign-ins?
    pub fn check_source(&self, source: IpAddr) -> Result<(), Refusal> {
        self.failed_sources
            .peek(&source_key(source), self.config.failed_auth, self.now())
            .map_err(Refusal::FailedSignIns)
    }

    /// Counts a failed sign-in from `source` (naming `principal` when the credential
    /// named a known one). Returns the alerts this failure crossed into.
    pub fn failed_sign_in(&self, source: IpAddr, principal: Option<&str>) -> Vec<Alert> {
        let now = self.now();
        let rate = self.config.failed_auth;
        let mut alerts = Vec::new();
        let key = source_key(source);
        // A failure past the threshold is not counted again (nor alerted on again) until
        // the bucket has drained.
        if self.failed_sources.take(&key, rate, 1, now).is_ok()
            && self.failed_sources.peek(&key, rate, now).is_err()
        {
            alerts.push(Alert::Source(key));
        }
        if let Some(p) = principal {
            if self.failed_principals.take(p, rate, 1, now).is_ok()
                && self.failed_principals.peek(p, rate, now).is_err()
            {
                alerts.push(Alert::Principal(p.to_string()));
            }
        }
        alerts
    }

    /// After authentication: the principal's token quota, its rate, then the
    /// concurrency, in all and per principal. A refused request takes nothing; an admitted
    /// one holds its place until the returned guard is dropped.
    pub fn admit(self: &Arc<Self>, principal: &str) -> Result<InFlight, Refusal> {
        let now = self.now();
        let mut guard = self.usage();
        let usage = &mut *guard;
        let busy = self.config.concurrent > 0 && usage.in_flight >= self.config.concurrent;
        // No room to track one more principal (only under a flood of them): busy.
        let p = usage
            .principal(principal, &self.config, now)
            .ok_or(Refusal::Busy)?;
        if let Some(rate) = p.tokens {
            gcra::solvent(p.tokens_tat, rate, now).map_err(Refusal::Tokens)?;
        }
        let mut requests_tat = p.requests_tat;
        if let Some(rate) = p.requests {
            gcra::take(&mut requests_tat, rate, 1, now).map_err(Refusal::Principal)?;
        }
        if busy {
            return Err(Refusal::Busy);
        }
        let per_principal = self.config.concurrent_per_principal;
        if per_principal > 0 && p.in_flight >= per_principal {
            return Err(Refusal::PrincipalBusy);
        }
        p.requests_tat = requests_tat;
        p.in_flight += 1;
        let key = Arc::clone(&p.key);
        usage.in_flight += 1;
        Ok(InFlight {
            limits: Arc::clone(self),
            principal: key,
        })
    }

    /// Once the model is known: its token quota (not in debt) and its request rate.
    pub fn admit_model(&self, model: &str) -> Result<(), Refusal> {
        if !self.model_limits {
            return Ok(());
        }
        let now = self.now();
        let mut usage = self.usage();
        let Some(m) = usage.models.get_mut(model) else {
            return Ok(());
        };
        if let Some(rate) = m.tokens {
            gcra::solvent(m.tokens_tat, rate, now).map_err(Refusal::ModelTokens)?;
        }
        match m.requests {
            Some(rate) => gcra::take(&mut m.requests_tat, rate, 1, now).map_err(Refusal::Model),
            None => Ok(()),
        }
    }

    /// After the answer: charges the tokens it used to the principal's quota and to the
    /// model's.
    pub fn charge_tokens(&self, principal: &str, model: Option<&str>, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = self.now();
        let mut usage = self.usage();
        if let Some(p) = usage.principal(principal, &self.config, now) {
            if let Some(rate) = p.tokens {
                gcra::charge(&mut p.tokens_tat, rate, tokens, now);
            }
        }
        if let Some(m) = model.and_then(|m| usage.models.get_mut(m)) {
            if let Some(rate) = m.tokens {
                gcra::charge(&mut m.tokens_tat, rate, tokens, now);
            }
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.usage().in_flight
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1000)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1001)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }

    #[test]
    fn rates_must_be_positive() {
        assert!(Rate::new(0, 1).is_err());
        assert!(Rate::new(1, 0).is_err());
        assert_eq!(Rate::new(60, 1).unwrap().emission_ns(), SEC);
    }

    fn config() -> LimitsConfig {
        LimitsConfig {
            principal: Some(Rate::new(60, 2).unwrap()),
            principals: HashMap::from([(
                "batch".to_string(),
                PrincipalLimits {
                    requests: Some(Rate::new(60, 5).unwrap()),
                    tokens: None,
                },
            )]),
            models: HashMap::from([("llama".to_string(), Rate::new(60, 1).unwrap())]),
            model_tokens: HashMap::new(),
            tokens: Some(Rate::new(60, 10).unwrap()),
            concurrent_per_principal: 3,
            concurrent: 4,
            failed_auth: Rate::new(10, 3).unwrap(),
        }
    }

    #[test]
    fn principals_are_limited_alone_with_their_overrides() {
        let mut c = config();
        c.concurrent = 0;
        c.concurrent_per_principal = 0;
        let limits = Limits::new(c);
        let _a = limits.admit("alice").unwrap();
        let _b = limits.admit("alice").unwrap();
        assert!(matches!(limits.admit("alice"), Err(Refusal::Principal(_))));
        // Bob has his own bucket; "batch" has a larger burst.
        let _c = limits.admit("bob").unwrap();
        let held: Vec<_> = (0..2).map(|_| limits.admit("batch").unwrap()).collect();
        assert_eq!(limits.in_flight(), 5);
        drop(held);
        assert_eq!(limits.in_flight(), 3);
    }

    #[test]
    fn concurrency_is_limited_per_principal_and_in_total_and_freed_on_drop() {
        let mut c = config();
        c.principal = None;
        let limits = Limits::new(c);
        let a: Vec<_> = (0..3).map(|_| limits.admit("alice").unwrap()).collect();
        assert!(matches!(limits.admit("alice"), Err(Refusal::PrincipalBusy)));
        let b = limits.admit("bob").unwrap();
        assert!(matches!(limits.admit("carol"), Err(Refusal::Busy)));
        assert_eq!(limits.in_flight(), 4);
        drop(b);
        let _c = limits.admit("carol").unwrap();
        drop(a);
        assert_eq!(limits.in_flight(), 1);
        let _a = limits.admit("alice").unwrap();
        // Refusals left nothing behind.
        assert_eq!(limits.in_flight(), 2);
    }

    #[test]
    fn a_refused_request_takes_nothing() {
        let mut c = config();
        // One a minute, two at once: no unit comes back while the test runs.
        c.principal = Some(Rate::new(1, 2).unwrap());
        c.concurrent_per_principal = 1;
        let limits = Limits::new(c);
        // Alice's burst is 2: one taken here.
        let held = limits.admit("alice").unwrap();
        for _ in 0..10 {
            assert!(matches!(limits.admit("alice"), Err(Refusal::PrincipalBusy)));
        }
        drop(held);
        // The refusals took none of the burst: the second unit is still there.
        drop(limits.admit("alice").unwrap());
        assert!(matches!(limits.admit("alice"), Err(Refusal::Principal(_))));
        assert_eq!(limits.in_flight(), 0);
    }

    #[test]
    fn principals_past_the_bound_wait_until_one_is_idle() {
        let mut c = config();
        // One a minute: a bucket drains a minute after its one request, not while the
        // test runs.
        c.principal = Some(Rate::new(1, 2).unwrap());
        c.concurrent = 0;
        c.tokens = None;
        let limits = Limits::new(c);
        limits.usage().max_principals = 2;
        let a = limits.admit("alice").unwrap();
        let b = limits.admit("bob").unwrap();
        assert!(matches!(limits.admit("carol"), Err(Refusal::Busy)));
        drop(b);
        // Bob has nothing in flight, but his rate bucket has not drained: still held.
        assert!(matches!(limits.admit("carol"), Err(Refusal::Busy)));
        // A principal already tracked is not affected.
        drop(limits.admit("alice").unwrap());
        let later = limits.now() + 61 * SEC;
        {
            let mut usage = limits.usage();
            // Bob's bucket has drained by then; Alice still has a request in flight.
            assert!(usage.principal("carol", &limits.config, later).is_some());
            assert!(usage.principals.contains_key("alice"));
            assert!(!usage.principals.contains_key("bob"));
        }
        drop(a);
        assert_eq!(limits.in_flight(), 0);
    }

    #[test]
    fn a_principal_in_token_debt_is_not_forgotten() {
        let mut c = config();
        c.principal = None;
        let limits = Limits::new(c);
        limits.usage().max_principals = 1;
        drop(limits.admit("alice").unwrap());
        limits.charge_tokens("alice", None, 50);
        // Nothing in flight, but in debt: not swept, so a new principal finds no room
        // and Alice's debt stands.
        assert!(matches!(limits.admit("bob"), Err(Refusal::Busy)));
        assert!(matches!(limits.admit("alice"), Err(Refusal::Tokens(_))));
    }

    #[test]
    fn models_have_their_own_rate() {
        let limits = Limits::new(config());
        limits.admit_model("llama").unwrap();
        assert!(matches!(
            limits.admit_model("llama"),
            Err(Refusal::Model(_))
        ));
        limits.admit_model("iris").unwrap();
        limits.admit_model("iris").unwrap();
    }

    #[test]
    fn a_model_spent_past_its_token_quota_refuses_everyone() {
        let mut c = config();
        c.principal = None;
        c.model_tokens.insert(
            "llm".into(),
            Rate {
                per_minute: 60,
                burst: 20,
            },
        );
        let limits = Limits::new(c);
        limits.admit_model("llm").unwrap();
        limits.charge_tokens("batch", Some("llm"), 30);
        match limits.admit_model("llm") {
            Err(Refusal::ModelTokens(wait)) => assert!(wait.0 >= Duration::from_secs(9)),
            other => panic!("{other:?}"),
        }
        // Another model, and the principals' own quotas, are untouched.
        limits.admit_model("iris").unwrap();
        drop(limits.admit("batch").unwrap());
        assert_eq!(
            Refusal::ModelTokens(RetryAfter(Duration::from_millis(1500)))
                .error()
                .code,
            "model_token_quota_exceeded"
        );
    }

    #[test]
    fn tokens_spent_past_the_quota_refuse_the_next_request() {
        let mut c = config();
        c.principal = None;
        let limits = Limits::new(c);
        drop(limits.admit("alice").unwrap());
        limits.charge_tokens("alice", None, 50);
        match limits.admit("alice") {
            Err(Refusal::Tokens(wait)) => assert!(wait.0 > Duration::from_secs(30)),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("admitted in debt"),
        }
        drop(limits.admit("bob").unwrap());
        // "batch" has no token quota of its own.
        limits.charge_tokens("batch", None, 1_000_000);
        drop(limits.admit("batch").unwrap());
    }

    #[test]
    fn failed_sign_ins_slow_the_source_and_alert_once() {
        let limits = Limits::new(config());
        let src: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        limits.check_source(src).unwrap();
        assert!(limits.failed_sign_in(src, Some("alice")).is_empty());
        assert!(limits.failed_sign_in(src, None).is_empty());
        assert_eq!(
            limits.failed_sign_in(src, Some("alice")),
            vec![Alert::Source(src)]
        );
        assert!(matches!(
            limits.check_source(src),
            Err(Refusal::FailedSignIns(_))
        ));
        // The source does not alert again; the principal crosses its own threshold (its
        // third failure), from whatever source.
        assert_eq!(
            limits.failed_sign_in(other, Some("alice")),
            vec![Alert::Principal("alice".into())]
        );
        assert!(limits.failed_sign_in(src, Some("alice")).is_empty());
        // Another source is not slowed by the first one's failures.
        limits.check_source(other).unwrap();
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let limits = Limits::new(config());
        for i in 1..=3u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i));
            limits.failed_sign_in(ip, None);
        }
        let same: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let next: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limits.check_source(same).is_err());
        limits.check_source(next).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.9".parse::<IpAddr>().unwrap());
    }
}
