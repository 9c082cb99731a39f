//! `ferrocorn healthcheck`: asks a running server's `--metrics-bind`
//! listener whether it is live (or, with `--ready`, ready for traffic) and
//! exits 0 if so, 1 if not: a container `HEALTHCHECK` for images with no curl.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::config::sources;
use crate::log;

/// Ask a running ferrocorn whether it is live (GET /livez) or ready
/// (GET /readyz) on its --metrics-bind listener.
///
/// Exit status: 0 when it answers 200, 1 otherwise (not ready, not live,
/// not answering), 2 for a usage error.
#[derive(Debug, Parser)]
#[command(name = "ferrocorn healthcheck", version, max_term_width = 100)]
struct HealthcheckArgs {
    /// The server's --metrics-bind address (default: the bundle's own
    /// setting, when this binary is a bundle). 0.0.0.0 and [::] mean loopback.
    #[arg(long = "metrics-bind", value_name = "ADDRESS")]
    metrics_bind: Option<String>,

    /// Ask /readyz (may the server get traffic) instead of /livez (is it running).
    #[arg(long)]
    ready: bool,

    /// Seconds to wait for the connection and the answer.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    timeout: f64,
}

/// Runs `ferrocorn healthcheck WORDS`; `bundle_defaults` are a bundle's
/// server settings (where its `--metrics-bind` is found).
pub fn run(words: Vec<OsString>, bundle_defaults: Option<Vec<OsString>>) -> ExitCode {
    let args = match HealthcheckArgs::try_parse_from(
        std::iter::once(OsString::from("ferrocorn healthcheck")).chain(words),
    ) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    match check(&args, bundle_defaults) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            log::to_stderr(&format!("ferrocorn healthcheck: {problem}"));
            ExitCode::FAILURE
        }
    }
}

fn check(args: &HealthcheckArgs, bundle_defaults: Option<Vec<OsString>>) -> Result<(), String> {
    let address = match (&args.metrics_bind, bundle_defaults) {
        (Some(address), _) => address.clone(),
        (None, Some(defaults)) => sources::load(Vec::new(), defaults)
            .map_err(|error| format!("cannot read the bundle's settings: {error}"))?
            .metrics_bind
            .ok_or("the bundle has no --metrics-bind; pass the server's address")?,
        (None, None) => return Err("pass the server's --metrics-bind address".to_owned()),
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(format!(
            "--timeout {}: must be a positive number",
            args.timeout
        ));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let target = loopback_for_unspecified(&address)?;
    let path = if args.ready { "/readyz" } else { "/livez" };
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .map_err(|error| format!("cannot connect to {target}: {error}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("cannot send to {target}: {error}"))?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(|error| format!("no answer from {target}: {error}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).unwrap_or_default();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim();
    match status {
        "200" => Ok(()),
        "" => Err(format!("no HTTP answer from {target}{path}")),
        status => Err(format!("{target}{path} answered {status}: {body}")),
    }
}

/// The address to connect to for a listener bound to `address`: a wildcard
/// host (all interfaces) is reached on loopback.
fn loopback_for_unspecified(address: &str) -> Result<SocketAddr, String> {
    let resolved = address
        .to_socket_addrs()
        .map_err(|error| format!("--metrics-bind {address}: {error}"))?
        .next()
        .ok_or_else(|| format!("--metrics-bind {address}: the name has no address"))?;
    let ip = match resolved.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, resolved.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_bind_is_reached_on_loopback() {
        let to = |a| loopback_for_unspecified(a).unwrap().to_string();
        assert_eq!(to("0.0.0.0:9090"), "127.0.0.1:9090");
        assert_eq!(to("[::]:9090"), "[::1]:9090");
        assert_eq!(to("127.0.0.2:9090"), "127.0.0.2:9090");
        assert!(loopback_for_unspecified("no-port").is_err());
    }
}
