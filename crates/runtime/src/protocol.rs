//! The length-prefixed protocol between the parent and a worker.
//!
//! A frame is a `u32` little-endian length followed by that many bytes of payload; a length
//! above the receiver's limit ([`MAX_FRAME_BYTES`] unless configured lower) is refused before
//! anything is allocated, and a frame cut short by the end of the stream is an error. The
//! first payload byte is the message kind. All integers are little-endian.
//!
//! ```text
//! tensor    = rank:u32 (<= MAX_RANK), dims:u64 * rank, data:f32 * product(dims)
//! tensors   = count:u32 (<= MAX_TENSORS), tensor * count
//! request   = 0x01 tensors                        infer
//!           | 0x7f probe                          (feature sandbox-probe only)
//! response  = 0x10 report signature               ready: locked down, model loaded
//!           | 0x11 text                           refused to start (which layer is missing)
//!           | 0x12 tensors                        outputs
//!           | 0x13 text                           error (bad input, the model failed)
//!           | 0x7e errno:i32                      probe result (0: the attempt succeeded)
//! text      = len:u32, UTF-8 bytes
//! report    = count:u32, (layer:u8, status:u8, detail:text) * count
//! signature = count:u32 (<= 2 * MAX_TENSORS), io * count
//! io        = kind:u8 (0 input, 1 output), name:text, datatype:text, rank:u32, dims:i64 * rank
//!             (a dimension of -1 is not fixed by the model, e.g. the batch size)
//! ```

use std::io::{self, Read, Write};

use crate::sandbox::{Layer, LayerReport, LayerStatus, SandboxReport};

/// The largest frame either side accepts by default: 16 MiB.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;
/// The most tensors in one message.
pub const MAX_TENSORS: u32 = 64;
/// The highest tensor rank.
pub const MAX_RANK: u32 = 8;

const REQ_INFER: u8 = 0x01;
#[cfg(feature = "sandbox-probe")]
const REQ_PROBE: u8 = 0x7f;
const RESP_READY: u8 = 0x10;
const RESP_REFUSED: u8 = 0x11;
const RESP_OUTPUTS: u8 = 0x12;
const RESP_ERROR: u8 = 0x13;
#[cfg(feature = "sandbox-probe")]
const RESP_PROBE: u8 = 0x7e;

/// What is wrong with a frame or a message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {len} bytes is larger than the limit of {limit} bytes")]
    Oversized { len: u32, limit: u32 },
    #[error("frame truncated: the stream ended after {got} of {want} bytes")]
    Truncated { got: usize, want: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn malformed(msg: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(msg.into())
}

/// Reads one frame. `Ok(None)` is a clean end of stream before a frame started.
pub fn read_frame<R: Read>(r: &mut R, limit: u32) -> Result<Option<Vec<u8>>, ProtocolError> {
    let mut len = [0u8; 4];
    let got = read_full(r, &mut len)?;
    if got == 0 {
        return Ok(None);
    }
    if got < 4 {
        return Err(ProtocolError::Truncated { got, want: 4 });
    }
    let len = u32::from_le_bytes(len);
    if len > limit {
        return Err(ProtocolError::Oversized { len, limit });
    }
    let mut buf = vec![0u8; len as usize];
    let got = read_full(r, &mut buf)?;
    if got < buf.len() {
        return Err(ProtocolError::Truncated {
            got,
            want: buf.len(),
        });
    }
    Ok(Some(buf))
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < buf.len() {
        match r.read(&mut buf[off..]) {
            Ok(0) => break,
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

/// Writes one frame (length prefix and payload in one write where possible).
pub fn write_frame<W: Write>(w: &mut W, payload: &[u8], limit: u32) -> Result<(), ProtocolError> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    if len > limit {
        return Err(ProtocolError::Oversized { len, limit });
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// A dense float32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor whose element count must match its shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, ProtocolError> {
        let count = element_count(&shape)?;
        if count != data.len() {
            return Err(malformed(format!(
                "shape {shape:?} has {count} elements but {} values were given",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
}

fn element_count(shape: &[usize]) -> Result<usize, ProtocolError> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| malformed(format!("shape {shape:?} overflows")))
    })
}

/// A request from the parent.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Infer(Vec<Tensor>),
    #[cfg(feature = "sandbox-probe")]
    Probe(Probe),
}

/// Test-only requests: each asks the worker to try something the sandbox must stop.
#[cfg(feature = "sandbox-probe")]
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `open(path, O_RDONLY)`.
    OpenFile(String),
    /// `socket(AF_INET)` and `connect` to `addr` (`127.0.0.1:PORT`).
    ConnectTcp(String),
    /// `socket(AF_UNIX)` and `connect` to a socket file.
    ConnectUnix(String),
    /// `execve(path)`.
    Exec(String),
    /// `abort()`: a worker that crashes.
    Abort,
    /// An endless loop: a worker that hangs.
    Hang,
    /// Allocate and touch this many bytes: a worker that wants too much memory.
    Allocate(u64),
    /// Map a page writable, then `mprotect` it executable: what injected code would need.
    MakeExecutable,
}

/// One input or output of a model, as the worker's engine sees it once it has loaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// The KServe v2 datatype name (`FP32`, `INT64`, ...).
    pub datatype: String,
    /// Each dimension, or -1 where the model leaves it open (the batch size, usually).
    pub shape: Vec<i64>,
}

/// What a model takes and gives: read by the sandboxed worker (the parent never parses a
/// model) and sent with `Ready`, so the gateway can check requests before they cross over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// The longest tensor or datatype name in a signature.
const MAX_NAME: u32 = 256;

/// A response from the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Ready(SandboxReport, Signature),
    Refused(String),
    Outputs(Vec<Tensor>),
    Error(String),
    #[cfg(feature = "sandbox-probe")]
    ProbeResult(i32),
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(malformed(format!(
                "needed {n} more bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn short_text(&mut self) -> Result<String, ProtocolError> {
        let len = self.u32()?;
        if len > MAX_NAME {
            return Err(malformed(format!(
                "a name of {len} bytes (at most {MAX_NAME})"
            )));
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed("text is not UTF-8"))
    }
    fn text(&mut self) -> Result<String, ProtocolError> {
        let len = self.u32()? as usize;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed("text is not UTF-8"))
    }
    fn end(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} bytes after the end of the message",
                self.buf.len()
            )))
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}

fn put_tensors(out: &mut Vec<u8>, tensors: &[Tensor]) {
    put_u32(out, u32::try_from(tensors.len()).unwrap_or(u32::MAX));
    for t in tensors {
        put_u32(out, u32::try_from(t.shape.len()).unwrap_or(u32::MAX));
        for &d in &t.shape {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.reserve(t.data.len() * 4);
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn put_signature(out: &mut Vec<u8>, sig: &Signature) {
    let count = sig.inputs.len() + sig.outputs.len();
    put_u32(out, u32::try_from(count).unwrap_or(u32::MAX));
    let tagged = sig
        .inputs
        .iter()
        .map(|s| (0u8, s))
        .chain(sig.outputs.iter().map(|s| (1u8, s)));
    for (kind, spec) in tagged {
        out.push(kind);
        put_text(out, &spec.name);
        put_text(out, &spec.datatype);
        put_u32(out, u32::try_from(spec.shape.len()).unwrap_or(u32::MAX));
        for d in &spec.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
}

fn get_signature(c: &mut Cursor<'_>) -> Result<Signature, ProtocolError> {
    let count = c.u32()?;
    if count > 2 * MAX_TENSORS {
        return Err(malformed(format!(
            "{count} inputs and outputs (at most {})",
            2 * MAX_TENSORS
        )));
    }
    let mut sig = Signature::default();
    for _ in 0..count {
        let kind = c.u8()?;
        let name = c.short_text()?;
        let datatype = c.short_text()?;
        let rank = c.u32()?;
        if rank > MAX_RANK {
            return Err(malformed(format!("rank {rank} (at most {MAX_RANK})")));
        }
        let mut shape = Vec::with_capacity(rank as usize);
        for _ in 0..rank {
            let d = i64::from_le_bytes(c.u64()?.to_le_bytes());
            if d < -1 {
                return Err(malformed(format!("dimension {d}")));
            }
            shape.push(d);
        }
        let spec = TensorSpec {
            name,
            datatype,
            shape,
        };
        match kind {
            0 => sig.inputs.push(spec),
            1 => sig.outputs.push(spec),
            k => return Err(malformed(format!("unknown signature entry kind {k}"))),
        }
    }
    Ok(sig)
}

fn get_tensors(c: &mut Cursor<'_>) -> Result<Vec<Tensor>, ProtocolError> {
    let count = c.u32()?;
    if count > MAX_TENSORS {
        return Err(malformed(format!(
            "{count} tensors (at most {MAX_TENSORS})"
        )));
    }
    let mut tensors = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let rank = c.u32()?;
        if rank > MAX_RANK {
            return Err(malformed(format!("rank {rank} (at most {MAX_RANK})")));
        }
        let mut shape = Vec::with_capacity(rank as usize);
        for _ in 0..rank {
            let d = c.u64()?;
            shape.push(usize::try_from(d).map_err(|_| malformed("dimension too large"))?);
        }
        let n = element_count(&shape)?;
        // The data must be in the frame: this bounds the allocation by the frame size.
        let bytes = c.take(
            n.checked_mul(4)
                .ok_or_else(|| malformed("tensor too large"))?,
        )?;
        let data = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.push(Tensor { shape, data });
    }
    Ok(tensors)
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Request::Infer(t) => {
                out.push(REQ_INFER);
                put_tensors(&mut out, t);
            }
            #[cfg(feature = "sandbox-probe")]
            Request::Probe(p) => {
                out.push(REQ_PROBE);
                match p {
                    Probe::OpenFile(s) => {
                        out.push(1);
                        put_text(&mut out, s);
                    }
                    Probe::ConnectTcp(s) => {
                        out.push(2);
                        put_text(&mut out, s);
                    }
                    Probe::ConnectUnix(s) => {
                        out.push(3);
                        put_text(&mut out, s);
                    }
                    Probe::Exec(s) => {
                        out.push(4);
                        put_text(&mut out, s);
                    }
                    Probe::Abort => out.push(5),
                    Probe::Hang => out.push(6),
                    Probe::Allocate(n) => {
                        out.push(7);
                        out.extend_from_slice(&n.to_le_bytes());
                    }
                    Probe::MakeExecutable => out.push(8),
                }
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Request, ProtocolError> {
        let mut c = Cursor { buf };
        let req = match c.u8()? {
            REQ_INFER => Request::Infer(get_tensors(&mut c)?),
            #[cfg(feature = "sandbox-probe")]
            REQ_PROBE => Request::Probe(match c.u8()? {
                1 => Probe::OpenFile(c.text()?),
                2 => Probe::ConnectTcp(c.text()?),
                3 => Probe::ConnectUnix(c.text()?),
                4 => Probe::Exec(c.text()?),
                5 => Probe::Abort,
                6 => Probe::Hang,
                7 => Probe::Allocate(c.u64()?),
                8 => Probe::MakeExecutable,
                k => return Err(malformed(format!("unknown probe {k}"))),
            }),
            k => return Err(malformed(format!("unknown request kind 0x{k:02x}"))),
        };
        c.end()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Response::Ready(report, signature) => {
                out.push(RESP_READY);
                put_u32(
                    &mut out,
                    u32::try_from(report.layers.len()).unwrap_or(u32::MAX),
                );
                for l in &report.layers {
                    out.push(l.layer as u8);
                    out.push(l.status as u8);
                    put_text(&mut out, &l.detail);
                }
                put_signature(&mut out, signature);
            }
            Response::Refused(s) => {
                out.push(RESP_REFUSED);
                put_text(&mut out, s);
            }
            Response::Outputs(t) => {
                out.push(RESP_OUTPUTS);
                put_tensors(&mut out, t);
            }
            Response::Error(s) => {
                out.push(RESP_ERROR);
                put_text(&mut out, s);
            }
            #[cfg(feature = "sandbox-probe")]
            Response::ProbeResult(errno) => {
                out.push(RESP_PROBE);
                out.extend_from_slice(&errno.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Response, ProtocolError> {
        let mut c = Cursor { buf };
        let resp = match c.u8()? {
            RESP_READY => {
                let n = c.u32()?;
                if n > 16 {
                    return Err(malformed("too many layers in the report"));
                }
                let mut layers = Vec::new();
                for _ in 0..n {
                    let layer = Layer::from_u8(c.u8()?).ok_or_else(|| malformed("layer"))?;
                    let status =
                        LayerStatus::from_u8(c.u8()?).ok_or_else(|| malformed("layer status"))?;
                    let detail = c.text()?;
                    layers.push(LayerReport {
                        layer,
                        status,
                        detail,
                    });
                }
                let signature = get_signature(&mut c)?;
                Response::Ready(SandboxReport { layers }, signature)
            }
            RESP_REFUSED => Response::Refused(c.text()?),
            RESP_OUTPUTS => Response::Outputs(get_tensors(&mut c)?),
            RESP_ERROR => Response::Error(c.text()?),
            #[cfg(feature = "sandbox-probe")]
            RESP_PROBE => {
                let b = c.take(4)?;
                Response::ProbeResult(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            k => return Err(malformed(format!("unknown response kind 0x{k:02x}"))),
        };
        c.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn round_trip() {
        let req = Request::Infer(vec![
            Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, -4.5]).unwrap(),
            Tensor::new(vec![], vec![7.0]).unwrap(),
        ]);
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
        let mut wire = Vec::new();
        write_frame(&mut wire, &req.encode(), MAX_FRAME_BYTES).unwrap();
        let frame = read_frame(&mut wire.as_slice(), MAX_FRAME_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(Request::decode(&frame).unwrap(), req);
    }

    #[test]
    fn ready_carries_the_signature() {
        let sig = Signature {
            inputs: vec![TensorSpec {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 4],
            }],
            outputs: vec![TensorSpec {
                name: "probabilities".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 3],
            }],
        };
        let ready = Response::Ready(SandboxReport::default(), sig);
        assert_eq!(Response::decode(&ready.encode()).unwrap(), ready);
        // A name longer than the limit, a dimension below -1, an unknown kind: refused.
        let mut m = vec![RESP_READY];
        put_u32(&mut m, 0);
        put_u32(&mut m, 1);
        m.push(0);
        put_u32(&mut m, MAX_NAME + 1);
        assert!(Response::decode(&m).is_err());
        let mut m = vec![RESP_READY];
        put_u32(&mut m, 0);
        put_signature(
            &mut m,
            &Signature {
                inputs: vec![TensorSpec {
                    name: "x".into(),
                    datatype: "FP32".into(),
                    shape: vec![-2],
                }],
                outputs: vec![],
            },
        );
        assert!(Response::decode(&m).is_err());
        let mut m = vec![RESP_READY];
        put_u32(&mut m, 0);
        put_u32(&mut m, 1);
        m.push(9);
        put_text(&mut m, "x");
        put_text(&mut m, "FP32");
        put_u32(&mut m, 0);
        assert!(Response::decode(&m).is_err());
    }

    #[test]
    fn oversized_frames_are_refused_before_allocation() {
        let wire = u32::MAX.to_le_bytes();
        let err = read_frame(&mut wire.as_slice(), MAX_FRAME_BYTES).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Oversized { len: u32::MAX, .. }),
            "{err}"
        );
        let big = vec![0u8; 1025];
        let mut out = Vec::new();
        assert!(matches!(
            write_frame(&mut out, &big, 1024),
            Err(ProtocolError::Oversized { .. })
        ));
    }

    #[test]
    fn truncated_frames_are_refused() {
        let err = read_frame(&mut [1u8, 0].as_slice(), MAX_FRAME_BYTES).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Truncated { got: 2, want: 4 }),
            "{err}"
        );
        let mut wire = 10u32.to_le_bytes().to_vec();
        wire.extend_from_slice(&[1, 2, 3]);
        let err = read_frame(&mut wire.as_slice(), MAX_FRAME_BYTES).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Truncated { got: 3, want: 10 }),
            "{err}"
        );
        assert!(read_frame(&mut [].as_slice(), MAX_FRAME_BYTES)
            .unwrap()
            .is_none());
    }

    #[test]
    fn malformed_messages_are_refused() {
        // A shape that claims more data than the message holds.
        let mut m = vec![REQ_INFER];
        put_u32(&mut m, 1);
        put_u32(&mut m, 2);
        m.extend_from_slice(&(1u64 << 40).to_le_bytes());
        m.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(Request::decode(&m).is_err());
        // Overflowing dimensions.
        let mut m = vec![REQ_INFER];
        put_u32(&mut m, 1);
        put_u32(&mut m, 2);
        m.extend_from_slice(&u64::MAX.to_le_bytes());
        m.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Request::decode(&m).is_err());
        // Too many tensors, too high a rank, trailing bytes, unknown kinds.
        let mut m = vec![REQ_INFER];
        put_u32(&mut m, MAX_TENSORS + 1);
        assert!(Request::decode(&m).is_err());
        let mut m = vec![REQ_INFER];
        put_u32(&mut m, 1);
        put_u32(&mut m, MAX_RANK + 1);
        assert!(Request::decode(&m).is_err());
        let mut m = Request::Infer(vec![]).encode();
        m.push(0);
        assert!(Request::decode(&m).is_err());
        assert!(Request::decode(&[0x55]).is_err());
        assert!(Request::decode(&[]).is_err());
        assert!(Tensor::new(vec![2, 3], vec![0.0; 5]).is_err());
    }
}
