//! The `--metrics-bind` endpoint (Prometheus `/metrics`, `/livez`,
//! `/readyz`), Gunicorn's statsd metrics, `--shutdown-delay`, `ferrocorn
//! healthcheck`, and the arbiter as PID 1: the real binary over loopback.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{BIN, Client, Server, TIMEOUT, scratch_dir, wait_until};

const APP: &str = "observed:application";

/// Starts ferrocorn with the observed app, `--metrics-bind 127.0.0.1:0` and
/// `args`; returns it with the endpoint's address once it is ready.
fn start(args: &[&str]) -> (Server, SocketAddr) {
    start_with_env(args, &[])
}

fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> (Server, SocketAddr) {
    let mut all = vec!["--metrics-bind", "127.0.0.1:0"];
    all.extend_from_slice(args);
    all.push(APP);
    let server = Server::start_with(&common::apps_dir(), &all, env);
    let endpoint = server.metrics_address();
    assert!(
        wait_until(TIMEOUT, || probe(endpoint, "/readyz").0 == 200),
        "never ready:\n{}",
        server.log()
    );
    (server, endpoint)
}

/// One GET on a fresh connection: (status, body); (0, error) when it fails.
fn probe(address: SocketAddr, path: &str) -> (u16, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: metrics\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, body.to_owned()))
    };
    attempt().unwrap_or_else(|error| (0, error.to_string()))
}

/// One scrape: each sample line's series (name and labels) and value.
struct Samples {
    values: BTreeMap<String, f64>,
    text: String,
}

impl Samples {
    fn get(&self, series: &str) -> f64 {
        *self
            .values
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{}", self.text))
    }
}

fn scrape(address: SocketAddr) -> Samples {
    let (status, text) = probe(address, "/metrics");
    assert_eq!(status, 200, "{text}");
    let values = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect();
    Samples { values, text }
}

fn exits(samples: &Samples, reason: &str) -> f64 {
    samples.get(&format!(
        "ferrocorn_worker_exits_total{{reason=\"{reason}\"}}"
    ))
}

fn requests(samples: &Samples, method: &str, class: &str) -> f64 {
    samples.get(&format!(
        "ferrocorn_requests_total{{method=\"{method}\",status_class=\"{class}\"}}"
    ))
}

fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(pid, signal) };
}

/// `count` keep-alive connections that have had one request answered.
fn idle_connections(server: &Server, count: usize) -> Vec<Client> {
    (0..count)
        .map(|_| {
            let mut client = Client::new(server.connect());
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(client.response(false).expect("an answer").status, 200);
            client
        })
        .collect()
}

/// The pid of the worker that answers a request.
fn worker_pid(server: &Server) -> i32 {
    server.get("/pid").text().parse().expect("a pid")
}

#[test]
fn a_scrape_moves_by_exactly_the_requests_and_bytes_sent_since_the_last() {
    let (server, metrics) = start(&["-w", "2"]);
    let before = scrape(metrics);

    let pipelined = "GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(3)
        + "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        + "GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let malformed = "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n";
    let mut received = 0;
    for request in [pipelined.as_str(), malformed] {
        let mut stream = server.connect();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        received += answer.len();
        if request == malformed {
            assert!(answer.starts_with(b"HTTP/1.1 400 "));
        }
    }
    // Closed on both sides: the workers have counted all of it.
    assert!(wait_until(TIMEOUT, || {
        scrape(metrics).get("ferrocorn_connections_open") == 0.0
    }));
    let after = scrape(metrics);

    let moved = |series: &str| after.get(series) - before.get(series);
    assert_eq!(
        requests(&after, "GET", "2xx") - requests(&before, "GET", "2xx"),
        3.0
    );
    assert_eq!(
        requests(&after, "POST", "2xx") - requests(&before, "POST", "2xx"),
        1.0
    );
    assert_eq!(
        requests(&after, "GET", "4xx") - requests(&before, "GET", "4xx"),
        1.0
    );
    assert_eq!(moved("ferrocorn_request_duration_seconds_count"), 5.0);
    assert_eq!(
        moved("ferrocorn_request_duration_seconds_bucket{le=\"+Inf\"}"),
        5.0
    );
    assert_eq!(
        moved("ferrocorn_requests_rejected_total{status=\"400\"}"),
        1.0
    );
    assert_eq!(moved("ferrocorn_connections_accepted_total"), 2.0);
    let sent = (pipelined.len() + malformed.len()) as f64;
    assert_eq!(moved("ferrocorn_received_bytes_total"), sent);
    assert_eq!(moved("ferrocorn_sent_bytes_total"), received as f64);
    assert_eq!(after.get("ferrocorn_requests_in_flight"), 0.0);
    assert!(
        after.text.ends_with("# EOF\n"),
        "the OpenMetrics text ends with its EOF marker"
    );
}

#[test]
fn requests_in_flight_and_idle_connections_are_gauged_as_they_change() {
    // Idle connections stay open for the whole test, however slow the machine.
    let (server, metrics) = start(&["-w", "2", "--keep-alive", "120"]);
    let release = scratch_dir("hold").join("release");
    let mut idle = idle_connections(&server, 3);
    let mut held = Client::new(server.connect());
    let hold = format!(
        "GET /hold?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        release.display()
    );
    held.send(hold.as_bytes());

    let gauges = || {
        let s = scrape(metrics);
        (
            s.get("ferrocorn_requests_in_flight"),
            s.get("ferrocorn_connections_open"),
            s.get("ferrocorn_connections_idle"),
        )
    };
    assert!(
        wait_until(TIMEOUT, || gauges() == (1.0, 4.0, 3.0)),
        "{:?}",
        gauges()
    );
    std::fs::write(&release, "").unwrap();
    assert_eq!(held.response(false).expect("released").status, 200);
    assert!(
        wait_until(TIMEOUT, || gauges() == (0.0, 4.0, 4.0)),
        "{:?}",
        gauges()
    );
    idle.clear();
    drop(held);
    assert!(wait_until(TIMEOUT, || gauges().1 == 0.0), "{:?}", gauges());
}

#[test]
fn worker_exits_are_counted_by_reason_and_a_stopped_worker_fails_liveness() {
    let (server, metrics) = start(&["-w", "1", "--max-requests", "3", "--timeout", "2"]);
    let ready = || probe(metrics, "/readyz").0 == 200;
    let counted = |reason: &str, n: f64| {
        wait_until(TIMEOUT, || exits(&scrape(metrics), reason) == n && ready())
    };

    for _ in 0..3 {
        assert_eq!(server.get("/").status, 200);
    }
    assert!(counted("max_requests", 1.0), "{}", scrape(metrics).text);

    send_signal(worker_pid(&server), libc::SIGKILL);
    assert!(counted("crash", 1.0), "{}", scrape(metrics).text);

    let stopped = worker_pid(&server);
    assert_eq!(probe(metrics, "/livez"), (200, "ok\n".to_owned()));
    send_signal(stopped, libc::SIGSTOP);
    let mut failed = (0, String::new());
    assert!(
        wait_until(TIMEOUT, || {
            failed = probe(metrics, "/livez");
            failed.0 == 503
        }),
        "liveness never failed for a stopped worker"
    );
    assert!(
        failed
            .1
            .starts_with(&format!("worker {stopped} silent for ")),
        "{failed:?}"
    );
    assert!(counted("timeout", 1.0), "{}", scrape(metrics).text);
    assert_eq!(probe(metrics, "/livez").0, 200, "live again once replaced");

    server.signal(libc::SIGHUP);
    assert!(counted("reload", 1.0), "{}", scrape(metrics).text);

    server.signal(libc::SIGTTIN);
    assert!(wait_until(TIMEOUT, || {
        scrape(metrics).get("ferrocorn_workers{state=\"serving\"}") == 2.0 && ready()
    }));
    server.signal(libc::SIGTTOU);
    assert!(counted("scale_down", 1.0), "{}", scrape(metrics).text);

    let last = scrape(metrics);
    // The first worker, and one after each of max_requests, crash, timeout,
    // reload and TTIN.
    assert_eq!(
        last.get("ferrocorn_worker_boots_total"),
        6.0,
        "{}",
        last.text
    );
    for reason in ["boot_failure", "memory_limit", "code_changed", "shutdown"] {
        assert_eq!(exits(&last, reason), 0.0, "{reason}");
    }
    assert_eq!(last.get("ferrocorn_workers_desired"), 1.0);
    let pid = worker_pid(&server);
    let resident = last
        .values
        .iter()
        .find(|(series, _)| {
            series.starts_with("ferrocorn_worker_resident_memory_bytes{")
                && series.contains(&format!("pid=\"{pid}\""))
        })
        .map(|(_, value)| *value);
    assert!(
        resident.is_some_and(|bytes| bytes > 1e6),
        "{resident:?} in {}",
        last.text
    );
}

/// The inode of the TCP socket listening on `port` (from /proc/net/tcp).
fn listening_socket_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit(':').next()?;
        let listening = fields.get(3) == Some(&"0A");
        (listening && u16::from_str_radix(local_port, 16).ok() == Some(port))
            .then(|| fields.get(9).map(|inode| inode.to_string()))
            .flatten()
    })
}

fn socket_inodes(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_endpoint_answers_while_every_worker_is_stopped_and_the_app_cannot_reach_it() {
    let (server, metrics) = start(&["-w", "1"]);
    let worker = worker_pid(&server);
    let inode = listening_socket_inode(metrics.port()).expect("the metrics listener");
    assert!(socket_inodes(server.pid() as i32).contains(&inode));
    assert!(
        !socket_inodes(worker).contains(&inode),
        "the worker holds the metrics listener"
    );
    let on_app_port = server.get("/metrics");
    assert_eq!(
        (on_app_port.status, on_app_port.text()),
        (200, "ok".to_owned()),
        "/metrics on the app's port is the app's"
    );
    assert_eq!(probe(metrics, "/").0, 404);

    send_signal(worker, libc::SIGSTOP);
    let queued: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();
    let backlog = format!("ferrocorn_listen_backlog{{listener=\"{}\"}}", server.addr());
    let seen = wait_until(TIMEOUT, || scrape(metrics).get(&backlog) == 3.0);
    send_signal(worker, libc::SIGCONT);
    assert!(seen, "{}", scrape(metrics).text);
    let limit = format!(
        "ferrocorn_listen_backlog_limit{{listener=\"{}\"}}",
        server.addr()
    );
    assert!(scrape(metrics).get(&limit) >= 1.0);
    drop(queued);
}

#[test]
fn failed_tls_handshakes_are_counted() {
    let pki = Pki::new("metrics-tls");
    let args = pki.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (server, metrics) = start(&args);
    let failures = || scrape(metrics).get("ferrocorn_tls_handshake_failures_total");
    assert_eq!(failures(), 0.0);
    // A handshake record with garbage in it, then plain HTTP.
    for bytes in [
        &b"\x16\x03\x01\x00\x04junk"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let mut stream = server.connect();
        stream.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    assert!(wait_until(TIMEOUT, || failures() == 2.0), "{}", failures());
}

#[test]
fn statsd_gets_gunicorns_metric_names_with_prefix_and_tags_from_sandboxed_workers() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let host = receiver.local_addr().unwrap().to_string();
    // Sandboxed workers only send on the socket the arbiter connected.
    let server = Server::start(&[
        "--sandbox",
        "-w",
        "2",
        "--statsd-host",
        &host,
        "--statsd-prefix",
        "shop",
        "--dogstatsd-tags",
        "env:test",
        APP,
    ]);
    for path in ["/", "/missing", "/boom"] {
        server.get(path);
    }
    let mut lines = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let wanted = |lines: &[String], line: &str| lines.iter().any(|l| l == line);
    while Instant::now() < deadline
        && !(wanted(&lines, "shop.gunicorn.workers:2|g|#env:test")
            && lines.iter().filter(|l| l.contains(".requests:")).count() == 3
            && wanted(&lines, "shop.gunicorn.log.exception:1|c|@1.0|#env:test"))
    {
        let mut buffer = [0u8; 2048];
        if let Ok(n) = receiver.recv(&mut buffer) {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    for line in [
        "shop.gunicorn.workers:2|g|#env:test",
        "shop.gunicorn.request.status.200:1|c|@1.0|#env:test",
        "shop.gunicorn.request.status.404:1|c|@1.0|#env:test",
        "shop.gunicorn.request.status.500:1|c|@1.0|#env:test",
        "shop.gunicorn.log.exception:1|c|@1.0|#env:test",
    ] {
        assert!(wanted(&lines, line), "no {line:?} in {lines:#?}");
    }
    let requests: Vec<&String> = lines.iter().filter(|l| l.contains(".requests:")).collect();
    assert_eq!(requests.len(), 3, "{lines:#?}");
    assert!(
        requests
            .iter()
            .all(|l| *l == "shop.gunicorn.requests:1|c|@1.0|#env:test")
    );
    let durations: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("shop.gunicorn.request.duration:"))
        .collect();
    assert_eq!(durations.len(), 3, "{lines:#?}");
    for line in durations {
        let millis = line
            .strip_prefix("shop.gunicorn.request.duration:")
            .and_then(|rest| rest.strip_suffix("|ms|#env:test"))
            .and_then(|value| value.parse::<f64>().ok());
        assert!(millis.is_some_and(|ms| ms >= 0.0), "{line}");
    }
}

fn healthcheck(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ferrocorn healthcheck");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn after_term_readiness_fails_first_and_the_server_serves_through_the_shutdown_delay() {
    // Long enough for the checks below on a slow machine.
    let (mut server, metrics) = start(&["-w", "2", "--shutdown-delay", "5"]);
    let address = metrics.to_string();
    assert_eq!(healthcheck(&["--metrics-bind", &address]).0, 0);
    assert_eq!(healthcheck(&["--metrics-bind", &address, "--ready"]).0, 0);

    server.signal(libc::SIGTERM);
    assert!(wait_until(TIMEOUT, || probe(metrics, "/readyz")
        == (503, "stopping\n".to_owned())));
    // Not ready, still live, still serving.
    let (code, message) = healthcheck(&["--metrics-bind", &address, "--ready"]);
    assert_eq!(code, 1);
    assert!(
        message.contains("/readyz answered 503: stopping"),
        "{message}"
    );
    assert_eq!(healthcheck(&["--metrics-bind", &address]).0, 0);
    assert_eq!(server.get("/").status, 200);
    assert!(!server.log().contains("Stopping workers gracefully"));

    assert!(server.wait().success(), "{}", server.log());
    let log = server.log();
    assert!(
        log.contains("stopping gracefully in 5 s (--shutdown-delay)"),
        "{log}"
    );
    let (code, message) = healthcheck(&["--metrics-bind", &address]);
    assert_eq!(code, 1);
    assert!(
        message.starts_with("ferrocorn healthcheck: cannot connect to"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn the_healthcheck_command_refuses_bad_use_with_one_line() {
    let (code, message) = healthcheck(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        message.trim_end(),
        "ferrocorn healthcheck: pass the server's --metrics-bind address"
    );
    let (code, message) = healthcheck(&["--metrics-bind", "nowhere"]);
    assert_eq!(code, 1);
    assert!(
        message.starts_with("ferrocorn healthcheck: --metrics-bind nowhere: "),
        "{message}"
    );
    assert_eq!(healthcheck(&["--bogus"]).0, 2, "a usage error");
}

#[test]
fn during_hup_readiness_fails_until_the_new_workers_have_imported_the_app() {
    let dir = scratch_dir("slow-import");
    let delay = dir.join("delay");
    let env = [("IMPORT_DELAY_FILE", delay.to_str().unwrap())];
    let (server, metrics) = start_with_env(&["-w", "2"], &env);
    std::fs::write(&delay, "1.5").unwrap();
    server.signal(libc::SIGHUP);
    let mut not_ready = (0, String::new());
    assert!(wait_until(TIMEOUT, || {
        not_ready = probe(metrics, "/readyz");
        not_ready.0 == 503
    }));
    assert!(
        not_ready.1.ends_with(" of 2 workers ready\n"),
        "{not_ready:?}"
    );
    // The old generation serves meanwhile.
    assert_eq!(server.get("/").status, 200);
    assert!(wait_until(TIMEOUT, || probe(metrics, "/readyz").0 == 200));
    assert!(wait_until(TIMEOUT, || exits(&scrape(metrics), "reload") == 2.0));
}

/// A process's parent and state, from /proc/PID/stat.
fn parent_and_state(pid: &str) -> Option<(i32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(") ")?.1;
    let mut fields = after_name.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((fields.next()?.parse().ok()?, state))
}

fn children_of(pid: i32) -> Vec<(String, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|name| {
            let (parent, state) = parent_and_state(&name)?;
            (parent == pid).then_some((name, state))
        })
        .collect()
}

#[test]
fn as_pid_1_of_a_namespace_it_reaps_orphans_and_stops_on_term() {
    let mut command = Command::new("unshare");
    command
        .current_dir(common::apps_dir())
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", BIN])
        .args(["-w", "1", "-b", "127.0.0.1:0", APP])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = Server::spawn(command);
    let log = server.log();
    assert!(log.contains("Arbiter running (pid: 1)"), "{log}");
    let arbiter = children_of(server.pid() as i32)
        .first()
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
        .expect("the arbiter, child of unshare");

    let workers = children_of(arbiter);
    assert_eq!(workers.len(), 1, "{workers:?}");
    let answer = server.get("/orphan");
    assert_eq!(answer.status, 200);
    // The sleep's parent shell exited at once: the sleep is the arbiter's
    // now, and once it ends it must not stay a zombie.
    let orphans = || {
        children_of(arbiter)
            .into_iter()
            .filter(|(pid, _)| *pid != workers[0].0)
            .count()
    };
    assert!(
        wait_until(TIMEOUT, || orphans() == 1),
        "the sleep never became the arbiter's"
    );
    assert!(
        wait_until(TIMEOUT, || orphans() == 0),
        "not reaped: {:?}",
        children_of(arbiter)
    );

    send_signal(arbiter, libc::SIGTERM);
    assert!(server.wait().success(), "{}", server.log());
    assert!(server.log().contains("Shutting down: Master"));
}

#[test]
fn a_bundles_healthcheck_asks_the_metrics_address_baked_into_it() {
    let dir = scratch_dir("bundle-healthcheck");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let bundle = dir.join("observed");
    let made = Command::new(BIN)
        .current_dir(common::apps_dir())
        .args([
            "bundle",
            "-o",
            bundle.to_str().unwrap(),
            "--metrics-bind",
            &metrics,
        ])
        .args(["-b", "127.0.0.1:0", APP])
        .output()
        .expect("ferrocorn bundle");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let ask = |extra: &[&str]| {
        Command::new(&bundle)
            .arg("healthcheck")
            .args(extra)
            .env("FERROCORN_BUNDLE_DIR", dir.join("unpacked"))
            .output()
            .expect("the bundle's healthcheck")
    };
    let refused = ask(&[]);
    assert_eq!(refused.status.code(), Some(1), "nothing listens yet");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("cannot connect to {metrics}"))
    );

    let mut command = Command::new(&bundle);
    command
        .env("FERROCORN_BUNDLE_DIR", dir.join("unpacked"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let _server = Server::spawn(command);
    let address: SocketAddr = metrics.parse().unwrap();
    assert!(wait_until(TIMEOUT, || probe(address, "/readyz").0 == 200));
    assert!(ask(&["--ready"]).status.success());
    assert!(ask(&[]).status.success());
}

#[test]
fn a_worker_over_its_memory_limit_is_counted_as_such() {
    let (server, metrics) = start(&["-w", "1", "--max-worker-memory", "100"]);
    assert_eq!(server.get("/grow").status, 200);
    assert!(
        wait_until(TIMEOUT, || exits(&scrape(metrics), "memory_limit") == 1.0),
        "{}",
        scrape(metrics).text
    );
    assert_eq!(exits(&scrape(metrics), "crash"), 0.0);
}

#[test]
fn a_connection_shed_at_the_connection_limit_is_counted() {
    let (server, metrics) = start(&[
        "-w",
        "1",
        "--worker-connections",
        "2",
        "--keep-alive",
        "120",
    ]);
    let idle = idle_connections(&server, 2);
    assert!(wait_until(TIMEOUT, || {
        scrape(metrics).get("ferrocorn_connections_idle") == 2.0
    }));
    assert_eq!(scrape(metrics).get("ferrocorn_connections_shed_total"), 0.0);
    let mut newcomer = Client::new(server.connect());
    newcomer.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(newcomer.response(false).expect("an answer").status, 200);
    let samples = scrape(metrics);
    assert_eq!(
        samples.get("ferrocorn_connections_shed_total"),
        1.0,
        "{}",
        samples.text
    );
    assert_eq!(samples.get("ferrocorn_connections_accepted_total"), 3.0);
    drop(idle);
}
