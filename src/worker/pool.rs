//! Interpreter threads: each creates its own RustPython interpreter, imports
//! the app once, then serves jobs from the queue until it is closed.

use std::sync::Arc;
use std::thread::JoinHandle;

use rustpython_vm::VirtualMachine;

use super::activity::{Activity, ThreadActivity};
use super::exchange::{Job, JobQueue, ReplyQueue};
use super::output::ResponseOutput;
use crate::http::response::ResponseContext;
use crate::python::app::LoadError;
use crate::wsgi::boot::{HostSettings, start_interpreter_threads};
use crate::wsgi::bridge::WsgiHost;

pub struct InterpreterPool {
    threads: Vec<JoinHandle<()>>,
    module_files: Vec<std::path::PathBuf>,
}

impl InterpreterPool {
    /// Starts `count` threads and waits until each has loaded the app; the
    /// first load error is returned (the process should then exit).
    pub fn start(
        count: usize,
        settings: Arc<HostSettings>,
        jobs: Arc<JobQueue>,
        replies: Arc<ReplyQueue>,
        activity: Arc<Activity>,
    ) -> Result<InterpreterPool, LoadError> {
        let threads =
            start_interpreter_threads(count, "interpreter", settings, move |index, vm, host| {
                // Wait for jobs detached from the VM: a garbage collection in any
                // interpreter stops every thread attached to one, and a thread
                // blocked here while attached would never answer it.
                let this_thread = ThreadActivity::new(activity.clone(), index);
                while let Some(job) = vm.allow_threads(|| jobs.pop()) {
                    this_thread.begin();
                    serve_job(host, vm, job, &replies, &this_thread);
                    this_thread.end();
                }
            })?;
        Ok(InterpreterPool {
            threads: threads.threads,
            module_files: threads.module_files,
        })
    }

    /// The source files of the modules the app imported (with `--reload`).
    pub fn module_files(&self) -> &[std::path::PathBuf] {
        &self.module_files
    }

    /// Waits for the threads to finish (after the job queue was closed).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Runs a request from the event loop, answering on its connection.
fn serve_job(
    host: &WsgiHost,
    vm: &VirtualMachine,
    job: Job,
    replies: &Arc<ReplyQueue>,
    serving_thread: &ThreadActivity,
) {
    let Job {
        connection,
        head,
        body,
        info,
        flow,
    } = job;
    let context = ResponseContext {
        version: head.version,
        is_head: head.method() == "HEAD",
        keep_alive: head.keep_alive,
    };
    let output = ResponseOutput::new(
        connection,
        flow,
        replies.clone(),
        serving_thread.clone(),
        context,
    );
    host.serve(vm, &head, body, &info, Box::new(output));
}
