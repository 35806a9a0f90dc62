//! An optional rate limit on page-stream bytes: a token bucket, sans-IO (the caller brings the
//! time), and the async pacing the stream writers use.

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A rate limit: a sustained rate and the burst allowed on top of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate, in bytes per second.
    pub bytes_per_second: NonZeroU64,
    /// How many bytes may go at once after a pause (the bucket's size).
    pub burst: u64,
}

impl RateLimit {
    /// A limit of `bytes_per_second` with a burst of 10 ms worth of bytes (at least 64 KiB),
    /// small enough that the rate holds over short intervals.
    pub fn per_second(bytes_per_second: NonZeroU64) -> RateLimit {
        RateLimit {
            bytes_per_second,
            burst: (bytes_per_second.get() / 100).max(64 << 10),
        }
    }
}

/// A token bucket. Taking more tokens than the bucket holds puts it in debt; the caller waits
/// until the debt is paid, so the long-run rate is exactly the limit, whatever the chunk sizes.
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::{Duration, Instant};
/// use pagewire_transport::rate::{RateLimit, TokenBucket};
/// let start = Instant::now();
/// let limit = RateLimit { bytes_per_second: NonZeroU64::new(1000).unwrap(), burst: 100 };
/// let mut bucket = TokenBucket::new(limit, start);
/// assert_eq!(bucket.take(100, start), Duration::ZERO); // the burst
/// assert_eq!(bucket.take(500, start), Duration::from_millis(500)); // then the rate
/// ```
#[derive(Clone, Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens available; negative while in debt.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: limit.burst as f64,
            last: now,
        }
    }

    /// Takes `bytes` tokens at `now` and returns how long the caller must wait before sending
    /// them (zero if the bucket held enough). Times earlier than the last call count as no
    /// time passed.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let rate = self.limit.bytes_per_second.get() as f64;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * rate).min(self.limit.burst as f64);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// A token bucket shared by the page-stream writers of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Pacer(Arc<Mutex<TokenBucket>>);

impl Pacer {
    pub(crate) fn new(limit: RateLimit) -> Pacer {
        Pacer(Arc::new(Mutex::new(TokenBucket::new(
            limit,
            Instant::now(),
        ))))
    }

    /// Waits until `bytes` may be sent.
    pub(crate) async fn pace(&self, bytes: usize) {
        let wait = self
            .0
            .lock()
            // The bucket holds plain numbers, valid even if a holder panicked.
            .unwrap_or_else(PoisonError::into_inner)
            .take(bytes as u64, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: u64, burst: u64) -> RateLimit {
        RateLimit {
            bytes_per_second: NonZeroU64::new(rate).unwrap(),
            burst,
        }
    }

    #[test]
    fn long_run_rate_equals_the_limit_whatever_the_chunk_size() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(limit(1_000_000, 10_000), start);
        // The sender waits as told after each chunk: 1 MB more than the burst takes 1 s.
        let mut now = start;
        let mut sent = 0u64;
        while sent < 1_010_000 {
            now += bucket.take(7_000, now);
            sent += 7_000;
        }
        let elapsed = now.duration_since(start).as_secs_f64();
        // Each wait covers the chunk just taken: all but the burst paid at the rate.
        let expected = (sent - 10_000) as f64 / 1_000_000.0;
        assert!(
            (elapsed - expected).abs() < 0.001,
            "{elapsed} vs {expected}"
        );
    }

    #[test]
    fn an_idle_bucket_refills_only_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(limit(1000, 100), start);
        assert_eq!(bucket.take(100, start), Duration::ZERO);
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.take(100, later), Duration::ZERO);
        assert_eq!(bucket.take(100, later), Duration::from_millis(100));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(limit(1000, 0), start);
        assert_eq!(bucket.take(1000, start), Duration::from_secs(1));
        let earlier = start - Duration::from_millis(500);
        assert_eq!(bucket.take(1000, earlier), Duration::from_secs(2));
    }
}
