//! The `--metrics-bind` listener: a small HTTP/1.1 server the arbiter runs in
//! its own loop, never behind the app's request queue and invisible to the
//! app (workers do not inherit it). It answers `GET /metrics`, `/livez` and
//! `/readyz`, one request per connection, and never blocks the arbiter: every
//! socket is non-blocking, a client gets [`CLIENT_DEADLINE`] to send its
//! request and read the answer, and at most [`MAX_CLIENTS`] are served at once
//! (the rest wait in the kernel's backlog).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Clients served at once.
const MAX_CLIENTS: usize = 32;
/// Time a client has from its connection to the last byte of the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// The largest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/metrics`; `openmetrics`: the client accepts the OpenMetrics format.
    Metrics {
        openmetrics: bool,
    },
    Live,
    Ready,
}

/// The answer to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    /// The answer, once the request was read; `written` bytes of it are out.
    output: Option<Vec<u8>>,
    written: usize,
    since: Instant,
}

pub struct MetricsEndpoint {
    listener: TcpListener,
    clients: Vec<Client>,
}

impl MetricsEndpoint {
    pub fn bind(address: &str) -> io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        // SAFETY: fcntl on a descriptor we own; FD_CLOEXEC keeps it from
        // programs the app may exec (workers close it after fork).
        unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(MetricsEndpoint {
            listener,
            clients: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// In a forked worker that will never use or drop this value: closes
    /// its copies of the endpoint's sockets, so the app cannot accept on the
    /// listener nor hold a scraper's connection open.
    pub fn close_in_child(&self) {
        // SAFETY: the child owns copies of these descriptors; it neither
        // uses them nor drops this value (it ends with process::exit), so
        // nothing closes them twice or uses them after.
        unsafe {
            libc::close(self.listener.as_raw_fd());
            for client in &self.clients {
                libc::close(client.stream.as_raw_fd());
            }
        }
    }

    /// The descriptors to wait on, with the events each needs.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) {
        if self.clients.len() < MAX_CLIENTS {
            fds.push(poll_fd(self.listener.as_raw_fd(), libc::POLLIN));
        }
        for client in &self.clients {
            let events = match client.output {
                None => libc::POLLIN,
                Some(_) => libc::POLLOUT,
            };
            fds.push(poll_fd(client.stream.as_raw_fd(), events));
        }
    }

    /// How long until the earliest client deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.clients
            .iter()
            .map(|c| CLIENT_DEADLINE.saturating_sub(c.since.elapsed()))
            .min()
    }

    /// Accepts, reads, answers and writes what it can without blocking.
    pub fn serve(&mut self, answer: &mut dyn FnMut(Probe) -> Answer) {
        while self.clients.len() < MAX_CLIENTS {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            input: Vec::new(),
                            output: None,
                            written: 0,
                            since: Instant::now(),
                        });
                    }
                }
                // WouldBlock, or a failure (EMFILE...) that a later wake-up retries.
                Err(_) => break,
            }
        }
        self.clients.retain_mut(|client| {
            client.since.elapsed() < CLIENT_DEADLINE && client.progress(answer)
        });
    }
}

impl Client {
    /// Moves the exchange on; false once it is over.
    fn progress(&mut self, answer: &mut dyn FnMut(Probe) -> Answer) -> bool {
        if self.output.is_none() {
            let mut buffer = [0u8; 2048];
            loop {
                match self.stream.read(&mut buffer) {
                    Ok(0) => return false,
                    Ok(n) => {
                        self.input.extend_from_slice(&buffer[..n]);
                        match respond(&self.input, answer) {
                            Some(bytes) => {
                                self.output = Some(bytes);
                                break;
                            }
                            None => continue,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
        }
        let Some(output) = &self.output else {
            return true;
        };
        while self.written < output.len() {
            match self.stream.write(&output[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        false
    }
}

/// The response bytes for the request in `input`, once its head is complete
/// (or is bad, or too long).
fn respond(input: &[u8], answer: &mut dyn FnMut(Probe) -> Answer) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let (method, path) = match request.parse(input) {
        Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD => return None,
        Ok(httparse::Status::Partial) => {
            return Some(encode(
                &Answer::text(431, "request head too large\n".to_owned()),
                false,
            ));
        }
        Err(_) => {
            return Some(encode(
                &Answer::text(400, "malformed request\n".to_owned()),
                false,
            ));
        }
        Ok(httparse::Status::Complete(_)) => (
            request.method.unwrap_or_default(),
            request.path.unwrap_or_default(),
        ),
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let refused = Answer::text(405, "only GET and HEAD\n".to_owned());
        return Some(encode(&refused, false));
    }
    let path = path.split('?').next().unwrap_or_default();
    let probe = match path {
        "/metrics" => Probe::Metrics {
            openmetrics: request.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("accept")
                    && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
            }),
        },
        "/livez" => Probe::Live,
        "/readyz" => Probe::Ready,
        _ => {
            let body = "not found: this listener answers /metrics, /livez and /readyz\n";
            return Some(encode(&Answer::text(404, body.to_owned()), head_only));
        }
    };
    Some(encode(&answer(probe), head_only))
}

fn encode(answer: &Answer, head_only: bool) -> Vec<u8> {
    let reason = match answer.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        status => crate::http::response::reason_phrase(status),
    };
    // RFC 9110 §15.5.6: a 405 names the methods the resource takes.
    let allow = match answer.status {
        405 => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    let mut bytes = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(answer.body.as_bytes());
    }
    bytes
}

fn poll_fd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(input: &str) -> (String, Vec<Probe>) {
        let mut asked = Vec::new();
        let bytes = respond(input.as_bytes(), &mut |probe| {
            asked.push(probe);
            Answer::text(200, "ok\n".to_owned())
        });
        (
            bytes
                .map(|b| String::from_utf8(b).unwrap())
                .unwrap_or_default(),
            asked,
        )
    }

    #[test]
    fn each_path_asks_its_probe_and_others_are_not_found() {
        let (text, asked) = ask("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nok\n"));
        assert_eq!(asked, [Probe::Ready]);
        assert_eq!(ask("GET /livez?verbose HTTP/1.1\r\n\r\n").1, [Probe::Live]);
        let (_, asked) = ask(
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        );
        assert_eq!(asked, [Probe::Metrics { openmetrics: true }]);
        assert_eq!(
            ask("GET /metrics HTTP/1.1\r\n\r\n").1,
            [Probe::Metrics { openmetrics: false }]
        );
        let (text, asked) = ask("GET / HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 404 "), "{text}");
        assert!(asked.is_empty());
    }

    #[test]
    fn head_gets_no_body_other_methods_405_and_bad_heads_400_or_431() {
        let (text, _) = ask("HEAD /livez HTTP/1.1\r\n\r\n");
        assert!(
            text.contains("Content-Length: 3\r\n") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
        let (text, asked) = ask("POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 405 ") && text.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(asked.is_empty());
        assert!(
            ask("GET /livez HTTP/1.1\r\nBad Header\r\n\r\n")
                .0
                .starts_with("HTTP/1.1 400 ")
        );
        assert_eq!(
            ask("GET /livez HTTP/1.1\r\nHost: x\r\n").0,
            "",
            "not complete yet"
        );
        let long = format!("GET /livez HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert!(ask(&long).0.starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn a_client_that_never_sends_is_dropped_at_its_deadline_and_others_are_served() {
        let mut endpoint = MetricsEndpoint::bind("127.0.0.1:0").unwrap();
        let address = endpoint.local_addr().unwrap();
        let _silent = TcpStream::connect(address).unwrap();
        let mut asking = TcpStream::connect(address).unwrap();
        asking.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
        let mut answered = 0;
        let started = Instant::now();
        while answered == 0 && started.elapsed() < Duration::from_secs(5) {
            endpoint.serve(&mut |_| {
                answered += 1;
                Answer::text(200, "ok\n".to_owned())
            });
        }
        let mut text = String::new();
        asking.read_to_string(&mut text).unwrap();
        assert!(text.ends_with("ok\n"), "{text}");
        assert_eq!(endpoint.clients.len(), 1, "the silent client waits");
        endpoint.clients[0].since -= CLIENT_DEADLINE;
        endpoint.serve(&mut |_| unreachable!());
        assert!(endpoint.clients.is_empty(), "dropped at its deadline");
    }
}
