//! One outcome per request: the access log, the `post_request` hook and
//! `/metrics` agree on what was sent, for a request that succeeded, failed
//! before its response started (500), was cut by `--request-timeout`
//! before (503) or after its response started, and failed mid-body.

mod common;

use common::{
    Client, Server, TIMEOUT, metric, metrics_page, scratch_dir, wait_for_file, wait_until,
};

const APP: &str = r#"
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("before the response")
    if path == "/spin":
        while True:
            pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/ok":
        return [b"fine"]
    def body():
        yield b"first part "
        if path == "/cut":
            raise RuntimeError("in the middle of the body")
        while True:
            pass
    return body()
"#;

const CONFIG: &str = r#"
import os
LOG = os.path.join(os.path.dirname(__file__), "post_request.log")

def post_request(worker, req, environ, resp):
    with open(LOG, "a") as f:
        f.write("post_request %s %s %s\n" % (req.path, resp.status_code, resp.sent))
"#;

/// What each request is answered with on the wire, and how much body.
const CASES: [(&str, u16, &str); 5] = [
    ("/ok", 200, "4"),
    ("/boom", 500, "0"),
    ("/spin", 503, "0"),
    ("/cut", 200, "11"),
    ("/cut-timeout", 200, "11"),
];

#[test]
fn the_access_log_post_request_and_metrics_agree_on_every_outcome() {
    let dir = scratch_dir("request-outcome");
    std::fs::write(dir.join("outcomes.py"), APP).unwrap();
    std::fs::write(dir.join("gunicorn.conf.py"), CONFIG).unwrap();
    let server = Server::start_with(
        &dir,
        &[
            "--request-timeout",
            "1",
            "--metrics-bind",
            "127.0.0.1:0",
            "--access-logfile",
            "-",
            "--access-logformat",
            "access %(U)s %(s)s %(B)s",
            "outcomes:application",
        ],
        &[],
    );
    let metrics = server.metrics_address();
    for (path, status, sent) in CASES {
        let mut client = Client::new(server.connect());
        client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let (wire_status, _) = client.response_head_only();
        assert_eq!(wire_status, status, "{path} on the wire");
        assert!(
            server.wait_for_log(&format!("access {path} {status} {sent}")),
            "{path}: no access line with {status} {sent}:\n{}",
            server.log()
        );
        wait_for_file(
            &dir.join("post_request.log"),
            &[&format!("post_request {path} {status} {sent}\n")],
        );
    }
    // Counted once each request's thread is done with it, after post_request.
    let expected = [
        (
            r#"ferrocorn_requests_total{method="GET",status_class="2xx"}"#,
            "3",
        ),
        (
            r#"ferrocorn_requests_total{method="GET",status_class="5xx"}"#,
            "2",
        ),
        (r#"ferrocorn_request_failures_total{kind="app_error"}"#, "2"),
        (r#"ferrocorn_request_failures_total{kind="timeout"}"#, "2"),
        (r#"ferrocorn_request_failures_total{kind="panic"}"#, "0"),
    ];
    let mut text = String::new();
    let agree = wait_until(TIMEOUT, || {
        text = metrics_page(metrics);
        expected
            .iter()
            .all(|(series, value)| metric(&text, series).as_deref() == Some(*value))
    });
    assert!(agree, "metrics are not {expected:?}:\n{text}");
    // /spin and /cut-timeout each ran on the CPU until --request-timeout (1 s).
    let cpu: f64 = metric(&text, "ferrocorn_request_cpu_seconds_total")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no request CPU time in\n{text}"));
    assert!((0.5..30.0).contains(&cpu), "request CPU {cpu} s");
}
