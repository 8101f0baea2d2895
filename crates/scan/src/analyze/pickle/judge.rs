//! Turns the traces of a pickle stream into verdicts: which globals and calls are allowed,
//! which are dangerous, which cannot be vouched for. Pure: no context, no I/O, so that every
//! decision can be tested on a trace alone.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use formats::pickle::{
    identifier_path, looks_like, Call, CallKind, Obj, Stream, Trace, Uses, Value,
};

use super::policy::{self, Allow};
use super::{
    ANOMALY, DANGEROUS_CALLABLE, EXTENSION_CODE, NESTED_PICKLE, PERSISTENT_ID, UNLISTED_CALL,
    UNLISTED_GLOBAL,
};
use crate::analyze::generic;
use crate::rules::Rule;
use crate::severity::Severity;

/// Deepest argument nesting searched for globals passed to a call.
const ARG_DEPTH: u32 = 4;
/// Most argument values visited for one call, and for the whole stream.
const ARG_VISITS_PER_CALL: usize = 4096;
const ARG_VISITS: u64 = 4_000_000;
/// Most nested pickles (bytes passed to calls) scanned per stream.
const MAX_BLOBS: usize = 64;
/// Most anomaly findings per stream.
const MAX_ANOMALIES: usize = 5;

/// One finding to report.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub rule: &'static Rule,
    pub severity: Severity,
    pub offset: u64,
    /// The global or call the finding is about.
    pub object: Option<String>,
    pub evidence: String,
}

/// Bytes passed to a call that hold another pickle (or a zip): scanned as nested data.
#[derive(Debug, Clone)]
pub struct Blob<'a> {
    pub offset: u64,
    pub data: Cow<'a, [u8]>,
    /// What received the bytes, e.g. `torch.storage._load_from_bytes`.
    pub receiver: String,
}

#[derive(Debug, Default)]
pub struct Judgement<'a> {
    pub verdicts: Vec<Verdict>,
    pub blobs: Vec<Blob<'a>>,
}

/// Everything known about one global path across the stream. What only evidence needs
/// (the names as written, the first call) is kept by reference and rendered only when a
/// verdict quotes it.
#[derive(Debug, Default)]
struct Facts<'t, 'a> {
    offset: u64,
    opcode: &'static str,
    uses: Uses,
    /// Passed as an argument to a call (which may call it).
    as_argument: bool,
    dynamic: bool,
    /// The names as written, when `fix_imports` changed them (of the first import).
    written: Option<&'t (String, String)>,
    names_ok: bool,
    first_call: Option<(&'t Trace<'a>, &'t Call<'a>)>,
    calls: usize,
}

/// Identity of a blob: where its bytes sit in the input, or which `_codecs.encode` call
/// (of which trace) produced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BlobKey {
    Slice(usize, usize),
    Encoded(usize, usize),
}

struct Ctx<'j, 't, 'a> {
    extra: &'j BTreeSet<String>,
    arg_visits: u64,
    blobs_seen: HashSet<BlobKey>,
    blob_budget: u64,
    blob_limit_hit: bool,
    facts: Vec<(String, Facts<'t, 'a>)>,
    index: HashMap<String, usize>,
    verdicts: Vec<Verdict>,
    /// Scratch space of `mark_arguments`, kept between calls.
    arg_stack: Vec<(Value<'a>, u32)>,
    /// Per heap object of the trace being judged: the number of the last call whose
    /// arguments reached it (a visited-set that is cleared by counting up).
    arg_seen: Vec<u32>,
    arg_call: u32,
}

impl<'t, 'a> Ctx<'_, 't, 'a> {
    /// The index of the facts about `path`, created empty when new.
    fn fact_index(&mut self, path: &str) -> usize {
        if let Some(i) = self.index.get(path) {
            return *i;
        }
        let i = self.facts.len();
        self.index.insert(path.to_string(), i);
        self.facts.push((path.to_string(), Facts::default()));
        i
    }

    fn facts_at(&mut self, i: usize) -> &mut Facts<'t, 'a> {
        // Indices come from `fact_index` and always point into `facts`.
        &mut self.facts[i].1
    }

    fn verdict(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        offset: u64,
        object: Option<String>,
        evidence: String,
    ) {
        self.verdicts.push(Verdict {
            rule,
            severity,
            offset,
            object,
            evidence,
        });
    }

    fn allowed(&self, path: &str, f: &Facts<'_, '_>) -> bool {
        if self.extra.contains(path) {
            return true;
        }
        let u = &f.uses;
        match policy::builtin_allow(path) {
            Some(Allow::Call) => !u.built && !u.mutated,
            Some(Allow::Class) => !u.called && !u.built && !u.mutated,
            Some(Allow::Value) => !u.invoked(),
            None => false,
        }
    }
}

/// Judges every trace of `stream`. `extra` is the operator's allow-list.
pub fn judge<'a>(stream: &Stream<'a>, extra: &BTreeSet<String>, data_len: usize) -> Judgement<'a> {
    // At most one entry per import: sized once instead of grown (and rehashed).
    let imports: usize = stream.traces().map(|t| t.globals.len()).sum();
    let mut cx = Ctx {
        extra,
        arg_visits: ARG_VISITS,
        blobs_seen: HashSet::new(),
        blob_budget: (data_len as u64).saturating_mul(2).saturating_add(1 << 20),
        blob_limit_hit: false,
        facts: Vec::with_capacity(imports),
        index: HashMap::with_capacity(imports),
        verdicts: Vec::new(),
        arg_stack: Vec::new(),
        arg_seen: Vec::new(),
        arg_call: 0,
    };
    let mut blobs = Vec::new();
    for t in stream.traces() {
        collect(&mut cx, t, &mut blobs);
    }
    let facts = std::mem::take(&mut cx.facts);
    for (path, f) in &facts {
        judge_global(&mut cx, path, f);
    }
    // What plain `pickle.load` would run in a joblib file, where it differs.
    for t in &stream.pickles {
        if let Some(view) = &t.pickle_load_view {
            pickle_load_view(&mut cx, view, &facts);
        }
    }
    Judgement {
        verdicts: cx.verdicts,
        blobs,
    }
}

/// One trace's globals: each one's path, and the index of the facts about that path.
struct Names {
    paths: Vec<String>,
    facts: Vec<usize>,
}

impl Names {
    /// The path and facts index of the global `v` is, if it is one.
    fn of(&self, t: &Trace<'_>, v: Value<'_>) -> Option<(&str, usize)> {
        let g = t.global_index(v)?;
        Some((self.paths.get(g)?.as_str(), *self.facts.get(g)?))
    }
}

fn collect<'t, 'a>(cx: &mut Ctx<'_, 't, 'a>, t: &'t Trace<'a>, blobs: &mut Vec<Blob<'a>>) {
    cx.arg_seen.clear();
    cx.arg_seen.resize(t.heap().len(), 0);
    cx.arg_call = 0;
    let mut names = Names {
        paths: Vec::with_capacity(t.globals.len()),
        facts: Vec::with_capacity(t.globals.len()),
    };
    for g in &t.globals {
        let path = g.path();
        let i = cx.fact_index(&path);
        names.paths.push(path);
        names.facts.push(i);
        let names_ok = identifier_path(&g.module) && identifier_path(&g.name);
        let f = cx.facts_at(i);
        if f.opcode.is_empty() {
            f.offset = g.offset;
            f.opcode = g.opcode;
            f.names_ok = names_ok;
            f.written = g.written.as_ref();
        }
        f.uses.called |= g.uses.called;
        f.uses.instantiated |= g.uses.instantiated;
        f.uses.built |= g.uses.built;
        f.uses.mutated |= g.uses.mutated;
        f.dynamic |= g.dynamic;
        f.names_ok &= names_ok;
    }
    for call in &t.calls {
        judge_call(cx, t, &names, call, blobs);
    }
    for p in &t.persistent_ids {
        if !torch_like_pid(t, p.pid) {
            cx.verdict(
                &PERSISTENT_ID,
                PERSISTENT_ID.severity,
                p.offset,
                None,
                format!("persistent id {}", t.render(p.pid)),
            );
        }
    }
    let mut codes = BTreeSet::new();
    for e in &t.extensions {
        if codes.insert(e.code) {
            cx.verdict(
                &EXTENSION_CODE,
                EXTENSION_CODE.severity,
                e.offset,
                None,
                format!("extension code {} (EXT opcode): resolved through copyreg's registry at load time", e.code),
            );
        }
    }
    for a in t.anomalies.iter().take(MAX_ANOMALIES) {
        cx.verdict(
            &ANOMALY,
            ANOMALY.severity,
            a.offset,
            None,
            a.message.clone(),
        );
    }
    for a in t.joblib_arrays.iter().filter(|a| a.object) {
        cx.verdict(
            &NESTED_PICKLE,
            Severity::Info,
            a.data_offset,
            None,
            format!(
                "joblib object array {:?} holds a nested pickle of {} bytes (inspected with the file)",
                a.shape, a.data_len
            ),
        );
    }
}

fn judge_call<'t, 'a>(
    cx: &mut Ctx<'_, 't, 'a>,
    t: &'t Trace<'a>,
    names: &Names,
    call: &'t Call<'a>,
    blobs: &mut Vec<Blob<'a>>,
) {
    let callee = names.of(t, call.callee);
    match callee {
        Some((_, i)) => {
            let f = cx.facts_at(i);
            f.calls = f.calls.saturating_add(1);
            if f.first_call.is_none() {
                f.first_call = Some((t, call));
            }
        }
        None => judge_dynamic_call(cx, t, call),
    }
    let callee = callee.map(|(path, _)| path);
    let class_maker = matches!(
        callee,
        Some("copyreg._reconstructor" | "copyreg.__newobj__" | "copyreg.__newobj_ex__")
    );
    // `_reconstructor(cls, base, state)` / `__newobj__(cls, *args)` instantiate `cls`.
    let args = t.args(call);
    if let Some(cls) = args.first().filter(|_| class_maker) {
        match names.of(t, *cls) {
            Some((_, i)) => cx.facts_at(i).uses.instantiated = true,
            None => cx.verdict(
                &UNLISTED_CALL,
                UNLISTED_CALL.severity,
                call.offset,
                callee.map(str::to_string),
                format!(
                    "builds an instance of a class computed at load time: {}",
                    t.render_call(call)
                ),
            ),
        }
    }
    let skip = usize::from(class_maker);
    mark_arguments(
        cx,
        t,
        names,
        args.iter().skip(skip).copied().chain(call.kwargs),
    );
    if callee == Some("_codecs.encode") {
        let encoding = args.get(1).and_then(|v| t.str_bytes(*v));
        let ok = match encoding {
            None => args.len() == 1,
            Some(e) => policy::SAFE_ENCODINGS
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(e)),
        };
        if !ok {
            cx.verdict(
                &UNLISTED_CALL,
                UNLISTED_CALL.severity,
                call.offset,
                callee.map(str::to_string),
                format!("unusual codec: {}", t.render_call(call)),
            );
        }
    }
    let raw_data_receiver = callee.is_some_and(|p| {
        p.starts_with("numpy.") && (p.ends_with(".scalar") || p.ends_with("._frombuffer"))
    });
    if !raw_data_receiver {
        for arg in args {
            let Some((key, data)) = blob_of(t, *arg) else {
                continue;
            };
            if !cx.blobs_seen.insert(key) || !(data.starts_with(b"PK\x03\x04") || looks_like(&data))
            {
                continue;
            }
            let size = data.len() as u64;
            if blobs.len() >= MAX_BLOBS || size > cx.blob_budget {
                if !cx.blob_limit_hit {
                    cx.blob_limit_hit = true;
                    cx.verdict(
                        &generic::LIMIT_EXCEEDED,
                        generic::LIMIT_EXCEEDED.severity,
                        call.offset,
                        None,
                        format!("pickle: more nested pickles in call arguments than the scanner inspects ({MAX_BLOBS} or their size exceeds the file's)"),
                    );
                }
                continue;
            }
            cx.blob_budget = cx.blob_budget.saturating_sub(size);
            blobs.push(Blob {
                offset: call.offset,
                data,
                receiver: t.render_callee(call.callee),
            });
        }
    }
}

/// A call whose callee is not a global: the result of another call, a persistent or
/// extension object, a method the unpickler invokes on an object.
fn judge_dynamic_call(cx: &mut Ctx<'_, '_, '_>, t: &Trace<'_>, call: &Call<'_>) {
    if let CallKind::Method(_) = call.kind {
        // Methods of objects built from allowed classes (OrderedDict.__setitem__) are
        // theirs to run; objects of unlisted classes are reported with their class.
        if let Some(c) = t.call_index(call.callee) {
            if t.calls
                .get(c)
                .and_then(|made| t.global_of(made.callee))
                .is_some()
            {
                return;
            }
        }
    }
    cx.verdict(
        &UNLISTED_CALL,
        UNLISTED_CALL.severity,
        call.offset,
        None,
        format!(
            "calls a value computed at load time: {}",
            t.render_call(call)
        ),
    );
}

/// Marks globals reachable in a call's arguments as passed to the call. Iterative and
/// budgeted: a memoized structure may be passed to every call of the stream.
fn mark_arguments<'a>(
    cx: &mut Ctx<'_, '_, 'a>,
    t: &Trace<'a>,
    names: &Names,
    roots: impl Iterator<Item = Value<'a>>,
) {
    let mut stack = std::mem::take(&mut cx.arg_stack);
    let mut seen = std::mem::take(&mut cx.arg_seen);
    stack.clear();
    stack.extend(roots.map(|v| (v, ARG_DEPTH)));
    cx.arg_call = cx.arg_call.wrapping_add(1);
    if cx.arg_call == 0 {
        seen.fill(0);
        cx.arg_call = 1;
    }
    let call = cx.arg_call;
    mark_reachable(cx, t, names, &mut stack, &mut seen, call);
    cx.arg_stack = stack;
    cx.arg_seen = seen;
}

fn mark_reachable<'a>(
    cx: &mut Ctx<'_, '_, 'a>,
    t: &Trace<'a>,
    names: &Names,
    stack: &mut Vec<(Value<'a>, u32)>,
    seen: &mut [u32],
    call: u32,
) {
    let mut visits = 0usize;
    while let Some((v, depth)) = stack.pop() {
        if visits >= ARG_VISITS_PER_CALL || cx.arg_visits == 0 {
            return;
        }
        visits = visits.saturating_add(1);
        cx.arg_visits = cx.arg_visits.saturating_sub(1);
        if let Some((_, i)) = names.of(t, v) {
            cx.facts_at(i).as_argument = true;
            continue;
        }
        let Value::Obj(id) = v else { continue };
        if depth == 0 {
            continue;
        }
        // Every object id of the trace has a slot (see `collect`).
        match usize::try_from(id).ok().and_then(|i| seen.get_mut(i)) {
            Some(last) if *last != call => *last = call,
            _ => continue,
        }
        let next = depth.saturating_sub(1);
        match t.obj(v) {
            Some(obj @ (Obj::Tuple(_) | Obj::List(_) | Obj::Set(_) | Obj::FrozenSet(_))) => {
                let items = t.heap().elements(obj).unwrap_or_default();
                stack.extend(items.iter().take(ARG_VISITS_PER_CALL).map(|c| (*c, next)));
            }
            Some(Obj::Dict(pairs)) => {
                stack.extend(
                    pairs
                        .iter()
                        .take(ARG_VISITS_PER_CALL)
                        .flat_map(|(k, v)| [(*k, next), (*v, next)]),
                );
            }
            _ => {}
        }
    }
}

/// The bytes a value holds: `bytes`, `bytearray`, or protocol 2's
/// `_codecs.encode('…', 'latin1')`, with a key saying which stream object they are (the
/// same memoized bytes passed to many calls are scanned once).
fn blob_of<'a>(t: &Trace<'a>, v: Value<'a>) -> Option<(BlobKey, Cow<'a, [u8]>)> {
    if let Some(b) = t.bytes_of(v) {
        return Some((
            BlobKey::Slice(b.as_ptr() as usize, b.len()),
            Cow::Borrowed(b),
        ));
    }
    let index = t.call_index(v)?;
    let call = t.calls.get(index)?;
    let callee = t.callee_global(call)?;
    // `module.name` is `_codecs.encode` exactly when these are the two parts.
    if callee.module != "_codecs" || callee.name != "encode" {
        return None;
    }
    let text = std::str::from_utf8(t.str_bytes(*t.args(call).first()?)?).ok()?;
    let latin1: Option<Vec<u8>> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    latin1.map(|b| {
        let key = BlobKey::Encoded(t as *const Trace<'a> as usize, index);
        (key, Cow::Owned(b))
    })
}

/// PyTorch's persistent ids: `('storage', storage_type, key, location, numel)` (zip
/// format), with a sixth `view_metadata` in the legacy format, or `('module', class,
/// source_file, source)` for legacy module source records.
fn torch_like_pid(t: &Trace<'_>, pid: Value<'_>) -> bool {
    let Some(items) = t.items(pid) else {
        return false;
    };
    let text = |i: usize| {
        items
            .get(i)
            .and_then(|v| t.str_bytes(*v).or_else(|| t.bytes_of(*v)))
    };
    match text(0) {
        Some(b"storage") => {
            (items.len() == 5 || items.len() == 6)
                && items.get(1).is_some_and(|v| t.global_of(*v).is_some())
                && text(2).is_some()
                && text(3).is_some()
        }
        Some(b"module") => items.len() == 4,
        _ => false,
    }
}

/// The evidence for a verdict about a global: its first call, or how it was used.
fn what(f: &Facts<'_, '_>, path: &str) -> String {
    let written = f
        .written
        .map(|(m, n)| format!(" (written {m}.{n})"))
        .unwrap_or_default();
    let more = match f.calls {
        0 | 1 => String::new(),
        n => format!(" (+{} more call(s))", n.saturating_sub(1)),
    };
    match f.first_call {
        Some((t, call)) => format!("{}{written}{more}", t.render_call(call)),
        None => format!("{}{written}", describe_use(f, path)),
    }
}

fn judge_global(cx: &mut Ctx<'_, '_, '_>, path: &str, f: &Facts<'_, '_>) {
    let object = || Some(path.to_string());
    if policy::denied(path) {
        cx.verdict(
            &DANGEROUS_CALLABLE,
            DANGEROUS_CALLABLE.severity,
            f.offset,
            object(),
            what(f, path),
        );
        return;
    }
    if f.dynamic {
        cx.verdict(
            &UNLISTED_CALL,
            UNLISTED_CALL.severity,
            f.offset,
            object(),
            format!("import whose module and name are computed at load time: {path}"),
        );
        return;
    }
    if !f.names_ok {
        cx.verdict(
            &UNLISTED_CALL,
            UNLISTED_CALL.severity,
            f.offset,
            Some(format!("{path:?}")),
            format!(
                "malformed global name: {}",
                describe_use(f, &format!("{path:?}"))
            ),
        );
        return;
    }
    if cx.allowed(path, f) {
        return;
    }
    if f.uses.invoked() || f.as_argument {
        cx.verdict(
            &UNLISTED_CALL,
            UNLISTED_CALL.severity,
            f.offset,
            object(),
            what(f, path),
        );
    } else {
        cx.verdict(
            &UNLISTED_GLOBAL,
            UNLISTED_GLOBAL.severity,
            f.offset,
            object(),
            what(f, path),
        );
    }
}

/// How a global was used, for evidence when no call of it can be quoted.
fn describe_use(f: &Facts<'_, '_>, path: &str) -> String {
    let u = &f.uses;
    let op = f.opcode;
    if u.built {
        format!("BUILD sets attributes on {path} itself")
    } else if u.mutated {
        format!("items assigned into {path} itself")
    } else if u.called {
        format!("{path} called")
    } else if u.instantiated {
        format!("{path} instantiated")
    } else if f.as_argument {
        format!("{path} passed to a call ({op})")
    } else {
        format!("{path} imported ({op}), not called by the stream")
    }
}

fn pickle_load_view(
    cx: &mut Ctx<'_, '_, '_>,
    view: &Trace<'_>,
    primary: &[(String, Facts<'_, '_>)],
) {
    let mut seen = BTreeSet::new();
    for g in &view.globals {
        let path = g.path();
        if !policy::denied(&path)
            || primary.iter().any(|(p, _)| *p == path)
            || !seen.insert(path.clone())
        {
            continue;
        }
        let call = view
            .calls
            .iter()
            .find(|c| {
                view.global_index(c.callee)
                    .and_then(|i| view.globals.get(i))
                    .map(|x| x.path())
                    == Some(path.clone())
            })
            .map(|c| view.render_call(c))
            .unwrap_or_else(|| format!("reference to {path}"));
        cx.verdict(
            &DANGEROUS_CALLABLE,
            DANGEROUS_CALLABLE.severity,
            g.offset,
            Some(path),
            format!("when read by pickle.load instead of joblib.load: {call}"),
        );
    }
}
