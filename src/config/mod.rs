//! Every setting, declared once: its flag (Gunicorn's name), default and doc.
//! `--help`, parsing, configuration files and the README's flag table all
//! come from here; `sources` layers them in Gunicorn's order.

pub mod connect_rule;
mod file;
pub mod gunicorn;
pub mod hooks;
pub mod sources;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::http::forwarded::{AddressList, SchemeHeaders};
use crate::http::rules::{HeadRules, Leniency, UnderscoreHeaders};
use crate::log::Level;
use crate::net::listener::BindAddress;

/// A Gunicorn-compatible WSGI server with a Python interpreter inside.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrocorn",
    version,
    about,
    max_term_width = 100,
    after_help = "ferrocorn help [SUBCOMMAND] prints this, or the subcommand's help.\nTo run one request through the app in-process instead of serving:\n  ferrocorn call APP_MODULE PATH_AND_QUERY [OPTIONS]\n  ferrocorn call --help\nTo run Python code (tests, management commands, scripts) as python would:\n  ferrocorn run [OPTIONS] (-c CODE | -m MODULE | SCRIPT | -) [ARGS]...\n  ferrocorn run --help\nTo write one executable holding the app, its wheels and these settings:\n  ferrocorn bundle -o OUTPUT [--exclude PATTERN]... [OPTIONS] APP_MODULE\n  ferrocorn bundle --help\nTo ask a running server whether it is live or ready (container health checks):\n  ferrocorn healthcheck [--metrics-bind ADDRESS] [--ready]"
)]
pub struct Config {
    /// The WSGI app: MODULE, MODULE:NAME or MODULE:FACTORY(ARGS).
    #[arg(value_name = "APP_MODULE")]
    pub app: String,

    /// Addresses to listen on (`--bind`; see its `--help` text). Empty means
    /// the default, see [`Config::binds`].
    #[arg(
        short = 'b',
        long = "bind",
        value_name = "ADDRESS",
        help = "Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat to listen on several. Default: 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set"
    )]
    pub bind: Vec<BindAddress>,

    /// Worker processes.
    #[arg(short = 'w', long, env = "WEB_CONCURRENCY", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,

    /// Interpreter threads per worker, each with its own Python interpreter.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Change to this directory before loading the app; it goes first on sys.path.
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Comma-separated directories, .zip or .whl files to add to sys.path
    /// (after the working directory).
    #[arg(long, value_name = "PATHS")]
    pub pythonpath: Option<String>,

    /// Seconds to wait for the next request on a kept-alive connection (0 disables keep-alive).
    #[arg(long = "keep-alive", default_value_t = 2, value_name = "SECONDS")]
    pub keep_alive: u64,

    /// Seconds a client may stall while sending a request before it gets 408.
    #[arg(long = "read-timeout", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout: u64,

    /// Bytes per second a request (head and body) must average from its
    /// first byte, once the grace is over, or it gets 408 (Kestrel's
    /// MinRequestBodyDataRate); 0 disables.
    #[arg(long = "min-request-rate", default_value_t = 240, value_name = "BYTES")]
    pub min_request_rate: u64,

    /// Seconds from a request's first byte before --min-request-rate applies.
    #[arg(
        long = "min-request-rate-grace",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub min_request_rate_grace: u64,

    /// Seconds a worker may go without progress (a request running longer
    /// counts) before the arbiter kills and replaces it; 0 disables.
    #[arg(short = 't', long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,

    /// Requests a worker serves before it is gracefully replaced (0: never).
    #[arg(long = "max-requests", default_value_t = 0, value_name = "COUNT")]
    pub max_requests: u64,

    /// Up to this many extra requests, chosen per worker, so workers do not all restart at once.
    #[arg(
        long = "max-requests-jitter",
        default_value_t = 0,
        value_name = "COUNT"
    )]
    pub max_requests_jitter: u64,

    /// Load the app in the arbiter before forking: a broken app stops the
    /// server before any worker starts (see README for what it saves).
    #[arg(long)]
    pub preload: bool,

    /// Set SO_REUSEPORT on TCP listeners.
    #[arg(long = "reuse-port")]
    pub reuse_port: bool,

    /// Write the arbiter's pid to this file (removed on exit).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Run workers as this user (name or uid).
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Give workers the supplementary groups --user belongs to in /etc/group
    /// (plus --group); otherwise they have none.
    #[arg(long)]
    pub initgroups: bool,

    /// Run workers as this group (name or gid).
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// File mode mask for files the server creates, e.g. 0o007 or 007.
    #[arg(short = 'm', long, value_name = "MASK", value_parser = parse_umask)]
    pub umask: Option<u32>,

    /// Access log file, `-` for stdout (off unless set).
    #[arg(long = "access-logfile", value_name = "FILE")]
    pub access_logfile: Option<PathBuf>,

    /// Access log format (Gunicorn's atoms: h l u t r s b f a m U q H B T D M L p {header}i {header}o).
    #[arg(long = "access-logformat", value_name = "FORMAT",
          default_value = crate::access_log::DEFAULT_FORMAT)]
    pub access_logformat: crate::access_log::AccessFormat,

    /// Error log file, `-` for stderr.
    #[arg(long = "error-logfile", alias = "log-file", value_name = "FILE")]
    pub error_logfile: Option<PathBuf>,

    /// Send the app's stdout and stderr (print, logging) to the error log file.
    #[arg(long = "capture-output")]
    pub capture_output: bool,

    /// Seconds to let requests in flight finish after SIGTERM.
    #[arg(
        long = "graceful-timeout",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub graceful_timeout: u64,

    /// Longest request line in bytes; 0 lifts the limit (as in Gunicorn) to
    /// 65536, the most ferrocorn reads for one line. Values above Gunicorn's
    /// 8190 cap are honoured.
    #[arg(long = "limit-request-line", default_value_t = 4094, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(0..=65536))]
    pub limit_request_line: u64,

    /// Most header fields in a request (0 means 32768, the largest allowed).
    #[arg(long = "limit-request-fields", default_value_t = 100, value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(0..=32768))]
    pub limit_request_fields: u64,

    /// Longest header line in bytes, its CRLF included; 0 lifts the limit
    /// (as in Gunicorn) to 65536.
    #[arg(
        long = "limit-request-field_size",
        alias = "limit-request-field-size",
        default_value_t = 8190,
        value_name = "BYTES"
    )]
    pub limit_request_field_size: u64,

    /// Largest request body in bytes; larger ones get 413 (0: no limit).
    #[arg(long = "limit-request-body", default_value_t = 1 << 30, value_name = "BYTES")]
    pub limit_request_body: u64,

    /// Request bodies larger than this are kept in a temporary file, not in memory.
    #[arg(long = "body-spill-size", default_value_t = 1 << 20, value_name = "BYTES")]
    pub body_spill_size: u64,

    /// Most simultaneous client connections per worker.
    #[arg(long = "worker-connections", default_value_t = 1000, value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_connections: u64,

    /// Length of the listen queue.
    #[arg(long, default_value_t = 2048, value_name = "COUNT")]
    pub backlog: i32,

    /// Error log level: debug, info, warning, error or critical.
    #[arg(long = "log-level", default_value = "info", value_name = "LEVEL")]
    pub log_level: Level,

    /// Accept whitespace between a header name and its colon, and strip it
    /// (request smuggling risk: only behind a proxy that normalises headers).
    #[arg(long = "strip-header-spaces")]
    pub strip_header_spaces: bool,

    /// Accept any token as a method (lower-case letters, `#`, any length).
    #[arg(long = "permit-unconventional-http-method")]
    pub permit_unconventional_http_method: bool,

    /// Upper-case the method before the app sees it.
    #[arg(long = "casefold-http-method")]
    pub casefold_http_method: bool,

    /// Join obsolete folded header lines (RFC 9112 §5.2) instead of refusing them.
    #[arg(long = "permit-obsolete-folding")]
    pub permit_obsolete_folding: bool,

    /// Header names with `_`: drop them, refuse the request (400), or pass
    /// them to the app, where they may shadow a `-` header (dangerous).
    #[arg(
        long = "header-map",
        value_enum,
        default_value = "drop",
        value_name = "MODE"
    )]
    pub header_map: UnderscoreHeaders,

    /// Addresses (IPs, CIDR networks, or `*`) of proxies whose
    /// X-Forwarded-Proto/-Ssl/-Protocol, X-Forwarded-For and Forwarded
    /// headers are believed (wsgi.url_scheme, REMOTE_ADDR).
    #[arg(
        long = "forwarded-allow-ips",
        env = "FORWARDED_ALLOW_IPS",
        default_value = "127.0.0.1,::1",
        value_name = "ADDRESSES"
    )]
    pub forwarded_allow_ips: AddressList,

    /// Headers that tell https from a trusted proxy, NAME=VALUE,... (Gunicorn's secure_scheme_headers).
    #[arg(
        long = "secure-scheme-headers",
        value_name = "HEADERS",
        default_value = "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on"
    )]
    pub secure_scheme_headers: SchemeHeaders,

    /// Accept a PROXY protocol header (v1 or v2) at the start of connections
    /// from --proxy-allow-from: its client address becomes REMOTE_ADDR.
    #[arg(long = "proxy-protocol")]
    pub proxy_protocol: bool,

    /// Addresses (IPs, CIDR networks, or `*`) allowed to send a PROXY header.
    #[arg(
        long = "proxy-allow-from",
        default_value = "127.0.0.1,::1",
        value_name = "ADDRESSES"
    )]
    pub proxy_allow_from: AddressList,

    /// The URL prefix the app is mounted under, e.g. /app: it becomes
    /// SCRIPT_NAME and is removed from the start of PATH_INFO.
    #[arg(long = "root-path", env = "SCRIPT_NAME", value_name = "PATH",
          value_parser = parse_root_path)]
    pub root_path: Option<String>,

    /// Restart workers when a source file of the app changes (development).
    #[arg(long)]
    pub reload: bool,

    /// Another file whose change restarts workers with --reload; repeatable.
    #[arg(long = "reload-extra-file", value_name = "FILE")]
    pub reload_extra_file: Vec<PathBuf>,

    /// Process name prefix: the arbiter is NAME-main and workers NAME-work in
    /// ps -e, top and pgrep (the kernel keeps 15 bytes). Default: ferrocorn.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub proc_name: Option<String>,

    /// Gunicorn's --no-sendfile, accepted: ferrocorn never uses sendfile.
    #[arg(long = "no-sendfile", hide = true)]
    pub no_sendfile: bool,

    /// Configuration file, executed as Python as Gunicorn does: a path or
    /// python:MODULE. Default: ./gunicorn.conf.py when it exists.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<String>,

    /// Check the configuration and load the app, then exit (status 0 if both work).
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Print every setting's value, load the app, then exit.
    #[arg(long = "print-config")]
    pub print_config: bool,

    /// Set an environment variable for the app, KEY=VALUE; repeatable (Gunicorn's raw_env).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub raw_env: Vec<String>,

    /// Gunicorn's worker class: sync or gthread, both served by ferrocorn's
    /// event loop and interpreter threads (set their number with --threads).
    #[arg(
        short = 'k',
        long = "worker-class",
        default_value = "sync",
        value_name = "CLASS"
    )]
    pub worker_class: String,

    /// Server hooks the configuration file defines (filled when it is read).
    #[arg(skip)]
    pub hooks: Vec<String>,

    /// Every setting by its Gunicorn name, as text (`--print-config`, the hooks' `cfg`).
    #[arg(skip)]
    pub settings_text: Vec<(String, String)>,

    /// Check every request's use of WSGI against PEP 3333 and log each
    /// violation (for development and tests: slower).
    #[arg(long = "check-wsgi")]
    pub check_wsgi: bool,

    /// Confine the app to what the --allow-* settings open (deny by
    /// default), enforced by the kernel: Landlock and seccomp (README "Sandbox").
    #[arg(long)]
    pub sandbox: bool,

    /// With --sandbox: a file or directory (and everything below it) the app may read; repeatable.
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,

    /// With --sandbox: a file or directory (and everything below it) the app
    /// may write, create and remove in (and read); repeatable.
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,

    /// With `--sandbox`: outbound TCP the app may open (`--allow-connect`;
    /// see its `--help` text).
    #[arg(
        long = "allow-connect",
        value_name = "[HOST:]PORT",
        help = "With --sandbox: outbound TCP the app may open, PORT (any host) or HOST:PORT ([IPV6]:PORT); repeatable. Names are resolved when a worker starts"
    )]
    pub allow_connect: Vec<crate::config::connect_rule::ConnectRule>,

    /// With --sandbox: an environment variable the app may see (others are
    /// removed before it loads; -e/raw_env ones stay); repeatable.
    #[arg(long = "allow-env", value_name = "NAME")]
    pub allow_env: Vec<String>,

    /// With --sandbox: the app may start programs (exec, fork); they stay in the sandbox.
    #[arg(long = "allow-subprocess")]
    pub allow_subprocess: bool,

    /// With --sandbox: ctypes may be imported (it can read and write the
    /// worker's memory, but not leave the kernel's rules).
    #[arg(long = "allow-ffi")]
    pub allow_ffi: bool,

    /// A module the app may not import (any route: import, importlib,
    /// __import__): ImportError naming the policy; repeatable.
    #[arg(long = "deny-module", value_name = "NAME")]
    pub deny_module: Vec<String>,

    /// Seconds a request may run in the app before it is interrupted (an
    /// exception raised in Python) and answered 503; 0: no limit.
    #[arg(long = "request-timeout", default_value_t = 0.0, value_name = "SECONDS",
          value_parser = parse_request_timeout)]
    pub request_timeout: f64,

    /// Megabytes of resident memory above which a worker is replaced
    /// gracefully (checked after each request); the kernel stops its data
    /// from growing past twice that. 0: no limit.
    #[arg(long = "max-worker-memory", default_value_t = 0, value_name = "MB")]
    pub max_worker_memory: u64,

    /// PEM certificate (chain) to serve TLS with on every TCP bind; its key
    /// comes from --keyfile, or from this file when that is not set.
    #[arg(long, value_name = "FILE")]
    pub certfile: Option<PathBuf>,

    /// PEM private key of --certfile: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), not
    /// encrypted. Read by the arbiter; workers and the app never open it.
    #[arg(long, value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

    /// PEM CA certificates that client certificates are verified against
    /// (mutual TLS, with --cert-reqs).
    #[arg(long = "ca-certs", value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: 0/none, 1/optional (verified if presented) or
    /// 2/required (Gunicorn's cert_reqs; not none needs --ca-certs).
    #[arg(long = "cert-reqs", default_value = "0", value_name = "MODE")]
    pub cert_reqs: crate::tls::ClientCerts,

    /// TLS 1.2 cipher suites, an OpenSSL cipher list (names or tags such as
    /// ECDHE+AESGCM, `!` to exclude); TLS 1.3 suites stay on unless named.
    /// Default: every suite rustls offers (all AEAD with forward secrecy).
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,

    /// Lowest TLS version offered: tls1.2 or tls1.3 (the highest is 1.3).
    #[arg(
        long = "ssl-protocol-min",
        default_value = "tls1.2",
        value_name = "VERSION"
    )]
    pub ssl_protocol_min: crate::tls::MinVersion,

    /// Gunicorn's ssl_version, accepted and logged as having no effect (see --ssl-protocol-min).
    #[arg(long = "ssl-version", value_name = "VERSION")]
    pub ssl_version: Option<String>,

    /// Gunicorn's do_handshake_on_connect, accepted with no effect: the
    /// event loop always does the handshake before reading a request.
    #[arg(long = "do-handshake-on-connect")]
    pub do_handshake_on_connect: bool,

    /// Gunicorn's suppress_ragged_eofs, accepted with no effect: a TLS
    /// client that closes without close_notify is always taken as done.
    #[arg(long = "suppress-ragged-eofs")]
    pub suppress_ragged_eofs: bool,

    /// Serve /metrics (Prometheus), /livez and /readyz on this HOST:PORT, from
    /// the arbiter: never behind the app's requests, never seen by the app.
    #[arg(long = "metrics-bind", value_name = "ADDRESS")]
    pub metrics_bind: Option<String>,

    /// Seconds between SIGTERM and the graceful stop, serving on while
    /// /readyz answers 503 (for a load balancer to take the server out).
    #[arg(long = "shutdown-delay", default_value_t = 0, value_name = "SECONDS")]
    pub shutdown_delay: u64,

    /// Send Gunicorn's statsd metrics to HOST:PORT (UDP; port 8125 if omitted)
    /// or unix:PATH (a datagram socket).
    #[arg(long = "statsd-host", value_name = "ADDRESS")]
    pub statsd_host: Option<String>,

    /// Prefix of every statsd metric name (a dot is added).
    #[arg(long = "statsd-prefix", default_value = "", value_name = "PREFIX")]
    pub statsd_prefix: String,

    /// DogStatsD tags for every statsd metric, comma-separated (e.g. env:prod,app:shop).
    #[arg(long = "dogstatsd-tags", default_value = "", value_name = "TAGS")]
    pub dogstatsd_tags: String,

    /// Rust modules the app can import (library use; see
    /// [`NativeModule`](crate::python::native::NativeModule)).
    #[arg(skip)]
    pub native_modules: Vec<crate::python::native::NativeModule>,
}

/// Why the settings were refused.
#[derive(Debug)]
pub enum ConfigError {
    /// A flag or value the command line (or `GUNICORN_CMD_ARGS`, or a
    /// configuration file) gave is invalid; also `--help` and `--version`.
    Clap(clap::Error),
    /// A Gunicorn setting ferrocorn does not have.
    Unsupported {
        /// Gunicorn's name for it.
        setting: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// The configuration file could not be read or executed.
    File(String),
    /// A setting's value cannot be used (the message names it).
    Setting(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Clap(error) => {
                let rendered = error.render().to_string();
                f.write_str(
                    rendered
                        .lines()
                        .next()
                        .unwrap_or("invalid settings")
                        .trim_start_matches("error: "),
                )
            }
            ConfigError::Unsupported { setting, reason } => write!(
                f,
                "the Gunicorn setting {setting} is not supported by ferrocorn: {reason}"
            ),
            ConfigError::File(message) | ConfigError::Setting(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Clap(error) => Some(error),
            _ => None,
        }
    }
}

/// What a `limit_request_line`/`limit_request_field_size` of 0 (Gunicorn's
/// "no limit") means here: a line must still fit what is buffered for it.
const LIFTED_LINE_LIMIT: u64 = 65536;

fn parse_env_pair(value: &str) -> Result<String, String> {
    match value.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(value.to_owned()),
        _ => Err(format!(
            "invalid environment setting {value:?}: expected KEY=VALUE"
        )),
    }
}

fn parse_request_timeout(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if Duration::try_from_secs_f64(seconds).is_ok() => Ok(seconds),
        _ => Err(format!(
            "invalid request timeout {value:?}: expected seconds, 0 or more"
        )),
    }
}

fn parse_root_path(value: &str) -> Result<String, String> {
    let trimmed = value.trim_end_matches('/');
    if !value.is_empty() && !value.starts_with('/') {
        return Err(format!("invalid root path {value:?}: it must start with /"));
    }
    Ok(trimmed.to_owned())
}

fn parse_umask(value: &str) -> Result<u32, String> {
    let digits = value.trim_start_matches("0o").trim_start_matches("0O");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| format!("invalid umask {value:?}: expected an octal mode such as 0o022"))
}

/// The server's command as every settings source is parsed with (APP_MODULE
/// optional): for reading a bundle's baked-in words.
pub(crate) fn command_for_bundles() -> clap::Command {
    sources::command()
}

impl Config {
    /// `--max-worker-memory` in bytes; `None` without a limit.
    pub fn worker_memory_limit(&self) -> Option<u64> {
        (self.max_worker_memory > 0).then(|| self.max_worker_memory.saturating_mul(1 << 20))
    }

    /// The defaults for serving `app` (`MODULE:NAME`), as if it were the only
    /// command-line argument; `WEB_CONCURRENCY` is not consulted (the other
    /// variables the command reads, `FORWARDED_ALLOW_IPS` and `SCRIPT_NAME`,
    /// are). Change the public fields to set anything else.
    ///
    /// Fails when one of those variables holds a value the flag it stands
    /// for would refuse (`FORWARDED_ALLOW_IPS=not-an-address`).
    pub fn new(app: &str) -> Result<Config, ConfigError> {
        // An explicit --workers keeps the environment out; after `--` any
        // string is the positional APP_MODULE.
        Config::try_parse_from(["ferrocorn", "--workers", "1", "--", app])
            .map_err(ConfigError::Clap)
    }

    /// Settings from command-line words (without the program name), checked
    /// as the `ferrocorn` command checks its flags, with the environment
    /// variables that give defaults; configuration files and
    /// `GUNICORN_CMD_ARGS` are not read (set fields instead).
    ///
    /// ```
    /// let config = ferrocorn::Config::from_args(["--threads", "4", "app:application"]).unwrap();
    /// assert_eq!(config.threads, 4);
    /// ```
    pub fn from_args<I, S>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let words = std::iter::once(std::ffi::OsString::from("ferrocorn"))
            .chain(args.into_iter().map(Into::into));
        Config::try_parse_from(words).map_err(ConfigError::Clap)
    }

    /// Library use: where `sys.path` starts: `chdir` made absolute, else the
    /// working directory. The process's working directory is left alone.
    pub(crate) fn library_base_dir(&self) -> std::io::Result<PathBuf> {
        match &self.chdir {
            Some(dir) => std::path::absolute(dir),
            None => std::env::current_dir(),
        }
    }

    /// Where hooks come from: the configuration file, when it defines any.
    pub(crate) fn hook_source(&self) -> Option<crate::python::hooks::HookSource> {
        let source = self.config.as_ref().filter(|_| !self.hooks.is_empty())?;
        let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
        Some(crate::python::hooks::HookSource {
            source: source.clone(),
            settings: self.settings_text.clone(),
            sys_path: self.sys_path(&working_dir),
        })
    }

    /// The TLS settings, when --certfile is set.
    pub fn tls_settings(&self) -> Result<Option<crate::tls::TlsSettings>, ConfigError> {
        let Some(certfile) = &self.certfile else {
            return match self.keyfile {
                Some(_) => Err(ConfigError::Setting(
                    "--keyfile needs --certfile (the certificate it belongs to)".to_owned(),
                )),
                None => Ok(None),
            };
        };
        Ok(Some(crate::tls::TlsSettings {
            certfile: certfile.clone(),
            keyfile: self.keyfile.clone().unwrap_or_else(|| certfile.clone()),
            ca_certs: self.ca_certs.clone(),
            client_certs: self.cert_reqs,
            ciphers: self.ciphers.clone(),
            min_version: self.ssl_protocol_min,
        }))
    }

    /// The bind addresses, with Gunicorn's default when none was given.
    pub fn binds(&self) -> Vec<BindAddress> {
        if !self.bind.is_empty() {
            return self.bind.clone();
        }
        let default = match std::env::var("PORT") {
            Ok(port) if !port.is_empty() => format!("0.0.0.0:{port}"),
            _ => "127.0.0.1:8000".to_owned(),
        };
        default.parse().map(|a| vec![a]).unwrap_or_default()
    }

    pub(crate) fn head_limits(&self) -> HeadRules {
        let field_size = if self.limit_request_field_size == 0 {
            LIFTED_LINE_LIMIT
        } else {
            self.limit_request_field_size
        };
        HeadRules {
            request_line: if self.limit_request_line == 0 {
                LIFTED_LINE_LIMIT as usize
            } else {
                self.limit_request_line as usize
            },
            fields: if self.limit_request_fields == 0 {
                32768
            } else {
                self.limit_request_fields as usize
            },
            field_size: field_size as usize,
            body: self.limit_request_body,
            leniency: Leniency {
                strip_header_spaces: self.strip_header_spaces,
                permit_unconventional_method: self.permit_unconventional_http_method,
                casefold_method: self.casefold_http_method,
                permit_obsolete_folding: self.permit_obsolete_folding,
                underscore_headers: self.header_map,
            },
        }
    }

    /// The `--pythonpath` entries, relative ones taken from `working_dir`.
    pub(crate) fn pythonpath_entries(&self, working_dir: &std::path::Path) -> Vec<PathBuf> {
        let entries = self.pythonpath.iter().flat_map(|p| p.split(','));
        entries
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| working_dir.join(p))
            .collect()
    }

    /// `sys.path` for the app: the working directory, then `--pythonpath`,
    /// then `$PYTHONPATH`.
    pub fn sys_path(&self, working_dir: &std::path::Path) -> Vec<String> {
        let mut paths = vec![working_dir.display().to_string()];
        paths.extend(
            self.pythonpath_entries(working_dir)
                .iter()
                .map(|p| p.display().to_string()),
        );
        if let Some(env) = std::env::var_os("PYTHONPATH") {
            paths.extend(
                std::env::split_paths(&env)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| p.display().to_string()),
            );
        }
        paths
    }
}
