//! Whether a worker takes new clients: the one rule, as functions of what
//! the worker knows at an instant ([`Facts`]) and that instant. The event
//! loop asks it when a listener wakes it, when it considers resuming, and
//! when it publishes its load; it acts on the answers (watching listeners,
//! accepting, shedding).

use std::time::{Duration, Instant};

use super::shedding::{self, Choice};

/// How soon a worker leaving new clients to a sibling looks at the counts
/// again when nothing else wakes it.
pub const REBALANCE: Duration = Duration::from_millis(5);
/// How long a worker out of file descriptors (EMFILE, ENFILE) stops
/// accepting, unless a connection of its own closes first. A listener is
/// level-triggered: retrying at once would spin a core.
pub const DESCRIPTOR_PAUSE: Duration = Duration::from_millis(250);

/// Whether the worker takes new clients, and if not, why: the one place
/// that says whether its listeners are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Watching the listeners.
    Open,
    /// Listeners unwatched: a sibling worker holds clearly fewer
    /// connections (see [`crate::scoreboard::load_board`]).
    Yielding,
    /// Listeners unwatched until the pause's reason is gone.
    Paused(Pause),
    /// Stopping, or nothing to listen on: never again.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Every interpreter is busy (see [`super::activity::new_clients_should_wait`]).
    Busy,
    /// A request already waits for each interpreter: new clients stay in
    /// the listen backlog (see [`super::queue_room::QueueRoom`]) until a
    /// thread takes a job, which wakes the loop, or the queue has stayed
    /// full while moving.
    Queued,
    /// Accept failed for want of file descriptors, at `since`: until a
    /// connection closes or [`DESCRIPTOR_PAUSE`] has passed.
    Descriptors { since: Instant },
    /// At `--worker-connections` with nothing to shed yet: look again at
    /// `retry_at`, or when a connection closes.
    Limit { retry_at: Instant },
}

/// What the worker knows when it decides. `queue_full` may change the
/// state it reads (the patience with a full queue starts at the first look
/// that finds it full), so it is asked only when the answer matters.
pub trait Facts {
    fn connections(&self) -> usize;
    fn max_connections(&self) -> usize;
    /// No interpreter of this worker will be free soon while a sibling's is.
    fn interpreters_unavailable(&self) -> bool;
    /// Which connection to close for a new client, at the limit.
    fn shed_choice(&self, now: Instant) -> Choice;
    /// New clients should stay in the listen backlog, one queue for the server.
    fn queue_full(&mut self, now: Instant) -> bool;
    /// A sibling worker holds clearly fewer connections.
    fn sibling_holds_fewer(&self) -> bool;
}

/// What to do with the next client waiting on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Accept it; first close connection `shed` (a slab key) to make room.
    Take { shed: Option<usize> },
    /// Stop watching the listeners for this reason.
    Pause(Pause),
    /// Leave it to the siblings watching the listeners.
    Yield,
}

/// Whether to accept the next client now, for a worker whose intake is open.
pub fn admit(facts: &mut impl Facts, now: Instant) -> Admission {
    if facts.interpreters_unavailable() {
        return Admission::Pause(Pause::Busy);
    }
    let mut shed = None;
    if !has_room(facts) {
        // Paused until the retry, or until a connection closes; the kernel
        // queues new clients in the listen backlog meanwhile.
        let retry_at = match facts.shed_choice(now) {
            Choice::Shed(slot) => {
                shed = Some(slot);
                None
            }
            Choice::RetryAt(at) => Some(at),
            Choice::Nothing => Some(now + shedding::GRACE),
        };
        if let Some(retry_at) = retry_at {
            return Admission::Pause(Pause::Limit { retry_at });
        }
    }
    if facts.queue_full(now) {
        return Admission::Pause(Pause::Queued);
    }
    if facts.sibling_holds_fewer() {
        return Admission::Yield;
    }
    Admission::Take { shed }
}

/// Whether a paused worker should watch its listeners again: its reason to
/// pause is gone, and neither the limit nor busy interpreters would pause
/// it again at once. A limit pause past its retry resumes at the limit, to
/// look for a connection to shed.
pub fn may_resume(pause: Pause, facts: &mut impl Facts, now: Instant) -> bool {
    let (reason_gone, retry_due) = match pause {
        Pause::Busy => (true, false),
        Pause::Queued => (!facts.queue_full(now), false),
        Pause::Descriptors { since } => (now.duration_since(since) >= DESCRIPTOR_PAUSE, false),
        Pause::Limit { retry_at } => (true, now >= retry_at),
    };
    reason_gone && (has_room(facts) || retry_due) && !facts.interpreters_unavailable()
}

/// Whether a yielding worker should watch its listeners again.
pub fn may_stop_yielding(facts: &impl Facts) -> bool {
    !facts.sibling_holds_fewer()
}

/// Whether siblings should count this worker as one that takes clients (see
/// `crate::scoreboard::load_board`). Paused for its descriptors or its
/// limit, or stopping, it takes none; yielding, or waiting for a free
/// interpreter or a shorter queue, it does once that changes.
pub fn counts_as_taking(intake: Intake, facts: &impl Facts) -> bool {
    matches!(
        intake,
        Intake::Open | Intake::Yielding | Intake::Paused(Pause::Busy | Pause::Queued)
    ) && has_room(facts)
}

/// The intake once one of the worker's connections has closed: a
/// descriptor is free, so a pause for descriptors is over (what remains is
/// whether interpreters are free).
pub fn after_connection_closed(intake: Intake) -> Intake {
    match intake {
        Intake::Paused(Pause::Descriptors { .. }) => Intake::Paused(Pause::Busy),
        other => other,
    }
}

/// The latest instant the loop should look at its intake again by itself;
/// `queue_patience_ends` tells when a full, moving job queue stops keeping
/// clients in the backlog. `None`: only an event changes the answer.
pub fn next_look(
    intake: Intake,
    now: Instant,
    queue_patience_ends: impl FnOnce() -> Option<Instant>,
) -> Option<Instant> {
    match intake {
        Intake::Yielding => Some(now + REBALANCE),
        Intake::Paused(Pause::Descriptors { since }) => Some(since + DESCRIPTOR_PAUSE),
        // Once passed, the retry only widens `may_resume`: the other
        // reasons to pause have wake-ups of their own.
        Intake::Paused(Pause::Limit { retry_at }) if retry_at > now => Some(retry_at),
        // Until the queue moves, a thread taking a job wakes the loop.
        Intake::Paused(Pause::Queued) => queue_patience_ends(),
        _ => None,
    }
}

fn has_room(facts: &impl Facts) -> bool {
    facts.connections() < facts.max_connections()
}

#[cfg(test)]
mod tests;
