//! The worker's event loop: one mio `Poll` owns every socket. It accepts,
//! reads and parses, hands complete requests to the interpreter threads, and
//! writes the replies they send back.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::accept_wakeup;
use super::activity::{Activity, new_clients_should_wait};
use super::connection::{Connection, ConnectionSettings};
use super::handoff::{ConnectionId, JobQueue, Reply, ReplyQueue};
use super::queue_room::QueueRoom;
use super::reload::FileWatcher;
use super::shedding::{self, Choice, ShedReport};
use crate::log;
use crate::net::listener::Listener;
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
/// How soon a worker leaving new clients to a sibling looks at the counts
/// again when nothing else wakes it.
const REBALANCE: Duration = Duration::from_millis(5);
/// How long a worker out of file descriptors (EMFILE, ENFILE) stops
/// accepting, unless a connection of its own closes first. A listener is
/// level-triggered: retrying at once would spin a core.
const DESCRIPTOR_PAUSE: Duration = Duration::from_millis(250);

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
    pub shared: Option<SharedSlot>,
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

/// Whether the worker takes new clients, and if not, why: the one place
/// that says whether its listeners are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    /// Watching the listeners.
    Open,
    /// Listeners unwatched: a sibling worker holds clearly fewer
    /// connections (see [`crate::scoreboard::load_board`]).
    Yielding,
    /// Listeners unwatched until the pause's reason is gone.
    Paused(Pause),
    /// Stopping, or nothing to listen on: never again.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// Every interpreter is busy (see [`new_clients_should_wait`]).
    Busy,
    /// A request already waits for each interpreter: new clients stay in
    /// the listen backlog (see [`EventLoop::leave_to_backlog`]) until a
    /// thread takes a job, which wakes the loop, or the queue has stayed
    /// full while moving (see [`QueueRoom`]).
    Queued,
    /// Accept failed for want of file descriptors, at `since`: until a
    /// connection closes or [`DESCRIPTOR_PAUSE`] has passed.
    Descriptors { since: Instant },
    /// At `--worker-connections` with nothing to shed yet: look again at
    /// `retry_at`, or when a connection closes.
    Limit { retry_at: Instant },
}

/// A connection that used up its read or write budget, owed another turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OwedTurn(ConnectionId);

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<(Listener, (Arc<str>, Arc<str>))>,
    connections: Slab<Connection>,
    jobs: Arc<JobQueue>,
    replies: Arc<ReplyQueue>,
    signals: Option<SignalPipe>,
    options: LoopOptions,
    intake: Intake,
    next_generation: u64,
    responses: u64,
    shed_report: ShedReport,
    /// Connections to read from again before the loop waits for events.
    owed_turns: Vec<OwedTurn>,
    queue_room: QueueRoom,
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
            accept_wakeup::watch(&poll, listener.as_raw_fd(), Token(LISTENER_BASE - index))?;
            let name = listener.server_name_port();
            named.push((listener, name));
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
            next_generation: 0,
            responses: 0,
            shed_report: ShedReport::default(),
            owed_turns: Vec::new(),
            queue_room: QueueRoom::new(),
        };
        // Its listeners are watched from here on: siblings should count it
        // before the worker reports itself booted.
        event_loop.balance();
        Ok(event_loop)
    }

    /// Serves until a stop signal; returns how it was asked to stop.
    pub fn run(&mut self) -> io::Result<Stop> {
        let mut events = Events::with_capacity(1024);
        let mut replies = Vec::new();
        let mut last_tick = Instant::now();
        let mut stopping: Option<Instant> = None;
        loop {
            self.balance();
            let tick = if stopping.is_some() {
                STOPPING_TICK
            } else {
                TICK
            };
            let mut timeout = tick.saturating_sub(last_tick.elapsed());
            let now = Instant::now();
            match self.intake {
                Intake::Yielding => timeout = timeout.min(REBALANCE),
                Intake::Paused(Pause::Descriptors { since }) => {
                    timeout = timeout.min(DESCRIPTOR_PAUSE.saturating_sub(since.elapsed()));
                }
                // Once passed, the retry only widens `may_resume`: the other
                // reasons to pause have wake-ups of their own (no zero timeout).
                Intake::Paused(Pause::Limit { retry_at }) if retry_at > now => {
                    timeout = timeout.min(retry_at - now);
                }
                // Until the queue moves, a thread taking a job wakes the loop.
                Intake::Paused(Pause::Queued) => {
                    if let Some(end) = self.queue_room.patience_ends(self.jobs.state()) {
                        timeout = timeout.min(end.saturating_duration_since(now));
                    }
                }
                _ => {}
            }
            if !self.owed_turns.is_empty() {
                timeout = Duration::ZERO;
            }
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    SIGNALS => {
                        let received = self.signals.as_mut().map(SignalPipe::drain);
                        for signal in received.unwrap_or_default() {
                            match signal {
                                libc::SIGTERM => self.stop_gracefully(
                                    &mut stopping,
                                    "Worker received SIGTERM",
                                    None,
                                ),
                                libc::SIGINT | libc::SIGQUIT => {
                                    log::info(&format!(
                                        "Worker received signal {signal}: exiting now"
                                    ));
                                    return Ok(Stop::Immediate);
                                }
                                libc::SIGABRT => {
                                    log::critical(&format!(
                                        "Worker timed out (pid: {}): exiting now",
                                        std::process::id()
                                    ));
                                    return Ok(Stop::Abort);
                                }
                                libc::SIGUSR1 => log::reopen(),
                                _ => {}
                            }
                        }
                    }
                    Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                        self.accept(LISTENER_BASE - t);
                    }
                    Token(slot) => self.on_connection_event(
                        slot,
                        event.is_readable(),
                        event.is_read_closed(),
                        event.is_writable(),
                    ),
                }
            }
            self.give_owed_turns();
            self.replies.drain_into(&mut replies);
            for reply in replies.drain(..) {
                self.on_reply(reply);
            }
            self.reconsider_intake();
            if let StopSource::Flag(flag) = &self.options.stop_source {
                if flag.load(Ordering::SeqCst) {
                    self.stop_gracefully(&mut stopping, "Stop requested", None);
                }
            }
            if let Some((kind, reason)) = self.options.activity.retire_reason() {
                self.stop_gracefully(&mut stopping, &reason, Some(kind));
            }
            let max = self.options.max_requests;
            if max > 0 && self.responses >= max {
                let reason = format!("Autorestarting worker after {} requests", self.responses);
                self.stop_gracefully(&mut stopping, &reason, Some(SelfRetirement::MaxRequests));
            }
            if last_tick.elapsed() >= tick {
                last_tick = Instant::now();
                self.check_timeouts(last_tick);
                if let Some(shared) = &self.options.shared {
                    shared.beat.beat(self.options.activity.progress_ms());
                }
                let changed = self.options.watcher.as_ref().and_then(FileWatcher::changed);
                if let Some(path) = changed {
                    let reason = format!("Worker reloading: {} modified", path.display());
                    self.stop_gracefully(&mut stopping, &reason, Some(SelfRetirement::CodeChanged));
                }
            }
            if let Some(since) = stopping {
                if self.connections.is_empty() {
                    return Ok(Stop::Graceful);
                }
                if since.elapsed() > self.options.graceful_timeout {
                    log::warning(&format!(
                        "graceful timeout: closing {} connections still busy",
                        self.connections.len()
                    ));
                    return Ok(Stop::Graceful);
                }
            }
        }
    }

    fn accept(&mut self, index: usize) {
        // The listener is level-triggered: clients left waiting wake this
        // loop (or another worker's) again, so a wake-up takes a few only
        // and a burst of clients spreads over the workers.
        for _ in 0..ACCEPTS_PER_WAKEUP {
            if self.intake != Intake::Open {
                return;
            }
            if self.interpreters_unavailable() {
                self.pause(Pause::Busy);
                return;
            }
            let mut make_room = None;
            if self.connections.len() >= self.options.max_connections {
                let retry_at = match self.choose_connection_to_shed() {
                    Choice::Shed(slot) => {
                        make_room = Some(slot);
                        None
                    }
                    Choice::RetryAt(at) => Some(at),
                    Choice::Nothing => Some(Instant::now() + shedding::GRACE),
                };
                if let Some(retry_at) = retry_at {
                    // Paused until then, or until a connection closes; the
                    // kernel queues new clients in the listen backlog.
                    self.pause(Pause::Limit { retry_at });
                    return;
                }
            }
            if self.leave_to_backlog() {
                self.pause(Pause::Queued);
                return;
            }
            if self.sibling_holds_fewer() {
                self.yield_to_siblings();
                return;
            }
            let (listener, name) = &self.listeners[index];
            match listener.accept(name) {
                Ok((stream, mut info)) => {
                    let mut stream = match &self.options.tls {
                        Some(config) => match stream.with_tls(config) {
                            Ok(stream) => stream,
                            Err(error) => {
                                log::error(&format!("cannot start TLS on a connection: {error}"));
                                continue;
                            }
                        },
                        None => stream,
                    };
                    info.https = stream.is_tls();
                    // A client was waiting: only now is a connection shed for it.
                    if let Some(slot) = make_room {
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
                        continue;
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
                    // A request already sent is queued now, so that the
                    // next turn of this loop sees it in the job queue.
                    self.on_connection_event(slot, true, false, false);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    log::error(&format!(
                        "accept failed: {e}: not accepting for {} ms or until a connection closes",
                        DESCRIPTOR_PAUSE.as_millis()
                    ));
                    self.pause(Pause::Descriptors {
                        since: Instant::now(),
                    });
                    return;
                }
                Err(e) => {
                    // Another failure (a client that reset before accept):
                    // log and retry on the next event or tick.
                    log::error(&format!("accept failed: {e}"));
                    return;
                }
            }
        }
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
        if readable && !connection.is_closed() {
            if let Some(job) = connection.on_readable(read_closed, &self.options.settings) {
                self.jobs.push(job);
            }
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
        for (slot, connection) in self.connections.iter_mut() {
            connection.check_timeouts(now, &self.options.settings);
            if connection.is_closed() || connection.wants_another_turn() {
                to_settle.push(slot);
            } else if connection.is_idle() {
                idle += 1;
            }
        }
        if let Some(metrics) = self.metrics() {
            metrics.set_connections_idle(idle);
        }
        for slot in to_settle {
            self.settle(slot);
        }
        self.reconsider_intake();
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
        if let Intake::Paused(Pause::Descriptors { .. }) = self.intake {
            self.intake = Intake::Paused(Pause::Busy);
        }
        self.reconsider_intake();
    }

    /// Takes clients again once the reason to pause is gone.
    fn reconsider_intake(&mut self) {
        let Intake::Paused(pause) = self.intake else {
            return;
        };
        let now = Instant::now();
        let (waited, retry_due) = match pause {
            Pause::Busy => (true, false),
            Pause::Queued => (!self.leave_to_backlog(), false),
            Pause::Descriptors { since } => (now.duration_since(since) >= DESCRIPTOR_PAUSE, false),
            Pause::Limit { retry_at } => (true, now >= retry_at),
        };
        let room = self.connections.len() < self.options.max_connections || retry_due;
        if waited && room && !self.interpreters_unavailable() {
            self.intake = Intake::Open;
            self.watch_listeners();
        }
    }

    fn choose_connection_to_shed(&self) -> Choice {
        let costs = self
            .connections
            .iter()
            .map(|(slot, connection)| (slot, connection.shedding_cost()));
        shedding::choose(costs, Instant::now())
    }

    /// Closes a connection for a client waiting at the limit.
    fn shed(&mut self, slot: usize) {
        if let Some(connection) = self.connections.get_mut(slot) {
            connection.shed();
        }
        if let Some(metrics) = self.metrics() {
            metrics.shed();
        }
        if let Some(line) = self
            .shed_report
            .record(Instant::now(), self.options.max_connections)
        {
            log::warning(&line);
        }
        self.remove_if_closed(slot);
    }

    /// See [`new_clients_should_wait`].
    fn interpreters_unavailable(&self) -> bool {
        new_clients_should_wait(self.options.activity.all_busy_since_ms(), now_ms(), || {
            self.options
                .shared
                .is_some_and(|shared| shared.load.sibling_has_free_interpreter())
        })
    }

    /// Whether new clients should stay in the listen backlog, one queue for
    /// the whole server (see [`QueueRoom`]): only while a sibling takes
    /// clients too.
    fn leave_to_backlog(&mut self) -> bool {
        let Some(shared) = self.options.shared else {
            return false;
        };
        if !shared.load.has_sibling_taking_clients() {
            return false;
        }
        // Asked before looking, so a job taken in between still wakes us.
        self.jobs.wake_on_next_take(true);
        let interpreters = self.options.activity.threads();
        let leave =
            self.queue_room
                .leave_to_backlog(self.jobs.state(), interpreters, Instant::now());
        if !leave {
            self.jobs.wake_on_next_take(false);
        }
        leave
    }

    /// Stops taking clients: their listeners stop waking this loop.
    fn pause(&mut self, pause: Pause) {
        match self.intake {
            Intake::Open => self.unwatch_listeners(),
            Intake::Yielding | Intake::Paused(_) => {}
            Intake::Stopped => return,
        }
        self.intake = Intake::Paused(pause);
    }

    fn sibling_holds_fewer(&self) -> bool {
        self.options
            .shared
            .is_some_and(|shared| shared.load.should_yield(self.connections.len(), now_ms()))
    }

    /// Leaves new clients to the siblings still watching the listeners.
    fn yield_to_siblings(&mut self) {
        if self.intake == Intake::Open {
            self.intake = Intake::Yielding;
            self.unwatch_listeners();
        }
    }

    /// Publishes this worker's connection count, and watches the listeners
    /// again once no sibling holds clearly fewer.
    fn balance(&mut self) {
        let Some(shared) = self.options.shared else {
            return;
        };
        // Paused for its descriptors or its limit, or stopping, a worker
        // takes no clients; yielding, or waiting for a free interpreter, it
        // does once the counts even out or one frees, so it still counts
        // (see crate::scoreboard::load_board). Only one watching its
        // listeners offers a free interpreter to new clients.
        let taking_clients = matches!(
            self.intake,
            Intake::Open | Intake::Yielding | Intake::Paused(Pause::Busy | Pause::Queued)
        ) && self.connections.len() < self.options.max_connections;
        shared.load.publish(
            taking_clients.then_some(self.connections.len()),
            self.intake == Intake::Open,
            self.options.activity.all_busy_since_ms(),
        );
        if self.intake == Intake::Yielding && !self.sibling_holds_fewer() {
            self.intake = Intake::Open;
            self.watch_listeners();
        }
    }

    fn unwatch_listeners(&self) {
        for (listener, _) in &self.listeners {
            accept_wakeup::unwatch(&self.poll, listener.as_raw_fd());
        }
    }

    /// Watches the listeners and takes the clients already waiting.
    fn watch_listeners(&mut self) {
        for (index, (listener, _)) in self.listeners.iter().enumerate() {
            let token = Token(LISTENER_BASE - index);
            if let Err(error) = accept_wakeup::watch(&self.poll, listener.as_raw_fd(), token) {
                log::error(&format!("cannot watch a listener again: {error}"));
            }
        }
        for index in 0..self.listeners.len() {
            self.accept(index);
        }
    }

    /// Starts a graceful stop once; `stopping` records when.
    /// The worker's counters, when the arbiter keeps them.
    fn metrics(&self) -> Option<WorkerMetrics> {
        self.options.shared.and_then(|slot| slot.metrics)
    }

    /// Stops taking clients and exits once the requests in flight are done;
    /// `own_reason` when the worker decided to (not told by a signal).
    fn stop_gracefully(
        &mut self,
        stopping: &mut Option<Instant>,
        reason: &str,
        own_reason: Option<SelfRetirement>,
    ) {
        if let (Some(metrics), Some(own)) = (self.metrics(), own_reason) {
            metrics.retiring(own);
        }
        if stopping.is_none() {
            log::info(&format!(
                "{reason}: finishing requests in flight, then exiting"
            ));
            *stopping = Some(Instant::now());
            self.begin_graceful_stop();
        }
    }

    fn begin_graceful_stop(&mut self) {
        self.intake = Intake::Stopped;
        // The listening sockets stay open in the arbiter and the other
        // workers; this worker only stops taking connections from them.
        for (listener, _) in self.listeners.drain(..) {
            accept_wakeup::unwatch(&self.poll, listener.as_raw_fd());
        }
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
