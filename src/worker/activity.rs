//! What the interpreter threads are doing: for the heartbeat, a worker shows
//! progress only while none of its threads has been stuck on one request for
//! too long; for accepting, whether a thread is free to take the next request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::handoff::{ConnectionId, FlowControl, lock};
use crate::scoreboard::counters::SelfRetirement;
use crate::scoreboard::heartbeat::now_ms;
use crate::scoreboard::load_board::is_stalled;

/// Whether a worker should leave new clients in the listen backlog rather
/// than queue them behind the requests in progress: only while every
/// interpreter is busy and either the worker is stalled (a stuck app must not
/// trap clients) or a sibling has an interpreter free. Otherwise queueing is
/// fairer: left in the backlog while keep-alive clients kept the interpreters
/// busy, new clients waited up to a second (until the loop's tick).
pub fn new_clients_should_wait(
    all_busy_since_ms: u64,
    now_ms: u64,
    sibling_has_free_interpreter: impl FnOnce() -> bool,
) -> bool {
    all_busy_since_ms != 0
        && (is_stalled(all_busy_since_ms, now_ms) || sibling_has_free_interpreter())
}

/// The request an interpreter thread is on (for `--request-timeout`).
#[derive(Clone)]
pub struct CurrentRequest {
    /// Numbers the worker's requests: tells this one from the thread's next.
    pub seq: u64,
    pub started: Instant,
    pub connection: ConnectionId,
    pub flow: Arc<FlowControl>,
    /// `METHOD target`, for the log.
    pub line: Arc<str>,
}

/// What the deadline watcher needs to know of a request it may give up.
pub struct Watched {
    pub connection: ConnectionId,
    pub flow: Arc<FlowControl>,
    pub line: Arc<str>,
}

/// When each interpreter thread started its current request (0: idle).
pub struct Activity {
    /// Until the request is done, hooks and access log included.
    busy_since_ms: Vec<AtomicU64>,
    /// Until the final reply is queued: a thread past it takes the next job
    /// within microseconds, so it counts as free for accepting clients.
    responding_since_ms: Vec<AtomicU64>,
    current: Vec<Mutex<Option<CurrentRequest>>>,
    next_seq: AtomicU64,
    /// Why the worker should retire gracefully, once something asked it to
    /// (memory over `--max-worker-memory`, a request given up).
    retire: Mutex<Option<(SelfRetirement, String)>>,
    retire_requested: AtomicBool,
    /// A request was given up while its thread still ran it: the worker must
    /// not wait for its interpreter threads when it exits.
    abandoned: AtomicBool,
}

impl Activity {
    pub fn new(threads: usize) -> Activity {
        let idle = || (0..threads).map(|_| AtomicU64::new(0)).collect();
        Activity {
            busy_since_ms: idle(),
            responding_since_ms: idle(),
            current: (0..threads).map(|_| Mutex::new(None)).collect(),
            next_seq: AtomicU64::new(1),
            retire: Mutex::new(None),
            retire_requested: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        }
    }

    pub fn threads(&self) -> usize {
        self.current.len()
    }

    fn begin(&self, thread: usize) {
        let now = now_ms();
        self.busy_since_ms[thread].store(now, Ordering::Relaxed);
        self.responding_since_ms[thread].store(now, Ordering::Relaxed);
    }

    /// The request `thread` is on, if any.
    pub fn current(&self, thread: usize) -> Option<CurrentRequest> {
        lock(&self.current[thread]).clone()
    }

    /// Whether `thread` is still on request `seq`.
    pub fn is_on(&self, thread: usize, seq: u64) -> bool {
        lock(&self.current[thread])
            .as_ref()
            .is_some_and(|c| c.seq == seq)
    }

    /// Gives up request `seq` of `thread`: the slot is free for a
    /// replacement interpreter, and the worker will not wait for the thread.
    pub fn abandon(&self, thread: usize, seq: u64, reason: String) {
        let mut current = lock(&self.current[thread]);
        if current.as_ref().is_some_and(|c| c.seq == seq) {
            *current = None;
            self.end(thread);
        }
        drop(current);
        self.abandoned.store(true, Ordering::SeqCst);
        self.request_retire(SelfRetirement::RequestTimeout, reason);
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Asks the worker to retire gracefully (the first reason is kept); the
    /// caller wakes the event loop.
    pub fn request_retire(&self, kind: SelfRetirement, reason: String) {
        let mut retire = lock(&self.retire);
        if retire.is_none() {
            *retire = Some((kind, reason));
            self.retire_requested.store(true, Ordering::SeqCst);
        }
    }

    /// Why the worker should retire, once asked (a cheap load until then).
    pub fn retire_reason(&self) -> Option<(SelfRetirement, String)> {
        if !self.retire_requested.load(Ordering::Relaxed) {
            return None;
        }
        lock(&self.retire).clone()
    }

    /// Called before the final reply is queued, so the loop it wakes already
    /// sees this thread free (else the loop stays paused, see `all_busy_since_ms`).
    fn responded(&self, thread: usize) {
        self.responding_since_ms[thread].store(0, Ordering::Relaxed);
    }

    fn end(&self, thread: usize) {
        self.responding_since_ms[thread].store(0, Ordering::Relaxed);
        self.busy_since_ms[thread].store(0, Ordering::Relaxed);
    }

    /// Since when (a `now_ms` reading) every interpreter thread has been
    /// producing a response; 0 while one is free.
    pub fn all_busy_since_ms(&self) -> u64 {
        let mut latest = 0;
        for started in &self.responding_since_ms {
            match started.load(Ordering::Relaxed) {
                0 => return 0,
                t => latest = latest.max(t),
            }
        }
        latest
    }

    /// The time progress is proven up to: now, or the start of the oldest
    /// request still running.
    pub fn progress_ms(&self) -> u64 {
        self.busy_since_ms
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .filter(|&t| t != 0)
            .min()
            .unwrap_or_else(now_ms)
            .min(now_ms())
    }
}

/// One interpreter thread's entry in its worker's [`Activity`].
#[derive(Clone)]
pub struct ThreadActivity {
    activity: Arc<Activity>,
    thread: usize,
    /// Its requests are recorded for the deadline watcher (`--request-timeout`).
    watched: bool,
}

impl ThreadActivity {
    pub fn new(activity: Arc<Activity>, thread: usize, watched: bool) -> ThreadActivity {
        ThreadActivity {
            activity,
            thread,
            watched,
        }
    }

    /// The thread starts a request (`watched` when the thread is); returns
    /// its number for [`Self::end`].
    pub fn begin(&self, watched: Option<Watched>) -> u64 {
        let seq = self.activity.next_seq.fetch_add(1, Ordering::Relaxed);
        if let Some(Watched {
            connection,
            flow,
            line,
        }) = watched
        {
            *lock(&self.activity.current[self.thread]) = Some(CurrentRequest {
                seq,
                started: Instant::now(),
                connection,
                flow,
                line,
            });
        }
        self.activity.begin(self.thread);
        seq
    }

    /// See [`Activity::responded`].
    pub fn responded(&self) {
        self.activity.responded(self.thread);
    }

    /// Request `seq` is done (unless it was given up and the slot taken over).
    pub fn end(&self, seq: u64) {
        if !self.watched {
            self.activity.end(self.thread);
            return;
        }
        let mut current = lock(&self.activity.current[self.thread]);
        if current.as_ref().is_some_and(|c| c.seq == seq) {
            *current = None;
            self.activity.end(self.thread);
        }
    }

    /// Whether its requests are recorded (see [`Self::begin`]).
    pub fn is_watched(&self) -> bool {
        self.watched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::load_board::STALL_MS;

    #[test]
    fn progress_stops_at_the_oldest_running_request() {
        let activity = Activity::new(2);
        let before = now_ms();
        assert!(activity.progress_ms() >= before);
        activity.busy_since_ms[1].store(before - 5000, Ordering::Relaxed);
        assert_eq!(activity.progress_ms(), before - 5000);
        activity.end(1);
        assert!(activity.progress_ms() >= before);
    }

    #[test]
    fn new_clients_wait_only_for_a_stalled_worker_or_a_free_sibling() {
        let now = 1_000_000;
        let busy_briefly = now - 5;
        let stalled = now - STALL_MS;
        assert!(
            !new_clients_should_wait(0, now, || true),
            "one is free here"
        );
        assert!(!new_clients_should_wait(busy_briefly, now, || false));
        assert!(new_clients_should_wait(busy_briefly, now, || true));
        assert!(new_clients_should_wait(stalled, now, || false));
    }

    #[test]
    fn a_thread_that_responded_is_free_but_still_shows_in_the_heartbeat() {
        let activity = Activity::new(1);
        activity.begin(0);
        assert_ne!(activity.all_busy_since_ms(), 0);
        activity.busy_since_ms[0].store(1000, Ordering::Relaxed);
        activity.responded(0);
        assert_eq!(activity.all_busy_since_ms(), 0);
        assert_eq!(activity.progress_ms(), 1000);
        activity.end(0);
        assert!(activity.progress_ms() > 1000);
    }
}
