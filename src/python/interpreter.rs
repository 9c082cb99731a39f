//! Creating an interpreter: frozen standard library plus our `pylib/`, no
//! reliance on any Python installed on the host.

use rustpython::InterpreterBuilderExt;
use rustpython_vm::common::rc::PyRc;
use rustpython_vm::signal::UserSignalReceiver;
use rustpython_vm::{Interpreter, InterpreterBuilder, Settings, VirtualMachine};

/// What an interpreter is built with besides its `sys.path`.
#[derive(Default)]
pub struct InterpreterOptions {
    /// Modules (and their submodules) the interpreter is built without:
    /// neither a native nor a frozen one of that name exists in it, so no
    /// import route, `importlib` included, can load them.
    pub removed_modules: Vec<String>,
    /// Where interrupts for the running request arrive (`--request-timeout`):
    /// the eval loop runs them at its next signal check.
    pub interrupts: Option<UserSignalReceiver>,
    /// Python's own signal handling (SIGINT raises KeyboardInterrupt), as
    /// for a script; a server owns its signals and leaves this off.
    pub python_signals: bool,
    /// `sys.argv` (default `["ferrocorn"]`).
    pub argv: Option<Vec<String>>,
}

/// Builds an interpreter whose `sys.path` is `sys_path` (then the frozen stdlib).
/// Call it on the thread that will use the interpreter: RustPython sizes its
/// recursion limit for the creating thread's stack.
pub fn new_interpreter(sys_path: &[String], options: InterpreterOptions) -> Interpreter {
    let mut settings = Settings::default();
    // The server owns signals; Python must not install SIGINT handlers.
    settings.install_signal_handlers = options.python_signals;
    // Without UTF-8 mode sys.stdout is ASCII and print("é") raises.
    settings.utf8_mode = 1;
    // print() from the app reaches the log at once, not when a buffer fills.
    settings.buffered_stdio = false;
    // RustPython would write *.cpython-314.pyc beside the app's sources, which
    // a real CPython 3.14 would then load; keep the app's tree untouched.
    settings.write_bytecode = false;
    settings.import_site = false;
    settings.user_site_directory = false;
    // PYTHONPATH is applied by the caller, in the documented order.
    settings.ignore_environment = true;
    settings.path_list = sys_path.to_vec();
    let InterpreterOptions {
        removed_modules,
        interrupts,
        python_signals: _,
        argv,
    } = options;
    settings.argv = argv.unwrap_or_else(|| vec!["ferrocorn".to_owned()]);
    super::ssl_provider::install();
    InterpreterBuilder::new()
        .settings(settings)
        .init_stdlib()
        .add_frozen_modules(rustpython_vm::py_freeze!(dir = "../../pylib"))
        .init_hook(move |vm| {
            if let Some(state) = PyRc::get_mut(&mut vm.state) {
                let removed = |name: &str| {
                    removed_modules.iter().any(|gone| {
                        name == gone
                            || name
                                .strip_prefix(gone.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                };
                state.module_defs.retain(|name, _| !removed(name));
                state.frozen.retain(|name, _| !removed(name));
            }
            if let Some(receiver) = interrupts {
                vm.set_user_signal_channel(receiver);
            }
        })
        .interpreter()
}

/// Stack for interpreter threads: RustPython derives its recursion limit
/// from the stack it runs on, and deep framework stacks need room.
pub const INTERPRETER_STACK: usize = 16 << 20;

/// Starts a thread that will run an interpreter: named `name`, with
/// [`INTERPRETER_STACK`]. Every interpreter thread is started here.
pub fn spawn_interpreter_thread<T: Send + 'static>(
    name: String,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(INTERPRETER_STACK)
        .spawn(body)
}

/// Runs `work` in a new interpreter (with `sys_path`) on a thread of its
/// own, for a job done before serving (reading a configuration file,
/// compiling a bundle's modules): the calling thread, the arbiter's, stays
/// free of interpreter threads. `what` names the job in errors.
pub fn on_own_thread<T: Send + 'static>(
    what: &str,
    sys_path: Vec<String>,
    work: impl FnOnce(&VirtualMachine) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    spawn_interpreter_thread(what.replace(' ', "-"), move || {
        let interpreter = new_interpreter(&sys_path, Default::default());
        interpreter.enter(work)
    })
    .map_err(|e| format!("cannot start a thread for {what}: {e}"))?
    .join()
    .map_err(|_| format!("{what} panicked"))?
}
