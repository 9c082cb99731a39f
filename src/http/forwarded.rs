//! What a trusted proxy says about the client: the scheme it was reached
//! with (`secure_scheme_headers`, `Forwarded: proto=`) and its address
//! (`X-Forwarded-For`, `Forwarded: for=`), believed only from peers in
//! `--forwarded-allow-ips`.

use std::net::IpAddr;
use std::str::FromStr;

use super::error::ParseError;
use super::head::RequestHead;
use super::syntax::{list_elements, trim_ows};

/// Addresses and networks a setting trusts: `*`, or a comma-separated list
/// of IPs and CIDR networks (`127.0.0.1,::1,10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressList {
    any: bool,
    networks: Vec<(IpAddr, u8)>,
}

impl FromStr for AddressList {
    type Err = String;

    fn from_str(text: &str) -> Result<AddressList, String> {
        let mut list = AddressList {
            any: false,
            networks: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                list.any = true;
                continue;
            }
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or network"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
            };
            list.networks.push((address, prefix));
        }
        Ok(list)
    }
}

impl AddressList {
    /// Whether `address` (as the listener formatted it; empty for a unix
    /// socket peer, which only local processes can be) is trusted.
    pub fn trusts(&self, address: &str) -> bool {
        if self.any || address.is_empty() {
            return true;
        }
        address.parse().is_ok_and(|ip| self.contains(ip))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks
            .iter()
            .any(|&(network, prefix)| match (network, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    masked(u32::from(n).into(), u32::from(a).into(), prefix, 32)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => masked(u128::from(n), u128::from(a), prefix, 128),
                _ => false,
            })
    }
}

fn masked(network: u128, address: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - u32::from(prefix);
    shift >= bits || (network >> shift) == (address >> shift)
}

/// Header names and the value that means https, e.g. `X-FORWARDED-PROTO` =
/// `https` (Gunicorn's `secure_scheme_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeHeaders(pub Vec<(String, String)>);

impl Default for SchemeHeaders {
    fn default() -> SchemeHeaders {
        SchemeHeaders(
            [
                ("X-FORWARDED-PROTOCOL", "ssl"),
                ("X-FORWARDED-PROTO", "https"),
                ("X-FORWARDED-SSL", "on"),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        )
    }
}

impl FromStr for SchemeHeaders {
    type Err = String;

    /// `NAME=VALUE,NAME=VALUE`; empty for none.
    fn from_str(text: &str) -> Result<SchemeHeaders, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(n, v)| (n.trim().to_ascii_uppercase(), v.trim().to_owned()))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("{pair:?} is not NAME=VALUE"))
            })
            .collect::<Result<_, _>>()
            .map(SchemeHeaders)
    }
}

/// What a trusted proxy's headers change for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyView {
    /// `Some(true)` for https, `Some(false)` for http, `None`: as received.
    pub https: Option<bool>,
    /// The client's address, when the proxy named one.
    pub client: Option<String>,
}

/// Reads the proxy headers of a request from a trusted peer. Scheme headers
/// that disagree are refused (Gunicorn's InvalidSchemeHeaders).
pub fn proxy_view(
    head: &RequestHead,
    scheme_headers: &SchemeHeaders,
    trusted: &AddressList,
) -> Result<ProxyView, ParseError> {
    let mut view = ProxyView::default();
    for (name, secure_value) in &scheme_headers.0 {
        if let Some(value) = head.field(name.as_bytes()) {
            let https = trim_ows(value).eq_ignore_ascii_case(secure_value.as_bytes());
            if view.https.is_some_and(|seen| seen != https) {
                return Err(ParseError::ConflictingSchemeHeaders);
            }
            view.https = Some(https);
        }
    }
    let forwarded = head.field(b"forwarded");
    if view.https.is_none() {
        // RFC 7239 §5.4: the proto of the element nearest the client.
        if let Some(proto) = forwarded.and_then(|f| forwarded_params(f, "proto").into_iter().next())
        {
            view.https = Some(proto.eq_ignore_ascii_case("https"));
        }
    }
    let hops: Vec<String> = match head.field(b"x-forwarded-for") {
        Some(value) => list_elements(value)
            .map(|hop| String::from_utf8_lossy(hop).into_owned())
            .collect(),
        None => forwarded
            .map(|f| forwarded_params(f, "for"))
            .unwrap_or_default()
            .into_iter()
            .map(|node| strip_node_port(&node))
            .collect(),
    };
    // The client is the nearest hop not itself a trusted proxy (right to
    // left); with every hop trusted, the farthest one.
    view.client = hops
        .iter()
        .rev()
        .find(|hop| !trusted.trusts(hop))
        .or_else(|| hops.first())
        .filter(|hop| hop.parse::<IpAddr>().is_ok())
        .cloned();
    Ok(view)
}

/// The values of `param` in a `Forwarded` field, nearest the client first.
fn forwarded_params(field: &[u8], param: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(field);
    text.split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case(param)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// `192.0.2.1:4711` to `192.0.2.1`, `[2001:db8::1]:80` to `2001:db8::1`.
fn strip_node_port(node: &str) -> String {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_owned();
    }
    match node.split_once(':') {
        Some((ip, _)) if node.matches(':').count() == 1 => ip.to_owned(),
        _ => node.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::parse_complete_head;

    fn head(fields: &str) -> RequestHead {
        parse_complete_head(format!("GET / HTTP/1.1\r\nHost: h\r\n{fields}\r\n").as_bytes())
    }

    fn view(fields: &str, trusted: &str) -> Result<ProxyView, ParseError> {
        proxy_view(
            &head(fields),
            &SchemeHeaders::default(),
            &trusted.parse().unwrap(),
        )
    }

    #[test]
    fn address_lists_hold_ips_networks_and_star() {
        let list: AddressList = "127.0.0.1, ::1, 10.0.0.0/8".parse().unwrap();
        assert!(list.trusts("127.0.0.1") && list.trusts("::1") && list.trusts("10.9.8.7"));
        assert!(list.trusts("::ffff:10.1.1.1"));
        assert!(!list.trusts("11.0.0.1") && !list.trusts("192.168.0.1"));
        assert!(list.trusts(""), "unix socket peers are local");
        assert!("*".parse::<AddressList>().unwrap().trusts("203.0.113.9"));
        assert!("10.0.0.0/33".parse::<AddressList>().is_err());
        assert!("example.com".parse::<AddressList>().is_err());
    }

    #[test]
    fn scheme_headers_set_https_and_conflicts_are_refused() {
        assert_eq!(
            view("X-Forwarded-Proto: https\r\n", "").unwrap().https,
            Some(true)
        );
        assert_eq!(
            view("X-Forwarded-Proto: http\r\n", "").unwrap().https,
            Some(false)
        );
        assert_eq!(
            view("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n", ""),
            Err(ParseError::ConflictingSchemeHeaders)
        );
        assert_eq!(
            view("Forwarded: for=1.2.3.4;proto=https\r\n", "")
                .unwrap()
                .https,
            Some(true)
        );
        assert_eq!(view("", "").unwrap(), ProxyView::default());
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let v = view("X-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n", "10.0.0.0/8").unwrap();
        assert_eq!(v.client.as_deref(), Some("203.0.113.7"));
        let v = view(
            "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n",
            "10.0.0.0/8",
        )
        .unwrap();
        assert_eq!(
            v.client.as_deref(),
            Some("203.0.113.7"),
            "a client-supplied hop is not believed"
        );
        let v = view(
            "Forwarded: for=\"[2001:db8::1]:4711\", for=10.0.0.3\r\n",
            "10.0.0.0/8",
        )
        .unwrap();
        assert_eq!(v.client.as_deref(), Some("2001:db8::1"));
        let v = view("X-Forwarded-For: not-an-ip\r\n", "").unwrap();
        assert_eq!(v.client, None);
    }
}
