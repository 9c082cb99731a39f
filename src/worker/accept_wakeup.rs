//! How the event loop watches its listening sockets. Every worker's loop
//! watches the same sockets; registered the usual (edge-triggered) way, each
//! new client wakes every worker and one wins the accept. Here a listener is
//! registered level-triggered with EPOLLEXCLUSIVE (Linux 4.5+, as nginx
//! does): a new client wakes one waiting worker, and a worker that stops
//! early is woken again while clients wait, so accepts can be spread.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::{Poll, Token};

/// Starts waking `poll` for clients waiting on `listener`.
pub fn watch(poll: &Poll, listener: RawFd, token: Token) -> io::Result<()> {
    let exclusive = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
    match control(poll, libc::EPOLL_CTL_ADD, listener, exclusive, token) {
        // Kernels before 4.5 refuse the flag: watch without it.
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => control(
            poll,
            libc::EPOLL_CTL_ADD,
            listener,
            libc::EPOLLIN as u32,
            token,
        ),
        other => other,
    }
}

/// Stops waking `poll` for `listener` (while the loop takes no clients: a
/// level-triggered listener with clients waiting would wake it in a loop).
pub fn unwatch(poll: &Poll, listener: RawFd) {
    // Not watched (already paused): nothing to undo.
    let _ = control(poll, libc::EPOLL_CTL_DEL, listener, 0, Token(0));
}

fn control(
    poll: &Poll,
    operation: libc::c_int,
    fd: RawFd,
    events: u32,
    token: Token,
) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: token.0 as u64,
    };
    // SAFETY: epoll_ctl on mio's own epoll descriptor (alive as long as
    // `poll`) and a listening socket the loop owns; `event` is a valid,
    // initialised struct for the call's duration. mio reads the token back
    // from the same `u64` field, as for the sources it registers itself.
    let result = unsafe { libc::epoll_ctl(poll.as_raw_fd(), operation, fd, &mut event) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
