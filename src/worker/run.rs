//! A worker process from start to exit: interpreter threads, then the event
//! loop, then the exit code the arbiter reads.

use std::sync::Arc;
use std::time::Duration;

use super::activity::Activity;
use super::event_loop::{EventLoop, LoopOptions, Stop};
use super::exchange::{JobQueue, ReplyQueue};
use super::listener::Listener;
use super::pool::{InterpreterPool, PoolSettings};
use crate::arbiter::heartbeat::WorkerBeat;
use crate::config::Config;
use crate::log;
use crate::python::app::LoadError;
use crate::wsgi::environ::EnvironSettings;

/// The worker could not start (Gunicorn's WORKER_BOOT_ERROR).
pub const EXIT_BOOT_ERROR: i32 = 3;
/// The app could not be loaded (Gunicorn's APP_LOAD_ERROR).
pub const EXIT_APP_LOAD_ERROR: i32 = 4;

/// What a worker gets from the arbiter.
pub struct WorkerSpec {
    pub listeners: Vec<Listener>,
    pub beat: Option<WorkerBeat>,
    pub max_requests: u64,
    pub multiprocess: bool,
}

/// Runs a worker until it is told to stop; returns its exit code.
pub fn run_worker(config: &Config, spec: WorkerSpec) -> i32 {
    log::info(&format!("Booting worker with pid: {}", std::process::id()));
    let (poll, waker) = match mio::Poll::new().and_then(|poll| {
        let waker = mio::Waker::new(poll.registry(), mio::Token(usize::MAX))?;
        Ok((poll, waker))
    }) {
        Ok(pair) => pair,
        Err(error) => {
            log::error(&format!("worker cannot create its event loop: {error}"));
            return EXIT_BOOT_ERROR;
        }
    };
    let jobs = Arc::new(JobQueue::default());
    let replies = Arc::new(ReplyQueue::new(waker));
    let threads = config.threads as usize;
    let activity = Arc::new(Activity::new(threads));
    let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let settings = Arc::new(PoolSettings {
        app_spec: config.app.clone(),
        sys_path: config.sys_path(&working_dir),
        environ: EnvironSettings {
            url_scheme: "http",
            multiprocess: spec.multiprocess,
            script_name: String::new(),
        },
        // Decided once: without an access log nothing is formatted per request.
        access_format: config
            .access_logfile
            .as_ref()
            .map(|_| config.access_logformat.clone()),
    });
    let pool = match InterpreterPool::start(
        threads,
        settings,
        jobs.clone(),
        replies.clone(),
        activity.clone(),
    ) {
        Ok(pool) => pool,
        Err(error) => {
            report_load_error(&error);
            return EXIT_APP_LOAD_ERROR;
        }
    };
    if let Some(beat) = &spec.beat {
        beat.mark_booted();
    }
    log::info(&format!("Booted worker with pid: {}", std::process::id()));
    let options = LoopOptions {
        settings: config.connection_settings(),
        max_connections: config.worker_connections as usize,
        graceful_timeout: Duration::from_secs(config.graceful_timeout),
        beat: spec.beat,
        activity,
        max_requests: spec.max_requests,
    };
    let mut event_loop = match EventLoop::new(poll, spec.listeners, jobs.clone(), replies, options)
    {
        Ok(event_loop) => event_loop,
        Err(error) => {
            log::error(&format!("worker cannot start its event loop: {error}"));
            return EXIT_BOOT_ERROR;
        }
    };
    let stop = match event_loop.run() {
        Ok(stop) => stop,
        Err(error) => {
            log::error(&format!("worker event loop failed: {error}"));
            return 1;
        }
    };
    jobs.close();
    // After a graceful stop with every connection closed no request is left;
    // otherwise busy threads are not waited for: the process exits under them.
    if stop == Stop::Graceful && event_loop.connection_count() == 0 {
        pool.join();
    }
    log::info(&format!("Worker exiting (pid: {})", std::process::id()));
    0
}

/// The app's traceback (if any) and one `ferrocorn: error:` line on stderr.
pub fn report_load_error(error: &LoadError) {
    if let LoadError::Python { traceback, .. } = error {
        eprint!("{traceback}");
    }
    eprintln!("ferrocorn: error: {error}");
}
