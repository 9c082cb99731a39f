use std::time::{Duration, Instant};

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A worker of generation 0 started `age` before `now`, booted, heard from just now.
fn serving(pid: libc::pid_t, now: Instant, age: Duration) -> WorkerView {
    WorkerView {
        pid,
        generation: 0,
        started: now - age,
        booted: true,
        retiring: None,
        aborted: None,
        silence: Duration::ZERO,
    }
}

fn snapshot(workers: &[WorkerView], target: usize) -> Snapshot<'_> {
    Snapshot {
        workers,
        generation: 0,
        target,
        pending_forks: 0,
        preload: None,
        next_spawn: None,
        timeout: secs(30),
        graceful_timeout: secs(30),
    }
}

#[test]
fn a_new_generation_starts_with_one_worker_until_it_boots() {
    let now = Instant::now();
    assert_eq!(plan(&snapshot(&[], 4), now).spawn, 1);
    let booting = [WorkerView {
        booted: false,
        ..serving(10, now, secs(1))
    }];
    let waiting = plan(&snapshot(&booting, 4), now);
    assert_eq!(waiting.spawn, 0, "no more while the first boots");
    assert!(!waiting.booted);
    let booted = [serving(10, now, secs(1))];
    let rest = plan(&snapshot(&booted, 4), now);
    assert_eq!(rest.spawn, 3);
    assert!(rest.booted, "the boot failure count starts again");
}

#[test]
fn a_preloaded_app_starts_every_worker_at_once_when_loaded() {
    let now = Instant::now();
    let mut loaded = snapshot(&[], 3);
    loaded.preload = Some(PreloadState::Ready);
    loaded.pending_forks = 1;
    assert_eq!(plan(&loaded, now).spawn, 2, "a pending fork counts");
    loaded.preload = Some(PreloadState::Loading);
    assert_eq!(plan(&loaded, now).spawn, 0);
    loaded.preload = Some(PreloadState::Missing);
    let missing = plan(&loaded, now);
    assert_eq!((missing.spawn, missing.start_preloader), (0, true));
}

#[test]
fn no_worker_starts_before_the_backoff_ends() {
    let now = Instant::now();
    let mut backing_off = snapshot(&[], 2);
    backing_off.next_spawn = Some(now + secs(1));
    let waiting = plan(&backing_off, now);
    assert_eq!((waiting.spawn, waiting.clear_backoff), (0, false));
    let over = plan(&backing_off, now + secs(1));
    assert_eq!((over.spawn, over.clear_backoff), (1, true));
}

#[test]
fn above_the_target_the_oldest_workers_retire() {
    let now = Instant::now();
    let workers = [
        serving(10, now, secs(5)),
        serving(11, now, secs(9)),
        serving(12, now, secs(1)),
    ];
    let plan = plan(&snapshot(&workers, 1), now);
    assert_eq!(
        plan.retire,
        vec![(11, ExitReason::ScaleDown), (10, ExitReason::ScaleDown)]
    );
    assert_eq!(plan.spawn, 0);
}

#[test]
fn after_a_reload_the_old_workers_retire_once_the_new_ones_have_booted() {
    let now = Instant::now();
    let new = |pid, booted| WorkerView {
        generation: 1,
        booted,
        ..serving(pid, now, secs(1))
    };
    let old = [serving(10, now, secs(60)), serving(11, now, secs(60))];
    let reloading = |workers: &[WorkerView]| {
        let mut snapshot = snapshot(workers, 2);
        snapshot.generation = 1;
        let mut retired = plan(&snapshot, now).retire;
        retired.sort_by_key(|(pid, _)| *pid);
        retired
    };
    let booting = [old[0], old[1], new(20, true), new(21, false)];
    assert!(reloading(&booting).is_empty(), "one new worker still boots");
    let booted = [old[0], old[1], new(20, true), new(21, true)];
    assert_eq!(
        reloading(&booted),
        vec![(10, ExitReason::Reload), (11, ExitReason::Reload)]
    );
}

#[test]
fn a_silent_worker_is_aborted_then_killed_and_replaced_at_once() {
    let now = Instant::now();
    let silent = WorkerView {
        silence: secs(31),
        ..serving(10, now, secs(60))
    };
    let first = plan(&snapshot(&[silent], 1), now);
    assert_eq!(first.abort, vec![10]);
    assert_eq!(first.spawn, 1, "an aborted worker no longer counts");
    assert!(first.kill.is_empty());
    let aborted = WorkerView {
        aborted: Some(now),
        retiring: Some(now),
        ..silent
    };
    let replacement = serving(11, now, Duration::ZERO);
    let within = plan(&snapshot(&[aborted, replacement], 1), now + ABORT_GRACE);
    assert!(
        within.abort.is_empty() && within.kill.is_empty(),
        "{within:?}"
    );
    let after = plan(
        &snapshot(&[aborted, replacement], 1),
        now + ABORT_GRACE + secs(1),
    );
    assert_eq!(after.kill, vec![10]);
}

#[test]
fn a_worker_that_does_not_finish_booting_is_a_boot_failure_replaced_after_the_backoff() {
    let now = Instant::now();
    let hanging = WorkerView {
        booted: false,
        silence: secs(31),
        ..serving(10, now, secs(31))
    };
    let serving_one = serving(11, now, secs(60));
    let first = plan(&snapshot(&[hanging, serving_one], 2), now);
    assert_eq!(first.abort, vec![10]);
    assert_eq!(first.boot_timeouts, vec![10], "{first:?}");
    assert_eq!(
        first.spawn, 0,
        "no replacement before it is reaped: {first:?}"
    );
    let aborted = WorkerView {
        aborted: Some(now),
        retiring: Some(now),
        ..hanging
    };
    let waiting = plan(&snapshot(&[aborted, serving_one], 2), now + secs(1));
    assert_eq!(waiting.spawn, 0, "{waiting:?}");
    assert!(waiting.boot_timeouts.is_empty() && waiting.abort.is_empty());
    // Alone, it still holds back the generation's first worker.
    assert_eq!(plan(&snapshot(&[aborted], 2), now + secs(1)).spawn, 0);
    // A silent serving worker is a timeout, not a boot failure.
    let silent = WorkerView {
        silence: secs(31),
        ..serving_one
    };
    let timeout = plan(&snapshot(&[silent], 1), now);
    assert_eq!(timeout.abort, vec![11]);
    assert!(timeout.boot_timeouts.is_empty());
}

#[test]
fn silence_is_not_checked_with_timeout_zero_nor_for_retiring_workers() {
    let now = Instant::now();
    let silent = WorkerView {
        silence: secs(3600),
        ..serving(10, now, secs(3600))
    };
    let mut off = snapshot(std::slice::from_ref(&silent), 1);
    off.timeout = Duration::ZERO;
    assert!(plan(&off, now).abort.is_empty());
    let retiring = WorkerView {
        retiring: Some(now),
        ..silent
    };
    assert!(plan(&snapshot(&[retiring], 1), now).abort.is_empty());
}

#[test]
fn a_retiring_worker_is_killed_after_the_graceful_timeout_and_its_grace() {
    let now = Instant::now();
    let retiring = WorkerView {
        retiring: Some(now),
        ..serving(10, now, secs(60))
    };
    let workers = [retiring, serving(11, now, secs(1))];
    let limit = secs(30) + KILL_GRACE;
    assert!(plan(&snapshot(&workers, 1), now + limit).kill.is_empty());
    assert_eq!(
        plan(&snapshot(&workers, 1), now + limit + secs(1)).kill,
        vec![10]
    );
}

#[test]
fn boot_failures_back_off_doubling_then_stop() {
    assert_eq!(boot_backoff(1), Some(BOOT_BACKOFF));
    assert_eq!(boot_backoff(2), Some(BOOT_BACKOFF * 2));
    assert_eq!(boot_backoff(4), Some(BOOT_BACKOFF * 8));
    assert_eq!(boot_backoff(MAX_BOOT_FAILURES), None);
}
