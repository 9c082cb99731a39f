//! `/livez` and `/readyz`: what the arbiter's view of its workers says.
//!
//! Live: the arbiter answers (it is running) and every worker has shown
//! progress within `--timeout`, except one finishing its requests after
//! being told to stop (graceful, bounded by `--graceful-timeout`). A worker
//! being killed for its silence still counts until it is gone: the arbiter
//! replaces it on its own, and liveness stays failed only while that fails.
//! Ready: the server is not stopping, and every worker of the current
//! generation has imported the app (so during `HUP` until the new ones are up).

/// One worker, as health sees it.
#[derive(Debug, Clone, Copy)]
pub struct WorkerHealth {
    pub pid: i32,
    pub booted: bool,
    /// Told to stop gracefully (not for a timeout).
    pub retiring: bool,
    /// It belongs to the newest generation (the one `HUP` started last).
    pub current: bool,
    pub silence_ms: u64,
}

/// Why a probe fails: the text its answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy(pub String);

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ok, or the reason the server is not live.
pub fn liveness(workers: &[WorkerHealth], timeout_ms: Option<u64>) -> Result<(), Unhealthy> {
    let Some(limit) = timeout_ms else {
        return Ok(());
    };
    let stale: Vec<String> = workers
        .iter()
        .filter(|w| !w.retiring && w.silence_ms > limit)
        .map(|w| format!("worker {} silent for {} ms", w.pid, w.silence_ms))
        .collect();
    match stale.is_empty() {
        true => Ok(()),
        false => Err(Unhealthy(stale.join("\n"))),
    }
}

/// Ok, or the reason the server should get no traffic.
pub fn readiness(
    stopping: bool,
    workers: &[WorkerHealth],
    desired: usize,
) -> Result<(), Unhealthy> {
    if stopping {
        return Err(Unhealthy("stopping".to_owned()));
    }
    let ready = workers
        .iter()
        .filter(|w| w.current && w.booted && !w.retiring)
        .count();
    match ready >= desired {
        true => Ok(()),
        false => Err(Unhealthy(format!("{ready} of {desired} workers ready"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(pid: i32) -> WorkerHealth {
        WorkerHealth {
            pid,
            booted: true,
            retiring: false,
            current: true,
            silence_ms: 10,
        }
    }

    #[test]
    fn a_silent_worker_not_yet_told_to_stop_fails_liveness() {
        let mut silent = worker(2);
        silent.silence_ms = 31_000;
        assert_eq!(liveness(&[worker(1)], Some(30_000)), Ok(()));
        let failure = liveness(&[worker(1), silent], Some(30_000)).unwrap_err();
        assert_eq!(failure.to_string(), "worker 2 silent for 31000 ms");
        silent.retiring = true;
        assert_eq!(liveness(&[silent], Some(30_000)), Ok(()), "being replaced");
        silent.retiring = false;
        assert_eq!(liveness(&[silent], None), Ok(()), "--timeout 0");
    }

    #[test]
    fn ready_only_with_every_current_worker_booted_and_not_stopping() {
        let mut old = worker(1);
        old.current = false;
        let mut booting = worker(2);
        booting.booted = false;
        assert_eq!(readiness(false, &[worker(1), worker(2)], 2), Ok(()));
        assert_eq!(
            readiness(false, &[old, booting, worker(3)], 2),
            Err(Unhealthy("1 of 2 workers ready".to_owned())),
            "during HUP the old generation does not count"
        );
        assert_eq!(
            readiness(true, &[worker(1)], 1),
            Err(Unhealthy("stopping".to_owned()))
        );
    }
}
