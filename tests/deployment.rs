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
    let nginx = Command::new(NGINX)
        .args([
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
            "-g",
            "daemon off;",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let _nginx = StopOnDrop(nginx);
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
    assert!(!server.log().contains("/static/hello.txt"));
}
