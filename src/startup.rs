//! What starting a server takes, for the arbiter and for the library's
//! [`crate::embed::Server`] alike: binding the listeners, reading the TLS
//! files, and the error that says why it could not start.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::log;
use crate::net::listener::{BindAddress, Listener};
use crate::python::app::LoadError;

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// `--chdir` names a directory that cannot be entered.
    Chdir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// An address could not be bound.
    Bind {
        /// The address.
        address: BindAddress,
        /// Why.
        error: std::io::Error,
    },
    /// A log file could not be opened.
    Log(std::io::Error),
    /// The pid file could not be written.
    PidFile(std::io::Error),
    /// A setting cannot be applied (the message names it).
    Setting(String),
    /// `--user`, `--group` or `--initgroups` names an account that cannot be looked up.
    Account(crate::process::AccountError),
    /// `--statsd-host` cannot be reached.
    Statsd(crate::metrics::statsd::StatsdError),
    /// A sandbox setting cannot be honoured.
    Sandbox(crate::sandbox::SandboxError),
    /// Another system call failed.
    Io(std::io::Error),
    /// The app could not be loaded.
    AppLoad(LoadError),
    /// TLS could not be set up (a certificate file, the key, a setting).
    Tls(crate::tls::TlsError),
    /// The app failed to load in a worker or in the preloading process:
    /// APP_MODULE names no usable callable (the line is already on stderr,
    /// written by that process). Gunicorn's `APP_LOAD_ERROR`, exit status 4.
    AppFailedToLoad,
    /// A worker or the preloading process failed to boot: the app's module
    /// could not be imported or raised (its traceback is already on
    /// stderr), ferrocorn's own setup failed, or workers kept dying before
    /// booting. Gunicorn's `WORKER_BOOT_ERROR`, exit status 3.
    WorkerBoot,
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
            ServerError::Log(error) => write!(f, "cannot open a log file: {error}"),
            ServerError::PidFile(error) => write!(f, "cannot write the pid file: {error}"),
            ServerError::Setting(message) => f.write_str(message),
            ServerError::Account(error) => write!(f, "{error}"),
            ServerError::Statsd(error) => write!(f, "{error}"),
            ServerError::Sandbox(error) => write!(f, "{error}"),
            ServerError::Io(error) => write!(f, "{error}"),
            ServerError::AppLoad(error) => write!(f, "{error}"),
            ServerError::Tls(error) => write!(f, "TLS: {error}"),
            ServerError::AppFailedToLoad => f.write_str("the app failed to load"),
            ServerError::WorkerBoot => f.write_str("a worker failed to boot"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Chdir { error, .. }
            | ServerError::Bind { error, .. }
            | ServerError::Log(error)
            | ServerError::PidFile(error)
            | ServerError::Io(error) => Some(error),
            ServerError::AppLoad(error) => Some(error),
            ServerError::Tls(error) => Some(error),
            ServerError::Account(error) => Some(error),
            ServerError::Statsd(error) => Some(error),
            ServerError::Sandbox(error) => Some(error),
            ServerError::Setting(_) | ServerError::AppFailedToLoad | ServerError::WorkerBoot => {
                None
            }
        }
    }
}

/// Binds each address, logging it as Gunicorn does.
pub(crate) fn bind_addresses(
    addresses: &[BindAddress],
    config: &Config,
) -> Result<Vec<Listener>, ServerError> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let listener =
            Listener::bind(address, config.backlog, config.reuse_port).map_err(|error| {
                ServerError::Bind {
                    address: address.clone(),
                    error,
                }
            })?;
        let mut described = listener.describe();
        if config.certfile.is_some() {
            described = described.replacen("http://", "https://", 1);
        }
        log::info(&format!(
            "Listening at: {described} ({})",
            std::process::id()
        ));
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The TLS configuration, its files read and checked (the server does not
/// start with a certificate it could not serve), or `None` without
/// --certfile.
pub(crate) fn load_tls(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    let no_effect = [
        (
            config.ssl_version.is_some(),
            "ssl_version: the TLS versions are --ssl-protocol-min to 1.3",
        ),
        (
            config.do_handshake_on_connect,
            "do_handshake_on_connect: the handshake always precedes the request",
        ),
        (
            config.suppress_ragged_eofs,
            "suppress_ragged_eofs: a close without close_notify always ends the connection",
        ),
    ];
    for (set, note) in no_effect {
        if set {
            log::info(&format!("Gunicorn's {note} (the setting has no effect)"));
        }
    }
    let settings = config
        .tls_settings()
        .map_err(|e| ServerError::Setting(e.to_string()))?;
    let Some(settings) = settings else {
        return Ok(None);
    };
    crate::tls::server_config(&settings, &mut |line| log::warning(&line))
        .map(Some)
        .map_err(ServerError::Tls)
}
