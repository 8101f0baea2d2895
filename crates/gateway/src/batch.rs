//! Dynamic batching for models run by the sandboxed runtime. A worker answers one request
//! at a time, and most of a round trip is the crossing itself (two context switches and a
//! copy each way), not the model. So requests that arrive while the worker is busy wait in
//! a queue, and the next crossing carries all of them at once: their inputs joined along
//! the batch dimension, the outputs split back by rows. A model whose first dimension is
//! not open (-1) in every input and output is run one request at a time. If a joined batch
//! fails, each request in it is run alone, so that one bad request cannot fail the others.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::local::{BackendError, LocalBackend, LocalModel, Tensor, TensorSpec};

/// Most requests waiting for one model; beyond, requests are refused (503).
pub const MAX_WAITING: usize = 1024;
/// Most rows, and most values, in one crossing.
const MAX_ROWS: usize = 1024;
const MAX_VALUES: usize = 1 << 20;

type Reply = oneshot::Sender<Result<Vec<Tensor>, BackendError>>;

struct Waiting {
    inputs: Vec<Tensor>,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    running: bool,
}

/// The queue in front of one model's worker.
#[derive(Default)]
pub struct Batcher {
    queue: Mutex<Queue>,
}

/// The queue is full.
pub struct Full;

fn lock(b: &Batcher) -> std::sync::MutexGuard<'_, Queue> {
    b.queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the model's inputs and outputs all have an open first dimension.
pub fn batchable(inputs: &[TensorSpec], outputs: &[TensorSpec]) -> bool {
    inputs
        .iter()
        .chain(outputs)
        .all(|s| s.shape.first() == Some(&-1))
}

/// Queues `inputs` for `model` and waits for its outputs. Starts the model's crossing loop
/// when none runs.
pub fn submit(
    model: &Arc<LocalModel>,
    inputs: Vec<Tensor>,
) -> Result<oneshot::Receiver<Result<Vec<Tensor>, BackendError>>, Full> {
    let (reply, wait) = oneshot::channel();
    let start = {
        let mut q = lock(&model.batcher);
        if q.waiting.len() >= MAX_WAITING {
            return Err(Full);
        }
        q.waiting.push(Waiting { inputs, reply });
        !std::mem::replace(&mut q.running, true)
    };
    if start {
        // The crossing loop runs on a blocking thread: crossing after crossing while
        // requests wait, never going back through an event loop in between (a busy one
        // would hold the next crossing back while the worker sits idle).
        let model = Arc::clone(model);
        tokio::task::spawn_blocking(move || run(&model));
    }
    Ok(wait)
}

/// Takes what waits (up to the limits) and crosses with it, until nothing waits.
fn run(model: &LocalModel) {
    loop {
        let batch = {
            let mut q = lock(&model.batcher);
            if q.waiting.is_empty() {
                q.running = false;
                return;
            }
            take(&mut q.waiting, model.batchable)
        };
        // A panic in the backend drops this crossing's replies (their requests get a
        // generic error); the loop goes on for the others.
        let crossing =
            std::panic::AssertUnwindSafe(|| cross(&*model.backend, batch, model.batchable));
        let _ = std::panic::catch_unwind(crossing);
    }
}

fn rows(inputs: &[Tensor]) -> usize {
    inputs
        .first()
        .and_then(|t| t.shape.first())
        .copied()
        .unwrap_or(0)
}

/// The requests for the next crossing: the oldest, and those after it that fit.
fn take(waiting: &mut Vec<Waiting>, batchable: bool) -> Vec<Waiting> {
    if !batchable {
        return vec![waiting.remove(0)];
    }
    let (mut n, mut total_rows, mut values) = (0, 0, 0);
    for w in waiting.iter() {
        let r = rows(&w.inputs);
        let v: usize = w.inputs.iter().map(|t| t.data.len()).sum();
        if n > 0 && (total_rows + r > MAX_ROWS || values + v > MAX_VALUES) {
            break;
        }
        n += 1;
        total_rows += r;
        values += v;
    }
    waiting.drain(..n).collect()
}

/// Runs one crossing (on a blocking thread) and answers every request in it.
fn cross(backend: &dyn LocalBackend, batch: Vec<Waiting>, batchable: bool) {
    if batch.len() == 1 || !batchable {
        for w in batch {
            let _ = w.reply.send(backend.infer(w.inputs));
        }
        return;
    }
    let counts: Vec<usize> = batch.iter().map(|w| rows(&w.inputs)).collect();
    let joined = join(&batch);
    match backend.infer(joined) {
        Ok(outputs) => match split(outputs, &counts) {
            Some(parts) => {
                for (w, part) in batch.into_iter().zip(parts) {
                    let _ = w.reply.send(Ok(part));
                }
            }
            None => {
                for w in batch {
                    let _ = w.reply.send(Err(BackendError::Failed));
                }
            }
        },
        // The worker is down or too slow: every request in the crossing shares that fate.
        Err(e @ (BackendError::Timeout | BackendError::Unavailable(_))) => {
            for w in batch {
                let _ = w.reply.send(Err(e.clone()));
            }
        }
        // Perhaps one request the model cannot take: each alone, so only it fails.
        Err(BackendError::Failed) => {
            for w in batch {
                let _ = w.reply.send(backend.infer(w.inputs));
            }
        }
    }
}

/// Each input of the requests, joined along the first dimension.
fn join(batch: &[Waiting]) -> Vec<Tensor> {
    let inputs = batch.first().map_or(0, |w| w.inputs.len());
    (0..inputs)
        .map(|i| {
            let mut shape = batch[0].inputs[i].shape.clone();
            shape[0] = batch.iter().map(|w| w.inputs[i].shape[0]).sum();
            let mut data = Vec::with_capacity(batch.iter().map(|w| w.inputs[i].data.len()).sum());
            for w in batch {
                data.extend_from_slice(&w.inputs[i].data);
            }
            Tensor { shape, data }
        })
        .collect()
}

/// Splits every output by `counts` rows; `None` when an output does not have the rows.
fn split(outputs: Vec<Tensor>, counts: &[usize]) -> Option<Vec<Vec<Tensor>>> {
    let total: usize = counts.iter().sum();
    let mut parts: Vec<Vec<Tensor>> = vec![Vec::with_capacity(outputs.len()); counts.len()];
    for out in outputs {
        if out.shape.first() != Some(&total) || total == 0 {
            return None;
        }
        let per_row = out.data.len() / total;
        if per_row * total != out.data.len() {
            return None;
        }
        let mut at = 0;
        for (part, &n) in parts.iter_mut().zip(counts) {
            let mut shape = out.shape.clone();
            shape[0] = n;
            part.push(Tensor {
                shape,
                data: out.data[at..at + n * per_row].to_vec(),
            });
            at += n * per_row;
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Doubles its input; fails any batch holding a negative value.
    struct Double;
    impl LocalBackend for Double {
        fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError> {
            let t = &inputs[0];
            if t.data.iter().any(|v| *v < 0.0) {
                return Err(BackendError::Failed);
            }
            Ok(vec![Tensor {
                shape: t.shape.clone(),
                data: t.data.iter().map(|v| v * 2.0).collect(),
            }])
        }
    }

    fn request(
        rows: usize,
        value: f32,
    ) -> (
        Waiting,
        oneshot::Receiver<Result<Vec<Tensor>, BackendError>>,
    ) {
        let (reply, wait) = oneshot::channel();
        let inputs = vec![Tensor {
            shape: vec![rows, 2],
            data: vec![value; rows * 2],
        }];
        (Waiting { inputs, reply }, wait)
    }

    #[test]
    fn a_batch_is_joined_split_and_a_bad_request_fails_alone() {
        let (a, ra) = request(1, 1.0);
        let (b, rb) = request(3, 2.0);
        let (c, rc) = request(2, -1.0);
        cross(&Double, vec![a, b, c], true);
        let a = ra.blocking_recv().unwrap().unwrap();
        assert_eq!(a[0].shape, vec![1, 2]);
        assert_eq!(a[0].data, vec![2.0; 2]);
        let b = rb.blocking_recv().unwrap().unwrap();
        assert_eq!(b[0].shape, vec![3, 2]);
        assert_eq!(b[0].data, vec![4.0; 6]);
        assert!(matches!(
            rc.blocking_recv().unwrap(),
            Err(BackendError::Failed)
        ));
    }

    #[test]
    fn crossings_are_bounded_and_unbatchable_models_go_one_by_one() {
        let mut waiting: Vec<Waiting> = (0..5).map(|_| request(400, 1.0).0).collect();
        assert_eq!(
            take(&mut waiting, true).len(),
            2,
            "800 rows fit, 1200 do not"
        );
        assert_eq!(waiting.len(), 3);
        assert_eq!(take(&mut waiting, false).len(), 1);
        let open = |shape: Vec<i64>| TensorSpec {
            name: "t".into(),
            datatype: "FP32".into(),
            shape,
        };
        assert!(batchable(&[open(vec![-1, 4])], &[open(vec![-1, 3])]));
        assert!(!batchable(&[open(vec![1, 4])], &[open(vec![-1, 3])]));
        assert!(!batchable(&[open(vec![-1, 4])], &[open(vec![3])]));
        // Outputs without the joined rows are refused.
        assert!(split(
            vec![Tensor {
                shape: vec![2, 1],
                data: vec![0.0; 2]
            }],
            &[1, 2]
        )
        .is_none());
    }
}
