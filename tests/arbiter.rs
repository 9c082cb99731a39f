//! The arbiter: worker processes, their replacement, signals under load,
//! timeouts, max-requests, logs and the pid file.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::load::{Load, booted_pids, one_request};
use common::{Client, Server, TIMEOUT, scratch_dir, wait_for, wait_for_file};

#[test]
fn workers_are_separate_processes() {
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        seen.insert(server.get("/pid").text());
        if seen.len() == 2 {
            break;
        }
    }
    assert!(!seen.is_empty());
    for pid in &seen {
        assert!(
            booted_pids(&server).contains(&pid.parse().unwrap()),
            "{pid} is a booted worker"
        );
    }
}

/// New keep-alive clients go to the worker holding the fewest connections.
/// The kernel tends to wake the same worker for each new client: without
/// balancing one worker held 58-64 of 64 connections while the other idled.
#[test]
fn keep_alive_connections_spread_over_the_workers() {
    let server = Server::start(&["-w", "2", "probe:application"]);
    // A worker publishes its count before it logs "Booted".
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let mut per_worker: std::collections::HashMap<String, usize> = Default::default();
    let mut open = Vec::new();
    for _ in 0..24 {
        let mut client = Client::new(server.connect());
        client.send(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
        let pid = client.response(false).expect("a response").text();
        *per_worker.entry(pid).or_default() += 1;
        open.push(client);
    }
    let counts: Vec<usize> = per_worker.values().copied().collect();
    assert_eq!(
        counts.len(),
        2,
        "both workers hold connections: {per_worker:?}"
    );
    assert!(
        counts.iter().all(|&n| n >= 8),
        "24 connections split evenly (within the slack): {per_worker:?}"
    );
}

/// A burst of keep-alive clients whose requests keep the interpreters busy
/// spreads over the workers too (wrk's start, `-c64` on Flask). A worker
/// whose interpreters were all busy dropped out of the counts, so its
/// sibling, seeing no one to compare with, took the rest of the burst: 64/0
/// and 55/9 with Flask, and every client after the first few waited behind
/// the one worker.
#[test]
fn a_burst_of_keep_alive_clients_on_busy_workers_spreads_over_them() {
    const BURSTS: usize = 8;
    let splits: Vec<Vec<usize>> = (0..BURSTS).map(|_| split_of_a_burst(32)).collect();
    // A worker yields once it holds more than least + 2 + least / 8
    // (crate::scoreboard::load_board): 14/18 is the widest even split of 32;
    // 12 leaves room for a wake-up racing the counts. Before the fix most
    // bursts split 10/22 or 11/21 and some 2/30.
    assert!(
        splits
            .iter()
            .all(|split| split.len() == 2 && split[0] >= 12),
        "each burst of 32 connections splits evenly over both workers: {splits:?}"
    );
}

/// How many of `clients` keep-alive connections, opened together on a fresh
/// `-w 2` server and each kept busy with requests, each worker holds (fewest
/// first).
fn split_of_a_burst(clients: usize) -> Vec<usize> {
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let addr = server.addr();
    let burst = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|position| {
            let burst = burst.clone();
            std::thread::spawn(move || {
                burst.wait();
                // Connections arrive over a few milliseconds, as from a load
                // generator, while the first requests are in the app.
                std::thread::sleep(Duration::from_micros(200) * position as u32);
                let stream = std::net::TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut client = Client::new(stream);
                // Shorter than STALL_MS (src/scoreboard/load_board.rs): the
                // interpreters are busy, not stuck.
                (0..8)
                    .map(|_| {
                        client.send(b"GET /pid-after?0.004 HTTP/1.1\r\nHost: t\r\n\r\n");
                        client.response(false).expect("a response").text()
                    })
                    .collect::<std::collections::HashSet<String>>()
            })
        })
        .collect();
    let mut per_worker: std::collections::HashMap<String, usize> = Default::default();
    for thread in threads {
        let pids = thread.join().expect("a client");
        assert_eq!(pids.len(), 1, "one connection, one worker: {pids:?}");
        for pid in pids {
            *per_worker.entry(pid).or_default() += 1;
        }
    }
    let mut split: Vec<usize> = per_worker.into_values().collect();
    split.sort_unstable();
    split
}

/// With `Connection: close`, a client waits in the listen backlog, one
/// queue for the whole server, rather than behind a worker held up by a slow
/// request: a worker took every client it was offered while its sibling was
/// busy, and they waited for the slow one (Flask close -w 2, newcomers up to
/// 70 ms). Only one request may wait behind it, the one queued for its
/// interpreter when the slow one began.
#[test]
fn clients_wait_in_the_backlog_rather_than_behind_a_slow_request() {
    for attempt in 0..3 {
        let (slow_pid, answers) = answers_beside_a_slow_request();
        let held_up: Vec<&Duration> = answers
            .iter()
            .filter(|(pid, waited)| *pid == slow_pid && *waited >= Duration::from_millis(300))
            .map(|(_, waited)| waited)
            .collect();
        assert!(
            answers.len() >= 40,
            "attempt {attempt}: the other worker served the clients: {} answers",
            answers.len()
        );
        assert!(
            held_up.len() <= 1,
            "attempt {attempt}: at most one client waited behind the slow request: {held_up:?}"
        );
    }
}

/// A client that has connected but sent nothing stays with the kernel until
/// it sends (TCP_DEFER_ACCEPT). Taken before its request arrived, it added
/// nothing to the worker's job queue, so the worker took the next one and
/// the next: a `Connection: close` load sat in the workers' own queues
/// instead of the listen backlog they share, and newcomers waited behind
/// whichever worker took them.
#[test]
fn a_client_that_has_sent_nothing_is_not_taken_until_it_sends() {
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let addr = server.addr();
    let mut silent: Vec<Client<std::net::TcpStream>> =
        (0..16).map(|_| Client::new(server.connect())).collect();
    // Connected after them and answered: a worker has accepted since.
    let reply = common::http_get_close(addr, "t", "/pid", Duration::from_secs(10));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(
        common::server_side_connections(addr),
        0,
        "no worker holds a client that has sent nothing"
    );
    for client in &mut silent {
        client.send(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for client in &mut silent {
        let response = client.response(false).expect("answered once it sent");
        assert_eq!(response.status, 200);
    }
    // /proc/net/tcp is read in chunks: a read racing other tests' sockets
    // can miss a line, so one read that finds all 16 settles it.
    wait_for("each taken once it has sent, and kept alive", || {
        common::server_side_connections(addr) == 16
    });
}

/// On a fresh `-w 2` server: one request that takes a second, and beside it
/// 8 clients sending `Connection: close` requests of 2 ms for half a second.
/// Returns the slow request's worker and each quick answer's (worker, wait).
fn answers_beside_a_slow_request() -> (String, Vec<(String, Duration)>) {
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let addr = server.addr();
    let mut slow = Client::new(server.connect());
    slow.send(b"GET /pid-after?1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let until = Instant::now() + Duration::from_millis(500);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    let reply = common::http_get_close(
                        addr,
                        "t",
                        "/pid-after?0.002",
                        Duration::from_secs(10),
                    );
                    let pid = reply.rsplit("\r\n\r\n").next().unwrap_or_default();
                    answers.push((pid.to_string(), started.elapsed()));
                }
                answers
            })
        })
        .collect();
    let answers = clients
        .into_iter()
        .flat_map(|client| client.join().expect("a client"))
        .collect();
    let slow_pid = slow.response(false).expect("the slow answer").text();
    (slow_pid, answers)
}

#[test]
fn a_killed_worker_is_replaced_within_a_second() {
    let server = Server::start(&["probe:application"]);
    let pid: i32 = server.get("/pid").text().parse().unwrap();
    let killed_at = Instant::now();
    // SAFETY: kill(2) on a worker of our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    wait_for("a replacement", || booted_pids(&server).len() == 2);
    assert!(
        killed_at.elapsed() < Duration::from_secs(1),
        "replaced after {:?}",
        killed_at.elapsed()
    );
    assert!(server.log().contains(&format!(
        "Worker (pid:{pid}) was killed by signal 9 (SIGKILL)"
    )));
    assert_ne!(server.get("/pid").text().parse::<i32>().unwrap(), pid);
}

#[test]
fn a_stuck_worker_is_killed_while_another_keeps_answering() {
    let marker = scratch_dir("stuck-worker").join("started");
    let server = Server::start(&[
        "-w",
        "2",
        "--timeout",
        "2",
        "--metrics-bind",
        "127.0.0.1:0",
        "probe:application",
    ]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let stuck = std::thread::spawn({
        let addr = server.addr();
        let marker = marker.clone();
        move || {
            let mut client = common::Client::new(std::net::TcpStream::connect(addr).unwrap());
            client.send(
                format!(
                    "GET /sleep-marked?30&{} HTTP/1.1\r\nHost: t\r\n\r\n",
                    marker.display()
                )
                .as_bytes(),
            );
            client.read_to_end()
        }
    });
    wait_for_file(&marker, &["started"]);
    common::wait_for_a_stalled_worker(&server);
    let load = Load::start(&server, 2);
    wait_for("the timeout", || server.log().contains("WORKER TIMEOUT"));
    wait_for("a replacement", || booted_pids(&server).len() == 3);
    let answered = load.answered();
    wait_for("requests after the replacement", || {
        load.answered() > answered + 10
    });
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 10, "only {ok} requests answered");
    let cut = stuck.join().unwrap();
    assert!(cut.is_empty(), "the stuck request gets no response");
}

#[test]
fn hup_replaces_workers_without_failing_requests() {
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let before = booted_pids(&server);
    let load = Load::start(&server, 4);
    wait_for("requests answered", || load.answered() > 20);
    server.signal(libc::SIGHUP);
    wait_for("new workers", || booted_pids(&server).len() == 4);
    wait_for("old workers to exit", || {
        before.iter().all(|p| {
            server
                .log()
                .contains(&format!("Worker (pid:{p}) exited with code 0"))
        })
    });
    let answered = load.answered();
    wait_for("requests to the new workers", || {
        load.answered() > answered + 20
    });
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 20, "only {ok} requests answered");
}

#[test]
fn hup_loses_no_request_of_keep_alive_clients() {
    // A keep-alive client sends its next request microseconds after a
    // response: a retiring worker that closed idle connections at once, or
    // closed one after a response that had promised keep-alive, lost the
    // requests already on their way.
    let server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    for round in 1..=3 {
        let load = Load::start_keep_alive(&server, 4);
        wait_for("requests answered", || load.answered() > 50);
        server.signal(libc::SIGHUP);
        wait_for("new workers", || {
            booted_pids(&server).len() == 2 + 2 * round
        });
        let exited = |server: &Server| server.log().matches("exited with code 0").count();
        wait_for("old workers to exit", || exited(&server) == 2 * round);
        let (ok, failures) = load.finish();
        assert!(
            failures.is_empty(),
            "round {round}: {failures:?} ({ok} answered)"
        );
    }
}

#[test]
fn ttin_and_ttou_resize_without_failing_requests() {
    let server = Server::start(&["probe:application"]);
    let load = Load::start(&server, 4);
    server.signal(libc::SIGTTIN);
    wait_for("a second worker", || booted_pids(&server).len() == 2);
    server.signal(libc::SIGTTOU);
    wait_for("one worker to retire", || {
        server.log().contains("exited with code 0")
    });
    let answered = load.answered();
    wait_for("requests after the resize", || {
        load.answered() > answered + 20
    });
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 20, "only {ok} requests answered");
}

#[test]
fn max_requests_recycles_workers_without_failures() {
    let server = Server::start(&[
        "--max-requests",
        "10",
        "--max-requests-jitter",
        "5",
        "probe:application",
    ]);
    let load = Load::start(&server, 2);
    wait_for("two recycles", || booted_pids(&server).len() >= 3);
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok >= 20);
    assert!(server.log().contains("Autorestarting worker after"));
}

#[test]
fn access_log_uses_the_format_and_reopens_on_usr1() {
    let dir = scratch_dir("access");
    let log = dir.join("access.log");
    let server = Server::start(&[
        "--access-logfile",
        log.to_str().unwrap(),
        "--access-logformat",
        r#"%(h)s "%(r)s" %(s)s %(b)s "%(a)s" %({x-replaced}o)s %(D)s"#,
        "probe:application",
    ]);
    let mut client = common::Client::new(server.connect());
    client.send(b"GET /exc-info?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: tester/1\r\nConnection: close\r\n\r\n");
    client.response(false).unwrap();
    wait_for_file(
        &log,
        &[r#"127.0.0.1 "GET /exc-info?x=1 HTTP/1.1" 503 8 "tester/1" yes "#],
    );

    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(libc::SIGUSR1);
    wait_for("the reopened log", || {
        server.get("/pid");
        log.exists()
            && std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("GET /pid")
    });
}

#[test]
fn error_log_file_and_pid_file() {
    let dir = scratch_dir("files");
    let (error_log, pidfile) = (dir.join("error.log"), dir.join("app.pid"));
    let args = [
        "--error-logfile",
        error_log.to_str().unwrap(),
        "--pid",
        pidfile.to_str().unwrap(),
        "probe:application",
    ];
    let mut command = std::process::Command::new(common::BIN);
    command
        .current_dir(common::apps_dir())
        .args(args)
        .args(["-b", "127.0.0.1:0"]);
    let mut child = command.spawn().unwrap();
    wait_for_file(&error_log, &["Booted worker"]);
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(pid.trim(), child.id().to_string());
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
    assert!(!pidfile.exists(), "the pid file is removed on exit");
    assert!(
        std::fs::read_to_string(&error_log)
            .unwrap()
            .contains("Shutting down: Master")
    );
}

#[test]
fn sigint_stops_at_once() {
    let mut server = Server::start(&["-w", "2", "probe:application"]);
    let started = Instant::now();
    server.signal(libc::SIGINT);
    assert!(server.wait().success());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn several_binds_including_ipv6_serve_the_same_app() {
    let v4 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let Ok(v6_probe) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this test needs an IPv6 loopback (::1)");
    };
    let v6 = v6_probe.local_addr().unwrap();
    drop(v6_probe);
    let (b4, b6) = (v4.to_string(), v6.to_string());
    let mut server = Server::start(&["-b", &b4, "-b", &b6, "--reuse-port", "probe:application"]);
    for addr in [v4, v6] {
        server = server.listening_at(addr);
        assert_eq!(server.get("/write").text(), "written returned", "{addr}");
    }
}

#[test]
fn stale_unix_sockets_are_replaced_and_umask_sets_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("stale");
    let socket = dir.join("app.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap()); // left behind, as after a crash
    let bind = format!("unix:{}", socket.display());
    let _server = Server::start(&["-b", &bind, "--umask", "0o007", "probe:application"]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o770);
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
}

#[test]
fn workers_run_as_the_given_user_with_a_process_name() {
    require_root();
    let server = Server::start(&[
        "--user",
        "nobody",
        "--group",
        "nogroup",
        "probe:application",
    ]);
    let pid = server.get("/pid").text();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = system_id("/etc/passwd", "nobody");
    assert!(
        uid_line.split_whitespace().skip(1).all(|id| id == nobody),
        "{uid_line}"
    );
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "ferrocorn-work");
    assert_eq!(
        groups_of(&pid),
        Vec::<String>::new(),
        "no supplementary groups"
    );
}

#[test]
fn user_alone_drops_root_s_group_for_the_user_s_own() {
    require_root();
    let server = Server::start(&["--user", "nobody", "probe:application"]);
    let pid = server.get("/pid").text();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let gid_line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    let primary = entry_fields("/etc/passwd", "nobody").swap_remove(1);
    assert!(
        gid_line.split_whitespace().skip(1).all(|id| id == primary),
        "{gid_line}, expected {primary}"
    );
    assert_eq!(
        groups_of(&pid),
        Vec::<String>::new(),
        "no supplementary groups"
    );
}

fn require_root() {
    // SAFETY: getuid(2) has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        panic!("this test switches users and needs root (CI runs as root)");
    }
}

/// The numeric id of `name` in /etc/passwd or /etc/group.
fn system_id(database: &str, name: &str) -> String {
    entry_fields(database, name).swap_remove(0)
}

/// The fields after `name:x:` of `name`'s line in /etc/passwd or /etc/group.
fn entry_fields(database: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}:x:");
    std::fs::read_to_string(database)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&prefix)
                .map(|r| r.split(':').map(str::to_owned).collect())
        })
        .unwrap()
}

/// The supplementary groups of a process, from /proc.
fn groups_of(pid: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

#[test]
fn initgroups_gives_workers_the_users_groups() {
    require_root();
    let nogroup = system_id("/etc/group", "nogroup");
    let server = Server::start(&[
        "-u",
        "nobody",
        "-g",
        "nogroup",
        "--initgroups",
        "probe:application",
    ]);
    let pid = server.get("/pid").text();
    assert_eq!(groups_of(&pid), vec![nogroup]);
}

#[test]
fn capture_output_sends_print_to_the_error_log() {
    let dir = scratch_dir("capture");
    let error_log = dir.join("error.log");
    let server = Server::start_on_free_port(&[
        "--error-logfile",
        error_log.to_str().unwrap(),
        "--capture-output",
        "probe:application",
    ]);
    wait_for_file(&error_log, &["Booted worker"]);
    assert_eq!(server.get("/print").text(), "printed");
    wait_for_file(&error_log, &["printed by the app"]);
}

#[test]
fn workers_do_not_outlive_a_killed_arbiter() {
    let mut server = Server::start(&["-w", "2", "probe:application"]);
    wait_for("two workers", || booted_pids(&server).len() == 2);
    let workers = booted_pids(&server);
    server.signal(libc::SIGKILL);
    server.wait();
    wait_for("the workers to exit", || {
        workers.iter().all(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            stat.is_empty() || stat.split(' ').nth(2) == Some("Z")
        })
    });
}

#[test]
fn name_sets_the_process_names_ps_shows() {
    let server = Server::start(&["-n", "shop", "probe"]);
    let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm(server.pid()).trim(), "shop-main");
    let worker: u32 = server.get("/pid").text().parse().unwrap();
    assert_eq!(comm(worker).trim(), "shop-work");
}

/// Processes still in process group `pgid`.
fn processes_in_group(pgid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // Fields after the command's closing parenthesis: state, ppid, pgrp.
            let rest = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && fields[0] != "Z"
        })
        .count()
}

#[test]
fn workers_dying_before_they_boot_are_retried_with_growing_delays_then_the_arbiter_stops() {
    let (status, log) = common::run_to_exit(&common::apps_dir(), &["dies_at_import:application"]);
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR: {log}");
    assert_eq!(log.matches("Booting worker with pid").count(), 5, "{log}");
    assert_backed_off(&log);
    assert!(
        log.contains("Shutting down: Master. Reason: Worker failed to boot 5 times in a row"),
        "{log}"
    );
}

#[test]
fn an_app_that_cannot_load_with_stderr_closed_does_not_fork_in_a_loop() {
    use std::os::unix::process::CommandExt;
    // `ferrocorn ... 2>&1 | head -3`: the reader is gone, so the worker
    // cannot even write its error (Rust's eprintln panics on EPIPE).
    let mut child = std::process::Command::new(common::BIN)
        .current_dir(common::apps_dir())
        .args(["-b", "127.0.0.1:0", "broken_import:application"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let group = child.id();
    let deadline = Instant::now() + common::TIMEOUT;
    let mut most = 0;
    let status = loop {
        most = most.max(processes_in_group(group));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running: a fork loop?");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR");
    assert!(
        most <= 3,
        "at most the arbiter and a worker (and its fork) at once: {most}"
    );
    wait_for("every process of the group to end", || {
        processes_in_group(group) == 0
    });
}

/// User plus system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of proc_pid_stat(5), 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_worker_out_of_file_descriptors_stays_idle_and_serves_again_once_they_free_up() {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(common::BIN);
    command
        .current_dir(common::apps_dir())
        .args(["-b", "127.0.0.1:0", "probe"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec the child only calls setrlimit.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 48,
                rlim_max: 48,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::spawn(command);
    let worker = booted_pids(&server)[0];
    let clients: Vec<std::net::TcpStream> = (0..120)
        .map(|_| std::net::TcpStream::connect(server.addr()).unwrap())
        .collect();
    assert!(
        server.wait_for_log("Too many open files"),
        "{}",
        server.log()
    );
    // The CPU the worker spends over one second while clients still wait.
    let before = cpu_ticks(worker);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(worker) - before;
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    assert!(
        spent * 10 <= ticks_per_second,
        "{spent} of {ticks_per_second} ticks in one second: a busy loop"
    );
    drop(clients);
    wait_for("a request served once descriptors are free", || {
        one_request(server.addr()).is_ok()
    });
}

/// An app whose import never returns (a database that does not answer at
/// import time): each worker is aborted after `--timeout` as a boot
/// failure, replaced after the growing delay, and the fifth stops the server
/// with Gunicorn's WORKER_BOOT_ERROR, instead of a restart every `--timeout`
/// forever. Each abort prints the import's Python stack; meanwhile `/readyz`
/// says the server is not ready.
#[test]
fn a_worker_whose_import_hangs_is_a_boot_failure_that_backs_off_then_stops() {
    let dir = scratch_dir("hanging-import");
    std::fs::write(dir.join("hangs.py"), "import time\ntime.sleep(3600)\n").unwrap();
    let log_path = dir.join("stderr.log");
    let mut child = std::process::Command::new(common::BIN)
        .current_dir(&dir)
        .args(["-b", "127.0.0.1:0", "--timeout", "1"])
        .args(["--metrics-bind", "127.0.0.1:0", "hangs:application"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let readyz = || -> Option<String> {
        let log = std::fs::read_to_string(&log_path).ok()?;
        let address: std::net::SocketAddr = log
            .split("Metrics and health at: http://")
            .nth(1)?
            .split("/metrics")
            .next()?
            .parse()
            .ok()?;
        let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        Some(reply)
    };
    let mut readiness = Vec::new();
    // Five boots of about two seconds each and 3.75 s of delays between them.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if readiness.len() < 20
            && let Some(reply) = readyz()
        {
            readiness.push(reply);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "still restarting after 90 s:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR: {log}");
    assert_eq!(
        log.matches("did not finish booting in 1 s (--timeout)")
            .count(),
        5,
        "{log}"
    );
    assert!(
        !log.contains("WORKER TIMEOUT"),
        "not a request's timeout: {log}"
    );
    // Where the import waits, from the thread that imports.
    assert!(
        log.contains("hangs.py\", line 2 in <module>"),
        "no Python stack of the hanging import: {log}"
    );
    assert_backed_off(&log);
    assert!(
        log.contains("Reason: Worker failed to boot 5 times in a row"),
        "{log}"
    );
    assert!(!readiness.is_empty(), "/readyz never answered: {log}");
    for reply in &readiness {
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        assert!(reply.contains("0 of 1 workers ready"), "{reply}");
    }
}

/// Each of the first four boot failures in a row was followed by a delay
/// twice the last.
fn assert_backed_off(log: &str) {
    for (n, delay) in [(1, 250), (2, 500), (3, 1000), (4, 2000)] {
        assert!(
            log.contains(&format!(
                "before it booted ({n} of 5 in a row); starting another in {delay} ms"
            )),
            "{log}"
        );
    }
}
