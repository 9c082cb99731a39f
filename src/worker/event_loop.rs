//! The worker's event loop: one mio `Poll` owns every socket. It accepts,
//! reads and parses, hands complete requests to the interpreter threads, and
//! writes the replies they send back.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::accept_wakeup;
use super::activity::{Activity, new_clients_should_wait};
use super::admission::{self, Admission, Facts, Intake, Pause};
use super::connection::{Connection, ConnectionSettings};
use super::handoff::{ConnectionId, JobQueue, Reply, ReplyQueue};
use super::queue_room::QueueRoom;
use super::reload::FileWatcher;
use super::shedding::{self, Choice};
use super::tally::Tally;
use crate::log;
use crate::net::listener::{Listener, Stream};
use crate::net::peer::ConnectionInfo;
use crate::scoreboard::SharedSlot;
use crate::scoreboard::counters::{SelfRetirement, WorkerMetrics};
use crate::scoreboard::heartbeat::now_ms;
use crate::signals::SignalPipe;

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_BASE - i`; connections use their slab key.
const LISTENER_BASE: usize = usize::MAX - 2;
/// Clients accepted per wake-up of a listener.
const ACCEPTS_PER_WAKEUP: usize = 8;
/// How often timeouts are checked.
const TICK: Duration = Duration::from_secs(1);
/// How often while stopping gracefully: idle connections close after
/// [`super::connection::IDLE_AT_SHUTDOWN`], not a tick or two later.
const STOPPING_TICK: Duration = Duration::from_millis(50);
/// Signals a worker acts on (TERM, ABRT, INT/QUIT, USR1) or ignores (the others,
/// meant for the arbiter, whose default action would kill the worker).
const WORKER_SIGNALS: [libc::c_int; 9] = [
    libc::SIGTERM,
    libc::SIGABRT,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGHUP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGWINCH,
];

/// How the loop was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Finish in-flight requests (up to the graceful timeout), then exit.
    Graceful,
    /// Exit now.
    Immediate,
    /// The arbiter timed the worker out (SIGABRT): exit now.
    Abort,
}

/// What the loop needs besides its sockets.
pub struct LoopOptions {
    pub settings: ConnectionSettings,
    pub max_connections: usize,
    pub graceful_timeout: Duration,
    /// This worker's heartbeat and load slots (a worker process of an arbiter).
    pub slot: Option<SharedSlot>,
    pub activity: Arc<Activity>,
    /// Responses after which the worker retires (0: never).
    pub max_requests: u64,
    /// Where stop requests come from: signals (a worker process) or a flag
    /// set by a [`crate::embed::ServerHandle`] (library use, no signal handlers).
    pub stop_source: StopSource,
    /// `--reload`: the files whose change retires this worker.
    pub watcher: Option<FileWatcher>,
    /// `--certfile`: TLS on the TCP listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// How a running loop learns it should stop.
pub enum StopSource {
    /// SIGTERM (graceful), SIGINT/SIGQUIT (immediate); SIGUSR1 reopens logs.
    Signals,
    /// A graceful stop once the flag is set (the setter then wakes the loop).
    Flag(Arc<AtomicBool>),
}

/// A connection that used up its read or write budget, owed another turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OwedTurn(ConnectionId);

/// A listening socket and the server name and port its clients are told.
struct NamedListener {
    listener: Listener,
    name: (Arc<str>, Arc<str>),
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<NamedListener>,
    connections: Slab<Connection>,
    jobs: Arc<JobQueue>,
    replies: Arc<ReplyQueue>,
    signals: Option<SignalPipe>,
    options: LoopOptions,
    intake: Intake,
    /// Since when the loop has been stopping gracefully.
    stopping: Option<Instant>,
    next_generation: u64,
    responses: u64,
    /// Connections shed, for the log.
    shed_tally: Tally,
    /// Requests cut for arriving below `--min-request-rate`, for the log.
    slow_tally: Tally,
    /// Connections to read from again before the loop waits for events.
    owed_turns: Vec<OwedTurn>,
    queue_room: QueueRoom,
}

/// What the admission rule reads, borrowed from the loop.
struct LoopFacts<'a> {
    connections: &'a Slab<Connection>,
    options: &'a LoopOptions,
    jobs: &'a JobQueue,
    queue_room: &'a mut QueueRoom,
}

impl Facts for LoopFacts<'_> {
    fn connections(&self) -> usize {
        self.connections.len()
    }

    fn max_connections(&self) -> usize {
        self.options.max_connections
    }

    /// See [`new_clients_should_wait`].
    fn interpreters_unavailable(&self) -> bool {
        new_clients_should_wait(self.options.activity.all_busy_since_ms(), now_ms(), || {
            self.options
                .slot
                .is_some_and(|shared| shared.load.sibling_has_free_interpreter())
        })
    }

    fn shed_choice(&self, now: Instant) -> Choice {
        let costs = self
            .connections
            .iter()
            .map(|(slot, connection)| (slot, connection.shedding_cost(now)));
        shedding::choose(costs, now)
    }

    /// One queue for the whole server (see [`QueueRoom`]): only while a
    /// sibling takes clients too.
    fn queue_full(&mut self, now: Instant) -> bool {
        let Some(shared) = self.options.slot else {
            return false;
        };
        if !shared.load.has_sibling_taking_clients() {
            return false;
        }
        // Asked before looking, so a job taken in between still wakes us.
        self.jobs.wake_on_next_take(true);
        let interpreters = self.options.activity.threads();
        let full = self
            .queue_room
            .leave_to_backlog(self.jobs.state(), interpreters, now);
        if !full {
            self.jobs.wake_on_next_take(false);
        }
        full
    }

    fn sibling_holds_fewer(&self) -> bool {
        self.options
            .slot
            .is_some_and(|shared| shared.load.should_yield(self.connections.len(), now_ms()))
    }
}

impl EventLoop {
    /// The poll must be the one whose registry made the reply queue's waker.
    pub fn new(
        poll: Poll,
        listeners: Vec<Listener>,
        jobs: Arc<JobQueue>,
        replies: Arc<ReplyQueue>,
        options: LoopOptions,
    ) -> io::Result<EventLoop> {
        let signals = match options.stop_source {
            StopSource::Signals => {
                let mut signals = SignalPipe::install(&WORKER_SIGNALS)?;
                poll.registry()
                    .register(signals.receiver(), SIGNALS, Interest::READABLE)?;
                Some(signals)
            }
            StopSource::Flag(_) => None,
        };
        let mut named = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            accept_wakeup::watch(&poll, listener.as_raw_fd(), listener_token(index))?;
            let name = listener.server_name_port();
            named.push(NamedListener { listener, name });
        }
        let intake = if named.is_empty() {
            Intake::Stopped
        } else {
            Intake::Open
        };
        let mut event_loop = EventLoop {
            poll,
            listeners: named,
            connections: Slab::new(),
            jobs,
            replies,
            signals,
            options,
            intake,
            stopping: None,
            next_generation: 0,
            responses: 0,
            shed_tally: Tally::default(),
            slow_tally: Tally::default(),
            owed_turns: Vec::new(),
            queue_room: QueueRoom::new(),
        };
        // Its listeners are watched from here on: siblings should count it
        // before the worker reports itself booted.
        event_loop.publish_load();
        Ok(event_loop)
    }

    /// Serves until a stop signal; returns how it was asked to stop.
    pub fn run(&mut self) -> io::Result<Stop> {
        let mut events = Events::with_capacity(1024);
        let mut replies = Vec::new();
        let mut last_tick = Instant::now();
        loop {
            self.reconsider_intake();
            self.publish_load();
            let timeout = self.poll_timeout(last_tick, Instant::now());
            if let Err(error) = self.poll.poll(&mut events, Some(timeout))
                && error.kind() != io::ErrorKind::Interrupted
            {
                return Err(error);
            }
            for event in events.iter() {
                if let Some(stop) = self.on_event(event) {
                    return Ok(stop);
                }
            }
            self.give_owed_turns();
            self.replies.drain_into(&mut replies);
            for reply in replies.drain(..) {
                self.on_reply(reply);
            }
            self.look_for_reasons_to_stop();
            if last_tick.elapsed() >= self.tick() {
                last_tick = Instant::now();
                self.on_tick(last_tick);
            }
            if let Some(stop) = self.graceful_stop_over() {
                return Ok(stop);
            }
        }
    }

    /// How often timeouts are checked.
    fn tick(&self) -> Duration {
        match self.stopping {
            Some(_) => STOPPING_TICK,
            None => TICK,
        }
    }

    /// How long the poll may wait: until the next tick, or sooner when the
    /// intake should be looked at again or a connection is owed a turn.
    fn poll_timeout(&self, last_tick: Instant, now: Instant) -> Duration {
        if !self.owed_turns.is_empty() {
            return Duration::ZERO;
        }
        let tick_due = last_tick + self.tick();
        let patience = || self.queue_room.patience_ends(self.jobs.state());
        let until = admission::next_look(self.intake, now, patience)
            .map_or(tick_due, |look| look.min(tick_due));
        until.saturating_duration_since(now)
    }

    fn on_event(&mut self, event: &Event) -> Option<Stop> {
        match event.token() {
            WAKER => None,
            SIGNALS => self.on_signals(),
            token => {
                match self.listener_index(token) {
                    Some(index) => self.accept(index),
                    None => self.on_connection_event(
                        token.0,
                        event.is_readable(),
                        event.is_read_closed(),
                        event.is_writable(),
                    ),
                }
                None
            }
        }
    }

    fn on_signals(&mut self) -> Option<Stop> {
        let received = self.signals.as_mut().map(SignalPipe::drain);
        for signal in received.unwrap_or_default() {
            match signal {
                libc::SIGTERM => self.stop_gracefully("Worker received SIGTERM", None),
                libc::SIGINT | libc::SIGQUIT => {
                    log::info(&format!("Worker received signal {signal}: exiting now"));
                    return Some(Stop::Immediate);
                }
                libc::SIGABRT => {
                    log::critical(&format!(
                        "Worker timed out (pid: {}): exiting now",
                        std::process::id()
                    ));
                    return Some(Stop::Abort);
                }
                libc::SIGUSR1 => log::reopen(),
                _ => {}
            }
        }
        None
    }

    /// A stop flag set, a reason the worker found to retire, or its
    /// `--max-requests` reached.
    fn look_for_reasons_to_stop(&mut self) {
        if let StopSource::Flag(flag) = &self.options.stop_source
            && flag.load(Ordering::SeqCst)
        {
            self.stop_gracefully("Stop requested", None);
        }
        if let Some((kind, reason)) = self.options.activity.retire_reason() {
            self.stop_gracefully(&reason, Some(kind));
        }
        let max = self.options.max_requests;
        if max > 0 && self.responses >= max {
            let reason = format!("Autorestarting worker after {} requests", self.responses);
            self.stop_gracefully(&reason, Some(SelfRetirement::MaxRequests));
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.check_timeouts(now);
        if let Some(shared) = &self.options.slot {
            shared.beat.beat(self.options.activity.progress_ms());
        }
        let changed = self.options.watcher.as_ref().and_then(FileWatcher::changed);
        if let Some(path) = changed {
            let reason = format!("Worker reloading: {} modified", path.display());
            self.stop_gracefully(&reason, Some(SelfRetirement::CodeChanged));
        }
    }

    /// Stopping gracefully: done once no connection is left, or the
    /// graceful timeout has passed.
    fn graceful_stop_over(&self) -> Option<Stop> {
        let since = self.stopping?;
        if self.connections.is_empty() {
            return Some(Stop::Graceful);
        }
        if since.elapsed() > self.options.graceful_timeout {
            log::warning(&format!(
                "graceful timeout: closing {} connections still busy",
                self.connections.len()
            ));
            return Some(Stop::Graceful);
        }
        None
    }

    fn listener_index(&self, token: Token) -> Option<usize> {
        let index = LISTENER_BASE.checked_sub(token.0)?;
        (index < self.listeners.len()).then_some(index)
    }

    fn facts(&mut self) -> LoopFacts<'_> {
        LoopFacts {
            connections: &self.connections,
            options: &self.options,
            jobs: &self.jobs,
            queue_room: &mut self.queue_room,
        }
    }

    /// Takes clients waiting on listener `index`, as the admission rule says.
    fn accept(&mut self, index: usize) {
        // The listener is level-triggered: clients left waiting wake this
        // loop (or another worker's) again, so a wake-up takes a few only
        // and a burst of clients spreads over the workers.
        for _ in 0..ACCEPTS_PER_WAKEUP {
            if self.intake != Intake::Open {
                return;
            }
            let shed = match admission::admit(&mut self.facts(), Instant::now()) {
                Admission::Take { shed } => shed,
                Admission::Pause(pause) => return self.set_intake(Intake::Paused(pause)),
                Admission::Yield => return self.set_intake(Intake::Yielding),
            };
            if !self.accept_one(index, shed) {
                return;
            }
        }
    }

    /// Accepts one client; whether another may be waiting.
    fn accept_one(&mut self, index: usize, shed: Option<usize>) -> bool {
        let NamedListener { listener, name } = &self.listeners[index];
        match listener.accept(name) {
            Ok((stream, info)) => {
                self.take(stream, info, shed);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                log::error(&format!(
                    "accept failed: {e}: not accepting for {} ms or until a connection closes",
                    admission::DESCRIPTOR_PAUSE.as_millis()
                ));
                let since = Instant::now();
                self.set_intake(Intake::Paused(Pause::Descriptors { since }));
                false
            }
            Err(e) => {
                // Another failure (a client that reset before accept):
                // log and retry on the next event or tick.
                log::error(&format!("accept failed: {e}"));
                false
            }
        }
    }

    /// Starts serving an accepted client, after shedding `shed` for it.
    fn take(&mut self, stream: Stream, mut info: ConnectionInfo, shed: Option<usize>) {
        let mut stream = match &self.options.tls {
            Some(config) => match stream.with_tls(config, self.options.settings.proxy.protocol) {
                Ok(stream) => stream,
                Err(error) => {
                    log::error(&format!("cannot start TLS on a connection: {error}"));
                    return;
                }
            },
            None => stream,
        };
        info.https = stream.is_tls();
        // A client was waiting: only now is a connection shed for it.
        if let Some(slot) = shed {
            self.shed(slot);
        }
        let entry = self.connections.vacant_entry();
        let slot = entry.key();
        let registered = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(error) = registered {
            log::error(&format!("cannot register a connection: {error}"));
            return;
        }
        self.next_generation += 1;
        let id = ConnectionId {
            slot,
            generation: self.next_generation,
        };
        entry.insert(Connection::new(stream, id, info, &self.options.settings));
        if let Some(metrics) = self.metrics() {
            metrics.accepted();
            metrics.set_connections_open(self.connections.len());
        }
        // A request already sent is queued now, so that the next turn of
        // this loop sees it in the job queue.
        self.on_connection_event(slot, true, false, false);
    }

    fn on_connection_event(
        &mut self,
        slot: usize,
        readable: bool,
        read_closed: bool,
        writable: bool,
    ) {
        let Some(connection) = self.connections.get_mut(slot) else {
            return;
        };
        if writable {
            connection.on_writable();
        }
        if readable
            && !connection.is_closed()
            && let Some(job) = connection.on_readable(read_closed, &self.options.settings)
        {
            self.jobs.push(job);
        }
        self.settle(slot);
    }

    /// After a connection's turn: owed another one, or removed if closed.
    /// A connection is owed one turn at most: one both owed a turn and
    /// woken by an event in the same pass would otherwise gain an entry per
    /// pass, and as many turns, against the others.
    fn settle(&mut self, slot: usize) {
        if let Some(connection) = self.connections.get(slot) {
            let owed = OwedTurn(connection.id);
            if connection.wants_another_turn() && !self.owed_turns.contains(&owed) {
                self.owed_turns.push(owed);
            }
        }
        self.remove_if_closed(slot);
    }

    /// Reads or writes on for the connections that used up a budget last turn,
    /// after every other ready connection had its turn.
    fn give_owed_turns(&mut self) {
        for OwedTurn(id) in std::mem::take(&mut self.owed_turns) {
            let Some(connection) = self.connections.get_mut(id.slot) else {
                continue;
            };
            if connection.id.generation != id.generation || !connection.wants_another_turn() {
                continue;
            }
            if let Some(job) = connection.resume(&self.options.settings) {
                self.jobs.push(job);
            }
            self.settle(id.slot);
        }
    }

    fn on_reply(&mut self, reply: Reply) {
        let Reply {
            connection: ConnectionId { slot, generation },
            bytes,
            end,
        } = reply;
        let Some(connection) = self.connections.get_mut(slot) else {
            return;
        };
        if connection.id.generation != generation {
            return;
        }
        if end.is_some() {
            self.responses += 1;
        }
        if let Some(job) = connection.on_reply(bytes, end, &self.options.settings) {
            self.jobs.push(job);
        }
        self.settle(slot);
    }

    fn check_timeouts(&mut self, now: Instant) {
        // Closed, or owed a turn: an answer it had to send (a 408) may
        // have used up its write budget.
        let mut to_settle = Vec::new();
        let mut idle = 0;
        let mut too_slow = 0;
        for (slot, connection) in self.connections.iter_mut() {
            if connection.check_timeouts(now, &self.options.settings) {
                too_slow += 1;
            }
            if connection.is_closed() || connection.wants_another_turn() {
                to_settle.push(slot);
            } else if connection.is_idle() {
                idle += 1;
            }
        }
        if let Some(metrics) = self.metrics() {
            metrics.set_connections_idle(idle);
        }
        let rate = self.options.settings.min_rate;
        for _ in 0..too_slow {
            if let Some(cut) = self.slow_tally.record(now) {
                log::warning(&format!(
                    "Cut {cut} request(s) with 408: they arrived slower than --min-request-rate \
                     ({} bytes/s on average after {} s)",
                    rate.bytes_per_second,
                    rate.grace.as_secs()
                ));
            }
        }
        for slot in to_settle {
            self.settle(slot);
        }
    }

    fn remove_if_closed(&mut self, slot: usize) {
        if !self
            .connections
            .get(slot)
            .is_some_and(Connection::is_closed)
        {
            return;
        }
        let mut connection = self.connections.remove(slot);
        connection.abandon();
        let _ = self.poll.registry().deregister(&mut connection.stream);
        // Its descriptor is free once it is dropped.
        drop(connection);
        if let Some(metrics) = self.metrics() {
            metrics.set_connections_open(self.connections.len());
        }
        self.set_intake(admission::after_connection_closed(self.intake));
    }

    /// Takes clients again once the reason to pause (or to yield) is gone.
    /// Called once per turn of the loop, never from `accept`'s own paths.
    fn reconsider_intake(&mut self) {
        let now = Instant::now();
        let resume = match self.intake {
            Intake::Paused(pause) => admission::may_resume(pause, &mut self.facts(), now),
            Intake::Yielding => admission::may_stop_yielding(&self.facts()),
            Intake::Open | Intake::Stopped => false,
        };
        if resume {
            self.set_intake(Intake::Open);
            // Clients waiting in the backlog are taken in this turn, not
            // after another poll: a newcomer waits no longer than it must.
            for index in 0..self.listeners.len() {
                self.accept(index);
            }
        }
    }

    /// The one place the intake changes: listeners are watched exactly
    /// while it is open, and a stopped intake stays stopped.
    fn set_intake(&mut self, next: Intake) {
        let was = self.intake;
        if was == Intake::Stopped || was == next {
            return;
        }
        self.intake = next;
        match (was == Intake::Open, next == Intake::Open) {
            (true, false) => self.unwatch_listeners(),
            (false, true) => self.watch_listeners(),
            _ => {}
        }
    }

    /// Closes a connection for a client waiting at the limit.
    fn shed(&mut self, slot: usize) {
        if let Some(connection) = self.connections.get_mut(slot) {
            connection.shed();
        }
        if let Some(metrics) = self.metrics() {
            metrics.shed();
        }
        if let Some(shed) = self.shed_tally.record(Instant::now()) {
            log::warning(&format!(
                "At the connection limit ({}, --worker-connections): closed {shed} idle or slow \
                 connection(s) to take new clients",
                self.options.max_connections
            ));
        }
        self.remove_if_closed(slot);
    }

    /// Publishes this worker's connection count and whether it takes clients.
    fn publish_load(&mut self) {
        let Some(shared) = self.options.slot else {
            return;
        };
        let intake = self.intake;
        let taking_clients = admission::counts_as_taking(intake, &self.facts());
        shared.load.publish(
            taking_clients.then_some(self.connections.len()),
            intake == Intake::Open,
            self.options.activity.all_busy_since_ms(),
        );
    }

    fn unwatch_listeners(&self) {
        for named in &self.listeners {
            accept_wakeup::unwatch(&self.poll, named.listener.as_raw_fd());
        }
    }

    /// Watches the listeners: the clients already waiting wake the next poll.
    fn watch_listeners(&self) {
        for (index, named) in self.listeners.iter().enumerate() {
            let fd = named.listener.as_raw_fd();
            if let Err(error) = accept_wakeup::watch(&self.poll, fd, listener_token(index)) {
                log::error(&format!("cannot watch a listener again: {error}"));
            }
        }
    }

    /// The worker's counters, when the arbiter keeps them.
    fn metrics(&self) -> Option<WorkerMetrics> {
        self.options.slot.and_then(|slot| slot.metrics)
    }

    /// Stops taking clients and exits once the requests in flight are done;
    /// `own_reason` when the worker decided to (not told by a signal).
    fn stop_gracefully(&mut self, reason: &str, own_reason: Option<SelfRetirement>) {
        if let (Some(metrics), Some(own)) = (self.metrics(), own_reason) {
            metrics.retiring(own);
        }
        if self.stopping.is_none() {
            log::info(&format!(
                "{reason}: finishing requests in flight, then exiting"
            ));
            self.stopping = Some(Instant::now());
            self.begin_graceful_stop();
        }
    }

    fn begin_graceful_stop(&mut self) {
        // The listening sockets stay open in the arbiter and the other
        // workers; this worker only stops taking connections from them.
        self.unwatch_listeners();
        self.intake = Intake::Stopped;
        self.listeners.clear();
        let slots: Vec<usize> = self.connections.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(connection) = self.connections.get_mut(slot) {
                connection.shut_down();
            }
            self.remove_if_closed(slot);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }
}

fn listener_token(index: usize) -> Token {
    Token(LISTENER_BASE - index)
}
