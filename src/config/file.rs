//! Executing a configuration file with the embedded interpreter
//! (`pylib/ferrocorn/config.py`), on a thread of its own that ends before
//! the server starts: the arbiter stays free of interpreter threads.

use rustpython_vm::builtins::{PyListRef, PyStr, PyTuple};
use rustpython_vm::{PyObjectRef, VirtualMachine};

use super::sources::FileValue;
use crate::python::app::{describe, format_exception, import_module};
use crate::python::interpreter::on_own_thread;

/// The file's (or `python:module`'s) top-level names and values.
pub fn read(source: &str) -> Result<Vec<(String, FileValue)>, String> {
    if !source.starts_with("python:") && !std::path::Path::new(source).exists() {
        return Err(format!("configuration file {source:?} does not exist"));
    }
    let source = source.to_owned();
    let working_dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| ".".to_owned());
    on_own_thread(
        "reading the configuration file",
        vec![working_dir],
        move |vm| run(vm, &source),
    )
}

fn run(vm: &VirtualMachine, source: &str) -> Result<Vec<(String, FileValue)>, String> {
    let failed = |e: &rustpython_vm::builtins::PyBaseExceptionRef| {
        format!(
            "cannot read configuration {source:?}: {}\n{}",
            describe(vm, e),
            format_exception(vm, e)
        )
    };
    let module = import_module(vm, "ferrocorn.config", "read").map_err(|e| failed(&e))?;
    let settings = module
        .get_attr("read", vm)
        .and_then(|read| read.call((vm.ctx.new_str(source),), vm))
        .map_err(|e| failed(&e))?;
    let list: PyListRef = settings
        .downcast()
        .map_err(|_| "ferrocorn.config.read returned no list".to_owned())?;
    let items = list.borrow_vec().to_vec();
    items.iter().map(setting).collect()
}

fn setting(item: &PyObjectRef) -> Result<(String, FileValue), String> {
    let malformed = || "ferrocorn.config.read returned a malformed entry".to_owned();
    let tuple = item.downcast_ref::<PyTuple>().ok_or_else(malformed)?;
    let [name, kind, values] = tuple.as_slice() else {
        return Err(malformed());
    };
    let text = |o: &PyObjectRef| {
        o.downcast_ref::<PyStr>()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(malformed)
    };
    let values: Vec<String> = values
        .downcast_ref::<rustpython_vm::builtins::PyList>()
        .ok_or_else(malformed)?
        .borrow_vec()
        .iter()
        .map(text)
        .collect::<Result<_, _>>()?;
    let value = match text(kind)?.as_str() {
        "flag" => FileValue::Flag(!values.is_empty()),
        "values" => FileValue::Values(values),
        "hook" => FileValue::Hook,
        _ => FileValue::Other,
    };
    Ok((text(name)?, value))
}
