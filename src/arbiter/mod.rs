//! The arbiter (master process), with Gunicorn's semantics: it binds the
//! listeners, forks workers that share them, and keeps the right number
//! alive: replacing dead or silent ones, reloading on HUP, resizing on
//! TTIN/TTOU, stopping gracefully on TERM. It never runs Python requests.

mod observability;
mod plan;
mod preloaders;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::log;
use crate::metrics::endpoint::MetricsEndpoint;
use crate::metrics::lifecycle::{ExitReason, Lifecycle};
use crate::metrics::statsd::{self, Statsd};
use crate::net::listener::Listener;
use crate::preload::messages::ForkOrder;
use crate::process;
use crate::python::hooks::{HookArg, HookRunner, ServerFacts, WorkerFacts};
use crate::sandbox::PrivateTmp;
use crate::sandbox::memory::ResidentMemory;
use crate::scoreboard::SharedSlot;
use crate::scoreboard::counters::MetricsBoard;
use crate::scoreboard::heartbeat::{Heartbeats, MAX_SLOTS};
use crate::scoreboard::load_board::LoadBoard;
use crate::signals::SignalPipe;
use crate::startup::ServerError;
use crate::worker::run::{EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR, WorkerSpec, run_worker};
use plan::{BOOT_BACKOFF, MAX_BOOT_FAILURES, WorkerView};

/// Signals the arbiter handles (Gunicorn's table, see README).
const ARBITER_SIGNALS: [libc::c_int; 9] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGCHLD,
    libc::SIGWINCH,
];
/// How long the arbiter sleeps between checks when no signal arrives.
const TICK: Duration = Duration::from_millis(250);
struct Worker {
    slot: usize,
    generation: u64,
    /// How many workers were started before this one (Gunicorn's `age`).
    age: u64,
    started: Instant,
    /// When it was told to stop (SIGTERM), if it was.
    retiring: Option<Instant>,
    /// When it was sent SIGABRT for a timeout, if it was.
    aborted: Option<Instant>,
    /// Why the arbiter stopped it, if it did (for the exit metrics).
    stop_cause: Option<ExitReason>,
    /// Under `--sandbox`: its temporary directory, removed once the worker
    /// has ended (with `--preload`, once every worker of its generation has).
    _private_tmp: Option<Arc<PrivateTmp>>,
}

/// Why the arbiter stopped running workers.
enum Halt {
    Stop {
        graceful: bool,
    },
    BootFailure {
        pid: libc::pid_t,
        code: i32,
        /// "worker" or "preloading process".
        who: &'static str,
    },
    /// [`MAX_BOOT_FAILURES`] workers in a row died before booting.
    RepeatedBootFailure,
}

pub struct Arbiter {
    config: Config,
    listeners: Vec<Listener>,
    /// `--certfile`: read again on `HUP` for the new workers.
    tls: Option<Arc<rustls::ServerConfig>>,
    heartbeats: Heartbeats,
    load_board: LoadBoard,
    signals: SignalPipe,
    workers: HashMap<libc::pid_t, Worker>,
    target: usize,
    generation: u64,
    uid: Option<u32>,
    gid: Option<u32>,
    /// `--initgroups`: the workers' supplementary groups.
    groups: Option<Vec<u32>>,
    /// Workers started so far.
    spawned: u64,
    /// The configuration file's arbiter hooks, when it defines any.
    hooks: Option<HookRunner>,
    /// Workers in a row that died before booting, and when the next may be
    /// started (growing delays: no fork loop).
    boot_failures: u32,
    next_spawn: Option<Instant>,
    /// `--metrics-bind`: the counters workers keep, and the listener.
    metrics: Option<MetricsBoard>,
    endpoint: Option<MetricsEndpoint>,
    lifecycle: Lifecycle,
    /// SIGTERM, SIGINT or SIGQUIT arrived: readiness fails from here on.
    stopping: bool,
    /// The worker count last sent as statsd's `gunicorn.workers`.
    reported_workers: Option<usize>,
    /// `--preload`: the processes workers are forked from.
    preloaders: preloaders::Preloaders,
}

/// The user, group and supplementary groups workers switch to.
struct Identity {
    uid: Option<u32>,
    gid: Option<u32>,
    /// `--initgroups`.
    groups: Option<Vec<u32>>,
}

impl Identity {
    fn of_workers(config: &Config) -> Result<Identity, ServerError> {
        let uid = config
            .user
            .as_deref()
            .map(|u| process::resolve_id(u, Path::new("/etc/passwd")))
            .transpose()
            .map_err(ServerError::Account)?;
        let gid = match (config.group.as_deref(), config.user.as_deref()) {
            (Some(group), _) => Some(
                process::resolve_id(group, Path::new("/etc/group"))
                    .map_err(ServerError::Account)?,
            ),
            // The user's own primary group, as su and nginx take it; Gunicorn
            // keeps the arbiter's, which is root's when it starts as root.
            // A uid missing from /etc/passwd keeps the arbiter's group.
            (None, Some(user)) => process::user_entry(user, Path::new("/etc/passwd"))
                .ok()
                .map(|(_, primary)| primary),
            (None, None) => None,
        };
        let groups = match (config.initgroups, config.user.as_deref()) {
            (false, _) => None,
            (true, None) => {
                return Err(ServerError::Setting("--initgroups needs --user".to_owned()));
            }
            (true, Some(user)) => {
                let (name, primary) = process::user_entry(user, Path::new("/etc/passwd"))
                    .map_err(ServerError::Account)?;
                let gid = gid.unwrap_or(primary);
                Some(
                    process::supplementary_groups(&name, gid, Path::new("/etc/group"))
                        .map_err(ServerError::Account)?,
                )
            }
        };
        Ok(Identity { uid, gid, groups })
    }
}

/// `--metrics-bind`: the counters workers keep, and the listener.
fn metrics_endpoint(
    config: &Config,
) -> Result<(Option<MetricsBoard>, Option<MetricsEndpoint>), ServerError> {
    let Some(address) = &config.metrics_bind else {
        return Ok((None, None));
    };
    let endpoint = MetricsEndpoint::bind(address)
        .map_err(|error| ServerError::Setting(format!("--metrics-bind {address}: {error}")))?;
    if let Ok(bound) = endpoint.local_addr() {
        log::info(&format!("Metrics and health at: http://{bound}/metrics"));
    }
    let board = MetricsBoard::new().map_err(ServerError::Io)?;
    Ok((Some(board), Some(endpoint)))
}

impl Arbiter {
    pub fn new(
        config: Config,
        listeners: Vec<Listener>,
        tls: Option<Arc<rustls::ServerConfig>>,
        hooks: Option<HookRunner>,
    ) -> Result<Arbiter, ServerError> {
        let Identity { uid, gid, groups } = Identity::of_workers(&config)?;
        let heartbeats = Heartbeats::new().map_err(ServerError::Io)?;
        let load_board = LoadBoard::new().map_err(ServerError::Io)?;
        let signals = SignalPipe::install(&ARBITER_SIGNALS).map_err(ServerError::Io)?;
        let (metrics, endpoint) = metrics_endpoint(&config)?;
        if let Some(host) = &config.statsd_host {
            let client = Statsd::connect(host, &config.statsd_prefix, &config.dogstatsd_tags)
                .map_err(ServerError::Statsd)?;
            statsd::install(client);
        }
        Ok(Arbiter {
            target: config.workers as usize,
            config,
            listeners,
            tls,
            heartbeats,
            load_board,
            signals,
            workers: HashMap::new(),
            generation: 0,
            uid,
            gid,
            groups,
            spawned: 0,
            hooks,
            boot_failures: 0,
            next_spawn: None,
            metrics,
            endpoint,
            lifecycle: Lifecycle::default(),
            stopping: false,
            reported_workers: None,
            preloaders: Default::default(),
        })
    }

    /// `--name` (or ferrocorn) and the role, e.g. `shop-work`.
    fn process_name(&self, role: &str) -> String {
        format!(
            "{}-{role}",
            self.config.proc_name.as_deref().unwrap_or("ferrocorn")
        )
    }

    /// Calls an arbiter hook with the `server` argument first.
    fn hook(&self, name: &'static str, mut args: Vec<HookArg>) {
        if let Some(hooks) = &self.hooks {
            let server = ServerFacts {
                pid: std::process::id(),
                num_workers: self.target,
                addresses: self.listeners.iter().map(Listener::describe).collect(),
            };
            args.insert(0, HookArg::Server(server));
            hooks.call(name, args);
        }
    }

    /// The `worker` argument of a hook.
    fn worker_facts(pid: libc::pid_t, age: u64) -> HookArg {
        HookArg::Worker(WorkerFacts {
            pid: pid.max(0) as u32,
            ppid: std::process::id(),
            age,
        })
    }

    /// Runs until stopped; `Err` when a worker could not boot.
    pub fn run(&mut self) -> Result<(), ServerError> {
        process::set_process_name(&self.process_name("main"));
        log::info(&format!(
            "Arbiter running (pid: {}), {} workers",
            std::process::id(),
            self.target
        ));
        if self.config.preload {
            // Workers forked by a preloading process (and then orphaned) are
            // re-parented to the arbiter: it waits for them as for its own.
            if let Err(error) = process::become_subreaper() {
                log::error(&format!("--preload: {error}"));
                return Err(ServerError::Io(error));
            }
        }
        self.hook("when_ready", Vec::new());
        let halt = self.supervise();
        let result = match halt {
            Halt::Stop { graceful } => {
                self.stop_workers(graceful);
                Ok(())
            }
            Halt::BootFailure { pid, code, who } => {
                self.stop_workers(false);
                let (reason, error) = if code == EXIT_APP_LOAD_ERROR {
                    ("App failed to load", ServerError::AppFailedToLoad)
                } else {
                    ("Worker failed to boot", ServerError::WorkerBoot)
                };
                log::info(&format!(
                    "Shutting down: Master. Reason: {reason} ({who} {pid})"
                ));
                Err(error)
            }
            Halt::RepeatedBootFailure => {
                self.stop_workers(false);
                log::info(&format!(
                    "Shutting down: Master. Reason: Worker failed to boot {MAX_BOOT_FAILURES} times in a row"
                ));
                Err(ServerError::WorkerBoot)
            }
        };
        self.hook("on_exit", Vec::new());
        result
    }

    fn supervise(&mut self) -> Halt {
        // After SIGTERM with --shutdown-delay: when the graceful stop begins.
        let mut stop_at: Option<Instant> = None;
        loop {
            for signal in self.signals.drain() {
                match signal {
                    libc::SIGTERM => {
                        let delay = Duration::from_secs(self.config.shutdown_delay);
                        if stop_at.is_some() || delay.is_zero() {
                            self.stopping = true;
                            return Halt::Stop { graceful: true };
                        }
                        log::info(&format!(
                            "Handling signal: term. Not ready from now on; stopping gracefully in {} s (--shutdown-delay)",
                            delay.as_secs()
                        ));
                        self.stopping = true;
                        stop_at = Some(Instant::now() + delay);
                    }
                    libc::SIGINT | libc::SIGQUIT => {
                        self.stopping = true;
                        return Halt::Stop { graceful: false };
                    }
                    libc::SIGHUP if self.stopping => {
                        log::info("Hang up ignored: the server is stopping");
                    }
                    libc::SIGHUP => {
                        log::info(
                            "Hang up: Master. Starting new workers, then retiring the old ones",
                        );
                        self.generation += 1;
                        self.reload_tls();
                        self.hook("on_reload", Vec::new());
                    }
                    libc::SIGTTIN | libc::SIGTTOU => {
                        let old = self.target;
                        self.target = if signal == libc::SIGTTIN {
                            (self.target + 1).min(MAX_SLOTS / 2)
                        } else {
                            self.target.saturating_sub(1).max(1)
                        };
                        log::info(&format!("Number of workers: {}", self.target));
                        if self.target != old {
                            let args =
                                vec![HookArg::Int(self.target as i64), HookArg::Int(old as i64)];
                            self.hook("nworkers_changed", args);
                        }
                    }
                    libc::SIGUSR1 => {
                        log::reopen();
                        self.signal_all(libc::SIGUSR1);
                        self.signal_preloaders(libc::SIGUSR1);
                    }
                    _ => {}
                }
            }
            self.read_preloader_reports();
            if let Some(halt) = self.reap() {
                return halt;
            }
            self.retire_oversized_workers();
            self.manage_workers();
            self.report_worker_count();
            let mut tick = TICK;
            if let Some(at) = stop_at {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Halt::Stop { graceful: true };
                }
                tick = tick.min(left);
            }
            self.wait(tick);
        }
    }

    /// `HUP`: the certificate and key read again for the new generation; a
    /// pair that does not load leaves the current one in use.
    fn reload_tls(&mut self) {
        if self.tls.is_none() {
            return;
        }
        match crate::startup::load_tls(&self.config) {
            Ok(Some(reloaded)) => {
                log::info("TLS certificate and key read again for the new workers");
                self.tls = Some(reloaded);
            }
            Ok(None) => {}
            Err(error) => {
                log::error(&format!(
                    "{error}: the new workers keep the certificate already loaded"
                ));
            }
        }
    }

    /// Collects ended workers; a worker that never booted halts the arbiter.
    fn reap(&mut self) -> Option<Halt> {
        while let Some((pid, status)) = process::reap() {
            if let Some(outcome) = self.preloader_ended(pid, status) {
                if outcome.is_some() {
                    return outcome;
                }
                continue;
            }
            let Some((worker, booted)) = self.worker_ended(pid, status) else {
                continue;
            };
            let code = process::exit_code(status);
            if !booted {
                if let Some(code @ (EXIT_BOOT_ERROR | EXIT_APP_LOAD_ERROR)) = code {
                    log::error(&format!("Worker (pid:{pid}) failed to boot"));
                    return Some(Halt::BootFailure {
                        pid,
                        code,
                        who: "worker",
                    });
                }
                let timed_out = worker.stop_cause == Some(ExitReason::BootFailure);
                if worker.retiring.is_none() || timed_out {
                    if let Some(halt) = self.boot_failed(pid, status) {
                        return Some(halt);
                    }
                    continue;
                }
            }
            let how = process::describe_exit(status);
            if worker.retiring.is_some() || code == Some(0) {
                log::info(&format!("Worker (pid:{pid}) {how}"));
            } else {
                log::error(&format!("Worker (pid:{pid}) {how}; starting a replacement"));
            }
        }
        None
    }

    /// The one path for a reaped worker: its load slot freed, its exit
    /// counted, the `child_exit` hook called. Returns it and whether it had
    /// booted; `None` if `pid` was not a worker.
    fn worker_ended(&mut self, pid: libc::pid_t, status: libc::c_int) -> Option<(Worker, bool)> {
        let worker = self.workers.remove(&pid)?;
        let booted = self.heartbeats.booted(worker.slot);
        self.load_board.vacate(worker.slot);
        self.record_exit(&worker, Some(status));
        self.hook("child_exit", vec![Self::worker_facts(pid, worker.age)]);
        Some((worker, booted))
    }

    /// A worker died before it booted: wait longer before the next one, and
    /// stop after [`MAX_BOOT_FAILURES`] in a row.
    fn boot_failed(&mut self, pid: libc::pid_t, status: libc::c_int) -> Option<Halt> {
        self.boot_failures += 1;
        let how = process::describe_exit(status);
        let Some(delay) = plan::boot_backoff(self.boot_failures) else {
            log::error(&format!(
                "Worker (pid:{pid}) {how} before it booted ({} in a row)",
                self.boot_failures
            ));
            return Some(Halt::RepeatedBootFailure);
        };
        log::error(&format!(
            "Worker (pid:{pid}) {how} before it booted ({} of {MAX_BOOT_FAILURES} in a row); starting another in {} ms",
            self.boot_failures,
            delay.as_millis()
        ));
        self.next_spawn = Some(Instant::now() + delay);
        None
    }

    /// `--max-worker-memory` with `--preload --sandbox`: a worker forked
    /// from the confined preloading process cannot open its own `/proc`
    /// entry, so the arbiter reads its resident size and retires it.
    fn retire_oversized_workers(&mut self) {
        let Some(limit) = self.config.worker_memory_limit() else {
            return;
        };
        if !(self.config.preload && self.config.sandbox) {
            return;
        }
        let oversized: Vec<(libc::pid_t, u64)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.retiring.is_none() && self.heartbeats.booted(w.slot))
            .filter_map(|(&pid, _)| {
                let resident = ResidentMemory::of_process(pid)
                    .and_then(|m| m.bytes())
                    .ok()?;
                (resident > limit).then_some((pid, resident))
            })
            .collect();
        for (pid, resident) in oversized {
            log::info(&format!(
                "Worker (pid:{pid}) retiring: {} MB resident, above --max-worker-memory {} MB",
                resident >> 20,
                limit >> 20
            ));
            self.retire(pid, Instant::now(), ExitReason::MemoryLimit);
        }
    }

    /// Starts, retires, aborts and kills workers as [`plan::plan`] says.
    fn manage_workers(&mut self) {
        let now = Instant::now();
        let views: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(&pid, w)| WorkerView {
                pid,
                generation: w.generation,
                started: w.started,
                booted: self.heartbeats.booted(w.slot),
                retiring: w.retiring,
                aborted: w.aborted,
                silence: Duration::from_millis(self.heartbeats.silence_ms(w.slot)),
            })
            .collect();
        let snapshot = plan::Snapshot {
            workers: &views,
            generation: self.generation,
            target: self.target,
            pending_forks: self.preloaders.pending_of(self.generation),
            preload: self
                .config
                .preload
                .then(|| self.preloaders.state(self.generation)),
            next_spawn: self.next_spawn,
            timeout: Duration::from_secs(self.config.timeout),
            graceful_timeout: Duration::from_secs(self.config.graceful_timeout),
        };
        let plan = plan::plan(&snapshot, now);
        self.carry_out(plan, now);
    }

    fn carry_out(&mut self, plan: plan::Plan, now: Instant) {
        if plan.booted {
            self.boot_failures = 0;
        }
        for pid in plan.abort {
            if plan.boot_timeouts.contains(&pid) {
                log::error(&format!(
                    "Worker (pid:{pid}) did not finish booting in {} s (--timeout): aborting it",
                    self.config.timeout
                ));
                self.stop(pid, now, ExitReason::BootFailure, libc::SIGABRT);
                continue;
            }
            // As Gunicorn: SIGABRT first (the worker's loop runs the
            // worker_abort hook and exits), SIGKILL if it is still there.
            log::critical(&format!("WORKER TIMEOUT (pid:{pid})"));
            self.stop(pid, now, ExitReason::Timeout, libc::SIGABRT);
        }
        for (pid, cause) in plan.retire {
            self.retire(pid, now, cause);
        }
        if plan.start_preloader {
            self.start_preloader();
        }
        if plan.clear_backoff {
            self.next_spawn = None;
        }
        for _ in 0..plan.spawn {
            self.spawn_worker();
        }
        if self.config.preload {
            self.tidy_preloaders();
        }
        for pid in plan.kill {
            process::send_signal(pid, libc::SIGKILL);
        }
    }

    fn retire(&mut self, pid: libc::pid_t, now: Instant, cause: ExitReason) {
        self.stop(pid, now, cause, libc::SIGTERM);
    }

    /// Tells a worker to stop with `signal` (TERM, or ABRT for a timeout).
    fn stop(&mut self, pid: libc::pid_t, now: Instant, cause: ExitReason, signal: libc::c_int) {
        if let Some(worker) = self.workers.get_mut(&pid) {
            worker.retiring = Some(now);
            worker.stop_cause = Some(cause);
            if signal == libc::SIGABRT {
                worker.aborted = Some(now);
            }
            process::send_signal(pid, signal);
        }
    }

    fn spawn_worker(&mut self) {
        let mut used: Vec<usize> = self.workers.values().map(|w| w.slot).collect();
        used.extend(self.preloaders.pending.keys());
        let Some(slot) = (0..MAX_SLOTS).find(|s| !used.contains(s)) else {
            log::error("no free worker slot");
            return;
        };
        self.heartbeats.start(slot);
        self.load_board.start(slot);
        if let Some(metrics) = &self.metrics {
            metrics.start(slot);
        }
        let max_requests = self.max_requests_for(slot);
        let arbiter_pid = std::process::id() as libc::pid_t;
        let age = self.spawned;
        self.spawned += 1;
        self.hook("pre_fork", vec![Self::worker_facts(0, age)]);
        if self.config.preload {
            let order = ForkOrder {
                slot,
                age,
                max_requests,
                num_workers: self.target,
            };
            if !self.order_fork(order) {
                self.next_spawn = Some(Instant::now() + BOOT_BACKOFF);
            }
            return;
        }
        let Ok(private_tmp) = self.private_tmp_for("a worker") else {
            return;
        };
        let result = process::fork(|| {
            let listeners = match self.enter_child("work", arbiter_pid) {
                Ok(listeners) => listeners,
                Err(code) => return code,
            };
            let spec = WorkerSpec {
                listeners,
                slot: Some(SharedSlot {
                    beat: self.heartbeats.worker(slot),
                    load: self.load_board.worker(slot),
                    metrics: self.metrics.as_ref().map(|board| board.worker(slot)),
                }),
                max_requests,
                multiprocess: self.target > 1,
                age,
                num_workers: self.target,
                private_tmp: private_tmp.as_ref().map(|tmp| tmp.path().to_owned()),
                tls: self.tls.clone(),
            };
            run_worker(&self.config, spec)
        });
        match result {
            Ok(pid) => {
                let worker = Worker {
                    slot,
                    generation: self.generation,
                    age,
                    started: Instant::now(),
                    retiring: None,
                    aborted: None,
                    stop_cause: None,
                    _private_tmp: private_tmp,
                };
                self.workers.insert(pid, worker);
            }
            Err(error) => log::error(&format!("cannot fork a worker: {error}")),
        }
    }

    /// Under `--sandbox`: a private temporary directory for `whom`, owned by
    /// the workers' user (`Err` once the failure is logged); else none.
    fn private_tmp_for(&self, whom: &str) -> Result<Option<Arc<PrivateTmp>>, ()> {
        if !self.config.sandbox {
            return Ok(None);
        }
        match PrivateTmp::create(self.uid.map(|uid| (uid, self.gid.unwrap_or(0)))) {
            Ok(tmp) => Ok(Some(Arc::new(tmp))),
            Err(error) => {
                log::error(&format!(
                    "cannot create the temporary directory of {whom}: {error}"
                ));
                Err(())
            }
        }
    }

    /// In a child just forked from the arbiter (a worker or a preloading
    /// process): the arbiter's signal handlers and descriptors dropped, the
    /// process named for `role`, its user switched, set to die with the
    /// arbiter; then its copies of the listeners. `Err`: its exit code.
    fn enter_child(&self, role: &str, arbiter: libc::pid_t) -> Result<Vec<Listener>, i32> {
        crate::signals::reset(&ARBITER_SIGNALS);
        self.signals.close_in_child();
        if let Some(endpoint) = &self.endpoint {
            endpoint.close_in_child();
        }
        process::set_process_name(&self.process_name(role));
        if let Err(error) = process::switch_user(self.uid, self.gid, self.groups.as_deref()) {
            log::error(&format!("cannot switch user/group: {error}"));
            return Err(EXIT_BOOT_ERROR);
        }
        // After switching user: a credential change clears the death signal.
        if !process::follow_parent(arbiter) {
            return Err(0);
        }
        Listener::duplicate_all(&self.listeners).map_err(|error| {
            log::error(&format!("cannot share the listeners: {error}"));
            EXIT_BOOT_ERROR
        })
    }

    /// `--max-requests` plus a per-worker share of `--max-requests-jitter`.
    fn max_requests_for(&self, slot: usize) -> u64 {
        let (max, jitter) = (self.config.max_requests, self.config.max_requests_jitter);
        if max == 0 || jitter == 0 {
            return max;
        }
        // Spread without a random generator: clock nanoseconds mixed with the slot.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        max + (nanos ^ (slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) % (jitter + 1)
    }

    fn signal_all(&self, signal: libc::c_int) {
        for &pid in self.workers.keys() {
            process::send_signal(pid, signal);
        }
    }

    /// Stops every worker: TERM and up to the graceful timeout, or QUIT at once.
    fn stop_workers(&mut self, graceful: bool) {
        let (signal, allowed) = if graceful {
            log::info("Handling signal: term. Stopping workers gracefully");
            (
                libc::SIGTERM,
                Duration::from_secs(self.config.graceful_timeout),
            )
        } else {
            log::info("Stopping workers now");
            (libc::SIGQUIT, Duration::from_secs(1))
        };
        self.stop_preloaders();
        for worker in self.workers.values_mut() {
            worker.stop_cause.get_or_insert(ExitReason::Shutdown);
        }
        self.signal_all(signal);
        let deadline = Instant::now() + allowed;
        while !self.workers.is_empty() && Instant::now() < deadline {
            self.wait(Duration::from_millis(50));
            for signal in self.signals.drain() {
                if matches!(signal, libc::SIGINT | libc::SIGQUIT) {
                    self.signal_all(libc::SIGQUIT);
                }
            }
            while let Some((pid, status)) = process::reap() {
                if self.worker_ended(pid, status).is_some() {
                    log::info(&format!(
                        "Worker (pid:{pid}) {}",
                        process::describe_exit(status)
                    ));
                }
            }
        }
        self.signal_all(libc::SIGKILL);
        while !self.workers.is_empty() {
            let mut status = 0;
            // SAFETY: blocking waitpid for our own children, valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid <= 0 {
                break;
            }
            self.worker_ended(pid, status);
        }
    }

    /// Removes unix socket files and the pid file.
    pub fn clean_up(&self, pidfile: Option<&PathBuf>) {
        for listener in &self.listeners {
            listener.unlink();
        }
        if let Some(path) = pidfile {
            let _ = std::fs::remove_file(path);
        }
    }
}
