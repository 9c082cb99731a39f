//! Running Gunicorn's server hooks (`pylib/ferrocorn/hooks.py`): a thread
//! with its own interpreter executes the configuration file and calls its
//! hook functions when asked, one at a time, waiting for each to finish.
//! Started only in processes whose hooks the file defines, so a server
//! without hooks keeps its arbiter free of interpreters.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use rustpython_vm::builtins::PyStrRef;
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};

use super::interpreter::spawn_interpreter_thread;
use crate::log;
use crate::python::app::{LoadError, exception_message, format_exception, import_module};
use crate::python::interpreter::new_interpreter;

/// What a hook's `server` object says.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub pid: u32,
    pub num_workers: usize,
    pub addresses: Vec<String>,
}

/// What a hook's `worker` object says (`pid` 0 before the fork).
#[derive(Debug, Clone, Copy)]
pub struct WorkerFacts {
    pub pid: u32,
    pub ppid: u32,
    pub age: u64,
}

/// One argument of a hook call.
#[derive(Debug, Clone)]
pub enum HookArg {
    Server(ServerFacts),
    Worker(WorkerFacts),
    Int(i64),
}

struct HookCall {
    name: &'static str,
    args: Vec<HookArg>,
    done: Sender<()>,
}

/// Where the configuration comes from and what its hooks' `cfg` shows.
#[derive(Debug, Clone)]
pub struct HookSource {
    /// `-c` value: a path or `python:module`.
    pub source: String,
    /// Every setting by its Gunicorn name, as text.
    pub settings: Vec<(String, String)>,
    pub sys_path: Vec<String>,
}

/// A hook-calling interpreter thread.
pub struct HookRunner {
    calls: Option<Sender<HookCall>>,
    thread: Option<JoinHandle<()>>,
}

impl HookRunner {
    /// Starts the thread when the configuration defines any of `wanted`
    /// (from `Config::hooks`); `None` otherwise.
    pub fn start(
        source: Option<&HookSource>,
        defined: &[String],
        wanted: &[&str],
    ) -> Option<HookRunner> {
        let source = source?.clone();
        if !defined.iter().any(|name| wanted.contains(&name.as_str())) {
            return None;
        }
        let (calls, receiver) = mpsc::channel::<HookCall>();
        let thread =
            spawn_interpreter_thread("hooks".to_owned(), move || serve_calls(&source, receiver));
        match thread {
            Ok(thread) => Some(HookRunner {
                calls: Some(calls),
                thread: Some(thread),
            }),
            Err(error) => {
                log::error(&format!("cannot start the hooks thread: {error}"));
                None
            }
        }
    }

    /// Calls hook `name` (if defined) and waits for it to return.
    pub fn call(&self, name: &'static str, args: Vec<HookArg>) {
        let Some(calls) = &self.calls else { return };
        let (done, finished) = mpsc::channel();
        if calls.send(HookCall { name, args, done }).is_ok() {
            let _ = finished.recv();
        }
    }
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.calls = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Calls `runner`'s hook if there is a runner.
pub fn call_hook(runner: Option<&HookRunner>, name: &'static str, args: Vec<HookArg>) {
    if let Some(runner) = runner {
        runner.call(name, args);
    }
}

fn serve_calls(source: &HookSource, calls: Receiver<HookCall>) {
    let interpreter = new_interpreter(&source.sys_path, Default::default());
    interpreter.enter(|vm| {
        let hooks = match load_hooks(vm, source) {
            Ok(hooks) => hooks,
            Err(error) => {
                log::error(&error.to_string());
                // Answer every call so no caller waits on a broken file.
                vm.allow_threads(|| {
                    while let Ok(call) = calls.recv() {
                        let _ = call.done.send(());
                    }
                });
                return;
            }
        };
        let mut finished: Option<Sender<()>> = None;
        // The caller learns a hook finished only once this thread is
        // detached from the VM again: the arbiter forks right after pre_fork,
        // and a child whose copy of the VM's thread registry showed this
        // thread attached would wait for it at its first garbage collection.
        while let Ok(call) = vm.allow_threads(|| {
            if let Some(done) = finished.take() {
                let _ = done.send(());
            }
            calls.recv()
        }) {
            if let Err(error) = invoke(vm, &hooks, call.name, &call.args) {
                log::error(&format!(
                    "calling the {} hook failed: {}",
                    call.name,
                    exception_message(vm, &error)
                ));
            }
            finished = Some(call.done);
        }
    });
}

/// `ferrocorn.hooks.Hooks(source, write_log, settings)`.
pub fn load_hooks(vm: &VirtualMachine, source: &HookSource) -> Result<PyObjectRef, LoadError> {
    let built = (|| -> PyResult {
        let class = import_module(vm, "ferrocorn.hooks", "Hooks")?.get_attr("Hooks", vm)?;
        let write_log = vm.new_function("write_log", |level: PyStrRef, message: PyStrRef| {
            let level = level.to_string_lossy().parse().unwrap_or(log::Level::Error);
            log::log(level, message.to_string_lossy().trim_end());
        });
        let settings: Vec<PyObjectRef> = source
            .settings
            .iter()
            .map(|(name, value)| {
                vm.ctx
                    .new_tuple(vec![
                        vm.ctx.new_str(name.as_str()).into(),
                        vm.ctx.new_str(value.as_str()).into(),
                    ])
                    .into()
            })
            .collect();
        class.call(
            (
                vm.ctx.new_str(source.source.as_str()),
                write_log,
                vm.ctx.new_list(settings),
            ),
            vm,
        )
    })();
    built.map_err(|error| {
        LoadError::Setup(format!(
            "cannot load the hooks of {}:\n{}",
            source.source,
            format_exception(vm, &error)
        ))
    })
}

/// `hooks.call(name, *args)` with each argument built as Gunicorn's object.
pub fn invoke(
    vm: &VirtualMachine,
    hooks: &PyObjectRef,
    name: &str,
    args: &[HookArg],
) -> PyResult<()> {
    let mut call_args = vec![vm.ctx.new_str(name).into()];
    for arg in args {
        call_args.push(match arg {
            HookArg::Server(server) => {
                let addresses: Vec<PyObjectRef> = server
                    .addresses
                    .iter()
                    .map(|a| vm.ctx.new_str(a.as_str()).into())
                    .collect();
                hooks.get_attr("server", vm)?.call(
                    (server.pid, server.num_workers, vm.ctx.new_list(addresses)),
                    vm,
                )?
            }
            HookArg::Worker(worker) => hooks
                .get_attr("worker", vm)?
                .call((worker.pid, worker.ppid, worker.age), vm)?,
            HookArg::Int(n) => vm.ctx.new_int(*n).into(),
        });
    }
    hooks.get_attr("call", vm)?.call(call_args, vm)?;
    Ok(())
}
