use std::process::ExitCode;

use clap::Parser;
use ferrocorn::python::app::LoadError;
use ferrocorn::{Config, ServerError, log};

fn main() -> ExitCode {
    let config = Config::parse();
    std::panic::set_hook(Box::new(|info| log::critical(&format!("panic: {info}"))));
    match ferrocorn::serve(&config) {
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
