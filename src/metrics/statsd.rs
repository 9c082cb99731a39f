//! Gunicorn's statsd instrumentation (`--statsd-host`, `--statsd-prefix`,
//! `--dogstatsd-tags`) with Gunicorn's metric names, so dashboards built
//! for Gunicorn keep working: `gunicorn.requests`, `gunicorn.request.duration`,
//! `gunicorn.request.status.<code>` per request, `gunicorn.workers` when the
//! count changes, `gunicorn.log.<level>` per warning, error or critical line.
//!
//! The socket is made and connected by the arbiter before it forks, so
//! workers (sandboxed or not) only ever send on it. Sends never block and a
//! lost datagram is not reported: UDP is what keeps a slow or absent statsd
//! from holding a request up, as in Gunicorn.

use std::fmt::Write as _;
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

/// statsd's usual port, when `--statsd-host` names none (as Gunicorn).
const DEFAULT_PORT: u16 = 8125;

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// A connected statsd client.
pub struct Statsd {
    socket: Socket,
    /// `--statsd-prefix` with one trailing dot, or empty.
    prefix: String,
    /// `|#` and `--dogstatsd-tags`, or empty.
    tags: String,
}

static CLIENT: OnceLock<Statsd> = OnceLock::new();

/// Makes `client` the process's (and its future workers') statsd client.
pub fn install(client: Statsd) {
    let _ = CLIENT.set(client);
}

/// The process's statsd client, once installed.
pub fn client() -> Option<&'static Statsd> {
    CLIENT.get()
}

/// A line was logged at `level` (warning, error, critical): Gunicorn's
/// `gunicorn.log.<level>` counter.
pub fn on_log(level: &str) {
    if let Some(client) = client() {
        client.increment(&format!("gunicorn.log.{level}"));
    }
}

/// Why `--statsd-host` could not be used.
#[derive(Debug)]
pub struct StatsdError {
    pub host: String,
    pub error: io::Error,
}

impl std::fmt::Display for StatsdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--statsd-host {}: {}", self.host, self.error)
    }
}

impl std::error::Error for StatsdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl Statsd {
    /// Connects to `host` (`HOST[:PORT]`, or `unix:PATH` for a datagram
    /// socket), as `--statsd-host` takes it.
    pub fn connect(host: &str, prefix: &str, tags: &str) -> Result<Statsd, StatsdError> {
        let problem = |error: io::Error| StatsdError {
            host: host.to_owned(),
            error,
        };
        let socket = if let Some(path) = host.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let socket = UnixDatagram::unbound().map_err(problem)?;
            socket.connect(path).map_err(problem)?;
            socket.set_nonblocking(true).map_err(problem)?;
            Socket::Unix(socket)
        } else {
            let address = resolve(host).map_err(problem)?;
            let local = if address.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local).map_err(problem)?;
            socket.connect(address).map_err(problem)?;
            socket.set_nonblocking(true).map_err(problem)?;
            Socket::Udp(socket)
        };
        Ok(Statsd {
            socket,
            prefix: normalize_prefix(prefix),
            tags: match tags {
                "" => String::new(),
                tags => format!("|#{tags}"),
            },
        })
    }

    /// One request's three metrics, in one datagram (statsd, DogStatsD,
    /// Telegraf and statsd_exporter all read a line per metric).
    pub fn request(&self, status: u16, duration: Duration) {
        let mut lines = String::with_capacity(160);
        let millis = duration.as_secs_f64() * 1000.0;
        let (prefix, tags) = (&self.prefix, &self.tags);
        let _ = write!(
            lines,
            "{prefix}gunicorn.request.duration:{millis:.3}|ms{tags}\n\
             {prefix}gunicorn.requests:1|c|@1.0{tags}\n\
             {prefix}gunicorn.request.status.{status}:1|c|@1.0{tags}"
        );
        self.send(lines.as_bytes());
    }

    pub fn gauge(&self, name: &str, value: u64) {
        let line = format!("{}{name}:{value}|g{}", self.prefix, self.tags);
        self.send(line.as_bytes());
    }

    pub fn increment(&self, name: &str) {
        let line = format!("{}{name}:1|c|@1.0{}", self.prefix, self.tags);
        self.send(line.as_bytes());
    }

    fn send(&self, datagram: &[u8]) {
        let _ = match &self.socket {
            Socket::Udp(socket) => socket.send(datagram),
            Socket::Unix(socket) => socket.send(datagram),
        };
    }
}

fn resolve(host: &str) -> io::Result<std::net::SocketAddr> {
    let with_port = match host.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() && !host.ends_with(']') => host.to_owned(),
        _ => format!("{host}:{DEFAULT_PORT}"),
    };
    with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))
}

/// Gunicorn's rule: a non-empty prefix ends in exactly one dot.
fn normalize_prefix(prefix: &str) -> String {
    match prefix.trim_end_matches('.') {
        "" => String::new(),
        trimmed => format!("{trimmed}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (UdpSocket, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let address = socket.local_addr().unwrap().to_string();
        (socket, address)
    }

    fn next(socket: &UdpSocket) -> String {
        let mut buffer = [0u8; 1024];
        let n = socket.recv(&mut buffer).unwrap();
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    #[test]
    fn a_request_sends_gunicorns_three_metrics_with_prefix_and_tags() {
        let (socket, address) = receiver();
        let client = Statsd::connect(&address, "shop..", "env:ci,team:web").unwrap();
        client.request(404, Duration::from_micros(12_345));
        assert_eq!(
            next(&socket),
            "shop.gunicorn.request.duration:12.345|ms|#env:ci,team:web\n\
             shop.gunicorn.requests:1|c|@1.0|#env:ci,team:web\n\
             shop.gunicorn.request.status.404:1|c|@1.0|#env:ci,team:web"
        );
        client.gauge("gunicorn.workers", 3);
        assert_eq!(next(&socket), "shop.gunicorn.workers:3|g|#env:ci,team:web");
    }

    #[test]
    fn without_prefix_or_tags_the_names_are_bare() {
        let (socket, address) = receiver();
        let client = Statsd::connect(&address, "", "").unwrap();
        client.increment("gunicorn.log.error");
        assert_eq!(next(&socket), "gunicorn.log.error:1|c|@1.0");
    }

    #[test]
    fn a_host_without_a_port_gets_statsds_and_a_bad_one_is_named() {
        assert_eq!(resolve("127.0.0.1").unwrap().port(), DEFAULT_PORT);
        assert_eq!(resolve("127.0.0.1:9125").unwrap().port(), 9125);
        let error = Statsd::connect("unix:/nonexistent/statsd.sock", "", "")
            .err()
            .unwrap();
        assert!(
            error
                .to_string()
                .starts_with("--statsd-host unix:/nonexistent/statsd.sock: "),
            "{error}"
        );
        assert_eq!(error.error.kind(), std::io::ErrorKind::NotFound);
    }
}
