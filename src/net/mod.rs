//! Sockets: the addresses the server binds, its listeners, the accepted
//! streams (plain or TLS) and what is known of each connection's peer. The
//! arbiter binds, workers and the library's server accept; neither side
//! owns this code.

pub mod listener;
pub mod peer;
