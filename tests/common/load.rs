//! Load for the arbiter tests: clients sending `GET /write` (which the test
//! apps answer with a body containing "returned") until stopped, and the
//! workers a server's log shows booted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::Server;

/// Requests on fresh connections, one after another, until stopped; counts
/// successes and failures.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// One request on `client`'s keep-alive connection (a new one if the last
/// response closed it, or at the start).
fn one_keep_alive_request(
    client: &mut Option<super::Client>,
    addr: std::net::SocketAddr,
) -> Result<(), String> {
    use std::io::Write;
    if client.is_none() {
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        *client = Some(super::Client::new(stream));
    }
    let connection = client.as_mut().unwrap();
    let sent = connection
        .reader_mut()
        .get_mut()
        .write_all(b"GET /write HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = sent.ok().and_then(|()| connection.response(false));
    let Some(response) = response else {
        *client = None;
        return Err("the connection closed under a request".to_owned());
    };
    if response
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    {
        *client = None;
    }
    if response.status == 200 {
        Ok(())
    } else {
        Err(format!("status {}", response.status))
    }
}

impl Load {
    pub fn start(server: &Server, clients: usize) -> Load {
        Load::start_with(server, clients, false)
    }

    /// Clients that keep their connection for request after request.
    pub fn start_keep_alive(server: &Server, clients: usize) -> Load {
        Load::start_with(server, clients, true)
    }

    fn start_with(server: &Server, clients: usize, keep_alive: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (addr, stop, ok, failures) =
                    (server.addr(), stop.clone(), ok.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut connection = None;
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = if keep_alive {
                            one_keep_alive_request(&mut connection, addr)
                        } else {
                            one_request(addr)
                        };
                        match outcome {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                failures.lock().unwrap().push(e);
                                0
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            threads,
        }
    }

    pub fn answered(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients; returns (successes, failures).
    pub fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failures.lock().unwrap().clone(),
        )
    }
}

pub fn one_request(addr: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    if text.starts_with("HTTP/1.1 200 OK") && text.contains("returned") {
        Ok(())
    } else {
        Err(format!("bad reply: {text:?}"))
    }
}

pub fn booted_pids(server: &Server) -> Vec<u32> {
    server
        .log()
        .lines()
        .filter_map(|l| l.split("Booted worker with pid: ").nth(1))
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}
