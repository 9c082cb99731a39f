//! The counters behind `/metrics`, in memory shared by the arbiter and its
//! forked workers: one slot of plain atomics per worker, written only by that
//! worker (its event loop and interpreter threads), read by the arbiter when
//! scraped. When a worker ends, the arbiter adds its counters to its own
//! totals before the slot is reused, so nothing counted is lost with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::heartbeat::MAX_SLOTS;
use super::shared_memory;

/// Request methods counted by name; any other is counted as `OTHER`, so a
/// client cannot grow the label set.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds, in microseconds, of the request duration histogram's
/// buckets (1 ms to 30 s); one more bucket holds the rest (+Inf).
pub const DURATION_BOUNDS_US: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];
/// The statuses the server itself answers requests with (malformed, too
/// large, too slow); 0 stands for any other.
pub const REJECT_STATUSES: [u16; 11] = [400, 403, 408, 413, 414, 417, 431, 500, 501, 505, 0];
/// Why the app's requests failed (see `crate::wsgi::outcome::FailureKind`).
pub const FAILURE_KINDS: [&str; 4] = ["app_error", "timeout", "contract", "panic"];

/// Word offsets in a slot. Counters first (added to the arbiter's totals
/// when a worker ends), then the values that describe a live worker only.
/// What the event loop writes and what interpreter threads write sit on
/// separate cache lines (8 words each), so a request does not bounce a
/// line between the loop's core and an interpreter's.
mod word {
    use super::*;
    // Written by the event loop.
    pub const REJECTED: usize = 0;
    pub const ACCEPTED: usize = REJECTED + REJECT_STATUSES.len();
    pub const SHED: usize = ACCEPTED + 1;
    pub const BYTES_RECEIVED: usize = SHED + 1;
    pub const BYTES_SENT: usize = BYTES_RECEIVED + 1;
    pub const TLS_HANDSHAKE_FAILURES: usize = BYTES_SENT + 1;
    pub const BELOW_MIN_RATE: usize = TLS_HANDSHAKE_FAILURES + 1;
    pub const UPLOADS_SHED: usize = BELOW_MIN_RATE + 1;
    // Written by interpreter threads, from the next cache line on.
    pub const REQUESTS: usize = (UPLOADS_SHED + 1).div_ceil(8) * 8;
    pub const DURATION_BUCKETS: usize = REQUESTS + METHODS.len() * STATUS_CLASSES.len();
    pub const DURATION_SUM_US: usize = DURATION_BUCKETS + DURATION_BOUNDS_US.len() + 1;
    pub const FAILURES: usize = DURATION_SUM_US + 1;
    pub const CPU_US: usize = FAILURES + FAILURE_KINDS.len();
    pub const ABANDONED: usize = CPU_US + 1;
    /// One past the last counter.
    pub const COUNTERS: usize = ABANDONED + 1;
    // Live values: the event loop's, then (a line of its own) the threads'.
    pub const DISPATCHED: usize = COUNTERS.div_ceil(8) * 8;
    pub const CONNECTIONS_OPEN: usize = DISPATCHED + 1;
    pub const CONNECTIONS_IDLE: usize = CONNECTIONS_OPEN + 1;
    pub const RETIRING: usize = CONNECTIONS_IDLE + 1;
    pub const FINISHED: usize = (RETIRING + 1).div_ceil(8) * 8;
    pub const ALL: usize = (FINISHED + 1).div_ceil(8) * 8;
}

#[repr(C, align(64))]
struct Slot {
    words: [AtomicU64; word::ALL],
}

/// Why a worker stopped on its own, as it records before exiting; the
/// arbiter knows the other reasons (it sent the signal, or saw a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfRetirement {
    MaxRequests = 1,
    MemoryLimit = 2,
    /// `--reload`: a source file changed.
    CodeChanged = 3,
    /// A request was given up (`--request-timeout`) while its thread ran on.
    RequestTimeout = 4,
}

impl SelfRetirement {
    fn from_word(value: u64) -> Option<SelfRetirement> {
        [
            SelfRetirement::MaxRequests,
            SelfRetirement::MemoryLimit,
            SelfRetirement::CodeChanged,
            SelfRetirement::RequestTimeout,
        ]
        .into_iter()
        .find(|reason| *reason as u64 == value)
    }
}

/// Counters summed over workers (and over the ones that ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    words: [u64; word::COUNTERS],
    /// Requests with an app now (received, not yet answered).
    pub in_flight: u64,
    pub connections_open: u64,
    /// Connections waiting between requests (sampled about once a second).
    pub connections_idle: u64,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            words: [0; word::COUNTERS],
            in_flight: 0,
            connections_open: 0,
            connections_idle: 0,
        }
    }
}

impl Totals {
    /// Requests answered by the app, by method and status class.
    pub fn requests(&self, method: usize, class: usize) -> u64 {
        self.words[word::REQUESTS + method * STATUS_CLASSES.len() + class]
    }

    /// Requests per duration bucket (not cumulative), the last one +Inf.
    pub fn duration_buckets(&self) -> &[u64] {
        &self.words[word::DURATION_BUCKETS..word::DURATION_SUM_US]
    }

    pub fn duration_sum(&self) -> Duration {
        Duration::from_micros(self.words[word::DURATION_SUM_US])
    }

    /// CPU time interpreter threads spent on requests.
    pub fn request_cpu(&self) -> Duration {
        Duration::from_micros(self.words[word::CPU_US])
    }

    /// The app's requests that failed with `FAILURE_KINDS[index]`.
    pub fn failures(&self, index: usize) -> u64 {
        self.words[word::FAILURES + index]
    }

    /// Requests the server answered itself with `REJECT_STATUSES[index]`.
    pub fn rejected(&self, index: usize) -> u64 {
        self.words[word::REJECTED + index]
    }

    pub fn accepted(&self) -> u64 {
        self.words[word::ACCEPTED]
    }

    pub fn shed(&self) -> u64 {
        self.words[word::SHED]
    }

    pub fn bytes_received(&self) -> u64 {
        self.words[word::BYTES_RECEIVED]
    }

    pub fn bytes_sent(&self) -> u64 {
        self.words[word::BYTES_SENT]
    }

    pub fn tls_handshake_failures(&self) -> u64 {
        self.words[word::TLS_HANDSHAKE_FAILURES]
    }

    pub fn abandoned(&self) -> u64 {
        self.words[word::ABANDONED]
    }

    pub fn below_min_rate(&self) -> u64 {
        self.words[word::BELOW_MIN_RATE]
    }

    pub fn uploads_shed(&self) -> u64 {
        self.words[word::UPLOADS_SHED]
    }

    fn add_counters(&mut self, slot: &Slot) {
        // Saturating: the slots are writable by worker processes, whose
        // values are not trusted to stay sane.
        for (total, cell) in self.words.iter_mut().zip(&slot.words) {
            *total = total.saturating_add(cell.load(Ordering::Relaxed));
        }
    }
}

/// The arbiter's side: slots it readies for new workers and folds into its
/// totals when they end.
pub struct MetricsBoard {
    slots: &'static [Slot],
    ended: Totals,
}

impl MetricsBoard {
    pub fn new() -> std::io::Result<MetricsBoard> {
        // SAFETY: zeroed memory is a valid AtomicU64, and Slot is repr(C) of
        // atomics only.
        let slots = unsafe { shared_memory::map_zeroed::<Slot>(MAX_SLOTS)? };
        Ok(MetricsBoard {
            slots,
            ended: Totals::default(),
        })
    }

    /// Readies `slot` for a worker about to be forked.
    pub fn start(&self, slot: usize) {
        for cell in &self.slots[slot].words {
            cell.store(0, Ordering::Relaxed);
        }
    }

    /// A handle for the worker in `slot`.
    pub fn worker(&self, slot: usize) -> WorkerMetrics {
        WorkerMetrics {
            slot: &self.slots[slot],
        }
    }

    /// Why the worker in `slot` stopped on its own, if it did.
    pub fn self_retirement(&self, slot: usize) -> Option<SelfRetirement> {
        SelfRetirement::from_word(self.slots[slot].words[word::RETIRING].load(Ordering::SeqCst))
    }

    /// The worker in `slot` has ended (and was reaped, so it writes no
    /// more): its counters join the totals.
    pub fn fold(&mut self, slot: usize) {
        self.ended.add_counters(&self.slots[slot]);
        self.start(slot);
    }

    /// Everything counted so far: ended workers plus the live ones in `live`.
    pub fn totals(&self, live: impl Iterator<Item = usize>) -> Totals {
        let mut totals = self.ended.clone();
        for slot in live {
            let slot = &self.slots[slot];
            totals.add_counters(slot);
            let load = |index: usize| slot.words[index].load(Ordering::Relaxed);
            // Finished is read after dispatched was, so it may run ahead.
            let dispatched = load(word::DISPATCHED);
            let in_flight = dispatched.saturating_sub(load(word::FINISHED));
            totals.in_flight = totals.in_flight.saturating_add(in_flight);
            totals.connections_open = totals
                .connections_open
                .saturating_add(load(word::CONNECTIONS_OPEN));
            totals.connections_idle = totals
                .connections_idle
                .saturating_add(load(word::CONNECTIONS_IDLE));
        }
        totals
    }
}

/// A worker's side of its slot (the event loop and every interpreter thread
/// hold a copy).
#[derive(Clone, Copy)]
pub struct WorkerMetrics {
    slot: &'static Slot,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerMetrics")
    }
}

impl WorkerMetrics {
    fn add(&self, index: usize, amount: u64) {
        self.slot.words[index].fetch_add(amount, Ordering::Relaxed);
    }

    fn set(&self, index: usize, value: u64) {
        let cell = &self.slot.words[index];
        if cell.load(Ordering::Relaxed) != value {
            cell.store(value, Ordering::Relaxed);
        }
    }

    /// A complete request went to the interpreters.
    pub fn dispatched(&self) {
        self.add(word::DISPATCHED, 1);
    }

    /// The app answered a request with `status`, `elapsed` after it was
    /// received.
    pub fn answered(&self, method: &str, status: u16, elapsed: Duration) {
        let method = METHODS
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES.len()) - 1;
        self.add(word::REQUESTS + method * STATUS_CLASSES.len() + class, 1);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = DURATION_BOUNDS_US
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(DURATION_BOUNDS_US.len());
        self.add(word::DURATION_BUCKETS + bucket, 1);
        self.add(word::DURATION_SUM_US, micros);
        // Last: a scrape that sees the request finished sees it counted.
        self.slot.words[word::FINISHED].fetch_add(1, Ordering::Release);
    }

    /// An interpreter thread spent `used` of CPU time on a request.
    pub fn spent_cpu(&self, used: Duration) {
        self.add(
            word::CPU_US,
            u64::try_from(used.as_micros()).unwrap_or(u64::MAX),
        );
    }

    /// One of the app's requests failed, for a reason in [`FAILURE_KINDS`].
    pub fn failed(&self, kind: &str) {
        if let Some(index) = FAILURE_KINDS.iter().position(|k| *k == kind) {
            self.add(word::FAILURES + index, 1);
        }
    }

    /// The server answered a request itself with `status` (malformed, too
    /// large, too slow): the app never saw it.
    pub fn rejected(&self, status: u16) {
        let index = REJECT_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(REJECT_STATUSES.len() - 1);
        self.add(word::REJECTED + index, 1);
    }

    pub fn accepted(&self) {
        self.add(word::ACCEPTED, 1);
    }

    pub fn shed(&self) {
        self.add(word::SHED, 1);
    }

    pub fn received(&self, bytes: usize) {
        self.add(word::BYTES_RECEIVED, bytes as u64);
    }

    pub fn sent(&self, bytes: usize) {
        self.add(word::BYTES_SENT, bytes as u64);
    }

    /// A request was cut for arriving slower than `--min-request-rate`.
    pub fn below_min_rate(&self) {
        self.add(word::BELOW_MIN_RATE, 1);
    }

    /// A connection was shed while its request body was arriving.
    pub fn upload_shed(&self) {
        self.add(word::UPLOADS_SHED, 1);
    }

    pub fn tls_handshake_failed(&self) {
        self.add(word::TLS_HANDSHAKE_FAILURES, 1);
    }

    /// A queued request was dropped unrun: its connection was gone. It is
    /// no longer in flight.
    pub fn abandoned(&self) {
        self.add(word::ABANDONED, 1);
        self.slot.words[word::FINISHED].fetch_add(1, Ordering::Release);
    }

    pub fn set_connections_open(&self, open: usize) {
        self.set(word::CONNECTIONS_OPEN, open as u64);
    }

    pub fn set_connections_idle(&self, idle: usize) {
        self.set(word::CONNECTIONS_IDLE, idle as u64);
    }

    /// Records why the worker stops on its own (the first reason stays).
    pub fn retiring(&self, reason: SelfRetirement) {
        let _ = self.slot.words[word::RETIRING].compare_exchange(
            0,
            reason as u64,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_counts_its_method_class_and_duration_bucket() {
        let board = MetricsBoard::new().unwrap();
        board.start(3);
        let worker = board.worker(3);
        worker.dispatched();
        worker.dispatched();
        worker.answered("GET", 200, Duration::from_micros(900));
        worker.answered("BREW", 503, Duration::from_secs(60));
        let totals = board.totals([3].into_iter());
        assert_eq!(totals.requests(0, 1), 1, "GET 2xx");
        assert_eq!(totals.requests(METHODS.len() - 1, 4), 1, "OTHER 5xx");
        let buckets = totals.duration_buckets();
        assert_eq!(buckets.len(), DURATION_BOUNDS_US.len() + 1);
        assert_eq!(buckets[0], 1, "0.9 ms is within the first bound");
        assert_eq!(
            buckets[DURATION_BOUNDS_US.len()],
            1,
            "60 s is past the last"
        );
        assert_eq!(totals.duration_sum(), Duration::from_micros(60_000_900));
        assert_eq!(totals.in_flight, 0);
    }

    #[test]
    fn counters_of_an_ended_worker_stay_in_the_totals_and_its_gauges_do_not() {
        let mut board = MetricsBoard::new().unwrap();
        board.start(0);
        let worker = board.worker(0);
        worker.received(100);
        worker.rejected(431);
        worker.rejected(299);
        worker.dispatched();
        worker.set_connections_open(4);
        let live = board.totals([0].into_iter());
        assert_eq!((live.in_flight, live.connections_open), (1, 4));
        board.fold(0);
        let after = board.totals(std::iter::empty());
        assert_eq!(after.bytes_received(), 100);
        let index = |status| REJECT_STATUSES.iter().position(|&s| s == status).unwrap();
        assert_eq!(after.rejected(index(431)), 1);
        assert_eq!(
            after.rejected(index(0)),
            1,
            "an unlisted status counts as other"
        );
        assert_eq!((after.in_flight, after.connections_open), (0, 0));
        // The slot was zeroed for its next worker: nothing is counted twice.
        board.start(0);
        assert_eq!(board.totals([0].into_iter()).bytes_received(), 100);
    }

    #[test]
    fn the_first_reason_to_retire_is_kept() {
        let board = MetricsBoard::new().unwrap();
        board.start(1);
        assert_eq!(board.self_retirement(1), None);
        board.worker(1).retiring(SelfRetirement::MemoryLimit);
        board.worker(1).retiring(SelfRetirement::MaxRequests);
        assert_eq!(board.self_retirement(1), Some(SelfRetirement::MemoryLimit));
        board.start(1);
        assert_eq!(board.self_retirement(1), None);
    }
}
