//! A worker from start to exit: interpreter threads, then the event loop.
//! A forked worker process ([`run_worker`]) and a library server thread
//! ([`crate::embed::Server`]) both boot with [`boot_worker`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::activity::Activity;
use super::connection::ConnectionSettings;
use super::deadline::{DeadlineWatcher, Interrupters};
use super::event_loop::{EventLoop, LoopOptions, Stop, StopSource};
use super::handoff::{JobQueue, ReplyQueue};
use super::pool::{InterpreterPool, MemoryLimit, PoolShared, serve_jobs};
use super::reload::FileWatcher;
use crate::config::Config;
use crate::config::hooks::WORKER_HOOKS;
use crate::log;
use crate::net::listener::Listener;
use crate::python::app::LoadError;
use crate::python::boot_stack;
use crate::python::hooks::{HookArg, HookRunner, HookSource, ServerFacts, WorkerFacts, call_hook};
use crate::python::interpreter::INTERPRETER_STACK;
use crate::sandbox::memory::{ResidentMemory, data_in_use, set_data_ceiling};
use crate::scoreboard::SharedSlot;
use crate::wsgi::boot::HostSettings;
use crate::wsgi::bridge::WsgiHost;
use rustpython_vm::signal::UserSignalSender;

/// The worker could not start (Gunicorn's WORKER_BOOT_ERROR).
pub const EXIT_BOOT_ERROR: i32 = 3;
/// The app could not be loaded (Gunicorn's APP_LOAD_ERROR).
pub const EXIT_APP_LOAD_ERROR: i32 = 4;

/// What a worker process gets from the arbiter.
pub struct WorkerSpec {
    pub listeners: Vec<Listener>,
    /// Its slots in the arbiter's shared memory (heartbeat, load, metrics).
    pub slot: Option<SharedSlot>,
    pub max_requests: u64,
    pub multiprocess: bool,
    /// Workers the arbiter started before this one (the hooks' `worker.age`).
    pub age: u64,
    /// The arbiter's worker count (the hooks' `server.num_workers`).
    pub num_workers: usize,
    /// Under `--sandbox`: the private temporary directory the arbiter made
    /// for this worker (and removes when it has ended).
    pub private_tmp: Option<std::path::PathBuf>,
    /// `--certfile`: TLS on the TCP listeners, as the arbiter loaded it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The sockets a worker serves, and the TLS on its TCP ones.
pub struct Listening {
    pub listeners: Vec<Listener>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why a worker could not start.
#[derive(Debug)]
pub enum WorkerError {
    /// The event loop could not be set up.
    EventLoop(std::io::Error),
    /// The app did not load.
    AppLoad(LoadError),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::EventLoop(error) => write!(f, "cannot start the event loop: {error}"),
            WorkerError::AppLoad(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkerError::EventLoop(error) => Some(error),
            WorkerError::AppLoad(error) => Some(error),
        }
    }
}

/// A worker with its app loaded, ready to run its loop.
pub struct BootedWorker {
    event_loop: EventLoop,
    jobs: Arc<JobQueue>,
    replies: Arc<ReplyQueue>,
    pool: InterpreterPool,
    activity: Arc<Activity>,
    /// What the interpreters share (the preloaded one serves with it).
    pool_shared: PoolShared,
    /// `--request-timeout`: ends with the worker.
    _deadlines: Option<DeadlineWatcher>,
}

/// Starts the interpreter threads (each loads the app) and sets up the loop
/// (a library server thread, see [`crate::embed::Server`]).
pub fn boot_worker(
    config: &Config,
    settings: HostSettings,
    listening: Listening,
    stop_source: StopSource,
) -> Result<BootedWorker, WorkerError> {
    let spec = Boot {
        settings,
        listening,
        slot: None,
        max_requests: 0,
        stop_source,
        memory: None,
    };
    boot(config, spec, InterpreterStart::Fresh)
}

/// What a worker boots with.
struct Boot {
    settings: HostSettings,
    listening: Listening,
    /// Its slots in the arbiter's shared memory (a worker process).
    slot: Option<SharedSlot>,
    max_requests: u64,
    stop_source: StopSource,
    memory: Option<Arc<MemoryLimit>>,
}

/// How a worker gets its interpreters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InterpreterStart {
    /// Each interpreter thread imports the app.
    Fresh,
    /// Forked from the preloading process: the interpreters beyond the
    /// inherited one, and no file watcher (the preloading process watches
    /// for `--reload`).
    BesidePreloaded,
}

fn boot(config: &Config, boot: Boot, start: InterpreterStart) -> Result<BootedWorker, WorkerError> {
    let Boot {
        settings,
        listening,
        slot,
        max_requests,
        stop_source,
        memory,
    } = boot;
    let (poll, waker) = mio::Poll::new()
        .and_then(|poll| {
            let waker = mio::Waker::new(poll.registry(), mio::Token(usize::MAX))?;
            Ok((poll, waker))
        })
        .map_err(WorkerError::EventLoop)?;
    let threads = config.threads as usize;
    let pool_shared = PoolShared {
        settings: Arc::new(settings),
        jobs: Arc::new(JobQueue::default()),
        replies: Arc::new(ReplyQueue::new(waker)),
        activity: Arc::new(Activity::new(threads)),
        interrupters: Arc::new(Interrupters::new(threads)),
        memory,
        metrics: slot.and_then(|slot| slot.metrics),
    };
    let Interpreters {
        pool_shared,
        pool,
        watcher,
    } = start_interpreters(config, pool_shared, start).map_err(WorkerError::AppLoad)?;
    let deadlines = match config.request_timeout > 0.0 {
        true => Some(watch_deadlines(config, &pool_shared).map_err(WorkerError::EventLoop)?),
        false => None,
    };
    let PoolShared {
        jobs,
        replies,
        activity,
        ..
    } = pool_shared.clone();
    let mut connection_settings = ConnectionSettings::from_config(config);
    connection_settings.metrics = slot.and_then(|slot| slot.metrics);
    let options = LoopOptions {
        settings: connection_settings,
        max_connections: config.worker_connections as usize,
        graceful_timeout: Duration::from_secs(config.graceful_timeout),
        slot,
        activity: activity.clone(),
        max_requests,
        stop_source,
        watcher,
        tls: listening.tls,
    };
    let event_loop = EventLoop::new(
        poll,
        listening.listeners,
        jobs.clone(),
        replies.clone(),
        options,
    )
    .map_err(WorkerError::EventLoop)?;
    Ok(BootedWorker {
        event_loop,
        jobs,
        replies,
        pool,
        activity,
        pool_shared,
        _deadlines: deadlines,
    })
}

/// `--request-timeout`: the watcher, which starts a fresh interpreter in the
/// slot of a thread whose request it gave up.
fn watch_deadlines(config: &Config, shared: &PoolShared) -> std::io::Result<DeadlineWatcher> {
    let replacement = shared.clone();
    super::deadline::watch(
        Duration::try_from_secs_f64(config.request_timeout).unwrap_or(Duration::MAX),
        shared.activity.clone(),
        shared.interrupters.clone(),
        shared.replies.clone(),
        Box::new(move |slot| {
            if let Err(error) = InterpreterPool::start_replacement(slot, replacement.clone()) {
                log::error(&format!("cannot start a replacement interpreter: {error}"));
            }
        }),
    )
}

/// The interpreter threads (with what they share: the settings may be the
/// `--reload` fallback's), and the `--reload` watcher that retires the
/// worker when a source file changes.
struct Interpreters {
    pool_shared: PoolShared,
    pool: InterpreterPool,
    watcher: Option<FileWatcher>,
}

fn start_interpreters(
    config: &Config,
    shared: PoolShared,
    how: InterpreterStart,
) -> Result<Interpreters, LoadError> {
    if how == InterpreterStart::BesidePreloaded {
        let pool =
            InterpreterPool::start_beside_preloaded(config.threads as usize, shared.clone())?;
        return Ok(Interpreters {
            pool_shared: shared,
            pool,
            watcher: None,
        });
    }
    let start = |shared: &PoolShared| {
        let started = InterpreterPool::start(config.threads as usize, shared.clone());
        if started.is_err() {
            // Threads that did load the app end instead of waiting for jobs.
            shared.jobs.close();
        }
        started
    };
    let extra_files = config.reload_extra_file.iter().cloned();
    match start(&shared) {
        Ok(pool) => {
            let watcher = config.reload.then(|| {
                let watcher =
                    FileWatcher::new(pool.module_files().iter().cloned().chain(extra_files));
                log::debug(&format!("--reload: watching {} files", watcher.len()));
                watcher
            });
            Ok(Interpreters {
                pool_shared: shared,
                pool,
                watcher,
            })
        }
        Err(error) if config.reload => {
            // As with Gunicorn the server stays up; requests get the error
            // rather than waiting in the backlog until the next edit.
            report_load_error(&error);
            let fallback = PoolShared {
                settings: Arc::new(HostSettings {
                    load_failure: Some(error.report()),
                    list_module_files: false,
                    ..(*shared.settings).clone()
                }),
                jobs: Arc::new(JobQueue::default()),
                ..shared
            };
            let pool = start(&fallback)?;
            // The app's modules are unknown: any source below the working
            // directory may hold the fix.
            let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
            let mut files = FileWatcher::python_files_below(&working_dir);
            files.extend(extra_files);
            let watcher = FileWatcher::new(files);
            log::error(&format!(
                "the app failed to load; --reload: answering 500 until one of {} files changes",
                watcher.len()
            ));
            Ok(Interpreters {
                pool_shared: fallback,
                pool,
                watcher: Some(watcher),
            })
        }
        Err(error) => Err(error),
    }
}

impl BootedWorker {
    /// Wakes the loop from another thread (to see a stop flag).
    pub fn waker(&self) -> Arc<ReplyQueue> {
        self.replies.clone()
    }

    /// Serves until stopped; then lets the interpreter threads finish.
    pub fn run(mut self) -> std::io::Result<Stop> {
        let stop = self.event_loop.run();
        self.jobs.close();
        if self.may_wait_for_interpreters(&stop) {
            self.pool.join();
        }
        stop
    }

    /// After a graceful stop with every connection closed no request is
    /// left; otherwise busy threads are not waited for, nor a thread whose
    /// request was given up (--request-timeout).
    fn may_wait_for_interpreters(&self, stop: &std::io::Result<Stop>) -> bool {
        stop.as_ref().is_ok_and(|s| *s == Stop::Graceful)
            && self.event_loop.connection_count() == 0
            && !self.activity.is_abandoned()
    }

    /// A worker forked from the preloading process: the inherited
    /// interpreter serves on this thread while the loop runs on a thread of
    /// its own, which ends the process with `finish(stop)`'s exit code once
    /// the loop has stopped (this thread may be stuck in a request that
    /// `--request-timeout` gave up).
    fn run_beside_preloaded(mut self, preloaded: &Preloaded, finish: Finish) -> ! {
        let (served_tx, served_rx) = std::sync::mpsc::channel::<()>();
        let pool_shared = self.pool_shared.clone();
        let control = std::thread::Builder::new()
            .name("event-loop".into())
            .spawn(move || {
                let stop = self.event_loop.run();
                self.jobs.close();
                if self.may_wait_for_interpreters(&stop) {
                    let _ = served_rx.recv();
                    self.pool.join();
                }
                std::process::exit(finish(stop))
            });
        if let Err(error) = control {
            log::error(&format!("cannot start the event loop thread: {error}"));
            std::process::exit(EXIT_BOOT_ERROR);
        }
        serve_jobs(
            0,
            preloaded.vm,
            preloaded.host,
            preloaded.interrupts.clone(),
            &pool_shared,
        );
        let _ = served_tx.send(());
        loop {
            std::thread::park();
        }
    }
}

/// Runs a worker process forked by the arbiter until it is told to stop;
/// returns its exit code.
pub fn run_worker(config: &Config, spec: WorkerSpec) -> i32 {
    run_child(config, spec, Origin::Fresh)
}

/// The interpreter a worker forked from the preloading process inherits,
/// on the thread it runs on, with what it was booted with.
pub struct Preloaded<'a> {
    pub vm: &'a rustpython_vm::VirtualMachine,
    pub host: &'a WsgiHost,
    pub interrupts: Option<UserSignalSender>,
    pub settings: &'a HostSettings,
    /// Read by the preloading process before it was confined.
    pub hook_source: Option<HookSource>,
}

/// Runs a worker forked from the preloading process (already confined
/// with it under `--sandbox`) until it is told to stop.
pub fn run_preloaded_worker(config: &Config, spec: WorkerSpec, preloaded: Preloaded) -> i32 {
    run_child(config, spec, Origin::Preloaded(preloaded))
}

/// Where a worker process comes from.
enum Origin<'a> {
    /// Forked by the arbiter: it imports the app itself.
    Fresh,
    /// Forked from the preloading process, with the app's interpreter.
    Preloaded(Preloaded<'a>),
}

/// The one path of a worker process: confined, limits set, hooks,
/// interpreters, loop, exit code.
fn run_child(config: &Config, spec: WorkerSpec, origin: Origin) -> i32 {
    let pid = std::process::id();
    match origin {
        Origin::Fresh => log::info(&format!("Booting worker with pid: {pid}")),
        Origin::Preloaded(_) => log::info(&format!(
            "Booting worker with pid: {pid} (forked from the preloaded app)"
        )),
    }
    let prepared = match prepare(config, &spec, &origin) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let booted = match &origin {
        Origin::Fresh => boot_child(config, spec, prepared, InterpreterStart::Fresh),
        // Detached from the inherited interpreter while the others boot: a
        // collection in theirs stops every attached thread, this one included.
        Origin::Preloaded(preloaded) => preloaded.vm.allow_threads(|| {
            boot_child(config, spec, prepared, InterpreterStart::BesidePreloaded)
        }),
    };
    let (worker, finish) = match booted {
        Ok(booted) => booted,
        Err(code) => return code,
    };
    match origin {
        Origin::Fresh => finish(worker.run()),
        Origin::Preloaded(preloaded) => worker.run_beside_preloaded(&preloaded, finish),
    }
}

/// A worker process confined and its limits set: ready to boot.
struct Prepared {
    settings: HostSettings,
    hook_source: Option<HookSource>,
    memory: Option<Arc<MemoryLimit>>,
}

/// Confines the process (`--sandbox`) and sets its limits; `Err` with the
/// exit code when it cannot.
fn prepare(config: &Config, spec: &WorkerSpec, origin: &Origin) -> Result<Prepared, i32> {
    let boot_error = |error: &dyn fmt::Display| {
        log::error(&format!("{error}"));
        EXIT_BOOT_ERROR
    };
    let mut prepared = match origin {
        Origin::Fresh => {
            let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
            let settings = HostSettings::from_config(config, spec.multiprocess, &working_dir);
            Prepared {
                settings,
                // Read before the sandbox cuts the environment (PYTHONPATH) and /proc.
                hook_source: config.hook_source(),
                memory: memory_limit(config).map_err(|e| boot_error(&e))?,
            }
        }
        Origin::Preloaded(preloaded) => {
            let mut settings = preloaded.settings.clone();
            settings.environ.multiprocess = spec.multiprocess;
            Prepared {
                settings,
                hook_source: preloaded.hook_source.clone(),
                // The preloading process set the ceiling; under --sandbox
                // /proc is closed already, and the arbiter watches the
                // resident size instead (it can read /proc/PID/statm).
                memory: resident_limit(config).ok().flatten(),
            }
        }
    };
    prepared.settings.worker_age = spec.age;
    if !config.sandbox {
        return Ok(prepared);
    }
    match origin {
        Origin::Fresh => {
            let Some(tmp) = &spec.private_tmp else {
                return Err(boot_error(
                    &"--sandbox: the worker has no private temporary directory",
                ));
            };
            // SAFETY: a freshly forked worker has one thread until the hooks
            // and interpreter threads start.
            prepared.settings = unsafe { prepared.settings.confine_process(config, tmp) }
                .map_err(|e| boot_error(&e))?;
        }
        // Confined with the preloading process; before any thread starts
        // (they inherit the filter), no new processes.
        Origin::Preloaded(_) => {
            crate::sandbox::deny_new_processes(config).map_err(|e| boot_error(&e))?;
        }
    }
    Ok(prepared)
}

/// What a booted worker runs once its loop has stopped: the exit hooks,
/// then its exit code.
type Finish = Box<dyn FnOnce(std::io::Result<Stop>) -> i32 + Send>;

/// Boots a prepared worker: its hooks, interpreters and loop; `Err` with
/// the exit code when it cannot.
fn boot_child(
    config: &Config,
    spec: WorkerSpec,
    prepared: Prepared,
    start: InterpreterStart,
) -> Result<(BootedWorker, Finish), i32> {
    let Prepared {
        mut settings,
        hook_source,
        memory,
    } = prepared;
    settings.dump_stack_on_abort = true;
    let hooks = WorkerHooks::start(hook_source, config, &spec);
    hooks.call("post_fork", true);
    let slot = spec.slot;
    let listening = Listening {
        listeners: spec.listeners,
        tls: spec.tls,
    };
    let boot_spec = Boot {
        settings,
        listening,
        slot,
        max_requests: spec.max_requests,
        stop_source: StopSource::Signals,
        memory: memory.clone(),
    };
    boot_stack::block_on_this_thread();
    let booted = boot(config, boot_spec, start);
    boot_stack::unblock_on_this_thread();
    let worker = booted.map_err(|error| match error {
        WorkerError::AppLoad(error) => {
            report_load_error(&error);
            load_error_exit_code(&error)
        }
        error => {
            log::error(&format!("worker {error}"));
            EXIT_BOOT_ERROR
        }
    })?;
    if let Some(memory) = &memory {
        check_booted_size(memory)?;
    }
    if let Some(slot) = &slot {
        slot.beat.mark_booted();
    }
    log::info(&format!("Booted worker with pid: {}", std::process::id()));
    hooks.call("post_worker_init", false);
    let finish: Finish = Box::new(move |stop| hooks.finish(stop));
    Ok((worker, finish))
}

/// A limit the booted app already exceeds would replace every worker after
/// its first request.
fn check_booted_size(memory: &MemoryLimit) -> Result<(), i32> {
    match memory.resident.bytes() {
        Ok(resident) if resident > memory.bytes => {
            log::error(&format!(
                "--max-worker-memory {} MB is below what the booted app takes ({} MB resident)",
                memory.bytes >> 20,
                resident >> 20
            ));
            Err(EXIT_BOOT_ERROR)
        }
        _ => Ok(()),
    }
}

/// `--max-worker-memory`: the kernel's ceiling (see [`set_memory_ceiling`])
/// and the reader of the resident size, opened while `/proc` is reachable.
fn memory_limit(config: &Config) -> Result<Option<Arc<MemoryLimit>>, MemorySettingError> {
    set_memory_ceiling(config)?;
    resident_limit(config).map_err(MemorySettingError)
}

/// `--max-worker-memory`: the reader of the resident size, with the limit.
fn resident_limit(config: &Config) -> std::io::Result<Option<Arc<MemoryLimit>>> {
    let Some(bytes) = config.worker_memory_limit() else {
        return Ok(None);
    };
    let resident = ResidentMemory::open()?;
    Ok(Some(Arc::new(MemoryLimit { resident, bytes })))
}

/// `--max-worker-memory` could not be put in place.
#[derive(Debug)]
pub struct MemorySettingError(pub std::io::Error);

impl fmt::Display for MemorySettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--max-worker-memory: {}", self.0)
    }
}

impl std::error::Error for MemorySettingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `--max-worker-memory`: RLIMIT_DATA at twice the limit, set before the
/// app is imported (nothing without the setting).
pub fn set_memory_ceiling(config: &Config) -> Result<(), MemorySettingError> {
    let Some(bytes) = config.worker_memory_limit() else {
        return Ok(());
    };
    let ceiling = bytes.saturating_mul(2);
    // What the worker holds before importing the app, plus the stacks of
    // its interpreter threads (the ceiling counts them whole).
    let needed = data_in_use().map_err(MemorySettingError)?
        + (config.threads as u64 + 1) * INTERPRETER_STACK as u64;
    if needed >= ceiling {
        return Err(MemorySettingError(std::io::Error::other(format!(
            "{} MB leaves a ceiling of {} MB of data, and the worker needs {} MB before the app is even imported",
            config.max_worker_memory,
            ceiling >> 20,
            needed >> 20
        ))));
    }
    set_data_ceiling(ceiling).map_err(MemorySettingError)
}

/// The configuration file's worker hooks, run on a thread of this worker.
struct WorkerHooks {
    runner: Option<HookRunner>,
    server: ServerFacts,
    worker: WorkerFacts,
}

impl WorkerHooks {
    fn start(source: Option<HookSource>, config: &Config, spec: &WorkerSpec) -> WorkerHooks {
        let ppid = std::os::unix::process::parent_id();
        WorkerHooks {
            runner: HookRunner::start(source.as_ref(), &config.hooks, WORKER_HOOKS),
            server: ServerFacts {
                pid: ppid,
                num_workers: spec.num_workers,
                addresses: spec.listeners.iter().map(Listener::describe).collect(),
            },
            worker: WorkerFacts {
                pid: std::process::id(),
                ppid,
                age: spec.age,
            },
        }
    }

    /// After the loop stopped: the hooks for how it stopped, then the exit code.
    fn finish(&self, stop: std::io::Result<Stop>) -> i32 {
        let code = match stop {
            Err(error) => {
                log::error(&format!("worker event loop failed: {error}"));
                1
            }
            Ok(Stop::Immediate) => {
                self.call("worker_int", false);
                0
            }
            Ok(Stop::Abort) => {
                self.call("worker_abort", false);
                1
            }
            Ok(Stop::Graceful) => 0,
        };
        log::info(&format!("Worker exiting (pid: {})", std::process::id()));
        self.call("worker_exit", true);
        code
    }

    /// Calls `name(worker)`, or `name(server, worker)` as Gunicorn does for
    /// post_fork and worker_exit.
    fn call(&self, name: &'static str, with_server: bool) {
        let mut args = Vec::new();
        if with_server {
            args.push(HookArg::Server(self.server.clone()));
        }
        args.push(HookArg::Worker(self.worker));
        call_hook(self.runner.as_ref(), name, args);
    }
}

/// How a process that could not boot its interpreter exits, as Gunicorn's
/// workers do: [`EXIT_APP_LOAD_ERROR`] when APP_MODULE names no usable
/// callable in a module that imported (Gunicorn's `AppImportError`), else
/// [`EXIT_BOOT_ERROR`]: the module not importable, the app's code raising
/// while imported, or ferrocorn's own setup (a thread, the sandbox).
pub fn load_error_exit_code(error: &LoadError) -> i32 {
    match error {
        LoadError::Spec(_) => EXIT_APP_LOAD_ERROR,
        LoadError::Import(_)
        | LoadError::Python { .. }
        | LoadError::Thread(_)
        | LoadError::Sandbox(_)
        | LoadError::NativeModules(_)
        | LoadError::Setup(_) => EXIT_BOOT_ERROR,
    }
}

/// The app's traceback (if any) and one `ferrocorn: error:` line on stderr.
pub fn report_load_error(error: &LoadError) {
    if let LoadError::Python { traceback, .. } = error {
        log::to_stderr(traceback.trim_end_matches('\n'));
    }
    log::to_stderr(&format!("ferrocorn: error: {error}"));
}
