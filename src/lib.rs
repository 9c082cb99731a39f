//! ferrocorn: a WSGI server with RustPython inside.
//!
//! The data flows one way: socket → bytes → request head → body → environ →
//! app → response → bytes → socket. [`http`] is the strict HTTP/1.x layer,
//! [`wsgi`] the PEP 3333 bridge, [`python`] the interpreter, [`worker`] the
//! event loop and interpreter threads, [`arbiter`] the master process that
//! forks and supervises workers, [`server`] puts them together.

pub mod access_log;
pub mod arbiter;
pub mod config;
pub mod http;
pub mod log;
pub mod python;
pub mod server;
pub mod signals;
pub mod worker;
pub mod wsgi;

pub use config::Config;
pub use server::{ServerError, serve};
