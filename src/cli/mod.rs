//! The `ferrocorn` command: `ferrocorn [OPTIONS] APP_MODULE` serves;
//! `ferrocorn call ...` runs one request in-process.

mod call;

use std::process::ExitCode;

use clap::Parser;

use crate::config::Config;
use crate::log;
use crate::python::app::LoadError;
use crate::server::{ServerError, serve};

/// Runs the command with this process's arguments; returns its exit status.
pub fn run_command() -> ExitCode {
    std::panic::set_hook(Box::new(|info| log::critical(&format!("panic: {info}"))));
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|first| first == "call") {
        return call::run(std::env::args_os().skip(2));
    }
    let config = Config::parse();
    match serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        // The failing worker already printed its error.
        Err(ServerError::WorkerBoot) => ExitCode::FAILURE,
        Err(error) => {
            if let ServerError::AppLoad(LoadError::Python { traceback, .. }) = &error {
                eprint!("{traceback}");
            }
            eprintln!("ferrocorn: error: {error}");
            ExitCode::FAILURE
        }
    }
}
