//! The sandbox (`--sandbox`): what the app may touch, decided by the
//! operator and enforced by the kernel. Landlock ([`filesystem`]) governs
//! files, TCP ports and signals; seccomp ([`syscalls`]) the system calls
//! Landlock does not (exec, fork, socket families, ptrace, namespaces...);
//! every capability is dropped; the environment is cut to `--allow-env`.
//! The interpreter-level pieces (ctypes and `--deny-module` removed from the
//! interpreter, clearer messages, the host part of `--allow-connect`) live in
//! `python::policy` and `pylib/ferrocorn/sandbox.py`.
//!
//! A worker confines its whole process before it starts a thread or imports
//! the app ([`Policy::confine_process`]); library use confines each
//! interpreter thread ([`Policy::confine_thread`]), leaving the host
//! program's own threads alone.

mod capabilities;
mod environment;
mod filesystem;
pub mod interpreter;
pub mod memory;
mod private_tmp;
mod syscalls;

use std::fmt;
use std::path::{Path, PathBuf};

pub use private_tmp::PrivateTmp;

use crate::config::Config;

/// Why the sandbox could not be put in place.
#[derive(Debug, Clone)]
pub enum SandboxError {
    /// The running kernel lacks a mechanism the policy needs.
    Unsupported(String),
    /// Setting it up failed (the message says where).
    Setup(String),
    /// A setting asks for what the sandbox cannot do (the message names it).
    Refused(String),
    /// The private temporary directory could not be made.
    PrivateTmp(std::sync::Arc<std::io::Error>),
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SandboxError::Unsupported(what) => {
                write!(f, "--sandbox cannot be enforced on this system: {what}")
            }
            SandboxError::Setup(what) => write!(f, "cannot set up the sandbox: {what}"),
            SandboxError::Refused(what) => f.write_str(what),
            SandboxError::PrivateTmp(error) => {
                write!(f, "cannot create the private temporary directory: {error}")
            }
        }
    }
}

impl std::error::Error for SandboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SandboxError::PrivateTmp(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Files ordinary Python reads that are no secret: time zones (`zoneinfo`,
/// `time.localtime`), MIME types (`mimetypes`), the user and group names
/// (`pwd`, `os.path.expanduser`, `getpass.getuser`: world-readable, the
/// password hashes are in /etc/shadow), the random devices.
pub const SYSTEM_READABLE: &[&str] = &[
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/timezone",
    "/usr/share/zoneinfo",
    "/etc/mime.types",
    "/dev/urandom",
    "/dev/random",
    // The host's certificate store, which `ssl.create_default_context()`
    // trusts (public certificates; the roots rustls-native-certs reads,
    // and the Debian/Ubuntu targets of /etc/ssl/certs' links).
    "/etc/ssl/certs",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
];

/// Variables naming a certificate store (`ssl`'s `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`): when the app sees one, it may read what it names.
const CERTIFICATE_STORE_VARIABLES: &[&str] = &["SSL_CERT_FILE", "SSL_CERT_DIR"];

/// The value of the environment variable `name` in a sandboxed app: given
/// with `-e`, or this process's own when `--allow-env` keeps it.
fn value_the_app_sees(config: &Config, name: &str) -> Option<std::ffi::OsString> {
    let given = config.raw_env.iter().find_map(|pair| {
        pair.split_once('=')
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value.into())
    });
    let kept = || {
        config
            .allow_env
            .iter()
            .any(|kept| kept == name)
            .then(|| std::env::var_os(name))
            .flatten()
    };
    given.or_else(kept)
}

/// Devices the app may write as well as read.
const SYSTEM_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

/// With `--allow-subprocess`: where programs and the libraries they load live.
pub const PROGRAM_READABLE: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/libexec",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
];

/// What a sandboxed worker (or interpreter thread) may touch.
#[derive(Debug, Clone)]
pub struct Policy {
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    log_dirs: Vec<PathBuf>,
    devices: Vec<PathBuf>,
    connect_ports: Vec<u16>,
    allow_subprocess: bool,
    keep_env: Vec<String>,
    tmp: PathBuf,
}

impl Policy {
    /// The policy `config` asks for; the app reads from `sys_path` and
    /// keeps its temporary files in `tmp`.
    pub fn new(config: &Config, sys_path: &[String], tmp: &Path) -> Policy {
        // sys.path starts with the app's directory (--chdir, made absolute).
        let mut read: Vec<PathBuf> = sys_path.iter().map(PathBuf::from).collect();
        read.extend(std::env::current_exe().ok());
        read.extend(SYSTEM_READABLE.iter().map(PathBuf::from));
        if config.allow_subprocess {
            read.extend(PROGRAM_READABLE.iter().map(PathBuf::from));
        }
        read.extend(config.allow_read.iter().cloned());
        // Worker and request hooks execute the configuration file again in
        // the worker, so it must stay readable (and so the app can read it).
        if !config.hooks.is_empty() {
            read.extend(
                config
                    .config
                    .iter()
                    .filter(|source| !source.starts_with("python:"))
                    .map(PathBuf::from),
            );
        }
        let mut write = config.allow_write.clone();
        write.push(tmp.to_owned());
        let log_dirs = [&config.error_logfile, &config.access_logfile]
            .into_iter()
            .flatten()
            .filter(|path| path.as_os_str() != "-")
            .filter_map(|path| std::path::absolute(path).ok()?.parent().map(Path::to_owned))
            .collect();
        let mut connect_ports: Vec<u16> = config.allow_connect.iter().map(|r| r.port).collect();
        connect_ports.sort_unstable();
        connect_ports.dedup();
        let mut keep_env = config.allow_env.clone();
        keep_env.extend(
            config
                .raw_env
                .iter()
                .filter_map(|pair| pair.split_once('=').map(|(key, _)| key.to_owned())),
        );
        read.extend(
            CERTIFICATE_STORE_VARIABLES
                .iter()
                .filter_map(|name| value_the_app_sees(config, name))
                .map(PathBuf::from),
        );
        Policy {
            read,
            write,
            log_dirs,
            devices: SYSTEM_DEVICES.iter().map(PathBuf::from).collect(),
            connect_ports,
            allow_subprocess: config.allow_subprocess,
            keep_env,
            tmp: tmp.to_owned(),
        }
    }

    /// The variables the app sees (`--allow-env`, `-e` names).
    pub fn kept_environment(&self) -> &[String] {
        &self.keep_env
    }

    /// Confines this whole process, for good: environment, capabilities,
    /// Landlock, seccomp (on every thread).
    ///
    /// # Safety
    /// The process must be single-threaded: the environment is rewritten and
    /// Landlock restricts the calling thread and its future children only.
    pub unsafe fn confine_process(&self) -> Result<(), SandboxError> {
        // SAFETY: single-threaded, as the caller promises.
        unsafe { environment::restrict(&self.keep_env, &self.tmp) };
        self.confine_thread()
    }

    /// Confines the calling thread and the threads and processes it starts
    /// later (not the rest of the process): capabilities, Landlock, seccomp.
    pub fn confine_thread(&self) -> Result<(), SandboxError> {
        set_no_new_privs()?;
        capabilities::drop_all()?;
        self.confine_thread_to(self.processes())
    }

    /// A preloading process (`--preload`): as [`Policy::confine_process`],
    /// except that it may fork (its workers), though not run programs
    /// unless `--allow-subprocess`; each worker it forks then calls
    /// [`deny_new_processes`].
    ///
    /// # Safety
    /// As [`Policy::confine_process`].
    pub unsafe fn confine_preloader(&self) -> Result<(), SandboxError> {
        // SAFETY: single-threaded, as the caller promises.
        unsafe { environment::restrict(&self.keep_env, &self.tmp) };
        let processes = match self.processes() {
            syscalls::Processes::None => syscalls::Processes::ForksOnly,
            other => other,
        };
        self.confine_thread_to(processes)
    }

    fn processes(&self) -> syscalls::Processes {
        match self.allow_subprocess {
            true => syscalls::Processes::All,
            false => syscalls::Processes::None,
        }
    }

    fn confine_thread_to(&self, processes: syscalls::Processes) -> Result<(), SandboxError> {
        set_no_new_privs()?;
        capabilities::drop_all()?;
        let filters = syscalls::filters(processes)?;
        filesystem::restrict(self)?;
        syscalls::install(&filters, false)
    }

    /// The path the app may read or write that contains `path` (both
    /// resolved), if there is one: a secret there is not secret from it.
    pub fn readable_path_covering(&self, path: &Path) -> Option<PathBuf> {
        let resolved = std::fs::canonicalize(path).ok()?;
        self.read
            .iter()
            .chain(&self.write)
            .filter_map(|allowed| std::fs::canonicalize(allowed).ok())
            .find(|allowed| resolved.starts_with(allowed))
    }

    /// What the app may write: `--allow-write` and its temporary directory.
    pub fn writable(&self) -> &[PathBuf] {
        &self.write
    }

    /// Where the app's temporary files go.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }
}

/// PR_SET_NO_NEW_PRIVS: neither this thread nor any program it runs can gain
/// privileges (setuid bits, file capabilities); seccomp and Landlock need it.
fn set_no_new_privs() -> Result<(), SandboxError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::Setup(format!(
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// In a worker forked from a confined preloading process: no new process
/// from here on (it inherits everything else), unless `--allow-subprocess`.
pub fn deny_new_processes(config: &Config) -> Result<(), SandboxError> {
    if config.allow_subprocess {
        return Ok(());
    }
    syscalls::install(&[syscalls::new_process_filter()?], false)
}

/// Refuses settings that ask for a sandbox feature without `--sandbox`, or
/// name paths that do not exist: one line naming the setting.
pub fn check_settings(config: &Config) -> Result<(), SandboxError> {
    interpreter::check_deniable(&config.deny_module)?;
    if !config.sandbox {
        let given = [
            ("--allow-read", !config.allow_read.is_empty()),
            ("--allow-write", !config.allow_write.is_empty()),
            ("--allow-connect", !config.allow_connect.is_empty()),
            ("--allow-env", !config.allow_env.is_empty()),
            ("--allow-subprocess", config.allow_subprocess),
            ("--allow-ffi", config.allow_ffi),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            return Err(SandboxError::Refused(format!(
                "{flag} opens a hole in the sandbox, but --sandbox is not on: add --sandbox (sandbox = True)"
            )));
        }
        return Ok(());
    }
    for (flag, paths) in [
        ("--allow-read", &config.allow_read),
        ("--allow-write", &config.allow_write),
    ] {
        for path in paths {
            if let Err(error) = std::fs::metadata(path) {
                return Err(SandboxError::Refused(format!(
                    "{flag} {}: {error}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Confines a thread that then ends: the kernel's answer to whether `policy`
/// can be enforced here, without confining the caller. At start-up, so the
/// server refuses to start rather than run weaker than asked.
pub fn preflight(policy: &Policy) -> Result<(), SandboxError> {
    let policy = policy.clone();
    std::thread::Builder::new()
        .name("sandbox-check".into())
        .spawn(move || policy.confine_thread())
        .map_err(|e| SandboxError::Setup(format!("cannot start a thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(SandboxError::Setup("the check panicked".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut words = args.to_vec();
        words.push("app:application");
        Config::from_args(words).unwrap()
    }

    #[test]
    fn holes_without_the_sandbox_are_refused() {
        let error = check_settings(&config(&["--allow-read", "/"]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--allow-read") && error.contains("--sandbox"),
            "{error}"
        );
        assert!(check_settings(&config(&["--sandbox", "--allow-read", "/"])).is_ok());
        let missing = check_settings(&config(&["--sandbox", "--allow-write", "/no/such/dir"]));
        assert!(missing.unwrap_err().to_string().contains("/no/such/dir"));
    }

    #[test]
    fn modules_ferrocorn_imports_before_the_app_cannot_be_denied() {
        for name in [
            "_thread",
            "os",
            "zipfile",
            "re._parser",
            "encodings",
            "ferrocorn",
        ] {
            let error = check_settings(&config(&["--deny-module", name]))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("--deny-module {name}: ")),
                "{error}"
            );
        }
        // Allowed: modules nothing imports first, also those whose names
        // merely start like a needed one's.
        for name in [
            "pickle",
            "encodings.idna",
            "osx",
            "socket",
            "ferrocorn.check",
        ] {
            let checked = check_settings(&config(&["--deny-module", name]));
            assert!(checked.is_ok(), "{name}: {checked:?}");
        }
    }

    #[test]
    fn a_certificate_store_named_by_a_variable_the_app_sees_is_readable() {
        let tmp = Path::new("/tmp/private");
        let given = config(&["--sandbox", "-e", "SSL_CERT_FILE=/srv/ca/bundle.pem"]);
        let policy = Policy::new(&given, &[], tmp);
        assert!(policy.read.contains(&PathBuf::from("/srv/ca/bundle.pem")));
        assert!(policy.read.contains(&PathBuf::from("/etc/ssl/certs")));
        // Another variable's value opens nothing.
        let other = config(&["--sandbox", "-e", "DATA=/srv/ca/bundle.pem"]);
        let policy = Policy::new(&other, &[], tmp);
        assert!(!policy.read.contains(&PathBuf::from("/srv/ca/bundle.pem")));
    }

    #[test]
    fn raw_env_names_stay_visible_and_ports_are_listed_once() {
        let config = config(&[
            "--sandbox",
            "--allow-env",
            "DATABASE_URL",
            "-e",
            "MODE=test",
            "--allow-connect",
            "5432",
            "--allow-connect",
            "db:5432",
        ]);
        let policy = Policy::new(&config, &["/srv/app".into()], Path::new("/tmp/x"));
        assert_eq!(policy.kept_environment(), ["DATABASE_URL", "MODE"]);
        assert_eq!(policy.connect_ports, [5432]);
        assert!(policy.read.contains(&PathBuf::from("/srv/app")));
        assert!(policy.write.contains(&PathBuf::from("/tmp/x")));
    }
}
