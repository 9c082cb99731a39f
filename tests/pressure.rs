//! New clients under pressure: at `--worker-connections`, idle and slow
//! clients are shed for new ones instead of locking them out in the listen
//! backlog; a worker that declines a new client leaves it to one that takes it.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Client, Server, TIMEOUT, scratch_dir};

/// Raises this process's descriptor limit (the server inherits it) to hold
/// `needed` client sockets.
fn allow_descriptors(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= needed,
            "this test needs {needed} descriptors; the hard limit is {}",
            limit.rlim_max
        );
        limit.rlim_cur = limit.rlim_cur.max(needed);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// A connection that sent `bytes` of a request head and waits.
fn partial_head(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    // The server may have shed it already: a failed write is part of the test.
    let _ = stream.write_all(bytes);
    stream
}

/// One `Connection: close` request on a new connection; how long it took.
fn normal_request(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    stream
        .write_all(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("no response after {:?}: {e}", started.elapsed()))?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&response).into_owned());
    }
    Ok(started.elapsed())
}

/// Whether the server has closed `stream` (end of stream or reset), without
/// waiting if it has not.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

fn wait_closed(stream: &mut TcpStream, what: &str) {
    assert!(
        common::wait_until(TIMEOUT, || closed_by_server(stream)),
        "{what} was not closed"
    );
}

#[test]
fn slow_clients_far_beyond_the_limit_do_not_lock_out_a_normal_client() {
    const SLOW: usize = 2_000;
    allow_descriptors(SLOW as u64 + 512);
    let server = Server::start(&["-w", "2", "--worker-connections", "100", "probe"]);
    // Ten times what the two workers may hold, each with half a request head.
    let slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| partial_head(server.addr(), b"GET /slow HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    let mut waits = Vec::new();
    for _ in 0..20 {
        match normal_request(server.addr()) {
            Ok(wait) => waits.push(wait),
            Err(error) => panic!("a normal client was locked out: {error}\n{}", server.log()),
        }
    }
    assert!(
        server.wait_for_log("At the connection limit (100, --worker-connections): closed"),
        "{}",
        server.log()
    );
    waits.sort();
    eprintln!(
        "normal clients' waits: median {:?}, longest {:?}",
        waits[10], waits[19]
    );
    drop(slow);
}

#[test]
fn idle_keep_alive_connections_go_first_then_the_partial_heads_with_fewest_bytes() {
    let server = Server::start(&["-w", "1", "--worker-connections", "4", "probe"]);
    let answered = |server: &Server| {
        let mut client = Client::new(server.connect());
        client.send(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(client.response(false).expect("a response").status, 200);
        client
    };
    let older_idle = answered(&server);
    let long_head = partial_head(
        server.addr(),
        b"GET /slow HTTP/1.1\r\nHost: example\r\nX-A: b",
    );
    let short_head = partial_head(server.addr(), b"GET /");
    let newer_idle = answered(&server);
    // The worker now holds 4: each newcomer (a partial head longer than any
    // of theirs) takes the place of the cheapest one.
    let mut held = [
        ("the older idle connection", older_idle.into_stream()),
        ("the newer idle connection", newer_idle.into_stream()),
        ("the shortest partial head", short_head),
        ("the longer partial head", long_head),
    ];
    let mut newcomers = Vec::new();
    for index in 0..held.len() {
        newcomers.push(partial_head(
            server.addr(),
            b"GET /newcomer HTTP/1.1\r\nHost: example.org\r\nUser-Agent: a newcomer\r\n",
        ));
        let (shed, kept) = held[index..].split_at_mut(1);
        let (what, stream) = &mut shed[0];
        wait_closed(stream, what);
        for (later, stream) in kept {
            assert!(
                !closed_by_server(stream),
                "{later} was closed before {what}"
            );
        }
    }
    for newcomer in &mut newcomers {
        assert!(!closed_by_server(newcomer), "a newcomer was shed");
    }
}

#[test]
fn a_new_client_goes_to_a_free_worker_while_the_other_is_stuck_on_a_request() {
    let log = scratch_dir("stuck-worker").join("calls");
    let server = Server::start_with(
        &common::apps_dir(),
        &["-w", "2", "--metrics-bind", "127.0.0.1:0", "probe"],
        &[("PROBE_LOG", log.to_str().unwrap())],
    );
    assert!(server.wait_for_log("Booted worker with pid"));
    let booted = || server.log().matches("Booted worker with pid").count();
    assert!(
        common::wait_until(TIMEOUT, || booted() == 2),
        "two workers did not boot"
    );
    // One worker's only interpreter on a long request...
    let mut stuck = TcpStream::connect(server.addr()).unwrap();
    stuck
        .write_all(b"GET /sleep?15 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let called = || std::fs::read_to_string(&log).is_ok_and(|calls| calls.contains("call /sleep"));
    assert!(
        common::wait_until(TIMEOUT, called),
        "the app was not called"
    );
    // ...for longer than a worker may hold new clients behind it.
    common::wait_for_a_stalled_worker(&server);
    // Each newcomer is answered by the other worker while that request still
    // runs. When the kernel woke only the stuck worker, which declined, the
    // newcomer waited in the backlog until the sleep was over.
    for _ in 0..5 {
        if let Err(error) = normal_request(server.addr()) {
            panic!("a newcomer was not served: {error}\n{}", server.log());
        }
        assert!(
            !closed_by_server(&mut stuck) && !has_data(&mut stuck),
            "the stuck request ended first"
        );
    }
}

/// Whether `stream` has bytes to read now.
fn has_data(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    stream.set_nonblocking(true).unwrap();
    let ready = stream.peek(&mut byte).is_ok_and(|n| n > 0);
    stream.set_nonblocking(false).unwrap();
    ready
}

/// 30 clients send a request while the only interpreter is busy, then
/// reset their connections (a load balancer's timeout, a client's retry):
/// the app runs none of them, `/metrics` counts them, and the server serves on.
#[test]
fn requests_whose_client_reset_while_queued_do_not_reach_the_app() {
    let dir = scratch_dir("abandoned");
    let ran = dir.join("ran");
    let server = Server::start(&[
        "-w",
        "1",
        "--threads",
        "1",
        "--metrics-bind",
        "127.0.0.1:0",
        "probe:application",
    ]);
    let metrics = server.metrics_address();
    let count = |series: &str| {
        common::metric(&common::metrics_page(metrics), series)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    let times_run = || {
        std::fs::read_to_string(&ran)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let request = format!(
        "GET /sleep-counted?1&{} HTTP/1.1\r\nHost: t\r\n\r\n",
        ran.display()
    );
    let mut running = Client::new(server.connect());
    running.send(request.as_bytes());
    common::wait_for("the first request to run", || times_run() == 1);
    let queued: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut stream = server.connect();
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();
    common::wait_for("30 requests queued behind the running one", || {
        count("ferrocorn_requests_in_flight") == 31.0
    });
    for stream in queued {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
    }
    assert_eq!(
        running
            .response(false)
            .expect("the running one answered")
            .status,
        200
    );
    common::wait_for("the reset requests counted as abandoned", || {
        count("ferrocorn_requests_abandoned_total") == 30.0
    });
    assert_eq!(times_run(), 1, "the app ran only the request it had taken");
    assert_eq!(count("ferrocorn_requests_in_flight"), 0.0);
    assert_eq!(server.get("/pid").status, 200, "the worker serves on");
}

/// A POST announcing a large body of which it sends `sent` bytes so far.
fn trickled_upload(addr: SocketAddr, sent: usize) -> TcpStream {
    let head = "POST /input HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
    partial_head(addr, format!("{head}{}", "x".repeat(sent)).as_bytes())
}

#[test]
fn trickled_uploads_far_beyond_the_limit_do_not_lock_out_a_normal_client() {
    const SLOW: usize = 2_000;
    allow_descriptors(SLOW as u64 + 512);
    let server = Server::start(&[
        "-w",
        "2",
        "--worker-connections",
        "100",
        "--metrics-bind",
        "127.0.0.1:0",
        "probe",
    ]);
    // Ten times what the two workers may hold, each a body in progress.
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| trickled_upload(server.addr(), 1))
        .collect();
    let mut answered = 0;
    for round in 0..30 {
        // A byte more for every upload now and then: they trickle on.
        if round % 10 == 0 {
            for stream in &mut slow {
                stream.set_nonblocking(true).unwrap();
                let _ = stream.write(b"x");
                stream.set_nonblocking(false).unwrap();
            }
        }
        match normal_request(server.addr()) {
            Ok(_) => answered += 1,
            Err(error) => panic!(
                "a normal client was locked out by trickled uploads: {error}\n{}",
                server.log()
            ),
        }
    }
    assert_eq!(answered, 30);
    assert!(
        server.wait_for_log("At the connection limit (100, --worker-connections): closed"),
        "{}",
        server.log()
    );
    let page = common::metrics_page(server.metrics_address());
    let shed: u64 = common::metric(&page, "ferrocorn_uploads_shed_total")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no ferrocorn_uploads_shed_total:\n{page}"));
    assert!(shed > 0, "{page}");
    drop(slow);
}

#[test]
fn a_request_arriving_below_the_minimum_rate_gets_408_and_is_counted() {
    let server = Server::start(&[
        "--min-request-rate",
        "1000",
        "--min-request-rate-grace",
        "1",
        "--metrics-bind",
        "127.0.0.1:0",
        "probe",
    ]);
    let mut slow = Client::new(trickled_upload(server.addr(), 10));
    // An upload well above the rate, on its own connection, is served.
    let mut fast = Client::new(server.connect());
    let body = "y".repeat(200_000);
    fast.send(
        format!(
            "POST /input HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let response = fast.response(false).expect("the fast upload's response");
    assert_eq!(response.status, 200);
    assert!(
        response.text().contains("\"length\": 200000"),
        "{}",
        response.text()
    );
    let cut = slow.response(false).expect("an answer to the slow upload");
    assert_eq!(cut.status, 408);
    assert!(cut.text().contains("minimum rate"), "{}", cut.text());
    assert!(slow.is_closed_by_server());
    assert!(
        server.wait_for_log(
            "Cut 1 request(s) with 408: they arrived slower than --min-request-rate (1000 bytes/s"
        ),
        "{}",
        server.log()
    );
    let page = common::metrics_page(server.metrics_address());
    assert_eq!(
        common::metric(&page, "ferrocorn_requests_below_min_rate_total").as_deref(),
        Some("1"),
        "{page}"
    );
    assert_eq!(
        common::metric(&page, "ferrocorn_requests_rejected_total{status=\"408\"}").as_deref(),
        Some("1"),
        "{page}"
    );
}
