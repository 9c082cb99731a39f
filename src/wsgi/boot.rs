//! Making an interpreter ready to serve: create it on the calling thread,
//! install native modules, import the app, wrap it in the PEP 3333 checker
//! when asked, and build its [`WsgiHost`]. The server's interpreter threads
//! and the in-process [`crate::embed::App`] boot the same way.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use rustpython_vm::builtins::PyStrRef;
use rustpython_vm::signal::{UserSignalSender, user_signal_channel};
use rustpython_vm::{Interpreter, PyObjectRef, PyResult, VirtualMachine};

use super::bridge::WsgiHost;
use super::environ::EnvironSettings;
use super::request_hooks::RequestHooks;
use super::start_response::record_violation;
use crate::access_log::AccessFormat;
use crate::config::Config;
use crate::config::hooks::REQUEST_HOOKS;
use crate::python::app::{LoadError, describe, import_module, load_app};
use crate::python::boot_stack;
use crate::python::hooks::HookSource;
use crate::python::interpreter::{InterpreterOptions, new_interpreter, spawn_interpreter_thread};
use crate::python::native::NativeModule;
use crate::sandbox::interpreter::{AppSandbox, ModulePolicy};
use crate::sandbox::{Policy, SandboxError};

/// What every interpreter of a server (or embedded app) is booted with.
#[derive(Clone)]
pub struct HostSettings {
    pub app_spec: String,
    /// Set when the app failed to load under `--reload`: every request is
    /// answered with a 500 showing this report instead (`ferrocorn.failed`).
    pub load_failure: Option<String>,
    pub sys_path: Vec<String>,
    pub environ: EnvironSettings,
    pub access_format: Option<AccessFormat>,
    /// Wrap the app in `ferrocorn.check` (`--check-wsgi`).
    pub check_wsgi: bool,
    pub native_modules: Vec<NativeModule>,
    /// The configuration file, when it defines pre_request or post_request.
    pub request_hooks: Option<HookSource>,
    /// The hooks' `worker.age`.
    pub worker_age: u64,
    /// Report the app's source files once booted (`--reload`).
    pub list_module_files: bool,
    /// Modules the interpreter is built without (`--deny-module`, ctypes
    /// under `--sandbox`), with the guard that names the policy.
    pub modules: ModulePolicy,
    /// Under `--sandbox`: the settings of `ferrocorn.sandbox`.
    pub app_sandbox: Option<AppSandbox>,
    /// Library use under `--sandbox`: each interpreter thread confines
    /// itself (a worker process is confined whole before it starts any).
    pub confine_threads: Option<Arc<Policy>>,
    /// Interpreters take interrupts (`--request-timeout`).
    pub interruptible: bool,
    /// A worker process: SIGABRT during the import dumps its Python stack
    /// (see `crate::python::boot_stack`).
    pub dump_stack_on_abort: bool,
}

impl HostSettings {
    /// The settings `config` gives; `sys.path` starts at `working_dir`.
    pub fn from_config(
        config: &Config,
        multiprocess: bool,
        working_dir: &std::path::Path,
    ) -> HostSettings {
        HostSettings {
            app_spec: config.app.clone(),
            load_failure: None,
            sys_path: config.sys_path(working_dir),
            environ: EnvironSettings {
                url_scheme: "http",
                multiprocess,
                script_name: config.root_path.clone().unwrap_or_default(),
            },
            // Decided once: without an access log nothing is formatted per request.
            access_format: config
                .access_logfile
                .as_ref()
                .map(|_| config.access_logformat.clone()),
            check_wsgi: config.check_wsgi,
            native_modules: config.native_modules.clone(),
            request_hooks: config.hook_source().filter(|_| {
                config
                    .hooks
                    .iter()
                    .any(|h| REQUEST_HOOKS.contains(&h.as_str()))
            }),
            worker_age: 0,
            list_module_files: config.reload,
            modules: ModulePolicy::from_config(config),
            app_sandbox: None,
            confine_threads: None,
            interruptible: config.request_timeout > 0.0,
            dump_stack_on_abort: false,
        }
    }

    /// The settings with `policy` (`--sandbox`) applied: `ferrocorn.sandbox`
    /// installed in every interpreter and, with `confine_threads` (library
    /// use), each interpreter thread confining itself as it starts. Host
    /// names of `--allow-connect` are resolved here, before anything is
    /// confined.
    pub fn sandboxed(mut self, config: &Config, policy: Policy, confine_threads: bool) -> Self {
        self.app_sandbox = Some(AppSandbox::new(config, &policy));
        self.confine_threads = confine_threads.then(|| Arc::new(policy));
        self
    }

    /// Confines this whole process to the policy `config` asks for, with
    /// `tmp` as its private temporary directory, and returns the settings
    /// its interpreters then boot with (a worker, `--preload`, `call`).
    ///
    /// # Safety
    /// As [`Policy::confine_process`]: the process must be single-threaded.
    pub unsafe fn confine_process(
        self,
        config: &Config,
        tmp: &std::path::Path,
    ) -> Result<HostSettings, SandboxError> {
        // SAFETY: single-threaded, as the caller promises.
        unsafe { self.confine_with(config, tmp, Policy::confine_process) }
    }

    /// As [`HostSettings::confine_process`], for the `--preload` process:
    /// it may fork its workers (see [`Policy::confine_preloader`]).
    ///
    /// # Safety
    /// As [`Policy::confine_process`]: the process must be single-threaded.
    pub unsafe fn confine_preloader(
        self,
        config: &Config,
        tmp: &std::path::Path,
    ) -> Result<HostSettings, SandboxError> {
        // SAFETY: single-threaded, as the caller promises.
        unsafe { self.confine_with(config, tmp, Policy::confine_preloader) }
    }

    /// # Safety
    /// As [`Policy::confine_process`]: the process must be single-threaded.
    unsafe fn confine_with(
        self,
        config: &Config,
        tmp: &std::path::Path,
        confine: unsafe fn(&Policy) -> Result<(), SandboxError>,
    ) -> Result<HostSettings, SandboxError> {
        let policy = Policy::new(config, &self.sys_path, tmp);
        // Before confining: the host names of --allow-connect are resolved here.
        let settings = self.sandboxed(config, policy.clone(), false);
        // SAFETY: single-threaded, as the caller promises.
        unsafe { confine(&policy) }?;
        Ok(settings)
    }
}

/// Starts `count` threads named `name-N`; each boots an interpreter and then
/// runs `serve(index, vm, host, interrupts)` until that returns
/// (`interrupts` reaches the running Python code, with
/// [`HostSettings::interruptible`]). Returns once every thread has booted, or with the first load error (threads that did boot
/// then see their work source closed by the caller and end).
pub fn start_interpreter_threads<F>(
    count: usize,
    name: &str,
    settings: Arc<HostSettings>,
    serve: F,
) -> Result<InterpreterThreads, LoadError>
where
    F: Fn(usize, &VirtualMachine, &WsgiHost, Option<UserSignalSender>) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let (settings, serve, ready) = (settings.clone(), serve.clone(), ready_tx.clone());
        let spawned = spawn_interpreter_thread(format!("{name}-{index}"), move || {
            let (interpreter, host, interrupts) = match boot(&settings) {
                Ok(booted) => booted,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            // One interpreter's list is the worker's: they import the same app.
            let files = if settings.list_module_files && index == 0 {
                interpreter.enter(module_files)
            } else {
                Vec::new()
            };
            let _ = ready.send(Ok(files));
            interpreter.enter(|vm| serve(index, vm, &host, interrupts));
        });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(error) => {
                return Err(LoadError::Thread(format!(
                    "cannot start an interpreter thread: {error}"
                )));
            }
        }
    }
    drop(ready_tx);
    let mut module_files = Vec::new();
    for _ in 0..count {
        match ready_rx.recv() {
            Ok(Ok(files)) => module_files.extend(files),
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                return Err(LoadError::Thread(
                    "an interpreter thread died while starting".into(),
                ));
            }
        }
    }
    Ok(InterpreterThreads {
        threads,
        module_files,
    })
}

/// Interpreter threads that booted, and the source files their app imported.
pub struct InterpreterThreads {
    pub threads: Vec<JoinHandle<()>>,
    /// With [`HostSettings::list_module_files`]: every existing file of a
    /// module in `sys.modules` (for `--reload`).
    pub module_files: Vec<PathBuf>,
}

/// The files of the modules this interpreter has imported (frozen standard
/// library modules have none on disk and are left out).
pub fn module_files(vm: &VirtualMachine) -> Vec<PathBuf> {
    let listed = (|| -> PyResult<Vec<String>> {
        let modules = vm.sys_module.get_attr("modules", vm)?;
        let values = vm.call_method(&modules, "values", ())?;
        let mut files = Vec::new();
        for module in values.try_to_value::<Vec<PyObjectRef>>(vm)? {
            if let Ok(Some(file)) = vm.get_attribute_opt(&module, "__file__")
                && let Ok(text) = file.str(vm)
            {
                files.push(text.to_string_lossy().into_owned());
            }
        }
        Ok(files)
    })();
    listed
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .filter(|path| path.is_file())
        .collect()
}

/// Boots an interpreter on this thread, ready to serve requests; with
/// [`HostSettings::interruptible`], also the sender that interrupts it.
pub fn boot(
    settings: &HostSettings,
) -> Result<(Interpreter, WsgiHost, Option<UserSignalSender>), LoadError> {
    if let Some(policy) = &settings.confine_threads {
        policy
            .confine_thread()
            .map_err(|e| LoadError::Sandbox(e.to_string()))?;
    }
    let (sender, receiver) = match settings.interruptible {
        true => {
            let (sender, receiver) = user_signal_channel();
            (Some(sender), Some(receiver))
        }
        false => (None, None),
    };
    let options = InterpreterOptions {
        removed_modules: settings.modules.removed_names(),
        interrupts: receiver,
        ..Default::default()
    };
    let interpreter = new_interpreter(&settings.sys_path, options);
    let host = interpreter.enter(|vm| {
        settings
            .modules
            .verify(vm)
            .map_err(|error| LoadError::Sandbox(error.to_string()))?;
        if let Some(sandbox) = &settings.app_sandbox {
            sandbox.install(vm).map_err(|e| {
                LoadError::Sandbox(format!(
                    "cannot start ferrocorn.sandbox: {}",
                    describe(vm, &e)
                ))
            })?;
        }
        settings.modules.install_guard(vm).map_err(|e| {
            LoadError::Sandbox(format!(
                "cannot install the --deny-module guard: {}",
                describe(vm, &e)
            ))
        })?;
        crate::python::native::install(vm, &settings.native_modules).map_err(|e| {
            LoadError::NativeModules(format!(
                "cannot install native modules: {}",
                describe(vm, &e)
            ))
        })?;
        let app = match &settings.load_failure {
            Some(report) => failed_app(vm, report).map_err(|e| {
                LoadError::Setup(format!(
                    "cannot start the app that reports the load error: {}",
                    describe(vm, &e)
                ))
            })?,
            None => {
                if settings.dump_stack_on_abort {
                    boot_stack::arm(vm);
                }
                let loaded = load_app(vm, &settings.app_spec);
                if settings.dump_stack_on_abort {
                    boot_stack::disarm(vm);
                }
                loaded?
            }
        };
        freeze_imported_objects(vm);
        let app = if settings.check_wsgi {
            wrap_in_checker(vm, app).map_err(|e| {
                LoadError::Setup(format!(
                    "cannot start the WSGI checker: {}",
                    describe(vm, &e)
                ))
            })?
        } else {
            app
        };
        let mut host = WsgiHost::new(vm, app, &settings.environ, settings.access_format.clone())
            .map_err(|e| LoadError::Setup(describe(vm, &e)))?;
        if let Some(source) = &settings.request_hooks {
            host.set_request_hooks(RequestHooks::load(vm, source, settings.worker_age)?);
        }
        Ok(host)
    })?;
    Ok((interpreter, host, sender))
}

/// `ferrocorn.failed.app_for(report)`: a WSGI app answering 500 with `report`.
fn failed_app(
    vm: &VirtualMachine,
    report: &str,
) -> Result<PyObjectRef, rustpython_vm::builtins::PyBaseExceptionRef> {
    let app_for = import_module(vm, "ferrocorn.failed", "app_for")?.get_attr("app_for", vm)?;
    app_for.call((vm.ctx.new_str(report),), vm)
}

/// `ferrocorn.check.wrap(app, report)`: findings go to the request's list of
/// violations, which the bridge logs when the request ends.
fn wrap_in_checker(
    vm: &VirtualMachine,
    app: PyObjectRef,
) -> Result<PyObjectRef, rustpython_vm::builtins::PyBaseExceptionRef> {
    let wrap = import_module(vm, "ferrocorn.check", "wrap")?.get_attr("wrap", vm)?;
    let report = vm.new_function("report", |rule: PyStrRef, message: PyStrRef| {
        record_violation(format!(
            "[{}] {}",
            rule.to_string_lossy(),
            message.to_string_lossy()
        ));
    });
    wrap.call((app, report), vm)
}

/// Moves everything the app import created out of the collector's reach
/// (`gc.collect(); gc.freeze()`): those objects live as long as the worker,
/// and every collection would otherwise trace them again. One A/B pair of
/// 5 s wrk runs on bench/apps/flask_json.py (-w 1 --threads 1): 1245 -> 1560
/// req/s, p99 78 -> 58 ms. Best effort: a failure only costs that speed.
fn freeze_imported_objects(vm: &VirtualMachine) {
    let frozen = vm.import("gc", 0).and_then(|gc| {
        gc.get_attr("collect", vm)?.call((), vm)?;
        gc.get_attr("freeze", vm)?.call((), vm)
    });
    if frozen.is_err() {
        crate::log::debug("gc.freeze() after loading the app failed");
    }
}
