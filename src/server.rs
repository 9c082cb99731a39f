//! Starting a worker from a [`Config`]: bind, load the app in every
//! interpreter thread, then run the event loop until stopped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::log;
use crate::python::app::LoadError;
use crate::worker::event_loop::{EventLoop, Stop};
use crate::worker::exchange::{JobQueue, ReplyQueue};
use crate::worker::listener::{BindAddress, Listener};
use crate::worker::pool::{InterpreterPool, PoolSettings};
use crate::wsgi::environ::EnvironSettings;

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    Chdir {
        dir: std::path::PathBuf,
        error: std::io::Error,
    },
    Bind {
        address: BindAddress,
        error: std::io::Error,
    },
    AppLoad(LoadError),
    EventLoop(std::io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Chdir { dir, error } => {
                write!(f, "cannot change directory to {}: {error}", dir.display())
            }
            ServerError::Bind { address, error } => {
                write!(f, "cannot listen on {address}: {error}")
            }
            ServerError::AppLoad(error) => write!(f, "{error}"),
            ServerError::EventLoop(error) => write!(f, "event loop failed: {error}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Runs the server in this process until SIGTERM/SIGINT/SIGQUIT.
pub fn serve(config: &Config) -> Result<(), ServerError> {
    log::set_level(config.log_level);
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir).map_err(|error| ServerError::Chdir {
            dir: dir.clone(),
            error,
        })?;
    }
    let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    log::info(&format!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION")));

    let mut listeners = Vec::new();
    for address in config.binds() {
        let listener =
            Listener::bind(&address, config.backlog).map_err(|error| ServerError::Bind {
                address: address.clone(),
                error,
            })?;
        log::info(&format!(
            "Listening at: {} ({})",
            listener.describe(),
            std::process::id()
        ));
        listeners.push(listener);
    }

    let poll = mio::Poll::new().map_err(ServerError::EventLoop)?;
    let waker =
        mio::Waker::new(poll.registry(), mio::Token(usize::MAX)).map_err(ServerError::EventLoop)?;
    let jobs = Arc::new(JobQueue::default());
    let replies = Arc::new(ReplyQueue::new(waker));
    let settings = Arc::new(PoolSettings {
        app_spec: config.app.clone(),
        sys_path: config.sys_path(&working_dir),
        environ: EnvironSettings {
            url_scheme: "http",
            multiprocess: false,
            script_name: String::new(),
        },
    });
    log::info(&format!(
        "Loading {} in {} interpreter threads",
        config.app, config.threads
    ));
    let pool = match InterpreterPool::start(
        config.threads as usize,
        settings,
        jobs.clone(),
        replies.clone(),
    ) {
        Ok(pool) => pool,
        Err(error) => {
            for listener in &listeners {
                listener.unlink();
            }
            return Err(ServerError::AppLoad(error));
        }
    };
    log::info(&format!("Booted worker with pid: {}", std::process::id()));

    let mut event_loop = EventLoop::new(
        poll,
        listeners,
        jobs.clone(),
        replies,
        config.connection_settings(),
        config.worker_connections as usize,
        Duration::from_secs(config.graceful_timeout),
    )
    .map_err(ServerError::EventLoop)?;
    let stop = event_loop.run().map_err(ServerError::EventLoop)?;
    event_loop.unlink_listeners();
    let event_loop_idle = event_loop.connection_count() == 0;
    jobs.close();
    // After a graceful stop with every connection closed, no request is left;
    // past the graceful timeout (or on an immediate stop) busy threads are
    // not waited for: the process exits under them.
    if stop == Stop::Graceful && event_loop_idle {
        pool.join();
    }
    log::info("Shutting down");
    Ok(())
}
