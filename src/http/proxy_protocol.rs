//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) a load
//! balancer puts before the first request of a connection to pass on the
//! client's address (`--proxy-protocol`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::ParseError;

/// Version 2's fixed 12-byte signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line, CRLF included (spec section 2.1).
const V1_MAX_LINE: usize = 107;

/// What the start of a connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not enough bytes yet to tell.
    Incomplete,
    /// No PROXY header: the connection starts with the request.
    Absent,
    /// A header of `len` bytes; `source` is the client it names (`None` for
    /// `UNKNOWN`/`LOCAL` or non-TCP families: keep the socket's peer).
    Present {
        /// Bytes the header takes.
        len: usize,
        /// The original client.
        source: Option<SocketAddr>,
    },
}

/// Reads a PROXY header at the start of `buf`, if one is there.
pub fn parse(buf: &[u8]) -> Result<ProxyHeader, ParseError> {
    if is_prefix_of_either(buf) {
        return Ok(ProxyHeader::Incomplete);
    }
    if buf.starts_with(b"PROXY ") {
        return parse_v1(buf);
    }
    if buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    Ok(ProxyHeader::Absent)
}

fn is_prefix_of_either(buf: &[u8]) -> bool {
    (buf.len() < 6 && b"PROXY ".starts_with(buf))
        || (buf.len() < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(buf))
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(buf: &[u8]) -> Result<ProxyHeader, ParseError> {
    let window = &buf[..buf.len().min(V1_MAX_LINE)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() < V1_MAX_LINE {
            Ok(ProxyHeader::Incomplete)
        } else {
            Err(ParseError::ProxyHeader)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(ParseError::ProxyHeader);
    }
    let line = std::str::from_utf8(&window[..lf - 1]).map_err(|_| ParseError::ProxyHeader)?;
    let parts: Vec<&str> = line.split(' ').collect();
    let len = lf + 1;
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(ProxyHeader::Present { len, source: None }),
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            destination,
            source_port,
            destination_port,
        ] => {
            let v4 = *family == "TCP4";
            let source = parse_ip(source, v4)?;
            parse_ip(destination, v4)?;
            let source_port = parse_port(source_port)?;
            parse_port(destination_port)?;
            Ok(ProxyHeader::Present {
                len,
                source: Some(SocketAddr::new(source, source_port)),
            })
        }
        _ => Err(ParseError::ProxyHeader),
    }
}

fn parse_ip(text: &str, v4: bool) -> Result<IpAddr, ParseError> {
    let address = if v4 {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    };
    address.map_err(|_| ParseError::ProxyHeader)
}

fn parse_port(text: &str) -> Result<u16, ParseError> {
    let well_formed = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !well_formed {
        return Err(ParseError::ProxyHeader);
    }
    text.parse().map_err(|_| ParseError::ProxyHeader)
}

/// Signature, version/command, family/protocol, length, addresses (spec 2.2).
fn parse_v2(buf: &[u8]) -> Result<ProxyHeader, ParseError> {
    if buf.len() < 16 {
        return Ok(ProxyHeader::Incomplete);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ParseError::ProxyHeader);
    }
    let is_local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ParseError::ProxyHeader),
    };
    let family = buf[13];
    let body_len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + body_len;
    if buf.len() < len {
        return Ok(ProxyHeader::Incomplete);
    }
    let body = &buf[16..len];
    let source = match family {
        _ if is_local => None,
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 => {
            let addresses = body.get(..12).ok_or(ParseError::ProxyHeader)?;
            let ip = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
            let port = u16::from_be_bytes([addresses[8], addresses[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        // TCP over IPv6.
        0x21 => {
            let addresses = body.get(..36).ok_or(ParseError::ProxyHeader)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addresses[..16]);
            let port = u16::from_be_bytes([addresses[32], addresses[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        // UNSPEC, UDP or unix: nothing usable as REMOTE_ADDR.
        _ => None,
    };
    Ok(ProxyHeader::Present { len, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_names_the_client() {
        let buf = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(buf),
            Ok(ProxyHeader::Present {
                len: 47,
                source: Some("192.168.0.1:56324".parse().unwrap())
            })
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert!(
            matches!(parse(v6), Ok(ProxyHeader::Present { source: Some(s), .. }) if s.is_ipv6())
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(ProxyHeader::Present {
                len: 15,
                source: None
            })
        );
    }

    #[test]
    fn malformed_version_1_lines_are_refused() {
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.16...\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
            b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(ParseError::ProxyHeader),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(&[b'A'; 200]), Ok(ProxyHeader::Absent));
        let mut long = b"PROXY ".to_vec();
        long.extend_from_slice(&[b'x'; 200]);
        assert_eq!(parse(&long), Err(ParseError::ProxyHeader));
    }

    #[test]
    fn partial_headers_wait_for_more() {
        assert_eq!(parse(b"PRO"), Ok(ProxyHeader::Incomplete));
        assert_eq!(parse(b"PROXY TCP4 1.2"), Ok(ProxyHeader::Incomplete));
        assert_eq!(parse(b"\r\n\r\n\0"), Ok(ProxyHeader::Incomplete));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Ok(ProxyHeader::Absent));
    }

    #[test]
    fn version_2_names_the_client() {
        let mut v4 = V2_SIGNATURE.to_vec();
        v4.extend_from_slice(&[
            0x21, 0x11, 0x00, 0x0c, 192, 168, 1, 10, 192, 168, 1, 1, 0x30, 0x39, 0x01, 0xbb,
        ]);
        v4.extend_from_slice(b"GET");
        assert_eq!(
            parse(&v4),
            Ok(ProxyHeader::Present {
                len: 28,
                source: Some("192.168.1.10:12345".parse().unwrap())
            })
        );
        assert_eq!(parse(&v4[..20]), Ok(ProxyHeader::Incomplete));
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&local),
            Ok(ProxyHeader::Present {
                len: 16,
                source: None
            })
        );
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x31, 0x11, 0x00, 0x00]);
        assert_eq!(parse(&bad_version), Err(ParseError::ProxyHeader));
    }
}
