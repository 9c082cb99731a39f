//! What the interpreter threads are doing, for the heartbeat: a worker shows
//! progress only while none of its threads has been stuck on one request for
//! too long.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::arbiter::heartbeat::now_ms;

/// When each interpreter thread started its current request (0: idle).
pub struct Activity {
    busy_since_ms: Vec<AtomicU64>,
}

impl Activity {
    pub fn new(threads: usize) -> Activity {
        Activity {
            busy_since_ms: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn begin(&self, thread: usize) {
        self.busy_since_ms[thread].store(now_ms(), Ordering::Relaxed);
    }

    pub fn end(&self, thread: usize) {
        self.busy_since_ms[thread].store(0, Ordering::Relaxed);
    }

    /// Whether every interpreter thread is running a request.
    pub fn all_busy(&self) -> bool {
        self.all_busy_since_ms() != 0
    }

    /// Since when (ms since the epoch) every interpreter thread has been
    /// running a request; 0 while one is free.
    pub fn all_busy_since_ms(&self) -> u64 {
        let mut latest = 0;
        for started in &self.busy_since_ms {
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
}
