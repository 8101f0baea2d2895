//! The admin REST API of `warden serve` (`/admin/v1/…` on `[serve] admin_listen`).
//!
//! Every route is the same change or view as a CLI command, carried out by the same code
//! ([`remote::execute`] and [`views`]), as the principal whose token the request carries,
//! with the same roles. Changes are recorded in the ledger by that code; refusals (a bad
//! credential, a missing role) are recorded here as `admin.refused`. Admission and export
//! are not offered: they read or write model files on the server's disk, so they stay
//! with the CLI on that host.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gateway::admin_listener::{
    AdminApi, AdminBody, AdminRequest, AdminResponse, Method, StatusCode,
};
use gateway::Gateway;
use ledger::record::Record;
use registry::{Principal, ReleaseId, Role};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::node::remote::{self, Op};
use crate::node::{views, Denied, Node};

/// Every role: what reading needs.
const ANY: &[Role] = &[];

pub struct AdminHandler {
    pub node: Arc<Mutex<Node>>,
    pub gw: Arc<Gateway>,
    /// `[serve] policy`, the file `PUT /admin/v1/policies` replaces.
    pub policy_file: Option<PathBuf>,
}

/// A request's route, once understood.
enum Route {
    Status,
    Metrics,
    Read(Read),
    Change(Op, StatusCode),
    PutPolicies(String),
}

enum Read {
    Releases(Option<String>),
    Release(ReleaseId),
    Aibom(ReleaseId),
    Keys,
    Principals,
    Switches,
    Policies,
}

type Refusal = AdminResponse;

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

fn release_id(s: &str) -> Result<ReleaseId, Refusal> {
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

fn change(op: Op) -> Result<Route, Refusal> {
    Ok(Route::Change(op, StatusCode::OK))
}

/// Understands a request: its route and, for a change, the [`Op`] it asks for.
fn route(req: &AdminRequest) -> Result<Route, Refusal> {
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
                principal: (*principal).to_string(),
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
                id: (*id).to_string(),
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
                name: (*name).to_string(),
            })
        }
        (&Method::PUT, ["principals", name, "disabled"]) => {
            let b: DisabledBody = body(req)?;
            change(Op::PrincipalDisable {
                name: (*name).to_string(),
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
                model: (*model).to_string(),
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
/// the inverse of [`route`]. `None` for the changes offered on the server's host only.
pub fn request_for(op: &Op) -> Option<(Method, String, serde_json::Value)> {
    let v1 = |p: String| format!("/admin/v1/{p}");
    Some(match op {
        Op::Lockdown { on } => (Method::PUT, v1("lockdown".into()), json!({ "on": on })),
        Op::Block {
            principal,
            block,
            reason,
        } => (
            if *block { Method::PUT } else { Method::DELETE },
            v1(format!("blocked/{principal}")),
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
        Op::ApikeyRevoke { id } => (Method::DELETE, v1(format!("keys/{id}")), json!({})),
        Op::PrincipalAdd { name, roles } => (
            Method::POST,
            v1("principals".into()),
            json!({"name": name, "roles": roles}),
        ),
        Op::PrincipalRotate { name } => (
            Method::POST,
            v1(format!("principals/{name}/rotate")),
            json!({}),
        ),
        Op::PrincipalDisable { name, disabled } => (
            Method::PUT,
            v1(format!("principals/{name}/disabled")),
            json!({ "disabled": disabled }),
        ),
        Op::Approve {
            release,
            export,
            accept_findings,
        } => (
            Method::POST,
            v1(format!("releases/{release}/approve")),
            json!({"export": export, "accept_findings": accept_findings}),
        ),
        Op::Reject { release, reason } => (
            Method::POST,
            v1(format!("releases/{release}/reject")),
            json!({ "reason": reason }),
        ),
        Op::Revoke { release, reason } => (
            Method::POST,
            v1(format!("releases/{release}/revoke")),
            json!({ "reason": reason }),
        ),
        Op::Deploy { release } => (
            Method::POST,
            v1(format!("releases/{release}/deploy")),
            json!({}),
        ),
        Op::Shred { release } => (
            Method::POST,
            v1(format!("releases/{release}/shred")),
            json!({}),
        ),
        Op::Rollback { model } => (
            Method::POST,
            v1(format!("models/{model}/rollback")),
            json!({}),
        ),
        Op::Admit { .. } | Op::Export { .. } => return None,
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
            Some(("model", m)) => model = Some(m.to_string()),
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

impl AdminHandler {
    fn refused(&self, req: &AdminRequest, actor: &str, r: &AdminResponse) {
        let reason = match &r.body {
            AdminBody::Json(v) => v["error"]["code"].as_str().unwrap_or_default().to_string(),
            AdminBody::Text(..) => String::new(),
        };
        self.gw.recorder.record_later(
            &Record::new("admin.refused", actor)
                .attr("source", &req.peer.ip().to_string())
                .attr("method", req.method.as_str())
                .attr("path", &crate::node::admit::truncate(&req.path, 200))
                .attr("status", r.status.as_str())
                .attr("reason", &reason),
        );
    }

    /// The principal whose token the request carries, if it has one of `roles`.
    fn authenticate(
        &self,
        node: &mut Node,
        req: &AdminRequest,
        roles: &[Role],
    ) -> Result<Principal, Refusal> {
        let token = req.token.as_deref().map(|t| t.as_str());
        let who = match node.authenticate(token, ANY) {
            Ok(p) => p,
            Err(e) => {
                let mut r = AdminResponse::error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credential",
                    format!("{e}; send Authorization: Bearer <token>"),
                );
                r.auth_failed = true;
                self.refused(req, "anonymous", &r);
                return Err(r);
            }
        };
        if !roles.is_empty() && !roles.iter().any(|r| who.has(*r)) {
            let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
            let r = AdminResponse::error(
                StatusCode::FORBIDDEN,
                "role_required",
                format!(
                    "{} may not do this: it needs the role {}",
                    who.name,
                    names.join(" or ")
                ),
            );
            self.refused(req, &who.name, &r);
            return Err(r);
        }
        Ok(who)
    }

    fn read(&self, node: &mut Node, read: Read) -> anyhow::Result<AdminResponse> {
        let ok = |v| Ok(AdminResponse::json(StatusCode::OK, v));
        match read {
            Read::Releases(model) => ok(json!({
                "releases": views::releases(node, model.as_deref())?
            })),
            Read::Release(id) => match views::release(node, &id)? {
                Some(d) => ok(serde_json::to_value(d)?),
                None => Ok(AdminResponse::error(
                    StatusCode::NOT_FOUND,
                    "release_not_found",
                    format!("no release {id}"),
                )),
            },
            Read::Aibom(id) => match views::release(node, &id)? {
                Some(d) => ok(serde_json::from_str(&d.release.aibom)?),
                None => Ok(AdminResponse::error(
                    StatusCode::NOT_FOUND,
                    "release_not_found",
                    format!("no release {id}"),
                )),
            },
            Read::Keys => ok(json!({"keys": views::api_keys(node)?})),
            Read::Principals => ok(json!({"principals": views::principals(node)?})),
            Read::Switches => ok(views::switches(node)?),
            Read::Policies => ok(json!({
                "policies": self.gw.policies().ids(),
                "file": self.policy_file.as_ref().map(|p| p.display().to_string()),
            })),
        }
    }

    fn status(&self, node: &mut Node) -> anyhow::Result<AdminResponse> {
        let gw = &self.gw;
        let mut v = views::switches(node)?;
        v["ready"] = gateway::metrics_listener::ready(gw).into();
        v["ledger_healthy"] = gw.recorder.healthy().into();
        v["registry_readable"] = gw.control.readable().into();
        v["in_flight"] = gw.limits.in_flight().into();
        v["upstreams"] = gw
            .config
            .upstreams
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>()
            .into();
        v["runtime_models"] = gw.local.names().into();
        v["policies"] = gw.policies().ids().to_vec().into();
        Ok(AdminResponse::json(StatusCode::OK, v))
    }

    /// Validates and puts new policies in force, and writes them to the policy file (so a
    /// restart keeps them). Nothing changes when they do not validate.
    fn put_policies(&self, actor: &Principal, text: &str) -> anyhow::Result<AdminResponse> {
        let Some(path) = &self.policy_file else {
            return Ok(AdminResponse::error(
                StatusCode::CONFLICT,
                "no_policy_file",
                "this server uses the default policy: set [serve] policy = \"FILE\" and restart to manage policies here",
            ));
        };
        let policies = match gateway::policy::Policies::parse(text, "the request body") {
            Ok(p) => p,
            Err(e) => {
                return Ok(AdminResponse::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_policies",
                    format!("{e:#}"),
                ))
            }
        };
        let ids = policies.ids().join(",");
        crate::files::replace_private(path, text.as_bytes())?;
        self.gw.set_policies(policies);
        let digest = hex::encode(sign::HashAlgorithm::Sha256.digest(text.as_bytes()));
        self.gw.recorder.record_later(
            &Record::new("config.policy-update", &actor.name)
                .attr("policies", &ids)
                .attr("sha256", &digest),
        );
        Ok(AdminResponse::json(
            StatusCode::OK,
            json!({"policies": self.gw.policies().ids(), "sha256": digest}),
        ))
    }

    fn carry_out(&self, req: &AdminRequest) -> Result<AdminResponse, Refusal> {
        let route = route(req)?;
        let mut node = match self.node.lock() {
            Ok(n) => n,
            Err(p) => p.into_inner(),
        };
        let roles: &[Role] = match &route {
            Route::Change(op, _) => op.roles(),
            Route::PutPolicies(_) => &[Role::Admin],
            Route::Read(Read::Keys | Read::Principals) => &[Role::Admin, Role::Auditor],
            Route::Status | Route::Metrics | Route::Read(_) => ANY,
        };
        let actor = self.authenticate(&mut node, req, roles)?;
        let internal = |e: anyhow::Error| {
            eprintln!("warden serve: admin API: {e:#}");
            AdminResponse::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed inside the server; see its log",
            )
        };
        match route {
            Route::Metrics => Ok(AdminResponse {
                status: StatusCode::OK,
                body: AdminBody::Text(
                    gateway::metrics_listener::EXPOSITION,
                    gateway::metrics_listener::render(&self.gw),
                ),
                auth_failed: false,
            }),
            Route::Status => self.status(&mut node).map_err(internal),
            Route::Read(read) => self.read(&mut node, read).map_err(internal),
            Route::PutPolicies(text) => self.put_policies(&actor, &text).map_err(internal),
            Route::Change(op, status) => {
                if let Op::Approve { release, .. }
                | Op::Reject { release, .. }
                | Op::Revoke { release, .. }
                | Op::Deploy { release }
                | Op::Shred { release } = &op
                {
                    let id = release_id(release)?;
                    let exists = node
                        .registry
                        .read(|tx| tx.release(&id).map_err(anyhow::Error::from))
                        .map_err(internal)?
                        .is_some();
                    if !exists {
                        return Err(AdminResponse::error(
                            StatusCode::NOT_FOUND,
                            "release_not_found",
                            format!("no release {id}"),
                        ));
                    }
                }
                match remote::execute(&mut node, &actor, &op, &remote::Progress::none()) {
                    Ok(v) => {
                        super::serve::after_change(&mut node, &self.gw, &op);
                        Ok(AdminResponse::json(status, v))
                    }
                    Err(e) if e.downcast_ref::<Denied>().is_some() => {
                        let r =
                            AdminResponse::error(StatusCode::FORBIDDEN, "denied", format!("{e:#}"));
                        self.refused(req, &actor.name, &r);
                        Err(r)
                    }
                    Err(e) => Err(AdminResponse::error(
                        StatusCode::CONFLICT,
                        "not_carried_out",
                        format!("{e:#}"),
                    )),
                }
            }
        }
    }
}

impl AdminApi for AdminHandler {
    fn handle(&self, req: AdminRequest) -> AdminResponse {
        match self.carry_out(&req) {
            Ok(r) | Err(r) => r,
        }
    }
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
        assert!(request_for(&admit).is_none());
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
        assert_eq!(
            status(route(&req(Method::PUT, "/admin/v1/policies", "\u{0}"))),
            200,
            "text is checked by Cedar later, not here"
        );
    }
}
