//! What the arbiter does next about its workers, as a function of a snapshot
//! of them and the time: how many to start, which to retire (SIGTERM), which
//! to abort for silence (SIGABRT) and which to kill for overstaying
//! (SIGKILL). The arbiter takes the snapshot, asks, and carries it out.

use std::time::{Duration, Instant};

use crate::metrics::lifecycle::ExitReason;

/// Extra time a retiring worker gets past the graceful timeout before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long a timed-out worker has between SIGABRT and SIGKILL.
pub const ABORT_GRACE: Duration = Duration::from_secs(1);
/// Workers that may die before booting in a row (for any reason: a crash, a
/// signal, a write to a closed stderr) before the arbiter stops, as
/// Gunicorn stops on a boot error instead of forking in a loop.
pub const MAX_BOOT_FAILURES: u32 = 5;
/// The wait before the replacement of the first of them; it doubles each time.
pub const BOOT_BACKOFF: Duration = Duration::from_millis(250);

/// One worker as the arbiter sees it.
#[derive(Debug, Clone, Copy)]
pub struct WorkerView {
    pub pid: libc::pid_t,
    pub generation: u64,
    pub started: Instant,
    /// It has imported the app and serves.
    pub booted: bool,
    /// Since when it has been told to stop, if it has.
    pub retiring: Option<Instant>,
    /// Since when it has been aborted for a timeout, if it has.
    pub aborted: Option<Instant>,
    /// How long since its last heartbeat.
    pub silence: Duration,
}

/// Where the current generation's preloading process stands (`--preload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreloadState {
    Ready,
    Loading,
    Missing,
}

/// What the plan is made from.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub workers: &'a [WorkerView],
    /// The code's generation (one more per `HUP`).
    pub generation: u64,
    /// `--workers`, as TTIN/TTOU changed it.
    pub target: usize,
    /// Forks ordered from the current preloading process, not yet reported:
    /// they count as booting workers.
    pub pending_forks: usize,
    /// `--preload`: the current generation's preloading process; `None` without.
    pub preload: Option<PreloadState>,
    /// No worker may be started before this (boot failure backoff).
    pub next_spawn: Option<Instant>,
    /// `--timeout`; zero turns the silence check off.
    pub timeout: Duration,
    pub graceful_timeout: Duration,
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Workers to start.
    pub spawn: usize,
    /// The backoff is over: forget it.
    pub clear_backoff: bool,
    /// Start the current generation's preloading process.
    pub start_preloader: bool,
    /// Tell these to stop gracefully, for this reason.
    pub retire: Vec<(libc::pid_t, ExitReason)>,
    /// Silent past `--timeout`: SIGABRT (they count as retiring from now).
    pub abort: Vec<libc::pid_t>,
    /// Those of `abort` that never finished booting: a boot failure (the
    /// backoff and the stop rule apply), not a timeout of a serving worker.
    pub boot_timeouts: Vec<libc::pid_t>,
    /// Aborted past [`ABORT_GRACE`], or retiring past the graceful timeout
    /// and [`KILL_GRACE`].
    pub kill: Vec<libc::pid_t>,
    /// A worker of the current generation has booted: boot failures in a
    /// row start again from zero.
    pub booted: bool,
}

/// The plan for `snapshot` at `now`.
pub fn plan(snapshot: &Snapshot, now: Instant) -> Plan {
    let mut plan = Plan {
        abort: silent(snapshot),
        ..Plan::default()
    };
    plan.boot_timeouts = snapshot
        .workers
        .iter()
        .filter(|w| !w.booted && plan.abort.contains(&w.pid))
        .map(|w| w.pid)
        .collect();
    let mut current: Vec<&WorkerView> = snapshot
        .workers
        .iter()
        .filter(|w| w.generation == snapshot.generation && w.retiring.is_none())
        .filter(|w| !plan.abort.contains(&w.pid))
        .collect();
    current.sort_by_key(|w| w.started);
    let booted = current.iter().filter(|w| w.booted).count();
    plan.booted = booted > 0;
    // A worker aborted before it booted still counts until it is reaped:
    // its replacement waits for the boot failure's backoff.
    let failing_boot = snapshot
        .workers
        .iter()
        .filter(|w| w.generation == snapshot.generation && !w.booted)
        .filter(|w| w.aborted.is_some() || plan.boot_timeouts.contains(&w.pid))
        .count();
    let starting = current.len() + snapshot.pending_forks + failing_boot;
    let backoff_over = snapshot.next_spawn.is_none_or(|at| now >= at);
    plan.start_preloader = backoff_over && snapshot.preload == Some(PreloadState::Missing);
    let may_spawn = backoff_over && snapshot.preload.is_none_or(|p| p == PreloadState::Ready);
    if starting > snapshot.target {
        let excess = (starting - snapshot.target).min(current.len());
        let oldest = current[..excess].iter();
        plan.retire
            .extend(oldest.map(|w| (w.pid, ExitReason::ScaleDown)));
    } else if starting < snapshot.target && may_spawn {
        plan.clear_backoff = true;
        // Until one worker of a generation has booted, start no more: a
        // broken app then fails once, with one error, not N times. A
        // preloaded app has loaded already.
        plan.spawn = if booted == 0 && snapshot.preload.is_none() {
            usize::from(current.len() + failing_boot == 0)
        } else {
            snapshot.target - starting
        };
    }
    if booted >= snapshot.target {
        let old = snapshot
            .workers
            .iter()
            .filter(|w| w.generation < snapshot.generation && w.retiring.is_none())
            .filter(|w| !plan.abort.contains(&w.pid));
        plan.retire.extend(old.map(|w| (w.pid, ExitReason::Reload)));
    }
    plan.kill = overstaying(snapshot, now);
    plan
}

/// Gunicorn's "WORKER TIMEOUT": no heartbeat for `--timeout`.
fn silent(snapshot: &Snapshot) -> Vec<libc::pid_t> {
    if snapshot.timeout.is_zero() {
        return Vec::new();
    }
    snapshot
        .workers
        .iter()
        .filter(|w| w.retiring.is_none() && w.aborted.is_none())
        .filter(|w| w.silence > snapshot.timeout)
        .map(|w| w.pid)
        .collect()
}

fn overstaying(snapshot: &Snapshot, now: Instant) -> Vec<libc::pid_t> {
    let overdue = snapshot.graceful_timeout + KILL_GRACE;
    let past = |since: Option<Instant>, allowed: Duration| {
        since.is_some_and(|since| now.duration_since(since) > allowed)
    };
    snapshot
        .workers
        .iter()
        .filter(|w| past(w.aborted, ABORT_GRACE) || past(w.retiring, overdue))
        .map(|w| w.pid)
        .collect()
}

/// After `failures` workers in a row died before booting: how long to wait
/// before the next, or `None` to stop.
pub fn boot_backoff(failures: u32) -> Option<Duration> {
    if failures >= MAX_BOOT_FAILURES {
        return None;
    }
    Some(BOOT_BACKOFF * 2u32.pow(failures.saturating_sub(1)))
}

#[cfg(test)]
mod tests;
