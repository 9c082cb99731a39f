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
//! A queue that stays full while it moves, without getting shorter, is kept
//! full by keep-alive clients' next requests: leaving newcomers in the
//! backlog then kept them out for seconds (3,928 ms, Flask keep-alive
//! `-w 2`), so after [`QUEUE_PATIENCE`] of that the worker takes them at
//! once. A queue that stays full without moving is one stuck request:
//! waiting on is right, and the worker soon counts as stalled (see
//! `crate::scoreboard::load_board`). The count is only right if a client
//! is accepted with its request: see `crate::net::listener`'s
//! `TCP_DEFER_ACCEPT`.

use std::time::{Duration, Instant};

use super::handoff::QueueState;

/// How long a full queue may move without getting shorter before the worker
/// takes new clients
/// anyway: above a few Flask requests (0.5-1 ms each), well below the
/// 50 ms a newcomer may wait.
pub const QUEUE_PATIENCE: Duration = Duration::from_millis(10);

/// Since when a worker's job queue has been full without getting shorter.
///
/// The clock starts at the first look that finds it full, not at the last
/// look that found room: the loop looks only when it is about to accept,
/// and after an idle spell the last look with room is long past. Counted
/// from there, the patience was over at the first full look of a burst.
///
/// A queue that gets shorter is draining (requests of clients taken before,
/// such as a burst taken while the sibling was still booting): a newcomer
/// taken into it waits behind all of them, so each new low starts the
/// patience again, and only a queue that others keep full (keep-alive
/// clients' next requests) takes newcomers. Counting from room seen, one
/// worker took 43-58 of wrk's 64 `Connection: close` clients into its own
/// queue, and newcomers waited 60-125 ms (sampled with `ss -tnp`, Flask
/// `-w 2`, 2026-12-03).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueRoom {
    full: Option<FullQueue>,
}

#[derive(Debug, Clone, Copy)]
struct FullQueue {
    since: Instant,
    /// Jobs taken from the queue by `since`: more since then means it moves.
    taken: u64,
    /// The fewest jobs seen waiting since `since`.
    shortest: usize,
}

impl QueueRoom {
    pub fn new() -> QueueRoom {
        QueueRoom::default()
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
            self.full = None;
            return false;
        }
        match self.full {
            Some(full) if queue.waiting >= full.shortest => {
                !(queue.taken > full.taken && now.duration_since(full.since) >= QUEUE_PATIENCE)
            }
            _ => {
                self.full = Some(FullQueue {
                    since: now,
                    taken: queue.taken,
                    shortest: queue.waiting,
                });
                true
            }
        }
    }

    /// When the patience with a full queue ends: `None` until it moves (a
    /// thread taking a job wakes the loop, see `JobQueue::wake_on_next_take`).
    pub fn patience_ends(&self, queue: QueueState) -> Option<Instant> {
        let full = self.full?;
        (queue.taken > full.taken).then(|| full.since + QUEUE_PATIENCE)
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
        let mut room = QueueRoom::new();
        assert!(!room.leave_to_backlog(queue(0, 0), 1, start));
        assert!(!room.leave_to_backlog(queue(1, 5), 2, start));
    }

    #[test]
    fn a_full_queue_that_moves_leaves_clients_until_its_patience_ends() {
        let start = Instant::now();
        let mut room = QueueRoom::new();
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
        let mut room = QueueRoom::new();
        assert!(room.leave_to_backlog(queue(1, 7), 1, start));
        let much_later = start + QUEUE_PATIENCE * 100;
        assert!(room.leave_to_backlog(queue(1, 7), 1, much_later));
        assert_eq!(room.patience_ends(queue(1, 7)), None);
    }

    #[test]
    fn the_patience_starts_when_the_queue_is_first_seen_full() {
        let start = Instant::now();
        let mut room = QueueRoom::new();
        assert!(!room.leave_to_backlog(queue(0, 10), 1, start));
        // An idle spell with nobody looking, then a burst fills the queue
        // while it moves.
        let burst = start + QUEUE_PATIENCE * 100;
        assert!(room.leave_to_backlog(queue(1, 11), 1, burst));
        assert!(room.leave_to_backlog(queue(1, 12), 1, burst + QUEUE_PATIENCE / 2));
        assert!(!room.leave_to_backlog(queue(1, 13), 1, burst + QUEUE_PATIENCE));
    }

    #[test]
    fn a_draining_queue_leaves_clients_until_it_has_room() {
        let start = Instant::now();
        let mut room = QueueRoom::new();
        assert!(room.leave_to_backlog(queue(60, 100), 1, start));
        for step in 1..60 {
            let now = start + QUEUE_PATIENCE * step;
            assert!(
                room.leave_to_backlog(queue(60 - step as usize, 100 + u64::from(step)), 1, now),
                "{} still waiting",
                60 - step
            );
        }
        assert!(!room.leave_to_backlog(queue(0, 160), 1, start + QUEUE_PATIENCE * 60));
    }

    #[test]
    fn a_queue_kept_full_takes_clients_once_it_stops_getting_shorter() {
        let start = Instant::now();
        let mut room = QueueRoom::new();
        assert!(room.leave_to_backlog(queue(31, 0), 1, start));
        let low = start + QUEUE_PATIENCE / 2;
        assert!(room.leave_to_backlog(queue(30, 5), 1, low));
        assert!(room.leave_to_backlog(queue(32, 9), 1, start + QUEUE_PATIENCE));
        assert!(!room.leave_to_backlog(queue(31, 20), 1, low + QUEUE_PATIENCE));
    }

    #[test]
    fn room_in_the_queue_restarts_the_patience() {
        let start = Instant::now();
        let mut room = QueueRoom::new();
        assert!(room.leave_to_backlog(queue(1, 10), 1, start));
        assert!(room.leave_to_backlog(queue(1, 11), 1, start + QUEUE_PATIENCE / 2));
        assert!(!room.leave_to_backlog(queue(0, 11), 1, start + QUEUE_PATIENCE));
        let later = start + QUEUE_PATIENCE * 2;
        assert!(room.leave_to_backlog(queue(1, 12), 1, later));
        assert!(room.leave_to_backlog(queue(1, 13), 1, later + QUEUE_PATIENCE / 2));
    }
}
