//! What is known of one accepted connection: the peer's and the listener's
//! addresses and, over TLS, the handshake's facts.

use std::sync::Arc;

use crate::tls::TlsFacts;

/// Addresses of one connection, formatted once when it is accepted.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote_addr: Arc<str>,
    pub remote_port: Arc<str>,
    /// Name and port of the listening socket (SERVER_NAME/PORT without a Host).
    pub server_name: Arc<str>,
    pub server_port: Arc<str>,
    /// The request came over https: our TLS, or to a trusted proxy
    /// (`wsgi.url_scheme`).
    pub https: bool,
    /// Our TLS connection's facts (set once its handshake is done).
    pub tls: Option<Arc<TlsFacts>>,
}
