//! What the arbiter and a preloading process say to each other: one text
//! datagram per message over a Unix socket pair, so a message is never
//! split or merged and the processes forked in between (which write the
//! worker's pid) can share the preloading process's end.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The longest message (a fork failure's reason is cut to fit).
const MAX_MESSAGE: usize = 1024;

/// The arbiter asks for one worker in `slot` of the scoreboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkOrder {
    pub slot: usize,
    /// Workers the arbiter started before this one (`worker.age`).
    pub age: u64,
    pub max_requests: u64,
    /// The arbiter's worker count (`server.num_workers`, `wsgi.multiprocess`).
    pub num_workers: usize,
}

/// What a preloading process tells the arbiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The app is imported: workers may be ordered.
    Ready,
    /// The worker for `slot` runs as `pid`, a child of the arbiter.
    Forked { slot: usize, pid: libc::pid_t },
    /// No worker could be forked for `slot`.
    ForkFailed { slot: usize, reason: String },
    /// `--reload`: a source file of the app changed.
    CodeChanged { path: String },
}

impl ForkOrder {
    pub fn encode(&self) -> String {
        format!(
            "fork {} {} {} {}",
            self.slot, self.age, self.max_requests, self.num_workers
        )
    }

    pub fn decode(text: &str) -> Option<ForkOrder> {
        let mut words = text.strip_prefix("fork ")?.split(' ');
        let mut number = || words.next()?.parse::<u64>().ok();
        let order = ForkOrder {
            slot: usize::try_from(number()?).ok()?,
            age: number()?,
            max_requests: number()?,
            num_workers: usize::try_from(number()?).ok()?,
        };
        words.next().is_none().then_some(order)
    }
}

impl Report {
    pub fn encode(&self) -> String {
        let text = match self {
            Report::Ready => "ready".to_owned(),
            Report::Forked { slot, pid } => format!("forked {slot} {pid}"),
            Report::ForkFailed { slot, reason } => format!("failed {slot} {reason}"),
            Report::CodeChanged { path } => format!("changed {path}"),
        };
        let mut end = text.len().min(MAX_MESSAGE);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    }

    pub fn decode(text: &str) -> Option<Report> {
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        match word {
            "ready" if rest.is_empty() => Some(Report::Ready),
            "forked" => {
                let (slot, pid) = rest.split_once(' ')?;
                Some(Report::Forked {
                    slot: slot.parse().ok()?,
                    pid: pid.parse().ok().filter(|&pid| pid > 0)?,
                })
            }
            "failed" => {
                let (slot, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                Some(Report::ForkFailed {
                    slot: slot.parse().ok()?,
                    reason: reason.to_owned(),
                })
            }
            "changed" => Some(Report::CodeChanged {
                path: rest.to_owned(),
            }),
            _ => None,
        }
    }
}

/// Sends one message (blocking only if the peer's buffer is full).
pub fn send(socket: &UnixDatagram, text: &str) -> io::Result<()> {
    socket.send(text.as_bytes()).map(drop)
}

/// The next message, `None` once none is waiting (the socket is
/// non-blocking) or when it is not text.
pub fn receive(socket: &UnixDatagram) -> io::Result<Option<String>> {
    let mut buffer = [0u8; MAX_MESSAGE];
    loop {
        match socket.recv(&mut buffer) {
            Ok(n) => return Ok(String::from_utf8(buffer[..n].to_vec()).ok()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_and_malformed_ones_are_refused() {
        let order = ForkOrder {
            slot: 3,
            age: 17,
            max_requests: 1000,
            num_workers: 4,
        };
        assert_eq!(ForkOrder::decode(&order.encode()), Some(order));
        for bad in [
            "fork 1 2 3",
            "fork 1 2 3 4 5",
            "fork -1 2 3 4",
            "spawn 1 2 3 4",
            "",
        ] {
            assert_eq!(ForkOrder::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reports_round_trip_and_long_reasons_are_cut_on_a_character() {
        let reports = [
            Report::Ready,
            Report::Forked { slot: 2, pid: 4242 },
            Report::ForkFailed {
                slot: 1,
                reason: "Resource temporarily unavailable".into(),
            },
            Report::CodeChanged {
                path: "/srv/app/my app.py".into(),
            },
        ];
        for report in reports {
            assert_eq!(Report::decode(&report.encode()), Some(report));
        }
        assert_eq!(Report::decode("forked 1 0"), None);
        assert_eq!(Report::decode("forked 1"), None);
        assert_eq!(Report::decode("ready now"), None);
        let long = Report::ForkFailed {
            slot: 0,
            reason: "é".repeat(MAX_MESSAGE),
        };
        let encoded = long.encode();
        assert!(encoded.len() <= MAX_MESSAGE && encoded.starts_with("failed 0 é"));
    }

    #[test]
    fn messages_cross_a_socket_pair_whole_and_one_at_a_time() {
        let (arbiter, preloader) = UnixDatagram::pair().unwrap();
        arbiter.set_nonblocking(true).unwrap();
        assert_eq!(receive(&arbiter).unwrap(), None);
        send(&preloader, &Report::Ready.encode()).unwrap();
        send(&preloader, &Report::Forked { slot: 0, pid: 7 }.encode()).unwrap();
        assert_eq!(receive(&arbiter).unwrap().as_deref(), Some("ready"));
        assert_eq!(receive(&arbiter).unwrap().as_deref(), Some("forked 0 7"));
        assert_eq!(receive(&arbiter).unwrap(), None);
    }
}
