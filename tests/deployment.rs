//! The deployment the README describes: real nginx (Debian's package) in
//! front of ferrocorn on a unix socket, using examples/deploy's site file.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, scratch_dir};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx, installed from Debian's packages if this machine lacks it.
fn ensure_nginx() {
    if Path::new(NGINX).exists() {
        return;
    }
    // A fresh machine's package lists may be empty: refresh them first.
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "nginx-light"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed && Path::new(NGINX).exists(),
        "this test needs nginx: apt-get install nginx-light"
    );
}

fn http_get(port: u16, path: &str) -> String {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    common::http_get_close(addr, "app.test", path, Duration::from_secs(10))
}

/// Stops nginx however the test ends: TERM, not KILL, so the nginx master
/// takes its worker down with it.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// nginx in the foreground with `DIR/nginx.conf`, stopped when dropped.
fn start_nginx(dir: &Path) -> StopOnDrop {
    let nginx = Command::new(NGINX)
        .args([
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
        ])
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    StopOnDrop(nginx)
}

#[test]
fn nginx_serves_static_files_and_proxies_the_rest_to_a_unix_socket() {
    ensure_nginx();
    let dir = scratch_dir("nginx");
    let socket = dir.join("ferrocorn.sock");
    let static_dir = dir.join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    std::fs::write(static_dir.join("hello.txt"), "static hello\n").unwrap();

    let bind = format!("unix:{}", socket.display());
    let server = Server::start(&[
        "-w",
        "2",
        "--umask",
        "0o000",
        "-b",
        &bind,
        "--access-logfile",
        "-",
        "probe:application",
    ]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/nginx-ferrocorn.conf"),
    )
    .unwrap()
    .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
    .replace("/run/ferrocorn/ferrocorn.sock", socket.to_str().unwrap())
    .replace("/srv/app/static/", &format!("{}/", static_dir.display()));
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let main_conf = format!(
        "user root;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/tmp;\n  proxy_temp_path {dir}/tmp;\n\
         include {dir}/site.conf;\n}}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), main_conf).unwrap();
    let _nginx = start_nginx(&dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let static_reply = http_get(port, "/static/hello.txt");
    let proxied = http_get(port, "/environ");

    assert!(
        static_reply.starts_with("HTTP/1.1 200 OK"),
        "{static_reply}"
    );
    assert!(static_reply.ends_with("static hello\n"));
    assert!(proxied.starts_with("HTTP/1.1 200 OK"), "{proxied}");
    assert!(
        proxied.contains("\"HTTP_X_FORWARDED_FOR\": \"127.0.0.1\""),
        "{proxied}"
    );
    assert!(proxied.contains("\"HTTP_HOST\": \"app.test\""), "{proxied}");
    // The proxied request is logged; the static one, made before it, never
    // reached ferrocorn.
    assert!(
        server.wait_for_log("\"GET /environ HTTP/1."),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("/static/hello.txt"),
        "{}",
        server.log()
    );
}

/// One GET through nginx: the answering worker's pid, or None on failure.
fn pid_through(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /pid HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let body = reply
        .strip_prefix("HTTP/1.1 200 OK")?
        .split_once("\r\n\r\n")?
        .1;
    Some(body.to_owned())
}

/// A ferrocorn instance for the rolling restart: its app port, its
/// metrics port and its worker's pid.
struct Instance {
    server: Server,
    metrics: std::net::SocketAddr,
    worker: String,
}

impl Instance {
    fn start() -> Instance {
        let server = Server::start(&[
            "-w",
            "1",
            "--metrics-bind",
            "127.0.0.1:0",
            "--shutdown-delay",
            "3",
            "observed:application",
        ]);
        let metrics = server
            .log()
            .lines()
            .find_map(|l| l.split("Metrics and health at: http://").nth(1))
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok())
            .expect("the metrics address");
        assert!(common::wait_until(common::TIMEOUT, || readyz(metrics) == 200));
        let worker = server.get("/pid").text();
        Instance {
            server,
            metrics,
            worker,
        }
    }
}

/// The status of GET /readyz; 0 when nothing answers.
fn readyz(metrics: std::net::SocketAddr) -> u16 {
    use std::io::{Read, Write};
    let mut reply = String::new();
    let answered = std::net::TcpStream::connect(metrics).and_then(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: probe\r\n\r\n")?;
        stream.read_to_string(&mut reply)
    });
    if answered.is_err() {
        return 0;
    }
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// nginx in front of `upstreams`, with no retry on another upstream (an
/// error reaches the client) and no upstream ever marked down: every lost
/// request shows.
fn write_balancer_conf(dir: &Path, port: u16, upstreams: &[&Instance]) {
    let servers: String = upstreams
        .iter()
        .map(|i| format!("    server {} max_fails=0;\n", i.server.addr()))
        .collect();
    let conf = format!(
        "user root;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/tmp;\n  proxy_temp_path {dir}/tmp;\n\
         upstream app {{\n{servers}  }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
         proxy_next_upstream off;\n    }}\n  }}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
}

fn reload_nginx(dir: &Path) {
    let status = Command::new(NGINX)
        .args([
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
        ])
        .args(["-s", "reload"])
        .stderr(Stdio::null())
        .status()
        .expect("nginx -s reload");
    assert!(status.success());
}

/// What the load balancer's clients saw while instances were drained.
#[derive(Default)]
struct Traffic {
    answered_by: Vec<String>,
    failed: usize,
}

#[test]
fn a_rolling_restart_behind_nginx_loses_no_request_while_each_instance_drains() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    ensure_nginx();
    let dir = scratch_dir("rolling");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let first = Instance::start();
    let second = Instance::start();
    write_balancer_conf(&dir, port, &[&first, &second]);
    let _nginx = start_nginx(&dir);
    assert!(common::wait_until(common::TIMEOUT, || pid_through(port).is_some()));

    // Clients: one request after another through nginx, until told to stop
    // (at most 200,000 of them, for at most two minutes: a count alone ran
    // out before the second round with a faster build).
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let (traffic, done) = (traffic.clone(), done.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        std::thread::spawn(move || {
            for _ in 0..200_000 {
                if done.load(Ordering::SeqCst) || std::time::Instant::now() > deadline {
                    break;
                }
                let answer = pid_through(port);
                let mut seen = traffic.lock().unwrap();
                match answer {
                    Some(pid) => seen.answered_by.push(pid),
                    None => seen.failed += 1,
                }
            }
        })
    };
    let answered_by = |worker: &str| {
        let seen = traffic.lock().unwrap();
        seen.answered_by.iter().filter(|p| *p == worker).count()
    };
    assert!(common::wait_until(common::TIMEOUT, || answered_by(
        &first.worker
    ) > 20
        && answered_by(&second.worker) > 20));

    // Drain one instance as an orchestrator would: SIGTERM, then take it out
    // of the balancer once its readiness fails (the --shutdown-delay keeps
    // it serving meanwhile), start its replacement and put that in.
    let mut draining = first;
    let mut staying = second;
    for round in 0..2 {
        draining.server.signal(libc::SIGTERM);
        // Not ready (503), or already gone (0) had it no --shutdown-delay.
        assert!(common::wait_until(common::TIMEOUT, || readyz(
            draining.metrics
        ) != 200));
        write_balancer_conf(&dir, port, &[&staying]);
        reload_nginx(&dir);
        assert!(
            draining.server.wait().success(),
            "{}",
            draining.server.log()
        );
        let before = traffic.lock().unwrap().answered_by.len();
        assert!(common::wait_until(common::TIMEOUT, || {
            traffic.lock().unwrap().answered_by.len() > before + 50
        }));
        let replacement = Instance::start();
        write_balancer_conf(&dir, port, &[&staying, &replacement]);
        reload_nginx(&dir);
        assert!(
            common::wait_until(common::TIMEOUT, || answered_by(&replacement.worker) > 20),
            "round {round}: the replacement got no traffic"
        );
        draining = staying;
        staying = replacement;
    }
    done.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let seen = traffic.lock().unwrap();
    assert_eq!(
        seen.failed,
        0,
        "{} of {} requests failed during the rolling restart",
        seen.failed,
        seen.failed + seen.answered_by.len()
    );
    drop(draining);
    drop(staying);
}
