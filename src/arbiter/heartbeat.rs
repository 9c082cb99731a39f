//! Worker heartbeats in memory shared between the arbiter and its forked
//! workers (Gunicorn uses a temp file's mtime; one shared page of atomics
//! needs no file and no syscall per beat).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most worker slots (workers alive at once, old and new during a reload).
pub const MAX_SLOTS: usize = 1024;

/// One slot per worker: when it last showed progress, and whether it booted.
#[repr(C)]
struct Slot {
    beat_ms: AtomicU64,
    booted: AtomicU64,
}

/// The table, mapped `MAP_SHARED` before forking so every process sees it.
pub struct Heartbeats {
    slots: &'static [Slot],
}

impl Heartbeats {
    pub fn new() -> std::io::Result<Heartbeats> {
        // SAFETY: zeroed memory is a valid AtomicU64, and Slot is repr(C) of
        // atomics only.
        let slots = unsafe { super::shared_memory::map_zeroed::<Slot>(MAX_SLOTS)? };
        Ok(Heartbeats { slots })
    }

    /// A handle for the worker in `slot`.
    pub fn worker(&self, slot: usize) -> WorkerBeat {
        WorkerBeat {
            slot: &self.slots[slot],
        }
    }

    /// Resets `slot` for a newly forked worker.
    pub fn start(&self, slot: usize) {
        self.slots[slot].booted.store(0, Ordering::SeqCst);
        self.slots[slot].beat_ms.store(now_ms(), Ordering::SeqCst);
    }

    pub fn booted(&self, slot: usize) -> bool {
        self.slots[slot].booted.load(Ordering::SeqCst) != 0
    }

    /// Milliseconds since the worker in `slot` last showed progress.
    pub fn silence_ms(&self, slot: usize) -> u64 {
        now_ms().saturating_sub(self.slots[slot].beat_ms.load(Ordering::SeqCst))
    }
}

/// The worker's side of its slot.
#[derive(Clone, Copy)]
pub struct WorkerBeat {
    slot: &'static Slot,
}

impl WorkerBeat {
    /// Records progress as of `at_ms` (ms since the epoch).
    pub fn beat(&self, at_ms: u64) {
        self.slot.beat_ms.store(at_ms, Ordering::SeqCst);
    }

    pub fn mark_booted(&self) {
        self.beat(now_ms());
        self.slot.booted.store(1, Ordering::SeqCst);
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
