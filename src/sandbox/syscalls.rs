//! The seccomp half of the sandbox: system calls that Landlock does not
//! govern (exec, process creation, socket families, ptrace, namespaces,
//! mounts, io_uring, resource limits, file modes) fail with EPERM, which
//! Python raises as PermissionError. Filters are built with seccompiler;
//! see seccomp(2) and Documentation/userspace-api/seccomp_filter.rst.

use std::collections::BTreeMap;

use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch, sock_filter,
};

use super::SandboxError;

/// Calls no sandboxed app needs, each a way around the rest of the policy
/// or into the kernel's most exposed interfaces.
const ALWAYS_DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_uselib,
    // Limits: the new value sits behind a pointer seccomp cannot read, so
    // none may be set (prlimit64 below may still read them).
    libc::SYS_setrlimit,
    // Modes, owners and times by path: Landlock checks opening a file, not
    // these, so they could change files the app cannot open. Through a
    // descriptor (fchmod, fchown, futimens) they stay allowed.
    libc::SYS_chmod,
    libc::SYS_fchmodat,
    SYS_FCHMODAT2,
    libc::SYS_chown,
    libc::SYS_lchown,
    libc::SYS_fchownat,
    libc::SYS_utime,
    libc::SYS_utimes,
    libc::SYS_futimesat,
];

/// fchmodat2(2), Linux 6.6; not yet in every libc crate release.
const SYS_FCHMODAT2: libc::c_long = 452;

/// Starting programs: denied unless `--allow-subprocess`.
const PROGRAM_CALLS: &[libc::c_long] = &[libc::SYS_execve, libc::SYS_execveat];

/// Starting processes (clone(2) without CLONE_THREAD is the third way):
/// denied unless `--allow-subprocess`, and but for a preloading process.
const PROCESS_CALLS: &[libc::c_long] = &[libc::SYS_fork, libc::SYS_vfork];

/// Which programs and processes a confined process may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    /// Neither (the default).
    None,
    /// Copies of itself but no program: the `--preload` process, which forks
    /// the workers (each then adds [`new_process_filter`], so they cannot).
    ForksOnly,
    /// Both (`--allow-subprocess`).
    All,
}

/// Namespaces a clone(2) could create (the other routes, unshare and setns,
/// are denied outright).
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The x32 ABI's system call numbers carry this bit and share x86_64's audit
/// architecture, so a filter keyed on x86_64 numbers would not see them.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The filters for a policy, in the order they are installed.
pub fn filters(processes: Processes) -> Result<Vec<BpfProgram>, SandboxError> {
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &call in ALWAYS_DENIED {
        denied.insert(call, Vec::new());
    }
    if processes != Processes::All {
        for &call in PROGRAM_CALLS {
            denied.insert(call, Vec::new());
        }
    }
    if processes == Processes::None {
        for &call in PROCESS_CALLS {
            denied.insert(call, Vec::new());
        }
    }
    denied.insert(
        libc::SYS_clone,
        clone_rules(processes == Processes::None).map_err(build)?,
    );
    denied.insert(libc::SYS_socket, socket_rules().map_err(build)?);
    denied.insert(
        libc::SYS_socketpair,
        vec![rule(&[(0, Dword, SeccompCmpOp::Ne, libc::AF_UNIX as u64)]).map_err(build)?],
    );
    // prlimit64(pid, resource, new, old): setting (new != NULL) is denied.
    denied.insert(
        libc::SYS_prlimit64,
        vec![rule(&[(2, Qword, SeccompCmpOp::Ne, 0)]).map_err(build)?],
    );
    // utimensat(dirfd, path, times, flags): by path (path != NULL) is denied.
    denied.insert(
        libc::SYS_utimensat,
        vec![rule(&[(1, Qword, SeccompCmpOp::Ne, 0)]).map_err(build)?],
    );
    let eperm = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .map_err(build)?;
    // clone3(2) passes its flags in a struct seccomp cannot read: ENOSYS
    // makes glibc fall back to clone(2), whose flags the filter above checks.
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(build)?;
    Ok(vec![x32_guard(), compile(clone3)?, compile(eperm)?])
}

/// What a worker forked from a preloading process adds to the filters it
/// inherits ([`Processes::ForksOnly`]): no new process either.
pub fn new_process_filter() -> Result<BpfProgram, SandboxError> {
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &call in PROCESS_CALLS {
        denied.insert(call, Vec::new());
    }
    denied.insert(libc::SYS_clone, clone_rules(true).map_err(build)?);
    compile(
        SeccompFilter::new(
            denied,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            TargetArch::x86_64,
        )
        .map_err(build)?,
    )
}

fn build(error: BackendError) -> SandboxError {
    SandboxError::Setup(format!("building the seccomp filter: {error}"))
}

fn compile(filter: SeccompFilter) -> Result<BpfProgram, SandboxError> {
    BpfProgram::try_from(filter)
        .map_err(|e| SandboxError::Setup(format!("compiling the seccomp filter: {e}")))
}

use SeccompCmpArgLen::{Dword, Qword};

fn rule(
    conditions: &[(u8, SeccompCmpArgLen, SeccompCmpOp, u64)],
) -> Result<SeccompRule, BackendError> {
    let conditions = conditions
        .iter()
        .map(|(arg, len, op, value)| SeccompCondition::new(*arg, len.clone(), op.clone(), *value))
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions)
}

/// clone(flags, ...): any new namespace is denied, and with `deny_processes`
/// a new process (no CLONE_THREAD).
fn clone_rules(deny_processes: bool) -> Result<Vec<SeccompRule>, BackendError> {
    let thread = libc::CLONE_THREAD as u64;
    let mut rules = Vec::new();
    if deny_processes {
        rules.push(rule(&[(0, Qword, SeccompCmpOp::MaskedEq(thread), 0)])?);
    }
    for &flag in NAMESPACE_FLAGS {
        rules.push(rule(&[(0, Qword, SeccompCmpOp::MaskedEq(flag), flag)])?);
    }
    Ok(rules)
}

/// socket(domain, type, protocol): only TCP over IPv4 or IPv6 (Landlock
/// then checks its port). Denied: another family (unix, netlink, packet...),
/// another type (UDP, raw...), another protocol on a stream socket (SCTP,
/// MPTCP, which Landlock's TCP rules do not cover).
fn socket_rules() -> Result<Vec<SeccompRule>, BackendError> {
    let stream = libc::SOCK_STREAM as u64;
    let (nonblock, cloexec) = (libc::SOCK_NONBLOCK as u64, libc::SOCK_CLOEXEC as u64);
    Ok(vec![
        rule(&[
            (0, Dword, SeccompCmpOp::Ne, libc::AF_INET as u64),
            (0, Dword, SeccompCmpOp::Ne, libc::AF_INET6 as u64),
        ])?,
        // The type is SOCK_STREAM with the two flags it may carry.
        rule(&[
            (1, Dword, SeccompCmpOp::Ne, stream),
            (1, Dword, SeccompCmpOp::Ne, stream | nonblock),
            (1, Dword, SeccompCmpOp::Ne, stream | cloexec),
            (1, Dword, SeccompCmpOp::Ne, stream | nonblock | cloexec),
        ])?,
        rule(&[
            (2, Dword, SeccompCmpOp::Ne, 0),
            (2, Dword, SeccompCmpOp::Ne, libc::IPPROTO_TCP as u64),
        ])?,
    ])
}

/// Denies every x32 system call (ENOSYS, as on kernels without x32): four
/// classic BPF instructions, since seccompiler matches numbers, not ranges.
fn x32_guard() -> BpfProgram {
    const NR_OFFSET: u32 = 0; // offsetof(struct seccomp_data, nr)
    let statement = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, NR_OFFSET),
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        statement(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs `filters` on the calling thread (and what it starts later), or
/// with `all_threads` on every thread of the process (TSYNC).
pub fn install(filters: &[BpfProgram], all_threads: bool) -> Result<(), SandboxError> {
    for filter in filters {
        let installed = if all_threads {
            seccompiler::apply_filter_all_threads(filter)
        } else {
            seccompiler::apply_filter(filter)
        };
        installed
            .map_err(|e| SandboxError::Unsupported(format!("seccomp filters are needed: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_each_process_rule() {
        let length = |processes| -> usize {
            let programs = filters(processes).unwrap();
            assert_eq!(programs.len(), 3);
            assert_eq!(programs[0].len(), 4, "the x32 guard");
            programs.iter().map(Vec::len).sum()
        };
        // Each rule denies more than the next: its filter is longer.
        let (none, forks, all) = (
            length(Processes::None),
            length(Processes::ForksOnly),
            length(Processes::All),
        );
        assert!(none > forks && forks > all, "{none} {forks} {all}");
        assert!(!new_process_filter().unwrap().is_empty());
    }
}
