//! Warden's sandboxed runtime: ONNX models run by tract in a worker process that locks
//! itself down (no new privileges, its own network namespace, resource limits, Landlock
//! with no filesystem access, a seccomp allow-list) before it parses the model.
//!
//! The parent ([`Worker`]) puts the plaintext model in a sealed memfd (never a file),
//! starts the worker with that memfd on descriptor 3 and one end of a socket pair on
//! descriptor 4, and speaks the length-prefixed [`protocol`] over the socket. See
//! `docs/runtime.md`.

pub mod allocator;
mod child;
mod engine;
pub mod protocol;
pub mod sandbox;
mod worker;

pub use child::{worker_main, MODEL_FD, SOCKET_FD};
pub use engine::Engine;
pub use protocol::{Request, Response, Signature, Tensor, TensorSpec};
pub use sandbox::{Layer, LayerReport, LayerStatus, SandboxReport};
pub use worker::{Limits, RuntimeError, Worker, WorkerConfig};
