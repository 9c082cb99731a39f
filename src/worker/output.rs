//! The interpreter thread's side of a response: frames the app's body bytes
//! (Content-Length, chunked or close-delimited) and hands them to the event
//! loop, within the connection's flow-control window.

use std::sync::Arc;

use rustpython_vm::VirtualMachine;

use super::activity::ThreadActivity;
use super::handoff::{ConnectionId, FlowControl, Reply, ReplyQueue, ResponseEnd};
use crate::http::response::{
    EncodedHead, LAST_CHUNK, ResponseContext, ResponseFraming, encode_head, error_response,
    push_chunk, reason_phrase,
};
use crate::wsgi::headers::ResponseHeaders;
use crate::wsgi::sink::ResponseSink;

pub struct ResponseOutput {
    connection: ConnectionId,
    flow: Arc<FlowControl>,
    replies: Arc<ReplyQueue>,
    /// The interpreter thread serving the request, marked as having responded
    /// once the final reply has its window.
    serving_thread: ThreadActivity,
    context: ResponseContext,
    /// Set once the head is encoded.
    framing: Option<ResponseFraming>,
    keep_alive: bool,
    body_sent: u64,
    pending: Vec<u8>,
    pushed: bool,
    client_gone: bool,
}

impl ResponseOutput {
    pub fn new(
        connection: ConnectionId,
        flow: Arc<FlowControl>,
        replies: Arc<ReplyQueue>,
        serving_thread: ThreadActivity,
        context: ResponseContext,
    ) -> ResponseOutput {
        ResponseOutput {
            connection,
            flow,
            replies,
            serving_thread,
            keep_alive: context.keep_alive,
            context,
            framing: None,
            body_sent: 0,
            pending: Vec::new(),
            pushed: false,
            client_gone: false,
        }
    }

    fn push(&mut self, vm: &VirtualMachine, end: Option<ResponseEnd>) {
        let bytes = std::mem::take(&mut self.pending);
        self.pushed = true;
        // Waiting for the window detaches from the VM, so a garbage
        // collection elsewhere does not wait on this thread.
        let flow = &self.flow;
        if !vm.allow_threads(|| flow.acquire(bytes.len())) {
            self.client_gone = true;
        }
        if end.is_some() {
            // Before the reply wakes the loop: woken by it, the loop must see
            // this thread free, or it stays paused and publishes a stale
            // "all interpreters busy" to its siblings.
            self.serving_thread.responded();
        }
        self.replies.push(Reply {
            connection: self.connection,
            bytes,
            end,
        });
    }
}

impl ResponseSink for ResponseOutput {
    fn head_started(&self) -> bool {
        self.framing.is_some()
    }

    /// The client has gone (or the response was cut short): produce no more.
    fn is_closed(&self) -> bool {
        self.client_gone || self.flow.is_aborted()
    }

    /// Encodes the head; `known_length` is a length the server computed from a
    /// body it holds whole, used when the app gave no Content-Length.
    fn start(&mut self, head: &ResponseHeaders, known_length: Option<u64>) {
        let length = head.content_length.or(known_length);
        if self.flow.close_requested() {
            self.context.keep_alive = false;
        }
        let EncodedHead {
            bytes,
            framing,
            keep_alive,
        } = encode_head(self.context, &head.status, &head.headers, length);
        self.framing = Some(framing);
        self.keep_alive = keep_alive;
        self.pending = bytes;
    }

    /// Appends body bytes in the response's framing. Bytes past a declared
    /// Content-Length are dropped and the connection will close.
    fn body(&mut self, data: &[u8]) {
        match self.framing {
            None | Some(ResponseFraming::NoBody) => {}
            Some(ResponseFraming::Length(length)) => {
                let room = length.saturating_sub(self.body_sent);
                let take = (data.len() as u64).min(room) as usize;
                if take < data.len() {
                    self.keep_alive = false;
                }
                self.pending.extend_from_slice(&data[..take]);
                self.body_sent += take as u64;
            }
            Some(ResponseFraming::Chunked) => {
                if !data.is_empty() {
                    push_chunk(&mut self.pending, data);
                    self.body_sent += data.len() as u64;
                }
            }
            Some(ResponseFraming::UntilClose) => {
                self.pending.extend_from_slice(data);
                self.body_sent += data.len() as u64;
            }
        }
    }

    /// Body bytes sent so far (after framing limits, before chunk encoding).
    fn body_sent(&self) -> u64 {
        self.body_sent
    }

    /// Whether any bytes went to the loop already (the head, at least).
    fn pushed_anything(&self) -> bool {
        self.pushed
    }

    /// Whether more body bytes would exceed the declared Content-Length.
    fn length_reached(&self) -> bool {
        matches!(self.framing, Some(ResponseFraming::Length(n)) if self.body_sent >= n)
    }

    /// Sends what is pending to the loop now.
    fn flush(&mut self, vm: &VirtualMachine) {
        if !self.pending.is_empty() {
            self.push(vm, None);
        }
    }

    /// Ends the response. `complete` is false when the app failed part way:
    /// the connection then closes, which tells the client the body is cut short.
    fn finish(&mut self, vm: &VirtualMachine, complete: bool) {
        if complete && self.framing == Some(ResponseFraming::Chunked) {
            self.pending.extend_from_slice(LAST_CHUNK);
        }
        if let Some(ResponseFraming::Length(length)) = self.framing
            && self.body_sent < length
        {
            crate::log::warning(&format!(
                "response body ended after {} of {} bytes (Content-Length); closing the connection",
                self.body_sent, length
            ));
            self.keep_alive = false;
        }
        let end = if complete && self.keep_alive {
            ResponseEnd::KeepAlive
        } else {
            ResponseEnd::Close
        };
        self.push(vm, Some(end));
    }

    /// Replaces anything not yet sent with a complete error response.
    fn fail(&mut self, vm: &VirtualMachine, status: u16, detail: &str) {
        self.pending = error_response(status, reason_phrase(status), detail);
        self.framing = Some(ResponseFraming::NoBody);
        self.keep_alive = false;
        self.push(vm, Some(ResponseEnd::Close));
    }
}
