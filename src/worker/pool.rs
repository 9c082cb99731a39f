//! Interpreter threads: each creates its own RustPython interpreter, imports
//! the app once, then serves jobs from the queue until it is closed.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::activity::Activity;
use super::exchange::{JobQueue, ReplyQueue};
use crate::access_log::AccessFormat;
use crate::python::app::{LoadError, load_app};
use crate::python::interpreter::new_interpreter;
use crate::wsgi::bridge::{WsgiHost, describe};
use crate::wsgi::environ::EnvironSettings;

/// Stack for interpreter threads: RustPython derives its recursion limit
/// from the stack it runs on, and deep framework stacks need room.
const INTERPRETER_STACK: usize = 16 << 20;

pub struct PoolSettings {
    pub app_spec: String,
    pub sys_path: Vec<String>,
    pub environ: EnvironSettings,
    pub access_format: Option<AccessFormat>,
}

pub struct InterpreterPool {
    threads: Vec<JoinHandle<()>>,
}

impl InterpreterPool {
    /// Starts `count` threads and waits until each has loaded the app; the
    /// first load error is returned (the process should then exit).
    pub fn start(
        count: usize,
        settings: Arc<PoolSettings>,
        jobs: Arc<JobQueue>,
        replies: Arc<ReplyQueue>,
        activity: Arc<Activity>,
    ) -> Result<InterpreterPool, LoadError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let (settings, jobs, replies, ready) = (
                settings.clone(),
                jobs.clone(),
                replies.clone(),
                ready_tx.clone(),
            );
            let activity = activity.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("interpreter-{index}"))
                .stack_size(INTERPRETER_STACK)
                .spawn(move || serve(index, &settings, &jobs, replies, &activity, ready));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    return Err(LoadError::Spec(format!(
                        "cannot start an interpreter thread: {error}"
                    )));
                }
            }
        }
        drop(ready_tx);
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    return Err(LoadError::Spec(
                        "an interpreter thread died while starting".into(),
                    ));
                }
            }
        }
        Ok(InterpreterPool { threads })
    }

    /// Waits for the threads to finish (after the job queue was closed).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn serve(
    index: usize,
    settings: &PoolSettings,
    jobs: &JobQueue,
    replies: Arc<ReplyQueue>,
    activity: &Activity,
    ready: mpsc::Sender<Result<(), LoadError>>,
) {
    let interpreter = new_interpreter(&settings.sys_path);
    let host = interpreter.enter(|vm| {
        load_app(vm, &settings.app_spec)
            .inspect(|_| freeze_imported_objects(vm))
            .and_then(|app| {
                WsgiHost::new(
                    vm,
                    app,
                    &settings.environ,
                    settings.access_format.clone(),
                    replies,
                )
                .map_err(|e| LoadError::Spec(describe(vm, &e)))
            })
    });
    let host = match host {
        Ok(host) => host,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    // Wait for jobs detached from the VM: a garbage collection in any
    // interpreter stops every thread attached to one, and a thread blocked
    // here while attached would never answer it.
    interpreter.enter(|vm| {
        while let Some(job) = vm.allow_threads(|| jobs.pop()) {
            activity.begin(index);
            host.handle(vm, job);
            activity.end(index);
        }
    });
}

/// Moves everything the app import created out of the collector's reach
/// (`gc.collect(); gc.freeze()`): those objects live as long as the worker,
/// and every collection would otherwise trace them again. One A/B pair of
/// 5 s wrk runs on bench/apps/flask_json.py (-w 1 --threads 1): 1245 -> 1560
/// req/s, p99 78 -> 58 ms. Best effort: a failure only costs that speed.
fn freeze_imported_objects(vm: &rustpython_vm::VirtualMachine) {
    let frozen = vm.import("gc", 0).and_then(|gc| {
        gc.get_attr("collect", vm)?.call((), vm)?;
        gc.get_attr("freeze", vm)?.call((), vm)
    });
    if frozen.is_err() {
        crate::log::debug("gc.freeze() after loading the app failed");
    }
}
