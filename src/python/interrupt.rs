//! `--request-timeout` inside the interpreter: the exception raised in a
//! request that ran too long (`ferrocorn.deadline.RequestTimeout`).

use rustpython_vm::builtins::{PyBaseException, PyBaseExceptionRef};
use rustpython_vm::{AsObject, PyObjectRef, VirtualMachine};

use super::app::import_module;

fn request_timeout_class(vm: &VirtualMachine) -> Option<PyObjectRef> {
    import_module(vm, "ferrocorn.deadline", "RequestTimeout")
        .and_then(|module| module.get_attr("RequestTimeout", vm))
        .ok()
}

/// A `RequestTimeout` saying how long the request ran (a RuntimeError if
/// the class cannot be had: the request is interrupted either way).
pub fn request_timeout(vm: &VirtualMachine, seconds: f64) -> PyBaseExceptionRef {
    let message = format!("the request ran longer than --request-timeout ({seconds} s)");
    request_timeout_class(vm)
        .and_then(|class| class.call((vm.ctx.new_str(message.as_str()),), vm).ok())
        .and_then(|exception| exception.downcast::<PyBaseException>().ok())
        .unwrap_or_else(|| vm.new_runtime_error(message))
}

/// Whether `exception` is the one [`request_timeout`] raises.
pub fn is_request_timeout(vm: &VirtualMachine, exception: &PyBaseExceptionRef) -> bool {
    request_timeout_class(vm).is_some_and(|class| exception.class().fast_issubclass(&class))
}
