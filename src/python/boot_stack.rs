//! Where a hanging import hangs. The arbiter aborts a worker that has not
//! booted within `--timeout` with SIGABRT; while the app is imported, that
//! signal dumps the importing thread's Python stack to stderr (faulthandler,
//! as `PYTHONFAULTHANDLER` does for CPython) before the worker dies, so the
//! log names the line that waits (a database connect at import time, say).
//!
//! RustPython's faulthandler dumps the frames of the thread the signal lands
//! on, so the worker's main thread blocks SIGABRT while its interpreter
//! threads import ([`block_on_this_thread`]) and each of those unblocks it
//! ([`arm`]).

use rustpython_vm::VirtualMachine;

use crate::log;

const ARM: &str =
    "import faulthandler, sys\nfaulthandler.enable(sys.__stderr__, all_threads=True)\n";
const DISARM: &str = "import faulthandler\nfaulthandler.disable()\n";

/// The import that follows dumps its stack on SIGABRT.
pub fn arm(vm: &VirtualMachine) {
    set_abort_blocked(libc::SIG_UNBLOCK);
    run(vm, ARM);
}

/// The import is over: SIGABRT goes back to the handler it had.
pub fn disarm(vm: &VirtualMachine) {
    run(vm, DISARM);
}

/// Keeps SIGABRT off this thread (the one waiting for the imports), and
/// off the threads it spawns until they [`arm`].
pub fn block_on_this_thread() {
    set_abort_blocked(libc::SIG_BLOCK);
}

/// Takes SIGABRT on this thread again.
pub fn unblock_on_this_thread() {
    set_abort_blocked(libc::SIG_UNBLOCK);
}

fn set_abort_blocked(how: libc::c_int) {
    // SAFETY: sigemptyset/sigaddset initialise the set we own;
    // pthread_sigmask changes only the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGABRT);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

fn run(vm: &VirtualMachine, source: &str) {
    let result = vm
        .new_scope_with_main()
        .and_then(|scope| vm.run_string(scope, source, "<ferrocorn boot>"));
    if let Err(error) = result {
        log::debug(&format!(
            "faulthandler for the boot: {}",
            crate::python::app::describe(vm, &error)
        ));
    }
}
