//! Failures of the environment cost a request or a log line, never the
//! server: logs that cannot be written, a disk that fills while a body
//! spills. (Boot failures, EMFILE: tests/arbiter.rs.)

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Client, Server, apps_dir, scratch_dir};

/// A tmpfs of `kib` KiB mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(name: &str, kib: u32) -> SmallDisk {
        // SAFETY: getuid(2) has no preconditions.
        assert_eq!(
            unsafe { libc::getuid() },
            0,
            "this test mounts a tmpfs and needs root (CI runs as root)"
        );
        let dir = scratch_dir(name);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount(8)");
        assert!(status.success(), "mount -t tmpfs failed");
        SmallDisk { dir }
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn worker_pid(server: &Server) -> String {
    let response = server.get("/pid");
    assert_eq!(response.status, 200);
    response.text()
}

#[test]
fn logs_that_cannot_be_written_cost_lines_not_requests() {
    // /dev/full fails every write with ENOSPC.
    let server = Server::start_on_free_port(&[
        "--error-logfile",
        "/dev/full",
        "--access-logfile",
        "/dev/full",
        "--log-level",
        "debug",
        "probe:application",
    ]);
    let first = worker_pid(&server);
    for _ in 0..20 {
        assert_eq!(server.get("/environ").status, 200);
    }
    assert_eq!(
        worker_pid(&server),
        first,
        "the worker served on, it did not die"
    );
}

#[test]
fn lost_access_log_lines_are_counted_and_reported_once_writing_works_again() {
    let disk = SmallDisk::mount("faults-log", 256);
    let access = disk.dir.join("access.log");
    let access_arg = access.display().to_string();
    let server = Server::start(&["--access-logfile", &access_arg, "probe:application"]);
    assert_eq!(server.get("/environ").status, 200);
    common::wait_for_file(&access, &["GET /environ"]);
    let filler = disk.fill();
    // The log's last page still takes a few lines; then they are lost.
    let sent = 80;
    for _ in 0..sent {
        assert_eq!(
            server.get("/lost").status,
            404,
            "served while its log is full"
        );
    }
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(server.get("/after").status, 404);
    assert!(
        server.wait_for_log("access log lines could not be written (No space left on device"),
        "{}",
        server.log()
    );
    let log = server.log();
    let lost: usize = log
        .lines()
        .find_map(|l| l.split("[WARNING] ").nth(1)?.strip_suffix(")"))
        .and_then(|note| note.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    common::wait_for_file(&access, &["GET /after"]);
    let written = std::fs::read_to_string(&access)
        .unwrap()
        .matches("GET /lost")
        .count();
    assert!(lost > 0, "{log}");
    // Every line was written or counted; the one the full disk cut short is
    // counted, and its start may stay in the file.
    assert!(
        written + lost == sent || written + lost == sent + 1,
        "{written} written, {lost} lost, of {sent}"
    );
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn a_body_that_cannot_spill_to_a_full_disk_gets_500_and_other_requests_go_on() {
    let disk = SmallDisk::mount("faults-spill", 256);
    let tmp = disk.dir.display().to_string();
    let server = Server::start_with(
        &apps_dir(),
        &["--body-spill-size", "1024", "probe:application"],
        &[("TMPDIR", &tmp)],
    );
    let filler = disk.fill();
    let body = vec![b'x'; 100_000];
    let mut client = Client::new(server.connect());
    client.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    client.send(&body);
    let response = client.response(false).expect("a response");
    assert_eq!(response.status, 500);
    assert!(
        response
            .text()
            .contains("the server could not store the request body"),
        "the answer says what happened: {}",
        response.text()
    );
    assert!(
        server.wait_for_log("cannot store a request body"),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/environ").status, 200, "other requests go on");
    std::fs::remove_file(&filler).unwrap();
    let left: Vec<PathBuf> = std::fs::read_dir(&disk.dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "nothing left on the disk: {left:?}");
}
