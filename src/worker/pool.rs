//! Interpreter threads: each creates its own RustPython interpreter, imports
//! the app once, then serves jobs from the queue until it is closed.

use std::sync::Arc;
use std::thread::JoinHandle;

use rustpython_vm::VirtualMachine;
use rustpython_vm::signal::UserSignalSender;

use super::activity::{Activity, ThreadActivity, Watched};
use super::deadline::Interrupters;
use super::handoff::{Job, JobQueue, ReplyQueue};
use super::output::ResponseOutput;
use crate::http::response::ResponseContext;
use crate::log;
use crate::metrics::statsd;
use crate::process::thread_cpu_time;
use crate::python::app::LoadError;
use crate::sandbox::memory::ResidentMemory;
use crate::scoreboard::counters::{SelfRetirement, WorkerMetrics};
use crate::wsgi::boot::{HostSettings, start_interpreter_threads};
use crate::wsgi::bridge::WsgiHost;

/// `--max-worker-memory`: the resident size above which the worker retires.
pub struct MemoryLimit {
    pub resident: ResidentMemory,
    pub bytes: u64,
}

/// What every interpreter thread of a worker shares.
#[derive(Clone)]
pub struct PoolShared {
    pub settings: Arc<HostSettings>,
    pub jobs: Arc<JobQueue>,
    pub replies: Arc<ReplyQueue>,
    pub activity: Arc<Activity>,
    pub interrupters: Arc<Interrupters>,
    pub memory: Option<Arc<MemoryLimit>>,
    /// With `--metrics-bind`: where each answer is counted.
    pub metrics: Option<WorkerMetrics>,
}

pub struct InterpreterPool {
    threads: Vec<JoinHandle<()>>,
    module_files: Vec<std::path::PathBuf>,
}

impl InterpreterPool {
    /// Starts `count` threads and waits until each has loaded the app; the
    /// first load error is returned (the process should then exit).
    pub fn start(count: usize, shared: PoolShared) -> Result<InterpreterPool, LoadError> {
        Self::start_in_slots(count, 0, shared)
    }

    /// In a worker forked from the preloading process: the threads beyond
    /// the first (`--threads`), which import the app themselves; slot 0 is
    /// the inherited interpreter's ([`serve_jobs`] on the worker's thread).
    pub fn start_beside_preloaded(
        count: usize,
        shared: PoolShared,
    ) -> Result<InterpreterPool, LoadError> {
        Self::start_in_slots(count.saturating_sub(1), 1, shared)
    }

    /// Starts one interpreter thread in slot `slot` of the activity table,
    /// in place of one whose request was given up.
    pub fn start_replacement(slot: usize, shared: PoolShared) -> Result<(), LoadError> {
        Self::start_in_slots(1, slot, shared).map(drop)
    }

    fn start_in_slots(
        count: usize,
        first_slot: usize,
        shared: PoolShared,
    ) -> Result<InterpreterPool, LoadError> {
        let settings = shared.settings.clone();
        let threads = start_interpreter_threads(
            count,
            "interpreter",
            settings,
            move |index, vm, host, interrupts| {
                serve_jobs(first_slot + index, vm, host, interrupts, &shared);
            },
        )?;
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

/// Serves jobs as the interpreter in slot `index` until the queue closes.
pub fn serve_jobs(
    index: usize,
    vm: &VirtualMachine,
    host: &WsgiHost,
    interrupts: Option<UserSignalSender>,
    shared: &PoolShared,
) {
    if let Some(sender) = interrupts {
        shared.interrupters.register(index, sender);
    }
    // Wait for jobs detached from the VM: a garbage collection in any
    // interpreter stops every thread attached to one, and a thread
    // blocked here while attached would never answer it.
    let this_thread = ThreadActivity::new(
        shared.activity.clone(),
        index,
        shared.settings.interruptible,
    );
    while let Some(job) = vm.allow_threads(|| shared.jobs.pop()) {
        if shared.jobs.take_wake_request() {
            shared.replies.wake();
        }
        // Nobody waits for a request whose connection is gone (a client
        // reset, a timeout): it is not handed to the app. A request the app
        // has already taken is not interrupted by this.
        if job.flow.is_aborted() {
            drop_abandoned(&job, shared);
            continue;
        }
        serve_job(host, vm, job, shared, &this_thread);
        if let Some(memory) = &shared.memory {
            check_memory(memory, shared);
        }
    }
}

fn drop_abandoned(job: &Job, shared: &PoolShared) {
    if let Some(metrics) = &shared.metrics {
        metrics.abandoned();
    }
    log::debug(&format!(
        "not running {} {} from {}: its connection closed while it waited",
        job.head.method(),
        String::from_utf8_lossy(job.head.target_bytes()),
        job.info.remote_addr
    ));
}

/// After a request: above `--max-worker-memory`, the worker retires.
fn check_memory(memory: &MemoryLimit, shared: &PoolShared) {
    let Ok(resident) = memory.resident.bytes() else {
        return;
    };
    if resident > memory.bytes && shared.activity.retire_reason().is_none() {
        shared.activity.request_retire(
            SelfRetirement::MemoryLimit,
            format!(
                "Worker retiring: {} MB resident, above --max-worker-memory {} MB",
                resident >> 20,
                memory.bytes >> 20
            ),
        );
        shared.replies.wake();
    }
}

/// Runs a request from the event loop, answering on its connection.
fn serve_job(
    host: &WsgiHost,
    vm: &VirtualMachine,
    job: Job,
    shared: &PoolShared,
    serving_thread: &ThreadActivity,
) {
    let Job {
        connection,
        received,
        head,
        body,
        info,
        flow,
    } = job;
    let watched = serving_thread.is_watched().then(|| Watched {
        connection,
        flow: flow.clone(),
        line: format!(
            "{} {}",
            head.method(),
            String::from_utf8_lossy(head.target_bytes())
        )
        .into(),
    });
    let seq = serving_thread.begin(watched);
    let context = ResponseContext {
        version: head.version,
        is_head: head.method() == "HEAD",
        keep_alive: head.keep_alive,
    };
    let output = ResponseOutput::new(
        connection,
        flow,
        shared.replies.clone(),
        serving_thread.clone(),
        context,
    );
    // A system call each way: read only when the metrics keep it.
    let cpu_at_start = shared.metrics.is_some().then(thread_cpu_time);
    let outcome = host.serve(vm, &head, body, &info, Box::new(output));
    serving_thread.end(seq);
    let statsd = statsd::client();
    if shared.metrics.is_none() && statsd.is_none() {
        return;
    }
    let elapsed = received.elapsed();
    let status = outcome.status_code();
    if let Some(metrics) = &shared.metrics {
        if let Some(failure) = outcome.failure() {
            metrics.failed(failure.label());
        }
        if let Some(start) = cpu_at_start {
            metrics.spent_cpu(thread_cpu_time().saturating_sub(start));
        }
        metrics.answered(head.method(), status, elapsed);
    }
    if let Some(client) = statsd {
        client.request(status, elapsed);
    }
}
