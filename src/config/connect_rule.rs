//! `--allow-connect [HOST:]PORT`: one outbound TCP destination the app may
//! reach. Landlock enforces the port (it knows no hosts, see README
//! "Sandbox"); the host is checked where Python connects.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::str::FromStr;

/// An outbound TCP destination the sandboxed app may reach
/// (`--allow-connect`): a port, on any host or on one host.
///
/// ```
/// let rule: ferrocorn::ConnectRule = "db.internal:5432".parse().unwrap();
/// assert_eq!((rule.host.as_deref(), rule.port), (Some("db.internal"), 5432));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRule {
    /// A name or an address literal (IPv6 without brackets); `None`: any host.
    pub host: Option<String>,
    /// The TCP port (1-65535).
    pub port: u16,
}

impl FromStr for ConnectRule {
    type Err = String;

    fn from_str(value: &str) -> Result<ConnectRule, String> {
        let invalid = || {
            format!("invalid --allow-connect {value:?}: expected PORT, HOST:PORT or [IPV6]:PORT")
        };
        let (host, port) = match value.rsplit_once(':') {
            None => (None, value),
            Some((host, port)) => {
                let host = match host.strip_prefix('[') {
                    Some(rest) => rest.strip_suffix(']').ok_or_else(invalid)?,
                    // An unbracketed IPv6 literal would be ambiguous.
                    None if host.contains(':') => return Err(invalid()),
                    None => host,
                };
                if host.is_empty() {
                    return Err(invalid());
                }
                (Some(host.to_owned()), port)
            }
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(invalid)?;
        Ok(ConnectRule { host, port })
    }
}

impl fmt::Display for ConnectRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, "{}", self.port),
            Some(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Some(host) => write!(f, "{host}:{}", self.port),
        }
    }
}

impl ConnectRule {
    /// The addresses the rule's host stands for, looked up now (before the
    /// sandbox closes the resolver's files and UDP): the app's lookups of
    /// that name are answered from this list. Empty for any-host rules and
    /// for names that do not resolve.
    pub(crate) fn resolve(&self) -> Vec<IpAddr> {
        let Some(host) = &self.host else {
            return Vec::new();
        };
        if let Ok(address) = host.parse::<IpAddr>() {
            return vec![address];
        }
        let mut addresses: Vec<IpAddr> = (host.as_str(), self.port)
            .to_socket_addrs()
            .map(|found| found.map(|a| a.ip()).collect())
            .unwrap_or_default();
        addresses.sort();
        addresses.dedup();
        addresses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_hosts_and_bracketed_ipv6_parse() {
        let rule = |s: &str| s.parse::<ConnectRule>();
        assert_eq!(
            rule("5432").unwrap(),
            ConnectRule {
                host: None,
                port: 5432
            }
        );
        assert_eq!(
            rule("db.internal:5432").unwrap().host.as_deref(),
            Some("db.internal")
        );
        assert_eq!(rule("[::1]:6379").unwrap().host.as_deref(), Some("::1"));
        assert_eq!(rule("[::1]:6379").unwrap().to_string(), "[::1]:6379");
        for bad in ["", "0", "70000", "::1:80", "host:", ":80", "[::1:80", "x:y"] {
            assert!(rule(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn literal_addresses_resolve_to_themselves() {
        let rule: ConnectRule = "127.0.0.1:80".parse().unwrap();
        assert_eq!(rule.resolve(), vec![IpAddr::from([127, 0, 0, 1])]);
        assert!("80".parse::<ConnectRule>().unwrap().resolve().is_empty());
    }
}
