//! `--preload`: a preloading process per generation of the code imports the
//! app once on its interpreter thread (then `gc.collect(); gc.freeze()`),
//! and every worker of that generation is forked from it: at start, on
//! `TTIN`, to replace one that crashed, timed out or reached
//! `--max-requests`. Workers share the imported app's pages copy-on-write
//! and are serving within milliseconds. The arbiter never runs Python: it
//! orders forks over a socket pair ([`messages`]) and supervises each
//! worker directly ([`fork`]).

mod fork;
pub mod messages;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;

use rustpython_vm::VirtualMachine;
use rustpython_vm::signal::UserSignalSender;

use self::fork::Role;
use self::messages::{ForkOrder, Report};
use crate::config::Config;
use crate::log;
use crate::net::listener::Listener;
use crate::python::hooks::HookSource;
use crate::python::interpreter::spawn_interpreter_thread;
use crate::scoreboard::SharedSlot;
use crate::signals::SignalPipe;
use crate::worker::reload::FileWatcher;
use crate::worker::run::{
    EXIT_BOOT_ERROR, Preloaded, WorkerSpec, load_error_exit_code, report_load_error,
    run_preloaded_worker, set_memory_ceiling,
};
use crate::wsgi::boot::{HostSettings, boot, module_files};
use crate::wsgi::bridge::WsgiHost;

/// How often the preloading process looks at the app's files (`--reload`).
const RELOAD_POLL_MS: libc::c_int = 1000;

/// What a forked worker takes from the arbiter, copied into the preloading
/// process when the arbiter forked it.
pub struct WorkerTemplate {
    pub listeners: Vec<Listener>,
    /// Every slot of the shared tables, by index.
    pub slots: Vec<SharedSlot>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Under `--sandbox`: the temporary directory of this generation, which
    /// its workers share (the arbiter removes it once all are gone).
    pub private_tmp: Option<PathBuf>,
}

/// A preloading process's part of the arbiter's state.
pub struct Preload {
    /// Its end of the socket pair.
    pub channel: UnixDatagram,
    /// `USR1` (set up by [`run_preloader`]).
    pub signals: Option<SignalPipe>,
    pub arbiter: libc::pid_t,
    pub template: WorkerTemplate,
}

/// Runs a preloading process (just forked from the arbiter, its user
/// switched); returns its exit code: [`load_error_exit_code`] when the app
/// did not load.
pub fn run_preloader(config: &Config, preload: Preload) -> i32 {
    log::info(&format!(
        "Preloading {} (pid: {})",
        config.app,
        std::process::id()
    ));
    let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let mut settings = HostSettings::from_config(config, config.workers > 1, &working_dir);
    // Read before the sandbox cuts the environment (PYTHONPATH).
    let hook_source = config.hook_source();
    // The workers inherit the ceiling (RLIMIT_DATA), set before the import.
    if let Err(error) = set_memory_ceiling(config) {
        log::error(&format!("{error}"));
        return EXIT_BOOT_ERROR;
    }
    if config.sandbox {
        let Some(tmp) = &preload.template.private_tmp else {
            log::error("--sandbox: the preloading process has no private temporary directory");
            return EXIT_BOOT_ERROR;
        };
        // SAFETY: a freshly forked process has one thread until the
        // interpreter thread starts below.
        settings = match unsafe { settings.confine_preloader(config, tmp) } {
            Ok(settings) => settings,
            Err(error) => {
                log::error(&format!("{error}"));
                return EXIT_BOOT_ERROR;
            }
        };
    }
    // USR1 reopens the log files, as in the arbiter and the workers.
    let signals = match SignalPipe::install(&[libc::SIGUSR1]) {
        Ok(signals) => signals,
        Err(error) => {
            log::error(&format!("preloading process: {error}"));
            return EXIT_BOOT_ERROR;
        }
    };
    let preload = Preload {
        signals: Some(signals),
        ..preload
    };
    let config = config.clone();
    // The interpreter gets the stack worker interpreters have; the workers
    // are forked from this thread, and it is the one thread they start with.
    let thread = spawn_interpreter_thread("preload".into(), move || {
        let mut preload = preload;
        preload_and_serve(&config, &settings, &mut preload, hook_source)
    });
    match thread.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => crate::process::EXIT_CHILD_PANICKED,
        Err(error) => {
            log::error(&format!("cannot start the preloading thread: {error}"));
            EXIT_BOOT_ERROR
        }
    }
}

fn preload_and_serve(
    config: &Config,
    settings: &HostSettings,
    preload: &mut Preload,
    hook_source: Option<HookSource>,
) -> i32 {
    let (interpreter, host, interrupts) = match boot(settings) {
        Ok(booted) => booted,
        Err(error) => {
            report_load_error(&error);
            return load_error_exit_code(&error);
        }
    };
    let watcher = config.reload.then(|| {
        let files = interpreter.enter(module_files);
        FileWatcher::new(
            files
                .into_iter()
                .chain(config.reload_extra_file.iter().cloned()),
        )
    });
    log::info(&format!(
        "Preloaded {} (pid: {})",
        config.app,
        std::process::id()
    ));
    if let Err(error) = preload.channel.set_nonblocking(true) {
        log::error(&format!("preloading process: {error}"));
        return EXIT_BOOT_ERROR;
    }
    if let Err(error) = messages::send(&preload.channel, &Report::Ready.encode()) {
        log::error(&format!(
            "cannot tell the arbiter the app is loaded: {error}"
        ));
        return EXIT_BOOT_ERROR;
    }
    let served = Served {
        host: &host,
        interrupts,
        settings,
        hook_source,
    };
    interpreter.enter(|vm| serve_orders(vm, config, preload, &served, watcher))
}

/// The preloaded app, as each worker inherits it.
struct Served<'a> {
    host: &'a WsgiHost,
    interrupts: Option<UserSignalSender>,
    settings: &'a HostSettings,
    hook_source: Option<HookSource>,
}

/// Forks a worker for each order until the channel fails (the arbiter is
/// gone: the death signal normally ends this process first).
fn serve_orders(
    vm: &VirtualMachine,
    config: &Config,
    preload: &mut Preload,
    served: &Served,
    mut watcher: Option<FileWatcher>,
) -> i32 {
    loop {
        let timeout = match watcher {
            Some(_) => RELOAD_POLL_MS,
            None => -1,
        };
        let signal_fd = preload.signals.as_ref().map(SignalPipe::raw_fd);
        vm.allow_threads(|| wait_readable(&preload.channel, signal_fd, timeout));
        if let Some(signals) = &mut preload.signals
            && !signals.drain().is_empty()
        {
            log::reopen();
        }
        if let Some(changed) = watcher.as_ref().and_then(|w| w.changed()) {
            let path = changed.display().to_string();
            let _ = messages::send(&preload.channel, &Report::CodeChanged { path }.encode());
            // From now on, the next change is news again.
            watcher = watcher.map(|w| FileWatcher::new(w.paths()));
        }
        loop {
            let text = match messages::receive(&preload.channel) {
                Ok(Some(text)) => text,
                Ok(None) => break,
                Err(error) => {
                    log::error(&format!(
                        "preloading process: the arbiter's channel: {error}"
                    ));
                    return 1;
                }
            };
            let Some(order) = ForkOrder::decode(&text) else {
                log::error(&format!("preloading process: unknown order {text:?}"));
                continue;
            };
            if let Role::Worker = fork::fork_worker(vm, &preload.channel, order.slot) {
                let code = become_worker(vm, config, preload, served, &order);
                std::process::exit(code);
            }
        }
    }
}

/// In the forked worker: the spec the arbiter would have given it, then
/// the worker's run, on this thread with the inherited interpreter.
fn become_worker(
    vm: &VirtualMachine,
    config: &Config,
    preload: &Preload,
    served: &Served,
    order: &ForkOrder,
) -> i32 {
    if let Some(signals) = &preload.signals {
        // Ignored until the worker's loop routes it to a pipe of its own:
        // the handler would write to this pipe's descriptor number.
        // SAFETY: SIG_IGN is a valid disposition for SIGUSR1.
        unsafe {
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        }
        signals.close_in_child();
    }
    if !fork::wait_for_arbiter(preload.arbiter) {
        return 0;
    }
    let forked = Report::Forked {
        slot: order.slot,
        pid: std::process::id() as libc::pid_t,
    };
    if let Err(error) = messages::send(&preload.channel, &forked.encode()) {
        log::error(&format!("cannot report to the arbiter: {error}"));
        return EXIT_BOOT_ERROR;
    }
    // The app must not send reports of its own.
    // SAFETY: this process's copy of the channel, never used again here
    // (the worker ends with process::exit, dropping nothing).
    unsafe {
        libc::close(preload.channel.as_raw_fd());
    }
    crate::process::set_process_name(&worker_process_name(config));
    if !crate::process::follow_parent(preload.arbiter) {
        return 0;
    }
    let template = &preload.template;
    let listeners = match Listener::duplicate_all(&template.listeners) {
        Ok(listeners) => listeners,
        Err(error) => {
            log::error(&format!("cannot share the listeners: {error}"));
            return EXIT_BOOT_ERROR;
        }
    };
    let spec = WorkerSpec {
        listeners,
        slot: template.slots.get(order.slot).copied(),
        max_requests: order.max_requests,
        multiprocess: order.num_workers > 1,
        age: order.age,
        num_workers: order.num_workers,
        private_tmp: template.private_tmp.clone(),
        tls: template.tls.clone(),
    };
    let preloaded = Preloaded {
        vm,
        host: served.host,
        interrupts: served.interrupts.clone(),
        settings: served.settings,
        hook_source: served.hook_source.clone(),
    };
    run_preloaded_worker(config, spec, preloaded)
}

/// `ferrocorn-work`, or with `--name` its own prefix.
fn worker_process_name(config: &Config) -> String {
    format!(
        "{}-work",
        config.proc_name.as_deref().unwrap_or("ferrocorn")
    )
}

/// Blocks until `socket` or the signal pipe is readable, or `timeout_ms`
/// passed (-1: forever).
fn wait_readable(socket: &UnixDatagram, signals: Option<RawFd>, timeout_ms: libc::c_int) {
    let watch = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = vec![watch(socket.as_raw_fd())];
    fds.extend(signals.map(watch));
    // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms);
    }
}
