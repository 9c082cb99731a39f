//! When a worker leaves new clients in the listen backlog rather than taking
//! them into its own job queue.
//!
//! With a request already waiting for each interpreter, a client taken now
//! is bound to this worker's queue and waits behind whatever holds it up (a
//! slow request, an interpreter the kernel descheduled) while a sibling may
//! free up first. Left in the backlog, one queue for the whole server, it
//! goes to whichever worker takes a job first: Flask `Connection: close`
//! `-w 2`, the longest newcomer wait went from 79 to 41 ms and wrk's p99
//! from 49 to 30 ms (bench/run.py, 6 rounds, 2026-12-03).
//!
//! A queue that stays full while it moves is kept full by keep-alive
//! clients' next requests: leaving newcomers in the backlog then kept them
//! out for seconds (3,928 ms, Flask keep-alive `-w 2`), so after
//! [`QUEUE_PATIENCE`] of that the worker takes them at once. A queue that
//! stays full without moving is one stuck request: waiting on is right, and
//! the worker soon counts as stalled (see `crate::scoreboard::load_board`).

use std::time::{Duration, Instant};

use super::handoff::QueueState;

/// How long a full queue may move before the worker takes new clients
/// anyway: above a few Flask requests (0.5-1 ms each), well below the
/// 50 ms a newcomer may wait.
pub const QUEUE_PATIENCE: Duration = Duration::from_millis(10);

/// The last time a worker's job queue had room for another request, and how
/// many jobs had been taken from it by then.
#[derive(Debug, Clone, Copy)]
pub struct QueueRoom {
    at: Instant,
    taken: u64,
}

impl QueueRoom {
    pub fn new(now: Instant) -> QueueRoom {
        QueueRoom { at: now, taken: 0 }
    }

    /// Whether new clients should stay in the backlog, given the queue now
    /// and how many interpreters serve it.
    pub fn leave_to_backlog(
        &mut self,
        queue: QueueState,
        interpreters: usize,
        now: Instant,
    ) -> bool {
        if queue.waiting < interpreters {
            *self = QueueRoom {
                at: now,
                taken: queue.taken,
            };
            return false;
        }
        !(self.moved(queue) && now.duration_since(self.at) >= QUEUE_PATIENCE)
    }

    /// When the patience with a full queue ends: `None` until it moves (a
    /// thread taking a job wakes the loop, see `JobQueue::wake_on_next_take`).
    pub fn patience_ends(&self, queue: QueueState) -> Option<Instant> {
        self.moved(queue).then(|| self.at + QUEUE_PATIENCE)
    }

    fn moved(&self, queue: QueueState) -> bool {
        queue.taken > self.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(waiting: usize, taken: u64) -> QueueState {
        QueueState { waiting, taken }
    }

    #[test]
    fn a_queue_with_room_takes_clients() {
        let start = Instant::now();
        let mut room = QueueRoom::new(start);
        assert!(!room.leave_to_backlog(queue(0, 0), 1, start));
        assert!(!room.leave_to_backlog(queue(1, 5), 2, start));
    }

    #[test]
    fn a_full_queue_that_moves_leaves_clients_until_its_patience_ends() {
        let start = Instant::now();
        let mut room = QueueRoom::new(start);
        assert!(!room.leave_to_backlog(queue(0, 3), 1, start));
        assert!(room.leave_to_backlog(queue(1, 3), 1, start));
        assert_eq!(room.patience_ends(queue(1, 3)), None);
        let soon = start + QUEUE_PATIENCE / 2;
        assert!(room.leave_to_backlog(queue(1, 4), 1, soon));
        assert_eq!(
            room.patience_ends(queue(1, 4)),
            Some(start + QUEUE_PATIENCE)
        );
        let later = start + QUEUE_PATIENCE;
        assert!(!room.leave_to_backlog(queue(1, 9), 1, later));
    }

    #[test]
    fn a_full_queue_that_does_not_move_leaves_clients_however_long() {
        let start = Instant::now();
        let mut room = QueueRoom::new(start);
        assert!(!room.leave_to_backlog(queue(0, 7), 1, start));
        let much_later = start + QUEUE_PATIENCE * 100;
        assert!(room.leave_to_backlog(queue(1, 7), 1, much_later));
        assert_eq!(room.patience_ends(queue(1, 7)), None);
    }

    #[test]
    fn room_in_the_queue_restarts_the_patience() {
        let start = Instant::now();
        let mut room = QueueRoom::new(start);
        let later = start + QUEUE_PATIENCE * 2;
        assert!(!room.leave_to_backlog(queue(0, 10), 1, later));
        assert!(room.leave_to_backlog(queue(1, 11), 1, later + QUEUE_PATIENCE / 2));
    }
}
