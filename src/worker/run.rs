//! A worker from start to exit: interpreter threads, then the event loop.
//! A forked worker process ([`run_worker`]) and a library server thread
//! ([`crate::embed::Server`]) both boot with [`boot_worker`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::activity::Activity;
use super::event_loop::{EventLoop, LoopOptions, Stop, StopSource};
use super::exchange::{JobQueue, ReplyQueue};
use super::listener::Listener;
use super::pool::InterpreterPool;
use super::reload::FileWatcher;
use crate::arbiter::SharedSlot;
use crate::config::Config;
use crate::config::hooks::WORKER_HOOKS;
use crate::log;
use crate::python::app::LoadError;
use crate::python::hooks::{HookArg, HookRunner, ServerFacts, WorkerFacts, call_hook};
use crate::wsgi::boot::HostSettings;

/// The worker could not start (Gunicorn's WORKER_BOOT_ERROR).
pub const EXIT_BOOT_ERROR: i32 = 3;
/// The app could not be loaded (Gunicorn's APP_LOAD_ERROR).
pub const EXIT_APP_LOAD_ERROR: i32 = 4;

/// What a worker process gets from the arbiter.
pub struct WorkerSpec {
    pub listeners: Vec<Listener>,
    pub shared: Option<SharedSlot>,
    pub max_requests: u64,
    pub multiprocess: bool,
    /// Workers the arbiter started before this one (the hooks' `worker.age`).
    pub age: u64,
    /// The arbiter's worker count (the hooks' `server.num_workers`).
    pub num_workers: usize,
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

/// A worker with its app loaded, ready to run its loop.
pub struct BootedWorker {
    event_loop: EventLoop,
    jobs: Arc<JobQueue>,
    replies: Arc<ReplyQueue>,
    pool: InterpreterPool,
}

/// Starts the interpreter threads (each loads the app) and sets up the loop.
pub fn boot_worker(
    config: &Config,
    settings: HostSettings,
    listeners: Vec<Listener>,
    shared: Option<SharedSlot>,
    max_requests: u64,
    stop_source: StopSource,
) -> Result<BootedWorker, WorkerError> {
    let (poll, waker) = mio::Poll::new()
        .and_then(|poll| {
            let waker = mio::Waker::new(poll.registry(), mio::Token(usize::MAX))?;
            Ok((poll, waker))
        })
        .map_err(WorkerError::EventLoop)?;
    let replies = Arc::new(ReplyQueue::new(waker));
    let activity = Arc::new(Activity::new(config.threads as usize));
    let Interpreters {
        jobs,
        pool,
        watcher,
    } = start_interpreters(config, settings, &replies, &activity).map_err(WorkerError::AppLoad)?;
    let options = LoopOptions {
        settings: config.connection_settings(),
        max_connections: config.worker_connections as usize,
        graceful_timeout: Duration::from_secs(config.graceful_timeout),
        shared,
        activity,
        max_requests,
        stop_source,
        watcher,
    };
    let event_loop = EventLoop::new(poll, listeners, jobs.clone(), replies.clone(), options)
        .map_err(WorkerError::EventLoop)?;
    Ok(BootedWorker {
        event_loop,
        jobs,
        replies,
        pool,
    })
}

/// The interpreter threads, the queue they take jobs from, and the
/// `--reload` watcher that retires the worker when a source file changes.
struct Interpreters {
    jobs: Arc<JobQueue>,
    pool: InterpreterPool,
    watcher: Option<FileWatcher>,
}

fn start_interpreters(
    config: &Config,
    settings: HostSettings,
    replies: &Arc<ReplyQueue>,
    activity: &Arc<Activity>,
) -> Result<Interpreters, LoadError> {
    let start = |settings: HostSettings| {
        let jobs = Arc::new(JobQueue::default());
        let started = InterpreterPool::start(
            config.threads as usize,
            Arc::new(settings),
            jobs.clone(),
            replies.clone(),
            activity.clone(),
        );
        if started.is_err() {
            // Threads that did load the app end instead of waiting for jobs.
            jobs.close();
        }
        started.map(|pool| (jobs, pool))
    };
    let extra_files = config.reload_extra_file.iter().cloned();
    match start(settings.clone()) {
        Ok((jobs, pool)) => {
            let watcher = config.reload.then(|| {
                let watcher =
                    FileWatcher::new(pool.module_files().iter().cloned().chain(extra_files));
                log::debug(&format!("--reload: watching {} files", watcher.len()));
                watcher
            });
            Ok(Interpreters {
                jobs,
                pool,
                watcher,
            })
        }
        Err(error) if config.reload => {
            // As with Gunicorn the server stays up; requests get the error
            // rather than waiting in the backlog until the next edit.
            report_load_error(&error);
            let (jobs, pool) = start(HostSettings {
                load_failure: Some(error.report()),
                list_module_files: false,
                ..settings
            })?;
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
                jobs,
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
        // After a graceful stop with every connection closed no request is
        // left; otherwise busy threads are not waited for.
        if stop.as_ref().is_ok_and(|s| *s == Stop::Graceful)
            && self.event_loop.connection_count() == 0
        {
            self.pool.join();
        }
        stop
    }
}

/// Runs a worker process until it is told to stop; returns its exit code.
pub fn run_worker(config: &Config, spec: WorkerSpec) -> i32 {
    log::info(&format!("Booting worker with pid: {}", std::process::id()));
    let hooks = WorkerHooks::start(config, &spec);
    hooks.call("post_fork", true);
    let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let mut settings = HostSettings::from_config(config, spec.multiprocess, &working_dir);
    settings.worker_age = spec.age;
    let shared = spec.shared;
    let beat = shared.map(|slot| slot.beat);
    let worker = match boot_worker(
        config,
        settings,
        spec.listeners,
        shared,
        spec.max_requests,
        StopSource::Signals,
    ) {
        Ok(worker) => worker,
        Err(WorkerError::AppLoad(error)) => {
            report_load_error(&error);
            return EXIT_APP_LOAD_ERROR;
        }
        Err(error) => {
            log::error(&format!("worker {error}"));
            return EXIT_BOOT_ERROR;
        }
    };
    if let Some(beat) = &beat {
        beat.mark_booted();
    }
    log::info(&format!("Booted worker with pid: {}", std::process::id()));
    hooks.call("post_worker_init", false);
    let code = match worker.run() {
        Err(error) => {
            log::error(&format!("worker event loop failed: {error}"));
            1
        }
        Ok(Stop::Immediate) => {
            hooks.call("worker_int", false);
            0
        }
        Ok(Stop::Abort) => {
            hooks.call("worker_abort", false);
            1
        }
        Ok(Stop::Graceful) => 0,
    };
    log::info(&format!("Worker exiting (pid: {})", std::process::id()));
    hooks.call("worker_exit", true);
    code
}

/// The configuration file's worker hooks, run on a thread of this worker.
struct WorkerHooks {
    runner: Option<HookRunner>,
    server: ServerFacts,
    worker: WorkerFacts,
}

impl WorkerHooks {
    fn start(config: &Config, spec: &WorkerSpec) -> WorkerHooks {
        let ppid = std::os::unix::process::parent_id();
        WorkerHooks {
            runner: HookRunner::start(config.hook_source().as_ref(), &config.hooks, WORKER_HOOKS),
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

/// The app's traceback (if any) and one `ferrocorn: error:` line on stderr.
pub fn report_load_error(error: &LoadError) {
    if let LoadError::Python { traceback, .. } = error {
        eprint!("{traceback}");
    }
    eprintln!("ferrocorn: error: {error}");
}
