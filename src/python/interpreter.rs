//! Creating an interpreter: frozen standard library plus our `pylib/`, no
//! reliance on any Python installed on the host.

use rustpython::InterpreterBuilderExt;
use rustpython_vm::{Interpreter, InterpreterBuilder, Settings};

/// Builds an interpreter whose `sys.path` is `sys_path` (then the frozen stdlib).
/// Call it on the thread that will use the interpreter: RustPython sizes its
/// recursion limit for the creating thread's stack.
pub fn new_interpreter(sys_path: &[String]) -> Interpreter {
    let mut settings = Settings::default();
    // The server owns signals; Python must not install SIGINT handlers.
    settings.install_signal_handlers = false;
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
    settings.argv = vec!["ferrocorn".to_owned()];
    InterpreterBuilder::new()
        .settings(settings)
        .init_stdlib()
        .add_frozen_modules(rustpython_vm::py_freeze!(dir = "../../pylib"))
        .interpreter()
}
