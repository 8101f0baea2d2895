//! Rate limits, token quotas, concurrency limits and the slowing of failed sign-ins.
//!
//! Rates use the generic cell rate algorithm (GCRA): each key keeps one number, its
//! "theoretical arrival time" (TAT). A rate of `n` per minute with a burst of `b` lets `b`
//! requests through back to back, then one every `60/n` seconds; a refusal says exactly
//! when the next one will pass (`Retry-After`). Token quotas use the same bucket with a
//! variable cost charged after the answer, when the tokens are known: a request is let in
//! while the bucket is not in debt.
//!
//! Every map is bounded. Entries whose TAT has passed hold nothing (an absent key behaves
//! the same) and are swept when a map is full; a key that still finds no room is refused
//! (principals and models are few, so this only bites under attack), except for failed
//! sign-ins by source, where an untracked source is simply not slowed.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::ApiError;

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

/// One GCRA bucket per key.
struct Buckets<K> {
    tat: Mutex<HashMap<K, u64>>,
    max_keys: usize,
}

// Keys are looked up borrowed (`&str` for `String` keys): a key is copied only when it
// first enters the map.
impl<K: std::hash::Hash + Eq> Buckets<K> {
    fn new(max_keys: usize) -> Buckets<K> {
        Buckets {
            tat: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        match self.tat.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Room for `key`: sweeps passed entries when full. False if there is none.
    fn room<Q>(map: &mut HashMap<K, u64>, key: &Q, now: u64, max_keys: usize) -> bool
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if map.len() < max_keys || map.contains_key(key) {
            return true;
        }
        map.retain(|_, tat| *tat > now);
        map.len() < max_keys
    }

    /// Takes `cost` units if they fit within the burst.
    fn take<Q>(&self, key: &Q, rate: Rate, cost: u64, now: u64) -> Result<(), RetryAfter>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.map();
        if !Self::room(&mut map, key, now, self.max_keys) {
            return Err(RetryAfter(Duration::from_secs(1)));
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat.saturating_add(rate.emission_ns().saturating_mul(cost));
        let allowed_at = new_tat.saturating_sub(rate.tolerance_ns());
        if allowed_at > now {
            return Err(RetryAfter(Duration::from_nanos(allowed_at - now)));
        }
        set(&mut map, key, new_tat);
        Ok(())
    }

    /// Whether one more unit would fit, without taking it.
    fn peek<Q>(&self, key: &Q, rate: Rate, now: u64) -> Result<(), RetryAfter>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = self.map();
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat
            .saturating_add(rate.emission_ns())
            .saturating_sub(rate.tolerance_ns());
        if allowed_at > now {
            return Err(RetryAfter(Duration::from_nanos(allowed_at - now)));
        }
        Ok(())
    }

    /// Whether the bucket is not in debt (a quota charged after the fact).
    fn solvent<Q>(&self, key: &Q, rate: Rate, now: u64) -> Result<(), RetryAfter>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = self.map();
        let tat = map.get(key).copied().unwrap_or(now);
        let allowed_at = tat.saturating_sub(rate.tolerance_ns());
        if allowed_at > now {
            return Err(RetryAfter(Duration::from_nanos(allowed_at - now)));
        }
        Ok(())
    }

    /// Charges `cost` units whether or not they fit (the bucket may go into debt).
    fn charge<Q>(&self, key: &Q, rate: Rate, cost: u64, now: u64)
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.map();
        if !Self::room(&mut map, key, now, self.max_keys) {
            return;
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        set(
            &mut map,
            key,
            tat.saturating_add(rate.emission_ns().saturating_mul(cost)),
        );
    }
}

/// Sets `key`'s value, copying the key only if it is new.
fn set<K, Q>(map: &mut HashMap<K, u64>, key: &Q, value: u64)
where
    K: Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    match map.get_mut(key) {
        Some(v) => *v = value,
        None => {
            map.insert(key.to_owned(), value);
        }
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
    principals: Buckets<String>,
    models: Buckets<String>,
    tokens: Buckets<String>,
    model_tokens: Buckets<String>,
    failed_sources: Buckets<IpAddr>,
    failed_principals: Buckets<String>,
    /// Requests in flight per principal; the key is shared with their [`InFlight`]s.
    in_flight: Mutex<HashMap<Arc<str>, usize>>,
    in_flight_total: AtomicUsize,
}

/// A request in flight; dropping it frees its place.
pub struct InFlight {
    limits: Arc<Limits>,
    principal: Arc<str>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.limits.in_flight_total.fetch_sub(1, Ordering::SeqCst);
        let mut map = self.limits.in_flight_map();
        if let Some(n) = map.get_mut(&*self.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&*self.principal);
            }
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
        Arc::new(Limits {
            config,
            epoch: Instant::now(),
            principals: Buckets::new(MAX_KEYS),
            models: Buckets::new(MAX_KEYS),
            tokens: Buckets::new(MAX_KEYS),
            model_tokens: Buckets::new(MAX_KEYS),
            failed_sources: Buckets::new(MAX_KEYS),
            failed_principals: Buckets::new(MAX_KEYS),
            in_flight: Mutex::new(HashMap::new()),
            in_flight_total: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn in_flight_map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        match self.in_flight.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
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

    /// After authentication: the principal's rate, token quota and concurrency. The
    /// returned guard holds the request's place until dropped.
    pub fn admit(self: &Arc<Self>, principal: &str) -> Result<InFlight, Refusal> {
        let now = self.now();
        if let Some(rate) = self.tokens_rate(principal) {
            self.tokens
                .solvent(principal, rate, now)
                .map_err(Refusal::Tokens)?;
        }
        if let Some(rate) = self.principal_rate(principal) {
            self.principals
                .take(principal, rate, 1, now)
                .map_err(Refusal::Principal)?;
        }
        let total = self.in_flight_total.fetch_add(1, Ordering::SeqCst);
        if self.config.concurrent > 0 && total >= self.config.concurrent {
            self.in_flight_total.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        let mut map = self.in_flight_map();
        let key = match map.get_key_value(principal) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(principal),
        };
        let n = map.entry(Arc::clone(&key)).or_insert(0);
        if self.config.concurrent_per_principal > 0 && *n >= self.config.concurrent_per_principal {
            drop(map);
            self.in_flight_total.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::PrincipalBusy);
        }
        *n += 1;
        drop(map);
        Ok(InFlight {
            limits: Arc::clone(self),
            principal: key,
        })
    }

    /// Once the model is known: its token quota (not in debt) and its request rate.
    pub fn admit_model(&self, model: &str) -> Result<(), Refusal> {
        let now = self.now();
        if let Some(rate) = self.config.model_tokens.get(model) {
            self.model_tokens
                .solvent(model, *rate, now)
                .map_err(Refusal::ModelTokens)?;
        }
        match self.config.models.get(model) {
            Some(rate) => self
                .models
                .take(model, *rate, 1, now)
                .map_err(Refusal::Model),
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
        if let Some(rate) = self.tokens_rate(principal) {
            self.tokens.charge(principal, rate, tokens, now);
        }
        if let Some((model, rate)) = model.and_then(|m| Some((m, self.config.model_tokens.get(m)?)))
        {
            self.model_tokens.charge(model, *rate, tokens, now);
        }
    }

    fn principal_rate(&self, principal: &str) -> Option<Rate> {
        match self.config.principals.get(principal) {
            Some(own) => own.requests,
            None => self.config.principal,
        }
    }

    fn tokens_rate(&self, principal: &str) -> Option<Rate> {
        match self.config.principals.get(principal) {
            Some(own) => own.tokens,
            None => self.config.tokens,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight_total.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_then_one_per_interval() {
        let b = Buckets::new(16);
        let rate = Rate::new(60, 3).unwrap(); // one per second, three at once
        let k = "alice".to_string();
        for _ in 0..3 {
            b.take(&k, rate, 1, 10 * SEC).unwrap();
        }
        let RetryAfter(wait) = b.take(&k, rate, 1, 10 * SEC).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Half a second later: half a second more to wait.
        assert_eq!(
            b.take(&k, rate, 1, 10 * SEC + SEC / 2).unwrap_err().0,
            Duration::from_millis(500)
        );
        b.take(&k, rate, 1, 11 * SEC).unwrap();
        assert!(b.take(&k, rate, 1, 11 * SEC).is_err());
        // After a long pause the whole burst is back, not more.
        for _ in 0..3 {
            b.take(&k, rate, 1, 100 * SEC).unwrap();
        }
        assert!(b.take(&k, rate, 1, 100 * SEC).is_err());
        // Another key has its own bucket.
        b.take(&"bob".to_string(), rate, 1, 100 * SEC).unwrap();
    }

    #[test]
    fn a_refused_take_costs_nothing() {
        let b = Buckets::new(16);
        let rate = Rate::new(60, 1).unwrap();
        let k = 1u8;
        b.take(&k, rate, 1, 0).unwrap();
        for _ in 0..100 {
            assert!(b.take(&k, rate, 1, SEC / 2).is_err());
        }
        b.take(&k, rate, 1, SEC).unwrap();
    }

    #[test]
    fn a_quota_goes_into_debt_then_refuses_until_paid() {
        let b = Buckets::new(16);
        // 600 tokens a minute (10 a second), 100 at once.
        let rate = Rate::new(600, 100).unwrap();
        let k = "alice".to_string();
        b.solvent(&k, rate, 0).unwrap();
        b.charge(&k, rate, 400, 0); // 300 over the burst: 30 s of debt
        let RetryAfter(wait) = b.solvent(&k, rate, 0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(b.solvent(&k, rate, 29 * SEC).is_err());
        b.solvent(&k, rate, 30 * SEC).unwrap();
    }

    #[test]
    fn a_full_map_sweeps_passed_entries_and_refuses_when_none_passed() {
        let b = Buckets::new(2);
        let rate = Rate::new(60, 1).unwrap();
        b.take(&1u32, rate, 1, 0).unwrap();
        b.take(&2u32, rate, 1, 0).unwrap();
        // Both still hold a second of TAT: no room for a third key.
        assert!(b.take(&3u32, rate, 1, SEC / 2).is_err());
        // Keys already there are unaffected.
        b.take(&1u32, rate, 1, SEC).unwrap();
        // Once key 2 has passed, it is swept and 3 fits.
        b.take(&3u32, rate, 1, 3 * SEC).unwrap();
        assert!(b.map().len() <= 2);
    }

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
