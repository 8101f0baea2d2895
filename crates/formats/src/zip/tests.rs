//! Hand-built archives: good, odd and hostile.

use super::*;

/// One member as the builder writes it. Every field the tests lie about can be set.
#[derive(Clone)]
pub(crate) struct E {
    pub name: Vec<u8>,
    pub local_name: Option<Vec<u8>>,
    pub data: Vec<u8>,
    pub method: u16,
    pub local_method: Option<u16>,
    pub flags: u16,
    pub local_flags: Option<u16>,
    pub crc: u32,
    pub usize_: Option<u32>,
    pub descriptor: bool,
    pub made_by: u16,
    pub external: u32,
    /// Write only the local header (hidden from the directory).
    pub local_only: bool,
    /// Write only the central record, pointing at this offset.
    pub central_only_at: Option<u32>,
}

pub(crate) fn e(name: &str, data: &[u8]) -> E {
    E {
        name: name.as_bytes().to_vec(),
        local_name: None,
        data: data.to_vec(),
        method: 0,
        local_method: None,
        flags: 0,
        local_flags: None,
        crc: 0x1234_5678,
        usize_: None,
        descriptor: false,
        made_by: 20,
        external: 0,
        local_only: false,
        central_only_at: None,
    }
}

fn u16le(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// Writes a zip of `entries` after `prefix`, with central offsets relative to the start of
/// the archive (not the file), as `cat stub archive.zip` produces.
pub(crate) fn build_with_prefix(prefix: &[u8], entries: &[E]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let base = prefix.len();
    let mut cd = Vec::new();
    let mut count = 0u16;
    for en in entries {
        let offset = match en.central_only_at {
            Some(o) => o,
            None => {
                let off = (out.len() - base) as u32;
                let lname = en.local_name.as_ref().unwrap_or(&en.name);
                let lflags = en.local_flags.unwrap_or(en.flags);
                out.extend_from_slice(b"PK\x03\x04");
                u16le(&mut out, 20);
                u16le(&mut out, lflags);
                u16le(&mut out, en.local_method.unwrap_or(en.method));
                u16le(&mut out, 0);
                u16le(&mut out, 0);
                let (crc, cs, us) = if en.descriptor {
                    (0, 0, 0)
                } else {
                    (
                        en.crc,
                        en.data.len() as u32,
                        en.usize_.unwrap_or(en.data.len() as u32),
                    )
                };
                u32le(&mut out, crc);
                u32le(&mut out, cs);
                u32le(&mut out, us);
                u16le(&mut out, lname.len() as u16);
                u16le(&mut out, 0);
                out.extend_from_slice(lname);
                out.extend_from_slice(&en.data);
                if en.descriptor {
                    out.extend_from_slice(b"PK\x07\x08");
                    u32le(&mut out, en.crc);
                    u32le(&mut out, en.data.len() as u32);
                    u32le(&mut out, en.usize_.unwrap_or(en.data.len() as u32));
                }
                off
            }
        };
        if en.local_only {
            continue;
        }
        count += 1;
        cd.extend_from_slice(b"PK\x01\x02");
        u16le(&mut cd, en.made_by);
        u16le(&mut cd, 20);
        u16le(&mut cd, en.flags);
        u16le(&mut cd, en.method);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u32le(&mut cd, en.crc);
        u32le(&mut cd, en.data.len() as u32);
        u32le(&mut cd, en.usize_.unwrap_or(en.data.len() as u32));
        u16le(&mut cd, en.name.len() as u16);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u32le(&mut cd, en.external);
        u32le(&mut cd, offset);
        cd.extend_from_slice(&en.name);
    }
    let cd_offset = (out.len() - base) as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06");
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, count);
    u16le(&mut out, count);
    u32le(&mut out, cd.len() as u32);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}

pub(crate) fn build(entries: &[E]) -> Vec<u8> {
    build_with_prefix(b"", entries)
}

fn names<'a>(members: &[Member<'a>]) -> Vec<&'a [u8]> {
    members.iter().map(|m| m.name).collect()
}

#[test]
fn plain_archive_has_no_anomalies() {
    let z = build(&[e("a/data.pkl", b"\x80\x02K\x01."), e("a/version", b"3\n")]);
    let a = read(&z, &Limits::default());
    assert!(a.central.is_ok(), "{:?}", a.central);
    assert_eq!(a.local.entries.len(), 2);
    assert!(a.local.stopped.is_none());
    assert_eq!(a.anomalies, vec![]);
    let m = a.members();
    assert_eq!(names(&m), vec![&b"a/data.pkl"[..], b"a/version"]);
    assert_eq!(m[0].data.as_ref().unwrap(), b"\x80\x02K\x01.");
    // Stored members are slices of the input, not copies.
    let p = m[0].data.as_ref().unwrap().as_ptr() as usize;
    let base = z.as_ptr() as usize;
    assert!(p >= base && p < base + z.len());
}

#[test]
fn truncation_at_every_offset_is_an_error_or_a_partial_view_never_a_panic() {
    let z = build(&[
        e("a/data.pkl", b"\x80\x02K\x01."),
        E {
            descriptor: true,
            flags: 8,
            ..e("a/data/0", &[7u8; 40])
        },
    ]);
    for cut in 0..z.len() {
        let a = read(&z[..cut], &Limits::default());
        // The end record is the last thing written: any cut loses it.
        assert!(a.central.is_err(), "cut at {cut}");
        let _ = a.members();
    }
}

#[test]
fn local_and_central_name_mismatch() {
    let z = build(&[E {
        local_name: Some(b"a/evil.pkl".to_vec()),
        ..e("a/data.txt", b"hello")
    }]);
    let a = read(&z, &Limits::default());
    assert!(a.anomalies.iter().any(|x| matches!(
        x,
        Anomaly::NameMismatch { central, local, .. } if *central == b"a/data.txt" && *local == b"a/evil.pkl"
    )));
    assert_eq!(a.members()[0].local_name, Some(&b"a/evil.pkl"[..]));
}

#[test]
fn lying_uncompressed_size_is_a_field_mismatch_and_not_trusted() {
    let z = build(&[E {
        usize_: Some(u32::MAX - 1),
        ..e("w.npy", b"tiny")
    }]);
    let a = read(&z, &Limits::default());
    let m = a.members();
    assert_eq!(m[0].declared_size, u64::from(u32::MAX - 1));
    assert_eq!(m[0].data.as_ref().unwrap(), b"tiny");
    // Local and central agree on the lie, so this is not a mismatch...
    assert_eq!(a.anomalies, vec![]);
    // ...but a local header that tells the truth is.
    let mut z2 = z.clone();
    let pos = 22; // local uncompressed size
    z2[pos..pos + 4].copy_from_slice(&4u32.to_le_bytes());
    let a = read(&z2, &Limits::default());
    assert!(a.anomalies.iter().any(|x| matches!(
        x,
        Anomaly::FieldMismatch {
            field: "uncompressed size",
            local: 4,
            ..
        }
    )));
}

#[test]
fn method_and_encryption_flag_mismatch() {
    let z = build(&[E {
        local_method: Some(8),
        local_flags: Some(1),
        ..e("x", b"data")
    }]);
    let a = read(&z, &Limits::default());
    let fields: Vec<_> = a
        .anomalies
        .iter()
        .filter_map(|x| match x {
            Anomaly::FieldMismatch { field, .. } => Some(*field),
            _ => None,
        })
        .collect();
    assert_eq!(fields, vec!["method", "encrypted flag"]);
}

#[test]
fn member_hidden_from_the_directory_is_found_by_the_walk() {
    let z = build(&[
        e("a/data.pkl", b"benign"),
        E {
            local_only: true,
            ..e("a/evil.pkl", b"\x80\x02cposix\nsystem\n.")
        },
    ]);
    let a = read(&z, &Limits::default());
    assert!(a.anomalies.iter().any(|x| matches!(
        x,
        Anomaly::Hidden { name, only_in: View::Local, .. } if *name == b"a/evil.pkl"
    )));
    let m = a.members();
    assert_eq!(names(&m), vec![&b"a/data.pkl"[..], b"a/evil.pkl"]);
    assert_eq!(m[1].view, View::Local);
}

#[test]
fn member_hidden_from_the_walk_inside_another_members_data() {
    // The second member's local header sits inside the first member's data: a streaming
    // reader skips it, the directory lists it.
    let inner = build(&[e("inner", b"payload")]);
    let local_header_len = 30 + 5; // "inner"
    let z = {
        let outer = e("outer", &inner);
        let mut hidden = e("inner", b"payload");
        hidden.central_only_at = Some(30 + 5); // offset of `inner`'s header inside outer's data
        build(&[outer, hidden])
    };
    let _ = local_header_len;
    let a = read(&z, &Limits::default());
    assert!(a.anomalies.iter().any(|x| matches!(
        x,
        Anomaly::Hidden { name, only_in: View::Central, .. } if *name == b"inner"
    )));
    assert!(a
        .anomalies
        .iter()
        .any(|x| matches!(x, Anomaly::Overlap { .. })));
}

#[test]
fn duplicate_names_exact_and_by_case() {
    let z = build(&[
        e("a/data.pkl", b"one"),
        e("a/data.pkl", b"two"),
        e("a/README", b"x"),
        e("a/readme", b"y"),
    ]);
    let a = read(&z, &Limits::default());
    let dups: Vec<_> = a
        .anomalies
        .iter()
        .filter_map(|x| match x {
            Anomaly::Duplicate {
                name,
                copies,
                case_only,
            } => Some((*name, *copies, *case_only)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dups,
        vec![(&b"a/data.pkl"[..], 2, false), (&b"a/README"[..], 2, true)]
    );
    // Every copy is a member.
    assert_eq!(a.members().len(), 4);
}

#[test]
fn overlapping_entries_are_reported_and_listed_once() {
    // Many directory records pointing at one local header: the classic overlap bomb.
    let mut entries = vec![e("bomb", &[0u8; 64])];
    for _ in 0..5 {
        let mut c = e("bomb", &[0u8; 64]);
        c.central_only_at = Some(0);
        entries.push(c);
    }
    let z = build(&entries);
    let a = read(&z, &Limits::default());
    let overlaps = a
        .anomalies
        .iter()
        .filter(|x| matches!(x, Anomaly::Overlap { .. }))
        .count();
    assert_eq!(overlaps, 5);
    assert_eq!(a.members().len(), 1);
}

#[test]
fn prefix_stub_shifts_offsets_like_python() {
    let stub = b"#!/bin/sh\necho self-extracting\n";
    let z = build_with_prefix(stub, &[e("a.txt", b"hello")]);
    let a = read(&z, &Limits::default());
    let c = a.central.as_ref().unwrap();
    assert_eq!(c.shift, stub.len() as i64);
    assert_eq!(a.members()[0].data.as_ref().unwrap(), b"hello");
    assert!(a.anomalies.contains(&Anomaly::Prefix {
        len: stub.len() as u64
    }));
    // miniz reads the directory at its stored offset, inside the stub: nothing there.
    assert!(matches!(a.miniz, Some(Err(_))));
}

#[test]
fn data_descriptor_members_are_walked() {
    let z = build(&[
        E {
            descriptor: true,
            flags: 8,
            ..e("a/data.pkl", b"\x80\x02K\x01.")
        },
        E {
            descriptor: true,
            flags: 8,
            ..e("a/data/0", &[1u8; 100])
        },
    ]);
    let a = read(&z, &Limits::default());
    assert!(a.local.stopped.is_none(), "{:?}", a.local.stopped);
    assert_eq!(a.local.entries.len(), 2);
    assert_eq!(a.local.entries[1].data.len(), 100);
    assert_eq!(a.anomalies, vec![], "{:?}", a.anomalies);
}

#[test]
fn hidden_streamed_member_end_is_found_by_search() {
    let z = build(&[
        E {
            descriptor: true,
            flags: 8,
            local_only: true,
            ..e("hidden", b"PK\x07\x08 decoy inside data")
        },
        e("shown", b"ok"),
    ]);
    let a = read(&z, &Limits::default());
    assert!(a.local.stopped.is_none(), "{:?}", a.local.stopped);
    assert_eq!(a.local.entries[0].data, b"PK\x07\x08 decoy inside data");
    assert_eq!(a.local.entries[1].header.name, b"shown");
}

/// Turns a plain archive into a zip64 one declaring `count` entries.
fn with_zip64_end(mut z: Vec<u8>, count: u64) -> Vec<u8> {
    let eocd = z.len() - 22;
    let cd_size = u64::from(u32::from_le_bytes(
        z[eocd + 12..eocd + 16].try_into().unwrap(),
    ));
    let cd_off = u64::from(u32::from_le_bytes(
        z[eocd + 16..eocd + 20].try_into().unwrap(),
    ));
    let mut rec = Vec::new();
    rec.extend_from_slice(b"PK\x06\x06");
    rec.extend_from_slice(&44u64.to_le_bytes());
    rec.extend_from_slice(&[45, 0, 45, 0]);
    rec.extend_from_slice(&0u32.to_le_bytes());
    rec.extend_from_slice(&0u32.to_le_bytes());
    rec.extend_from_slice(&count.to_le_bytes());
    rec.extend_from_slice(&count.to_le_bytes());
    rec.extend_from_slice(&cd_size.to_le_bytes());
    rec.extend_from_slice(&cd_off.to_le_bytes());
    rec.extend_from_slice(b"PK\x06\x07");
    rec.extend_from_slice(&0u32.to_le_bytes());
    rec.extend_from_slice(&(eocd as u64).to_le_bytes());
    rec.extend_from_slice(&1u32.to_le_bytes());
    let mut tail = z.split_off(eocd);
    // The 32-bit fields defer to the zip64 record.
    tail[8..12].copy_from_slice(&[0xff; 4]);
    tail[12..20].copy_from_slice(&[0xff; 8]);
    z.extend_from_slice(&rec);
    z.extend_from_slice(&tail);
    z
}

#[test]
fn zip64_end_records_are_followed() {
    let z = with_zip64_end(build(&[e("a", b"x"), e("b", b"yy")]), 2);
    let a = read(&z, &Limits::default());
    let c = a.central.as_ref().unwrap();
    assert_eq!(c.entries.len(), 2);
    assert_eq!(c.shift, 0);
    assert!(a.end.as_ref().unwrap().zip64.is_some());
    assert_eq!(a.anomalies, vec![]);
}

#[test]
fn directory_claiming_2_pow_32_entries_is_a_limit_not_an_allocation() {
    let z = with_zip64_end(build(&[e("a", b"x")]), 1 << 32);
    let a = read(&z, &Limits::default());
    let err = a.central.unwrap_err();
    assert!(err.is_limit(), "{err}");
    assert!(err.to_string().contains("4294967296"), "{err}");
}

#[test]
fn count_mismatch_between_python_and_miniz() {
    let mut z = build(&[e("a", b"x"), e("b", b"y")]);
    let eocd = z.len() - 22;
    z[eocd + 8..eocd + 10].copy_from_slice(&1u16.to_le_bytes());
    z[eocd + 10..eocd + 12].copy_from_slice(&1u16.to_le_bytes());
    let a = read(&z, &Limits::default());
    assert!(a.anomalies.contains(&Anomaly::CountMismatch {
        declared: 1,
        found: 2
    }));
}

#[test]
fn no_directory_still_walks_local_headers() {
    let z = build(&[e("a", b"x"), e("b", b"y")]);
    let cut = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let a = read(&z[..cut], &Limits::default());
    assert!(a.central.is_err());
    assert_eq!(a.members().len(), 2);
}

#[test]
fn unix_symlink_mode_is_exposed() {
    let z = build(&[E {
        made_by: 3 << 8 | 20,
        external: 0o120777 << 16,
        ..e("link", b"/etc/passwd")
    }]);
    let a = read(&z, &Limits::default());
    assert_eq!(a.members()[0].unix_mode, Some(0o120777));
}

#[test]
fn trailing_and_gap_bytes() {
    let mut z = build(&[e("a", b"x")]);
    z.extend_from_slice(b"TRAILING");
    let a = read(&z, &Limits::default());
    assert!(a
        .anomalies
        .iter()
        .any(|x| matches!(x, Anomaly::Trailing { len: 8, .. })));
}

#[test]
fn corrupt_extra_field_is_an_error() {
    // A central record whose extra field claims more bytes than it has.
    let mut z = build(&[e("a", b"x")]);
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    // Give it 4 extra bytes claiming 100.
    z[cd + 30..cd + 32].copy_from_slice(&4u16.to_le_bytes());
    let name_end = cd + 46 + 1;
    let extra = [0x99, 0x99, 100, 0];
    for (i, b) in extra.iter().enumerate() {
        z.insert(name_end + i, *b);
    }
    let eocd = z.len() - 22;
    let size = u32::from_le_bytes(z[eocd + 12..eocd + 16].try_into().unwrap()) + 4;
    z[eocd + 12..eocd + 16].copy_from_slice(&size.to_le_bytes());
    let a = read(&z, &Limits::default());
    let err = a.central.unwrap_err();
    assert!(err.to_string().contains("extra field"), "{err}");
}

#[test]
fn random_mutations_never_panic() {
    let base = build(&[
        e("a/data.pkl", b"\x80\x02}q\x00."),
        E {
            descriptor: true,
            flags: 8,
            ..e("a/data/0", &[3u8; 33])
        },
        e("a/version", b"3\n"),
    ]);
    for z in crate::mutate::mutations(&base, 0x9e37_79b9_7f4a_7c15, 20_000) {
        let a = read(&z, &Limits::default());
        for m in a.members() {
            let _ = m.data.map(|d| d.len());
        }
    }
}
