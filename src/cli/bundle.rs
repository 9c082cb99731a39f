//! `ferrocorn bundle -o OUTPUT [--exclude PATTERN]... [SERVER FLAGS] APP_MODULE`:
//! one executable holding ferrocorn, the app (`--chdir`, default the working
//! directory), its `--pythonpath` entries and the server flags as defaults.
//! `ferrocorn bundle --list [BUNDLE]` says what a bundle holds.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::bundle::IN_BUNDLE;
use crate::bundle::create::{self, Inputs};
use crate::config::Config;
use crate::log;

const USAGE: &str = "usage: ferrocorn bundle -o OUTPUT [--exclude PATTERN]... [SERVER FLAGS] APP_MODULE\n       ferrocorn bundle --list [BUNDLE]\n\nWrites one executable: this ferrocorn, the app's directory (--chdir, default the working\ndirectory) and every --pythonpath entry (wheels unpacked), with the server flags and\nAPP_MODULE as its defaults (flags, a configuration file and GUNICORN_CMD_ARGS given when it\nruns override them). Left out: .git, __pycache__, *.pyc, .venv and the like, C extension\nmodules (reported: RustPython cannot load them), and what --exclude names (a glob matched\nagainst each file's path inside the app or entry, and against each of its components).\nThe app is loaded once first, as --check-config does: one that cannot load is refused.\nThe same inputs give the same bytes.";

/// The words `bundle` takes for itself; the rest are the server's.
struct BundleWords {
    output: Option<PathBuf>,
    excludes: Vec<String>,
    /// `--list`, with the bundle to describe (`None`: this executable).
    list: Option<Option<PathBuf>>,
    server: Vec<String>,
}

fn split(words: Vec<OsString>) -> Result<BundleWords, String> {
    let mut parsed = BundleWords {
        output: None,
        excludes: Vec::new(),
        list: None,
        server: Vec::new(),
    };
    let mut words = words
        .into_iter()
        .map(|w| w.to_string_lossy().into_owned())
        .peekable();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (word.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-o" | "--output" => parsed.output = Some(value("--output")?.into()),
            "--exclude" => parsed.excludes.push(value("--exclude")?),
            "--list" => {
                let target = inline
                    .clone()
                    .or_else(|| words.next_if(|w| !w.starts_with('-')));
                parsed.list = Some(target.map(PathBuf::from));
            }
            "-h" | "--help" if parsed.server.is_empty() => return Err(String::new()),
            _ => parsed.server.push(word),
        }
    }
    Ok(parsed)
}

pub fn run(words: Vec<OsString>) -> ExitCode {
    let parsed = match split(words) {
        Ok(parsed) => parsed,
        Err(message) if message.is_empty() => {
            log::to_stdout(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => return fail(&message),
    };
    if let Some(target) = parsed.list {
        return list(target);
    }
    let Some(output) = parsed.output else {
        return fail("-o OUTPUT is needed: where to write the bundle");
    };
    let config = match Config::from_args(&parsed.server) {
        Ok(config) => config,
        Err(error) => return fail(&error.to_string()),
    };
    let app_dir = match config.library_base_dir() {
        Ok(dir) => dir,
        Err(error) => return fail(&format!("cannot use the app's directory: {error}")),
    };
    let libs = config.pythonpath_entries(&app_dir);
    // The app must load here as on the host: one line, the server's, if not.
    if let Err(error) = crate::embed::App::load(&config) {
        return fail(&format!(
            "the app does not load, so it is not bundled: {error}"
        ));
    }
    let executable = match crate::bundle::own_executable() {
        Ok(bytes) => bytes,
        Err(error) => return fail(&format!("cannot read this executable: {error}")),
    };
    let (args, config_file) = baked_args(&parsed.server);
    let mut extra = Vec::new();
    if let Some(path) = config_file {
        match std::fs::read(&path) {
            Ok(bytes) => extra.push((BUNDLED_CONFIG.to_owned(), bytes)),
            Err(error) => {
                return fail(&format!(
                    "cannot read the configuration file {}: {error}",
                    path.display()
                ));
            }
        }
    }
    let inputs = Inputs {
        executable,
        app_dir: &app_dir,
        libs: &libs,
        args: &args,
        excludes: &parsed.excludes,
        extra,
        output: &output,
    };
    match create::write(&inputs) {
        Ok(summary) => {
            for module in &summary.c_extensions {
                log::to_stderr(&format!(
                    "ferrocorn bundle: left out {module}: a C extension module, which RustPython cannot load (the app loaded without it)"
                ));
            }
            log::to_stderr(&format!(
                "ferrocorn bundle: wrote {} ({} files, {} modules compiled, {:.1} MB)",
                output.display(),
                summary.files,
                summary.compiled,
                summary.bytes as f64 / 1e6
            ));
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error.to_string()),
    }
}

/// Where a bundled configuration file sits in the payload, and how the
/// baked `--config` names it (`@bundle/` becomes the unpacked directory).
const BUNDLED_CONFIG: &str = ".ferrocorn-bundle/gunicorn.conf.py";

/// The server words to bake in: all but `--chdir` and `--pythonpath`, which
/// the bundle replaces with its unpacked directories; a `-c FILE` becomes
/// the copy of FILE the bundle holds (returned too). `python:MODULE` stays.
fn baked_args(server: &[String]) -> (Vec<String>, Option<PathBuf>) {
    let mut baked = Vec::new();
    let mut config_file = None;
    let mut words = server.iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (word.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| words.next().cloned());
        match flag {
            "--chdir" | "--pythonpath" => {
                value();
            }
            "-c" | "--config" => match value() {
                Some(source) if source.starts_with("python:") => {
                    baked.push(format!("--config={source}"))
                }
                Some(path) => {
                    config_file = Some(PathBuf::from(path));
                    baked.push(format!("--config={IN_BUNDLE}{BUNDLED_CONFIG}"));
                }
                None => {}
            },
            _ => baked.push(word.clone()),
        }
    }
    (baked, config_file)
}

fn list(target: Option<PathBuf>) -> ExitCode {
    let path = target.unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    match crate::bundle::describe(&path) {
        Ok(lines) => {
            for line in lines {
                log::to_stdout(&line);
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

fn fail(message: &str) -> ExitCode {
    log::to_stderr(&format!("ferrocorn bundle: error: {message}"));
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_words_are_taken_out_and_the_rest_is_the_servers() {
        let words = [
            "-o",
            "out",
            "--exclude=tests",
            "-w",
            "2",
            "--exclude",
            "*.log",
            "app:app",
        ];
        let parsed = split(words.iter().map(OsString::from).collect()).unwrap();
        assert_eq!(parsed.output, Some(PathBuf::from("out")));
        assert_eq!(parsed.excludes, ["tests", "*.log"]);
        assert_eq!(parsed.server, ["-w", "2", "app:app"]);
        assert!(parsed.list.is_none());
    }

    #[test]
    fn locations_are_not_baked_in_and_a_config_file_is_carried() {
        let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let server = words(&[
            "--chdir",
            "src",
            "-w",
            "2",
            "--pythonpath=wheels",
            "-c",
            "conf.py",
            "app:app",
        ]);
        let (baked, config) = baked_args(&server);
        let expected = [
            "-w",
            "2",
            "--config=@bundle/.ferrocorn-bundle/gunicorn.conf.py",
            "app:app",
        ];
        assert_eq!(baked, expected);
        assert_eq!(config, Some(PathBuf::from("conf.py")));
        let (baked, config) = baked_args(&words(&["--config=python:settings", "app:app"]));
        assert_eq!(baked, ["--config=python:settings", "app:app"]);
        assert_eq!(config, None);
    }
}
