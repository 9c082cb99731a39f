//! Worker heartbeats in memory shared between the arbiter and its forked
//! workers (Gunicorn uses a temp file's mtime; one shared page of atomics
//! needs no file and no syscall per beat).

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Records progress as of `at_ms` (a [`now_ms`] reading).
    pub fn beat(&self, at_ms: u64) {
        self.slot.beat_ms.store(at_ms, Ordering::SeqCst);
    }

    pub fn mark_booted(&self) {
        self.beat(now_ms());
        self.slot.booted.store(1, Ordering::SeqCst);
    }
}

/// Milliseconds on CLOCK_MONOTONIC, plus one so that 0 can mean "never".
/// The clock is the system's, so the arbiter and its forked workers read the
/// same one; unlike the wall clock, an NTP step or `date -s` cannot move it
/// (a step forward would time every worker out at once, a step back switch
/// timeouts off), and it stands still while the host is suspended.
pub fn now_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, valid for the call;
    // CLOCK_MONOTONIC is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1000 + (now.tv_nsec as u64) / 1_000_000 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_ms_follows_the_monotonic_clock_not_the_wall_clock() {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let start = std::time::Instant::now();
        let first = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second = now_ms();
        let elapsed = start.elapsed().as_millis() as u64;
        assert!(first > 0 && second >= first + 29, "{first} -> {second}");
        assert!(
            second - first <= elapsed + 2,
            "it moves as Instant (CLOCK_MONOTONIC) does"
        );
        // Milliseconds since boot, nowhere near the epoch's 1.7e12.
        assert!(first < wall_ms / 2, "{first} looks like wall-clock time");
    }
}
