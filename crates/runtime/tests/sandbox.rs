//! From inside the locked-down worker, opening a file, connecting a socket (TCP to
//! 127.0.0.1 and a Unix socket) and executing a program are each denied; with layers left
//! out on purpose, each remaining layer still denies them on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::os::unix::net::UnixListener;

use runtime::protocol::Probe;
use runtime::{Layer, RuntimeError, Worker};

/// Things outside the sandbox that the test process itself can reach.
struct Targets {
    _dir: tempfile::TempDir,
    file: String,
    tcp: String,
    _tcp_listener: TcpListener,
    unix: String,
    _unix_listener: UnixListener,
    program: String,
}

fn targets() -> Targets {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "weights of another model").unwrap();
    let tcp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = tcp_listener.local_addr().unwrap().to_string();
    let unix = dir.path().join("agent.sock");
    let unix_listener = UnixListener::bind(&unix).unwrap();
    // Reachable from here: a denial in the worker is the sandbox's doing.
    std::fs::File::open(&file).unwrap();
    std::net::TcpStream::connect(&tcp).unwrap();
    std::os::unix::net::UnixStream::connect(&unix).unwrap();
    let program = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap()
        .to_string();
    Targets {
        file: file.to_str().unwrap().to_string(),
        _dir: dir,
        tcp,
        _tcp_listener: tcp_listener,
        unix: unix.to_str().unwrap().to_string(),
        _unix_listener: unix_listener,
        program,
    }
}

fn probes(t: &Targets) -> Vec<(&'static str, Probe)> {
    vec![
        ("open a file", Probe::OpenFile(t.file.clone())),
        ("connect TCP to 127.0.0.1", Probe::ConnectTcp(t.tcp.clone())),
        ("connect a Unix socket", Probe::ConnectUnix(t.unix.clone())),
        ("execute a program", Probe::Exec(t.program.clone())),
    ]
}

fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

/// With every layer: each attempt is a system call outside the allow-list, and the worker
/// is killed by SIGSYS before the call runs; the parent then starts a new one.
#[test]
fn the_full_sandbox_denies_files_sockets_and_programs() {
    let t = targets();
    let w = common::spawn(common::config());
    let seccomp = common::enforced(&w, Layer::Seccomp);
    for (what, probe) in probes(&t) {
        let r = w.probe(probe);
        if seccomp {
            match r {
                Err(RuntimeError::Crashed(why)) => {
                    assert!(why.contains("SIGSYS"), "{what}: {why}");
                    eprintln!("{what}: denied, worker {why}");
                }
                other => {
                    panic!("{what}: expected the worker to be killed by seccomp, got {other:?}")
                }
            }
            w.restart().unwrap();
        } else {
            let errno = r.unwrap();
            assert_ne!(errno, 0, "{what} succeeded inside the sandbox");
            eprintln!("{what}: denied with {}", errno_name(errno));
        }
        common::assert_golden(&w);
    }
}

/// The allow-list lets mimalloc `mprotect` its arenas, never to executable: a page made
/// writable and then executable (what injected code would need) kills the worker.
#[test]
fn memory_cannot_be_made_executable() {
    let w = common::spawn(common::config());
    if !common::enforced(&w, Layer::Seccomp) {
        eprintln!("seccomp is not enforced here: nothing to check");
        return;
    }
    match w.probe(Probe::MakeExecutable) {
        Err(RuntimeError::Crashed(why)) => assert!(why.contains("SIGSYS"), "{why}"),
        other => panic!("expected the worker to be killed by seccomp, got {other:?}"),
    }
    w.restart().unwrap();
    common::assert_golden(&w);
}

/// Starts a worker without `layers`, on purpose, to see what the others do alone.
fn without(layers: &[Layer]) -> Worker {
    let mut cfg = common::config();
    cfg.allow_weaker_sandbox = true;
    cfg.test_disable_layers = layers.to_vec();
    let w = Worker::spawn(&common::iris_model(), cfg).unwrap();
    for l in layers {
        assert_eq!(
            w.sandbox_report().unwrap().get(*l).unwrap().status,
            runtime::LayerStatus::Missing
        );
    }
    w
}

/// Without seccomp, the descriptor limit (RLIMIT_NOFILE 0) refuses every new descriptor:
/// no file, no socket can even be created.
#[test]
fn without_seccomp_no_descriptor_can_be_created() {
    let t = targets();
    let w = without(&[Layer::Seccomp]);
    if !common::enforced(&w, Layer::ResourceLimits) {
        return;
    }
    for (what, probe) in probes(&t).into_iter().take(3) {
        let errno = w.probe(probe).unwrap();
        assert_eq!(errno, libc::EMFILE, "{what}: {}", errno_name(errno));
        eprintln!("{what}: {} (RLIMIT_NOFILE)", errno_name(errno));
    }
    // execve needs no new descriptor: Landlock (no execute right) stops it.
    if common::enforced(&w, Layer::Landlock) {
        let errno = w.probe(Probe::Exec(t.program.clone())).unwrap();
        assert_eq!(errno, libc::EACCES, "execve: {}", errno_name(errno));
    }
}

/// Landlock alone (no seccomp, no descriptor limit, no network namespace).
#[test]
fn landlock_alone_denies_files_programs_and_tcp() {
    let t = targets();
    let w = without(&[
        Layer::Seccomp,
        Layer::ResourceLimits,
        Layer::NetworkNamespace,
    ]);
    if !common::enforced(&w, Layer::Landlock) {
        return;
    }
    let report = w.sandbox_report().unwrap();
    let full = report.get(Layer::Landlock).unwrap().status == runtime::LayerStatus::Enforced;
    let errno = w.probe(Probe::OpenFile(t.file.clone())).unwrap();
    assert_eq!(errno, libc::EACCES, "open: {}", errno_name(errno));
    let errno = w.probe(Probe::OpenFile("/".into())).unwrap();
    assert_eq!(errno, libc::EACCES, "open /: {}", errno_name(errno));
    let errno = w.probe(Probe::Exec(t.program.clone())).unwrap();
    assert_eq!(errno, libc::EACCES, "execve: {}", errno_name(errno));
    if full {
        let errno = w.probe(Probe::ConnectTcp(t.tcp.clone())).unwrap();
        assert_eq!(errno, libc::EACCES, "TCP connect: {}", errno_name(errno));
    }
    // A Unix socket by path is not a Landlock right on this kernel: only seccomp and the
    // descriptor limit stop it. Say what happens, whatever it is.
    let errno = w.probe(Probe::ConnectUnix(t.unix.clone())).unwrap();
    eprintln!(
        "Unix socket connect with Landlock alone: {}",
        if errno == 0 {
            "allowed".to_string()
        } else {
            errno_name(errno)
        }
    );
}

/// The network namespace alone (no seccomp, no descriptor limit, no Landlock): TCP to the
/// host's loopback has no route.
#[test]
fn the_network_namespace_alone_denies_tcp() {
    let t = targets();
    let w = without(&[Layer::Seccomp, Layer::ResourceLimits, Layer::Landlock]);
    if !common::enforced(&w, Layer::NetworkNamespace) {
        return;
    }
    let errno = w.probe(Probe::ConnectTcp(t.tcp.clone())).unwrap();
    assert_eq!(
        errno,
        libc::ENETUNREACH,
        "TCP connect: {}",
        errno_name(errno)
    );
}

/// A missing layer stops the worker before it parses the model, naming the layer, unless
/// the weaker sandbox is allowed explicitly.
#[test]
fn a_missing_layer_is_refused_unless_allowed() {
    for layer in [Layer::Landlock, Layer::Seccomp, Layer::NetworkNamespace] {
        let mut cfg = common::config();
        cfg.test_disable_layers = vec![layer];
        let err = Worker::spawn(&common::iris_model(), cfg.clone())
            .err()
            .unwrap();
        match &err {
            RuntimeError::Refused(why) => {
                assert!(why.contains(layer.name()), "{why}");
                assert!(why.contains("allow_weaker_sandbox"), "{why}");
            }
            other => panic!("{layer}: expected a refusal, got {other}"),
        }
        cfg.allow_weaker_sandbox = true;
        let w = Worker::spawn(&common::iris_model(), cfg).unwrap();
        assert_eq!(
            w.sandbox_report().unwrap().get(layer).unwrap().status,
            runtime::LayerStatus::Missing
        );
        common::assert_golden(&w);
    }
}
