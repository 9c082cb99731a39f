//! Malformed requests get the right status and a closed connection, never
//! reach the app, and nothing pipelined behind them is processed.

mod common;

use common::{Client, Server, exchange, scratch_dir};

/// Sends `request` followed by a valid pipelined request; expects exactly one
/// response with `status`, the connection closed, and no app call at all.
fn assert_rejected(server: &Server, log: &std::path::Path, request: &[u8], status: u16) {
    let mut bytes = request.to_vec();
    bytes.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    let responses = exchange(server, &bytes);
    let shown = String::from_utf8_lossy(request);
    assert_eq!(responses.len(), 1, "one response for {shown:?}");
    assert_eq!(
        responses[0].status,
        status,
        "status for {shown:?}: {}",
        responses[0].text()
    );
    assert_eq!(responses[0].header("connection"), Some("close"));
    let calls = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        calls.is_empty(),
        "the app was called for {shown:?}: {calls}"
    );
}

fn probe_server(extra: &[&str]) -> (Server, std::path::PathBuf) {
    let dir = scratch_dir("bad");
    let log = dir.join("calls.log");
    let mut args = extra.to_vec();
    args.push("probe:application");
    let server = Server::start_with(
        &common::apps_dir(),
        &args,
        &[("PROBE_LOG", log.to_str().unwrap())],
    );
    (server, log)
}

#[test]
fn framing_conflicts_are_refused() {
    let (server, log) = probe_server(&[]);
    let cases: &[&[u8]] = &[
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST /x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
        b"POST /x HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
    ];
    for case in cases {
        assert_rejected(&server, &log, case, 400);
    }
    assert_rejected(
        &server,
        &log,
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn malformed_chunked_bodies_are_refused_before_the_app_runs() {
    let (server, log) = probe_server(&[]);
    let head = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5\r\nhello\r\nzz\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
        "-1\r\n",
    ] {
        assert_rejected(&server, &log, format!("{head}{body}").as_bytes(), 400);
    }
}

#[test]
fn line_and_field_syntax_errors_are_refused() {
    let (server, log) = probe_server(&[]);
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nX : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET foo HTTP/1.1\r\n\r\n",
        b"GET * HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / HTTX/1.1\r\n\r\n",
    ];
    for case in cases {
        assert_rejected(&server, &log, case, 400);
    }
}

#[test]
fn limits_give_414_431_413_and_unknown_versions_505() {
    let (server, log) = probe_server(&["--limit-request-body", "100"]);
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
    assert_rejected(&server, &log, long_target.as_bytes(), 414);
    let long_field = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_rejected(&server, &log, long_field.as_bytes(), 431);
    let many_fields = format!("GET / HTTP/1.1\r\n{}\r\n", "X: a\r\n".repeat(101));
    assert_rejected(&server, &log, many_fields.as_bytes(), 431);
    assert_rejected(
        &server,
        &log,
        b"POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
        413,
    );
    let big_chunks = format!(
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n{}\r\n0\r\n\r\n",
        "b".repeat(101)
    );
    assert_rejected(&server, &log, big_chunks.as_bytes(), 413);
    assert_rejected(&server, &log, b"GET / HTTP/2.0\r\n\r\n", 505);
    assert_rejected(
        &server,
        &log,
        b"PUT / HTTP/1.1\r\nExpect: telepathy\r\nContent-Length: 1\r\n\r\nx",
        417,
    );
}

#[test]
fn configured_limits_apply() {
    let (server, log) = probe_server(&[
        "--limit-request-line",
        "20",
        "--limit-request-fields",
        "2",
        "--limit-request-field_size",
        "30",
    ]);
    assert_rejected(
        &server,
        &log,
        b"GET /aaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
        414,
    );
    assert_rejected(
        &server,
        &log,
        b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        431,
    );
    assert_rejected(
        &server,
        &log,
        b"GET / HTTP/1.1\r\nA: 123456789012345678901234567\r\n\r\n",
        431,
    );
    // Within the limits the same server answers.
    assert_eq!(server.get("/x").status, 404);
}

#[test]
fn a_request_cut_short_gets_400_and_a_close() {
    let (server, log) = probe_server(&[]);
    for partial in [
        &b"GET / HTTP/1.1\r\nHost: t\r\n"[..],
        b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
    ] {
        let responses = exchange(&server, partial);
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].status, 400);
    }
    assert!(std::fs::read_to_string(&log).unwrap_or_default().is_empty());
}

#[test]
fn requests_before_a_bad_one_are_still_answered() {
    let (server, _log) = probe_server(&[]);
    let responses = exchange(
        &server,
        b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    );
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![404, 400]);
}

#[test]
fn a_stalled_request_times_out_with_408() {
    let (server, log) = probe_server(&["--read-timeout", "1"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let started = std::time::Instant::now();
    let response = client.response(false).expect("a 408");
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(client.is_closed_by_server());
    assert!(std::fs::read_to_string(&log).unwrap_or_default().is_empty());
}

#[test]
fn a_request_without_host_is_served_with_the_socket_name() {
    let (server, _log) = probe_server(&[]);
    let responses = exchange(
        &server,
        b"GET /environ HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let body = responses[0].text();
    assert!(body.contains("\"SERVER_NAME\": \"127.0.0.1\""), "{body}");
    assert!(
        body.contains(&format!("\"SERVER_PORT\": \"{}\"", server.addr().port())),
        "{body}"
    );
}

#[test]
fn zero_lifts_the_line_limits_as_in_gunicorn() {
    let (server, _log) = probe_server(&[
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
    ]);
    let long_target = format!("/{}", "a".repeat(9000));
    let long_header = "v".repeat(9000);
    let request = format!(
        "GET {long_target} HTTP/1.1\r\nHost: t\r\nX-Long: {long_header}\r\nConnection: close\r\n\r\n"
    );
    let responses = common::exchange(&server, request.as_bytes());
    assert_eq!(responses[0].status, 404, "over 8190 bytes each, yet served");
    let too_long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000));
    let responses = common::exchange(&server, too_long.as_bytes());
    assert_eq!(
        responses[0].status, 414,
        "still bounded by what is buffered for a line"
    );
}
