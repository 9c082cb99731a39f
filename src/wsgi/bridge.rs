//! One interpreter's WSGI host: runs a request through the app (PEP 3333)
//! and streams the response to the event loop.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use rustpython_vm::builtins::{PyBaseExceptionRef, PyBytes, PyList, PyTuple};
use rustpython_vm::class::PyClassImpl;
use rustpython_vm::function::OptionalArg;
use rustpython_vm::protocol::PyIterReturn;
use rustpython_vm::{AsObject, PyObjectRef, PyPayload, VirtualMachine};

use super::environ::{EnvironBuilder, EnvironSettings};
use super::error_stream::ErrorStream;
use super::input::Input;
use super::outcome::{self, Delivery, FailureKind, RequestOutcome};
use super::request_hooks::RequestHooks;
use super::sink::ResponseSink;
use super::start_response::{self, ResponseInProgress};
use crate::access_log::{AccessFormat, AccessRecord};
use crate::http::body::RequestBody;
use crate::http::date::UtcTime;
use crate::http::head::RequestHead;
use crate::log;
use crate::net::peer::ConnectionInfo;
use crate::python::app::{format_exception, import_module};
use crate::python::interrupt::is_request_timeout;

/// Why a request's app run failed.
enum Failure {
    Python(PyBaseExceptionRef),
    /// A break of the WSGI contract the server found outside Python code:
    /// logged once, as a violation, with no traceback to add.
    Contract(String),
}

pub struct WsgiHost {
    access_format: Option<AccessFormat>,
    app: PyObjectRef,
    start_response: PyObjectRef,
    environ: EnvironBuilder,
    request_hooks: Option<RequestHooks>,
}

impl WsgiHost {
    pub fn new(
        vm: &VirtualMachine,
        app: PyObjectRef,
        settings: &EnvironSettings,
        access_format: Option<AccessFormat>,
    ) -> Result<WsgiHost, PyBaseExceptionRef> {
        let _ = Input::make_static_type();
        let _ = ErrorStream::make_static_type();
        let errors: PyObjectRef = ErrorStream::default().into_ref(&vm.ctx).into();
        let file_wrapper =
            import_module(vm, "ferrocorn.wsgi", "FileWrapper")?.get_attr("FileWrapper", vm)?;
        let environ = EnvironBuilder::new(vm, settings, errors, file_wrapper)?;
        let write: PyObjectRef = vm.new_function("write", start_response::write).into();
        let start_response = vm
            .new_function(
                "start_response",
                move |status: PyObjectRef,
                      headers: PyObjectRef,
                      exc_info: OptionalArg<PyObjectRef>,
                      vm: &VirtualMachine| {
                    start_response::start_response(vm, status, headers, exc_info, &write)
                },
            )
            .into();
        Ok(WsgiHost {
            access_format,
            app,
            start_response,
            environ,
            request_hooks: None,
        })
    }

    /// Calls the configuration file's pre_request/post_request around each request.
    pub fn set_request_hooks(&mut self, hooks: RequestHooks) {
        self.request_hooks = Some(hooks);
    }

    /// Serves one request into `output`; returns what became of it. Never
    /// panics outward: a panic in our code is logged and answered with 500
    /// (or a cut-short response).
    pub fn serve(
        &self,
        vm: &VirtualMachine,
        head: &RequestHead,
        body: RequestBody,
        info: &ConnectionInfo,
        output: Box<dyn ResponseSink>,
    ) -> RequestOutcome {
        let started = Instant::now();
        start_response::begin(ResponseInProgress {
            headers: None,
            output,
            violations: Vec::new(),
        });
        // Kept for post_request: the request object and the environ.
        let mut hooked: Option<(PyObjectRef, PyObjectRef)> = None;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let environ: PyObjectRef = self
                .environ
                .build(vm, head, body, info)
                .map_err(Failure::Python)?
                .into();
            if let Some(hooks) = &self.request_hooks {
                let request = hooks.request(vm, head).map_err(Failure::Python)?;
                hooks.pre_request(vm, &request);
                hooked = Some((request, environ.clone()));
            }
            self.run(vm, environ)
        }));
        let Some(mut response) = start_response::end() else {
            return RequestOutcome::lost(started.elapsed());
        };
        let failure = failure_of(vm, head, result, &mut response.violations);
        for violation in &response.violations {
            log::error(&format!(
                "WSGI violation in {}: {violation}",
                request_line(head)
            ));
        }
        if let Some((_, Some(message))) = &failure {
            log::exception(message);
        }
        let outcome = deliver(vm, response, failure.map(|(kind, _)| kind), started);
        self.log_access(head, info, &outcome);
        if let (Some(hooks), Some((request, environ))) = (&self.request_hooks, &hooked) {
            hooks.post_request(vm, request, environ, &outcome);
        }
        outcome
    }

    fn log_access(&self, head: &RequestHead, info: &ConnectionInfo, outcome: &RequestOutcome) {
        let Some(format) = &self.access_format else {
            return;
        };
        let record = AccessRecord {
            remote_addr: &info.remote_addr,
            head,
            status: &outcome.status,
            response_headers: &outcome.headers,
            body_bytes: outcome.body_bytes,
            finished: UtcTime::now(),
            duration: outcome.duration,
        };
        log::access(&format.render(&record));
    }

    /// Calls the app and sends its body; the result's `close()` is called
    /// whatever happens after the call returned.
    fn run(&self, vm: &VirtualMachine, environ: PyObjectRef) -> Result<(), Failure> {
        let result = self
            .app
            .call((environ, self.start_response.clone()), vm)
            .map_err(Failure::Python)?;
        let sent = self.send_body(vm, &result);
        let closed = match vm.get_attribute_opt(&result, "close") {
            Ok(Some(close)) => close.call((), vm).map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        sent?;
        closed.map_err(Failure::Python)
    }

    fn send_body(&self, vm: &VirtualMachine, result: &PyObjectRef) -> Result<(), Failure> {
        // A list or tuple is the whole body already: its length is known, so
        // it goes out with a Content-Length in one write.
        let items = if let Some(list) = result.downcast_ref_if_exact::<PyList>(vm) {
            Some(list.borrow_vec().to_vec())
        } else {
            result
                .downcast_ref_if_exact::<PyTuple>(vm)
                .map(|tuple| tuple.as_slice().to_vec())
        };
        if let Some(items) = items {
            let mut total = 0u64;
            for item in &items {
                total += body_bytes(item)?.as_bytes().len() as u64;
            }
            for item in &items {
                self.send_block(vm, body_bytes(item)?.as_bytes(), Some(total), false)?;
            }
            return self.send_block(vm, b"", Some(total), false).map(drop);
        }
        let iterator = result.get_iter(vm).map_err(|error| {
            let class = result.class();
            // An `__iter__` that raised is the app's bug, with its traceback.
            if class.has_attr(rustpython_vm::identifier!(vm, __iter__))
                || class.has_attr(rustpython_vm::identifier!(vm, __getitem__))
            {
                return Failure::Python(error);
            }
            Failure::Contract(format!(
                "the app must return an iterable of bytes, not {} (PEP 3333)",
                class.name()
            ))
        })?;
        let mut total = 0u64;
        loop {
            match iterator.next(vm).map_err(Failure::Python)? {
                PyIterReturn::Return(item) => {
                    let bytes = body_bytes(&item)?;
                    total += bytes.as_bytes().len() as u64;
                    if !self.send_block(vm, bytes.as_bytes(), None, true)? {
                        return Ok(());
                    }
                }
                // Nothing was produced before the end: the length is what was seen.
                PyIterReturn::StopIteration(_) => {
                    return self.send_block(vm, b"", Some(total), false).map(drop);
                }
            }
        }
    }

    /// Sends one block (an empty one only starts the head once iteration
    /// ended). `false` when the client is gone and the app should stop.
    fn send_block(
        &self,
        vm: &VirtualMachine,
        data: &[u8],
        known_length: Option<u64>,
        flush: bool,
    ) -> Result<bool, Failure> {
        start_response::with_current(|ex| {
            if data.is_empty() && known_length.is_none() {
                return Ok(!ex.output.is_closed());
            }
            ex.ensure_head(known_length)
                .map_err(|rule| Failure::Contract(rule.to_owned()))?;
            ex.output.body(data);
            if flush {
                ex.output.flush(vm);
            }
            // Past its own Content-Length nothing more can be sent: stop
            // iterating (an endless generator would otherwise never end).
            Ok(!ex.output.is_closed() && !ex.output.length_reached())
        })
        .unwrap_or(Ok(false))
    }
}

fn request_line(head: &RequestHead) -> String {
    format!(
        "{} {}",
        head.method(),
        String::from_utf8_lossy(head.target_bytes())
    )
}

/// The kind of failure a run ended in, if any, and the message to log for
/// it besides its violations (a broken contract is one of those).
fn failure_of(
    vm: &VirtualMachine,
    head: &RequestHead,
    result: std::thread::Result<Result<(), Failure>>,
    violations: &mut Vec<String>,
) -> Option<(FailureKind, Option<String>)> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(Failure::Python(exception))) if is_request_timeout(vm, &exception) => Some((
            FailureKind::Timeout,
            Some(format!(
                "Request timed out (--request-timeout): {}\n{}",
                request_line(head),
                format_exception(vm, &exception)
            )),
        )),
        Ok(Err(Failure::Python(exception))) => Some((
            FailureKind::AppError,
            Some(format!(
                "Error handling request {}\n{}",
                request_line(head),
                format_exception(vm, &exception)
            )),
        )),
        Ok(Err(Failure::Contract(rule))) => {
            violations.push(rule);
            Some((FailureKind::Contract, None))
        }
        Err(panic) => Some((
            FailureKind::Panic,
            Some(format!(
                "panic while handling a request: {}",
                panic_message(&panic)
            )),
        )),
    }
}

/// Ends the response as the failure allows, and says what was sent.
fn deliver(
    vm: &VirtualMachine,
    response: ResponseInProgress,
    failure: Option<FailureKind>,
    started: Instant,
) -> RequestOutcome {
    let ResponseInProgress {
        headers,
        mut output,
        violations,
    } = response;
    output.violations(&violations);
    let delivery = outcome::delivery(failure, output.pushed_anything());
    let (status, headers) = match (delivery, headers) {
        (Delivery::Fallback(kind), _) => {
            let (status, detail) = kind.fallback();
            output.fail(vm, fallback_code(status), detail);
            (status.to_owned(), Vec::new())
        }
        (Delivery::Complete | Delivery::CutShort(_), headers) => {
            output.finish(vm, delivery == Delivery::Complete);
            match headers {
                Some(headers) => (headers.status, headers.headers),
                // Not reached: a response without start_response is a
                // contract failure, and nothing of it was pushed.
                None => (FailureKind::Contract.fallback().0.to_owned(), Vec::new()),
            }
        }
    };
    RequestOutcome {
        status,
        headers,
        body_bytes: output.body_sent(),
        duration: started.elapsed(),
        delivery,
    }
}

fn fallback_code(status: &str) -> u16 {
    status
        .get(..3)
        .and_then(|code| code.parse().ok())
        .unwrap_or(500)
}

fn body_bytes(item: &PyObjectRef) -> Result<&rustpython_vm::Py<PyBytes>, Failure> {
    item.downcast_ref::<PyBytes>().ok_or_else(|| {
        Failure::Contract(format!(
            "the response body must yield bytes, not {} (PEP 3333)",
            item.class().name()
        ))
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
