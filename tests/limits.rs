//! `--request-timeout` and `--max-worker-memory`: a request that runs too
//! long is cut off inside Python (or given up when it will not stop) and a
//! request that takes too much memory fails, while the server keeps
//! answering and loses no other request.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server, TIMEOUT, apps_dir, run_to_exit};

fn pid_of(server: &Server) -> String {
    let response = server.get("/");
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

fn get_in_background(server: &Server, path: &str) -> std::thread::JoinHandle<Option<u16>> {
    let stream = server.connect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let mut client = Client::new(stream);
        client.send(request.as_bytes());
        client.response(false).map(|r| r.status)
    })
}

#[test]
fn a_spinning_request_is_interrupted_with_503_and_the_worker_serves_on() {
    let server = Server::start(&["--request-timeout", "1", "limits:application"]);
    let before = pid_of(&server);
    let started = Instant::now();
    let response = server.get("/spin");
    assert_eq!(response.status, 503);
    assert!(started.elapsed() < Duration::from_secs(1) + TIMEOUT / 4);
    assert!(server.wait_for_log("Request timed out (--request-timeout): GET /spin"));
    // The log reader appends line by line: wait for the traceback's last one.
    assert!(
        server.wait_for_log("RequestTimeout: the request ran longer"),
        "the traceback is logged"
    );
    assert_eq!(
        pid_of(&server),
        before,
        "the same worker answers: it was not replaced"
    );
    // finally blocks run: the interrupt is an exception in the app's code.
    assert_eq!(server.get("/cleanup").status, 503);
    assert!(server.wait_for_log("cleaned up after the interrupt"));
}

#[test]
fn a_request_that_swallows_the_interrupt_is_given_up_and_queued_requests_are_not_lost() {
    let server = Server::start(&[
        "--request-timeout",
        "1",
        "--threads",
        "1",
        "limits:application",
    ]);
    let before = pid_of(&server);
    let stuck = get_in_background(&server, "/swallow");
    assert!(server.wait_for_log("swallowing"));
    // Queued behind the stuck request in the same worker (one interpreter).
    let queued = get_in_background(&server, "/");
    assert_eq!(
        stuck.join().unwrap(),
        Some(503),
        "the stuck request is answered 503"
    );
    // The response can overtake its log lines (another pipe, another reader).
    assert!(server.wait_for_log("swallowed an interrupt"));
    assert!(server.wait_for_log("giving it up and replacing this worker"));
    assert_eq!(
        queued.join().unwrap(),
        Some(200),
        "the queued request was served"
    );
    assert!(server.wait_for_log("Worker retiring: request GET /swallow was given up"));
    assert!(server.wait_for_log(&format!(
        "Worker exiting (pid: {}",
        before.trim().trim_start_matches("pid ")
    )));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = pid_of(&server);
        if now != before {
            break;
        }
        assert!(Instant::now() < deadline, "the worker was not replaced");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_above_its_memory_limit_finishes_the_request_and_is_replaced() {
    let server = Server::start(&["--max-worker-memory", "300", "limits:application"]);
    let first = pid_of(&server);
    let deadline = Instant::now() + TIMEOUT;
    // Each /grow keeps 32 MB more; every one of them is answered in full.
    while !server.log().contains("above --max-worker-memory 300 MB") {
        assert_eq!(server.get("/grow").status, 200);
        assert!(Instant::now() < deadline, "the limit was never noticed");
    }
    assert!(server.wait_for_log("Worker exiting"));
    let deadline = Instant::now() + TIMEOUT;
    while pid_of(&server) == first {
        assert!(Instant::now() < deadline, "no replacement worker");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_memory_balloon_fails_without_taking_the_server_down_even_after_raising_the_limit() {
    let server = Server::start(&[
        "--sandbox",
        "--max-worker-memory",
        "150",
        "limits:application",
    ]);
    for query in ["", "?raise-limit-first"] {
        // Counted from here: the previous pass's lines must not answer for this one.
        let before = server.log().matches("MemoryError").count();
        let response = server.get(&format!("/balloon{query}"));
        assert_eq!(response.status, 500, "{}", response.text());
        assert!(
            common::wait_until(TIMEOUT, || server.log().matches("MemoryError").count()
                > before),
            "{}",
            server.log()
        );
        assert_eq!(server.get("/").status, 200, "the server still answers");
    }
    assert!(
        server.wait_for_log("could not raise the data limit"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("raised the data limit\n"));
}

#[test]
fn a_memory_limit_below_what_the_app_needs_is_refused_at_boot() {
    let (status, log) = run_to_exit(
        &apps_dir(),
        &["--max-worker-memory", "1", "limits:application"],
    );
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR: {log}");
    assert!(log.contains("--max-worker-memory"), "{log}");
}
