//! Listening sockets: the `--bind` address forms, binding them, and the
//! accepted streams the event loop serves.

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::peer::ConnectionInfo;
use crate::http::proxy_protocol::ProxyHeader;
use crate::tls::{TlsFacts, TlsStream};

/// One `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// `HOST:PORT` or `[IPV6]:PORT`.
    Tcp(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: a listening socket inherited from the parent process.
    Fd(RawFd),
}

/// Why a `--bind` value is not usable.
#[derive(Debug, PartialEq, Eq)]
pub enum BindError {
    Syntax(String),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Syntax(value) => write!(
                f,
                "invalid bind address {value:?}: expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
            ),
        }
    }
}

impl std::error::Error for BindError {}

impl std::str::FromStr for BindAddress {
    type Err = BindError;

    fn from_str(value: &str) -> Result<Self, BindError> {
        let invalid = || BindError::Syntax(value.to_owned());
        if let Some(path) = value.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return if path.is_empty() {
                Err(invalid())
            } else {
                Ok(BindAddress::Unix(path.into()))
            };
        }
        if let Some(fd) = value.strip_prefix("fd://") {
            return fd.parse().map(BindAddress::Fd).map_err(|_| invalid());
        }
        let (host, port) = match value.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| invalid())?),
            None => (value, 8000),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = match host {
            "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            // Names other than localhost would need the resolver, which a
            // static binary cannot load; addresses are what servers bind anyway.
            _ => host.parse().map_err(|_| invalid())?,
        };
        Ok(BindAddress::Tcp(SocketAddr::new(ip, port)))
    }
}

impl std::fmt::Display for BindAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindAddress::Tcp(addr) => write!(f, "http://{addr}"),
            BindAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddress::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

/// How long the kernel holds a connected client that has sent nothing out of
/// the accept queue (`TCP_DEFER_ACCEPT`, tcp(7); rounded up to SYN-ACK
/// retransmissions). After that it is accepted like any other and the
/// header timeout applies.
const DEFER_ACCEPT_SECONDS: libc::c_int = 1;

/// Makes accept(2) return only clients that have sent their first bytes.
///
/// A worker decides whether to take a client from how many requests already
/// wait for its interpreters (see `crate::worker::queue_room`). A client
/// accepted before its request arrived adds nothing to that count, so the
/// worker took the next one, and the next, until every client of a
/// `Connection: close` load sat in the workers' own queues and the listen
/// backlog (the one queue all workers share) stayed empty: `ss -ltn` showed
/// 0 waiting while 64 were connected, and a newcomer waited 45-95 ms behind
/// whichever worker took it (Flask `-w 2`, 2026-12-03).
fn defer_accept_until_data(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let seconds = DEFER_ACCEPT_SECONDS;
    // SAFETY: `socket` is an open socket for the duration of the call and
    // the option value is a live c_int whose size is passed with it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A bound, listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, Option<PathBuf>),
}

impl Listener {
    /// Binds and listens. A unix socket path left over by a previous run is
    /// removed first (only if it is a socket).
    pub fn bind(address: &BindAddress, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        use socket2::{Domain, Socket, Type};
        match address {
            BindAddress::Tcp(addr) => {
                let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                if reuse_port {
                    socket.set_reuse_port(true)?;
                }
                if addr.is_ipv6() {
                    socket.set_only_v6(true)?;
                }
                socket.bind(&(*addr).into())?;
                socket.listen(backlog)?;
                defer_accept_until_data(&socket)?;
                socket.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(socket.into())))
            }
            BindAddress::Unix(path) => {
                remove_stale_socket(path)?;
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&socket2::SockAddr::unix(path)?)?;
                socket.listen(backlog)?;
                socket.set_nonblocking(true)?;
                Ok(Listener::Unix(
                    UnixListener::from_std(socket.into()),
                    Some(path.clone()),
                ))
            }
            BindAddress::Fd(fd) => {
                // SAFETY: the operator handed us this descriptor with `fd://N`
                // to use as a listening socket; nothing else in the process owns it.
                let socket = unsafe { Socket::from_raw_fd(*fd) };
                socket.set_nonblocking(true)?;
                let is_unix = socket.local_addr()?.is_unix();
                Ok(if is_unix {
                    Listener::Unix(UnixListener::from_std(socket.into()), None)
                } else {
                    defer_accept_until_data(&socket)?;
                    Listener::Tcp(TcpListener::from_std(socket.into()))
                })
            }
        }
    }

    /// The bound address as the log shows it (with the real port for port 0).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => format!("http://{addr}"),
                Err(_) => "http://?".to_owned(),
            },
            Listener::Unix(_, Some(path)) => format!("unix:{}", path.display()),
            Listener::Unix(_, None) => "unix:(inherited)".to_owned(),
        }
    }

    /// The bound TCP address (`None` for a unix socket).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// The name and port requests on this listener report without a Host.
    pub fn server_name_port(&self) -> (Arc<str>, Arc<str>) {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => (addr.ip().to_string().into(), addr.port().to_string().into()),
                Err(_) => ("".into(), "".into()),
            },
            Listener::Unix(_, path) => {
                let name = path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                (name.into(), "".into())
            }
        }
    }

    /// Accepts one connection.
    pub fn accept(&self, server: &(Arc<str>, Arc<str>)) -> io::Result<(Stream, ConnectionInfo)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept()?;
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo {
                    remote_addr: peer.ip().to_string().into(),
                    remote_port: peer.port().to_string().into(),
                    server_name: server.0.clone(),
                    server_port: server.1.clone(),
                    https: false,
                    tls: None,
                };
                Ok((Stream::Tcp(stream), info))
            }
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept()?;
                let info = ConnectionInfo {
                    remote_addr: "".into(),
                    remote_port: "".into(),
                    server_name: server.0.clone(),
                    server_port: server.1.clone(),
                    https: false,
                    tls: None,
                };
                Ok((Stream::Unix(stream), info))
            }
        }
    }

    /// Another descriptor for the same socket (for a forked worker to own).
    /// [`Listener::duplicate`] of each.
    pub fn duplicate_all(listeners: &[Listener]) -> io::Result<Vec<Listener>> {
        listeners.iter().map(Listener::duplicate).collect()
    }

    pub fn duplicate(&self) -> io::Result<Listener> {
        use std::os::fd::AsFd;
        Ok(match self {
            Listener::Tcp(listener) => {
                let owned = listener.as_fd().try_clone_to_owned()?;
                Listener::Tcp(TcpListener::from_std(std::net::TcpListener::from(owned)))
            }
            Listener::Unix(listener, path) => {
                let owned = listener.as_fd().try_clone_to_owned()?;
                let std_listener = std::os::unix::net::UnixListener::from(owned);
                Listener::Unix(UnixListener::from_std(std_listener), path.clone())
            }
        })
    }

    /// Removes the socket file of a unix listener.
    pub fn unlink(&self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl std::os::fd::AsRawFd for Listener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Listener::Tcp(listener) => listener.as_raw_fd(),
            Listener::Unix(listener, _) => listener.as_raw_fd(),
        }
    }
}

impl mio::event::Source for Listener {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interests),
            Listener::Unix(l, _) => l.register(registry, token, interests),
        }
    }
    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interests),
            Listener::Unix(l, _) => l.reregister(registry, token, interests),
        }
    }
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            Listener::Unix(l, _) => l.deregister(registry),
        }
    }
}

fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An accepted connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

/// What a connection needs of its stream beyond bytes in and out: a TCP or
/// Unix socket, TLS over TCP, or in unit tests an in-memory script.
pub trait ConnectionStream: Read + Write {
    /// Ends the sending side (after TLS's close_notify); `Ok(false)`: not
    /// yet, call again when the socket is writable.
    fn close_write(&mut self) -> io::Result<bool>;

    /// Writes what the stream holds beyond the bytes it took (TLS records);
    /// `Ok(true)` once nothing is left.
    fn send_pending(&mut self) -> io::Result<bool>;

    /// Whether a read shorter than the buffer means the socket is drained.
    fn short_read_drains(&self) -> bool;

    /// Whether the TLS handshake is still under way.
    fn is_handshaking(&self) -> bool;

    /// The TLS connection's facts, once its handshake is done.
    fn tls_facts(&self) -> Option<TlsFacts>;

    /// The PROXY header read before a TLS handshake; `None` where a PROXY
    /// header, if any, is the start of the bytes read.
    fn proxy_preamble(&self) -> Option<ProxyHeader> {
        None
    }
}

impl ConnectionStream for Stream {
    fn close_write(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
                Ok(true)
            }
            Stream::Unix(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
                Ok(true)
            }
            Stream::Tls(s) => s.close_write(),
        }
    }

    fn send_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tls(s) => s.send_pending(),
            Stream::Tcp(_) | Stream::Unix(_) => Ok(true),
        }
    }

    /// Not over TLS: a record's plaintext can be short with more queued.
    fn short_read_drains(&self) -> bool {
        !matches!(self, Stream::Tls(_))
    }

    fn is_handshaking(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.is_handshaking())
    }

    fn tls_facts(&self) -> Option<TlsFacts> {
        match self {
            Stream::Tls(s) => s.facts(),
            Stream::Tcp(_) | Stream::Unix(_) => None,
        }
    }

    fn proxy_preamble(&self) -> Option<ProxyHeader> {
        match self {
            Stream::Tls(s) => s.proxy_preamble(),
            Stream::Tcp(_) | Stream::Unix(_) => None,
        }
    }
}

impl Stream {
    /// Over TLS with `config` if a TCP stream (unix sockets stay plain, as
    /// in Gunicorn).
    /// TLS over a TCP stream; `proxy_preamble`: a PROXY header may come
    /// before the handshake.
    pub fn with_tls(
        self,
        config: &Arc<rustls::ServerConfig>,
        proxy_preamble: bool,
    ) -> Result<Stream, rustls::Error> {
        match self {
            Stream::Tcp(s) => Ok(Stream::Tls(Box::new(TlsStream::new(
                s,
                config.clone(),
                proxy_preamble,
            )?))),
            other => Ok(other),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
            Stream::Tls(s) => s.socket().register(registry, token, interests),
        }
    }
    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
            Stream::Tls(s) => s.socket().reregister(registry, token, interests),
        }
    }
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
            Stream::Tls(s) => s.socket().deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bind_forms() {
        assert_eq!(
            "127.0.0.1:9000".parse(),
            Ok(BindAddress::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:9000".parse(),
            Ok(BindAddress::Tcp("[::1]:9000".parse().unwrap()))
        );
        assert_eq!(
            ":9000".parse(),
            Ok(BindAddress::Tcp("0.0.0.0:9000".parse().unwrap()))
        );
        assert_eq!(
            "localhost:80".parse(),
            Ok(BindAddress::Tcp("127.0.0.1:80".parse().unwrap()))
        );
        assert_eq!(
            "unix:/tmp/a.sock".parse(),
            Ok(BindAddress::Unix("/tmp/a.sock".into()))
        );
        assert_eq!("fd://3".parse(), Ok(BindAddress::Fd(3)));
        assert!("example.com:80".parse::<BindAddress>().is_err());
        assert!("127.0.0.1:99999".parse::<BindAddress>().is_err());
        assert!("unix:".parse::<BindAddress>().is_err());
    }
}
