//! `warden posture`: every setting weaker than Warden's most secure default, and every
//! file whose permissions let others read secrets. Exit 0 when nothing is weaker, 2 when
//! something is (so that CI or a monitoring probe can gate on it), 1 on error.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use crate::cli::ledger::JsonArg;
use crate::config::{self, Config, Provider};
use crate::exit::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Weak,
}

#[derive(Debug, Serialize)]
struct Check {
    id: &'static str,
    level: Level,
    what: String,
    /// What to do about it.
    fix: String,
}

fn check(id: &'static str, weak: bool, what: String, fix: &str) -> Check {
    Check {
        id,
        level: if weak { Level::Weak } else { Level::Ok },
        what,
        fix: if weak { fix.to_string() } else { String::new() },
    }
}

/// Whether a path exists and is readable or writable by anyone but its owner.
fn too_open(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

fn checks(data_dir: &Path, c: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match c.vault.provider {
        None => check(
            "vault.provider",
            true,
            "no key provider is configured: nothing can be sealed".into(),
            "set [vault] provider = \"pkcs11\" (an HSM)",
        ),
        Some(Provider::File) => check(
            "vault.provider",
            true,
            "the key-encryption key is a file on this host".into(),
            "move it into an HSM: [vault] provider = \"pkcs11\"",
        ),
        Some(Provider::Pkcs11) => check(
            "vault.provider",
            false,
            "the key-encryption key is held in an HSM (PKCS#11)".into(),
            "",
        ),
    });
    if let Some(pkcs11) = &c.vault.pkcs11 {
        if let Some(pin) = &pkcs11.pin_file {
            let path = data_dir.join(pin);
            if let Some(mode) = too_open(&path) {
                out.push(check(
                    "vault.pkcs11.pin_file",
                    true,
                    format!("the HSM PIN file {} has mode {mode:o}", path.display()),
                    "chmod 600 it",
                ));
            }
        }
    }
    for (id, n) in [
        ("approvals.required", c.approvals.required),
        ("approvals.export_required", c.approvals.export_required),
    ] {
        out.push(check(
            id,
            n < 2,
            format!("{n} distinct approver(s) needed"),
            "require at least 2 (the two-person rule)",
        ));
    }
    let gate = c.admission.reject_at().ok();
    out.push(check(
        "admission.reject_at",
        gate.is_none_or(|g| g > scan::Severity::High),
        format!(
            "scan findings at or above {} reject a model",
            c.admission.reject_at
        ),
        "set [admission] reject_at = \"high\" or lower",
    ));
    out.push(check(
        "trust.unsigned_models",
        !c.trust.unsigned_models.is_empty(),
        if c.trust.unsigned_models.is_empty() {
            "every model must be signed by a trusted signer".into()
        } else {
            format!(
                "models admitted without a signature: {}",
                c.trust.unsigned_models.join(", ")
            )
        },
        "remove [trust] unsigned_models and sign those models",
    ));
    let broad: Vec<&str> = c
        .trust
        .signers
        .iter()
        .filter(|s| s.models.iter().any(|m| m == "*"))
        .map(|s| s.name.as_str())
        .collect();
    out.push(check(
        "trust.signers",
        !broad.is_empty(),
        if broad.is_empty() {
            "every signer is limited to named models".into()
        } else {
            format!("signers trusted for every model: {}", broad.join(", "))
        },
        "limit each signer's `models` to the models it publishes",
    ));
    out.push(check(
        "serve.insecure_plain_http",
        c.serve.insecure_plain_http,
        if c.serve.insecure_plain_http {
            "warden serve speaks plain HTTP: keys and prompts cross the network in the clear".into()
        } else {
            "warden serve speaks TLS only".into()
        },
        "set [serve] insecure_plain_http = false and give tls_cert and tls_key",
    ));
    out.push(check(
        "serve.tls12",
        c.serve.tls12,
        if c.serve.tls12 {
            "warden serve also accepts TLS 1.2".into()
        } else {
            "warden serve accepts TLS 1.3 only".into()
        },
        "remove [serve] tls12 once every client speaks TLS 1.3",
    ));
    let s = &c.serve;
    // The admin API on an address other machines reach: fine with TLS and tokens, but a
    // wider door than the loopback default, so say so.
    let admin_exposed = s
        .admin_listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| !a.ip().is_loopback());
    out.push(check(
        "serve.admin_listen",
        admin_exposed,
        if admin_exposed {
            format!(
                "the admin API listens on {}, reachable from other hosts",
                s.admin_listen
            )
        } else {
            "the admin API listens on loopback only (or is off)".into()
        },
        "set [serve] admin_listen to a loopback address and reach it through an SSH tunnel or a bastion",
    ));
    let undeclared: Vec<&str> = s
        .upstreams
        .iter()
        .filter(|u| u.protocol == "kserve")
        .flat_map(|u| u.models.iter().filter(|m| !u.inputs.contains_key(*m)))
        .map(String::as_str)
        .collect();
    out.push(check(
        "serve.upstreams.inputs",
        !undeclared.is_empty(),
        if undeclared.is_empty() {
            "every KServe upstream model has its inputs declared and checked".into()
        } else {
            format!(
                "KServe upstream models without declared inputs (only the request's structure is checked): {}",
                undeclared.join(", ")
            )
        },
        "declare each model's inputs in [serve.upstreams.inputs] (name, datatype, shape)",
    ));
    let names = |keep: fn(&config::UpstreamConfig) -> bool| {
        s.upstreams
            .iter()
            .filter(|u| keep(u))
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>()
    };
    let (plain, tls12) = (names(|u| u.insecure_plain_http), names(|u| u.tls12));
    let mut weaker = Vec::new();
    if !plain.is_empty() {
        weaker.push(format!(
            "upstreams reached in plain HTTP across the network: {}",
            plain.join(", ")
        ));
    }
    if !tls12.is_empty() {
        weaker.push(format!("upstreams allowed TLS 1.2: {}", tls12.join(", ")));
    }
    out.push(check(
        "serve.upstreams.tls",
        !weaker.is_empty(),
        if weaker.is_empty() {
            "every upstream off this host is reached over TLS 1.3".into()
        } else {
            weaker.join("; ")
        },
        "give those upstreams an https:// url and tls_ca, and remove insecure_plain_http and tls12",
    ));
    for (id, weak, strong_text, weak_text, fix) in [
        (
            "serve.limits",
            s.limits.requests_per_minute == 0,
            "each principal has a request rate",
            "principals have no request rate by default",
            "set [serve.limits] requests_per_minute (and exempt a principal in [serve.limits.principals.NAME] if needed)",
        ),
        (
            "serve.text.reject_invisible",
            !s.text.reject_invisible,
            "invisible and bidi control characters are refused in prompts",
            "invisible and bidi control characters reach the models (hidden prompts, Trojan Source)",
            "remove [serve.text] reject_invisible = false",
        ),
        (
            "serve.guards.tripwire",
            !s.guards.tripwire,
            "the prompt-injection tripwire is on",
            "the prompt-injection tripwire is off",
            "remove [serve.guards] tripwire = false",
        ),
        (
            "serve.allow_logprobs",
            s.allow_logprobs,
            "log-probabilities are stripped from answers",
            "log-probabilities reach callers (they help copy a model and infer training data)",
            "remove [serve] allow_logprobs",
        ),
    ] {
        out.push(check(
            id,
            weak,
            (if weak { weak_text } else { strong_text }).to_string(),
            fix,
        ));
    }
    out.push(check(
        "runtime.allow_weaker_sandbox",
        c.runtime.allow_weaker_sandbox,
        if c.runtime.allow_weaker_sandbox {
            "model workers may run where the kernel lacks a sandbox layer".into()
        } else {
            "model workers refuse to run without every sandbox layer".into()
        },
        "remove [runtime] allow_weaker_sandbox (a worker then names the missing layer and stops)",
    ));
    let full: Vec<String> = std::iter::once(("[runtime]".to_string(), Some(&c.runtime.output)))
        .chain(
            c.runtime
                .models
                .iter()
                .map(|(n, m)| (format!("[runtime.models.{n}]"), m.output.as_ref())),
        )
        .filter(|(_, o)| o.is_some_and(|o| o == "scores"))
        .map(|(n, _)| n)
        .collect();
    out.push(check(
        "runtime.output",
        !full.is_empty(),
        if full.is_empty() {
            "classifiers return a label and a rounded score at most".into()
        } else {
            format!(
                "full model outputs are returned to callers ({})",
                full.join(", ")
            )
        },
        "set output = \"label-score\" or \"label\": full scores help copy or invert a model",
    ));
    let tls_key = c.serve.tls_key.to_string_lossy().into_owned();
    for (id, rel) in [
        ("files.data_dir", ""),
        ("files.digest_key", "keys/digest.key"),
        ("files.tls_key", tls_key.as_str()),
        ("files.ledger_key", "keys/ledger.key"),
        ("files.kek", "keys/kek.key"),
        ("files.registry", crate::node::REGISTRY_DB),
        ("files.config", config::FILE_NAME),
    ] {
        let path = if rel.is_empty() {
            data_dir.to_path_buf()
        } else {
            data_dir.join(rel)
        };
        if let Some(mode) = too_open(&path) {
            out.push(check(
                id,
                true,
                format!("{} has mode {mode:o}", path.display()),
                "restrict it to its owner (chmod 700 for directories, 600 for files)",
            ));
        }
    }
    for key in c
        .serve
        .upstreams
        .iter()
        .filter_map(|u| u.tls_client_key.as_ref())
    {
        let path = data_dir.join(key);
        if let Some(mode) = too_open(&path) {
            out.push(check(
                "files.upstream_client_key",
                true,
                format!("{} has mode {mode:o}", path.display()),
                "restrict it to its owner (chmod 600)",
            ));
        }
    }
    out
}

pub fn run(data_dir: &Path, config: Option<&Path>, args: JsonArg) -> anyhow::Result<Code> {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join(config::FILE_NAME));
    let c = Config::load(&path)?;
    let list = checks(data_dir, &c);
    let weak = list.iter().filter(|c| c.level == Level::Weak).count();
    let mut out = std::io::stdout().lock();
    if args.json {
        for c in &list {
            writeln!(out, "{}", serde_json::to_string(c)?)?;
        }
        writeln!(
            out,
            "{}",
            serde_json::json!({"type": "summary", "weak": weak, "checks": list.len()})
        )?;
    } else {
        for c in &list {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Weak => "WEAK",
            };
            writeln!(out, "{tag} {:<28} {}", c.id, c.what)?;
            if !c.fix.is_empty() {
                writeln!(out, "     {:<28} fix: {}", "", c.fix)?;
            }
        }
        writeln!(
            out,
            "{weak} of {} settings weaker than the secure default",
            list.len()
        )?;
    }
    Ok(if weak == 0 { Code::Ok } else { Code::Denied })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn weak_ids(c: &Config, dir: &Path) -> Vec<&'static str> {
        checks(dir, c)
            .into_iter()
            .filter(|c| c.level == Level::Weak)
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn each_weaker_setting_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(
            &path,
            "[vault]\nprovider = \"pkcs11\"\n[vault.pkcs11]\nmodule = \"m\"\ntoken = \"t\"\n\
             [[trust.signers]]\nname = \"a\"\nkey = \"a.pub\"\nmodels = [\"iris\"]\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let strong = Config::load(&path).unwrap();
        assert!(
            weak_ids(&strong, dir.path()).is_empty(),
            "{:?}",
            weak_ids(&strong, dir.path())
        );

        std::fs::write(
            &path,
            "[vault]\nprovider = \"file\"\n[approvals]\nrequired = 1\n[admission]\nreject_at = \"critical\"\n\
             [trust]\nunsigned_models = [\"demo-*\"]\n[[trust.signers]]\nname = \"a\"\nkey = \"a.pub\"\n\
             [serve]\ninsecure_plain_http = true\ntls12 = true\nallow_logprobs = true\n\
             admin_listen = \"[::]:8444\"\n\
             [[serve.upstreams]]\nname = \"t\"\nurl = \"http://10.0.0.1:8000\"\nprotocol = \"kserve\"\nmodels = [\"m\"]\n\
             insecure_plain_http = true\n\
             [[serve.upstreams]]\nname = \"u\"\nurl = \"https://10.0.0.2:8000\"\nprotocol = \"openai\"\nmodels = [\"o\"]\n\
             tls_ca = \"tls/upstream-ca.pem\"\ntls12 = true\ntls_client_cert = \"tls/c.pem\"\ntls_client_key = \"tls/c.key\"\n\
             [serve.limits]\nrequests_per_minute = 0\n[serve.text]\nreject_invisible = false\n\
             [serve.guards]\ntripwire = false\n\
             [runtime]\nallow_weaker_sandbox = true\n[runtime.models.iris]\noutput = \"scores\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir_all(dir.path().join("tls")).unwrap();
        std::fs::write(dir.path().join("tls/key.pem"), "k").unwrap();
        std::fs::set_permissions(
            dir.path().join("tls/key.pem"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(dir.path().join("tls/c.key"), "k").unwrap();
        std::fs::set_permissions(
            dir.path().join("tls/c.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let weak = Config::load(&path).unwrap();
        assert_eq!(
            weak_ids(&weak, dir.path()),
            [
                "vault.provider",
                "approvals.required",
                "admission.reject_at",
                "trust.unsigned_models",
                "trust.signers",
                "serve.insecure_plain_http",
                "serve.tls12",
                "serve.admin_listen",
                "serve.upstreams.inputs",
                "serve.upstreams.tls",
                "serve.limits",
                "serve.text.reject_invisible",
                "serve.guards.tripwire",
                "serve.allow_logprobs",
                "runtime.allow_weaker_sandbox",
                "runtime.output",
                "files.tls_key",
                "files.config",
                "files.upstream_client_key"
            ]
        );
    }
}
