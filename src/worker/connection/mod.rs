//! One client connection: reads and checks requests (head, then the whole
//! body), hands complete ones out as jobs, and writes responses back in order.
//! One request per connection is with the app at a time, so pipelined
//! responses cannot overtake each other.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod arrival;
mod io_buffers;
mod proxy_trust;
mod settings;
#[cfg(test)]
mod tests;

pub use arrival::MinRate;
pub use settings::ConnectionSettings;
#[cfg(test)]
use settings::ProxySettings;

use super::handoff::{ConnectionId, FlowControl, Job, ResponseEnd};
use super::shedding::SheddingCost;
use crate::http::ParseError;
use crate::http::body::{BodyBuffer, BodyDecoder, RequestBody};
use crate::http::framing::BodyFraming;
use crate::http::head::{HeadScanner, RequestHead, parse_head};
use crate::http::proxy_protocol::{self, ProxyHeader};
use crate::http::response::{error_response, reason_phrase};
use crate::log;
use crate::net::listener::{ConnectionStream, Stream};
use crate::net::peer::ConnectionInfo;
use crate::scoreboard::counters::WorkerMetrics;
use arrival::Arrival;
use io_buffers::{ReadBuffer, ReadOutcome, WriteQueue};

/// Input buffered ahead (pipelined requests) while a request is with the app.
const MAX_READ_AHEAD: usize = 64 * 1024;
/// Most bytes one connection reads per turn of the event loop: a client
/// uploading faster than the loop parses would otherwise hold the loop, and
/// every other connection of the worker, for its whole body.
pub const READ_BUDGET: usize = 256 * 1024;
/// Most bytes one connection writes per turn, for the same reason: loopback
/// and fast clients take megabytes per `writev`, and a turn over many
/// downloads then lasts so long that a new request, and the first bytes of
/// its response, wait for all of it (64 clients of 1 MB responses, `-w 2`:
/// the longest turn 30-41 ms, with this budget 21-26 ms; the longest wait
/// of a new client 66 ms, with it 34 ms). nginx bounds a `sendfile` call
/// the same way (`sendfile_max_chunk`).
pub const WRITE_BUDGET: usize = 256 * 1024;
/// How long unread input is drained after an error response before closing,
/// so the kernel does not answer the client's unread data with a reset that
/// destroys our response (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(2);

/// How long a TLS handshake may take (at most `--read-timeout`): it holds
/// no interpreter, but a client that stalls in it should not hold a slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection idle between requests stays open once its worker
/// stops gracefully, for a request its client may already have sent.
pub const IDLE_AT_SHUTDOWN: Duration = Duration::from_millis(300);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

enum State {
    /// Waiting for the PROXY header that may start the connection.
    ProxyHeader,
    /// Waiting for (more of) a request head.
    Head(HeadScanner),
    /// Receiving the body of `head`.
    Body {
        head: Box<RequestHead>,
        decoder: BodyDecoder,
        buffer: BodyBuffer,
    },
    /// The request is with an interpreter thread; replies stream in.
    InApp,
    /// Sending the last response, then closing.
    Closing,
    /// Write side shut; discarding input until EOF or the linger time passes.
    Lingering {
        since: Instant,
    },
    Closed,
}

/// Whether the connection reads from its socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Edge-triggered readiness not yet used up.
    Ready,
    /// The last turn ended on [`READ_BUDGET`] with input perhaps left: the
    /// loop owes it another turn.
    OutOfBudget,
    /// A WouldBlock, or a short read that emptied the socket: the next
    /// readiness event says when to read again.
    AwaitingEvent,
}

/// What the client has said of its sending side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerInput {
    Open,
    /// A readiness event said it shut its side: read on to the end of
    /// stream even after a short read (no further event will come).
    HangingUp,
    /// The end of stream was read.
    Ended,
}

/// Whether the connection writes to its socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    Ready,
    /// The last write ended on [`WRITE_BUDGET`] with output left: nothing
    /// more until the loop gives the owed turn.
    OutOfBudget,
}

/// What parsing buffered input came to. Lives for one call: boxing the job
/// would cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// The state changed: parse on.
    Again,
    /// Nothing more to do until more input (or ever).
    Wait,
    /// A request is complete.
    Dispatch(Job),
}

/// Why the server answers a request itself, and closes.
enum Rejection {
    /// The request broke HTTP's rules; the error names the rule and status.
    Parse(ParseError),
    /// The client stalled longer than `--read-timeout` while sending.
    ReadTimeout,
    /// The request arrived slower than `--min-request-rate`.
    BelowMinRate,
    /// The body was still arriving when its connection was shed for a new client.
    Shed,
    /// The body could not be stored (a full disk for a spilled body).
    BodyStorage,
}

impl Rejection {
    fn status(&self) -> u16 {
        match self {
            Rejection::Parse(error) => error.status(),
            Rejection::ReadTimeout | Rejection::BelowMinRate | Rejection::Shed => 408,
            Rejection::BodyStorage => 500,
        }
    }

    fn detail(&self) -> String {
        match self {
            Rejection::Parse(error) => error.to_string(),
            Rejection::ReadTimeout => "timed out waiting for the request".to_owned(),
            Rejection::BelowMinRate => {
                "the request arrived slower than the server's minimum rate".to_owned()
            }
            Rejection::Shed => {
                "the server needed this connection for another client while the request arrived too slowly"
                    .to_owned()
            }
            Rejection::BodyStorage => "the server could not store the request body".to_owned(),
        }
    }
}

/// Generic over its stream so unit tests drive it with in-memory bytes.
pub struct Connection<S: ConnectionStream = Stream> {
    pub stream: S,
    pub id: ConnectionId,
    info: ConnectionInfo,
    flow: Arc<FlowControl>,
    input: ReadBuffer,
    output: WriteQueue,
    state: State,
    reading: Reading,
    peer: PeerInput,
    writing: Writing,
    /// Close after the current response (graceful shutdown).
    close_after_response: bool,
    responses: u64,
    last_activity: Instant,
    /// Since when the connection waits for its current request head (from
    /// accept, or from the end of the previous response).
    waiting_since: Instant,
    /// The peer is in `--forwarded-allow-ips`.
    forwarder_trusted: bool,
    /// The connection's addresses as the request being received sees them.
    request_info: Option<ConnectionInfo>,
    /// How the request being received arrives, from its first byte.
    arrival: Option<Arrival>,
    metrics: Option<WorkerMetrics>,
}

impl<S: ConnectionStream> Connection<S> {
    pub fn new(
        stream: S,
        id: ConnectionId,
        info: ConnectionInfo,
        settings: &ConnectionSettings,
    ) -> Connection<S> {
        let state = if settings.proxy.protocol {
            State::ProxyHeader
        } else {
            State::Head(HeadScanner::default())
        };
        Connection {
            forwarder_trusted: settings.proxy.forwarded_from.trusts(&info.remote_addr),
            request_info: None,
            arrival: None,
            metrics: settings.metrics,
            stream,
            id,
            info,
            flow: Arc::new(FlowControl::default()),
            input: ReadBuffer::default(),
            output: WriteQueue::default(),
            state,
            reading: Reading::Ready,
            peer: PeerInput::Open,
            writing: Writing::Ready,
            close_after_response: false,
            responses: 0,
            last_activity: Instant::now(),
            waiting_since: Instant::now(),
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head(_)) && self.input.is_empty() && self.output.is_empty()
    }

    /// The last turn used up [`READ_BUDGET`] and the socket may hold more,
    /// or [`WRITE_BUDGET`] with output left: the event loop gives the
    /// connection another turn ([`Connection::resume`]) after the others
    /// had theirs, since no new readiness event will come.
    pub fn wants_another_turn(&self) -> bool {
        (self.reading == Reading::OutOfBudget || self.writing == Writing::OutOfBudget)
            && !self.is_closed()
    }

    /// Another turn for a connection that used up a budget: writes on,
    /// then reads on.
    pub fn resume(&mut self, settings: &ConnectionSettings) -> Option<Job> {
        if self.writing == Writing::OutOfBudget {
            self.writing = Writing::Ready;
            self.flush();
        }
        if self.reading == Reading::OutOfBudget {
            self.reading = Reading::Ready;
            return self.drive(settings);
        }
        None
    }

    /// The socket may have data (and `read_closed`: its peer shut down its
    /// side): read and parse what it can. Returns a job when a request is
    /// complete.
    pub fn on_readable(&mut self, read_closed: bool, settings: &ConnectionSettings) -> Option<Job> {
        self.reading = Reading::Ready;
        if read_closed && self.peer == PeerInput::Open {
            self.peer = PeerInput::HangingUp;
        }
        self.drive(settings)
    }

    /// The socket may take data again.
    pub fn on_writable(&mut self) {
        self.flush();
    }

    /// Response bytes from the app.
    pub fn on_reply(
        &mut self,
        bytes: Vec<u8>,
        end: Option<ResponseEnd>,
        settings: &ConnectionSettings,
    ) -> Option<Job> {
        // Only a response in progress takes bytes: late ones from a request
        // given up (--request-timeout) must not follow the 503 sent for it.
        if matches!(self.state, State::InApp) {
            self.output.push_app(bytes);
        }
        let mut job = None;
        if let (Some(end), State::InApp) = (end, &self.state) {
            self.responses += 1;
            // A response that went out promising keep-alive is followed by
            // the next request even while the worker stops: that one gets
            // `Connection: close` (or the connection closes once idle for
            // IDLE_AT_SHUTDOWN), instead of a close under a request in flight.
            if end == ResponseEnd::KeepAlive {
                self.state = State::Head(HeadScanner::default());
                self.last_activity = Instant::now();
                self.waiting_since = self.last_activity;
                self.arrival = (!self.input.is_empty())
                    .then(|| Arrival::start(self.last_activity, self.input.unread_len()));
                job = self.drive(settings);
            } else {
                self.state = State::Closing;
            }
        }
        self.flush();
        job
    }

    /// Graceful shutdown: a request being received or served completes, and
    /// its response closes the connection. So does the next request of a
    /// connection idle between requests, unless none comes within
    /// [`IDLE_AT_SHUTDOWN`] (see [`Connection::check_timeouts`]): a
    /// keep-alive client sends its next request microseconds after a
    /// response, and closing under it would lose a request already sent. A
    /// connection accepted but not yet read from is not idle either: its
    /// client has likely sent a request we have not read yet.
    pub fn shut_down(&mut self) {
        self.close_after_response = true;
        self.flow.request_close();
    }

    /// The connection is being dropped: tell a running app to stop.
    pub fn abandon(&mut self) {
        self.flow.abort();
        self.state = State::Closed;
    }

    /// What closing this connection at `now` would cost its client, if it
    /// may be shed to make room for a new one: a connection waiting for a
    /// request (or draining after an error response), or one whose request
    /// is still arriving; never one whose request is with the app or whose
    /// response is going out.
    pub fn shedding_cost(&self, now: Instant) -> Option<SheddingCost> {
        if !self.output.is_empty() {
            return None;
        }
        match self.state {
            State::Head(_) if self.is_idle() && self.responses > 0 => Some(SheddingCost::Idle {
                since: self.waiting_since,
            }),
            State::Lingering { since } => Some(SheddingCost::Idle { since }),
            State::ProxyHeader | State::Head(_) => Some(SheddingCost::PartialHead {
                received: self.input.unread_len(),
                since: self.waiting_since,
            }),
            State::Body { .. } => {
                let arrival = self
                    .arrival
                    .unwrap_or_else(|| Arrival::start(self.waiting_since, 0));
                Some(SheddingCost::Upload {
                    bytes_per_second: arrival.bytes_per_second(now),
                    since: arrival.since(),
                })
            }
            State::InApp | State::Closing | State::Closed => None,
        }
    }

    /// Closes the connection to make room for a new client (see
    /// [`Connection::shedding_cost`]). A request still arriving is answered
    /// 408 first, as far as the socket takes it at once.
    pub fn shed(&mut self) {
        log::debug(&format!(
            "closing a connection from {} to make room for a new client",
            self.info.remote_addr
        ));
        if let State::Body { .. } = self.state {
            self.count(WorkerMetrics::upload_shed);
            self.reject(Rejection::Shed);
        }
        self.state = State::Closed;
    }

    /// Applies the timeouts and the minimum rate; called about once a
    /// second. Returns whether a request was cut for arriving slower than
    /// `--min-request-rate`.
    pub fn check_timeouts(&mut self, now: Instant, settings: &ConnectionSettings) -> bool {
        let quiet = now.saturating_duration_since(self.last_activity);
        if self.is_idle() {
            self.input.release_memory();
        }
        let arriving = matches!(
            self.state,
            State::ProxyHeader | State::Head(_) | State::Body { .. }
        );
        if arriving
            && self
                .arrival
                .is_some_and(|arrival| settings.min_rate.falls_short(&arrival, now))
        {
            log::debug(&format!(
                "a request from {} arrived slower than --min-request-rate",
                self.info.remote_addr
            ));
            self.count(WorkerMetrics::below_min_rate);
            self.reject(Rejection::BelowMinRate);
            return true;
        }
        match self.state {
            State::Head(_) if self.is_idle() => {
                let limit = if self.stream.is_handshaking() {
                    settings.read_timeout.min(HANDSHAKE_TIMEOUT)
                } else if self.responses == 0 {
                    settings.read_timeout
                } else if self.close_after_response {
                    IDLE_AT_SHUTDOWN.min(settings.keep_alive)
                } else {
                    settings.keep_alive
                };
                if quiet > limit {
                    if self.stream.is_handshaking() {
                        self.count(WorkerMetrics::tls_handshake_failed);
                    }
                    self.state = State::Closed;
                }
            }
            State::ProxyHeader | State::Head(_) | State::Body { .. }
                if quiet > settings.read_timeout =>
            {
                self.reject(Rejection::ReadTimeout);
            }
            State::Lingering { since } if now.saturating_duration_since(since) > LINGER => {
                self.state = State::Closed;
            }
            // A client that stopped reading its response.
            _ if !self.output.is_empty() && quiet > settings.read_timeout => {
                self.flow.abort();
                self.state = State::Closed;
            }
            _ => {}
        }
        false
    }

    fn drive(&mut self, settings: &ConnectionSettings) -> Option<Job> {
        let mut budget = READ_BUDGET;
        loop {
            if let Some(job) = self.advance(settings) {
                self.flush();
                return Some(job);
            }
            if self.reading == Reading::AwaitingEvent || !self.wants_input() {
                break;
            }
            if budget == 0 {
                self.reading = Reading::OutOfBudget;
                break;
            }
            match self.read_some() {
                Ok(read) => budget = budget.saturating_sub(read),
                Err(error) => {
                    log::debug(&format!(
                        "read error from {}: {error}",
                        self.info.remote_addr
                    ));
                    if self.stream.is_handshaking() {
                        self.count(WorkerMetrics::tls_handshake_failed);
                    }
                    self.abandon();
                    return None;
                }
            }
        }
        self.flush();
        None
    }

    fn wants_input(&self) -> bool {
        match self.state {
            State::ProxyHeader | State::Head(_) | State::Body { .. } => !self.peer_closed(),
            State::InApp => !self.peer_closed() && self.input.unread_len() < MAX_READ_AHEAD,
            State::Lingering { .. } => true,
            State::Closing | State::Closed => false,
        }
    }

    /// Reads once into the buffer; returns the bytes read.
    fn read_some(&mut self) -> io::Result<usize> {
        let read = match self.input.read_from(&mut self.stream)? {
            ReadOutcome::End => {
                self.peer = PeerInput::Ended;
                0
            }
            ReadOutcome::Data { read, drained } => {
                // A short read emptied the socket's receive queue, and data
                // arriving later raises a new edge-triggered event: skip the
                // read that would only return WouldBlock (one syscall per
                // keep-alive request). Not after a hang-up event, whose end
                // of stream raises no further event.
                if drained && self.peer != PeerInput::HangingUp && self.stream.short_read_drains() {
                    self.reading = Reading::AwaitingEvent;
                }
                read
            }
            ReadOutcome::Blocked => {
                self.reading = Reading::AwaitingEvent;
                0
            }
            ReadOutcome::Interrupted => 0,
        };
        if let (Some(metrics), 1..) = (&self.metrics, read) {
            metrics.received(read);
        }
        if read > 0 {
            self.last_activity = Instant::now();
            match self.state {
                State::Lingering { .. } => self.input.discard(),
                State::ProxyHeader | State::Head(_) | State::Body { .. } => self
                    .arrival
                    .get_or_insert_with(|| Arrival::start(self.last_activity, 0))
                    .add(read),
                State::InApp | State::Closing | State::Closed => {}
            }
        }
        Ok(read)
    }

    /// Parses buffered input as far as it goes.
    fn advance(&mut self, settings: &ConnectionSettings) -> Option<Job> {
        loop {
            let step = match &self.state {
                State::ProxyHeader => self.advance_proxy_header(settings),
                State::Head(_) => self.advance_head(settings),
                State::Body { .. } => self.advance_body(),
                State::Lingering { .. } => {
                    self.input.discard();
                    if self.peer_closed() {
                        self.state = State::Closed;
                    }
                    Step::Wait
                }
                State::InApp | State::Closing | State::Closed => Step::Wait,
            };
            match step {
                Step::Again => {}
                Step::Wait => return None,
                Step::Dispatch(job) => return Some(job),
            }
        }
    }

    /// The PROXY header, if the connection starts with one (in its bytes,
    /// or before its TLS handshake).
    fn advance_proxy_header(&mut self, settings: &ConnectionSettings) -> Step {
        let before_tls = self.stream.proxy_preamble();
        let parsed = match before_tls {
            Some(header) => Ok(header),
            None => proxy_protocol::parse(self.input.unread()),
        };
        match parsed {
            Ok(ProxyHeader::Incomplete) if self.peer_closed() => {
                return self.reject_parse(ParseError::Incomplete);
            }
            Ok(ProxyHeader::Incomplete) => return Step::Wait,
            Ok(ProxyHeader::Absent) => {}
            Ok(ProxyHeader::Present { len, source }) => {
                if !settings.proxy.protocol_from.trusts(&self.info.remote_addr) {
                    if before_tls.is_some() {
                        // No protocol to answer in yet: close, as for a
                        // malformed header before the handshake.
                        log::debug(&format!(
                            "a PROXY header before TLS from {}, not in --proxy-allow-from",
                            self.info.remote_addr
                        ));
                        self.count(WorkerMetrics::tls_handshake_failed);
                        self.abandon();
                        return Step::Wait;
                    }
                    return self.reject_parse(ParseError::ForbiddenProxy);
                }
                if before_tls.is_none() {
                    self.input.consume(len);
                }
                if let Some(client) = source {
                    self.info.remote_addr = client.ip().to_string().into();
                    self.info.remote_port = client.port().to_string().into();
                }
            }
            Err(error) => return self.reject_parse(error),
        }
        self.state = State::Head(HeadScanner::default());
        Step::Again
    }

    /// (More of) a request head.
    fn advance_head(&mut self, settings: &ConnectionSettings) -> Step {
        let State::Head(scanner) = &mut self.state else {
            return Step::Wait;
        };
        let buffered = self.input.unread();
        let end = match scanner.scan(buffered, &settings.limits) {
            Ok(Some(end)) => end,
            Ok(None) if !self.peer_closed() => return Step::Wait,
            // The client closed between requests, or after blank lines only.
            Ok(None) if buffered.iter().all(|&b| b == b'\r' || b == b'\n') => {
                self.state = State::Closed;
                return Step::Wait;
            }
            Ok(None) => return self.reject_parse(ParseError::Incomplete),
            Err(error) => return self.reject_parse(error),
        };
        let (start, lines) = (scanner.start(), scanner.field_lines());
        match parse_head(buffered, start, end, lines, &settings.limits) {
            Ok(head) => {
                self.input.consume(end);
                match self.start_request(head, settings) {
                    Some(job) => Step::Dispatch(job),
                    None => Step::Again,
                }
            }
            Err(error) => self.reject_parse(error),
        }
    }

    /// (More of) a request body.
    fn advance_body(&mut self) -> Step {
        let State::Body {
            decoder, buffer, ..
        } = &mut self.state
        else {
            return Step::Wait;
        };
        let progress = match decoder.decode(self.input.unread(), &mut |data| buffer.push(data)) {
            Ok(progress) => progress,
            Err(error) => return self.reject_parse(error),
        };
        self.input.consume(progress.consumed);
        if !progress.done {
            if self.peer_closed() {
                return self.reject_parse(ParseError::Incomplete);
            }
            return Step::Wait;
        }
        let State::Body { head, buffer, .. } = std::mem::replace(&mut self.state, State::InApp)
        else {
            return Step::Wait;
        };
        match buffer.finish() {
            Ok(body) => Step::Dispatch(self.job(*head, body)),
            Err(error) => {
                log::error(&format!("cannot store a request body: {error}"));
                self.reject(Rejection::BodyStorage);
                Step::Wait
            }
        }
    }

    /// A head is complete: take what a trusted proxy says of the client,
    /// then dispatch the request, or answer `100 Continue` and start
    /// receiving its body.
    fn start_request(
        &mut self,
        mut head: RequestHead,
        settings: &ConnectionSettings,
    ) -> Option<Job> {
        if settings.keep_alive.is_zero() || self.close_after_response {
            head.keep_alive = false;
        }
        if self.info.https && self.info.tls.is_none() {
            self.info.tls = self.stream.tls_facts().map(Arc::new);
        }
        self.request_info = None;
        if self.forwarder_trusted {
            match proxy_trust::request_view(&self.info, &head, &settings.proxy) {
                Ok(view) => self.request_info = view,
                Err(error) => {
                    self.reject_parse(error);
                    return None;
                }
            }
        }
        let Some(decoder) = BodyDecoder::for_framing(head.framing, &settings.limits) else {
            self.state = State::InApp;
            return Some(self.job(head, RequestBody::empty()));
        };
        // RFC 9110 §10.1.1: answer 100-continue only if the body is not already arriving.
        if head.expect_continue && self.input.is_empty() {
            self.output.push(CONTINUE.to_vec());
        }
        let expected = match head.framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        let buffer = BodyBuffer::new(
            settings.spill_at,
            expected.filter(|_| !decoder.is_chunked()),
        );
        self.state = State::Body {
            head: Box::new(head),
            decoder,
            buffer,
        };
        None
    }

    fn job(&mut self, head: RequestHead, body: RequestBody) -> Job {
        self.arrival = None;
        self.count(WorkerMetrics::dispatched);
        Job {
            received: Instant::now(),
            connection: self.id,
            head,
            body,
            info: self
                .request_info
                .take()
                .unwrap_or_else(|| self.info.clone()),
            flow: self.flow.clone(),
        }
    }

    fn reject_parse(&mut self, error: ParseError) -> Step {
        log::debug(&format!(
            "invalid request from {}: {error}",
            self.info.remote_addr
        ));
        self.reject(Rejection::Parse(error));
        Step::Wait
    }

    /// Answers with an error and closes; nothing after it on the connection is read.
    fn reject(&mut self, rejection: Rejection) {
        let status = rejection.status();
        if let Some(metrics) = &self.metrics {
            metrics.rejected(status);
        }
        let detail = rejection.detail();
        self.output
            .push(error_response(status, reason_phrase(status), &detail));
        self.input.discard();
        self.state = State::Closing;
        self.flush();
    }

    /// Writes queued output until the socket would block, or
    /// [`WRITE_BUDGET`] is used up (then the connection wants another turn,
    /// and writes nothing more until [`Connection::resume`]).
    fn flush(&mut self) {
        if self.writing == Writing::OutOfBudget {
            return;
        }
        let mut written_this_turn = 0;
        loop {
            if written_this_turn >= WRITE_BUDGET && !self.output.is_empty() {
                self.writing = Writing::OutOfBudget;
                return;
            }
            match self.stream.send_pending() {
                Ok(true) if !self.output.is_empty() => {}
                Ok(true) => break,
                Ok(false) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug(&format!("write error to {}: {e}", self.info.remote_addr));
                    self.abandon();
                    return;
                }
            }
            let (slices, count) = self.output.slices(WRITE_BUDGET - written_this_turn);
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => {
                    self.abandon();
                    return;
                }
                Ok(written) => {
                    written_this_turn += written;
                    self.last_activity = Instant::now();
                    self.consume_output(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug(&format!("write error to {}: {e}", self.info.remote_addr));
                    self.abandon();
                    return;
                }
            }
        }
        if let State::Closing = self.state {
            if self.peer_closed() {
                self.state = State::Closed;
                return;
            }
            match self.stream.close_write() {
                Ok(true) => {
                    self.state = State::Lingering {
                        since: Instant::now(),
                    }
                }
                Ok(false) => {}
                Err(_) => self.state = State::Closed,
            }
        }
    }

    /// The client will send nothing more.
    fn peer_closed(&self) -> bool {
        self.peer == PeerInput::Ended
    }

    fn count(&self, event: fn(&WorkerMetrics)) {
        if let Some(metrics) = &self.metrics {
            event(metrics);
        }
    }

    fn consume_output(&mut self, written: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.sent(written);
        }
        let released = self.output.consume(written);
        self.flow.release(released);
    }
}
