//! Strict HTTP/1.x: request heads, body framing and decoding, response heads.

pub mod body;
pub mod chunked;
pub mod date;
pub mod error;
pub mod forwarded;
pub mod framing;
pub mod head;
pub mod leniency;
pub mod proxy_protocol;
pub mod response;
pub mod rules;
pub mod syntax;
pub mod target;

pub use error::ParseError;
