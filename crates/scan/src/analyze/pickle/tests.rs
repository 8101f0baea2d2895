//! Analyzer tests: hand-built pickles through the whole scanner.

use crate::engine::{scan_bytes, FileReport, ScanOptions};
use crate::severity::Severity;

fn scan(data: &[u8]) -> FileReport {
    scan_bytes(data, "sample.pkl", &ScanOptions::default())
}

fn scan_allowing(data: &[u8], allow: &[&str]) -> FileReport {
    let mut opts = ScanOptions::default();
    opts.policy.allow_globals = allow.iter().map(|s| s.to_string()).collect();
    scan_bytes(data, "sample.pkl", &opts)
}

/// (rule id, severity, evidence) of every finding at `min` or above.
fn findings(r: &FileReport, min: Severity) -> Vec<(&'static str, Severity, String)> {
    r.findings
        .iter()
        .filter(|f| f.severity >= min)
        .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
        .collect()
}

fn has(r: &FileReport, id: &str, sev: Severity, evidence: &str) -> bool {
    r.findings
        .iter()
        .any(|f| f.rule.id == id && f.severity == sev && f.evidence.contains(evidence))
}

/// A protocol-2 stream: `\x80\x02` + body + `.`.
fn p2(body: &[u8]) -> Vec<u8> {
    let mut v = b"\x80\x02".to_vec();
    v.extend_from_slice(body);
    v.push(b'.');
    v
}

#[test]
fn os_system_protocol0_is_critical() {
    let r = scan(b"cposix\nsystem\n(S'id'\ntR.");
    assert!(
        has(&r, "PKL001", Severity::Critical, "posix.system('id')"),
        "{:?}",
        findings(&r, Severity::Info)
    );
    assert_eq!(r.formats, ["pickle"]);
    let f = r.findings.iter().find(|f| f.rule.id == "PKL001").unwrap();
    assert_eq!(f.location.offset, Some(0));
    assert_eq!(f.location.object.as_deref(), Some("posix.system"));
}

#[test]
fn python2_builtin_names_are_judged_as_python3() {
    let r = scan(b"c__builtin__\neval\n(S'__import__(\"os\").system(\"id\")'\ntR.");
    assert!(
        has(&r, "PKL001", Severity::Critical, "builtins.eval("),
        "{:?}",
        findings(&r, Severity::Info)
    );
    assert!(has(
        &r,
        "PKL001",
        Severity::Critical,
        "written __builtin__.eval"
    ));
}

#[test]
fn benign_containers_are_clean() {
    for data in [
        &b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x01K\x02eu."
            [..],
        b"(dp0\nS'a'\np1\nI1\ns.",
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02K\x01s.",
        b"\x80\x04c__builtin__\nset\n.",
    ] {
        let r = scan(data);
        let bad = findings(&r, Severity::Medium);
        // `__builtin__.set` under protocol 4 is not mapped: Python 3 cannot import it.
        if data.starts_with(b"\x80\x04") {
            assert!(bad.iter().all(|f| f.0 == "PKL003"), "{bad:?}");
            continue;
        }
        assert!(bad.is_empty(), "{bad:?}");
    }
}

#[test]
fn unlisted_globals_high_when_run_medium_when_referenced() {
    let r = scan(&p2(b"cmypkg.models\nBuild\n)R"));
    assert!(
        has(&r, "PKL002", Severity::High, "mypkg.models.Build()"),
        "{:?}",
        findings(&r, Severity::Info)
    );
    let r = scan(&p2(b"cmypkg.models\nCONSTANT\n"));
    assert!(
        has(
            &r,
            "PKL003",
            Severity::Medium,
            "mypkg.models.CONSTANT imported (GLOBAL)"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
    // Passing an unlisted function to an allowed call counts as running it.
    let r = scan(&p2(b"ccollections\ndefaultdict\ncmypkg\nfactory\n\x85R"));
    assert!(
        has(
            &r,
            "PKL002",
            Severity::High,
            "mypkg.factory passed to a call"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn operator_allow_list_and_deny_precedence() {
    let data = p2(b"cmypkg.models\nBuild\n)R");
    let r = scan_allowing(&data, &["mypkg.models.Build"]);
    assert!(
        findings(&r, Severity::Low).is_empty(),
        "{:?}",
        findings(&r, Severity::Low)
    );
    let r = scan_allowing(b"cposix\nsystem\n(S'id'\ntR.", &["posix.system"]);
    assert!(has(&r, "PKL001", Severity::Critical, "posix.system('id')"));
}

#[test]
fn classes_may_be_built_but_not_called() {
    let built = p2(b"csklearn.linear_model._logistic\nLogisticRegression\n)\x81}X\x01\x00\x00\x00CG?\xf0\x00\x00\x00\x00\x00\x00sb");
    let r = scan(&built);
    assert!(
        findings(&r, Severity::Low).is_empty(),
        "{:?}",
        findings(&r, Severity::Low)
    );
    let called =
        p2(b"csklearn.linear_model._logistic\nLogisticRegression\nX\x01\x00\x00\x00x\x85R");
    let r = scan(&called);
    assert!(
        has(&r, "PKL002", Severity::High, "LogisticRegression('x')"),
        "{:?}",
        findings(&r, Severity::Info)
    );
    // Protocol 0: copy_reg._reconstructor(cls, object, None) + BUILD.
    let p0 = b"ccopy_reg\n_reconstructor\n(csklearn.preprocessing._data\nStandardScaler\nc__builtin__\nobject\nNtR(dS'with_mean'\nI01\nsb.";
    let r = scan(p0);
    assert!(
        findings(&r, Severity::Low).is_empty(),
        "{:?}",
        findings(&r, Severity::Low)
    );
    let evil = b"ccopy_reg\n_reconstructor\n(cevil\nThing\nc__builtin__\nobject\nNtR.";
    let r = scan(evil);
    assert!(
        has(&r, "PKL002", Severity::High, "evil.Thing instantiated"),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn values_may_not_be_called() {
    let r = scan(&p2(b"ctorch\nfloat32\n)R"));
    assert!(
        has(&r, "PKL002", Severity::High, "torch.float32()"),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn getattr_chain_reports_every_link() {
    let data = p2(b"cbuiltins\ngetattr\n(cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85RX\x06\x00\x00\x00systemtRX\x02\x00\x00\x00id\x85R");
    let r = scan(&data);
    assert!(
        has(
            &r,
            "PKL001",
            Severity::Critical,
            "builtins.getattr(<result of builtins.__import__(...)>, 'system')"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
    assert!(has(
        &r,
        "PKL001",
        Severity::Critical,
        "builtins.__import__('os')"
    ));
    assert!(has(
        &r,
        "PKL002",
        Severity::High,
        "<result of builtins.getattr(...)>('id')"
    ));
}

#[test]
fn attribute_chains_and_odd_names() {
    let r = scan(&p2(
        b"\x8c\x0ctorch._utils\x8c\tos.system\x93X\x02\x00\x00\x00id\x85R",
    ));
    assert!(
        has(
            &r,
            "PKL001",
            Severity::Critical,
            "torch._utils.os.system('id')"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
    let r = scan(&p2(b"\x8c\x04os\nx\x8c\x01y\x93"));
    assert!(
        has(&r, "PKL002", Severity::High, "malformed global name"),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn environment_mutation_without_any_call() {
    let r = scan(b"cos\nenviron\nS'LD_PRELOAD'\nS'/tmp/x.so'\ns.");
    assert!(
        has(
            &r,
            "PKL001",
            Severity::Critical,
            "<os.environ>.__setitem__('LD_PRELOAD', '/tmp/x.so')"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn broken_stream_still_reports_what_ran() {
    let r = scan(b"cposix\nsystem\n(S'id'\ntR");
    assert!(has(&r, "PKL001", Severity::Critical, "posix.system('id')"));
    assert!(
        r.findings.iter().any(|f| f.rule.id == "GEN002"),
        "{:?}",
        findings(&r, Severity::Info)
    );
    let r = scan(b"cposix\nsystem\n(S'id'\ntR\xff");
    assert!(has(&r, "PKL001", Severity::Critical, "posix.system('id')"));
    assert!(has(&r, "GEN002", Severity::Medium, "unknown opcode 0xff"));
}

#[test]
fn extensions_persistent_ids_and_trailing_data() {
    let r = scan(&p2(b"\x82\x07"));
    assert!(
        has(&r, "PKL004", Severity::Medium, "extension code 7"),
        "{:?}",
        findings(&r, Severity::Info)
    );
    let torch = p2(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
    let r = scan(&torch);
    assert!(
        findings(&r, Severity::Low).is_empty(),
        "{:?}",
        findings(&r, Severity::Low)
    );
    let r = scan(&p2(b"X\x04\x00\x00\x00evilQ"));
    assert!(has(&r, "PKL005", Severity::Low, "persistent id 'evil'"));
    let mut data = p2(b"N");
    data.extend_from_slice(&[0, 1, 2, 3]);
    let r = scan(&data);
    assert!(has(
        &r,
        "PKL007",
        Severity::Info,
        "4 bytes after the last pickle"
    ));
    assert!(findings(&r, Severity::Low).is_empty());
}

#[test]
fn second_pickle_is_scanned() {
    let mut data = p2(b"}");
    data.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
    let r = scan(&data);
    assert!(has(&r, "PKL001", Severity::Critical, "posix.system('id')"));
    let f = r.findings.iter().find(|f| f.rule.id == "PKL001").unwrap();
    assert_eq!(f.location.offset, Some(4));
}

#[test]
fn nested_pickle_in_bytes_is_scanned() {
    let inner = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
    let mut body = b"ctorch.storage\n_load_from_bytes\nC".to_vec();
    body.push(inner.len() as u8);
    body.extend_from_slice(inner);
    body.extend_from_slice(b"\x85R");
    let r = scan(&p2(&body));
    assert!(
        has(
            &r,
            "PKL006",
            Severity::Medium,
            "torch.storage._load_from_bytes"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.rule.id == "PKL001")
        .expect("nested payload found");
    assert_eq!(f.evidence, "posix.system('id')");
    assert_eq!(f.location.members.len(), 1);
    // Protocol 2 writes bytes as _codecs.encode(latin-1 text): decoded and scanned too.
    let mut body = b"cpickle\nloads\nc_codecs\nencode\nX".to_vec();
    let text: String = inner.iter().map(|&b| char::from(b)).collect();
    body.extend((text.len() as u32).to_le_bytes());
    body.extend_from_slice(text.as_bytes());
    body.extend_from_slice(b"X\x06\x00\x00\x00latin1\x86R\x85R");
    let r = scan(&p2(&body));
    assert!(
        has(&r, "PKL001", Severity::Critical, "pickle.loads("),
        "{:?}",
        findings(&r, Severity::Info)
    );
    assert!(r.findings.iter().any(|f| f.rule.id == "PKL001"
        && f.evidence == "posix.system('id')"
        && f.location.members.len() == 1));
}

#[test]
fn dynamic_names_and_calls() {
    let data = p2(
        b"cbuiltins\nstr\nC\x02os\x85Rcbuiltins\nstr\nC\x06system\x85R\x93X\x02\x00\x00\x00id\x85R",
    );
    let r = scan(&data);
    assert!(
        has(&r, "PKL002", Severity::High, "computed at load time"),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn build_on_a_global_is_flagged_even_when_allowed() {
    let r = scan(&p2(b"ccollections\nOrderedDict\n}b"));
    assert!(
        has(
            &r,
            "PKL002",
            Severity::High,
            "BUILD sets attributes on collections.OrderedDict"
        ),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn protocol0_pickle_named_like_text_is_still_a_pickle() {
    let r = scan_bytes(
        b"cos\nsystem\n(S'id'\ntR.",
        "README.md",
        &ScanOptions::default(),
    );
    assert_eq!(r.formats, ["pickle"]);
    assert!(has(&r, "PKL001", Severity::Critical, "os.system('id')"));
}

#[test]
fn codecs_encode_is_only_for_bytes() {
    let r = scan(&p2(
        b"c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86R",
    ));
    assert!(
        findings(&r, Severity::Low).is_empty(),
        "{:?}",
        findings(&r, Severity::Low)
    );
    let r = scan(&p2(
        b"c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00rot_13\x86R",
    ));
    assert!(has(&r, "PKL002", Severity::High, "unusual codec"));
}

#[test]
fn shared_structures_and_blobs_cost_once() {
    // A wide nested structure and a nested pickle, both memoized, passed to 20000 calls.
    let inner = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
    let mut body = b"(".to_vec();
    for _ in 0..64 {
        body.extend_from_slice(b"(");
        body.extend(std::iter::repeat_n(b'N', 64));
        body.extend_from_slice(b"t");
    }
    body.extend_from_slice(b"tq\x00C");
    body.push(inner.len() as u8);
    body.extend_from_slice(inner);
    body.extend_from_slice(b"q\x010");
    for _ in 0..20_000 {
        body.extend_from_slice(b"ctorch.storage\n_load_from_bytes\nh\x01h\x00\x86R0");
    }
    body.extend_from_slice(b"N");
    let start = std::time::Instant::now();
    let r = scan(&p2(&body));
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    let nested: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule.id == "PKL006")
        .collect();
    assert_eq!(nested.len(), 1);
    assert!(has(&r, "PKL001", Severity::Critical, "posix.system('id')"));
}

#[test]
fn nested_pickles_stop_at_the_nesting_limit() {
    let mut data = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.".to_vec();
    for _ in 0..12 {
        let mut outer = b"\x80\x02cpickle\nloads\nB".to_vec();
        outer.extend((data.len() as u32).to_le_bytes());
        outer.extend_from_slice(&data);
        outer.extend_from_slice(b"\x85R.");
        data = outer;
    }
    let r = scan(&data);
    assert!(
        r.findings.iter().any(|f| f.rule.id == "GEN005"),
        "{:?}",
        findings(&r, Severity::Info)
    );
}

#[test]
fn mutated_streams_never_panic() {
    let seeds: [&[u8]; 4] = [
        b"\x80\x02ctorch.storage\n_load_from_bytes\nC\x1b\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.\x85R.",
        b"ccopy_reg\n_reconstructor\n(csklearn.preprocessing._data\nStandardScaler\nc__builtin__\nobject\nNtR(dS'with_mean'\nI01\nsb.",
        b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08builtins\x8c\n__import__\x93\x8c\x02os\x85R\x8c\x06system\x86R\x8c\x02id\x85R.",
        b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ\x82\x07.",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let mut data = seeds[round % seeds.len()].to_vec();
        for _ in 0..(1 + next() % 3) {
            let i = (next() % data.len() as u64) as usize;
            match next() % 3 {
                0 => data[i] = next() as u8,
                1 => data.insert(i, next() as u8),
                _ => {
                    data.remove(i);
                }
            }
            if data.is_empty() {
                data.push(b'.');
            }
        }
        let r = scan(&data);
        // Every input is reported somehow: a pickle judged, or a format finding.
        assert!(!r.formats.is_empty());
    }
}
