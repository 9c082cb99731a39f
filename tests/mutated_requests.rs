//! A bounded, fixed-seed fuzz run on the wire: valid requests mutated (bytes
//! flipped, cut, repeated, HTTP fragments spliced in) and sent whole or in
//! small pieces. Whatever arrives, the worker answers or closes promptly, and
//! it neither dies nor panics. The targeted cases live in bad_requests.rs.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Client, Server};

const ROUNDS: usize = 4000;

/// Valid requests to start from (probe app paths that answer at once).
const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /input HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /input HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /input HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n",
    b"GET /environ?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nCookie: c=d\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /generator HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/environ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
];

/// Fragments that sit on the parser's decision points.
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b":",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"0",
    b"-1",
    b"99999999999999999999",
    b";ext=1",
    b"%zz",
    b"HTTP/2.0",
    b"\x7f",
    b"\r\n\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: x\r\n",
    b"Expect: 100-continue\r\n",
];

/// xorshift64*: deterministic, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                data.splice(at..at, piece.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(20)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let end = (at + 1 + rng.below(40)).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
            4 => {
                let noise: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
            _ => data.extend_from_slice(SEEDS[rng.below(SEEDS.len())]),
        }
    }
    data
}

#[test]
fn mutated_requests_never_crash_or_hang_a_worker() {
    let server = Server::start(&["--threads", "2", "probe:application"]);
    let worker = server.get("/pid").text();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..ROUNDS {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let request = mutate(&mut rng, seed);
        let mut stream = server.connect();
        let started = Instant::now();
        let mut sent = 0;
        while sent < request.len() {
            // Whole or in pieces of 1-7 bytes: both paths through the parser.
            let step = if round % 2 == 0 {
                request.len()
            } else {
                1 + rng.below(7)
            };
            let end = (sent + step).min(request.len());
            if stream.write_all(&request[sent..end]).is_err() {
                break; // the server already answered and closed
            }
            sent = end;
        }
        let mut client = Client::new(stream);
        client.shutdown_write();
        client.read_to_end();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "round {round}: {:?} held the connection {:?}",
            String::from_utf8_lossy(&request),
            started.elapsed()
        );
    }
    assert_eq!(
        server.get("/pid").text(),
        worker,
        "the worker was replaced:\n{}",
        server.log()
    );
    assert!(!server.log().contains("panic"), "{}", server.log());
}
