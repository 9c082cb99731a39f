//! The error log (`[time] [pid] [LEVEL] message`, as Gunicorn writes it) and
//! the access log: where each goes (stderr, stdout or a file), and reopening
//! files on SIGUSR1 for log rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::http::date::UtcTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
/// How much the error log says (`--log-level`).
pub enum Level {
    /// Everything, including per-connection details.
    Debug = 0,
    /// Start-up, worker and shutdown events (the default).
    Info = 1,
    /// Things that went wrong but were handled.
    Warning = 2,
    /// Failed requests and workers.
    Error = 3,
    /// Only what stops the server.
    Critical = 4,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(value: &str) -> Result<Level, String> {
        match value.to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warning" | "warn" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            "critical" => Ok(Level::Critical),
            _ => Err(format!(
                "invalid log level {value:?}: expected debug, info, warning, error or critical"
            )),
        }
    }
}

/// Where a log goes: `-` is stdout (access log) or stderr (error log).
#[derive(Debug)]
enum Sink {
    Stderr,
    Stdout,
    File { file: File, path: PathBuf },
}

impl Sink {
    fn open(path: &PathBuf) -> std::io::Result<Sink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Sink::File {
            file,
            path: path.clone(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stderr => std::io::stderr().lock().write_all(bytes),
            Sink::Stdout => std::io::stdout().lock().write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        if let Sink::File { path, .. } = self {
            *self = Sink::open(&path.clone())?;
        }
        Ok(())
    }
}

/// A log and the lines it could not take: a closed stderr (EPIPE), a full
/// disk (ENOSPC), a failing device (EIO) cost those lines, never the server;
/// their count is reported once writing works again.
#[derive(Debug)]
struct Log {
    sink: Sink,
    lost: u64,
    last_error: String,
}

impl Log {
    const fn new(sink: Sink) -> Log {
        Log {
            sink,
            lost: 0,
            last_error: String::new(),
        }
    }

    /// Writes `bytes`; returns how many earlier lines were lost, and why,
    /// when this write is the first to succeed after them.
    fn write(&mut self, bytes: &[u8]) -> Option<(u64, String)> {
        match self.sink.write(bytes) {
            Ok(()) if self.lost > 0 => {
                let lost = (self.lost, std::mem::take(&mut self.last_error));
                self.lost = 0;
                Some(lost)
            }
            Ok(()) => None,
            Err(error) => {
                self.lost += 1;
                self.last_error = error.to_string();
                None
            }
        }
    }
}

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);
static ERROR_LOG: Mutex<Log> = Mutex::new(Log::new(Sink::Stderr));
static ACCESS_LOG: Mutex<Option<Log>> = Mutex::new(None);
static CAPTURE_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// Points the logs at their destinations: `None` keeps the error log on
/// stderr and the access log off; `-` means stderr / stdout.
pub fn configure(
    error_log: Option<&PathBuf>,
    access_log: Option<&PathBuf>,
    capture_output: bool,
) -> std::io::Result<()> {
    let error_sink = match error_log {
        Some(path) if path.as_os_str() != "-" => Sink::open(path)?,
        _ => Sink::Stderr,
    };
    let access_sink = match access_log {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(Sink::Stdout),
        Some(path) => Some(Sink::open(path)?),
    };
    *lock(&ERROR_LOG) = Log::new(error_sink);
    *lock(&ACCESS_LOG) = access_sink.map(Log::new);
    CAPTURE_OUTPUT.store(capture_output, Ordering::Relaxed);
    redirect_output();
    Ok(())
}

/// Reopens log files (after rotation moved them away).
pub fn reopen() {
    let reopened = lock(&ERROR_LOG).sink.reopen();
    if let Err(e) = reopened {
        error(&format!("cannot reopen the error log: {e}"));
    }
    let reopened = lock(&ACCESS_LOG)
        .as_mut()
        .map(|access| access.sink.reopen());
    if let Some(Err(e)) = reopened {
        error(&format!("cannot reopen the access log: {e}"));
    }
    redirect_output();
}

/// With `--capture-output`, stdout and stderr (the app's print()) go to the
/// error log file.
fn redirect_output() {
    if !CAPTURE_OUTPUT.load(Ordering::Relaxed) {
        return;
    }
    if let Sink::File { file, .. } = &lock(&ERROR_LOG).sink {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto the standard descriptors; `file` stays open.
        unsafe {
            libc::dup2(file.as_raw_fd(), 1);
            libc::dup2(file.as_raw_fd(), 2);
        }
    }
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

/// One entry as the error log shows it, newline included.
fn entry(level: Level, message: &str) -> String {
    format!(
        "[{}] [{}] [{}] {}\n",
        UtcTime::now().log_stamp(),
        std::process::id(),
        level.label(),
        message.trim_end()
    )
}

/// Writes one entry (which may span lines, e.g. a traceback) in a single write.
pub fn log(level: Level, message: &str) {
    if enabled(level) {
        write_raw(entry(level, message).as_bytes());
    }
    // Gunicorn's statsd counts these whatever the log level.
    match level {
        Level::Warning => crate::metrics::statsd::on_log("warning"),
        Level::Error => crate::metrics::statsd::on_log("error"),
        Level::Critical => crate::metrics::statsd::on_log("critical"),
        Level::Debug | Level::Info => {}
    }
}

/// Bytes straight to the error log (the app's `wsgi.errors`).
pub fn write_raw(bytes: &[u8]) {
    let mut error_log = lock(&ERROR_LOG);
    if let Some((lost, why)) = error_log.write(bytes) {
        let note = format!("{lost} error log entries could not be written before this one ({why})");
        error_log.write(entry(Level::Warning, &note).as_bytes());
    }
}

/// One access log line (already formatted, without its newline).
pub fn access(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let recovered = lock(&ACCESS_LOG)
        .as_mut()
        .and_then(|access| access.write(&bytes));
    if let Some((lost, why)) = recovered {
        warning(&format!(
            "{lost} access log lines could not be written ({why})"
        ));
    }
}

/// A line on stderr that cannot panic (`eprintln!` does when stderr is
/// closed): a start-up error, say. A lost line is only lost.
pub fn to_stderr(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.write_all(b"\n");
}

/// A line on stdout that cannot panic (`println!` does when stdout is
/// closed, as under `| head`).
pub fn to_stdout(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.write_all(b"\n");
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}
pub fn info(message: &str) {
    log(Level::Info, message);
}
pub fn warning(message: &str) {
    log(Level::Warning, message);
}
pub fn error(message: &str) {
    log(Level::Error, message);
}
pub fn critical(message: &str) {
    log(Level::Critical, message);
}
/// An error with the app's traceback (Gunicorn's `log.exception`, which its
/// statsd counts as `gunicorn.log.exception`, not as an error).
pub fn exception(message: &str) {
    if enabled(Level::Error) {
        write_raw(entry(Level::Error, message).as_bytes());
    }
    crate::metrics::statsd::on_log("exception");
}
