//! The sandbox flags of `ferrocorn call` and `ferrocorn run` (the server
//! declares its own in `Config`, where every source reads them), and
//! running a command's work in a confined child process.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Config;
use crate::config::connect_rule::ConnectRule;
use crate::process;
use crate::sandbox::{self, PrivateTmp};

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Confine the Python code as the server's --sandbox does (README "Sandbox").
    #[arg(long)]
    sandbox: bool,

    /// With --sandbox: a path the code may read; repeatable.
    #[arg(long = "allow-read", value_name = "PATH")]
    allow_read: Vec<PathBuf>,

    /// With --sandbox: a path the code may write; repeatable.
    #[arg(long = "allow-write", value_name = "PATH")]
    allow_write: Vec<PathBuf>,

    /// With --sandbox: outbound TCP the code may open, [HOST:]PORT; repeatable.
    #[arg(long = "allow-connect", value_name = "[HOST:]PORT")]
    allow_connect: Vec<ConnectRule>,

    /// With --sandbox: an environment variable the code may see; repeatable.
    #[arg(long = "allow-env", value_name = "NAME")]
    allow_env: Vec<String>,

    /// With --sandbox: the code may start programs.
    #[arg(long = "allow-subprocess")]
    allow_subprocess: bool,

    /// With --sandbox: ctypes may be imported.
    #[arg(long = "allow-ffi")]
    allow_ffi: bool,

    /// A module the code may not import; repeatable.
    #[arg(long = "deny-module", value_name = "NAME")]
    deny_module: Vec<String>,
}

/// The flags of [`SandboxArgs`] that take a value (for commands that split
/// their own words before clap sees them).
pub const VALUE_FLAGS: &[&str] = &[
    "--allow-read",
    "--allow-write",
    "--allow-connect",
    "--allow-env",
    "--deny-module",
];

impl SandboxArgs {
    /// Puts the flags into `config` and checks them as the server does.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        config.sandbox = self.sandbox;
        config.allow_read = self.allow_read.clone();
        config.allow_write = self.allow_write.clone();
        config.allow_connect = self.allow_connect.clone();
        config.allow_env = self.allow_env.clone();
        config.allow_subprocess = self.allow_subprocess;
        config.allow_ffi = self.allow_ffi;
        config.deny_module = self.deny_module.clone();
        sandbox::check_settings(config).map_err(|error| error.to_string())
    }
}

/// Runs `work` in a child process that confines itself first (it gets the
/// private temporary directory's path); this unconfined parent waits,
/// removes the directory and returns the child's exit status (128 + the
/// signal when a signal ended it, as a shell reports it).
pub fn in_confined_child(work: impl FnOnce(&Path) -> u8) -> Result<u8, String> {
    let tmp = PrivateTmp::create(None)
        .map_err(|e| format!("cannot create the private temporary directory: {e}"))?;
    let pid =
        process::fork(|| i32::from(work(tmp.path()))).map_err(|e| format!("cannot fork: {e}"))?;
    let mut status = 0;
    // SAFETY: waiting for the child just forked, valid out-pointer.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
    drop(tmp);
    match process::exit_code(status) {
        Some(code) => Ok(code.clamp(0, 255) as u8),
        None if libc::WIFSIGNALED(status) => Ok((128 + libc::WTERMSIG(status)).min(255) as u8),
        None => Err(format!("the child {}", process::describe_exit(status))),
    }
}
