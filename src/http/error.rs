//! Why a request was refused, and the status code each reason maps to.

use std::fmt;

/// A request the server refuses before the app sees it. Every variant closes the
/// connection after the error response: once framing is in doubt nothing that
/// follows on the same connection can be trusted (RFC 9112 §6.3, §11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A line ended in a bare LF, or a CR was not followed by LF (RFC 9112 §2.2).
    BareLineEnding,
    /// The request line is not `method SP request-target SP HTTP-version`.
    RequestLine,
    /// The method is not an upper-case token of 3 to 20 characters.
    Method,
    /// The request-target is malformed or its form does not suit the method (RFC 9112 §3.2).
    Target,
    /// The HTTP-version is not of the form `HTTP/d.d`.
    Version,
    /// A well-formed HTTP version other than 1.0 and 1.1.
    UnsupportedVersion,
    /// A field name is empty, holds a non-token byte, or has whitespace before the colon.
    HeaderName,
    /// A field value holds a control character (RFC 9110 §5.5).
    HeaderValue,
    /// A field line starts with whitespace: obsolete line folding (RFC 9112 §5.2).
    ObsoleteFolding,
    /// The request line is longer than `--limit-request-line`.
    RequestLineTooLong,
    /// More header fields than `--limit-request-fields`.
    TooManyHeaders,
    /// A header line longer than `--limit-request-field_size`.
    HeaderTooLarge,
    /// A header that must appear at most once appears again (Host, Content-Length, Content-Type).
    DuplicateHeader(&'static str),
    /// Content-Length is not a single decimal number (RFC 9110 §8.6).
    ContentLength,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 rule 3).
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding whose final coding is not `chunked`, or with `chunked` twice (RFC 9112 §6.3).
    TransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).
    TransferEncodingOnHttp10,
    /// A transfer coding this server does not implement (RFC 9112 §6.1: 501).
    UnknownTransferCoding,
    /// An `Expect` value other than `100-continue` (RFC 9110 §10.1.1).
    Expectation,
    /// A chunk-size line is malformed (RFC 9112 §7.1).
    ChunkSize,
    /// A chunk extension is malformed (RFC 9112 §7.1.1).
    ChunkExtension,
    /// Chunk data not followed by CRLF.
    ChunkTerminator,
    /// A trailer field that may not be sent in a trailer (RFC 9110 §6.5.1).
    ForbiddenTrailer,
    /// The body is larger than `--limit-request-body`.
    BodyTooLarge,
    /// The client closed the connection in the middle of a request.
    Incomplete,
    /// A malformed PROXY protocol header (`--proxy-protocol`).
    ProxyHeader,
    /// A PROXY header from a peer not in `--proxy-allow-from`.
    ForbiddenProxy,
    /// Trusted scheme headers disagree, e.g. X-Forwarded-Proto: https with
    /// X-Forwarded-Ssl: off (`secure_scheme_headers`).
    ConflictingSchemeHeaders,
}

impl ParseError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::RequestLineTooLong => 414,
            ParseError::TooManyHeaders | ParseError::HeaderTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnknownTransferCoding => 501,
            ParseError::Expectation => 417,
            ParseError::ForbiddenProxy => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ParseError::BareLineEnding => "bare CR or LF used as a line ending",
            ParseError::RequestLine => "malformed request line",
            ParseError::Method => "invalid request method",
            ParseError::Target => "invalid request target",
            ParseError::Version => "invalid HTTP version",
            ParseError::UnsupportedVersion => "HTTP version not supported",
            ParseError::HeaderName => "invalid header field name",
            ParseError::HeaderValue => "invalid character in header field value",
            ParseError::ObsoleteFolding => "obsolete line folding in header",
            ParseError::RequestLineTooLong => "request line too long",
            ParseError::TooManyHeaders => "too many header fields",
            ParseError::HeaderTooLarge => "header field too large",
            ParseError::DuplicateHeader(name) => return write!(f, "duplicate {name} header"),
            ParseError::ContentLength => "invalid Content-Length",
            ParseError::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding"
            }
            ParseError::TransferEncoding => "Transfer-Encoding must end in a single chunked",
            ParseError::TransferEncodingOnHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            ParseError::UnknownTransferCoding => "unsupported transfer coding",
            ParseError::Expectation => "unsupported expectation",
            ParseError::ChunkSize => "invalid chunk size",
            ParseError::ChunkExtension => "invalid chunk extension",
            ParseError::ChunkTerminator => "chunk data not followed by CRLF",
            ParseError::ForbiddenTrailer => "forbidden field in chunked trailer",
            ParseError::BodyTooLarge => "request body too large",
            ParseError::Incomplete => "connection closed in the middle of a request",
            ParseError::ProxyHeader => "invalid PROXY protocol header",
            ParseError::ForbiddenProxy => "PROXY header from an address not in --proxy-allow-from",
            ParseError::ConflictingSchemeHeaders => "contradictory secure scheme headers",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ParseError {}
