//! The connection's state machine driven over an in-memory stream: what
//! the client sends is a script of reads, what the server writes is kept.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Connection, ConnectionSettings, MinRate, ProxySettings, READ_BUDGET, WRITE_BUDGET};
use crate::http::body::RequestBody;
use crate::http::rules::{HeadRules, Leniency};
use crate::net::listener::ConnectionStream;
use crate::net::peer::ConnectionInfo;
use crate::tls::TlsFacts;
use crate::worker::handoff::{ConnectionId, Job, ResponseEnd};
use crate::worker::shedding::SheddingCost;

/// One step of the client's side, as the next `read` sees it.
enum Step {
    Bytes(Vec<u8>),
    /// Nothing more until the test says so (`WouldBlock`).
    Pause,
    /// The client shut down its sending side.
    End,
}

#[derive(Default)]
struct MemoryStream {
    script: VecDeque<Step>,
    written: Vec<u8>,
    write_closed: bool,
    /// Bytes handed out by `read` so far.
    delivered: usize,
}

impl Read for MemoryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.script.front_mut() {
            None | Some(Step::Pause) => {
                if matches!(self.script.front(), Some(Step::Pause)) {
                    self.script.pop_front();
                }
                Err(io::ErrorKind::WouldBlock.into())
            }
            Some(Step::End) => Ok(0),
            Some(Step::Bytes(bytes)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    self.script.pop_front();
                }
                self.delivered += n;
                Ok(n)
            }
        }
    }
}

impl Write for MemoryStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ConnectionStream for MemoryStream {
    fn close_write(&mut self) -> io::Result<bool> {
        self.write_closed = true;
        Ok(true)
    }
    fn send_pending(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn short_read_drains(&self) -> bool {
        // Every read of the script is whole; a pause says when it is empty.
        false
    }
    fn is_handshaking(&self) -> bool {
        false
    }
    fn tls_facts(&self) -> Option<TlsFacts> {
        None
    }
}

fn settings() -> ConnectionSettings {
    ConnectionSettings {
        limits: HeadRules {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
            body: 1 << 20,
            leniency: Leniency::default(),
        },
        keep_alive: Duration::from_secs(2),
        read_timeout: Duration::from_secs(30),
        min_rate: MinRate {
            bytes_per_second: 240,
            grace: Duration::from_secs(5),
        },
        spill_at: 1 << 20,
        proxy: Arc::new(ProxySettings {
            protocol: false,
            protocol_from: "127.0.0.1".parse().unwrap(),
            forwarded_from: "127.0.0.1".parse().unwrap(),
            scheme_headers: Default::default(),
        }),
        metrics: None,
    }
}

fn connection(steps: Vec<Step>) -> Connection<MemoryStream> {
    let stream = MemoryStream {
        script: steps.into(),
        ..MemoryStream::default()
    };
    let info = ConnectionInfo {
        remote_addr: "127.0.0.1".into(),
        remote_port: "40000".into(),
        server_name: "127.0.0.1".into(),
        server_port: "8000".into(),
        https: false,
        tls: None,
    };
    let id = ConnectionId {
        slot: 0,
        generation: 1,
    };
    Connection::new(stream, id, info, &settings())
}

fn bytes(text: &str) -> Step {
    Step::Bytes(text.as_bytes().to_vec())
}

fn body_of(job: &Job) -> Vec<u8> {
    match &job.body {
        RequestBody::Memory(bytes) => bytes.clone(),
        RequestBody::File { .. } => panic!("a small body was spilled"),
    }
}

fn written(connection: &Connection<MemoryStream>) -> String {
    String::from_utf8_lossy(&connection.stream.written).into_owned()
}

#[test]
fn a_head_split_over_reads_becomes_one_job_once_complete() {
    let mut connection = connection(vec![
        bytes("GET /split?x=1 HTTP/1.1\r\nHo"),
        Step::Pause,
        bytes("st: example\r\n\r\n"),
    ]);
    assert!(connection.on_readable(false, &settings()).is_none());
    assert!(!connection.is_idle(), "a partial head is not idle");
    let job = connection.on_readable(false, &settings()).expect("a job");
    assert_eq!(job.head.method(), "GET");
    assert_eq!(job.head.path(), b"/split");
    assert_eq!(job.head.query(), b"x=1");
    assert!(connection.stream.written.is_empty());
}

#[test]
fn pipelined_requests_go_to_the_app_one_at_a_time_in_order() {
    let mut connection = connection(vec![bytes(
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    )]);
    let first = connection
        .on_readable(false, &settings())
        .expect("first job");
    assert_eq!(first.head.path(), b"/a");
    assert_eq!(body_of(&first), b"abc");
    // The second waits in the buffer while the first is with the app.
    assert!(connection.on_readable(false, &settings()).is_none());
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let second = connection
        .on_reply(response, Some(ResponseEnd::KeepAlive), &settings())
        .expect("the second job after the first response");
    assert_eq!(second.head.path(), b"/b");
    assert!(written(&connection).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn a_client_closing_in_the_middle_of_a_head_gets_400_and_the_connection_closes() {
    let mut connection = connection(vec![bytes("GET / HTTP/1.1\r\nHost: h\r\n"), Step::End]);
    assert!(connection.on_readable(true, &settings()).is_none());
    let answer = written(&connection);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    // The client has gone: nothing to linger for once the answer is out.
    assert!(connection.is_closed());
}

#[test]
fn a_client_closing_between_requests_gets_nothing() {
    let mut connection = connection(vec![bytes("\r\n"), Step::End]);
    assert!(connection.on_readable(true, &settings()).is_none());
    assert!(connection.is_closed());
    assert!(connection.stream.written.is_empty());
}

#[test]
fn a_client_stalling_in_its_head_past_the_read_timeout_gets_408() {
    let no_min_rate = ConnectionSettings {
        min_rate: MinRate {
            bytes_per_second: 0,
            grace: Duration::ZERO,
        },
        ..settings()
    };
    let mut connection = connection(vec![bytes("GET / HTTP/1.1\r\nHost:"), Step::Pause]);
    assert!(connection.on_readable(false, &no_min_rate).is_none());
    let soon = Instant::now() + Duration::from_secs(5);
    assert!(!connection.check_timeouts(soon, &no_min_rate));
    assert!(
        connection.stream.written.is_empty(),
        "408 before the timeout"
    );
    let later = Instant::now() + settings().read_timeout + Duration::from_secs(1);
    assert!(!connection.check_timeouts(later, &no_min_rate));
    let answer = written(&connection);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains("timed out waiting for the request"),
        "{answer}"
    );
}

#[test]
fn a_body_trickling_below_the_minimum_rate_gets_408_once_the_grace_is_over() {
    let head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\nx";
    let mut connection = connection(vec![bytes(head), Step::Pause]);
    assert!(connection.on_readable(false, &settings()).is_none());
    let start = Instant::now();
    assert!(!connection.check_timeouts(start + Duration::from_secs(4), &settings()));
    assert!(connection.stream.written.is_empty(), "408 within the grace");
    // 69 bytes in 6 s: far below 240 bytes/s.
    assert!(connection.check_timeouts(start + Duration::from_secs(6), &settings()));
    let answer = written(&connection);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains("slower than the server's minimum rate"),
        "{answer}"
    );
}

#[test]
fn a_body_arriving_at_the_minimum_rate_is_not_cut() {
    let head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n";
    let mut connection = connection(vec![bytes(head), bytes(&"x".repeat(2_500)), Step::Pause]);
    assert!(connection.on_readable(false, &settings()).is_none());
    // 2,563 bytes: the average stays above 240 bytes/s for 10 s.
    let start = Instant::now();
    assert!(!connection.check_timeouts(start + Duration::from_secs(10), &settings()));
    assert!(connection.stream.written.is_empty());
    assert!(!connection.is_closed());
}

#[test]
fn a_keep_alive_connection_idle_between_requests_owes_no_rate() {
    let mut connection = connection(vec![bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")]);
    connection.on_readable(false, &settings()).expect("a job");
    let response = b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
    connection.on_reply(response, Some(ResponseEnd::KeepAlive), &settings());
    let long_keep_alive = ConnectionSettings {
        keep_alive: Duration::from_secs(60),
        ..settings()
    };
    assert!(!connection.check_timeouts(Instant::now() + Duration::from_secs(30), &long_keep_alive));
    assert!(!connection.is_closed());
}

#[test]
fn a_body_in_progress_may_be_shed_at_its_rate_and_is_answered_408() {
    let head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n";
    let mut connection = connection(vec![bytes(head), Step::Pause]);
    assert!(connection.on_readable(false, &settings()).is_none());
    let later = Instant::now() + Duration::from_secs(2);
    match connection.shedding_cost(later) {
        Some(SheddingCost::Upload {
            bytes_per_second, ..
        }) => assert!((25..=32).contains(&bytes_per_second), "{bytes_per_second}"),
        other => panic!("an upload in progress costs {other:?}"),
    }
    connection.shed();
    assert!(connection.is_closed());
    let answer = written(&connection);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
}

#[test]
fn a_body_over_the_limit_gets_413_before_any_of_it_is_read() {
    let length = (1 << 20) + 1;
    let head = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {length}\r\n\r\n");
    let mut connection = connection(vec![bytes(&head), bytes("x")]);
    assert!(connection.on_readable(false, &settings()).is_none());
    let answer = written(&connection);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[test]
fn an_idle_keep_alive_connection_closes_after_the_keep_alive_time() {
    let mut connection = connection(vec![bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")]);
    connection.on_readable(false, &settings()).expect("a job");
    let response = b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
    assert!(
        connection
            .on_reply(response, Some(ResponseEnd::KeepAlive), &settings())
            .is_none()
    );
    assert!(connection.is_idle());
    connection.check_timeouts(Instant::now() + Duration::from_secs(1), &settings());
    assert!(!connection.is_closed());
    connection.check_timeouts(Instant::now() + Duration::from_secs(3), &settings());
    assert!(connection.is_closed());
}

#[test]
fn a_large_response_is_written_one_budget_per_turn() {
    let mut connection = connection(vec![bytes("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")]);
    assert!(connection.on_readable(false, &settings()).is_some());
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    let body = vec![b'x'; 4 * WRITE_BUDGET];
    let mut response = head.clone();
    response.extend_from_slice(&body);
    assert!(
        connection
            .on_reply(response, Some(ResponseEnd::KeepAlive), &settings())
            .is_none()
    );
    assert_eq!(connection.stream.written.len(), WRITE_BUDGET);
    let mut turns = 1;
    while connection.wants_another_turn() {
        let before = connection.stream.written.len();
        assert!(connection.resume(&settings()).is_none());
        assert!(connection.stream.written.len() - before <= WRITE_BUDGET);
        turns += 1;
    }
    assert_eq!(turns, 5, "4 budgets of body and a head take 5 turns");
    assert_eq!(connection.stream.written.len(), head.len() + body.len());
    assert!(
        connection.is_idle(),
        "the connection waits for the next request"
    );
}

#[test]
fn a_fast_upload_is_read_one_budget_per_turn() {
    let size = 4 * READ_BUDGET;
    let head = format!("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n");
    let mut big = settings();
    big.limits.body = size as u64;
    big.spill_at = size + 1;
    let mut connection = connection(vec![bytes(&head), Step::Bytes(vec![b'u'; size])]);
    let mut turns = 0;
    let mut job = connection.on_readable(false, &big);
    while job.is_none() {
        turns += 1;
        let before = connection.stream.delivered;
        assert!(
            connection.wants_another_turn(),
            "the upload stalled after turn {turns}"
        );
        job = connection.resume(&big);
        assert!(connection.stream.delivered - before <= READ_BUDGET + 64 * 1024);
    }
    assert!(turns >= 3, "the whole body was read in {turns} turns");
    assert_eq!(body_of(&job.unwrap()).len(), size);
    assert!(!connection.wants_another_turn());
}
