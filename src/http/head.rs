//! The request head: line structure and limits checked by our own scanner,
//! tokens split by httparse, then the field rules httparse does not know.

use std::ops::Range;

use super::error::ParseError;
use super::framing::{self, BodyFraming, FramingFields};
use super::leniency::{relax_field_lines, rewrites_field_lines};
use super::rules::{HeadRules, Leniency, UnderscoreHeaders, Version};
use super::syntax::{is_field_value_byte, is_ows, list_elements, trim_ows};
use super::target::RequestTarget;

/// One header field as received: name as sent, value without surrounding OWS.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// A parsed and checked request head. The bytes live in `raw`; the rest are
/// ranges into it, so a head costs one allocation.
#[derive(Debug)]
pub struct RequestHead {
    raw: Vec<u8>,
    method: Range<usize>,
    target_range: Range<usize>,
    pub target: RequestTarget,
    pub version: Version,
    /// The fields passed on to the app: names holding `_` are dropped, since
    /// `X_Foo` and `X-Foo` would both become `HTTP_X_FOO` (Gunicorn's default).
    pub fields: Vec<Field>,
    pub framing: BodyFraming,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.raw[self.method.clone()]).unwrap_or_default()
    }
    /// The request-target exactly as sent.
    pub fn target_bytes(&self) -> &[u8] {
        &self.raw[self.target_range.clone()]
    }
    pub fn path(&self) -> &[u8] {
        &self.target_bytes()[self.target.path.clone()]
    }
    pub fn query(&self) -> &[u8] {
        &self.target_bytes()[self.target.query.clone()]
    }
    /// `host[:port]` from an absolute-form target, else from the Host field.
    pub fn authority(&self) -> Option<&[u8]> {
        match &self.target.authority {
            Some(range) => Some(&self.target_bytes()[range.clone()]),
            None => self.field(b"host"),
        }
    }
    pub fn name(&self, field: &Field) -> &[u8] {
        &self.raw[field.name.clone()]
    }
    pub fn value(&self, field: &Field) -> &[u8] {
        &self.raw[field.value.clone()]
    }
    /// The first value of the field `name` (compared ignoring case).
    pub fn field(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| self.name(f).eq_ignore_ascii_case(name))
            .map(|f| self.value(f))
    }
}

/// Finds the end of a head in a buffer that grows between calls, checking
/// line endings and limits as it goes; it resumes where it stopped, so a
/// client sending one byte at a time costs linear, not quadratic, work.
#[derive(Debug, Default)]
pub struct HeadScanner {
    /// Where the request line starts (after empty lines a client may send first).
    start: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// How far the current line has been searched for LF.
    scanned: usize,
    /// Lines completed so far (the request line is line 0).
    lines: usize,
}

impl HeadScanner {
    /// `Ok(Some(end))` when `buf[..end]` holds a whole head, `Ok(None)` when more
    /// bytes are needed.
    pub fn scan(&mut self, buf: &[u8], limits: &HeadRules) -> Result<Option<usize>, ParseError> {
        loop {
            if self.lines == 0 && self.line_start == self.start {
                // RFC 9112 §2.2: ignore empty lines before the request line.
                while buf[self.start..].starts_with(b"\r\n") {
                    self.start += 2;
                }
                self.line_start = self.start;
                self.scanned = self.scanned.max(self.start);
                if buf.get(self.start) == Some(&b'\n') {
                    return Err(ParseError::BareLineEnding);
                }
            }
            let limit = if self.lines == 0 {
                limits.request_line
            } else {
                limits.max_field_line()
            };
            let Some(offset) = memchr::memchr(b'\n', &buf[self.scanned..]) else {
                self.scanned = buf.len();
                let pending = &buf[self.line_start..];
                if pending.len() > limit + 1 {
                    return Err(self.too_long());
                }
                if let Some(cr) = memchr::memchr(b'\r', pending)
                    && cr + 1 < pending.len()
                {
                    return Err(ParseError::BareLineEnding);
                }
                return Ok(None);
            };
            let lf = self.scanned + offset;
            if lf == self.line_start || buf[lf - 1] != b'\r' {
                return Err(ParseError::BareLineEnding);
            }
            let line = &buf[self.line_start..lf - 1];
            if memchr::memchr(b'\r', line).is_some() {
                return Err(ParseError::BareLineEnding);
            }
            if line.len() > limit {
                return Err(self.too_long());
            }
            if self.lines > 0 {
                if line.is_empty() {
                    return Ok(Some(lf + 1));
                }
                if is_ows(line[0]) && !limits.leniency.permit_obsolete_folding {
                    return Err(ParseError::ObsoleteFolding);
                }
                if self.lines > limits.fields {
                    return Err(ParseError::TooManyHeaders);
                }
            }
            self.lines += 1;
            self.line_start = lf + 1;
            self.scanned = lf + 1;
        }
    }

    /// Where the request line starts.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Header lines seen (an upper bound on the fields httparse will find).
    pub fn field_lines(&self) -> usize {
        self.lines.saturating_sub(1)
    }

    fn too_long(&self) -> ParseError {
        if self.lines == 0 {
            ParseError::RequestLineTooLong
        } else {
            ParseError::HeaderTooLarge
        }
    }
}

/// Parses `buf[start..end]`, a head already accepted by [`HeadScanner`].
pub fn parse_head(
    buf: &[u8],
    start: usize,
    end: usize,
    field_lines: usize,
    limits: &HeadRules,
) -> Result<RequestHead, ParseError> {
    let leniency = limits.leniency;
    let mut raw = buf[start..end].to_vec();
    if rewrites_field_lines(&leniency) {
        raw = relax_field_lines(&raw, &leniency, limits.field_size)?;
    }
    let mut slots = vec![httparse::EMPTY_HEADER; field_lines];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ParseError::RequestLine),
        Err(error) => return Err(map_httparse_error(error, &raw)),
    }
    let base = raw.as_ptr() as usize;
    let range_of = |part: &[u8]| {
        let from = part.as_ptr() as usize - base;
        from..from + part.len()
    };
    let method_bytes = request.method.unwrap_or_default().as_bytes();
    if !leniency.permit_unconventional_method && !is_conventional_method(method_bytes) {
        return Err(ParseError::Method);
    }
    let target_bytes = request.path.unwrap_or_default().as_bytes();
    let target = RequestTarget::parse(method_bytes, target_bytes)?;
    let version = if request.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    let method = range_of(method_bytes);
    let target_range = range_of(target_bytes);

    let scan = scan_fields(request.headers, version, &leniency, base)?;
    let framing = framing::request_framing(version, &scan.framing, limits.body)?;
    let keep_alive = match version {
        Version::Http11 => !scan.close,
        Version::Http10 => scan.keep_alive && !scan.close,
    };
    let expect_continue = scan.expect_continue && framing != BodyFraming::Empty;
    let fields = scan.fields;
    if leniency.casefold_method {
        raw[method.clone()].make_ascii_uppercase();
    }
    Ok(RequestHead {
        raw,
        method,
        target_range,
        target,
        version,
        fields,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// What the field lines say, besides the fields themselves.
struct FieldScan<'a> {
    /// Each field's name and value, as ranges of the head.
    fields: Vec<Field>,
    framing: FramingFields<'a>,
    /// `Connection: close`, `Connection: keep-alive`.
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

/// Checks the field lines httparse found in the head at address `base`.
fn scan_fields<'a>(
    headers: &[httparse::Header<'a>],
    version: Version,
    leniency: &Leniency,
    base: usize,
) -> Result<FieldScan<'a>, ParseError> {
    let range_of = |part: &[u8]| {
        let from = part.as_ptr() as usize - base;
        from..from + part.len()
    };
    let mut scan = FieldScan {
        fields: Vec::with_capacity(headers.len()),
        framing: FramingFields::default(),
        close: false,
        keep_alive: false,
        expect_continue: false,
    };
    let mut seen = SeenOnce::default();
    for header in headers {
        let name = header.name.as_bytes();
        let value = trim_ows(header.value);
        if !value.iter().all(|&b| is_field_value_byte(b)) {
            return Err(ParseError::HeaderValue);
        }
        if name.contains(&b'_') {
            match leniency.underscore_headers {
                UnderscoreHeaders::Drop => continue,
                UnderscoreHeaders::Refuse => return Err(ParseError::HeaderName),
                UnderscoreHeaders::Dangerous => {}
            }
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            first_time(&mut seen.content_length, "Content-Length")?;
            scan.framing.content_length = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            scan.framing.transfer_encoding.push(value);
        } else if name.eq_ignore_ascii_case(b"host") {
            first_time(&mut seen.host, "Host")?;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            first_time(&mut seen.content_type, "Content-Type")?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in list_elements(value) {
                scan.close |= token.eq_ignore_ascii_case(b"close");
                scan.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            // RFC 9110 §10.1.1: 100-continue is the only expectation defined.
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(ParseError::Expectation);
            }
            scan.expect_continue = version == Version::Http11;
        }
        scan.fields.push(Field {
            name: range_of(name),
            value: range_of(value),
        });
    }
    Ok(scan)
}

/// Fields that may appear once: a second one makes the request ambiguous.
#[derive(Default)]
struct SeenOnce {
    host: bool,
    content_length: bool,
    content_type: bool,
}

fn first_time(flag: &mut bool, name: &'static str) -> Result<(), ParseError> {
    if std::mem::replace(flag, true) {
        return Err(ParseError::DuplicateHeader(name));
    }
    Ok(())
}

/// Gunicorn's default method rule: a token of 3 to 20 bytes with no lower-case
/// letter and no `#` (lower-case methods are almost always a client bug).
fn is_conventional_method(method: &[u8]) -> bool {
    (3..=20).contains(&method.len())
        && method
            .iter()
            .all(|&b| super::syntax::is_tchar(b) && !b.is_ascii_lowercase() && b != b'#')
}

fn map_httparse_error(error: httparse::Error, raw: &[u8]) -> ParseError {
    match error {
        httparse::Error::HeaderName => ParseError::HeaderName,
        httparse::Error::HeaderValue => ParseError::HeaderValue,
        httparse::Error::NewLine => ParseError::BareLineEnding,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::Version => version_error(raw),
        httparse::Error::Token => {
            let method_end = raw.iter().position(|&b| b == b' ').unwrap_or(raw.len());
            if super::syntax::is_token(&raw[..method_end]) {
                ParseError::RequestLine
            } else {
                ParseError::Method
            }
        }
        _ => ParseError::RequestLine,
    }
}

/// httparse knows only 1.0 and 1.1; a well-formed other version gets 505.
fn version_error(raw: &[u8]) -> ParseError {
    let line_end = memchr::memchr(b'\r', raw).unwrap_or(raw.len());
    let line = &raw[..line_end];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ParseError::UnsupportedVersion
        }
        _ => ParseError::Version,
    }
}

/// For other modules' tests: a complete head parsed under Gunicorn's
/// default limits, no leniency.
#[cfg(test)]
pub fn parse_complete_head(bytes: &[u8]) -> RequestHead {
    let rules = tests::LIMITS;
    let mut scanner = HeadScanner::default();
    let end = scanner.scan(bytes, &rules).unwrap().unwrap();
    parse_head(bytes, scanner.start(), end, scanner.field_lines(), &rules).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::rules::Leniency;

    pub(super) const LIMITS: HeadRules = HeadRules {
        request_line: 4094,
        fields: 100,
        field_size: 8190,
        body: 1 << 20,
        leniency: Leniency {
            strip_header_spaces: false,
            permit_unconventional_method: false,
            casefold_method: false,
            permit_obsolete_folding: false,
            underscore_headers: UnderscoreHeaders::Drop,
        },
    };

    fn parse(bytes: &[u8]) -> Result<Option<RequestHead>, ParseError> {
        let mut scanner = HeadScanner::default();
        match scanner.scan(bytes, &LIMITS)? {
            None => Ok(None),
            Some(end) => {
                parse_head(bytes, scanner.start(), end, scanner.field_lines(), &LIMITS).map(Some)
            }
        }
    }

    fn error(bytes: &[u8]) -> ParseError {
        parse(bytes).expect_err("must be refused")
    }

    #[test]
    fn parses_a_simple_request() {
        let head = parse(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.method(), "GET");
        assert_eq!(head.path(), b"/a");
        assert_eq!(head.query(), b"b=1");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.field(b"x-y"), Some(&b"z"[..]));
        assert!(head.keep_alive);
        assert_eq!(head.framing, BodyFraming::Empty);
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse(b"GET / HTTP/1.1\r").unwrap().is_none());
    }

    #[test]
    fn scanning_resumes_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut scanner = HeadScanner::default();
        for end in 1..whole.len() {
            assert_eq!(scanner.scan(&whole[..end], &LIMITS), Ok(None));
        }
        assert_eq!(scanner.scan(whole, &LIMITS), Ok(Some(whole.len())));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let head = parse(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.method(), "GET");
    }

    #[test]
    fn bare_line_endings_are_refused() {
        assert_eq!(
            error(b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
            ParseError::BareLineEnding
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"),
            ParseError::BareLineEnding
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\r\n\n"),
            ParseError::BareLineEnding
        );
    }

    #[test]
    fn obs_fold_and_space_before_colon_are_refused() {
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"),
            ParseError::ObsoleteFolding
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA : b\r\n\r\n"),
            ParseError::HeaderName
        );
    }

    #[test]
    fn control_bytes_in_values_are_refused() {
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\x07c\r\n\r\n"),
            ParseError::HeaderValue
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\x7fc\r\n\r\n"),
            ParseError::HeaderValue
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n"),
            ParseError::HeaderValue
        );
    }

    #[test]
    fn methods_must_be_conventional_tokens() {
        assert_eq!(error(b"get / HTTP/1.1\r\n\r\n"), ParseError::Method);
        assert_eq!(error(b"bla:rgh / HTTP/1.1\r\n\r\n"), ParseError::Method);
        assert!(parse(b"-BLARGH / HTTP/1.1\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn versions_are_checked() {
        assert_eq!(
            error(b"GET / HTTP/2.0\r\n\r\n"),
            ParseError::UnsupportedVersion
        );
        assert_eq!(error(b"GET / HTTP/0.99\r\n\r\n"), ParseError::Version);
        assert_eq!(error(b"GET / FTP/1.1\r\n\r\n"), ParseError::Version);
        assert_eq!(error(b"GET / HTTP/111\r\n\r\n"), ParseError::Version);
    }

    #[test]
    fn limits_give_their_own_errors() {
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
        assert_eq!(error(long_line.as_bytes()), ParseError::RequestLineTooLong);
        let long_field = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(error(long_field.as_bytes()), ParseError::HeaderTooLarge);
        // The limit counts the CRLF: 8188 + 2 bytes fit in 8190, 8189 + 2 do not.
        let fits = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "a".repeat(8185));
        assert!(parse(fits.as_bytes()).unwrap().is_some());
        let over = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "a".repeat(8186));
        assert_eq!(error(over.as_bytes()), ParseError::HeaderTooLarge);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(101));
        assert_eq!(error(many.as_bytes()), ParseError::TooManyHeaders);
        // A long line is refused before its end arrives.
        let unfinished = format!("GET /{}", "a".repeat(5000));
        assert_eq!(error(unfinished.as_bytes()), ParseError::RequestLineTooLong);
    }

    #[test]
    fn duplicate_singletons_are_refused() {
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            ParseError::DuplicateHeader("Host")
        );
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n"),
            ParseError::DuplicateHeader("Content-Type")
        );
    }

    #[test]
    fn underscore_fields_are_dropped() {
        let head = parse(b"GET / HTTP/1.0\r\nContent_Length: -1\r\nContent-Length: 7\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.fields.len(), 1);
        assert_eq!(head.framing, BodyFraming::Length(7));
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let http10 = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!http10.keep_alive);
        let http10_ka = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(http10_ka.keep_alive);
        let close = parse(b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!close.keep_alive);
    }

    #[test]
    fn expectations_other_than_continue_are_refused() {
        assert_eq!(
            error(b"PUT / HTTP/1.1\r\nExpect: magic\r\n\r\n"),
            ParseError::Expectation
        );
        let head = parse(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.expect_continue);
    }

    #[test]
    fn non_ascii_method_or_name_is_refused() {
        assert_eq!(
            error("GETß / HTTP/1.1\r\n\r\n".as_bytes()),
            ParseError::Method
        );
        assert_eq!(
            error("GET / HTTP/1.1\r\nAß: 3\r\n\r\n".as_bytes()),
            ParseError::HeaderName
        );
    }

    #[test]
    fn utf8_in_the_target_is_kept() {
        let head = parse("GET /à%20k HTTP/1.0\r\n\r\n".as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(head.path(), "/à%20k".as_bytes());
    }
}
