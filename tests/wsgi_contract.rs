//! PEP 3333 as the app sees it: environ, wsgi.input, start_response, write(),
//! close(), and what happens when the app breaks the contract.

mod common;

use common::{Client, Server, exchange, scratch_dir, wait_for_file};

fn json_field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let marker = format!("\"{key}\": ");
    let start = body.find(&marker)? + marker.len();
    let rest = &body[start..];
    let end = match rest.strip_prefix('"') {
        Some(quoted) => quoted.find('"')? + 2,
        None => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

#[test]
fn environ_has_every_required_key() {
    let server = Server::start(&["probe:application"]);
    let request = b"POST /environ/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: example.com:8080\r\n\
                    Content-Type: text/plain\r\nContent-Length: 2\r\nX-Many: 1\r\nX-Many: 2\r\n\
                    Connection: close\r\n\r\nhi";
    let body = exchange(&server, request).pop().unwrap().text();
    let expect = [
        ("REQUEST_METHOD", "\"POST\""),
        ("SCRIPT_NAME", "\"\""),
        // PEP 3333: PATH_INFO is the percent-decoded bytes as latin-1 (é is two chars).
        ("PATH_INFO", "\"/environ/caf\\u00c3\\u00a9 x\""),
        ("QUERY_STRING", "\"a=1&b=%20\""),
        ("RAW_URI", "\"/environ/caf%C3%A9%20x?a=1&b=%20\""),
        ("CONTENT_TYPE", "\"text/plain\""),
        ("CONTENT_LENGTH", "\"2\""),
        ("SERVER_NAME", "\"example.com\""),
        ("SERVER_PORT", "\"8080\""),
        ("SERVER_PROTOCOL", "\"HTTP/1.1\""),
        ("REMOTE_ADDR", "\"127.0.0.1\""),
        ("HTTP_HOST", "\"example.com:8080\""),
        ("HTTP_X_MANY", "\"1,2\""),
        ("wsgi.version", "[1"),
        ("wsgi.url_scheme", "\"http\""),
        ("wsgi.multithread", "false"),
        ("wsgi.multiprocess", "false"),
        ("wsgi.run_once", "false"),
        ("wsgi.input_terminated", "true"),
        ("wsgi.input.type", "\"Input\""),
        ("wsgi.errors.type", "\"ErrorStream\""),
        ("has_file_wrapper", "true"),
    ];
    for (key, value) in expect {
        assert_eq!(json_field(&body, key), Some(value), "{key} in {body}");
    }
    let port: u16 = json_field(&body, "REMOTE_PORT")
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert!(port > 0);
    assert_eq!(
        json_field(&body, "HTTP_CONTENT_TYPE"),
        None,
        "CONTENT_TYPE has no HTTP_ twin"
    );
}

#[test]
fn wsgi_input_supports_the_pep_3333_reads() {
    let server = Server::start(&["probe:application"]);
    let post = |query: &str, body: &str| {
        let request = format!(
            "POST /input?{query} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        exchange(&server, request.as_bytes()).pop().unwrap().text()
    };
    assert_eq!(post("lines", "a\nbb\nccc"), r#"["a\n", "bb\n", "ccc"]"#);
    assert_eq!(post("iter", "a\nbb\n"), r#"["a\n", "bb\n"]"#);
    assert_eq!(post("readline", "one\ntwo\n"), r#"["one\n", "tw", "o\n"]"#);
    assert_eq!(post("sized", "abcdef"), r#"["abc", "def", ""]"#);
}

#[test]
fn large_bodies_spill_to_disk_and_read_back_whole() {
    let server = Server::start(&["--body-spill-size", "1000", "probe:application"]);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let expected_sum: u64 = body.iter().map(|&b| b as u64).sum::<u64>() % 1_000_003;
    let mut request = format!(
        "POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let text = exchange(&server, &request).pop().unwrap().text();
    assert!(text.contains("\"length\": 300000"), "{text}");
    assert!(text.contains(&format!("\"sum\": {expected_sum}")), "{text}");
}

#[test]
fn write_callable_and_file_wrapper_work() {
    let server = Server::start(&["probe:application"]);
    assert_eq!(server.get("/write").text(), "written returned");
    assert_eq!(server.get("/file-wrapper").text(), "wrapped file body");
}

#[test]
fn exc_info_replaces_headers_before_they_are_sent() {
    let server = Server::start(&["probe:application"]);
    let response = server.get("/exc-info");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("x-replaced"), Some("yes"));
    assert_eq!(response.text(), "replaced");
}

#[test]
fn exc_info_after_the_head_reraises_and_cuts_the_response() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /exc-info-after-head HTTP/1.1\r\nHost: t\r\n\r\n");
    let raw = String::from_utf8_lossy(&client.read_to_end()).into_owned();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.contains("head sent"));
    assert!(!raw.contains("unreachable"));
    assert!(
        !raw.ends_with("0\r\n\r\n"),
        "a cut response must not end with the last chunk"
    );
    assert!(server.wait_for_log("KeyError"));
}

#[test]
fn app_exceptions_give_500_a_logged_traceback_and_the_worker_keeps_serving() {
    let server = Server::start(&["probe:application"]);
    let response = server.get("/raise");
    assert_eq!(response.status, 500);
    assert!(
        !response.text().contains("ValueError"),
        "no traceback on the wire"
    );
    assert!(server.wait_for_log("Traceback"));
    assert!(server.wait_for_log("ValueError: the app failed on purpose"));
    assert_eq!(server.get("/write").status, 200);
}

/// Contract breaks the server finds itself, outside Python code: the probe
/// path and what the log says of it.
const FOUND_OUTSIDE_PYTHON: [(&str, &str); 3] = [
    ("/str-body", "must yield bytes, not str"),
    ("/no-start-response", "before calling start_response"),
    ("/not-iterable", "must return an iterable of bytes, not int"),
];

#[test]
fn contract_violations_are_500s_with_a_logged_reason() {
    let server = Server::start(&["probe:application"]);
    let cases = [
        ("/hop-by-hop", "hop-by-hop header \"Connection\""),
        ("/injection", "control characters"),
        ("/bad-status", "invalid status \"OK\""),
        ("/twice", "start_response() called a second time"),
    ];
    for (path, logged) in cases.into_iter().chain(FOUND_OUTSIDE_PYTHON) {
        let response = server.get(path);
        assert_eq!(response.status, 500, "{path}");
        assert!(response.header("x-evil").is_none() && response.header("set-cookie").is_none());
        assert!(
            server.wait_for_log(logged),
            "log for {path} should say {logged:?}:\n{}",
            server.log()
        );
    }
}

#[test]
fn a_contract_break_found_outside_python_code_is_logged_once() {
    let server = Server::start(&["probe:application"]);
    for (path, _) in FOUND_OUTSIDE_PYTHON {
        assert_eq!(server.get(path).status, 500, "{path}");
    }
    // Log lines arrive in order: once this one is in, the earlier ones are too.
    assert_eq!(server.get("/raise").status, 500);
    assert!(server.wait_for_log("ValueError: the app failed on purpose"));
    let log = server.log();
    for (path, logged) in FOUND_OUTSIDE_PYTHON {
        assert_eq!(log.matches(logged).count(), 1, "{path}:\n{log}");
    }
}

#[test]
fn an_iter_method_that_raises_is_the_apps_error_with_its_traceback() {
    let server = Server::start(&["probe:application"]);
    assert_eq!(server.get("/iter-raises").status, 500);
    assert!(
        server.wait_for_log("ValueError: __iter__ failed on purpose"),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("iterable of bytes"),
        "{}",
        server.log()
    );
}

#[test]
fn close_is_called_after_success_failure_and_disconnect() {
    let dir = scratch_dir("close");
    let log = dir.join("probe.log");
    let server = Server::start_with(
        &common::apps_dir(),
        &["probe:application"],
        &[("PROBE_LOG", log.to_str().unwrap())],
    );
    assert_eq!(server.get("/closing").text(), "ab");

    let mut client = Client::new(server.connect());
    client.send(b"GET /raise-late HTTP/1.1\r\nHost: t\r\n\r\n");
    let raw = client.read_to_end();
    assert!(String::from_utf8_lossy(&raw).contains("partial"));

    // A client that goes away in the middle of a large streamed body.
    let mut client = Client::new(server.connect());
    client.send(b"GET /slow-closing HTTP/1.1\r\nHost: t\r\n\r\n");
    client.response_head_only();
    drop(client);

    wait_for_file(
        &log,
        &["closed closing", "closed raise-late", "closed slow-closing"],
    );
}

#[test]
fn an_endless_body_stops_at_its_content_length() {
    let dir = scratch_dir("endless");
    let log = dir.join("probe.log");
    let server = Server::start_with(
        &common::apps_dir(),
        &["probe:application"],
        &[("PROBE_LOG", log.to_str().unwrap())],
    );
    let response = server.get("/endless");
    assert_eq!(response.body, b"abcab");
    wait_for_file(&log, &["closed endless"]);
}

#[test]
fn wsgi_errors_goes_to_the_error_log() {
    let server = Server::start(&["probe:application"]);
    assert_eq!(server.get("/errors").text(), "logged");
    assert!(server.wait_for_log("message for the error log"));
}
