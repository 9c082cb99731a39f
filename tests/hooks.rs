//! Gunicorn's server hooks from a configuration file: each is called, in the
//! process Gunicorn calls it in, with the arguments hooks use.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, apps_dir, scratch_dir, wait_for_file};

/// A config whose every hook appends a line to hooks.log.
const HOOKS: &str = r#"
import os
LOG = os.path.join(os.path.dirname(__file__), "hooks.log")

def note(*parts):
    with open(LOG, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")

wsgi_app = "probe"

def on_starting(server): note("on_starting", server.num_workers, server.cfg.workers)
def when_ready(server): note("when_ready", server.pid == os.getpid(), len(server.address))
def on_reload(server): note("on_reload")
def pre_fork(server, worker): note("pre_fork", worker.age, server.pid == os.getpid())
def post_fork(server, worker): note("post_fork", worker.pid == os.getpid(), worker.ppid == server.pid)
def post_worker_init(worker): note("post_worker_init", worker.pid == os.getpid())
def pre_request(worker, req): note("pre_request", req.method, req.path, req.query, dict(req.headers)["X-PROBE"])
def post_request(worker, req, environ, resp): note("post_request", req.uri, environ["PATH_INFO"], resp.status_code, resp.sent)
def nworkers_changed(server, new_value, old_value): note("nworkers_changed", new_value, old_value)
def child_exit(server, worker): note("child_exit", server.pid == os.getpid(), worker.age)
def worker_exit(server, worker): note("worker_exit", worker.pid == os.getpid())
def worker_int(worker): note("worker_int", worker.pid == os.getpid())
def worker_abort(worker): note("worker_abort", worker.pid == os.getpid())
def on_exit(server): server.log.info("on_exit logged through server.log"); note("on_exit")
"#;

/// A directory with the probe app and `config` as its gunicorn.conf.py.
fn project_with(name: &str, config: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    std::fs::copy(apps_dir().join("probe.py"), dir.join("probe.py")).unwrap();
    std::fs::write(dir.join("gunicorn.conf.py"), config).unwrap();
    dir
}

fn project(name: &str) -> std::path::PathBuf {
    project_with(name, HOOKS)
}

fn start(dir: &Path, args: &[&str]) -> Server {
    let mut command = Command::new(common::BIN);
    command
        .current_dir(dir)
        .args(["-b", "127.0.0.1:0"])
        .args(args)
        .env_remove("GUNICORN_CMD_ARGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Server::spawn(command)
}

#[test]
fn every_hook_is_called_where_gunicorn_calls_it() {
    let dir = project("hooks-all");
    let log = dir.join("hooks.log");
    let mut server = start(&dir, &[]);
    wait_for_file(
        &log,
        &[
            "on_starting 1 1\n",
            "when_ready True 1\n",
            "pre_fork 0 True\n",
            "post_fork True True\n",
            "post_worker_init True\n",
        ],
    );

    let mut client = common::Client::new(server.connect());
    client.send(b"GET /pid?a=1 HTTP/1.1\r\nHost: t\r\nX-Probe: yes\r\n\r\n");
    let response = client.response(false).expect("a response");
    let sent = response.body.len();
    wait_for_file(
        &log,
        &[
            "pre_request GET /pid a=1 yes\n",
            &format!("post_request /pid?a=1 /pid 200 {sent}\n"),
        ],
    );

    server.signal(libc::SIGTTIN);
    wait_for_file(&log, &["nworkers_changed 2 1\n", "pre_fork 1 True\n"]);
    server.signal(libc::SIGHUP);
    wait_for_file(&log, &["on_reload\n", "child_exit True 0\n"]);
    server.signal(libc::SIGTERM);
    let status = server.wait();
    assert!(status.success(), "{status}");
    wait_for_file(&log, &["worker_exit True\n", "on_exit\n"]);
    assert!(
        server.log().contains("on_exit logged through server.log"),
        "{}",
        server.log()
    );
}

#[test]
fn worker_int_runs_when_the_worker_is_told_to_quit() {
    let dir = project("hooks-int");
    let mut server = start(&dir, &[]);
    server.signal(libc::SIGINT);
    server.wait();
    wait_for_file(
        &dir.join("hooks.log"),
        &["worker_int True\n", "worker_exit True\n"],
    );
}

#[test]
fn worker_abort_runs_when_the_worker_times_out() {
    let dir = project("hooks-abort");
    let server = start(&dir, &["--timeout", "1"]);
    let mut client = common::Client::new(server.connect());
    client.send(b"GET /sleep?5 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for_file(
        &dir.join("hooks.log"),
        &["worker_abort True\n", "child_exit True 0\n"],
    );
    assert!(server.log().contains("WORKER TIMEOUT"), "{}", server.log());
}

#[test]
fn a_failing_hook_is_logged_and_the_server_goes_on() {
    let dir = project_with(
        "hooks-failing",
        "wsgi_app = 'probe'\ndef pre_request(worker, req):\n    raise RuntimeError('hook broke')\n",
    );
    let server = start(&dir, &[]);
    assert_eq!(server.get("/pid").status, 200);
    assert!(server.wait_for_log("hook broke"), "{}", server.log());
}

/// A client arriving while the only interpreter runs post_request (its
/// response already sent) is taken at once and served when the hook returns.
/// Before, the worker paused accepting ("every interpreter busy") and only
/// looked again at its next 1 s tick.
#[test]
fn a_client_arriving_during_post_request_is_served_when_the_hook_returns() {
    let dir = project_with(
        "hooks-slow-post-request",
        "import time\nwsgi_app = 'probe'\n\
         def post_request(worker, req, environ, resp):\n    \
         if req.path == '/write': time.sleep(0.2)\n",
    );
    let server = start(&dir, &["--threads", "1"]);
    for round in 0..5 {
        assert_eq!(server.get("/write").text(), "written returned");
        let arrived = Instant::now();
        assert_eq!(server.get("/pid").status, 200);
        let waited = arrived.elapsed();
        assert!(
            waited < Duration::from_millis(450),
            "round {round}: waited {waited:?} behind a 200 ms hook"
        );
    }
}
