//! Gunicorn's proxy settings (--forwarded-allow-ips, secure scheme headers,
//! --proxy-protocol, --proxy-allow-from) and parser leniencies (--header-map,
//! --permit-obsolete-folding, --strip-header-spaces, the method settings),
//! each through the real binary: what the app sees, or the refusal.

mod common;

use common::{Server, exchange};

/// The environ JSON the probe app answers `/environ` with, or the status.
fn environ_of(server: &Server, request: &str) -> Result<String, u16> {
    let responses = exchange(server, request.as_bytes());
    let response = responses.first().expect("a response");
    if response.status == 200 {
        Ok(response.text())
    } else {
        Err(response.status)
    }
}

fn has(environ: &str, key: &str, value: &str) -> bool {
    environ.contains(&format!("\"{key}\": \"{value}\""))
}

const PLAIN: &str = "GET /environ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n";

#[test]
fn a_trusted_proxy_sets_the_scheme_and_the_client_address() {
    let server = Server::start(&["probe"]);
    let request =
        format!("{PLAIN}X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
    let environ = environ_of(&server, &request).unwrap();
    assert!(has(&environ, "wsgi.url_scheme", "https"), "{environ}");
    assert!(has(&environ, "REMOTE_ADDR", "203.0.113.9"), "{environ}");

    let forwarded = format!("{PLAIN}Forwarded: for=\"[2001:db8::7]:4711\";proto=https\r\n\r\n");
    let environ = environ_of(&server, &forwarded).unwrap();
    assert!(has(&environ, "wsgi.url_scheme", "https"), "{environ}");
    assert!(has(&environ, "REMOTE_ADDR", "2001:db8::7"), "{environ}");
}

#[test]
fn an_untrusted_peer_is_not_believed() {
    let server = Server::start(&["--forwarded-allow-ips", "10.0.0.0/8", "probe"]);
    let request =
        format!("{PLAIN}X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
    let environ = environ_of(&server, &request).unwrap();
    assert!(has(&environ, "wsgi.url_scheme", "http"), "{environ}");
    assert!(has(&environ, "REMOTE_ADDR", "127.0.0.1"), "{environ}");
}

#[test]
fn contradictory_scheme_headers_are_refused() {
    let server = Server::start(&["probe"]);
    let request = format!("{PLAIN}X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n");
    assert_eq!(environ_of(&server, &request), Err(400));
}

#[test]
fn secure_scheme_headers_can_be_replaced() {
    let server = Server::start(&["--secure-scheme-headers", "X-Scheme=https", "probe"]);
    let ours = format!("{PLAIN}X-Scheme: https\r\n\r\n");
    assert!(has(
        &environ_of(&server, &ours).unwrap(),
        "wsgi.url_scheme",
        "https"
    ));
    let default_one = format!("{PLAIN}X-Forwarded-Proto: https\r\n\r\n");
    assert!(has(
        &environ_of(&server, &default_one).unwrap(),
        "wsgi.url_scheme",
        "http"
    ));
}

#[test]
fn proxy_protocol_headers_name_the_client() {
    let server = Server::start(&["--proxy-protocol", "probe"]);
    let v1 = format!("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n{PLAIN}\r\n");
    let environ = environ_of(&server, &v1).unwrap();
    assert!(has(&environ, "REMOTE_ADDR", "192.168.0.1"), "{environ}");
    assert!(has(&environ, "REMOTE_PORT", "56324"), "{environ}");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v2.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v2.extend_from_slice(&[0xd4, 0x31, 0x00, 0x50]);
    v2.extend_from_slice(format!("{PLAIN}\r\n").as_bytes());
    let responses = exchange(&server, &v2);
    let environ = responses[0].text();
    assert!(has(&environ, "REMOTE_ADDR", "2001:db8::1"), "{environ}");
    assert!(has(&environ, "REMOTE_PORT", "54321"), "{environ}");

    // Without a header the connection is served as it is.
    let environ = environ_of(&server, &format!("{PLAIN}\r\n")).unwrap();
    assert!(has(&environ, "REMOTE_ADDR", "127.0.0.1"), "{environ}");
    // A malformed header is refused.
    let bad = format!("PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n{PLAIN}\r\n");
    assert_eq!(environ_of(&server, &bad), Err(400));
}

#[test]
fn a_proxy_header_from_a_peer_not_allowed_is_forbidden() {
    let server = Server::start(&[
        "--proxy-protocol",
        "--proxy-allow-from",
        "10.1.1.1",
        "probe",
    ]);
    let v1 = format!("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n{PLAIN}\r\n");
    assert_eq!(environ_of(&server, &v1), Err(403));
}

#[test]
fn underscore_headers_are_dropped_refused_or_passed_as_header_map_says() {
    let request = format!("{PLAIN}X_Secret: 1\r\n\r\n");
    let dropped = environ_of(&Server::start(&["probe"]), &request).unwrap();
    assert!(!dropped.contains("HTTP_X_SECRET"), "{dropped}");
    let refused = environ_of(
        &Server::start(&["--header-map", "refuse", "probe"]),
        &request,
    );
    assert_eq!(refused, Err(400));
    let passed = environ_of(
        &Server::start(&["--header-map", "dangerous", "probe"]),
        &request,
    )
    .unwrap();
    assert!(has(&passed, "HTTP_X_SECRET", "1"), "{passed}");
}

#[test]
fn parser_leniencies_apply_only_when_asked() {
    let folded = format!("{PLAIN}X-Long: one\r\n two\r\n\r\n");
    let spaced = format!("{PLAIN}X-Spaced : yes\r\n\r\n");
    let lower = "get /environ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let strict = Server::start(&["probe"]);
    assert_eq!(environ_of(&strict, &folded), Err(400));
    assert_eq!(environ_of(&strict, &spaced), Err(400));
    assert_eq!(environ_of(&strict, lower), Err(400));

    let lenient = Server::start(&[
        "--permit-obsolete-folding",
        "--strip-header-spaces",
        "--permit-unconventional-http-method",
        "--casefold-http-method",
        "probe",
    ]);
    assert!(has(
        &environ_of(&lenient, &folded).unwrap(),
        "HTTP_X_LONG",
        "one two"
    ));
    assert!(has(
        &environ_of(&lenient, &spaced).unwrap(),
        "HTTP_X_SPACED",
        "yes"
    ));
    assert!(has(
        &environ_of(&lenient, lower).unwrap(),
        "REQUEST_METHOD",
        "GET"
    ));
}

#[test]
fn root_path_becomes_script_name_and_leaves_path_info() {
    let server = Server::start(&["--root-path", "/app/", "probe"]);
    let request = "GET /app/environ/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let environ = environ_of(&server, request).unwrap();
    assert!(has(&environ, "SCRIPT_NAME", "/app"), "{environ}");
    assert!(has(&environ, "PATH_INFO", "/environ/x"), "{environ}");
    // SCRIPT_NAME in the environment does the same, as with Gunicorn.
    let server = Server::start_with(
        &common::apps_dir(),
        &["probe"],
        &[("SCRIPT_NAME", "/mounted")],
    );
    let request = "GET /mounted/environ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let environ = environ_of(&server, request).unwrap();
    assert!(has(&environ, "SCRIPT_NAME", "/mounted"), "{environ}");
    assert!(has(&environ, "PATH_INFO", "/environ"), "{environ}");
}
