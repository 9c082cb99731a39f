//! The tables in memory shared by the arbiter and its forked workers:
//! heartbeats, the load board that balances new clients, and the counters
//! behind `/metrics`. Both sides import them from here, so a worker knows
//! the tables it writes, not the process that forked it.

pub mod counters;
pub mod heartbeat;
pub mod load_board;
mod shared_memory;

use self::counters::WorkerMetrics;
use self::heartbeat::WorkerBeat;
use self::load_board::WorkerLoad;

/// A worker's slots in the tables it shares with the arbiter and its siblings.
#[derive(Clone, Copy)]
pub struct SharedSlot {
    pub beat: WorkerBeat,
    pub load: WorkerLoad,
    /// With `--metrics-bind`: the worker's counters.
    pub metrics: Option<WorkerMetrics>,
}
