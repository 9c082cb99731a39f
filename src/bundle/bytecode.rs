//! Compiling a bundle's modules at bundle time (`pylib/ferrocorn/bundle.py`),
//! on an interpreter thread of its own: a bundle's workers then import
//! bytecode instead of compiling (Flask's own modules: about 9x faster to
//! import from their pycs in RustPython).

use rustpython_vm::builtins::{PyBytes, PyListRef, PyStr, PyTuple};
use rustpython_vm::{PyObjectRef, VirtualMachine};

use crate::python::app::{describe, import_module};
use crate::python::interpreter::on_own_thread;

/// The `__pycache__` entries for `sources` ((name in the bundle, source)).
pub fn compile(sources: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>, String> {
    on_own_thread("compiling the modules", Vec::new(), move |vm| {
        run(vm, sources)
    })
}

fn run(
    vm: &VirtualMachine,
    sources: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let failed = |e: &rustpython_vm::builtins::PyBaseExceptionRef| {
        format!("cannot compile the modules: {}", describe(vm, e))
    };
    let items: Vec<PyObjectRef> = sources
        .into_iter()
        .map(|(name, source)| {
            vm.ctx
                .new_tuple(vec![
                    vm.ctx.new_str(name).into(),
                    vm.ctx.new_bytes(source).into(),
                ])
                .into()
        })
        .collect();
    let module =
        import_module(vm, "ferrocorn.bundle", "compile_sources").map_err(|e| failed(&e))?;
    let compiled = module
        .get_attr("compile_sources", vm)
        .and_then(|f| f.call((vm.ctx.new_list(items),), vm))
        .map_err(|e| failed(&e))?;
    let list: PyListRef = compiled
        .downcast()
        .map_err(|_| "ferrocorn.bundle.compile_sources returned no list".to_owned())?;
    let entries = list.borrow_vec().to_vec();
    entries
        .iter()
        .map(|item| {
            let pair = item
                .downcast_ref::<PyTuple>()
                .map(|t| t.as_slice().to_vec());
            match pair.as_deref() {
                Some([name, data]) => {
                    let name = name
                        .downcast_ref::<PyStr>()
                        .map(|s| s.to_string_lossy().into_owned());
                    let data = data
                        .downcast_ref::<PyBytes>()
                        .map(|b| b.as_bytes().to_vec());
                    name.zip(data)
                        .ok_or_else(|| "a malformed compiled entry".to_owned())
                }
                _ => Err("a malformed compiled entry".to_owned()),
            }
        })
        .collect()
}
