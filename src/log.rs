//! The error log: `[time] [pid] [LEVEL] message` lines on stderr, as
//! Gunicorn writes them, filtered by `--log-level`.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::http::date::UtcTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
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

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

/// Writes one entry (which may span lines, e.g. a traceback) in a single write.
pub fn log(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    let line = format!(
        "[{}] [{}] [{}] {}\n",
        UtcTime::now().log_stamp(),
        std::process::id(),
        level.label(),
        message.trim_end()
    );
    write_raw(line.as_bytes());
}

/// Bytes straight to the error log (the app's `wsgi.errors`).
pub fn write_raw(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
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
