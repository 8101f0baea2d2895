//! Principals of the admin plane: who they are, what roles they hold, and the credential
//! each presents. Credentials are random bearer tokens shown once and stored only as a
//! SHA-256 digest (a 256-bit random secret needs no slow password hash: it cannot be
//! guessed, only stolen, and the digest is useless to a thief of the database).
//!
//! Token form: `wdn_<id>_<secret>`: `id` is 16 hex digits that find the principal without
//! revealing anything, `secret` is 32 random bytes in unpadded base64url.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// What a principal may do on the admin plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages principals and configuration; shreds releases.
    Admin,
    /// Approves or rejects releases and exports (two-person rule).
    Approver,
    /// Admits, deploys and rolls back releases.
    Operator,
    /// Reads the registry and the ledger.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Approver, Role::Operator, Role::Auditor];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A principal as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
    pub created: String,
    /// A disabled principal's credential is refused.
    pub disabled: bool,
    #[serde(skip)]
    pub token_id: String,
    #[serde(skip)]
    pub token_hash: [u8; 32],
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// An API key of the inference plane, as stored: the same token form as a principal's
/// (`wdn_<id>_<secret>`, only the secret's SHA-256 kept), held by a named principal of the
/// inference plane (not an admin-plane principal), scoped to model-name patterns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    /// Who uses it: the name recorded with every request it makes.
    pub principal: String,
    #[serde(skip)]
    pub hash: [u8; 32],
    /// Model names it may use (patterns with `*`).
    pub models: Vec<String>,
    pub created: String,
    /// RFC 3339; none: it does not expire.
    pub expires: Option<String>,
    pub revoked: bool,
}

/// Checks a principal name: 1–64 of letters, digits, `.`, `_`, `-`, `@`, not starting with
/// a dot or dash (names appear in ledger records and command lines).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "principal name {name:?} must be 1-64 letters, digits, '.', '_', '-' or '@', not starting with '.' or '-'"
        ))
    }
}

/// A freshly issued credential: the token (to show once) and what is stored.
pub struct Issued {
    pub token: zeroize::Zeroizing<String>,
    pub token_id: String,
    pub token_hash: [u8; 32],
}

fn digest(secret: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Issues a new random token.
pub fn issue() -> Result<Issued, String> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 8];
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill(&mut id)
        .and_then(|()| rng.fill(secret.as_mut()))
        .map_err(|_| "the system random number generator failed".to_string())?;
    let secret = zeroize::Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()),
    );
    let token_id = hex::encode(id);
    let token = zeroize::Zeroizing::new(format!("wdn_{token_id}_{}", secret.as_str()));
    Ok(Issued {
        token_hash: digest(&secret),
        token_id,
        token,
    })
}

/// Splits a presented token into its id and the digest of its secret; `None` when it is
/// not a Warden token at all.
pub fn parse_token(token: &str) -> Option<(String, [u8; 32])> {
    let rest = token.trim().strip_prefix("wdn_")?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(id_ok && secret_ok) {
        return None;
    }
    Some((id.to_ascii_lowercase(), digest(secret)))
}

/// Whether `presented` (from [`parse_token`]) matches the stored digest, in constant time.
pub fn matches(presented: &[u8; 32], stored: &[u8; 32]) -> bool {
    presented
        .iter()
        .zip(stored.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_issued_token_parses_back_to_its_id_and_digest() {
        let issued = issue().unwrap();
        let (id, hash) = parse_token(&issued.token).unwrap();
        assert_eq!(id, issued.token_id);
        assert!(matches(&hash, &issued.token_hash));
        let other = issue().unwrap();
        assert_ne!(other.token_id, issued.token_id);
        assert!(!matches(&hash, &other.token_hash));
    }

    #[test]
    fn malformed_tokens_are_not_tokens() {
        let issued = issue().unwrap();
        let t = issued.token.as_str();
        for bad in [
            "",
            "wdn_",
            "bearer",
            &t[..t.len() - 1],
            &t.replace("wdn_", "wdx_"),
            &format!("{t}x"),
            "wdn_zzzzzzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(parse_token(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn names_and_roles() {
        assert!(check_name("alice@example.org").is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
