//! Gunicorn's `pre_request(worker, req)` and `post_request(worker, req,
//! environ, resp)`, called in the interpreter serving the request.

use rustpython_vm::builtins::PyBaseExceptionRef;
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};

use crate::http::head::RequestHead;
use crate::http::rules::Version;
use crate::log;
use crate::python::app::{LoadError, exception_message, import_module};
use crate::python::hooks::{HookSource, load_hooks};

use super::environ::latin1;
use super::outcome::RequestOutcome;

/// The hooks and the `worker` object of one interpreter.
pub struct RequestHooks {
    /// `Hooks.call`, bound once.
    call: PyObjectRef,
    worker: PyObjectRef,
    request_class: PyObjectRef,
    response_class: PyObjectRef,
    pre: bool,
    post: bool,
}

impl RequestHooks {
    /// Executes the configuration file in this interpreter for its hooks.
    pub fn load(
        vm: &VirtualMachine,
        source: &HookSource,
        age: u64,
    ) -> Result<RequestHooks, LoadError> {
        let hooks = load_hooks(vm, source)?;
        let built = (|| -> PyResult<RequestHooks> {
            let defines = |name: &str| -> PyResult<bool> {
                hooks
                    .get_attr("defines", vm)?
                    .call((vm.ctx.new_str(name),), vm)?
                    .try_to_bool(vm)
            };
            let module = import_module(vm, "ferrocorn.hooks", "Request")?;
            let pid = std::process::id();
            let ppid = std::os::unix::process::parent_id();
            Ok(RequestHooks {
                worker: hooks.get_attr("worker", vm)?.call((pid, ppid, age), vm)?,
                request_class: module.get_attr("Request", vm)?,
                response_class: module.get_attr("Response", vm)?,
                pre: defines("pre_request")?,
                post: defines("post_request")?,
                call: hooks.get_attr("call", vm)?,
            })
        })();
        built.map_err(|e| {
            LoadError::Setup(format!(
                "cannot set up request hooks: {}",
                exception_message(vm, &e)
            ))
        })
    }

    /// `req`, as Gunicorn's hooks see it (header names upper-cased).
    pub fn request(&self, vm: &VirtualMachine, head: &RequestHead) -> PyResult {
        let text = |bytes: &[u8]| -> PyObjectRef { vm.ctx.new_str(latin1(bytes)).into() };
        let headers: Vec<PyObjectRef> = head
            .fields
            .iter()
            .map(|field| {
                let name = String::from_utf8_lossy(head.name(field)).to_ascii_uppercase();
                vm.ctx
                    .new_tuple(vec![vm.ctx.new_str(name).into(), text(head.value(field))])
                    .into()
            })
            .collect();
        let minor = if head.version == Version::Http11 {
            1
        } else {
            0
        };
        let version = vm
            .ctx
            .new_tuple(vec![vm.ctx.new_int(1).into(), vm.ctx.new_int(minor).into()]);
        self.request_class.call(
            (
                vm.ctx.new_str(head.method()),
                text(head.target_bytes()),
                text(head.path()),
                text(head.query()),
                version,
                vm.ctx.new_list(headers),
            ),
            vm,
        )
    }

    /// Calls `pre_request(worker, req)`.
    pub fn pre_request(&self, vm: &VirtualMachine, request: &PyObjectRef) {
        if self.pre {
            self.call(
                vm,
                "pre_request",
                vec![self.worker.clone(), request.clone()],
            );
        }
    }

    /// Calls `post_request(worker, req, environ, resp)`, `resp` describing
    /// what was sent.
    pub fn post_request(
        &self,
        vm: &VirtualMachine,
        request: &PyObjectRef,
        environ: &PyObjectRef,
        outcome: &RequestOutcome,
    ) {
        if !self.post {
            return;
        }
        let headers: Vec<PyObjectRef> = outcome
            .headers
            .iter()
            .map(|(name, value)| {
                vm.ctx
                    .new_tuple(vec![
                        vm.ctx.new_str(name.as_str()).into(),
                        vm.ctx.new_str(latin1(value)).into(),
                    ])
                    .into()
            })
            .collect();
        let response = self.response_class.call(
            (
                vm.ctx.new_str(outcome.status.as_str()),
                vm.ctx.new_list(headers),
                outcome.body_bytes,
            ),
            vm,
        );
        match response {
            Ok(response) => self.call(
                vm,
                "post_request",
                vec![
                    self.worker.clone(),
                    request.clone(),
                    environ.clone(),
                    response,
                ],
            ),
            Err(error) => report(vm, "post_request", &error),
        }
    }

    fn call(&self, vm: &VirtualMachine, name: &str, mut args: Vec<PyObjectRef>) {
        args.insert(0, vm.ctx.new_str(name).into());
        if let Err(error) = self.call.call(args, vm) {
            report(vm, name, &error);
        }
    }
}

fn report(vm: &VirtualMachine, name: &str, error: &PyBaseExceptionRef) {
    log::error(&format!(
        "the {name} hook failed: {}",
        exception_message(vm, error)
    ));
}
