//! Warden's inference gateway: the inference plane of `warden serve`.
//!
//! A request passes through one layer per job, in this order:
//!
//! ```text
//! TLS (rustls, TLS 1.3 by default, client certificates optional) ─► route ─► failed
//!     sign-ins slowed ─► authenticate (API key, JWT or client certificate) ─► kill switch
//!     ─► ledger health ─► block ─► rate, quota and concurrency limits ─► body limit
//!     ─► validate (UTF-8, JSON, schema, characters, token limits) ─► authorise (Cedar
//!     policies) ─► input guards ─► the sandboxed runtime (KServe v2, checked against the
//!     model's signature, outputs shaped) or the upstream serving the model (answers
//!     shaped) ─► response ─► ledger record
//! ```
//!
//! Every refusal is a JSON error with a status that tells the caller what to fix, and
//! nothing internal (upstream errors, file names, stack traces) reaches the caller. The
//! gateway knows nothing of model files; the `warden` binary wires it to the registry (API
//! keys, the lockdown switch) and the ledger.

pub mod admin_listener;
pub mod audit;
mod authn;
mod balance;
mod batch;
pub mod config;
pub mod conn;
pub mod control;
mod deadline;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod https_client;
pub mod jwt;
pub mod limits;
pub mod local;
pub mod metrics;
pub mod metrics_listener;
pub mod policy;
pub mod server;
pub mod shape;
pub mod tls;
pub mod validate;

pub mod proxy;
mod request_body;
mod runtime_kserve;
mod service;
mod sharded;
mod usage;

/// A map read on every request (the limits, remembered policy decisions, API keys and
/// blocked principals). foldhash is several times cheaper than std's SipHash on short keys,
/// and still seeded at random per process: the keys of these maps are made by the
/// operators or by callers already authenticated, and a caller choosing what to look up
/// cannot lengthen a lookup.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A set, as [`FastMap`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

pub use audit::{Digests, Recorder};
pub use config::{GatewayConfig, Protocol, Upstream};
pub use conn::{ClientIdentity, Connection};
pub use control::Control;
pub use local::{BackendError, LocalBackend, LocalModel, LocalModels, OutputShaping, Served};
pub use server::{serve, Gateway};
