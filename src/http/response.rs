//! Response heads: the status line and headers the app gave, plus the framing
//! and connection headers the server owns (RFC 9112 §6, §9).

use super::date::with_http_date;
use super::rules::Version;

/// How the body bytes after a head are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body may follow (HEAD, 1xx, 204, 304).
    NoBody,
    /// Exactly this many bytes; more from the app are cut off.
    Length(u64),
    /// Chunked (HTTP/1.1 responses with no Content-Length).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, no Content-Length).
    UntilClose,
}

/// What the request says about the response it may get.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext {
    pub version: Version,
    pub is_head: bool,
    pub keep_alive: bool,
}

/// A response head ready to send, and what it promised.
#[derive(Debug)]
pub struct EncodedHead {
    pub bytes: Vec<u8>,
    pub framing: ResponseFraming,
    pub keep_alive: bool,
}

/// Encodes a head for `status` (e.g. `200 OK`) with the app's `headers`;
/// `content_length` is the app's Content-Length (already validated), or one the
/// server computed from a body it already holds whole.
pub fn encode_head(
    context: ResponseContext,
    status: &str,
    headers: &[(String, Vec<u8>)],
    content_length: Option<u64>,
) -> EncodedHead {
    let code = status
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(500);
    let bodiless_status = code < 200 || code == 204 || code == 304;
    let mut framing = match content_length {
        _ if context.is_head || bodiless_status => ResponseFraming::NoBody,
        Some(length) => ResponseFraming::Length(length),
        None if context.version == Version::Http11 => ResponseFraming::Chunked,
        None => ResponseFraming::UntilClose,
    };
    let keep_alive = context.keep_alive && framing != ResponseFraming::UntilClose;
    if !context.is_head && bodiless_status {
        framing = ResponseFraming::NoBody;
    }

    let mut bytes = Vec::with_capacity(160 + headers.len() * 40);
    bytes.extend_from_slice(b"HTTP/1.1 ");
    bytes.extend_from_slice(status.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    let mut has_server = false;
    let mut has_date = false;
    let mut has_length = false;
    for (name, value) in headers {
        has_server |= name.eq_ignore_ascii_case("server");
        has_date |= name.eq_ignore_ascii_case("date");
        has_length |= name.eq_ignore_ascii_case("content-length");
        push_header(&mut bytes, name, value);
    }
    if !has_server {
        push_header(&mut bytes, "Server", "ferrocorn");
    }
    if !has_date {
        with_http_date(|date| push_header(&mut bytes, "Date", date));
    }
    match framing {
        ResponseFraming::Length(length) if !has_length => push_header(
            &mut bytes,
            "Content-Length",
            itoa::Buffer::new().format(length),
        ),
        ResponseFraming::Chunked => push_header(&mut bytes, "Transfer-Encoding", "chunked"),
        _ => {}
    }
    if !keep_alive {
        push_header(&mut bytes, "Connection", "close");
    } else if context.version == Version::Http10 {
        push_header(&mut bytes, "Connection", "keep-alive");
    }
    bytes.extend_from_slice(b"\r\n");
    EncodedHead {
        bytes,
        framing,
        keep_alive,
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: impl AsRef<[u8]>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_ref());
    out.extend_from_slice(b"\r\n");
}

/// A complete response the server sends on its own (errors, 100 Continue
/// excepted): plain text, always closing the connection.
pub fn error_response(status: u16, reason: &str, detail: &str) -> Vec<u8> {
    let body = format!("{reason}\n{detail}\n");
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    push_header(&mut out, "Server", "ferrocorn");
    with_http_date(|date| push_header(&mut out, "Date", date));
    push_header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    push_header(
        &mut out,
        "Content-Length",
        itoa::Buffer::new().format(body.len()),
    );
    push_header(&mut out, "Connection", "close");
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// The reason phrase of the status codes the server itself sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Appends one chunk of a chunked body: size line, data, CRLF.
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn head(
        version: Version,
        is_head: bool,
        keep_alive: bool,
        status: &str,
        cl: Option<u64>,
    ) -> (String, EncodedHead) {
        let context = ResponseContext {
            version,
            is_head,
            keep_alive,
        };
        let encoded = encode_head(context, status, &[("X-A".into(), b"b".to_vec())], cl);
        (String::from_utf8(encoded.bytes.clone()).unwrap(), encoded)
    }

    #[test]
    fn unknown_length_on_http11_is_chunked() {
        let (text, encoded) = head(Version::Http11, false, true, "200 OK", None);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nX-A: b\r\nServer: ferrocorn\r\nDate: "));
        assert!(text.contains("Transfer-Encoding: chunked\r\n"));
        assert!(!text.contains("Connection"));
        assert_eq!(encoded.framing, ResponseFraming::Chunked);
        assert!(encoded.keep_alive);
    }

    #[test]
    fn unknown_length_on_http10_closes() {
        let (text, encoded) = head(Version::Http10, false, true, "200 OK", None);
        assert!(text.contains("Connection: close\r\n"));
        assert_eq!(encoded.framing, ResponseFraming::UntilClose);
        assert!(!encoded.keep_alive);
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let (text, encoded) = head(Version::Http10, false, true, "200 OK", Some(3));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n"));
        assert!(encoded.keep_alive);
    }

    #[test]
    fn head_and_304_carry_no_body_or_chunking() {
        let (text, encoded) = head(Version::Http11, true, true, "200 OK", None);
        assert!(!text.contains("Transfer-Encoding"));
        assert_eq!(encoded.framing, ResponseFraming::NoBody);
        let (text, encoded) = head(Version::Http11, false, true, "304 Not Modified", None);
        assert!(!text.contains("Transfer-Encoding"));
        assert_eq!(encoded.framing, ResponseFraming::NoBody);
    }

    #[test]
    fn error_responses_close() {
        let text = String::from_utf8(error_response(400, "Bad Request", "bad chunk")).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nBad Request\nbad chunk\n"));
    }
}
