//! The `ferrocorn` command: `ferrocorn [OPTIONS] APP_MODULE` serves;
//! `ferrocorn call ...` runs one request in-process; `ferrocorn run ...`
//! runs Python code as `python` would.

mod bundle;
mod call;
mod healthcheck;
mod help;
mod run;
mod sandbox_args;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::bundle::Bundle;
use crate::config::{Config, ConfigError, sources};
use crate::log;
use crate::python::app::LoadError;
use crate::server::serve;
use crate::startup::ServerError;
use crate::worker::run::{EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR};

/// Runs the command with this process's arguments; returns its exit status.
pub fn run_command() -> ExitCode {
    std::panic::set_hook(Box::new(|info| log::critical(&format!("panic: {info}"))));
    let mut words: Vec<OsString> = std::env::args_os().skip(1).collect();
    match help::as_help_request(&words) {
        Some(Ok(help_words)) => words = help_words,
        Some(Err(line)) => {
            log::to_stderr(&format!("ferrocorn: error: {line}"));
            return ExitCode::from(2);
        }
        None => {}
    }
    let first = words.first().map(|w| w.to_string_lossy().into_owned());
    if first.as_deref() == Some("bundle") {
        return bundle::run(words.into_iter().skip(1).collect());
    }
    // A bundle (`ferrocorn bundle`'s output) unpacks itself before anything
    // else, and its settings become the lowest layer.
    let own_bundle = match crate::bundle::open_self() {
        Ok(found) => found,
        Err(error) => {
            log::to_stderr(&format!("ferrocorn: error: {error}"));
            return ExitCode::FAILURE;
        }
    };
    if first.as_deref() == Some("healthcheck") {
        let rest: Vec<OsString> = words.into_iter().skip(1).collect();
        return healthcheck::run(rest, own_bundle.as_ref().map(Bundle::server_defaults));
    }
    let subcommand = first.filter(|f| f == "call" || f == "run");
    if let Some(command) = subcommand {
        let rest: Vec<OsString> = words.into_iter().skip(1).collect();
        return match (command.as_str(), &own_bundle) {
            ("call", Some(found)) => call::run(found.call_words(rest).into_iter()),
            ("call", None) => call::run(rest.into_iter()),
            // run reads settings as the server does: the bundle's are its lowest layer.
            (_, Some(found)) => {
                let defaults = found.server_defaults();
                run::run(rest, defaults)
            }
            (_, None) => run::run(rest, Vec::new()),
        };
    }
    let defaults = own_bundle
        .as_ref()
        .map(Bundle::server_defaults)
        .unwrap_or_default();
    let config = match sources::load(words, defaults) {
        Ok(loaded) => loaded,
        Err(ConfigError::Clap(error)) => error.exit(),
        Err(error) => {
            log::to_stderr(&format!("ferrocorn: error: {error}"));
            return ExitCode::FAILURE;
        }
    };
    if config.print_config {
        let mut out = std::io::stdout().lock();
        for (name, value) in &config.settings_text {
            // A closed stdout (`| head`) ends the listing, not in a panic.
            if writeln!(out, "{name:<40} = {value}").is_err() {
                break;
            }
        }
    }
    if config.print_config || config.check_config {
        return check_app(&config);
    }
    match serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        // The failing process already printed its error; the status is
        // Gunicorn's, which supervisors and scripts test for.
        Err(ServerError::AppFailedToLoad) => ExitCode::from(EXIT_APP_LOAD_ERROR as u8),
        Err(ServerError::WorkerBoot) => ExitCode::from(EXIT_BOOT_ERROR as u8),
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: the settings were valid; now the TLS files must load,
/// and the app.
fn check_app(config: &Config) -> ExitCode {
    if let Err(error) = crate::startup::load_tls(config) {
        report(&error);
        return ExitCode::FAILURE;
    }
    match crate::embed::App::load(config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            report(&ServerError::AppLoad(error));
            ExitCode::FAILURE
        }
    }
}

fn report(error: &ServerError) {
    if let ServerError::AppLoad(LoadError::Python { traceback, .. }) = error {
        log::to_stderr(traceback.trim_end_matches('\n'));
    }
    log::to_stderr(&format!("ferrocorn: error: {error}"));
}
