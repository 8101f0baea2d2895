//! Authorisation of every inference request: attribute-based policies in
//! [Cedar](https://docs.cedarpolicy.com/) over the principal, the action, the model and the
//! request's context.
//!
//! - The vocabulary is a Cedar schema embedded in the binary (`policy.cedarschema`,
//!   namespace `Warden`): entities `Principal` and `Model`, actions `infer`, `metadata` and
//!   `list_models`, and a context record (route, protocol, source address, TLS, the
//!   credential's own model scope, the UTC hour and weekday).
//! - Policies are validated against it in strict mode when they are loaded; a policy Cedar
//!   warns about (one that can never apply, bidirectional-text or mixed-script strings) is
//!   refused too, since a forbid that silently never applies is worse than no file at all.
//! - Deny by default: a request is allowed only when a permit applies, no forbid applies
//!   and no policy failed to evaluate. Cedar itself skips a policy that errors, which would
//!   let a permit win over a broken forbid; here any error denies.
//! - Requests are built from typed values (entity ids and attribute values), never by
//!   writing Cedar source, so a name with quotes or backslashes is only ever a name.
//! - Size and nesting are bounded before and after Cedar parses a file (see [`MAX_TEXT`],
//!   [`MAX_POLICY_CODE`], [`MAX_BRACKETS`], [`MAX_IFS`], [`MAX_DEPTH`]), and Cedar runs on
//!   a thread of its own with a large stack:
//!   its parser recurses without a check (a few hundred `(` overflow a 2 MiB stack), and its
//!   validator, where it runs short of stack, passes the policy without a word.
//!
//! Each [`Decision`] names the policies that determined it (their `@id("...")` annotation,
//! else Cedar's `policy0`, `policy1`, ... in file order), for the ledger.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use crate::sharded::Sharded;
use crate::FastMap;

/// The schema every policy is validated against (Cedar's human-readable schema format).
pub const SCHEMA: &str = include_str!("policy.cedarschema");

/// The policy Warden runs with when the operator configures none: what a credential's own
/// model scope allows, and nothing else.
pub const DEFAULT_POLICY: &str = r#"// Warden's default: a credential may use the models its own scope names.
@id("default-key-scope")
permit (
  principal,
  action in [Warden::Action::"infer", Warden::Action::"metadata", Warden::Action::"list_models"],
  resource
)
when { context.in_key_scope };
"#;

/// How the principal proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    ApiKey,
    Jwt,
    Mtls,
}

impl Credential {
    /// The value of `principal.credential`.
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::ApiKey => "api_key",
            Credential::Jwt => "jwt",
            Credential::Mtls => "mtls",
        }
    }
}

/// What the request asks to do: the Cedar action `Warden::Action::"<as_str>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Infer,
    /// KServe model metadata and readiness.
    Metadata,
    ListModels,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Infer => "infer",
            Action::Metadata => "metadata",
            Action::ListModels => "list_models",
        }
    }

    fn index(self) -> usize {
        match self {
            Action::Infer => 0,
            Action::Metadata => 1,
            Action::ListModels => 2,
        }
    }
}

/// What serves the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Warden's sandboxed runtime.
    Runtime,
    /// A model server behind Warden.
    Upstream,
}

impl Backend {
    /// The value of `resource.backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Runtime => "runtime",
            Backend::Upstream => "upstream",
        }
    }
}

/// Everything a policy may look at, for one request.
#[derive(Clone, Debug)]
pub struct AuthzRequest<'a> {
    /// The principal's name: the entity id of `Warden::Principal` and `principal.name`.
    pub principal: &'a str,
    pub credential: Credential,
    /// JWT groups or roles; empty for API keys and certificates.
    pub groups: &'a [String],
    pub action: Action,
    /// The model's name: the entity id of `Warden::Model` and `resource.name`.
    pub model: &'a str,
    /// `resource.version`; `None` becomes "".
    pub version: Option<&'a str>,
    pub backend: Backend,
    /// The gateway's route name, e.g. "kserve.infer".
    pub route: &'a str,
    /// "openai" or "kserve".
    pub protocol: &'a str,
    /// The connection's peer; an IPv4-mapped IPv6 address is given to policies as IPv4.
    pub source: IpAddr,
    pub tls: bool,
    /// Whether the credential's own model scope allows `model`.
    pub in_key_scope: bool,
    /// The time the hour and weekday (UTC) are taken from.
    pub now: SystemTime,
}

/// The outcome of one authorisation, for the caller and the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The policies that determined the outcome, sorted: when allowed, the permits that
    /// applied; when denied, the forbids that applied and the policies that failed to
    /// evaluate (empty when denied because no permit applied).
    pub policies: Vec<String>,
    /// How many evaluation errors there were (any denies); a request Cedar could not be
    /// given at all counts as one.
    pub errors: usize,
}

impl Decision {
    fn error() -> Decision {
        Decision {
            allowed: false,
            policies: Vec::new(),
            errors: 1,
        }
    }
}

/// A validated policy set, ready to authorise requests. Cheap to share (`Send + Sync`).
pub struct Policies {
    set: PolicySet,
    /// Kept for checking that the requests built here conform (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    schema: Schema,
    authorizer: Authorizer,
    principal_type: EntityTypeName,
    model_type: EntityTypeName,
    /// `Warden::Action::"infer"`, `"metadata"`, `"list_models"`, by [`Action::index`].
    actions: [EntityUid; 3],
    ids: Vec<String>,
    /// `ip("<address>")` by source address. Cedar parses the function's name with its
    /// full parser each time it builds the call (about 9 µs, a quarter of a decision), and
    /// a gateway sees the same few sources again and again. Emptied when full.
    source_ips: Mutex<HashMap<IpAddr, RestrictedExpression>>,
    /// Decisions already taken, by everything they depend on ([`decision_key`]). A decision
    /// is a function of its request alone, so a gateway serving the same callers the same
    /// models decides once per caller, model, source and hour instead of on every request
    /// (some 20 µs each). Emptied when full; dropped with these policies when a new file
    /// is put in force. One cache per thread ([`Sharded`]): the event loops neither wait
    /// on one lock nor share the decisions' reference counts.
    decisions: Sharded<Mutex<FastMap<Vec<u8>, Arc<Decision>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most decisions remembered, per thread.
const MAX_DECISIONS: usize = 1024;

/// Every input of a decision, as bytes: each string length-prefixed (a missing version
/// has a length no string has), the address with its family, so that no two requests
/// share a key.
fn decision_key(req: &AuthzRequest<'_>) -> Vec<u8> {
    let (hour, weekday) = hour_and_weekday(req.now);
    let mut key = Vec::with_capacity(128);
    let mut field = |s: Option<&str>| match s {
        Some(s) => {
            key.extend_from_slice(&(s.len() as u64).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
        None => key.extend_from_slice(&u64::MAX.to_le_bytes()),
    };
    field(Some(req.principal));
    field(Some(req.credential.as_str()));
    for g in req.groups {
        field(Some(g));
    }
    // The end of the groups: no group name is this long.
    field(None);
    field(Some(req.action.as_str()));
    field(Some(req.model));
    field(req.version);
    field(Some(req.backend.as_str()));
    field(Some(req.route));
    field(Some(req.protocol));
    match req.source {
        IpAddr::V4(a) => {
            key.push(4);
            key.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            key.push(6);
            key.extend_from_slice(&a.octets());
        }
    }
    key.extend_from_slice(&[
        u8::from(req.tls),
        u8::from(req.in_key_scope),
        hour as u8,
        weekday as u8,
    ]);
    key
}

/// How long a policy file may be, in bytes: some thousands of policies.
pub const MAX_TEXT: usize = 1 << 20;
/// How many characters of one policy, outside its strings, comments and white space, may
/// be code: enough for any hand-written policy, and short of the operator chains
/// (`x.a.a...`, `a && a && ...`) that would exhaust even the parser's stack.
pub const MAX_POLICY_CODE: usize = 16 << 10;
/// How deep brackets (`(`, `[`, `{`) may nest in a policy file.
pub const MAX_BRACKETS: usize = 32;
/// How many `if`s one policy may have (an `else if` chain nests without brackets).
pub const MAX_IFS: usize = 32;
/// How deep a policy's JSON form (Cedar's EST) may nest: some 125 operators in a chain
/// such as `a && b && ...` (two levels each). Cedar recurses over the expression to
/// validate, evaluate and drop it.
pub const MAX_DEPTH: usize = 256;
/// The stack Cedar parses and validates on: ample for the depths above.
const PARSER_STACK: usize = 64 << 20;

/// How many source addresses [`Policies`] keeps the Cedar value of.
const SOURCE_IP_CACHE: usize = 1024;

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").field("ids", &self.ids).finish()
    }
}

impl Policies {
    /// Parses `text` (Cedar policy syntax) and validates it against [`SCHEMA`] in strict
    /// mode. `origin` (e.g. the file's path) opens every error message, followed by the
    /// line and column Cedar points at.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Policies> {
        check_nesting(text, origin)?;
        let (text, origin) = (text.to_owned(), origin.to_owned());
        let loader = std::thread::Builder::new()
            .name("warden-policy".to_owned())
            .stack_size(PARSER_STACK)
            .spawn(move || Policies::parse_here(&text, &origin));
        match loader.map(std::thread::JoinHandle::join) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => bail!("the policy parser failed on this file; simplify it"),
            Err(e) => bail!("cannot start a thread to read the policies: {e}"),
        }
    }

    /// [`Policies::parse`], on the calling thread's stack.
    fn parse_here(text: &str, origin: &str) -> anyhow::Result<Policies> {
        let schema = Schema::from_cedarschema_str(SCHEMA)
            .map(|(schema, _warnings)| schema)
            .map_err(|e| anyhow!("Warden's built-in policy schema does not parse: {e}"))?;
        let parsed = PolicySet::from_str(text).map_err(|errs| {
            let problems: Vec<String> = errs.iter().map(|e| describe(text, origin, e)).collect();
            anyhow!("{origin}: the policies do not parse:{}", listed(&problems))
        })?;
        if let Some(t) = parsed.templates().next() {
            bail!(
                "{origin}: policy {} is a template (it has a ?principal or ?resource slot); \
                 Warden does not link templates: write the entity in its place",
                t.id()
            );
        }
        let set = with_annotated_ids(&parsed, origin)?;
        for p in set.policies() {
            let depth = p.to_json().map_or(usize::MAX, |json| json_depth(&json));
            if depth > MAX_DEPTH {
                bail!(
                    "{origin}: policy {} nests deeper than Warden allows ({MAX_DEPTH} levels \
                     of its JSON form); split its conditions into several policies",
                    p.id()
                );
            }
        }
        if set.is_empty() {
            bail!(
                "{origin}: the file has no policies: deny by default would refuse every \
                 request; write a permit (e.g. Warden's default: permit(principal, action, \
                 resource) when {{ context.in_key_scope }};)"
            );
        }
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        let problems: Vec<String> = result
            .validation_errors()
            .map(|e| describe(text, origin, e))
            .chain(
                result
                    .validation_warnings()
                    .map(|w| describe(text, origin, w)),
            )
            .collect();
        if !problems.is_empty() {
            bail!(
                "{origin}: the policies do not validate against Warden's schema:{}",
                listed(&problems)
            );
        }
        let mut ids: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        Ok(Policies {
            set,
            schema,
            authorizer: Authorizer::new(),
            principal_type: type_name("Warden::Principal")?,
            model_type: type_name("Warden::Model")?,
            actions: [
                action_uid(Action::Infer)?,
                action_uid(Action::Metadata)?,
                action_uid(Action::ListModels)?,
            ],
            ids,
            source_ips: Mutex::new(HashMap::new()),
            decisions: Sharded::default(),
        })
    }

    /// The built-in [`DEFAULT_POLICY`].
    pub fn default_policy() -> anyhow::Result<Policies> {
        Policies::parse(DEFAULT_POLICY, "Warden's default policy")
    }

    /// The ids of the policies, sorted (for a startup log line).
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Decides one request. Never panics, never allows on an error.
    pub fn authorize(&self, req: &AuthzRequest<'_>) -> Arc<Decision> {
        let key = decision_key(req);
        let decisions = self.decisions.local();
        if let Some(d) = lock(decisions).get(&key) {
            return Arc::clone(d);
        }
        let decision = Arc::new(self.decide(req));
        let mut decisions = lock(decisions);
        if decisions.len() >= MAX_DECISIONS {
            decisions.clear();
        }
        decisions.insert(key, Arc::clone(&decision));
        decision
    }

    /// [`Policies::authorize`] without the remembered decisions.
    fn decide(&self, req: &AuthzRequest<'_>) -> Decision {
        let Ok((request, entities)) = self.request(req, None) else {
            return Decision::error();
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &entities);
        let diagnostics = response.diagnostics();
        let mut errored: Vec<String> = diagnostics
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => {
                    e.policy_id().to_string()
                }
            })
            .collect();
        let errors = errored.len();
        let cedar_allowed = response.decision() == cedar_policy::Decision::Allow;
        let allowed = cedar_allowed && errors == 0;
        let mut policies: Vec<String> = if cedar_allowed && errors > 0 {
            Vec::new()
        } else {
            diagnostics.reason().map(PolicyId::to_string).collect()
        };
        if !allowed {
            policies.append(&mut errored);
        }
        policies.sort();
        policies.dedup();
        Decision {
            allowed,
            policies,
            errors,
        }
    }

    /// The Cedar request and the two entities it names. With `schema`, Cedar also checks
    /// that they conform (the tests do; the policies were validated against the same
    /// schema, and the types here are fixed, so requests in service skip it).
    fn request(
        &self,
        req: &AuthzRequest<'_>,
        schema: Option<&Schema>,
    ) -> Result<(Request, Entities), String> {
        let principal = EntityUid::from_type_name_and_id(
            self.principal_type.clone(),
            EntityId::new(req.principal),
        );
        let model =
            EntityUid::from_type_name_and_id(self.model_type.clone(), EntityId::new(req.model));
        let groups = req
            .groups
            .iter()
            .map(|g| RestrictedExpression::new_string(g.clone()));
        let principal_entity = Entity::new_with_tags(
            principal.clone(),
            [
                (
                    "name".to_owned(),
                    RestrictedExpression::new_string(req.principal.to_owned()),
                ),
                (
                    "credential".to_owned(),
                    RestrictedExpression::new_string(req.credential.as_str().to_owned()),
                ),
                ("groups".to_owned(), RestrictedExpression::new_set(groups)),
            ],
            [],
            [],
        )
        .map_err(|e| e.to_string())?;
        let model_entity = Entity::new_with_tags(
            model.clone(),
            [
                (
                    "name".to_owned(),
                    RestrictedExpression::new_string(req.model.to_owned()),
                ),
                (
                    "version".to_owned(),
                    RestrictedExpression::new_string(req.version.unwrap_or("").to_owned()),
                ),
                (
                    "backend".to_owned(),
                    RestrictedExpression::new_string(req.backend.as_str().to_owned()),
                ),
            ],
            [],
            [],
        )
        .map_err(|e| e.to_string())?;
        let (hour, weekday) = hour_and_weekday(req.now);
        let context = Context::from_pairs([
            (
                "route".to_owned(),
                RestrictedExpression::new_string(req.route.to_owned()),
            ),
            (
                "protocol".to_owned(),
                RestrictedExpression::new_string(req.protocol.to_owned()),
            ),
            ("source_ip".to_owned(), self.source_ip(req.source)),
            ("tls".to_owned(), RestrictedExpression::new_bool(req.tls)),
            (
                "in_key_scope".to_owned(),
                RestrictedExpression::new_bool(req.in_key_scope),
            ),
            ("hour_utc".to_owned(), RestrictedExpression::new_long(hour)),
            (
                "weekday_utc".to_owned(),
                RestrictedExpression::new_long(weekday),
            ),
        ])
        .map_err(|e| e.to_string())?;
        let action = self
            .actions
            .get(req.action.index())
            .ok_or("no such action")?
            .clone();
        let request =
            Request::new(principal, action, model, context, schema).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities([principal_entity, model_entity], schema)
            .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// `ip("<address>")`, IPv4-mapped addresses as IPv4, from the cache where it can be.
    fn source_ip(&self, ip: IpAddr) -> RestrictedExpression {
        let ip = ip.to_canonical();
        if let Some(e) = self
            .source_ips
            .lock()
            .ok()
            .and_then(|c| c.get(&ip).cloned())
        {
            return e;
        }
        let e = RestrictedExpression::new_ip(ip.to_string());
        if let Ok(mut cache) = self.source_ips.lock() {
            if cache.len() >= SOURCE_IP_CACHE {
                cache.clear();
            }
            cache.insert(ip, e.clone());
        }
        e
    }
}

/// Refuses files longer than [`MAX_TEXT`], bracket nesting deeper than [`MAX_BRACKETS`],
/// and policies with more than [`MAX_IFS`] `if`s or [`MAX_POLICY_CODE`] characters of code,
/// reading the text as Cedar's lexer would (strings, `//` comments).
fn check_nesting(text: &str, origin: &str) -> anyhow::Result<()> {
    if text.len() > MAX_TEXT {
        bail!(
            "{origin}: the file is {} bytes, more than Warden reads as policies ({MAX_TEXT})",
            text.len()
        );
    }
    let mut depth = 0usize;
    let mut ifs = 0usize;
    let mut code = 0usize;
    let mut in_word = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let word_char = c.is_alphanumeric() || c == '_';
        if !c.is_whitespace() {
            code += 1;
            if code > MAX_POLICY_CODE {
                let (line, column) = line_and_column(text, i);
                bail!(
                    "{origin}:{line}:{column}: a policy has more than {MAX_POLICY_CODE} \
                     characters of code; split it into several policies"
                );
            }
        }
        match c {
            '"' => {
                // To the closing quote; an escape takes the next character with it.
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek().is_some_and(|&(_, c)| c == '/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_BRACKETS {
                    let (line, column) = line_and_column(text, i);
                    bail!(
                        "{origin}:{line}:{column}: brackets nest more than {MAX_BRACKETS} deep; \
                         split the condition into several policies"
                    );
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => (ifs, code) = (0, 0),
            'i' if !in_word
                && text.get(i..).is_some_and(|t| t.starts_with("if"))
                && !text
                    .get(i + 2..)
                    .and_then(|t| t.chars().next())
                    .is_some_and(|c| c.is_alphanumeric() || c == '_') =>
            {
                ifs += 1;
                if ifs > MAX_IFS {
                    let (line, column) = line_and_column(text, i);
                    bail!(
                        "{origin}:{line}:{column}: a policy has more than {MAX_IFS} `if`s; \
                         split it into several policies"
                    );
                }
            }
            _ => {}
        }
        in_word = word_char;
    }
    Ok(())
}

/// How deep `v` nests (a scalar is 1), without recursing.
fn json_depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// `parsed` with each policy renamed to its `@id("...")` annotation, where it has one, in
/// file order (Cedar numbers policies `policy0`, `policy1`, ... as it reads them).
fn with_annotated_ids(parsed: &PolicySet, origin: &str) -> anyhow::Result<PolicySet> {
    let mut policies: Vec<_> = parsed.policies().collect();
    policies.sort_by_key(|p| {
        AsRef::<str>::as_ref(p.id())
            .strip_prefix("policy")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    let mut set = PolicySet::new();
    for p in policies {
        let renamed = match p.annotation("id") {
            None => p.clone(),
            Some(id) if id.trim().is_empty() => {
                bail!("{origin}: policy {} has an empty @id; name it", p.id())
            }
            Some(id) => p.new_id(PolicyId::new(id)),
        };
        let id = renamed.id().to_string();
        set.add(renamed).map_err(|_| {
            anyhow!("{origin}: two policies have the id {id:?}; give each its own @id")
        })?;
    }
    Ok(set)
}

/// `origin:line:column: message, in `source` (help: ...)` for a Cedar diagnostic, the
/// position and source taken from its first label (a byte span of `text`), where it has one.
fn describe(text: &str, origin: &str, d: &(impl Diagnostic + ?Sized)) -> String {
    let span = d
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| (l.offset(), l.len()));
    let mut out = String::from(origin);
    if let Some((offset, _)) = span {
        let (line, column) = line_and_column(text, offset);
        let _ = write!(out, ":{line}:{column}");
    }
    let _ = write!(out, ": {d}");
    let source = span.and_then(|(offset, len)| text.get(offset..offset.checked_add(len)?));
    if let Some(source) = source.filter(|s| !s.is_empty() && s.len() <= 120) {
        let _ = write!(
            out,
            ", in `{}`",
            source.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(help) = d.help() {
        let _ = write!(out, " (help: {help})");
    }
    printable(&out)
}

/// One problem a line, at most [`MAX_PROBLEMS`] of them.
fn listed(problems: &[String]) -> String {
    let mut out = String::new();
    for p in problems.iter().take(MAX_PROBLEMS) {
        let _ = write!(out, "\n  {p}");
    }
    if problems.len() > MAX_PROBLEMS {
        let _ = write!(out, "\n  ... and {} more", problems.len() - MAX_PROBLEMS);
    }
    out
}

/// How many problems one error lists: enough to fix a file in a few rounds.
const MAX_PROBLEMS: usize = 20;

/// `s` with control and bidirectional-formatting characters escaped (`\u{202e}`), so that
/// an error quoting a policy shows what it says (a Trojan-source string cannot reorder the
/// operator's terminal or log).
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n') || bidi {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// The UTC hour (0-23) and weekday (0 = Monday .. 6 = Sunday) of `now`.
fn hour_and_weekday(now: SystemTime) -> (i64, i64) {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    let days = secs.div_euclid(86_400);
    // 1970-01-01 was a Thursday: weekday 3 counting from Monday.
    (secs.rem_euclid(86_400) / 3_600, (days + 3).rem_euclid(7))
}

fn type_name(name: &str) -> anyhow::Result<EntityTypeName> {
    EntityTypeName::from_str(name).map_err(|e| anyhow!("entity type {name}: {e}"))
}

fn action_uid(action: Action) -> anyhow::Result<EntityUid> {
    Ok(EntityUid::from_type_name_and_id(
        type_name("Warden::Action")?,
        EntityId::new(action.as_str()),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    /// Monday 2024-01-01 00:00:00 UTC.
    const MONDAY: u64 = 1_704_067_200;

    fn at(day: u64, hour: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(MONDAY + day * 86_400 + hour * 3_600 + 1_234)
    }

    /// An in-scope API-key inference from a public address, Monday 10:00 UTC.
    fn req<'a>(principal: &'a str, model: &'a str, groups: &'a [String]) -> AuthzRequest<'a> {
        AuthzRequest {
            principal,
            credential: Credential::ApiKey,
            groups,
            action: Action::Infer,
            model,
            version: Some("1.0.0"),
            backend: Backend::Runtime,
            route: "kserve.infer",
            protocol: "kserve",
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            tls: true,
            in_key_scope: true,
            now: at(0, 10),
        }
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", Policies::parse(text, "policies.cedar").unwrap_err())
    }

    /// Checks that the request built for `r` conforms to the schema, then decides it.
    fn decide(p: &Policies, r: &AuthzRequest<'_>) -> Decision {
        p.request(r, Some(&p.schema))
            .expect("request conforms to the schema");
        (*p.authorize(r)).clone()
    }

    const OPS: &str = r#"
@id("ops-only")
permit (principal, action == Warden::Action::"infer", resource == Warden::Model::"llama")
when { principal.groups.contains("ops") };
"#;

    #[test]
    fn the_schema_and_the_default_policy_validate() {
        let p = Policies::default_policy().unwrap();
        assert_eq!(p.ids(), ["default-key-scope"]);
    }

    #[test]
    fn the_default_policy_allows_in_scope_and_denies_out_of_scope() {
        let p = Policies::default_policy().unwrap();
        for action in [Action::Infer, Action::Metadata, Action::ListModels] {
            let mut r = req("alice", "llama", &[]);
            r.action = action;
            let d = decide(&p, &r);
            assert!(d.allowed, "{action:?}");
            assert_eq!(d.policies, ["default-key-scope"]);
            assert_eq!(d.errors, 0);
            r.in_key_scope = false;
            let d = decide(&p, &r);
            assert_eq!(
                d,
                Decision {
                    allowed: false,
                    policies: vec![],
                    errors: 0
                }
            );
        }
    }

    #[test]
    fn a_group_permit_names_its_policy() {
        let p = Policies::parse(OPS, "ops.cedar").unwrap();
        let ops = vec!["dev".to_owned(), "ops".to_owned()];
        let mut r = req("bob", "llama", &ops);
        r.credential = Credential::Jwt;
        let d = decide(&p, &r);
        assert!(d.allowed);
        assert_eq!(d.policies, ["ops-only"]);
        // Another model, another group, another action: no permit applies.
        assert!(!decide(&p, &req("bob", "mistral", &ops)).allowed);
        let dev = vec!["dev".to_owned()];
        assert!(!decide(&p, &req("bob", "llama", &dev)).allowed);
        assert!(!decide(&p, &req("bob", "llama", &[])).allowed);
        r.action = Action::Metadata;
        assert!(!decide(&p, &r).allowed);
        // The key's scope does not matter to this policy.
        r.action = Action::Infer;
        r.in_key_scope = false;
        assert!(decide(&p, &r).allowed);
    }

    #[test]
    fn a_forbid_by_source_range_wins_and_is_named() {
        let text = format!(
            "{DEFAULT_POLICY}{OPS}\n@id(\"no-internal\")\nforbid (principal, action, resource)\n\
             when {{ context.source_ip.isInRange(ip(\"10.0.0.0/8\")) }};\n"
        );
        let p = Policies::parse(&text, "p.cedar").unwrap();
        let ops = vec!["ops".to_owned()];
        let mut r = req("bob", "llama", &ops);
        assert_eq!(decide(&p, &r).policies, ["default-key-scope", "ops-only"]);
        r.source = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let d = decide(&p, &r);
        assert!(!d.allowed);
        assert_eq!(d.policies, ["no-internal"]);
        assert_eq!(d.errors, 0);
        // The same address, IPv4-mapped, is the same address to the policy.
        r.source = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        assert_eq!(decide(&p, &r).policies, ["no-internal"]);
        r.source = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(decide(&p, &r).allowed);
    }

    #[test]
    fn a_forbid_outside_working_hours() {
        let text = format!(
            "{DEFAULT_POLICY}\n@id(\"office-hours\")\nforbid (principal, action == \
             Warden::Action::\"infer\", resource)\nunless {{ context.weekday_utc <= 4 && \
             context.hour_utc >= 8 && context.hour_utc < 18 }};\n"
        );
        let p = Policies::parse(&text, "p.cedar").unwrap();
        let mut r = req("alice", "llama", &[]);
        for (day, hour, allowed) in [
            (0, 8, true),
            (4, 17, true),
            (0, 7, false),
            (2, 18, false),
            (5, 10, false),
            (6, 12, false),
            (7, 12, true), // the next Monday
        ] {
            r.now = at(day, hour);
            let d = decide(&p, &r);
            assert_eq!(d.allowed, allowed, "day {day} hour {hour}");
            if !allowed {
                assert_eq!(d.policies, ["office-hours"]);
            }
        }
        // Metadata is not inference: the forbid does not apply.
        r.action = Action::Metadata;
        assert!(decide(&p, &r).allowed);
    }

    #[test]
    fn hour_and_weekday_in_utc() {
        assert_eq!(hour_and_weekday(UNIX_EPOCH), (0, 3));
        assert_eq!(hour_and_weekday(at(0, 23)), (23, 0));
        assert_eq!(hour_and_weekday(at(6, 0)), (0, 6));
        // Before 1970 and at the far end of time: still in range.
        let before = UNIX_EPOCH - Duration::from_secs(3_600);
        assert_eq!(hour_and_weekday(before), (23, 2));
        let (h, w) = hour_and_weekday(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2));
        assert!((0..24).contains(&h) && (0..7).contains(&w));
    }

    #[test]
    fn action_specific_permits() {
        let p = Policies::parse(
            r#"@id("read-only") permit (principal, action in [Warden::Action::"metadata",
                Warden::Action::"list_models"], resource);"#,
            "p.cedar",
        )
        .unwrap();
        let mut r = req("carol", "llama", &[]);
        let d = decide(&p, &r);
        assert_eq!((d.allowed, d.policies.len()), (false, 0));
        r.action = Action::Metadata;
        assert_eq!(decide(&p, &r).policies, ["read-only"]);
        r.action = Action::ListModels;
        assert!(decide(&p, &r).allowed);
    }

    #[test]
    fn unannotated_policies_get_cedars_ids_in_file_order() {
        let p = Policies::parse(
            "permit (principal, action, resource) when { context.tls };\n\
             @id(\"x\") permit (principal, action, resource) when { resource.version == \"9\" };\n\
             permit (principal, action, resource) when { resource.backend == \"upstream\" };",
            "p.cedar",
        )
        .unwrap();
        assert_eq!(p.ids(), ["policy0", "policy2", "x"]);
        let mut r = req("a", "m", &[]);
        r.tls = false;
        r.backend = Backend::Upstream;
        assert_eq!(decide(&p, &r).policies, ["policy2"]);
    }

    #[test]
    fn malformed_text_names_origin_line_and_column() {
        let e = parse_err("permit (principal, action, resource);\n\npermit (principal, actoin);\n");
        assert!(
            e.starts_with("policies.cedar: the policies do not parse"),
            "{e}"
        );
        assert!(e.contains("policies.cedar:3:"), "{e}");
        let e = parse_err("permit (principal, action, resource) when { context.tls ");
        assert!(e.contains("policies.cedar:1:"), "{e}");
    }

    #[test]
    fn unknown_attributes_and_wrong_types_do_not_validate() {
        for (text, needle) in [
            // An attribute the schema does not declare.
            (
                "permit (principal, action, resource)\nwhen { principal.department == \"ml\" };",
                "department",
            ),
            // A context field of another type.
            (
                "permit (principal, action, resource)\nwhen { context.hour_utc == \"9\" };",
                "`context.hour_utc == \"9\"`",
            ),
            // A set where a string is declared.
            (
                "permit (principal, action, resource)\nwhen { principal.name.contains(\"x\") };",
                "contains",
            ),
            // An action and an entity type not in the schema.
            (
                "permit (principal, action == Warden::Action::\"delete\", resource);",
                "delete",
            ),
            ("permit (principal is User, action, resource);", "User"),
            // An invalid literal address.
            (
                "forbid (principal, action, resource)\nwhen { context.source_ip.isInRange(ip(\"10.0.0/8\")) };",
                "10.0.0/8",
            ),
        ] {
            let e = parse_err(text);
            assert!(
                e.starts_with("policies.cedar: the policies do not validate"),
                "{text}: {e}"
            );
            assert!(e.contains("policies.cedar:"), "{e}");
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = parse_err("permit (principal, action, resource)\nwhen { context.nope };");
        assert!(e.contains("policies.cedar:2:"), "{e}");
        // A long list of problems is cut short.
        let many = "permit (principal, action, resource) when { context.nope };\n".repeat(30);
        let e = parse_err(&many);
        assert_eq!(e.lines().count(), 1 + MAX_PROBLEMS + 1, "{e}");
        assert!(e.ends_with("... and 70 more"), "{e}");
    }

    #[test]
    fn warnings_refuse_the_file_too() {
        // A forbid that can never apply (a principal is never a Model).
        let e = parse_err(&format!(
            "{DEFAULT_POLICY}forbid (principal is Warden::Model, action, resource);"
        ));
        assert!(e.contains("do not validate"), "{e}");
        // Bidirectional-text controls hide what a string says.
        let e = parse_err(
            "permit (principal, action, resource) when { principal.name == \"a\u{202e}b\" };",
        );
        assert!(e.contains("do not validate"), "{e}");
        assert!(e.contains(r"a\u{202e}b") && !e.contains('\u{202e}'), "{e}");
        // Mixed scripts: a Cyrillic "а" in "llаma" would never match the real model.
        let e = parse_err(
            "forbid (principal, action, resource) when { resource.name == \"ll\u{430}ma\" };",
        );
        assert!(e.contains("mixed scripts"), "{e}");
    }

    #[test]
    fn empty_sets_templates_and_duplicate_ids_are_refused() {
        for text in ["", "  \n// only a comment\n"] {
            let e = parse_err(text);
            assert!(
                e.contains("deny by default would refuse every request"),
                "{e}"
            );
            assert!(e.contains("write a permit"), "{e}");
        }
        let e = parse_err("permit (principal == ?principal, action, resource);");
        assert!(e.contains("template"), "{e}");
        let e = parse_err("@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);");
        assert!(e.contains("two policies have the id \"a\""), "{e}");
        let e = parse_err("@id(\"policy1\") permit (principal, action, resource);\npermit (principal, action, resource);");
        assert!(e.contains("\"policy1\""), "{e}");
        let e = parse_err("@id(\"\") permit (principal, action, resource);");
        assert!(e.contains("empty @id"), "{e}");
    }

    #[test]
    fn names_are_values_never_cedar_source() {
        let text = r#"
@id("quoted")
permit (principal == Warden::Principal::"a\"b\\c", action, resource == Warden::Model::"m\"); forbid(principal,action,resource);//")
when { principal.name == "a\"b\\c" && resource.name like "m\"*" };
@id("unicode")
permit (principal, action, resource == Warden::Model::"模型")
when { principal.groups.contains("équipe") };
"#;
        let p = Policies::parse(text, "p.cedar").unwrap();
        let d = decide(
            &p,
            &req("a\"b\\c", "m\"); forbid(principal,action,resource);//", &[]),
        );
        assert_eq!(d.policies, ["quoted"]);
        assert!(d.allowed);
        // Close is not equal.
        assert!(
            !decide(
                &p,
                &req(
                    "a\"b\\\\c",
                    "m\"); forbid(principal,action,resource);//",
                    &[]
                )
            )
            .allowed
        );
        let team = vec!["équipe".to_owned()];
        assert_eq!(decide(&p, &req("λ", "模型", &team)).policies, ["unicode"]);
        // Nothing a name can hold breaks the request: control characters, NUL, empty.
        let odd = vec!["\0".to_owned(), String::new(), "\u{202e}".to_owned()];
        for name in [
            "",
            "\0",
            "\n\"",
            "\u{10ffff}",
            "::",
            "Warden::Principal::\"x\"",
        ] {
            let mut r = req(name, name, &odd);
            r.version = Some(name);
            r.route = name;
            r.protocol = name;
            let d = decide(&p, &r);
            assert_eq!((d.allowed, d.errors), (false, 0), "{name:?}");
        }
    }

    #[test]
    fn evaluation_errors_never_allow() {
        // Validates, but overflows at run time for any hour past 0.
        let overflow = "9223372036854775807 + context.hour_utc < 0";
        let forbid = format!(
            "{DEFAULT_POLICY}@id(\"broken-forbid\")\nforbid (principal, action, resource) when {{ {overflow} }};"
        );
        let p = Policies::parse(&forbid, "p.cedar").unwrap();
        let mut r = req("alice", "llama", &[]);
        // Cedar alone would allow here: it skips the erroring forbid.
        let d = decide(&p, &r);
        assert_eq!(
            d,
            Decision {
                allowed: false,
                policies: vec!["broken-forbid".to_owned()],
                errors: 1
            }
        );
        // At hour 0 the forbid evaluates (false) and the permit decides.
        r.now = at(0, 0);
        assert!(decide(&p, &r).allowed);

        // A broken permit beside a working one: still denied.
        let permit = format!(
            "{DEFAULT_POLICY}@id(\"broken-permit\")\npermit (principal, action, resource) when {{ {overflow} }};"
        );
        let p = Policies::parse(&permit, "p.cedar").unwrap();
        let d = decide(&p, &req("alice", "llama", &[]));
        assert_eq!((d.allowed, d.errors), (false, 1));
        assert_eq!(d.policies, ["broken-permit"]);
    }

    #[test]
    fn the_source_address_cache_stays_bounded_and_right() {
        let text = format!(
            "{DEFAULT_POLICY}@id(\"no-internal\")\nforbid (principal, action, resource)\n\
             when {{ context.source_ip.isInRange(ip(\"10.0.0.0/8\")) }};"
        );
        let p = Policies::parse(&text, "p.cedar").unwrap();
        let mut r = req("alice", "llama", &[]);
        for i in 0..(SOURCE_IP_CACHE as u32 + 10) {
            let internal = i % 2 == 0;
            let first = if internal { 10 } else { 11 };
            r.source = IpAddr::V4(Ipv4Addr::from(first << 24 | i));
            assert_eq!(decide(&p, &r).allowed, !internal, "{}", r.source);
            // Again, from the cache.
            assert_eq!(p.authorize(&r).allowed, !internal, "{}", r.source);
            assert!(p.source_ips.lock().unwrap().len() <= SOURCE_IP_CACHE);
        }
        assert_eq!(p.source_ips.lock().unwrap().len(), 10);
    }

    #[test]
    fn deep_nesting_is_refused_not_crashed() {
        let when = |cond: &str| format!("permit (principal, action, resource) when {{ {cond} }};");
        // Brackets: `when {` is one level.
        let ok = format!(
            "{}context.tls{}",
            "(".repeat(MAX_BRACKETS - 1),
            ")".repeat(MAX_BRACKETS - 1)
        );
        Policies::parse(&when(&ok), "p.cedar").unwrap();
        for n in [MAX_BRACKETS, 100_000] {
            let e = parse_err(&when(&format!("{}true{}", "[".repeat(n), "]".repeat(n))));
            assert!(
                e.starts_with(&format!(
                    "policies.cedar:1:{}: brackets nest",
                    45 + MAX_BRACKETS - 1
                )),
                "{e}"
            );
        }
        // Brackets in strings and comments are not nesting.
        let quoted = format!(
            "principal.name == \"{}\\\"{}\" // {}\n",
            "(".repeat(40),
            "{".repeat(40),
            "[".repeat(40)
        );
        Policies::parse(&when(&format!("{quoted} && context.tls")), "p.cedar").unwrap();
        // `if`s, counted per policy, as words.
        let ifs = |n| {
            format!(
                "{}context.tls{}",
                "if context.tls then ".repeat(n),
                " else false".repeat(n)
            )
        };
        Policies::parse(
            &format!("{}\n{}", when(&ifs(MAX_IFS)), when(&ifs(MAX_IFS))),
            "p.cedar",
        )
        .unwrap();
        let e = parse_err(&when(&ifs(MAX_IFS + 1)));
        assert!(e.contains(&format!("more than {MAX_IFS} `if`s")), "{e}");
        let words = format!(
            "principal.name == \"{}\" && principal.groups.contains(\"iff\")",
            "if ".repeat(40)
        );
        Policies::parse(&when(&words), "p.cedar").unwrap();
        // A long chain: Cedar's validator, short of stack, would pass `context.nope`.
        for cond in ["context.nope", "context.tls"] {
            let e = parse_err(&when(&format!("{cond}{}", " && context.tls".repeat(1_000))));
            assert!(e.contains("nests deeper than Warden allows"), "{e}");
        }
        // Chains long enough to exhaust even the parser's stack, and oversized files.
        let e = parse_err(&when(&format!("context{}", ".a".repeat(200_000))));
        assert!(e.contains("characters of code"), "{e}");
        let long = format!("\"{}\"", "x".repeat(MAX_POLICY_CODE));
        Policies::parse(&when(&format!("principal.name == {long}")), "p.cedar").unwrap();
        let e = parse_err(&format!("{DEFAULT_POLICY}//{}", " ".repeat(MAX_TEXT)));
        assert!(e.contains("more than Warden reads as policies"), "{e}");
        // Just under the limit: validated, and decided on a test thread's 2 MiB stack.
        let chain = (MAX_DEPTH - 7) / 2;
        let p = Policies::parse(
            &when(&format!(
                "context.tls{}",
                " && context.in_key_scope".repeat(chain)
            )),
            "p.cedar",
        )
        .unwrap();
        let d = decide(&p, &req("alice", "llama", &[]));
        assert_eq!((d.allowed, d.errors), (true, 0));
        let e = parse_err(&when(&format!(
            "context.tls{}",
            " && context.in_key_scope".repeat(chain + 1)
        )));
        assert!(e.contains("nests deeper"), "{e}");
    }

    #[test]
    fn policies_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Policies>();
    }

    #[test]
    fn a_remembered_decision_is_the_decision_and_depends_on_every_input() {
        let p = Policies::parse(
            "@id(\"ops\") permit(principal, action, resource) when { principal.groups.contains(\"ops\") && context.source_ip.isInRange(ip(\"10.0.0.0/8\")) };",
            "t",
        )
        .unwrap();
        let ops = vec!["ops".to_string()];
        let none: Vec<String> = Vec::new();
        let base = AuthzRequest {
            principal: "alice",
            credential: Credential::Jwt,
            groups: &ops,
            action: Action::Infer,
            model: "m",
            version: None,
            backend: Backend::Upstream,
            route: "openai.chat",
            protocol: "openai",
            source: "10.1.2.3".parse().unwrap(),
            tls: true,
            in_key_scope: true,
            now: SystemTime::now(),
        };
        for _ in 0..3 {
            assert!(p.authorize(&base).allowed);
        }
        assert_eq!(*p.authorize(&base), p.decide(&base));
        let outside = AuthzRequest {
            source: "192.0.2.1".parse().unwrap(),
            ..base
        };
        assert!(!p.authorize(&outside).allowed);
        let no_group = AuthzRequest {
            groups: &none,
            ..base
        };
        assert!(!p.authorize(&no_group).allowed);
        // Groups and names cannot run into each other in the key.
        let g1 = vec!["a".to_string(), "b".to_string()];
        let g2 = vec!["a:b".to_string()];
        assert_ne!(
            decision_key(&AuthzRequest {
                groups: &g1,
                ..base
            }),
            decision_key(&AuthzRequest {
                groups: &g2,
                ..base
            })
        );
        // Nor can a missing version and an empty one, an address and its IPv4-mapped
        // form, or a group and the model.
        let key = |r: AuthzRequest<'_>| decision_key(&r);
        assert_ne!(
            key(AuthzRequest {
                version: Some(""),
                ..base
            }),
            key(base.clone())
        );
        assert_ne!(
            key(AuthzRequest {
                source: "::ffff:10.1.2.3".parse().unwrap(),
                ..base
            }),
            key(base.clone())
        );
        let g3 = vec!["m".to_string()];
        assert_ne!(
            key(AuthzRequest {
                groups: &g3,
                model: "",
                ..base
            }),
            key(AuthzRequest {
                groups: &none,
                model: "m",
                ..base
            })
        );
        assert!(lock(p.decisions.local()).len() == 3);
        for i in 0..MAX_DECISIONS + 10 {
            let model = format!("m{i}");
            p.authorize(&AuthzRequest {
                model: &model,
                ..base
            });
        }
        assert!(lock(p.decisions.local()).len() <= MAX_DECISIONS);
    }
}
