//! `warden init`: a new data directory with its configuration, key-encryption key, ledger,
//! registry and first administrator.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ledger::record::Record;
use registry::identity;
use registry::{Principal, Registry, Role};

use super::{now, Node, REGISTRY_DB};
use crate::cmd::ledger::Paths;
use crate::config::{self, Provider};

/// What `init` is asked for.
pub struct InitOptions {
    pub provider: Provider,
    /// For the pkcs11 provider: module and token label.
    pub hsm_module: Option<PathBuf>,
    pub hsm_token: Option<String>,
    pub admin: String,
    pub origin: Option<String>,
}

/// What `init` made.
pub struct Initialised {
    pub admin: String,
    pub token: zeroize::Zeroizing<String>,
    pub vkey: String,
    pub config: PathBuf,
}

fn config_text(opts: &InitOptions) -> String {
    let mut s = String::from(
        "# Warden configuration. Every key is documented in docs/configuration.md.\n\
         # Paths are relative to this data directory.\n\n[vault]\n",
    );
    match opts.provider {
        Provider::File => s.push_str(
            "# A key file holds the key-encryption key: for development and small sites.\n\
             # `warden posture` reports it; use provider = \"pkcs11\" (an HSM) in production.\n\
             provider = \"file\"\nkek_file = \"keys/kek.key\"\n",
        ),
        Provider::Pkcs11 => {
            let module = opts
                .hsm_module
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            s.push_str(&format!(
                "provider = \"pkcs11\"\n\n[vault.pkcs11]\nmodule = {module:?}\ntoken = {:?}\nkey_label = \"warden-kek\"\npin_env = \"WARDEN_HSM_PIN\"\n",
                opts.hsm_token.as_deref().unwrap_or_default()
            ));
        }
    }
    s.push_str(
        "\n[approvals]\n# Distinct approvers (never the admitter) to promote, and to export weights.\nrequired = 2\nexport_required = 2\n\n\
         [admission]\n# Scan findings at or above this severity reject a model.\nreject_at = \"high\"\n\n\
         # Who may sign which models, e.g.:\n# [[trust.signers]]\n# name = \"publisher\"\n# key = \"trust/publisher.pub\"\n# models = [\"*\"]\n",
    );
    s
}

pub fn init(data_dir: &Path, opts: &InitOptions) -> anyhow::Result<Initialised> {
    identity::check_name(&opts.admin).map_err(anyhow::Error::msg)?;
    if data_dir.join(REGISTRY_DB).exists() {
        bail!(
            "{} is already a Warden data directory (it has {REGISTRY_DB})",
            data_dir.display()
        );
    }
    if opts.provider == Provider::Pkcs11 && (opts.hsm_module.is_none() || opts.hsm_token.is_none())
    {
        bail!("--kek pkcs11 needs --hsm-module and --hsm-token");
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let config_path = data_dir.join(config::FILE_NAME);
    if !config_path.exists() {
        crate::files::create_private(&config_path, config_text(opts).as_bytes())?;
    }
    let paths = Paths::new(data_dir);
    let vkey = if paths.ledger.join(ledger::layout::JOURNAL).exists() {
        let l = ledger::reader::Published::open(&paths.ledger, None)?;
        l.vkey().to_string()
    } else {
        crate::cmd::ledger::write::create(&paths, opts.origin.clone())?.1
    };
    let registry = Registry::open(&data_dir.join(REGISTRY_DB))?;
    let mut node = Node {
        data_dir: data_dir.to_path_buf(),
        config: crate::config::Config::load(&config_path)?,
        registry,
        shared_ledger: None,
    };
    let kek = create_kek(&node)?;

    let issued = identity::issue().map_err(anyhow::Error::msg)?;
    let principal = Principal {
        name: opts.admin.clone(),
        roles: vec![Role::Admin],
        created: now()?,
        disabled: false,
        token_id: issued.token_id.clone(),
        token_hash: issued.token_hash,
    };
    let ledger = node.ledger()?;
    node.registry.write(|tx| -> anyhow::Result<()> {
        if !tx.principals()?.is_empty() {
            bail!("the registry already has principals; this data directory was initialised");
        }
        super::record(
            &ledger,
            &Record::new("admin.init", "warden")
                .attr("kek_provider", kek.0)
                .attr("kek", &kek.1),
        )?;
        super::record(
            &ledger,
            &Record::new("admin.principal-add", "warden")
                .subject(&principal.name)
                .attr("roles", "admin"),
        )?;
        tx.add_principal(&principal)?;
        Ok(())
    })?;
    ledger.close()?;
    Ok(Initialised {
        admin: opts.admin.clone(),
        token: issued.token,
        vkey,
        config: config_path,
    })
}

/// Creates the configured key-encryption key unless it exists; returns the provider's
/// name and the key's identity.
fn create_kek(node: &Node) -> anyhow::Result<(&'static str, String)> {
    use vault::provider::KeyProvider;
    match node.config.vault.provider {
        Some(Provider::File) | None => {
            let path = node.kek_file();
            let kek = if path.exists() {
                vault::provider::file::FileKek::load(&path)?
            } else {
                if let Some(parent) = path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)?;
                }
                vault::provider::file::FileKek::create(&path)?
            };
            Ok(("file", kek.kek_id()))
        }
        Some(Provider::Pkcs11) => {
            let p = node
                .config
                .vault
                .pkcs11
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("[vault.pkcs11] is missing"))?;
            let pin = node.hsm_pin()?;
            let config = vault::provider::pkcs11::Pkcs11Config {
                module: p.module.clone(),
                token: p.token.clone(),
                key_label: p.key_label.clone(),
            };
            let (kek, _) = vault::provider::pkcs11::Pkcs11Kek::open_or_create(&config, &pin)
                .context("opening or creating the key-encryption key in the HSM")?;
            Ok(("pkcs11", kek.kek_id()))
        }
    }
}
