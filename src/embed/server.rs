//! [`Server`]: the HTTP server inside a Rust program. No fork and no signal
//! handlers (the embedding program owns its process): each of
//! `Config::workers` is a thread running one event loop with its own
//! `Config::threads` interpreter threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::confine::library_sandbox;
use crate::config::Config;
use crate::net::listener::Listener;
use crate::sandbox::PrivateTmp;
use crate::startup::{ServerError, bind_addresses};
use crate::worker::event_loop::StopSource;
use crate::worker::handoff::ReplyQueue;
use crate::worker::run::{Listening, WorkerError, boot_worker};
use crate::wsgi::boot::HostSettings;

/// Starts servers; see [`Server::start`].
#[derive(Debug)]
pub struct Server;

/// A listening socket a program hands to [`Server::start_on`].
#[derive(Debug)]
pub enum OwnedListener {
    /// A bound, listening TCP socket.
    Tcp(std::net::TcpListener),
    /// A bound, listening unix socket (its file is the program's to remove).
    Unix(std::os::unix::net::UnixListener),
}

impl From<std::net::TcpListener> for OwnedListener {
    fn from(listener: std::net::TcpListener) -> OwnedListener {
        OwnedListener::Tcp(listener)
    }
}

impl From<std::os::unix::net::UnixListener> for OwnedListener {
    fn from(listener: std::os::unix::net::UnixListener) -> OwnedListener {
        OwnedListener::Unix(listener)
    }
}

/// A running server. [`ServerHandle::stop`] stops it gracefully; dropping the
/// handle does the same.
pub struct ServerHandle {
    addresses: Vec<String>,
    tcp_addresses: Vec<SocketAddr>,
    stop_requested: Arc<AtomicBool>,
    wakers: Vec<Arc<ReplyQueue>>,
    loops: Vec<JoinHandle<()>>,
    unix_listeners: Vec<Listener>,
    /// `Config::sandbox`: each worker's, removed once the workers have stopped.
    private_tmps: Vec<PrivateTmp>,
}

impl Server {
    /// Binds `config.bind` (default `127.0.0.1:8000`; port 0 picks a free
    /// port), loads the app in every worker's interpreter threads and starts
    /// serving. Returns once every worker is ready, or with the first error.
    ///
    /// Worker timeouts, `max_requests` and user switching belong to the
    /// process arbiter of the `ferrocorn` command and do not apply here.
    ///
    /// ```no_run
    /// let mut config = ferrocorn::Config::new("examples.hello:application")?;
    /// config.bind = vec!["127.0.0.1:0".parse()?];
    /// let server = ferrocorn::embed::Server::start(&config)?;
    /// println!("serving on {}", server.tcp_addresses()[0]);
    /// server.stop();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(config: &Config) -> Result<ServerHandle, ServerError> {
        let listeners = bind_addresses(&config.binds(), config)?;
        Server::serve(config, listeners)
    }

    /// Like [`Server::start`], on sockets the program bound itself
    /// (`config.bind` is ignored). They are set non-blocking; the server owns
    /// them from here on.
    pub fn start_on(
        config: &Config,
        sockets: Vec<OwnedListener>,
    ) -> Result<ServerHandle, ServerError> {
        let mut listeners = Vec::with_capacity(sockets.len());
        for socket in sockets {
            listeners.push(match socket {
                OwnedListener::Tcp(listener) => {
                    listener.set_nonblocking(true).map_err(ServerError::Io)?;
                    Listener::Tcp(mio::net::TcpListener::from_std(listener))
                }
                OwnedListener::Unix(listener) => {
                    listener.set_nonblocking(true).map_err(ServerError::Io)?;
                    Listener::Unix(mio::net::UnixListener::from_std(listener), None)
                }
            });
        }
        Server::serve(config, listeners)
    }

    fn serve(config: &Config, listeners: Vec<Listener>) -> Result<ServerHandle, ServerError> {
        let working_dir = config
            .library_base_dir()
            .map_err(|error| match &config.chdir {
                Some(dir) => ServerError::Chdir {
                    dir: dir.clone(),
                    error,
                },
                None => ServerError::Io(error),
            })?;
        let tls = crate::startup::load_tls(config)?;
        let stop_requested = Arc::new(AtomicBool::new(false));
        let mut handle = ServerHandle {
            addresses: listeners.iter().map(Listener::describe).collect(),
            tcp_addresses: listeners.iter().filter_map(Listener::local_addr).collect(),
            stop_requested: stop_requested.clone(),
            wakers: Vec::new(),
            loops: Vec::new(),
            unix_listeners: Vec::new(),
            private_tmps: Vec::new(),
        };
        for _ in 0..config.workers.max(1) {
            let own = listeners
                .iter()
                .map(Listener::duplicate)
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServerError::Io)?;
            let settings = HostSettings::from_config(config, config.workers > 1, &working_dir);
            let (settings, private_tmp) =
                library_sandbox(config, settings).map_err(ServerError::Sandbox)?;
            handle.private_tmps.extend(private_tmp);
            // On error, dropping `handle` stops the workers already running.
            let listening = Listening {
                listeners: own,
                tls: tls.clone(),
            };
            let worker = boot_worker(
                config,
                settings,
                listening,
                StopSource::Flag(stop_requested.clone()),
            )
            .map_err(|error| match error {
                WorkerError::AppLoad(error) => ServerError::AppLoad(error),
                WorkerError::EventLoop(error) => ServerError::Io(error),
            })?;
            handle.wakers.push(worker.waker());
            let spawned = std::thread::Builder::new()
                .name("ferrocorn-loop".to_owned())
                .spawn(move || {
                    if let Err(error) = worker.run() {
                        crate::log::error(&format!("event loop failed: {error}"));
                    }
                })
                .map_err(ServerError::Io)?;
            handle.loops.push(spawned);
        }
        // The workers hold their own descriptors; unix socket files are
        // removed when the server stops.
        handle.unix_listeners = listeners
            .into_iter()
            .filter(|l| matches!(l, Listener::Unix(_, Some(_))))
            .collect();
        Ok(handle)
    }
}

impl ServerHandle {
    /// The listening addresses, as the log shows them (`http://127.0.0.1:8000`).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The TCP addresses listened on, with the real port when 0 was asked for.
    pub fn tcp_addresses(&self) -> &[SocketAddr] {
        &self.tcp_addresses
    }

    /// Stops accepting, lets requests in flight finish (up to
    /// `Config::graceful_timeout`), then returns.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop_requested.store(true, Ordering::SeqCst);
        for waker in &self.wakers {
            waker.wake();
        }
        for event_loop in self.loops.drain(..) {
            let _ = event_loop.join();
        }
        for listener in self.unix_listeners.drain(..) {
            listener.unlink();
        }
        self.private_tmps.clear();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addresses", &self.addresses)
            .field("workers", &self.loops.len())
            .finish()
    }
}
