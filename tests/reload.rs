//! `--reload` and `--reload-extra-file`: a changed source file restarts the
//! workers, which import the new code; a broken edit keeps the server up,
//! answering 500 with the error until the next edit.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{Server, TIMEOUT, scratch_dir};

fn app_source(text: &str) -> String {
    format!(
        "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'{text}']\n"
    )
}

/// Writes `text` and moves the modification time forward, so the change is
/// seen even within the file system's timestamp resolution.
fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let later = SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

/// Polls until GET / answers `expected` (the restart takes about a second).
fn wait_for_body(server: &Server, expected: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let body = std::panic::catch_unwind(|| server.get("/").text()).unwrap_or_default();
        if body == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {body:?}, expected {expected:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_changed_module_is_served_after_the_workers_restart() {
    let dir = scratch_dir("reload-module");
    let app = dir.join("site_app.py");
    std::fs::write(&app, app_source("version 1")).unwrap();
    let server = Server::start_with(&dir, &["--reload", "site_app"], &[]);
    assert_eq!(server.get("/").text(), "version 1");
    rewrite(&app, &app_source("version 2"));
    wait_for_body(&server, "version 2");
    assert!(
        server.log().contains("site_app.py modified"),
        "{}",
        server.log()
    );
}

#[test]
fn an_extra_file_restarts_the_workers() {
    let dir = scratch_dir("reload-extra");
    std::fs::write(dir.join("extra_app.py"), "import os\ndef application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [open(os.path.join(os.path.dirname(__file__), 'greeting.txt'), 'rb').read()]\n").unwrap();
    let greeting = dir.join("greeting.txt");
    std::fs::write(&greeting, "hello").unwrap();
    // Read once per request, so only a restart shows the log line below.
    let server = Server::start_with(
        &dir,
        &[
            "--reload",
            "--reload-extra-file",
            "greeting.txt",
            "extra_app",
        ],
        &[],
    );
    rewrite(&greeting, "bonjour");
    assert!(
        server.wait_for_log("greeting.txt modified"),
        "{}",
        server.log()
    );
    wait_for_body(&server, "bonjour");
}

#[test]
fn a_broken_edit_keeps_the_server_up_until_it_is_fixed() {
    let dir = scratch_dir("reload-broken");
    let app = dir.join("edited_app.py");
    std::fs::write(&app, app_source("before")).unwrap();
    let server = Server::start_with(&dir, &["--reload", "edited_app"], &[]);
    rewrite(&app, "def broken(:\n");
    assert!(
        server.wait_for_log("answering 500 until one of"),
        "{}",
        server.log()
    );
    // Meanwhile a request gets the error at once, not a wait in the backlog.
    let started = Instant::now();
    let response = server.get("/");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status, 500, "{}", server.log());
    let body = response.text();
    assert!(
        body.contains("SyntaxError") && body.contains("edited_app.py"),
        "the body should name the error and the file: {body}"
    );
    rewrite(&app, &app_source("after"));
    wait_for_body(&server, "after");
}
