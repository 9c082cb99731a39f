//! `--request-timeout`: a thread per worker watches how long each
//! interpreter has been on its request. Past the timeout it interrupts the
//! request inside Python: a closure sent down the interpreter's signal
//! channel, which the eval loop runs at its next check and which raises
//! `ferrocorn.deadline.RequestTimeout` (the bridge answers 503). The eval
//! breaker that makes an interpreter look at its channel is process-wide and
//! another interpreter may clear it first, so the interrupt is re-sent every
//! step until it was seen. A request still running [`GRACE`] later (it
//! swallowed the exception, or sits in native code) is given up: its client
//! gets 503 (or a closed connection when the response had begun), a fresh
//! interpreter takes the thread's place so queued requests are served, and
//! the worker retires gracefully.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustpython_vm::signal::UserSignalSender;

use super::activity::{Activity, CurrentRequest};
use super::handoff::{Reply, ReplyQueue, ResponseEnd, lock};
use crate::http::response::{error_response, reason_phrase};
use crate::log;

/// How long a request that was interrupted may take to end.
pub const GRACE: Duration = Duration::from_secs(2);

/// Each interpreter thread's signal channel, and the request it was last
/// interrupted in.
pub struct Interrupters {
    senders: Vec<Mutex<Option<UserSignalSender>>>,
    raised: Vec<AtomicU64>,
}

impl Interrupters {
    pub fn new(threads: usize) -> Interrupters {
        Interrupters {
            senders: (0..threads).map(|_| Mutex::new(None)).collect(),
            raised: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Interpreter thread `thread` takes interrupts through `sender`.
    pub fn register(&self, thread: usize, sender: UserSignalSender) {
        *lock(&self.senders[thread]) = Some(sender);
    }
}

/// Starts an interpreter thread in slot `thread` (replacing a given-up one).
pub type Replace = Box<dyn Fn(usize) + Send>;

/// The watching thread; it ends when dropped.
pub struct DeadlineWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DeadlineWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

struct Watch {
    timeout: Duration,
    activity: Arc<Activity>,
    interrupters: Arc<Interrupters>,
    replies: Arc<ReplyQueue>,
    replace: Replace,
    /// Per thread: the request last given up.
    given_up: Vec<u64>,
}

/// Watches `activity` until the returned watcher is dropped.
pub fn watch(
    timeout: Duration,
    activity: Arc<Activity>,
    interrupters: Arc<Interrupters>,
    replies: Arc<ReplyQueue>,
    replace: Replace,
) -> std::io::Result<DeadlineWatcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let step = (timeout / 20).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut watch = Watch {
        timeout,
        given_up: vec![0; activity.threads()],
        activity,
        interrupters,
        replies,
        replace,
    };
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                std::thread::park_timeout(step);
                watch.check();
            }
        })?;
    Ok(DeadlineWatcher {
        stop,
        thread: Some(thread),
    })
}

impl Watch {
    fn check(&mut self) {
        for thread in 0..self.activity.threads() {
            let Some(request) = self.activity.current(thread) else {
                continue;
            };
            let running = request.started.elapsed();
            if running < self.timeout {
                continue;
            }
            if running >= self.timeout.saturating_add(GRACE) {
                if self.given_up[thread] != request.seq {
                    self.given_up[thread] = request.seq;
                    self.give_up(thread, &request);
                }
            } else if self.interrupters.raised[thread].load(Ordering::SeqCst) != request.seq {
                self.interrupt(thread, request.seq);
            }
        }
    }

    /// Sends the closure that raises RequestTimeout in request `seq`.
    fn interrupt(&self, thread: usize, seq: u64) {
        let sender = lock(&self.interrupters.senders[thread]).clone();
        let Some(sender) = sender else {
            return;
        };
        let (activity, interrupters) = (self.activity.clone(), self.interrupters.clone());
        let seconds = self.timeout.as_secs_f64();
        let _ = sender.send(Box::new(move |vm| {
            // Queued closures outlive their request: raise in that one only, once.
            if !activity.is_on(thread, seq)
                || interrupters.raised[thread].swap(seq, Ordering::SeqCst) == seq
            {
                return Ok(());
            }
            Err(crate::python::interrupt::request_timeout(vm, seconds))
        }));
    }

    fn give_up(&self, thread: usize, request: &CurrentRequest) {
        log::error(&format!(
            "Request {} still running {} s after --request-timeout (it caught the interrupt or is in native code): giving it up and replacing this worker (pid: {})",
            request.line,
            GRACE.as_secs(),
            std::process::id()
        ));
        request.flow.abort();
        let bytes = if request.flow.response_started() {
            Vec::new()
        } else {
            error_response(
                503,
                reason_phrase(503),
                "The request took longer than the server allows.",
            )
        };
        self.replies.push(Reply {
            connection: request.connection,
            bytes,
            end: Some(ResponseEnd::Close),
        });
        self.activity.abandon(
            thread,
            request.seq,
            format!("Worker retiring: request {} was given up", request.line),
        );
        (self.replace)(thread);
        self.replies.wake();
    }
}
