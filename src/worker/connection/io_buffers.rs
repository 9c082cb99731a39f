//! A connection's buffers: what was read and not yet parsed, and what waits
//! to be written. They know bytes and streams, not HTTP (the state machine
//! in the parent module decides what the bytes mean).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};

/// Most bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// The buffer a connection starts with; it doubles while reads fill it (up
/// to [`READ_CHUNK`] beyond what it holds), and an idle connection gives it
/// back ([`ReadBuffer::release_memory`]).
const FIRST_READ: usize = 4 * 1024;
/// Most buffers handed to one `writev`.
const MAX_IOVECS: usize = 16;

/// Received bytes: `bytes[consumed..filled]` is read and not yet parsed. The
/// vector keeps its zeroed length between reads (`filled` marks the data),
/// so a read costs no memset.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    bytes: Vec<u8>,
    consumed: usize,
    filled: usize,
}

/// What one read from the stream gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `read` bytes arrived; `drained`: fewer than the room offered.
    Data { read: usize, drained: bool },
    /// The peer closed its side.
    End,
    /// Nothing to read now (`WouldBlock`).
    Blocked,
    /// A signal interrupted the read; try again.
    Interrupted,
}

impl ReadBuffer {
    /// The bytes read and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        &self.bytes[self.consumed..self.filled]
    }

    pub fn unread_len(&self) -> usize {
        self.filled - self.consumed
    }

    pub fn is_empty(&self) -> bool {
        self.consumed == self.filled
    }

    /// The parser used `n` of the unread bytes.
    pub fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.filled);
    }

    /// Drops everything unread (after an error response, while lingering).
    pub fn discard(&mut self) {
        self.consumed = self.filled;
    }

    /// Between requests the buffer holds nothing: give its memory back, so
    /// an idle connection costs only its socket.
    pub fn release_memory(&mut self) {
        if self.is_empty() && !self.bytes.is_empty() {
            *self = ReadBuffer::default();
        }
    }

    /// Reads once from `stream`, making room first.
    pub fn read_from(&mut self, stream: &mut impl Read) -> io::Result<ReadOutcome> {
        if self.consumed == self.filled {
            self.consumed = 0;
            self.filled = 0;
        } else if self.consumed > READ_CHUNK {
            self.bytes.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
        if self.bytes.len() - self.filled < FIRST_READ / 2 {
            let grown = (self.bytes.len() * 2).clamp(FIRST_READ, self.filled + READ_CHUNK);
            self.bytes.resize(grown, 0);
        }
        let offered = self.bytes.len() - self.filled;
        match stream.read(&mut self.bytes[self.filled..]) {
            Ok(0) => Ok(ReadOutcome::End),
            Ok(read) => {
                self.filled += read;
                Ok(ReadOutcome::Data {
                    read,
                    drained: read < offered,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Interrupted),
            Err(e) => Err(e),
        }
    }
}

/// Bytes waiting to be written, in the order they go out. The app's bytes
/// are counted apart from the server's own (error pages, `100 Continue`):
/// only they are released to the app's flow control once written.
#[derive(Debug, Default)]
pub struct WriteQueue {
    /// Each chunk, and whether it is the app's.
    chunks: VecDeque<(Vec<u8>, bool)>,
    /// Bytes of the front chunk already written.
    offset: usize,
}

impl WriteQueue {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes the server writes on its own.
    pub fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.chunks.push_back((bytes, false));
        }
    }

    /// Bytes of the app's response.
    pub fn push_app(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.chunks.push_back((bytes, true));
        }
    }

    /// The front chunks as slices for one `writev`, `limit` bytes at most.
    pub fn slices(&self, limit: usize) -> ([IoSlice<'_>; MAX_IOVECS], usize) {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        let mut room = limit;
        for (index, (chunk, _)) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
            if room == 0 {
                break;
            }
            let start = if index == 0 { self.offset } else { 0 };
            let end = start + (chunk.len() - start).min(room);
            slices[index] = IoSlice::new(&chunk[start..end]);
            room -= end - start;
            count += 1;
        }
        (slices, count)
    }

    /// `written` bytes went out; returns how many of them were the app's.
    pub fn consume(&mut self, mut written: usize) -> usize {
        let mut released = 0;
        while written > 0 {
            let Some((front, from_app)) = self.chunks.front() else {
                break;
            };
            let taken = written.min(front.len() - self.offset);
            if *from_app {
                released += taken;
            }
            written -= taken;
            self.offset += taken;
            if self.offset == front.len() {
                self.chunks.pop_front();
                self.offset = 0;
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_grows_while_reads_fill_it_and_gives_its_memory_back_when_empty() {
        let data = vec![7u8; 20_000];
        let mut source: &[u8] = &data;
        let mut buffer = ReadBuffer::default();
        let first = buffer.read_from(&mut source).unwrap();
        assert_eq!(
            first,
            ReadOutcome::Data {
                read: FIRST_READ,
                drained: false
            }
        );
        while buffer.unread_len() < data.len() {
            buffer.read_from(&mut source).unwrap();
        }
        assert_eq!(buffer.unread(), &data[..]);
        assert_eq!(buffer.read_from(&mut source).unwrap(), ReadOutcome::End);
        buffer.consume(data.len());
        buffer.release_memory();
        assert_eq!(buffer.bytes.capacity(), 0);
    }

    #[test]
    fn a_write_queue_releases_only_the_apps_bytes_across_partial_writes() {
        let mut queue = WriteQueue::default();
        queue.push(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
        queue.push_app(b"hello".to_vec());
        assert_eq!(queue.consume(21), 0);
        let (slices, count) = queue.slices(usize::MAX);
        assert_eq!(count, 2);
        assert_eq!(&*slices[0], b"\r\n\r\n" as &[u8]);
        assert_eq!(queue.consume(6), 2);
        assert_eq!(queue.consume(3), 3);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_write_queues_slices_stop_at_the_limit_inside_a_chunk() {
        let mut queue = WriteQueue::default();
        queue.push(b"head:".to_vec());
        queue.push_app(b"0123456789".to_vec());
        queue.push_app(b"tail".to_vec());
        queue.consume(2);
        let (slices, count) = queue.slices(7);
        let taken: Vec<&[u8]> = slices[..count].iter().map(|s| &**s).collect();
        assert_eq!(taken, [b"ad:" as &[u8], b"0123"]);
        let (_, count) = queue.slices(0);
        assert_eq!(count, 0);
    }
}
