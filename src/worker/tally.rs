//! Counting events that can come by the thousand (connections shed,
//! requests cut for arriving too slowly) into a log line at most every
//! [`REPORT_EVERY`], so a flood of slow clients cannot flood the log too.

use std::time::{Duration, Instant};

/// How often a tally is logged at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Tally {
    count: u64,
    last_report: Option<Instant>,
}

impl Tally {
    /// Records one event at `now`; returns how many to report when a line
    /// is due (the first event at once, then the sum every [`REPORT_EVERY`]).
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self
            .last_report
            .is_some_and(|last| now.saturating_duration_since(last) < REPORT_EVERY)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_reported_then_the_sum_of_the_next_interval() {
        let start = Instant::now();
        let mut tally = Tally::default();
        assert_eq!(tally.record(start), Some(1));
        assert_eq!(tally.record(start + Duration::from_secs(1)), None);
        assert_eq!(tally.record(start + Duration::from_secs(2)), None);
        let due = start + REPORT_EVERY + Duration::from_secs(1);
        assert_eq!(tally.record(due), Some(3), "1 + 2 more");
    }
}
