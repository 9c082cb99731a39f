//! Shared helpers for the integration tests: start the real binary on a
//! loopback port, speak raw HTTP to it, read responses strictly.
#![allow(dead_code)]

pub mod load;
pub mod pki;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrocorn");
/// Upper bound on any single wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// A running server process and everything it wrote to stderr.
pub struct Server {
    child: Child,
    /// The TCP address from the `Listening at:` line (`None`: Unix sockets only).
    tcp: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `ferrocorn ARGS` in tests/apps on a free loopback port.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(&apps_dir(), args, &[])
    }

    /// Starts in `dir` with extra environment variables; `-b 127.0.0.1:0` is
    /// added unless ARGS bind somewhere themselves.
    pub fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !args.iter().any(|a| *a == "-b" || a.starts_with("--bind")) {
            command.args(["-b", "127.0.0.1:0"]);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        Server::spawn(command)
    }

    /// Starts with `-b 127.0.0.1:PORT` on a free port and waits until the port
    /// answers (for runs whose log goes to a file, not stderr).
    pub fn start_on_free_port(args: &[&str]) -> Server {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let bind = addr.to_string();
        let mut child = Command::new(BIN)
            .current_dir(apps_dir())
            .args(args)
            .args(["-b", &bind])
            .stdin(Stdio::null())
            .spawn()
            .expect("start ferrocorn");
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ferrocorn exited with {status} while starting");
            }
            assert!(
                Instant::now() < deadline,
                "ferrocorn did not listen in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            tcp: Some(addr),
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Spawns a prepared command and waits until it serves.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().expect("start ferrocorn");
        let log = Arc::new(Mutex::new(String::new()));
        let [stdout, stderr] = output_streams(&mut child);
        for stream in [stderr, stdout].into_iter().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = log.lock().unwrap().clone();
            if text.contains("Booted worker") {
                let addr = text
                    .lines()
                    .find_map(|l| l.split("Listening at: http").nth(1))
                    .map(|rest| rest.trim_start_matches('s').trim_start_matches("://"))
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|a| a.parse().ok());
                return Server {
                    child,
                    tcp: addr,
                    log,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ferrocorn exited with {status} while starting:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "ferrocorn did not start in time:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address it listens at over TCP; a test of a server bound to
    /// Unix sockets only has none to ask for.
    pub fn addr(&self) -> SocketAddr {
        match self.tcp {
            Some(addr) => addr,
            None => panic!("the server listens on no TCP address:\n{}", self.log()),
        }
    }

    /// For a listener the test made itself (an inherited descriptor), whose
    /// address the log does not name.
    pub fn listening_at(mut self, addr: SocketAddr) -> Server {
        self.tcp = Some(addr);
        self
    }

    /// The arbiter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        wait_until(TIMEOUT, || self.log().contains(needle))
    }

    /// The `--metrics-bind` endpoint's address, from the line announcing it.
    pub fn metrics_address(&self) -> SocketAddr {
        let log = self.log();
        log.lines()
            .find_map(|l| l.split("Metrics and health at: http://").nth(1))
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "ferrocorn did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream
    }

    /// One request on a fresh connection that asks to close after it.
    pub fn get(&self, path: &str) -> Response {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let mut client = Client::new(self.connect());
        client.send(request.as_bytes());
        client.response(false).expect("a response")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs ferrocorn to completion (for start-up failures), bounded in time.
pub fn run_to_exit(dir: &Path, args: &[&str]) -> (ExitStatus, String) {
    let mut server_args = vec!["-b", "127.0.0.1:0"];
    server_args.extend_from_slice(args);
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(&server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrocorn");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferrocorn kept running; expected it to exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    (status, output)
}

/// A spawned child's piped stdout and stderr, to be read on threads.
fn output_streams(child: &mut Child) -> [Option<Box<dyn Read + Send>>; 2] {
    [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
}

/// Runs `command` to completion with its output captured, as
/// `Command::output` does, but panics (killing it) if it is still running
/// after [`TIMEOUT`]: a test expecting an exit must not hang when the server
/// starts serving instead.
pub fn output_within_timeout(mut command: Command) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrocorn");
    let readers: Vec<_> = output_streams(&mut child)
        .into_iter()
        .map(|stream| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut stream) = stream {
                    let _ = stream.read_to_end(&mut bytes);
                }
                bytes
            })
        })
        .collect();
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferrocorn kept running; expected it to exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut outputs = readers.into_iter().map(|r| r.join().unwrap_or_default());
    std::process::Output {
        status,
        stdout: outputs.next().unwrap_or_default(),
        stderr: outputs.next().unwrap_or_default(),
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection that reads responses one at a time (over a TcpStream, or
/// any stream such as a TLS one).
pub struct Client<S = TcpStream> {
    reader: BufReader<S>,
}

impl Client<TcpStream> {
    /// The socket, for a test that goes on without the reader.
    pub fn into_stream(self) -> TcpStream {
        self.reader.into_inner()
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Write);
    }
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// The stream under the reader.
    pub fn stream(&self) -> &S {
        self.reader.get_ref()
    }

    /// Everything until the server closes (bounded by the read timeout).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }

    /// The server closed the connection (EOF or reset) with nothing more to read.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }

    fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(
                    line.ends_with(b"\r\n"),
                    "response line without CRLF: {line:?}"
                );
                line.truncate(line.len() - 2);
                Some(String::from_utf8_lossy(&line).into_owned())
            }
        }
    }

    pub fn reader_mut(&mut self) -> &mut BufReader<S> {
        &mut self.reader
    }

    /// Raw bytes up to and including a chunked body's last chunk.
    pub fn read_until_last_chunk(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        while !data.ends_with(b"0\r\n\r\n") {
            let mut byte = [0u8; 1];
            match self.reader.read(&mut byte) {
                Ok(1) => data.push(byte[0]),
                _ => break,
            }
        }
        data
    }

    /// Reads a status line and headers, leaving the body unread; `None` if
    /// the server closed first.
    pub fn try_response_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut headers = Vec::new();
        loop {
            let line = self.line().expect("header line");
            if line.is_empty() {
                return Some((status, headers));
            }
            let (name, value) = line.split_once(':').expect("header colon");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }

    pub fn response_head_only(&mut self) -> (u16, Vec<(String, String)>) {
        self.try_response_head().expect("a response head")
    }

    /// The next response (including a 1xx one); `None` if the server closed first.
    pub fn response(&mut self, head_request: bool) -> Option<Response> {
        let (status, headers) = self.try_response_head()?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status < 200 || status == 204 || status == 304 {
            return Some(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size_line = self.line().expect("chunk size");
                let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                    .expect("hex size");
                if size == 0 {
                    while !self.line().expect("trailer").is_empty() {}
                    break;
                }
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).expect("chunk data");
                assert!(chunk.ends_with(b"\r\n"));
                response.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = response.header("content-length") {
            let mut body = vec![0; length.parse().expect("content-length")];
            self.reader.read_exact(&mut body).expect("body");
            response.body = body;
        } else {
            response.body = self.read_to_end();
        }
        Some(response)
    }
}

/// Sends raw bytes on a fresh connection, half-closes, and returns every
/// response the server gives before closing.
pub fn exchange(server: &Server, bytes: &[u8]) -> Vec<Response> {
    let mut client = Client::new(server.connect());
    client.send(bytes);
    client.shutdown_write();
    let mut responses = Vec::new();
    while let Some(response) = client.response(false) {
        let close = response
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        responses.push(response);
        if close {
            break;
        }
    }
    responses
}

/// `GET path` with `Host: host` and `Connection: close` on a new connection
/// to `addr`; everything the server sent, read with `timeout` per read.
pub fn http_get_close(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// One `GET /metrics` from the endpoint at `address`: the whole reply, or
/// empty when it did not answer.
pub fn metrics_page(address: SocketAddr) -> String {
    let read = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    read().unwrap_or_default()
}

/// A series' value on a metrics page (`name{labels}` as written there).
pub fn metric(page: &str, series: &str) -> Option<String> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// Waits (bounded) until a worker counts as stalled: every interpreter on a
/// request long enough that new clients go to its siblings (the server's
/// `STALL_MS`). Needs `--metrics-bind`.
pub fn wait_for_a_stalled_worker(server: &Server) {
    let address = server.metrics_address();
    let stalled = wait_until(TIMEOUT, || {
        metric(&metrics_page(address), "ferrocorn_workers_stalled").as_deref() == Some("1")
    });
    assert!(stalled, "no worker counted as stalled:\n{}", server.log());
}

/// Waits (bounded) until the file at `path` contains every one of `needles`.
pub fn wait_for_file(path: &Path, needles: &[&str]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if needles.iter().all(|n| text.contains(n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks one of {needles:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A unique scratch directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("ferrocorn-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The wheel directory of examples/requirements*.txt, fetched with pip once
/// into the target directory and reused.
fn wheels() -> &'static PathBuf {
    static WHEELS: OnceLock<PathBuf> = OnceLock::new();
    WHEELS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("framework-wheels");
        let pure = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requirements.txt");
        let fallback =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requirements-fallback.txt");
        let pinned = |file: &Path| {
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .filter(|l| l.contains("=="))
                .count()
        };
        let have = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        if have < pinned(&pure) + pinned(&fallback) {
            std::fs::create_dir_all(&dir).unwrap();
            let pip = |extra: &[&str], requirements: &Path| {
                let status = Command::new("python3")
                    .args([
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--only-binary=:all:",
                        "-d",
                    ])
                    .arg(&dir)
                    .args(extra)
                    .arg("-r")
                    .arg(requirements)
                    .status()
                    .expect("these tests fetch wheels with python3 -m pip");
                assert!(
                    status.success(),
                    "pip download -r {} failed",
                    requirements.display()
                );
            };
            pip(
                &[
                    "--platform",
                    "any",
                    "--implementation",
                    "py",
                    "--abi",
                    "none",
                    "--python-version",
                    "3.14",
                ],
                &pure,
            );
            pip(&[], &fallback);
        }
        dir
    })
}

/// The pinned wheels (frameworks, pytest) as a `--pythonpath` value.
pub fn framework_pythonpath() -> String {
    let mut entries: Vec<String> = std::fs::read_dir(wheels())
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".whl"))
        .collect();
    entries.sort();
    entries.join(",")
}

/// Everything a stream (a terminal's output, say) has written so far, read as
/// it arrives rather than by lines: a prompt ends without a newline.
pub struct OutputWatcher {
    text: Arc<Mutex<String>>,
}

impl OutputWatcher {
    pub fn new(stream: impl Read + Send + 'static) -> OutputWatcher {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        OutputWatcher { text }
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().replace('\r', "")
    }

    /// Waits (bounded by `limit`) until the output contains `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.text().contains(needle))
    }
}

/// Polls `condition` until it holds (true) or `limit` has passed (false).
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Polls `condition` until it holds; fails the test, naming `what`, after
/// [`TIMEOUT`].
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(TIMEOUT, condition),
        "timed out waiting for {what}"
    );
}

/// `addr` as /proc/net/tcp writes a local or remote address.
fn proc_net_tcp_address(addr: std::net::SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(addr.ip().octets()),
        addr.port()
    )
}

/// How many connections wait in the accept queue of the IPv4 listener at
/// `addr` (the `rx_queue` of its LISTEN line in /proc/net/tcp): 0 once the
/// server has accepted every client that connected.
pub fn accept_queue(addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    let local = proc_net_tcp_address(v4);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&"0A");
        if fields.get(1) != Some(&local.as_str()) || !listening {
            return None;
        }
        let (_, rx) = fields.get(4)?.split_once(':')?;
        u32::from_str_radix(rx, 16).ok()
    })
}

/// How many connections the server at `addr` has accepted and holds open
/// (ESTABLISHED lines of /proc/net/tcp whose local end is `addr`; a client
/// the kernel still holds for the server is not one).
pub fn server_side_connections(addr: SocketAddr) -> usize {
    let SocketAddr::V4(v4) = addr else {
        return 0;
    };
    let local = proc_net_tcp_address(v4);
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// Waits until the server has accepted every client waiting at `addr`.
pub fn wait_until_accepted(addr: SocketAddr) {
    wait_for("the server to accept the waiting clients", || {
        accept_queue(addr) == Some(0)
    });
}
