//! Character classes of RFC 9110 §5.6, shared by the head and chunk parsers.

/// `tchar` (RFC 9110 §5.6.2): the bytes a token may hold.
pub fn is_tchar(byte: u8) -> bool {
    matches!(byte,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

/// A non-empty token.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// A byte allowed inside a field value: VCHAR, SP, HTAB or obs-text (RFC 9110 §5.5).
/// Every other control byte, DEL included, is refused rather than passed on.
pub fn is_field_value_byte(byte: u8) -> bool {
    byte == b'\t' || (0x20..0x7f).contains(&byte) || byte >= 0x80
}

/// Optional whitespace (RFC 9110 §5.6.3).
pub fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// `bytes` without leading and trailing OWS.
pub fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The comma-separated elements of a list-valued field, trimmed, empty ones
/// skipped (RFC 9110 §5.6.1).
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_exclude_separators() {
        assert!(is_token(b"X-Custom.Name|1"));
        assert!(!is_token(b"bla:rgh"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
    }

    #[test]
    fn field_values_refuse_controls_but_keep_obs_text() {
        assert!(is_field_value_byte(b'\t'));
        assert!(is_field_value_byte(0xe9));
        assert!(!is_field_value_byte(0x07));
        assert!(!is_field_value_byte(0x7f));
        assert!(!is_field_value_byte(0));
    }

    #[test]
    fn list_elements_trim_and_skip_empty() {
        let items: Vec<&[u8]> = list_elements(b" gzip ,, chunked\t").collect();
        assert_eq!(items, vec![&b"gzip"[..], &b"chunked"[..]]);
    }
}
