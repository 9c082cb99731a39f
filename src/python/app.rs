//! Loading the WSGI callable named by APP_MODULE (see `pylib/ferrocorn/loader.py`).

use std::fmt;

use rustpython_vm::builtins::PyBaseExceptionRef;
use rustpython_vm::{AsObject, PyObjectRef, VirtualMachine};

/// Why the app could not be loaded.
#[derive(Debug, Clone)]
pub enum LoadError {
    /// APP_MODULE does not name a usable callable (one line says why).
    Spec(String),
    /// APP_MODULE's module, or a module it needs, is not importable here:
    /// not on sys.path, or a C extension or standard module RustPython
    /// lacks (one line says which).
    Import(String),
    /// An interpreter thread could not be started, or died while booting.
    Thread(String),
    /// The sandbox could not be applied to the interpreter (the line names
    /// the part: the thread's confinement, a module to remove, the
    /// `ferrocorn.sandbox` guards).
    Sandbox(String),
    /// The Rust functions given as [`crate::embed::NativeModule`]s could
    /// not be installed.
    NativeModules(String),
    /// ferrocorn's own Python side (the WSGI bridge, request hooks, the
    /// `--check-wsgi` wrapper) could not be set up.
    Setup(String),
    /// The app's own code raised while being imported or built.
    Python {
        /// One line: the app, the exception type and its message.
        summary: String,
        /// The traceback as Python prints it.
        traceback: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Spec(message)
            | LoadError::Import(message)
            | LoadError::Thread(message)
            | LoadError::Sandbox(message)
            | LoadError::NativeModules(message)
            | LoadError::Setup(message) => f.write_str(message),
            LoadError::Python { summary, .. } => f.write_str(summary),
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// The whole story for a reader: the traceback (if any), then the summary line.
    pub fn report(&self) -> String {
        match self {
            LoadError::Python { summary, traceback } => format!("{traceback}{summary}\n"),
            other => format!("{other}\n"),
        }
    }
}

/// Imports APP_MODULE and returns its WSGI callable.
pub fn load_app(vm: &VirtualMachine, spec: &str) -> Result<PyObjectRef, LoadError> {
    let loader =
        import_module(vm, "ferrocorn.loader", "load").map_err(|e| python_error(vm, spec, &e))?;
    let load = loader
        .get_attr("load", vm)
        .map_err(|e| python_error(vm, spec, &e))?;
    match load.call((vm.ctx.new_str(spec),), vm) {
        Ok(app) => Ok(app),
        Err(exception) => {
            let is = |name: &'static str| {
                loader
                    .get_attr(name, vm)
                    .is_ok_and(|class| exception.class().fast_issubclass(&class))
            };
            let message = || exception_message(vm, &exception);
            if is("ModuleImportError") {
                Err(LoadError::Import(message()))
            } else if is("AppLoadError") {
                Err(LoadError::Spec(message()))
            } else {
                Err(python_error(vm, spec, &exception))
            }
        }
    }
}

/// `from module import name`, returning the module itself.
pub fn import_module(
    vm: &VirtualMachine,
    module: &'static str,
    name: &str,
) -> Result<PyObjectRef, PyBaseExceptionRef> {
    let from_list = vm.ctx.new_tuple(vec![vm.ctx.new_str(name).into()]);
    vm.import_from(module, from_list, 0)
}

fn python_error(vm: &VirtualMachine, spec: &str, exception: &PyBaseExceptionRef) -> LoadError {
    LoadError::Python {
        summary: format!(
            "loading {spec} failed: {}: {}",
            exception.class().name(),
            exception_message(vm, exception)
        ),
        traceback: format_exception(vm, exception),
    }
}

/// `str(exception)`.
pub fn exception_message(vm: &VirtualMachine, exception: &PyBaseExceptionRef) -> String {
    exception
        .as_object()
        .str(vm)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "<unprintable exception>".to_owned())
}

/// `Type: message`, for one-line reports of an exception.
pub fn describe(vm: &VirtualMachine, exception: &PyBaseExceptionRef) -> String {
    format!(
        "{}: {}",
        exception.class().name(),
        exception_message(vm, exception)
    )
}

/// The traceback as Python would print it.
pub fn format_exception(vm: &VirtualMachine, exception: &PyBaseExceptionRef) -> String {
    let mut text = String::new();
    let _ = vm.write_exception(&mut text, exception);
    text
}
