//! A listening TCP socket's accept queue, from `getsockopt(TCP_INFO)`: for a
//! socket in LISTEN state Linux reports the queue's length in `tcpi_unacked`
//! and its limit in `tcpi_sacked` (net/ipv4/tcp.c, `tcp_get_info`; what
//! `ss -lt` shows as Recv-Q and Send-Q).

use std::os::fd::RawFd;

/// (connections queued, queue limit), or None when the socket is not a
/// listening TCP socket.
pub fn accept_queue(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: tcp_info is plain old data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `length` bytes into `info`, which
    // lives for the call; `fd` is only read.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut length,
        )
    };
    const TCP_LISTEN: u8 = 10;
    if result != 0 || info.tcpi_state != TCP_LISTEN {
        return None;
    }
    Some((u64::from(info.tcpi_unacked), u64::from(info.tcpi_sacked)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn connections_nobody_accepted_are_counted_against_the_limit() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (queued, limit) = accept_queue(listener.as_raw_fd()).unwrap();
        assert_eq!(queued, 0);
        assert!(limit > 0);
        let _clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(address).unwrap())
            .collect();
        assert_eq!(accept_queue(listener.as_raw_fd()).unwrap().0, 3);
        let _ = listener.accept().unwrap();
        assert_eq!(accept_queue(listener.as_raw_fd()).unwrap().0, 2);
    }

    #[test]
    fn a_connected_socket_is_not_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(accept_queue(client.as_raw_fd()), None);
    }
}
