//! The settings a worker's connections share, taken from the [`Config`].

use std::sync::Arc;
use std::time::Duration;

use super::MinRate;
use crate::config::Config;
use crate::http::forwarded::{AddressList, SchemeHeaders};
use crate::http::rules::HeadRules;
use crate::scoreboard::counters::WorkerMetrics;

/// Settings the connections of a worker share.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub limits: HeadRules,
    /// Idle time allowed between requests; zero disables keep-alive.
    pub keep_alive: Duration,
    /// Time a client may stall while sending a request, or while we wait to write.
    pub read_timeout: Duration,
    /// `--min-request-rate`: the least a request must average while it arrives.
    pub min_rate: MinRate,
    /// Bodies larger than this go to a temporary file.
    pub spill_at: usize,
    pub proxy: Arc<ProxySettings>,
    /// With `--metrics-bind`: where the worker counts what it does.
    pub metrics: Option<WorkerMetrics>,
}

/// Whom the server believes about the client behind a proxy.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `--proxy-protocol`: a PROXY header may start each connection.
    pub protocol: bool,
    /// `--proxy-allow-from`: peers whose PROXY header is accepted.
    pub protocol_from: AddressList,
    /// `--forwarded-allow-ips`: peers whose scheme and forwarded-for headers count.
    pub forwarded_from: AddressList,
    /// `secure_scheme_headers`.
    pub scheme_headers: SchemeHeaders,
}

impl ConnectionSettings {
    /// The settings of `config`; `metrics` is the worker's to set.
    pub fn from_config(config: &Config) -> ConnectionSettings {
        ConnectionSettings {
            limits: config.head_limits(),
            keep_alive: Duration::from_secs(config.keep_alive),
            read_timeout: Duration::from_secs(config.read_timeout),
            min_rate: MinRate {
                bytes_per_second: config.min_request_rate,
                grace: Duration::from_secs(config.min_request_rate_grace),
            },
            spill_at: config.body_spill_size.min(usize::MAX as u64) as usize,
            proxy: Arc::new(ProxySettings {
                protocol: config.proxy_protocol,
                protocol_from: config.proxy_allow_from.clone(),
                forwarded_from: config.forwarded_allow_ips.clone(),
                scheme_headers: config.secure_scheme_headers.clone(),
            }),
            metrics: None,
        }
    }
}
