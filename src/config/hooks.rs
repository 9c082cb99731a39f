//! Gunicorn's server hooks: functions a configuration file defines, called
//! at points of the server's life.

/// Every hook name Gunicorn defines.
pub const HOOKS: &[&str] = &[
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
    "ssl_context",
];

/// Hooks called in the arbiter.
pub const ARBITER_HOOKS: &[&str] = &[
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "child_exit",
    "nworkers_changed",
    "on_exit",
];

/// Hooks called in a worker process, outside requests.
pub const WORKER_HOOKS: &[&str] = &[
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "worker_exit",
];

/// Hooks called around each request, in the interpreter serving it.
pub const REQUEST_HOOKS: &[&str] = &["pre_request", "post_request"];
