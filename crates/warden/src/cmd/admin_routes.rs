//! The routes of the admin REST API (`/admin/v1/…`): what each request asks for, as the
//! [`Op`] the CLI would carry out or a read, and the request that asks for an [`Op`] (what
//! `warden --server URL` sends), each the inverse of the other. Names taken from the path
//! are checked here as the registry checks them, so a name that cannot stand in a path
//! segment is refused with 400 at either end, never sent or taken for another route.

use gateway::admin_listener::{AdminRequest, AdminResponse, Method, StatusCode};
use registry::{ReleaseId, Role};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::node::remote::Op;

/// A request's route, once understood.
pub(super) enum Route {
    Status,
    Metrics,
    Read(Read),
    Change(Op, StatusCode),
    PutPolicies(String),
}

pub(super) enum Read {
    Releases(Option<String>),
    Release(ReleaseId),
    Aibom(ReleaseId),
    Keys,
    Principals,
    Switches,
    Policies,
}

pub(super) type Refusal = AdminResponse;

fn bad(code: &str, message: impl Into<String>) -> Refusal {
    AdminResponse::error(StatusCode::BAD_REQUEST, code, message)
}

/// A JSON body of type `T`; an empty body counts as `{}`.
fn body<T: DeserializeOwned>(req: &AdminRequest) -> Result<T, Refusal> {
    let bytes: &[u8] = if req.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &req.body
    };
    serde_json::from_slice(bytes).map_err(|e| bad("invalid_body", format!("the JSON body: {e}")))
}

pub(super) fn release_id(s: &str) -> Result<ReleaseId, Refusal> {
    ReleaseId::parse(s).map_err(|e| bad("invalid_release", e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockdownBody {
    on: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    principal: String,
    models: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalBody {
    name: String,
    roles: Vec<Role>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisabledBody {
    disabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    export: bool,
    #[serde(default)]
    accept_findings: bool,
}

/// A reason that must be given (rejecting or revoking a release).
fn reason(req: &AdminRequest) -> Result<String, Refusal> {
    let r: ReasonBody = body(req)?;
    if r.reason.trim().is_empty() {
        return Err(bad("reason_required", "give a \"reason\""));
    }
    Ok(r.reason)
}

/// What a path segment names, checked as the registry checks it (the message says why).
#[derive(Clone, Copy)]
enum Segment {
    Principal,
    Model,
    KeyId,
}

impl Segment {
    fn check(self, s: &str) -> Result<String, String> {
        match self {
            Segment::Principal => registry::identity::check_name(s)?,
            Segment::Model => ReleaseId::check_model(s)?,
            Segment::KeyId => {
                if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("API key id {s:?} must be 1-64 hexadecimal digits"));
                }
            }
        }
        Ok(s.to_string())
    }

    fn code(self) -> &'static str {
        match self {
            Segment::Principal => "invalid_principal",
            Segment::Model => "invalid_model",
            Segment::KeyId => "invalid_key_id",
        }
    }

    /// A segment of a request's path: 400 naming the fault.
    fn take(self, s: &str) -> Result<String, Refusal> {
        self.check(s).map_err(|e| bad(self.code(), e))
    }

    /// A segment of a request to send: an error before anything is sent.
    fn give(self, s: &str) -> anyhow::Result<String> {
        self.check(s).map_err(anyhow::Error::msg)
    }
}

fn change(op: Op) -> Result<Route, Refusal> {
    Ok(Route::Change(op, StatusCode::OK))
}

/// Understands a request: its route and, for a change, the [`Op`] it asks for.
pub(super) fn route(req: &AdminRequest) -> Result<Route, Refusal> {
    if req.path == "/metrics" {
        return match req.method {
            Method::GET => Ok(Route::Metrics),
            _ => Err(not_allowed()),
        };
    }
    let Some(rest) = req.path.strip_prefix("/admin/v1/") else {
        return Err(not_found());
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let m = &req.method;
    match (m, parts.as_slice()) {
        (&Method::GET, ["status"]) => Ok(Route::Status),
        (&Method::GET, ["lockdown"] | ["blocked"]) => Ok(Route::Read(Read::Switches)),
        (&Method::PUT, ["lockdown"]) => {
            let b: LockdownBody = body(req)?;
            change(Op::Lockdown { on: b.on })
        }
        (&Method::PUT | &Method::DELETE, ["blocked", principal]) => {
            let block = *m == Method::PUT;
            let b: ReasonBody = body(req)?;
            change(Op::Block {
                principal: Segment::Principal.take(principal)?,
                block,
                reason: b.reason,
            })
        }
        (&Method::GET, ["keys"]) => Ok(Route::Read(Read::Keys)),
        (&Method::POST, ["keys"]) => {
            let b: KeyBody = body(req)?;
            Ok(Route::Change(
                Op::ApikeyCreate {
                    principal: b.principal,
                    models: b.models,
                    expires: b.expires,
                },
                StatusCode::CREATED,
            ))
        }
        (&Method::DELETE, ["keys", id]) => {
            let _: Empty = body(req)?;
            change(Op::ApikeyRevoke {
                id: Segment::KeyId.take(id)?,
            })
        }
        (&Method::GET, ["principals"]) => Ok(Route::Read(Read::Principals)),
        (&Method::POST, ["principals"]) => {
            let b: PrincipalBody = body(req)?;
            Ok(Route::Change(
                Op::PrincipalAdd {
                    name: b.name,
                    roles: b.roles,
                },
                StatusCode::CREATED,
            ))
        }
        (&Method::POST, ["principals", name, "rotate"]) => {
            let _: Empty = body(req)?;
            change(Op::PrincipalRotate {
                name: Segment::Principal.take(name)?,
            })
        }
        (&Method::PUT, ["principals", name, "disabled"]) => {
            let b: DisabledBody = body(req)?;
            change(Op::PrincipalDisable {
                name: Segment::Principal.take(name)?,
                disabled: b.disabled,
            })
        }
        (&Method::GET, ["releases"]) => Ok(Route::Read(Read::Releases(model_query(req)?))),
        (&Method::GET, ["releases", id]) => Ok(Route::Read(Read::Release(release_id(id)?))),
        (&Method::GET, ["releases", id, "aibom"]) => Ok(Route::Read(Read::Aibom(release_id(id)?))),
        (&Method::POST, ["releases", id, action]) => {
            let release = release_id(id)?.to_string();
            match *action {
                "approve" => {
                    let b: ApproveBody = body(req)?;
                    change(Op::Approve {
                        release,
                        export: b.export,
                        accept_findings: b.accept_findings,
                    })
                }
                "reject" => change(Op::Reject {
                    release,
                    reason: reason(req)?,
                }),
                "revoke" => change(Op::Revoke {
                    release,
                    reason: reason(req)?,
                }),
                "deploy" => {
                    let _: Empty = body(req)?;
                    change(Op::Deploy { release })
                }
                "shred" => {
                    let _: Empty = body(req)?;
                    change(Op::Shred { release })
                }
                _ => Err(not_found()),
            }
        }
        (&Method::POST, ["models", model, "rollback"]) => {
            let _: Empty = body(req)?;
            change(Op::Rollback {
                model: Segment::Model.take(model)?,
            })
        }
        (&Method::GET, ["policies"]) => Ok(Route::Read(Read::Policies)),
        (&Method::PUT, ["policies"]) => {
            let text = std::str::from_utf8(&req.body)
                .map_err(|_| bad("invalid_body", "the policies must be UTF-8 Cedar text"))?;
            Ok(Route::PutPolicies(text.to_string()))
        }
        _ if known_path(&parts) => Err(not_allowed()),
        _ => Err(not_found()),
    }
}

/// The admin API request that carries out `op` (what `warden --server URL` sends):
/// the inverse of [`route`]. An error for the changes offered on the server's host only,
/// and for names that cannot stand in a path.
pub(super) fn request_for(op: &Op) -> anyhow::Result<(Method, String, serde_json::Value)> {
    let v1 = |p: String| format!("/admin/v1/{p}");
    Ok(match op {
        Op::Lockdown { on } => (Method::PUT, v1("lockdown".into()), json!({ "on": on })),
        Op::Block {
            principal,
            block,
            reason,
        } => (
            if *block { Method::PUT } else { Method::DELETE },
            v1(format!("blocked/{}", Segment::Principal.give(principal)?)),
            json!({ "reason": reason }),
        ),
        Op::ApikeyCreate {
            principal,
            models,
            expires,
        } => (
            Method::POST,
            v1("keys".into()),
            json!({"principal": principal, "models": models, "expires": expires}),
        ),
        Op::ApikeyRevoke { id } => (Method::DELETE, v1(format!("keys/{}", Segment::KeyId.give(id)?)), json!({})),
        Op::PrincipalAdd { name, roles } => (
            Method::POST,
            v1("principals".into()),
            json!({"name": name, "roles": roles}),
        ),
        Op::PrincipalRotate { name } => (
            Method::POST,
            v1(format!("principals/{}/rotate", Segment::Principal.give(name)?)),
            json!({}),
        ),
        Op::PrincipalDisable { name, disabled } => (
            Method::PUT,
            v1(format!("principals/{}/disabled", Segment::Principal.give(name)?)),
            json!({ "disabled": disabled }),
        ),
        Op::Approve {
            release,
            export,
            accept_findings,
        } => (
            Method::POST,
            v1(format!("releases/{}/approve", checked_release(release)?)),
            json!({"export": export, "accept_findings": accept_findings}),
        ),
        Op::Reject { release, reason } => (
            Method::POST,
            v1(format!("releases/{}/reject", checked_release(release)?)),
            json!({ "reason": reason }),
        ),
        Op::Revoke { release, reason } => (
            Method::POST,
            v1(format!("releases/{}/revoke", checked_release(release)?)),
            json!({ "reason": reason }),
        ),
        Op::Deploy { release } => (
            Method::POST,
            v1(format!("releases/{}/deploy", checked_release(release)?)),
            json!({}),
        ),
        Op::Shred { release } => (
            Method::POST,
            v1(format!("releases/{}/shred", checked_release(release)?)),
            json!({}),
        ),
        Op::Rollback { model } => (
            Method::POST,
            v1(format!("models/{}/rollback", Segment::Model.give(model)?)),
            json!({}),
        ),
        Op::Admit { .. } | Op::Export { .. } => anyhow::bail!(
            "admission and export read or write files on the server's host: run them there, without --server"
        ),
    })
}

/// A release id to send, parsed as the server will parse it.
fn checked_release(s: &str) -> anyhow::Result<ReleaseId> {
    ReleaseId::parse(s).map_err(anyhow::Error::msg)
}

/// The path of the release list, for one model or all.
pub(super) fn releases_path(model: Option<&str>) -> anyhow::Result<String> {
    Ok(match model {
        Some(m) => format!("/admin/v1/releases?model={}", Segment::Model.give(m)?),
        None => "/admin/v1/releases".into(),
    })
}

/// Whether some method is served at this path (so the answer is 405, not 404).
fn known_path(parts: &[&str]) -> bool {
    matches!(
        parts,
        ["status" | "lockdown" | "blocked" | "keys" | "principals" | "releases" | "policies"]
            | ["blocked" | "keys" | "releases", _]
            | ["principals", _, "rotate" | "disabled"]
            | [
                "releases",
                _,
                "approve" | "reject" | "revoke" | "deploy" | "shred" | "aibom"
            ]
            | ["models", _, "rollback"]
    )
}

fn model_query(req: &AdminRequest) -> Result<Option<String>, Refusal> {
    let Some(q) = &req.query else {
        return Ok(None);
    };
    let mut model = None;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("model", m)) => model = Some(Segment::Model.take(m)?),
            _ => {
                return Err(bad(
                    "invalid_query",
                    "the only query parameter is model=NAME",
                ))
            }
        }
    }
    Ok(model)
}

fn not_found() -> Refusal {
    AdminResponse::error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such admin route; docs/admin-api.md lists them",
    )
}

fn not_allowed() -> Refusal {
    AdminResponse::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; docs/admin-api.md lists them",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn req(method: Method, path: &str, body: &str) -> AdminRequest {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path.to_string(), None),
        };
        AdminRequest {
            method,
            path,
            query,
            token: None,
            body: gateway::admin_listener::Bytes::from(body.to_string()),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    fn status(r: Result<Route, Refusal>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn routes_map_to_the_cli_changes() {
        let r = route(&req(Method::PUT, "/admin/v1/lockdown", r#"{"on":true}"#));
        assert!(matches!(r, Ok(Route::Change(Op::Lockdown { on: true }, _))));
        let r = route(&req(Method::DELETE, "/admin/v1/blocked/mallory", ""));
        assert!(matches!(
            r,
            Ok(Route::Change(Op::Block { ref principal, block: false, .. }, _)) if principal == "mallory"
        ));
        let r = route(&req(
            Method::POST,
            "/admin/v1/keys",
            r#"{"principal":"app","models":["iris"]}"#,
        ));
        assert!(
            matches!(r, Ok(Route::Change(Op::ApikeyCreate { .. }, s)) if s == StatusCode::CREATED)
        );
        let r = route(&req(
            Method::POST,
            "/admin/v1/releases/iris@1/approve",
            r#"{"accept_findings":true}"#,
        ));
        assert!(matches!(
            r,
            Ok(Route::Change(
                Op::Approve {
                    accept_findings: true,
                    export: false,
                    ..
                },
                _
            ))
        ));
        let r = route(&req(Method::GET, "/admin/v1/releases?model=iris", ""));
        assert!(matches!(r, Ok(Route::Read(Read::Releases(Some(ref m)))) if m == "iris"));
    }

    /// Every change the CLI can send to a remote server comes back as the same change.
    #[test]
    fn requests_for_changes_route_back_to_them() {
        let ops = [
            Op::Lockdown { on: true },
            Op::Lockdown { on: false },
            Op::Block {
                principal: "mallory".into(),
                block: true,
                reason: "abuse".into(),
            },
            Op::Block {
                principal: "mallory".into(),
                block: false,
                reason: String::new(),
            },
            Op::ApikeyCreate {
                principal: "app".into(),
                models: vec!["iris*".into()],
                expires: Some("2030-01-01T00:00:00Z".into()),
            },
            Op::ApikeyRevoke { id: "abc".into() },
            Op::PrincipalAdd {
                name: "carol".into(),
                roles: vec![Role::Approver, Role::Auditor],
            },
            Op::PrincipalRotate {
                name: "carol".into(),
            },
            Op::PrincipalDisable {
                name: "carol".into(),
                disabled: true,
            },
            Op::Approve {
                release: "iris@1".into(),
                export: true,
                accept_findings: true,
            },
            Op::Reject {
                release: "iris@1".into(),
                reason: "bad".into(),
            },
            Op::Revoke {
                release: "iris@1".into(),
                reason: "bad".into(),
            },
            Op::Deploy {
                release: "iris@1".into(),
            },
            Op::Shred {
                release: "iris@1".into(),
            },
            Op::Rollback {
                model: "iris".into(),
            },
        ];
        for op in ops {
            let (method, path, body) = request_for(&op).unwrap();
            let r = route(&req(method, &path, &body.to_string()));
            match r {
                Ok(Route::Change(back, _)) => assert_eq!(
                    serde_json::to_value(&back).unwrap(),
                    serde_json::to_value(&op).unwrap()
                ),
                _ => panic!("{op:?} did not route back"),
            }
        }
        let admit = Op::Export {
            release: "iris@1".into(),
            to: "/tmp/x".into(),
        };
        assert!(request_for(&admit).is_err());
    }

    #[test]
    fn bad_requests_are_named() {
        // Unknown route, wrong method, unknown field, wrong type, missing reason, bad id.
        assert_eq!(
            status(route(&req(Method::GET, "/admin/v2/status", ""))),
            404
        );
        assert_eq!(
            status(route(&req(Method::GET, "/admin/v1/nothing", ""))),
            404
        );
        assert_eq!(
            status(route(&req(Method::POST, "/admin/v1/status", ""))),
            405
        );
        assert_eq!(status(route(&req(Method::DELETE, "/metrics", ""))), 405);
        assert_eq!(
            status(route(&req(
                Method::PUT,
                "/admin/v1/lockdown",
                r#"{"on":true,"x":1}"#
            ))),
            400
        );
        assert_eq!(
            status(route(&req(
                Method::PUT,
                "/admin/v1/lockdown",
                r#"{"on":"yes"}"#
            ))),
            400
        );
        assert_eq!(
            status(route(&req(Method::PUT, "/admin/v1/lockdown", "{"))),
            400
        );
        assert_eq!(
            status(route(&req(
                Method::POST,
                "/admin/v1/releases/iris@1/reject",
                "{}"
            ))),
            400
        );
        assert_eq!(
            status(route(&req(
                Method::POST,
                "/admin/v1/releases/not a release/deploy",
                ""
            ))),
            400
        );
        assert_eq!(
            status(route(&req(Method::GET, "/admin/v1/releases?owner=x", ""))),
            400
        );
        // Names in the path are checked as the registry checks them.
        for (method, path, code) in [
            (Method::PUT, "/admin/v1/blocked/-x", "invalid_principal"),
            (
                Method::POST,
                "/admin/v1/principals/a%2Fb/rotate",
                "invalid_principal",
            ),
            (Method::DELETE, "/admin/v1/keys/not-hex", "invalid_key_id"),
            (
                Method::POST,
                "/admin/v1/models/a%20b/rollback",
                "invalid_model",
            ),
            (
                Method::GET,
                "/admin/v1/releases?model=a%20b",
                "invalid_model",
            ),
        ] {
            match route(&req(method, path, "")) {
                Err(e) => {
                    assert_eq!(e.status, StatusCode::BAD_REQUEST, "{path}");
                    match e.body {
                        gateway::admin_listener::AdminBody::Json(v) => {
                            assert_eq!(v["error"]["code"], code, "{path}")
                        }
                        gateway::admin_listener::AdminBody::Text(..) => panic!("{path}"),
                    }
                }
                Ok(_) => panic!("{path} was taken"),
            }
        }
        // And before anything is sent: a name that would change the path is refused.
        let escapes = Op::Block {
            principal: "a/../../keys".into(),
            block: true,
            reason: String::new(),
        };
        assert!(request_for(&escapes).is_err());
        assert!(releases_path(Some("a b")).is_err());
        assert_eq!(
            releases_path(Some("iris")).unwrap(),
            "/admin/v1/releases?model=iris"
        );
        assert_eq!(
            status(route(&req(Method::PUT, "/admin/v1/policies", "\u{0}"))),
            200,
            "text is checked by Cedar later, not here"
        );
    }
}
