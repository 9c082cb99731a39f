//! How long a request body is: the Content-Length / Transfer-Encoding rules
//! of RFC 9112 §6, applied strictly because disagreement between servers on
//! exactly this is what request smuggling exploits.

use super::error::ParseError;
use super::rules::Version;
use super::syntax::{is_token, list_elements};

/// The body framing a request head announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding, or Content-Length: 0).
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// A chunked body follows (RFC 9112 §7.1).
    Chunked,
}

/// The framing fields of a head, as received.
#[derive(Debug, Default)]
pub struct FramingFields<'a> {
    pub content_length: Option<&'a [u8]>,
    pub transfer_encoding: Vec<&'a [u8]>,
}

/// Transfer codings a request may name before its final `chunked`. The body
/// is handed to the app still so encoded; anything else gets 501 (RFC 9112 §6.1).
const KNOWN_CODINGS: [&[u8]; 6] = [
    b"identity",
    b"gzip",
    b"x-gzip",
    b"deflate",
    b"compress",
    b"x-compress",
];

pub fn request_framing(
    version: Version,
    fields: &FramingFields<'_>,
    body_limit: u64,
) -> Result<BodyFraming, ParseError> {
    if !fields.transfer_encoding.is_empty() {
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingOnHttp10);
        }
        // RFC 9112 §6.3 rule 3: both present is a smuggling signature; refuse.
        if fields.content_length.is_some() {
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
        return chunked_framing(&fields.transfer_encoding);
    }
    match fields.content_length {
        None => Ok(BodyFraming::Empty),
        Some(value) => match parse_content_length(value)? {
            0 => Ok(BodyFraming::Empty),
            length if body_limit > 0 && length > body_limit => Err(ParseError::BodyTooLarge),
            length => Ok(BodyFraming::Length(length)),
        },
    }
}

/// RFC 9112 §6.3 rule 4: `chunked` must be the final coding, and (§7) may be
/// applied only once.
fn chunked_framing(values: &[&[u8]]) -> Result<BodyFraming, ParseError> {
    let codings: Vec<&[u8]> = values.iter().flat_map(|v| list_elements(v)).collect();
    let Some((last, before)) = codings.split_last() else {
        return Err(ParseError::TransferEncoding);
    };
    if !last.eq_ignore_ascii_case(b"chunked") {
        return Err(ParseError::TransferEncoding);
    }
    for coding in before {
        if coding.eq_ignore_ascii_case(b"chunked") {
            return Err(ParseError::TransferEncoding);
        }
        if !is_token(coding) {
            return Err(ParseError::TransferEncoding);
        }
        if !KNOWN_CODINGS
            .iter()
            .any(|known| coding.eq_ignore_ascii_case(known))
        {
            return Err(ParseError::UnknownTransferCoding);
        }
    }
    Ok(BodyFraming::Chunked)
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no list, no spaces.
fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::ContentLength);
    }
    value
        .iter()
        .try_fold(0u64, |total, &digit| {
            total
                .checked_mul(10)
                .and_then(|t| t.checked_add(u64::from(digit - b'0')))
        })
        .ok_or(ParseError::ContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(cl: Option<&str>, te: &[&str]) -> Result<BodyFraming, ParseError> {
        let fields = FramingFields {
            content_length: cl.map(str::as_bytes),
            transfer_encoding: te.iter().map(|v| v.as_bytes()).collect(),
        };
        request_framing(Version::Http11, &fields, 1000)
    }

    #[test]
    fn content_length_must_be_plain_digits() {
        assert_eq!(framing(Some("14"), &[]), Ok(BodyFraming::Length(14)));
        assert_eq!(framing(Some("0"), &[]), Ok(BodyFraming::Empty));
        for bad in [
            "-1",
            "+1",
            "-0",
            "0_1",
            "0 1",
            "5, 5",
            "bla",
            "",
            "99999999999999999999999",
        ] {
            assert_eq!(
                framing(Some(bad), &[]),
                Err(ParseError::ContentLength),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_length_over_the_limit_is_413() {
        assert_eq!(framing(Some("1001"), &[]), Err(ParseError::BodyTooLarge));
    }

    #[test]
    fn chunked_must_be_last_and_single() {
        assert_eq!(framing(None, &["chunked"]), Ok(BodyFraming::Chunked));
        assert_eq!(framing(None, &["gzip, chunked"]), Ok(BodyFraming::Chunked));
        assert_eq!(
            framing(None, &["identity", "chunked"]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(None, &["chunked", "gzip"]),
            Err(ParseError::TransferEncoding)
        );
        assert_eq!(
            framing(None, &["identity"]),
            Err(ParseError::TransferEncoding)
        );
        assert_eq!(
            framing(None, &["identity, chunked, identity, chunked"]),
            Err(ParseError::TransferEncoding)
        );
        assert_eq!(
            framing(None, &["chunked", "chunked"]),
            Err(ParseError::TransferEncoding)
        );
        assert_eq!(
            framing(None, &["magic, chunked"]),
            Err(ParseError::UnknownTransferCoding)
        );
    }

    #[test]
    fn both_framings_or_te_on_http10_are_refused() {
        assert_eq!(
            framing(Some("3"), &["chunked"]),
            Err(ParseError::ContentLengthWithTransferEncoding)
        );
        let fields = FramingFields {
            content_length: None,
            transfer_encoding: vec![b"chunked"],
        };
        assert_eq!(
            request_framing(Version::Http10, &fields, 0),
            Err(ParseError::TransferEncodingOnHttp10)
        );
    }
}
