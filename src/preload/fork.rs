//! Forking a worker from the preloading process, twice over Python's
//! `os.fork` (which resets RustPython's thread registry, locks and
//! stop-the-world state in the child; a raw fork(2) would not): the
//! intermediate child forks the worker and exits, so the worker is
//! re-parented to the arbiter (a child subreaper, PR_SET_CHILD_SUBREAPER in
//! prctl(2)); the worker then reports its pid, and the arbiter waits for
//! it, signals it and reads its exit status as for any worker it forked
//! itself.
//!
//! Functions the app registered with `os.register_at_fork` run as for one
//! fork: `before` and `after_in_parent` in the preloading process,
//! `after_in_child` in the worker.

use std::os::unix::net::UnixDatagram;

use rustpython_vm::{PyObjectRef, VirtualMachine};

use super::messages::{self, Report};
use crate::python::app::describe;

/// Which process returns from [`fork_worker`].
pub enum Role {
    /// The preloading process, the fork reported (or its failure).
    Preloader,
    /// The new worker.
    Worker,
}

/// Forks the worker for `slot`; the arbiter hears of a failure on `channel`.
pub fn fork_worker(vm: &VirtualMachine, channel: &UnixDatagram, slot: usize) -> Role {
    let report = |report: Report| {
        if let Err(error) = messages::send(channel, &report.encode()) {
            crate::log::error(&format!("cannot report to the arbiter: {error}"));
        }
    };
    let hooks = &vm.state;
    let in_child = std::mem::take(&mut *hooks.after_forkers_child.lock());
    match python_fork(vm) {
        Err(reason) => {
            *hooks.after_forkers_child.lock() = in_child;
            report(Report::ForkFailed { slot, reason });
            Role::Preloader
        }
        Ok(0) => {
            let before = std::mem::take(&mut *hooks.before_forkers.lock());
            let in_parent = std::mem::take(&mut *hooks.after_forkers_parent.lock());
            *hooks.after_forkers_child.lock() = in_child;
            match python_fork(vm) {
                Ok(0) => {
                    *hooks.before_forkers.lock() = before;
                    *hooks.after_forkers_parent.lock() = in_parent;
                    return Role::Worker;
                }
                // The worker reports itself once it is the arbiter's child.
                Ok(_) => {}
                Err(reason) => report(Report::ForkFailed { slot, reason }),
            }
            // SAFETY: _exit ends this intermediate process at once, running
            // nothing of the interpreter's or the preloader's teardown.
            unsafe { libc::_exit(0) }
        }
        Ok(intermediate) => {
            *hooks.after_forkers_child.lock() = in_child;
            // It exits right after its one fork.
            // SAFETY: waiting for our own child; a null status is allowed.
            unsafe {
                libc::waitpid(intermediate, std::ptr::null_mut(), 0);
            }
            Role::Preloader
        }
    }
}

/// `posix.fork()`: the child's pid, 0 in the child.
fn python_fork(vm: &VirtualMachine) -> Result<libc::pid_t, String> {
    let fork = vm
        .import("posix", 0)
        .and_then(|posix| posix.get_attr("fork", vm))
        .map_err(|e| describe(vm, &e))?;
    let pid: PyObjectRef = fork.call((), vm).map_err(|e| describe(vm, &e))?;
    pid.try_into_value::<libc::pid_t>(vm)
        .map_err(|e| describe(vm, &e))
}

/// In the new worker: waits until the intermediate process has exited and
/// the kernel has re-parented this one to `arbiter` (within a second; it
/// takes microseconds). `false` if it did not (the arbiter is gone).
pub fn wait_for_arbiter(arbiter: libc::pid_t) -> bool {
    for _ in 0..10_000 {
        // SAFETY: getppid has no memory effects.
        if unsafe { libc::getppid() } == arbiter {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    false
}
