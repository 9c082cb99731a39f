//! Receiving a request body: the decoder for its framing, and the buffer that
//! holds it (in memory, or in an unlinked temporary file once it is large) so
//! the whole body is verified before the app is called.

use std::fs::File;
use std::io::{self, Write};

use super::chunked::{ChunkedDecoder, Progress};
use super::error::ParseError;
use super::framing::BodyFraming;
use super::rules::HeadRules;

/// Decodes a body of either framing into plain bytes.
#[derive(Debug)]
pub enum BodyDecoder {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// `None` for a request without a body.
    pub fn for_framing(framing: BodyFraming, limits: &HeadRules) -> Option<BodyDecoder> {
        match framing {
            BodyFraming::Empty => None,
            BodyFraming::Length(length) => Some(BodyDecoder::Length { remaining: length }),
            BodyFraming::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new(
                limits.body,
                limits.fields,
                limits.max_field_line(),
            ))),
        }
    }

    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Progress, ParseError> {
        match self {
            BodyDecoder::Length { remaining } => {
                let take = (*remaining).min(input.len() as u64) as usize;
                sink(&input[..take]);
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            BodyDecoder::Chunked(decoder) => decoder.decode(input, sink),
        }
    }

    /// Whether the body is chunked (its length is known only at the end).
    pub fn is_chunked(&self) -> bool {
        matches!(self, BodyDecoder::Chunked(_))
    }
}

/// A complete request body.
#[derive(Debug)]
pub enum RequestBody {
    Memory(Vec<u8>),
    /// Spilled to an unlinked temporary file of `len` bytes.
    File {
        file: File,
        len: u64,
    },
}

impl RequestBody {
    pub fn empty() -> RequestBody {
        RequestBody::Memory(Vec::new())
    }

    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Memory(bytes) => bytes.len() as u64,
            RequestBody::File { len, .. } => *len,
        }
    }
}

/// Collects a body, moving it to a temporary file once it passes `spill_at` bytes.
#[derive(Debug)]
pub struct BodyBuffer {
    memory: Vec<u8>,
    file: Option<(File, u64)>,
    spill_at: usize,
    error: Option<io::Error>,
}

impl BodyBuffer {
    pub fn new(spill_at: usize, expected: Option<u64>) -> BodyBuffer {
        let capacity = expected.map_or(0, |len| len.min(spill_at as u64) as usize);
        BodyBuffer {
            memory: Vec::with_capacity(capacity),
            file: None,
            spill_at,
            error: None,
        }
    }

    /// Appends body bytes; a disk error is kept and reported by [`finish`](Self::finish).
    pub fn push(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.try_push(data) {
            self.error = Some(error);
        }
    }

    fn try_push(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + data.len() > self.spill_at {
            let mut file = anonymous_temp_file()?;
            file.write_all(&self.memory)?;
            self.file = Some((file, self.memory.len() as u64));
            self.memory = Vec::new();
        }
        match &mut self.file {
            Some((file, len)) => {
                file.write_all(data)?;
                *len += data.len() as u64;
            }
            None => self.memory.extend_from_slice(data),
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<RequestBody> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(match self.file {
            Some((file, len)) => RequestBody::File { file, len },
            None => RequestBody::Memory(self.memory),
        })
    }
}

/// A read-write file with no name, removed by the kernel when closed.
fn anonymous_temp_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir);
    if let Ok(file) = unnamed {
        return Ok(file);
    }
    // Filesystems without O_TMPFILE: create a unique name, then unlink it.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("ferrocorn-body-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn small_bodies_stay_in_memory() {
        let mut buffer = BodyBuffer::new(16, Some(5));
        buffer.push(b"hello");
        assert!(matches!(buffer.finish().unwrap(), RequestBody::Memory(m) if m == b"hello"));
    }

    #[test]
    fn large_bodies_spill_to_an_unnamed_file() {
        let mut buffer = BodyBuffer::new(4, None);
        buffer.push(b"hel");
        buffer.push(b"lo world");
        let body = buffer.finish().unwrap();
        assert_eq!(body.len(), 11);
        let RequestBody::File { file, .. } = body else {
            panic!("expected a file")
        };
        let mut read = vec![0; 11];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(read, b"hello world");
    }

    #[test]
    fn length_decoder_takes_exactly_its_length() {
        let mut decoder = BodyDecoder::Length { remaining: 3 };
        let mut out = Vec::new();
        let progress = decoder
            .decode(b"abcdef", &mut |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!(
            progress,
            Progress {
                consumed: 3,
                done: true
            }
        );
        assert_eq!(out, b"abc");
    }
}
