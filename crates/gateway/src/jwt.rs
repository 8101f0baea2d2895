//! OIDC/JWT bearer tokens for the inference plane: a JWT (RFC 7519) in JWS compact form
//! (RFC 7515), signed by an identity provider whose public keys (a JWKS, RFC 7517) the
//! operator puts in a file, or names by URL (fetched over HTTPS against a CA file, and
//! fetched again every `refresh`). Checked as the JWT best current practices (RFC 8725) ask:
//!
//! - the algorithms are pinned in the settings, and a token's `alg` must also fit the key it
//!   names (type, curve, and the key's own `alg` if it has one);
//! - the key comes only from the configured JWKS, by the header's `kid`: a token's own
//!   `jwk`, `jku`, `x5u` or `x5c` is never looked at, and there is no trying of keys;
//! - `iss` must be the configured issuer exactly, `aud` must name one of our audiences,
//!   `exp` is required, `nbf` and `iat` are honoured, each with the configured leeway;
//! - a token is at most 8 KiB and its claims at most 16 levels deep.
//!
//! HMAC (`HS*`) and `none` cannot be configured: an HMAC "key" taken from a JWKS would let
//! anyone holding the published key forge tokens. A JWKS holding private key material is
//! refused, so a leaked signing key is not spread further.
//!
//! Signatures are checked by `jsonwebtoken` 9 (on ring, the crypto stack already here).
//! Splitting, the header, key selection and the claims are handled here, so that each step
//! has its own refusal code and the clock is the caller's `now`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::ApiError;
use jwks::{load, names, parse_jwks, read_jwks, same_keys, sha256, verify_signature, Alg, KeySet};

mod jwks;

/// The largest token accepted: the whole `header.claims.signature` text.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest JWKS file read.
pub const MAX_JWKS_BYTES: u64 = 256 * 1024;
/// The most keys a JWKS file may hold.
pub const MAX_JWKS_KEYS: usize = 64;
/// The deepest nesting of objects and arrays in a token's claims.
const MAX_CLAIMS_DEPTH: usize = 16;
/// The most entries a models or groups claim may hold.
const MAX_LIST_ITEMS: usize = 256;
/// The longest `sub`, `jti`, `kid` or group name.
const MAX_TEXT_BYTES: usize = 256;
/// The most clock skew the settings may allow: beyond that, fix the clocks.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// NumericDate values after the year 9999 are refused.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// What the gateway trusts: one issuer, its JWKS file, our audiences, pinned algorithms.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The issuer exactly as tokens carry it in `iss` (e.g. `https://idp.example.com/realm`).
    pub issuer: String,
    /// A token's `aud` must name at least one of these.
    pub audiences: Vec<String>,
    /// Accepted signing algorithms: `ES256`, `ES384`, `EdDSA`, `RS256`, `RS384`, `RS512`,
    /// `PS256`, `PS384`, `PS512`. `HS*` and `none` are refused.
    pub algorithms: Vec<String>,
    /// Where the issuer's public keys (a JWKS: `{"keys": [...]}`) come from; `reload`
    /// reads them again.
    pub jwks: JwksSource,
    /// The top-level claim naming the principal (default `sub`); it must hold a Warden
    /// principal name. Use a claim the issuer vouches for (not one users can edit).
    pub principal_claim: String,
    /// The top-level claim holding the model patterns the token may use (a string of
    /// space-separated patterns, or an array). None, or the claim absent: no models.
    pub models_claim: Option<String>,
    /// The top-level claim holding the caller's groups (default `groups`; string or array).
    pub groups_claim: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 30 s, at most 5 minutes).
    pub leeway: Duration,
    /// Refuse tokens whose `exp - iat` exceeds this (they must then carry `iat`).
    pub max_lifetime: Option<Duration>,
}

impl JwtSettings {
    /// Settings with the defaults: principal from `sub`, groups from `groups`, no models
    /// claim, 30 s leeway, no bound on lifetime.
    pub fn new(
        issuer: impl Into<String>,
        audiences: Vec<String>,
        algorithms: Vec<String>,
        jwks_path: impl Into<PathBuf>,
    ) -> JwtSettings {
        JwtSettings {
            issuer: issuer.into(),
            audiences,
            algorithms,
            jwks: JwksSource::File(jwks_path.into()),
            principal_claim: "sub".into(),
            models_claim: None,
            groups_claim: "groups".into(),
            leeway: Duration::from_secs(30),
            max_lifetime: None,
        }
    }
}

/// Where a JWKS comes from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A file, read again when `reload` finds its content changed.
    File(PathBuf),
    /// The identity provider's `jwks_uri`.
    Url {
        /// `https://…` (or `http://` to a loopback address).
        url: String,
        /// The CA certificates (PEM) its server's certificate must chain to.
        ca_pem: Option<Vec<u8>>,
        /// How often `reload` fetches it again.
        refresh: Duration,
    },
}

impl JwksSource {
    /// The JWKS's bytes now, at most [`MAX_JWKS_BYTES`].
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        match self {
            JwksSource::File(path) => read_jwks(path),
            JwksSource::Url { url, ca_pem, .. } => {
                let max = usize::try_from(MAX_JWKS_BYTES).unwrap_or(usize::MAX);
                let body = crate::https_client::get("jwks_url", url, ca_pem.as_deref(), max)?;
                Ok(body.to_vec())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            JwksSource::File(path) => format!("JWKS file {}", path.display()),
            JwksSource::Url { url, .. } => format!("JWKS at {url}"),
        }
    }
}

/// Who a verified token says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The principal claim's value: a valid Warden principal name.
    pub principal: String,
    /// The token's `iss` (the configured issuer).
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    /// The token's `jti`, if any.
    pub token_id: Option<String>,
    /// Model patterns from the models claim (empty: none).
    pub models: Vec<String>,
    pub groups: Vec<String>,
    /// The token's `exp` (without leeway).
    pub expires: SystemTime,
}

/// Whether a bearer token has the shape of a JWS compact JWT (three base64url parts, the
/// signature possibly empty), so the caller can tell it from a Warden API key (`wdn_...`,
/// never taken for a JWT). Says nothing of validity.
pub fn looks_like_jwt(token: &str) -> bool {
    !token.starts_with("wdn_") && split(token).is_some()
}

/// Checks bearer tokens against the configured JWKS. Shared by every request; `reload`
/// swaps in a new key set without blocking them.
pub struct JwtVerifier {
    settings: JwtSettings,
    algs: Vec<Alg>,
    keys: RwLock<Arc<KeySet>>,
    /// When a JWKS URL was last fetched (tried).
    fetched: Mutex<Instant>,
}

impl JwtVerifier {
    /// Checks the settings and reads the JWKS (a server whose JWKS cannot be read does not
    /// start: it could accept no token).
    pub fn new(settings: JwtSettings) -> anyhow::Result<JwtVerifier> {
        let algs = check_settings(&settings)?;
        let keys = match &settings.jwks {
            JwksSource::File(path) => load(path, &algs)?,
            source => {
                let bytes = source.read()?;
                let keys = parse_jwks(&bytes, &algs).with_context(|| source.describe())?;
                KeySet {
                    digest: sha256(&bytes),
                    keys,
                }
            }
        };
        Ok(JwtVerifier {
            settings,
            algs,
            keys: RwLock::new(Arc::new(keys)),
            fetched: Mutex::new(Instant::now()),
        })
    }

    /// Reads the JWKS again: a file each time (cheap enough for a poller: one read of at
    /// most 256 KiB and a SHA-256), a URL once `refresh` has passed since the last try.
    /// True when the keys changed. On an error the old keys stay in use.
    pub fn reload(&self) -> anyhow::Result<bool> {
        if let JwksSource::Url { refresh, .. } = &self.settings.jwks {
            let mut last = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < *refresh {
                return Ok(false);
            }
            *last = Instant::now();
        }
        let source = &self.settings.jwks;
        let bytes = source.read()?;
        let digest = sha256(&bytes);
        let current = self.current();
        if current.digest == digest {
            return Ok(false);
        }
        let keys = parse_jwks(&bytes, &self.algs).with_context(|| source.describe())?;
        let changed = !same_keys(&current.keys, &keys);
        let fresh = Arc::new(KeySet { digest, keys });
        match self.keys.write() {
            Ok(mut k) => *k = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(changed)
    }

    /// The key ids in use, sorted (for logs).
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.current().keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Verifies a bearer token (the text after `Bearer `) at time `now`. Refusals are 401s
    /// with a stable code; messages never echo the token.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<JwtIdentity, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse(
                "token_too_large",
                "the bearer token is larger than 8 KiB; ask the issuer for a token with fewer claims",
            ));
        }
        let malformed = |what: &str| refuse("malformed_token", what.to_string());
        let (header_b64, claims_b64, signature_b64) = split(token).ok_or_else(|| {
            malformed("the bearer token is not a JWT: expected three base64url parts, header.claims.signature")
        })?;
        let header = decode_object(header_b64)
            .ok_or_else(|| malformed("the token header is not a base64url JSON object"))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("the token header has no signing algorithm (alg)"))?;
        let alg = Alg::parse(alg)
            .filter(|a| self.algs.contains(a))
            .ok_or_else(|| {
                refuse(
                    "token_algorithm_not_allowed",
                    format!(
                        "the token's signing algorithm is not accepted here; ask the issuer to sign with one of: {}",
                        names(&self.algs)
                    ),
                )
            })?;
        if header.contains_key("crit") {
            return Err(malformed(
                "the token header lists critical extensions (crit), which this gateway does not support",
            ));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("the token header must name its signing key (kid)"))?;
        let keys = self.current();
        let key = keys.keys.get(kid).ok_or_else(|| {
            refuse(
                "unknown_token_key",
                "the token's signing key (kid) is not one this gateway trusts; if the issuer rotated its keys, the gateway's JWKS file must be updated",
            )
        })?;
        if !key.algs.contains(&alg) {
            return Err(refuse(
                "token_algorithm_not_allowed",
                "the token's signing algorithm does not fit the key it names (kid)",
            ));
        }
        // The signing input is the header and claims exactly as sent.
        let input = &token[..header_b64.len() + 1 + claims_b64.len()];
        if !verify_signature(key, alg, input.as_bytes(), signature_b64) {
            return Err(refuse(
                "invalid_token_signature",
                "the token's signature does not verify with the issuer's key; get a new token from the issuer",
            ));
        }
        let claims = decode_object(claims_b64)
            .ok_or_else(|| invalid_claims("the token's claims are not a base64url JSON object"))?;
        if claims.values().map(depth).max().unwrap_or(0) >= MAX_CLAIMS_DEPTH {
            return Err(invalid_claims("the token's claims are nested too deeply"));
        }
        self.check_claims(&claims, now)
    }

    fn check_claims(
        &self,
        c: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<JwtIdentity, ApiError> {
        let s = &self.settings;
        if c.get("iss").and_then(Value::as_str) != Some(s.issuer.as_str()) {
            return Err(refuse(
                "wrong_token_issuer",
                "the token was not issued by the issuer this gateway trusts (iss)",
            ));
        }
        if !audience_ok(c.get("aud"), &s.audiences) {
            return Err(refuse(
                "wrong_token_audience",
                "the token is not meant for this gateway: its audience (aud) must name this gateway; ask the issuer for a token for it",
            ));
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let leeway = s.leeway.as_secs_f64();
        let exp = match c.get("exp") {
            None => {
                return Err(invalid_claims(
                    "the token has no expiry (exp); tokens that never expire are refused",
                ))
            }
            Some(v) => numeric_date(v).ok_or_else(|| {
                invalid_claims("the token's exp must be a number of seconds since 1970")
            })?,
        };
        let nbf = optional_date(c, "nbf")?;
        let iat = optional_date(c, "iat")?;
        if now >= exp + leeway {
            return Err(refuse(
                "expired_token",
                "the token has expired (exp); get a new one from the issuer",
            ));
        }
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(refuse(
                "token_not_yet_valid",
                "the token is not valid yet (nbf); use it later, or check the clocks of the issuer and this gateway",
            ));
        }
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(refuse(
                "token_not_yet_valid",
                "the token was issued in the future (iat); check the clocks of the issuer and this gateway",
            ));
        }
        if let Some(max) = s.max_lifetime {
            let Some(iat) = iat else {
                return Err(invalid_claims(
                    "the token has no issue time (iat), which this gateway needs to bound token lifetime",
                ));
            };
            if exp - iat > max.as_secs_f64() {
                return Err(refuse(
                    "token_lifetime_too_long",
                    format!(
                        "the token's lifetime (exp - iat) exceeds the {} s this gateway allows; ask the issuer for shorter-lived tokens",
                        max.as_secs()
                    ),
                ));
            }
        }
        let subject = text_claim(c, "sub")?
            .ok_or_else(|| invalid_claims("the token has no subject (sub)"))?;
        let principal = match c.get(&s.principal_claim) {
            Some(Value::String(p)) if registry::identity::check_name(p).is_ok() => p.clone(),
            _ => {
                return Err(invalid_claims(format!(
                    "the token's `{}` claim must be a principal name: 1-64 letters, digits, '.', '_', '-' or '@', not starting with '.' or '-'",
                    s.principal_claim
                )))
            }
        };
        let token_id = text_claim(c, "jti")?;
        let models = match &s.models_claim {
            Some(name) => list_claim(c, name, model_pattern_ok)?,
            None => Vec::new(),
        };
        let groups = list_claim(c, &s.groups_claim, text_ok)?;
        let expires = Duration::try_from_secs_f64(exp)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| invalid_claims("the token's exp is out of range"))?;
        Ok(JwtIdentity {
            principal,
            issuer: s.issuer.clone(),
            subject,
            token_id,
            models,
            groups,
            expires,
        })
    }
}

fn refuse(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::unauthorized(code, message)
}

fn invalid_claims(message: impl Into<String>) -> ApiError {
    refuse("invalid_token_claims", message)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Three base64url parts; header and claims non-empty.
fn split(token: &str) -> Option<(&str, &str, &str)> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && !h.is_empty()
        && !c.is_empty()
        && [h, c, s].iter().all(|p| p.bytes().all(is_b64url));
    ok.then_some((h, c, s))
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Nesting depth (a scalar is 0). serde_json stops at 128 levels, so this recursion is bounded.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn audience_ok(aud: Option<&Value>, ours: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => ours.contains(a),
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string)
                && list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| ours.iter().any(|o| o == a))
        }
        _ => false,
    }
}

/// A NumericDate (RFC 7519 §2): seconds since 1970, possibly fractional.
fn numeric_date(v: &Value) -> Option<f64> {
    v.as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0 && *t <= MAX_NUMERIC_DATE)
}

fn optional_date(c: &Map<String, Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match c.get(name) {
        None => Ok(None),
        Some(v) => numeric_date(v).map(Some).ok_or_else(|| {
            invalid_claims(format!(
                "the token's {name} must be a number of seconds since 1970"
            ))
        }),
    }
}

/// Text fit for ledger records: 1-256 bytes, no control characters.
fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TEXT_BYTES && !s.chars().any(char::is_control)
}

/// A model pattern as API keys hold them: 1-128 letters, digits, `._-:/` or `*`.
fn model_pattern_ok(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/*".contains(&b))
}

fn text_claim(c: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match c.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if text_ok(s) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_claims(format!(
            "the token's {name} must be text of 1-256 characters without control characters"
        ))),
    }
}

/// A list claim: absent (empty), a string of space-separated entries, or an array of strings.
fn list_claim(
    c: &Map<String, Value>,
    name: &str,
    ok: fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    let items: Vec<&str> = match c.get(name) {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| {
                invalid_claims(format!("the token's `{name}` claim must hold only strings"))
            })?,
        Some(_) => {
            return Err(invalid_claims(format!(
                "the token's `{name}` claim must be a string or an array of strings"
            )))
        }
    };
    if items.len() > MAX_LIST_ITEMS || !items.iter().all(|i| ok(i)) {
        return Err(invalid_claims(format!(
            "the token's `{name}` claim must hold at most {MAX_LIST_ITEMS} well-formed entries"
        )));
    }
    Ok(items.into_iter().map(String::from).collect())
}

fn check_settings(s: &JwtSettings) -> anyhow::Result<Vec<Alg>> {
    if s.issuer.is_empty() {
        bail!("JWT settings: `issuer` is empty; give the issuer exactly as tokens carry it in \"iss\"");
    }
    if s.audiences.is_empty() || s.audiences.iter().any(String::is_empty) {
        bail!("JWT settings: `audiences` must name at least one audience (this gateway's name at the issuer), none empty");
    }
    if s.algorithms.is_empty() {
        bail!("JWT settings: `algorithms` is empty; pin the algorithm(s) the issuer signs with, e.g. \"ES256\" or \"RS256\"");
    }
    let mut algs = Vec::new();
    for a in &s.algorithms {
        if a.eq_ignore_ascii_case("none") {
            bail!("JWT settings: algorithm \"none\" (unsigned tokens) is refused");
        }
        if a.to_ascii_uppercase().starts_with("HS") {
            bail!("JWT settings: algorithm {a:?} (HMAC, a shared secret) is refused: pin the issuer's asymmetric algorithm, e.g. \"ES256\" or \"RS256\"");
        }
        let alg = Alg::parse(a).ok_or_else(|| {
            anyhow!(
                "JWT settings: algorithm {a:?} is not supported; use one of {}",
                names(&Alg::ALL)
            )
        })?;
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    if s.principal_claim.is_empty()
        || s.groups_claim.is_empty()
        || s.models_claim.as_deref() == Some("")
    {
        bail!("JWT settings: `principal_claim`, `groups_claim` and `models_claim` must name claims (none empty)");
    }
    if s.leeway > MAX_LEEWAY {
        bail!("JWT settings: `leeway` of {} s is more than 5 minutes; keep clocks in sync (NTP) instead", s.leeway.as_secs());
    }
    if s.max_lifetime.is_some_and(|m| m.is_zero()) {
        bail!("JWT settings: `max_lifetime` must be more than zero (or unset)");
    }
    if let JwksSource::Url { refresh, .. } = &s.jwks {
        if refresh.is_zero() {
            bail!("JWT settings: the JWKS refresh interval must be at least a second");
        }
    }
    Ok(algs)
}

#[cfg(test)]
mod tests;
