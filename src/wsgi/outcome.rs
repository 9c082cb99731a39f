//! What became of one request, worked out once when it ends and read by the
//! access log, the `post_request` hook and the metrics, so that they agree.

use std::time::Duration;

/// Why a request's app run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The app raised.
    AppError,
    /// `--request-timeout` interrupted the app.
    Timeout,
    /// The app broke the WSGI contract (PEP 3333) where the server found it.
    Contract,
    /// Our code panicked while serving it.
    Panic,
}

impl FailureKind {
    /// Its name in metrics (`crate::scoreboard::counters::FAILURE_KINDS`).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::AppError => "app_error",
            FailureKind::Timeout => "timeout",
            FailureKind::Contract => "contract",
            FailureKind::Panic => "panic",
        }
    }

    /// The response a client gets when the failure came before the app's
    /// response started: its status line and a sentence for the body.
    pub fn fallback(self) -> (&'static str, &'static str) {
        match self {
            FailureKind::Timeout => (
                "503 Service Unavailable",
                "The request took longer than the server allows.",
            ),
            _ => (
                "500 Internal Server Error",
                "The server could not complete the request.",
            ),
        }
    }
}

/// What the client received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The app's whole response.
    Complete,
    /// The app's response, started and then cut short by a failure: its
    /// status went out, the connection closes.
    CutShort(FailureKind),
    /// Nothing of the app's went out: the server's error response instead.
    Fallback(FailureKind),
}

/// What the client receives, given the failure (if any) and whether any of
/// the app's response was pushed to the client already.
pub fn delivery(failure: Option<FailureKind>, started: bool) -> Delivery {
    match failure {
        None => Delivery::Complete,
        Some(kind) if started => Delivery::CutShort(kind),
        Some(kind) => Delivery::Fallback(kind),
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct RequestOutcome {
    /// The status line sent, as in the response head ("200 OK").
    pub status: String,
    /// The response headers sent (names as given, values latin-1); none for
    /// a fallback.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body_bytes: u64,
    /// From the app's call to the response's end.
    pub duration: Duration,
    pub delivery: Delivery,
}

impl RequestOutcome {
    /// The outcome of a request whose response the server lost track of
    /// (answered by the sink's own fallback).
    pub fn lost(duration: Duration) -> RequestOutcome {
        let (status, _) = FailureKind::Panic.fallback();
        RequestOutcome {
            status: status.to_owned(),
            headers: Vec::new(),
            body_bytes: 0,
            duration,
            delivery: Delivery::Fallback(FailureKind::Panic),
        }
    }

    /// The three-digit status code.
    pub fn status_code(&self) -> u16 {
        // start_response checked the status begins with three digits.
        self.status
            .get(..3)
            .and_then(|code| code.parse().ok())
            .unwrap_or(500)
    }

    pub fn failure(&self) -> Option<FailureKind> {
        match self.delivery {
            Delivery::Complete => None,
            Delivery::CutShort(kind) | Delivery::Fallback(kind) => Some(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_before_the_response_started_gets_the_fallback_for_its_kind() {
        assert_eq!(
            delivery(Some(FailureKind::Timeout), false),
            Delivery::Fallback(FailureKind::Timeout)
        );
        assert_eq!(FailureKind::Timeout.fallback().0, "503 Service Unavailable");
        for kind in [
            FailureKind::AppError,
            FailureKind::Contract,
            FailureKind::Panic,
        ] {
            assert_eq!(delivery(Some(kind), false), Delivery::Fallback(kind));
            assert_eq!(kind.fallback().0, "500 Internal Server Error");
        }
    }

    #[test]
    fn a_failure_after_the_response_started_cuts_it_short() {
        assert_eq!(
            delivery(Some(FailureKind::Timeout), true),
            Delivery::CutShort(FailureKind::Timeout)
        );
        assert_eq!(delivery(None, true), Delivery::Complete);
        assert_eq!(delivery(None, false), Delivery::Complete);
    }

    #[test]
    fn every_failure_kind_has_a_metrics_label() {
        use crate::scoreboard::counters::FAILURE_KINDS;
        for kind in [
            FailureKind::AppError,
            FailureKind::Timeout,
            FailureKind::Contract,
            FailureKind::Panic,
        ] {
            assert!(FAILURE_KINDS.contains(&kind.label()), "{kind:?}");
        }
    }

    #[test]
    fn the_status_code_is_read_from_the_status_line() {
        let mut outcome = RequestOutcome::lost(Duration::ZERO);
        assert_eq!(outcome.status_code(), 500);
        assert_eq!(outcome.failure(), Some(FailureKind::Panic));
        outcome.status = "204 No Content".to_owned();
        assert_eq!(outcome.status_code(), 204);
    }
}
