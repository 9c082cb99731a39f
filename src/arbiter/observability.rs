//! The arbiter's side of `--metrics-bind` and statsd: it waits on the
//! endpoint with its signals, answers probes from its own view of the
//! workers, and counts how each worker ended.

use std::os::fd::AsRawFd;
use std::time::Duration;

use super::{Arbiter, Worker};
use crate::metrics::backlog::accept_queue;
use crate::metrics::endpoint::{Answer, Probe};
use crate::metrics::exposition::{self, BacklogSample, Scrape, WorkerSample, WorkerState};
use crate::metrics::health::{self, WorkerHealth};
use crate::metrics::lifecycle::ExitReason;
use crate::metrics::statsd;
use crate::process;
use crate::sandbox::memory::ResidentMemory;

/// The Content-Type of `/metrics` for a client that did not ask for
/// OpenMetrics (the text is valid in both formats).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Arbiter {
    /// Waits up to `timeout` for a signal or a preloading process's report,
    /// serving the metrics endpoint meanwhile (its clients never make the
    /// arbiter wait).
    pub(super) fn wait(&mut self, timeout: Duration) {
        let mut fds = vec![libc::pollfd {
            fd: self.signals.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        self.preloaders.poll_fds(&mut fds);
        let mut endpoint = self.endpoint.take();
        let mut timeout = timeout;
        if let Some(endpoint) = &endpoint {
            endpoint.poll_fds(&mut fds);
            timeout = endpoint.next_deadline().map_or(timeout, |d| d.min(timeout));
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the call.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis().clamp(1, i32::MAX as u128) as i32,
            );
        }
        if let Some(endpoint) = &mut endpoint {
            endpoint.serve(&mut |probe| self.answer(probe));
        }
        self.endpoint = endpoint;
    }

    fn answer(&self, probe: Probe) -> Answer {
        let verdict = match probe {
            Probe::Metrics { openmetrics } => {
                return Answer {
                    status: 200,
                    content_type: match openmetrics {
                        true => exposition::CONTENT_TYPE,
                        false => PROMETHEUS_TEXT,
                    },
                    body: exposition::encode(self.scrape()),
                };
            }
            Probe::Live => health::liveness(&self.worker_health(), self.timeout_ms()),
            Probe::Ready => self.readiness(),
        };
        match verdict {
            Ok(()) => Answer::text(200, "ok\n".to_owned()),
            Err(reason) => Answer::text(503, format!("{reason}\n")),
        }
    }

    fn timeout_ms(&self) -> Option<u64> {
        (self.config.timeout > 0).then(|| self.config.timeout * 1000)
    }

    fn readiness(&self) -> Result<(), health::Unhealthy> {
        health::readiness(self.stopping, &self.worker_health(), self.target)
    }

    fn worker_health(&self) -> Vec<WorkerHealth> {
        self.workers
            .iter()
            .map(|(&pid, worker)| WorkerHealth {
                pid,
                booted: self.heartbeats.booted(worker.slot),
                retiring: worker.retiring.is_some() && worker.aborted.is_none(),
                current: worker.generation == self.generation,
                silence_ms: self.heartbeats.silence_ms(worker.slot),
            })
            .collect()
    }

    fn scrape(&self) -> Scrape {
        let totals = match &self.metrics {
            Some(board) => board.totals(self.workers.values().map(|w| w.slot)),
            None => Default::default(),
        };
        let mut lifecycle = self.lifecycle.clone();
        let mut workers = Vec::with_capacity(self.workers.len());
        let now_ms = crate::scoreboard::heartbeat::now_ms();
        for (&pid, worker) in &self.workers {
            let booted = self.heartbeats.booted(worker.slot);
            if booted {
                lifecycle.booted();
            }
            let state = match (worker.retiring.is_some(), booted) {
                (true, _) => WorkerState::Retiring,
                (false, true) => WorkerState::Serving,
                (false, false) => WorkerState::Booting,
            };
            workers.push(WorkerSample {
                slot: worker.slot,
                pid,
                state,
                stalled: self.load_board.is_stalled(worker.slot, now_ms),
                resident_bytes: ResidentMemory::of_process(pid).and_then(|m| m.bytes()).ok(),
            });
        }
        workers.sort_by_key(|w| w.slot);
        let backlogs = self
            .listeners
            .iter()
            .filter_map(|listener| {
                let (queued, limit) = accept_queue(listener.as_raw_fd())?;
                Some(BacklogSample {
                    listener: listener.describe().replace("http://", ""),
                    queued,
                    limit,
                })
            })
            .collect();
        Scrape {
            totals,
            lifecycle,
            workers,
            desired_workers: self.target as u64,
            backlogs,
            ready: self.readiness().is_ok(),
        }
    }

    /// A worker has ended and was reaped: count how, and keep its counters.
    pub(super) fn record_exit(&mut self, worker: &Worker, status: Option<libc::c_int>) {
        let Some(board) = &mut self.metrics else {
            return;
        };
        let booted = self.heartbeats.booted(worker.slot);
        let clean = status.and_then(process::exit_code) == Some(0);
        let recorded = board.self_retirement(worker.slot);
        if booted {
            self.lifecycle.booted();
        }
        self.lifecycle.ended(ExitReason::classify(
            worker.stop_cause,
            recorded,
            booted,
            clean,
        ));
        board.fold(worker.slot);
    }

    /// statsd's `gunicorn.workers` gauge, sent when the count changes (as
    /// Gunicorn's arbiter does).
    pub(super) fn report_worker_count(&mut self) {
        let Some(client) = statsd::client() else {
            return;
        };
        let count = self.workers.len();
        if self.reported_workers != Some(count) {
            self.reported_workers = Some(count);
            client.gauge("gunicorn.workers", count as u64);
        }
    }
}
