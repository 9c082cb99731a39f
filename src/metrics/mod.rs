//! Observability: from the counters the workers keep in memory shared with
//! the arbiter ([`crate::scoreboard::counters`]), the arbiter's `--metrics-bind` endpoint with
//! `/metrics`, `/livez` and `/readyz` ([`endpoint`], [`exposition`],
//! [`health`]), and Gunicorn's statsd instrumentation ([`statsd`]).

pub mod backlog;
pub mod endpoint;
pub mod exposition;
pub mod health;
pub mod lifecycle;
pub mod statsd;
