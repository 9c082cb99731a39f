//! Gunicorn's opt-in parser leniencies that rewrite a head before it is
//! tokenised: obs-fold continuation lines joined to their field, and
//! whitespace before a field's colon removed. Off by default, where RFC 9112
//! §5.1 and §5.2 say reject.

use super::error::ParseError;
use super::rules::Leniency;
use super::syntax::{is_ows, trim_ows};

/// Whether `relax_field_lines` has anything to do under `leniency`.
pub fn rewrites_field_lines(leniency: &Leniency) -> bool {
    leniency.permit_obsolete_folding || leniency.strip_header_spaces
}

/// The head with folded lines joined (one space between the parts, RFC 9112
/// §5.2) and spaces before colons removed. A folded field longer than
/// `field_size` bytes, every physical line and CRLF counted, is refused as
/// Gunicorn refuses it.
pub fn relax_field_lines(
    raw: &[u8],
    leniency: &Leniency,
    field_size: usize,
) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if let Some(request_line) = lines.next() {
        out.extend_from_slice(request_line);
    }
    // Bytes the field being built took on the wire, CRLFs included.
    let mut field_wire_len = 0;
    let mut has_field = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if leniency.permit_obsolete_folding && has_field && is_ows(line[0]) {
            field_wire_len += line.len() + 2;
            if field_wire_len > field_size {
                return Err(ParseError::HeaderTooLarge);
            }
            out.push(b' ');
            out.extend_from_slice(trim_ows(line));
            continue;
        }
        out.extend_from_slice(b"\r\n");
        has_field = true;
        field_wire_len = line.len() + 2;
        match line.iter().position(|&b| b == b':') {
            Some(colon) if leniency.strip_header_spaces => {
                let name = &line[..colon];
                let kept = name.len() - name.iter().rev().take_while(|&&b| is_ows(b)).count();
                out.extend_from_slice(&name[..kept]);
                out.extend_from_slice(&line[colon..]);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out.extend_from_slice(b"\r\n\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relax(raw: &[u8], leniency: Leniency) -> Result<Vec<u8>, ParseError> {
        relax_field_lines(raw, &leniency, 8190)
    }

    #[test]
    fn folded_lines_join_their_field_with_one_space() {
        let leniency = Leniency {
            permit_obsolete_folding: true,
            ..Leniency::default()
        };
        let out = relax(
            b"GET / HTTP/1.1\r\nLong: one\r\n  two\r\n\tthree\r\nHost: h\r\n\r\n",
            leniency,
        )
        .unwrap();
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nLong: one two three\r\nHost: h\r\n\r\n"
        );
    }

    #[test]
    fn a_folded_field_counts_every_physical_line_against_the_size_limit() {
        let leniency = Leniency {
            permit_obsolete_folding: true,
            ..Leniency::default()
        };
        let raw = b"GET / HTTP/1.1\r\nAccept:\r\n */*\r\n\r\n";
        assert_eq!(
            relax_field_lines(raw, &leniency, 14),
            Err(ParseError::HeaderTooLarge)
        );
        assert!(relax_field_lines(raw, &leniency, 15).is_ok());
    }

    #[test]
    fn spaces_before_the_colon_are_stripped_only_when_asked() {
        let strip = Leniency {
            strip_header_spaces: true,
            ..Leniency::default()
        };
        let raw = b"GET / HTTP/1.1\r\nContent-Length \t: 3\r\n\r\n";
        assert_eq!(
            relax(raw, strip).unwrap(),
            b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
        );
        assert_eq!(relax(raw, Leniency::default()).unwrap(), raw);
    }
}
