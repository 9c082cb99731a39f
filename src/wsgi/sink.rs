//! Where a response goes: the event loop's connection in the server
//! ([`crate::worker::output::ResponseOutput`]), or the caller of an
//! in-process call ([`crate::embed`]). The bridge drives either the same way.

use rustpython_vm::VirtualMachine;

use super::headers::ResponseHeaders;

/// The response side of one request, as the WSGI bridge drives it.
pub trait ResponseSink {
    /// Whether the head has been started (after which the status is fixed).
    fn head_started(&self) -> bool;
    /// The receiver has gone (or the response was cut short): produce no more.
    fn is_closed(&self) -> bool;
    /// Starts the head; `known_length` is a length the server computed from a
    /// body it holds whole, used when the app gave no Content-Length.
    fn start(&mut self, head: &ResponseHeaders, known_length: Option<u64>);
    /// Appends body bytes (bytes past a declared Content-Length are dropped).
    fn body(&mut self, data: &[u8]);
    /// Hands what is pending to the receiver now.
    fn flush(&mut self, vm: &VirtualMachine);
    /// Ends the response; `complete` is false when the app failed part way.
    fn finish(&mut self, vm: &VirtualMachine, complete: bool);
    /// Replaces anything not yet sent with a complete error response.
    fn fail(&mut self, vm: &VirtualMachine, status: u16, detail: &str);
    /// Whether anything reached the receiver already (the head, at least).
    fn pushed_anything(&self) -> bool;
    /// Body bytes sent so far.
    fn body_sent(&self) -> u64;
    /// Whether more body bytes would exceed the declared Content-Length.
    fn length_reached(&self) -> bool;
    /// The PEP 3333 violations seen while serving this request, just before
    /// [`ResponseSink::finish`] or [`ResponseSink::fail`].
    fn violations(&mut self, _violations: &[String]) {}
}
