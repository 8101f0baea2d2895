//! Checkpoints (C2SP tlog-checkpoint) in signed notes (C2SP signed-note), signed with the
//! ledger's Ed25519 key. The key's name is the log's origin, as is conventional, so Go's
//! `sumdb/note` and witnesses speaking tlog-witness can check them.

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};

use crate::error::{Error, Result};
use crate::hash::Hash;

/// The largest checkpoint note the ledger reads.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// A verified (or freshly signed) checkpoint and the note it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The whole signed note, byte for byte.
    pub note: Vec<u8>,
}

/// A ledger's signing key and its public half.
pub struct LogKey {
    signer: StandardSigner,
    vkey: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("LogKey").field("vkey", &self.vkey).finish()
    }
}

/// Generates a new key named `origin`: (private key in signed-note form, verifier key).
pub fn generate_key(origin: &str) -> Result<(String, String)> {
    if !signed_note::is_key_name_valid(origin) || origin.is_empty() {
        return Err(Error::Key(format!(
            "origin {origin:?} is not a valid key name (no spaces or '+')"
        )));
    }
    Ok(signed_note::generate_key(&mut rand_core::OsRng, origin))
}

impl LogKey {
    /// Loads a private key (`PRIVATE+KEY+name+id+base64`) and checks it against `vkey`.
    pub fn new(skey: &str, vkey: &str) -> Result<LogKey> {
        let signer = StandardSigner::new(skey.trim())
            .map_err(|e| Error::Key(format!("private key unreadable: {e}")))?;
        let key = LogKey {
            signer,
            vkey: vkey.trim().to_string(),
        };
        let probe = key.sign(0, &crate::hash::EMPTY_ROOT)?;
        verify(&probe.note, &key.vkey).map_err(|_| {
            Error::Key("the private key does not belong to the ledger's verifier key".into())
        })?;
        Ok(key)
    }

    /// The verifier key (`name+id+base64`), what anyone needs to check the ledger.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        signed_note::Signer::name(&self.signer)
    }

    /// Signs the checkpoint for a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: &Hash) -> Result<SignedCheckpoint> {
        let origin = self.origin().to_string();
        let text = checkpoint_text(&origin, size, root);
        let mut note = Note::new(text.as_bytes(), &[])
            .map_err(|e| Error::Checkpoint(format!("cannot form note: {e}")))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| Error::Checkpoint(format!("cannot sign: {e}")))?;
        Ok(SignedCheckpoint {
            origin,
            size,
            root: *root,
            note: note.to_bytes(),
        })
    }
}

fn checkpoint_text(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

/// The origin named by a verifier key (`name+id+base64`).
pub fn vkey_origin(vkey: &str) -> Option<&str> {
    vkey.trim().split('+').next().filter(|s| !s.is_empty())
}

/// Verifies a signed checkpoint note against `vkey` and parses it. The origin must be the
/// key's name.
pub fn verify(note: &[u8], vkey: &str) -> Result<SignedCheckpoint> {
    if note.len() > MAX_NOTE_LEN {
        return Err(Error::Checkpoint(format!(
            "note of {} bytes exceeds {MAX_NOTE_LEN}",
            note.len()
        )));
    }
    let verifier = StandardVerifier::new(vkey.trim())
        .map_err(|e| Error::Key(format!("verifier key unreadable: {e}")))?;
    let name = signed_note::Verifier::name(&verifier).to_string();
    let parsed =
        Note::from_bytes(note).map_err(|e| Error::Checkpoint(format!("not a signed note: {e}")))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| match e {
            signed_note::NoteError::UnverifiedNote => Error::Checkpoint(format!(
                "not signed by the ledger key {name} (no valid signature from it)"
            )),
            other => Error::Checkpoint(format!("signature check failed: {other}")),
        })?;
    let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|e| Error::Checkpoint(format!("note text is not a checkpoint: {e}")))?;
    if cp.origin() != name {
        return Err(Error::Checkpoint(format!(
            "origin {:?} differs from the key name {name:?}",
            cp.origin()
        )));
    }
    Ok(SignedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: cp.hash().0,
        note: note.to_vec(),
    })
}

/// Parses a checkpoint note without checking its signature (to read a saved checkpoint's
/// origin before choosing a key). Never trust what this returns.
pub fn parse_unverified(note: &[u8]) -> Result<SignedCheckpoint> {
    let parsed =
        Note::from_bytes(note).map_err(|e| Error::Checkpoint(format!("not a signed note: {e}")))?;
    let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|e| Error::Checkpoint(format!("note text is not a checkpoint: {e}")))?;
    Ok(SignedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: cp.hash().0,
        note: note.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_verify_and_tampering_does_not() {
        let (skey, vkey) = generate_key("example.com/ledger").unwrap();
        let key = LogKey::new(&skey, &vkey).unwrap();
        let root = crate::hash::leaf_hash(b"x");
        let cp = key.sign(7, &root).unwrap();
        let text = String::from_utf8(cp.note.clone()).unwrap();
        assert!(text.starts_with("example.com/ledger\n7\n"));
        assert!(text.contains("\n\u{2014} example.com/ledger "));
        assert_eq!(verify(&cp.note, &vkey).unwrap(), cp);

        let forged = text.replacen("\n7\n", "\n8\n", 1);
        assert!(verify(forged.as_bytes(), &vkey).is_err());

        let (_, other) = generate_key("example.com/ledger").unwrap();
        assert!(verify(&cp.note, &other).is_err());
        let (other_skey, other_vkey) = generate_key("other.example/ledger").unwrap();
        assert!(LogKey::new(&other_skey, &vkey).is_err());
        assert!(verify(&cp.note, &other_vkey).is_err());
    }

    #[test]
    fn bad_origins_are_refused() {
        assert!(generate_key("has space").is_err());
        assert!(generate_key("a+b").is_err());
        assert!(generate_key("").is_err());
    }
}
