//! The worker process: takes its two descriptors, locks itself down, loads the model and
//! answers requests until the parent closes the socket.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

use rustix::fs::SealFlags;

use crate::engine::Engine;
use crate::protocol::{self, Request, Response};
use crate::sandbox::{self, Layer, LayerReport, LayerStatus, ResourceLimits, SandboxReport};

/// The descriptor the sealed model memfd arrives on.
pub const MODEL_FD: i32 = 3;
/// The descriptor of the worker's end of the socket pair.
pub const SOCKET_FD: i32 = 4;

/// Exit codes of the worker.
const EXIT_USAGE: u8 = 2;
const EXIT_REFUSED: u8 = 3;
const EXIT_PROTOCOL: u8 = 4;

/// The worker's settings, from its command line (written by [`crate::Worker`]).
#[derive(Debug, Clone)]
pub(crate) struct ChildConfig {
    pub limits: ResourceLimits,
    pub max_frame_bytes: u32,
    pub allow_weaker_sandbox: bool,
    /// Layers not applied, to test the others alone (feature `sandbox-probe` only).
    pub disabled: Vec<Layer>,
}

impl ChildConfig {
    pub(crate) fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--memory-bytes".into(),
            self.limits.memory_bytes.to_string().into(),
            "--cpu-seconds".into(),
            self.limits.cpu_seconds.to_string().into(),
            "--max-frame-bytes".into(),
            self.max_frame_bytes.to_string().into(),
        ];
        if self.allow_weaker_sandbox {
            args.push("--allow-weaker-sandbox".into());
        }
        for l in &self.disabled {
            args.push("--test-disable-layer".into());
            args.push(l.name().into());
        }
        args
    }

    fn parse(args: impl Iterator<Item = OsString>) -> Result<ChildConfig, String> {
        let mut cfg = ChildConfig {
            limits: ResourceLimits {
                memory_bytes: 0,
                cpu_seconds: 0,
            },
            max_frame_bytes: protocol::MAX_FRAME_BYTES,
            allow_weaker_sandbox: false,
            disabled: Vec::new(),
        };
        let mut args = args.map(|a| a.into_string().unwrap_or_default());
        let mut seen_memory = false;
        let mut seen_cpu = false;
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            let number = |name: &str, v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name}: not a number: {v:?}"))
            };
            match a.as_str() {
                "--memory-bytes" => {
                    cfg.limits.memory_bytes = number(&a, value(&a)?)?;
                    seen_memory = true;
                }
                "--cpu-seconds" => {
                    cfg.limits.cpu_seconds = number(&a, value(&a)?)?;
                    seen_cpu = true;
                }
                "--max-frame-bytes" => {
                    let v = number(&a, value(&a)?)?;
                    cfg.max_frame_bytes = u32::try_from(v)
                        .ok()
                        .filter(|v| *v <= protocol::MAX_FRAME_BYTES)
                        .ok_or_else(|| format!("--max-frame-bytes: {v} is above the maximum"))?;
                }
                "--allow-weaker-sandbox" => cfg.allow_weaker_sandbox = true,
                #[cfg(feature = "sandbox-probe")]
                "--test-disable-layer" => {
                    let v = value(&a)?;
                    cfg.disabled
                        .push(Layer::from_name(&v).ok_or_else(|| format!("unknown layer {v:?}"))?);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if !seen_memory || !seen_cpu {
            return Err("--memory-bytes and --cpu-seconds are required".into());
        }
        Ok(cfg)
    }

    fn skip(&self, layer: Layer) -> Option<LayerReport> {
        self.disabled.contains(&layer).then(|| LayerReport {
            layer,
            status: LayerStatus::Missing,
            detail: "disabled for a test".into(),
        })
    }
}

/// The worker's entry point: `warden-runtime-worker ARGS` now, a hidden subcommand of
/// `warden` later. `args` are the arguments after the program (or subcommand) name.
///
/// It expects the sealed model memfd on descriptor 3 and its socket on descriptor 4, as
/// [`crate::Worker`] arranges them, and must be called before anything else in the process
/// starts a thread.
pub fn worker_main(args: impl Iterator<Item = OsString>) -> ExitCode {
    let cfg = match ChildConfig::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warden-runtime-worker: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => ExitCode::from(code),
    }
}

fn run(cfg: &ChildConfig) -> Result<(), u8> {
    let (model, mut sock) = take_descriptors()?;
    let fail = |sock: &mut File, resp: Response, code: u8| {
        // The parent may already be gone; the exit code still tells.
        let _ = protocol::write_frame(sock, &resp.encode(), protocol::MAX_FRAME_BYTES);
        code
    };

    // The lockdown, in order (see sandbox.rs). Nothing of the model is parsed before it.
    let mut report = SandboxReport::default();
    let step = |report: &mut SandboxReport, layer: Layer, f: &dyn Fn() -> LayerReport| {
        report.layers.push(cfg.skip(layer).unwrap_or_else(f));
    };
    step(&mut report, Layer::NoNewPrivs, &sandbox::privileges);
    step(
        &mut report,
        Layer::NetworkNamespace,
        &sandbox::network_namespace,
    );
    step(&mut report, Layer::ResourceLimits, &|| {
        sandbox::resource_limits(cfg.limits)
    });
    step(&mut report, Layer::Landlock, &sandbox::landlock);

    // Read the model out of the memfd (a descriptor already open: no filesystem access).
    let bytes = match read_model(&model) {
        Ok(b) => b,
        Err(e) => return Err(fail(&mut sock, Response::Error(e), EXIT_REFUSED)),
    };
    drop(model);

    if !cfg.disabled.contains(&Layer::ResourceLimits) {
        if let Err(e) = sandbox::no_new_descriptors() {
            if let Some(l) = report
                .layers
                .iter_mut()
                .find(|l| l.layer == Layer::ResourceLimits)
            {
                l.status = LayerStatus::Partial;
                l.detail.push_str(&format!("; {e}"));
            }
        }
    }
    step(&mut report, Layer::Seccomp, &sandbox::seccomp);

    let missing = report.missing();
    if !missing.is_empty() && !cfg.allow_weaker_sandbox {
        let names: Vec<String> = missing
            .iter()
            .map(|l| format!("{} ({})", l.layer, l.detail))
            .collect();
        let msg = format!(
            "sandbox layer(s) missing: {}; refusing to load the model (set \
             allow_weaker_sandbox to run with a weaker sandbox)",
            names.join("; ")
        );
        return Err(fail(&mut sock, Response::Refused(msg), EXIT_REFUSED));
    }

    // Only now is the model parsed.
    let engine = match Engine::load(&bytes) {
        Ok(e) => e,
        Err(e) => return Err(fail(&mut sock, Response::Error(e), EXIT_REFUSED)),
    };
    drop(bytes);
    if protocol::write_frame(
        &mut sock,
        &Response::Ready(report, engine.signature().clone()).encode(),
        cfg.max_frame_bytes,
    )
    .is_err()
    {
        return Err(EXIT_PROTOCOL);
    }
    serve(&engine, &mut sock, cfg.max_frame_bytes)
}

/// Takes ownership of descriptors 3 and 4 after checking they are what the parent promised,
/// and closes every other descriptor above 2.
fn take_descriptors() -> Result<(File, File), u8> {
    // Close everything but stdin, stdout, stderr and our two descriptors, whatever leaked in.
    // SAFETY: close_range only closes descriptors; none above SOCKET_FD is owned by anything
    // in this process (nothing has run yet but the runtime's start-up).
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            (SOCKET_FD + 1) as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
    let check = |fd: i32, want: rustix::fs::FileType| -> Result<OwnedFd, u8> {
        // SAFETY: the fd is only borrowed for fstat.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match rustix::fs::fstat(borrowed) {
            Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == want => {
                // SAFETY: fd is open (fstat succeeded), was placed there for this process by
                // its parent, and nothing else in the process owns it.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
            _ => {
                eprintln!(
                    "warden-runtime-worker: descriptor {fd} is not the expected {want:?}; this \
                     program is started by warden"
                );
                Err(EXIT_USAGE)
            }
        }
    };
    let model = check(MODEL_FD, rustix::fs::FileType::RegularFile)?;
    let sock = check(SOCKET_FD, rustix::fs::FileType::Socket)?;
    let need = SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK;
    match rustix::fs::fcntl_get_seals(&model) {
        Ok(seals) if seals.contains(need) => {}
        _ => {
            eprintln!("warden-runtime-worker: the model descriptor is not a sealed memfd");
            return Err(EXIT_USAGE);
        }
    }
    Ok((File::from(model), File::from(sock)))
}

fn read_model(model: &File) -> Result<Vec<u8>, String> {
    let len = model
        .metadata()
        .map_err(|e| format!("model descriptor: {e}"))?
        .len();
    let len = usize::try_from(len).map_err(|_| "model too large".to_string())?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| format!("{len} bytes of model do not fit in the memory limit"))?;
    bytes.resize(len, 0);
    model
        .read_exact_at(&mut bytes, 0)
        .map_err(|e| format!("reading the model: {e}"))?;
    Ok(bytes)
}

fn serve(engine: &Engine, sock: &mut File, limit: u32) -> Result<(), u8> {
    loop {
        let frame = match protocol::read_frame(sock, limit) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                // The stream cannot be resynchronised: say why and stop.
                let _ = protocol::write_frame(
                    sock,
                    &Response::Error(format!("frame refused: {e}")).encode(),
                    limit,
                );
                return Err(EXIT_PROTOCOL);
            }
        };
        let response = match Request::decode(&frame) {
            Ok(Request::Infer(inputs)) => match engine.run(inputs) {
                Ok(outputs) => Response::Outputs(outputs),
                Err(e) => Response::Error(e),
            },
            #[cfg(feature = "sandbox-probe")]
            Ok(Request::Probe(p)) => probe::run(&p),
            Err(e) => Response::Error(format!("request refused: {e}")),
        };
        drop(frame);
        let mut payload = response.encode();
        if payload.len() > limit as usize {
            payload = Response::Error(format!(
                "the response ({} bytes) is larger than the frame limit ({limit} bytes)",
                payload.len()
            ))
            .encode();
        }
        if protocol::write_frame(sock, &payload, limit).is_err() {
            return Err(EXIT_PROTOCOL);
        }
    }
}

#[cfg(feature = "sandbox-probe")]
mod probe {
    use std::io;

    use crate::protocol::{Probe, Response};

    fn errno<T>(r: io::Result<T>) -> Response {
        Response::ProbeResult(match r {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        })
    }

    pub(super) fn run(p: &Probe) -> Response {
        match p {
            Probe::OpenFile(path) => errno(std::fs::File::open(path)),
            Probe::ConnectTcp(addr) => match addr.parse::<std::net::SocketAddr>() {
                Ok(a) => errno(std::net::TcpStream::connect(a)),
                Err(_) => Response::ProbeResult(libc::EINVAL),
            },
            Probe::ConnectUnix(path) => errno(std::os::unix::net::UnixStream::connect(path)),
            Probe::Exec(path) => {
                let Ok(c) = std::ffi::CString::new(path.as_bytes()) else {
                    return Response::ProbeResult(libc::EINVAL);
                };
                let argv = [c.as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                // SAFETY: argv and envp are NULL-terminated arrays of valid C strings that
                // outlive the call; on success execve does not return.
                unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
                errno::<()>(Err(io::Error::last_os_error()))
            }
            Probe::Abort => std::process::abort(),
            Probe::Hang => loop {
                std::hint::black_box(0u64);
            },
            Probe::Allocate(n) => {
                let n = usize::try_from(*n).unwrap_or(usize::MAX);
                // An infallible allocation, as an engine makes them: beyond the limit, the
                // worker aborts.
                let v = vec![1u8; n];
                Response::ProbeResult(i32::from(std::hint::black_box(v.last().copied()).is_none()))
            }
            Probe::MakeExecutable => {
                const PAGE: usize = 4096;
                // SAFETY: a fresh private anonymous mapping, used only through these calls
                // and unmapped before returning.
                unsafe {
                    let p = libc::mmap(
                        std::ptr::null_mut(),
                        PAGE,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    );
                    if p == libc::MAP_FAILED {
                        return errno::<()>(Err(io::Error::last_os_error()));
                    }
                    let r = libc::mprotect(p, PAGE, libc::PROT_READ | libc::PROT_EXEC);
                    let result = if r == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    };
                    libc::munmap(p, PAGE);
                    errno(result)
                }
            }
        }
    }
}
