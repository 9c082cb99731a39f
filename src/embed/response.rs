//! The response of an in-process call: status and headers as soon as the
//! app has started its response, then a body read incrementally while the
//! app is still producing it.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender};

use rustpython_vm::VirtualMachine;

use crate::http::response::reason_phrase;
use crate::wsgi::headers::ResponseHeaders;
use crate::wsgi::sink::ResponseSink;

/// What the interpreter thread sends to the caller, in this order: one
/// `Head`, any number of `Data`, one `End`.
pub(crate) enum Event {
    Head {
        status: String,
        headers: Vec<(String, String)>,
    },
    Data(Vec<u8>),
    End(Outcome),
}

/// How the app's response ended, known once the body has been read to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// False when the app failed part way (the body is cut short) or the
    /// response was replaced by a 500.
    pub complete: bool,
    /// The PEP 3333 rules the app broke, one message each (the checker's
    /// findings with [`Config::check_wsgi`](crate::Config::check_wsgi), and
    /// always the breaks the server itself detects).
    pub violations: Vec<String>,
}

/// The app's response to one [`Request`](crate::embed::Request).
#[derive(Debug)]
pub struct Response {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Response {
    pub(crate) fn new(status_line: String, headers: Vec<(String, String)>, body: Body) -> Response {
        let status = status_line
            .get(..3)
            .and_then(|code| code.parse().ok())
            .unwrap_or(500);
        Response {
            status,
            status_line,
            headers,
            body,
        }
    }

    /// The status code, e.g. 200.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The status as the app gave it, e.g. `200 OK`.
    pub fn status_line(&self) -> &str {
        &self.status_line
    }

    /// The headers as the app gave them, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, to read incrementally.
    pub fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }

    /// Reads the whole body and returns it with how the response ended.
    pub fn into_bytes(mut self) -> io::Result<(Vec<u8>, Outcome)> {
        let mut bytes = Vec::new();
        self.body.read_to_end(&mut bytes)?;
        let outcome = self.body.outcome.take().unwrap_or_default();
        Ok((bytes, outcome))
    }
}

/// A response body, produced by the app as it is read ([`Read`], or
/// [`Body::next_chunk`] for the app's own blocks). Dropping it early stops the
/// app's iteration, as a client disconnecting would.
#[derive(Debug)]
pub struct Body {
    events: Receiver<Event>,
    chunk: Vec<u8>,
    offset: usize,
    outcome: Option<Outcome>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Head { status, .. } => write!(f, "Head({status})"),
            Event::Data(data) => write!(f, "Data({} bytes)", data.len()),
            Event::End(outcome) => write!(f, "End({outcome:?})"),
        }
    }
}

impl Body {
    pub(crate) fn new(events: Receiver<Event>) -> Body {
        Body {
            events,
            chunk: Vec::new(),
            offset: 0,
            outcome: None,
        }
    }

    /// The next block the app produced, or `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.offset < self.chunk.len() {
            let rest = self.chunk.split_off(self.offset);
            self.chunk.clear();
            self.offset = 0;
            return Some(rest);
        }
        while self.outcome.is_none() {
            match self.events.recv() {
                Ok(Event::Data(data)) if !data.is_empty() => return Some(data),
                Ok(Event::Data(_) | Event::Head { .. }) => {}
                Ok(Event::End(outcome)) => self.outcome = Some(outcome),
                // The interpreter thread is gone without ending the response.
                Err(_) => self.outcome = Some(Outcome::default()),
            }
        }
        None
    }

    /// How the response ended; `None` until the body has been read to its end.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset >= self.chunk.len() {
            match self.next_chunk() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.offset = 0;
                }
                None => return Ok(0),
            }
        }
        let available = &self.chunk[self.offset..];
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.offset += count;
        Ok(count)
    }
}

/// The [`ResponseSink`] of an in-process call: events over a bounded channel,
/// so an app producing faster than the caller reads waits (detached from the
/// VM) instead of buffering without limit.
pub(crate) struct DirectOutput {
    events: SyncSender<Event>,
    is_head: bool,
    head: Option<Event>,
    started: bool,
    declared_length: Option<u64>,
    body_sent: u64,
    pending: Vec<u8>,
    pushed: bool,
    receiver_gone: bool,
    violations: Vec<String>,
}

impl DirectOutput {
    pub(crate) fn new(events: SyncSender<Event>, is_head: bool) -> DirectOutput {
        DirectOutput {
            events,
            is_head,
            head: None,
            started: false,
            declared_length: None,
            body_sent: 0,
            pending: Vec::new(),
            pushed: false,
            receiver_gone: false,
            violations: Vec::new(),
        }
    }

    fn send(&mut self, vm: &VirtualMachine, event: Event) {
        self.pushed = true;
        if self.receiver_gone {
            return;
        }
        let events = &self.events;
        if vm.allow_threads(|| events.send(event)).is_err() {
            self.receiver_gone = true;
        }
    }

    fn send_pending(&mut self, vm: &VirtualMachine) {
        if let Some(head) = self.head.take() {
            self.send(vm, head);
        }
        if !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            self.send(vm, Event::Data(data));
        }
    }
}

impl ResponseSink for DirectOutput {
    fn head_started(&self) -> bool {
        self.started
    }

    fn is_closed(&self) -> bool {
        self.receiver_gone
    }

    fn start(&mut self, head: &ResponseHeaders, _known_length: Option<u64>) {
        self.started = true;
        self.declared_length = head.content_length;
        let headers = head
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.iter().map(|&b| b as char).collect()))
            .collect();
        self.head = Some(Event::Head {
            status: head.status.clone(),
            headers,
        });
    }

    fn body(&mut self, data: &[u8]) {
        if !self.started || self.is_head {
            return;
        }
        let take = match self.declared_length {
            Some(length) => (data.len() as u64).min(length.saturating_sub(self.body_sent)) as usize,
            None => data.len(),
        };
        self.pending.extend_from_slice(&data[..take]);
        self.body_sent += take as u64;
    }

    fn flush(&mut self, vm: &VirtualMachine) {
        self.send_pending(vm);
    }

    fn finish(&mut self, vm: &VirtualMachine, complete: bool) {
        self.send_pending(vm);
        let violations = std::mem::take(&mut self.violations);
        self.send(
            vm,
            Event::End(Outcome {
                complete,
                violations,
            }),
        );
    }

    fn fail(&mut self, vm: &VirtualMachine, status: u16, detail: &str) {
        self.pending.clear();
        self.head = Some(Event::Head {
            status: format!("{status} {}", reason_phrase(status)),
            headers: vec![
                ("Content-Type".to_owned(), "text/plain".to_owned()),
                ("Content-Length".to_owned(), detail.len().to_string()),
            ],
        });
        if !self.is_head {
            self.pending.extend_from_slice(detail.as_bytes());
        }
        self.finish(vm, false);
    }

    fn pushed_anything(&self) -> bool {
        self.pushed
    }

    fn body_sent(&self) -> u64 {
        self.body_sent
    }

    fn length_reached(&self) -> bool {
        matches!(self.declared_length, Some(n) if self.body_sent >= n)
    }

    fn violations(&mut self, violations: &[String]) {
        self.violations = violations.to_vec();
    }
}
