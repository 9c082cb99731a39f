//! `wsgi.errors`: a text stream into the server's error log.

use rustpython_vm::builtins::PyStrRef;
use rustpython_vm::{Py, PyObjectRef, PyPayload, PyResult, VirtualMachine, pyclass};

use crate::log;

#[pyclass(module = "_ferrocorn", name = "ErrorStream")]
#[derive(Debug, Default, PyPayload)]
pub struct ErrorStream {}

#[pyclass]
impl ErrorStream {
    #[pymethod]
    fn write(_zelf: &Py<Self>, text: PyStrRef) -> usize {
        log::write_raw(text.as_bytes());
        text.char_len()
    }

    #[pymethod]
    fn writelines(_zelf: &Py<Self>, lines: PyObjectRef, vm: &VirtualMachine) -> PyResult<()> {
        let iterator = lines.get_iter(vm)?;
        while let rustpython_vm::protocol::PyIterReturn::Return(line) = iterator.next(vm)? {
            let text: PyStrRef = line.try_into_value(vm)?;
            log::write_raw(text.as_bytes());
        }
        Ok(())
    }

    #[pymethod]
    fn flush(_zelf: &Py<Self>) {}
}
