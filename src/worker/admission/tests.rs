use std::time::{Duration, Instant};

use super::*;
use crate::worker::shedding::SheddingCost;

/// A worker's situation, with a clock the test moves.
struct Fake {
    connections: usize,
    max_connections: usize,
    interpreters_unavailable: bool,
    /// The connections' shedding costs, by slab key (`None`: a request in progress).
    costs: Vec<Option<SheddingCost>>,
    queue_full: bool,
    queue_looks: usize,
    sibling_holds_fewer: bool,
}

fn worker() -> Fake {
    Fake {
        connections: 3,
        max_connections: 10,
        interpreters_unavailable: false,
        costs: Vec::new(),
        queue_full: false,
        queue_looks: 0,
        sibling_holds_fewer: false,
    }
}

impl Facts for Fake {
    fn connections(&self) -> usize {
        self.connections
    }
    fn max_connections(&self) -> usize {
        self.max_connections
    }
    fn interpreters_unavailable(&self) -> bool {
        self.interpreters_unavailable
    }
    fn shed_choice(&self, now: Instant) -> Choice {
        shedding::choose(self.costs.iter().copied().enumerate(), now)
    }
    fn queue_full(&mut self, _now: Instant) -> bool {
        self.queue_looks += 1;
        self.queue_full
    }
    fn sibling_holds_fewer(&self) -> bool {
        self.sibling_holds_fewer
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_worker_with_room_and_a_free_interpreter_takes_the_client() {
    let now = Instant::now();
    assert_eq!(admit(&mut worker(), now), Admission::Take { shed: None });
}

#[test]
fn busy_interpreters_pause_before_anything_else_is_looked_at() {
    let now = Instant::now();
    let mut fake = Fake {
        interpreters_unavailable: true,
        connections: 10,
        queue_full: true,
        ..worker()
    };
    assert_eq!(admit(&mut fake, now), Admission::Pause(Pause::Busy));
    assert_eq!(fake.queue_looks, 0, "the queue's patience must not start");
}

#[test]
fn at_the_limit_the_oldest_idle_connection_past_its_grace_makes_room() {
    let start = Instant::now();
    let now = start + ms(500);
    let mut fake = Fake {
        connections: 3,
        max_connections: 3,
        costs: vec![
            None,
            Some(SheddingCost::Idle {
                since: start + ms(100),
            }),
            Some(SheddingCost::Idle { since: start }),
        ],
        ..worker()
    };
    assert_eq!(admit(&mut fake, now), Admission::Take { shed: Some(2) });
}

#[test]
fn at_the_limit_a_connection_within_its_grace_sets_the_retry() {
    let now = Instant::now();
    let since = now - ms(40);
    let mut fake = Fake {
        connections: 1,
        max_connections: 1,
        costs: vec![Some(SheddingCost::PartialHead { received: 3, since })],
        ..worker()
    };
    let retry_at = since + shedding::GRACE;
    assert_eq!(
        admit(&mut fake, now),
        Admission::Pause(Pause::Limit { retry_at })
    );
}

#[test]
fn at_the_limit_with_every_request_in_progress_the_worker_looks_again_after_the_grace() {
    let now = Instant::now();
    let mut fake = Fake {
        connections: 2,
        max_connections: 2,
        costs: vec![None, None],
        ..worker()
    };
    let retry_at = now + shedding::GRACE;
    assert_eq!(
        admit(&mut fake, now),
        Admission::Pause(Pause::Limit { retry_at })
    );
}

#[test]
fn a_full_queue_leaves_clients_in_the_backlog_and_a_lighter_sibling_takes_them() {
    let now = Instant::now();
    let mut queued = Fake {
        queue_full: true,
        sibling_holds_fewer: true,
        ..worker()
    };
    assert_eq!(admit(&mut queued, now), Admission::Pause(Pause::Queued));
    let mut yielding = Fake {
        sibling_holds_fewer: true,
        ..worker()
    };
    assert_eq!(admit(&mut yielding, now), Admission::Yield);
}

#[test]
fn a_descriptor_pause_lasts_its_time_unless_a_connection_closes() {
    let since = Instant::now();
    let pause = Pause::Descriptors { since };
    let mut fake = worker();
    assert!(!may_resume(
        pause,
        &mut fake,
        since + DESCRIPTOR_PAUSE - ms(1)
    ));
    assert!(may_resume(pause, &mut fake, since + DESCRIPTOR_PAUSE));
    let closed = after_connection_closed(Intake::Paused(pause));
    assert_eq!(closed, Intake::Paused(Pause::Busy));
    let Intake::Paused(busy) = closed else {
        unreachable!()
    };
    assert!(may_resume(busy, &mut fake, since + ms(1)));
}

#[test]
fn a_limit_pause_resumes_when_a_connection_closes_or_the_retry_is_due() {
    let now = Instant::now();
    let retry_at = now + ms(60);
    let pause = Pause::Limit { retry_at };
    let mut full = Fake {
        connections: 4,
        max_connections: 4,
        ..worker()
    };
    assert!(!may_resume(pause, &mut full, now));
    assert!(may_resume(pause, &mut full, retry_at));
    let mut one_closed = Fake {
        connections: 3,
        max_connections: 4,
        ..worker()
    };
    assert!(may_resume(pause, &mut one_closed, now));
}

#[test]
fn no_pause_ends_while_the_interpreters_are_unavailable() {
    let now = Instant::now();
    let mut fake = Fake {
        interpreters_unavailable: true,
        ..worker()
    };
    for pause in [
        Pause::Busy,
        Pause::Queued,
        Pause::Descriptors {
            since: now - ms(1000),
        },
        Pause::Limit { retry_at: now },
    ] {
        assert!(!may_resume(pause, &mut fake, now), "{pause:?}");
    }
}

#[test]
fn a_queue_pause_ends_when_the_queue_has_room() {
    let now = Instant::now();
    let mut fake = Fake {
        queue_full: true,
        ..worker()
    };
    assert!(!may_resume(Pause::Queued, &mut fake, now));
    fake.queue_full = false;
    assert!(may_resume(Pause::Queued, &mut fake, now));
}

#[test]
fn siblings_count_a_worker_as_taking_clients_only_while_it_could() {
    let now = Instant::now();
    let fake = worker();
    let at_limit = Fake {
        connections: 10,
        ..worker()
    };
    for intake in [
        Intake::Open,
        Intake::Yielding,
        Intake::Paused(Pause::Busy),
        Intake::Paused(Pause::Queued),
    ] {
        assert!(counts_as_taking(intake, &fake), "{intake:?}");
        assert!(
            !counts_as_taking(intake, &at_limit),
            "{intake:?} at the limit"
        );
    }
    for intake in [
        Intake::Stopped,
        Intake::Paused(Pause::Descriptors { since: now }),
        Intake::Paused(Pause::Limit { retry_at: now }),
    ] {
        assert!(!counts_as_taking(intake, &fake), "{intake:?}");
    }
    let even = Fake {
        sibling_holds_fewer: false,
        ..worker()
    };
    assert!(may_stop_yielding(&even));
    assert!(!may_stop_yielding(&Fake {
        sibling_holds_fewer: true,
        ..worker()
    }));
}

#[test]
fn the_loop_looks_again_when_a_pause_can_end_by_itself() {
    let now = Instant::now();
    let patience = || Some(now + ms(7));
    assert_eq!(next_look(Intake::Open, now, patience), None);
    assert_eq!(next_look(Intake::Paused(Pause::Busy), now, patience), None);
    assert_eq!(
        next_look(Intake::Yielding, now, || None),
        Some(now + REBALANCE)
    );
    assert_eq!(
        next_look(Intake::Paused(Pause::Queued), now, patience),
        patience()
    );
    assert_eq!(next_look(Intake::Paused(Pause::Queued), now, || None), None);
    let since = now - ms(100);
    assert_eq!(
        next_look(Intake::Paused(Pause::Descriptors { since }), now, || None),
        Some(since + DESCRIPTOR_PAUSE)
    );
    let retry_at = now + ms(30);
    assert_eq!(
        next_look(Intake::Paused(Pause::Limit { retry_at }), now, || None),
        Some(retry_at)
    );
    // A retry already due is `may_resume`'s business, not a zero wait.
    assert_eq!(
        next_look(
            Intake::Paused(Pause::Limit { retry_at }),
            retry_at + ms(1),
            || None
        ),
        None
    );
}
