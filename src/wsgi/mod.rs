//! The PEP 3333 bridge: environ, wsgi.input/errors, start_response and the
//! app's response iteration.

pub mod boot;
pub mod bridge;
pub mod environ;
pub mod error_stream;
pub mod headers;
pub mod input;
pub mod outcome;
pub mod request_hooks;
pub mod sink;
pub mod start_response;
