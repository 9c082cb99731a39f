//! `--preload`, the arbiter's side: one preloading process per generation
//! of the code (a new one on `HUP` or a `--reload` change), fork orders to
//! the current one, its reports read back. Workers it forks are children of
//! the arbiter (a child subreaper) and are supervised as any other. A
//! preloading process that dies is started again with growing delays; one
//! whose import fails ends the server at start, and after a reload leaves
//! the previous generation serving.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::{BOOT_BACKOFF, MAX_BOOT_FAILURES, PreloadState};
use super::{Arbiter, Halt, Worker};
use crate::log;
use crate::preload::messages::{self, ForkOrder, Report};
use crate::preload::{Preload, WorkerTemplate, run_preloader};
use crate::process;
use crate::sandbox::PrivateTmp;
use crate::scoreboard::SharedSlot;
use crate::scoreboard::heartbeat::MAX_SLOTS;
use crate::worker::run::{EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR};

/// How long an ordered fork may go unreported before its slot is freed.
const FORK_REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait before a failed preloading process is started again.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(8);

/// A preloading process.
pub(super) struct Preloader {
    pub(super) pid: libc::pid_t,
    pub(super) generation: u64,
    channel: UnixDatagram,
    /// It has imported the app and takes orders.
    ready: bool,
    /// Told to exit (its generation has no workers left).
    retiring: bool,
    /// Under `--sandbox`: the temporary directory its workers share.
    private_tmp: Option<Arc<PrivateTmp>>,
}

/// A fork ordered and not yet reported.
pub(super) struct PendingFork {
    generation: u64,
    age: u64,
    ordered: Instant,
    private_tmp: Option<Arc<PrivateTmp>>,
}

/// The preloading processes and their state, in the arbiter.
#[derive(Default)]
pub(super) struct Preloaders {
    pub(super) running: Vec<Preloader>,
    /// By slot.
    pub(super) pending: HashMap<usize, PendingFork>,
    /// Preloading processes in a row that ended unexpectedly.
    failures: u32,
    next_start: Option<Instant>,
    /// Some preloading process has loaded the app (after that a failed
    /// import no longer stops the server).
    ever_ready: bool,
}

impl Preloaders {
    pub(super) fn state(&self, generation: u64) -> PreloadState {
        match self
            .running
            .iter()
            .find(|p| p.generation == generation && !p.retiring)
        {
            Some(p) if p.ready => PreloadState::Ready,
            Some(_) => PreloadState::Loading,
            None => PreloadState::Missing,
        }
    }

    /// The channels to wait on.
    pub(super) fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) {
        fds.extend(self.running.iter().map(|p| libc::pollfd {
            fd: p.channel.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
    }

    /// Pending forks of `generation` (they count as booting workers).
    pub(super) fn pending_of(&self, generation: u64) -> usize {
        self.pending
            .values()
            .filter(|p| p.generation == generation)
            .count()
    }
}

impl Arbiter {
    /// Starts the preloading process of the current generation.
    pub(super) fn start_preloader(&mut self) {
        if self
            .preloaders
            .next_start
            .is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        self.preloaders.next_start = None;
        let (ours, theirs) = match UnixDatagram::pair().and_then(|(ours, theirs)| {
            ours.set_nonblocking(true)?;
            Ok((ours, theirs))
        }) {
            Ok(pair) => pair,
            Err(error) => {
                log::error(&format!("cannot start a preloading process: {error}"));
                return;
            }
        };
        let Ok(private_tmp) = self.private_tmp_for("a preloading process") else {
            return;
        };
        let arbiter = std::process::id() as libc::pid_t;
        let tmp_path = private_tmp.as_ref().map(|tmp| tmp.path().to_owned());
        let result = process::fork(|| {
            // The arbiter's ends: an app importing here must not read other
            // processes' reports or order forks of another generation.
            for fd in self
                .preloaders
                .running
                .iter()
                .map(|p| p.channel.as_raw_fd())
                .chain([ours.as_raw_fd()])
            {
                // SAFETY: closing this process's copies of descriptors it
                // never uses; the values owning them are never dropped here
                // (the child ends with process::exit).
                unsafe {
                    libc::close(fd);
                }
            }
            let listeners = match self.enter_child("load", arbiter) {
                Ok(listeners) => listeners,
                Err(code) => return code,
            };
            let slots = (0..MAX_SLOTS)
                .map(|slot| SharedSlot {
                    beat: self.heartbeats.worker(slot),
                    load: self.load_board.worker(slot),
                    metrics: self.metrics.as_ref().map(|board| board.worker(slot)),
                })
                .collect();
            let preload = Preload {
                channel: theirs,
                signals: None,
                arbiter,
                template: WorkerTemplate {
                    listeners,
                    slots,
                    tls: self.tls.clone(),
                    private_tmp: tmp_path,
                },
            };
            run_preloader(&self.config, preload)
        });
        match result {
            Ok(pid) => self.preloaders.running.push(Preloader {
                pid,
                generation: self.generation,
                channel: ours,
                ready: false,
                retiring: false,
                private_tmp,
            }),
            Err(error) => log::error(&format!("cannot fork a preloading process: {error}")),
        }
    }

    /// Orders the current generation's preloading process to fork the
    /// worker for `slot`.
    pub(super) fn order_fork(&mut self, order: ForkOrder) -> bool {
        let Some(preloader) = self
            .preloaders
            .running
            .iter()
            .find(|p| p.generation == self.generation && p.ready && !p.retiring)
        else {
            return false;
        };
        if let Err(error) = messages::send(&preloader.channel, &order.encode()) {
            log::error(&format!(
                "cannot order a fork from the preloading process: {error}"
            ));
            return false;
        }
        let pending = PendingFork {
            generation: preloader.generation,
            age: order.age,
            ordered: Instant::now(),
            private_tmp: preloader.private_tmp.clone(),
        };
        self.preloaders.pending.insert(order.slot, pending);
        true
    }

    /// Reads what the preloading processes reported (before reaping, so a
    /// worker's pid is known before its exit can be collected).
    pub(super) fn read_preloader_reports(&mut self) {
        let mut reports = Vec::new();
        for preloader in &self.preloaders.running {
            while let Ok(Some(text)) = messages::receive(&preloader.channel) {
                match Report::decode(&text) {
                    Some(report) => reports.push((preloader.pid, preloader.generation, report)),
                    None => log::error(&format!(
                        "preloading process (pid:{}): unknown report {text:?}",
                        preloader.pid
                    )),
                }
            }
        }
        for (from, generation, report) in reports {
            self.take_report(from, generation, report);
        }
    }

    fn take_report(&mut self, from: libc::pid_t, generation: u64, report: Report) {
        match report {
            Report::Ready => {
                if let Some(p) = self.preloaders.running.iter_mut().find(|p| p.pid == from) {
                    p.ready = true;
                }
                self.preloaders.ever_ready = true;
                self.preloaders.failures = 0;
                log::info(&format!(
                    "Preloaded the app (pid: {from}, generation {generation})"
                ));
            }
            Report::Forked { slot, pid } => {
                let pending = self.preloaders.pending.remove(&slot);
                match pending {
                    Some(pending) if is_child(pid) && !self.workers.contains_key(&pid) => {
                        let worker = Worker {
                            slot,
                            generation: pending.generation,
                            age: pending.age,
                            started: pending.ordered,
                            retiring: None,
                            aborted: None,
                            stop_cause: None,
                            _private_tmp: pending.private_tmp,
                        };
                        self.workers.insert(pid, worker);
                    }
                    _ => {
                        log::error(&format!(
                            "preloading process (pid:{from}) reported a worker the arbiter did not order (slot {slot}, pid {pid})"
                        ));
                        if is_child(pid) && !self.workers.contains_key(&pid) {
                            process::send_signal(pid, libc::SIGKILL);
                        }
                    }
                }
            }
            Report::ForkFailed { slot, reason } => {
                self.preloaders.pending.remove(&slot);
                log::error(&format!(
                    "preloading process (pid:{from}) could not fork a worker: {reason}"
                ));
                self.next_spawn = Some(Instant::now() + BOOT_BACKOFF);
            }
            Report::CodeChanged { path } => {
                if generation == self.generation && !self.stopping {
                    log::info(&format!(
                        "--reload: {path} changed; preloading the new code"
                    ));
                    self.generation += 1;
                }
            }
        }
    }

    /// A reaped child that was a preloading process: what follows from its
    /// end, `None` if it was not one.
    pub(super) fn preloader_ended(
        &mut self,
        pid: libc::pid_t,
        status: libc::c_int,
    ) -> Option<Option<Halt>> {
        let index = self.preloaders.running.iter().position(|p| p.pid == pid)?;
        let preloader = self.preloaders.running.remove(index);
        let generation = preloader.generation;
        self.preloaders
            .pending
            .retain(|_, pending| pending.generation != generation);
        if preloader.retiring || self.stopping {
            return Some(None);
        }
        let how = process::describe_exit(status);
        if generation != self.generation {
            log::info(&format!("Preloading process (pid:{pid}) {how}"));
            return Some(None);
        }
        let code = process::exit_code(status);
        if !preloader.ready {
            if !self.preloaders.ever_ready {
                log::error(&format!("Preloading process (pid:{pid}) {how}"));
                let code = code.unwrap_or(EXIT_BOOT_ERROR);
                return Some(Some(Halt::BootFailure {
                    pid,
                    code,
                    who: "preloading process",
                }));
            }
            let previous = self
                .preloaders
                .running
                .iter()
                .filter(|p| p.ready && !p.retiring && p.generation < generation)
                .map(|p| p.generation)
                .max();
            if let Some(previous) = previous {
                let what = match code {
                    Some(code @ (EXIT_APP_LOAD_ERROR | EXIT_BOOT_ERROR)) => {
                        format!("the new code failed to load (exit status {code})")
                    }
                    _ => format!("its preloading process (pid:{pid}) {how}"),
                };
                log::error(&format!(
                    "Reload failed: {what}; the workers of the previous code go on serving"
                ));
                self.generation = previous;
                return Some(None);
            }
        }
        self.preloaders.failures += 1;
        let serving = !self.workers.is_empty();
        if !serving && self.preloaders.failures >= MAX_BOOT_FAILURES {
            log::error(&format!(
                "Preloading process (pid:{pid}) {how} ({} in a row, no worker left)",
                self.preloaders.failures
            ));
            return Some(Some(Halt::RepeatedBootFailure));
        }
        let delay =
            (BOOT_BACKOFF * 2u32.pow(self.preloaders.failures.min(6) - 1)).min(MAX_RESTART_DELAY);
        log::error(&format!(
            "Preloading process (pid:{pid}) {how}; starting another in {} ms (the workers go on serving)",
            delay.as_millis()
        ));
        self.preloaders.next_start = Some(Instant::now() + delay);
        Some(None)
    }

    /// Retires the preloading processes of past generations once none of
    /// their workers is left, and forgets fork orders never reported.
    pub(super) fn tidy_preloaders(&mut self) {
        let now = Instant::now();
        let stale: Vec<usize> = self
            .preloaders
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.ordered) > FORK_REPORT_TIMEOUT)
            .map(|(&slot, _)| slot)
            .collect();
        for slot in stale {
            log::error(&format!(
                "the preloading process did not report the worker for slot {slot}; ordering another"
            ));
            self.preloaders.pending.remove(&slot);
        }
        let generation = self.generation;
        for preloader in &mut self.preloaders.running {
            let old = preloader.generation != generation;
            let in_use = self
                .workers
                .values()
                .any(|w| w.generation == preloader.generation)
                || self
                    .preloaders
                    .pending
                    .values()
                    .any(|p| p.generation == preloader.generation);
            if old && !in_use && !preloader.retiring {
                preloader.retiring = true;
                process::send_signal(preloader.pid, libc::SIGTERM);
            }
        }
    }

    /// Sends `signal` to every preloading process (`USR1`: reopen the logs).
    pub(super) fn signal_preloaders(&self, signal: libc::c_int) {
        for preloader in &self.preloaders.running {
            process::send_signal(preloader.pid, signal);
        }
    }

    /// Stops every preloading process at once and waits for them.
    pub(super) fn stop_preloaders(&mut self) {
        for preloader in &self.preloaders.running {
            process::send_signal(preloader.pid, libc::SIGKILL);
        }
        for preloader in self.preloaders.running.drain(..) {
            // SAFETY: waiting for our own child just killed; null status allowed.
            unsafe {
                libc::waitpid(preloader.pid, std::ptr::null_mut(), 0);
            }
        }
        self.preloaders.pending.clear();
    }
}

/// Whether `pid` is a child of this process (a report naming another
/// process is refused: the preloading process runs the app's code).
fn is_child(pid: libc::pid_t) -> bool {
    // SAFETY: waitid with WNOWAIT only queries; the siginfo is a valid
    // out-pointer. ECHILD means `pid` is not our child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        ) == 0
    }
}
