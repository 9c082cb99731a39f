//! Making room at `--worker-connections`: when a worker holds as many
//! connections as it may and another client waits, the connection whose loss
//! costs least is closed for it (idle keep-alive ones first, then the partial
//! request heads with the fewest bytes, then the slowest uploads), as nginx
//! reuses idle keep-alive
//! connections at `worker_connections`. Waiting in the listen backlog instead
//! let slow or idle clients lock out every new one.

use std::time::{Duration, Instant};

/// What a client loses when its connection is shed, cheapest first: the
/// derived order compares the variant, then its fields (the oldest idle
/// connection, then the partial head with the fewest bytes received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SheddingCost {
    /// Waiting between requests (keep-alive), or draining after an error
    /// response: nothing is lost (RFC 9112 §9.6 lets a server close an idle
    /// connection at any time).
    Idle { since: Instant },
    /// A request head (or PROXY header) not yet complete: `received` bytes
    /// of it would be lost.
    PartialHead { received: usize, since: Instant },
    /// A request body still arriving, at `bytes_per_second` on average since
    /// the request's first byte: the slowest goes first. Without this, 3,000
    /// clients trickling a byte a second into `Content-Length: 1000000`
    /// bodies locked every other client out.
    Upload {
        bytes_per_second: u64,
        since: Instant,
    },
}

impl SheddingCost {
    /// Since when the connection has waited in this state.
    pub fn since(&self) -> Instant {
        match *self {
            SheddingCost::Idle { since }
            | SheddingCost::PartialHead { since, .. }
            | SheddingCost::Upload { since, .. } => since,
        }
    }
}

/// How long a connection has to wait in its state before it may be shed: a
/// client just accepted (or just answered) gets the time to send its request.
pub const GRACE: Duration = Duration::from_millis(100);

/// What to do for a new client when the worker is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Close this connection (a slab key) and take the client.
    Shed(usize),
    /// Nothing may be shed yet; a connection may be from this instant on.
    RetryAt(Instant),
    /// Every connection has a request in progress.
    Nothing,
}

/// Picks the cheapest connection past its [`GRACE`].
pub fn choose(
    connections: impl Iterator<Item = (usize, Option<SheddingCost>)>,
    now: Instant,
) -> Choice {
    let mut cheapest: Option<(SheddingCost, usize)> = None;
    let mut soonest: Option<Instant> = None;
    for (slot, cost) in connections {
        let Some(cost) = cost else { continue };
        let eligible_at = cost.since() + GRACE;
        if eligible_at > now {
            soonest = Some(soonest.map_or(eligible_at, |s| s.min(eligible_at)));
        } else if cheapest.is_none_or(|(best, _)| cost < best) {
            cheapest = Some((cost, slot));
        }
    }
    match (cheapest, soonest) {
        (Some((_, slot)), _) => Choice::Shed(slot),
        (None, Some(at)) => Choice::RetryAt(at),
        (None, None) => Choice::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(since: Instant) -> Option<SheddingCost> {
        Some(SheddingCost::Idle { since })
    }

    fn partial(received: usize, since: Instant) -> Option<SheddingCost> {
        Some(SheddingCost::PartialHead { received, since })
    }

    #[test]
    fn the_oldest_idle_connection_goes_before_any_partial_head() {
        let now = Instant::now() + Duration::from_secs(10);
        let old = now - Duration::from_secs(5);
        let older = now - Duration::from_secs(8);
        let connections = [
            (1, partial(0, older)),
            (2, idle(old)),
            (3, None),
            (4, idle(older)),
        ];
        assert_eq!(choose(connections.into_iter(), now), Choice::Shed(4));
    }

    #[test]
    fn among_partial_heads_the_one_with_fewest_bytes_goes_first() {
        let now = Instant::now() + Duration::from_secs(10);
        let at = now - Duration::from_secs(1);
        let connections = [
            (1, partial(30, at - Duration::from_secs(1))),
            (2, partial(12, at)),
            (3, partial(500, at)),
        ];
        assert_eq!(choose(connections.into_iter(), now), Choice::Shed(2));
    }

    #[test]
    fn uploads_go_after_partial_heads_the_slowest_first() {
        let now = Instant::now() + Duration::from_secs(10);
        let at = now - Duration::from_secs(1);
        let upload = |bytes_per_second| {
            Some(SheddingCost::Upload {
                bytes_per_second,
                since: at - Duration::from_secs(2),
            })
        };
        let connections = [(1, upload(90_000)), (2, upload(1)), (3, upload(240))];
        assert_eq!(choose(connections.into_iter(), now), Choice::Shed(2));
        let with_head = [(1, upload(1)), (2, partial(4000, at))];
        assert_eq!(choose(with_head.into_iter(), now), Choice::Shed(2));
    }

    #[test]
    fn connections_within_their_grace_are_kept_and_the_retry_is_when_it_ends() {
        let now = Instant::now() + Duration::from_secs(10);
        let fresh = now - GRACE / 2;
        let fresher = now - GRACE / 4;
        let connections = [(1, partial(0, fresh)), (2, idle(fresher)), (3, None)];
        assert_eq!(
            choose(connections.into_iter(), now),
            Choice::RetryAt(fresh + GRACE)
        );
    }

    #[test]
    fn nothing_is_shed_when_every_connection_has_a_request_in_progress() {
        let connections = [(1, None), (2, None)];
        assert_eq!(
            choose(connections.into_iter(), Instant::now()),
            Choice::Nothing
        );
    }
}
