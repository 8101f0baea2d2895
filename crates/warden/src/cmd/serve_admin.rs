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

use gateway::admin_listener::{AdminApi, AdminBody, AdminRequest, AdminResponse, StatusCode};
use gateway::Gateway;
use ledger::record::Record;
use registry::{Principal, Role};
use serde_json::json;

use super::admin_routes::{release_id, route, Read, Refusal, Route};
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
