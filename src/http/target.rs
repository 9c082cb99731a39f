//! The request-target (RFC 9112 §3.2): which of the four forms it has, and
//! where its path and query are.

use std::ops::Range;

use super::error::ParseError;

/// The four request-target forms of RFC 9112 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host/path?query`: the authority overrides Host (RFC 9112 §3.2.2).
    Absolute,
    /// `host:port`, only for CONNECT.
    Authority,
    /// `*`, only for OPTIONS.
    Asterisk,
}

/// Byte ranges of a request-target's parts, relative to the target itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    pub form: TargetForm,
    pub path: Range<usize>,
    pub query: Range<usize>,
    /// `host[:port]` of an absolute- or authority-form target.
    pub authority: Option<Range<usize>>,
}

impl RequestTarget {
    /// Splits and checks `target` for a request with `method`.
    pub fn parse(method: &[u8], target: &[u8]) -> Result<RequestTarget, ParseError> {
        if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return Err(ParseError::Target);
        }
        if method == b"CONNECT" {
            // CONNECT takes only the authority form (RFC 9112 §3.2.3).
            check_authority(target, false)?;
            return Ok(RequestTarget {
                form: TargetForm::Authority,
                path: 0..0,
                query: 0..0,
                authority: Some(0..target.len()),
            });
        }
        if target == b"*" {
            if method != b"OPTIONS" {
                return Err(ParseError::Target);
            }
            return Ok(RequestTarget {
                form: TargetForm::Asterisk,
                path: 0..1,
                query: 1..1,
                authority: None,
            });
        }
        if target.first() == Some(&b'/') {
            let (path, query) = split_path_query(target, 0);
            return Ok(RequestTarget {
                form: TargetForm::Origin,
                path,
                query,
                authority: None,
            });
        }
        let scheme_end = absolute_scheme_end(target).ok_or(ParseError::Target)?;
        let authority_start = scheme_end + 3;
        let authority_end = target[authority_start..]
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .map_or(target.len(), |i| authority_start + i);
        let authority = &target[authority_start..authority_end];
        check_authority(authority, true)?;
        let (path, query) = split_path_query(target, authority_end);
        let host_start = authority
            .iter()
            .rposition(|&b| b == b'@')
            .map_or(0, |i| i + 1);
        Ok(RequestTarget {
            form: TargetForm::Absolute,
            path,
            query,
            authority: Some(authority_start + host_start..authority_end),
        })
    }
}

/// Path and query ranges of the part of `target` from `start`; a fragment,
/// which a client should not send, is dropped.
fn split_path_query(target: &[u8], start: usize) -> (Range<usize>, Range<usize>) {
    let end = target[start..]
        .iter()
        .position(|&b| b == b'#')
        .map_or(target.len(), |i| start + i);
    match target[start..end].iter().position(|&b| b == b'?') {
        Some(q) => (start..start + q, start + q + 1..end),
        None => (start..end, end..end),
    }
}

/// For `scheme "://" ...` (RFC 3986 §3.1), the length of the scheme.
fn absolute_scheme_end(target: &[u8]) -> Option<usize> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (valid && target[colon..].starts_with(b"://")).then_some(colon)
}

/// `[userinfo "@"] host [":" port]` (RFC 3986 §3.2); userinfo only when allowed.
fn check_authority(authority: &[u8], userinfo_allowed: bool) -> Result<(), ParseError> {
    let host_port = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) if userinfo_allowed => &authority[at + 1..],
        Some(_) => return Err(ParseError::Target),
        None => authority,
    };
    let (host, port) = if host_port.first() == Some(&b'[') {
        let close = host_port
            .iter()
            .position(|&b| b == b']')
            .ok_or(ParseError::Target)?;
        let literal = &host_port[1..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(ParseError::Target);
        }
        match &host_port[close + 1..] {
            [] => (&host_port[..=close], None),
            [b':', port @ ..] => (&host_port[..=close], Some(port)),
            _ => return Err(ParseError::Target),
        }
    } else {
        match host_port.iter().rposition(|&b| b == b':') {
            Some(colon) => (&host_port[..colon], Some(&host_port[colon + 1..])),
            None => (host_port, None),
        }
    };
    let reg_name_ok = host.first() == Some(&b'[')
        || host.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'_' | b'~' | b'%' | b'!' | b'$' | b'&' | b'\''
                )
                || matches!(b, b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
        });
    let port_ok = port.is_none_or(|p| p.iter().all(u8::is_ascii_digit));
    if host.is_empty() || !reg_name_ok || !port_ok {
        return Err(ParseError::Target);
    }
    Ok(())
}

/// Percent-decodes `%XX` sequences (RFC 3986 §2.1); a `%` not followed by two
/// hex digits stays as it is, as urllib's `unquote` leaves it.
pub fn percent_decode(input: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !input.contains(&b'%') {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && i + 2 < input.len()
            && let (Some(hi), Some(lo)) = (hex_value(input[i + 1]), hex_value(input[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str) -> Result<(TargetForm, String, String), ParseError> {
        let t = RequestTarget::parse(method.as_bytes(), target.as_bytes())?;
        Ok((
            t.form,
            target[t.path].to_owned(),
            target[t.query].to_owned(),
        ))
    }

    #[test]
    fn origin_form_splits_path_query_and_drops_fragment() {
        let got = parts("GET", "/forums/1?page=1#posts").unwrap();
        assert_eq!(
            got,
            (TargetForm::Origin, "/forums/1".into(), "page=1".into())
        );
        assert_eq!(parts("GET", "///keep").unwrap().1, "///keep");
    }

    #[test]
    fn absolute_form_gives_path_and_authority() {
        let t = RequestTarget::parse(b"GET", b"http://user:pass@example.com:8080/foo?q=1").unwrap();
        let target = "http://user:pass@example.com:8080/foo?q=1";
        assert_eq!(&target[t.authority.clone().unwrap()], "example.com:8080");
        assert_eq!(&target[t.path], "/foo");
        assert_eq!(&target[t.query], "q=1");
        assert!(RequestTarget::parse(b"GET", b"http://[::1]:8080/foo").is_ok());
    }

    #[test]
    fn malformed_or_misplaced_targets_are_refused() {
        assert_eq!(parts("PUT", "s://]ufd/:"), Err(ParseError::Target));
        assert_eq!(parts("GET", "foo/bar"), Err(ParseError::Target));
        assert_eq!(parts("GET", "*"), Err(ParseError::Target));
        assert_eq!(parts("GET", "example.com:443"), Err(ParseError::Target));
        assert_eq!(parts("CONNECT", "/path"), Err(ParseError::Target));
        assert_eq!(
            parts("CONNECT", "u@example.com:443"),
            Err(ParseError::Target)
        );
    }

    #[test]
    fn asterisk_and_authority_forms_fit_their_methods() {
        assert_eq!(parts("OPTIONS", "*").unwrap().0, TargetForm::Asterisk);
        assert_eq!(
            parts("CONNECT", "[::1]:443").unwrap().0,
            TargetForm::Authority
        );
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(&*percent_decode(b"/a%20b"), b"/a b");
        assert_eq!(&*percent_decode(b"/%zz%4"), b"/%zz%4");
        assert_eq!(&*percent_decode(b"/%C3%A9"), &[b'/', 0xc3, 0xa9]);
    }
}
