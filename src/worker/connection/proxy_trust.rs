//! What a trusted proxy says of the client (`--forwarded-allow-ips`,
//! `secure_scheme_headers`): the connection's facts as one request sees them.

use super::settings::ProxySettings;
use crate::http::ParseError;
use crate::http::forwarded::proxy_view;
use crate::http::head::RequestHead;
use crate::net::peer::ConnectionInfo;

/// The facts `head` should be served with, when its forwarding headers
/// change them; `None` when they say nothing. The caller has checked that
/// the peer is a trusted forwarder. Conflicting scheme headers are an error.
pub fn request_view(
    info: &ConnectionInfo,
    head: &RequestHead,
    proxy: &ProxySettings,
) -> Result<Option<ConnectionInfo>, ParseError> {
    let view = proxy_view(head, &proxy.scheme_headers, &proxy.forwarded_from)?;
    if view.https.is_none() && view.client.is_none() {
        return Ok(None);
    }
    let mut seen = info.clone();
    seen.https = view.https.unwrap_or(seen.https);
    if let Some(client) = view.client {
        seen.remote_addr = client.into();
    }
    Ok(Some(seen))
}
