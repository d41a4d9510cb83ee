//! When connected sockets' tokens expire: one schedule for the whole server (not a timer or a
//! task per socket), driven by one task that sleeps until the earliest deadline.
//!
//! [`ExpirySchedule`] is pure, in the quinn style: [`insert`](ExpirySchedule::insert),
//! [`remove`](ExpirySchedule::remove), [`poll_timeout`](ExpirySchedule::poll_timeout) and
//! [`handle_timeout`](ExpirySchedule::handle_timeout) with `now` passed in. Deadlines are in
//! seconds since the Unix epoch, like `exp`, by default; the same structure holds the sessions'
//! connect timeouts as `Instant`s.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Sockets ordered by the second their token expires (`exp` + leeway).
#[derive(Debug, Clone)]
pub struct ExpirySchedule<K, T = u64> {
    by_time: BTreeSet<(T, K)>,
    by_key: HashMap<K, T>,
}

impl<K, T> Default for ExpirySchedule<K, T> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone, T: Ord + Copy> ExpirySchedule<K, T> {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or moves) `key`'s deadline. Returns whether it is now the earliest one, so that the
    /// driver knows to wake up sooner.
    pub fn insert(&mut self, key: K, at: T) -> bool {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
        self.poll_timeout() == Some(at)
    }

    /// Forgets `key` (the socket disconnected). Returns whether it was scheduled.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.by_key.remove(key) {
            Some(at) => {
                self.by_time.remove(&(at, key.clone()));
                true
            }
            None => false,
        }
    }

    /// The earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<T> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns every key whose deadline is at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: T) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_time.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// How many sockets are scheduled.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no socket is scheduled.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// `key`'s deadline.
    pub fn deadline(&self, key: &K) -> Option<T> {
        self.by_key.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_moves() {
        let mut s = ExpirySchedule::new();
        assert!(s.insert("a", 100));
        assert!(!s.insert("b", 200));
        assert!(s.insert("c", 50));
        assert_eq!(s.poll_timeout(), Some(50));
        // A refresh moves c later.
        assert!(!s.insert("c", 300));
        assert_eq!(s.poll_timeout(), Some(100));
        assert_eq!(s.handle_timeout(99), Vec::<&str>::new());
        assert_eq!(s.handle_timeout(200), vec!["a", "b"]);
        assert_eq!(s.len(), 1);
        assert!(s.remove(&"c"));
        assert!(!s.remove(&"c"));
        assert!(s.is_empty());
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn same_second_many_keys() {
        let mut s = ExpirySchedule::new();
        for k in 0..1000u32 {
            s.insert(k, 10);
        }
        assert_eq!(s.handle_timeout(10).len(), 1000);
        assert!(s.is_empty());
    }

    #[test]
    fn no_entry_left_after_churn() {
        let mut s = ExpirySchedule::new();
        for k in 0..10_000u32 {
            s.insert(k, u64::from(k % 7));
            if k % 2 == 0 {
                s.remove(&k);
            }
        }
        s.handle_timeout(u64::MAX);
        assert!(s.is_empty());
        assert_eq!(s.by_time.len(), 0);
    }
}
