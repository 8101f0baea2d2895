//! `warden quickstart`: the whole life of a model on this machine, with nothing external.
//! A new data directory (file KEK, ledger, registry, an admin), a self-signed TLS
//! certificate, the demo model (built into this program, with its signature and its
//! publisher's public key) admitted through the full pipeline, approved by two demo
//! approvers (DEMO MODE: a real deployment has two people approve), deployed, and served
//! over HTTPS with a fresh API key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use ledger::record::Record;
use registry::{Principal, Purpose, ReleaseId, Role, State};
use zeroize::Zeroizing;

use super::release::Ctx;
use super::serve;
use crate::cli::QuickstartArgs;
use crate::config::Provider;
use crate::exit::Code;
use crate::files::create_private;
use crate::node::{self, admit, apikeys, init, lifecycle, principals, Node};

/// The demo model, as the repository ships it (examples/models/iris).
const MODEL: &[u8] = include_bytes!("../../../../examples/models/iris/model.onnx");
const MODEL_CARD: &[u8] = include_bytes!("../../../../examples/models/iris/MODEL_CARD.md");
/// An OpenSSF Model Signing bundle over a directory holding `model.onnx` alone.
const SIGNATURE: &[u8] = include_bytes!("../../../../examples/models/iris/model.sig");
const PUBLISHER_KEY: &[u8] = include_bytes!("../../../../examples/models/iris/demo-publisher.pub");

const MODEL_NAME: &str = "iris";
const MODEL_VERSION: &str = "1.0";
const LABELS: [&str; 3] = ["setosa", "versicolor", "virginica"];
/// How long the demo API key lasts.
const KEY_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// One flower for the printed request: a virginica.
const EXAMPLE: &str =
    r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5]}]}"#;

/// The configuration quickstart adds to what `init` wrote.
fn demo_config(publisher_key: &str) -> String {
    let labels: Vec<String> = LABELS.iter().map(|l| format!("{l:?}")).collect();
    format!(
        "\n# Added by `warden quickstart` (DEMO MODE).\n\
         # The demo publisher may sign the demo model only.\n\
         [[trust.signers]]\nname = \"demo-publisher\"\nkey = {publisher_key:?}\nmodels = [\"{MODEL_NAME}\"]\n\n\
         # The demo model's class names; callers get the label and a rounded score.\n\
         [runtime.models.{MODEL_NAME}]\nlabels = [{}]\n",
        labels.join(", ")
    )
}

/// A self-signed certificate for `localhost` and the listening address, ECDSA P-256.
fn self_signed(dir: &Path, listen: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        let ip = addr.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    let cert = rcgen::generate_simple_self_signed(names)
        .context("making the self-signed TLS certificate")?;
    let cert_path = dir.join("tls/cert.pem");
    let key_path = dir.join("tls/key.pem");
    let key_pem = Zeroizing::new(cert.signing_key.serialize_pem());
    create_private(&key_path, key_pem.as_bytes())?;
    create_private(&cert_path, cert.cert.pem().as_bytes())?;
    Ok((cert_path, key_path))
}

fn principal(node: &mut Node, token: &str, roles: &[Role]) -> anyhow::Result<Principal> {
    node.authenticate(Some(token), roles)
}

fn record(node: &Node, rec: &Record) -> anyhow::Result<u64> {
    let ledger = node.ledger()?;
    let i = node::record(&ledger, rec);
    ledger.close()?;
    i
}

/// What the person running quickstart needs, once the server listens.
struct Ready {
    data_dir: PathBuf,
    cert: PathBuf,
    admin_token: Zeroizing<String>,
    key_id: String,
    key: Zeroizing<String>,
    json: bool,
}

impl Ready {
    fn print(&self, url: &str, admin_url: Option<&str>) -> anyhow::Result<()> {
        let infer = format!("{url}/v2/models/{MODEL_NAME}/infer");
        let curl = format!(
            "curl --cacert {} -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{EXAMPLE}' {infer}",
            self.cert.display(),
            self.key.as_str()
        );
        let data = self.data_dir.display();
        let mut out = std::io::stdout().lock();
        if self.json {
            let v = serde_json::json!({
                "type": "quickstart",
                "demo_mode": true,
                "url": url,
                "model": MODEL_NAME,
                "release": format!("{MODEL_NAME}@{MODEL_VERSION}"),
                "infer_url": infer,
                "ca_cert": self.cert.display().to_string(),
                "api_key": self.key.as_str(),
                "api_key_id": self.key_id,
                "admin_token": self.admin_token.as_str(),
                "admin_url": admin_url,
                "data_dir": data.to_string(),
                "curl": curl,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "\nWarden is serving {MODEL_NAME}@{MODEL_VERSION} at {url} (DEMO MODE: approved by two demo approvers).\n\n\
                 Admin token (shown only this once; keep it in a file readable only by you and pass it with --token-file):\n  {}\n\n\
                 Ask the model (the API key {} expires in 7 days):\n  {curl}\n\n\
                 Model metadata:  curl --cacert {} -H 'Authorization: Bearer {}' {url}/v2/models/{MODEL_NAME}\n\
                 The ledger:      warden ledger --data-dir {data} verify   (and `warden ledger --data-dir {data} tail`)\n\
                 Releases:        warden releases --data-dir {data}\n\
                 Admin API:       {}\n\
                 Posture:         warden posture --data-dir {data}   (reports the demo's file KEK)\n\
                 Serve it again:  warden serve --data-dir {data}\n\n\
                 Press Ctrl-C to stop.",
                self.admin_token.as_str(),
                self.key_id,
                self.cert.display(),
                self.key.as_str(),
                match admin_url {
                    Some(a) => format!(
                        "curl --cacert {} -H 'Authorization: Bearer <admin token>' {a}/admin/v1/status",
                        self.cert.display()
                    ),
                    None => "off".into(),
                },
            )?;
            writeln!(out, "listening on {url}")?;
        }
        out.flush()?;
        Ok(())
    }
}

fn step(json: bool, what: &str) {
    if !json {
        eprintln!("quickstart: {what}");
    }
}

pub fn run(ctx: &Ctx, a: QuickstartArgs) -> anyhow::Result<Code> {
    let dir = &ctx.data_dir;
    if ctx.config.is_some() {
        bail!(
            "quickstart writes its own configuration into the data directory; leave out --config"
        );
    }
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if occupied {
        bail!(
            "{} is not empty (a Warden node from an earlier quickstart?). Serve it again with `warden serve --data-dir {}`, or start over in a new directory: `warden quickstart --data-dir NEW`",
            dir.display(),
            dir.display()
        );
    }
    let json = a.json.json;
    let listen = a.listen.clone();
    if let Some(l) = &listen {
        l.parse::<std::net::SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "--listen {l:?}: {e} (e.g. 127.0.0.1:8443, or 127.0.0.1:0 for any free port)"
            )
        })?;
    }

    step(
        json,
        &format!(
            "creating the data directory {} (file KEK, ledger, registry, admin)",
            dir.display()
        ),
    );
    let done = init::init(
        dir,
        &init::InitOptions {
            provider: Provider::File,
            hsm_module: None,
            hsm_token: None,
            admin: "admin".into(),
            origin: None,
        },
    )?;
    let data_dir =
        std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;

    // The demo model as its publisher ships it, and the trust policy for it.
    let model_dir = data_dir.join("demo/iris");
    create_private(&model_dir.join("model.onnx"), MODEL)?;
    create_private(&data_dir.join("demo/iris.sig"), SIGNATURE)?;
    create_private(&data_dir.join("demo/MODEL_CARD.md"), MODEL_CARD)?;
    create_private(&data_dir.join("demo/demo-publisher.pub"), PUBLISHER_KEY)?;
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&done.config)
            .with_context(|| format!("opening {}", done.config.display()))?;
        f.write_all(demo_config("demo/demo-publisher.pub").as_bytes())?;
        f.sync_all()?;
    }
    step(json, "making a self-signed TLS certificate (ECDSA P-256)");
    let (cert, _key) = self_signed(
        &data_dir,
        &listen.clone().unwrap_or_else(|| "127.0.0.1:8443".into()),
    )?;

    let mut node = Node::open(&data_dir, None)?;
    let admin = principal(&mut node, &done.token, &[Role::Admin])?;
    record(
        &node,
        &Record::new("config.quickstart", &admin.name)
            .attr("mode", "demo")
            .attr("release", &format!("{MODEL_NAME}@{MODEL_VERSION}"))
            .attr(
                "note",
                "approvals by two demo approver principals created by quickstart, not by two people",
            ),
    )?;
    let mut approvers = Vec::new();
    for name in ["demo-approver-1", "demo-approver-2"] {
        let issued = principals::add(&mut node, &admin, name, &[Role::Approver])?;
        approvers.push(principal(&mut node, &issued.token, &[Role::Approver])?);
    }

    step(
        json,
        "admitting the demo model: scan, verify its signature, seal, AI-BOM, ledger",
    );
    let id = ReleaseId::new(MODEL_NAME, MODEL_VERSION).map_err(anyhow::Error::msg)?;
    let admitted = admit::admit(
        &mut node,
        &admin,
        &admit::AdmitRequest {
            model: model_dir.clone(),
            id: id.clone(),
            signature: Some(data_dir.join("demo/iris.sig")),
            model_card: Some(data_dir.join("demo/MODEL_CARD.md")),
            threat_model: None,
            threads: 0,
        },
        admit::Progress {
            total: &|_| {},
            advance: &|_| {},
        },
    )?;
    if admitted.state != State::Admitted {
        bail!(
            "the demo model was rejected: {} (ledger entry {})",
            admitted.reasons.join("; "),
            admitted.ledger_index
        );
    }
    step(
        json,
        "DEMO MODE: approving it as demo-approver-1 and demo-approver-2",
    );
    for who in &approvers {
        lifecycle::approve(&mut node, who, &id, Purpose::Promote, false)?;
    }
    step(json, "deploying it (integrity checked)");
    lifecycle::deploy(&mut node, &admin, &id, &|_| {})?;

    let key = {
        let ledger = node.ledger()?;
        let created = apikeys::create(
            &mut node,
            &ledger,
            &admin,
            "demo-client",
            &[MODEL_NAME.to_string()],
            Some(SystemTime::now() + KEY_LIFETIME),
        );
        ledger.close()?;
        created?
    };
    drop(node);

    // From here on this is `warden serve` on the new data directory.
    let ready = Ready {
        data_dir: data_dir.clone(),
        cert,
        admin_token: done.token,
        key_id: key.id,
        key: key.key,
        json,
    };
    step(json, "starting the server");
    let serve_ctx = Ctx {
        data_dir,
        config: None,
        token_file: None,
        server: None,
        server_ca: None,
    };
    serve::serve(
        &serve_ctx,
        listen,
        a.admin_listen,
        Box::new(move |r: &serve::Ready| ready.print(&r.url, r.admin_url.as_deref())),
    )
}
