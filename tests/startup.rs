//! Starting and stopping: app loading and its errors, sys.path options, bind
//! forms, the static binary on a bare environment, graceful stop.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Client, Server, apps_dir, run_to_exit, scratch_dir};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The one `ferrocorn: error:` line of a failed start.
fn error_line(output: &str) -> &str {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("ferrocorn: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line in:\n{output}");
    lines[0]
}

#[test]
fn a_missing_module_is_named_in_one_line() {
    let (status, output) = run_to_exit(&apps_dir(), &["no_such_module:app"]);
    assert_eq!(
        status.code(),
        Some(3),
        "Gunicorn's WORKER_BOOT_ERROR for an import error: {output}"
    );
    let line = error_line(&output);
    assert!(line.contains("cannot import 'no_such_module'"), "{line}");
    assert!(
        !output.contains("Traceback"),
        "a missing module is the operator's mistake, not the app's:\n{output}"
    );
}

#[test]
fn a_missing_attribute_is_named() {
    let (status, output) = run_to_exit(&apps_dir(), &["factory:nope"]);
    assert_eq!(
        status.code(),
        Some(4),
        "Gunicorn's APP_LOAD_ERROR: {output}"
    );
    assert!(
        error_line(&output).contains("module 'factory' has no attribute 'nope'"),
        "{output}"
    );
}

#[test]
fn a_non_callable_app_is_refused() {
    let (status, output) = run_to_exit(&apps_dir(), &["-w", "3", "factory:not_callable"]);
    assert_eq!(
        status.code(),
        Some(4),
        "Gunicorn's APP_LOAD_ERROR: {output}"
    );
    assert!(
        error_line(&output).contains("factory:not_callable is not callable (it is a str)"),
        "{output}"
    );
}

#[test]
fn a_syntax_error_shows_the_traceback_and_a_summary() {
    let (status, output) = run_to_exit(&apps_dir(), &["broken_syntax:application"]);
    assert_eq!(
        status.code(),
        Some(3),
        "Gunicorn's WORKER_BOOT_ERROR: {output}"
    );
    assert!(error_line(&output).contains("SyntaxError"), "{output}");
    assert!(
        output.contains("broken_syntax.py"),
        "the file is named:\n{output}"
    );
}

#[test]
fn an_import_error_inside_the_app_shows_its_traceback() {
    let (status, output) = run_to_exit(&apps_dir(), &["broken_import:application"]);
    assert_eq!(
        status.code(),
        Some(3),
        "Gunicorn's WORKER_BOOT_ERROR: {output}"
    );
    assert!(output.contains("Traceback"), "{output}");
    let line = error_line(&output);
    assert!(
        line.contains("ModuleNotFoundError") && line.contains("module_that_does_not_exist"),
        "{line}"
    );
}

#[test]
fn a_c_extension_without_fallback_is_named_with_the_reason() {
    let (status, output) = run_to_exit(&apps_dir(), &["uses_cext:application"]);
    assert_eq!(status.code(), Some(3), "an import error: {output}");
    let line = error_line(&output);
    assert!(line.contains("needs module 'cext_pkg.fast'"), "{line}");
    assert!(
        line.contains("fast.cpython-311-x86_64-linux-gnu.so")
            && line.contains("RustPython cannot load"),
        "{line}"
    );
    assert!(
        line.contains("uses_cext.py:1"),
        "names the importing line: {line}"
    );
}

#[test]
fn a_missing_standard_module_is_named_with_the_reason() {
    let (status, output) = run_to_exit(&apps_dir(), &["needs_tkinter:application"]);
    assert_eq!(status.code(), Some(3), "an import error: {output}");
    let line = error_line(&output);
    assert!(
        line.contains("needs module '_tkinter'") && line.contains("part of the standard library"),
        "{line}"
    );
    assert!(
        line.contains("imported from tkinter:"),
        "names the stdlib module that needs it: {line}"
    );
}

#[test]
fn an_invalid_option_value_is_a_one_line_cli_error() {
    let output = Command::new(BIN)
        .args(["--threads", "0", "probe:application"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--threads"), "{stderr}");
    let output = Command::new(BIN)
        .args(["-b", "nowhere:port", "probe:application"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid bind address"));
}

#[test]
fn a_busy_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .current_dir(apps_dir())
        .args(["-b", &address, "probe:application"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        error_line(&stderr).contains(&format!("cannot listen on http://{address}")),
        "{stderr}"
    );
}

#[test]
fn factories_are_called_with_literal_arguments() {
    let server = Server::start(&["factory:create_app('hi', repeat=3)"]);
    assert_eq!(server.get("/").text(), "hihihi");
}

#[test]
fn chdir_puts_the_app_directory_first_on_sys_path() {
    let server = Server::start_with(
        &std::env::temp_dir(),
        &[
            "--chdir",
            apps_dir().to_str().unwrap(),
            "factory:create_app()",
        ],
        &[],
    );
    assert_eq!(server.get("/").text(), "hello");
}

#[test]
fn pythonpath_takes_directories_zips_and_wheels() {
    let elsewhere = scratch_dir("pythonpath");
    let paths = format!(
        "{},{},{}",
        apps_dir().display(),
        fixtures().join("zipped_app.zip").display(),
        fixtures()
            .join("wheeled_app-1.0-py3-none-any.whl")
            .display()
    );
    for (app, body) in [
        ("factory:create_app()", "hello"),
        ("zipped_app:application", "imported from zipped_app"),
        ("wheeled_app:application", "imported from wheeled_app"),
    ] {
        let server = Server::start_with(&elsewhere, &["--pythonpath", &paths, app], &[]);
        assert_eq!(server.get("/").text(), body, "{app}");
    }
}

#[test]
fn the_binary_is_static_and_serves_with_an_empty_environment() {
    let mut elf = Vec::new();
    std::fs::File::open(BIN)
        .unwrap()
        .read_to_end(&mut elf)
        .unwrap();
    assert!(
        !has_interpreter_segment(&elf),
        "the release binary must not need a dynamic loader"
    );

    let dir = scratch_dir("bare-host");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.py"),
        dir.join("hello.py"),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .current_dir(&dir)
        .args(["-b", "127.0.0.1:0", "hello:application"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = Server::spawn(command);
    let response = server.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Hello, world!\n");
}

/// Whether an ELF64 file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter_segment(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(0x20) as usize,
        u16_at(0x36) as usize,
        u16_at(0x38) as usize,
    );
    (0..phnum)
        .any(|i| u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().unwrap()) == 3)
}

#[test]
fn unix_socket_binds_serve_and_are_removed_on_exit() {
    let dir = scratch_dir("unix");
    let socket = dir.join("app.sock");
    std::fs::write(&socket, b"").unwrap_or(()); // a stale non-socket file must not be clobbered
    std::fs::remove_file(&socket).unwrap();
    let bind = format!("unix:{}", socket.display());
    let mut server = Server::start(&["-b", &bind, "probe:application"]);
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        reply.contains("written ") && reply.contains("returned"),
        "{reply}"
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
    assert!(!socket.exists(), "the socket file is removed on exit");
}

/// A loopback listener whose descriptor a child process inherits.
fn inheritable_listener() -> (std::net::TcpListener, std::net::SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // SAFETY: clearing FD_CLOEXEC on a descriptor we own, so the child inherits it.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
    }
    (listener, address)
}

#[test]
fn an_inherited_descriptor_can_be_the_listener() {
    let (listener, address) = inheritable_listener();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let bind = format!("fd://{fd}");
    let server = Server::start(&["-b", &bind, "probe:application"]).listening_at(address);
    assert_eq!(server.get("/write").text(), "written returned");
}

#[test]
fn systemd_socket_activation_hands_over_descriptor_3() {
    let (listener, address) = inheritable_listener();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // As systemd does: the socket at descriptor 3, LISTEN_PID naming the
    // process (the shell's pid is ferrocorn's after exec).
    let script = format!("LISTEN_PID=$$ LISTEN_FDS=1 exec {BIN} probe:application 3<&{fd}");
    let mut command = Command::new("sh");
    command
        .current_dir(apps_dir())
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = Server::spawn(command).listening_at(address);
    assert!(
        server.log().contains("Listening at: http://"),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("127.0.0.1:8000"),
        "no default bind when systemd passes sockets"
    );
    assert_eq!(server.get("/write").text(), "written returned");
}

#[test]
fn sigterm_lets_a_request_being_received_finish() {
    let mut server = Server::start(&["probe:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhe");
    common::wait_until_accepted(server.addr());
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_for_log("Worker received SIGTERM"),
        "{}",
        server.log()
    );
    client.send(b"llo");
    let response = client
        .response(false)
        .expect("the request being received is answered");
    assert!(
        response.text().contains("\"length\": 5"),
        "{}",
        response.text()
    );
    assert_eq!(response.header("connection"), Some("close"));
    assert!(server.wait().success());
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let mut server = Server::start(&["probe:application"]);
    let marker = scratch_dir("term-in-flight").join("started");
    let mut client = Client::new(server.connect());
    client.send(
        format!(
            "GET /sleep-marked?1.5&{} HTTP/1.1\r\nHost: t\r\n\r\n",
            marker.display()
        )
        .as_bytes(),
    );
    common::wait_for_file(&marker, &["started"]);
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let response = client
        .response(false)
        .expect("the request in flight is answered");
    assert_eq!(response.text(), "slept");
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "no keep-alive while stopping"
    );
    assert!(server.wait().success());
    assert!(signalled.elapsed() < Duration::from_secs(10));
    // New connections are refused once it stopped.
    assert!(std::net::TcpStream::connect(server.addr()).is_err());
}

#[test]
fn a_preloaded_app_that_cannot_load_exits_with_gunicorn_s_statuses_too() {
    let (status, output) = run_to_exit(&apps_dir(), &["--preload", "factory:nope"]);
    assert_eq!(status.code(), Some(4), "APP_LOAD_ERROR: {output}");
    let (status, output) = run_to_exit(&apps_dir(), &["--preload", "broken_import:application"]);
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR: {output}");
}

#[test]
fn help_prints_the_help_instead_of_importing_a_module_named_help() {
    let output = Command::new(BIN).arg("help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout.contains("Usage: ferrocorn [OPTIONS] [APP_MODULE]"),
        "{stdout}"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("cannot import"));
    for sub in ["call", "run", "bundle", "healthcheck"] {
        let output = Command::new(BIN).args(["help", sub]).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{sub}: {output:?}");
        assert!(
            stdout
                .to_lowercase()
                .contains(&format!("usage: ferrocorn {sub}")),
            "{sub}: {stdout}"
        );
    }
    let output = Command::new(BIN).args(["help", "serve"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no subcommand 'serve'"));
}
