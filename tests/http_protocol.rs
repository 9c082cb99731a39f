//! HTTP/1.1 behaviour on the wire: persistence, pipelining, framing, interim
//! responses, HEAD, server headers.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Client, Server, exchange};

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    for path in ["/environ", "/generator", "/environ"] {
        client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let response = client
            .response(false)
            .expect("response on the same connection");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("connection"),
            None,
            "1.1 keep-alive needs no Connection header"
        );
    }
}

#[test]
fn pipelined_requests_get_responses_in_order() {
    let server = Server::start(&["--threads", "2", "probe:application"]);
    let request = b"GET /sleep?0.3 HTTP/1.1\r\nHost: t\r\n\r\n\
                    GET /generator HTTP/1.1\r\nHost: t\r\n\r\n\
                    GET /write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let responses = exchange(&server, request);
    let bodies: Vec<String> = responses.iter().map(|r| r.text()).collect();
    assert_eq!(bodies, vec!["slept", "one two three", "written returned"]);
}

#[test]
fn http10_closes_unless_keep_alive_is_asked_for() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /environ HTTP/1.0\r\n\r\n");
    let response = client.response(false).unwrap();
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed_by_server());

    let mut client = Client::new(server.connect());
    client.send(b"GET /environ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = client.response(false).unwrap();
    assert_eq!(response.header("connection"), Some("keep-alive"));
    client.send(b"GET /environ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(client.response(false).unwrap().status, 200);
}

#[test]
fn unknown_length_is_chunked_on_http11_and_close_delimited_on_http10() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /generator HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response(false).unwrap();
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.text(), "one two three");

    let mut client = Client::new(server.connect());
    client.send(b"GET /generator HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = client.response(false).unwrap();
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.text(), "one two three");
}

#[test]
fn list_bodies_get_a_content_length() {
    let server = Server::start(&["probe:application"]);
    let response = server.get("/write");
    // write() streams, so that response is chunked; a plain list is counted.
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    let response = server.get("/file-wrapper");
    assert_eq!(response.text(), "wrapped file body");
    let response = server.get("/environ");
    assert!(response.header("content-length").is_some());
}

#[test]
fn chunked_request_bodies_are_decoded_before_the_app_runs() {
    let server = Server::start(&["probe:application"]);
    let request = b"POST /input HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                    5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: ok\r\n\r\n";
    let response = exchange(&server, request).pop().unwrap();
    let json = response.text();
    assert!(json.contains("\"length\": 11"), "{json}");
    assert!(json.contains("\"content_length\": \"11\""), "{json}");
}

#[test]
fn expect_continue_gets_an_interim_response_before_the_body() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(
        b"PUT /input HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = client.response(false).expect("interim response");
    assert_eq!(interim.status, 100);
    client.send(b"hello");
    let response = client.response(false).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.text().contains("\"length\": 5"));
}

#[test]
fn head_responses_have_headers_but_no_body() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"HEAD /environ HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response(true).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.header("content-length").is_some());
    // No body bytes may follow: the next response starts right away.
    client.send(b"GET /generator HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response(false).unwrap().text(), "one two three");
}

#[test]
fn responses_carry_date_and_server() {
    let server = Server::start(&["probe:application"]);
    let response = server.get("/environ");
    assert_eq!(response.header("server"), Some("ferrocorn"));
    let date = response.header("date").expect("Date header");
    assert!(
        date.ends_with(" GMT") && date.len() == 29,
        "IMF-fixdate: {date}"
    );
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_and_the_connection_closed() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /too-long HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response(false).unwrap();
    assert_eq!(response.body, b"01234");
    assert!(
        client.is_closed_by_server(),
        "extra bytes must not reach the client as a next response"
    );
}

#[test]
fn a_body_shorter_than_its_content_length_closes_the_connection() {
    let server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /too-short HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut received = Vec::new();
    let _ = client_read_all(&mut client, &mut received);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.ends_with("\r\n\r\n01234"), "{text}");
}

fn client_read_all(client: &mut Client, into: &mut Vec<u8>) -> std::io::Result<usize> {
    let bytes = client.read_to_end();
    into.extend_from_slice(&bytes);
    Ok(bytes.len())
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_timeout() {
    let server = Server::start(&["--keep-alive", "1", "probe:application"]);
    let mut stream = server.connect();
    let mut client = Client::new(stream.try_clone().unwrap());
    client.send(b"GET /environ HTTP/1.1\r\nHost: t\r\n\r\n");
    client.response(false).unwrap();
    let idle_since = Instant::now();
    let mut byte = [0u8; 1];
    let read = stream.read(&mut byte);
    let waited = idle_since.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the server to close"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed too late: {waited:?}"
    );
}

#[test]
fn keep_alive_zero_disables_persistence() {
    let server = Server::start(&["--keep-alive", "0", "probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /environ HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        client.response(false).unwrap().header("connection"),
        Some("close")
    );
    assert!(client.is_closed_by_server());
}

#[test]
fn large_responses_arrive_whole() {
    let server = Server::start(&["probe:application"]);
    let response = server.get("/big?5000000");
    assert_eq!(response.body.len(), 5_000_000);
    assert!(response.body.iter().all(|&b| b == b'x'));
}

/// Each response goes out a write budget per turn of the event loop: two
/// pipelined multi-megabyte responses on one connection, beside a second
/// client downloading, still arrive whole, in order, and the connection
/// then serves its next request.
#[test]
fn large_responses_written_over_many_turns_arrive_whole_and_in_order() {
    let server = Server::start(&["--threads", "2", "probe:application"]);
    let mut beside = Client::new(server.connect());
    let mut client = Client::new(server.connect());
    beside.send(b"GET /big?4000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    client.send(
        b"GET /big?3000000 HTTP/1.1\r\nHost: t\r\n\r\nGET /big?2000000 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for size in [3_000_000, 2_000_000] {
        let response = client.response(false).expect("a response");
        assert_eq!(response.body.len(), size);
        assert!(response.body.iter().all(|&b| b == b'x'));
    }
    assert_eq!(
        beside.response(false).expect("a response").body.len(),
        4_000_000
    );
    client.send(b"GET /big?10 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        client
            .response(false)
            .expect("the next response")
            .body
            .len(),
        10
    );
}

/// CPU ticks (user + system) a process has used, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// While keep-alive clients keep the only interpreter busy with short
/// requests, a new client queues behind them. It used to wait in the backlog
/// for a moment when the interpreter happened to be free: up to a second
/// under wrk with the CPU saturated (on an idle machine the loop mostly
/// catches such a moment, so this guards the behaviour more than the race;
/// the rule itself is unit-tested in `activity.rs`).
#[test]
fn a_new_client_is_served_while_keep_alive_clients_keep_the_interpreter_busy() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let server = Server::start(&["--threads", "1", "probe"]);
    let stop = Arc::new(AtomicBool::new(false));
    let busy_clients = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..16)
        .map(|_| {
            let mut client = Client::new(server.connect());
            let (stop, busy_clients) = (stop.clone(), busy_clients.clone());
            std::thread::spawn(move || {
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) {
                    client.send(b"GET /sleep?0.002 HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(client.response(false).unwrap().text(), "slept");
                    served += 1;
                    if served == 1 {
                        busy_clients.fetch_add(1, Ordering::Relaxed);
                    }
                }
                served
            })
        })
        .collect();
    common::wait_for("every keep-alive client answered once", || {
        busy_clients.load(Ordering::Relaxed) == 16
    });
    for round in 0..5 {
        let started = Instant::now();
        assert_eq!(server.get("/pid").status, 200);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(500),
            "round {round}: the new client waited {waited:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        assert!(thread.join().unwrap() > 0);
    }
}

#[test]
fn a_worker_waiting_for_a_free_interpreter_does_not_spin() {
    // Listeners are level-triggered: while every interpreter is busy the
    // worker must stop watching them, or clients waiting in the backlog
    // would wake its loop over and over.
    let server = Server::start(&["--threads", "1", "probe"]);
    let pid: u32 = server.get("/pid").text().parse().unwrap();
    let marker = common::scratch_dir("no-spin").join("started");
    let mut busy = Client::new(server.connect());
    busy.send(
        format!(
            "GET /sleep-marked?1.5&{} HTTP/1.1\r\nHost: t\r\n\r\n",
            marker.display()
        )
        .as_bytes(),
    );
    common::wait_for_file(&marker, &["started"]);
    let mut waiting = Client::new(server.connect());
    waiting.send(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
    let before = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let used = cpu_ticks(pid) - before;
    // A spinning loop would use ~100 ticks (one core) in that second.
    assert!(used < 20, "the worker used {used} ticks while waiting");
    assert_eq!(busy.response(false).unwrap().text(), "slept");
    assert_eq!(waiting.response(false).unwrap().text(), pid.to_string());
}
