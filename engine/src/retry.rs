//! Retry windows (`[retry]`): how long one transient failure may go on before the task gives up, by kind
//! (connection lost vs. a statement the server refused for now), with capped exponential backoff and jitter.

use crate::config::RetrySection;
use crate::error::Error;
use std::time::{Duration, Instant};

/// Test-only: seconds per configured "minute" of a retry window, so tests run second-scale windows with the
/// production bounds on the keys (`FERRY_TEST_RETRY_MINUTE_S=1`: `connection_minutes = 10` lasts 10 s).
pub const TEST_MINUTE_ENV: &str = "FERRY_TEST_RETRY_MINUTE_S";

/// Which window a transient failure counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server could not be reached or the connection dropped (no server error number, or a client-side one).
    Connection,
    /// The server answered with a retryable error (deadlock, lock wait timeout, read-only for now, ...).
    Operation,
}

impl Kind {
    pub fn of(e: &Error) -> Kind {
        match e.mysql_errno() {
            // Client-side numbers: cannot connect (2002, 2003), server gone / lost (2006, 2013), and the server's
            // own "shutdown in progress" / "connection killed" (1053, 1927).
            None | Some(2002 | 2003 | 2006 | 2013 | 1053 | 1927) => Kind::Connection,
            Some(_) => Kind::Operation,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connection => "connection",
            Kind::Operation => "operation",
        }
    }
}

/// The two windows of a task.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub connection: Duration,
    pub operation: Duration,
}

/// Seconds in a configured minute: 60, or the test override.
pub fn minute_s() -> u64 {
    std::env::var(TEST_MINUTE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(60)
}

impl Windows {
    pub fn new(cfg: &RetrySection) -> Windows {
        let minute_s = minute_s();
        Windows {
            connection: Duration::from_secs(cfg.connection_minutes * minute_s),
            operation: Duration::from_secs(cfg.operation_minutes * minute_s),
        }
    }

    pub fn of(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Connection => self.connection,
            Kind::Operation => self.operation,
        }
    }
}

/// Backoff between attempts: 250 ms doubling to at most 30 s, each wait drawn from [half, full] (jitter keeps
/// many tasks from reconnecting in step).
const BACKOFF_FIRST_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 30_000;

/// One failure episode: started at the first transient error after a success, over when an attempt succeeds.
#[derive(Debug)]
pub struct Retrier {
    windows: Windows,
    since: Option<(Kind, Instant)>,
    attempt: u32,
}

impl Retrier {
    pub fn new(windows: Windows) -> Retrier {
        Retrier {
            windows,
            since: None,
            attempt: 0,
        }
    }

    /// The last attempt made progress: the next failure starts a new episode.
    pub fn succeeded(&mut self) {
        self.since = None;
        self.attempt = 0;
    }

    /// A transient failure: how long to wait before the next attempt, or the error to stop with once the failure
    /// has outlasted its window (FERRY-NET-001, naming the window and the last underlying error). A failure of
    /// another kind than the episode's so far restarts the clock under its own window.
    pub fn failed(&mut self, e: Error, what: &str) -> Result<Duration, Error> {
        let kind = Kind::of(&e);
        let since = match self.since {
            Some((k, t)) if k == kind => t,
            _ => {
                self.since = Some((kind, Instant::now()));
                self.attempt = 0;
                Instant::now()
            }
        };
        let window = self.windows.of(kind);
        if since.elapsed() >= window {
            return Err(e.context(format!(
                "{what} kept failing for {} s, past its {} retry window of {} s; the last error",
                since.elapsed().as_secs(),
                kind.as_str(),
                window.as_secs()
            )));
        }
        let full = BACKOFF_FIRST_MS
            .saturating_mul(1u64 << self.attempt.min(16))
            .min(BACKOFF_MAX_MS);
        self.attempt += 1;
        let jittered = full / 2 + rand::random_range(0..=full / 2);
        // Never sleep past the window's end: the last attempt happens at it.
        let left = window.saturating_sub(since.elapsed());
        Ok(Duration::from_millis(jittered).min(left.max(Duration::from_millis(10))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(ms: u64) -> Windows {
        Windows {
            connection: Duration::from_millis(ms),
            operation: Duration::from_millis(ms / 2),
        }
    }

    #[test]
    fn kinds_follow_the_error_number() {
        assert_eq!(Kind::of(&Error::transient("io")), Kind::Connection);
        let deadlock = Error::Transient {
            detail: "deadlock".into(),
            mysql_errno: Some(1213),
        };
        assert_eq!(Kind::of(&deadlock), Kind::Operation);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_inside_the_window() {
        let mut r = Retrier::new(windows(600_000));
        let mut last_max = 0;
        for _ in 0..12 {
            let d = r
                .failed(Error::transient("io"), "x")
                .expect("inside")
                .as_millis() as u64;
            assert!(d <= BACKOFF_MAX_MS, "{d}");
            last_max = last_max.max(d);
        }
        assert!(last_max >= BACKOFF_MAX_MS / 2, "{last_max}");
        r.succeeded();
        let d = r.failed(Error::transient("io"), "x").expect("new episode");
        assert!(d <= Duration::from_millis(BACKOFF_FIRST_MS), "{d:?}");
    }

    #[test]
    fn a_failure_past_its_window_stops_naming_the_last_error() {
        let mut r = Retrier::new(windows(30));
        r.failed(Error::transient("first"), "sync").expect("inside");
        std::thread::sleep(Duration::from_millis(40));
        let e = r
            .failed(Error::transient("connection refused"), "sync")
            .expect_err("past the window");
        assert_eq!(e.code().id, "FERRY-NET-001");
        let text = e.to_string();
        assert!(text.contains("connection retry window"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
    }
}
