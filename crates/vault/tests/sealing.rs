//! Sealing and opening with a key file: round trips, and every kind of tampering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::fs;
use std::io::Cursor;

use vault::format::{seal, Opened};
use vault::provider::file::FileKek;
use vault::{Context, DataKey, Error, KeyProvider, Vault};

fn ctx(file: &str) -> Context {
    Context {
        release: "iris@1.0".into(),
        file: file.into(),
        manifest: "sha256:00ff".into(),
    }
}

fn sealed(data: &[u8], key: &DataKey, c: &Context) -> Vec<u8> {
    let mut out = Vec::new();
    seal(Cursor::new(data), data.len() as u64, &mut out, key, c).unwrap();
    out
}

fn open(sealed: &[u8], key: &DataKey, c: &Context) -> Result<Vec<u8>, Error> {
    let mut input = Cursor::new(sealed);
    let opened = Opened::new(&mut input, key, c)?;
    let mut out = Vec::new();
    opened.decrypt_to(input, &mut out)?;
    Ok(out)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn round_trips_at_segment_boundaries() {
    let key = DataKey::generate();
    for n in [0, 1, 65_535, 65_536, 65_537, 3 * 65_536 + 5] {
        let plain = data(n);
        let s = sealed(&plain, &key, &ctx("model.onnx"));
        assert_eq!(
            open(&s, &key, &ctx("model.onnx")).unwrap(),
            plain,
            "size {n}"
        );
        if n >= 64 {
            assert!(
                s.windows(64).all(|w| w != &plain[..64]),
                "plaintext visible at size {n}"
            );
        }
    }
}

#[test]
fn every_flipped_bit_truncation_and_extension_fails() {
    let key = DataKey::generate();
    let c = ctx("weights.bin");
    let s = sealed(&data(2 * 65_536 + 100), &key, &c);
    for pos in (0..s.len()).step_by(997).chain([s.len() - 1, 11, 12]) {
        let mut bad = s.clone();
        bad[pos] ^= 0x10;
        assert!(
            open(&bad, &key, &c).is_err(),
            "flip at {pos} went unnoticed"
        );
    }
    for cut in [1, 16, 17, 65_552, s.len() - 12] {
        assert!(open(&s[..s.len() - cut], &key, &c).is_err(), "cut of {cut}");
    }
    let mut longer = s.clone();
    longer.push(0);
    assert!(open(&longer, &key, &c).is_err());
}

#[test]
fn reordered_dropped_and_spliced_segments_fail() {
    let key = DataKey::generate();
    let c = ctx("weights.bin");
    let s = sealed(&data(3 * 65_536), &key, &c);
    let header_len = s.len() - 3 * (65_536 + 16);
    let seg =
        |b: &[u8], i: usize| b[header_len + i * 65_552..header_len + (i + 1) * 65_552].to_vec();
    let head = s[..header_len].to_vec();
    let swapped = [head.clone(), seg(&s, 1), seg(&s, 0), seg(&s, 2)].concat();
    assert!(matches!(
        open(&swapped, &key, &c),
        Err(Error::Tampered { segment: 0 })
    ));
    // Dropping the last segment: the new last one was not sealed as last.
    let dropped = [head.clone(), seg(&s, 0), seg(&s, 1)].concat();
    assert!(open(&dropped, &key, &c).is_err());
    // Splicing a segment from another file sealed under the same key.
    let other = sealed(&data(3 * 65_536), &key, &ctx("other.bin"));
    let other_head_len = other.len() - 3 * 65_552;
    let spliced = [
        head.clone(),
        seg(&s, 0),
        other[other_head_len + 65_552..other_head_len + 2 * 65_552].to_vec(),
        seg(&s, 2),
    ]
    .concat();
    assert!(matches!(
        open(&spliced, &key, &c),
        Err(Error::Tampered { segment: 1 })
    ));
    // Another file's header over these segments: wrong context, or, if expected, tampered.
    let reheaded = [other[..other_head_len].to_vec(), s[header_len..].to_vec()].concat();
    assert!(matches!(
        open(&reheaded, &key, &c),
        Err(Error::WrongContext { .. })
    ));
    assert!(open(&reheaded, &key, &ctx("other.bin")).is_err());
}

#[test]
fn the_wrong_key_or_context_fails() {
    let key = DataKey::generate();
    let s = sealed(&data(1000), &key, &ctx("a"));
    assert!(matches!(
        open(&s, &DataKey::generate(), &ctx("a")),
        Err(Error::Tampered { segment: 0 })
    ));
    let mut other_release = ctx("a");
    other_release.release = "iris@2.0".into();
    assert!(matches!(
        open(&s, &key, &other_release),
        Err(Error::WrongContext { .. })
    ));
    assert!(open(b"not sealed at all", &key, &ctx("a")).is_err());
}

#[test]
fn wrapped_keys_need_their_kek_and_their_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let kek = FileKek::create(&dir.path().join("kek")).unwrap();
    let key = DataKey::generate();
    let w = kek.wrap(&key, b"artifact A").unwrap();
    assert!(kek.unwrap_key(&w, b"artifact A").is_ok());
    assert!(matches!(
        kek.unwrap_key(&w, b"artifact B"),
        Err(Error::Unwrap)
    ));
    let other = FileKek::create(&dir.path().join("kek2")).unwrap();
    assert!(other.unwrap_key(&w, b"artifact A").is_err());
    let mut bent = w.clone();
    bent.wrapped.replace_range(
        0..2,
        if &bent.wrapped[0..2] == "00" {
            "01"
        } else {
            "00"
        },
    );
    assert!(matches!(
        kek.unwrap_key(&bent, b"artifact A"),
        Err(Error::Unwrap)
    ));
    // A key file others can read is refused.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path().join("kek"), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(FileKek::load(&dir.path().join("kek"))
        .unwrap_err()
        .to_string()
        .contains("chmod 600"));
}

#[test]
fn the_vault_seals_opens_and_shreds() {
    let dir = tempfile::tempdir().unwrap();
    let kek_path = dir.path().join("kek");
    let vault = Vault::new(
        &dir.path().join("vault"),
        Box::new(FileKek::create(&kek_path).unwrap()),
    );
    let plain = data(200_000);
    let src = dir.path().join("model.onnx");
    fs::write(&src, &plain).unwrap();
    let c = ctx("model.onnx");
    let sealed = vault.seal_file(&c, &src).unwrap();
    assert_eq!(sealed.plaintext_size, 200_000);
    assert!(vault.seal_file(&c, &src).is_err(), "sealed twice");
    let mut out = Vec::new();
    vault.decrypt_to(&c, &mut out).unwrap();
    assert_eq!(out, plain);
    let (opened, file) = vault.open(&c).unwrap();
    assert_eq!(opened.read_segment(&file, 3).unwrap(), plain[3 * 65_536..]);

    // No plaintext data key anywhere on disk: unwrap it with the KEK and look for it.
    let wrapped: vault::WrappedKey =
        serde_json::from_slice(&fs::read(vault.key_path(&c)).unwrap()).unwrap();
    let kek = FileKek::load(&kek_path).unwrap();
    let aad = [
        b"warden vault data key\0".as_slice(),
        b"iris@1.0\0model.onnx\0sha256:00ff\0",
    ]
    .concat();
    let _key = kek.unwrap_key(&wrapped, &aad).unwrap();
    let mut all = Vec::new();
    for entry in walk(&dir.path().join("vault")) {
        all.extend(fs::read(entry).unwrap());
    }
    assert!(
        !all.windows(64).any(|w| w == &plain[..64]),
        "plaintext on disk"
    );

    // A truncated blob is refused before any segment is read.
    let backup_keys = dir.path().join("backup-keys");
    copy_dir(&dir.path().join("vault/keys"), &backup_keys);
    let blob = vault.blob_path(&c);
    let original = fs::read(&blob).unwrap();
    fs::write(&blob, &original[..original.len() - 1]).unwrap();
    assert!(vault.open(&c).is_err());
    // Unsealing it whole (on every core) names the cut segment; an extended blob and a
    // flipped bit in any segment are refused too.
    assert!(matches!(
        vault.decrypt_to(&c, Vec::new()),
        Err(Error::Tampered { segment: 3 })
    ));
    let mut longer = original.clone();
    longer.push(0);
    fs::write(&blob, &longer).unwrap();
    assert!(matches!(
        vault.decrypt_to(&c, Vec::new()),
        Err(Error::Format(_))
    ));
    for segment in 0..4usize {
        let mut flipped = original.clone();
        let at = original.len() - 200_000 - 4 * 16 + segment * (65_536 + 16) + 100;
        flipped[at] ^= 0x20;
        fs::write(&blob, &flipped).unwrap();
        assert!(
            matches!(
                vault.decrypt_to(&c, Vec::new()),
                Err(Error::Tampered { segment: s }) if s == segment as u64
            ),
            "segment {segment}"
        );
    }
    fs::write(&blob, &original).unwrap();
    let mut again = Vec::new();
    vault.decrypt_to(&c, &mut again).unwrap();
    assert_eq!(again, plain);

    // Shredding: the blob stays, nobody can open it, KEK or not; backup key copies go too.
    let report = vault
        .shred("iris@1.0", std::slice::from_ref(&backup_keys))
        .unwrap();
    assert_eq!((report.keys_destroyed, report.blobs_left), (2, 1));
    assert!(blob.exists());
    assert!(matches!(
        vault.decrypt_to(&c, Vec::new()),
        Err(Error::NoKey(_))
    ));
    let vault_again = Vault::new(
        &dir.path().join("vault"),
        Box::new(FileKek::load(&kek_path).unwrap()),
    );
    assert!(matches!(vault_again.open(&c), Err(Error::NoKey(_))));
    assert!(walk(&backup_keys).is_empty());
}

#[test]
fn release_names_are_checked() {
    for bad in ["../x@1", "x", "x@", "@1", ".x@1", "x@1/2", "x y@1"] {
        assert!(vault::store::check_release(bad).is_err(), "{bad}");
    }
    for good in ["iris@1.0", "llama-3_8b@2024.05+rc1"] {
        assert!(vault::store::check_release(good).is_ok(), "{good}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(items) = fs::read_dir(dir) {
        for item in items {
            let path = item.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        if item.path().is_dir() {
            copy_dir(&item.path(), &to.join(item.file_name()));
        } else {
            fs::copy(item.path(), to.join(item.file_name())).unwrap();
        }
    }
}
