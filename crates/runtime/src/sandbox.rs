//! The worker's lockdown: each layer applied by the worker to itself, in order, before the
//! model is parsed, and a report of what each one achieved on this kernel.
//!
//! 1. [`privileges`]: `PR_SET_NO_NEW_PRIVS` (no set-uid, no file capabilities, required by
//!    Landlock and seccomp), not dumpable (no ptrace by other processes of the same user, no
//!    `/proc/PID/mem`), no core dumps (the plaintext model never reaches the disk that way).
//! 2. [`network_namespace`]: a new user and network namespace (or, as root where user
//!    namespaces are refused, a new network namespace alone): no interface but a loopback
//!    that is down, so no route anywhere, and abstract Unix sockets of the host unreachable.
//! 3. [`resource_limits`]: address space, CPU time, file size 0, no new processes.
//! 4. [`landlock`]: every filesystem right handled and none granted (no open, no execute, no
//!    create, no truncate, ...), TCP bind and connect handled and none granted, abstract Unix
//!    sockets and signals scoped to the sandbox.
//! 5. (the worker reads the model from its memfd and closes it)
//! 6. [`no_new_descriptors`]: `RLIMIT_NOFILE` 0: no descriptor can be created at all.
//! 7. [`seccomp`]: an allow-list of system calls; anything else kills the worker.

use std::collections::BTreeMap;
use std::fmt;

use landlock::{Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI};
use rustix::process::{Resource, Rlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// One layer of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Layer {
    NoNewPrivs = 1,
    NetworkNamespace = 2,
    ResourceLimits = 3,
    Landlock = 4,
    Seccomp = 5,
}

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::NoNewPrivs,
        Layer::NetworkNamespace,
        Layer::ResourceLimits,
        Layer::Landlock,
        Layer::Seccomp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::NoNewPrivs => "no-new-privs",
            Layer::NetworkNamespace => "network-namespace",
            Layer::ResourceLimits => "resource-limits",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
        }
    }

    pub fn from_name(s: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == s)
    }

    pub(crate) fn from_u8(v: u8) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| *l as u8 == v)
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a layer achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LayerStatus {
    /// In force as designed.
    Enforced = 1,
    /// In force, with less than the design asks for on this kernel (the detail says what).
    Partial = 2,
    /// Not in force.
    Missing = 3,
}

impl LayerStatus {
    pub fn name(self) -> &'static str {
        match self {
            LayerStatus::Enforced => "enforced",
            LayerStatus::Partial => "partial",
            LayerStatus::Missing => "missing",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<LayerStatus> {
        match v {
            1 => Some(LayerStatus::Enforced),
            2 => Some(LayerStatus::Partial),
            3 => Some(LayerStatus::Missing),
            _ => None,
        }
    }
}

/// One layer's outcome, with a sentence saying what is in force or what is missing and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    pub layer: Layer,
    pub status: LayerStatus,
    pub detail: String,
}

impl LayerReport {
    fn new(layer: Layer, status: LayerStatus, detail: impl Into<String>) -> LayerReport {
        LayerReport {
            layer,
            status,
            detail: detail.into(),
        }
    }
}

/// Every layer's outcome, in the order applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxReport {
    pub layers: Vec<LayerReport>,
}

impl SandboxReport {
    pub fn get(&self, layer: Layer) -> Option<&LayerReport> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// The layers not in force.
    pub fn missing(&self) -> Vec<&LayerReport> {
        self.layers
            .iter()
            .filter(|l| l.status == LayerStatus::Missing)
            .collect()
    }

    /// Every layer in force, fully or partly.
    pub fn is_complete(&self) -> bool {
        self.missing().is_empty() && self.layers.len() == Layer::ALL.len()
    }
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let status = match l.status {
                LayerStatus::Enforced => "enforced",
                LayerStatus::Partial => "partial",
                LayerStatus::Missing => "MISSING",
            };
            write!(f, "{}: {status} ({})", l.layer, l.detail)?;
        }
        Ok(())
    }
}

/// Layer 1: no new privileges, not dumpable, no core dumps.
pub fn privileges() -> LayerReport {
    let core = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let dump =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    match rustix::thread::set_no_new_privs(true) {
        Ok(()) => {
            let mut detail = String::from("no new privileges");
            detail.push_str(match dump {
                Ok(()) => ", not dumpable",
                Err(_) => ", still dumpable (prctl refused)",
            });
            detail.push_str(match core {
                Ok(()) => ", no core dumps",
                Err(_) => ", core dumps not limited (setrlimit refused)",
            });
            let status = if dump.is_ok() && core.is_ok() {
                LayerStatus::Enforced
            } else {
                LayerStatus::Partial
            };
            LayerReport::new(Layer::NoNewPrivs, status, detail)
        }
        Err(e) => LayerReport::new(
            Layer::NoNewPrivs,
            LayerStatus::Missing,
            format!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}"),
        ),
    }
}

/// Layer 2: a network namespace of the worker's own.
///
/// Must run while the worker has one thread (`unshare(CLONE_NEWUSER)` refuses otherwise).
pub fn network_namespace() -> LayerReport {
    use rustix::thread::UnshareFlags;
    // SAFETY: `unshare_unsafe` is unsafe because of `CLONE_FILES` (descriptors no longer
    // shared between threads); neither flag here touches the descriptor table, and the
    // worker has a single thread at this point.
    let both =
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNET) };
    match both {
        Ok(()) => LayerReport::new(
            Layer::NetworkNamespace,
            LayerStatus::Enforced,
            "new user and network namespaces: no capability on the host, no interface but a \
             loopback that is down",
        ),
        Err(user_err) => {
            if !rustix::process::geteuid().is_root() {
                return LayerReport::new(
                    Layer::NetworkNamespace,
                    LayerStatus::Missing,
                    format!(
                        "unshare(CLONE_NEWUSER|CLONE_NEWNET) failed ({user_err}) and the worker \
                         is not root: user namespaces are disabled on this host"
                    ),
                );
            }
            // SAFETY: as above; CLONE_NEWNET does not touch the descriptor table.
            match unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) } {
                Ok(()) => LayerReport::new(
                    Layer::NetworkNamespace,
                    LayerStatus::Enforced,
                    format!(
                        "new network namespace (no interface but a loopback that is down); no \
                         user namespace ({user_err})"
                    ),
                ),
                Err(e) => LayerReport::new(
                    Layer::NetworkNamespace,
                    LayerStatus::Missing,
                    format!("unshare(CLONE_NEWNET) failed: {e}"),
                ),
            }
        }
    }
}

/// The limits the worker sets on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `RLIMIT_AS`: the worker's whole address space, in bytes.
    pub memory_bytes: u64,
    /// `RLIMIT_CPU`: CPU seconds over the worker's life (`SIGXCPU` then).
    pub cpu_seconds: u64,
}

/// Layer 3: address space, CPU time, no file growth, no new processes.
pub fn resource_limits(limits: ResourceLimits) -> LayerReport {
    let set = |resource, soft: u64, hard: u64| {
        rustix::process::setrlimit(
            resource,
            Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            },
        )
    };
    let cpu_hard = limits.cpu_seconds.saturating_add(1);
    let steps = [
        (
            "RLIMIT_AS",
            set(Resource::As, limits.memory_bytes, limits.memory_bytes),
        ),
        (
            "RLIMIT_CPU",
            set(Resource::Cpu, limits.cpu_seconds, cpu_hard),
        ),
        ("RLIMIT_FSIZE", set(Resource::Fsize, 0, 0)),
        ("RLIMIT_NPROC", set(Resource::Nproc, 0, 0)),
    ];
    let failed: Vec<String> = steps
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    if failed.is_empty() {
        LayerReport::new(
            Layer::ResourceLimits,
            LayerStatus::Enforced,
            format!(
                "address space {} MiB, {} CPU seconds, file size 0, no new processes",
                limits.memory_bytes >> 20,
                limits.cpu_seconds
            ),
        )
    } else if failed.len() < steps.len() {
        LayerReport::new(
            Layer::ResourceLimits,
            LayerStatus::Partial,
            format!("refused: {}", failed.join(", ")),
        )
    } else {
        LayerReport::new(
            Layer::ResourceLimits,
            LayerStatus::Missing,
            format!("refused: {}", failed.join(", ")),
        )
    }
}

/// The kernel's Landlock ABI version, or the errno saying why there is none.
fn landlock_kernel_abi() -> Result<i64, i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns the ABI version; it
    // reads no memory and creates no descriptor.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(v)
    }
}

/// Layer 4: Landlock with no filesystem access and no TCP at all.
pub fn landlock() -> LayerReport {
    let abi = ABI::V6;
    let kernel = landlock_kernel_abi();
    let restricted = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self());
    let kernel_text = match kernel {
        Ok(v) => format!("kernel Landlock ABI {v}"),
        Err(libc::EOPNOTSUPP) => "Landlock is built into the kernel but not enabled (add it to \
                                  the lsm= boot parameter)"
            .to_string(),
        Err(libc::ENOSYS) => "the kernel has no Landlock".to_string(),
        Err(e) => format!("Landlock unavailable (errno {e})"),
    };
    match restricted {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => LayerReport::new(
                Layer::Landlock,
                LayerStatus::Enforced,
                format!(
                    "no filesystem access, no TCP bind or connect, abstract Unix sockets and \
                     signals scoped ({kernel_text})"
                ),
            ),
            RulesetStatus::PartiallyEnforced => LayerReport::new(
                Layer::Landlock,
                LayerStatus::Partial,
                format!(
                    "no filesystem access as far as this kernel controls it; the TCP and scope \
                     rules of ABI 6 are not all available ({kernel_text})"
                ),
            ),
            RulesetStatus::NotEnforced => {
                LayerReport::new(Layer::Landlock, LayerStatus::Missing, kernel_text)
            }
        },
        Err(e) => LayerReport::new(
            Layer::Landlock,
            LayerStatus::Missing,
            format!("{e} ({kernel_text})"),
        ),
    }
}

/// Layer 6: no descriptor can be created from now on (existing ones keep working).
pub fn no_new_descriptors() -> Result<(), String> {
    rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| format!("RLIMIT_NOFILE: {e}"))
}

/// The system calls the worker needs once locked down, found by tracing the worker under
/// the tests and the benchmark (`strace -f`): reading requests and writing responses on the
/// socket it holds, memory (never executable), random seeds for hash maps, aborting itself,
/// and exiting. The worker has one thread, so no futex, no clone.
fn allowed(pid: i32) -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let arg_is = |index: u8, value: u64| {
        SeccompRule::new(vec![SeccompCondition::new(
            index,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            value,
        )?])
    };
    let no_exec = || {
        SeccompRule::new(vec![SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        // The protocol, on descriptors already open.
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_close,
        // Memory: glibc's malloc grows the heap with brk, maps large blocks with mmap and
        // grows them with mremap; mimalloc (the `warden` binary's allocator) asks which
        // NUMA node it runs on when the machine has several.
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_getcpu,
        // Hash map seeds (std's RandomState).
        libc::SYS_getrandom,
        // abort(): unblock SIGABRT and send it to itself; signal handlers return.
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_gettid,
        libc::SYS_getpid,
        // Leaving main: std takes down the main thread's signal stack, then exits.
        libc::SYS_sigaltstack,
        libc::SYS_exit_group,
    ] {
        rules.insert(nr, vec![]);
    }
    // Mapped memory is never executable, nor made so later (mimalloc commits and decommits
    // its arenas with mprotect).
    rules.insert(libc::SYS_mmap, vec![no_exec()?]);
    rules.insert(libc::SYS_mprotect, vec![no_exec()?]);
    // Freed memory handed back to the kernel (mimalloc, and glibc's free of large blocks):
    // these two pieces of advice only, which drop a mapping's pages.
    rules.insert(
        libc::SYS_madvise,
        vec![
            arg_is(2, libc::MADV_DONTNEED as u64)?,
            arg_is(2, libc::MADV_FREE as u64)?,
        ],
    );
    // mimalloc names its mappings ("mimalloc" in /proc/PID/maps), nothing else of prctl.
    rules.insert(libc::SYS_prctl, vec![arg_is(0, libc::PR_SET_VMA as u64)?]);
    // std checks a descriptor is open before closing it (F_GETFD), nothing more.
    rules.insert(libc::SYS_fcntl, vec![arg_is(1, libc::F_GETFD as u64)?]);
    // abort() signals the worker itself, and nothing else.
    rules.insert(
        libc::SYS_tgkill,
        vec![arg_is(0, u64::from(pid.unsigned_abs()))?],
    );
    Ok(rules)
}

/// Layer 7: the seccomp allow-list; any other system call kills the worker (`SIGSYS`).
pub fn seccomp() -> LayerReport {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let arch = match TargetArch::try_from(std::env::consts::ARCH) {
        Ok(a) => a,
        Err(e) => {
            return LayerReport::new(
                Layer::Seccomp,
                LayerStatus::Missing,
                format!("no seccomp filter for {}: {e}", std::env::consts::ARCH),
            )
        }
    };
    let program: Result<BpfProgram, String> = allowed(pid)
        .and_then(|rules| {
            SeccompFilter::new(
                rules,
                SeccompAction::KillProcess,
                SeccompAction::Allow,
                arch,
            )
        })
        .map_err(|e| e.to_string())
        .and_then(|f| BpfProgram::try_from(f).map_err(|e| e.to_string()));
    let program = match program {
        Ok(p) => p,
        Err(e) => {
            return LayerReport::new(
                Layer::Seccomp,
                LayerStatus::Missing,
                format!("the filter could not be built: {e}"),
            )
        }
    };
    let count = program.len();
    match seccompiler::apply_filter(&program) {
        Ok(()) => LayerReport::new(
            Layer::Seccomp,
            LayerStatus::Enforced,
            format!(
                "allow-list of {} system calls ({count} BPF instructions); any other kills the \
                 worker",
                allowed(pid).map(|r| r.len()).unwrap_or(0)
            ),
        ),
        Err(e) => LayerReport::new(
            Layer::Seccomp,
            LayerStatus::Missing,
            format!("the kernel refused the filter: {e}"),
        ),
    }
}
