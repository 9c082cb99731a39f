//! Starting ferrocorn from a [`Config`]: logs, working directory, listeners
//! (bound once, in the arbiter), pid file, then the arbiter.

use crate::arbiter::Arbiter;
use crate::config::Config;
use crate::config::hooks::ARBITER_HOOKS;
use crate::log;
use crate::net::listener::{BindAddress, Listener};
use crate::process;
use crate::python::hooks::{HookArg, HookRunner, ServerFacts};
use crate::sandbox::{self, Policy, PrivateTmp};
use crate::startup::{ServerError, bind_addresses, load_tls};

/// Runs the arbiter and its forked workers until SIGTERM/SIGINT/SIGQUIT, as
/// the `ferrocorn` command does: it installs signal handlers and forks, so it
/// suits a process of its own; a program that embeds a server and keeps
/// running uses [`crate::embed::Server`].
pub fn serve(config: &Config) -> Result<(), ServerError> {
    log::set_level(config.log_level);
    log::configure(
        config.error_logfile.as_ref(),
        config.access_logfile.as_ref(),
        config.capture_output,
    )
    .map_err(ServerError::Log)?;
    for pair in &config.raw_env {
        if let Some((key, value)) = pair.split_once('=') {
            // SAFETY: the process is single-threaded here (the configuration
            // file's interpreter thread has ended); workers inherit it.
            unsafe { std::env::set_var(key, value) };
        }
    }
    if let Some(mask) = config.umask {
        // SAFETY: umask(2) only sets the process file mode mask.
        unsafe {
            libc::umask(mask as libc::mode_t);
        }
    }
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir).map_err(|error| ServerError::Chdir {
            dir: dir.clone(),
            error,
        })?;
    }
    check_sandbox(config)?;
    let tls = load_tls(config)?;
    log::info(&format!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION")));
    let hooks = HookRunner::start(config.hook_source().as_ref(), &config.hooks, ARBITER_HOOKS);
    if let Some(hooks) = &hooks {
        let server = ServerFacts {
            pid: std::process::id(),
            num_workers: config.workers as usize,
            addresses: config.binds().iter().map(ToString::to_string).collect(),
        };
        hooks.call("on_starting", vec![HookArg::Server(server)]);
    }
    let listeners = bind_all(config)?;
    if let Some(path) = &config.pidfile {
        process::write_pidfile(path).map_err(ServerError::PidFile)?;
    }
    let mut arbiter = Arbiter::new(config.clone(), listeners, tls, hooks)?;
    let result = arbiter.run();
    arbiter.clean_up(config.pidfile.as_ref());
    if result.is_ok() {
        log::info("Shutting down: Master");
    }
    result
}

/// The `--bind` addresses plus sockets passed by systemd (LISTEN_FDS).
fn bind_all(config: &Config) -> Result<Vec<Listener>, ServerError> {
    let mut addresses = systemd_sockets();
    if addresses.is_empty() || !config.bind.is_empty() {
        addresses.extend(config.binds());
    }
    bind_addresses(&addresses, config)
}

/// Socket activation (sd_listen_fds): descriptors 3.. when LISTEN_PID is us.
fn systemd_sockets() -> Vec<BindAddress> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !for_us || count <= 0 {
        return Vec::new();
    }
    // SAFETY: removing variables while no other thread reads the environment.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    (3..3 + count).map(BindAddress::Fd).collect()
}

/// `--sandbox`: the settings make sense, and this kernel can enforce them
/// (a thread confines itself and ends), so the server refuses to start
/// rather than run weaker than asked.
fn check_sandbox(config: &Config) -> Result<(), ServerError> {
    sandbox::check_settings(config).map_err(ServerError::Sandbox)?;
    if config.sandbox {
        PrivateTmp::remove_stale();
        let working_dir = std::env::current_dir().map_err(ServerError::Io)?;
        let policy = Policy::new(config, &config.sys_path(&working_dir), &working_dir);
        sandbox::preflight(&policy).map_err(|e| ServerError::Setting(e.to_string()))?;
        let key = config.keyfile.as_ref().or(config.certfile.as_ref());
        if let Some((key, open)) = key.and_then(|k| Some((k, policy.readable_path_covering(k)?))) {
            log::warning(&format!(
                "--sandbox: the app can read the TLS key {}: it is under {}, which the app may read; keep the key elsewhere",
                key.display(),
                open.display()
            ));
        }
    }
    Ok(())
}
