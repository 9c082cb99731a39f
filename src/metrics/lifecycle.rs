//! Worker boots and exits, as the arbiter counts them.

use crate::scoreboard::counters::SelfRetirement;

/// Why a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Exited with an error or was killed by a signal nobody sent it.
    Crash,
    /// Died before it finished importing the app.
    BootFailure,
    /// No heartbeat for `--timeout` seconds: the arbiter killed it.
    Timeout,
    MaxRequests,
    /// Above `--max-worker-memory`.
    MemoryLimit,
    /// `--reload` saw a source file change.
    CodeChanged,
    /// A request was given up (`--request-timeout`) and its thread ran on.
    RequestTimeout,
    /// Replaced by a new generation (HUP).
    Reload,
    /// Retired by TTOU.
    ScaleDown,
    /// The server stopped.
    Shutdown,
}

impl ExitReason {
    pub const ALL: [ExitReason; 10] = [
        ExitReason::Crash,
        ExitReason::BootFailure,
        ExitReason::Timeout,
        ExitReason::MaxRequests,
        ExitReason::MemoryLimit,
        ExitReason::CodeChanged,
        ExitReason::RequestTimeout,
        ExitReason::Reload,
        ExitReason::ScaleDown,
        ExitReason::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ExitReason::Crash => "crash",
            ExitReason::BootFailure => "boot_failure",
            ExitReason::Timeout => "timeout",
            ExitReason::MaxRequests => "max_requests",
            ExitReason::MemoryLimit => "memory_limit",
            ExitReason::CodeChanged => "code_changed",
            ExitReason::RequestTimeout => "request_timeout",
            ExitReason::Reload => "reload",
            ExitReason::ScaleDown => "scale_down",
            ExitReason::Shutdown => "shutdown",
        }
    }

    /// Why a worker ended, from what the arbiter did to it (`sent`), what it
    /// recorded itself, whether it had booted and whether it exited cleanly.
    pub fn classify(
        sent: Option<ExitReason>,
        recorded: Option<SelfRetirement>,
        booted: bool,
        clean_exit: bool,
    ) -> ExitReason {
        if let Some(reason) = sent {
            return reason;
        }
        match recorded {
            Some(_) if !clean_exit => ExitReason::Crash,
            Some(SelfRetirement::MaxRequests) => ExitReason::MaxRequests,
            Some(SelfRetirement::MemoryLimit) => ExitReason::MemoryLimit,
            Some(SelfRetirement::CodeChanged) => ExitReason::CodeChanged,
            Some(SelfRetirement::RequestTimeout) => ExitReason::RequestTimeout,
            None if !booted => ExitReason::BootFailure,
            None => ExitReason::Crash,
        }
    }
}

/// Counts kept by the arbiter for the whole life of the server.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub boots: u64,
    exits: [u64; ExitReason::ALL.len()],
}

impl Lifecycle {
    pub fn booted(&mut self) {
        self.boots += 1;
    }

    pub fn ended(&mut self, reason: ExitReason) {
        self.exits[reason as usize] += 1;
    }

    pub fn exits(&self, reason: ExitReason) -> u64 {
        self.exits[reason as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_arbiter_did_wins_then_what_the_worker_recorded() {
        use ExitReason as E;
        let memory = Some(SelfRetirement::MemoryLimit);
        assert_eq!(
            E::classify(Some(E::Timeout), memory, true, false),
            E::Timeout
        );
        assert_eq!(E::classify(None, memory, true, true), E::MemoryLimit);
        assert_eq!(
            E::classify(None, memory, true, false),
            E::Crash,
            "it meant to retire but died"
        );
        assert_eq!(E::classify(None, None, false, false), E::BootFailure);
        assert_eq!(E::classify(None, None, true, false), E::Crash);
    }

    #[test]
    fn every_reason_has_its_own_count() {
        let mut lifecycle = Lifecycle::default();
        for (n, reason) in ExitReason::ALL.into_iter().enumerate() {
            for _ in 0..=n {
                lifecycle.ended(reason);
            }
        }
        for (n, reason) in ExitReason::ALL.into_iter().enumerate() {
            assert_eq!(lifecycle.exits(reason), n as u64 + 1, "{}", reason.label());
        }
    }
}
