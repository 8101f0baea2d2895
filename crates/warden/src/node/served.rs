//! Live releases served by the sandboxed runtime. Each live release holding one `.onnx`
//! file is opened from the vault (every file authenticated and checked against the digests
//! recorded at admission), its model handed to a worker process in a sealed memfd, and the
//! plaintext here zeroized. A release that fails its integrity check, or whose worker will
//! not start, is not served (503) and the reason is in the ledger.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use gateway::local::{Tensor, TensorSpec};
use gateway::{BackendError, LocalBackend, LocalModel, Served};
use ledger::record::Record;
use ledger::Ledger;
use registry::{ReleaseId, State};
use runtime::{RuntimeError, Worker, WorkerConfig};
use zeroize::Zeroizing;

use super::integrity::{self, Sink};
use super::Node;
use crate::config::RuntimeConfig;

/// The hidden subcommand `warden` runs itself with to become a worker.
pub const WORKER_ARG: &str = "__runtime-worker";
/// Who the runtime's ledger records name as the actor.
const ACTOR: &str = "warden";

/// A model run by a worker process; failures and restarts go to the ledger.
pub struct WorkerBackend {
    worker: Worker,
    ledger: Arc<Ledger>,
    release: String,
}

impl WorkerBackend {
    fn note(&self, kind: &str, attrs: &[(&str, String)]) {
        let mut rec = Record::new(kind, ACTOR).subject(&self.release);
        for (k, v) in attrs {
            rec = rec.attr(k, &super::admit::truncate(v, 500));
        }
        if let Err(e) = super::record(&self.ledger, &rec) {
            eprintln!("warden serve: recording {kind} for {}: {e:#}", self.release);
        }
    }
}

impl LocalBackend for WorkerBackend {
    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError> {
        let tensors = inputs
            .into_iter()
            .map(|t| runtime::Tensor::new(t.shape, t.data))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| BackendError::Failed)?;
        let restarts = self.worker.restarts();
        let result = self.worker.infer(&tensors);
        if self.worker.restarts() > restarts {
            let pid = self.worker.pid().map(|p| p.to_string()).unwrap_or_default();
            self.note(
                "runtime.worker-restart",
                &[
                    ("pid", pid),
                    ("restarts", self.worker.restarts().to_string()),
                ],
            );
        }
        let err = match result {
            Ok(out) => {
                return Ok(out
                    .into_iter()
                    .map(|t| Tensor {
                        shape: t.shape,
                        data: t.data,
                    })
                    .collect())
            }
            Err(e) => e,
        };
        let (kind, answer) = match &err {
            // Waiting out the back-off after a failure already recorded.
            RuntimeError::Unavailable(d) => return Err(BackendError::Unavailable(*d)),
            // The model refused this input: the request's own record says so.
            RuntimeError::Inference(_) | RuntimeError::BadRequest(_) => {
                return Err(BackendError::Failed)
            }
            RuntimeError::Timeout(_) => ("timeout", BackendError::Timeout),
            RuntimeError::Crashed(_) => ("crash", BackendError::Failed),
            RuntimeError::Protocol(_) => ("protocol", BackendError::Failed),
            RuntimeError::Spawn(_)
            | RuntimeError::Refused(_)
            | RuntimeError::Load(_)
            | RuntimeError::Memfd(_) => ("start", BackendError::Failed),
        };
        eprintln!("warden serve: {}: {err}", self.release);
        self.note(
            "alert.worker-failure",
            &[("kind", kind.to_string()), ("detail", err.to_string())],
        );
        Err(answer)
    }
}

/// What loading the live releases gave.
pub struct Loaded {
    pub model: String,
    pub served: Served,
    /// One line for the operator.
    pub summary: String,
}

/// The `.onnx` file of a release, if it has exactly one. (A release admitted from a single
/// file has no file name left, only `.`: it is left to the upstreams.)
fn onnx_file(files: &[registry::FileRow]) -> Result<Option<&registry::FileRow>, String> {
    let onnx: Vec<_> = files
        .iter()
        .filter(|f| f.path.to_ascii_lowercase().ends_with(".onnx"))
        .collect();
    match onnx.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "it holds {} .onnx files; the runtime serves releases with exactly one",
            many.len()
        )),
    }
}

/// Starts a worker for every live release with an ONNX model, but those `served` already
/// (model, version).
pub fn load_live(
    node: &mut Node,
    ledger: &Arc<Ledger>,
    config: &RuntimeConfig,
    program: PathBuf,
    served: &dyn Fn(&str, &str) -> bool,
) -> anyhow::Result<Vec<Loaded>> {
    let live = node
        .registry
        .read(|tx| tx.all_live().map_err(anyhow::Error::from))?;
    let limits = config.limits()?;
    let mut loaded = Vec::new();
    for l in live {
        if served(&l.model, &l.version) {
            continue;
        }
        let id = ReleaseId::new(&l.model, &l.version).map_err(anyhow::Error::msg)?;
        let (release, files) = node.registry.read(|tx| {
            let r = tx.release(&id)?;
            let f = tx.files(&id)?;
            Ok::<_, anyhow::Error>((r, f))
        })?;
        let Some(release) = release.filter(|r| r.state == State::Live) else {
            continue;
        };
        let file = match onnx_file(&files) {
            Ok(Some(f)) => f.clone(),
            Ok(None) => continue,
            Err(why) => {
                loaded.push(refuse(ledger, &id, "model", &why));
                continue;
            }
        };
        if file.size >= limits.memory_bytes {
            let why = format!(
                "{} is {} bytes, more than the worker memory limit ([runtime] memory_mib)",
                file.path, file.size
            );
            loaded.push(refuse(ledger, &id, "model", &why));
            continue;
        }
        let start = Instant::now();
        let plaintext = RefCell::new(Zeroizing::new(Vec::new()));
        let vault = node.vault()?;
        let opened = integrity::open_release(
            &vault,
            ledger,
            ACTOR,
            &release,
            &files,
            Sink::Memory {
                file: &file.path,
                out: &plaintext,
            },
            &|_| {},
        );
        if let Err(e) = opened {
            // open_release recorded the integrity alert.
            eprintln!("warden serve: {e:#}");
            loaded.push(Loaded {
                model: id.name.clone(),
                served: Served::Unavailable {
                    version: id.version.clone(),
                },
                summary: format!("{id}: NOT SERVED: its integrity check failed (see the ledger)"),
            });
            continue;
        }
        let mut wc = WorkerConfig::new(program.clone());
        wc.args = vec![WORKER_ARG.into()];
        wc.limits = limits;
        wc.allow_weaker_sandbox = config.allow_weaker_sandbox;
        let spawned = Worker::spawn(&plaintext.borrow(), wc);
        drop(plaintext);
        let worker = match spawned {
            Ok(w) => w,
            Err(e) => {
                loaded.push(refuse(ledger, &id, "start", &e.to_string()));
                continue;
            }
        };
        let elapsed = start.elapsed();
        let signature = worker.signature().unwrap_or_default();
        let report = worker.sandbox_report().unwrap_or_default();
        let layers: Vec<String> = report
            .layers
            .iter()
            .map(|l| format!("{}={}", l.layer, l.status.name()))
            .collect();
        let pid = worker.pid().map(|p| p.to_string()).unwrap_or_default();
        let spec = |s: &runtime::TensorSpec| TensorSpec {
            name: s.name.clone(),
            datatype: s.datatype.clone(),
            shape: s.shape.clone(),
        };
        let labels = config
            .models
            .get(&id.name)
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        let backend = Arc::new(WorkerBackend {
            worker,
            ledger: Arc::clone(ledger),
            release: id.to_string(),
        });
        let model = LocalModel::new(
            &id.name,
            &id.version,
            (
                signature.inputs.iter().map(spec).collect(),
                signature.outputs.iter().map(spec).collect(),
            ),
            labels,
            config.shaping(&id.name)?,
            backend,
        );
        let model = match model {
            Ok(m) => m,
            Err(e) => {
                loaded.push(refuse(ledger, &id, "model", &format!("{e:#}")));
                continue;
            }
        };
        super::record(
            ledger,
            &Record::new("runtime.worker-start", ACTOR)
                .subject(&id.to_string())
                .digest("manifest", &release.manifest)
                .attr("file", &file.path)
                .attr("pid", &pid)
                .attr("sandbox", &layers.join(","))
                .attr("output", model.shaping.name())
                .attr(
                    "start_ms",
                    &format!("{:.1}", elapsed.as_secs_f64() * 1000.0),
                ),
        )?;
        let missing = report.missing().len();
        loaded.push(Loaded {
            model: id.name.clone(),
            summary: format!(
                "{id}: sandboxed worker pid {pid}, {} in {:.0} ms{}",
                file.path,
                elapsed.as_secs_f64() * 1000.0,
                if missing == 0 {
                    ", every sandbox layer enforced".to_string()
                } else {
                    format!(", {missing} sandbox layer(s) MISSING (allow_weaker_sandbox)")
                }
            ),
            served: Served::Ready(Arc::new(model)),
        });
    }
    Ok(loaded)
}

/// A live release the runtime cannot serve: recorded, and answered with 503.
fn refuse(ledger: &Ledger, id: &ReleaseId, kind: &str, why: &str) -> Loaded {
    let rec = Record::new("alert.worker-failure", ACTOR)
        .subject(&id.to_string())
        .attr("kind", kind)
        .attr("detail", &super::admit::truncate(why, 500));
    if let Err(e) = super::record(ledger, &rec) {
        eprintln!("warden serve: recording the failure of {id}: {e:#}");
    }
    Loaded {
        model: id.name.clone(),
        served: Served::Unavailable {
            version: id.version.clone(),
        },
        summary: format!("{id}: NOT SERVED: {why}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(path: &str) -> registry::FileRow {
        registry::FileRow {
            path: path.into(),
            size: 1,
            sha256: String::new(),
            digests: Vec::new(),
        }
    }

    #[test]
    fn the_runtime_takes_releases_with_exactly_one_onnx_file() {
        let one = [row("MODEL_CARD.md"), row("model.ONNX")];
        assert_eq!(onnx_file(&one).unwrap().unwrap().path, "model.ONNX");
        assert!(onnx_file(&[row("model.gguf")]).unwrap().is_none());
        assert!(
            onnx_file(&[row(".")]).unwrap().is_none(),
            "a single file, name unknown"
        );
        assert!(onnx_file(&[row("a.onnx"), row("b/b.onnx")]).is_err());
    }
}
