//! A request to run through the app in-process: built in Rust, checked by
//! the same HTTP parser the server uses, so the app sees the environ it
//! would see behind a socket.

use std::fmt;
use std::sync::Arc;

use crate::http::body::RequestBody;
use crate::http::error::ParseError;
use crate::http::head::{HeadScanner, RequestHead, parse_head};
use crate::http::rules::HeadRules;
use crate::net::peer::ConnectionInfo;

/// One HTTP request for [`App::call`](crate::embed::App::call).
///
/// ```
/// use ferrocorn::embed::Request;
/// let request = Request::post("/items?draft=1")
///     .header("Content-Type", "application/json")
///     .body(br#"{"name": "spoon"}"#.to_vec());
/// assert_eq!(request.method(), "POST");
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    remote_addr: String,
}

/// Why a [`Request`] cannot be sent to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The request would be refused by the server's HTTP parser; the server
    /// would answer with `status`.
    Malformed {
        /// Which rule the request breaks.
        error: ParseError,
        /// The status code the server would answer with.
        status: u16,
    },
    /// A framing header was given: the length comes from the body.
    FramingHeader(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed { error, status } => {
                write!(f, "invalid request ({status}): {error}")
            }
            RequestError::FramingHeader(name) => write!(
                f,
                "{name} cannot be set on an in-process request: the body gives the length"
            ),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Malformed { error, .. } => Some(error),
            RequestError::FramingHeader(_) => None,
        }
    }
}

impl Request {
    /// A request with any method; `target` is the path and query, e.g. `/a?b=c`.
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            remote_addr: "127.0.0.1".to_owned(),
        }
    }

    /// A GET request.
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// A POST request (add its body with [`Request::body`]).
    pub fn post(target: &str) -> Request {
        Request::new("POST", target)
    }

    /// Adds a header field (repeat for several). `Host` defaults to `localhost`.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body; `Content-Length` is derived from it.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sets `REMOTE_ADDR` (default `127.0.0.1`).
    pub fn remote_addr(mut self, addr: &str) -> Request {
        self.remote_addr = addr.to_owned();
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Checks the request as the server would and splits it into what the
    /// WSGI bridge takes.
    pub(crate) fn into_parts(
        self,
        limits: &HeadRules,
    ) -> Result<(RequestHead, RequestBody, ConnectionInfo), RequestError> {
        let mut raw = Vec::with_capacity(64 + self.target.len());
        raw.extend_from_slice(self.method.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(self.target.as_bytes());
        raw.extend_from_slice(b" HTTP/1.1\r\n");
        let mut has_host = false;
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(RequestError::FramingHeader(name.clone()));
            }
            has_host |= name.eq_ignore_ascii_case("host");
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        if !has_host {
            raw.extend_from_slice(b"Host: localhost\r\n");
        }
        if !self.body.is_empty() {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let malformed = |error: ParseError| RequestError::Malformed {
            status: error.status(),
            error,
        };
        let mut scanner = HeadScanner::default();
        let end = scanner
            .scan(&raw, limits)
            .map_err(malformed)?
            .ok_or(malformed(ParseError::Incomplete))?;
        let head = parse_head(&raw, scanner.start(), end, scanner.field_lines(), limits)
            .map_err(malformed)?;
        let info = ConnectionInfo {
            remote_addr: Arc::from(self.remote_addr.as_str()),
            remote_port: Arc::from("0"),
            server_name: Arc::from("localhost"),
            server_port: Arc::from("80"),
            https: false,
            tls: None,
        };
        Ok((head, RequestBody::Memory(self.body), info))
    }
}
