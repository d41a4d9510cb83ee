//! A fixed-size, log-bucketed latency histogram (about 1.6 % precision) with lock-free recording.
//!
//! Values below 128 get one bucket each; above, every power of two is split into 64 buckets, as in
//! HdrHistogram with two significant digits. Recording is a relaxed load and store on one bucket:
//! each [`Histogram`] has a single writer (one per generator thread, see
//! `Shared::record_latency` in the `run` module), and readers merge them at the end.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const LINEAR: u64 = 2 * SUB;
/// Enough buckets for any `u64`.
const BUCKETS: usize = (LINEAR + (64 - (SUB_BITS as u64 + 1)) * SUB) as usize;

/// A histogram of `u64` values (microseconds, in the load generator).
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records `value` from this histogram's only writer thread (no atomic read-modify-write).
    pub fn record_single_writer(&self, value: u64) {
        let bucket = &self.buckets[index(value)];
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if value > self.max.load(Ordering::Relaxed) {
            self.max.store(value, Ordering::Relaxed);
        }
    }

    /// Records `value` from any thread.
    pub fn record(&self, value: u64) {
        self.buckets[index(value)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// Adds `other`'s counts to this histogram.
    pub fn merge(&self, other: &Self) {
        for (mine, theirs) in self.buckets.iter().zip(other.buckets.iter()) {
            let n = theirs.load(Ordering::Relaxed);
            if n > 0 {
                mine.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.max
            .fetch_max(other.max.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0.0 to 1.0): the upper end of the bucket holding the
    /// `ceil(q * count)`-th smallest value, capped at [`Histogram::max`]. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return upper_bound(i).min(self.max());
            }
        }
        self.max()
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = 63 - u64::from(value.leading_zeros()); // >= SUB_BITS + 1
    let sub = (value >> (exp - u64::from(SUB_BITS))) & (SUB - 1);
    (LINEAR + (exp - u64::from(SUB_BITS) - 1) * SUB + sub) as usize
}

/// The largest value that lands in bucket `i`.
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let j = i - LINEAR;
    let exp = j / SUB + u64::from(SUB_BITS) + 1;
    let sub = j % SUB;
    let shift = exp - u64::from(SUB_BITS);
    let end = u128::from(SUB + sub + 1) << shift;
    u64::try_from(end - 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let values = [
            0,
            1,
            127,
            128,
            129,
            255,
            256,
            1000,
            65_535,
            1 << 40,
            u64::MAX,
        ];
        let mut last = 0;
        for v in values {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(i >= last, "{v} out of order");
            assert!(upper_bound(i) >= v, "{v} above its bucket");
            last = i;
        }
    }

    #[test]
    fn quantiles_are_within_two_percent() {
        let h = Histogram::default();
        for v in 1..=10_000 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), 10_000);
        for (q, want) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 10_000);
    }

    #[test]
    fn merge_adds_counts() {
        let a = Histogram::default();
        let b = Histogram::default();
        a.record_single_writer(5);
        b.record_single_writer(500);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), 500);
    }
}
