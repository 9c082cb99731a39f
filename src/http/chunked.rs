//! Decoder for the chunked transfer coding (RFC 9112 §7.1), one state per
//! position in the grammar, fed whatever bytes have arrived.

use super::error::ParseError;
use super::syntax::{is_field_value_byte, is_ows, is_tchar, is_token};

/// Longest chunk-size line (size plus extensions) accepted, CRLF not counted.
const MAX_SIZE_LINE: usize = 4096;

/// Trailer fields that would change framing, routing or the meaning of the
/// request if merged into it (RFC 9110 §6.5.1), so are refused outright.
const FORBIDDEN_TRAILERS: [&[u8]; 9] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"trailer",
    b"authorization",
    b"proxy-authorization",
    b"expect",
    b"connection",
    b"te",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SizeLine,
    Data { remaining: u64 },
    DataCr,
    DataLf,
    TrailerLine,
    Done,
}

/// What one call to [`ChunkedDecoder::decode`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used up.
    pub consumed: usize,
    /// The final CRLF has been read.
    pub done: bool,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The size or trailer line read so far, when it spans reads.
    line: Vec<u8>,
    decoded: u64,
    trailers: usize,
    body_limit: u64,
    max_trailers: usize,
    max_trailer_line: usize,
}

impl ChunkedDecoder {
    /// `body_limit` 0 means no limit.
    pub fn new(body_limit: u64, max_trailers: usize, max_trailer_line: usize) -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            line: Vec::new(),
            decoded: 0,
            trailers: 0,
            body_limit,
            max_trailers,
            max_trailer_line,
        }
    }

    /// Decodes from `input`, handing chunk data to `sink`.
    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Progress, ParseError> {
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            match self.state {
                State::SizeLine | State::TrailerLine => {
                    let Some(line_end) = self.take_line(&input[pos..])? else {
                        pos = input.len();
                        break;
                    };
                    pos += line_end;
                    let line = std::mem::take(&mut self.line);
                    self.state = if self.state == State::SizeLine {
                        match parse_size_line(&line)? {
                            0 => State::TrailerLine,
                            size => State::Data { remaining: size },
                        }
                    } else if line.is_empty() {
                        State::Done
                    } else {
                        self.check_trailer(&line)?;
                        State::TrailerLine
                    };
                    self.line = line;
                    self.line.clear();
                }
                State::Data { remaining } => {
                    let available = (input.len() - pos) as u64;
                    let take = remaining.min(available) as usize;
                    self.decoded += take as u64;
                    if self.body_limit > 0 && self.decoded > self.body_limit {
                        return Err(ParseError::BodyTooLarge);
                    }
                    sink(&input[pos..pos + take]);
                    pos += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                State::DataCr | State::DataLf => {
                    let expected = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if input[pos] != expected {
                        return Err(ParseError::ChunkTerminator);
                    }
                    pos += 1;
                    self.state = if self.state == State::DataCr {
                        State::DataLf
                    } else {
                        State::SizeLine
                    };
                }
                State::Done => {}
            }
        }
        Ok(Progress {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    /// Appends to `self.line` up to LF; `Some(n)` once the line is complete
    /// (n input bytes used), with the CRLF removed.
    fn take_line(&mut self, input: &[u8]) -> Result<Option<usize>, ParseError> {
        let limit = if self.state == State::SizeLine {
            MAX_SIZE_LINE
        } else {
            self.max_trailer_line
        };
        let (part, complete) = match memchr::memchr(b'\n', input) {
            Some(lf) => (&input[..lf], true),
            None => (input, false),
        };
        if self.line.len() + part.len() > limit + 1 {
            return Err(if self.state == State::SizeLine {
                ParseError::ChunkSize
            } else {
                ParseError::HeaderTooLarge
            });
        }
        self.line.extend_from_slice(part);
        if !complete {
            return Ok(None);
        }
        // RFC 9112 §7.1: every line in the chunked grammar ends in CRLF.
        if self.line.pop() != Some(b'\r') {
            return Err(ParseError::BareLineEnding);
        }
        Ok(Some(part.len() + 1))
    }

    fn check_trailer(&mut self, line: &[u8]) -> Result<(), ParseError> {
        self.trailers += 1;
        if self.trailers > self.max_trailers {
            return Err(ParseError::TooManyHeaders);
        }
        if is_ows(line[0]) {
            return Err(ParseError::ObsoleteFolding);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::HeaderName)?;
        let name = &line[..colon];
        if !is_token(name) {
            return Err(ParseError::HeaderName);
        }
        if !line[colon + 1..].iter().all(|&b| is_field_value_byte(b)) {
            return Err(ParseError::HeaderValue);
        }
        if FORBIDDEN_TRAILERS
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f))
        {
            return Err(ParseError::ForbiddenTrailer);
        }
        Ok(())
    }
}

/// `chunk-size [ chunk-ext ]` without its CRLF.
fn parse_size_line(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ParseError::ChunkSize);
    }
    let mut size: u64 = 0;
    for &byte in &line[..digits] {
        let digit = (byte as char).to_digit(16).unwrap_or(0) as u64;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(ParseError::ChunkSize)?;
    }
    let rest = &line[digits..];
    if rest.contains(&b'\r') {
        return Err(ParseError::ChunkExtension);
    }
    // Whitespace is allowed only before a ";" (BWS in RFC 9112 §7.1.1).
    let after_ws = rest.iter().position(|&b| !is_ows(b)).unwrap_or(rest.len());
    if !rest.is_empty() && rest.get(after_ws) != Some(&b';') {
        return Err(ParseError::ChunkSize);
    }
    check_extensions(rest)?;
    Ok(size)
}

/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`, ext-val being a token
/// or a quoted-string (RFC 9112 §7.1.1).
fn check_extensions(mut rest: &[u8]) -> Result<(), ParseError> {
    let skip_ws = |s: &[u8]| -> usize { s.iter().take_while(|&&b| is_ows(b)).count() };
    while !rest.is_empty() {
        rest = &rest[skip_ws(rest)..];
        let Some((b';', after)) = rest.split_first().map(|(b, r)| (*b, r)) else {
            return Err(ParseError::ChunkExtension);
        };
        rest = &after[skip_ws(after)..];
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err(ParseError::ChunkExtension);
        }
        rest = &rest[name_len..];
        let ws = skip_ws(rest);
        if rest.get(ws) == Some(&b'=') {
            rest = &rest[ws + 1..];
            rest = &rest[skip_ws(rest)..];
            rest = &rest[extension_value_len(rest)?..];
        }
    }
    Ok(())
}

fn extension_value_len(value: &[u8]) -> Result<usize, ParseError> {
    if value.first() != Some(&b'"') {
        let len = value.iter().take_while(|&&b| is_tchar(b)).count();
        return if len == 0 {
            Err(ParseError::ChunkExtension)
        } else {
            Ok(len)
        };
    }
    let mut i = 1;
    while i < value.len() {
        match value[i] {
            b'"' => return Ok(i + 1),
            b'\\' if i + 1 < value.len() && is_field_value_byte(value[i + 1]) => i += 2,
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => i += 1,
            _ => return Err(ParseError::ChunkExtension),
        }
    }
    Err(ParseError::ChunkExtension)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Progress), ParseError> {
        let mut out = Vec::new();
        let mut decoder = ChunkedDecoder::new(0, 100, 8190);
        let progress = decoder.decode(input, &mut |data| out.extend_from_slice(data))?;
        Ok((out, progress))
    }

    fn decoded(input: &str) -> Vec<u8> {
        let (out, progress) = decode_all(input.as_bytes()).expect("valid chunked body");
        assert!(progress.done, "body not complete");
        assert_eq!(progress.consumed, input.len());
        out
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        assert_eq!(
            decoded("5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(
            decoded("5; some; parameters=stuff\r\nhello\r\n0\r\n\r\n"),
            b"hello"
        );
        assert_eq!(decoded("5;foo=\"bar baz\"\r\nhello\r\n0\r\n\r\n"), b"hello");
        assert_eq!(
            decoded("A\r\n0123456789\r\n0\r\nVary: *\r\n\r\n"),
            b"0123456789"
        );
        assert_eq!(decoded("0005\r\nhello\r\n0\r\n\r\n"), b"hello");
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let input = b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1";
        let (_, progress) = decode_all(input).unwrap();
        assert_eq!(
            progress,
            Progress {
                consumed: 11,
                done: true
            }
        );
    }

    #[test]
    fn decodes_byte_by_byte() {
        let input = b"5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n";
        let mut decoder = ChunkedDecoder::new(0, 100, 8190);
        let mut out = Vec::new();
        let mut done = false;
        for byte in input.chunks(1) {
            let progress = decoder
                .decode(byte, &mut |d| out.extend_from_slice(d))
                .unwrap();
            assert_eq!(progress.consumed, 1);
            done = progress.done;
        }
        assert!(done);
        assert_eq!(out, b"hello");
    }

    #[test]
    fn malformed_sizes_are_refused() {
        for bad in [
            "6_0\r\n",
            "-5\r\n",
            "+5\r\n",
            " 0\r\n",
            "0 \r\n",
            "\r\n",
            " ;foo=bar\r\n",
            "11111111111111111\r\n",
        ] {
            assert_eq!(
                decode_all(bad.as_bytes()).map(|_| ()),
                Err(ParseError::ChunkSize),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_all(b"5\n;\r\n").map(|_| ()),
            Err(ParseError::BareLineEnding)
        );
    }

    #[test]
    fn malformed_extensions_are_refused() {
        for bad in ["5;ext=val\rue\r\n", "5;\r\n", "5;a=\"open\r\n", "5;=x\r\n"] {
            assert_eq!(
                decode_all(bad.as_bytes()).map(|_| ()),
                Err(ParseError::ChunkExtension),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn data_must_end_in_crlf() {
        assert_eq!(
            decode_all(b"5\r\nhelloX").map(|_| ()),
            Err(ParseError::ChunkTerminator)
        );
    }

    #[test]
    fn forbidden_trailers_are_refused() {
        for name in ["Content-Length", "Host", "Transfer-Encoding"] {
            let input = format!("0\r\n{name}: x\r\n\r\n");
            assert_eq!(
                decode_all(input.as_bytes()).map(|_| ()),
                Err(ParseError::ForbiddenTrailer)
            );
        }
    }

    #[test]
    fn body_limit_applies_to_decoded_bytes() {
        let mut decoder = ChunkedDecoder::new(4, 100, 8190);
        let result = decoder.decode(b"5\r\nhello\r\n", &mut |_| {});
        assert_eq!(result, Err(ParseError::BodyTooLarge));
    }

    #[test]
    fn missing_final_crlf_is_incomplete() {
        let (_, progress) = decode_all(b"0\r\n").unwrap();
        assert!(!progress.done);
    }
}
