//! Gunicorn's setting names: how each maps to a ferrocorn setting, and the
//! ones ferrocorn refuses, with why. One table, used for config files,
//! `GUNICORN_CMD_ARGS` and the command line alike.

/// Gunicorn names whose ferrocorn setting (the `Config` field) is named
/// differently; every other Gunicorn setting ferrocorn has shares its name.
pub const RENAMED: &[(&str, &str)] = &[
    ("wsgi_app", "app"),
    ("accesslog", "access_logfile"),
    ("access_log_format", "access_logformat"),
    ("errorlog", "error_logfile"),
    ("loglevel", "log_level"),
    ("keepalive", "keep_alive"),
    ("preload_app", "preload"),
    ("proxy_allow_ips", "proxy_allow_from"),
    ("reload_extra_files", "reload_extra_file"),
];

/// The `Config` field a Gunicorn setting name refers to.
pub fn field_for(name: &str) -> &str {
    RENAMED
        .iter()
        .find(|(gunicorn, _)| *gunicorn == name)
        .map_or(name, |(_, field)| field)
}

/// The Gunicorn name of a `Config` field.
pub fn name_for(field: &str) -> &str {
    RENAMED
        .iter()
        .find(|(_, ours)| *ours == field)
        .map_or(field, |(gunicorn, _)| gunicorn)
}

/// A Gunicorn setting ferrocorn refuses: its config-file name, its
/// command-line flags, and why.
pub struct Unsupported {
    pub name: &'static str,
    pub flags: &'static [&'static str],
    pub reason: &'static str,
}

const LOGGING: &str = "ferrocorn logs to files or stderr/stdout only (--error-logfile, --access-logfile); collect them with journald, a container runtime or a log shipper";

/// Every Gunicorn setting ferrocorn does not have.
pub const UNSUPPORTED: &[Unsupported] = &[
    Unsupported {
        name: "ssl_context",
        flags: &[],
        reason: "TLS is configured by --certfile, --keyfile, --ca-certs, --cert-reqs, --ciphers and --ssl-protocol-min, not by a Python SSLContext (ferrocorn's TLS is rustls, not the ssl module)",
    },
    Unsupported {
        name: "daemon",
        flags: &["-D", "--daemon"],
        reason: "ferrocorn stays in the foreground: run it under systemd, a container runtime or a supervisor",
    },
    Unsupported {
        name: "worker_tmp_dir",
        flags: &["--worker-tmp-dir"],
        reason: "workers report liveness through shared memory, not temporary files",
    },
    Unsupported {
        name: "tmp_upload_dir",
        flags: &[],
        reason: "large request bodies go to unlinked temporary files in $TMPDIR (see --body-spill-size)",
    },
    Unsupported {
        name: "sendfile",
        flags: &[],
        reason: "responses are written from the app's bytes (wsgi.file_wrapper streams files in blocks); --no-sendfile is accepted",
    },
    Unsupported {
        name: "logger_class",
        flags: &["--logger-class"],
        reason: LOGGING,
    },
    Unsupported {
        name: "logconfig",
        flags: &["--log-config"],
        reason: LOGGING,
    },
    Unsupported {
        name: "logconfig_dict",
        flags: &[],
        reason: LOGGING,
    },
    Unsupported {
        name: "logconfig_json",
        flags: &["--log-config-json"],
        reason: LOGGING,
    },
    Unsupported {
        name: "syslog",
        flags: &["--log-syslog"],
        reason: LOGGING,
    },
    Unsupported {
        name: "syslog_addr",
        flags: &["--log-syslog-to"],
        reason: LOGGING,
    },
    Unsupported {
        name: "syslog_prefix",
        flags: &["--log-syslog-prefix"],
        reason: LOGGING,
    },
    Unsupported {
        name: "syslog_facility",
        flags: &["--log-syslog-facility"],
        reason: LOGGING,
    },
    Unsupported {
        name: "disable_redirect_access_to_syslog",
        flags: &["--disable-redirect-access-to-syslog"],
        reason: LOGGING,
    },
    Unsupported {
        name: "enable_stdio_inheritance",
        flags: &["-R", "--enable-stdio-inheritance"],
        reason: LOGGING,
    },
    Unsupported {
        name: "default_proc_name",
        flags: &[],
        reason: "a framework integration's setting: set proc_name (--name) instead",
    },
    Unsupported {
        name: "paste",
        flags: &["--paste", "--paster"],
        reason: "PasteDeploy is not supported: name the app as MODULE:NAME",
    },
    Unsupported {
        name: "raw_paste_global_conf",
        flags: &["--paste-global"],
        reason: "PasteDeploy is not supported: name the app as MODULE:NAME",
    },
    Unsupported {
        name: "reload_engine",
        flags: &["--reload-engine"],
        reason: "--reload polls file modification times; there is no other engine",
    },
    Unsupported {
        name: "spew",
        flags: &["--spew"],
        reason: "tracing every executed line is not supported",
    },
    Unsupported {
        name: "pre_exec",
        flags: &[],
        reason: "binary upgrades by re-exec (USR2) are not supported: restart through systemd socket activation instead",
    },
    Unsupported {
        name: "forwarder_headers",
        flags: &["--forwarder-headers"],
        reason: "use --root-path for SCRIPT_NAME; PATH_INFO always comes from the request",
    },
];

/// What `worker_class` may be: ferrocorn's one model covers both.
pub const WORKER_CLASSES: &[&str] = &["sync", "gthread"];

/// Why any other worker class is refused.
pub const WORKER_CLASS_REASON: &str = "ferrocorn has one worker model: an event loop holds every connection (slow clients never hold an interpreter) and --threads interpreter threads run the app, which covers sync and gthread; gevent/eventlet/tornado/asyncio workers need C extensions or an async app";

/// The entry for a config-file name.
pub fn unsupported_name(name: &str) -> Option<&'static Unsupported> {
    UNSUPPORTED.iter().find(|u| u.name == name)
}

/// The entry for a command-line word (`--certfile` or `--certfile=x`).
pub fn unsupported_flag(word: &str) -> Option<&'static Unsupported> {
    let flag = word.split('=').next().unwrap_or(word);
    UNSUPPORTED.iter().find(|u| u.flags.contains(&flag))
}
