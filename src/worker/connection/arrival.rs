//! `--min-request-rate`: how fast a request (its PROXY header, head and
//! body) arrives, and whether that is too slow to keep waiting for.
//! Kestrel's rule (`MinRequestBodyDataRate`): after a grace period from the
//! request's first byte, the bytes received so far must average at least the
//! minimum rate; a client trickling a body one byte a second holds a
//! connection (and a slot under `--worker-connections`) for minutes
//! otherwise, while `--read-timeout` only catches a client that stops.

use std::time::{Duration, Instant};

/// The least a request must average, once its grace is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second; 0 turns the rule off.
    pub bytes_per_second: u64,
    pub grace: Duration,
}

/// A request's bytes so far, from its first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    since: Instant,
    received: u64,
}

impl Arrival {
    /// A request whose first `received` bytes are in at `now` (more than
    /// zero when they were read ahead while the previous one was served).
    pub fn start(now: Instant, received: usize) -> Arrival {
        Arrival {
            since: now,
            received: received as u64,
        }
    }

    pub fn add(&mut self, bytes: usize) {
        self.received = self.received.saturating_add(bytes as u64);
    }

    pub fn since(&self) -> Instant {
        self.since
    }

    /// The average so far, in bytes per second (whole seconds' worth of
    /// bytes for a request younger than a millisecond).
    pub fn bytes_per_second(&self, now: Instant) -> u64 {
        let elapsed_ms = now.saturating_duration_since(self.since).as_millis().max(1);
        (u128::from(self.received) * 1000 / elapsed_ms).min(u128::from(u64::MAX)) as u64
    }
}

impl MinRate {
    /// Whether the request, past its grace, has averaged less than the minimum.
    pub fn falls_short(&self, arrival: &Arrival, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(arrival.since);
        if self.bytes_per_second == 0 || elapsed <= self.grace {
            return false;
        }
        let owed = u128::from(self.bytes_per_second) * elapsed.as_millis() / 1000;
        u128::from(arrival.received) < owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KESTREL: MinRate = MinRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(5),
    };

    #[test]
    fn nothing_is_owed_within_the_grace_however_little_arrived() {
        let start = Instant::now();
        let arrival = Arrival::start(start, 1);
        assert!(!KESTREL.falls_short(&arrival, start + Duration::from_secs(5)));
    }

    #[test]
    fn past_the_grace_the_average_since_the_first_byte_must_reach_the_minimum() {
        let start = Instant::now();
        let mut arrival = Arrival::start(start, 0);
        arrival.add(1_440);
        let at_six = start + Duration::from_secs(6);
        assert!(!KESTREL.falls_short(&arrival, at_six), "240 B/s exactly");
        assert!(KESTREL.falls_short(&arrival, at_six + Duration::from_millis(10)));
        arrival.add(1_000_000);
        assert!(!KESTREL.falls_short(&arrival, start + Duration::from_secs(60)));
    }

    #[test]
    fn a_rate_of_zero_turns_the_rule_off() {
        let off = MinRate {
            bytes_per_second: 0,
            ..KESTREL
        };
        let start = Instant::now();
        let arrival = Arrival::start(start, 0);
        assert!(!off.falls_short(&arrival, start + Duration::from_secs(3600)));
    }

    #[test]
    fn the_average_counts_bytes_read_ahead_from_the_start() {
        let start = Instant::now();
        let mut arrival = Arrival::start(start, 500);
        arrival.add(500);
        assert_eq!(
            arrival.bytes_per_second(start + Duration::from_secs(2)),
            500
        );
        assert_eq!(arrival.bytes_per_second(start), 1_000_000);
    }
}
