//! The event loop keeps slow clients away from the interpreters, and
//! responses stream instead of being buffered whole.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server, scratch_dir};

#[test]
fn a_generator_body_streams_block_by_block() {
    let server = Server::start(&["probe:application"]);
    let flag = scratch_dir("stream").join("go");
    let mut client = Client::new(server.connect());
    client.send(
        format!(
            "GET /stream-until-file?{} HTTP/1.1\r\nHost: t\r\n\r\n",
            flag.display()
        )
        .as_bytes(),
    );
    let (status, headers) = client.response_head_only();
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
    );
    // The first block arrives while the app is still waiting for us: the
    // response was not held back until the app finished.
    let mut first = String::new();
    let mut line = [0u8; 1];
    while !first.ends_with("first chunk\n") {
        assert_eq!(
            std::io::Read::read(client.reader_mut(), &mut line).unwrap(),
            1
        );
        first.push(line[0] as char);
    }
    std::fs::write(&flag, b"go").unwrap();
    let rest = String::from_utf8_lossy(&client.read_until_last_chunk()).into_owned();
    assert!(rest.contains("second chunk"), "{rest}");
}

#[test]
fn slow_clients_do_not_hold_the_only_interpreter() {
    let server = Server::start(&["--threads", "1", "probe:application"]);
    // Clients that send half a head, or half a body, and then stall.
    let mut stalled_head = Client::new(server.connect());
    stalled_head.send(b"GET /write HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    let mut stalled_body = Client::new(server.connect());
    stalled_body.send(b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly some");
    common::wait_until_accepted(server.addr());
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(server.get("/write").text(), "written returned");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "requests waited behind stalled clients"
    );
    // The stalled ones still complete when their bytes arrive.
    stalled_head.send(b"1\r\n\r\n");
    assert_eq!(
        stalled_head.response(false).unwrap().text(),
        "written returned"
    );
    stalled_body.send(&[b'x'; 91]);
    assert!(
        stalled_body
            .response(false)
            .unwrap()
            .text()
            .contains("\"length\": 100")
    );
}

#[test]
fn a_client_that_reads_slowly_does_not_stop_others() {
    let server = Server::start(&["--threads", "1", "probe:application"]);
    // 20 MB that this client never reads: the body sits in the loop's buffer
    // and the socket, not in the interpreter thread.
    let mut lazy = Client::new(server.connect());
    lazy.send(b"GET /big?20000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    // Its head has come: the app has answered, and the rest of the body
    // waits for the client in the loop's buffer and the socket.
    let (status, _) = lazy.response_head_only();
    assert_eq!(status, 200);
    let started = Instant::now();
    assert_eq!(server.get("/write").text(), "written returned");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn many_concurrent_connections_are_served() {
    let server = Server::start(&["--threads", "2", "probe:application"]);
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let mut client = Client::new(stream);
                for _ in 0..20 {
                    client.send(b"GET /write HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(client.response(false).unwrap().text(), "written returned");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("client thread");
    }
}
