//! How the event loop watches its listening sockets: level-triggered, so a
//! worker that takes only a few clients per wake-up is woken again while
//! more wait, and without EPOLLEXCLUSIVE, so every watching worker is woken
//! for a new client and the first to accept it wins. With EPOLLEXCLUSIVE the
//! kernel woke one worker only; when that one declined the client (its
//! interpreters stalled, or a sibling holding fewer connections), no other
//! was told, and the client waited in the backlog until the next one arrived
//! (a newcomer waited 2-4 s while wrk kept Flask -w 2 busy). The cost is a
//! wake-up per watching worker per new client, within noise for
//! `Connection: close` hello world at -w 2 (bench/run.py).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::{Poll, Token};

/// Starts waking `poll` for clients waiting on `listener`.
pub fn watch(poll: &Poll, listener: RawFd, token: Token) -> io::Result<()> {
    control(
        poll,
        libc::EPOLL_CTL_ADD,
        listener,
        libc::EPOLLIN as u32,
        token,
    )
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
