//! ferrocorn: a Gunicorn-class WSGI server with RustPython inside, and the
//! same engine as a library.
//!
//! As a library: build a [`Config`] in code ([`Config::new`], then set its
//! fields, or [`Config::from_args`] with the command's flags), then
//!
//! - [`embed::App`] loads the app and calls it in-process, without sockets;
//! - [`embed::Server`] serves it over HTTP from threads of this process and
//!   stops gracefully through its handle;
//! - [`embed::NativeModule`] gives the Python app Rust functions to import.
//!
//! The `ferrocorn` command ([`run_command`]) adds the prefork arbiter
//! ([`serve`]) and the `call` subcommand.
//!
//! Inside, the data flows one way: socket → bytes → request head → body →
//! environ → app → response → bytes → socket: `http` is the strict HTTP/1.x
//! layer, `wsgi` the PEP 3333 bridge, `python` the interpreter, `worker` the
//! event loop and interpreter threads, `arbiter` the master process.
#![deny(missing_docs)]

mod access_log;
mod arbiter;
mod bundle;
mod cli;
mod config;
pub mod embed;
mod http;
mod log;
mod metrics;
mod net;
mod preload;
mod process;
mod python;
mod sandbox;
mod scoreboard;
mod server;
mod signals;
mod startup;
mod tls;
mod worker;
mod wsgi;

pub use access_log::AccessFormat;
pub use cli::run_command;
pub use config::connect_rule::ConnectRule;
pub use config::{Config, ConfigError};
pub use http::forwarded::{AddressList, SchemeHeaders};
pub use http::rules::UnderscoreHeaders;
pub use log::Level;
pub use net::listener::BindAddress;
pub use python::app::LoadError;
pub use server::serve;
pub use startup::ServerError;
pub use tls::{ClientCerts, MinVersion, TlsError, TlsSettings};
