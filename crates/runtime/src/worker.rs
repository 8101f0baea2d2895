//! The parent side: starts a worker, hands it the model, sends it requests, and kills and
//! restarts it when it crashes, hangs or breaks the protocol.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::fs::{MemfdFlags, SealFlags};

use crate::child::{ChildConfig, MODEL_FD, SOCKET_FD};
use crate::protocol::{self, ProtocolError, Request, Response, Signature, Tensor};
#[cfg(feature = "sandbox-probe")]
use crate::sandbox::Layer;
use crate::sandbox::{ResourceLimits, SandboxReport};

/// Bounds on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_AS` of the worker: its whole address space (code, heap, model, tensors).
    pub memory_bytes: u64,
    /// `RLIMIT_CPU` of the worker, over its whole life; it is restarted when it runs out.
    pub cpu_seconds: u64,
    /// How long one request may take, round trip, before the worker is killed.
    pub request_timeout: Duration,
    /// How long the worker may take to lock down and load the model.
    pub start_timeout: Duration,
    /// The largest frame either side accepts (at most [`protocol::MAX_FRAME_BYTES`]).
    pub max_frame_bytes: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 1 << 30,
            cpu_seconds: 3600,
            request_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            max_frame_bytes: protocol::MAX_FRAME_BYTES,
        }
    }
}

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The program to run: `warden-runtime-worker`, or later `warden` itself.
    pub program: PathBuf,
    /// Arguments before the worker's own (for `warden`, its hidden subcommand).
    pub args: Vec<OsString>,
    pub limits: Limits,
    /// Run even when a sandbox layer is missing on this kernel (reported, never silent).
    pub allow_weaker_sandbox: bool,
    /// The first wait before an automatic restart after a failure; it doubles with each
    /// failure in a row, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Layers the worker leaves out, to test the others alone.
    #[cfg(feature = "sandbox-probe")]
    pub test_disable_layers: Vec<Layer>,
}

impl WorkerConfig {
    pub fn new(program: impl Into<PathBuf>) -> WorkerConfig {
        WorkerConfig {
            program: program.into(),
            args: Vec::new(),
            limits: Limits::default(),
            allow_weaker_sandbox: false,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            #[cfg(feature = "sandbox-probe")]
            test_disable_layers: Vec::new(),
        }
    }

    fn child_config(&self) -> ChildConfig {
        ChildConfig {
            limits: ResourceLimits {
                memory_bytes: self.limits.memory_bytes,
                cpu_seconds: self.limits.cpu_seconds,
            },
            max_frame_bytes: self.limits.max_frame_bytes.min(protocol::MAX_FRAME_BYTES),
            allow_weaker_sandbox: self.allow_weaker_sandbox,
            #[cfg(feature = "sandbox-probe")]
            disabled: self.test_disable_layers.clone(),
            #[cfg(not(feature = "sandbox-probe"))]
            disabled: Vec::new(),
        }
    }
}

/// Why a request or a start failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("could not start the worker: {0}")]
    Spawn(io::Error),
    #[error("the worker refused to start: {0}")]
    Refused(String),
    #[error("the worker could not load the model: {0}")]
    Load(String),
    #[error("the worker did not answer within {0:?} and was killed")]
    Timeout(Duration),
    #[error("the worker died: {0}")]
    Crashed(String),
    #[error("the worker broke the protocol ({0}) and was killed")]
    Protocol(String),
    #[error("request refused: {0}")]
    BadRequest(String),
    #[error("{0}")]
    Inference(String),
    #[error("the worker is not running; the next start is allowed in {0:?}")]
    Unavailable(Duration),
    #[error("model descriptor: {0}")]
    Memfd(io::Error),
}

struct Live {
    child: Child,
    stream: UnixStream,
}

struct Inner {
    live: Option<Live>,
    report: Option<SandboxReport>,
    signature: Option<Signature>,
    /// Failures in a row (reset by a request that succeeds).
    failures: u32,
    next_start: Option<Instant>,
    restarts: u64,
}

/// A sandboxed worker process serving one model.
pub struct Worker {
    config: WorkerConfig,
    /// The sealed memfd holding the model: handed to every worker started, never on disk.
    model: OwnedFd,
    inner: Mutex<Inner>,
}

impl Worker {
    /// Puts `model` in a sealed memfd and starts a worker on it; returns once the worker is
    /// locked down and has loaded the model.
    pub fn spawn(model: &[u8], config: WorkerConfig) -> Result<Worker, RuntimeError> {
        let model = sealed_memfd(model).map_err(RuntimeError::Memfd)?;
        let worker = Worker {
            config,
            model,
            inner: Mutex::new(Inner {
                live: None,
                report: None,
                signature: None,
                failures: 0,
                next_start: None,
                restarts: 0,
            }),
        };
        {
            let mut inner = worker.lock();
            let (live, report, signature) = worker.start()?;
            inner.live = Some(live);
            inner.report = Some(report);
            inner.signature = Some(signature);
        }
        Ok(worker)
    }

    /// What each sandbox layer achieved in the current (or last) worker.
    pub fn sandbox_report(&self) -> Option<SandboxReport> {
        self.lock().report.clone()
    }

    /// The model's inputs and outputs, as the worker read them from the model.
    pub fn signature(&self) -> Option<Signature> {
        self.lock().signature.clone()
    }

    /// The worker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().live.as_ref().map(|l| l.child.id())
    }

    /// How many times a worker was started again after the first.
    pub fn restarts(&self) -> u64 {
        self.lock().restarts
    }

    /// Runs the model. A worker that crashes, hangs past the timeout or breaks the protocol
    /// is killed and this request fails; the next request starts a new worker once the
    /// back-off has passed (or call [`Worker::restart`]).
    pub fn infer(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let payload = Request::Infer(inputs.to_vec()).encode();
        match self.exchange(&payload)? {
            Response::Outputs(t) => Ok(t),
            Response::Error(e) => Err(RuntimeError::Inference(e)),
            other => Err(self.protocol_violation(&format!("unexpected response {other:?}"))),
        }
    }

    /// Stops the current worker, if any, and starts a new one now (no back-off).
    pub fn restart(&self) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        if let Some(live) = inner.live.take() {
            reap(live, Duration::ZERO);
        }
        self.start_into(&mut inner)
    }

    /// Stops the worker: closes its socket, lets it exit (killing it after a second), and
    /// says how it ended. A worker that was killed, or exited with an error, is an error.
    pub fn shutdown(self) -> Result<(), RuntimeError> {
        let live = self.lock().live.take();
        let Some(live) = live else {
            return Ok(());
        };
        let _ = live.stream.shutdown(std::net::Shutdown::Both);
        match reap(live, Duration::from_secs(1)) {
            Some(status) if status.success() => Ok(()),
            status => Err(RuntimeError::Crashed(describe(status))),
        }
    }

    /// Sends a test-only probe and returns the errno the worker saw (0: it succeeded).
    #[cfg(feature = "sandbox-probe")]
    pub fn probe(&self, probe: protocol::Probe) -> Result<i32, RuntimeError> {
        match self.exchange(&Request::Probe(probe).encode())? {
            Response::ProbeResult(e) => Ok(e),
            other => Err(self.protocol_violation(&format!("unexpected response {other:?}"))),
        }
    }

    /// Writes raw bytes (not framed) to the worker, then closes the parent's writing half
    /// if `end_stream`, and reads one response frame.
    #[cfg(feature = "sandbox-probe")]
    pub fn send_raw(&self, bytes: &[u8], end_stream: bool) -> Result<Response, RuntimeError> {
        let mut inner = self.lock();
        if end_stream {
            if let Some(live) = inner.live.as_mut() {
                send_all(&live.stream, bytes).map_err(|e| RuntimeError::Protocol(e.to_string()))?;
                let _ = live.stream.shutdown(std::net::Shutdown::Write);
            }
            return self.round_trip(&mut inner, &[]);
        }
        self.round_trip(&mut inner, bytes)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves nothing half-done that matters here.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn protocol_violation(&self, what: &str) -> RuntimeError {
        let mut inner = self.lock();
        if let Some(live) = inner.live.take() {
            reap(live, Duration::ZERO);
        }
        self.note_failure(&mut inner);
        RuntimeError::Protocol(what.to_string())
    }

    fn note_failure(&self, inner: &mut Inner) {
        inner.failures = inner.failures.saturating_add(1);
        let exp = inner.failures.saturating_sub(1).min(16);
        let wait = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.config.max_backoff);
        inner.next_start = Some(Instant::now() + wait);
    }

    fn start_into(&self, inner: &mut Inner) -> Result<(), RuntimeError> {
        match self.start() {
            Ok((live, report, signature)) => {
                inner.live = Some(live);
                inner.report = Some(report);
                inner.signature = Some(signature);
                inner.restarts += 1;
                inner.next_start = None;
                Ok(())
            }
            Err(e) => {
                self.note_failure(inner);
                Err(e)
            }
        }
    }

    /// Frames `payload`, sends it and reads the answer, starting a worker first if none runs
    /// and the back-off allows.
    fn exchange(&self, payload: &[u8]) -> Result<Response, RuntimeError> {
        let limit = self.config.limits.max_frame_bytes;
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        if len > limit {
            return Err(RuntimeError::BadRequest(
                ProtocolError::Oversized { len, limit }.to_string(),
            ));
        }
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(payload);
        let mut inner = self.lock();
        if inner.live.is_none() {
            let now = Instant::now();
            match inner.next_start {
                Some(at) if at > now => return Err(RuntimeError::Unavailable(at - now)),
                _ => self.start_into(&mut inner)?,
            }
        }
        self.round_trip(&mut inner, &frame)
    }

    fn round_trip(&self, inner: &mut Inner, bytes: &[u8]) -> Result<Response, RuntimeError> {
        let timeout = self.config.limits.request_timeout;
        let limit = self.config.limits.max_frame_bytes;
        let Some(live) = inner.live.as_mut() else {
            return Err(RuntimeError::Unavailable(Duration::ZERO));
        };
        let deadline = Instant::now() + timeout;
        let result = live
            .stream
            .set_write_timeout(Some(timeout))
            .and_then(|()| send_all(&live.stream, bytes))
            .map_err(ProtocolError::Io)
            .and_then(|()| {
                protocol::read_frame(
                    &mut DeadlineReader {
                        stream: &live.stream,
                        deadline,
                    },
                    limit,
                )
            });
        let failure = match result {
            Ok(Some(frame)) => match Response::decode(&frame) {
                Ok(resp) => {
                    if matches!(resp, Response::Outputs(_)) {
                        inner.failures = 0;
                    }
                    return Ok(resp);
                }
                Err(e) => RuntimeError::Protocol(e.to_string()),
            },
            Err(ProtocolError::Io(e)) if is_timeout(&e) => RuntimeError::Timeout(timeout),
            Err(ProtocolError::Oversized { len, limit }) => RuntimeError::Protocol(format!(
                "a frame of {len} bytes, above the limit of {limit}"
            )),
            // The stream ended or broke: the worker is gone or going.
            Ok(None) | Err(_) => RuntimeError::Crashed(String::new()),
        };
        let live = inner.live.take();
        self.note_failure(inner);
        match failure {
            RuntimeError::Crashed(_) => {
                let status = live.map(|l| reap(l, Duration::from_secs(2)));
                Err(RuntimeError::Crashed(describe(status.flatten())))
            }
            other => {
                if let Some(l) = live {
                    reap(l, Duration::ZERO);
                }
                Err(other)
            }
        }
    }

    /// Starts a worker process and waits for it to lock down and load the model.
    fn start(&self) -> Result<(Live, SandboxReport, Signature), RuntimeError> {
        let (parent_end, child_end) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| RuntimeError::Spawn(e.into()))?;
        let mut cmd = Command::new(&self.config.program);
        cmd.args(&self.config.args)
            .args(self.config.child_config().to_args())
            .env_clear()
            .envs(crate::allocator::WORKER_ENV.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let model_fd = self.model.as_raw_fd();
        let sock_fd = child_end.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (fcntl, dup2), allocating nothing.
        unsafe {
            cmd.pre_exec(move || place_descriptors(model_fd, sock_fd));
        }
        let mut child = cmd.spawn().map_err(RuntimeError::Spawn)?;
        drop(child_end);
        if let Some(stderr) = child.stderr.take() {
            forward_stderr(stderr, child.id());
        }
        let stream = UnixStream::from(parent_end);
        let live = Live { child, stream };
        let timeout = self.config.limits.start_timeout;
        let deadline = Instant::now() + timeout;
        let first = protocol::read_frame(
            &mut DeadlineReader {
                stream: &live.stream,
                deadline,
            },
            self.config.limits.max_frame_bytes,
        );
        let failure = match first {
            Ok(Some(frame)) => match Response::decode(&frame) {
                Ok(Response::Ready(report, signature)) => return Ok((live, report, signature)),
                Ok(Response::Refused(why)) => RuntimeError::Refused(why),
                Ok(Response::Error(why)) => RuntimeError::Load(why),
                Ok(other) => RuntimeError::Protocol(format!("unexpected first message {other:?}")),
                Err(e) => RuntimeError::Protocol(e.to_string()),
            },
            Err(ProtocolError::Io(e)) if is_timeout(&e) => RuntimeError::Timeout(timeout),
            Ok(None) | Err(_) => {
                let status = reap(live, Duration::from_secs(2));
                return Err(RuntimeError::Crashed(format!(
                    "{} while starting",
                    describe(status)
                )));
            }
        };
        let _ = live.stream.shutdown(std::net::Shutdown::Both);
        reap(live, Duration::from_secs(2));
        Err(failure)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut inner = self.lock();
        if let Some(live) = inner.live.take() {
            // Closing the socket ends the worker's loop; a stuck one is killed.
            let _ = live.stream.shutdown(std::net::Shutdown::Both);
            reap(live, Duration::from_millis(200));
        }
    }
}

/// Copies the model into a memfd and seals it: no one, the parent included, can change,
/// grow or shrink it afterwards, and the worker checks the seals before reading it.
fn sealed_memfd(model: &[u8]) -> io::Result<OwnedFd> {
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create("warden-model", base | MemfdFlags::NOEXEC_SEAL)
        .or_else(|_| rustix::fs::memfd_create("warden-model", base))?;
    let mut file = File::from(fd);
    file.write_all(model)?;
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK,
    )?;
    Ok(fd)
}

/// In the forked child, before exec: the model on descriptor 3 and the socket on 4, both
/// inherited (no close-on-exec). Every other descriptor of the parent is close-on-exec or
/// closed by the worker at start.
fn place_descriptors(model_fd: i32, sock_fd: i32) -> io::Result<()> {
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // First move both out of the way (to 10 or above), so that neither is overwritten by
    // the other's dup2 whatever numbers they had.
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) and dup2 on descriptors this process holds; both are
    // async-signal-safe.
    unsafe {
        let m = check(libc::fcntl(model_fd, libc::F_DUPFD_CLOEXEC, 10))?;
        let s = check(libc::fcntl(sock_fd, libc::F_DUPFD_CLOEXEC, 10))?;
        check(libc::dup2(m, MODEL_FD))?;
        check(libc::dup2(s, SOCKET_FD))?;
    }
    Ok(())
}

/// Copies the worker's diagnostics to the parent's stderr, line by line, prefixed with its
/// pid; overlong lines are cut.
fn forward_stderr(stderr: std::process::ChildStderr, pid: u32) {
    let spawned = std::thread::Builder::new()
        .name(format!("worker-{pid}-stderr"))
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.by_ref().take(4096).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        eprintln!("warden-runtime-worker[{pid}]: {}", text.trim_end());
                    }
                }
            }
        });
    // Without the thread the pipe fills and the worker blocks on its next diagnostic;
    // that is a hang the request timeout handles.
    drop(spawned);
}

/// Waits up to `grace` for the worker to exit, then kills it; returns how it ended.
fn reap(mut live: Live, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match live.child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) => {
                let _ = live.child.kill();
                return live.child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

/// How a worker ended, in words.
fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "its exit status is unknown".into();
    };
    if let Some(sig) = status.signal() {
        let why = match sig {
            libc::SIGSYS => "SIGSYS: a system call outside the seccomp allow-list",
            libc::SIGABRT => {
                "SIGABRT: it aborted, for example on an allocation beyond its memory limit"
            }
            libc::SIGXCPU => "SIGXCPU: it used up its CPU time limit",
            libc::SIGSEGV => "SIGSEGV: an invalid memory access",
            libc::SIGBUS => "SIGBUS",
            libc::SIGKILL => "SIGKILL",
            _ => "",
        };
        if why.is_empty() {
            format!("killed by signal {sig}")
        } else {
            format!("killed by signal {sig} ({why})")
        }
    } else {
        match status.code() {
            Some(c) => format!("exited with code {c}"),
            None => "ended".into(),
        }
    }
}

/// Writes all of `bytes` with `MSG_NOSIGNAL`: a worker that died gives `EPIPE`, never a
/// `SIGPIPE` that would end the parent.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(stream, bytes, rustix::net::SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads from the socket, failing with `TimedOut` once the deadline has passed.
struct DeadlineReader<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&*self.stream).read(buf)
    }
}
