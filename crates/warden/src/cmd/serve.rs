//! `warden serve`, `warden apikey` and `warden lockdown`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use gateway::admin_listener::Method;
use gateway::{Control, Digests, Gateway, Recorder, Served};
use ledger::record::Record;
use ledger::Ledger;
use registry::Role;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::release::Ctx;
use crate::cli::serve::*;
use crate::cli::{Cli, Command};
use crate::exit::Code;
use crate::node::remote::{self, Op};
use crate::node::{self, views, Node};

/// How often the server reads the registry for revoked keys and the lockdown.
const POLL: Duration = Duration::from_millis(250);
/// The digest key's place in the data directory.
const DIGEST_KEY: &str = "keys/digest.key";

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let ctx = Ctx {
        data_dir: cli.data_dir,
        config: cli.config,
        token_file: cli.token_file,
        server: cli.server,
        server_ca: cli.server_ca,
    };
    match cli.command {
        Command::Serve(a) => serve(
            &ctx,
            a.listen,
            a.admin_listen,
            Box::new(|ready: &Ready| {
                // The inference address first: scripts read the first line for it. One
                // write, so a reader that takes only that line and goes away has both in
                // its pipe already; and a reader gone (a closed stdout) does not stop the
                // server.
                let mut text = format!("listening on {}\n", ready.url);
                if let Some(admin) = &ready.admin_url {
                    text.push_str(&format!("admin API on {admin}/admin/v1\n"));
                }
                let mut out = std::io::stdout().lock();
                match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(()),
                }
            }),
        ),
        Command::Apikey(a) => apikey(&ctx, a),
        Command::Lockdown(a) => lockdown(&ctx, a),
        Command::Block(a) => block(&ctx, a, true),
        Command::Unblock(a) => block(&ctx, a, false),
        _ => bail!("internal: not a serve command"),
    }
}

/// The time `--expires` names, as the ledger writes times; an error for one past year
/// 9999, which RFC 3339 cannot write (and `SystemTime` may not hold).
fn expiry_after(d: std::time::Duration) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut text = String::new();
    let written = SystemTime::now()
        .checked_add(d)
        .is_some_and(|t| write!(text, "{}", humantime::format_rfc3339_millis(t)).is_ok());
    if !written {
        anyhow::bail!(
            "--expires {}: too far in the future (the expiry must fall before the year 10000)",
            humantime::format_duration(d)
        );
    }
    Ok(text)
}

fn apikey(ctx: &Ctx, a: ApikeyArgs) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    match a.command {
        ApikeyCommand::Create(c) => {
            let expires = c.expires.map(|d| expiry_after(*d)).transpose()?;
            let v = ctx.carry_out(
                &Op::ApikeyCreate {
                    principal: c.principal.clone(),
                    models: c.models,
                    expires,
                },
                false,
            )?;
            if c.json.json {
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{}", v["key"].as_str().unwrap_or_default())?;
                eprintln!(
                    "the line above is the API key {} of {}: it is shown only this once (ledger entry {})",
                    v["id"].as_str().unwrap_or_default(),
                    c.principal,
                    v["ledger_index"]
                );
            }
        }
        ApikeyCommand::Revoke(r) => {
            let v = ctx.carry_out(&Op::ApikeyRevoke { id: r.id.clone() }, false)?;
            if r.json.json {
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "API key {} is revoked (ledger entry {})",
                    r.id, v["ledger_index"]
                )?;
            }
        }
        ApikeyCommand::List(j) => {
            let keys: Vec<serde_json::Value> =
                match ctx.remote(Method::GET, "/admin/v1/keys", None)? {
                    Some(v) => serde_json::from_value(v["keys"].clone())?,
                    None => {
                        let (mut node, _) = ctx.act(&[Role::Admin, Role::Auditor])?;
                        views::api_keys(&mut node)?
                    }
                };
            for k in keys {
                if j.json {
                    writeln!(out, "{k}")?;
                } else {
                    let text = |f: &str| k[f].as_str().unwrap_or_default().to_string();
                    let models: Vec<&str> = k["models"]
                        .as_array()
                        .map(|m| m.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{}  {:<24} {:<8} {:<24} created {} expires {}",
                        text("id"),
                        text("principal"),
                        text("state"),
                        models.join(","),
                        text("created"),
                        k["expires"].as_str().unwrap_or("never")
                    )?;
                }
            }
        }
    }
    Ok(Code::Ok)
}

fn block(ctx: &Ctx, a: BlockArgs, on: bool) -> anyhow::Result<Code> {
    let op = Op::Block {
        principal: a.principal.clone(),
        block: on,
        reason: a.reason,
    };
    let v = ctx.carry_out(&op, false)?;
    let mut out = std::io::stdout().lock();
    if a.json.json {
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{} is {} (ledger entry {})",
            a.principal,
            if on {
                "blocked: its inference requests are refused"
            } else {
                "no longer blocked"
            },
            v["ledger_index"]
        )?;
    }
    Ok(Code::Ok)
}

fn lockdown(ctx: &Ctx, a: LockdownArgs) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    let on = match a.switch {
        Switch::Status => {
            let v = match ctx.remote(Method::GET, "/admin/v1/lockdown", None)? {
                Some(v) => v,
                None => views::switches(&mut ctx.node()?)?,
            };
            if a.json.json {
                writeln!(out, "{v}")?;
            } else {
                let on = v["lockdown"] == true;
                writeln!(out, "lockdown is {}", if on { "on" } else { "off" })?;
                let blocked: Vec<&str> = v["blocked"]
                    .as_array()
                    .map(|b| b.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                if blocked.is_empty() {
                    writeln!(out, "no principal is blocked")?;
                } else {
                    writeln!(out, "blocked: {}", blocked.join(", "))?;
                }
            }
            return Ok(Code::Ok);
        }
        Switch::On => true,
        Switch::Off => false,
    };
    let v = ctx.carry_out(&Op::Lockdown { on }, false)?;
    if a.json.json {
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "lockdown is {}{} (ledger entry {})",
            if on { "on" } else { "off" },
            if on { ": inference is refused" } else { "" },
            v["ledger_index"]
        )?;
    }
    Ok(Code::Ok)
}

/// The key of request and response digests: 32 random bytes in hex, created on first use
/// with mode 0600; refused if others may read it.
fn digest_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut text = zeroize::Zeroizing::new(String::new());
    match std::fs::File::open(path) {
        Ok(f) => {
            let mode = f.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} may be read by other users (mode {:o}): chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            f.take(1024).read_to_string(&mut text)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = zeroize::Zeroizing::new([0u8; 32]);
            rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, secret.as_mut())
                .map_err(|e| anyhow::anyhow!("the system random number generator failed: {e}"))?;
            text.push_str(&hex::encode(secret.as_ref()));
            text.push('\n');
            crate::files::create_private(path, text.as_bytes())?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let bytes = zeroize::Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| anyhow::anyhow!("{} is not hex", path.display()))?,
    );
    let mut key = [0u8; 32];
    if bytes.len() != 32 {
        bail!("{} must hold 32 bytes in hex", path.display());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Called once the server listens, with its URL (`https://ADDR:PORT`).
pub type OnReady = Box<dyn FnOnce(&Ready) -> anyhow::Result<()> + Send>;

/// Where a server that has started serves: inference, and the admin API (if on).
pub struct Ready {
    pub url: String,
    pub admin_url: Option<String>,
}

/// `warden serve`: runs until SIGINT or SIGTERM.
pub fn serve(
    ctx: &Ctx,
    listen: Option<String>,
    admin_listen: Option<String>,
    on_ready: OnReady,
) -> anyhow::Result<Code> {
    let mut node = ctx.node()?;
    let mut config = node.config.serve.clone();
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let mut gateway_config = config.gateway(|p| node.path(p))?;
    // Upstreams' TLS files in force before anything is served; reloaded as they change.
    let mut upstream_tls = gateway_config.upstream_tls_files();
    for files in &mut upstream_tls {
        files.reload().context("[[serve.upstreams]]")?;
    }
    gateway_config.max_connections = fit_connections(gateway_config.max_connections);
    let metrics_listen = config.metrics_listen()?;
    let admin_listen = config.admin_listen(admin_listen.as_deref())?;
    let tls_reloader = if config.insecure_plain_http {
        eprintln!(
            "WARNING: [serve] insecure_plain_http = true: serving plain HTTP without TLS. API keys, prompts and outputs cross the network in the clear; use this only behind a TLS-terminating proxy on the same host."
        );
        None
    } else {
        let cert = node.path(&config.tls_cert);
        let key = node.path(&config.tls_key);
        let settings = config.tls(|p| node.path(p))?;
        Some(Arc::new(gateway::tls::TlsReloader::new(settings).with_context(|| {
            format!(
                "TLS (set [serve] tls_cert and tls_key; a self-signed pair for tests: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost -keyout {} -out {})",
                key.display(),
                cert.display()
            )
        })?))
    };
    let tls = tls_reloader.as_ref().map(|r| r.server_tls());
    let jwt = match &config.jwt {
        Some(j) => Some(Arc::new(
            gateway::jwt::JwtVerifier::new(j.settings(|p| node.path(p))?).context("[serve.jwt]")?,
        )),
        None => None,
    };
    let guards = config.guards.guards()?;
    let policy_file = config.policy.as_deref().map(|p| node.path(p));
    let policies = match &policy_file {
        Some(path) => Some(
            super::serve_reload::read_policies(path)
                .context("[serve] policy")?
                .0,
        ),
        None => None,
    };
    let digests = Digests::new(&digest_key(&node.path(Path::new(DIGEST_KEY)))?);
    let ledger = Arc::new(node.open_ledger()?);
    let control = Control::new(&mut node.registry)?;
    let poller = control.spawn_poller(&node.path(Path::new(node::REGISTRY_DB)), POLL)?;
    let recorder = Recorder::start(
        Arc::clone(&ledger),
        gateway::audit::QUEUE,
        Duration::from_millis(config.ledger_commit_ms),
    )?;
    let mut gw = Gateway::new(gateway_config, Arc::clone(&control), recorder, digests)?;
    gw.jwt = jwt.clone();
    gw.guards = guards;
    if let Some(p) = policies {
        gw.set_policies(p);
    }
    let gw = Arc::new(gw);
    let stop_reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reloader = super::serve_reload::spawn(
        super::serve_reload::Reloadable {
            tls: tls_reloader,
            jwt,
            policy: policy_file.map(|p| (p, Arc::clone(&gw))),
            upstream_tls,
        },
        Arc::clone(&ledger),
        Arc::clone(&stop_reload),
    )?;
    if node.config.runtime.enabled {
        start_runtime(&mut node, &ledger, &gw)?;
    }
    let mut admin_node = ctx.node()?;
    admin_node.shared_ledger = Some(Arc::clone(&ledger));
    let admin_node = Arc::new(Mutex::new(admin_node));
    let admin_api = admin_listen.map(|addr| {
        let api: Arc<dyn gateway::admin_listener::AdminApi> =
            Arc::new(super::serve_admin::AdminHandler {
                node: Arc::clone(&admin_node),
                gw: Arc::clone(&gw),
                policy_file: config.policy.as_deref().map(|p| node.path(p)),
            });
        (addr, api)
    });

    // The inference listener runs its own event loops (`event_loops`, by default one per
    // core: gateway's server.rs); this runtime has the admin and metrics listeners, the
    // admin socket and the reloads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("serve-admin")
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_server(
        &ctx.data_dir,
        Listeners {
            tls: tls.clone(),
            tls12: config.tls12,
            metrics: metrics_listen,
            admin: admin_api,
        },
        Arc::clone(&gw),
        Arc::clone(&ledger),
        admin_node,
        on_ready,
    ));
    drop(runtime);
    control.stop();
    let _ = poller.join();
    stop_reload.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reloader.join();
    gw.recorder.stop();
    let _ = std::fs::remove_file(remote::socket_path(&ctx.data_dir));
    let stop = node::record(&ledger, &Record::new("config.serve-stop", "warden"));
    drop(gw);
    match Arc::try_unwrap(ledger) {
        Ok(l) => l.close().context("closing the ledger")?,
        Err(_) => bail!("internal: the ledger is still in use at shutdown"),
    }
    result?;
    stop?;
    Ok(Code::Ok)
}

/// Descriptors kept free beyond connections: the ledger, the registry, the vault, workers,
/// the admin listener's connections.
const RESERVED_FDS: u64 = 512;

/// Raises the soft limit on open descriptors to the hard limit (the usual soft limit,
/// 1024, is below the default `max_connections`, and a descriptor the ledger cannot open
/// stops all inference), then lowers `wanted` to what fits under it, saying so.
fn fit_connections(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    let Some(soft) = limit.current else {
        return wanted; // unlimited
    };
    let fit = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    if wanted == 0 {
        return fit;
    }
    if wanted > fit {
        eprintln!(
            "warden serve: at most {fit} connections at once: the limit on open files is {soft} (raise it with `ulimit -n` or LimitNOFILE= to allow [serve] max_connections = {wanted})"
        );
        return fit;
    }
    wanted
}

/// Starts a sandboxed worker for each live ONNX release; refuses a model name that an
/// upstream also answers for over KServe (the caller could not tell which one answered).
fn start_runtime(node: &mut Node, ledger: &Arc<Ledger>, gw: &Gateway) -> anyhow::Result<()> {
    let program = std::env::current_exe().context("finding the warden program to run workers")?;
    let runtime_config = node.config.runtime.clone();
    let loaded = node::served::load_live(node, ledger, &runtime_config, program, &|_, _| false)?;
    for l in loaded {
        if let Some(u) = gw.config.upstream_for(gateway::Protocol::KServe, &l.model) {
            bail!(
                "model {:?} is live in the registry and also listed by the KServe upstream {:?}; remove it from one of them",
                l.model,
                u.name
            );
        }
        eprintln!("warden serve: runtime: {}", l.summary);
        gw.local.set(&l.model, l.served);
    }
    Ok(())
}

/// What the server listens with, besides the admin socket.
struct Listeners {
    tls: Option<gateway::tls::ServerTls>,
    tls12: bool,
    /// The metrics listener's address, if any.
    metrics: Option<std::net::SocketAddr>,
    /// The admin API's address and handler, if on.
    admin: Option<(
        std::net::SocketAddr,
        Arc<dyn gateway::admin_listener::AdminApi>,
    )>,
}

async fn run_server(
    data_dir: &Path,
    listeners: Listeners,
    gw: Arc<Gateway>,
    ledger: Arc<Ledger>,
    admin_node: Arc<Mutex<Node>>,
    on_ready: OnReady,
) -> anyhow::Result<()> {
    let Listeners {
        tls,
        tls12,
        metrics: metrics_listen,
        admin,
    } = listeners;
    let listen = gw.config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tls_versions = match (&tls, tls12) {
        (None, _) => "none (plain HTTP)",
        (Some(_), false) => "1.3",
        (Some(_), true) => "1.3,1.2",
    };
    node::record(
        &ledger,
        &Record::new("config.serve-start", "warden")
            .attr("listen", &bound.to_string())
            .attr("tls", tls_versions)
            .attr("client_auth", gw.config.client_auth.name())
            .attr("jwt", if gw.jwt.is_some() { "on" } else { "off" })
            .attr("guards", &gw.guards.names().join(","))
            .attr("policies", &gw.policies().ids().join(","))
            .attr("upstreams", &gw.config.upstreams.len().to_string())
            .attr("runtime_models", &gw.local.names().join(",")),
    )?;

    let socket = remote::socket_path(data_dir);
    let _ = std::fs::remove_file(&socket);
    let admin_socket = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("creating the admin socket {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let socket_task = tokio::spawn(admin_loop(admin_socket, admin_node, Arc::clone(&gw)));
    let metrics_task = match metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for metrics on {addr}"))?;
            eprintln!(
                "warden serve: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            Some(tokio::spawn(gateway::metrics_listener::serve_metrics(
                listener,
                Arc::clone(&gw),
                std::future::pending(),
            )))
        }
        None => None,
    };

    let (admin_task, admin_url) = match admin {
        Some((addr, api)) => {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("listening for the admin API on {addr} (set [serve] admin_listen or --admin-listen; `off` for none)")
            })?;
            let url = format!("{scheme}://{}", listener.local_addr()?);
            let task = tokio::spawn(gateway::admin_listener::serve_admin(
                listener,
                tls.clone(),
                Arc::clone(&gw),
                api,
                std::future::pending(),
            ));
            (Some(task), Some(url))
        }
        None => (None, None),
    };
    on_ready(&Ready {
        url: format!("{scheme}://{bound}"),
        admin_url,
    })?;
    eprintln!(
        "warden serve: {} upstream(s), {} model(s) in the sandboxed runtime, {} event loop(s), TLS {tls_versions}; admin changes through {}",
        gw.config.upstreams.len(),
        gw.local.names().len(),
        gateway::server::event_loops(gw.config.event_loops),
        socket.display()
    );
    let result = gateway::serve(listener, tls, gw, shutdown_signal()).await;
    socket_task.abort();
    for t in [metrics_task, admin_task].into_iter().flatten() {
        t.abort();
    }
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn admin_loop(listener: tokio::net::UnixListener, node: Arc<Mutex<Node>>, gw: Arc<Gateway>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if let Err(why) = admin_peer_allowed(&stream) {
            eprintln!("warden serve: refused a connection to the admin socket: {why}");
            continue;
        }
        let node = Arc::clone(&node);
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read.take(remote::MAX_LINE as u64));
            let read =
                tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let line = zeroize::Zeroizing::new(line);
            let reply = tokio::task::spawn_blocking(move || {
                let mut node = match node.lock() {
                    Ok(n) => n,
                    Err(p) => p.into_inner(),
                };
                let (reply, op) = remote::serve_request(&mut node, &line);
                if let (true, Some(op)) = (reply.ok, op) {
                    after_change(&mut node, &gw, &op);
                }
                reply
            })
            .await
            .unwrap_or_else(|_| remote::Reply::from_result(Err(anyhow::anyhow!("internal error"))));
            if let Ok(mut text) = serde_json::to_string(&reply) {
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
            }
        });
    }
}

/// Whether a process on the admin socket runs as the server's own user or as root. The
/// socket's mode (0600, in a 0700 data directory) already keeps others out; this holds
/// even if those modes were loosened.
fn admin_peer_allowed(stream: &tokio::net::UnixStream) -> Result<(), String> {
    let peer = stream
        .peer_cred()
        .map_err(|e| format!("its credentials cannot be read ({e})"))?;
    let own = rustix::process::getuid().as_raw();
    if peer.uid() == own || peer.uid() == 0 {
        Ok(())
    } else {
        Err(format!(
            "uid {} is neither this server's user (uid {own}) nor root",
            peer.uid()
        ))
    }
}

/// Puts a change carried out in the server in force before it is acknowledged (the
/// poller would see it within its interval anyway): the registry read again, and the
/// runtime following a change of live release.
pub(super) fn after_change(node: &mut Node, gw: &Gateway, op: &Op) {
    if let Err(e) = gw.control.reload(&mut node.registry) {
        eprintln!("warden serve: reading the registry after a change: {e:#}");
    }
    if op.changes_live() && node.config.runtime.enabled {
        if let Err(e) = sync_runtime(node, gw) {
            eprintln!("warden serve: following the live releases: {e:#}");
        }
    }
}

/// After a deploy, rollback or revocation: workers for releases newly live, and models no
/// longer live taken out of service.
fn sync_runtime(node: &mut Node, gw: &Gateway) -> anyhow::Result<()> {
    let ledger = node
        .shared_ledger
        .clone()
        .ok_or_else(|| anyhow::anyhow!("internal: no server ledger"))?;
    let live: Vec<(String, String)> = node
        .registry
        .read(|tx| tx.all_live().map_err(anyhow::Error::from))?
        .into_iter()
        .map(|l| (l.model, l.version))
        .collect();
    for name in gw.local.names() {
        if !live.iter().any(|(m, _)| *m == name) {
            gw.local.remove(&name);
            eprintln!("warden serve: runtime: {name} has no live release now; not served");
        }
    }
    let served = |model: &str, version: &str| matches!(gw.local.get(model), Some(Served::Ready(m)) if m.version == version);
    let program = std::env::current_exe().context("finding the warden program to run workers")?;
    let runtime_config = node.config.runtime.clone();
    for l in node::served::load_live(node, &ledger, &runtime_config, program, &served)? {
        if gw
            .config
            .upstream_for(gateway::Protocol::KServe, &l.model)
            .is_some()
        {
            eprintln!(
                "warden serve: runtime: {} is also listed by a KServe upstream; not served by the runtime",
                l.model
            );
            continue;
        }
        eprintln!("warden serve: runtime: {}", l.summary);
        gw.local.set(&l.model, l.served);
    }
    Ok(())
}
