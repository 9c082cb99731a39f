//! Checks on what the app passes to `start_response` (PEP 3333, "The
//! start_response() Callable"), so nothing it sends can split or smuggle a
//! response.

use std::fmt;

use crate::http::syntax::is_token;

/// The app's response head, checked and converted to wire bytes.
#[derive(Debug, Clone, Default)]
pub struct ResponseHeaders {
    pub status: String,
    /// Names as given; values encoded as latin-1 (PEP 3333 native strings).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The app's Content-Length, when it gave one.
    pub content_length: Option<u64>,
}

/// A rule of PEP 3333 (or RFC 9110) that the app's status or headers break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Status(String),
    Name(String),
    Value { name: String },
    NotLatin1 { name: String },
    HopByHop(String),
    ContentLength(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Status(status) => write!(
                f,
                "invalid status {status:?}: expected a 3-digit code from 200 to 599, a space and a reason phrase"
            ),
            HeaderError::Name(name) => write!(f, "invalid header name {name:?}: not an HTTP token"),
            HeaderError::Value { name } => {
                write!(
                    f,
                    "invalid value for header {name:?}: control characters (CR, LF, NUL...) are not allowed"
                )
            }
            HeaderError::NotLatin1 { name } => {
                write!(
                    f,
                    "value of header {name:?} is not latin-1 (PEP 3333 needs native strings)"
                )
            }
            HeaderError::HopByHop(name) => {
                write!(
                    f,
                    "hop-by-hop header {name:?} is not allowed from a WSGI application (PEP 3333)"
                )
            }
            HeaderError::ContentLength(value) => write!(f, "invalid Content-Length {value:?}"),
        }
    }
}

/// Connection-level headers the server alone manages (PEP 3333, RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

pub fn check_status(status: &str) -> Result<(), HeaderError> {
    let bytes = status.as_bytes();
    let code_ok = bytes.len() >= 4
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && (b'2'..=b'5').contains(&bytes[0])
        && bytes[3] == b' ';
    let text_ok = bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80);
    if code_ok && text_ok {
        Ok(())
    } else {
        Err(HeaderError::Status(status.to_owned()))
    }
}

/// Checks one header and converts its value to bytes.
pub fn check_header(name: &str, value: &str) -> Result<Vec<u8>, HeaderError> {
    if !is_token(name.as_bytes()) {
        return Err(HeaderError::Name(name.to_owned()));
    }
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(HeaderError::HopByHop(name.to_owned()));
    }
    let mut bytes = Vec::with_capacity(value.len());
    for ch in value.chars() {
        let code = ch as u32;
        if code > 0xff {
            return Err(HeaderError::NotLatin1 {
                name: name.to_owned(),
            });
        }
        if (code < 0x20 && ch != '\t') || code == 0x7f {
            return Err(HeaderError::Value {
                name: name.to_owned(),
            });
        }
        bytes.push(code as u8);
    }
    Ok(bytes)
}

/// The value of a Content-Length the app set.
pub fn parse_content_length(value: &[u8]) -> Result<u64, HeaderError> {
    let text = String::from_utf8_lossy(value);
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::ContentLength(text.into_owned()));
    }
    trimmed
        .parse()
        .map_err(|_| HeaderError::ContentLength(text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_need_a_code_space_and_reason() {
        assert!(check_status("200 OK").is_ok());
        assert!(check_status("404 Not Found").is_ok());
        for bad in [
            "200",
            "200OK",
            "OK 200",
            "20 OK",
            "100 Continue",
            "200 OK\r\nX: y",
            "999 Big",
        ] {
            assert!(check_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_injection_is_refused() {
        assert_eq!(
            check_header("X-A", "b\r\nSet-Cookie: x"),
            Err(HeaderError::Value { name: "X-A".into() })
        );
        assert_eq!(
            check_header("X-A", "b\0"),
            Err(HeaderError::Value { name: "X-A".into() })
        );
        assert_eq!(
            check_header("X A", "b"),
            Err(HeaderError::Name("X A".into()))
        );
        assert_eq!(
            check_header("X-A:", "b"),
            Err(HeaderError::Name("X-A:".into()))
        );
    }

    #[test]
    fn hop_by_hop_headers_are_refused() {
        assert_eq!(
            check_header("Connection", "close"),
            Err(HeaderError::HopByHop("Connection".into()))
        );
        assert_eq!(
            check_header("transfer-encoding", "chunked"),
            Err(HeaderError::HopByHop("transfer-encoding".into()))
        );
    }

    #[test]
    fn values_are_latin1() {
        assert_eq!(check_header("X-A", "café").unwrap(), b"caf\xe9");
        assert_eq!(
            check_header("X-A", "€"),
            Err(HeaderError::NotLatin1 { name: "X-A".into() })
        );
    }

    #[test]
    fn content_length_is_digits() {
        assert_eq!(parse_content_length(b"12"), Ok(12));
        assert!(parse_content_length(b"-1").is_err());
        assert!(parse_content_length(b"1e3").is_err());
    }
}
