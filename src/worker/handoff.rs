//! What crosses between the event loop and the interpreter threads: requests
//! one way (a [`Job`] on the [`JobQueue`]), response bytes the other (a
//! [`Reply`] on the [`ReplyQueue`], which wakes the loop), and per-connection
//! flow control so a slow client makes the app wait instead of memory grow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::http::body::RequestBody;
use crate::http::head::RequestHead;
use crate::net::peer::ConnectionInfo;

/// Identifies a connection across the thread boundary: slab slots are reused,
/// so the generation tells a reply for a closed connection from a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId {
    pub slot: usize,
    pub generation: u64,
}

/// A request fully received and checked, for an interpreter thread.
pub struct Job {
    pub connection: ConnectionId,
    /// When its last byte arrived (request durations count from here).
    pub received: std::time::Instant,
    pub head: RequestHead,
    pub body: RequestBody,
    pub info: ConnectionInfo,
    pub flow: Arc<FlowControl>,
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEnd {
    /// Complete; the connection can carry the next request.
    KeepAlive,
    /// Complete or cut short; close the connection once the bytes are out.
    Close,
}

/// Response bytes for a connection, and whether the response ends with them.
pub struct Reply {
    pub connection: ConnectionId,
    pub bytes: Vec<u8>,
    pub end: Option<ResponseEnd>,
}

/// Requests waiting for an interpreter thread.
#[derive(Default)]
pub struct JobQueue {
    state: Mutex<JobQueueState>,
    available: Condvar,
    /// Set by the event loop while it leaves new clients in the listen
    /// backlog until a job is taken.
    wake_on_take: AtomicBool,
}

#[derive(Default)]
struct JobQueueState {
    jobs: VecDeque<Job>,
    idle_threads: usize,
    closed: bool,
    /// Jobs taken by interpreter threads so far.
    taken: u64,
}

/// How many jobs wait in a [`JobQueue`], and how many were ever taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub waiting: usize,
    pub taken: u64,
}

impl JobQueue {
    pub fn push(&self, job: Job) {
        let mut state = lock(&self.state);
        state.jobs.push_back(job);
        let wake = state.idle_threads > 0;
        drop(state);
        if wake {
            self.available.notify_one();
        }
    }

    /// The next job; `None` once the queue is closed and drained.
    pub fn pop(&self) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                state.taken += 1;
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state.idle_threads += 1;
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            state.idle_threads -= 1;
        }
    }

    pub fn state(&self) -> QueueState {
        let state = lock(&self.state);
        QueueState {
            waiting: state.jobs.len(),
            taken: state.taken,
        }
    }

    /// Asks the next thread to take a job to wake the event loop
    /// ([`JobQueue::take_wake_request`]); `false` withdraws the request.
    pub fn wake_on_next_take(&self, wanted: bool) {
        self.wake_on_take.store(wanted, Ordering::SeqCst);
    }

    /// After taking a job: whether the event loop asked to be woken.
    pub fn take_wake_request(&self) -> bool {
        self.wake_on_take.load(Ordering::Relaxed) && self.wake_on_take.swap(false, Ordering::SeqCst)
    }

    /// No more jobs will come: threads finish what is queued and stop.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.available.notify_all();
    }
}

/// Replies waiting for the event loop, which a push wakes.
pub struct ReplyQueue {
    replies: Mutex<Vec<Reply>>,
    waker: mio::Waker,
}

impl ReplyQueue {
    pub fn new(waker: mio::Waker) -> ReplyQueue {
        ReplyQueue {
            replies: Mutex::new(Vec::new()),
            waker,
        }
    }

    pub fn push(&self, reply: Reply) {
        let mut replies = lock(&self.replies);
        let was_empty = replies.is_empty();
        replies.push(reply);
        drop(replies);
        // The loop drains the whole queue per wake-up, so only the first
        // reply after a drain needs to wake it.
        if was_empty {
            let _ = self.waker.wake();
        }
    }

    /// Wakes the loop without a reply (it then checks its stop flag).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Moves every queued reply into `into` (which should be empty).
    pub fn drain_into(&self, into: &mut Vec<Reply>) {
        std::mem::swap(&mut *lock(&self.replies), into);
    }
}

/// Bytes of a connection's response queued but not yet written to its socket.
/// The app thread waits while more than [`FlowControl::WINDOW`] are queued.
#[derive(Default)]
pub struct FlowControl {
    queued: AtomicUsize,
    /// Response bytes were queued (a status line, at least).
    started: AtomicBool,
    aborted: AtomicBool,
    close_requested: AtomicBool,
    waiting: AtomicBool,
    lock: Mutex<()>,
    drained: Condvar,
}

impl FlowControl {
    /// Bytes a response may run ahead of its client before the app waits.
    pub const WINDOW: usize = 1 << 20;

    /// The app thread queues `n` more bytes; waits first while the window is
    /// full. `false` if the client is gone.
    pub fn acquire(&self, n: usize) -> bool {
        if self.queued.load(Ordering::SeqCst) > Self::WINDOW {
            let mut guard = lock(&self.lock);
            self.waiting.store(true, Ordering::SeqCst);
            while self.queued.load(Ordering::SeqCst) > Self::WINDOW && !self.is_aborted() {
                guard = self.drained.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            self.waiting.store(false, Ordering::SeqCst);
        }
        self.queued.fetch_add(n, Ordering::SeqCst);
        self.started.store(true, Ordering::SeqCst);
        !self.is_aborted()
    }

    /// The loop wrote `n` queued bytes to the socket. (SeqCst throughout: the
    /// waiting flag and the count form a store-then-load handshake.)
    pub fn release(&self, n: usize) {
        let before = self
            .queued
            .fetch_sub(n.min(self.queued.load(Ordering::SeqCst)), Ordering::SeqCst);
        if before > Self::WINDOW && self.waiting.load(Ordering::SeqCst) {
            let _guard = lock(&self.lock);
            self.drained.notify_all();
        }
    }

    /// The client went away: stop producing its response.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        let _guard = lock(&self.lock);
        self.drained.notify_all();
    }

    /// The server is stopping: the response should close the connection.
    pub fn request_close(&self) {
        self.close_requested.store(true, Ordering::SeqCst);
    }

    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::SeqCst)
    }

    /// Whether the app's response has begun reaching the loop.
    pub fn response_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// Locks a mutex, also after a panic elsewhere poisoned it: the data guarded
/// here stays consistent between statements, so poisoning carries no meaning.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A producer thread queueing 10 bytes behind a full window, once it
    /// waits (bounded: it must, the window being full).
    fn waiting_producer(flow: &Arc<FlowControl>) -> std::thread::JoinHandle<bool> {
        assert!(flow.acquire(FlowControl::WINDOW + 1));
        let producer = {
            let flow = flow.clone();
            std::thread::spawn(move || flow.acquire(10))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !flow.waiting.load(Ordering::SeqCst) {
            assert!(!producer.is_finished(), "acquired without waiting");
            assert!(std::time::Instant::now() < deadline, "never waited");
            std::thread::yield_now();
        }
        producer
    }

    #[test]
    fn acquire_waits_for_release_when_the_window_is_full() {
        let flow = Arc::new(FlowControl::default());
        let producer = waiting_producer(&flow);
        assert!(!producer.is_finished());
        flow.release(FlowControl::WINDOW + 1);
        assert!(producer.join().unwrap());
        assert_eq!(flow.queued.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn abort_releases_a_waiting_producer() {
        let flow = Arc::new(FlowControl::default());
        let producer = waiting_producer(&flow);
        flow.abort();
        assert!(!producer.join().unwrap());
    }
}
