//! The library API from an outside crate: `App` (in-process calls),
//! `NativeModule` (Rust functions for the app), `Server` (HTTP from threads
//! of this process, stopped through its handle) and `Config` in code.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocorn::Config;
use ferrocorn::embed::{App, NativeError, NativeModule, Request, RequestError, Server, Value};

use common::{TIMEOUT, apps_dir};

/// `tests/apps/APP` with a `host` module whose `note` calls land in `notes`.
fn config_with_host(app: &str, notes: Arc<Mutex<Vec<String>>>) -> Config {
    let mut config = Config::new(app).unwrap();
    config.chdir = Some(apps_dir());
    config.native_modules.push(
        NativeModule::new("host")
            .constant("GREETING", Value::from("hello"))
            .function("echo", |args| Ok(Value::List(args.to_vec())))
            .function("secret", |_| {
                Err(NativeError::permission("the host keeps its secrets"))
            })
            .function("note", move |args| {
                let text = args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                notes.lock().unwrap().push(text);
                Ok(Value::None)
            }),
    );
    config
}

fn probe() -> App {
    let mut config = Config::new("probe").unwrap();
    config.chdir = Some(apps_dir());
    App::load(&config).expect("load tests/apps/probe.py")
}

fn body_text(response: ferrocorn::embed::Response) -> String {
    let (body, outcome) = response.into_bytes().unwrap();
    assert!(outcome.complete, "{outcome:?}");
    String::from_utf8(body).unwrap()
}

#[test]
fn call_returns_status_headers_and_body_without_a_socket() {
    let app = probe();
    let response = app
        .call(Request::get("/environ/a?x=1").header("X-Token", "t1"))
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.status_line(), "200 OK");
    assert_eq!(response.header("content-type"), Some("text/plain"));
    let text = body_text(response);
    assert!(text.contains("\"PATH_INFO\": \"/environ/a\""), "{text}");
    assert!(text.contains("\"HTTP_X_TOKEN\": \"t1\""), "{text}");
    assert!(text.contains("\"REMOTE_ADDR\": \"127.0.0.1\""), "{text}");

    let response = app.call(Request::get("/missing")).unwrap();
    assert_eq!(response.status(), 404);
}

#[test]
fn a_post_body_reaches_wsgi_input() {
    let app = probe();
    let body = vec![7u8; 300_000];
    let response = app.call(Request::post("/input").body(body)).unwrap();
    let text = body_text(response);
    assert!(text.contains("\"length\": 300000"), "{text}");
    assert!(text.contains("\"content_length\": \"300000\""), "{text}");
}

#[test]
fn the_body_is_read_while_the_app_is_still_producing_it() {
    let app = probe();
    let flag = common::scratch_dir("embed-stream").join("go");
    let mut response = app
        .call(Request::get(&format!(
            "/stream-until-file?{}",
            flag.display()
        )))
        .unwrap();
    // The app waits for the flag after its first chunk: that chunk arrives first.
    let first = response.body_mut().next_chunk().unwrap();
    assert_eq!(first, b"first chunk\n");
    std::fs::write(&flag, b"").unwrap();
    let (rest, outcome) = response.into_bytes().unwrap();
    assert_eq!(rest, b"second chunk\n");
    assert!(outcome.complete);
}

#[test]
fn dropping_the_body_early_stops_and_closes_the_app_iterable() {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let app = App::load(&config_with_host("embedded", notes.clone())).unwrap();
    let mut response = app.call(Request::get("/endless")).unwrap();
    let mut buffer = vec![0u8; 10 * 1024];
    response.body_mut().read_exact(&mut buffer).unwrap();
    drop(response);
    let deadline = Instant::now() + TIMEOUT;
    while notes.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the app's generator was never closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let note = notes.lock().unwrap()[0].clone();
    assert!(note.starts_with("closed after "), "{note}");
    // It stopped near where the reader did, not after running unbounded.
    let blocks: u64 = note
        .trim_start_matches("closed after ")
        .trim_end_matches(" blocks")
        .parse()
        .unwrap();
    assert!(blocks < 200, "{note}");
}

#[test]
fn native_functions_take_and_return_python_values() {
    let app = App::load(&config_with_host("embedded", Arc::default())).unwrap();
    let text = body_text(app.call(Request::get("/echo")).unwrap());
    assert_eq!(
        text,
        "[None, True, -7, 2.5, 'text é', b'\\x00\\xff', [1, 'two'], {'k': [3]}]"
    );
    let text = body_text(app.call(Request::get("/hi")).unwrap());
    assert_eq!(text, "hello from /hi");
}

#[test]
fn native_errors_reach_python_as_exceptions() {
    let app = App::load(&config_with_host("embedded", Arc::default())).unwrap();
    let text = body_text(app.call(Request::get("/denied")).unwrap());
    assert_eq!(text, "PermissionError: the host keeps its secrets");
    let text = body_text(app.call(Request::get("/bad-argument")).unwrap());
    assert!(
        text.starts_with("TypeError: a native function cannot take a object argument"),
        "{text}"
    );
}

#[test]
fn an_exception_in_the_app_is_a_500_and_the_app_keeps_serving() {
    let app = probe();
    let response = app.call(Request::get("/raise")).unwrap();
    assert_eq!(response.status(), 500);
    let (_, outcome) = response.into_bytes().unwrap();
    assert!(!outcome.complete);
    assert!(
        outcome.violations.is_empty(),
        "an exception is not a contract break"
    );
    assert_eq!(app.call(Request::get("/pid")).unwrap().status(), 200);
}

#[test]
fn check_wsgi_findings_are_in_the_outcome() {
    let mut config = Config::new("wsgi_violations:no_content_type").unwrap();
    config.chdir = Some(apps_dir());
    config.check_wsgi = true;
    let app = App::load(&config).unwrap();
    let (_, outcome) = app.call(Request::get("/")).unwrap().into_bytes().unwrap();
    assert_eq!(
        outcome.violations,
        vec!["[content-type] No Content-Type header found in headers ([('Content-Length', '1')])"]
    );
}

#[test]
fn calls_from_several_threads_share_the_interpreters() {
    let mut config = Config::new("probe").unwrap();
    config.chdir = Some(apps_dir());
    config.threads = 2;
    let app = Arc::new(App::load(&config).unwrap());
    let callers: Vec<_> = (0..4)
        .map(|i| {
            let app = app.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let response = app
                        .call(Request::get(&format!("/environ/{i}/{j}")))
                        .unwrap();
                    let text = body_text(response);
                    assert!(text.contains(&format!("/environ/{i}/{j}")), "{text}");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
}

#[test]
fn a_request_the_server_would_refuse_is_an_error() {
    let app = probe();
    match app.call(Request::get("no-slash")) {
        Err(ferrocorn::embed::CallError::Request(RequestError::Malformed { status, .. })) => {
            assert_eq!(status, 400)
        }
        other => panic!("expected a malformed request, got {other:?}"),
    }
    match app.call(Request::get("/").header("Bad Name", "v")) {
        Err(ferrocorn::embed::CallError::Request(RequestError::Malformed { .. })) => {}
        other => panic!("expected a malformed request, got {other:?}"),
    }
}

#[test]
fn a_missing_app_is_a_load_error() {
    let mut config = Config::new("no_such_module:app").unwrap();
    config.chdir = Some(apps_dir());
    let error = App::load(&config).unwrap_err();
    assert!(error.to_string().contains("no_such_module"), "{error}");
}

#[test]
fn a_setting_the_sandbox_cannot_honour_is_a_sandbox_error_not_a_panic() {
    let mut config = Config::new("probe").unwrap();
    config.chdir = Some(apps_dir());
    config.deny_module = vec!["_thread".to_owned()];
    match App::load(&config) {
        Err(ferrocorn::LoadError::Sandbox(message)) => {
            assert!(message.starts_with("--deny-module _thread: "), "{message}")
        }
        Err(other) => panic!("expected a sandbox error, got {other:?}"),
        Ok(_) => panic!("an interpreter without _thread loaded the app"),
    }
}

fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    common::http_get_close(address, "t", path, TIMEOUT)
}

#[test]
fn server_serves_from_threads_and_stops_gracefully_through_its_handle() {
    let mut config = config_with_host("embedded", Arc::default());
    config.bind = vec!["127.0.0.1:0".parse().unwrap()];
    config.workers = 2;
    let server = Server::start(&config).unwrap();
    let address = server.tcp_addresses()[0];
    assert_ne!(address.port(), 0);
    assert!(server.addresses()[0].starts_with("http://127.0.0.1:"));
    let reply = http_get(address, "/x");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("hello from /x"), "{reply}");
    server.stop();
    assert!(
        TcpStream::connect(address).is_err(),
        "still listening after stop()"
    );
}

#[test]
fn server_serves_on_sockets_the_program_bound_itself() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = tcp.local_addr().unwrap();
    let dir = common::scratch_dir("embed-unix");
    let socket_path = dir.join("app.sock");
    let unix = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
    let config = config_with_host("embedded", Arc::default());
    let server = Server::start_on(&config, vec![tcp.into(), unix.into()]).unwrap();
    assert_eq!(server.tcp_addresses(), [address]);
    assert!(http_get(address, "/tcp").ends_with("hello from /tcp"));
    let mut stream = std::os::unix::net::UnixStream::connect(&socket_path).unwrap();
    stream
        .write_all(b"GET /unix HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.ends_with("hello from /unix"), "{reply}");
    server.stop();
}

#[test]
fn stop_lets_a_request_in_flight_finish() {
    let mut config = Config::new("probe").unwrap();
    config.chdir = Some(apps_dir());
    config.bind = vec!["127.0.0.1:0".parse().unwrap()];
    let server = Server::start(&config).unwrap();
    let address = server.tcp_addresses()[0];
    let marker = common::scratch_dir("embed-stop").join("started");
    let path = format!("/sleep-marked?0.5&{}", marker.display());
    let slow = std::thread::spawn(move || http_get(address, &path));
    common::wait_for_file(&marker, &["started"]);
    server.stop();
    let reply = slow.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("slept"), "{reply}");
}

#[test]
fn server_start_reports_an_app_that_does_not_load() {
    let mut config = Config::new("broken_import").unwrap();
    config.chdir = Some(apps_dir());
    config.bind = vec!["127.0.0.1:0".parse().unwrap()];
    let error = Server::start(&config).unwrap_err();
    assert!(
        matches!(error, ferrocorn::ServerError::AppLoad(_)),
        "{error}"
    );
}

#[test]
fn config_from_args_reads_the_command_line_flags() {
    let config =
        Config::from_args(["-w", "3", "--threads", "2", "--check-wsgi", "app:main"]).unwrap();
    assert_eq!(
        (config.workers, config.threads, config.check_wsgi),
        (3, 2, true)
    );
    assert_eq!(config.app, "app:main");
    let defaults = Config::new("app:main").unwrap();
    assert_eq!(
        (defaults.workers, defaults.threads, defaults.keep_alive),
        (1, 1, 2)
    );
    let error = Config::from_args(["--threads", "many", "app"]).unwrap_err();
    assert!(error.to_string().contains("--threads"), "{error}");
}

#[test]
fn a_sandboxed_app_is_confined_while_the_host_program_is_not() {
    let dir = common::scratch_dir("library-sandbox");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let mut config = Config::new("escape:application").unwrap();
    config.chdir = Some(apps_dir());
    config.sandbox = true;
    let app = App::load(&config).expect("load tests/apps/escape.py");
    let read = app
        .call(Request::get(&format!(
            "/try/read?path={}",
            secret.display()
        )))
        .unwrap();
    let text = body_text(read);
    assert!(text.contains("\"type\": \"PermissionError\""), "{text}");
    let fork = body_text(app.call(Request::get("/try/fork")).unwrap());
    assert!(fork.contains("\"type\": \"PermissionError\""), "{fork}");
    let environ = body_text(app.call(Request::get("/try/environ")).unwrap());
    assert!(
        !environ.contains("\"PATH\""),
        "the app sees no PATH: {environ}"
    );
    let tmp = body_text(app.call(Request::get("/try/tempfile")).unwrap());
    let path = tmp
        .split("\"path\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("{tmp}"));
    // The host program itself is not confined, and keeps its environment.
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "the host's secret"
    );
    assert!(std::env::var_os("PATH").is_some());
    assert!(path.exists());
    drop(app);
    assert!(
        !path.parent().unwrap().exists(),
        "the private temporary directory is removed"
    );
}
