//! `wsgi.input`: a native, read-only stream over a request body the server
//! has already received whole (so reads never wait on the network).

use std::os::unix::fs::FileExt;

use rustpython_vm::builtins::PyBytesRef;
use rustpython_vm::common::lock::PyMutex;
use rustpython_vm::function::OptionalArg;
use rustpython_vm::protocol::PyIterReturn;
use rustpython_vm::types::{IterNext, Iterable, SelfIter};
use rustpython_vm::{Py, PyObjectRef, PyPayload, PyResult, VirtualMachine, pyclass};

use crate::http::body::RequestBody;

/// The read position over a body, with the reads PEP 3333 asks for.
#[derive(Debug)]
pub struct BodyCursor {
    body: RequestBody,
    position: u64,
}

/// Bytes read from a spilled body per step while looking for a newline.
const LINE_SCAN_BLOCK: usize = 8192;

impl BodyCursor {
    pub fn new(body: RequestBody) -> BodyCursor {
        BodyCursor { body, position: 0 }
    }

    fn remaining(&self) -> u64 {
        self.body.len() - self.position
    }

    /// Up to `limit` bytes (all that is left when `None`).
    pub fn read(&mut self, limit: Option<u64>) -> std::io::Result<Vec<u8>> {
        let count = limit.map_or(self.remaining(), |l| l.min(self.remaining())) as usize;
        let start = self.position;
        let data = match &self.body {
            RequestBody::Memory(bytes) => bytes[start as usize..start as usize + count].to_vec(),
            RequestBody::File { file, .. } => {
                let mut data = vec![0; count];
                file.read_exact_at(&mut data, start)?;
                data
            }
        };
        self.position += count as u64;
        Ok(data)
    }

    /// Up to and including the next `\n`, at most `limit` bytes.
    pub fn read_line(&mut self, limit: Option<u64>) -> std::io::Result<Vec<u8>> {
        let cap = limit.map_or(self.remaining(), |l| l.min(self.remaining()));
        let line_len = match &self.body {
            RequestBody::Memory(bytes) => {
                let window = &bytes[self.position as usize..(self.position + cap) as usize];
                memchr::memchr(b'\n', window).map_or(window.len(), |i| i + 1) as u64
            }
            RequestBody::File { file, .. } => {
                let mut scanned = 0u64;
                let mut block = vec![0; LINE_SCAN_BLOCK];
                loop {
                    let want = (cap - scanned).min(LINE_SCAN_BLOCK as u64) as usize;
                    if want == 0 {
                        break scanned;
                    }
                    file.read_exact_at(&mut block[..want], self.position + scanned)?;
                    if let Some(i) = memchr::memchr(b'\n', &block[..want]) {
                        break scanned + i as u64 + 1;
                    }
                    scanned += want as u64;
                }
            }
        };
        self.read(Some(line_len))
    }
}

/// Python's `read(-1)` / `read(None)` mean "everything".
fn size_limit(size: OptionalArg<Option<isize>>) -> Option<u64> {
    match size.flatten() {
        Some(n) if n >= 0 => Some(n as u64),
        _ => None,
    }
}

#[pyclass(module = "_ferrocorn", name = "Input")]
#[derive(Debug, PyPayload)]
pub struct Input {
    cursor: PyMutex<BodyCursor>,
}

impl Input {
    pub fn new(body: RequestBody) -> Input {
        Input {
            cursor: PyMutex::new(BodyCursor::new(body)),
        }
    }

    fn bytes(&self, data: std::io::Result<Vec<u8>>, vm: &VirtualMachine) -> PyResult<PyBytesRef> {
        data.map(|d| vm.ctx.new_bytes(d))
            .map_err(|e| vm.new_os_error(format!("reading the request body: {e}")))
    }
}

#[pyclass(with(IterNext, Iterable))]
impl Input {
    #[pymethod]
    fn read(
        zelf: &Py<Self>,
        size: OptionalArg<Option<isize>>,
        vm: &VirtualMachine,
    ) -> PyResult<PyBytesRef> {
        let data = zelf.cursor.lock().read(size_limit(size));
        zelf.bytes(data, vm)
    }

    #[pymethod]
    fn readline(
        zelf: &Py<Self>,
        size: OptionalArg<Option<isize>>,
        vm: &VirtualMachine,
    ) -> PyResult<PyBytesRef> {
        let data = zelf.cursor.lock().read_line(size_limit(size));
        zelf.bytes(data, vm)
    }

    #[pymethod]
    fn readlines(
        zelf: &Py<Self>,
        hint: OptionalArg<Option<isize>>,
        vm: &VirtualMachine,
    ) -> PyResult<Vec<PyObjectRef>> {
        let hint = size_limit(hint).filter(|&h| h > 0);
        let mut lines = Vec::new();
        let mut total = 0u64;
        loop {
            let line = zelf.cursor.lock().read_line(None);
            let line = zelf.bytes(line, vm)?;
            if line.is_empty() {
                break;
            }
            total += line.len() as u64;
            lines.push(line.into());
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    #[pymethod]
    fn readable(_zelf: &Py<Self>) -> bool {
        true
    }

    #[pymethod]
    fn close(_zelf: &Py<Self>) {}
}

impl SelfIter for Input {}

impl IterNext for Input {
    fn next(zelf: &Py<Self>, vm: &VirtualMachine) -> PyResult<PyIterReturn> {
        let line = zelf.cursor.lock().read_line(None);
        let line = zelf.bytes(line, vm)?;
        Ok(if line.is_empty() {
            PyIterReturn::StopIteration(None)
        } else {
            PyIterReturn::Return(line.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::BodyBuffer;

    fn cursors(data: &[u8]) -> Vec<BodyCursor> {
        let mut spilled = BodyBuffer::new(1, None);
        spilled.push(data);
        vec![
            BodyCursor::new(RequestBody::Memory(data.to_vec())),
            BodyCursor::new(spilled.finish().unwrap()),
        ]
    }

    #[test]
    fn reads_lines_and_sizes_from_memory_and_file() {
        for mut cursor in cursors(b"one\ntwo\nthree") {
            assert_eq!(cursor.read_line(None).unwrap(), b"one\n");
            assert_eq!(cursor.read_line(Some(2)).unwrap(), b"tw");
            assert_eq!(cursor.read_line(None).unwrap(), b"o\n");
            assert_eq!(cursor.read(Some(3)).unwrap(), b"thr");
            assert_eq!(cursor.read(None).unwrap(), b"ee");
            assert_eq!(cursor.read(None).unwrap(), b"");
            assert_eq!(cursor.read_line(None).unwrap(), b"");
        }
    }

    #[test]
    fn long_lines_in_a_spilled_body_span_blocks() {
        let mut data = vec![b'x'; LINE_SCAN_BLOCK * 2 + 10];
        data.push(b'\n');
        data.extend_from_slice(b"tail");
        let mut cursor = cursors(&data).pop().unwrap();
        assert_eq!(
            cursor.read_line(None).unwrap().len(),
            LINE_SCAN_BLOCK * 2 + 11
        );
        assert_eq!(cursor.read_line(None).unwrap(), b"tail");
    }
}
