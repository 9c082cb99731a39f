//! `start_response` and the `write` callable it returns (PEP 3333). Both act
//! on the request this interpreter thread is serving, kept in a thread-local:
//! an interpreter serves one request at a time, and the callables are created
//! once per interpreter (RustPython leaks each native closure it builds).

use std::cell::RefCell;

use rustpython_vm::builtins::{PyBaseException, PyBytes, PyListRef, PyStr, PyTuple};
use rustpython_vm::function::OptionalArg;
use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};

use super::headers::{ResponseHeaders, check_header, check_status, parse_content_length};
use super::sink::ResponseSink;

/// The response side of the request being served on this thread.
pub struct ResponseInProgress {
    /// What the app passed to `start_response`, once it has.
    pub headers: Option<ResponseHeaders>,
    pub output: Box<dyn ResponseSink>,
    /// PEP 3333 rules the app broke while serving this request.
    pub violations: Vec<String>,
}

impl ResponseInProgress {
    /// Starts the head if not yet done. Errors when the app has not called
    /// `start_response`.
    pub fn ensure_head(&mut self, known_length: Option<u64>) -> Result<(), &'static str> {
        if !self.output.head_started() {
            let headers = self
                .headers
                .as_ref()
                .ok_or("the app produced body data before calling start_response()")?;
            self.output.start(headers, known_length);
        }
        Ok(())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<ResponseInProgress>> = const { RefCell::new(None) };
}

/// Makes `response` the one the callables act on.
pub fn begin(response: ResponseInProgress) {
    CURRENT.with(|c| *c.borrow_mut() = Some(response));
}

/// Takes the response back when the request is done.
pub fn end() -> Option<ResponseInProgress> {
    CURRENT.with(|c| c.borrow_mut().take())
}

/// Notes that the app broke a PEP 3333 rule (reported when the request ends;
/// the app still gets the error, if any, that the broken rule causes).
pub fn record_violation(message: String) {
    with_current(|ex| ex.violations.push(message));
}

/// Runs `f` on the current response; `None` outside a request.
pub fn with_current<R>(f: impl FnOnce(&mut ResponseInProgress) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow_mut().as_mut().map(f))
}

fn outside_request(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
    vm.new_runtime_error("start_response/write called outside a request on this thread")
}

/// `start_response(status, response_headers, exc_info=None)`.
pub fn start_response(
    vm: &VirtualMachine,
    status: PyObjectRef,
    headers: PyObjectRef,
    exc_info: OptionalArg<PyObjectRef>,
    write: &PyObjectRef,
) -> PyResult {
    let exc_info = exc_info.into_option().filter(|info| !vm.is_none(info));
    let state = with_current(|ex| (ex.headers.is_some(), ex.output.head_started()))
        .ok_or_else(|| outside_request(vm))?;
    match (&exc_info, state) {
        // PEP 3333: with exc_info after the head went out, re-raise it.
        (Some(info), (_, true)) => return Err(exception_of(vm, info)?),
        (None, (true, _)) => {
            let message = "start_response() called a second time without exc_info (PEP 3333)";
            record_violation(message.to_owned());
            return Err(vm.new_assertion_error(message));
        }
        _ => {}
    }
    let parsed = parse_response_head(vm, &status, &headers).inspect_err(|error| {
        record_violation(format!(
            "start_response(): {}",
            crate::python::app::exception_message(vm, error)
        ))
    })?;
    with_current(|ex| ex.headers = Some(parsed));
    Ok(write.clone())
}

/// `write(data)`: sends `data` at once, head first if needed (PEP 3333's
/// imperative API for older frameworks).
pub fn write(data: PyObjectRef, vm: &VirtualMachine) -> PyResult<()> {
    let bytes = data.downcast_ref::<PyBytes>().ok_or_else(|| {
        let message = format!(
            "write() argument must be bytes, not {}",
            data.class().name()
        );
        record_violation(message.clone());
        vm.new_type_error(message)
    })?;
    let outcome = with_current(|ex| -> Result<bool, &'static str> {
        ex.ensure_head(None)?;
        ex.output.body(bytes.as_bytes());
        ex.output.flush(vm);
        Ok(ex.output.is_closed())
    })
    .ok_or_else(|| outside_request(vm))?;
    match outcome {
        Err(message) => {
            record_violation(message.to_owned());
            Err(vm.new_assertion_error(message))
        }
        Ok(true) => Err(vm.new_os_error("client disconnected")),
        Ok(false) => Ok(()),
    }
}

fn exception_of(
    vm: &VirtualMachine,
    exc_info: &PyObjectRef,
) -> PyResult<rustpython_vm::builtins::PyBaseExceptionRef> {
    let value = exc_info
        .downcast_ref::<PyTuple>()
        .and_then(|t| t.as_slice().get(1).cloned())
        .ok_or_else(|| vm.new_type_error("exc_info must be a (type, value, traceback) tuple"))?;
    value
        .downcast::<PyBaseException>()
        .map_err(|_| vm.new_type_error("exc_info[1] must be an exception"))
}

/// Checks the status and header list and converts them (PEP 3333: a str
/// status, a list of (str, str) tuples).
fn parse_response_head(
    vm: &VirtualMachine,
    status: &PyObjectRef,
    headers: &PyObjectRef,
) -> PyResult<ResponseHeaders> {
    let status = status.downcast_ref::<PyStr>().ok_or_else(|| {
        vm.new_type_error(format!(
            "status must be a str, not {}",
            status.class().name()
        ))
    })?;
    let status = status
        .to_str()
        .ok_or_else(|| vm.new_value_error("status is not valid text"))?;
    check_status(status).map_err(|e| vm.new_value_error(e.to_string()))?;
    let list: PyListRef = headers.clone().downcast().map_err(|h| {
        vm.new_type_error(format!(
            "response headers must be a list, not {}",
            h.class().name()
        ))
    })?;
    let items = list.borrow_vec().to_vec();
    let mut parsed = ResponseHeaders {
        status: status.to_owned(),
        headers: Vec::with_capacity(items.len()),
        content_length: None,
    };
    for item in items {
        let pair = item
            .downcast_ref::<PyTuple>()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                vm.new_type_error(format!(
                    "each header must be a (name, value) tuple, not {}",
                    item.class().name()
                ))
            })?;
        let (name, value) = (&pair.as_slice()[0], &pair.as_slice()[1]);
        let as_text = |obj: &PyObjectRef, what: &str| -> PyResult<String> {
            let text = obj.downcast_ref::<PyStr>().ok_or_else(|| {
                vm.new_type_error(format!(
                    "header {what} must be a str, not {}",
                    obj.class().name()
                ))
            })?;
            text.to_str()
                .map(str::to_owned)
                .ok_or_else(|| vm.new_value_error(format!("header {what} is not valid text")))
        };
        let name = as_text(name, "name")?;
        let value = as_text(value, "value")?;
        let value = check_header(&name, &value).map_err(|e| vm.new_value_error(e.to_string()))?;
        if name.eq_ignore_ascii_case("content-length") {
            if parsed.content_length.is_some() {
                return Err(vm.new_value_error("Content-Length given twice"));
            }
            parsed.content_length =
                Some(parse_content_length(&value).map_err(|e| vm.new_value_error(e.to_string()))?);
        }
        parsed.headers.push((name, value));
    }
    Ok(parsed)
}
