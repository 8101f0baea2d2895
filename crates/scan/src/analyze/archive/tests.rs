//! Container analyzer tests over hand-built archives.

use std::io::Write;

use flate2::write::{DeflateEncoder, ZlibEncoder};
use flate2::Compression;

use crate::engine::{scan_bytes, FileReport, ScanOptions};
use crate::severity::Severity;

// ---------------------------------------------------------------- builders

#[derive(Clone)]
struct Z {
    name: Vec<u8>,
    local_name: Option<Vec<u8>>,
    data: Vec<u8>,
    /// Stored bytes when deflated.
    packed: Option<Vec<u8>>,
    usize_: u32,
    method: u16,
    flags: u16,
    mode: Option<u32>,
    local_only: bool,
}

fn z(name: &str, data: &[u8]) -> Z {
    Z {
        name: name.as_bytes().to_vec(),
        local_name: None,
        data: data.to_vec(),
        packed: None,
        usize_: data.len() as u32,
        method: 0,
        flags: 0,
        mode: None,
        local_only: false,
    }
}

fn deflated(name: &str, data: &[u8]) -> Z {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    Z {
        packed: Some(e.finish().unwrap()),
        method: 8,
        ..z(name, data)
    }
}

fn zip_with_prefix(prefix: &[u8], entries: &[Z]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let mut cd = Vec::new();
    let mut count = 0u16;
    for e in entries {
        let off = (out.len() - prefix.len()) as u32;
        let stored = e.packed.as_ref().unwrap_or(&e.data);
        let lname = e.local_name.as_ref().unwrap_or(&e.name);
        out.extend_from_slice(b"PK\x03\x04\x14\x00");
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.usize_.to_le_bytes());
        out.extend_from_slice(&(lname.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(lname);
        out.extend_from_slice(stored);
        if e.local_only {
            continue;
        }
        count += 1;
        let made_by: u16 = if e.mode.is_some() { 0x0314 } else { 0x0014 };
        cd.extend_from_slice(b"PK\x01\x02");
        cd.extend_from_slice(&made_by.to_le_bytes());
        cd.extend_from_slice(&20u16.to_le_bytes());
        cd.extend_from_slice(&e.flags.to_le_bytes());
        cd.extend_from_slice(&e.method.to_le_bytes());
        cd.extend_from_slice(&[0; 4]);
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        cd.extend_from_slice(&e.usize_.to_le_bytes());
        cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        cd.extend_from_slice(&[0; 8]);
        cd.extend_from_slice(&(e.mode.unwrap_or(0) << 16).to_le_bytes());
        cd.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(&e.name);
    }
    let cd_off = (out.len() - prefix.len()) as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn zip(entries: &[Z]) -> Vec<u8> {
    zip_with_prefix(b"", entries)
}

/// One tar member (ustar), with any name and type.
fn tar_entry(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

fn gzip(data: &[u8], name: Option<&str>) -> Vec<u8> {
    let mut b = flate2::GzBuilder::new();
    if let Some(n) = name {
        b = b.filename(n);
    }
    let mut e = b.write(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------- helpers

const EVIL: &[u8] =
    b"\x80\x02cposix\nsystem\nq\x00X\x0b\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
const BENIGN_PKL: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01K\x01s.";

fn scan(data: &[u8]) -> FileReport {
    scan_bytes(data, "t", &ScanOptions::default())
}

fn has(r: &FileReport, id: &str) -> bool {
    r.findings.iter().any(|f| f.rule.id == id)
}

fn sev(r: &FileReport, id: &str) -> Option<Severity> {
    r.findings
        .iter()
        .filter(|f| f.rule.id == id)
        .map(|f| f.severity)
        .max()
}

/// Members of findings, joined: which nested things were reached.
fn reached(r: &FileReport) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| f.location.members.join("!"))
        .collect()
}

/// Findings from the container analyzers themselves at medium or above.
fn container_gating(r: &FileReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| {
            ["ZIP", "TAR", "CMP", "NPY"]
                .iter()
                .any(|p| f.rule.id.starts_with(p))
                && f.severity >= Severity::Medium
        })
        .map(|f| format!("{} {}", f.rule.id, f.evidence))
        .collect()
}

fn float_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (i as f32 * 0.37).to_le_bytes())
        .collect()
}

fn torch_zip(pkl: &[u8]) -> Vec<u8> {
    zip(&[
        z("archive/data.pkl", pkl),
        z("archive/byteorder", b"little"),
        z("archive/data/0", &float_bytes(64)),
        z("archive/data/1", &[0x80, 0x02, 0x00, 0x00, 1, 2, 3, 4]),
        z("archive/constants/0", &float_bytes(16)),
        z("archive/version", b"3\n"),
        z("archive/.data/serialization_id", b"1234567890"),
    ])
}

// ---------------------------------------------------------------- zip

#[test]
fn pytorch_zip_is_recognised_and_storages_are_quiet() {
    let r = scan(&torch_zip(BENIGN_PKL));
    assert!(r.formats.contains(&"pytorch"), "{:?}", r.formats);
    assert!(
        r.formats.contains(&"pickle"),
        "data.pkl went to the pickle analyzer"
    );
    assert_eq!(container_gating(&r), Vec::<String>::new());
    assert!(
        !reached(&r).iter().any(|m| m.contains("archive/data/")),
        "storage blobs must not produce findings: {:?}",
        r.findings
    );
}

#[test]
fn pickle_hidden_as_storage_blob_is_scanned() {
    let mut entries = vec![z("archive/data.pkl", BENIGN_PKL), z("archive/data/0", EVIL)];
    entries.push(z("archive/version", b"3\n"));
    let r = scan(&zip(&entries));
    assert!(has(&r, "ZIP015"));
    assert!(reached(&r).iter().any(|m| m == "archive/data/0"));
}

#[test]
fn pickle_under_odd_name_is_found_by_content() {
    let r = scan(&zip(&[
        z("archive/data.pkl", BENIGN_PKL),
        z("archive/extra.bin", EVIL),
    ]));
    assert!(r
        .findings
        .iter()
        .any(|f| f.location.members == ["archive/extra.bin"]));
}

#[test]
fn deflated_members_are_inflated() {
    let r = scan(&zip(&[deflated("w.npy", b"\x93NUMPY\x01\x00\x00\x00")]));
    assert!(r.formats.contains(&"numpy"), "{:?}", r.formats);
}

#[test]
fn traversal_absolute_and_odd_names() {
    let r = scan(&zip(&[
        z("../../etc/cron.d/evil", b"x"),
        z("/etc/passwd", b"x"),
        z("C:\\Windows\\x.dll", b"x"),
        z("ok/data.pkl\0.txt", b"x"),
        z("dir\\file", b"x"),
    ]));
    let esc = r.findings.iter().filter(|f| f.rule.id == "ZIP001").count();
    assert_eq!(esc, 3);
    assert_eq!(sev(&r, "ZIP001"), Some(Severity::High));
    assert_eq!(sev(&r, "ZIP002"), Some(Severity::High)); // the NUL
}

#[test]
fn symlink_member_is_high() {
    let r = scan(&zip(&[Z {
        mode: Some(0o120777),
        ..z("model/link", b"/home/user/.ssh/id_rsa")
    }]));
    let f = r.findings.iter().find(|f| f.rule.id == "ZIP003").unwrap();
    assert_eq!(f.severity, Severity::High);
    assert!(f.evidence.contains("id_rsa"), "{}", f.evidence);
}

#[test]
fn duplicates_every_copy_is_scanned() {
    let r = scan(&zip(&[
        z("archive/data.pkl", BENIGN_PKL),
        z("archive/data.pkl", EVIL),
    ]));
    assert_eq!(sev(&r, "ZIP007"), Some(Severity::High));
    let m = reached(&r);
    assert!(m.iter().any(|m| m == "archive/data.pkl (copy 2)"), "{m:?}");
}

#[test]
fn name_mismatch_and_local_only_member() {
    let r = scan(&zip(&[Z {
        local_name: Some(b"evil.pkl".to_vec()),
        ..z("weights.bin", b"x")
    }]));
    assert_eq!(sev(&r, "ZIP004"), Some(Severity::High));

    let r = scan(&zip(&[
        z("a.txt", b"hello"),
        Z {
            local_only: true,
            ..z("hidden.pkl", EVIL)
        },
    ]));
    assert_eq!(sev(&r, "ZIP006"), Some(Severity::High));
    assert!(reached(&r)
        .iter()
        .any(|m| m == "hidden.pkl [local header only]"));
}

#[test]
fn encrypted_flag_on_clear_pickle_is_high_and_scanned() {
    let r = scan(&zip(&[Z {
        flags: 1,
        ..z("archive/data.pkl", EVIL)
    }]));
    assert_eq!(sev(&r, "ZIP009"), Some(Severity::High));
    assert!(r.formats.contains(&"pickle"));
}

#[test]
fn unknown_method_cannot_be_vouched_for() {
    let r = scan(&zip(&[Z {
        method: 12,
        ..z("x.npy", b"BZh91AY&SY")
    }]));
    assert_eq!(sev(&r, "ZIP012"), Some(Severity::Medium));
}

#[test]
fn prefix_stub_is_scanned() {
    let r = scan(&zip_with_prefix(EVIL, &[z("a.txt", b"hello")]));
    // The pickle detector wins on a pickle-prefixed file; a non-pickle stub goes to zip.
    let _ = r;
    let r = scan(&zip_with_prefix(
        b"#!/bin/sh\nexit 0\n\x00\xff",
        &[z("a.txt", b"hello")],
    ));
    assert!(has(&r, "ZIP013"), "{:?}", r.findings);
    assert!(reached(&r).iter().any(|m| m == "<prefix>"));
}

#[test]
fn deflate_bomb_is_stopped() {
    let r = scan(&zip(&[deflated("zeros.bin", &vec![0u8; 80 << 20])]));
    assert!(has(&r, "CMP001"), "{:?}", r.findings);
}

#[test]
fn lying_declared_size_is_reported() {
    let r = scan(&zip(&[Z {
        usize_: 3,
        ..deflated("a.txt", b"hello world")
    }]));
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule.id == "ZIP005" && f.evidence.contains("actual 11")));
}

#[test]
fn finder_metadata_is_quiet_but_not_a_hiding_place() {
    let r = scan(&zip(&[
        z("model/w.npy", b"\x93NUMPY\x01\x00\x00\x00"),
        z(
            "__MACOSX/model/._w.npy",
            b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
        ),
        z("__MACOSX/model/._x.npy", EVIL),
    ]));
    assert!(
        !reached(&r).iter().any(|m| m.contains("._w.npy")),
        "{:?}",
        r.findings
    );
    assert!(reached(&r).iter().any(|m| m.contains("._x.npy")));
}

#[test]
fn keras_and_npz_layouts() {
    let r = scan(&zip(&[
        z("config.json", b"{\"class_name\": \"Sequential\"}"),
        z("metadata.json", b"{\"keras_version\": \"3.6.0\"}"),
    ]));
    assert!(r.formats.contains(&"keras"));
    assert_eq!(container_gating(&r), Vec::<String>::new());
}

#[test]
fn truncated_zip_at_every_offset_does_not_panic() {
    let full = torch_zip(BENIGN_PKL);
    for cut in (0..full.len()).step_by(7) {
        let r = scan(&full[..cut]);
        if cut > 4 {
            assert!(
                r.findings.iter().any(|f| f.severity >= Severity::Medium),
                "cut {cut} reported clean"
            );
        }
    }
}

// ---------------------------------------------------------------- tar

#[test]
fn tar_traversal_links_and_specials() {
    let t = tar(&[
        tar_entry(b"../../etc/profile.d/x.sh", b'0', b"", b"echo"),
        tar_entry(b"model/link", b'2', b"/etc/shadow", b""),
        tar_entry(b"model/near", b'2', b"../model/w.bin", b""),
        tar_entry(b"model/hard", b'1', b"../../x", b""),
        tar_entry(b"model/fifo", b'6', b"", b""),
    ]);
    let r = scan(&t);
    assert_eq!(sev(&r, "TAR001"), Some(Severity::High));
    let mut links: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule.id == "TAR002")
        .map(|f| f.severity)
        .collect();
    links.sort();
    assert_eq!(
        links,
        vec![Severity::Medium, Severity::High, Severity::High]
    );
    assert!(has(&r, "TAR003"));
}

#[test]
fn tar_gnu_long_name_is_the_name_judged() {
    // The short header name is harmless; the GNU long name extractors use climbs out.
    let t = tar(&[
        tar_entry(b"././@LongLink", b'L', b"", b"../../home/user/.bashrc\0"),
        tar_entry(b"model/readme.txt", b'0', b"", b"hi"),
    ]);
    let r = scan(&t);
    let f = r.findings.iter().find(|f| f.rule.id == "TAR001").unwrap();
    assert!(f.evidence.contains(".bashrc"), "{}", f.evidence);
}

#[test]
fn tar_duplicates_and_members_scanned() {
    let t = tar(&[
        tar_entry(b"model.pkl", b'0', b"", BENIGN_PKL),
        tar_entry(b"model.pkl", b'0', b"", EVIL),
    ]);
    let r = scan(&t);
    assert_eq!(sev(&r, "TAR004"), Some(Severity::High));
    assert!(reached(&r).iter().any(|m| m == "model.pkl (copy 2)"));
}

#[test]
fn tar_trailing_data_after_end() {
    let mut t = tar(&[tar_entry(b"a.txt", b'0', b"", b"hi")]);
    t.extend_from_slice(&zip(&[z("x", b"y")]));
    let r = scan(&t);
    assert!(has(&r, "TAR005"), "{:?}", r.findings);
    assert!(r.formats.contains(&"zip"));
}

fn legacy_storages(second: &[u8]) -> Vec<u8> {
    let mut d = b"\x80\x02K\x01.".to_vec();
    d.extend_from_slice(
        b"\x80\x02X\x01\x00\x00\x001X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.",
    );
    d.extend_from_slice(&2i64.to_le_bytes());
    d.extend_from_slice(&[0x2e; 8]);
    d.extend_from_slice(second);
    d
}

#[test]
fn pytorch_legacy_tar_every_record_is_scanned() {
    let t = tar(&[
        tar_entry(b"sys_info", b'0', b"", BENIGN_PKL),
        tar_entry(b"pickle", b'0', b"", BENIGN_PKL),
        tar_entry(b"storages", b'0', b"", &legacy_storages(b"\x80\x02].")),
        tar_entry(b"tensors", b'0', b"", b"\x80\x02K\x00."),
    ]);
    let r = scan(&t);
    assert!(r.formats.contains(&"pytorch-legacy-tar"), "{:?}", r.formats);
    assert_eq!(container_gating(&r), Vec::<String>::new());
    // Every storage record is a benign pickle: none of them is reported.
    let records = reached(&r)
        .iter()
        .filter(|m| m.starts_with("storages!<record"))
        .count();
    assert_eq!(records, 0, "{:?}", r.findings);

    // A payload in the trailing storage_views pickle is reached.
    let t = tar(&[
        tar_entry(b"pickle", b'0', b"", BENIGN_PKL),
        tar_entry(b"storages", b'0', b"", &legacy_storages(EVIL)),
        tar_entry(b"tensors", b'0', b"", b"\x80\x02K\x00."),
    ]);
    let r = scan(&t);
    assert!(r.formats.contains(&"pickle"));
    // Broken layout: said, and the first pickle still scanned.
    let t = tar(&[
        tar_entry(b"pickle", b'0', b"", BENIGN_PKL),
        tar_entry(b"storages", b'0', b"", b"\x80\x02K\x01.garbage"),
        tar_entry(b"tensors", b'0', b"", b"\x80\x02K\x00."),
    ]);
    assert!(has(&scan(&t), "TAR006"));
}

// ---------------------------------------------------------------- gzip / zlib

#[test]
fn gzip_member_named_and_scanned() {
    let r = scan(&gzip(EVIL, Some("model.bin")));
    assert!(r.formats.contains(&"gzip") && r.formats.contains(&"pickle"));
    assert!(
        reached(&r).iter().any(|m| m == "model.bin"),
        "{:?}",
        r.findings
    );
}

#[test]
fn gzip_multi_member_and_padding() {
    let mut g = gzip(b"hello ", None);
    g.extend_from_slice(&gzip(b"rest", None));
    g.extend_from_slice(&[0; 100]);
    let r = scan(&g);
    assert!(!has(&r, "CMP002") && !has(&r, "GEN002"), "{:?}", r.findings);
    g.extend_from_slice(b"junk after");
    assert!(has(&scan(&g), "CMP002"));
}

#[test]
fn truncated_or_corrupt_gzip_is_a_parse_error() {
    let g = gzip(&float_bytes(1000), None);
    for cut in [g.len() - 1, g.len() - 9, g.len() / 2, 12] {
        assert!(has(&scan(&g[..cut]), "GEN002"), "cut {cut}");
    }
    let mut bad = g.clone();
    let n = bad.len();
    bad[n - 5] ^= 0xff; // the size trailer
    assert!(has(&scan(&bad), "GEN002"));
}

#[test]
fn zlib_stream_is_scanned() {
    let r = scan(&zlib(EVIL));
    assert!(r.formats.contains(&"zlib") && r.formats.contains(&"pickle"));
}

#[test]
fn gzip_bomb_is_stopped() {
    let r = scan(&gzip(&vec![0u8; 80 << 20], None));
    assert!(has(&r, "CMP001"));
}

#[test]
fn zip_in_tar_in_gzip_chain() {
    let inner = zip(&[z("archive/data.pkl", EVIL)]);
    let t = tar(&[tar_entry(b"bundle/model.pt", b'0', b"", &inner)]);
    let r = scan(&gzip(&t, Some("bundle.tar")));
    assert!(
        reached(&r)
            .iter()
            .any(|m| m == "bundle.tar!bundle/model.pt!archive/data.pkl"),
        "{:?}",
        reached(&r)
    );
}

// ---------------------------------------------------------------- robustness

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutated_containers_never_panic() {
    let t = tar(&[
        tar_entry(b"sys_info", b'0', b"", BENIGN_PKL),
        tar_entry(b"pickle", b'0', b"", BENIGN_PKL),
        tar_entry(b"storages", b'0', b"", &legacy_storages(b"\x80\x02].")),
        tar_entry(b"tensors", b'0', b"", b"\x80\x02K\x00."),
        tar_entry(b"l", b'2', b"../x", b""),
    ]);
    let samples = [
        torch_zip(BENIGN_PKL),
        zip(&[
            deflated(
                "a.npy",
                b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            ),
            z("b", b"x"),
        ]),
        t.clone(),
        gzip(&t, Some("x.tar")),
        zlib(&torch_zip(BENIGN_PKL)),
    ];
    let mut state = 0x1234_5678_9abc_def0u64;
    for base in &samples {
        for _ in 0..1500 {
            let mut m = base.clone();
            let flips = 1 + xorshift(&mut state) % 6;
            for _ in 0..flips {
                let i = (xorshift(&mut state) % m.len() as u64) as usize;
                m[i] = xorshift(&mut state) as u8;
            }
            if xorshift(&mut state).is_multiple_of(4) {
                let cut = (xorshift(&mut state) % m.len() as u64) as usize;
                m.truncate(cut);
            }
            let _ = scan(&m);
        }
    }
}

#[test]
fn pickle_with_a_zip_appended_is_scanned_both_ways() {
    // A benign protocol-2 pickle (`{}`) read from the front; a zip found from the end whose
    // member is a pickle calling posix.system.
    let front = b"\x80\x02}q\x00.";
    let evil = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85R.";
    let r = scan(&zip_with_prefix(front, &[z("archive/data.pkl", evil)]));
    assert!(has(&r, "ZIP013"), "{:?}", reached(&r));
    assert!(r
        .findings
        .iter()
        .any(|f| f.severity == Severity::Critical && f.evidence.contains("posix.system")));
}
