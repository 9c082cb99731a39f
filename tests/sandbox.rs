//! The escape suite: `tests/apps/escape.py` tries to get out of `--sandbox`
//! one way at a time, through the Python APIs and the raw ones beneath them
//! (and, with `--allow-ffi`, through raw system calls made by native code
//! via ctypes). Each attempt must fail AND leave no trace on the host: no
//! file made or changed, nothing received by a listener, every process
//! still alive, limits unchanged. What the policy allows must still work in
//! the same run.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BIN, Server, apps_dir, scratch_dir};

/// Files and directories on the host, outside and inside what is allowed.
struct Host {
    root: PathBuf,
    secret: PathBuf,
    outside: PathBuf,
    mode_file: PathBuf,
    readable: PathBuf,
    writable: PathBuf,
}

impl Host {
    fn new(name: &str) -> Host {
        let root = scratch_dir(name);
        let outside = root.join("outside");
        let readable = root.join("readable");
        let writable = root.join("writable");
        for dir in [&outside, &readable, &writable] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let secret = root.join("secret.txt");
        std::fs::write(&secret, "the host's secret").unwrap();
        let mode_file = outside.join("mode.txt");
        std::fs::write(&mode_file, "mode").unwrap();
        std::fs::set_permissions(&mode_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(readable.join("data.txt"), "readable data").unwrap();
        std::fs::write(writable.join("movable.txt"), "stays here").unwrap();
        Host {
            root,
            secret,
            outside,
            mode_file,
            readable,
            writable,
        }
    }

    fn p(&self, relative: &str) -> String {
        self.root.join(relative).display().to_string()
    }
}

/// Percent-encodes a query value (paths, commands, abstract names).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn attempt(server: &Server, name: &str, args: &[(&str, &str)]) -> String {
    let query: Vec<String> = args
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let response = server.get(&format!("/try/{name}?{}", query.join("&")));
    assert_eq!(response.status, 200, "/try/{name}: {}", response.text());
    response.text()
}

/// The attempt failed with `error_type` (its message is returned).
#[track_caller]
fn assert_fails(result: &str, error_type: &str, what: &str) {
    assert!(
        result.contains("\"ok\": false") && result.contains(&format!("\"type\": \"{error_type}\"")),
        "{what} must fail with {error_type}, got {result}"
    );
}

/// Landlock refuses a link or rename across directories without its REFER
/// right with EXDEV, as if they were on two file systems.
#[track_caller]
fn assert_refused_across(result: &str, what: &str) {
    assert!(
        result.contains("\"ok\": false")
            && (result.contains("\"errno\": 18") || result.contains("\"errno\": 13")),
        "{what} must fail with EXDEV or EACCES, got {result}"
    );
}

#[track_caller]
fn assert_denied(result: &str, what: &str) {
    assert_fails(result, "PermissionError", what);
}

#[track_caller]
fn assert_works(result: &str, what: &str) {
    assert!(
        result.contains("\"ok\": true"),
        "{what} must work, got {result}"
    );
}

/// Listeners that must receive nothing.
struct Watchers {
    tcp4: TcpListener,
    tcp6: TcpListener,
    udp: UdpSocket,
    unix: UnixListener,
    unix_path: PathBuf,
    abstract_unix: UnixListener,
    abstract_name: String,
}

impl Watchers {
    fn new(host: &Host) -> Watchers {
        let tcp4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp6 = TcpListener::bind("[::1]:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let unix_path = host.outside.join("app.sock");
        let unix = UnixListener::bind(&unix_path).unwrap();
        let abstract_name = format!(
            "ferrocorn-escape-{}-{}",
            std::process::id(),
            host.root.file_name().unwrap().to_string_lossy()
        );
        let abstract_unix =
            UnixListener::bind_addr(&UnixAddr::from_abstract_name(&abstract_name).unwrap())
                .unwrap();
        for socket in [&tcp4, &tcp6] {
            socket.set_nonblocking(true).unwrap();
        }
        udp.set_nonblocking(true).unwrap();
        unix.set_nonblocking(true).unwrap();
        abstract_unix.set_nonblocking(true).unwrap();
        Watchers {
            tcp4,
            tcp6,
            udp,
            unix,
            unix_path,
            abstract_unix,
            abstract_name,
        }
    }

    fn assert_nothing_received(&self) {
        for (name, listener) in [("tcp v4", &self.tcp4), ("tcp v6", &self.tcp6)] {
            let accepted = listener.accept();
            assert!(
                matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock),
                "the {name} listener received a connection: {accepted:?}"
            );
        }
        let mut buffer = [0u8; 64];
        let received = self.udp.recv_from(&mut buffer);
        assert!(
            matches!(&received, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "the UDP socket received {received:?}"
        );
        for (name, listener) in [("unix", &self.unix), ("abstract unix", &self.abstract_unix)] {
            let accepted = listener.accept();
            assert!(
                matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock),
                "the {name} listener received a connection"
            );
        }
    }
}

fn port(listener: &TcpListener) -> String {
    listener.local_addr().unwrap().port().to_string()
}

/// A process is there and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The arbiter's worker processes.
fn workers(arbiter: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{arbiter}/task/{arbiter}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

fn wait_for_workers(arbiter: u32, count: usize) -> Vec<u32> {
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let found = workers(arbiter);
        if found.len() == count {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "workers: {found:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn private_tmp_dirs(arbiter: u32) -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("ferrocorn-{arbiter}-"))
            })
        })
        .collect()
}

fn start_sandboxed(host: &Host, allowed_port: &str, extra: &[&str]) -> Server {
    let readable = host.readable.display().to_string();
    let writable = host.writable.display().to_string();
    let mut args = vec![
        "--sandbox",
        "--allow-read",
        &readable,
        "--allow-write",
        &writable,
        "--allow-connect",
        allowed_port,
        "--allow-env",
        "VISIBLE",
    ];
    args.extend_from_slice(extra);
    args.push("escape:application");
    Server::start_with(
        &apps_dir(),
        &args,
        &[("VISIBLE", "yes"), ("SECRET_TOKEN", "hunter2")],
    )
}

#[test]
fn the_sandbox_holds_against_escape_attempts_and_leaves_no_trace() {
    let host = Host::new("escape");
    let watchers = Watchers::new(&host);
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = port(&allowed);
    let mut server = start_sandboxed(
        &host,
        &allowed_port,
        &["-w", "2", "--deny-module", "pickle"],
    );
    let arbiter = server.pid();
    let pids = wait_for_workers(arbiter, 2);
    let limits_before = std::fs::read_to_string(format!("/proc/{arbiter}/limits")).unwrap();
    let mode_before = std::fs::metadata(&host.mode_file).unwrap();

    // Files.
    let secret = host.secret.display().to_string();
    assert_denied(
        &attempt(&server, "read", &[("path", &secret)]),
        "reading a file outside",
    );
    assert_denied(
        &attempt(&server, "read", &[("path", "/etc/shadow")]),
        "reading /etc/shadow",
    );
    assert_denied(
        &attempt(&server, "list", &[("path", &host.p("outside"))]),
        "listing a directory outside",
    );
    let outside_new = host.p("outside/new.txt");
    assert_denied(
        &attempt(&server, "write", &[("path", &outside_new)]),
        "writing outside",
    );
    assert_denied(
        &attempt(&server, "mkdir", &[("path", &host.p("outside/dir"))]),
        "mkdir outside",
    );
    let mode_file = host.mode_file.display().to_string();
    assert_denied(
        &attempt(&server, "chmod", &[("path", &mode_file)]),
        "chmod outside",
    );
    assert_denied(
        &attempt(&server, "chown", &[("path", &mode_file)]),
        "chown outside",
    );
    assert_denied(
        &attempt(&server, "utime", &[("path", &mode_file)]),
        "utime outside",
    );
    let link = host.writable.join("to-secret").display().to_string();
    assert_denied(
        &attempt(
            &server,
            "symlink_read",
            &[("target", &secret), ("link", &link)],
        ),
        "reading through a symlink out of an allowed directory",
    );
    let hard = host.writable.join("hard").display().to_string();
    assert_refused_across(
        &attempt(&server, "link", &[("src", &secret), ("dst", &hard)]),
        "hard-linking a file outside into an allowed directory",
    );
    let movable = host.writable.join("movable.txt").display().to_string();
    assert_refused_across(
        &attempt(
            &server,
            "rename",
            &[("src", &movable), ("dst", &host.p("outside/moved.txt"))],
        ),
        "moving a file out of an allowed directory",
    );
    assert_refused_across(
        &attempt(
            &server,
            "rename",
            &[
                ("src", &secret),
                ("dst", &host.writable.join("stolen").display().to_string()),
            ],
        ),
        "moving a file outside into an allowed directory",
    );
    let tmp_file = std::env::temp_dir().join(format!("ferrocorn-escape-{arbiter}"));
    assert_denied(
        &attempt(
            &server,
            "write",
            &[("path", &tmp_file.display().to_string())],
        ),
        "writing to /tmp",
    );
    let shm_file = format!("/dev/shm/ferrocorn-escape-{arbiter}");
    assert_denied(
        &attempt(&server, "write", &[("path", &shm_file)]),
        "writing to /dev/shm",
    );
    assert_denied(
        &attempt(&server, "read", &[("path", "/proc/self/environ")]),
        "/proc/self/environ",
    );
    assert_denied(
        &attempt(
            &server,
            "read",
            &[("path", &format!("/proc/{arbiter}/environ"))],
        ),
        "the arbiter's environ",
    );
    assert_denied(
        &attempt(
            &server,
            "read",
            &[("path", &format!("/proc/{arbiter}/cmdline"))],
        ),
        "the arbiter's cmdline",
    );
    assert_denied(
        &attempt(&server, "chroot", &[("path", &host.p("writable"))]),
        "chroot",
    );

    // Programs and processes.
    let marker = |name: &str| host.p(&format!("outside/ran-{name}"));
    for (route, name) in [
        ("subprocess", "subprocess"),
        ("system", "system"),
        ("posix_system", "posix-system"),
        ("posix_spawn", "posix-spawn"),
        ("fork", "fork"),
        ("execv", "execv"),
    ] {
        let result = attempt(&server, route, &[("marker", &marker(name))]);
        assert!(
            result.contains("\"ok\": false"),
            "{route} must fail: {result}"
        );
    }
    for result in [
        attempt(&server, "subprocess", &[("marker", &marker("x"))]),
        attempt(&server, "posix_spawn", &[("marker", &marker("x"))]),
        attempt(&server, "fork", &[]),
        attempt(&server, "execv", &[("marker", &marker("x"))]),
    ] {
        assert_denied(&result, "starting a program or process");
    }

    // Network.
    let denied4 = port(&watchers.tcp4);
    let denied6 = port(&watchers.tcp6);
    for (route, host_name, port) in [
        ("connect", "127.0.0.1", &denied4),
        ("raw_connect", "127.0.0.1", &denied4),
        ("raw_connect", "127.1", &denied4),
        ("raw_connect", "::1", &denied6),
        ("connect", "::1", &denied6),
    ] {
        assert_denied(
            &attempt(&server, route, &[("host", host_name), ("port", port)]),
            &format!("{route} to {host_name} port {port}"),
        );
    }
    assert_fails(
        &attempt(
            &server,
            "connect",
            &[("host", "localhost.localdomain"), ("port", &allowed_port)],
        ),
        "gaierror",
        "looking up a name not given to --allow-connect",
    );
    let udp_port = watchers.udp.local_addr().unwrap().port().to_string();
    assert_denied(
        &attempt(
            &server,
            "udp",
            &[("host", "127.0.0.1"), ("port", &udp_port)],
        ),
        "UDP",
    );
    let unix_path = watchers.unix_path.display().to_string();
    assert_denied(
        &attempt(&server, "unix", &[("path", &unix_path)]),
        "a unix socket",
    );
    let abstract_path = format!("@{}", watchers.abstract_name);
    assert_denied(
        &attempt(&server, "unix", &[("path", &abstract_path)]),
        "an abstract unix socket",
    );
    for (family, kind, proto, what) in [
        ("2", "3", "1", "a raw ICMP socket"),
        ("17", "3", "0", "a packet socket"),
        ("16", "3", "0", "a netlink socket"),
        ("2", "1", "132", "SCTP"),
        ("2", "1", "262", "MPTCP"),
    ] {
        assert_denied(
            &attempt(
                &server,
                "socket",
                &[("family", family), ("type", kind), ("proto", proto)],
            ),
            what,
        );
    }

    // Other processes and limits.
    let arbiter_text = arbiter.to_string();
    assert_denied(
        &attempt(&server, "kill", &[("pid", &arbiter_text), ("signal", "15")]),
        "SIGTERM to the arbiter",
    );
    assert_denied(
        &attempt(&server, "kill", &[("pid", "1"), ("signal", "0")]),
        "a signal to pid 1",
    );
    let pid_list: Vec<String> = pids.iter().map(u32::to_string).collect();
    assert_denied(
        &attempt(&server, "kill_sibling", &[("pids", &pid_list.join(","))]),
        "SIGKILL to a sibling worker",
    );
    // prlimit(2) on the arbiter needs native code here (RustPython's
    // resource module has no prlimit): see the ctypes test below.
    for to in ["infinity", "lower"] {
        let result = attempt(&server, "set_data_limit", &[("to", to)]);
        assert_fails(&result, "ValueError", "setrlimit(2)");
        assert!(result.contains("not allowed"), "{result}");
    }

    // Environment and modules.
    let environ = attempt(&server, "environ", &[]);
    assert!(environ.contains("\"VISIBLE\": \"yes\""), "{environ}");
    assert!(
        !environ.contains("SECRET_TOKEN") && !environ.contains("hunter2"),
        "{environ}"
    );
    for args in [
        vec![("name", "pickle")],
        vec![("name", "pickle"), ("route", "dunder")],
        vec![("name", "ctypes")],
    ] {
        let result = attempt(&server, "import", &args);
        assert_fails(&result, "ImportError", "a denied module");
        assert!(
            result.contains("ferrocorn sandbox") && result.contains("is not allowed"),
            "{result}"
        );
    }
    for name in ["pickle", "ctypes", "_ctypes"] {
        let result = attempt(&server, "import", &[("name", name), ("unguarded", "1")]);
        assert!(
            result.contains("\"type\": \"ModuleNotFoundError\"")
                || result.contains("\"type\": \"ImportError\""),
            "{name} must be gone from the interpreter, not only guarded: {result}"
        );
    }

    // From a thread the app starts.
    assert_denied(
        &attempt(&server, "thread", &[("inner", "read"), ("path", &secret)]),
        "a read from a thread",
    );
    assert_denied(
        &attempt(&server, "thread", &[("inner", "fork")]),
        "fork from a thread",
    );
    assert_denied(
        &attempt(
            &server,
            "thread",
            &[
                ("inner", "raw_connect"),
                ("host", "127.0.0.1"),
                ("port", &denied4),
            ],
        ),
        "a connection from a thread",
    );

    // What is allowed still works, in the same run.
    let readable = host.readable.join("data.txt").display().to_string();
    assert!(attempt(&server, "read", &[("path", &readable)]).contains("readable data"));
    assert!(attempt(&server, "read", &[("path", "/etc/passwd")]).contains("root:"));
    let writable = host.writable.display().to_string();
    assert!(
        attempt(&server, "allowed_write", &[("dir", &writable)]).contains("\"value\": \"written\"")
    );
    let tmp = attempt(&server, "tempfile", &[]);
    assert!(tmp.contains("\"data\": \"spilled\""), "{tmp}");
    assert!(
        tmp.contains(&format!("ferrocorn-{arbiter}-")),
        "tempfile uses the private directory: {tmp}"
    );
    allowed.set_nonblocking(false).unwrap();
    // By address, raw, and by a name the pinned table answers.
    for (route, name) in [
        ("connect", "127.0.0.1"),
        ("raw_connect", "127.0.0.1"),
        ("connect", "localhost"),
    ] {
        assert_works(
            &attempt(&server, route, &[("host", name), ("port", &allowed_port)]),
            "a connection to the allowed port",
        );
        let (mut stream, _) = allowed.accept().unwrap();
        let mut text = String::new();
        stream.set_read_timeout(Some(common::TIMEOUT)).unwrap();
        stream.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello from the sandbox");
    }

    // No trace on the host.
    assert_eq!(
        std::fs::read_to_string(&host.secret).unwrap(),
        "the host's secret"
    );
    for path in [
        PathBuf::from(&outside_new),
        host.outside.join("dir"),
        host.outside.join("moved.txt"),
        host.writable.join("hard"),
        host.writable.join("stolen"),
        tmp_file,
        PathBuf::from(&shm_file),
    ] {
        assert!(!path.exists(), "{} must not exist", path.display());
    }
    for name in [
        "subprocess",
        "system",
        "posix-system",
        "posix-spawn",
        "fork",
        "execv",
        "x",
    ] {
        assert!(!Path::new(&marker(name)).exists(), "a program ran: {name}");
    }
    assert!(host.writable.join("movable.txt").exists());
    let mode_after = std::fs::metadata(&host.mode_file).unwrap();
    assert_eq!(
        mode_after.permissions().mode() & 0o777,
        0o644,
        "mode changed"
    );
    assert_eq!(
        (mode_after.uid(), mode_after.gid()),
        (mode_before.uid(), mode_before.gid())
    );
    assert_eq!(mode_after.mtime(), mode_before.mtime(), "times changed");
    watchers.assert_nothing_received();
    assert!(alive(arbiter), "the arbiter must be alive");
    for pid in &pids {
        assert!(
            alive(*pid),
            "worker {pid} must be alive (no signal reached it)"
        );
    }
    assert_eq!(workers(arbiter), pids, "no worker was replaced");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{arbiter}/limits")).unwrap(),
        limits_before,
        "the arbiter's limits changed"
    );

    // The private temporary directories go with the workers.
    assert_eq!(private_tmp_dirs(arbiter).len(), 2);
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
    assert!(
        private_tmp_dirs(arbiter).is_empty(),
        "private temporary directories left behind"
    );
}

/// The load address of the ferrocorn binary in `pid` and the offset of
/// libc's `syscall` in it: native code the app can call through ctypes.
fn syscall_address(pid: u32) -> String {
    let nm = Command::new("nm")
        .arg(BIN)
        .output()
        .expect("nm (binutils) lists the binary's symbols");
    let listing = String::from_utf8_lossy(&nm.stdout);
    let offset = listing
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() == 3 && fields[2] == "syscall")
                .then(|| u64::from_str_radix(fields[0], 16).ok())?
        })
        .expect("the syscall symbol");
    let exe = std::fs::canonicalize(BIN).unwrap().display().to_string();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let base = maps
        .lines()
        .filter(|line| line.ends_with(&exe))
        .filter_map(|line| u64::from_str_radix(line.split('-').next()?, 16).ok())
        .min()
        .expect("the binary's mapping");
    format!("{:x}", base + offset)
}

/// `{"result": R, "errno": E}` from the syscall route.
#[track_caller]
fn assert_syscall_fails(result: &str, errno: i32, what: &str) {
    assert!(
        result.contains("\"result\": -1") && result.contains(&format!("\"errno\": {errno}")),
        "{what} must fail with errno {errno}, got {result}"
    );
}

#[test]
fn native_code_through_ctypes_stays_inside_the_kernel_rules() {
    let host = Host::new("escape-ffi");
    let watchers = Watchers::new(&host);
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = port(&allowed);
    let mut server = start_sandboxed(&host, &allowed_port, &["--allow-ffi"]);
    let arbiter = server.pid();
    let worker = wait_for_workers(arbiter, 1)[0];
    let addr = syscall_address(worker);
    let syscall = |nr: &str, args: &str| {
        attempt(
            &server,
            "syscall",
            &[("addr", &addr), ("nr", nr), ("args", args)],
        )
    };
    let getpid = syscall("39", "");
    assert!(
        getpid.contains(&format!("\"result\": {worker}")),
        "calling native code works: {getpid}"
    );

    let secret = host.secret.display().to_string();
    assert_syscall_fails(
        &syscall("2", &format!("s:{secret},i:0")),
        libc::EACCES,
        "open(2) of a file outside",
    );
    let marker = host.p("outside/ran-native");
    assert_syscall_fails(
        &syscall("59", "s:/bin/sh,i:0,i:0"),
        libc::EPERM,
        "execve(2)",
    );
    assert_syscall_fails(&syscall("57", ""), libc::EPERM, "fork(2)");
    assert_syscall_fails(&syscall("435", "i:0,i:0"), libc::ENOSYS, "clone3(2)");
    assert_syscall_fails(
        &syscall("0x40000208", "s:/bin/sh,i:0,i:0"),
        libc::ENOSYS,
        "execve through the x32 ABI",
    );
    let arbiter_arg = format!("i:{arbiter}");
    assert_syscall_fails(
        &syscall("101", &format!("i:16,{arbiter_arg}")),
        libc::EPERM,
        "ptrace(PTRACE_ATTACH) of the arbiter",
    );
    assert_syscall_fails(
        &syscall("62", &format!("{arbiter_arg},i:15")),
        libc::EPERM,
        "kill(2) of the arbiter",
    );
    assert_syscall_fails(
        &syscall("272", "i:0x10000000"),
        libc::EPERM,
        "unshare(CLONE_NEWUSER)",
    );
    assert_syscall_fails(
        &syscall("161", &format!("s:{}", host.p("writable"))),
        libc::EPERM,
        "chroot(2)",
    );
    assert_syscall_fails(
        &syscall("302", &format!("{arbiter_arg},i:7,rlim:64,i:0")),
        libc::EPERM,
        "prlimit64 on the arbiter",
    );
    assert_syscall_fails(&syscall("160", "i:9,rlim:-1"), libc::EPERM, "setrlimit(2)");
    assert_syscall_fails(
        &syscall("41", "i:2,i:2,i:0"),
        libc::EPERM,
        "socket(2) for UDP",
    );
    assert_syscall_fails(&syscall("425", "i:8,i:0"), libc::EPERM, "io_uring_setup(2)");
    assert_syscall_fails(
        &syscall(
            "165",
            &format!("s:none,s:{},s:tmpfs,i:0,i:0", host.p("outside")),
        ),
        libc::EPERM,
        "mount(2)",
    );
    assert_syscall_fails(&syscall("308", "i:0,i:0"), libc::EPERM, "setns(2)");
    let socket = syscall("41", "i:2,i:1,i:0");
    let fd: i64 = socket
        .split("\"result\": ")
        .nth(1)
        .and_then(|v| v.split(',').next()?.trim().parse().ok())
        .unwrap();
    assert!(fd >= 0, "a TCP socket may be made: {socket}");
    let denied = port(&watchers.tcp4);
    assert_syscall_fails(
        &syscall("42", &format!("i:{fd},in4:{denied},i:16")),
        libc::EACCES,
        "connect(2) to a port not allowed",
    );

    watchers.assert_nothing_received();
    assert!(!Path::new(&marker).exists());
    assert_eq!(
        std::fs::read_to_string(&host.secret).unwrap(),
        "the host's secret"
    );
    assert!(alive(arbiter));
    assert_eq!(
        workers(arbiter),
        vec![worker],
        "the worker was not replaced (no exec)"
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
    let _ = TcpStream::connect(allowed.local_addr().unwrap());
}

#[test]
fn the_server_refuses_to_start_when_the_kernel_cannot_enforce_the_sandbox() {
    use std::os::unix::process::CommandExt;
    // A kernel without Landlock, as far as ferrocorn can tell: the test's
    // child installs a seccomp filter that answers landlock_create_ruleset
    // with ENOSYS, then runs ferrocorn.
    let filter: seccompiler::BpfProgram = seccompiler::SeccompFilter::new(
        [(libc::SYS_landlock_create_ruleset, Vec::new())]
            .into_iter()
            .collect(),
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        seccompiler::TargetArch::x86_64,
    )
    .unwrap()
    .try_into()
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .current_dir(apps_dir())
        .args(["--sandbox", "-b", "127.0.0.1:0", "escape:application"])
        .stdin(std::process::Stdio::null());
    // SAFETY: between fork and exec the child only calls prctl and seccomp
    // on a filter built before the fork (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            seccompiler::apply_filter(&filter).map_err(std::io::Error::other)
        });
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("ferrocorn: error: --sandbox cannot be enforced on this system: Landlock"),
        "one line naming what is missing: {stderr}"
    );
    assert!(
        !stderr.contains("Booting worker"),
        "nothing ran unconfined: {stderr}"
    );
}

#[test]
fn a_worker_cannot_signal_the_arbiter_through_an_inherited_pipe() {
    let host = Host::new("escape-pipes");
    let server = start_sandboxed(&host, "9", &[]);
    let arbiter = server.pid();
    let result = attempt(&server, "write_pipes", &[]);
    assert_works(&result, "writing to the pipes the worker holds");
    // Its own signal pipe may be among them (the worker then retires, as
    // os.kill(os.getpid(), SIGTERM) would make it); the arbiter's is not.
    // The arbiter reads its pipe in order: once it has acted on a TTIN sent
    // now, it has seen whatever the app wrote before.
    server.signal(libc::SIGTTIN);
    assert!(
        server.wait_for_log("Number of workers: 2"),
        "the arbiter stopped: {}",
        server.log()
    );
    assert!(alive(arbiter));
    assert!(
        !server.log().contains("Handling signal: term"),
        "{}",
        server.log()
    );
    assert_eq!(
        server.get("/try/getpid").status,
        200,
        "the server still answers"
    );
}

#[test]
fn worker_hooks_run_confined_from_a_configuration_file_outside_the_app() {
    let conf_dir = scratch_dir("sandbox-hooks");
    let conf = conf_dir.join("conf.py");
    std::fs::write(
        &conf,
        "def post_fork(server, worker):\n    try:\n        open('/etc/shadow').read()\n        server.log.info('post_fork hook read /etc/shadow')\n    except PermissionError:\n        server.log.info('post_fork hook confined')\n\ndef pre_request(worker, req):\n    worker.log.info('pre_request hook ran for ' + req.path)\n",
    )
    .unwrap();
    let conf = conf.display().to_string();
    let server = Server::start_with(
        &apps_dir(),
        &["--sandbox", "-c", &conf, "escape:application"],
        &[],
    );
    assert_eq!(server.get("/try/getpid").status, 200);
    assert!(
        server.wait_for_log("pre_request hook ran for /try/getpid"),
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("post_fork hook confined"),
        "{}",
        server.log()
    );
}

#[test]
fn preloading_imports_the_app_inside_the_sandbox() {
    let host = Host::new("sandbox-preload");
    let secret = host.secret.display().to_string();
    // reads_at_import.py opens $SECRET_PATH at import time.
    let (status, log) = common::run_to_exit(
        &apps_dir(),
        &[
            "--sandbox",
            "--preload",
            "-e",
            &format!("SECRET_PATH={secret}"),
            "reads_at_import:application",
        ],
    );
    assert_eq!(status.code(), Some(3), "WORKER_BOOT_ERROR: {log}");
    assert!(
        log.contains("PermissionError"),
        "the import ran confined: {log}"
    );
    assert!(!log.contains("Booting worker"), "{log}");
    let readable = host.readable.join("data.txt").display().to_string();
    let server = Server::start_with(
        &apps_dir(),
        &[
            "--sandbox",
            "--preload",
            "-e",
            &format!("SECRET_PATH={readable}"),
            "--allow-read",
            &host.readable.display().to_string(),
            "reads_at_import:application",
        ],
        &[],
    );
    assert_eq!(server.get("/").text(), "readable data");
}

#[test]
fn allowed_programs_run_inside_the_sandbox() {
    let host = Host::new("sandbox-subprocess");
    let server = start_sandboxed(&host, "9", &["--allow-subprocess"]);
    let secret = host.secret.display().to_string();
    let echo = attempt(&server, "sh", &[("cmd", "echo started")]);
    assert!(echo.contains("\"out\": \"started\\n\""), "{echo}");
    let cat = attempt(&server, "sh", &[("cmd", &format!("cat {secret}"))]);
    assert!(
        cat.contains("Permission denied") && !cat.contains("the host's secret"),
        "{cat}"
    );
    let outside = host.p("outside/by-child");
    let touch = attempt(&server, "sh", &[("cmd", &format!("echo x > {outside}"))]);
    assert!(!touch.contains("\"status\": 0"), "{touch}");
    assert!(!Path::new(&outside).exists());
}

#[test]
fn spilled_request_bodies_and_reopened_logs_work_under_the_sandbox() {
    let host = Host::new("sandbox-server-needs");
    let logs = host.root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let access = logs.join("access.log");
    let access_arg = access.display().to_string();
    let server = start_sandboxed(
        &host,
        "9",
        &["--body-spill-size", "1024", "--access-logfile", &access_arg],
    );
    let body = vec![7u8; 300_000];
    let mut client = common::Client::new(server.connect());
    client.send(
        format!(
            "POST /try/body HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    client.send(&body);
    let response = client.response(false).unwrap();
    let expected_sum = body.iter().map(|&b| b as u64).sum::<u64>() % 251;
    assert!(
        response
            .text()
            .contains(&format!("\"length\": 300000, \"sum\": {expected_sum}")),
        "{}",
        response.text()
    );
    common::wait_for_file(&access, &["POST /try/body"]);
    // logrotate: move the file away, then USR1; the workers reopen the path.
    std::fs::rename(&access, logs.join("access.log.1")).unwrap();
    server.signal(libc::SIGUSR1);
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        assert_eq!(server.get("/try/getpid").status, 200);
        if std::fs::read_to_string(&access).is_ok_and(|text| text.contains("GET /try/getpid")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not reopen its log: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
