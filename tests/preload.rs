//! `--preload`: every worker is forked from a preloading process that
//! imported the app once (at start, on TTIN, to replace one that died, timed
//! out or reached --max-requests); HUP and --reload start a new preloading
//! process for the new code; the arbiter supervises every worker directly.
//! tests/apps/preloaded.py answers with its worker's pid and the pid of the
//! process that imported it.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::load::{Load, booted_pids};
use common::{Server, TIMEOUT, apps_dir, scratch_dir, wait_until};

/// What `GET /` of preloaded.py says.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    pid: u32,
    loaded_by: u32,
    version: String,
}

/// `GET path` on a new connection; `None` if it fails (a worker being
/// replaced may drop it).
fn try_get(server: &Server, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&server.addr(), TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The arbiter's `/metrics` page (empty if it cannot be read).
fn try_answer(server: &Server) -> Option<Answer> {
    let body = try_get(server, "/")?;
    let mut answer = Answer {
        pid: 0,
        loaded_by: 0,
        version: String::new(),
    };
    for field in body.split(' ') {
        match field.split_once('=')? {
            ("pid", pid) => answer.pid = pid.parse().ok()?,
            ("loaded_by", pid) => answer.loaded_by = pid.parse().ok()?,
            ("version", version) => answer.version = version.to_owned(),
            _ => return None,
        }
    }
    Some(answer)
}

fn answer(server: &Server) -> Answer {
    try_answer(server).expect("an answer from preloaded.py")
}

/// Answers until one satisfies `wanted` (bounded).
fn answer_where(server: &Server, what: &str, wanted: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(answer) = try_answer(server).filter(&wanted) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "no answer where {what}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of the preloading processes that reported the app loaded, in order.
fn preloaders(server: &Server) -> Vec<u32> {
    server
        .log()
        .lines()
        .filter_map(|l| l.split("Preloaded the app (pid: ").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces, so split after it.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn is_alive(pid: u32) -> bool {
    // A zombie has been killed already; only a running process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Waits (bounded) until `condition` holds; fails with the log otherwise.
fn wait(server: &Server, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(TIMEOUT, condition),
        "timed out waiting:\n{}",
        server.log()
    );
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

fn start_preloaded(dir: &Path, args: &[&str]) -> Server {
    let mut all = vec!["--preload"];
    all.extend_from_slice(args);
    all.push("preloaded:application");
    Server::start_with(dir, &all, &[])
}

/// A copy of preloaded.py in a directory of its own, to edit.
fn editable_app(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    std::fs::copy(apps_dir().join("preloaded.py"), dir.join("preloaded.py")).unwrap();
    dir
}

/// Rewrites the app's `VERSION = ...` line (or the whole module with
/// `source`) and moves its modification time forward, so --reload sees it
/// within the file system's timestamp resolution.
fn edit_app(dir: &Path, source: Option<&str>, version: &str) {
    let path = dir.join("preloaded.py");
    let text = match source {
        Some(source) => source.to_owned(),
        None => std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| match line.starts_with("VERSION = ") {
                true => format!("VERSION = {version}"),
                false => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    std::fs::write(&path, text).unwrap();
    let later = SystemTime::now() + Duration::from_secs(2);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(later).unwrap();
}

#[test]
fn every_worker_is_forked_from_the_app_imported_once() {
    let server = start_preloaded(&apps_dir(), &["-w", "3"]);
    wait(&server, || booted_pids(&server).len() == 3);
    let preloader = preloaders(&server)[0];
    let mut seen = std::collections::HashMap::new();
    let deadline = Instant::now() + TIMEOUT;
    while seen.len() < 3 && Instant::now() < deadline {
        let answer = answer(&server);
        seen.insert(answer.pid, answer.loaded_by);
    }
    assert_eq!(seen.len(), 3, "answers from three workers: {seen:?}");
    for (&worker, &loaded_by) in &seen {
        assert_eq!(
            loaded_by, preloader,
            "worker {worker} did not import the app"
        );
        assert_eq!(
            parent_of(worker),
            Some(server.pid()),
            "worker {worker} is the arbiter's child"
        );
    }
    assert_eq!(parent_of(preloader), Some(server.pid()));
    let log = server.log();
    assert_eq!(
        log.matches("Preloading preloaded:application").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("(forked from the preloaded app)").count(),
        3,
        "{log}"
    );
}

#[test]
fn a_killed_worker_is_replaced_by_a_fork_not_by_a_new_import() {
    let server = start_preloaded(&apps_dir(), &["-w", "1"]);
    let first = answer(&server);
    kill(first.pid, libc::SIGKILL);
    let replacement = answer_where(&server, "a new worker answers", |a| a.pid != first.pid);
    assert_eq!(replacement.loaded_by, first.loaded_by, "{}", server.log());
    assert!(server.log().contains(&format!(
        "Worker (pid:{}) was killed by signal 9 (SIGKILL)",
        first.pid
    )));
    assert_eq!(server.log().matches("Preloading preloaded").count(), 1);
}

#[test]
fn max_requests_replacements_fork_from_the_preloaded_app() {
    let server = start_preloaded(&apps_dir(), &["-w", "1", "--max-requests", "3"]);
    let first = answer(&server);
    let later = answer_where(&server, "a worker after --max-requests", |a| {
        a.pid != first.pid
    });
    assert_eq!(later.loaded_by, first.loaded_by);
    assert!(
        server.wait_for_log("Autorestarting worker after 3 requests"),
        "{}",
        server.log()
    );
    assert_eq!(server.log().matches("Preloading preloaded").count(), 1);
}

#[test]
fn ttin_forks_one_more_worker_from_the_preloaded_app() {
    let server = start_preloaded(&apps_dir(), &["-w", "1"]);
    let first = answer(&server);
    server.signal(libc::SIGTTIN);
    wait(&server, || booted_pids(&server).len() == 2);
    let other = answer_where(&server, "the second worker", |a| a.pid != first.pid);
    assert_eq!(other.loaded_by, first.loaded_by);
}

#[test]
fn hup_under_load_loses_no_request_and_serves_the_edited_code() {
    let dir = editable_app("preload-hup");
    let server = start_preloaded(&dir, &["-w", "2"]);
    let old = answer(&server);
    assert_eq!(old.version, "1");
    let keep_alive = Load::start_keep_alive(&server, 3);
    let fresh = Load::start(&server, 2);
    wait(&server, || {
        keep_alive.answered() > 20 && fresh.answered() > 10
    });
    edit_app(&dir, None, "2");
    server.signal(libc::SIGHUP);
    let new = answer_where(&server, "the edited code", |a| a.version == "2");
    assert_ne!(
        new.loaded_by, old.loaded_by,
        "a new preloading process imported it"
    );
    wait(&server, || !is_alive(old.loaded_by));
    wait(&server, || !is_alive(old.pid));
    let before = keep_alive.answered() + fresh.answered();
    wait(&server, || {
        keep_alive.answered() + fresh.answered() > before + 20
    });
    let (kept, kept_failures) = keep_alive.finish();
    let (new_clients, fresh_failures) = fresh.finish();
    assert!(
        kept_failures.is_empty(),
        "keep-alive failures: {kept_failures:?}"
    );
    assert!(fresh_failures.is_empty(), "failures: {fresh_failures:?}");
    assert!(
        kept > 20 && new_clients > 10,
        "{kept} / {new_clients} answered"
    );
    assert_eq!(answer(&server).version, "2");
}

#[test]
fn a_reload_whose_import_fails_leaves_the_previous_code_serving() {
    let dir = editable_app("preload-hup-broken");
    let server = start_preloaded(&dir, &["-w", "2"]);
    wait(&server, || booted_pids(&server).len() == 2);
    let old = answer(&server);
    let workers = booted_pids(&server);
    edit_app(&dir, Some("raise RuntimeError('half-edited')\n"), "");
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_for_log("Reload failed: the new code failed to load"),
        "{}",
        server.log()
    );
    assert!(server.log().contains("RuntimeError: half-edited"));
    for _ in 0..10 {
        let now = answer(&server);
        assert_eq!((now.version.as_str(), now.loaded_by), ("1", old.loaded_by));
        assert!(workers.contains(&now.pid), "an old worker answers");
    }
    std::fs::copy(apps_dir().join("preloaded.py"), dir.join("preloaded.py")).unwrap();
    edit_app(&dir, None, "3");
    server.signal(libc::SIGHUP);
    answer_where(&server, "the fixed code", |a| a.version == "3");
}

#[test]
fn the_timeout_still_kills_a_stuck_preloaded_worker() {
    let server = start_preloaded(
        &apps_dir(),
        &["-w", "2", "--timeout", "2", "--metrics-bind", "127.0.0.1:0"],
    );
    wait(&server, || booted_pids(&server).len() == 2);
    let metrics = server.metrics_address();
    let stuck = std::thread::spawn({
        let addr = server.addr();
        move || {
            let mut client = common::Client::new(std::net::TcpStream::connect(addr).unwrap());
            client.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
            client.read_to_end()
        }
    });
    wait(&server, || {
        common::metrics_page(metrics).contains("ferrocorn_requests_in_flight 1")
    });
    common::wait_for_a_stalled_worker(&server);
    let load = Load::start(&server, 2);
    assert!(server.wait_for_log("WORKER TIMEOUT"), "{}", server.log());
    wait(&server, || booted_pids(&server).len() == 3);
    let before = load.answered();
    wait(&server, || load.answered() > before + 10);
    let (_, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(
        stuck.join().unwrap().is_empty(),
        "the stuck request gets no response"
    );
    assert_eq!(server.log().matches("Preloading preloaded").count(), 1);
}

#[test]
fn a_killed_preloading_process_is_started_again_while_the_workers_serve() {
    let server = start_preloaded(&apps_dir(), &["-w", "2"]);
    let first = preloaders(&server)[0];
    let load = Load::start(&server, 2);
    kill(first, libc::SIGKILL);
    assert!(
        server.wait_for_log(&format!(
            "Preloading process (pid:{first}) was killed by signal 9"
        )),
        "{}",
        server.log()
    );
    wait(&server, || preloaders(&server).len() == 2);
    let second = preloaders(&server)[1];
    let before = load.answered();
    wait(&server, || load.answered() > before + 10);
    let (_, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "the workers kept serving: {failures:?}"
    );
    let worker = answer(&server);
    kill(worker.pid, libc::SIGKILL);
    let replacement = answer_where(&server, "a fork of the new preloading process", |a| {
        a.loaded_by == second
    });
    assert_ne!(replacement.pid, worker.pid);
}

#[test]
fn reload_with_preload_imports_the_changed_code_in_a_new_preloading_process() {
    let dir = editable_app("preload-reload");
    let server = start_preloaded(&dir, &["-w", "1", "--reload"]);
    let old = answer(&server);
    edit_app(&dir, None, "2");
    let new = answer_where(&server, "the changed code", |a| a.version == "2");
    assert_ne!(new.loaded_by, old.loaded_by);
    assert!(server.log().contains("--reload: "), "{}", server.log());
}

#[test]
fn a_stopped_server_leaves_no_process_behind() {
    let mut server = start_preloaded(&apps_dir(), &["-w", "2"]);
    let preloader = preloaders(&server)[0];
    let workers = booted_pids(&server);
    server.signal(libc::SIGTERM);
    assert!(server.wait().success(), "{}", server.log());
    for pid in workers.iter().chain([&preloader]) {
        wait(&server, || !is_alive(*pid));
    }
}

#[test]
fn preloaded_workers_under_the_sandbox_cannot_start_processes() {
    let open = start_preloaded(&apps_dir(), &["-w", "1"]);
    assert_eq!(try_get(&open, "/fork").as_deref(), Some("forked"));
    let confined = start_preloaded(&apps_dir(), &["-w", "1", "--sandbox"]);
    assert_eq!(
        try_get(&confined, "/fork").as_deref(),
        Some("PermissionError"),
        "{}",
        confined.log()
    );
    let answer = answer(&confined);
    assert_ne!(
        answer.pid, answer.loaded_by,
        "the worker was forked all the same"
    );
}

#[test]
fn usr1_reopens_the_log_file_of_the_preloading_process_and_so_of_later_workers() {
    let dir = scratch_dir("preload-usr1");
    let log = dir.join("error.log");
    let log_arg = log.display().to_string();
    let server = Server::start_on_free_port(&[
        "--preload",
        "-w",
        "1",
        "--error-logfile",
        &log_arg,
        "preloaded:application",
    ]);
    let first = answer_where(&server, "the first worker", |_| true);
    std::fs::rename(&log, dir.join("error.log.1")).unwrap();
    server.signal(libc::SIGUSR1);
    assert!(
        wait_until(TIMEOUT, || log.exists()),
        "the arbiter reopened its log"
    );
    kill(first.pid, libc::SIGKILL);
    let replacement = answer_where(&server, "the replacement", |a| a.pid != first.pid);
    // The replacement inherits its log descriptor from the preloading
    // process: it writes to the new file only if that process reopened.
    let booted = format!("Booting worker with pid: {}", replacement.pid);
    assert!(
        wait_until(TIMEOUT, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(&booted)),
        "new log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
