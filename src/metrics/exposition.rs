//! `GET /metrics`: one scrape's values in the OpenMetrics text format
//! (which Prometheus reads), written by `prometheus-client`'s encoder.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::lifecycle::{ExitReason, Lifecycle};
use crate::scoreboard::counters::{
    DURATION_BOUNDS_US, FAILURE_KINDS, METHODS, REJECT_STATUSES, STATUS_CLASSES, Totals,
};

/// The Content-Type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One worker as the arbiter sees it at the scrape.
#[derive(Debug, Clone)]
pub struct WorkerSample {
    pub slot: usize,
    pub pid: i32,
    pub state: WorkerState,
    /// Every interpreter has been on a request for a while: new clients go
    /// to its siblings (see `crate::scoreboard::load_board::STALL_MS`).
    pub stalled: bool,
    /// Resident memory (`/proc/PID/statm`), when it could be read.
    pub resident_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Forked, still importing the app.
    Booting,
    Serving,
    /// Told to stop, finishing its requests.
    Retiring,
}

impl WorkerState {
    const ALL: [WorkerState; 3] = [
        WorkerState::Booting,
        WorkerState::Serving,
        WorkerState::Retiring,
    ];

    fn label(self) -> &'static str {
        match self {
            WorkerState::Booting => "booting",
            WorkerState::Serving => "serving",
            WorkerState::Retiring => "retiring",
        }
    }
}

/// A listening socket's accept queue, as the kernel reports it.
#[derive(Debug, Clone)]
pub struct BacklogSample {
    pub listener: String,
    pub queued: u64,
    pub limit: u64,
}

/// Everything one scrape reports.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub totals: Totals,
    pub lifecycle: Lifecycle,
    pub workers: Vec<WorkerSample>,
    /// `--workers`, as TTIN/TTOU changed it.
    pub desired_workers: u64,
    pub backlogs: Vec<BacklogSample>,
    pub ready: bool,
}

/// The scrape as OpenMetrics text.
pub fn encode(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug
    // in a metric below, and leaves the text written so far.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

impl Collector for Scrape {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_requests(&self.totals, &mut out)?;
        encode_connections(&self.totals, &mut out)?;
        self.encode_workers(&mut out)?;
        self.encode_backlogs(&mut out)
    }
}

type Encoded = Result<(), std::fmt::Error>;

fn encode_requests(totals: &Totals, out: &mut DescriptorEncoder) -> Encoded {
    {
        let mut family = out.encode_descriptor(
            "ferrocorn_requests",
            "Requests the app answered, by method and status class.",
            None,
            MetricType::Counter,
        )?;
        for (m, method) in METHODS.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let labels = [("method", *method), ("status_class", *class)];
                ConstCounter::new(totals.requests(m, c)).encode(family.encode_family(&labels)?)?;
            }
        }
    }
    {
        let seconds = Unit::Seconds;
        let mut histogram = out.encode_descriptor(
            "ferrocorn_request_duration",
            "Time from a request's last byte received to the app's answer sent on.",
            Some(&seconds),
            MetricType::Histogram,
        )?;
        let buckets = totals.duration_buckets();
        let bounds = DURATION_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::MAX]);
        let pairs: Vec<(f64, u64)> = bounds.zip(buckets.iter().copied()).collect();
        histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            totals.duration_sum().as_secs_f64(),
            buckets.iter().fold(0u64, |sum, &n| sum.saturating_add(n)),
            &pairs,
            None,
        )?;
    }
    {
        let mut family = out.encode_descriptor(
                "ferrocorn_requests_rejected",
                "Requests the server answered itself (malformed, too large, too slow), by status; the app never saw them.",
                None,
                MetricType::Counter,
            )?;
        for (index, status) in REJECT_STATUSES.iter().enumerate() {
            let label = match status {
                0 => "other".to_owned(),
                s => s.to_string(),
            };
            ConstCounter::new(totals.rejected(index))
                .encode(family.encode_family(&[("status", label)])?)?;
        }
    }
    {
        let mut family = out.encode_descriptor(
                "ferrocorn_request_failures",
                "The app's requests that failed, by kind: the app raised, --request-timeout cut it, it broke the WSGI contract, or the server panicked.",
                None,
                MetricType::Counter,
            )?;
        for (index, kind) in FAILURE_KINDS.iter().enumerate() {
            ConstCounter::new(totals.failures(index))
                .encode(family.encode_family(&[("kind", *kind)])?)?;
        }
    }
    {
        let seconds = Unit::Seconds;
        let cpu = ConstCounter::new(totals.request_cpu().as_secs_f64());
        cpu.encode(out.encode_descriptor(
            "ferrocorn_request_cpu",
            "CPU time interpreter threads spent on the app's requests (hooks included).",
            Some(&seconds),
            MetricType::Counter,
        )?)?;
    }
    gauge(
        out,
        "ferrocorn_requests_in_flight",
        "Requests received and not yet answered by the app (queued or running).",
        totals.in_flight,
    )
}

fn encode_connections(totals: &Totals, out: &mut DescriptorEncoder) -> Encoded {
    gauge(
        out,
        "ferrocorn_connections_open",
        "Client connections the workers hold.",
        totals.connections_open,
    )?;
    gauge(
        out,
        "ferrocorn_connections_idle",
        "Client connections waiting between requests (keep-alive), sampled each second.",
        totals.connections_idle,
    )?;
    counter(
        out,
        "ferrocorn_connections_accepted",
        "Client connections accepted.",
        None,
        totals.accepted(),
    )?;
    counter(
        out,
        "ferrocorn_connections_shed",
        "Connections closed to make room at --worker-connections: idle ones, partial heads, then the slowest uploads.",
        None,
        totals.shed(),
    )?;
    counter(
        out,
        "ferrocorn_uploads_shed",
        "Of the connections shed, those whose request body was still arriving (answered 408).",
        None,
        totals.uploads_shed(),
    )?;
    counter(
        out,
        "ferrocorn_requests_below_min_rate",
        "Requests answered 408 for arriving slower than --min-request-rate.",
        None,
        totals.below_min_rate(),
    )?;
    counter(
        out,
        "ferrocorn_received",
        "Bytes read from clients (after TLS decryption).",
        Some(Unit::Bytes),
        totals.bytes_received(),
    )?;
    counter(
        out,
        "ferrocorn_sent",
        "Bytes written to clients (before TLS encryption).",
        Some(Unit::Bytes),
        totals.bytes_sent(),
    )?;
    counter(
        out,
        "ferrocorn_tls_handshake_failures",
        "TLS handshakes that failed or timed out.",
        None,
        totals.tls_handshake_failures(),
    )?;
    counter(
        out,
        "ferrocorn_requests_abandoned",
        "Requests never run: their connection was gone (reset by the client, or closed by a timeout) before an interpreter took them.",
        None,
        totals.abandoned(),
    )
}

impl Scrape {
    fn encode_workers(&self, out: &mut DescriptorEncoder) -> Encoded {
        counter(
            out,
            "ferrocorn_worker_boots",
            "Workers that imported the app and started serving.",
            None,
            self.lifecycle.boots,
        )?;
        {
            let mut family = out.encode_descriptor(
                "ferrocorn_worker_exits",
                "Workers that ended, by reason.",
                None,
                MetricType::Counter,
            )?;
            for reason in ExitReason::ALL {
                ConstCounter::new(self.lifecycle.exits(reason))
                    .encode(family.encode_family(&[("reason", reason.label())])?)?;
            }
        }
        {
            let mut family = out.encode_descriptor(
                "ferrocorn_workers",
                "Worker processes alive, by state.",
                None,
                MetricType::Gauge,
            )?;
            for state in WorkerState::ALL {
                let count = self.workers.iter().filter(|w| w.state == state).count() as u64;
                ConstGauge::new(count)
                    .encode(family.encode_family(&[("state", state.label())])?)?;
            }
        }
        gauge(
            out,
            "ferrocorn_workers_stalled",
            "Workers whose every interpreter has been on one request for 25 ms or more: new clients go to the others.",
            self.workers.iter().filter(|w| w.stalled).count() as u64,
        )?;
        gauge(
            out,
            "ferrocorn_workers_desired",
            "Workers the arbiter keeps (--workers, changed by TTIN and TTOU).",
            self.desired_workers,
        )?;
        gauge(
            out,
            "ferrocorn_ready",
            "1 while /readyz answers 200.",
            u64::from(self.ready),
        )?;
        self.encode_memory(out)
    }

    fn encode_memory(&self, out: &mut DescriptorEncoder) -> Encoded {
        {
            let bytes = Unit::Bytes;
            let mut family = out.encode_descriptor(
                "ferrocorn_worker_resident_memory",
                "Each worker's resident memory.",
                Some(&bytes),
                MetricType::Gauge,
            )?;
            for worker in &self.workers {
                if let Some(resident) = worker.resident_bytes {
                    let labels = [
                        ("worker", worker.slot.to_string()),
                        ("pid", worker.pid.to_string()),
                    ];
                    ConstGauge::new(resident).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn encode_backlogs(&self, out: &mut DescriptorEncoder) -> Encoded {
        type Value = fn(&BacklogSample) -> u64;
        let backlog_gauges: [(&str, &str, Value); 2] = [
            (
                "ferrocorn_listen_backlog",
                "Connections the kernel completed that no worker has accepted yet.",
                |b| b.queued,
            ),
            (
                "ferrocorn_listen_backlog_limit",
                "The most connections the kernel queues before it drops new ones (--backlog, capped by net.core.somaxconn).",
                |b| b.limit,
            ),
        ];
        for (name, help, value) in backlog_gauges {
            if self.backlogs.is_empty() {
                break;
            }
            let mut family = out.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for backlog in &self.backlogs {
                let labels = [("listener", backlog.listener.as_str())];
                ConstGauge::new(value(backlog)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn gauge(out: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Encoded {
    let metric = ConstGauge::new(value);
    metric.encode(out.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: u64,
) -> Encoded {
    let metric = ConstCounter::new(value);
    metric.encode(out.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::counters::MetricsBoard;

    fn scrape() -> Scrape {
        let board = MetricsBoard::new().unwrap();
        board.start(0);
        let worker = board.worker(0);
        worker.answered("POST", 201, std::time::Duration::from_millis(3));
        worker.failed("timeout");
        worker.spent_cpu(std::time::Duration::from_millis(250));
        worker.sent(42);
        let mut lifecycle = Lifecycle::default();
        lifecycle.booted();
        lifecycle.ended(ExitReason::MaxRequests);
        Scrape {
            totals: board.totals([0].into_iter()),
            lifecycle,
            workers: vec![WorkerSample {
                slot: 0,
                pid: 77,
                state: WorkerState::Serving,
                stalled: true,
                resident_bytes: Some(4096),
            }],
            desired_workers: 1,
            backlogs: vec![BacklogSample {
                listener: "127.0.0.1:8000".to_owned(),
                queued: 2,
                limit: 2048,
            }],
            ready: true,
        }
    }

    #[test]
    fn the_text_has_each_metric_with_prometheus_names_and_ends_with_eof() {
        let text = encode(scrape());
        for line in [
            "# TYPE ferrocorn_requests counter",
            "ferrocorn_requests_total{method=\"POST\",status_class=\"2xx\"} 1",
            "ferrocorn_requests_total{method=\"GET\",status_class=\"2xx\"} 0",
            "# TYPE ferrocorn_request_duration_seconds histogram",
            "ferrocorn_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "ferrocorn_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "ferrocorn_request_duration_seconds_bucket{le=\"+Inf\"} 1",
            "ferrocorn_request_duration_seconds_count 1",
            "ferrocorn_sent_bytes_total 42",
            "ferrocorn_worker_exits_total{reason=\"max_requests\"} 1",
            "ferrocorn_worker_boots_total 1",
            "ferrocorn_workers{state=\"serving\"} 1",
            "ferrocorn_workers_stalled 1",
            "ferrocorn_worker_resident_memory_bytes{worker=\"0\",pid=\"77\"} 4096",
            "ferrocorn_listen_backlog{listener=\"127.0.0.1:8000\"} 2",
            "ferrocorn_requests_rejected_total{status=\"431\"} 0",
            "ferrocorn_request_failures_total{kind=\"timeout\"} 1",
            "ferrocorn_request_cpu_seconds_total 0.25",
            "ferrocorn_request_failures_total{kind=\"panic\"} 0",
            "ferrocorn_ready 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
