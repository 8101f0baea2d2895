//! Re-reads what `warden serve` may be given anew while it runs: the TLS certificate, key
//! and client CAs, and the identity provider's JWKS. A change is recorded in the ledger; a
//! broken file leaves the previous material in use and is reported once (not on every
//! poll) until it changes again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gateway::jwt::JwtVerifier;
use gateway::tls::TlsReloader;
use ledger::record::Record;
use ledger::Ledger;

use crate::node;

/// How often the files are checked.
pub const EVERY: Duration = Duration::from_secs(5);

/// What is reloaded.
pub struct Reloadable {
    pub tls: Option<Arc<TlsReloader>>,
    pub jwt: Option<Arc<JwtVerifier>>,
}

/// One reloadable thing, and the last error reported for it.
struct Watched {
    kind: &'static str,
    what: &'static str,
    reload: Box<dyn Fn() -> anyhow::Result<bool> + Send>,
    last_error: Option<String>,
}

impl Watched {
    fn check(&mut self, ledger: &Ledger) {
        match (self.reload)() {
            Ok(changed) => {
                self.last_error = None;
                if changed {
                    eprintln!("warden serve: reloaded the {}", self.what);
                    let _ = node::record(ledger, &Record::new(self.kind, "warden"));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                if self.last_error.as_deref() != Some(message.as_str()) {
                    eprintln!(
                        "warden serve: the {} was not reloaded ({message}); still using the previous one",
                        self.what
                    );
                    let _ = node::record(
                        ledger,
                        &Record::new("alert.reload-failed", "warden").attr("what", self.what),
                    );
                    self.last_error = Some(message);
                }
            }
        }
    }
}

/// Checks every [`EVERY`] until `stop` is set.
pub fn spawn(
    what: Reloadable,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let mut watched = Vec::new();
    if let Some(tls) = what.tls {
        watched.push(Watched {
            kind: "config.tls-reload",
            what: "TLS certificate, key or client CAs",
            reload: Box::new(move || tls.reload()),
            last_error: None,
        });
    }
    if let Some(jwt) = what.jwt {
        watched.push(Watched {
            kind: "config.jwks-reload",
            what: "JWKS of [serve.jwt]",
            reload: Box::new(move || jwt.reload()),
            last_error: None,
        });
    }
    std::thread::Builder::new()
        .name("serve-reload".into())
        .spawn(move || {
            let tick = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited < EVERY {
                    continue;
                }
                waited = Duration::ZERO;
                for w in &mut watched {
                    w.check(&ledger);
                }
            }
        })
}
