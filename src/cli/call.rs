//! `ferrocorn call`: one request through the app, in-process, no network;
//! the body on stdout (with `--include`, the status line and headers first,
//! as `curl -i` prints them). For smoke tests on machines without Python.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::sandbox_args::{SandboxArgs, in_confined_child};
use crate::config::Config;
use crate::embed::{App, Request};
use crate::python::app::LoadError;
use crate::wsgi::boot::HostSettings;

/// Exit status: the app answered 2xx or 3xx.
const EXIT_SUCCESS: u8 = 0;
/// Exit status: the app answered 4xx or 5xx, or the request could not be run.
const EXIT_FAILURE: u8 = 1;
/// Exit status: the app broke the WSGI contract (PEP 3333).
const EXIT_CONTRACT: u8 = 2;

/// Run one request through a WSGI app in-process and print the response body.
///
/// Exit status: 0 for a 2xx/3xx response, 1 for 4xx/5xx or when the request
/// could not be run, 2 when the app broke the WSGI contract (PEP 3333).
#[derive(Debug, Parser)]
#[command(name = "ferrocorn call", version, max_term_width = 100)]
struct CallArgs {
    /// The WSGI app: MODULE, MODULE:NAME or MODULE:FACTORY(ARGS).
    #[arg(value_name = "APP_MODULE")]
    app: String,

    /// The path and query string, e.g. /items?page=2.
    #[arg(value_name = "PATH_AND_QUERY")]
    target: String,

    /// Request method (default GET, or POST when a body is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,

    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,

    /// Request body (Content-Type defaults to application/x-www-form-urlencoded, as with curl -d).
    #[arg(
        short = 'd',
        long = "data",
        value_name = "BODY",
        conflicts_with = "data_file"
    )]
    data: Option<String>,

    /// Request body read from FILE (`-` for stdin), sent as it is.
    #[arg(long = "data-file", value_name = "FILE")]
    data_file: Option<PathBuf>,

    /// Print the status line and headers before the body.
    #[arg(short = 'i', long)]
    include: bool,

    /// Check the app's use of WSGI against PEP 3333; violations go to stderr.
    #[arg(long = "check-wsgi")]
    check_wsgi: bool,

    /// Directory to load the app from; it goes first on sys.path.
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// Comma-separated directories, .zip or .whl files to add to sys.path.
    #[arg(long, value_name = "PATHS")]
    pythonpath: Option<String>,

    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// Runs `ferrocorn call` with the words after `call`.
pub fn run(args: impl Iterator<Item = OsString>) -> ExitCode {
    let words = std::iter::once(OsString::from("ferrocorn call")).chain(args);
    let args = match CallArgs::try_parse_from(words) {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            // --help, --version
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match call(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            crate::log::to_stderr(&format!("ferrocorn call: error: {message}"));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn call(args: &CallArgs) -> Result<u8, String> {
    let request = build_request(args)?;
    let mut config = Config::new(&args.app).map_err(|e| e.to_string())?;
    config.chdir = args.chdir.clone();
    config.pythonpath = args.pythonpath.clone();
    config.check_wsgi = args.check_wsgi;
    args.sandbox.apply(&mut config)?;
    if !config.sandbox {
        let app = App::load(&config).map_err(report_load_error)?;
        return respond(&app, request, args.include);
    }
    // The whole process is confined, in a child, so that this unconfined
    // parent can remove the private temporary directory afterwards.
    in_confined_child(
        |tmp| match call_confined(&config, tmp, request, args.include) {
            Ok(code) => code,
            Err(message) => {
                crate::log::to_stderr(&format!("ferrocorn call: error: {message}"));
                EXIT_FAILURE
            }
        },
    )
}

/// In the forked child: confine, load, answer.
fn call_confined(
    config: &Config,
    tmp: &Path,
    request: Request,
    include: bool,
) -> Result<u8, String> {
    let working_dir = config
        .library_base_dir()
        .map_err(|e| format!("cannot find the app's directory: {e}"))?;
    let settings = HostSettings::from_config(config, false, &working_dir);
    // SAFETY: the child just forked has this one thread.
    let settings = unsafe { settings.confine_process(config, tmp) }.map_err(|e| e.to_string())?;
    let app = App::load_with(config, settings).map_err(report_load_error)?;
    respond(&app, request, include)
}

/// The traceback (if any) on stderr; the one-line summary returned.
fn report_load_error(error: LoadError) -> String {
    if let LoadError::Python { traceback, .. } = &error {
        crate::log::to_stderr(traceback.trim_end_matches('\n'));
    }
    error.to_string()
}

/// Runs `request` and writes the response to stdout; the exit status.
fn respond(app: &App, request: Request, include: bool) -> Result<u8, String> {
    let mut response = app.call(request).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let write_error = |e: std::io::Error| format!("cannot write to stdout: {e}");
    if include {
        let mut head = format!("HTTP/1.1 {}\r\n", response.status_line());
        for (name, value) in response.headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).map_err(write_error)?;
    }
    let status = response.status();
    let body = response.body_mut();
    while let Some(chunk) = body.next_chunk() {
        out.write_all(&chunk).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    let broke_contract = body.outcome().is_some_and(|o| !o.violations.is_empty());
    Ok(if broke_contract {
        EXIT_CONTRACT
    } else if (200..400).contains(&status) {
        EXIT_SUCCESS
    } else {
        EXIT_FAILURE
    })
}

fn build_request(args: &CallArgs) -> Result<Request, String> {
    let body = match (&args.data, &args.data_file) {
        (Some(data), _) => Some(data.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read the body from stdin: {e}"))?;
            Some(bytes)
        }
        (None, Some(path)) => Some(
            std::fs::read(path)
                .map_err(|e| format!("cannot read the body from {}: {e}", path.display()))?,
        ),
        (None, None) => None,
    };
    let method = match (&args.method, &body) {
        (Some(method), _) => method.clone(),
        (None, Some(_)) => "POST".to_owned(),
        (None, None) => "GET".to_owned(),
    };
    let mut request = Request::new(&method, &args.target);
    let mut has_content_type = false;
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("invalid header {header:?}: expected 'Name: value'"))?;
        has_content_type |= name.trim().eq_ignore_ascii_case("content-type");
        request = request.header(name.trim(), value.trim());
    }
    if let Some(body) = body {
        if args.data.is_some() && !has_content_type {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        request = request.body(body);
    }
    Ok(request)
}
