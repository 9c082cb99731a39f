//! How many connections each worker holds, in memory shared by the arbiter and
//! its workers, so that new clients go to the worker holding the fewest.
//!
//! Workers share the listening sockets, and the first worker to accept wins
//! each new client, in practice the same one again and again (and with
//! EPOLLEXCLUSIVE, which woke one worker only, always it): under a burst of
//! keep-alive clients one worker ended up holding
//! 58-64 of 64 connections while its sibling idled. A worker holding clearly
//! more than the least loaded sibling that takes clients stops watching the
//! listeners until the counts even out ("least connections", as nginx's
//! upstream balancing); the siblings still watching take the new clients.
//! A worker yielding so still counts in the counts (its sibling yields in
//! turn once it holds clearly more), but only one watching its listeners
//! counts as having a free interpreter for new clients: otherwise each could
//! leave new clients to the other and neither watch.
//! A stalled sibling (every interpreter busy for a while) does not count: it
//! takes no clients, and a stuck app must not hold back the others. A worker
//! whose own interpreters are all busy leaves new clients to a sibling that
//! has one free (see the event loop's `interpreters_unavailable`), but it
//! still counts until it stalls: when it dropped out, its sibling had no one
//! to compare with and took the rest of a keep-alive burst (64/0 and 55/9 of
//! wrk's 64 connections on Flask `-w 2`), and those clients queued behind
//! one worker for good (newcomers waited up to 74 ms).

use std::sync::atomic::{AtomicU64, Ordering};

use super::heartbeat::MAX_SLOTS;

/// How long every interpreter of a worker must have been busy on a request
/// before the worker counts as stalled: longer than a typical request, short
/// enough that clients do not wait long behind a stuck app.
pub const STALL_MS: u64 = 25;

/// Whether a worker whose interpreters have all been busy since
/// `all_busy_since_ms` (0: one is free) is stalled at `now_ms`.
pub fn is_stalled(all_busy_since_ms: u64, now_ms: u64) -> bool {
    all_busy_since_ms != 0 && now_ms.saturating_sub(all_busy_since_ms) >= STALL_MS
}

/// A slot's value when no worker in it takes clients (none there, booting,
/// stopping, or at `--worker-connections`).
const NOT_TAKING_CLIENTS: u64 = u64::MAX;

#[repr(C)]
struct Table {
    /// One past the highest slot ever used: workers scan no further.
    slots_used: AtomicU64,
    connections: [AtomicU64; MAX_SLOTS],
    /// Since when (a `now_ms` reading) every interpreter has been busy; 0
    /// while one is free.
    all_busy_since_ms: [AtomicU64; MAX_SLOTS],
    /// 1 while the worker watches its listeners (not yielding them).
    watching: [AtomicU64; MAX_SLOTS],
}

/// The arbiter's view: it resets a slot for each worker it forks.
pub struct LoadBoard {
    table: &'static Table,
}

impl LoadBoard {
    pub fn new() -> std::io::Result<LoadBoard> {
        // SAFETY: zeroed memory is a valid AtomicU64, and Table is repr(C) of
        // atomics only.
        let table = unsafe { &super::shared_memory::map_zeroed::<Table>(1)?[0] };
        for slot in &table.connections {
            slot.store(NOT_TAKING_CLIENTS, Ordering::Relaxed);
        }
        Ok(LoadBoard { table })
    }

    /// Readies `slot` for a worker about to be forked.
    pub fn start(&self, slot: usize) {
        self.vacate(slot);
        self.table
            .slots_used
            .fetch_max(slot as u64 + 1, Ordering::SeqCst);
    }

    /// The worker in `slot` is gone: siblings stop counting on it.
    pub fn vacate(&self, slot: usize) {
        self.table.connections[slot].store(NOT_TAKING_CLIENTS, Ordering::SeqCst);
        self.table.all_busy_since_ms[slot].store(0, Ordering::SeqCst);
        self.table.watching[slot].store(0, Ordering::SeqCst);
    }

    /// Whether the worker in `slot` has had every interpreter on a request
    /// for [`STALL_MS`] or more, as it last published.
    pub fn is_stalled(&self, slot: usize, now_ms: u64) -> bool {
        is_stalled(
            self.table.all_busy_since_ms[slot].load(Ordering::Relaxed),
            now_ms,
        )
    }

    /// A handle for the worker in `slot`.
    pub fn worker(&self, slot: usize) -> WorkerLoad {
        WorkerLoad {
            table: self.table,
            slot,
        }
    }
}

/// A worker's side: it publishes its count and reads its siblings'.
#[derive(Clone, Copy)]
pub struct WorkerLoad {
    table: &'static Table,
    slot: usize,
}

impl WorkerLoad {
    /// Publishes the connections this worker holds (`None` while it takes no
    /// clients: paused, stopping, at its limit), whether it watches its
    /// listeners now (false while it yields them to a sibling), and since
    /// when all its interpreters are busy (0: not all).
    pub fn publish(&self, connections: Option<usize>, watching: bool, all_busy_since_ms: u64) {
        let value = connections.map_or(NOT_TAKING_CLIENTS, |n| n as u64);
        // Stored only when changed: siblings read these cache lines often.
        store_if_changed(&self.table.connections[self.slot], value);
        store_if_changed(
            &self.table.watching[self.slot],
            u64::from(watching && connections.is_some()),
        );
        store_if_changed(&self.table.all_busy_since_ms[self.slot], all_busy_since_ms);
    }

    /// Whether this worker, holding `held` connections, should leave new
    /// clients to a sibling (as of `now_ms`, a `heartbeat::now_ms` reading).
    pub fn should_yield(&self, held: usize, now_ms: u64) -> bool {
        let least = self
            .siblings_taking_clients()
            .filter(|&(_, _, busy_since)| !is_stalled(busy_since, now_ms))
            .map(|(connections, _, _)| connections)
            .min();
        least.is_some_and(|least| exceeds(held as u64, least))
    }

    /// Whether a sibling watching its listeners has an interpreter free.
    pub fn sibling_has_free_interpreter(&self) -> bool {
        self.siblings_taking_clients()
            .any(|(_, watching, busy_since)| watching && busy_since == 0)
    }

    /// Whether any sibling takes clients (there is someone to share with).
    pub fn has_sibling_taking_clients(&self) -> bool {
        self.siblings_taking_clients().next().is_some()
    }

    /// (connections, watching, all busy since) of each sibling taking clients.
    fn siblings_taking_clients(&self) -> impl Iterator<Item = (u64, bool, u64)> + '_ {
        let used = (self.table.slots_used.load(Ordering::Relaxed) as usize).min(MAX_SLOTS);
        (0..used)
            .filter(|&slot| slot != self.slot)
            .map(|slot| {
                (
                    self.table.connections[slot].load(Ordering::Relaxed),
                    self.table.watching[slot].load(Ordering::Relaxed) == 1,
                    self.table.all_busy_since_ms[slot].load(Ordering::Relaxed),
                )
            })
            .filter(|&(connections, _, _)| connections != NOT_TAKING_CLIENTS)
    }
}

fn store_if_changed(cell: &AtomicU64, value: u64) {
    if cell.load(Ordering::Relaxed) != value {
        cell.store(value, Ordering::Relaxed);
    }
}

/// `held` is clearly above `least`: by more than a slack that grows with the
/// counts, so that workers do not flip their watch for every connection.
fn exceeds(held: u64, least: u64) -> bool {
    held > least + 2 + least / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_workers() -> (LoadBoard, WorkerLoad, WorkerLoad) {
        let board = LoadBoard::new().unwrap();
        board.start(0);
        board.start(1);
        let (first, second) = (board.worker(0), board.worker(1));
        (board, first, second)
    }

    #[test]
    fn a_worker_yields_only_to_a_sibling_taking_clients_with_clearly_fewer() {
        let (board, first, second) = two_workers();
        let now = 1_000_000;
        // No sibling takes clients yet: never yield.
        assert!(!first.should_yield(50, now));
        second.publish(Some(10), true, 0);
        assert!(!first.should_yield(12, now), "within the slack");
        assert!(first.should_yield(14, now));
        assert!(
            !second.should_yield(10, now),
            "the least loaded never yields"
        );
        second.publish(Some(10), true, now - 5);
        assert!(
            first.should_yield(14, now),
            "busy only briefly: still counts"
        );
        second.publish(Some(10), true, now - STALL_MS);
        assert!(
            !first.should_yield(14, now),
            "busy too long: does not count"
        );
        second.publish(Some(10), false, 0);
        assert!(
            first.should_yield(14, now),
            "a sibling yielding its listeners still counts: it takes clients again once this one yields"
        );
        second.publish(None, true, 0);
        assert!(
            !first.should_yield(14, now),
            "a sibling at capacity takes no clients"
        );
        second.publish(Some(0), true, 0);
        board.vacate(1);
        assert!(
            !first.should_yield(14, now),
            "a vacated slot counts for nothing"
        );
    }

    #[test]
    fn a_sibling_has_a_free_interpreter_only_while_taking_clients_and_not_all_busy() {
        let (board, first, second) = two_workers();
        assert!(
            !first.sibling_has_free_interpreter(),
            "not taking clients yet"
        );
        second.publish(Some(3), true, 0);
        assert!(first.sibling_has_free_interpreter());
        assert!(
            !second.sibling_has_free_interpreter(),
            "a worker is not its own sibling"
        );
        second.publish(Some(3), true, 1_000);
        assert!(!first.sibling_has_free_interpreter(), "all busy");
        second.publish(Some(3), false, 0);
        assert!(
            !first.sibling_has_free_interpreter(),
            "yielding its listeners: new clients must not wait for it"
        );
        second.publish(None, true, 0);
        assert!(!first.sibling_has_free_interpreter(), "at capacity");
        second.publish(Some(3), true, 0);
        board.vacate(1);
        assert!(!first.sibling_has_free_interpreter(), "vacated");
    }

    #[test]
    fn a_worker_is_stalled_once_every_interpreter_is_busy_for_stall_ms() {
        assert!(!is_stalled(0, 1_000_000), "one is free");
        assert!(!is_stalled(1_000_000 - STALL_MS + 1, 1_000_000));
        assert!(is_stalled(1_000_000 - STALL_MS, 1_000_000));
    }

    #[test]
    fn the_slack_grows_with_the_counts() {
        assert!(!exceeds(2, 0));
        assert!(exceeds(3, 0));
        assert!(!exceeds(36, 32));
        assert!(exceeds(39, 32));
    }
}
