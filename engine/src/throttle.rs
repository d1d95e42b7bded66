//! Throttling: token buckets for queries, rows and bytes per second, shared by the copy workers or the applier and
//! changeable while the task runs (0 = unlimited).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One rate limit. Tokens refill continuously at `rate_per_s`; at most one second's worth is banked, so a burst
/// after a pause is bounded and the average over any window of a few seconds stays at the rate. A take larger
/// than the bank (one huge row) waits until it is paid for, so the long-run rate still holds.
#[derive(Debug)]
pub struct Bucket {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate_per_s: f64,
    tokens: f64,
    at: Instant,
}

/// The longest single wait, so a rate lowered at runtime takes effect soon and a stop is noticed.
const WAIT_SLICE: Duration = Duration::from_millis(100);

impl Bucket {
    pub fn new(rate_per_s: u64) -> Bucket {
        Bucket {
            state: Mutex::new(State {
                rate_per_s: rate_per_s as f64,
                tokens: 0.0,
                at: Instant::now(),
            }),
        }
    }

    /// Changes the rate (0 = unlimited) from now on.
    pub fn set_rate(&self, rate_per_s: u64) {
        let mut s = self.lock();
        s.refill();
        s.rate_per_s = rate_per_s as f64;
        s.tokens = s.tokens.min(s.rate_per_s);
    }

    /// Whether takes can wait at all (a rate is set): callers skip measuring what they would take otherwise.
    pub fn limited(&self) -> bool {
        self.lock().rate_per_s > 0.0
    }

    pub fn rate(&self) -> u64 {
        self.lock().rate_per_s as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` tokens, waiting as long as the rate needs (immediately when unlimited).
    pub async fn take(&self, n: u64) {
        let mut owed = n as f64;
        loop {
            let wait = {
                let mut s = self.lock();
                if s.rate_per_s <= 0.0 {
                    return;
                }
                s.refill();
                if s.tokens >= owed {
                    s.tokens -= owed;
                    return;
                }
                // Pay what the bank holds, wait for the rest.
                owed -= s.tokens.max(0.0);
                s.tokens = 0.0;
                Duration::from_secs_f64(owed / s.rate_per_s).min(WAIT_SLICE)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

impl State {
    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        if self.rate_per_s > 0.0 {
            self.tokens = (self.tokens + dt * self.rate_per_s).min(self.rate_per_s);
        }
    }
}

/// The limits of one phase: queries to the source (copy only), rows and bytes.
#[derive(Debug)]
pub struct Throttle {
    pub queries: Bucket,
    pub rows: Bucket,
    pub bytes: Bucket,
}

/// The rates of a `Throttle`, as configured (0 = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rates {
    pub queries_per_s: u64,
    pub rows_per_s: u64,
    pub mb_per_s: u64,
}

impl Throttle {
    pub fn new(r: Rates) -> Throttle {
        Throttle {
            queries: Bucket::new(r.queries_per_s),
            rows: Bucket::new(r.rows_per_s),
            bytes: Bucket::new(r.mb_per_s.saturating_mul(1 << 20)),
        }
    }

    pub fn set(&self, r: Rates) {
        self.queries.set_rate(r.queries_per_s);
        self.rows.set_rate(r.rows_per_s);
        self.bytes.set_rate(r.mb_per_s.saturating_mul(1 << 20));
    }

    pub fn rates(&self) -> Rates {
        Rates {
            queries_per_s: self.queries.rate(),
            rows_per_s: self.rows.rate(),
            mb_per_s: self.bytes.rate() >> 20,
        }
    }

    /// One query to the source.
    pub async fn query(&self) {
        self.queries.take(1).await;
    }

    /// `rows` rows of `bytes` bytes in all.
    pub async fn rows(&self, rows: u64, bytes: u64) {
        self.rows.take(rows).await;
        self.bytes.take(bytes).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unlimited_never_waits() {
        let b = Bucket::new(0);
        let t = Instant::now();
        for _ in 0..10_000 {
            b.take(1_000).await;
        }
        assert!(t.elapsed() < Duration::from_millis(200));
    }

    #[tokio::test]
    async fn the_rate_holds_over_a_window() {
        let b = Bucket::new(2_000);
        let t = Instant::now();
        let mut taken = 0u64;
        while t.elapsed() < Duration::from_millis(1_500) {
            b.take(50).await;
            taken += 50;
        }
        let rate = taken as f64 / t.elapsed().as_secs_f64();
        assert!((1_700.0..=2_300.0).contains(&rate), "{rate}");
    }

    #[tokio::test]
    async fn a_take_bigger_than_a_second_is_paid_over_time() {
        let b = Bucket::new(1_000);
        let t = Instant::now();
        b.take(1_500).await;
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(1_300), "{e:?}");
    }

    #[tokio::test]
    async fn a_rate_change_applies_at_once() {
        let b = std::sync::Arc::new(Bucket::new(10));
        let c = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.set_rate(0);
        });
        let t = Instant::now();
        b.take(1_000).await; // 100 s at the first rate
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
