//! Using ferrocorn from Rust: load a Python WSGI app in this process and
//! call it without sockets ([`App`]), serve it over HTTP from threads of
//! this process ([`Server`]), and give it Rust functions to import
//! ([`NativeModule`]).
//!
//! ```no_run
//! use ferrocorn::Config;
//! use ferrocorn::embed::{App, NativeModule, Request, Value};
//!
//! let mut config = Config::new("plugin:application")?;
//! config.native_modules.push(
//!     NativeModule::new("host").function("answer", |_args| Ok(Value::Int(42))),
//! );
//! let app = App::load(&config)?;
//! let response = app.call(Request::get("/"))?;
//! println!("{}", response.status());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every interpreter is created on the thread that uses it and imports the
//! app itself; Python objects never cross threads.
//!
//! With `Config::sandbox`, each interpreter thread confines itself (Landlock,
//! seccomp, no capabilities) before it imports the app; the host program's
//! own threads and environment are left alone (README "Sandbox").

mod app;
mod confine;

mod request;
mod response;
mod server;

pub use crate::python::native::{NativeError, NativeErrorKind, NativeModule, Value};
pub use app::{App, CallError};
pub use request::{Request, RequestError};
pub use response::{Body, Outcome, Response};
pub use server::{OwnedListener, Server, ServerHandle};
