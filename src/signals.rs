//! Signals as events in the mio loop: a handler writes the signal number to a
//! pipe the loop watches (the self-pipe pattern), so no work happens in the
//! handler itself.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::pipe;

static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte and
        // the descriptor stays open for the life of the process. A full pipe
        // drops the byte, which only merges it with one already pending.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The read end of the signal pipe, registered with the loop.
pub struct SignalPipe {
    receiver: pipe::Receiver,
    _sender: pipe::Sender,
}

impl SignalPipe {
    /// Routes `signals` to the pipe.
    pub fn install(signals: &[libc::c_int]) -> io::Result<SignalPipe> {
        let (sender, receiver) = pipe::new()?;
        PIPE_WRITE_FD.store(sender.as_raw_fd(), Ordering::Relaxed);
        for &signal in signals {
            // SAFETY: a zeroed sigaction is a valid starting value; the handler
            // only calls async-signal-safe functions (see on_signal).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(SignalPipe {
            receiver,
            _sender: sender,
        })
    }

    /// The signals received since the last call.
    pub fn drain(&mut self) -> Vec<libc::c_int> {
        let mut buffer = [0u8; 64];
        let mut signals = Vec::new();
        loop {
            match self.receiver.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => signals.extend(buffer[..n].iter().map(|&b| b as libc::c_int)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        signals
    }

    /// In a forked child that will never use or drop this pipe: closes both
    /// ends, so the child cannot write signal numbers to its parent (a
    /// worker's app could otherwise stop the arbiter by writing a 15).
    pub fn close_in_child(&self) {
        // SAFETY: the child owns copies of these descriptors; it neither
        // reads them nor drops this value (it ends with process::exit), so
        // nothing closes them twice or uses them after.
        unsafe {
            libc::close(self.receiver.as_raw_fd());
            libc::close(self._sender.as_raw_fd());
        }
    }

    /// The descriptor that turns readable when a signal arrives.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.receiver.as_raw_fd()
    }

    pub fn receiver(&mut self) -> &mut pipe::Receiver {
        &mut self.receiver
    }
}

/// Restores the default disposition of `signals` (in a forked child, before
/// it installs its own handlers).
pub fn reset(signals: &[libc::c_int]) {
    for &signal in signals {
        // SAFETY: SIG_DFL is a valid disposition for any catchable signal.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}
