//! What the interpreter threads are doing: for the heartbeat, a worker shows
//! progress only while none of its threads has been stuck on one request for
//! too long; for accepting, whether a thread is free to take the next request.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::arbiter::heartbeat::now_ms;

/// When each interpreter thread started its current request (0: idle).
pub struct Activity {
    /// Until the request is done, hooks and access log included.
    busy_since_ms: Vec<AtomicU64>,
    /// Until the final reply is queued: a thread past it takes the next job
    /// within microseconds, so it counts as free for accepting clients.
    responding_since_ms: Vec<AtomicU64>,
}

impl Activity {
    pub fn new(threads: usize) -> Activity {
        let idle = || (0..threads).map(|_| AtomicU64::new(0)).collect();
        Activity {
            busy_since_ms: idle(),
            responding_since_ms: idle(),
        }
    }

    pub fn begin(&self, thread: usize) {
        let now = now_ms();
        self.busy_since_ms[thread].store(now, Ordering::Relaxed);
        self.responding_since_ms[thread].store(now, Ordering::Relaxed);
    }

    /// Called before the final reply is queued, so the loop it wakes already
    /// sees this thread free (else the loop stays paused, see `all_busy`).
    pub fn responded(&self, thread: usize) {
        self.responding_since_ms[thread].store(0, Ordering::Relaxed);
    }

    pub fn end(&self, thread: usize) {
        self.responding_since_ms[thread].store(0, Ordering::Relaxed);
        self.busy_since_ms[thread].store(0, Ordering::Relaxed);
    }

    /// Whether every interpreter thread is still producing a response.
    pub fn all_busy(&self) -> bool {
        self.all_busy_since_ms() != 0
    }

    /// Since when (ms since the epoch) every interpreter thread has been
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_thread_that_responded_is_free_but_still_shows_in_the_heartbeat() {
        let activity = Activity::new(1);
        activity.begin(0);
        assert!(activity.all_busy());
        activity.busy_since_ms[0].store(1000, Ordering::Relaxed);
        activity.responded(0);
        assert!(!activity.all_busy());
        assert_eq!(activity.progress_ms(), 1000);
        activity.end(0);
        assert!(activity.progress_ms() > 1000);
    }
}
