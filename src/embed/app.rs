//! [`App`]: the WSGI app loaded in this process, called without sockets.

use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::confine::library_sandbox;
use super::request::{Request, RequestError};
use super::response::{Body, DirectOutput, Event, Response};
use crate::config::Config;
use crate::http::body::RequestBody;
use crate::http::head::RequestHead;
use crate::http::rules::HeadRules;
use crate::net::peer::ConnectionInfo;
use crate::python::app::LoadError;
use crate::sandbox::PrivateTmp;
use crate::worker::handoff::lock;
use crate::wsgi::boot::{HostSettings, start_interpreter_threads};

/// Response events an app may run ahead of a caller that is not reading.
const EVENTS_AHEAD: usize = 16;

/// A request on its way to an interpreter thread.
struct Call {
    head: RequestHead,
    body: RequestBody,
    info: ConnectionInfo,
    events: SyncSender<Event>,
}

/// A WSGI app loaded in this process by `Config::threads` interpreter
/// threads (each with its own interpreter), callable from any thread.
///
/// ```no_run
/// use ferrocorn::embed::{App, Request};
/// let app = App::load(&ferrocorn::Config::new("examples.hello:application")?)?;
/// let response = app.call(Request::get("/"))?;
/// assert_eq!(response.status(), 200);
/// let (body, _outcome) = response.into_bytes()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct App {
    calls: Option<Sender<Call>>,
    threads: Vec<JoinHandle<()>>,
    limits: HeadRules,
    /// `Config::sandbox`: removed once the threads have ended.
    private_tmp: Option<PrivateTmp>,
}

/// Why a call produced no response.
#[derive(Debug)]
pub enum CallError {
    /// The request would not pass the server's HTTP parser.
    Request(RequestError),
    /// The interpreter threads have stopped (a panic in one of them).
    Stopped,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Request(error) => write!(f, "{error}"),
            CallError::Stopped => f.write_str("the app's interpreter threads have stopped"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Request(error) => Some(error),
            CallError::Stopped => None,
        }
    }
}

impl From<RequestError> for CallError {
    fn from(error: RequestError) -> CallError {
        CallError::Request(error)
    }
}

impl App {
    /// Loads `config.app` in `config.threads` new interpreter threads. Uses
    /// `app`, `chdir` (a base directory for `sys.path`: the process's working
    /// directory is left alone), `pythonpath`, `threads`, the request limits,
    /// `check_wsgi` and `native_modules`.
    pub fn load(config: &Config) -> Result<App, LoadError> {
        let working_dir = config
            .library_base_dir()
            .map_err(|e| LoadError::Setup(format!("cannot find the app's directory: {e}")))?;
        let settings = HostSettings::from_config(config, false, &working_dir);
        let (settings, private_tmp) =
            library_sandbox(config, settings).map_err(|e| LoadError::Sandbox(e.to_string()))?;
        let mut app = App::load_with(config, settings)?;
        app.private_tmp = private_tmp;
        Ok(app)
    }

    /// Loads with `settings` as they are (`ferrocorn call` confines its
    /// whole process itself).
    pub(crate) fn load_with(config: &Config, settings: HostSettings) -> Result<App, LoadError> {
        let settings = Arc::new(settings);
        let (calls, receiver) = mpsc::channel::<Call>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = start_interpreter_threads(
            config.threads.max(1) as usize,
            "app-interpreter",
            settings,
            move |_, vm, host, _| {
                while let Some(call) = vm.allow_threads(|| next_call(&receiver)) {
                    let is_head = call.head.method() == "HEAD";
                    let output = DirectOutput::new(call.events, is_head);
                    let _ = host.serve(vm, &call.head, call.body, &call.info, Box::new(output));
                }
            },
        )?;
        Ok(App {
            calls: Some(calls),
            threads: threads.threads,
            limits: config.head_limits(),
            private_tmp: None,
        })
    }

    /// Runs `request` through the app. Returns once the app has started its
    /// response (or failed: a 500, as the server would send); the body is
    /// then produced as it is read.
    pub fn call(&self, request: Request) -> Result<Response, CallError> {
        let (head, body, info) = request.into_parts(&self.limits)?;
        let (events, receiver) = mpsc::sync_channel(EVENTS_AHEAD);
        let call = Call {
            head,
            body,
            info,
            events,
        };
        let calls = self.calls.as_ref().ok_or(CallError::Stopped)?;
        calls.send(call).map_err(|_| CallError::Stopped)?;
        first_event(receiver)
    }
}

/// Waits for the head; an app that ended without one (it cannot, the
/// bridge always answers) counts as stopped.
fn first_event(receiver: Receiver<Event>) -> Result<Response, CallError> {
    loop {
        match receiver.recv() {
            Ok(Event::Head { status, headers }) => {
                return Ok(Response::new(status, headers, Body::new(receiver)));
            }
            Ok(Event::Data(_)) => {}
            Ok(Event::End(_)) | Err(_) => return Err(CallError::Stopped),
        }
    }
}

fn next_call(receiver: &Mutex<Receiver<Call>>) -> Option<Call> {
    lock(receiver).recv().ok()
}

impl Drop for App {
    /// Lets the interpreter threads finish the calls they hold, then joins them.
    fn drop(&mut self) {
        self.calls = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.private_tmp = None;
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("threads", &self.threads.len())
            .finish()
    }
}
