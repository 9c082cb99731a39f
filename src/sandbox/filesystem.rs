//! The Landlock half of the sandbox: which files the app may read or write,
//! which TCP ports it may connect to (it may bind none), and that it may not
//! signal or reach abstract unix sockets of processes outside its domain.
//! ABI 6 (Linux 6.12) is the least that gives all of it; see
//! Documentation/userspace-api/landlock.rst in the kernel.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

use super::{Policy, SandboxError};

/// The Landlock ABI whose rights the policy needs: filesystem (with
/// truncation and device ioctls), TCP ports, and the signal and
/// abstract-socket scopes.
const REQUIRED_ABI: ABI = ABI::V6;

/// Restricts the calling thread, and every thread and process it starts
/// from now on, to `policy`. Landlock domains stack and cannot be left.
pub fn restrict(policy: &Policy) -> Result<(), SandboxError> {
    let all = AccessFs::from_all(REQUIRED_ABI);
    let read = AccessFs::from_read(REQUIRED_ABI);
    let unsupported = |error: landlock::RulesetError| {
        SandboxError::Unsupported(format!(
            "Landlock ABI {} or newer (Linux 6.12) is needed, {}: {error}",
            REQUIRED_ABI as i32,
            kernel_abi_description()
        ))
    };
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .and_then(|r| r.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .map_err(unsupported)?;
    let rule_error =
        |error: landlock::RulesetError| SandboxError::Setup(format!("a Landlock rule: {error}"));
    let status = created
        .add_rules(path_beneath_rules(&policy.read, read))
        .and_then(|r| r.add_rules(path_beneath_rules(&policy.write, all)))
        // Existing files only: the arbiter reopens (creates) log files
        // before it tells the workers to (USR1); no truncation.
        .and_then(|r| r.add_rules(path_beneath_rules(&policy.log_dirs, AccessFs::WriteFile)))
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                &policy.devices,
                AccessFs::ReadFile | AccessFs::WriteFile,
            ))
        })
        .and_then(|r| {
            r.add_rules(
                policy
                    .connect_ports
                    .iter()
                    .map(|&port| Ok(NetPort::new(port, AccessNet::ConnectTcp))),
            )
        })
        .map_err(rule_error)?
        .restrict_self()
        .map_err(unsupported)?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(SandboxError::Unsupported(format!(
            "Landlock could not enforce every rule ({:?}), {}",
            status.ruleset,
            kernel_abi_description()
        )));
    }
    Ok(())
}

/// "this kernel has ABI 7" / "Landlock is not enabled in this kernel".
fn kernel_abi_description() -> String {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the ABI version (or -1 with errno); it reads no memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if version >= 1 {
        format!("this kernel has ABI {version}")
    } else {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EOPNOTSUPP) => {
                "Landlock is built into this kernel but not enabled (add landlock to the lsm= boot parameter)".to_owned()
            }
            _ => "this kernel has no Landlock".to_owned(),
        }
    }
}
