//! The registry database: migrations, immutability, state changes that lost a race, and
//! writers in parallel connections (as two processes have).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use registry::{Approval, FileRow, Purpose, Registry, Release, ReleaseId, State, StoreError};

fn release(version: &str) -> Release {
    Release {
        id: ReleaseId::new("iris", version).unwrap(),
        state: State::Admitted,
        manifest: "sha256:00".into(),
        serialization: serde_json::json!({"method": "files", "hash": "sha256"}),
        admitted_by: "alice".into(),
        admitted_at: "2026-11-22T10:00:00.000Z".into(),
        signer: None,
        findings: 0,
        max_severity: None,
        reasons: vec![],
        aibom: "{}".into(),
    }
}

fn files() -> Vec<FileRow> {
    vec![FileRow {
        path: "w.bin".into(),
        size: 3,
        sha256: "ab".into(),
        digests: vec![(0, 3, "ab".into())],
    }]
}

#[test]
fn releases_are_immutable_and_moves_must_start_where_the_release_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registry::open(&dir.path().join("r.db")).unwrap();
    let r = release("1");
    reg.write(|tx| -> Result<(), StoreError> {
        assert!(tx.insert_release(&r, &files())?);
        assert!(
            !tx.insert_release(&r, &files())?,
            "a version is never reused"
        );
        Ok(())
    })
    .unwrap();
    reg.write(|tx| -> Result<(), StoreError> {
        assert!(tx.set_state(&r.id, State::Admitted, State::Approved, &[])?);
        assert!(
            !tx.set_state(&r.id, State::Admitted, State::Rejected, &[])?,
            "a move from a state the release has left must fail"
        );
        Ok(())
    })
    .unwrap();
    let got = reg.read(|tx| tx.release(&r.id)).unwrap().unwrap();
    assert_eq!(got.state, State::Approved);
    assert_eq!(reg.read(|tx| tx.files(&r.id)).unwrap(), files());

    // A failed transaction leaves nothing.
    let r2 = release("2");
    let err = reg.write(|tx| -> Result<(), StoreError> {
        tx.insert_release(&r2, &files())?;
        Err(StoreError::Corrupt("stop".into()))
    });
    assert!(err.is_err());
    assert!(!reg.read(|tx| tx.exists(&r2.id)).unwrap());
}

#[test]
fn a_database_from_a_newer_warden_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    drop(Registry::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Registry::open(&path).err().unwrap().to_string();
    assert!(err.contains("newer Warden"), "{err}");
    // Reopening at the current version is a no-op.
    let dir2 = tempfile::tempdir().unwrap();
    drop(Registry::open(&dir2.path().join("r.db")).unwrap());
    drop(Registry::open(&dir2.path().join("r.db")).unwrap());
}

#[test]
fn parallel_connections_queue_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut reg = Registry::open(&path).unwrap();
    let r = release("1");
    reg.write(|tx| tx.insert_release(&r, &files())).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = path.clone();
            let id = r.id.clone();
            s.spawn(move || {
                let mut reg = Registry::open(&path).unwrap();
                for i in 0..25 {
                    reg.write(|tx| {
                        tx.add_approval(
                            &id,
                            Purpose::Export,
                            &Approval {
                                approver: format!("p{t}-{i}"),
                                accepts_findings: false,
                                time: "2026-11-22T10:00:00.000Z".into(),
                            },
                        )
                    })
                    .unwrap();
                }
            });
        }
    });
    let n = reg
        .read(|tx| tx.approvals(&r.id, Purpose::Export))
        .unwrap()
        .len();
    assert_eq!(n, 100);
}

#[test]
fn api_keys_and_settings() {
    use registry::ApiKey;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    let mut reg = Registry::open(&db).unwrap();
    let key = ApiKey {
        id: "0123456789abcdef".into(),
        principal: "app".into(),
        hash: [9u8; 32],
        models: vec!["iris*".into(), "chat".into()],
        created: "2026-01-01T00:00:00.000Z".into(),
        expires: Some("2027-01-01T00:00:00.000Z".into()),
        revoked: false,
    };
    let before = reg.data_version().unwrap();
    reg.write(|tx| -> Result<(), StoreError> {
        assert!(tx.add_api_key(&key)?);
        assert!(!tx.add_api_key(&key)?, "ids are unique");
        tx.set_setting("lockdown", "on", "admin", "2026-01-01T00:00:00.000Z")?;
        Ok(())
    })
    .unwrap();
    // Another connection sees the change and a new data_version.
    let mut other = Registry::open(&db).unwrap();
    let other_before = other.data_version().unwrap();
    reg.write(|tx| -> Result<(), StoreError> {
        assert!(tx.revoke_api_key(&key.id)?);
        assert!(!tx.revoke_api_key(&key.id)?, "revoked once");
        Ok(())
    })
    .unwrap();
    assert_ne!(other.data_version().unwrap(), other_before);
    let _ = before;
    other
        .read(|tx| -> Result<(), StoreError> {
            let got = tx.api_key(&key.id)?.unwrap();
            assert!(got.revoked);
            assert_eq!(got.models, key.models);
            assert_eq!(got.hash, key.hash);
            assert_eq!(tx.api_keys()?.len(), 1);
            assert_eq!(tx.setting("lockdown")?.as_deref(), Some("on"));
            assert_eq!(tx.setting("nothing")?, None);
            Ok(())
        })
        .unwrap();
}
