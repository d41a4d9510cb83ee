//! The per-socket rate limit: a token bucket for the events a socket sends, and a window of
//! drops that disconnects a socket that keeps flooding. Pure: the caller passes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// More than this many drops within [`DROP_WINDOW`] disconnect the socket.
pub const MAX_DROPS: usize = 100;

/// The window in which drops are counted.
pub const DROP_WINDOW: Duration = Duration::from_secs(10);

/// What to do with one incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Handle it.
    Allow,
    /// Drop it and tell the client `RATE_LIMITED`.
    Limit,
    /// Drop it; the socket has been dropping too much and must be disconnected.
    Disconnect,
}

/// One socket's limiter. Holds no allocation until the socket is first limited.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// When the recent drops happened, oldest first; at most `MAX_DROPS + 1` entries.
    drops: VecDeque<Instant>,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let burst = f64::from(limit.burst.get());
        Self {
            rate: f64::from(limit.per_second.get()),
            burst,
            tokens: burst,
            last: now,
            drops: VecDeque::new(),
        }
    }

    /// Takes a token for one event at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        while self
            .drops
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= DROP_WINDOW)
        {
            self.drops.pop_front();
        }
        self.drops.push_back(now);
        if self.drops.len() > MAX_DROPS {
            self.drops.pop_front();
            Verdict::Disconnect
        } else {
            Verdict::Limit
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(limit(20, 40), t0);
        for _ in 0..40 {
            assert_eq!(r.check(t0), Verdict::Allow);
        }
        assert_eq!(r.check(t0), Verdict::Limit);
        // 50 ms at 20/s is one token.
        assert_eq!(r.check(t0 + Duration::from_millis(50)), Verdict::Allow);
        assert_eq!(r.check(t0 + Duration::from_millis(50)), Verdict::Limit);
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..40 {
            assert_eq!(r.check(later), Verdict::Allow);
        }
        assert_eq!(r.check(later), Verdict::Limit);
    }

    #[test]
    fn more_than_100_drops_in_10_s_disconnect() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(limit(1, 1), t0);
        assert_eq!(r.check(t0), Verdict::Allow);
        for i in 0..100 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(r.check(t), Verdict::Limit, "drop {i}");
        }
        assert_eq!(
            r.check(t0 + Duration::from_millis(100)),
            Verdict::Disconnect
        );
    }

    #[test]
    fn drops_spread_over_more_than_10_s_keep_the_socket() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(limit(1, 1), t0);
        let mut t = t0;
        // 60 drops, a long pause that refills but also ages them out, 60 more.
        for _ in 0..2 {
            assert_eq!(r.check(t), Verdict::Allow);
            for _ in 0..60 {
                assert_eq!(r.check(t), Verdict::Limit);
            }
            t += Duration::from_secs(11);
        }
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut r = RateLimiter::new(limit(1, 1), t0);
        assert_eq!(r.check(t0 - Duration::from_secs(1)), Verdict::Allow);
        assert_eq!(r.check(t0 - Duration::from_secs(2)), Verdict::Limit);
    }
}
