//! Who is calling: a JWT bearer token (when `[serve.jwt]` is configured), a Warden API key,
//! or, with no `Authorization` header, a verified client certificate. A presented header
//! always decides: a request carrying a bad token is refused even over a good certificate.

use std::sync::Arc;
use std::time::SystemTime;

use hyper::StatusCode;

use crate::conn::Connection;
use crate::control::{Caller, Credential};
use crate::error::ApiError;
use crate::jwt::looks_like_jwt;
use crate::server::Gateway;
use crate::tls::ClientAuth;

/// A refused credential, and what it named (for the ledger and the failed sign-in counts).
pub(crate) struct Refused {
    pub error: ApiError,
    pub key_id: Option<String>,
    pub principal: Option<String>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Refused {
        Refused {
            error,
            key_id: None,
            principal: None,
        }
    }
}

fn bearer(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn authenticate(
    gw: &Gateway,
    conn: &Connection,
    header: Option<&[u8]>,
    now: SystemTime,
) -> Result<Arc<Caller>, Refused> {
    if gw.config.client_auth == ClientAuth::Required && conn.client.is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_unusable",
            "the client certificate names no usable principal; ask for one that does",
        )
        .into());
    }
    if let (Some(jwt), Some(token)) = (&gw.jwt, header.and_then(bearer)) {
        if looks_like_jwt(token) {
            let id = jwt.verify(token, now)?;
            let key_id = format!("jwt:{}", id.token_id.as_deref().unwrap_or(&id.subject));
            return Ok(Arc::new(Caller {
                principal: id.principal,
                key_id,
                models: id.models,
                credential: Credential::Jwt,
                groups: id.groups,
            }));
        }
    }
    if header.is_none() {
        if let Some(client) = &conn.client {
            return Ok(Arc::new(Caller {
                principal: client.principal.clone(),
                key_id: client.fingerprint.clone(),
                models: gw.config.client_models.clone(),
                credential: Credential::Mtls,
                groups: Vec::new(),
            }));
        }
    }
    gw.control
        .authenticate(header, now)
        .map_err(|(error, key_id)| {
            let principal = key_id
                .as_deref()
                .and_then(|id| gw.control.principal_of_key(id));
            Refused {
                error,
                key_id,
                principal,
            }
        })
}
